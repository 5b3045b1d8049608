"""Slide "Skip connections: U-Net" shows only the figure of Ronneberger, Fischer and Brox,
"U-Net: Convolutional Networks for Biomedical Image Segmentation" (MICCAI 2015); there is
no slide code. This is a torch U-Net written for this project as the reference of
:class:`flax_arch.models.unet.UNet` (same attribute names, hence the same state_dict keys).
Layout is torch's: (N, C, H, W).

Paper structure — double 3×3 conv + ReLU per level, 2×2 max-pool down, 2×2 stride-2
transposed conv up (halving channels), concatenation ``[skip, upsampled]`` on the channel
axis, final 1×1 conv — with same-size output: 3×3 convolutions use ``padding=1``, and when
a side is not a multiple of ``2 ** depth`` the upsampled map (one row/column short after a
floored pooling) is zero-padded to its skip's size with ``F.pad`` (``d // 2`` before,
``d − d // 2`` after) instead of cropping the skip as the paper does. ``batch_norm=True``
is the common Conv-BN-ReLU variant (bias-free convs); default off, as in the paper.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class UNetDoubleConv(nn.Sequential):
    """(3×3 conv, padding 1 [, BatchNorm2d], ReLU) × 2: (N, C_in, H, W) → (N, C_out, H, W)."""

    def __init__(self, in_channels, out_channels, *, batch_norm=False):
        layers = []
        for cin in (in_channels, out_channels):
            layers.append(nn.Conv2d(cin, out_channels, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class UNet(nn.Module):
    """(N, in_channels, H, W) → logits (N, out_channels, H, W), any H, W ≥ 2 ** depth."""

    def __init__(self, in_channels=1, out_channels=2, base_channels=64, depth=4, *,
                 batch_norm=False):
        super().__init__()
        chans = [base_channels * 2 ** i for i in range(depth + 1)]
        self.encoder = nn.ModuleList([
            UNetDoubleConv(in_channels if i == 0 else chans[i - 1], chans[i],
                           batch_norm=batch_norm) for i in range(depth)])
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = UNetDoubleConv(chans[depth - 1], chans[depth], batch_norm=batch_norm)
        levels = list(reversed(range(depth)))
        self.upconvs = nn.ModuleList([nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2)
                                      for i in levels])
        self.decoder = nn.ModuleList([UNetDoubleConv(2 * chans[i], chans[i],
                                                     batch_norm=batch_norm) for i in levels])
        self.head = nn.Conv2d(chans[0], out_channels, 1)

    def forward(self, x):
        skips = []
        h = x
        for block in self.encoder:
            h = block(h)
            skips.append(h)
            h = self.pool(h)
        h = self.bottleneck(h)
        for up, block in zip(self.upconvs, self.decoder):
            skip = skips.pop()
            h = up(h)
            dh, dw = skip.shape[2] - h.shape[2], skip.shape[3] - h.shape[3]
            h = F.pad(h, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
            h = torch.cat([skip, h], dim=1)
            h = block(h)
        return self.head(h)
