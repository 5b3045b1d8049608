"""Slide "Deep Residual Networks": ``ResLayer``, verbatim.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016: two 3×3
convolution + BatchNorm + ReLU stages, the input added back before the last ReLU.
Layout (N, C, H, W); the output has the input's shape.
"""

import torch.nn as nn


class ResLayer(nn.Module):
    """``forward(x)``: (N, num_inputs, H, W) → (N, num_inputs, H, W),
    ``relu(x + conv2(conv1(x)))``. Keys ``conv{1,2}.0.*`` (Conv2d), ``conv{1,2}.1.*``
    (BatchNorm2d, with running statistics)."""

    def __init__(self, num_inputs):
        super().__init__()
        self.num_inputs = num_inputs
        num_outputs = num_inputs
        self.num_outputs = num_outputs
        self.conv1 = nn.Sequential(
            nn.Conv2d(num_inputs, num_outputs, 3, padding=1),
            nn.BatchNorm2d(num_outputs),
            nn.ReLU(inplace=True)
        )
        self.conv2 = nn.Sequential(
            nn.Conv2d(num_outputs, num_outputs, 3, padding=1),
            nn.BatchNorm2d(num_outputs),
            nn.ReLU(inplace=True)
        )
        self.out_relu = nn.ReLU(inplace=True)

    def forward(self, x):
        # non-linear processing trunk
        conv1_h = self.conv1(x)
        conv2_h = self.conv2(conv1_h)
        # output is result of res connection + non-linear processing
        y = self.out_relu(x + conv2_h)
        return y
