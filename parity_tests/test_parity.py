"""Every registered case, in float64 (≤ 1e-12) and float32 (≤ 1e-5): forward outputs,
gradients w.r.t. inputs and all parameters, and the state after the step — Flax against
the torch reference, which is the independent oracle."""

import pytest

from flax_arch.parity import run_case
from flax_arch.parity.registry import all_cases

PARAMS = [pytest.param(case, dtype, id=f"{case.name}-{dtype}",
                       marks=[pytest.mark.slow] if "slow" in case.tags else [])
          for case in all_cases() for dtype in ("float64", "float32")]


@pytest.mark.parametrize("case,dtype", PARAMS)
def test_parity(case, dtype):
    r = run_case(case, dtype)
    assert r.error is None, r.error
    assert r.passed, (f"{case.name} [{dtype}]: forward {r.forward_err:.2e}, grad "
                      f"{r.grad_err:.2e}, state {r.state_err:.2e} > {r.tol:.0e}; worst "
                      f"{r.worst}; first diverging layer: {r.diverged_at}")
