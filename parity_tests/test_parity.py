"""Every registered case in every dtype: forward outputs, gradients w.r.t. inputs and all
parameters, and the state after the step, against the torch reference, which is the
independent oracle. float64 ≤ 1e-12 and float32 ≤ 1e-5, Flax against torch; float16 and
bfloat16, both against torch in float64, Flax ≤ 2·torch + 2·eps per quantity
(:func:`flax_arch.parity.harness.accuracy_bound`)."""

import pytest

from flax_arch.parity import run_case
from flax_arch.parity.harness import DTYPES
from flax_arch.parity.registry import all_cases

PARAMS = [pytest.param(case, dtype, id=f"{case.name}-{dtype}",
                       marks=[pytest.mark.slow] if "slow" in case.tags else [])
          for case in all_cases() for dtype in DTYPES]


@pytest.mark.parametrize("case,dtype", PARAMS)
def test_parity(case, dtype):
    r = run_case(case, dtype)
    assert r.error is None, r.error
    assert r.passed, (f"{case.name} [{dtype}]: forward {r.forward_err:.2e}, grad "
                      f"{r.grad_err:.2e}, state {r.state_err:.2e} (torch {r.torch_forward_err:.2e}, "
                      f"{r.torch_grad_err:.2e}, {r.torch_state_err:.2e}) tol {r.tol:.0e}; worst "
                      f"{r.worst}; first diverging layer: {r.diverged_at}")
