"""Slides "Inception module" / "Network in Network" (GoogLeNet; the slides show only the
figure): the Inception module with dimension reductions of Szegedy et al., "Going deeper
with convolutions", CVPR 2015 (Fig. 2(b); widths as in the paper's Table 1),
channels-last. Every convolution, the 1×1 reductions and projection included, is followed
by a ReLU, as in the paper (Sec. 5)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ..nn import Conv2d, MaxPool2d, Sequential
from ..nn._utils import check_input
from ._checks import check_sizes

__all__ = ["InceptionModule"]


class InceptionModule(nnx.Module):
    """Four parallel branches concatenated along channels (the last axis here; torch's
    ``dim=1``), in this order:

    * ``branch1``: 1×1 conv → ch1x1;
    * ``branch2``: 1×1 conv → ch3x3red, 3×3 conv (padding 1) → ch3x3;
    * ``branch3``: 1×1 conv → ch5x5red, 5×5 conv (padding 2) → ch5x5;
    * ``branch4``: 3×3 max-pool (stride 1, padding 1), 1×1 conv → pool_proj.

    ``__call__(x)``: x (N, H, W, in_channels) or (H, W, in_channels) →
    (N, H, W, ch1x1 + ch3x3 + ch5x5 + pool_proj); the spatial size is kept.

    GoogLeNet's inception (3a): ``InceptionModule(192, 64, 96, 128, 16, 32, 32)``,
    (N, 28, 28, 192) → (N, 28, 28, 256).

    >>> from flax import nnx; import jax.numpy as jnp
    >>> m = InceptionModule(192, 64, 96, 128, 16, 32, 32, rngs=nnx.Rngs(0))
    >>> m(jnp.ones((1, 28, 28, 192))).shape
    (1, 28, 28, 256)
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int,
                 ch5x5red: int, ch5x5: int, pool_proj: int, *, rngs: nnx.Rngs):
        check_sizes("InceptionModule", in_channels=in_channels, ch1x1=ch1x1, ch3x3red=ch3x3red,
                    ch3x3=ch3x3, ch5x5red=ch5x5red, ch5x5=ch5x5, pool_proj=pool_proj)
        self.in_channels = in_channels
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        relu = jax.nn.relu
        self.branch1 = Sequential(Conv2d(in_channels, ch1x1, 1, rngs=rngs), relu)
        self.branch2 = Sequential(
            Conv2d(in_channels, ch3x3red, 1, rngs=rngs), relu,
            Conv2d(ch3x3red, ch3x3, 3, padding=1, rngs=rngs), relu)
        self.branch3 = Sequential(
            Conv2d(in_channels, ch5x5red, 1, rngs=rngs), relu,
            Conv2d(ch5x5red, ch5x5, 5, padding=2, rngs=rngs), relu)
        self.branch4 = Sequential(
            MaxPool2d(3, stride=1, padding=1),
            Conv2d(in_channels, pool_proj, 1, rngs=rngs), relu)

    def __call__(self, x):
        """x (N, H, W, in_channels) → (N, H, W, out_channels), channels-last."""
        check_input(x, name="x", layer="InceptionModule", ranks=(4,),
                    floating=True, layout="(N, H, W, C)", channels=self.in_channels)
        return jnp.concatenate([self.branch1(x), self.branch2(x), self.branch3(x),
                                self.branch4(x)], axis=-1)
