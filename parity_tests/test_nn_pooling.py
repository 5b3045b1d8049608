"""The pooling family of :mod:`flax_arch.nn.pooling` against torch: AvgPool1d/2d/3d,
MaxPool1d/2d/3d with ``return_indices``, MaxUnpool1d/2d/3d, AdaptiveAvgPool3d,
AdaptiveMaxPool1d/2d/3d and LPPool1d/2d/3d.

Hypothesis draws the hyper-parameters torch's module_db does not reach (ceil_mode windows
running past the padding with and without ``count_include_pad``, ``divisor_override``,
dilation and ties with indices, overlapping adaptive bins, fractional / negative / infinite
``norm_type``) and :func:`flax_arch.parity.run_case` compares outputs (indices included)
and input gradients in float64 (1e-12) and, on a subset, float32 (1e-5). MaxUnpool is not
in module_db: it is checked here directly, alone and in round trips with MaxPool. Then
unbatched inputs, NaN / −∞ / integer inputs of the indexed max pools, and the errors.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import assume, given
from hypothesis import strategies as st

import flax_arch.nn.pooling as P
from flax_arch.parity import Case

from .test_layers import _window_all_padding, arg, check, fuzz, seeds

C = "channels"
float32_too = st.integers(0, 2).map(lambda i: i == 2)


def _normal(shape, ties=False, positive=False):
    def make(rng):
        if ties:
            return (rng.integers(-2, 3, size=shape).astype(np.float64),)
        x = rng.standard_normal(shape)
        return (np.abs(x) + 0.1 if positive else x,)
    return make


def _sizes(draw, k, s, p, d, ceil, lo_extra=4):
    """Spatial sizes with at least one output and no window of padding alone."""
    sizes = []
    for ki, si, pi, di in zip(k, s, p, d):
        least = max(1, di * (ki - 1) + 1 - 2 * pi)
        L = draw(st.integers(least, least + lo_extra))
        out = P.pool_output_size(L, ki, si, pi, di, ceil)
        assume(out >= 1 and not _window_all_padding(L, ki, si, pi, di, out))
        sizes.append(L)
    return tuple(sizes)


def _stride(draw, n, k):
    if draw(st.booleans()):
        return None, k
    return arg(draw, n, 1, 3)


# ------------------------------------------------------------------------------ AvgPool

@st.composite
def avg_configs(draw, n):
    k_arg, k = arg(draw, n, 1, 4)
    s_arg, s = _stride(draw, n, k)
    pad = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    p_arg = pad if draw(st.booleans()) or len(set(pad)) > 1 else pad[0]
    ceil = draw(st.booleans())
    kw = dict(stride=s_arg, padding=p_arg, ceil_mode=ceil,
              count_include_pad=draw(st.booleans()))
    if n > 1 and draw(st.booleans()):
        kw["divisor_override"] = draw(st.sampled_from([1, 3, -2]))
    sizes = _sizes(draw, k, s, pad, (1,) * n, ceil)
    if n == 3:  # torch's avg_pool3d refuses x smaller than the kernel, padding or not
        sizes = tuple(max(L, ki) for L, ki in zip(sizes, k))
    return k_arg, kw, draw(st.integers(1, 2)), draw(st.integers(1, 3)), sizes


def _avg_case(n, cfg, seed):
    k, kw, batch, ch, sizes = cfg
    name = f"AvgPool{n}d"
    return Case(f"{name}({k}, {kw}) on {sizes}", lambda: getattr(torch.nn, name)(k, **kw),
                lambda r: getattr(P, name)(k, **kw), _normal((batch, ch, *sizes)), [C], [C],
                seed=seed)


@pytest.mark.fuzz
@pytest.mark.parametrize("n,examples", [(1, 8), (2, 8), (3, 3)])
def test_avg_pool(n, examples):
    @fuzz(examples)
    @given(avg_configs(n), seeds, float32_too)
    def run(cfg, seed, f32):
        check(_avg_case(n, cfg, seed), f32)
    run()


def test_avg_pool_ceil_divisors_match_torch():
    """Torch's divisor rule, exhaustively on a ones input (whose means are 1 / divisor
    where padding counts): a ceil_mode window running past the right padding divides by
    its taps up to the padding's end (count_include_pad) or by its taps inside x."""
    for L in range(1, 8):
        for k in range(1, 5):
            for s in range(1, 4):
                for p in range(0, k // 2 + 1):
                    if L + 2 * p < k:
                        continue
                    out = P.pool_output_size(L, k, s, p, 1, True)
                    inside = P._avg_divisors(L, k, s, p, out, False)
                    for cip in (True, False):
                        want = torch.nn.functional.avg_pool1d(
                            torch.ones(1, 1, L, dtype=torch.float64), k, s, p, True,
                            cip).numpy()[0, 0]
                        got = inside / P._avg_divisors(L, k, s, p, out, cip)
                        np.testing.assert_allclose(got, want, rtol=1e-15,
                                                   err_msg=str((L, k, s, p, cip)))
    x = jnp.ones((6, 1))
    np.testing.assert_allclose(np.asarray(P.AvgPool1d(3, 2, 1, True)(x))[:, 0],
                               [2 / 3, 1, 1, 1 / 2])


# ---------------------------------------------------------------- MaxPool return_indices

@st.composite
def max_configs(draw, n):
    k_arg, k = arg(draw, n, 1, 3)
    s_arg, s = _stride(draw, n, k)
    pad = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    d_arg, d = arg(draw, n, 1, 2)
    ceil = draw(st.booleans())
    sizes = _sizes(draw, k, s, pad, d, ceil, lo_extra=3 if n < 3 else 2)
    kw = dict(stride=s_arg, padding=pad, dilation=d_arg, ceil_mode=ceil, return_indices=True)
    return k_arg, kw, draw(st.integers(1, 2)), draw(st.integers(1, 2)), sizes


def _max_case(n, cfg, seed, ties):
    k, kw, batch, ch, sizes = cfg
    name = f"MaxPool{n}d"
    return Case(f"{name}({k}, {kw}) on {sizes}{' ties' if ties else ''}",
                lambda: getattr(torch.nn, name)(k, **kw), lambda r: getattr(P, name)(k, **kw),
                _normal((batch, ch, *sizes), ties), [C], [C, C], seed=seed)


@pytest.mark.fuzz
@pytest.mark.parametrize("n,examples", [(1, 6), (2, 6), (3, 3)])
def test_max_pool_indices(n, examples):
    """Outputs, indices (exact: the harness's relative error of integers) and gradients;
    with ties drawn often, so the first-maximum rule is exercised."""
    @fuzz(examples)
    @given(max_configs(n), seeds, st.booleans(), float32_too)
    def run(cfg, seed, ties, f32):
        check(_max_case(n, cfg, seed, ties), f32)
    run()


def _torch_indices(name, args, kw, x_first):
    y, i = getattr(torch.nn, name)(*args, **kw, return_indices=True)(torch.as_tensor(x_first))
    return np.moveaxis(y.numpy(), 1, -1), np.moveaxis(i.numpy(), 1, -1)


@pytest.mark.parametrize("name,args,kw", [
    ("MaxPool1d", (3, 1, 1), {}), ("MaxPool2d", (2, 1), {"ceil_mode": True}),
    ("MaxPool3d", (2, 1, 1), {"dilation": (1, 2, 1)}), ("AdaptiveMaxPool2d", ((3, 2),), {})])
def test_max_pool_nan_and_neg_inf_indices(name, args, kw):
    """Torch keeps a greater value or a NaN: NaN → the window's last NaN; a window of −∞
    keeps its first in-bounds tap. Same values (NaN included) and indices here."""
    n = int(name[-2])
    rng = np.random.default_rng(0)
    x = rng.integers(-2, 3, size=(2, 2) + (5,) * n).astype(np.float64)
    x[rng.random(x.shape) < 0.2] = np.nan
    x[rng.random(x.shape) < 0.3] = -np.inf
    want_y, want_i = _torch_indices(name, args, kw, x)
    y, i = jax.jit(getattr(P, name)(*args, **kw, return_indices=True))(
        jnp.asarray(np.moveaxis(x, 1, -1)))
    np.testing.assert_array_equal(np.asarray(y), want_y)
    np.testing.assert_array_equal(np.asarray(i), want_i)
    assert i.dtype == jnp.int64


@pytest.mark.parametrize("name,dtype", [("MaxPool1d", np.int64), ("MaxPool2d", np.int32),
                                        ("MaxPool3d", np.int16)])
def test_max_pool_integer_indices(name, dtype):
    """Integers pool in their dtype (max_pool1d only with indices, as in torch); a window
    of the dtype's minimum keeps its first in-bounds tap."""
    n = int(name[-2])
    rng = np.random.default_rng(1)
    x = rng.integers(-2, 2, size=(1, 2) + (5,) * n).astype(dtype)
    x[x == -2] = np.iinfo(dtype).min
    want_y, want_i = _torch_indices(name, (3, 2, 1), {}, x)
    y, i = jax.jit(getattr(P, name)(3, 2, 1, return_indices=True))(
        jnp.asarray(np.moveaxis(x, 1, -1)))
    assert y.dtype == dtype
    np.testing.assert_array_equal(np.asarray(y), want_y)
    np.testing.assert_array_equal(np.asarray(i), want_i)


def test_indices_int32_without_x64():
    """Without jax_enable_x64 the indices are int32, same numbers."""
    x = np.random.default_rng(2).standard_normal((1, 6, 5, 1))
    with jax.enable_x64(False):
        y, i = P.MaxPool2d(2, return_indices=True)(jnp.asarray(x, jnp.float32))
        assert i.dtype == jnp.int32 and P.index_dtype() == jnp.int32
    _, want = _torch_indices("MaxPool2d", (2,), {}, np.moveaxis(x, -1, 1))
    np.testing.assert_array_equal(np.asarray(i), want)


# ---------------------------------------------------------------------- AdaptiveMaxPool

@st.composite
def adaptive_configs(draw, n):
    sizes = tuple(draw(st.integers(1, 7 if n < 3 else 5)) for _ in range(n))
    if n == 1 or draw(st.booleans()):
        out = draw(st.integers(1, 8))
    else:
        out = tuple(draw(st.one_of(st.none(), st.integers(1, 6))) for _ in range(n))
    return out, draw(st.integers(1, 2)), draw(st.integers(1, 2)), sizes


@pytest.mark.fuzz
@pytest.mark.parametrize("n,examples", [(1, 5), (2, 5), (3, 3)])
def test_adaptive_max_pool(n, examples):
    @fuzz(examples)
    @given(adaptive_configs(n), seeds, st.booleans(), float32_too)
    def run(cfg, seed, ties, f32):
        out, batch, ch, sizes = cfg
        name = f"AdaptiveMaxPool{n}d"
        check(Case(f"{name}({out}) on {sizes}",
                   lambda: getattr(torch.nn, name)(out, return_indices=True),
                   lambda r: getattr(P, name)(out, return_indices=True),
                   _normal((batch, ch, *sizes), ties), [C], [C, C], seed=seed), f32)
    run()


@pytest.mark.fuzz
@fuzz(3)
@given(adaptive_configs(3), seeds, float32_too)
def test_adaptive_avg_pool3d(cfg, seed, f32):
    out, batch, ch, sizes = cfg
    check(Case(f"AdaptiveAvgPool3d({out}) on {sizes}", lambda: torch.nn.AdaptiveAvgPool3d(out),
               lambda r: P.AdaptiveAvgPool3d(out), _normal((batch, ch, *sizes)), [C], [C],
               seed=seed), f32)


# ------------------------------------------------------------------------------- LPPool

@st.composite
def lp_configs(draw, n):
    p = draw(st.sampled_from([1, 2, 3, 1.5, 0.7, -1.0, float("inf"), float("-inf")]))
    k_arg, k = arg(draw, n, 1, 3)
    if n == 1:  # torch's lp_pool1d multiplies by kernel_size: a 1-tuple fails there
        k_arg = k[0]
    s_arg, s = _stride(draw, n, k)
    ceil = draw(st.booleans())
    sizes = _sizes(draw, k, s, (0,) * n, (1,) * n, ceil, lo_extra=3)
    if n == 3:  # torch's avg_pool3d refuses x smaller than the kernel, padding or not
        sizes = tuple(max(L, ki) for L, ki in zip(sizes, k))
    # fractional or negative p of a negative (or zero) x is NaN / ∞ in torch: drawn too,
    # but mostly positive inputs so the values are compared
    positive = draw(st.integers(0, 3)) > 0
    return p, k_arg, dict(stride=s_arg, ceil_mode=ceil), sizes, positive


@pytest.mark.fuzz
@pytest.mark.parametrize("n,examples", [(1, 6), (2, 5), (3, 3)])
def test_lp_pool(n, examples):
    @fuzz(examples)
    @given(lp_configs(n), seeds, float32_too)
    def run(cfg, seed, f32):
        p, k, kw, sizes, positive = cfg
        name = f"LPPool{n}d"
        check(Case(f"{name}({p}, {k}, {kw}) on {sizes}{'' if positive else ' signed'}",
                   lambda: getattr(torch.nn, name)(p, k, **kw),
                   lambda r: getattr(P, name)(p, k, **kw),
                   _normal((2, 2, *sizes), positive=positive), [C], [C], seed=seed), f32)
    run()


def test_lp_pool_zero_window_gradient_is_torchs():
    """A window whose power sum is 0: value 0 and gradient 0 (torch's pow backward gives
    ∞·0 = NaN, which relu's backward — a select — zeroes). A negative x with p = 1.5: NaN
    value and gradient, as torch's."""
    x = np.array([[[0.0, 0.0, 1.0, 2.0, -1.0, 3.0]]])
    for p in (2, 1.5):
        t = torch.tensor(x, requires_grad=True)
        torch.nn.LPPool1d(p, 2)(t).sum().backward()
        f = P.LPPool1d(p, 2)
        xj = jnp.asarray(np.moveaxis(x, 1, -1))
        y, vjp = jax.vjp(f, xj)
        np.testing.assert_allclose(np.asarray(y)[0, :, 0],
                                   torch.nn.LPPool1d(p, 2)(torch.tensor(x)).numpy()[0, 0],
                                   rtol=1e-14, equal_nan=True)
        g = np.asarray(vjp(jnp.ones_like(y))[0])[0, :, 0]
        np.testing.assert_allclose(g, t.grad.numpy()[0, 0], rtol=1e-14, equal_nan=True)
        np.testing.assert_array_equal(g[:2], [0.0, 0.0])
        assert np.isnan(g[4]) == (p == 1.5)


# ---------------------------------------------------------------------------- MaxUnpool

class _TorchRoundTrip(torch.nn.Module):
    def __init__(self, n, k, s, p, sized):
        super().__init__()
        self.pool = getattr(torch.nn, f"MaxPool{n}d")(k, s, p, return_indices=True)
        self.unpool = getattr(torch.nn, f"MaxUnpool{n}d")(k, s, p)
        self.sized = sized

    def forward(self, x):
        y, i = self.pool(x)
        return self.unpool(y, i, output_size=x.shape[2:] if self.sized else None)


class _RoundTrip(nnx.Module):
    def __init__(self, n, k, s, p, sized):
        self.pool = getattr(P, f"MaxPool{n}d")(k, s, p, return_indices=True)
        self.unpool = getattr(P, f"MaxUnpool{n}d")(k, s, p)
        self.sized = sized

    def __call__(self, x):
        y, i = self.pool(x)
        return self.unpool(y, i, output_size=x.shape if self.sized else None)


@st.composite
def unpool_configs(draw, n):
    k_arg, k = arg(draw, n, 1, 3)
    s_arg, s = _stride(draw, n, k)  # strides below k: overlapping windows, repeated indices
    pad = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    sizes = _sizes(draw, k, s, pad, (1,) * n, False, lo_extra=3)
    # the default size must not exceed the input's (an index would fall outside it)
    sized = draw(st.booleans())
    for L, ki, si, pi in zip(sizes, k, s, pad):
        o = P.pool_output_size(L, ki, si, pi, 1, False)
        default = (o - 1) * si + ki - 2 * pi
        assume(default - si < L < default + si)
        sized = sized or default != L
    return k_arg, s_arg, pad, sizes, sized


@pytest.mark.fuzz
@pytest.mark.parametrize("n,examples", [(1, 5), (2, 5), (3, 3)])
def test_max_unpool_round_trip(n, examples):
    """MaxPool(return_indices) → MaxUnpool, to the default size or to x's size: outputs and
    gradients (torch gathers the gradient at every index, repeated ones included)."""
    @fuzz(examples)
    @given(unpool_configs(n), seeds, st.booleans(), float32_too)
    def run(cfg, seed, ties, f32):
        k, s, p, sizes, sized = cfg
        check(Case(f"MaxPool{n}d → MaxUnpool{n}d({k}, {s}, {p}) on {sizes} sized={sized}",
                   lambda: _TorchRoundTrip(n, k, s, p, sized),
                   lambda r: _RoundTrip(n, k, s, p, sized),
                   _normal((2, 2, *sizes), ties), [C], [C], seed=seed), f32)
    run()


@pytest.mark.parametrize("n", [1, 2, 3])
def test_max_unpool_direct(n):
    """Given indices (unique per channel plane; torch leaves the winner among different
    values at a repeated index unspecified), an output_size, an unbatched input: values
    and the gradient (a gather) as torch."""
    rng = np.random.default_rng(n)
    k, s = 2, 3
    in_spatial = (3,) * n
    out_size = tuple((L - 1) * s + k + 1 for L in in_spatial)  # default + 1 (< default + s)
    plane = int(np.prod(out_size))
    x = rng.standard_normal((2, 3, *in_spatial))
    idx = np.stack([np.stack([rng.permutation(plane)[:int(np.prod(in_spatial))]
                              .reshape(in_spatial) for _ in range(3)]) for _ in range(2)])
    cot = rng.standard_normal((2, 3, *out_size))
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch.nn, f"MaxUnpool{n}d")(k, s)(tx, torch.as_tensor(idx), output_size=out_size)
    ty.backward(torch.as_tensor(cot))
    layer = getattr(P, f"MaxUnpool{n}d")(k, s)
    last = lambda a: np.moveaxis(a, 1, -1)
    for batched in (True, False):
        xs, ids, cs = (last(x), last(idx), last(cot)) if batched else (
            last(x)[0], last(idx)[0], last(cot)[0])
        y, vjp = jax.vjp(jax.jit(lambda v: layer(v, jnp.asarray(ids), output_size=out_size)),
                         jnp.asarray(xs))
        want_y, want_g = last(ty.detach().numpy()), last(tx.grad.numpy())
        if not batched:
            want_y, want_g = want_y[0], want_g[0]
        np.testing.assert_array_equal(np.asarray(y), want_y)
        np.testing.assert_array_equal(np.asarray(vjp(jnp.asarray(cs))[0]), want_g)


def test_max_unpool_jit_and_repeated_indices():
    """Under jit the same numbers; repeated indices (overlapping pool windows) send each
    input the gradient at its index, as torch's gather does."""
    x = np.array([[[1.0], [5.0], [2.0], [0.0]]])  # (N, L, C)
    pool, unpool = P.MaxPool1d(2, 1, return_indices=True), P.MaxUnpool1d(2, 1)
    y, i = pool(jnp.asarray(x))
    assert np.asarray(i)[0, :, 0].tolist() == [1, 1, 2]
    f = lambda v: unpool(v, i, output_size=(4,))
    out, vjp = jax.vjp(jax.jit(f), y)
    np.testing.assert_array_equal(np.asarray(out)[0, :, 0], [0.0, 5.0, 2.0, 0.0])
    g = vjp(jnp.arange(1.0, 5.0).reshape(1, 4, 1))[0]
    np.testing.assert_array_equal(np.asarray(g)[0, :, 0], [2.0, 2.0, 3.0])


# ------------------------------------------------------------------- unbatched (no N)

UNBATCHED = [
    ("AvgPool1d", (3, 2, 1), {"ceil_mode": True, "count_include_pad": False}, (2, 8)),
    ("AvgPool2d", (3, 2, 1), {"ceil_mode": True, "divisor_override": 2}, (2, 6, 7)),
    ("AvgPool3d", (2,), {"padding": 1}, (2, 3, 4, 5)),
    ("MaxPool3d", (2, 1, 1), {"return_indices": True}, (2, 3, 4, 3)),
    ("MaxPool1d", (2,), {"return_indices": True, "ceil_mode": True}, (2, 7)),
    ("AdaptiveMaxPool1d", (3,), {"return_indices": True}, (2, 7)),
    ("AdaptiveMaxPool3d", ((2, None, 3),), {}, (2, 5, 3, 4)),
    ("AdaptiveAvgPool3d", ((2, 1, None),), {}, (2, 5, 3, 4)),
    ("LPPool2d", (3, (2, 1)), {"ceil_mode": True}, (2, 5, 4)),
    ("LPPool3d", (float("inf"), 2), {}, (2, 4, 4, 4)),
]


@pytest.mark.parametrize("name,args,kw,shape", UNBATCHED, ids=[u[0] for u in UNBATCHED])
def test_unbatched_input(name, args, kw, shape):
    """Torch's unbatched (C, *spatial) ↔ channels-last (*spatial, C); indices too."""
    x = np.random.default_rng(0).standard_normal(shape)
    want = getattr(torch.nn, name)(*args, **kw)(torch.as_tensor(x))
    got = jax.jit(getattr(P, name)(*args, **kw))(jnp.asarray(np.moveaxis(x, 0, -1)))
    want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
    for w, g in zip(want, got):
        np.testing.assert_allclose(np.moveaxis(np.asarray(g), -1, 0), w.numpy(), rtol=1e-13)


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("make,exc,match", [
    (lambda: P.AvgPool2d(3, padding=2), ValueError, "half of kernel_size"),
    (lambda: P.AvgPool1d(0), ValueError, "kernel_size"),
    (lambda: P.AvgPool3d(2, stride=(1, 0, 1)), ValueError, "stride"),
    (lambda: P.AvgPool2d(2, divisor_override=0), ValueError, "divisor_override"),
    (lambda: P.AvgPool2d(2, divisor_override=1.5), TypeError, "divisor_override"),
    (lambda: P.AvgPool1d(2, count_include_pad=1), TypeError, "count_include_pad"),
    (lambda: P.AvgPool2d(2, ceil_mode="yes"), TypeError, "ceil_mode"),
    (lambda: P.MaxPool3d(2, return_indices=1), TypeError, "return_indices"),
    (lambda: P.MaxPool3d((2, 2)), ValueError, "kernel_size"),
    (lambda: P.MaxUnpool2d(2, padding=-1), ValueError, "padding"),
    (lambda: P.MaxUnpool1d(0), ValueError, "kernel_size"),
    (lambda: P.AdaptiveMaxPool1d(None), TypeError, "output_size"),
    (lambda: P.AdaptiveMaxPool3d((2, 2)), ValueError, "output_size"),
    (lambda: P.AdaptiveMaxPool2d(0), ValueError, "output_size"),
    (lambda: P.AdaptiveMaxPool2d(2, return_indices="no"), TypeError, "return_indices"),
    (lambda: P.AdaptiveAvgPool3d((2, 0, 1)), ValueError, "output_size"),
    (lambda: P.LPPool1d(0, 2), ValueError, "norm_type"),
    (lambda: P.LPPool2d("2", 2), TypeError, "norm_type"),
    (lambda: P.LPPool2d(float("nan"), 2), ValueError, "norm_type"),
    (lambda: P.LPPool3d(2, 2, stride=0), ValueError, "stride"),
])
def test_bad_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_torch_refuses_the_same_arguments():
    """The refused values above that torch refuses too (at construction or first call)."""
    for make, shape in ((lambda: torch.nn.AvgPool2d(3, padding=2), (1, 1, 4, 4)),
                        (lambda: torch.nn.AvgPool2d(2, divisor_override=0), (1, 1, 4, 4)),
                        (lambda: torch.nn.AvgPool3d(2, stride=(1, 0, 1)), (1, 1, 4, 4, 4))):
        with pytest.raises((RuntimeError, ValueError)), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make()(torch.zeros(shape))
    with pytest.raises(ZeroDivisionError):
        torch.nn.LPPool1d(0, 2)(torch.ones(1, 1, 4))


@pytest.mark.parametrize("layer,x,exc,match", [
    (P.AvgPool2d(2), jnp.ones((4, 4)), ValueError, r"rank 3 or 4 with layout \(N, H, W, C\)"),
    (P.AvgPool1d(2), jnp.ones((2, 4, 3), jnp.int32), TypeError, "x must be a floating"),
    (P.AvgPool3d(2), jnp.ones((1, 4, 0, 4, 2)), ValueError, "empty spatial"),
    (P.AvgPool1d(4), jnp.ones((1, 3, 2)), ValueError, "too small"),
    (P.AvgPool3d(2, padding=1), jnp.ones((1, 1, 4, 4, 2)), ValueError, "smaller than kernel"),
    (P.LPPool3d(2, 2, ceil_mode=True), jnp.ones((1, 4, 4, 1)), ValueError, "smaller than"),
    (P.MaxPool3d(2), jnp.ones((4, 4, 4)), ValueError, r"\(N, D, H, W, C\)"),
    (P.MaxPool1d(2), jnp.ones((4, 2), jnp.int32), TypeError, "x must be a floating"),
    (P.MaxPool3d(2), jnp.ones((2, 2, 2, 1), bool), TypeError, "x must be a floating"),
    (P.AdaptiveMaxPool2d(2), jnp.ones((1, 4, 4, 1), jnp.int32), TypeError, "x must be"),
    (P.AdaptiveMaxPool3d(2), jnp.ones((4, 4, 4)), ValueError, "rank 4 or 5"),
    (P.LPPool2d(2, 2), jnp.ones((3, 3), jnp.float32), ValueError, "rank 3 or 4"),
    (P.LPPool1d(2, 2), jnp.ones((4, 2), jnp.int32), TypeError, "x must be a floating"),
])
def test_bad_inputs(layer, x, exc, match):
    with pytest.raises(exc, match=match):
        layer(x)


def test_max_unpool_bad_calls():
    u = P.MaxUnpool2d(2)
    x = jnp.ones((1, 2, 2, 3))
    i = jnp.zeros((1, 2, 2, 3), jnp.int32)
    with pytest.raises(TypeError, match="indices must be an integer array"):
        u(x, x)
    with pytest.raises(ValueError, match="indices must have x's shape"):
        u(x, i[..., :2])
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 16\)"):
        u(x, i.at[0, 0, 0, 0].set(16))
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 16\)"):
        u(x, i.at[0, 0, 0, 0].set(-1))
    with pytest.raises(ValueError, match="output_size"):
        u(x, i, output_size=(6, 4))  # torch: between 2 and 6, exclusive
    with pytest.raises(ValueError, match="output_size"):
        u(x, i, output_size=(4, 4, 4))
    with pytest.raises(TypeError, match="x must be a floating"):
        u(i, i)
    with pytest.raises(ValueError, match="rank 3 or 4"):
        u(x[0, 0], i[0, 0])
    # both forms torch takes: spatial sizes, or the n + 2 form (channels-last here)
    assert u(x, i, output_size=(5, 3)).shape == (1, 5, 3, 3)
    assert u(x, i, output_size=(1, 5, 3, 3)).shape == (1, 5, 3, 3)
    with pytest.raises(ValueError, match="dim 0 must be between 2 and 6"):
        torch.nn.MaxUnpool2d(2)(torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2).long(),
                                output_size=(6, 4))
