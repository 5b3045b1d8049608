"""Targeted tests for AE, VAE, AlexNet, InceptionModule and ResLayer beyond the parity
cases (``cases/classifiers.py``): train-mode dropout against torch with the masks made
explicit, the VAE's own noise, torch state_dict keys at the slides' sizes, input errors,
and hyper-parameter fuzzing through the parity harness."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import given, settings, strategies as st

from flax_arch.interop import (channels_first_to_last, load_torch_state_dict, to_torch_state_dict,
                               torch_keys)
from flax_arch.models.alexnet import AlexNet
from flax_arch.models.autoencoders import AE, VAE
from flax_arch.models.inception import InceptionModule
from flax_arch.models.resnet import ResLayer
from flax_arch.parity import Case, run_case
from flax_arch.parity.registry.classifiers import NARROW, _random_bn
from torch_ref import alexnet as t_alexnet
from torch_ref import autoencoders as t_ae
from torch_ref import inception as t_inception
from torch_ref import resnet as t_resnet

C = "channels"


def _assert_passed(r):
    assert r.error is None, r.error
    assert r.passed, (f"{r.case} [{r.dtype}]: forward {r.forward_err:.2e}, grad "
                      f"{r.grad_err:.2e}, state {r.state_err:.2e} > {r.tol:.0e}; worst "
                      f"{r.worst}; first diverging layer: {r.diverged_at}")


# ------------------------------------------------------------------ AlexNet dropout

def _narrow_pair(dropout, seed=0):
    torch.manual_seed(seed)
    tm = t_alexnet.AlexNet(10, dropout=dropout, **NARROW).double()
    fm = AlexNet(10, dropout=dropout, rngs=nnx.Rngs(seed), **NARROW)
    load_torch_state_dict(fm, tm.state_dict())
    return tm, fm


def test_alexnet_train_dropout_matches_torch_given_the_masks():
    """Train mode, p = 0.5: the Flax output equals torch's classifier run with the same
    two dropout masks, applied as torch's ``nn.Dropout`` does (keep, scale by 1/(1−p))."""
    p = 0.5
    tm, fm = _narrow_pair(p)
    x = np.random.default_rng(0).standard_normal((3, 3, 67, 90))
    fm.train()
    twin = nnx.clone(fm)  # same dropout streams: replays the masks of the next call
    y = np.asarray(fm(jnp.asarray(channels_first_to_last(x))))
    # the masks the forward pass drew, read off by dropping out ones: values 0 or 1/(1-p)
    m1 = np.asarray(twin.classifier[0](jnp.ones((3, tm.flat_features))))
    m2 = np.asarray(twin.classifier[3](jnp.ones((3, 32))))
    for m in (m1, m2):
        assert set(np.unique(m)) == {0.0, 1.0 / (1 - p)}
    with torch.no_grad():
        h = tm.avgpool(tm.features(torch.as_tensor(x))).view(3, -1)
        keep1, keep2 = torch.as_tensor(m1 > 0), torch.as_tensor(m2 > 0)
        # torch's dropout: zero the dropped units, multiply the kept ones by 1/(1-p)
        h = torch.where(keep1, h * (1.0 / (1 - p)), torch.zeros_like(h))
        h = torch.relu(tm.classifier[1](h))
        h = torch.where(keep2, h * (1.0 / (1 - p)), torch.zeros_like(h))
        h = torch.relu(tm.classifier[4](h))
        want = tm.classifier[6](h).numpy()
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    # and the eval-mode output is torch's eval-mode output, which differs
    fm.eval()
    tm.eval()
    y_eval = np.asarray(fm(jnp.asarray(channels_first_to_last(x))))
    with torch.no_grad():
        np.testing.assert_allclose(y_eval, tm(torch.as_tensor(x)).numpy(), rtol=1e-12,
                                   atol=1e-12)
    assert np.abs(y - y_eval).max() > 1e-3


def test_alexnet_train_dropout_rate_seed_and_scaling():
    """Kept fraction ≈ 1 − p, kept units scaled by exactly 1/(1 − p) (as torch), masks
    reproducible from the seed and fresh at every call."""
    p = 0.5
    fm = AlexNet(10, dropout=p, rngs=nnx.Rngs(3), **NARROW)
    fm.train()
    h = jnp.asarray(np.random.default_rng(1).standard_normal((64, fm.flat_features)))
    out = np.asarray(fm.classifier[0](h))
    kept = out != 0
    assert abs(kept.mean() - (1 - p)) < 0.02
    np.testing.assert_array_equal(out[kept], np.asarray(h)[kept] / (1 - p))
    again = np.asarray(fm.classifier[0](h))
    assert (again != out).any()  # the stream advanced: a new mask
    fresh = AlexNet(10, dropout=p, rngs=nnx.Rngs(3), **NARROW)
    fresh.train()
    np.testing.assert_array_equal(np.asarray(fresh.classifier[0](h)), out)
    # whole model: train differs from eval; same seed → same output; eval is deterministic
    x = jnp.asarray(np.random.default_rng(2).standard_normal((2, 70, 70, 3)))
    a = AlexNet(10, dropout=p, rngs=nnx.Rngs(5), **NARROW)
    b = AlexNet(10, dropout=p, rngs=nnx.Rngs(5), **NARROW)
    a.train()
    b.train()
    np.testing.assert_array_equal(np.asarray(a(x)), np.asarray(b(x)))
    ya = np.asarray(a(x))
    a.eval()
    e1, e2 = np.asarray(a(x)), np.asarray(a(x))
    np.testing.assert_array_equal(e1, e2)
    assert np.abs(ya - e1).max() > 0


def test_alexnet_dropout_zero_train_equals_eval():
    fm = AlexNet(10, dropout=0.0, rngs=nnx.Rngs(0), **NARROW)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 64, 80, 3)))
    fm.train()
    y_train = np.asarray(fm(x))
    fm.eval()
    np.testing.assert_array_equal(y_train, np.asarray(fm(x)))


# ------------------------------------------------------------------ VAE noise

def test_vae_noise_from_module_rngs():
    """eps=None: reproducible from the seed, fresh at each call (also under nnx.jit),
    equal to an explicit eps drawn from the given key; torch agrees given that eps."""
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 784)))
    a, b = VAE(rngs=nnx.Rngs(0, noise=7)), VAE(rngs=nnx.Rngs(1, noise=7))
    load_torch_state_dict(b, to_torch_state_dict(a))
    ra, rb = a(x)[0], b(x)[0]
    np.testing.assert_array_equal(np.asarray(ra), np.asarray(rb))  # same noise seed
    assert np.abs(np.asarray(a(x)[0]) - np.asarray(ra)).max() > 0  # new draw each call
    step = nnx.jit(lambda m, x: m(x)[0])
    j1, j2 = step(a, x), step(a, x)
    assert np.abs(np.asarray(j1) - np.asarray(j2)).max() > 0  # the stream advances under jit
    # a key given at call time: eps = N(0, 1) drawn with it, as an explicit eps would be
    key = jax.random.key(11)
    recon, mu, logvar = a(x, rngs=key)
    eps = jax.random.normal(key, mu.shape, mu.dtype)
    recon2, _, _ = a(x, eps)
    np.testing.assert_array_equal(np.asarray(recon), np.asarray(recon2))
    tm = t_ae.VAE()
    tm.load_state_dict({k: torch.tensor(v) for k, v in to_torch_state_dict(a).items()})
    with torch.no_grad():
        t_recon, t_mu, t_logvar = tm(torch.as_tensor(np.asarray(x, np.float32)),
                                     torch.as_tensor(np.asarray(eps, np.float32)))
    np.testing.assert_allclose(np.asarray(recon, np.float32), t_recon.numpy(), atol=1e-5)
    # the reference's own sampling path (eps=None) still runs as on the slide
    y, mu_t, _ = tm(torch.randn(10, 784))
    assert tuple(y.shape) == (10, 784) and tuple(mu_t.shape) == (10, 20)


def test_vae_explicit_eps_is_deterministic():
    m = VAE(rngs=nnx.Rngs(0))
    x = jnp.ones((2, 28, 28, 1))
    eps = jnp.full((2, 20), 0.3)
    r1 = np.asarray(m(x, eps)[0])
    r2 = np.asarray(m(x, eps)[0])
    np.testing.assert_array_equal(r1, r2)
    assert r1.shape == (2, 784) and 0 < r1.min() and r1.max() < 1


# ------------------------------------------------------------------ torch keys at slide sizes

@pytest.mark.parametrize("name,make_t,make_f", [
    ("AE", lambda: t_ae.AE(784), lambda r: AE(784, rngs=r)),
    ("VAE", lambda: t_ae.VAE(), lambda r: VAE(rngs=r)),
    ("AlexNet", lambda: t_alexnet.AlexNet(), lambda r: AlexNet(rngs=r)),
    ("InceptionModule", lambda: t_inception.InceptionModule(192, 64, 96, 128, 16, 32, 32),
     lambda r: InceptionModule(192, 64, 96, 128, 16, 32, 32, rngs=r)),
    ("ResLayer", lambda: t_resnet.ResLayer(64), lambda r: ResLayer(64, rngs=r)),
])
def test_slide_size_torch_keys(name, make_t, make_f):
    """The slide-size modules have exactly the torch twin's state_dict keys (shapes are
    checked by the slow parity cases, which load the weights)."""
    with torch.device("meta"):  # no memory for AlexNet's 61M parameters
        want = list(make_t().state_dict())
    abstract = nnx.eval_shape(lambda: make_f(nnx.Rngs(0)))
    assert sorted(torch_keys(abstract)) == sorted(want)


def test_alexnet_slide_shapes():
    """The slide's demo, (1, 3, 224, 224) → (1, 1000), traced abstractly (no compute)."""
    def run(x):
        m = AlexNet(rngs=nnx.Rngs(0))
        m.eval()
        return m(x)
    out = jax.eval_shape(run, jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32))
    assert out.shape == (1, 1000)


# ------------------------------------------------------------------ bad inputs

@pytest.mark.parametrize("make,x,match", [
    (lambda r: AlexNet(10, rngs=r, **NARROW), np.zeros((1, 3, 224, 224)), "channels_first"),
    (lambda r: AlexNet(10, rngs=r, **NARROW), np.zeros((1, 62, 100, 3)), "≥ 63"),
    (lambda r: AlexNet(10, rngs=r, **NARROW), np.zeros((224, 224, 3)), "rank 4"),
    (lambda r: AE(32, rngs=r), np.zeros((4, 31)), "num_inputs"),
    (lambda r: VAE(rngs=r), np.zeros((4, 783)), "N·784"),
    (lambda r: InceptionModule(6, 4, 3, 5, 2, 3, 4, rngs=r), np.zeros((1, 6, 8, 8)),
     "channels_first"),
    (lambda r: ResLayer(8, rngs=r), np.zeros((1, 9, 9, 4)), "C=8"),
])
def test_bad_input_raises_valueerror(make, x, match):
    with pytest.raises(ValueError, match=match):
        make(nnx.Rngs(0))(jnp.asarray(x))


def test_vae_bad_eps_raises():
    with pytest.raises(ValueError, match="eps"):
        VAE(rngs=nnx.Rngs(0))(jnp.ones((3, 784)), jnp.ones((3, 10)))


def test_alexnet_bad_channels_arg():
    with pytest.raises(ValueError, match="channels"):
        AlexNet(rngs=nnx.Rngs(0), channels=(8, 8, 8))


# ------------------------------------------------------------------ hyper-parameter fuzzing

@pytest.mark.fuzz
@settings(deadline=None, max_examples=3)
@given(h=st.integers(63, 300), w=st.integers(63, 300), train=st.booleans())
def test_fuzz_alexnet_input_size(h, w, train):
    """Narrow AlexNet at random input sizes: feature maps 1×1 … 8×8, so adaptive pooling
    repeats, matches or overlaps bins."""
    kw = dict(NARROW, dropout=0.0)
    case = Case(f"alexnet_fuzz_{h}x{w}", lambda: t_alexnet.AlexNet(7, **kw),
                lambda r: AlexNet(7, rngs=r, **kw),
                lambda rng: (rng.standard_normal((1, 3, h, w)),), [C], [None], train=train)
    _assert_passed(run_case(case, "float64"))


@pytest.mark.fuzz
@settings(deadline=None, max_examples=3)
@given(widths=st.tuples(*[st.integers(1, 6)] * 7), h=st.integers(1, 9), w=st.integers(1, 9),
       n=st.integers(1, 3))
def test_fuzz_inception(widths, h, w, n):
    case = Case("inception_fuzz", lambda: t_inception.InceptionModule(*widths),
                lambda r: InceptionModule(*widths, rngs=r),
                lambda rng: (rng.standard_normal((n, widths[0], h, w)),), [C], [C])
    _assert_passed(run_case(case, "float64"))


@pytest.mark.fuzz
@settings(deadline=None, max_examples=3)
@given(c=st.integers(1, 6), h=st.integers(1, 7), w=st.integers(1, 7), n=st.integers(2, 3),
       train=st.booleans())
def test_fuzz_reslayer(c, h, w, n, train):
    case = Case("reslayer_fuzz", _random_bn(lambda: t_resnet.ResLayer(c)),
                lambda r: ResLayer(c, rngs=r),
                lambda rng: (rng.standard_normal((n, c, h, w)),), [C], [C], train=train)
    _assert_passed(run_case(case, "float64"))
