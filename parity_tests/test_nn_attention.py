"""MultiheadAttention and the transformer layers against torch: hypothesis fuzzing over
the hyper-parameters, masks and flags module_db does not reach (kdim/vdim, float and
bool masks of every shape, need_weights=False, per-head weights, is_causal, fully
masked rows, several layers), float64 within 1e-12 and a subset in float32 (1e-5), and
the errors for bad arguments and inputs (the message names the argument)."""

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

from flax_arch.interop import load_torch_state_dict, torch_keys
from flax_arch.nn.attention import MultiheadAttention
from flax_arch.nn.transformer import (Transformer, TransformerDecoder, TransformerDecoderLayer,
                                      TransformerEncoder, TransformerEncoderLayer)
from flax_arch.parity import Case

from .test_layers import check, fuzz, seeds

pytestmark = pytest.mark.filterwarnings(
    "ignore:enable_nested_tensor is True:UserWarning",  # torch's fast-path notice
    "ignore:Support for mismatched:UserWarning")  # both sides warn on mixed mask dtypes


def _mask(draw, rng_seed, shape, kind):
    """A mask in numpy: bool (True = blocked) or float (added), never all-blocked rows
    unless drawn so."""
    rng = np.random.default_rng(rng_seed)
    if kind == "bool":
        return rng.random(shape) < 0.3
    return rng.standard_normal(shape)


def _kw_call(mask_kw, **flags):
    """torch_call / flax_call passing masks (float ones cast to the run's dtype) and flags."""
    def torch_call(m, *xs):
        dt = xs[0].dtype
        kw = {k: None if v is None else (torch.as_tensor(v).to(dt) if v.dtype.kind == "f"
                                         else torch.as_tensor(v)) for k, v in mask_kw.items()}
        return m(*xs, **kw, **flags)

    def flax_call(m, *xs):
        dt = xs[0].dtype
        kw = {k: None if v is None else (jnp.asarray(v).astype(dt) if v.dtype.kind == "f"
                                         else jnp.asarray(v)) for k, v in mask_kw.items()}
        return m(*xs, **kw, **flags)
    return torch_call, flax_call


def _strip_none(call):
    """Both sides return (out, None) with need_weights=False: compare ``out`` only."""
    def wrapped(m, *xs):
        out = call(m, *xs)
        return tuple(o for o in out if o is not None) if isinstance(out, tuple) else out
    return wrapped


# ------------------------------------------------------------------ MultiheadAttention

@st.composite
def mha_configs(draw):
    H = draw(st.integers(1, 3))
    E = H * draw(st.integers(1, 3))
    kw = dict(bias=draw(st.booleans()), add_bias_kv=draw(st.booleans()),
              add_zero_attn=draw(st.booleans()), batch_first=draw(st.booleans()))
    if draw(st.booleans()):
        kw.update(kdim=draw(st.integers(1, 4)), vdim=draw(st.integers(1, 4)))
    L, S = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    N = draw(st.sampled_from([None, 1, 2]))
    masks = {}
    n = 1 if N is None else N
    kind = draw(st.sampled_from(["bool", "float"]))
    if draw(st.booleans()):
        masks["attn_mask"] = _mask(draw, draw(seeds), draw(st.sampled_from(
            [(L, S), (n * H, L, S)])), kind)
    if draw(st.booleans()):
        masks["key_padding_mask"] = _mask(draw, draw(seeds), (S,) if N is None else (N, S), kind)
    flags = dict(need_weights=draw(st.booleans()), average_attn_weights=draw(st.booleans()))
    if "attn_mask" in masks and draw(st.booleans()):
        flags["is_causal"] = True
    return H, E, kw, L, S, N, masks, flags


@pytest.mark.fuzz
@fuzz(6)
@given(mha_configs(), seeds, st.booleans())
def test_multihead_attention(cfg, seed, f32):
    H, E, kw, L, S, N, masks, flags = cfg
    kd, vd = kw.get("kdim", E), kw.get("vdim", E)

    def shape(T, d):
        if N is None:
            return (T, d)
        return (N, T, d) if kw["batch_first"] else (T, N, d)

    def inputs(rng):
        return (rng.standard_normal(shape(L, E)), rng.standard_normal(shape(S, kd)),
                rng.standard_normal(shape(S, vd)))
    tc, fc = _kw_call(masks, **flags)
    check(Case(f"MultiheadAttention({E}, {H}, {kw}) L={L} S={S} N={N} masks="
               f"{ {k: v.shape for k, v in masks.items()} } {flags}",
               lambda: torch.nn.MultiheadAttention(E, H, **kw),
               lambda r: MultiheadAttention(E, H, **kw, rngs=r), inputs,
               torch_call=_strip_none(tc), flax_call=_strip_none(fc), seed=seed), f32)


def test_multihead_attention_fully_masked_rows():
    """A query row whose keys are all masked: NaN with need_weights=True, zero attention
    (output = out_proj bias) with need_weights=False — torch's two paths."""
    jax.config.update("jax_enable_x64", True)
    torch.manual_seed(0)
    t = torch.nn.MultiheadAttention(4, 2).double()
    with torch.no_grad():
        t.out_proj.bias.uniform_()
    f = MultiheadAttention(4, 2, rngs=nnx.Rngs(0))
    load_torch_state_dict(f, t.state_dict())
    x = np.random.default_rng(0).standard_normal((3, 2, 4))
    am = np.array([[True] * 3, [False, True, True], [False] * 3])
    for nw in (True, False):
        want = t(*(torch.as_tensor(x),) * 3, attn_mask=torch.as_tensor(am), need_weights=nw)[0]
        got = f(*(jnp.asarray(x),) * 3, attn_mask=jnp.asarray(am), need_weights=nw)[0]
        np.testing.assert_allclose(np.asarray(got), want.detach().numpy(), rtol=1e-12,
                                   atol=1e-13)
        assert np.isnan(np.asarray(got)[0]).all() == nw
    g = jax.grad(lambda q: f(q, q, q, attn_mask=jnp.asarray(am), need_weights=False)[0].sum())(
        jnp.asarray(x))
    assert np.isfinite(np.asarray(g)).all()


def test_multihead_attention_dropout_and_modes():
    """Dropout acts on the attention weights in training only, from the ``dropout`` rngs."""
    m = MultiheadAttention(4, 2, dropout=0.5, rngs=nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(0).standard_normal((5, 2, 4)), jnp.float32)
    _, w1 = m(x, x, x, average_attn_weights=False)
    _, w2 = m(x, x, x, average_attn_weights=False)
    assert float(jnp.mean(w1 == 0)) > 0.2 and not np.array_equal(w1, w2)
    np.testing.assert_allclose(np.asarray(jnp.sum(w1, -1)).mean(), 1.0, atol=0.5)
    m.eval()
    o1, _ = m(x, x, x)
    o2, _ = m(x, x, x)
    assert np.array_equal(o1, o2)
    assert m(x, x, x, deterministic=False)[0].shape == (5, 2, 4)


# ------------------------------------------------------------------ transformer layers

@st.composite
def layer_configs(draw):
    H = draw(st.integers(1, 2))
    d = H * draw(st.integers(1, 3))
    kw = dict(dim_feedforward=draw(st.integers(1, 6)), dropout=0.0,
              activation=draw(st.sampled_from(["relu", "gelu"])),
              layer_norm_eps=draw(st.sampled_from([1e-5, 1e-3])),
              batch_first=draw(st.booleans()), norm_first=draw(st.booleans()),
              bias=draw(st.booleans()))
    return H, d, kw, draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(
        st.sampled_from([None, 2])), draw(st.sampled_from(["bool", "float"]))


def _seq(N, T, d, batch_first):
    if N is None:
        return (T, d)
    return (N, T, d) if batch_first else (T, N, d)


def _causal_or_random(rng, T, S, kind, causal):
    if causal:
        upper = np.triu(np.ones((T, S), bool), 1)
        return upper if kind == "bool" else np.where(upper, -np.inf, 0.0)
    return rng.random((T, S)) < 0.3 if kind == "bool" else rng.standard_normal((T, S))


@pytest.mark.fuzz
@fuzz(2)
@given(layer_configs(), seeds, st.booleans(), st.booleans())
def test_transformer_encoder(cfg, seed, causal, f32):
    """TransformerEncoder of 2 layers with a final LayerNorm, masks and is_causal hints."""
    H, d, kw, T, _, N, kind = cfg
    rng = np.random.default_rng(seed)
    masks = {"mask": _causal_or_random(rng, T, T, kind, causal)}
    if N is not None:
        masks["src_key_padding_mask"] = rng.random((N, T)) < 0.3 if kind == "bool" else \
            rng.standard_normal((N, T))
    tc, fc = _kw_call(masks, is_causal=True if causal else None)

    def torch_module():
        layer = torch.nn.TransformerEncoderLayer(d, H, **kw)
        return torch.nn.TransformerEncoder(layer, 2, norm=torch.nn.LayerNorm(d))

    def flax_module(r):
        layer = TransformerEncoderLayer(d, H, **kw, rngs=r)
        from flax_arch.nn.norm import LayerNorm
        return TransformerEncoder(layer, 2, norm=LayerNorm(d))
    check(Case(f"TransformerEncoder({d}, {H}, {kw}) T={T} N={N} {kind} causal={causal}",
               torch_module, flax_module,
               lambda r: (r.standard_normal(_seq(N, T, d, kw["batch_first"])),),
               torch_call=tc, flax_call=fc, seed=seed), f32)


@pytest.mark.fuzz
@fuzz(2)
@given(layer_configs(), seeds, st.booleans(), st.booleans())
def test_transformer_decoder(cfg, seed, causal, f32):
    """TransformerDecoder of 2 layers: tgt/memory masks, key padding, causal hints."""
    H, d, kw, T, S, N, kind = cfg
    rng = np.random.default_rng(seed)
    masks = {"tgt_mask": _causal_or_random(rng, T, T, kind, causal),
             "memory_mask": _causal_or_random(rng, T, S, kind, False)}
    if N is not None:
        masks["memory_key_padding_mask"] = rng.random((N, S)) < 0.3 if kind == "bool" \
            else rng.standard_normal((N, S))
    tc, fc = _kw_call(masks, tgt_is_causal=causal, memory_is_causal=causal)

    def torch_module():
        return torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(d, H, **kw), 2)

    def flax_module(r):
        return TransformerDecoder(TransformerDecoderLayer(d, H, **kw, rngs=r), 2)
    check(Case(f"TransformerDecoder({d}, {H}, {kw}) T={T} S={S} N={N} {kind} causal={causal}",
               torch_module, flax_module,
               lambda r: (r.standard_normal(_seq(N, T, d, kw["batch_first"])),
                          r.standard_normal(_seq(N, S, d, kw["batch_first"]))),
               torch_call=tc, flax_call=fc, seed=seed), f32)


@pytest.mark.fuzz
@fuzz(1)
@given(layer_configs(), seeds, st.booleans())
def test_transformer(cfg, seed, f32):
    """Transformer with 2 encoder and 1 decoder layers, every mask."""
    H, d, kw, T, S, N, kind = cfg
    rng = np.random.default_rng(seed)
    masks = {"src_mask": _causal_or_random(rng, S, S, kind, False),
             "tgt_mask": _causal_or_random(rng, T, T, kind, True),
             "memory_mask": _causal_or_random(rng, T, S, kind, False)}
    if N is not None:
        for k, n in (("src_key_padding_mask", S), ("tgt_key_padding_mask", T),
                     ("memory_key_padding_mask", S)):
            masks[k] = rng.random((N, n)) < 0.3 if kind == "bool" else rng.standard_normal((N, n))
    tc, fc = _kw_call(masks)
    check(Case(f"Transformer({d}, {H}, 2, 1, {kw}) T={T} S={S} N={N} {kind}",
               lambda: torch.nn.Transformer(d, H, 2, 1, **kw),
               lambda r: Transformer(d, H, 2, 1, **kw, rngs=r),
               lambda r: (r.standard_normal(_seq(N, S, d, kw["batch_first"])),
                          r.standard_normal(_seq(N, T, d, kw["batch_first"]))),
               torch_call=tc, flax_call=fc, seed=seed), f32)


def test_state_dict_keys_match_torch():
    warnings.simplefilter("ignore")
    t = torch.nn.Transformer(8, 2, 2, 1, 16, bias=False)
    f = Transformer(8, 2, 2, 1, 16, bias=False, rngs=nnx.Rngs(0))
    assert sorted(torch_keys(f)) == sorted(t.state_dict())
    t = torch.nn.MultiheadAttention(6, 3, kdim=2, vdim=5, add_bias_kv=True)
    f = MultiheadAttention(6, 3, kdim=2, vdim=5, add_bias_kv=True, rngs=nnx.Rngs(0))
    assert sorted(torch_keys(f)) == sorted(t.state_dict())


def test_clones_are_copies_with_distinct_dropout():
    layer = TransformerEncoderLayer(4, 2, 8, dropout=0.5, rngs=nnx.Rngs(0))
    enc = TransformerEncoder(layer, 2)
    a, b = enc.layers[0], enc.layers[1]
    assert np.array_equal(a.linear1.kernel.get_value(), b.linear1.kernel.get_value())
    assert a.linear1 is not b.linear1
    assert not np.array_equal(jax.random.key_data(a.dropout.rngs.key.get_value()),
                              jax.random.key_data(b.dropout.rngs.key.get_value()))


def test_square_subsequent_mask_matches_torch():
    np.testing.assert_array_equal(np.asarray(Transformer.generate_square_subsequent_mask(4)),
                                  torch.nn.Transformer.generate_square_subsequent_mask(4).numpy())


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize("kwargs, exc, word", [
    (dict(embed_dim=0, num_heads=1), ValueError, "embed_dim"),
    (dict(embed_dim=4, num_heads=0), ValueError, "num_heads"),
    (dict(embed_dim=5, num_heads=2), ValueError, "divisible"),
    (dict(embed_dim=4, num_heads=2, dropout=1.5), ValueError, "dropout"),
    (dict(embed_dim=4, num_heads=2, kdim=0), ValueError, "kdim"),
    (dict(embed_dim=4, num_heads=2, batch_first=1), TypeError, "batch_first"),
    (dict(embed_dim=4.0, num_heads=2), TypeError, "embed_dim"),
])
def test_mha_bad_arguments(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        MultiheadAttention(**kwargs, rngs=nnx.Rngs(0))


def test_mha_bad_inputs():
    m = MultiheadAttention(4, 2, rngs=nnx.Rngs(0))
    x = jnp.ones((3, 2, 4))
    with pytest.raises(ValueError, match="query"):
        m(jnp.ones((4,)), jnp.ones((4,)), jnp.ones((4,)))
    with pytest.raises(ValueError, match="key"):
        m(x, jnp.ones((3, 4)), x)
    with pytest.raises(ValueError, match="features"):
        m(x, jnp.ones((3, 2, 5)), x)
    with pytest.raises(ValueError, match="batch size"):
        m(x, jnp.ones((3, 1, 4)), jnp.ones((3, 1, 4)))
    with pytest.raises(ValueError, match="key_padding_mask"):
        m(x, x, x, key_padding_mask=jnp.zeros((2, 4), bool))
    with pytest.raises(ValueError, match="attn_mask"):
        m(x, x, x, attn_mask=jnp.zeros((2, 3, 3), bool))
    with pytest.raises(TypeError, match="attn_mask"):
        m(x, x, x, attn_mask=jnp.zeros((3, 3), jnp.int32))
    with pytest.raises(ValueError, match="is_causal"):
        m(x, x, x, is_causal=True)
    with pytest.raises(TypeError, match="query"):
        m(x.astype(jnp.int32), x, x)
    with pytest.warns(UserWarning, match="mismatched key_padding_mask"):
        m(x, x, x, key_padding_mask=jnp.zeros((2, 3), bool), attn_mask=jnp.zeros((3, 3)))


def test_transformer_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="activation"):
        TransformerEncoderLayer(4, 2, activation="tanh", rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="activation"):
        TransformerDecoderLayer(4, 2, activation=3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="d_model"):
        TransformerEncoderLayer(0, 1, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="encoder_layer"):
        TransformerEncoder("layer", 2)
    with pytest.raises(ValueError, match="num_layers"):
        TransformerDecoder(TransformerDecoderLayer(4, 2, 8, rngs=nnx.Rngs(0)), -1)
    layer = TransformerEncoderLayer(4, 2, 8, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="src"):
        layer(jnp.ones((3, 2, 5)))
    model = Transformer(4, 2, 1, 1, 8, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="batch number"):
        model(jnp.ones((3, 2, 4)), jnp.ones((3, 1, 4)))
    with pytest.raises(ValueError, match="d_model"):
        model(jnp.ones((3, 2, 4)), jnp.ones((3, 2, 5)))
