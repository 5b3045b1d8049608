"""Cases for the single recurrent cells (``RNNCell``, ``GRUCell``, ``LSTMCell``) and
``Bilinear``: a small composite of cells behind a ``Linear`` in a ``Sequential``, one LSTM
step with its (h, c) state, and a bilinear form on batched and unbatched inputs.

Layouts are torch's on both sides (no channel axis): (N, features), or (features,)
unbatched. Importing this file does not import torch.
"""

from __future__ import annotations

import jax.numpy as jnp

from flax_arch.nn.containers import Sequential
from flax_arch.nn.linear import Bilinear, Linear
from flax_arch.nn.recurrent import GRUCell, LSTMCell, RNNCell
from flax_arch.parity.harness import Case
from flax_arch.parity.registry import lazy_module

nn = lazy_module("torch.nn")


def _normal(*shapes):
    return lambda rng: tuple(rng.standard_normal(s) for s in shapes)


def _lstm_step(m, x, h, c):
    return m(x, (h, c))


CASES = [
    # Linear → tanh → GRUCell → RNNCell (hx = None: zero states), torch keys 0, 2, 3
    Case("cells_linear_gru_rnn",
         lambda: nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.GRUCell(5, 4),
                               nn.RNNCell(4, 3)),
         lambda r: Sequential(Linear(6, 5, rngs=r), jnp.tanh, GRUCell(5, 4, rngs=r),
                              RNNCell(4, 3, rngs=r)),
         _normal((7, 6))),
    Case("lstm_cell_step", lambda: nn.LSTMCell(4, 3), lambda r: LSTMCell(4, 3, rngs=r),
         _normal((5, 4), (5, 3), (5, 3)), torch_call=_lstm_step, flax_call=_lstm_step),
    Case("gru_cell_unbatched_nobias", lambda: nn.GRUCell(3, 4, bias=False),
         lambda r: GRUCell(3, 4, bias=False, rngs=r), _normal((3,), (4,))),
    Case("bilinear", lambda: nn.Bilinear(3, 4, 2), lambda r: Bilinear(3, 4, 2, rngs=r),
         _normal((2, 5, 3), (2, 5, 4))),
    Case("bilinear_unbatched_nobias", lambda: nn.Bilinear(3, 2, 4, bias=False),
         lambda r: Bilinear(3, 2, 4, bias=False, rngs=r), _normal((3,), (2,))),
]
