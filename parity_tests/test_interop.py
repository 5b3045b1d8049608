"""The generic torch ``state_dict`` ↔ NNX converter and the layout helpers.

* a model mixing every layer type (nested ``Sequential``, ``nnx.List``, BatchNorm buffers)
  round-trips torch → Flax → torch exactly, float64 weights give a float64 model;
* a bad state_dict raises one :class:`StateDictError` listing every problem and leaves the
  module bit-for-bit unchanged; ``strict=False`` returns missing / unexpected keys;
* gradients from ``nnx.grad`` (an ``nnx.State``) convert to torch keys and equal torch's
  ``.grad``;
* a user's own model built from *stock* NNX layers converts through the per-type rules;
* the named layout helpers accept numpy, JAX and torch arrays and check ranks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import flax_arch.nn as fnn
from flax_arch.interop import (StateDictError, channels_first_to_last, channels_last_to_first,
                               load_torch_state_dict, nchw_to_nhwc, ncw_to_nwc, nhwc_to_nchw,
                               nwc_to_ncw, to_torch_state_dict, torch_keys)

tnn = torch.nn


# ------------------------------------------------------------------ a model of every layer

class TorchMix(tnn.Module):
    """Every torch-semantics layer, nested: Sequential in Sequential, a ModuleList."""

    def __init__(self):
        super().__init__()
        self.features = tnn.Sequential(
            tnn.Conv2d(3, 4, 3), tnn.ReLU(), tnn.BatchNorm2d(4),
            tnn.Sequential(tnn.MaxPool2d(2), tnn.Conv2d(4, 4, 1, groups=2, bias=False)))
        self.up = tnn.ConvTranspose2d(4, 2, 2, stride=2)
        self.pool = tnn.AdaptiveAvgPool2d((1, None))
        self.blocks = tnn.ModuleList([tnn.Conv1d(2, 3, 3, padding_mode="reflect", padding=1),
                                      tnn.ConvTranspose1d(3, 2, 2, groups=1),
                                      tnn.BatchNorm1d(2, momentum=None)])
        self.proj = tnn.Linear(2, 5)
        self.emb = tnn.Embedding(7, 5, padding_idx=0)
        self.head = tnn.Linear(5, 3)

    def forward(self, x, idx):
        """x (N, 3, 8, 8), idx (N,) → (N, 3)."""
        h = self.up(self.features(x))  # (N, 2, 6, 6)
        h = self.pool(h)[:, :, 0, :]  # (N, 2, 6)
        for block in self.blocks:
            h = block(h)  # (N, 2, 7) at the end
        return self.head(self.proj(h.mean(dim=2)) + self.emb(idx))


class FlaxMix(nnx.Module):
    """The same structure with flax_arch layers: keys follow from attribute paths."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.features = fnn.Sequential(
            fnn.Conv2d(3, 4, 3, rngs=rngs), jax.nn.relu, fnn.BatchNorm2d(4),
            fnn.Sequential(fnn.MaxPool2d(2), fnn.Conv2d(4, 4, 1, groups=2, bias=False, rngs=rngs)))
        self.up = fnn.ConvTranspose2d(4, 2, 2, stride=2, rngs=rngs)
        self.pool = fnn.AdaptiveAvgPool2d((1, None))
        self.blocks = nnx.List([fnn.Conv1d(2, 3, 3, padding_mode="reflect", padding=1, rngs=rngs),
                                fnn.ConvTranspose1d(3, 2, 2, groups=1, rngs=rngs),
                                fnn.BatchNorm1d(2, momentum=None)])
        self.proj = fnn.Linear(2, 5, rngs=rngs)
        self.emb = fnn.Embedding(7, 5, padding_idx=0, rngs=rngs)
        self.head = fnn.Linear(5, 3, rngs=rngs)

    def __call__(self, x, idx):
        """x (N, 8, 8, 3) channels-last, idx (N,) → (N, 3)."""
        h = self.up(self.features(x))  # (N, 6, 6, 2)
        h = self.pool(h)[:, 0]  # (N, 6, 2)
        for block in self.blocks:
            h = block(h)  # (N, 7, 2) at the end
        return self.head(self.proj(h.mean(axis=1)) + self.emb(idx))


def _torch_mix(seed=0):
    """A TorchMix with non-trivial buffers (running stats, batch counts) in float64."""
    torch.manual_seed(seed)
    t = TorchMix().double()
    with torch.no_grad():
        for name, buf in t.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_()
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
            elif name.endswith("num_batches_tracked"):
                buf.fill_(3)
    return t


def _assert_state_equal(got: dict, want: dict):
    assert list(sorted(got)) == list(sorted(want))
    for k, v in want.items():
        v = v.detach().numpy() if hasattr(v, "detach") else np.asarray(v)
        assert got[k].shape == v.shape, k
        np.testing.assert_array_equal(got[k], v, err_msg=k)
        if np.issubdtype(v.dtype, np.floating):
            assert got[k].dtype == v.dtype, k


def test_round_trip_exact_all_layers():
    t = _torch_mix()
    f = FlaxMix(rngs=nnx.Rngs(0))
    sd = t.state_dict()
    assert sorted(torch_keys(f)) == sorted(sd)  # nested Sequential + nnx.List keys
    res = load_torch_state_dict(f, sd)
    assert res.missing_keys == [] and res.unexpected_keys == []
    _assert_state_equal(to_torch_state_dict(f), sd)
    # and back into torch: torch's own loader accepts what we produce
    t2 = TorchMix().double()
    out = to_torch_state_dict(f)
    assert all(v.flags.writeable and v.flags.c_contiguous for v in out.values())
    t2.load_state_dict({k: torch.from_numpy(v) for k, v in out.items()})
    _assert_state_equal({k: v.numpy() for k, v in t2.state_dict().items()}, sd)


def test_round_trip_numpy_input():
    """numpy arrays are accepted as well as tensors."""
    sd = {k: v.numpy() for k, v in _torch_mix(1).state_dict().items()}
    f = FlaxMix(rngs=nnx.Rngs(0))
    load_torch_state_dict(f, sd)
    _assert_state_equal(to_torch_state_dict(f), sd)


def test_loaded_arrays_do_not_alias_the_source():
    """Regression: JAX may adopt an aligned host buffer without copying, so a loaded model
    changed when torch later updated its tensors in place (BatchNorm statistics, optimizer
    steps, Embedding's max_norm renorm). Repeated because aliasing depends on alignment."""
    for i in range(20):
        t = tnn.Linear(64, 64).double()
        f = fnn.Linear(64, 64, rngs=nnx.Rngs(0))
        load_torch_state_dict(f, t.state_dict())
        want = t.weight.detach().numpy().T.copy(), t.bias.detach().numpy().copy()
        with torch.no_grad():
            t.weight.mul_(2.0)
            t.bias.add_(1.0)
        np.testing.assert_array_equal(f.kernel.get_value(), want[0])
        np.testing.assert_array_equal(f.bias.get_value(), want[1])
        sd = {"weight": np.random.default_rng(i).standard_normal((64, 64)),
              "bias": np.random.default_rng(i).standard_normal(64)}
        keep = sd["bias"].copy()
        load_torch_state_dict(f, sd)
        sd["bias"] += 1.0
        np.testing.assert_array_equal(f.bias.get_value(), keep)


def test_float64_weights_give_float64_model():
    f = FlaxMix(rngs=nnx.Rngs(0))
    assert f.head.kernel.get_value().dtype == jnp.float32
    load_torch_state_dict(f, _torch_mix().state_dict())
    for path, var in nnx.to_flat_state(nnx.state(f, nnx.Param)):
        assert var.get_value().dtype == jnp.float64, path
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 8, 8, 3)))
    f.eval()
    assert f(x, jnp.array([0, 3])).dtype == jnp.float64
    # and float32 weights give a float32 model again
    load_torch_state_dict(f, TorchMix().state_dict())
    assert f.head.kernel.get_value().dtype == jnp.float32


def test_forward_matches_after_load():
    """The loaded model computes torch's function (eval mode, float64)."""
    t = _torch_mix(2).eval()
    f = FlaxMix(rngs=nnx.Rngs(0))
    load_torch_state_dict(f, t.state_dict())
    f.eval()
    rng = np.random.default_rng(0)
    x, idx = rng.standard_normal((2, 3, 8, 8)), np.array([0, 5])
    want = t(torch.as_tensor(x), torch.as_tensor(idx)).detach().numpy()
    got = np.asarray(f(jnp.asarray(nchw_to_nhwc(x)), jnp.asarray(idx)))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------- bad state_dicts

def _snapshot(module):
    """Every variable (all collections, RNG state included) as numpy, with dtypes."""
    return {path: (np.array(var.get_value()), var.get_value().dtype)
            for path, var in nnx.to_flat_state(nnx.state(module))}


def _bad_state_dict():
    sd = dict(_torch_mix().state_dict())
    del sd["head.bias"]  # missing
    del sd["blocks.2.running_var"]  # missing buffer
    sd["head.extra"] = torch.zeros(3)  # unexpected
    sd["features.9.weight"] = torch.zeros(1)  # unexpected
    sd["up.weight"] = sd["up.weight"].transpose(0, 1).contiguous()  # (2, 4, 2, 2): misshapen
    sd["features.0.weight"] = torch.zeros(4, 3, 2, 2, dtype=torch.float64)  # misshapen
    return sd


def test_bad_state_dict_lists_everything_and_changes_nothing():
    f = FlaxMix(rngs=nnx.Rngs(0))
    before = _snapshot(f)
    with pytest.raises(StateDictError) as info:
        load_torch_state_dict(f, _bad_state_dict())
    e = info.value
    assert sorted(e.missing) == ["blocks.2.running_var", "head.bias"]
    assert sorted(e.unexpected) == ["features.9.weight", "head.extra"]
    assert sorted(m[0] for m in e.mismatched) == ["features.0.weight", "up.weight"]
    assert ("up.weight", (4, 2, 2, 2), (2, 4, 2, 2)) in e.mismatched
    msg = str(e)
    for key in ("head.bias", "blocks.2.running_var", "head.extra", "features.9.weight",
                "up.weight", "features.0.weight", "(4, 3, 3, 3)", "(4, 3, 2, 2)"):
        assert key in msg
    assert isinstance(e, ValueError)
    after = _snapshot(f)
    assert before.keys() == after.keys()
    for path, (value, dtype) in before.items():
        assert after[path][1] == dtype, path
        np.testing.assert_array_equal(after[path][0], value, err_msg=str(path))


def test_non_strict_returns_missing_and_unexpected():
    f = FlaxMix(rngs=nnx.Rngs(0))
    sd = dict(_torch_mix().state_dict())
    head_bias = f.head.bias.get_value()
    del sd["head.bias"]
    sd["head.extra"] = torch.zeros(3)
    res = load_torch_state_dict(f, sd, strict=False)
    assert res.missing_keys == ["head.bias"]
    assert res.unexpected_keys == ["head.extra"]
    # everything present was loaded; the missing variable kept its value
    np.testing.assert_array_equal(f.head.bias.get_value(), head_bias)
    got = to_torch_state_dict(f)
    for k, v in sd.items():
        if k != "head.extra":
            np.testing.assert_array_equal(got[k], v.numpy(), err_msg=k)


def test_non_strict_still_rejects_shape_mismatch():
    f = FlaxMix(rngs=nnx.Rngs(0))
    before = _snapshot(f)
    sd = dict(_torch_mix().state_dict())
    sd["head.weight"] = torch.zeros(5, 3)
    del sd["head.bias"]
    with pytest.raises(StateDictError, match="shape mismatch for head.weight") as info:
        load_torch_state_dict(f, sd, strict=False)
    assert info.value.missing == []  # not an error when non-strict
    after = _snapshot(f)
    for path, (value, _) in before.items():
        np.testing.assert_array_equal(after[path][0], value)


# -------------------------------------------------------------------------- gradients

def test_grad_state_converts_to_torch_grads():
    """nnx.grad's State → torch keys and layouts, equal to torch's .grad (float64, train
    mode: BatchNorm batch statistics), without passing the module (``like=``)."""
    t = _torch_mix(3).train()
    f = FlaxMix(rngs=nnx.Rngs(0))
    load_torch_state_dict(f, t.state_dict())
    f.train()
    rng = np.random.default_rng(1)
    x, idx = rng.standard_normal((3, 3, 8, 8)), np.array([0, 4, 4])
    cot = rng.standard_normal((3, 3))
    (t(torch.as_tensor(x), torch.as_tensor(idx)) * torch.as_tensor(cot)).sum().backward()

    def loss(model):
        return jnp.sum(model(jnp.asarray(nchw_to_nhwc(x)), jnp.asarray(idx)) * cot)

    grads = nnx.grad(loss)(f)
    assert isinstance(grads, nnx.State)
    got = to_torch_state_dict(grads)
    want = {k: p.grad.numpy() for k, p in t.named_parameters()}
    assert sorted(got) == sorted(want)
    # normwise over all gradients: a bias feeding a BatchNorm has a (rounding-noise) zero one
    scale = max(np.abs(w).max() for w in want.values())
    for k, w in want.items():
        assert got[k].shape == w.shape, k
        np.testing.assert_allclose(got[k], w, rtol=0, atol=1e-12 * scale, err_msg=k)
    # the running statistics moved exactly as torch's
    f_state = to_torch_state_dict(f)
    for k, v in t.state_dict().items():
        np.testing.assert_allclose(f_state[k], v.numpy(), rtol=1e-12, atol=1e-14, err_msg=k)


# ------------------------------------------------------- a user's model of stock NNX layers

class TorchUser(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(2, 3, (2, 3))
        self.mlp = tnn.Sequential(tnn.Linear(3, 4), tnn.Tanh(), tnn.Linear(4, 2, bias=False))

    def forward(self, x):
        """x (N, 2, H, W) → (N, 2)."""
        return self.mlp(self.conv(x).mean(dim=(2, 3)))


class StockUser(nnx.Module):
    """Only stock NNX layers: no torch metadata on any variable."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.conv = nnx.Conv(2, 3, (2, 3), padding="VALID", rngs=rngs)
        self.mlp = nnx.Sequential(nnx.Linear(3, 4, rngs=rngs), jnp.tanh,
                                  nnx.Linear(4, 2, use_bias=False, rngs=rngs))

    def __call__(self, x):
        """x (N, H, W, 2) → (N, 2)."""
        return self.mlp(self.conv(x).mean(axis=(1, 2)))


def test_stock_nnx_layers_convert_by_type():
    torch.manual_seed(0)
    t = TorchUser().double()
    f = StockUser(rngs=nnx.Rngs(0))
    assert sorted(torch_keys(f)) == sorted(t.state_dict())
    load_torch_state_dict(f, t.state_dict())
    _assert_state_equal(to_torch_state_dict(f), t.state_dict())
    # same function, and gradients convert when the module is given as `like`
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 6))
    out = t(torch.as_tensor(x))
    out.sum().backward()
    np.testing.assert_allclose(np.asarray(f(jnp.asarray(nchw_to_nhwc(x)))),
                               out.detach().numpy(), rtol=1e-12, atol=1e-14)
    grads = nnx.grad(lambda m: jnp.sum(m(jnp.asarray(nchw_to_nhwc(x)))))(f)
    got = to_torch_state_dict(grads, like=f)
    want = {k: p.grad.numpy() for k, p in t.named_parameters()}
    assert sorted(got) == sorted(want)
    for k, w in want.items():
        np.testing.assert_allclose(got[k], w, rtol=1e-12, atol=1e-14, err_msg=k)
    # without `like` only the variable names are known: nnx names, not torch's
    assert "conv.kernel" in to_torch_state_dict(grads)


def test_tagged_user_variable_and_raw_param():
    """A user's own layer: a tagged variable and an untagged raw Param."""

    class Own(nnx.Module):
        def __init__(self):
            self.w = nnx.Param(jnp.arange(6.0).reshape(2, 3), torch_name="weight",
                               torch_layout="linear")
            self.alpha = nnx.Param(jnp.ones(3))

    class TOwn(tnn.Module):
        def __init__(self):
            super().__init__()
            self.weight = tnn.Parameter(torch.randn(3, 2, dtype=torch.float64))
            self.alpha = tnn.Parameter(torch.randn(3, dtype=torch.float64))

    f, t = Own(), TOwn()
    assert sorted(torch_keys(f)) == ["alpha", "weight"]
    load_torch_state_dict(f, t.state_dict())
    np.testing.assert_array_equal(f.w.get_value(), t.weight.detach().numpy().T)
    _assert_state_equal(to_torch_state_dict(f), t.state_dict())


def test_to_torch_state_dict_rejects_other_types():
    with pytest.raises(TypeError, match="nnx.Module or nnx.State"):
        to_torch_state_dict({"weight": np.zeros(3)})


def test_unknown_layout_is_reported():
    class Bad(nnx.Module):
        def __init__(self):
            self.w = nnx.Param(jnp.zeros(2), torch_name="weight", torch_layout="nope")

    with pytest.raises(KeyError, match="unknown torch_layout 'nope'"):
        to_torch_state_dict(Bad())


# ---------------------------------------------------------------------- layout helpers

@pytest.mark.parametrize("kind", ["numpy", "jax", "torch"])
def test_layout_helpers(kind):
    rng = np.random.default_rng(0)
    a3, a4, a5 = (rng.standard_normal(s) for s in [(2, 3, 5), (2, 3, 4, 5), (2, 3, 4, 5, 6)])
    wrap = {"numpy": np.asarray, "jax": jnp.asarray, "torch": torch.as_tensor}[kind]
    cls = type(wrap(a3))

    def np_(x):
        assert isinstance(x, cls)  # same array type in as out
        return np.asarray(x)

    np.testing.assert_array_equal(np_(ncw_to_nwc(wrap(a3))), a3.transpose(0, 2, 1))
    np.testing.assert_array_equal(np_(nwc_to_ncw(wrap(a3))), a3.transpose(0, 2, 1))
    np.testing.assert_array_equal(np_(nchw_to_nhwc(wrap(a4))), a4.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(np_(nhwc_to_nchw(wrap(a4))), a4.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(np_(channels_first_to_last(wrap(a5))),
                                  a5.transpose(0, 2, 3, 4, 1))
    np.testing.assert_array_equal(np_(channels_last_to_first(wrap(a5))),
                                  a5.transpose(0, 4, 1, 2, 3))
    for a in (a3, a4, a5):  # inverse of each other
        np.testing.assert_array_equal(
            np_(channels_last_to_first(channels_first_to_last(wrap(a)))), a)


@pytest.mark.parametrize("fn,bad,layout", [
    (ncw_to_nwc, (2, 3, 4, 5), r"\(N, C, W\)"),
    (nwc_to_ncw, (2, 3), r"\(N, W, C\)"),
    (nchw_to_nhwc, (2, 3, 4), r"\(N, C, H, W\)"),
    (nhwc_to_nchw, (2, 3, 4, 5, 6), r"\(N, H, W, C\)"),
    (channels_first_to_last, (2, 3), r"\(N, C, \*spatial\)"),
    (channels_last_to_first, (4,), r"\(N, \*spatial, C\)"),
])
@pytest.mark.parametrize("kind", ["numpy", "jax", "torch"])
def test_layout_helpers_rank_errors(fn, bad, layout, kind):
    wrap = {"numpy": np.zeros, "jax": jnp.zeros, "torch": torch.zeros}[kind]
    with pytest.raises(ValueError, match=layout):
        fn(wrap(bad))
