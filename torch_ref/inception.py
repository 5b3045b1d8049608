"""Slides "Inception module" / "Network in Network" (GoogLeNet): the slides show only the
figure, so this is the module as described in Szegedy et al., "Going deeper with
convolutions", CVPR 2015 (Fig. 2(b), "Inception module with dimension reductions";
the per-module widths are the paper's Table 1 columns).

Four parallel branches over the same input, concatenated along the channel axis:

* ``branch1``: 1×1 convolution (``#1×1``);
* ``branch2``: 1×1 reduction (``#3×3 reduce``) → 3×3 convolution, padding 1 (``#3×3``);
* ``branch3``: 1×1 reduction (``#5×5 reduce``) → 5×5 convolution, padding 2 (``#5×5``);
* ``branch4``: 3×3 max-pooling, stride 1, padding 1 → 1×1 projection (``pool proj``).

The paper applies a rectified linear activation after every convolution, those inside
the Inception modules included (Sec. 5), so the reductions and the projection are
followed by a ReLU too. Layout (N, C, H, W); spatial size is kept.
"""

import torch
import torch.nn as nn


class InceptionModule(nn.Module):
    """``forward(x)``: (N, in_channels, H, W) → (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W).

    Keys: ``branch1.0.*``; ``branch2.{0,2}.*``; ``branch3.{0,2}.*``; ``branch4.1.*``.
    GoogLeNet's inception (3a) is ``InceptionModule(192, 64, 96, 128, 16, 32, 32)`` on
    28×28 maps → 256 channels.
    """

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = nn.Sequential(
            nn.Conv2d(in_channels, ch1x1, kernel_size=1),
            nn.ReLU(inplace=True),
        )
        self.branch2 = nn.Sequential(
            nn.Conv2d(in_channels, ch3x3red, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch3x3red, ch3x3, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.branch3 = nn.Sequential(
            nn.Conv2d(in_channels, ch5x5red, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch5x5red, ch5x5, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            nn.Conv2d(in_channels, pool_proj, kernel_size=1),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x),
                          self.branch4(x)], dim=1)
