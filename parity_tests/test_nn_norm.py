"""Normalisation layers against torch: BatchNorm1d/2d/3d (with ``bias=False``),
InstanceNorm1d/2d/3d, GroupNorm, LayerNorm, RMSNorm, LocalResponseNorm.

module_db (parity_tests/module_db.py) covers torch's own inputs; here hypothesis fuzzes the
hyper-parameters it does not reach (float64 within 1e-12, a third of the examples in
float32 within 1e-5), with random affine parameters and running statistics, in train and
eval mode; then unbatched inputs, multi-step running-statistic updates, empty inputs and
the errors for bad arguments and bad input shapes.
"""

from __future__ import annotations

import math
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from flax_arch.interop import load_torch_state_dict, to_torch_state_dict
from flax_arch.nn import norm as fnorm
from flax_arch.parity import Case

from .test_layers import C, check, fuzz, inputs, seeds, float32_too


def _randomize(layer):
    """Random affine parameters and running statistics, so eval mode and bias are
    non-trivial (torch initialises them to ones / zeros)."""
    with torch.no_grad():
        for name in ("weight", "bias"):
            p = getattr(layer, name, None)
            if p is not None:
                p.normal_()
        if getattr(layer, "running_mean", None) is not None:
            layer.running_mean.normal_()
            layer.running_var.uniform_(0.5, 2.0)
    return layer


def _well_posed(n: int, eps: float) -> bool:
    """Batch statistics over 2 values with a small eps give ±1 whatever the input, so the
    gradient is pure rounding noise no tolerance can compare."""
    return n > 2 or eps >= 0.1


def _to_flax(a):  # torch (N, C, *spatial) → channels-last; (N, C) stays
    return np.moveaxis(a, 1, -1) if a.ndim >= 3 else a


def _to_torch(a):
    return np.moveaxis(a, -1, 1) if a.ndim >= 3 else a


# ------------------------------------------------------------------------ BatchNorm

@st.composite
def bn_configs(draw):
    kind = draw(st.sampled_from(["1d", "3d", "3d", "2d"]))
    c, batch = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rank = {"1d": draw(st.integers(0, 1)), "2d": 2, "3d": 3}[kind]
    spatial = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    train, track = draw(st.booleans()), draw(st.booleans())
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.1]))
    if train or not track:
        assume(_well_posed(batch * math.prod(spatial), eps))
        assume(batch * math.prod(spatial) > 1)
    kw = dict(eps=eps, momentum=draw(st.one_of(st.none(), st.floats(0.01, 1.0))),
              affine=draw(st.booleans()), track_running_stats=track, bias=draw(st.booleans()))
    return kind, c, batch, spatial, train, kw


@pytest.mark.fuzz
@fuzz(8)
@given(bn_configs(), seeds, float32_too)
def test_batchnorm_3d_and_bias(cfg, seed, f32):
    kind, c, batch, spatial, train, kw = cfg
    name = f"BatchNorm{kind}"
    layout = [C] if spatial else [None]
    check(Case(f"{name}({c}, {kw}) on {(batch, c, *spatial)} {'train' if train else 'eval'}",
               lambda: _randomize(getattr(torch.nn, name)(c, **kw)),
               lambda r: getattr(fnorm, name)(c, **kw, rngs=r),
               inputs((batch, c, *spatial)), layout, layout, train=train, seed=seed), f32)


def test_batchnorm_bias_false_keeps_weight():
    """torch 2.13's keyword-only ``bias=False``: the weight stays, the bias is None."""
    t = torch.nn.BatchNorm3d(4, bias=False)
    f = fnorm.BatchNorm3d(4, bias=False)
    assert t.bias is None and f.bias is None and f.scale is not None
    assert set(to_torch_state_dict(f)) == set(t.state_dict())
    f2 = fnorm.BatchNorm1d(4, affine=False, bias=False)
    assert f2.scale is None and f2.bias is None


# --------------------------------------------------------------------- InstanceNorm

@st.composite
def in_configs(draw):
    n = draw(st.integers(1, 3))
    c, batch = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 4)) for _ in range(n))
    train, track = draw(st.booleans()), draw(st.booleans())
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.1, 0.0]))
    if train or not track:
        assume(math.prod(spatial) > 1 and _well_posed(math.prod(spatial), eps))
        assume(eps > 0 or math.prod(spatial) > 2)
    kw = dict(eps=eps, momentum=draw(st.one_of(st.none(), st.floats(0.01, 1.0))),
              affine=draw(st.booleans()), track_running_stats=track, bias=draw(st.booleans()))
    return n, c, batch, spatial, train, kw


@pytest.mark.fuzz
@fuzz(10)
@given(in_configs(), seeds, float32_too)
def test_instancenorm(cfg, seed, f32):
    n, c, batch, spatial, train, kw = cfg
    name = f"InstanceNorm{n}d"
    check(Case(f"{name}({c}, {kw}) on {(batch, c, *spatial)} {'train' if train else 'eval'}",
               lambda: _randomize(getattr(torch.nn, name)(c, **kw)),
               lambda r: getattr(fnorm, name)(c, **kw, rngs=r),
               inputs((batch, c, *spatial)), [C], [C], train=train, seed=seed), f32)


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("momentum", [0.3, None])
def test_instancenorm_steps_and_unbatched(n, momentum):
    """Train steps (batched, unbatched, batched) then eval steps, torch and Flax in
    lockstep (float64): outputs and every buffer after each step. torch keeps
    num_batches_tracked at 0 and momentum=None freezes the running statistics."""
    torch.manual_seed(n)
    kw = dict(eps=1e-3, momentum=momentum, affine=True, track_running_stats=True)
    t = _randomize(getattr(torch.nn, f"InstanceNorm{n}d")(3, **kw)).double().train()
    f = getattr(fnorm, f"InstanceNorm{n}d")(3, **kw)
    load_torch_state_dict(f, t.state_dict())
    rng = np.random.default_rng(n)
    spatial = (4, 3, 2)[:n]
    for step, batched in enumerate([True, False, True, False, True]):
        if step == 3:
            t.eval()
            f.eval()
        x = rng.standard_normal(((2,) if batched else ()) + (3, *spatial)) * (step + 1) + step
        want = t(torch.as_tensor(x)).detach().numpy()
        axis = 1 if batched else 0
        got = np.moveaxis(np.asarray(f(jnp.asarray(np.moveaxis(x, axis, -1)))), -1, axis)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"step {step}")
        f_state, t_state = to_torch_state_dict(f), t.state_dict()
        assert set(f_state) == set(t_state)
        for k, v in t_state.items():
            np.testing.assert_allclose(f_state[k], v.numpy(), rtol=1e-12, atol=1e-12,
                                       err_msg=f"{k} after step {step}")


def test_instancenorm_channel_mismatch_warns_without_affine():
    """torch only warns when C ≠ num_features and num_features is unused."""
    x = np.random.default_rng(0).standard_normal((2, 5, 4))
    with pytest.warns(UserWarning, match="num_features"):
        want = torch.nn.InstanceNorm1d(3)(torch.as_tensor(x)).numpy()
    with pytest.warns(UserWarning, match="num_features"):
        got = fnorm.InstanceNorm1d(3)(jnp.asarray(_to_flax(x)))
    np.testing.assert_allclose(_to_torch(np.asarray(got)), want, rtol=1e-12, atol=1e-12)
    for kw in (dict(affine=True), dict(track_running_stats=True)):
        with pytest.raises(ValueError, match="x must be channels-last"):
            fnorm.InstanceNorm1d(3, **kw)(jnp.asarray(_to_flax(x)))


# ------------------------------------------------------------------------ GroupNorm

@st.composite
def gn_configs(draw):
    g, per = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    batch = draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 3))))
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.1]))
    n = per * math.prod(spatial)
    assume(batch * n > 1 and _well_posed(n, eps))
    kw = dict(eps=eps, affine=draw(st.booleans()), bias=draw(st.booleans()))
    return g, g * per, batch, spatial, kw


@pytest.mark.fuzz
@fuzz(8)
@given(gn_configs(), seeds, float32_too)
def test_groupnorm(cfg, seed, f32):
    g, c, batch, spatial, kw = cfg
    layout = [C] if spatial else [None]
    check(Case(f"GroupNorm({g}, {c}, {kw}) on {(batch, c, *spatial)}",
               lambda: _randomize(torch.nn.GroupNorm(g, c, **kw)),
               lambda r: fnorm.GroupNorm(g, c, **kw, rngs=r),
               inputs((batch, c, *spatial)), layout, layout, seed=seed), f32)


def test_groupnorm_groups_are_contiguous_channel_blocks():
    """Channel c is in group c // (C/G), as in torch: a per-block constant shift cancels."""
    x = np.random.default_rng(0).standard_normal((2, 5, 6))
    shifted = x + np.repeat([10.0, -3.0, 7.0], 2)  # one shift per block of 2 channels
    f = fnorm.GroupNorm(3, 6, affine=False)
    np.testing.assert_allclose(np.asarray(f(jnp.asarray(shifted))),
                               np.asarray(f(jnp.asarray(x))), atol=1e-12)


# -------------------------------------------------------------- LayerNorm / RMSNorm

@st.composite
def trailing_configs(draw):
    shape = tuple(draw(st.integers(1, 4)) for _ in range(draw(st.integers(1, 3))))
    lead = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 2))))
    ns = draw(st.sampled_from([list(shape), tuple(shape), torch.Size(shape)])
              if len(shape) > 1 else st.sampled_from([shape[0], list(shape)]))
    return ns, lead + shape, math.prod(shape)


@pytest.mark.fuzz
@fuzz(8)
@given(trailing_configs(), st.sampled_from([1e-5, 1e-3, 0.1]), st.booleans(), st.booleans(),
       seeds, float32_too)
def test_layernorm(cfg, eps, affine, bias, seed, f32):
    ns, shape, n = cfg
    assume(n != 2 or eps >= 0.1)
    kw = dict(eps=eps, elementwise_affine=affine, bias=bias)
    check(Case(f"LayerNorm({ns}, {kw}) on {shape}",
               lambda: _randomize(torch.nn.LayerNorm(ns, **kw)),
               lambda r: fnorm.LayerNorm(list(ns) if isinstance(ns, torch.Size) else ns,
                                         **kw, rngs=r),
               inputs(shape), seed=seed), f32)


@pytest.mark.fuzz
@fuzz(8)
@given(trailing_configs(), st.sampled_from([None, 1e-6, 1e-3, 0.5]), st.booleans(), seeds,
       float32_too)
def test_rmsnorm(cfg, eps, affine, seed, f32):
    ns, shape, n = cfg
    # over one value y = x / sqrt(x² + eps) ≈ sign(x): a gradient of rounding noise alone
    assume(n > 1 or (eps or 0.0) >= 1e-3)
    kw = dict(eps=eps, elementwise_affine=affine)
    check(Case(f"RMSNorm({ns}, {kw}) on {shape}",
               lambda: _randomize(torch.nn.RMSNorm(ns, **kw)),
               lambda r: fnorm.RMSNorm(list(ns) if isinstance(ns, torch.Size) else ns,
                                       **kw, rngs=r),
               inputs(shape), seed=seed), f32)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_rmsnorm_default_eps_is_the_computation_types(dtype):
    """eps=None: finfo(float32).eps for half and float32 inputs, finfo(float64).eps for
    float64 ones (torch's opmath type). Inputs tiny enough that eps dominates."""
    x = np.full((2, 3), 1e-4)
    t_dtype = getattr(torch, dtype)
    want = torch.nn.RMSNorm(3).to(t_dtype)(torch.as_tensor(x, dtype=t_dtype))
    got = fnorm.RMSNorm(3)(jnp.asarray(x, dtype))
    assert got.dtype == jnp.dtype(dtype)
    np.testing.assert_allclose(np.asarray(got, np.float64),
                               want.detach().to(torch.float64).numpy(),
                               rtol={"float64": 1e-12, "float32": 1e-6}.get(dtype, 1e-2))


# ---------------------------------------------------------------- LocalResponseNorm

@pytest.mark.fuzz
@fuzz(8)
@given(st.integers(1, 7), st.sampled_from([1e-4, 0.5, 2.0]), st.sampled_from([0.75, 0.5, 2.0]),
       st.sampled_from([1.0, 2.0, 0.5]), st.integers(1, 5),
       st.lists(st.integers(1, 3), min_size=1, max_size=3), seeds, float32_too)
def test_local_response_norm(size, alpha, beta, k, c, spatial, seed, f32):
    kw = dict(alpha=alpha, beta=beta, k=k)
    shape = (2, c, *spatial)
    check(Case(f"LocalResponseNorm({size}, {kw}) on {shape}",
               lambda: torch.nn.LocalResponseNorm(size, **kw),
               lambda r: fnorm.LocalResponseNorm(size, **kw, rngs=r),
               inputs(shape), [C], [C], seed=seed), f32)


# -------------------------------------------------------------------- empty inputs

EMPTY = [
    ("LayerNorm", lambda: torch.nn.LayerNorm(5), lambda: fnorm.LayerNorm(5), (0, 5), False),
    ("RMSNorm", lambda: torch.nn.RMSNorm([2, 5]), lambda: fnorm.RMSNorm([2, 5]), (0, 2, 5),
     False),
    ("LayerNorm 0", lambda: torch.nn.LayerNorm(0), lambda: fnorm.LayerNorm(0), (3, 0), False),
    ("BatchNorm3d", lambda: torch.nn.BatchNorm3d(5), lambda: fnorm.BatchNorm3d(5),
     (0, 5, 2, 2, 2), True),
    ("GroupNorm", lambda: torch.nn.GroupNorm(2, 4), lambda: fnorm.GroupNorm(2, 4), (0, 4, 3),
     True),
    ("GroupNorm spatial", lambda: torch.nn.GroupNorm(2, 4), lambda: fnorm.GroupNorm(2, 4),
     (2, 4, 0), True),
    ("InstanceNorm1d", lambda: torch.nn.InstanceNorm1d(3, affine=True),
     lambda: fnorm.InstanceNorm1d(3, affine=True), (2, 3, 0), True),
    ("LocalResponseNorm", lambda: torch.nn.LocalResponseNorm(2),
     lambda: fnorm.LocalResponseNorm(2), (0, 3, 4), True),
]


@pytest.mark.parametrize("name,tmake,fmake,shape,channels", EMPTY, ids=[e[0] for e in EMPTY])
def test_empty_input(name, tmake, fmake, shape, channels):
    t, f = tmake().double(), fmake()
    load_torch_state_dict(f, t.state_dict())
    want = t(torch.zeros(shape, dtype=torch.float64))
    x = jnp.zeros(shape)
    got = f(jnp.moveaxis(x, 1, -1) if channels else x)
    assert (tuple(jnp.moveaxis(got, -1, 1).shape) if channels else got.shape) == want.shape
    for k, v in t.state_dict().items():  # e.g. BatchNorm's num_batches_tracked
        np.testing.assert_array_equal(to_torch_state_dict(f)[k], v.numpy())


def test_instancenorm_empty_batch_tracking_gives_nan_running_stats():
    """torch averages the N updated copies of the running statistics: with N = 0 that is
    NaN (and the output is empty)."""
    t = torch.nn.InstanceNorm1d(3, track_running_stats=True).double()
    f = fnorm.InstanceNorm1d(3, track_running_stats=True)
    t(torch.zeros((0, 3, 5), dtype=torch.float64))
    assert f(jnp.zeros((0, 5, 3))).shape == (0, 5, 3)
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(to_torch_state_dict(f)[k], v.numpy())


# ------------------------------------------------------------------------- errors

BAD_ARGS = [
    (lambda: fnorm.BatchNorm3d(3, bias=1), TypeError, "bias"),
    (lambda: fnorm.InstanceNorm2d(0), ValueError, "num_features"),
    (lambda: fnorm.InstanceNorm2d(3, eps=-1.0), ValueError, "eps"),
    (lambda: fnorm.InstanceNorm2d(3, momentum="a"), TypeError, "momentum"),
    (lambda: fnorm.InstanceNorm1d(3, affine=1), TypeError, "affine"),
    (lambda: fnorm.InstanceNorm3d(3, bias=None), TypeError, "bias"),
    (lambda: fnorm.GroupNorm(3, 10), ValueError, r"num_channels \(10\) must be divisible by "
                                                 r"num_groups \(3\)"),
    (lambda: fnorm.GroupNorm(0, 4), ValueError, "num_groups"),
    (lambda: fnorm.GroupNorm(2.0, 4), TypeError, "num_groups"),
    (lambda: fnorm.GroupNorm(2, -2), ValueError, "num_channels"),
    (lambda: fnorm.GroupNorm(2, 4, affine="yes"), TypeError, "affine"),
    (lambda: fnorm.LayerNorm([]), ValueError, "normalized_shape"),
    (lambda: fnorm.LayerNorm(-1), ValueError, "normalized_shape"),
    (lambda: fnorm.LayerNorm(2.5), TypeError, "normalized_shape"),
    (lambda: fnorm.LayerNorm(4, eps=float("nan")), ValueError, "eps"),
    (lambda: fnorm.LayerNorm(4, bias=0), TypeError, "bias"),
    (lambda: fnorm.LayerNorm(4, elementwise_affine=None), TypeError, "elementwise_affine"),
    (lambda: fnorm.RMSNorm((2, "a")), TypeError, "normalized_shape"),
    (lambda: fnorm.RMSNorm(4, eps=-1e-3), ValueError, "eps"),
    (lambda: fnorm.LocalResponseNorm(0), ValueError, "size"),
    (lambda: fnorm.LocalResponseNorm(2.5), TypeError, "size"),
    (lambda: fnorm.LocalResponseNorm(2, alpha="x"), TypeError, "alpha"),
    (lambda: fnorm.LocalResponseNorm(2, beta=None), TypeError, "beta"),
]


@pytest.mark.parametrize("make,exc,match", BAD_ARGS, ids=range(len(BAD_ARGS)))
def test_bad_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


BAD_INPUTS = [
    (lambda: fnorm.BatchNorm3d(3), jnp.zeros((2, 4, 4, 3)), ValueError, "rank 5"),
    (lambda: fnorm.BatchNorm3d(3), jnp.zeros((2, 3, 4, 4, 4)), ValueError, "C=3"),
    (lambda: fnorm.InstanceNorm1d(3), jnp.zeros((2, 3, 4, 5)), ValueError, r"\(N, L, C\)"),
    (lambda: fnorm.InstanceNorm2d(3), jnp.zeros((2, 1, 1, 3)), ValueError,
     "more than 1 spatial element"),
    (lambda: fnorm.InstanceNorm2d(3), jnp.zeros((2, 4, 4, 3), jnp.int32), TypeError,
     "floating-point"),
    (lambda: fnorm.GroupNorm(2, 4), jnp.zeros((4,)), ValueError, "rank"),
    (lambda: fnorm.GroupNorm(2, 4), jnp.zeros((2, 5, 6)), ValueError, "C=4"),
    (lambda: fnorm.GroupNorm(4, 4), jnp.zeros((1, 4)), ValueError, "more than 1 value"),
    (lambda: fnorm.LayerNorm([2, 3]), jnp.zeros((4, 3, 2)), ValueError, "normalized_shape"),
    (lambda: fnorm.LayerNorm(3), jnp.zeros((4, 3), jnp.int32), TypeError, "floating-point"),
    (lambda: fnorm.RMSNorm(3), jnp.zeros((3, 4)), ValueError, "normalized_shape"),
    (lambda: fnorm.LocalResponseNorm(2), jnp.zeros((2, 3)), ValueError, "rank at least 3"),
    (lambda: fnorm.LocalResponseNorm(2), [[[1.0]]], TypeError, "x must be an array"),
]


@pytest.mark.parametrize("make,x,exc,match", BAD_INPUTS, ids=range(len(BAD_INPUTS)))
def test_bad_inputs(make, x, exc, match):
    with pytest.raises(exc, match=match):
        make()(x)


def test_torch_rejects_the_same_inputs():
    """The input errors above mirror torch's (in torch's layout)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for layer, shape in [(torch.nn.InstanceNorm2d(3), (2, 3, 1, 1)),
                             (torch.nn.GroupNorm(4, 4), (1, 4)),
                             (torch.nn.LocalResponseNorm(2), (2, 3)),
                             (torch.nn.BatchNorm3d(3), (2, 3, 4, 4))]:
            with pytest.raises(ValueError):
                layer(torch.zeros(shape))
