"""Torch-semantics layers: torch's argument names and defaults, channels-last layouts.

One family per file: ``linear`` (Linear, Bilinear, Identity), ``conv``, ``pooling``,
``padding``, ``norm``, ``activation``, ``embedding``, ``recurrent`` (RNN/LSTM/GRU and their
cells), ``attention`` (MultiheadAttention), ``transformer``, ``loss``, ``ctc`` (CTCLoss),
``containers``. Each layer tags its variables with the torch name (and layout) they
correspond to, so :mod:`flax_arch.interop` converts any model built from them, without
per-model tables. Which torch.nn classes have a twin, and how PyTorch's own module tests
(``module_db``) fare against them: ``docs/module_db.md``.
"""

from .linear import (Bilinear, Identity, Linear)
from .conv import (Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d,
                   ConvTranspose3d, causal_pad)
from .pooling import (MaxPool1d, MaxPool2d, MaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d,
                      MaxUnpool1d, MaxUnpool2d, MaxUnpool3d, AdaptiveAvgPool1d,
                      AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool1d,
                      AdaptiveMaxPool2d, AdaptiveMaxPool3d, LPPool1d, LPPool2d,
                      LPPool3d, pool_output_size, adaptive_bins, index_dtype)
from .padding import (ConstantPad1d, ConstantPad2d, ConstantPad3d, ZeroPad1d, ZeroPad2d,
                      ZeroPad3d, ReflectionPad1d, ReflectionPad2d, ReflectionPad3d,
                      ReplicationPad1d, ReplicationPad2d, ReplicationPad3d,
                      CircularPad1d, CircularPad2d, CircularPad3d)
from .norm import (BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm1d,
                   InstanceNorm2d, InstanceNorm3d, GroupNorm, LayerNorm, RMSNorm,
                   LocalResponseNorm)
from .activation import (LogSoftmax, Softmax, Softmin, Softmax2d, LeakyReLU, ReLU,
                         ReLU6, Threshold, Hardtanh, Hardshrink, Softshrink, Hardswish,
                         ELU, CELU, SELU, GELU, GLU, Mish, SiLU, PReLU, LogSigmoid,
                         Sigmoid, Tanh, Tanhshrink, Softplus, Softsign)
from .embedding import (Embedding)
from .recurrent import (GRU, GRUCell, LSTM, LSTMCell, RNN, RNNCell)
from .attention import (MultiheadAttention)
from .transformer import (Transformer, TransformerEncoder, TransformerDecoder,
                          TransformerEncoderLayer, TransformerDecoderLayer,
                          generate_square_subsequent_mask)
from .loss import (L1Loss, MSELoss, SmoothL1Loss, HuberLoss, SoftMarginLoss, BCELoss,
                   BCEWithLogitsLoss, KLDivLoss, PoissonNLLLoss, GaussianNLLLoss,
                   MarginRankingLoss, HingeEmbeddingLoss, CosineEmbeddingLoss,
                   MultiLabelMarginLoss, MultiLabelSoftMarginLoss, MultiMarginLoss,
                   NLLLoss, CrossEntropyLoss)
from .ctc import (CTCLoss, ctc_loss)
from .containers import (Sequential)
from flax.nnx import Dropout  # torch's inverted dropout already; `deterministic` = eval mode

__all__ = ['AdaptiveAvgPool1d', 'AdaptiveAvgPool2d', 'AdaptiveAvgPool3d',
    'AdaptiveMaxPool1d', 'AdaptiveMaxPool2d', 'AdaptiveMaxPool3d', 'AvgPool1d', 'AvgPool2d',
    'AvgPool3d', 'BCELoss', 'BCEWithLogitsLoss', 'BatchNorm1d', 'BatchNorm2d',
    'BatchNorm3d', 'Bilinear', 'CELU', 'CTCLoss', 'CircularPad1d', 'CircularPad2d',
    'CircularPad3d', 'ConstantPad1d', 'ConstantPad2d', 'ConstantPad3d', 'Conv1d', 'Conv2d',
    'Conv3d', 'ConvTranspose1d', 'ConvTranspose2d', 'ConvTranspose3d',
    'CosineEmbeddingLoss', 'CrossEntropyLoss', 'Dropout', 'ELU', 'Embedding', 'GELU', 'GLU',
    'GRU', 'GRUCell', 'GaussianNLLLoss', 'GroupNorm', 'Hardshrink', 'Hardswish', 'Hardtanh',
    'HingeEmbeddingLoss', 'HuberLoss', 'Identity', 'InstanceNorm1d', 'InstanceNorm2d',
    'InstanceNorm3d', 'KLDivLoss', 'L1Loss', 'LPPool1d', 'LPPool2d', 'LPPool3d', 'LSTM',
    'LSTMCell', 'LayerNorm', 'LeakyReLU', 'Linear', 'LocalResponseNorm', 'LogSigmoid',
    'LogSoftmax', 'MSELoss', 'MarginRankingLoss', 'MaxPool1d', 'MaxPool2d', 'MaxPool3d',
    'MaxUnpool1d', 'MaxUnpool2d', 'MaxUnpool3d', 'Mish', 'MultiLabelMarginLoss',
    'MultiLabelSoftMarginLoss', 'MultiMarginLoss', 'MultiheadAttention', 'NLLLoss', 'PReLU',
    'PoissonNLLLoss', 'RMSNorm', 'RNN', 'RNNCell', 'ReLU', 'ReLU6', 'ReflectionPad1d',
    'ReflectionPad2d', 'ReflectionPad3d', 'ReplicationPad1d', 'ReplicationPad2d',
    'ReplicationPad3d', 'SELU', 'Sequential', 'SiLU', 'Sigmoid', 'SmoothL1Loss',
    'SoftMarginLoss', 'Softmax', 'Softmax2d', 'Softmin', 'Softplus', 'Softshrink',
    'Softsign', 'Tanh', 'Tanhshrink', 'Threshold', 'Transformer', 'TransformerDecoder',
    'TransformerDecoderLayer', 'TransformerEncoder', 'TransformerEncoderLayer', 'ZeroPad1d',
    'ZeroPad2d', 'ZeroPad3d', 'adaptive_bins', 'causal_pad', 'ctc_loss',
    'generate_square_subsequent_mask', 'index_dtype', 'pool_output_size']
