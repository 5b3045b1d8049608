"""Array operations shared by the models, independent of any one architecture.

* :mod:`flax_arch.ops.recurrence` — ``c_t = a_t ⊙ c_{t−1} + b_t`` along time
  ('scan', 'associative', 'blocked'), differentiable in forward and reverse mode.
"""

from .recurrence import (BLOCKED_CHUNK, METHODS, SCAN_BLOCK_ELEMENTS,
                                fused_linear_recurrence, linear_recurrence, scan_chunk)

__all__ = ["BLOCKED_CHUNK", "METHODS", "SCAN_BLOCK_ELEMENTS", "fused_linear_recurrence",
           "linear_recurrence", "scan_chunk"]
