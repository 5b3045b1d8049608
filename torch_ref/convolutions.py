"""Slides "Convolutional Layer", "(padding)", "Causal Convolutional Layer",
"Multi-Layer Perceptron" (MLP as a CNN) and "Transposed Convolutional Layer".

Each single-layer slide is a subclass of the torch layer it configures, so its keys are
the slide's ``weight`` / ``bias``. Layout is torch's: (N, C, L).

Fix: the second deck's OCR reads ``NUM CHANNELS_IN`` (a space for the underscore) and one
slide shows a stub ``def build_conv1d(...): pass``; both are the plain ``nn.Conv1d`` of the
first slide, mirrored by :class:`ValidConv1d`.
"""

import torch.nn as nn
import torch.nn.functional as F


class ValidConv1d(nn.Conv1d):
    """``conv1d = nn.Conv1d(1, 1024, 3)``: no padding, (N, 1, 8) → (N, 1024, 6)."""

    def __init__(self, num_channels_in=1, hidden_size=1024, kernel_width=3):
        super().__init__(num_channels_in, hidden_size, kernel_width)


class PaddedConv1d(nn.Conv1d):
    """``nn.Conv1d(..., padding=KERNEL_WIDTH // 2)``: length kept for odd kernels."""

    def __init__(self, num_channels_in=1, hidden_size=1024, kernel_width=3):
        super().__init__(num_channels_in, hidden_size, kernel_width, padding=kernel_width // 2)


class CausalConv1d(nn.Conv1d):
    """``F.pad(x, (KERNEL_WIDTH - 1, 0))`` then the valid ``conv1d``: length kept, no
    output step sees a future input. The slide pads in the caller; here ``forward`` does."""

    def __init__(self, num_channels_in=1, hidden_size=1024, kernel_width=3):
        super().__init__(num_channels_in, hidden_size, kernel_width)
        self.kwidth = kernel_width

    def forward(self, x):
        xpad = F.pad(x, (self.kwidth - 1, 0))
        return super().forward(xpad)


class ConvMLP(nn.Sequential):
    """"MLP as a CNN": kernel-1 ``Conv1d`` layers = a Linear applied at every time step.
    (N, num_inputs, L) → (N, num_outputs, L) log-probs over channels."""

    def __init__(self, num_inputs=100, hidden_size=1024, num_outputs=20):
        super().__init__(
            nn.Conv1d(num_inputs, hidden_size, 1),
            nn.Tanh(),
            nn.Conv1d(hidden_size, hidden_size, 1),
            nn.Tanh(),
            nn.Conv1d(hidden_size, num_outputs, 1),
            nn.LogSoftmax(dim=1),
        )


class TransposedConv1d(nn.ConvTranspose1d):
    """``deconv = nn.ConvTranspose1d(1, 1, 8, stride=4)``: (N, 1, 2) → (N, 1, 12)."""

    def __init__(self, num_channels_in=1, hidden_size=1, kernel_width=8, stride=4):
        super().__init__(num_channels_in, hidden_size, kernel_width, stride=stride)
