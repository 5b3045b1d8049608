"""Array operations shared by the models, independent of any one architecture.

* :mod:`flax_arch.ops.recurrence` — ``c_t = a_t ⊙ c_{t−1} + b_t`` along time
  ('scan', 'associative', 'blocked'), differentiable in forward and reverse mode.
* :mod:`flax_arch.ops.conv` — convolutions as slices and matmuls (im2col, the
  sub-pixel form of a transposed convolution), the forms ``flax_arch.nn`` picks on CPU.
"""

from .conv import conv_patches, conv_transpose_phases, differentiate_as, prefer_patches
from .recurrence import (BLOCKED_CHUNK, METHODS, SCAN_BLOCK_ELEMENTS,
                                fused_linear_recurrence, linear_recurrence, scan_chunk)

__all__ = ["BLOCKED_CHUNK", "METHODS", "SCAN_BLOCK_ELEMENTS", "conv_patches",
           "conv_transpose_phases", "differentiate_as", "fused_linear_recurrence",
           "linear_recurrence",
           "prefer_patches", "scan_chunk"]
