"""Torch's transformer layers: ``TransformerEncoderLayer``, ``TransformerDecoderLayer``,
``TransformerEncoder``, ``TransformerDecoder`` and ``Transformer``.

Layout: torch's (no channel axis) — time-major (S, N, E) by default, (N, S, E) with
``batch_first=True``, (S, E) unbatched. Attribute names are torch's, so the state_dict
keys are torch's: ``self_attn.in_proj_weight``, ``multihead_attn.*``, ``linear1.weight``,
``norm1.weight``, ``encoder.layers.0.…``, ``encoder.norm.weight``, ``decoder.…``.
(The parameter-free dropouts ``dropout``, ``dropout1``… are :class:`flax.nnx.Dropout`
modules holding only their RNG stream, which is no torch state.)

``activation``: ``"relu"`` or ``"gelu"`` (torch's strings; ``"gelu"`` is the exact, erf
GELU of ``torch.nn.functional.gelu``), or any JAX callable (e.g. ``jax.nn.silu``). A torch
function cannot be called on JAX arrays: pass ``F.relu`` / ``F.gelu`` as their names.

Masks and ``is_causal`` hints follow :class:`flax_arch.nn.MultiheadAttention` (bool masks
are ``True`` where attention is not allowed; float masks are added). The layers call
attention with ``need_weights=False`` as torch does, so a query whose keys are all masked
attends to nothing (zero attention, torch's SDPA behaviour) instead of giving NaN.
``TransformerEncoder`` / ``TransformerDecoder`` with ``is_causal=None`` (torch: "detect
whether the mask is causal") compute the same values as with ``False``: torch uses the
detected causal mask only when it equals the given one.

Dropout (``dropout > 0``) is active in training mode only (``deterministic=False``, NNX's
``model.train()``, the default as in torch), its masks drawn from the ``dropout`` stream
of ``rngs``. The clones in ``TransformerEncoder`` / ``TransformerDecoder`` get distinct
dropout streams (the layer's stream folded with the layer index); their parameters are
copies of the given layer's, as torch's deep copies.

Not reproduced: torch's inference fast paths, taken only under ``torch.no_grad()`` in
eval mode (``torch._transformer_encoder_layer_fwd`` for batch_first encoder layers, and
in ``TransformerEncoder`` with a ``src_key_padding_mask`` the NestedTensor conversion).
They change two observable things: a fully masked query row gives NaN (here: zero
attention, as torch with autograd on), and ``TransformerEncoder`` returns exactly 0 at
padded positions before its final ``norm`` (here: the computed values there, as torch
with autograd on). Elsewhere they agree to rounding.

Half precision: float16/bfloat16 inputs are computed in float32 and rounded once.
``device`` is accepted and ignored; ``dtype`` is the computation dtype.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from ._utils import check_bool, check_float, check_int
from .attention import MultiheadAttention, canonical_mask, opmath_call
from .linear import Linear
from .norm import LayerNorm

__all__ = ["Transformer", "TransformerEncoder", "TransformerDecoder",
           "TransformerEncoderLayer", "TransformerDecoderLayer",
           "generate_square_subsequent_mask"]


def _gelu(x):
    """torch.nn.functional.gelu's default: the exact (erf) GELU."""
    return jax.nn.gelu(x, approximate=False)


def _relu(x):
    return jax.nn.relu(x)


def _activation(activation, layer: str) -> Callable:
    if isinstance(activation, str):
        if activation == "relu":
            return _relu
        if activation == "gelu":
            return _gelu
        raise ValueError(f"{layer}: activation should be 'relu' or 'gelu' (or a callable), "
                         f"got {activation!r}")
    if not callable(activation):
        raise TypeError(f"{layer}: activation must be 'relu', 'gelu' or a callable, got "
                        f"{type(activation).__name__}")
    return activation


def generate_square_subsequent_mask(sz: int, dtype=jnp.float32):
    """torch's ``Transformer.generate_square_subsequent_mask``: (sz, sz), −inf above the
    diagonal, 0 on and below it.

    >>> generate_square_subsequent_mask(3)
    Array([[  0., -inf, -inf],
           [  0.,   0., -inf],
           [  0.,   0.,   0.]], dtype=float32)
    """
    sz = check_int(sz, "sz", "generate_square_subsequent_mask", minimum=0)
    upper = jnp.arange(sz)[None, :] > jnp.arange(sz)[:, None]
    return jnp.where(upper, jnp.array(-jnp.inf, dtype), jnp.array(0, dtype))


def _check_layer_args(layer, d_model, nhead, dim_feedforward, dropout, layer_norm_eps,
                      batch_first, norm_first, bias):
    d_model = check_int(d_model, "d_model", layer, minimum=1)
    nhead = check_int(nhead, "nhead", layer, minimum=1)
    dim_feedforward = check_int(dim_feedforward, "dim_feedforward", layer, minimum=0)
    dropout = check_float(dropout, "dropout", layer, minimum=0.0, maximum=1.0)
    layer_norm_eps = check_float(layer_norm_eps, "layer_norm_eps", layer, minimum=0.0)
    return (d_model, nhead, dim_feedforward, dropout, layer_norm_eps,
            check_bool(batch_first, "batch_first", layer),
            check_bool(norm_first, "norm_first", layer), check_bool(bias, "bias", layer))


def _check_features(x, name, layer, d_model):
    if getattr(x, "ndim", None) is None:
        raise TypeError(f"{layer}: {name} must be an array, got {type(x).__name__}")
    if x.ndim not in (2, 3) or x.shape[-1] != d_model:
        raise ValueError(f"{layer}: {name} must be (S, E), (S, N, E) or (N, S, E) with "
                         f"E=d_model={d_model}, got shape {tuple(x.shape)}")


class TransformerEncoderLayer(nnx.Module):
    """Torch ``nn.TransformerEncoderLayer``: self-attention and a feed-forward block, each
    with a residual connection and LayerNorm (after, or before with ``norm_first``).

    ``__call__(src, src_mask=None, src_key_padding_mask=None, is_causal=False)``: src
    (S, N, E), (N, S, E) with ``batch_first``, or (S, E) → same shape.

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> layer = TransformerEncoderLayer(8, 2, 16, rngs=nnx.Rngs(0))
    >>> layer.eval()  # no dropout
    >>> layer(jnp.ones((5, 3, 8))).shape
    (5, 3, 8)
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str | Callable = "relu",
                 layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None, *,
                 rngs: nnx.Rngs, param_dtype=jnp.float32):
        del device
        name = "TransformerEncoderLayer"
        (d_model, nhead, dim_feedforward, dropout, layer_norm_eps, batch_first, norm_first,
         bias) = _check_layer_args(name, d_model, nhead, dim_feedforward, dropout,
                                   layer_norm_eps, batch_first, norm_first, bias)
        kw = dict(dtype=dtype, param_dtype=param_dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, rngs=rngs, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, rngs=rngs, **kw)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, rngs=rngs, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = nnx.Dropout(dropout, rngs=rngs)
        self.dropout2 = nnx.Dropout(dropout, rngs=rngs)
        self.activation = _activation(activation, name)
        self.d_model, self.batch_first = d_model, batch_first

    @opmath_call
    def __call__(self, src, src_mask=None, src_key_padding_mask=None, is_causal: bool = False):
        """src (S, N, E) / (N, S, E) with ``batch_first`` / (S, E) → same shape.
        ``src_mask`` (S, S) or (N·nhead, S, S); ``src_key_padding_mask`` (N, S) / (S,)."""
        name = "TransformerEncoderLayer"
        _check_features(src, "src", name, self.d_model)
        dt = src.dtype
        src_key_padding_mask = canonical_mask(src_key_padding_mask, "src_key_padding_mask",
                                              name, dt, other=src_mask, other_name="src_mask")
        src_mask = canonical_mask(src_mask, "src_mask", name, dt)
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, mask, kpm, is_causal):
        x = self.self_attn(x, x, x, attn_mask=mask, key_padding_mask=kpm, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerDecoderLayer(nnx.Module):
    """Torch ``nn.TransformerDecoderLayer``: self-attention, attention over ``memory`` and
    a feed-forward block, each with a residual connection and LayerNorm.

    ``__call__(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False)``: tgt
    (T, N, E), memory (S, N, E) ((N, ·, E) with ``batch_first``; unbatched (T, E), (S, E))
    → tgt's shape.

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> layer = TransformerDecoderLayer(8, 2, 16, rngs=nnx.Rngs(0))
    >>> layer.eval()
    >>> layer(jnp.ones((4, 3, 8)), jnp.ones((6, 3, 8))).shape
    (4, 3, 8)
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str | Callable = "relu",
                 layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None, *,
                 rngs: nnx.Rngs, param_dtype=jnp.float32):
        del device
        name = "TransformerDecoderLayer"
        (d_model, nhead, dim_feedforward, dropout, layer_norm_eps, batch_first, norm_first,
         bias) = _check_layer_args(name, d_model, nhead, dim_feedforward, dropout,
                                   layer_norm_eps, batch_first, norm_first, bias)
        kw = dict(dtype=dtype, param_dtype=param_dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, rngs=rngs, **kw)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                 batch_first=batch_first, rngs=rngs, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, rngs=rngs, **kw)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, rngs=rngs, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = nnx.Dropout(dropout, rngs=rngs)
        self.dropout2 = nnx.Dropout(dropout, rngs=rngs)
        self.dropout3 = nnx.Dropout(dropout, rngs=rngs)
        self.activation = _activation(activation, name)
        self.d_model, self.batch_first = d_model, batch_first

    @opmath_call
    def __call__(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                 memory_key_padding_mask=None, tgt_is_causal: bool = False,
                 memory_is_causal: bool = False):
        """tgt (T, N, E) / (N, T, E) / (T, E), memory likewise with S → tgt's shape.
        ``tgt_mask`` (T, T) or (N·nhead, T, T); ``memory_mask`` (T, S) or (N·nhead, T, S);
        key padding masks (N, T) / (N, S) ((T,) / (S,) unbatched)."""
        name = "TransformerDecoderLayer"
        _check_features(tgt, "tgt", name, self.d_model)
        _check_features(memory, "memory", name, self.d_model)
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask,
                                    memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask,
                                               memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(self, x, mask, kpm, is_causal):
        x = self.self_attn(x, x, x, attn_mask=mask, key_padding_mask=kpm, is_causal=is_causal,
                           need_weights=False)[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, mask, kpm, is_causal):
        x = self.multihead_attn(x, mem, mem, attn_mask=mask, key_padding_mask=kpm,
                                is_causal=is_causal, need_weights=False)[0]
        return self.dropout2(x)

    def _ff_block(self, x):
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))


def _clones(layer, num_layers: int, name: str):
    """``num_layers`` deep copies of ``layer`` (torch's ``_get_clones``), each with its
    dropout streams folded with its index so the copies draw distinct masks."""
    clones = []
    for i in range(num_layers):
        c = nnx.clone(layer)
        for _, node in nnx.iter_graph(c):
            if isinstance(node, nnx.RngStream):
                node.key.set_value(jax.random.fold_in(node.key.get_value(), i))
        clones.append(c)
    return nnx.List(clones)


def _is_causal(is_causal, name, layer):
    """torch's ``_detect_is_causal_mask``: ``None`` means "detect"; a detected causal mask
    is only used where it equals the given mask, so ``None`` computes as ``False``."""
    if is_causal is None:
        return False
    return check_bool(is_causal, name, layer)


class TransformerEncoder(nnx.Module):
    """Torch ``nn.TransformerEncoder(encoder_layer, num_layers, norm=None,
    enable_nested_tensor=True, mask_check=True)``: ``num_layers`` copies of a
    :class:`TransformerEncoderLayer` (``layers``), then ``norm`` if given.

    ``enable_nested_tensor`` / ``mask_check`` only steer torch's inference fast path (see
    the module docstring); they are validated and stored, and change no value here.

    ``__call__(src, mask=None, src_key_padding_mask=None, is_causal=None)`` → src's shape.

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> layer = TransformerEncoderLayer(8, 2, 16, rngs=nnx.Rngs(0))
    >>> enc = TransformerEncoder(layer, 2)
    >>> enc.eval()
    >>> enc(jnp.ones((5, 3, 8))).shape
    (5, 3, 8)
    """

    def __init__(self, encoder_layer, num_layers: int, norm=None,
                 enable_nested_tensor: bool = True, mask_check: bool = True):
        name = "TransformerEncoder"
        if not isinstance(encoder_layer, nnx.Module):
            raise TypeError(f"{name}: encoder_layer must be a flax module (a "
                            f"TransformerEncoderLayer), got {type(encoder_layer).__name__}")
        self.num_layers = check_int(num_layers, "num_layers", name, minimum=0)
        if norm is not None and not callable(norm):
            raise TypeError(f"{name}: norm must be a module or None, got {type(norm).__name__}")
        self.enable_nested_tensor = check_bool(enable_nested_tensor, "enable_nested_tensor", name)
        self.mask_check = check_bool(mask_check, "mask_check", name)
        self.layers = _clones(encoder_layer, self.num_layers, name)
        self.norm = norm

    def __call__(self, src, mask=None, src_key_padding_mask=None, is_causal: bool | None = None):
        """src (S, N, E) / (N, S, E) with ``batch_first`` / (S, E) → same shape."""
        name = "TransformerEncoder"
        if getattr(src, "dtype", None) is None:
            raise TypeError(f"{name}: src must be an array, got {type(src).__name__}")
        dt = src.dtype
        src_key_padding_mask = canonical_mask(src_key_padding_mask, "src_key_padding_mask",
                                              name, dt, other=mask, other_name="mask")
        mask = canonical_mask(mask, "mask", name, dt)
        is_causal = _is_causal(is_causal, "is_causal", name)
        out = src
        for layer in self.layers:
            out = layer(out, src_mask=mask, is_causal=is_causal,
                        src_key_padding_mask=src_key_padding_mask)
        if self.norm is not None:
            out = self.norm(out)
        return out


class TransformerDecoder(nnx.Module):
    """Torch ``nn.TransformerDecoder(decoder_layer, num_layers, norm=None)``: ``num_layers``
    copies of a :class:`TransformerDecoderLayer` (``layers``), then ``norm`` if given.

    ``__call__(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False)`` → tgt's
    shape.

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> dec = TransformerDecoder(TransformerDecoderLayer(8, 2, 16, rngs=nnx.Rngs(0)), 2)
    >>> dec.eval()
    >>> dec(jnp.ones((4, 3, 8)), jnp.ones((6, 3, 8))).shape
    (4, 3, 8)
    """

    def __init__(self, decoder_layer, num_layers: int, norm=None):
        name = "TransformerDecoder"
        if not isinstance(decoder_layer, nnx.Module):
            raise TypeError(f"{name}: decoder_layer must be a flax module (a "
                            f"TransformerDecoderLayer), got {type(decoder_layer).__name__}")
        self.num_layers = check_int(num_layers, "num_layers", name, minimum=0)
        if norm is not None and not callable(norm):
            raise TypeError(f"{name}: norm must be a module or None, got {type(norm).__name__}")
        self.layers = _clones(decoder_layer, self.num_layers, name)
        self.norm = norm

    def __call__(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                 memory_key_padding_mask=None, tgt_is_causal: bool | None = None,
                 memory_is_causal: bool = False):
        """tgt (T, N, E) / (N, T, E) / (T, E), memory likewise with S → tgt's shape."""
        name = "TransformerDecoder"
        tgt_is_causal = _is_causal(tgt_is_causal, "tgt_is_causal", name)
        out = tgt
        for layer in self.layers:
            out = layer(out, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                        tgt_key_padding_mask=tgt_key_padding_mask,
                        memory_key_padding_mask=memory_key_padding_mask,
                        tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)
        if self.norm is not None:
            out = self.norm(out)
        return out


class Transformer(nnx.Module):
    """Torch ``nn.Transformer``: a :class:`TransformerEncoder` (``encoder``, with a final
    LayerNorm) and a :class:`TransformerDecoder` (``decoder``, likewise), or the given
    ``custom_encoder`` / ``custom_decoder`` modules.

    As torch, every parameter with more than one axis (of the custom modules too) is
    re-initialised Xavier-uniform at construction (symmetric in fan-in and fan-out, so the
    transposed Linear kernels get torch's distribution).

    ``__call__(src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
    src_key_padding_mask=None, tgt_key_padding_mask=None, memory_key_padding_mask=None,
    src_is_causal=None, tgt_is_causal=None, memory_is_causal=False)``: src (S, N, E), tgt
    (T, N, E) ((N, ·, E) with ``batch_first``; unbatched (S, E), (T, E)) → tgt's shape.
    src and tgt must have the same batch size and E = d_model (ValueError; torch:
    RuntimeError).

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> model = Transformer(8, 2, 1, 1, 16, rngs=nnx.Rngs(0))
    >>> model.eval()
    >>> model(jnp.ones((6, 3, 8)), jnp.ones((4, 3, 8))).shape
    (4, 3, 8)
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable = "relu", custom_encoder=None, custom_decoder=None,
                 layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None, *,
                 rngs: nnx.Rngs, param_dtype=jnp.float32):
        del device
        name = "Transformer"
        num_encoder_layers = check_int(num_encoder_layers, "num_encoder_layers", name, minimum=0)
        num_decoder_layers = check_int(num_decoder_layers, "num_decoder_layers", name, minimum=0)
        layer_kw = dict(dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                        layer_norm_eps=layer_norm_eps, batch_first=batch_first,
                        norm_first=norm_first, bias=bias, dtype=dtype, rngs=rngs,
                        param_dtype=param_dtype)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            layer = TransformerEncoderLayer(d_model, nhead, **layer_kw)
            self.encoder = TransformerEncoder(
                layer, num_encoder_layers,
                LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype,
                          param_dtype=param_dtype))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            layer = TransformerDecoderLayer(d_model, nhead, **layer_kw)
            self.decoder = TransformerDecoder(
                layer, num_decoder_layers,
                LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype,
                          param_dtype=param_dtype))
        for _, var in nnx.to_flat_state(nnx.state(self, nnx.Param)):
            value = var.get_value()
            if value.ndim > 1:  # torch's _reset_parameters: xavier_uniform_ on every matrix
                fan_in, fan_out = value.shape[1], value.shape[0]
                if value.ndim > 2:  # torch's fans for (out, in, *k)
                    rf = math.prod(value.shape[2:])
                    fan_in, fan_out = fan_in * rf, fan_out * rf
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                var.set_value(jax.random.uniform(rngs.params(), value.shape, value.dtype,
                                                 -bound, bound))
        self.d_model = check_int(d_model, "d_model", name, minimum=1)
        self.nhead = nhead
        self.batch_first = check_bool(batch_first, "batch_first", name)

    generate_square_subsequent_mask = staticmethod(generate_square_subsequent_mask)

    def __call__(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
                 src_key_padding_mask=None, tgt_key_padding_mask=None,
                 memory_key_padding_mask=None, src_is_causal: bool | None = None,
                 tgt_is_causal: bool | None = None, memory_is_causal: bool = False):
        """src (S, N, E) / (N, S, E) / (S, E), tgt likewise with T → tgt's shape."""
        name = "Transformer"
        for arg, a in (("src", src), ("tgt", tgt)):
            if getattr(a, "ndim", None) is None:
                raise TypeError(f"{name}: {arg} must be an array, got {type(a).__name__}")
        if src.ndim == 3:
            b = 0 if self.batch_first else 1
            if tgt.ndim != 3 or src.shape[b] != tgt.shape[b]:
                raise ValueError(f"{name}: the batch number of src and tgt must be equal, got "
                                 f"shapes {tuple(src.shape)} and {tuple(tgt.shape)}")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise ValueError(f"{name}: the feature number of src and tgt must be equal to "
                             f"d_model={self.d_model}, got shapes {tuple(src.shape)} and "
                             f"{tuple(tgt.shape)}")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)
