"""A case set up for timing: the harness's :func:`~flax_arch.parity.harness.prepare` in
float32, plus what both timed sides share — a copy of the reference's initial weights,
the fixed random cotangents of the train step (in each side's layout) and the loss.

Nothing here seeds, builds or loads on its own: that is ``prepare``'s job, shared with the
parity harness, so the bench times exactly the modules the parity suite proves equal.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any


from ..parity.harness import Case, Prepared, prepare

__all__ = ["BenchCase", "prepare_bench", "loss_of"]

#: the bench times float32 (jax's default; x64 is never enabled here)
DTYPE = "float32"


@dataclasses.dataclass
class BenchCase:
    """``prep``: the harness's set-up; ``state_dict``: a deep copy of the reference's
    weights and buffers taken before anything ran (a fresh torch module per timing starts
    from it); ``flax_cots`` / ``torch_cots``: one cotangent per output (``None`` for a
    non-float output), in the Flax layout (jax arrays) and torch's (tensors on device)."""

    prep: Prepared
    state_dict: dict
    flax_cots: list
    torch_cots: list

    @property
    def case(self) -> Case:
        return self.prep.case

    @property
    def n_params(self) -> int:
        return int(sum(p.numel() for p in self.prep.torch_module.parameters()))


def prepare_bench(case: Case) -> BenchCase:
    """Set ``case`` up for timing (float32, on the harness's torch device)."""
    prep = prepare(case, DTYPE)
    state_dict = copy.deepcopy(prep.torch_module.state_dict())
    return BenchCase(prep, state_dict, *prep.output_cotangents())


def loss_of(outs: list, cots: list) -> Any:
    """``Σ_i <out_i, g_i>`` over the outputs with a cotangent (jax or torch arrays)."""
    terms = [(o * c).sum() for o, c in zip(outs, cots) if c is not None]
    if not terms:
        raise ValueError("no floating-point output to differentiate")
    return sum(terms[1:], terms[0])
