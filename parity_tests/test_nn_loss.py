"""The loss twins (:mod:`flax_arch.nn.loss`) against torch: hypothesis fuzzing of what
module_db does not reach (weights, ignore_index and label smoothing together, class
indices at the ignore value, every rank, kinks hit exactly with integer-valued inputs,
clamps, broadcasting of ``var`` / ``pos_weight`` / ``weight``), forward and gradients
w.r.t. every floating argument, float64 within 1e-12 and a drawn subset in float32
within 1e-5; then the errors for bad arguments and inputs, the legacy
``size_average``/``reduce`` mapping, the buffers' round trip through the converter, and
the jit path of an out-of-range class index.

CrossEntropyLoss/NLLLoss run with torch's channels-first input moved channels-last by
the harness (``in_layouts="channels"``) for ranks ≥ 3.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from flax_arch.interop import load_torch_state_dict, to_torch_state_dict
from flax_arch.nn import loss as L
from flax_arch.parity import Case

from .test_layers import check, float32_too, fuzz, seeds

C = "channels"
REDUCTIONS = st.sampled_from(["mean", "sum", "none"])
# torch warns on KLDivLoss 'mean' and on broadcast regression targets; both sides do
pytestmark = [pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning"),
              pytest.mark.filterwarnings("ignore:Using a target size:UserWarning")]


def _t(a):
    return None if a is None else torch.tensor(np.asarray(a))


def _j(a):
    return None if a is None else jnp.asarray(a)


def _shape(draw, rank, c):
    """(torch shape, batch shape) of a class-axis input of ``rank`` with ``c`` classes."""
    if rank == 1:
        return (c,), ()
    n = draw(st.integers(0 if draw(st.integers(0, 9)) == 0 else 1, 3))
    spatial = tuple(draw(st.integers(1, 3)) for _ in range(rank - 2))
    return (n, c, *spatial), (n, *spatial)


# ------------------------------------------------------------------ CrossEntropy / NLL

@st.composite
def class_configs(draw, cross_entropy: bool):
    c = draw(st.integers(1, 5))
    rank = draw(st.integers(1, 5))
    shape, batch = _shape(draw, rank, c)
    prob = cross_entropy and draw(st.booleans())
    weight = draw(st.sampled_from([None, "pos", "zeros"]))
    kw = dict(reduction=draw(REDUCTIONS))
    if not prob:
        kw["ignore_index"] = draw(st.sampled_from([-100, -1, 0, c - 1, 7]))
    if cross_entropy:
        kw["label_smoothing"] = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5, 1.0]))
    ignore_all = draw(st.integers(0, 7)) == 0
    int32 = draw(st.booleans())
    return c, shape, batch, prob, weight, kw, ignore_all, int32


def _class_case(cfg, seed, cross_entropy):
    c, shape, batch, prob, weight, kw, ignore_all, int32 = cfg
    rng = np.random.default_rng(seed)
    w = None if weight is None else (rng.uniform(0.1, 2, c) if weight == "pos"
                                     else np.where(rng.integers(0, 2, c) == 1, 0.0, 1.5))
    name = "CrossEntropyLoss" if cross_entropy else "NLLLoss"
    tcls, fcls = getattr(torch.nn, name), getattr(L, name)
    channels = [C] if len(shape) >= 3 else [None]

    def make(rng):
        x = rng.standard_normal(shape)
        if not cross_entropy:
            x = x - np.log(np.exp(x).sum(axis=0 if len(shape) == 1 else 1, keepdims=True))
        if prob:
            p = rng.uniform(0, 1, shape)
            return x, p / p.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)
        t = rng.integers(0, c, batch)
        ii = kw["ignore_index"]
        t = np.where(rng.integers(0, 3, batch) == 0, ii, t) if ii != 7 else t
        if ignore_all:
            t = np.full(batch, ii)
        return x, t.astype(np.int64)

    def fcall(m, x, t):
        return m(x, t.astype(jnp.int32) if int32 and not prob else t)

    return Case(f"{name}(weight={w}, {kw}) on {shape} prob={prob}",
                lambda: tcls(weight=_t(w), **kw), lambda r: fcls(weight=_j(w), **kw), make,
                channels + (channels if prob else [None]), [None], seed=seed,
                flax_call=fcall)


@pytest.mark.fuzz
@fuzz(20)
@given(class_configs(True), seeds, float32_too)
def test_cross_entropy(cfg, seed, f32):
    check(_class_case(cfg, seed, True), f32)


@pytest.mark.fuzz
@fuzz(10)
@given(class_configs(False), seeds, float32_too)
def test_nll(cfg, seed, f32):
    check(_class_case(cfg, seed, False), f32)


# ------------------------------------------------------------------ elementwise losses

def _ties(shape, scale=1.0):
    """Integer-valued inputs times ``scale``: differences hit the kinks exactly."""
    return lambda rng: tuple(rng.integers(-2, 3, shape).astype(np.float64) * scale
                             for _ in range(2))


@st.composite
def regression_configs(draw):
    name = draw(st.sampled_from(["L1Loss", "MSELoss", "SmoothL1Loss", "HuberLoss",
                                 "SoftMarginLoss"]))
    kw = dict(reduction=draw(REDUCTIONS))
    if name == "SmoothL1Loss":
        kw["beta"] = draw(st.sampled_from([0.0, 0.5, 1.0, 2.0]))
    if name == "HuberLoss":
        kw["delta"] = draw(st.sampled_from([0.5, 1.0, 2.0]))
    shape = tuple(draw(st.integers(0, 3)) for _ in range(draw(st.integers(0, 3))))
    return name, kw, shape, draw(st.booleans())


@pytest.mark.fuzz
@fuzz(15)
@given(regression_configs(), seeds, float32_too)
def test_regression(cfg, seed, f32):
    name, kw, shape, ties = cfg
    make = _ties(shape, 0.5) if ties else (
        lambda rng: (rng.standard_normal(shape), rng.standard_normal(shape)))
    tcall = fcall = None
    if name == "SoftMarginLoss":  # torch refuses a target that requires grad: a constant
        target = np.where(np.random.default_rng(seed).integers(0, 2, shape) == 1, 1.0, -1.0)
        make = lambda rng: (rng.standard_normal(shape),)  # noqa: E731
        tcall = lambda m, x: m(x, torch.tensor(target, dtype=x.dtype))  # noqa: E731
        fcall = lambda m, x: m(x, jnp.asarray(target, x.dtype))  # noqa: E731
    check(Case(f"{name}({kw}) on {shape} ties={ties}", lambda: getattr(torch.nn, name)(**kw),
               lambda r: getattr(L, name)(**kw), make, seed=seed, torch_call=tcall,
               flax_call=fcall), f32)


@st.composite
def bce_configs(draw):
    shape = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 3))))
    wshape = None if draw(st.booleans()) else shape[draw(st.integers(0, len(shape))):]
    logits = draw(st.booleans())
    pshape = None if not logits or draw(st.booleans()) else shape[draw(st.integers(0, len(shape))):]
    return shape, wshape, pshape, logits, draw(REDUCTIONS), draw(st.booleans())


@pytest.mark.fuzz
@fuzz(15)
@given(bce_configs(), seeds, float32_too)
def test_bce(cfg, seed, f32):
    shape, wshape, pshape, logits, red, edges = cfg
    rng = np.random.default_rng(seed)
    w = None if wshape is None else rng.uniform(0, 2, wshape)
    pw = None if pshape is None else rng.uniform(0.2, 3, pshape)

    def make(rng):
        x = rng.standard_normal(shape) * 3 if logits else rng.uniform(0, 1, shape)
        if edges and not logits:  # exact 0 and 1: the −100 clamps and the 1e-12 floor
            x = np.where(rng.integers(0, 3, shape) == 0, rng.integers(0, 2, shape), x)
        return x, rng.uniform(0, 1, shape)

    if logits:
        def tm():
            return torch.nn.BCEWithLogitsLoss(_t(w), reduction=red, pos_weight=_t(pw))

        def fm(r):
            return L.BCEWithLogitsLoss(_j(w), reduction=red, pos_weight=_j(pw))
    else:
        tm = lambda: torch.nn.BCELoss(_t(w), reduction=red)  # noqa: E731
        fm = lambda r: L.BCELoss(_j(w), reduction=red)  # noqa: E731
    check(Case(f"BCE logits={logits} w={wshape} pw={pshape} {red} on {shape}", tm, fm, make,
               seed=seed), f32 and not edges)


@st.composite
def likelihood_configs(draw):
    name = draw(st.sampled_from(["KLDivLoss", "PoissonNLLLoss", "GaussianNLLLoss"]))
    red = draw(st.sampled_from(["mean", "sum", "none"] + (["batchmean"]
                                                           if name == "KLDivLoss" else [])))
    kw = dict(reduction=red)
    if name == "KLDivLoss":
        kw["log_target"] = draw(st.booleans())
    elif name == "PoissonNLLLoss":
        kw.update(log_input=draw(st.booleans()), full=draw(st.booleans()),
                  eps=draw(st.sampled_from([1e-8, 0.1])))
    else:
        kw.update(full=draw(st.booleans()), eps=draw(st.sampled_from([1e-6, 0.3])))
    least_rank = 1 if name == "GaussianNLLLoss" else 0
    shape = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(least_rank, 3))))
    var = draw(st.sampled_from(["same", "drop_last", "keep_1", "one_axis", "float"]))
    return name, kw, shape, var


@pytest.mark.fuzz
@fuzz(15)
@given(likelihood_configs(), seeds, float32_too)
def test_likelihoods(cfg, seed, f32):
    name, kw, shape, var = cfg
    rng0 = np.random.default_rng(seed)
    call = None
    if name == "KLDivLoss":
        def make(rng):
            t = rng.standard_normal(shape) if kw["log_target"] else rng.uniform(0, 1, shape)
            if not kw["log_target"]:
                t = np.where(rng.integers(0, 4, shape) == 0, 0.0, t)  # NaN target grads
            return rng.standard_normal(shape), t
    elif name == "PoissonNLLLoss":
        def make(rng):
            x = rng.standard_normal(shape) if kw["log_input"] else rng.uniform(0.01, 3, shape)
            return x, rng.integers(0, 5, shape).astype(np.float64)
    else:
        vshape = {"same": shape, "drop_last": shape[:-1], "keep_1": shape[:-1] + (1,),
                  "one_axis": tuple(1 if i == len(shape) // 2 else s
                                    for i, s in enumerate(shape))}.get(var)
        if var == "float":
            v = float(rng0.uniform(0, 1))
            call = lambda m, x, t: m(x, t, v)  # noqa: E731

            def make(rng):
                return rng.standard_normal(shape), rng.standard_normal(shape)
        else:
            def make(rng):  # some variances below eps: the clamp's straight-through gradient
                return (rng.standard_normal(shape), rng.standard_normal(shape),
                        rng.uniform(0, 1, vshape) ** 3)
    tcls = getattr(torch.nn, name)
    # a 0-d KL target gradient (log t + 1) − x can cancel to a few ulps of float32, where
    # XLA's and torch's log differ in the last bit: float64 only there
    f32 = f32 and not (name == "KLDivLoss" and shape == ())
    check(Case(f"{name}({kw}) on {shape} var={var}", lambda: tcls(**kw),
               lambda r: getattr(L, name)(**kw), make, seed=seed, torch_call=call,
               flax_call=call), f32)


@st.composite
def margin_configs(draw):
    name = draw(st.sampled_from(["MarginRankingLoss", "HingeEmbeddingLoss",
                                 "CosineEmbeddingLoss", "MultiMarginLoss",
                                 "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss"]))
    kw = dict(reduction=draw(REDUCTIONS))
    if name in ("MarginRankingLoss", "HingeEmbeddingLoss", "CosineEmbeddingLoss",
                "MultiMarginLoss"):
        kw["margin"] = draw(st.sampled_from([0.0, 0.5, 1.0, 2.0]))
    if name == "MultiMarginLoss":
        kw["p"] = draw(st.sampled_from([1, 2]))
    batched = draw(st.booleans())
    return name, kw, batched, draw(st.integers(1, 4)), draw(st.integers(1, 5)), \
        draw(st.booleans()), draw(st.booleans())


@pytest.mark.fuzz
@fuzz(20)
@given(margin_configs(), seeds, float32_too)
def test_margins(cfg, seed, f32):
    name, kw, batched, n, c, ties, weighted = cfg
    rng0 = np.random.default_rng(seed)
    w = rng0.uniform(0.1, 2, c) if weighted else None
    if name in ("MultiMarginLoss", "MultiLabelSoftMarginLoss"):
        kw["weight"] = w
    shape = (n, c) if batched else (c,)

    def x(rng, s):
        return rng.integers(-2, 3, s).astype(np.float64) * 0.5 if ties else rng.standard_normal(s)

    def sign(rng, s):
        return np.where(rng.integers(0, 2, s) == 1, 1.0, -1.0)

    if name == "MarginRankingLoss":
        s = (n,) if batched else ()
        make = lambda rng: (x(rng, s), x(rng, s), sign(rng, s))  # noqa: E731
    elif name == "HingeEmbeddingLoss":
        make = lambda rng: (x(rng, shape), sign(rng, shape))  # noqa: E731
    elif name == "CosineEmbeddingLoss":
        make = lambda rng: (x(rng, shape) + 0.1, x(rng, shape) - 0.1,  # noqa: E731
                            sign(rng, shape[:-1]))
    elif name == "MultiMarginLoss":
        make = lambda rng: (x(rng, shape), rng.integers(0, c, shape[:-1]))  # noqa: E731
    elif name == "MultiLabelMarginLoss":
        def make(rng):
            t = rng.integers(-1, c, shape)
            return x(rng, shape), t
    else:
        make = lambda rng: (x(rng, shape), rng.integers(0, 2, shape).astype(  # noqa: E731
            np.float64 if weighted else np.int64))
    tkw = {k: _t(v) if k == "weight" else v for k, v in kw.items()}
    fkw = {k: _j(v) if k == "weight" else v for k, v in kw.items()}
    check(Case(f"{name}({kw}) on {shape} ties={ties}", lambda: getattr(torch.nn, name)(**tkw),
               lambda r: getattr(L, name)(**fkw), make, seed=seed), f32)


# ------------------------------------------------------------------ kinks, exactly

def test_kink_gradients():
    """L1 at 0 (sign 0), SmoothL1 at |d| = beta, Huber at |d| = delta, the hinge losses
    at 0, as torch's backward formulas."""
    d = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    for tm, fm in [(torch.nn.L1Loss(reduction="sum"), L.L1Loss(reduction="sum")),
                   (torch.nn.SmoothL1Loss(reduction="sum"), L.SmoothL1Loss(reduction="sum")),
                   (torch.nn.HuberLoss(reduction="sum", delta=0.5),
                    L.HuberLoss(reduction="sum", delta=0.5)),
                   (torch.nn.HingeEmbeddingLoss(reduction="sum", margin=0.5),
                    L.HingeEmbeddingLoss(reduction="sum", margin=0.5))]:
        x = torch.tensor(d, requires_grad=True)
        t = torch.zeros(7, dtype=torch.float64) if not isinstance(tm, torch.nn.HingeEmbeddingLoss) \
            else torch.tensor([-1.0, 1, -1, 1, -1, 1, -1], dtype=torch.float64)
        tm(x, t).backward()
        g = jax.grad(lambda a: fm(a, jnp.asarray(t.numpy())))(jnp.asarray(d))
        np.testing.assert_array_equal(np.asarray(g), x.grad.numpy(), err_msg=type(fm).__name__)


def test_bce_clamp_gradients():
    x = np.array([0.0, 1e-17, 0.5, 1.0, 1.0])
    t = np.array([0.3, 0.0, 0.5, 1.0, 0.2])
    xt, tt = torch.tensor(x, requires_grad=True), torch.tensor(t, requires_grad=True)
    out = torch.nn.BCELoss(reduction="sum")(xt, tt)
    out.backward()
    f = L.BCELoss(reduction="sum")
    np.testing.assert_allclose(float(f(jnp.asarray(x), jnp.asarray(t))), out.item(), rtol=1e-14)
    gx, gt = jax.grad(f, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(t))
    np.testing.assert_allclose(np.asarray(gx), xt.grad.numpy(), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(gt), tt.grad.numpy(), rtol=1e-14)


def test_gaussian_var_clamp_straight_through():
    x, t = np.array([1.0, 2.0]), np.array([0.0, 0.5])
    v = np.array([1e-9, 0.5])
    vt = torch.tensor(v, requires_grad=True)
    torch.nn.GaussianNLLLoss(eps=1e-3)(torch.tensor(x), torch.tensor(t), vt).backward()
    g = jax.grad(lambda a: L.GaussianNLLLoss(eps=1e-3)(jnp.asarray(x), jnp.asarray(t), a))(
        jnp.asarray(v))
    assert vt.grad[0] != 0
    np.testing.assert_allclose(np.asarray(g), vt.grad.numpy(), rtol=1e-14)


# ------------------------------------------------------------------ legacy args, buffers, jit

@pytest.mark.parametrize("sa, red", [(None, None), (True, None), (False, None), (None, False),
                                     (False, True), (True, False)])
def test_legacy_reduction(sa, red):
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        want = torch.nn.NLLLoss(size_average=sa, reduce=red).reduction
        got = L.NLLLoss(size_average=sa, reduce=red).reduction
        got_kl = L.KLDivLoss(size_average=sa, reduce=red, reduction="sum").reduction
    assert got == want
    assert got_kl == (want if (sa, red) != (None, None) else "sum")
    legacy = sum("size_average and reduce args will be deprecated" in str(w.message) for w in ws)
    assert legacy == (0 if (sa, red) == (None, None) else 3)


def test_buffers_round_trip():
    w, pw = np.array([0.5, 1.0, 2.0]), np.array([1.5, 0.5, 3.0])
    for tm, fm in [(torch.nn.CrossEntropyLoss(weight=_t(w)), L.CrossEntropyLoss(weight=_j(w * 0))),
                   (torch.nn.BCEWithLogitsLoss(weight=_t(w), pos_weight=_t(pw)),
                    L.BCEWithLogitsLoss(weight=_j(w * 0), pos_weight=_j(pw * 0))),
                   (torch.nn.MultiMarginLoss(weight=_t(w)), L.MultiMarginLoss(weight=_j(w * 0)))]:
        load_torch_state_dict(fm, tm.state_dict())
        back = to_torch_state_dict(fm)
        assert set(back) == set(tm.state_dict())
        for k, v in tm.state_dict().items():
            np.testing.assert_array_equal(np.asarray(back[k]), v.numpy())
    assert L.CrossEntropyLoss().weight is None
    assert to_torch_state_dict(L.CrossEntropyLoss()) == {}


def test_out_of_range_index_under_jit_is_nan():
    m = L.CrossEntropyLoss()
    x = jnp.zeros((2, 3))
    with pytest.raises(IndexError, match="out of bounds"):
        m(x, jnp.array([0, 3]))
    out = jax.jit(lambda x, t: m(x, t))(x, jnp.array([0, 3]))
    assert np.isnan(float(out))


def test_half_precision_runs():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 3, 5)), jnp.bfloat16)
    out = L.CrossEntropyLoss()(x, jnp.zeros((4, 3), jnp.int32))
    assert out.dtype == jnp.bfloat16


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize("make, match", [
    (lambda: L.MSELoss(reduction="avg"), "reduction"),
    (lambda: L.MSELoss(reduction="batchmean"), "reduction"),
    (lambda: L.L1Loss(size_average=1), "size_average"),
    (lambda: L.SmoothL1Loss(beta=-1.0), "beta"),
    (lambda: L.HuberLoss(delta=0.0), "delta"),
    (lambda: L.HuberLoss(delta=1.0 + 0.0j), "delta"),
    (lambda: L.CrossEntropyLoss(label_smoothing=1.5), "label_smoothing"),
    (lambda: L.CrossEntropyLoss(ignore_index=1.0), "ignore_index"),
    (lambda: L.MultiMarginLoss(p=3), "p"),
    (lambda: L.MultiMarginLoss(weight=jnp.ones((2, 2))), "weight"),
    (lambda: L.NLLLoss(weight=jnp.ones(3, jnp.int32)), "weight"),
    (lambda: L.KLDivLoss(log_target=1), "log_target"),
    (lambda: L.MarginRankingLoss(margin="1"), "margin"),
])
def test_bad_arguments(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()


X2 = jnp.zeros((2, 3))


@pytest.mark.parametrize("call, exc, match", [
    (lambda: L.CrossEntropyLoss()(X2, jnp.array([0, 1, 2])), ValueError, "batch_size"),
    (lambda: L.CrossEntropyLoss()(jnp.zeros((2, 5, 3)), jnp.zeros((2, 4), int)), ValueError,
     "channels-last"),
    (lambda: L.CrossEntropyLoss()(X2, jnp.zeros(2)), TypeError, "target"),
    (lambda: L.CrossEntropyLoss()(X2, jnp.zeros((2, 3), int)), TypeError, "probabilities"),
    (lambda: L.CrossEntropyLoss(ignore_index=1)(X2, jnp.ones((2, 3)) / 3), ValueError,
     "ignore_index"),
    (lambda: L.CrossEntropyLoss(weight=jnp.ones(2))(X2, jnp.array([0, 1])), ValueError,
     "weight"),
    (lambda: L.CrossEntropyLoss()(jnp.zeros((2, 3), int), jnp.array([0, 1])), TypeError,
     "input"),
    (lambda: L.NLLLoss()(X2, jnp.array([0, 5])), IndexError, "out of bounds"),
    (lambda: L.NLLLoss()(jnp.zeros(()), jnp.array(0)), ValueError, "input"),
    (lambda: L.BCELoss()(jnp.array([1.5]), jnp.array([1.0])), ValueError, "between 0 and 1"),
    (lambda: L.BCELoss()(jnp.array([0.5]), jnp.array([1.0, 0.0])), ValueError, "target"),
    (lambda: L.BCEWithLogitsLoss(pos_weight=jnp.ones(4))(X2, X2), ValueError, "pos_weight"),
    (lambda: L.GaussianNLLLoss()(X2, X2, -jnp.ones((2, 3))), ValueError, "negative"),
    (lambda: L.GaussianNLLLoss()(X2, X2, jnp.ones((3, 2))), ValueError, "var"),
    (lambda: L.GaussianNLLLoss()(X2, X2, -1.0), ValueError, "negative"),
    (lambda: L.MarginRankingLoss()(X2, X2, jnp.ones(2)), ValueError, "rank"),
    (lambda: L.CosineEmbeddingLoss()(X2, X2, jnp.ones(())), ValueError, "input1"),
    (lambda: L.CosineEmbeddingLoss()(X2, X2, jnp.ones((2, 3))), ValueError, "target"),
    (lambda: L.MultiMarginLoss()(X2, jnp.array([0, 1, 2])), ValueError, "target"),
    (lambda: L.MultiMarginLoss()(X2, jnp.array([0, 3])), ValueError, "out of range"),
    (lambda: L.MultiMarginLoss()(X2, jnp.array([0.0, 1.0])), TypeError, "target"),
    (lambda: L.MultiLabelMarginLoss()(X2, jnp.zeros((2, 2), int)), ValueError, "target"),
    (lambda: L.MultiLabelMarginLoss()(jnp.zeros((2, 0)), jnp.zeros((2, 0), int)), ValueError,
     "non-empty"),
    (lambda: L.MultiLabelSoftMarginLoss()(jnp.zeros(()), jnp.zeros(())), ValueError, "input"),
    (lambda: L.MSELoss()(X2, jnp.zeros((4,))), ValueError, "broadcast"),
])
def test_bad_inputs(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
