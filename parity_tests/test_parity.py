"""Every registered case in every dtype: forward outputs, gradients w.r.t. inputs and all
parameters, and the state after the step, against the torch reference, which is the
independent oracle. float64 ≤ 1e-12 and float32 ≤ 1e-5, Flax against torch; float16 and
bfloat16, both against torch in float64, Flax ≤ 2·torch + 2·eps per quantity
(:func:`flax_arch.parity.harness.accuracy_bound`)."""

import os

import pytest

from flax_arch.parity import run_case
from flax_arch.parity.harness import DTYPES, LOW_PRECISION
from flax_arch.parity.registry import all_cases

#: ``FLAX_ARCH_FULL_PARITY=1``: the slide-size cases in half precision too. By default they
#: run here in float64 and float32 only, which keeps the suite inside CI's 30 minutes on a
#: 2-core machine; ``flax-arch parity`` (the README's main job) runs every case in all four
#: dtypes, and every other case runs here in all four.
_FULL = os.environ.get("FLAX_ARCH_FULL_PARITY", "") not in ("", "0")


def _dtypes(case) -> tuple[str, ...]:
    if "slow" in case.tags and not _FULL:
        return tuple(d for d in DTYPES if d not in LOW_PRECISION)
    return DTYPES


PARAMS = [pytest.param(case, dtype, id=f"{case.name}-{dtype}",
                       marks=[pytest.mark.slow] if "slow" in case.tags else [])
          for case in all_cases() for dtype in _dtypes(case)]


@pytest.mark.parametrize("case,dtype", PARAMS)
def test_parity(case, dtype):
    r = run_case(case, dtype)
    assert r.error is None, r.error
    assert r.passed, (f"{case.name} [{dtype}]: forward {r.forward_err:.2e}, grad "
                      f"{r.grad_err:.2e}, state {r.state_err:.2e} (torch {r.torch_forward_err:.2e}, "
                      f"{r.torch_grad_err:.2e}, {r.torch_state_err:.2e}) tol {r.tol:.0e}; worst "
                      f"{r.worst}; first diverging layer: {r.diverged_at}")
