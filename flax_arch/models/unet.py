"""Slide "Skip connections: U-Net" (a picture only) — the U-Net of Ronneberger, Fischer
and Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation", MICCAI 2015.

As in the paper: a contracting path of double 3×3 convolutions + ReLU with 2×2 max-pooling
(channels doubling per level), an expanding path of 2×2 stride-2 "up-convolutions"
(transposed convolutions halving the channels), each followed by concatenation with the
contracting path's feature map at that level and a double 3×3 convolution, and a final
1×1 convolution to the class logits. Changes from the paper, as in most modern ports:

* 3×3 convolutions are padded by 1 ("same"), so the output has the input's height and
  width and no cropping of the skip maps is needed (the paper uses valid convolutions:
  572×572 → 388×388);
* inputs whose sides are not multiples of ``2 ** depth`` are handled: max-pooling floors
  odd sizes, so an upsampled map can be one row/column short of its skip map; it is
  zero-padded to the skip's size (``d // 2`` before, ``d − d // 2`` after, i.e. at the
  bottom/right for the one-pixel case) before the concatenation;
* ``depth`` (number of poolings, 4 in the paper) and ``base_channels`` (64) are
  configurable; ``batch_norm=True`` inserts BatchNorm after each 3×3 convolution (then
  bias-free), a common variant — the paper's network (default) has none. The paper's
  dropout at the end of the contracting path is not included.

Channels-last: (N, H, W, C). The torch twin is ``torch_ref/unet.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ..nn import BatchNorm2d, Conv2d, ConvTranspose2d, MaxPool2d, Sequential
from ..nn._utils import check_bool, check_input
from ._checks import check_sizes

__all__ = ["UNet", "UNetDoubleConv"]


class UNetDoubleConv(Sequential):
    """U-Net level block: (3×3 conv, padding 1 [, BatchNorm], ReLU) × 2.

    ``__call__``: x (N, H, W, in_channels) → (N, H, W, out_channels), channels-last.
    Children (torch ``nn.Sequential`` indices): ``0`` conv, ``1`` ReLU, ``2`` conv, ``3``
    ReLU; with ``batch_norm``: ``0`` conv, ``1`` BN, ``2`` ReLU, ``3`` conv, ``4`` BN, ``5`` ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int, *, batch_norm: bool = False,
                 rngs: nnx.Rngs):
        layers = []
        for cin in (in_channels, out_channels):
            layers.append(Conv2d(cin, out_channels, 3, padding=1, bias=not batch_norm,
                                 rngs=rngs))
            if batch_norm:
                layers.append(BatchNorm2d(out_channels))
            layers.append(jax.nn.relu)
        super().__init__(*layers)


class UNet(nnx.Module):
    """2-D U-Net (Ronneberger et al. 2015) with same-size output.

    ``__call__``: x (N, H, W, in_channels) channels-last → logits (N, H, W, out_channels);
    any H, W ≥ ``2 ** depth`` (not only multiples of it, see the module docstring).
    Channels per level: ``base_channels · 2**i``, i = 0 … depth (the paper: 64 … 1024).

    Variables (torch keys): ``encoder.i`` / ``decoder.i`` (:class:`UNetDoubleConv`, decoder
    ordered from the bottom up), ``bottleneck``, ``upconvs.i`` (2×2 stride-2
    ConvTranspose2d), ``head`` (1×1 Conv2d).

    >>> from flax import nnx; import jax.numpy as jnp
    >>> UNet(1, 2, base_channels=8, depth=3, rngs=nnx.Rngs(0))(jnp.ones((1, 37, 50, 1))).shape
    (1, 37, 50, 2)
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, base_channels: int = 64,
                 depth: int = 4, *, batch_norm: bool = False, rngs: nnx.Rngs):
        check_sizes("UNet", in_channels=in_channels, out_channels=out_channels,
                    base_channels=base_channels, depth=depth)
        check_bool(batch_norm, "batch_norm", "UNet")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.base_channels, self.depth = base_channels, depth
        chans = [base_channels * 2 ** i for i in range(depth + 1)]
        bn = batch_norm
        self.encoder = nnx.List([
            UNetDoubleConv(in_channels if i == 0 else chans[i - 1], chans[i], batch_norm=bn,
                           rngs=rngs) for i in range(depth)])
        self.pool = MaxPool2d(2)
        self.bottleneck = UNetDoubleConv(chans[depth - 1], chans[depth], batch_norm=bn,
                                         rngs=rngs)
        levels = list(reversed(range(depth)))  # bottom-up: depth − 1, …, 0
        self.upconvs = nnx.List([ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2,
                                                 rngs=rngs) for i in levels])
        # input: skip (chans[i]) ⧺ upsampled (chans[i]) channels
        self.decoder = nnx.List([UNetDoubleConv(2 * chans[i], chans[i], batch_norm=bn,
                                                rngs=rngs) for i in levels])
        self.head = Conv2d(chans[0], out_channels, 1, rngs=rngs)

    def __call__(self, x):
        """x (N, H, W, in_channels), channels-last → (N, H, W, out_channels) logits."""
        check_input(x, name="x", layer="UNet", ranks=(4,), layout="(N, H, W, in_channels)",
                    floating=True, channels=self.in_channels)
        h_in, w_in = x.shape[1:3]
        if min(h_in, w_in) < 2 ** self.depth:
            raise ValueError(f"UNet: x (N, H, W, C) must have H, W >= 2 ** depth = "
                             f"{2 ** self.depth} (one pixel after {self.depth} 2×2 poolings), "
                             f"got shape {tuple(x.shape)}")
        skips = []
        h = x
        for block in self.encoder:
            h = block(h)
            skips.append(h)
            h = self.pool(h)  # (N, H, W, C) → (N, ⌊H/2⌋, ⌊W/2⌋, C)
        h = self.bottleneck(h)
        for up, block in zip(self.upconvs, self.decoder):
            skip = skips.pop()
            h = up(h)  # (N, h, w, 2C) → (N, 2h, 2w, C)
            dh, dw = skip.shape[1] - h.shape[1], skip.shape[2] - h.shape[2]
            if dh or dw:  # odd skip size: zero-pad to (N, H_skip, W_skip, C)
                h = jnp.pad(h, ((0, 0), (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2),
                                (0, 0)))
            h = jnp.concatenate([skip, h], axis=-1)  # torch.cat([skip, h], dim=1)
            h = block(h)
        return self.head(h)
