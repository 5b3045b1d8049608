"""QRNN beyond the fixed cases: hypothesis over the hyper-parameters (layer and stack), the
pooling functions against a torch loop, zoneout's random mask checked against torch, the
argument errors, and the two autodiff modes. Every value and reverse-mode gradient is
compared with torch (the oracle); forward mode (which torch's parity cases do not reach) is
compared with reverse mode and with central finite differences, in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import jax
import jax.numpy as jnp
from flax import nnx
from jax.ad_checkpoint import print_saved_residuals
from hypothesis import given, settings, strategies as st

import flax_arch.models.qrnn as fq
import torch_ref.qrnn as tq
from flax_arch import to_torch_state_dict
from flax_arch.interop import load_torch_state_dict
from flax_arch.parity import Case, run_case

GATES = sorted(fq.GATES)


def _assert_passed(case, dtype="float64"):
    r = run_case(case, dtype, locate=False)
    assert r.error is None, r.error
    assert r.passed, (f"{case.name} [{dtype}]: forward {r.forward_err:.2e}, grad "
                      f"{r.grad_err:.2e}, state {r.state_err:.2e} > {r.tol:.0e} ({r.worst})")


def _inputs(B, T, F, state_shape, mask_shape):
    def make(rng):
        out = [rng.standard_normal((B, T, F))]
        if state_shape:
            out.append(rng.standard_normal(state_shape))
        if mask_shape:
            out.append(rng.random(mask_shape) < 0.6)
        return tuple(out)
    return make


def _calls(state: bool, mask: bool):
    """torch_call / flax_call for the optional state and zoneout-mask inputs."""
    if not mask:
        return None, None
    if state:
        return (lambda m, x, s, k: m(x, s, k)), (lambda m, x, s, k: m(x, s, zoneout_mask=k))
    return (lambda m, x, k: m(x, None, k)), (lambda m, x, k: m(x, zoneout_mask=k))


# zoneout: none; evaluation mode (expectation); training mode with an injected mask
ZONEOUT = st.sampled_from(["none", "eval", "train"])


@pytest.mark.fuzz
@settings(deadline=None, max_examples=10)
@given(kwidth=st.integers(1, 4), F=st.integers(1, 5), H=st.integers(1, 6),
       B=st.integers(1, 3), T=st.integers(1, 12), state=st.booleans(),
       pooling=st.sampled_from(fq.POOLINGS), chunk=st.one_of(st.none(), st.integers(1, 5)),
       gates=st.sampled_from(GATES), zoneout=ZONEOUT, seed=st.integers(0, 2**16))
def test_layer_fuzz(kwidth, F, H, B, T, state, pooling, chunk, gates, zoneout, seed):
    p = 0.0 if zoneout == "none" else 0.35
    mask = zoneout == "train"
    tc, fc = _calls(state, mask)
    case = Case(
        "qrnn_layer_fuzz", lambda: tq.QRNNLayer(F, H, kwidth, gates=gates, zoneout=p),
        lambda r: fq.QRNNLayer(F, H, kwidth, pooling, gates=gates, zoneout=p, chunk=chunk,
                               rngs=r),
        _inputs(B, T, F, (B, H) if state else None, (B, T, H) if mask else None),
        train=mask, torch_call=tc, flax_call=fc, seed=seed)
    _assert_passed(case)


@pytest.mark.fuzz
@settings(deadline=None, max_examples=6)
@given(kwidth=st.integers(1, 3), F=st.integers(1, 4), H=st.integers(1, 4),
       B=st.integers(1, 2), T=st.integers(1, 9), layers=st.integers(1, 3),
       bidirectional=st.booleans(), state=st.booleans(),
       pooling=st.sampled_from(fq.POOLINGS), chunk=st.sampled_from([None, 2, 3]),
       gates=st.sampled_from(GATES), zoneout=ZONEOUT, dtype=st.sampled_from(["float64", "float32"]),
       seed=st.integers(0, 2**16))
def test_stack_fuzz(kwidth, F, H, B, T, layers, bidirectional, state, pooling, chunk, gates,
                    zoneout, dtype, seed):
    p = 0.0 if zoneout == "none" else 0.35
    mask = zoneout == "train"
    n = layers * (2 if bidirectional else 1)
    tc, fc = _calls(state, mask)
    case = Case(
        "qrnn_stack_fuzz",
        lambda: tq.QRNN(F, H, layers, kwidth, gates, p, bidirectional=bidirectional),
        lambda r: fq.QRNN(F, H, layers, kwidth, pooling, gates=gates, zoneout=p,
                          bidirectional=bidirectional, chunk=chunk, rngs=r),
        _inputs(B, T, F, (n, B, H) if state else None, (n, B, T, H) if mask else None),
        train=mask, torch_call=tc, flax_call=fc, seed=seed)
    _assert_passed(case, dtype)


# ------------------------------------------------------------------ pooling functions

def _torch_recurrence(a, b, c0, reverse=False):
    a, b, c = torch.as_tensor(a), torch.as_tensor(b), torch.as_tensor(c0)
    out = [None] * a.shape[1]
    steps = range(a.shape[1] - 1, -1, -1) if reverse else range(a.shape[1])
    for t in steps:
        c = a[:, t] * c + b[:, t]
        out[t] = c
    return torch.stack(out, 1).numpy()


@pytest.mark.parametrize("pooling", fq.POOLINGS)
@pytest.mark.parametrize("T,chunk", [(1, None), (7, 3), (13, 16)])
def test_f_pool_and_recurrence_match_torch_loop(pooling, T, chunk):
    rng = np.random.default_rng(T * 31 + (chunk or 0))
    f = 1 / (1 + np.exp(-rng.standard_normal((3, T, 5))))
    z = np.tanh(rng.standard_normal((3, T, 5)))
    c0 = rng.standard_normal((3, 5))
    want = _torch_recurrence(f, (1 - f) * z, c0)
    got = fq.f_pool(jnp.asarray(f), jnp.asarray(z), jnp.asarray(c0), pooling=pooling,
                    chunk=chunk)
    np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-13)
    for reverse in (False, True):
        want = _torch_recurrence(f, z, c0, reverse)
        got = fq.linear_recurrence(jnp.asarray(f), jnp.asarray(z), jnp.asarray(c0),
                                   method=pooling, chunk=chunk, reverse=reverse)
        np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-13)


# ------------------------------------------------------------------ autodiff modes

def _modes_agree(fn, args, seed):
    """Forward mode = reverse mode = finite differences for ``fn(*args)`` (float64).

    ``jax.jacfwd`` and ``jax.jacrev`` w.r.t. every argument (pytrees of float arrays) agree
    to 1e-12 of the Jacobian's largest entry; the JVP along a random direction agrees with
    the central difference of step 1e-6 (truncation ~1e-13, rounding ~1e-10) to 1e-8.
    """
    argnums = tuple(range(len(args)))
    fwd = jax.jit(jax.jacfwd(fn, argnums))(*args)
    rev = jax.jit(jax.jacrev(fn, argnums))(*args)
    for f, r in zip(jax.tree.leaves(fwd), jax.tree.leaves(rev), strict=True):
        np.testing.assert_allclose(np.asarray(f), np.asarray(r), rtol=0,
                                   atol=1e-12 * np.abs(np.asarray(r)).max())
    rng = np.random.default_rng(seed)
    v = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape)), args)
    _, tangent = jax.jit(lambda *a: jax.jvp(fn, a, v))(*args)
    eps = 1e-6
    plus = fn(*jax.tree.map(lambda a, d: a + eps * d, args, v))
    minus = fn(*jax.tree.map(lambda a, d: a - eps * d, args, v))
    for t, p, m in zip(jax.tree.leaves(tangent), jax.tree.leaves(plus),
                       jax.tree.leaves(minus), strict=True):
        t = np.asarray(t)
        np.testing.assert_allclose(t, (np.asarray(p) - np.asarray(m)) / (2 * eps), rtol=0,
                                   atol=1e-8 * np.abs(t).max())


def _model_fn(model, mask=None):
    """(params, x, state) ↦ model outputs, the parameters as a differentiable pytree."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def fn(params, x, state):
        return nnx.merge(graphdef, params, rest)(x, state, zoneout_mask=mask)
    return fn, params


@pytest.mark.parametrize("gates", GATES)
@pytest.mark.parametrize("pooling", fq.POOLINGS)
def test_layer_forward_mode(pooling, gates):
    """jax.jacfwd / jax.jvp through QRNNLayer, every pooling × gate variant, state given;
    zoneout none / evaluation (scalar keep) / training (injected mask), each pooling and
    each variant meeting each zoneout mode once (T = 7 with blocks of 3: a partial block)."""
    i = fq.POOLINGS.index(pooling) + GATES.index(gates)
    zoneout = ("none", "eval", "train")[i % 3]
    B, T, F, H = 2, 7, 3, 2
    model = fq.QRNNLayer(F, H, 2, pooling, gates=gates, chunk=3,
                         zoneout=0.0 if zoneout == "none" else 0.35, rngs=nnx.Rngs(i))
    rng = np.random.default_rng(i)
    mask = None
    if zoneout == "train":
        mask = jnp.asarray(rng.random((B, T, H)) < 0.6)
    else:
        model.eval()
    fn, params = _model_fn(model, mask)
    params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
    _modes_agree(fn, (params, jnp.asarray(rng.standard_normal((B, T, F))),
                      jnp.asarray(rng.standard_normal((B, H)))), seed=i)


@pytest.mark.parametrize("pooling,gates", list(zip(fq.POOLINGS, GATES)))
def test_stack_forward_mode(pooling, gates):
    """The same through a 2-layer bidirectional QRNN (no state: the zero initial state has
    no tangent), zoneout in training mode with an injected mask."""
    B, T, F, H = 2, 5, 2, 2
    model = fq.QRNN(F, H, 2, 2, pooling, gates=gates, zoneout=0.3, bidirectional=True,
                    chunk=2, rngs=nnx.Rngs(1))
    rng = np.random.default_rng(7)
    fn, params = _model_fn(model, jnp.asarray(rng.random((4, B, T, H)) < 0.6))
    params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
    _modes_agree(lambda p, x: fn(p, x, None),
                 (params, jnp.asarray(rng.standard_normal((B, T, F)))), seed=3)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("method", fq.POOLINGS)
def test_linear_recurrence_forward_mode(method, reverse):
    """Both modes of the general recurrence w.r.t. a, b and c0, and w.r.t. c0 alone (the
    tangent rule's branch where only the initial state has a tangent)."""
    rng = np.random.default_rng(5)
    a = jnp.asarray(rng.uniform(-1, 1, (2, 7, 3)))
    b, c0 = jnp.asarray(rng.standard_normal((2, 7, 3))), jnp.asarray(rng.standard_normal((2, 3)))

    def fn(a, b, c0):
        return fq.linear_recurrence(a, b, c0, method=method, chunk=3, reverse=reverse)

    _modes_agree(fn, (a, b, c0), seed=6)
    _modes_agree(lambda c0: fn(a, b, c0), (c0,), seed=8)


@pytest.mark.parametrize("pooling", fq.POOLINGS)
def test_reverse_mode_keeps_inputs_and_cells_only(pooling, capsys):
    """Reverse mode of the pooling keeps what the backward pass needs and nothing it can
    recompute cheaply: pre, bias, c0, the zoneout mask and the cells c — no gates."""
    B, T, H = 2, 9, 3
    rng = np.random.default_rng(0)
    pre = jnp.asarray(rng.standard_normal((B, T, 2 * H)))
    keep = jnp.asarray(rng.random((B, T, H)) < 0.6)
    print_saved_residuals(
        lambda pre, bias, c0: fq.qrnn_pool(pre, c0, bias=bias, keep=keep, pooling=pooling,
                                           chunk=4)[0],
        pre, jnp.ones(2 * H), jnp.ones((B, H)))
    shapes = sorted(line.split()[0] for line in capsys.readouterr().out.splitlines())
    assert shapes == sorted(["f64[2,9,6]", "f64[6]", "f64[2,3]", "f64[2,9,3]", "f64[2,9,3]"])


# ------------------------------------------------------------------ zoneout's own mask

def test_zoneout_random_mask_is_the_papers():
    """Train mode draws its own mask: where it is 0 the f-pooling state is carried over
    (c_t = c_{t−1}), which recovers the mask from the output. torch fed that mask must give
    the same output; the kept fraction is 1 − p; a second call draws anew.

    "Carried over" is up to one rounding, not bit for bit: XLA may compute the loop's
    carry and its emitted output from separate copies of ``f·c + b``, one contracted to an
    FMA and one not, so h_t and h_{t−1} of a zoned-out step can differ in the last bit. A
    kept step moves the state by (1 − f)(z − c), which is far above 1e-12 for random
    weights, so the threshold separates the two cases."""
    B, T, F, H, p = 4, 50, 3, 16, 0.3
    tm = tq.QRNNLayer(F, H, 2, zoneout=p).double()
    fm = fq.QRNNLayer(F, H, 2, zoneout=p, rngs=nnx.Rngs(0))
    load_torch_state_dict(fm, tm.state_dict())
    fm.train()
    rng = np.random.default_rng(0)
    x, s = rng.standard_normal((B, T, F)), rng.standard_normal((B, H))
    h1, c1 = (np.asarray(a) for a in fm(jnp.asarray(x), jnp.asarray(s)))
    prev = np.concatenate([s[:, None], h1[:, :-1]], axis=1)
    keep = np.abs(h1 - prev) > 1e-12  # (B, T, H)
    with torch.no_grad():
        th, tc = tm(torch.as_tensor(x), torch.as_tensor(s), torch.as_tensor(keep))
    np.testing.assert_allclose(h1, th.numpy(), rtol=0, atol=1e-13)
    np.testing.assert_allclose(c1, tc.numpy(), rtol=0, atol=1e-13)
    n = keep.size  # kept fraction within 5 standard deviations of 1 − p
    assert abs(keep.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    h2, _ = fm(jnp.asarray(x), jnp.asarray(s))
    assert not np.array_equal(np.asarray(h2), h1)
    fm.eval()  # evaluation mode: deterministic, the expectation of the mask
    tm.eval()
    with torch.no_grad():
        th, _ = tm(torch.as_tensor(x), torch.as_tensor(s))
    np.testing.assert_allclose(np.asarray(fm(jnp.asarray(x), jnp.asarray(s))[0]), th.numpy(),
                               rtol=0, atol=1e-13)


def test_f_variant_is_the_slide():
    """The extended torch reference with gates='f' and no zoneout is the slide's layer."""
    torch.manual_seed(0)
    slide, ext = tq.fQRNNLayer(3, 4, 2).double(), tq.QRNNLayer(3, 4, 2).double()
    ext.load_state_dict(slide.state_dict())
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    for s in (None, torch.randn(2, 4, dtype=torch.float64)):
        for a, b in zip(slide(x, s), ext(x, s)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-15)


def test_state_dict_keys():
    t = tq.QRNN(3, 4, 2, kwidth=2, gates="ifo", bidirectional=True)
    f = fq.QRNN(3, 4, 2, 2, gates="ifo", bidirectional=True, rngs=nnx.Rngs(0))
    want = {k: tuple(v.shape) for k, v in t.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in to_torch_state_dict(f).items()}
    assert got == want
    assert "layers.3.conv.weight" in got


# ------------------------------------------------------------------ errors

def test_errors_name_the_argument():
    layer = fq.QRNNLayer(3, 4, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"x must have rank 3 .*\(batch, time, features\)"):
        layer(jnp.ones((5, 3)))
    with pytest.raises(ValueError, match="x must be channels-last"):
        layer(jnp.ones((2, 3, 5)))
    with pytest.raises(ValueError, match=r"state must be \(batch, num_outputs\)"):
        layer(jnp.ones((2, 5, 3)), jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="zoneout_mask must be"):
        layer(jnp.ones((2, 5, 3)), zoneout_mask=jnp.ones((2, 5, 3)))
    layer.eval()
    with pytest.raises(ValueError, match="zoneout_mask is only used in training mode"):
        layer(jnp.ones((2, 5, 3)), zoneout_mask=jnp.ones((2, 5, 4)))
    with pytest.raises(ValueError, match="at least one time step"):
        layer(jnp.ones((2, 0, 3)))
    for kw, msg in [({"pooling": "fft"}, "pooling must be one of"),
                    ({"gates": "io"}, "gates must be one of"),
                    ({"zoneout": 1.0}, r"zoneout must be in \[0, 1\)"),
                    ({"zoneout_eval": "mean"}, "zoneout_eval must be"),
                    ({"chunk": 0}, "chunk must be a positive int")]:
        with pytest.raises(ValueError, match=msg):
            fq.QRNNLayer(3, 4, rngs=nnx.Rngs(0), **kw)
    stack = fq.QRNN(3, 4, 2, bidirectional=True, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"state must be \(num_layers·D, batch, hidden_size\)"):
        stack(jnp.ones((2, 5, 3)), jnp.ones((2, 2, 4)))
    with pytest.raises(ValueError, match="QRNN: num_layers must be at least 1, got 0"):
        fq.QRNN(3, 4, 0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="gates must be one of"):
        tq.QRNNLayer(3, 4, gates="io")
