"""float16 and bfloat16: the harness's criterion (Flax's error against torch float64 on the
same rounded weights and inputs ≤ 2·torch's + 2·eps, per quantity), the layers whose
half-precision accumulation the issue measured (BatchNorm statistics, AdaptiveAvgPool,
ConvTranspose's matmul path, a bias gradient summed over many positions), bfloat16 tensor
conversion, and the kink rule (gradients measured but not judged; the forward still is)."""

from __future__ import annotations

import dataclasses

import jax
import ml_dtypes
import numpy as np
import pytest
import torch
from flax import nnx

import flax_arch.nn as fnn
from flax_arch.interop import numpy_to_tensor, tensor_to_numpy
from flax_arch.parity import Case, run_case
from flax_arch.parity.harness import accuracy_bound, tolerance

C = "channels"
LOW = ("float16", "bfloat16")


def _assert_judged_pass(r):
    assert r.error is None, r.error
    assert r.ill_posed is None, r.ill_posed
    for group in ("forward", "grad", "state"):
        flax, tch = getattr(r, f"{group}_err"), getattr(r, f"torch_{group}_err")
        assert flax <= accuracy_bound(r.dtype, tch), (group, flax, tch, r.worst)
    assert r.passed, r.worst


# the layers the issue measured less accurate than torch, and a large bias-gradient sum
LAYERS = {
    "batchnorm2d_train": Case(
        "bn", lambda: torch.nn.BatchNorm2d(6), lambda r: fnn.BatchNorm2d(6, rngs=r),
        lambda rng: (3.0 + 2.0 * rng.standard_normal((8, 6, 12, 12)),), [C], [C], train=True),
    "adaptive_avgpool2d": Case(
        "pool", lambda: torch.nn.AdaptiveAvgPool2d((5, 3)), lambda r: fnn.AdaptiveAvgPool2d((5, 3)),
        lambda rng: (1.0 + rng.standard_normal((4, 3, 37, 29)),), [C], [C]),
    "convtranspose2d_matmul": Case(
        "ct", lambda: torch.nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1),
        lambda r: fnn.ConvTranspose2d(16, 8, 4, stride=2, padding=1, method="matmul", rngs=r),
        lambda rng: (rng.standard_normal((2, 16, 9, 11)),), [C], [C]),
    "linear_bias_over_4096_rows": Case(
        "lin", lambda: torch.nn.Linear(8, 4), lambda r: fnn.Linear(8, 4, rngs=r),
        lambda rng: (rng.standard_normal((4096, 8)),)),
}


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_half_precision_layer_is_as_accurate_as_torch(name, dtype):
    _assert_judged_pass(run_case(LAYERS[name], dtype, locate=False))


@pytest.mark.parametrize("dtype", LOW)
def test_a_small_port_error_fails_in_half_precision(dtype):
    """3 % off in the forward (about 4 bfloat16 or 30 float16 ulps) is caught."""
    case = LAYERS["linear_bias_over_4096_rows"]
    bad = dataclasses.replace(case, flax_call=lambda m, x: m(x) * 1.03)
    r = run_case(bad, dtype, locate=False)
    assert r.error is None and not r.passed
    assert r.forward_err > accuracy_bound(dtype, r.torch_forward_err)


def test_kink_cases_report_gradients_but_judge_the_forward():
    """Linear → ReLU over many units in bfloat16: units lie within bfloat16 rounding of 0,
    so gradients are measured, reported and not judged; a forward bug still fails."""
    case = Case("mlp", lambda: torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(),
                                                   torch.nn.Linear(64, 4)),
                lambda r: fnn.Sequential(fnn.Linear(16, 64, rngs=r), jax.nn.relu,
                                         fnn.Linear(64, 4, rngs=r)),
                lambda rng: (rng.standard_normal((256, 16)),))
    r = run_case(case, "bfloat16", locate=False)
    assert r.error is None, r.error
    assert r.ill_posed and "near a kink" in r.ill_posed
    assert r.grad_err > 0 and r.torch_grad_err > 0 and r.passed
    bad = run_case(dataclasses.replace(case, flax_call=lambda m, x: m(x) * 1.05), "bfloat16",
                   locate=False)
    assert not bad.passed and bad.forward_err > accuracy_bound("bfloat16", bad.torch_forward_err)
    assert run_case(case, "float32", locate=False).ill_posed is None  # float32 is judged


def test_bfloat16_tensor_round_trip_is_exact():
    a = np.random.default_rng(1).standard_normal((3, 5)).astype(ml_dtypes.bfloat16)
    t = numpy_to_tensor(a)
    assert t.dtype == torch.bfloat16
    assert np.array_equal(t.float().numpy(), a.astype(np.float32))
    back = tensor_to_numpy(t)
    assert back.dtype == a.dtype and np.array_equal(back.view(np.int16), a.view(np.int16))


def test_tolerance_floor_is_two_eps():
    assert tolerance("bfloat16") == 2 * 2.0 ** -7 and tolerance("float16") == 2 * 2.0 ** -10


# ---------------------------------------------- float32: ill-conditioned quantities

class _TorchShift(torch.nn.Module):
    """(x + 1e4) − 1e4: in float32 each output keeps only ~1e-3 of x's precision."""

    def forward(self, x):
        return (x + 1e4) - 1e4


class _FlaxShift(nnx.Module):
    """The same value rounded another way, (x − 1e4) + 1e4: as inaccurate, not equal."""

    def __call__(self, x):
        return (x - 1e4) + 1e4


class _FlaxScaled(nnx.Module):
    """A real defect on the same ill-conditioned sum: 1e-3 too large."""

    def __call__(self, x):
        return ((x + 1e4) - 1e4) * (1 + 1e-3)


def _shift_case(flax_cls):
    return Case(f"shift_{flax_cls.__name__}", _TorchShift, lambda r: flax_cls(),
                lambda rng: (rng.standard_normal((64,)),))


def test_float32_ill_conditioned_judged_against_float64():
    """Where torch's own float32 result is off the exact one by more than 1e-5, a Flax
    result rounded differently but as accurate passes, and says why."""
    r = run_case(_shift_case(_FlaxShift), "float32", locate=False)
    assert r.error is None, r.error
    assert r.forward_err > tolerance("float32")  # they do differ by more than 1e-5
    assert r.passed, r.ill_conditioned
    assert r.ill_conditioned and "forward output 0" in r.ill_conditioned


def test_float32_defect_still_fails_when_ill_conditioned():
    r = run_case(_shift_case(_FlaxScaled), "float32", locate=False)
    assert not r.passed
    assert "(FAIL)" in r.ill_conditioned


def test_float32_well_conditioned_gets_no_second_judgement():
    """A quantity torch gets right to 1e-5 must match to 1e-5: no fallback."""
    class Off(nnx.Module):
        def __call__(self, x):
            return x * (1 + 3e-5)
    case = Case("off", lambda: torch.nn.Identity(), lambda r: Off(),
                lambda rng: (rng.standard_normal((64,)),))
    r = run_case(case, "float32", locate=False)
    assert not r.passed and "(FAIL)" in (r.ill_conditioned or "")
