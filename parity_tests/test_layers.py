"""Hypothesis fuzzing of the torch-semantics layers (:mod:`flax_arch.nn`) against torch.

Each example builds a torch layer and its Flax counterpart with the same drawn
hyper-parameters, wraps them in a :class:`flax_arch.parity.Case` and runs
:func:`flax_arch.parity.run_case`: forward output, gradients w.r.t. the input and every
parameter, and the state after the step (BatchNorm running statistics, Embedding's
in-place max_norm renormalisation) must agree with torch to 1e-12 (float64, every
example) and 1e-5 (float32, a drawn subset). Only torch-valid configurations are drawn;
``test_invalid_config_raises`` checks that torch-invalid ones raise ``ValueError`` here.

``FLAX_ARCH_FUZZ_SCALE`` multiplies every ``max_examples``: 0.5 by default, which keeps
the whole suite inside CI's 30 minutes on a 2-core machine; ``FLAX_ARCH_FUZZ_SCALE=2`` (or
more) for a deeper run.
"""

from __future__ import annotations

import math
import os
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import flax_arch.nn as fnn
from flax_arch.interop import load_torch_state_dict, to_torch_state_dict
from flax_arch.parity import Case, run_case

# hypothesis imports libcst (which warns a DeprecationWarning) only when it reports a
# failing example; with warnings as errors that turns a failure into an INTERNALERROR.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # optional dependency of hypothesis
        pass

C = "channels"
_SCALE = float(os.environ.get("FLAX_ARCH_FUZZ_SCALE", "0.5"))


def fuzz(n: int):
    """Deterministic hypothesis settings with ``n`` (× FLAX_ARCH_FUZZ_SCALE) examples."""
    return settings(deadline=None, max_examples=max(1, int(n * _SCALE)), derandomize=True,
                    database=None, suppress_health_check=[HealthCheck.too_slow,
                                                          HealthCheck.filter_too_much])


def check(case: Case, also_float32: bool) -> None:
    """run_case in float64 (and float32 if asked); fail with the harness's diagnosis."""
    for dtype in ("float64", "float32") if also_float32 else ("float64",):
        r = run_case(case, dtype, locate=False)
        assert r.error is None, f"{case.name} [{dtype}]: {r.error}"
        assert r.passed, (f"{case.name} [{dtype}]: forward {r.forward_err:.2e}, grad "
                          f"{r.grad_err:.2e}, state {r.state_err:.2e} > {r.tol:.0e} "
                          f"(worst: {r.worst})")


def arg(draw, n: int, lo: int, hi: int):
    """A torch int-or-tuple argument: (value passed to the constructors, per-axis tuple)."""
    if draw(st.booleans()):
        v = draw(st.integers(lo, hi))
        return v, (v,) * n
    t = tuple(draw(st.integers(lo, hi)) for _ in range(n))
    return t, t


def inputs(shape, ties: bool = False):
    """Input maker (torch layout). ``ties``: small integers, so max-pool windows tie."""
    if ties:
        return lambda rng: (rng.integers(-2, 3, size=shape).astype(np.float64),)
    return lambda rng: (rng.standard_normal(shape),)


seeds = st.integers(0, 2**16)
float32_too = st.integers(0, 2).map(lambda i: i == 2)  # also run float32 on ~1/3 of examples


# ----------------------------------------------------------------------------- Conv1d/2d

@st.composite
def conv_configs(draw, n):
    g = draw(st.integers(1, 3))
    cin, cout = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 3))
    k_arg, k = arg(draw, n, 1, 4)
    d_arg, d = arg(draw, n, 1, 3)
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    kind = draw(st.sampled_from(["int", "tuple", "same", "valid"]))
    if kind == "same":
        s_arg, s = 1, (1,) * n
    else:
        s_arg, s = arg(draw, n, 1, 3)
    if kind == "int":
        p = draw(st.integers(0, 3))
        pad, pads = p, ((p, p),) * n
    elif kind == "tuple":
        pad = tuple(draw(st.integers(0, 3)) for _ in range(n))
        pads = tuple((p, p) for p in pad)
    elif kind == "same":
        pad = "same"
        pads = tuple((di * (ki - 1) // 2, di * (ki - 1) - di * (ki - 1) // 2)
                     for ki, di in zip(k, d))
    else:
        pad, pads = "valid", ((0, 0),) * n
    sizes = []
    for ki, di, (lo, hi) in zip(k, d, pads):
        least = max(1, di * (ki - 1) + 1 - lo - hi)  # at least one output position
        if mode == "reflect":
            least = max(least, max(lo, hi) + 1)  # torch: reflect padding < input size
        elif mode == "circular":
            least = max(least, max(lo, hi))  # torch: wraps around at most once
        sizes.append(draw(st.integers(least, least + 4)))
    # every computation (flax_arch.nn.conv docstring), whatever the backend's default
    kw = dict(stride=s_arg, padding=pad, dilation=d_arg, groups=g,
              bias=draw(st.booleans()), padding_mode=mode)
    return cin, cout, k_arg, kw, draw(st.integers(1, 2)), tuple(sizes), draw(
        st.sampled_from(["conv", "patches"]))


def _conv_case(n, cfg, seed):
    cin, cout, k, kw, batch, sizes, method = cfg
    tcls, fcls = {1: (torch.nn.Conv1d, fnn.Conv1d), 2: (torch.nn.Conv2d, fnn.Conv2d)}[n]
    return Case(f"{fcls.__name__}({cin}, {cout}, {k}, {kw}, method={method!r}) on {sizes}",
                lambda: tcls(cin, cout, k, **kw),
                lambda r: fcls(cin, cout, k, **kw, method=method, rngs=r),
                inputs((batch, cin, *sizes)), [C], [C], seed=seed)


# torch warns (once) that 'same' with an even kernel pads a copy of the input; harmless
same_warning = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


@pytest.mark.fuzz
@same_warning
@fuzz(20)
@given(conv_configs(1), seeds, float32_too)
def test_conv1d(cfg, seed, f32):
    check(_conv_case(1, cfg, seed), f32)


@pytest.mark.fuzz
@same_warning
@fuzz(20)
@given(conv_configs(2), seeds, float32_too)
def test_conv2d(cfg, seed, f32):
    check(_conv_case(2, cfg, seed), f32)


# ------------------------------------------------------------------- ConvTranspose1d/2d

@st.composite
def conv_transpose_configs(draw, n):
    g = draw(st.integers(1, 3))
    cin, cout = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 3))
    k_arg, k = arg(draw, n, 1, 4)
    s_arg, s = arg(draw, n, 1, 3)
    d_arg, d = arg(draw, n, 1, 3)
    # padding up to 2 beyond dilation·(k−1): torch then crops the output
    pad = tuple(draw(st.integers(0, di * (ki - 1) + 2)) for ki, di in zip(k, d))
    # torch: output_padding < stride or < dilation (per axis)
    op = tuple(draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d))
    sizes = []
    for ki, si, di, pi, oi in zip(k, s, d, pad, op):
        # L_out = (L−1)·s − 2p + d·(k−1) + op + 1 ≥ 1
        need = 2 * pi - di * (ki - 1) - oi
        least = 1 + max(0, -(-need // si))
        sizes.append(draw(st.integers(least, least + 3)))
    if draw(st.booleans()):  # pass ints where all axes agree, as torch allows
        pad = pad[0] if len(set(pad)) == 1 else pad
        op = op[0] if len(set(op)) == 1 else op
    kw = dict(stride=s_arg, padding=pad, output_padding=op, groups=g,
              bias=draw(st.booleans()), dilation=d_arg)
    # both computations (flax_arch.nn.conv docstring), whatever the backend's default
    method = draw(st.sampled_from(["matmul", "conv"] + (["phases", "conv+phases"]
                                                        if d == (1,) * n else [])))
    return cin, cout, k_arg, kw, draw(st.integers(1, 2)), tuple(sizes), method


def _conv_transpose_case(n, cfg, seed):
    cin, cout, k, kw, batch, sizes, method = cfg
    tcls, fcls = {1: (torch.nn.ConvTranspose1d, fnn.ConvTranspose1d),
                  2: (torch.nn.ConvTranspose2d, fnn.ConvTranspose2d)}[n]
    return Case(f"{fcls.__name__}({cin}, {cout}, {k}, {kw}, method={method!r}) on {sizes}",
                lambda: tcls(cin, cout, k, **kw),
                lambda r: fcls(cin, cout, k, **kw, method=method, rngs=r),
                inputs((batch, cin, *sizes)), [C], [C], seed=seed)


@pytest.mark.fuzz
@fuzz(15)
@given(conv_transpose_configs(1), seeds, float32_too)
def test_conv_transpose1d(cfg, seed, f32):
    check(_conv_transpose_case(1, cfg, seed), f32)


@pytest.mark.fuzz
@fuzz(15)
@given(conv_transpose_configs(2), seeds, float32_too)
def test_conv_transpose2d(cfg, seed, f32):
    check(_conv_transpose_case(2, cfg, seed), f32)


# ------------------------------------------------------------------------- MaxPool1d/2d

def _window_all_padding(L, k, s, p, d, out):
    """True if some output window holds only padding (torch then yields −inf and routes
    the gradient to an arbitrary tap; no real input produces such a window)."""
    return any(all(not 0 <= o * s - p + j * d < L for j in range(k)) for o in range(out))


@st.composite
def maxpool_configs(draw, n):
    k_arg, k = arg(draw, n, 1, 4)
    if draw(st.booleans()):
        s_arg, s = None, k
    else:
        s_arg, s = arg(draw, n, 1, 3)
    if draw(st.booleans()):
        p = draw(st.integers(0, min(k) // 2))
        p_arg, pad = p, (p,) * n
    else:
        pad = tuple(draw(st.integers(0, ki // 2)) for ki in k)
        p_arg = pad
    d_arg, d = arg(draw, n, 1, 3)
    ceil = draw(st.booleans())
    sizes = []
    for ki, si, pi, di in zip(k, s, pad, d):
        least = max(1, di * (ki - 1) + 1 - 2 * pi)
        L = draw(st.integers(least, least + 5))
        out = fnn.pool_output_size(L, ki, si, pi, di, ceil)
        assume(out >= 1 and not _window_all_padding(L, ki, si, pi, di, out))
        sizes.append(L)
    kw = dict(stride=s_arg, padding=p_arg, dilation=d_arg, ceil_mode=ceil)
    return k_arg, kw, draw(st.integers(1, 2)), draw(st.integers(1, 3)), tuple(sizes)


def _maxpool_case(n, cfg, seed, ties):
    k, kw, batch, ch, sizes = cfg
    tcls, fcls = {1: (torch.nn.MaxPool1d, fnn.MaxPool1d), 2: (torch.nn.MaxPool2d, fnn.MaxPool2d)}[n]
    return Case(f"{fcls.__name__}({k}, {kw}) on {sizes}{' ties' if ties else ''}",
                lambda: tcls(k, **kw), lambda r: fcls(k, **kw),
                inputs((batch, ch, *sizes), ties), [C], [C], seed=seed)


@pytest.mark.fuzz
@fuzz(25)
@given(maxpool_configs(1), seeds, st.booleans(), float32_too)
def test_maxpool1d(cfg, seed, ties, f32):
    check(_maxpool_case(1, cfg, seed, ties), f32)


@pytest.mark.fuzz
@fuzz(25)
@given(maxpool_configs(2), seeds, st.booleans(), float32_too)
def test_maxpool2d(cfg, seed, ties, f32):
    check(_maxpool_case(2, cfg, seed, ties), f32)


def test_pool_output_size_matches_torch():
    """The exported size formula against torch, exhaustively over small arguments."""
    for L in range(1, 9):
        for k in range(1, 5):
            for s in range(1, 4):
                for p in range(0, k // 2 + 1):
                    for d in range(1, 3):
                        for ceil in (False, True):
                            ours = fnn.pool_output_size(L, k, s, p, d, ceil)
                            if L + 2 * p - d * (k - 1) - 1 < 0:
                                continue  # torch raises; ours is ≤ 0 and the layer raises
                            t = torch.nn.functional.max_pool1d(
                                torch.zeros(1, 1, L), k, s, p, d, ceil_mode=ceil)
                            assert ours == t.shape[-1], (L, k, s, p, d, ceil)


# ------------------------------------------------------------------ AdaptiveAvgPool1d/2d

@st.composite
def adaptive_configs(draw, n):
    sizes = tuple(draw(st.integers(1, 9)) for _ in range(n))
    if n == 1:
        out = draw(st.integers(1, 12))  # torch's 1-d layer takes an int only
    elif draw(st.booleans()):
        out = draw(st.integers(1, 12))
    else:
        out = tuple(draw(st.one_of(st.none(), st.integers(1, 12))) for _ in range(n))
    return out, draw(st.integers(1, 2)), draw(st.integers(1, 3)), sizes


def _adaptive_case(n, cfg, seed):
    out, batch, ch, sizes = cfg
    tcls, fcls = {1: (torch.nn.AdaptiveAvgPool1d, fnn.AdaptiveAvgPool1d),
                  2: (torch.nn.AdaptiveAvgPool2d, fnn.AdaptiveAvgPool2d)}[n]
    return Case(f"{fcls.__name__}({out}) on {sizes}", lambda: tcls(out), lambda r: fcls(out),
                inputs((batch, ch, *sizes)), [C], [C], seed=seed)


@pytest.mark.fuzz
@fuzz(15)
@given(adaptive_configs(1), seeds, float32_too)
def test_adaptive_avg_pool1d(cfg, seed, f32):
    check(_adaptive_case(1, cfg, seed), f32)


@pytest.mark.fuzz
@fuzz(20)
@given(adaptive_configs(2), seeds, float32_too)
def test_adaptive_avg_pool2d(cfg, seed, f32):
    check(_adaptive_case(2, cfg, seed), f32)


def test_adaptive_bins_match_torch():
    """Each bin of ``adaptive_bins`` averages exactly what torch's output position does."""
    for L in range(1, 10):
        for out in range(1, 13):
            x = torch.eye(L, dtype=torch.float64)[:, None, :]  # one-hot per batch row
            t = torch.nn.functional.adaptive_avg_pool1d(x, out)[:, 0, :]  # (L, out)
            ours = np.zeros((L, out))
            for i, (a, b) in enumerate(fnn.adaptive_bins(L, out)):
                ours[a:b, i] = 1.0 / (b - a)
            np.testing.assert_array_equal(ours, t.numpy())


# ------------------------------------------------------------------ BatchNorm1d / 2d

def _torch_bn(kind, c, kw, preset):
    """Torch BN with random affine parameters and running statistics (so eval mode and
    the momentum=None average are non-trivial); ``preset`` batches already tracked."""
    layer = {"1d": torch.nn.BatchNorm1d, "2d": torch.nn.BatchNorm2d}[kind](c, **kw)
    with torch.no_grad():
        if layer.affine:
            layer.weight.normal_()
            layer.bias.normal_()
        if layer.track_running_stats:
            layer.running_mean.normal_()
            layer.running_var.uniform_(0.5, 2.0)
            layer.num_batches_tracked.fill_(preset)
    return layer


@st.composite
def bn_configs(draw):
    shape_kind = draw(st.sampled_from(["1d-2", "1d-3", "2d"]))
    c, batch = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    spatial = {"1d-2": (), "1d-3": (draw(st.integers(1, 4)),),
               "2d": (draw(st.integers(1, 3)), draw(st.integers(1, 3)))}[shape_kind]
    train = draw(st.booleans())
    track = draw(st.booleans())
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.1]))
    n = batch * math.prod(spatial)
    if train or not track:  # batch statistics: torch needs > 1 value per channel
        assume(n > 1)
        # with 2 values per channel and a small eps the normalised output is ±1 whatever
        # the input, so d out / d x is pure rounding noise that no tolerance can compare
        assume(n > 2 or eps >= 0.1)
    momentum = draw(st.one_of(st.none(), st.just(0.1), st.floats(0.01, 1.0)))
    kw = dict(eps=eps, momentum=momentum, affine=draw(st.booleans()),
              track_running_stats=track)
    return shape_kind, c, batch, spatial, train, kw, draw(st.integers(0, 5))


def _bn_case(cfg, seed):
    shape_kind, c, batch, spatial, train, kw, preset = cfg
    kind = shape_kind[:2]
    fcls = {"1d": fnn.BatchNorm1d, "2d": fnn.BatchNorm2d}[kind]
    layout = [C] if spatial else [None]
    return Case(f"{fcls.__name__}({c}, {kw}) on {(batch, c, *spatial)} "
                f"{'train' if train else 'eval'}",
                lambda: _torch_bn(kind, c, kw, preset), lambda r: fcls(c, **kw, rngs=r),
                inputs((batch, c, *spatial)), layout, layout, train=train, seed=seed)


@pytest.mark.fuzz
@fuzz(40)
@given(bn_configs(), seeds, float32_too)
def test_batchnorm(cfg, seed, f32):
    check(_bn_case(cfg, seed), f32)


@pytest.mark.fuzz
@fuzz(15)
@given(bn_configs(), seeds)
def test_batchnorm_consecutive_steps(cfg, seed):
    """Three train steps then one eval step, torch and Flax in lockstep (float64):
    outputs and every buffer (num_batches_tracked, the momentum=None cumulative average)
    after each step."""
    shape_kind, c, batch, spatial, _, kw, preset = cfg
    assume(batch * math.prod(spatial) > 1)
    kind = shape_kind[:2]
    torch.manual_seed(seed)
    t = _torch_bn(kind, c, kw, preset).double().train()
    f = {"1d": fnn.BatchNorm1d, "2d": fnn.BatchNorm2d}[kind](c, **kw, rngs=nnx.Rngs(0))
    load_torch_state_dict(f, t.state_dict())
    f.train()
    rng = np.random.default_rng(seed)

    def to_flax(a):  # (N, C, *spatial) → (N, *spatial, C); (N, C) stays
        return np.moveaxis(a, 1, -1) if a.ndim >= 3 else a

    def to_torch(a):
        return np.moveaxis(a, -1, 1) if a.ndim >= 3 else a

    for step in range(4):
        if step == 3:
            t.eval()
            f.eval()
        x = rng.standard_normal((batch, c, *spatial)) * (step + 1) + step
        want = t(torch.as_tensor(x)).detach().numpy()
        got = to_torch(np.asarray(f(jnp.asarray(to_flax(x)))))
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"step {step}")
        f_state = to_torch_state_dict(f)
        t_state = t.state_dict()
        assert set(f_state) == set(t_state)
        for k, v in t_state.items():
            np.testing.assert_allclose(f_state[k], v.numpy(), rtol=1e-12, atol=1e-12,
                                       err_msg=f"{k} after step {step}")


# -------------------------------------------------------------------------- Embedding

@st.composite
def embedding_configs(draw):
    num = draw(st.integers(1, 12))
    dim = draw(st.integers(1, 5))
    padding_idx = draw(st.one_of(st.none(), st.integers(-num, num - 1)))
    max_norm = draw(st.one_of(st.none(), st.floats(0.2, 3.0)))
    kw = dict(padding_idx=padding_idx, max_norm=max_norm,
              norm_type=draw(st.sampled_from([1.0, 2.0, 3.0, 0.5, math.inf])),
              scale_grad_by_freq=draw(st.booleans()))
    # indices from a small range so that repeats (and the padding row) are common
    hi = draw(st.integers(1, num))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(draw(st.integers(1, 3))))
    return num, dim, kw, hi, shape


@pytest.mark.fuzz
@fuzz(20)
@given(embedding_configs(), seeds, float32_too)
def test_embedding(cfg, seed, f32):
    num, dim, kw, hi, shape = cfg
    pad = kw["padding_idx"]

    def make(rng):
        x = rng.integers(0, hi, size=shape)
        if pad is not None and rng.random() < 0.5:  # make sure the padding row is used
            x.flat[0] = pad % num
        return (x,)

    check(Case(f"Embedding({num}, {dim}, {kw}) on {shape} < {hi}",
               lambda: torch.nn.Embedding(num, dim, **kw),
               lambda r: fnn.Embedding(num, dim, **kw, rngs=r), make, seed=seed), f32)


@pytest.mark.parametrize("norm_type", [math.inf, -math.inf, 0.0])
def test_embedding_max_norm_special_norms(norm_type):
    """torch's vector norms beyond the p-sum formula (regression: inf gave wrong rows)."""
    check(Case(f"Embedding max_norm norm_type={norm_type}",
               lambda: torch.nn.Embedding(6, 4, max_norm=0.9, norm_type=norm_type),
               lambda r: fnn.Embedding(6, 4, max_norm=0.9, norm_type=norm_type, rngs=r),
               lambda rng: (rng.integers(0, 6, (3, 4)),)), also_float32=True)


# ----------------------------------------------------------------------------- Linear

@pytest.mark.fuzz
@fuzz(10)
@given(st.integers(1, 6), st.integers(1, 6), st.booleans(),
       st.lists(st.integers(1, 3), max_size=3), seeds, float32_too)
def test_linear(n_in, n_out, bias, lead, seed, f32):
    check(Case(f"Linear({n_in}, {n_out}, bias={bias}) on {(*lead, n_in)}",
               lambda: torch.nn.Linear(n_in, n_out, bias=bias),
               lambda r: fnn.Linear(n_in, n_out, bias=bias, rngs=r),
               inputs((*lead, n_in)), seed=seed), f32)


# --------------------------------------------------------- unbatched inputs (no N axis)

UNBATCHED = [
    ("Conv1d", lambda: torch.nn.Conv1d(2, 3, 3, padding=1, padding_mode="reflect"),
     lambda r: fnn.Conv1d(2, 3, 3, padding=1, padding_mode="reflect", rngs=r), (2, 7)),
    ("Conv2d", lambda: torch.nn.Conv2d(2, 4, (2, 3), stride=2, groups=2),
     lambda r: fnn.Conv2d(2, 4, (2, 3), stride=2, groups=2, rngs=r), (2, 6, 7)),
    ("ConvTranspose1d", lambda: torch.nn.ConvTranspose1d(2, 4, 3, stride=2, output_padding=1),
     lambda r: fnn.ConvTranspose1d(2, 4, 3, stride=2, output_padding=1, rngs=r), (2, 5)),
    ("ConvTranspose2d", lambda: torch.nn.ConvTranspose2d(2, 2, 3, stride=(1, 2), groups=2),
     lambda r: fnn.ConvTranspose2d(2, 2, 3, stride=(1, 2), groups=2, rngs=r), (2, 3, 4)),
    ("MaxPool1d", lambda: torch.nn.MaxPool1d(3, 2, 1, ceil_mode=True),
     lambda r: fnn.MaxPool1d(3, 2, 1, ceil_mode=True), (3, 8)),
    ("MaxPool2d", lambda: torch.nn.MaxPool2d(2, dilation=2), lambda r: fnn.MaxPool2d(2, dilation=2),
     (3, 7, 6)),
    ("AdaptiveAvgPool1d", lambda: torch.nn.AdaptiveAvgPool1d(4),
     lambda r: fnn.AdaptiveAvgPool1d(4), (3, 7)),
    ("AdaptiveAvgPool2d", lambda: torch.nn.AdaptiveAvgPool2d((None, 5)),
     lambda r: fnn.AdaptiveAvgPool2d((None, 5)), (3, 7, 3)),
]


@pytest.mark.parametrize("name,tmake,fmake,shape", UNBATCHED, ids=[u[0] for u in UNBATCHED])
def test_unbatched_input(name, tmake, fmake, shape):
    """Torch's unbatched (C, *spatial) input ↔ channels-last (*spatial, C), forward only."""
    torch.manual_seed(0)
    t = tmake().double()
    f = fmake(nnx.Rngs(0))
    load_torch_state_dict(f, t.state_dict())
    x = np.random.default_rng(0).standard_normal(shape)
    want = t(torch.as_tensor(x)).detach().numpy()
    got = np.moveaxis(np.asarray(f(jnp.asarray(np.moveaxis(x, 0, -1)))), -1, 0)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# ----------------------------------------------- torch-invalid configurations must raise

INVALID = [
    ("conv groups vs out_channels", lambda: torch.nn.Conv2d(4, 6, 3, groups=4),
     lambda r: fnn.Conv2d(4, 6, 3, groups=4, rngs=r), (1, 4, 5, 5), "divisible by groups"),
    ("conv groups vs in_channels", lambda: torch.nn.Conv1d(3, 6, 3, groups=2),
     lambda r: fnn.Conv1d(3, 6, 3, groups=2, rngs=r), (1, 3, 5), "divisible by groups"),
    ("conv same with stride", lambda: torch.nn.Conv2d(2, 2, 3, stride=2, padding="same"),
     lambda r: fnn.Conv2d(2, 2, 3, stride=2, padding="same", rngs=r), (1, 2, 5, 5),
     "padding='same'"),
    ("conv padding string", lambda: torch.nn.Conv1d(2, 2, 3, padding="full"),
     lambda r: fnn.Conv1d(2, 2, 3, padding="full", rngs=r), (1, 2, 5), "padding"),
    ("conv padding_mode", lambda: torch.nn.Conv1d(2, 2, 3, padding_mode="mirror"),
     lambda r: fnn.Conv1d(2, 2, 3, padding_mode="mirror", rngs=r), (1, 2, 5), "padding_mode"),
    ("conv padding length", lambda: torch.nn.Conv1d(2, 2, 3, padding=(1, 1)),
     lambda r: fnn.Conv1d(2, 2, 3, padding=(1, 1), rngs=r), (1, 2, 5), "padding"),
    ("conv negative padding", lambda: torch.nn.Conv1d(2, 2, 3, padding=-1),
     lambda r: fnn.Conv1d(2, 2, 3, padding=-1, rngs=r), (1, 2, 5), "padding"),
    ("conv zero kernel", lambda: torch.nn.Conv1d(2, 2, 0),
     lambda r: fnn.Conv1d(2, 2, 0, rngs=r), (1, 2, 5), "kernel_size"),
    ("conv zero stride", lambda: torch.nn.Conv2d(2, 2, 3, stride=(1, 0)),
     lambda r: fnn.Conv2d(2, 2, 3, stride=(1, 0), rngs=r), (1, 2, 5, 5), "stride"),
    ("conv zero dilation", lambda: torch.nn.Conv1d(2, 2, 3, dilation=0),
     lambda r: fnn.Conv1d(2, 2, 3, dilation=0, rngs=r), (1, 2, 5), "dilation"),
    ("conv zero groups", lambda: torch.nn.Conv1d(2, 2, 3, groups=0),
     lambda r: fnn.Conv1d(2, 2, 3, groups=0, rngs=r), (1, 2, 5), "groups"),
    ("conv_transpose output_padding", lambda: torch.nn.ConvTranspose1d(2, 2, 3, stride=2,
                                                                       output_padding=2),
     lambda r: fnn.ConvTranspose1d(2, 2, 3, stride=2, output_padding=2, rngs=r), (1, 2, 4),
     "output_padding"),
    ("conv_transpose output_padding vs dilation",
     lambda: torch.nn.ConvTranspose2d(2, 2, 3, stride=1, dilation=2, output_padding=(0, 2)),
     lambda r: fnn.ConvTranspose2d(2, 2, 3, stride=1, dilation=2, output_padding=(0, 2), rngs=r),
     (1, 2, 4, 4), "output_padding"),
    ("conv_transpose groups", lambda: torch.nn.ConvTranspose2d(4, 6, 3, groups=4),
     lambda r: fnn.ConvTranspose2d(4, 6, 3, groups=4, rngs=r), (1, 4, 3, 3),
     "divisible by groups"),
    ("conv_transpose padding_mode", lambda: torch.nn.ConvTranspose1d(2, 2, 3, padding_mode="reflect"),
     lambda r: fnn.ConvTranspose1d(2, 2, 3, padding_mode="reflect", rngs=r), (1, 2, 4),
     "padding_mode"),
    ("conv_transpose negative padding", lambda: torch.nn.ConvTranspose1d(2, 2, 3, padding=-1),
     lambda r: fnn.ConvTranspose1d(2, 2, 3, padding=-1, rngs=r), (1, 2, 4), "padding"),
    ("conv_transpose zero stride", lambda: torch.nn.ConvTranspose1d(2, 2, 3, stride=0),
     lambda r: fnn.ConvTranspose1d(2, 2, 3, stride=0, rngs=r), (1, 2, 4), "stride"),
    ("maxpool padding > k/2", lambda: torch.nn.MaxPool2d(3, padding=2),
     lambda r: fnn.MaxPool2d(3, padding=2), (1, 1, 8, 8), "half of kernel_size"),
    ("maxpool padding > k/2 per axis", lambda: torch.nn.MaxPool2d((4, 2), padding=(2, 2)),
     lambda r: fnn.MaxPool2d((4, 2), padding=(2, 2)), (1, 1, 8, 8), "half of kernel_size"),
    ("maxpool zero kernel", lambda: torch.nn.MaxPool1d(0),
     lambda r: fnn.MaxPool1d(0), (1, 1, 8), "kernel_size"),
    ("maxpool zero stride", lambda: torch.nn.MaxPool1d(2, stride=0),
     lambda r: fnn.MaxPool1d(2, stride=0), (1, 1, 8), "stride"),
    ("maxpool zero dilation", lambda: torch.nn.MaxPool1d(2, dilation=0),
     lambda r: fnn.MaxPool1d(2, dilation=0), (1, 1, 8), "dilation"),
    ("maxpool negative padding", lambda: torch.nn.MaxPool1d(2, padding=-1),
     lambda r: fnn.MaxPool1d(2, padding=-1), (1, 1, 8), "padding"),
]


@pytest.mark.parametrize("name,tmake,fmake,shape,match", INVALID, ids=[i[0] for i in INVALID])
def test_invalid_config_raises(name, tmake, fmake, shape, match):
    """Torch rejects the configuration (at construction or first call); so do we, with a
    ValueError naming the argument, at construction."""
    with pytest.raises((ValueError, RuntimeError, AssertionError)), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. torch's "initializing zero-element tensors"
        tmake()(torch.zeros(shape))
    with pytest.raises(ValueError, match=match):
        fmake(nnx.Rngs(0))


def test_invalid_embedding_padding_idx():
    with pytest.raises(AssertionError):
        torch.nn.Embedding(5, 2, padding_idx=5)
    with pytest.raises(ValueError, match="padding_idx"):
        fnn.Embedding(5, 2, padding_idx=5, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="padding_idx"):
        fnn.Embedding(5, 2, padding_idx=-6, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("cls,shape", [("Conv1d", (2, 9, 3)), ("Conv2d", (2, 7, 6, 3)),
                                       ("Conv1d", (9, 3))])
def test_conv_without_bias_is_the_convolution_alone(cls, shape):
    """``add_bias=False`` returns exactly what ``__call__`` computes before its bias add
    (checked against torch with the bias set to zero, and bitwise against the full call)."""
    from flax_arch.interop import channels_first_to_last, channels_last_to_first
    t = getattr(torch.nn, cls)(3, 4, 3, padding=1).double()
    f = getattr(fnn, cls)(3, 4, 3, padding=1, rngs=nnx.Rngs(0))
    load_torch_state_dict(f, t.state_dict())
    x = np.random.default_rng(0).standard_normal(shape)
    y = np.asarray(f(jnp.asarray(x), add_bias=False))
    with torch.no_grad():
        t.bias.zero_()
        xt = torch.as_tensor(channels_last_to_first(x[None] if len(shape) < 3 else x))
        want = channels_first_to_last(t(xt).numpy())
    want = want[0] if len(shape) < 3 else want
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-13)
    bias = np.asarray(f.bias[...])
    np.testing.assert_array_equal(np.asarray(f(jnp.asarray(x))), y + bias)
