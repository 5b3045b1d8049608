"""Cross-framework parity tools: run a torch module and its Flax port on the same inputs
and weights, and compare outputs, gradients and buffers.

Torch is imported only when these tools run, never by ``import flax_arch``.
"""

from .harness import Case, CaseResult, relative_error, run_case, tolerance

__all__ = ["Case", "CaseResult", "relative_error", "run_case", "tolerance"]
