"""Cases for the CTC loss twin (:mod:`flax_arch.nn.ctc`): a small acoustic-model head —
torch ``nn.Sequential(Linear, Tanh, Linear, LogSoftmax)`` over time-major features
(T, N, F), then ``nn.CTCLoss`` — against the :class:`flax_arch.nn.Sequential` twin and
:class:`flax_arch.nn.ctc.CTCLoss`. Gradients flow from the loss through the log-softmax
into both linear layers and the features, so torch's log-softmax-shaped CTC gradient
(:func:`flax_arch.ops.ctc._bwd`) is checked both as it leaves the loss and through the
log-softmax.

Layouts agree (the class axis is last in torch too). torch's CPU CTC kernel has no
float16/bfloat16: in those dtypes the torch side computes the loss in float32 and rounds it
(autocast's rule for ``ctc_loss``), which is what the twin does.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from flax_arch.nn import Linear, Sequential
from flax_arch.nn.activation import LogSoftmax
from flax_arch.nn.ctc import CTCLoss
from flax_arch.parity.harness import Case
from flax_arch.parity.registry import lazy_module

torch = lazy_module("torch")

T, N, FEATURES, CLASSES = 9, 3, 6, 5


def _torch_head():
    nn = torch.nn
    return nn.Sequential(nn.Linear(FEATURES, 8), nn.Tanh(), nn.Linear(8, CLASSES),
                         nn.LogSoftmax(dim=-1))


def _flax_head(r):
    return Sequential(Linear(FEATURES, 8, rngs=r), jnp.tanh, Linear(8, CLASSES, rngs=r),
                      LogSoftmax(dim=-1))


def _torch_call(kw):
    def call(m, x, targets, input_lengths, target_lengths):
        lp = m(x)
        low = lp.dtype in (torch.float16, torch.bfloat16)  # CPU kernel: float32/64 only
        loss = torch.nn.CTCLoss(**kw)(lp.float() if low else lp, targets, input_lengths,
                                      target_lengths)
        return loss.to(lp.dtype)
    return call


def _flax_call(kw):
    return lambda m, x, targets, il, tl: CTCLoss(**kw)(m(x), targets, il, tl)


def _padded(blank):
    """Padded (N, S) targets (labels other than ``blank``), input lengths below T, one
    empty target."""
    labels = np.array([c for c in range(CLASSES) if c != blank])

    def make(rng):
        x = rng.standard_normal((T, N, FEATURES))
        targets = labels[rng.integers(0, len(labels), size=(N, 4))]
        return x, targets, np.array([9, 7, 5]), np.array([4, 3, 0])
    return make


def _concatenated(rng):
    """Concatenated targets; sequence 1 cannot be aligned (3 repeats need 5 frames, it has
    3): its loss is ∞, zeroed with its gradient by ``zero_infinity``."""
    x = rng.standard_normal((T, N, FEATURES))
    targets = np.concatenate([rng.integers(0, CLASSES - 1, size=3), [2, 2, 2],
                              rng.integers(0, CLASSES - 1, size=2)])
    return x, targets, np.array([9, 3, 8]), np.array([3, 3, 2])


def _case(name, kw, inputs):
    return Case(name, _torch_head, _flax_head, inputs, torch_call=_torch_call(kw),
                flax_call=_flax_call(kw), well_posed=True)


CASES = [
    _case("ctc_head_mean", dict(), _padded(0)),
    _case("ctc_head_sum_zero_infinity", dict(blank=CLASSES - 1, reduction="sum",
                                             zero_infinity=True), _concatenated),
    _case("ctc_head_none", dict(blank=2, reduction="none"), _padded(2)),
]
