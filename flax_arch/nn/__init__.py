"""Torch-semantics layers: torch's argument names and defaults, channels-last layouts.

Each layer tags its variables with the torch name (and layout) they correspond to, so
:mod:`flax_arch.interop` converts any model built from them, without per-model tables.
"""

from .activation import LeakyReLU, LogSoftmax, Softmax
from .containers import Sequential
from .conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, causal_pad
from .embedding import Embedding
from .linear import Identity, Linear
from .norm import BatchNorm1d, BatchNorm2d
from .recurrent import GRU, LSTM, RNN
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, MaxPool1d, MaxPool2d,
                      adaptive_bins, pool_output_size)
from flax.nnx import Dropout  # torch's inverted dropout already; `deterministic` = eval mode

__all__ = [
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv1d", "Conv2d",
    "ConvTranspose1d", "ConvTranspose2d", "Dropout", "Embedding", "GRU", "Identity", "LSTM",
    "LeakyReLU",
    "Linear", "LogSoftmax", "MaxPool1d", "MaxPool2d", "RNN", "Sequential", "Softmax",
    "adaptive_bins", "causal_pad", "pool_output_size",
]
