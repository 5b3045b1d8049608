"""Slide "Deep Residual Networks": ``ResLayer`` (He et al., "Deep Residual Learning for
Image Recognition", CVPR 2016), channels-last: the slide's (N, C, H, W) is (N, H, W, C)."""

from __future__ import annotations

import jax
from flax import nnx

from ..nn import BatchNorm2d, Conv2d, Sequential
from ..nn._utils import check_input
from ._checks import check_sizes

__all__ = ["ResLayer"]


class ResLayer(nnx.Module):
    """Residual block: ``relu(x + conv2(conv1(x)))`` where each ``conv`` is a 3×3
    convolution (padding 1, so the spatial size is kept), BatchNorm2d and ReLU.

    ``__call__(x)``: x (N, H, W, num_inputs) → (N, H, W, num_inputs). BatchNorm follows the
    module's mode: train (the default, as in torch) uses batch statistics and updates the
    running ones; ``model.eval()`` uses the running statistics.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> ResLayer(64, rngs=nnx.Rngs(0))(jnp.ones((2, 10, 10, 64))).shape
    (2, 10, 10, 64)
    """

    def __init__(self, num_inputs: int, *, rngs: nnx.Rngs):
        check_sizes("ResLayer", num_inputs=num_inputs)
        self.num_inputs = num_inputs
        num_outputs = num_inputs
        self.num_outputs = num_outputs
        self.conv1 = Sequential(
            Conv2d(num_inputs, num_outputs, 3, padding=1, rngs=rngs),
            BatchNorm2d(num_outputs),
            jax.nn.relu)
        self.conv2 = Sequential(
            Conv2d(num_outputs, num_outputs, 3, padding=1, rngs=rngs),
            BatchNorm2d(num_outputs),
            jax.nn.relu)
        self.out_relu = jax.nn.relu

    def __call__(self, x):
        """x (N, H, W, num_inputs) → (N, H, W, num_inputs)."""
        check_input(x, name="x", layer="ResLayer", ranks=(4,), layout="(N, H, W, C)",
                    floating=True, channels=self.num_inputs)
        # non-linear processing trunk
        conv1_h = self.conv1(x)
        conv2_h = self.conv2(conv1_h)
        # residual connection, then the output non-linearity
        return self.out_relu(x + conv2_h)
