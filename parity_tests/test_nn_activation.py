"""The activation twins (:mod:`flax_arch.nn.activation`) against torch.

* Kink points: every activation's values *and* derivatives at exactly the points where
  torch's kernels switch branch (ReLU at 0, Threshold at ``threshold``, Hardtanh at its
  bounds, Hardswish at ±3, Softplus at ``beta * x == threshold``, the shrinks at
  ``±lambd`` …), their neighbours one ulp away, NaN and ±inf, compared entry by entry in
  float64.
* Hypothesis fuzzing through the parity harness over the hyper-parameters module_db does
  not reach (alphas, betas, thresholds, bounds, ``num_parameters``, ``dim``), inputs with
  kink points injected: float64 within 1e-12 on every example, float32 within 1e-5 on a
  drawn subset.
* Bad arguments: the error names the argument.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import given
from hypothesis import strategies as st

import flax_arch.nn.activation as act
from flax_arch.interop import load_torch_state_dict, to_torch_state_dict
from flax_arch.parity import Case
from flax_arch.parity.harness import nonfinite_mismatch
from parity_tests.test_layers import check, float32_too, fuzz, seeds

INF, NAN = float("inf"), float("nan")


# ------------------------------------------------------------------ kink points, float64

def _near(*points):
    """Each point and its float64 neighbours. Not 0's: those are subnormal, and XLA on CPU
    flushes subnormals to zero (so ReLU(5e-324) is 0 with slope 0 here, 5e-324 with slope
    1 in torch); the smallest normal numbers stand in for them."""
    out = []
    for p in points:
        out += [p] + ([np.nextafter(p, -INF), np.nextafter(p, INF)] if p else [])
    return out


# (torch module, twin, kink points); every input also gets 0, ±1e-300, randoms, NaN, ±inf
KINKS = {
    "ReLU": (lambda: torch.nn.ReLU(), lambda: act.ReLU(), [0.0, -0.0]),
    "ReLU6": (lambda: torch.nn.ReLU6(), lambda: act.ReLU6(), [0.0, 6.0]),
    "Hardtanh": (lambda: torch.nn.Hardtanh(-0.3, 1.7), lambda: act.Hardtanh(-0.3, 1.7),
                 [-0.3, 1.7]),
    "Threshold": (lambda: torch.nn.Threshold(0.4, -2.0), lambda: act.Threshold(0.4, -2.0),
                  [0.4]),
    "Hardshrink": (lambda: torch.nn.Hardshrink(0.7), lambda: act.Hardshrink(0.7),
                   [0.7, -0.7]),
    "Hardshrink negative": (lambda: torch.nn.Hardshrink(-0.5), lambda: act.Hardshrink(-0.5),
                            [0.5, -0.5]),
    "Softshrink": (lambda: torch.nn.Softshrink(0.7), lambda: act.Softshrink(0.7),
                   [0.7, -0.7]),
    "Softshrink 0": (lambda: torch.nn.Softshrink(0.0), lambda: act.Softshrink(0.0), [0.0]),
    "LeakyReLU": (lambda: torch.nn.LeakyReLU(0.3), lambda: act.LeakyReLU(0.3), [0.0]),
    "LeakyReLU negative": (lambda: torch.nn.LeakyReLU(-1.5), lambda: act.LeakyReLU(-1.5),
                           [0.0]),
    "PReLU": (lambda: torch.nn.PReLU(init=0.4), lambda: act.PReLU(init=0.4), [0.0]),
    "Hardswish": (lambda: torch.nn.Hardswish(), lambda: act.Hardswish(), [-3.0, 3.0]),
    "ELU": (lambda: torch.nn.ELU(2.5), lambda: act.ELU(2.5), [0.0, 800.0, -800.0]),
    "ELU negative alpha": (lambda: torch.nn.ELU(-0.5), lambda: act.ELU(-0.5), [0.0]),
    "CELU": (lambda: torch.nn.CELU(0.3), lambda: act.CELU(0.3), [0.0, 300.0, -300.0]),
    "CELU negative alpha": (lambda: torch.nn.CELU(-2.0), lambda: act.CELU(-2.0), [0.0]),
    "SELU": (lambda: torch.nn.SELU(), lambda: act.SELU(), [0.0, 800.0]),
    "Softplus": (lambda: torch.nn.Softplus(2.0, 3.0), lambda: act.Softplus(2.0, 3.0),
                 [1.5, 400.0, -400.0]),
    "Softplus default": (lambda: torch.nn.Softplus(), lambda: act.Softplus(), [20.0, 710.0]),
    "Softplus negative beta": (lambda: torch.nn.Softplus(-1.0, 2.0),
                               lambda: act.Softplus(-1.0, 2.0), [-2.0, 2.0]),
    "Softplus beta 0": (lambda: torch.nn.Softplus(0.0), lambda: act.Softplus(0.0), [1.0]),
    "GELU": (lambda: torch.nn.GELU(), lambda: act.GELU(), [0.0, 10.0, -10.0, -40.0]),
    "GELU tanh": (lambda: torch.nn.GELU("tanh"), lambda: act.GELU("tanh"),
                  [0.0, 10.0, -10.0, 1e3]),
    "Mish": (lambda: torch.nn.Mish(), lambda: act.Mish(), [0.0, 30.0, -30.0, 800.0, -800.0]),
    "SiLU": (lambda: torch.nn.SiLU(), lambda: act.SiLU(), [0.0, 800.0, -800.0]),
    "LogSigmoid": (lambda: torch.nn.LogSigmoid(), lambda: act.LogSigmoid(),
                   [0.0, 800.0, -800.0]),
    "Sigmoid": (lambda: torch.nn.Sigmoid(), lambda: act.Sigmoid(), [0.0, 40.0, -800.0]),
    "Tanh": (lambda: torch.nn.Tanh(), lambda: act.Tanh(),
             [0.0, 0.55, -0.55, 3.0, 9.0, -9.0, 19.0, 30.0]),
    "Tanhshrink": (lambda: torch.nn.Tanhshrink(), lambda: act.Tanhshrink(), [0.0, 9.0]),
    "Softsign": (lambda: torch.nn.Softsign(), lambda: act.Softsign(), [0.0, -0.0]),
}


@pytest.mark.parametrize("name", list(KINKS))
def test_values_and_derivatives_at_kinks(name):
    """Entry by entry in float64: torch's value and derivative at each kink point, its
    ulp neighbours, 0, tiny values, NaN, ±inf and random values (non-finite results must
    sit where torch has them)."""
    make_t, make_f, points = KINKS[name]
    rng = np.random.default_rng(0)
    x = np.array(_near(*points, 0.0) + [1e-300, -1e-300, NAN, INF, -INF]
                 + list(rng.standard_normal(20) * 4), np.float64)
    g = rng.uniform(0.5, 2.0, x.shape)  # a finite cotangent, no zeros
    tm = make_t().double()
    xt = torch.tensor(x, requires_grad=True)
    yt = tm(xt)
    yt.backward(torch.tensor(g))
    fm = make_f()
    yf, vjp = jax.vjp(lambda v: fm(v), jnp.asarray(x))
    (gf,) = vjp(jnp.asarray(g))
    for got, want, what in ((yf, yt.detach(), "value"), (gf, xt.grad, "derivative")):
        got, want = np.asarray(got), want.numpy()
        assert nonfinite_mismatch(got, want) is None, (
            f"{name}: {what}: {nonfinite_mismatch(got, want)} at x = {x.tolist()}")
        # finite entries: within 1e-12 of the largest (the harness's normwise measure, per
        # entry); a wrong branch at a kink is off by O(1)
        fin = np.isfinite(want)
        scale = np.abs(want[fin]).max(initial=0.0)
        bad = np.abs(got[fin] - want[fin]) > 1e-12 * scale
        assert not bad.any(), (f"{name}: {what} at x = {x[fin][bad].tolist()}: got "
                               f"{got[fin][bad].tolist()}, torch {want[fin][bad].tolist()}")


def test_prelu_weight_gradient_at_kinks():
    """The slope's own gradient: sum(x * g) over x <= 0 (the kink 0 included), as torch."""
    x = np.array([0.0, -0.0, -1.5, 2.0, NAN, -1e-300, 1e-300]).reshape(1, 7)
    tm = torch.nn.PReLU(init=0.3).double()
    xt = torch.tensor(x, requires_grad=True)
    tm(xt).sum().backward()
    fm = act.PReLU(init=0.3)
    grads = nnx.grad(lambda m, v: m(v).sum(), argnums=(0, 1))(fm, jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(grads[1]), xt.grad.numpy(), equal_nan=True)
    np.testing.assert_allclose(np.asarray(grads[0].weight.get_value()),
                               tm.weight.grad.numpy(), equal_nan=True)


# ------------------------------------------------------------------ hypothesis fuzzing

def _kinked_inputs(shape, points, scale=2.0):
    """Normal inputs (torch layout) with a share of the entries set to the kink points."""
    def make(rng):
        x = rng.standard_normal(shape) * scale
        if x.size and points:
            mask = rng.random(shape) < 0.3
            x = np.where(mask, rng.choice(np.asarray(points, np.float64), size=shape), x)
        return (np.asarray(x, np.float64),)
    return make


numbers = st.floats(-3, 3, allow_nan=False).map(lambda v: round(v, 2))
shapes = st.lists(st.integers(1, 4), min_size=0, max_size=4).map(tuple)


@st.composite
def pointwise(draw):
    """(name, constructor args, kink points) of a parametrised elementwise activation."""
    kind = draw(st.sampled_from(["ELU", "CELU", "Softplus", "Threshold", "Hardtanh",
                                 "Hardshrink", "Softshrink", "LeakyReLU", "GELU", "ReLU6",
                                 "Hardswish", "SELU", "Mish"]))
    if kind in ("ELU", "LeakyReLU"):
        return kind, (draw(numbers),), [0.0]
    if kind == "CELU":
        return kind, (draw(numbers.filter(lambda v: abs(v) > 0.05)),), [0.0]
    if kind == "Softplus":
        beta, th = draw(st.sampled_from([0.5, 1.0, 2.0, 3.0, -1.0])), draw(numbers)
        return kind, (beta, th), [th / beta]
    if kind == "Threshold":
        th = draw(numbers)
        return kind, (th, draw(numbers)), [th]
    if kind == "Hardtanh":
        lo = draw(numbers)
        hi = lo + draw(st.floats(0.25, 3).map(lambda v: round(v, 2)))
        return kind, (lo, hi), [lo, hi]
    if kind in ("Hardshrink", "Softshrink"):
        lam = draw(st.floats(0 if kind == "Softshrink" else -1, 2).map(lambda v: round(v, 2)))
        return kind, (lam,), [lam, -lam]
    if kind == "GELU":
        return kind, (draw(st.sampled_from(["none", "tanh"])),), [0.0]
    return kind, (), {"ReLU6": [0.0, 6.0], "Hardswish": [-3.0, 3.0]}.get(kind, [0.0])


@pytest.mark.fuzz
@fuzz(25)
@given(pointwise(), shapes, seeds, float32_too)
def test_pointwise_fuzz(spec, shape, seed, f32):
    kind, args, points = spec
    check(Case(f"{kind}{args} on {shape}", lambda: getattr(torch.nn, kind)(*args),
               lambda r: getattr(act, kind)(*args, rngs=r),
               _kinked_inputs(shape, points, scale=3.0), seed=seed), f32)


def _moved(src: int):
    """flax_call moving torch's axis ``src`` of every input last and back on the output."""
    def call(module, x):
        if src is None:
            return module(x)
        return jnp.moveaxis(module(jnp.moveaxis(x, src, -1)), -1, src)
    return call


@pytest.mark.fuzz
@fuzz(12)
@given(st.integers(0, 5), st.integers(1, 4), st.floats(-1, 1).map(lambda v: round(v, 2)),
       st.booleans(), seeds, float32_too)
def test_prelu_fuzz(rank, channels, init, multi, seed, f32):
    """PReLU over ranks 0–5: one slope, or one per channel (torch's axis 1, last here)."""
    n = channels if multi and rank >= 2 else 1
    shape = (2, channels, 3, 2, 2)[:rank]
    check(Case(f"PReLU({n}, {init}) on {shape}", lambda: torch.nn.PReLU(n, init),
               lambda r: act.PReLU(n, init, rngs=r), _kinked_inputs(shape, [0.0]),
               flax_call=_moved(1 if rank >= 2 else None), seed=seed), f32)


@pytest.mark.fuzz
@fuzz(8)
@given(st.integers(1, 4), st.data(), seeds, float32_too)
def test_glu_fuzz(rank, data, seed, f32):
    dim = data.draw(st.integers(-rank, rank - 1))
    shape = [data.draw(st.integers(1, 3)) for _ in range(rank)]
    shape[dim] *= 2
    check(Case(f"GLU({dim}) on {shape}", lambda: torch.nn.GLU(dim),
               lambda r: act.GLU(dim, rngs=r), _kinked_inputs(tuple(shape), []),
               seed=seed), f32)


@pytest.mark.fuzz
@fuzz(10)
@given(st.sampled_from(["Softmin", "Softmax", "LogSoftmax"]), st.integers(0, 4), st.data(),
       seeds, float32_too)
def test_softmax_family_fuzz(kind, rank, data, seed, f32):
    dim = data.draw(st.integers(-max(rank, 1), max(rank, 1) - 1))
    shape = tuple(data.draw(st.integers(1, 4)) for _ in range(rank))
    check(Case(f"{kind}({dim}) on {shape}", lambda: getattr(torch.nn, kind)(dim),
               lambda r: getattr(act, kind)(dim, rngs=r), _kinked_inputs(shape, [], 3.0),
               seed=seed), f32)


@pytest.mark.fuzz
@fuzz(6)
@given(st.booleans(), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), seeds,
       float32_too)
def test_softmax2d_fuzz(batched, c, h, w, seed, f32):
    """torch normalises axis -3 of (N, C, H, W) / (C, H, W); the twin the last axis of
    (N, H, W, C) / (H, W, C)."""
    shape = (2, c, h, w) if batched else (c, h, w)
    check(Case(f"Softmax2d on {shape}", lambda: torch.nn.Softmax2d(),
               lambda r: act.Softmax2d(rngs=r), _kinked_inputs(shape, [], 3.0),
               flax_call=_moved(len(shape) - 3), seed=seed), f32)


def test_implicit_dim_softmin_warns_as_torch():
    x = np.random.default_rng(0).standard_normal((3, 4))
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmin"):
        y = act.Softmin()(jnp.asarray(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = torch.nn.Softmin()(torch.tensor(x)).numpy()
    np.testing.assert_allclose(np.asarray(y), want, rtol=1e-12)
    with pytest.raises(ValueError, match="Softmin: dim=None is ambiguous"):
        act.Softmin()(jnp.zeros((2, 3, 4)))


def test_inplace_has_no_effect():
    x = jnp.asarray(np.random.default_rng(0).standard_normal(9))
    for name in ("ReLU", "ReLU6", "ELU", "CELU", "SELU", "SiLU", "Mish", "Hardswish",
                 "Hardtanh", "LeakyReLU"):
        before = np.asarray(x).copy()
        np.testing.assert_array_equal(np.asarray(getattr(act, name)(inplace=True)(x)),
                                      np.asarray(getattr(act, name)()(x)))
        np.testing.assert_array_equal(np.asarray(x), before)
    np.testing.assert_array_equal(np.asarray(act.Threshold(0.1, 2.0, True)(x)),
                                  np.asarray(act.Threshold(0.1, 2.0)(x)))


def test_prelu_state_dict_round_trip():
    tm = torch.nn.PReLU(3, 0.1)
    with torch.no_grad():
        tm.weight.copy_(torch.tensor([0.5, -0.2, 0.7]))
    fm = act.PReLU(3)
    load_torch_state_dict(fm, tm.state_dict())
    np.testing.assert_array_equal(np.asarray(fm.weight.get_value()), tm.weight.detach().numpy())
    back = to_torch_state_dict(fm)
    assert set(back) == {"weight"}
    np.testing.assert_array_equal(np.asarray(back["weight"]), tm.weight.detach().numpy())


def test_hardtanh_deprecated_keywords():
    with pytest.warns(FutureWarning, match="min_value"):
        m = act.Hardtanh(min_value=-2.0)
    assert (m.min_val, m.max_val) == (-2.0, 1.0)
    with pytest.warns(FutureWarning, match="max_value"):
        assert act.Hardtanh(max_value=3.0).max_val == 3.0


def test_half_precision_runs_in_opmath():
    x = jnp.asarray(np.linspace(-4, 4, 11), jnp.bfloat16)
    for m in (act.GELU(), act.Mish(), act.Softplus(), act.PReLU(), act.Hardswish(),
              act.Softmax2d(), act.GLU(-1)):
        xin = x.reshape(1, 1, 11)[..., :10] if isinstance(m, (act.GLU, act.Softmax2d)) else x
        assert m(xin).dtype == jnp.bfloat16


# ------------------------------------------------------------------ bad arguments

BAD_ARGS = [
    (lambda: act.ELU("a"), TypeError, "ELU: alpha must be a number"),
    (lambda: act.ELU(1.0, "yes"), TypeError, "ELU: inplace must be True or False"),
    (lambda: act.CELU(0.0), ValueError, "CELU: alpha cannot be 0"),
    (lambda: act.CELU(NAN), ValueError, "CELU: alpha must be"),
    (lambda: act.SELU(1), TypeError, "SELU: inplace must be True or False"),
    (lambda: act.GELU("exact"), ValueError, "GELU: approximate must be one of 'none', 'tanh'"),
    (lambda: act.GLU(1.0), TypeError, "GLU: dim must be an int"),
    (lambda: act.PReLU(0), ValueError, "PReLU: num_parameters must be at least 1"),
    (lambda: act.PReLU(2.0), TypeError, "PReLU: num_parameters must be an int"),
    (lambda: act.PReLU(1, "a"), TypeError, "PReLU: init must be a number"),
    (lambda: act.Threshold("a", 1.0), TypeError, "Threshold: threshold must be a number"),
    (lambda: act.Threshold(1.0, None), TypeError, "Threshold: value must be a number"),
    (lambda: act.Hardtanh(1.0, 1.0), ValueError, r"Hardtanh: max_val \(1.0\) must be greater"),
    (lambda: act.Hardtanh("a"), TypeError, "Hardtanh: min_val must be a number"),
    (lambda: act.ReLU6("no"), TypeError, "ReLU6: inplace must be True or False"),
    (lambda: act.Hardshrink("a"), TypeError, "Hardshrink: lambd must be a number"),
    (lambda: act.Softshrink(-0.1), ValueError, "Softshrink: lambd must be at least 0"),
    (lambda: act.Softplus(beta="a"), TypeError, "Softplus: beta must be a number"),
    (lambda: act.Softplus(threshold=NAN), ValueError, "Softplus: threshold must be"),
    (lambda: act.Softmin(1.5), TypeError, "Softmin: dim must be an int or None"),
    (lambda: act.LeakyReLU(0.1, 2), TypeError, "LeakyReLU: inplace must be True or False"),
]


@pytest.mark.parametrize("make,exc,msg", BAD_ARGS, ids=[m for _, _, m in BAD_ARGS])
def test_bad_arguments_name_the_argument(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make()


BAD_CALLS = [
    (lambda: act.GLU(1)(jnp.zeros((2, 3))), ValueError, r"GLU: the axis dim=1 of x .* even"),
    (lambda: act.GLU()(jnp.zeros(())), ValueError, "GLU: x must have at least one axis"),
    (lambda: act.GLU(2)(jnp.zeros((2, 4))), IndexError, r"GLU: dim must be in \[-2, 1\]"),
    (lambda: act.Softmax2d()(jnp.zeros((3, 4))), ValueError,
     r"Softmax2d: x must have rank 3 or 4 with layout \(N, H, W, C\)"),
    (lambda: act.Softmax2d()(jnp.zeros((1, 2, 3, 4, 5))), ValueError, "Softmax2d: x must"),
    (lambda: act.PReLU(3)(jnp.zeros((2, 3, 4))), ValueError,
     r"PReLU: x must be channels-last \(N, \*, C\) with C=3 .* looks channels-first"),
    (lambda: act.PReLU(3)(jnp.zeros(3)), ValueError, "PReLU: x must be channels-last"),
    (lambda: act.PReLU(3)(jnp.zeros(())), ValueError, "PReLU: x must be channels-last"),
    (lambda: act.Softmin(2)(jnp.zeros((2, 2))), IndexError, r"Softmin: dim must be in"),
    (lambda: act.ReLU()(jnp.zeros(3, jnp.int32)), TypeError, "ReLU: x must be a floating"),
    (lambda: act.Tanh()(jnp.zeros(3, bool)), TypeError, "Tanh: x must be a floating"),
    (lambda: act.PReLU()(jnp.zeros(3, jnp.int32)), TypeError, "PReLU: x must be a floating"),
    (lambda: act.Softmax2d()(jnp.zeros((1, 2, 3), jnp.int32)), TypeError,
     "Softmax2d: x must be a floating"),
]


@pytest.mark.parametrize("call,exc,msg", BAD_CALLS, ids=[m for _, _, m in BAD_CALLS])
def test_bad_inputs_name_the_argument(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
