"""``flax_arch.nn.CTCLoss`` against ``torch.nn.CTCLoss`` (CPU): hypothesis fuzzing over what
module_db does not reach, explicit edge cases, and argument/input errors.

module_db's 40 inputs all have T = 50, N = 3, C = 15, input lengths = T and possible
alignments; here the fuzzing draws varying input lengths (< T), target lengths 0 and
impossible alignments (loss ∞, NaN gradient rows; ``zero_infinity``), unnormalised
log-probabilities, unbatched input, every reduction, both target forms and both length
forms (tuple or integer array). Forward and the gradient w.r.t. ``log_probs`` — torch's
CPU gradient, not the plain derivative (``flax_arch.ops.ctc._bwd``) — must agree to
1e-12 in float64 and 1e-5 in float32 (a drawn subset), non-finite entries exactly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from flax_arch.nn.ctc import CTCLoss, ctc_loss
from flax_arch.parity import Case
from parity_tests.test_layers import check, float32_too, fuzz


@st.composite
def ctc_configs(draw):
    """(constructor kwargs, batched, inputs maker, torch call, flax call)."""
    t = draw(st.integers(1, 7))
    c = draw(st.integers(2, 5))
    batched = draw(st.booleans())
    n = draw(st.integers(1, 3)) if batched else 1
    blank = draw(st.integers(0, c - 1))
    kw = dict(blank=blank, reduction=draw(st.sampled_from(["mean", "sum", "none"])),
              zero_infinity=draw(st.booleans()))
    il = [draw(st.integers(0, t)) for _ in range(n)]
    # up to T targets: lengths past what the input can align give ∞
    tl = [draw(st.integers(0, t)) for _ in range(n)]
    labels = [k for k in range(c) if k != blank]
    width = max(tl) + draw(st.integers(0, 2))
    rows = [[draw(st.sampled_from(labels)) for _ in range(width)] for _ in range(n)]
    concat = draw(st.booleans())
    if concat:
        tg = np.array([v for r, k in zip(rows, tl) for v in r[:k]], dtype=np.int64)
    else:
        tg = np.array(rows, dtype=np.int64).reshape(n, width)
        if not batched:
            concat = True  # unbatched: the concatenated (S,) form, S = target length
            tg = tg[0, :tl[0]]
    tensors = draw(st.booleans())
    normalised = draw(st.booleans())
    int_dtype = draw(st.sampled_from([np.int32, np.int64]))
    tg = tg.astype(int_dtype)

    def make(rng):
        x = rng.standard_normal((t, n, c) if batched else (t, c))
        if normalised:
            x = x - np.log(np.exp(x).sum(-1, keepdims=True))
        return (x, tg, np.array(il), np.array(tl))

    def lengths(a, b, wrap):
        if tensors:
            return wrap(a if batched else a.reshape(())), wrap(b if batched else b.reshape(()))
        return tuple(int(v) for v in a), tuple(int(v) for v in b)

    def torch_call(m, x, y, a, b):
        a, b = lengths(a.numpy(), b.numpy(), torch.as_tensor)
        return m(x, y, a, b)

    def flax_call(m, x, y, a, b):
        a, b = lengths(np.asarray(a), np.asarray(b), jnp.asarray)
        return m(x, y, a, b)

    return kw, make, torch_call, flax_call


@pytest.mark.fuzz
@fuzz(12)
@given(cfg=ctc_configs(), seed=st.integers(0, 2**16), also32=float32_too)
def test_ctc_fuzz(cfg, seed, also32):
    kw, make, torch_call, flax_call = cfg
    case = Case("ctc_fuzz", lambda: torch.nn.CTCLoss(**kw),
                lambda r: CTCLoss(**kw, rngs=r), make, torch_call=torch_call,
                flax_call=flax_call, seed=seed)
    check(case, also32)


def _torch_and_flax(x, tg, il, tl, cot=None, **kw):
    """Loss and gradient w.r.t. log_probs from both (float64), torch's lengths as given."""
    xt = torch.tensor(x, requires_grad=True)
    to = F.ctc_loss(xt, torch.tensor(tg), il, tl, **kw)
    cot = np.ones(tuple(to.shape)) if cot is None else cot
    tg_, = torch.autograd.grad((to * torch.tensor(cot)).sum(), xt)
    conv = lambda v: jnp.asarray(v.numpy()) if isinstance(v, torch.Tensor) else v  # noqa: E731
    f = lambda z: ctc_loss(z, jnp.asarray(tg), conv(il), conv(tl), **kw)  # noqa: E731
    fo = f(jnp.asarray(x))
    fg = jax.grad(lambda z: jnp.sum(f(z) * jnp.asarray(cot)))(jnp.asarray(x))
    return (to.detach().numpy(), tg_.numpy()), (np.asarray(fo), np.asarray(fg))


def _close(got, want):
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=1e-12, atol=1e-13)


def _log_probs(rng, *shape):
    x = rng.standard_normal(shape)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


@pytest.mark.parametrize("zero_infinity", [False, True])
def test_edge_cases(zero_infinity):
    """Impossible alignment (repeated label needs a blank between: 3 labels, 4 frames
    needed, 3 given), an empty target, input length 0 with and without a target, and
    input lengths < T, in one batch."""
    x = _log_probs(np.random.default_rng(0), 6, 5, 4)
    tg = np.array([[1, 1, 2], [1, 2, 3], [2, 0, 0], [3, 0, 0], [2, 3, 0]])
    il, tl = (3, 6, 4, 0, 0), (3, 3, 0, 1, 0)
    (to, tg_), (fo, fg) = _torch_and_flax(x, tg, il, tl, reduction="none",
                                          zero_infinity=zero_infinity)
    assert np.isinf(to[0]) != zero_infinity and np.isinf(to[3]) != zero_infinity
    _close(fo, to)
    _close(fg, tg_)
    assert np.isnan(fg[:3, 0]).all() != zero_infinity  # rows t < L of an ∞ loss
    assert all((fg[n_len:, n] == 0).all() for n, n_len in enumerate(il))  # rows t ≥ L: 0


def test_gradient_is_torchs_not_the_derivative():
    """torch's gradient w.r.t. log_probs is exp(log_probs) − occupancy; the plain
    derivative (JAX's own autodiff of the same forward) is −occupancy; through a
    log-softmax both give the same gradient w.r.t. the logits."""
    x = _log_probs(np.random.default_rng(1), 5, 2, 4)
    tg, il, tl = np.array([[1, 2], [3, 3]]), (5, 5), (2, 2)
    (_, tg_), (_, fg) = _torch_and_flax(x, tg, il, tl, reduction="sum")
    _close(fg, tg_)

    def prob_space_nll(lp):  # Graves' recursion on probabilities: plain autodiff is exact
        total = 0.0
        for n in range(2):
            ext = [0, int(tg[n, 0]), 0, int(tg[n, 1]), 0]
            p = jnp.exp(lp[:, n])
            a = jnp.zeros(5).at[0].set(p[0, 0]).at[1].set(p[0, ext[1]])
            for t in range(1, 5):
                prev = a
                a = jnp.stack([(prev[s] + (prev[s - 1] if s else 0.0)
                                + (prev[s - 2] if s > 1 and ext[s] != ext[s - 2] else 0.0))
                               * p[t, ext[s]] for s in range(5)])
            total = total - jnp.log(a[3] + a[4])
        return total

    plain = jax.grad(prob_space_nll)(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(plain), tg_ - np.exp(x), rtol=1e-10, atol=1e-12)
    z = np.random.default_rng(2).standard_normal((5, 2, 4))
    zt = torch.tensor(z, requires_grad=True)
    F.ctc_loss(zt.log_softmax(2), torch.tensor(tg), il, tl, reduction="sum").backward()
    gz = jax.grad(lambda v: ctc_loss(jax.nn.log_softmax(v, -1), jnp.asarray(tg), il, tl,
                                     reduction="sum"))(jnp.asarray(z))
    np.testing.assert_allclose(np.asarray(gz), zt.grad.numpy(), rtol=1e-11, atol=1e-13)


def test_blank_inside_targets_and_padding_garbage():
    """Targets holding the blank (meaningless, but torch defines it, including its
    overwrite at t = L−1) and padding beyond the target lengths that is out of range."""
    x = _log_probs(np.random.default_rng(3), 6, 3, 5)
    tg = np.array([[0, 1, 0], [1, 2, 0], [3, 9, -4]])
    (to, tg_), (fo, fg) = _torch_and_flax(x, tg, (6, 6, 5), (3, 3, 1), reduction="none",
                                          cot=np.array([0.5, -1.0, 2.0]))
    _close(fo, to)
    _close(fg, tg_)


def test_jit_with_traced_lengths():
    """Under jit the lengths are traced: no value checks, same numbers."""
    rng = np.random.default_rng(4)
    x = _log_probs(rng, 7, 3, 6)
    tg = np.array([1, 2, 3, 4, 5, 1, 1])
    il, tl = np.array([7, 5, 6]), np.array([3, 2, 2])
    want = F.ctc_loss(torch.tensor(x), torch.tensor(tg), torch.tensor(il), torch.tensor(tl),
                      reduction="none").numpy()
    got = jax.jit(lambda a, b, c, d: ctc_loss(a, b, c, d, reduction="none"))(
        jnp.asarray(x), jnp.asarray(tg), jnp.asarray(il), jnp.asarray(tl))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)


def test_half_precision_computes_in_float32():
    x = _log_probs(np.random.default_rng(5), 6, 2, 4)
    tg, il, tl = np.array([[1, 2], [3, 1]]), (6, 5), (2, 2)
    want = F.ctc_loss(torch.tensor(x, dtype=torch.float16).float(), torch.tensor(tg), il, tl)
    for dt in (jnp.float16, jnp.bfloat16):
        got = CTCLoss()(jnp.asarray(x, dt), jnp.asarray(tg), il, tl)
        assert got.dtype == dt
        np.testing.assert_allclose(float(got), float(want), rtol=1e-2)


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("kw, exc, name", [
    (dict(blank=-1), ValueError, "blank"),
    (dict(blank=1.0), TypeError, "blank"),
    (dict(reduction="avg"), ValueError, "reduction"),
    (dict(zero_infinity=1), TypeError, "zero_infinity"),
])
def test_bad_constructor(kw, exc, name):
    with pytest.raises(exc, match=name):
        CTCLoss(**kw)


_X = jnp.zeros((5, 2, 4))
_TG = jnp.array([[1, 2], [3, 1]])


@pytest.mark.parametrize("args, kw, exc, name", [
    ((jnp.zeros((5,)), _TG, (5, 5), (2, 2)), {}, ValueError, "log_probs"),
    ((jnp.zeros((5, 2, 4), jnp.int32), _TG, (5, 5), (2, 2)), {}, TypeError, "log_probs"),
    ((_X, _TG, (5, 5), (2, 2)), dict(blank=4), ValueError, "blank"),
    ((_X, _TG.astype(jnp.float32), (5, 5), (2, 2)), {}, TypeError, "targets"),
    ((_X, jnp.zeros((2, 2, 2), jnp.int32), (5, 5), (2, 2)), {}, ValueError, "targets"),
    ((_X, _TG[:1], (5, 5), (2, 2)), {}, ValueError, "targets"),
    ((_X, _TG, (5, 5), (3, 2)), {}, ValueError, "targets"),
    ((_X, jnp.array([1, 2, 3]), (5, 5), (2, 2)), {}, ValueError, "targets"),
    ((_X, jnp.array([[1, 4], [3, 1]]), (5, 5), (2, 2)), {}, ValueError, "targets"),
    ((_X, _TG, (5,), (2, 2)), {}, ValueError, "input_lengths"),
    ((_X, _TG, (6, 5), (2, 2)), {}, ValueError, "input_lengths"),
    ((_X, _TG, (-1, 5), (2, 2)), {}, ValueError, "input_lengths"),
    ((_X, _TG, (5.0, 5), (2, 2)), {}, TypeError, "input_lengths"),
    ((_X, _TG, jnp.array([5.0, 5.0]), (2, 2)), {}, TypeError, "input_lengths"),
    ((_X, _TG, 5, (2, 2)), {}, TypeError, "input_lengths"),
    ((_X, _TG, (5, 5), (-1, 2)), {}, ValueError, "target_lengths"),
    ((_X, _TG, (5, 5), jnp.array([[2, 2]])), {}, ValueError, "target_lengths"),
])
def test_bad_call(args, kw, exc, name):
    with pytest.raises(exc, match=name):
        ctc_loss(*args, **kw)
    if not kw:
        with pytest.raises(exc, match=name):
            CTCLoss()(*args)
