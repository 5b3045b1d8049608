"""Slides "Convolutional Layer" (valid, padded, causal), "MLP as a CNN" and "Transposed
Convolutional Layer", channels-last: the slides' (N, C, L) is (N, L, C) here."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from ..nn import Conv1d, ConvTranspose1d, LogSoftmax, Sequential, causal_pad
from ._checks import check_batched, check_sizes

__all__ = ["ValidConv1d", "PaddedConv1d", "CausalConv1d", "ConvMLP", "TransposedConv1d"]


class ValidConv1d(Conv1d):
    """No padding: ``__call__``: (N, L, C_in) → (N, L − kernel_width + 1, hidden_size).

    >>> from flax import nnx; import jax.numpy as jnp
    >>> ValidConv1d(rngs=nnx.Rngs(0))(jnp.ones((1, 8, 1))).shape
    (1, 6, 1024)
    """

    def __init__(self, num_channels_in: int = 1, hidden_size: int = 1024,
                 kernel_width: int = 3, *, rngs: nnx.Rngs):
        check_sizes(type(self).__name__, num_channels_in=num_channels_in,
                    hidden_size=hidden_size, kernel_width=kernel_width)
        super().__init__(num_channels_in, hidden_size, kernel_width, rngs=rngs)


class PaddedConv1d(Conv1d):
    """``padding = kernel_width // 2`` on both sides: (N, L, C_in) → (N, L, hidden_size) for
    odd kernels (L + 1 for even ones, as in torch)."""

    def __init__(self, num_channels_in: int = 1, hidden_size: int = 1024,
                 kernel_width: int = 3, *, rngs: nnx.Rngs):
        check_sizes(type(self).__name__, num_channels_in=num_channels_in,
                    hidden_size=hidden_size, kernel_width=kernel_width)
        super().__init__(num_channels_in, hidden_size, kernel_width,
                         padding=kernel_width // 2, rngs=rngs)


class CausalConv1d(Conv1d):
    """Left-pad by ``kernel_width − 1`` (:func:`~flax_arch.nn.causal_pad`), then a valid
    convolution: (N, L, C_in) → (N, L, hidden_size); step t sees inputs ≤ t only.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> CausalConv1d(rngs=nnx.Rngs(0))(jnp.ones((1, 8, 1))).shape
    (1, 8, 1024)
    """

    def __init__(self, num_channels_in: int = 1, hidden_size: int = 1024,
                 kernel_width: int = 3, *, rngs: nnx.Rngs):
        check_sizes(type(self).__name__, num_channels_in=num_channels_in,
                    hidden_size=hidden_size, kernel_width=kernel_width)
        super().__init__(num_channels_in, hidden_size, kernel_width, rngs=rngs)
        self.kwidth = kernel_width

    def __call__(self, x):
        return super().__call__(causal_pad(x, self.kwidth))


class ConvMLP(Sequential):
    """"MLP as a CNN": kernel-1 convolutions = one Linear per time step.

    ``__call__``: (N, L, num_inputs) → (N, L, num_outputs) log-probabilities over channels
    (the slide's ``LogSoftmax(dim=1)`` over (N, C, L) is the channel axis, last here).

    >>> from flax import nnx; import jax.numpy as jnp
    >>> ConvMLP(rngs=nnx.Rngs(0))(jnp.ones((1, 1, 100))).shape
    (1, 1, 20)
    """

    def __init__(self, num_inputs: int = 100, hidden_size: int = 1024, num_outputs: int = 20,
                 *, rngs: nnx.Rngs):
        check_sizes("ConvMLP", num_inputs=num_inputs, hidden_size=hidden_size,
                    num_outputs=num_outputs)
        super().__init__(
            Conv1d(num_inputs, hidden_size, 1, rngs=rngs), jnp.tanh,
            Conv1d(hidden_size, hidden_size, 1, rngs=rngs), jnp.tanh,
            Conv1d(hidden_size, num_outputs, 1, rngs=rngs), LogSoftmax(dim=-1))

    def __call__(self, x):
        """x (N, L, num_inputs) → (N, L, num_outputs). Batched only: unbatched, the slide's
        ``LogSoftmax(dim=1)`` would normalise over L instead of the channels."""
        check_batched(x, "ConvMLP", "(N, L, num_inputs)", self[0].in_features)
        return super().__call__(x)


class TransposedConv1d(ConvTranspose1d):
    """The slide's learnable upsampler: (N, L, C_in) → (N, (L − 1)·stride + kernel_width,
    hidden_size); (1, 2, 1) → (1, 12, 1) with the defaults."""

    def __init__(self, num_channels_in: int = 1, hidden_size: int = 1, kernel_width: int = 8,
                 stride: int = 4, *, rngs: nnx.Rngs):
        check_sizes("TransposedConv1d", num_channels_in=num_channels_in,
                    hidden_size=hidden_size, kernel_width=kernel_width, stride=stride)
        super().__init__(num_channels_in, hidden_size, kernel_width, stride=stride, rngs=rngs)
