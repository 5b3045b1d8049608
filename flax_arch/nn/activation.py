"""Parameter-free torch activation modules whose behaviour depends on an axis.

Elementwise activations (``jnp.tanh``, ``jax.nn.relu``, ``jax.nn.sigmoid`` …) are used as
plain functions. ``LogSoftmax`` / ``Softmax`` keep torch's ``dim`` argument, but remember
the layout: torch's ``LogSoftmax(dim=1)`` over (N, C, L) is ``LogSoftmax(dim=-1)`` over the
channels-last (N, L, C).
"""

from __future__ import annotations

import jax
from flax import nnx

from ._utils import in_opmath

__all__ = ["LogSoftmax", "Softmax", "LeakyReLU"]


class LogSoftmax(nnx.Module):
    """Torch ``nn.LogSoftmax(dim)``: log-softmax along axis ``dim``; shape unchanged."""

    def __init__(self, dim: int):
        self.dim = dim

    @in_opmath  # float32 sums and logs in half precision, as torch
    def __call__(self, x):
        return jax.nn.log_softmax(x, axis=self.dim)


class Softmax(nnx.Module):
    """Torch ``nn.Softmax(dim)``: softmax along axis ``dim``; shape unchanged."""

    def __init__(self, dim: int):
        self.dim = dim

    @in_opmath
    def __call__(self, x):
        return jax.nn.softmax(x, axis=self.dim)


class LeakyReLU(nnx.Module):
    """Torch ``nn.LeakyReLU(negative_slope=0.01)``; shape unchanged."""

    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = negative_slope

    def __call__(self, x):
        return jax.nn.leaky_relu(x, self.negative_slope)
