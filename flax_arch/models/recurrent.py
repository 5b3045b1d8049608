"""Slide "Connecting an RNN with a FC layer": an RNN whose hidden state at every step goes
through a Linear + log-softmax classifier.

Same attributes as :class:`torch_ref.recurrent.RNNClassifier` (``rnn``, ``fc``), so the
variable paths are its state_dict keys (``rnn.weight_ih_l0``, ``fc.0.weight`` …). The
slide's ``batch_first=True`` layout is kept: x (N, L, num_inputs); its
``LogSoftmax(dim=2)`` is the last axis here too.
"""

from __future__ import annotations

from flax import nnx

from ..nn import Linear, LogSoftmax, Sequential
from ..nn.recurrent import RNN
from ._checks import check_batched, check_sizes

__all__ = ["RNNClassifier"]


class RNNClassifier(nnx.Module):
    """``rnn`` (batch-first :class:`~flax_arch.nn.recurrent.RNN`) then ``fc``
    (Linear(hidden_size, num_outputs) + LogSoftmax over the last axis).

    >>> from flax import nnx; import jax.numpy as jnp
    >>> RNNClassifier(100, 512, 10, rngs=nnx.Rngs(0))(jnp.ones((1, 100, 100))).shape
    (1, 100, 10)
    """

    def __init__(self, num_inputs: int = 100, hidden_size: int = 512, num_outputs: int = 10,
                 num_layers: int = 1, *, rngs: nnx.Rngs):
        check_sizes("RNNClassifier", num_inputs=num_inputs, hidden_size=hidden_size,
                    num_outputs=num_outputs, num_layers=num_layers)
        self.rnn = RNN(num_inputs, hidden_size, num_layers=num_layers, batch_first=True,
                       rngs=rngs)
        self.fc = Sequential(Linear(hidden_size, num_outputs, rngs=rngs), LogSoftmax(dim=-1))

    def __call__(self, x, h0=None, lengths=None):
        """x (N, L, num_inputs), optional h0 (num_layers, N, hidden_size), optional
        lengths (N,) → y (N, L, num_outputs) log-probabilities per time step (with
        ``lengths``, the steps past each sequence's end see a zero hidden state, as after
        ``pad_packed_sequence``)."""
        # batched only: the slide's LogSoftmax(dim=2) fails on an unbatched (L, H_in) input
        check_batched(x, "RNNClassifier", "(N, L, num_inputs)", self.rnn.input_size)
        ht, _ = self.rnn(x, h0, lengths)  # ht (N, L, hidden_size)
        return self.fc(ht)
