"""Array operations shared by the models, independent of any one architecture.

* :mod:`flax_arch.ops.recurrence` — ``c_t = a_t ⊙ c_{t−1} + b_t`` along time
  ('scan', 'associative', 'blocked'), differentiable in forward and reverse mode.
* :mod:`flax_arch.ops.conv` — convolutions as slices and matmuls (im2col, the
  sub-pixel form of a transposed convolution), the forms ``flax_arch.nn`` picks on CPU.
* :mod:`flax_arch.ops.lstm` — the LSTM recurrence with a hand-written JVP.
* :mod:`flax_arch.ops.ctc` — the CTC alpha/beta recursions and torch's CTC gradient.
* :mod:`flax_arch.ops.elementwise` — ``with_slope`` (torch's backward formula as the
  derivative) and ``torch_tanh`` (tanh rounded as torch's).
"""

from .elementwise import torch_tanh, with_slope
from .conv import conv_patches, conv_transpose_phases, differentiate_as, prefer_patches
from .recurrence import (BLOCKED_CHUNK, METHODS, SCAN_BLOCK_ELEMENTS,
                                fused_linear_recurrence, linear_recurrence, scan_chunk)

__all__ = ["BLOCKED_CHUNK", "METHODS", "SCAN_BLOCK_ELEMENTS", "conv_patches",
           "conv_transpose_phases", "differentiate_as", "fused_linear_recurrence",
           "linear_recurrence",
           "prefer_patches", "scan_chunk", "torch_tanh", "with_slope"]
