"""Cross-framework parity tools: run a torch module and its Flax port on the same inputs
and weights, and compare outputs, gradients, buffers and optimizer steps.

* :func:`assert_parity` — one call for a port of your own (raises with the report);
* :class:`Case` / :func:`run_case` — the harness behind it and behind ``flax-arch parity``;
* :mod:`flax_arch.parity.registry` — the project's own cases.

Torch is imported only when these tools run, never by ``import flax_arch``.
"""

from .check import ParityReport, assert_parity, compare_steps
from .harness import Case, CaseResult, prepare, relative_error, run_case, tolerance

__all__ = ["Case", "CaseResult", "ParityReport", "assert_parity", "compare_steps", "prepare",
           "relative_error", "run_case", "tolerance"]
