"""``MultiheadAttention`` with torch's signature, parameters, masks and two code paths.

Layout: attention has no channel axis, so the layout is torch's: time-major
(L, N, E) by default, (N, L, E) with ``batch_first=True``, and (L, E) unbatched (where
``batch_first`` is ignored, as in torch).

Variables, one per torch parameter, all in **torch's layout** (no transpose, so the
converter copies them as they are; the projections are computed as ``x @ W.T``):

* ``in_proj_weight`` (3E, E) — the packed q/k/v projection, when ``kdim == vdim ==
  embed_dim``; otherwise ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim),
  ``v_proj_weight`` (E, vdim) and ``in_proj_weight`` is ``None`` (as torch registers them);
* ``in_proj_bias`` (3E,) (``None`` with ``bias=False``);
* ``out_proj`` — a :class:`flax_arch.nn.Linear` (E → E) whose kernel is stored transposed
  as every Linear's (torch keys ``out_proj.weight`` / ``out_proj.bias``);
* ``bias_k`` / ``bias_v`` (1, 1, E) with ``add_bias_kv=True``, else ``None``.

Initialisation as torch: Xavier-uniform projection weights, zero in-projection and
out-projection biases, Xavier-normal ``bias_k`` / ``bias_v``, torch's Linear default for
``out_proj.weight``.

Semantics (read from ``torch.nn.functional.multi_head_attention_forward``):

* masks: a bool mask is ``True`` where attention is *not* allowed (it becomes −inf); a float
  mask is added to the scores. ``attn_mask`` is (L, S) or (N·num_heads, L, S) — for an
  unbatched query (num_heads, L, S) — and ``key_padding_mask`` (N, S) (unbatched: (S,)).
  Both are added. A bool ``key_padding_mask`` with a float ``attn_mask`` (or the reverse)
  warns as torch does. Integer masks are refused (TypeError naming the mask).
* ``need_weights=True`` (torch's explicit path): the weights are
  ``softmax(q/√d · kᵀ + mask)``, averaged over heads unless ``average_attn_weights=False``;
  a query row whose keys are all masked gives **NaN** (torch: the same).
* ``need_weights=False`` (torch's ``scaled_dot_product_attention`` path): the same values,
  except that a fully masked row gives **zero** attention (so the output there is
  ``out_proj``'s bias) with finite gradients — torch's SDPA uses a "safe" softmax there.
  The weights output is ``None``.
* ``is_causal=True`` needs ``attn_mask`` (ValueError otherwise, torch: RuntimeError). With
  ``need_weights=False`` and no ``key_padding_mask``, torch then ignores ``attn_mask`` and
  applies the causal mask (query i sees keys j ≤ i, over the keys after ``bias_k`` /
  zero-attention were appended); otherwise the hint is ignored and ``attn_mask`` used. Both
  are reproduced.
* ``add_bias_kv`` appends ``bias_k`` / ``bias_v`` as one more key/value position, and
  ``add_zero_attn`` one zero key/value per head; the masks are padded with "attend" for
  each, as torch pads them.
* dropout (``dropout > 0``) drops attention weights in training mode only
  (``deterministic=False``, NNX's ``model.train()``); its mask comes from the ``dropout``
  stream of ``rngs`` (torch's random numbers cannot be reproduced; the rate and the
  inverted scaling are torch's).

Not reproduced: torch's inference *fast path* (``torch._native_multi_head_attention``),
which torch takes only under ``torch.no_grad()`` in eval mode for batched, batch_first
self-attention. Its values agree with the path above except that a fully masked query
row gives NaN there, in both ``need_weights`` modes; the twin always gives what torch
gives with autograd on. NestedTensor inputs do not exist in JAX.

Half precision: float16/bfloat16 inputs are computed in float32 (projections, softmax,
weighted sums) and rounded once at the end, as torch's kernels accumulate in float32.

Validation (errors name the argument): ``embed_dim`` / ``num_heads`` ints ≥ 1 with
``embed_dim`` divisible by ``num_heads`` (torch: ValueError / AssertionError),
``kdim`` / ``vdim`` ints ≥ 1 or None, ``dropout`` a number in [0, 1], flags bools; inputs
floating point of rank 2 or 3 with matching ranks, feature sizes, batch sizes and mask
shapes (torch raises AssertionError / RuntimeError for these; here ValueError).
``device`` is accepted and ignored (JAX places arrays itself); ``dtype`` is the
computation dtype, as in the other layers.
"""

from __future__ import annotations

import functools
import math
import warnings

import jax
import jax.numpy as jnp
from flax import nnx

from ..ops.elementwise import torch_softmax
from ._utils import check_bool, check_float, check_int, check_floating_input, opmath_dtype
from .linear import Linear

__all__ = ["MultiheadAttention", "canonical_mask", "opmath_call"]


def opmath_call(call):
    """Decorate a ``__call__`` whose floating array arguments (positional or keyword) are
    computed in float32 when they are float16/bfloat16, every floating output rounded
    back to the dtype of the first argument once (:func:`flax_arch.nn._utils.in_opmath`
    for layers with several array inputs: query/key/value, masks, memory)."""
    @functools.wraps(call)
    def wrapper(self, x, *args, **kwargs):
        dtype = getattr(x, "dtype", None)
        if dtype is None or not jnp.issubdtype(dtype, jnp.floating) or \
                opmath_dtype(dtype) == jnp.dtype(dtype):
            return call(self, x, *args, **kwargs)
        up = opmath_dtype(dtype)

        def cast(a):
            if hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jnp.floating):
                return jnp.asarray(a).astype(up)
            return a
        out = call(self, cast(x), *(cast(a) for a in args),
                   **{k: cast(v) for k, v in kwargs.items()})
        return jax.tree.map(
            lambda y: y.astype(dtype) if jnp.issubdtype(y.dtype, jnp.floating) else y, out)
    return wrapper


def canonical_mask(mask, name: str, layer: str, dtype, other=None, other_name: str = ""):
    """torch's ``_canonical_mask``: ``None`` stays ``None``; a bool mask becomes 0 where
    False and −inf where True, in ``dtype``; a float mask is kept (cast to ``dtype``).
    Other dtypes are a TypeError naming ``name``. When ``other`` (the companion mask) has
    a different dtype, torch's deprecation UserWarning is issued."""
    if mask is None:
        return None
    mdtype = getattr(mask, "dtype", None)
    if mdtype is None:
        raise TypeError(f"{layer}: {name} must be an array or None, got {type(mask).__name__}")
    is_bool = mdtype == jnp.bool_
    if not is_bool and not jnp.issubdtype(mdtype, jnp.floating):
        raise TypeError(f"{layer}: {name} must be a bool or floating-point mask (as torch: "
                        f"only bool and floating types are supported), got dtype {mdtype}")
    if other is not None and getattr(other, "dtype", None) != mdtype:
        warnings.warn(f"Support for mismatched {name} and {other_name} is deprecated. "
                      f"Use same type for both instead.", UserWarning, stacklevel=4)
    if is_bool:
        return jnp.where(mask, jnp.array(-jnp.inf, dtype), jnp.array(0, dtype))
    return jnp.asarray(mask).astype(dtype)


def _xavier_uniform(key, shape, fan_in, fan_out, dtype):
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def _check_array(x, name, layer):
    if getattr(x, "ndim", None) is None:
        raise TypeError(f"{layer}: {name} must be an array, got {type(x).__name__}")
    check_floating_input(x, name=name, layer=layer)


class MultiheadAttention(nnx.Module):
    """Torch ``nn.MultiheadAttention`` (see the module docstring for every detail).

    ``__call__(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False)`` → ``(attn_output, attn_weights | None)``.

    Example::

        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> mha = MultiheadAttention(8, 2, batch_first=True, rngs=nnx.Rngs(0))
        >>> x = jnp.ones((3, 5, 8))
        >>> out, w = mha(x, x, x)
        >>> out.shape, w.shape
        ((3, 5, 8), (3, 5, 5))
        >>> sorted(k for k, _ in nnx.to_flat_state(nnx.state(mha, nnx.Param)))
        [('in_proj_bias',), ('in_proj_weight',), ('out_proj', 'bias'), ('out_proj', 'kernel')]
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None, dtype=None, *,
                 rngs: nnx.Rngs, param_dtype=jnp.float32, deterministic: bool = False):
        del device  # JAX places arrays itself; accepted for torch's signature
        name = "MultiheadAttention"
        embed_dim = check_int(embed_dim, "embed_dim", name, minimum=1)
        num_heads = check_int(num_heads, "num_heads", name, minimum=1)
        if embed_dim % num_heads:
            raise ValueError(f"{name}: embed_dim must be divisible by num_heads, got "
                             f"embed_dim={embed_dim} and num_heads={num_heads}")
        self.dropout = check_float(dropout, "dropout", name, minimum=0.0, maximum=1.0)
        bias = check_bool(bias, "bias", name)
        add_bias_kv = check_bool(add_bias_kv, "add_bias_kv", name)
        self.add_zero_attn = check_bool(add_zero_attn, "add_zero_attn", name)
        kdim = check_int(kdim, "kdim", name, minimum=1, optional=True)
        vdim = check_int(vdim, "vdim", name, minimum=1, optional=True)
        self.batch_first = check_bool(batch_first, "batch_first", name)
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dtype = dtype
        E = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = nnx.Param(
                _xavier_uniform(rngs.params(), (3 * E, E), E, 3 * E, param_dtype),
                torch_name="in_proj_weight")
            self.q_proj_weight = self.k_proj_weight = self.v_proj_weight = None
        else:
            self.in_proj_weight = None
            self.q_proj_weight = nnx.Param(
                _xavier_uniform(rngs.params(), (E, E), E, E, param_dtype),
                torch_name="q_proj_weight")
            self.k_proj_weight = nnx.Param(
                _xavier_uniform(rngs.params(), (E, self.kdim), self.kdim, E, param_dtype),
                torch_name="k_proj_weight")
            self.v_proj_weight = nnx.Param(
                _xavier_uniform(rngs.params(), (E, self.vdim), self.vdim, E, param_dtype),
                torch_name="v_proj_weight")
        self.in_proj_bias = (nnx.Param(jnp.zeros((3 * E,), param_dtype), torch_name="in_proj_bias")
                             if bias else None)
        self.out_proj = Linear(E, E, bias=bias, rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        if bias:  # torch zeroes out_proj.bias too
            self.out_proj.bias.set_value(jnp.zeros((E,), param_dtype))
        if add_bias_kv:
            std = math.sqrt(2.0 / (2 * E))  # xavier_normal on (1, 1, E): fan_in = fan_out = E
            self.bias_k = nnx.Param(std * jax.random.normal(rngs.params(), (1, 1, E), param_dtype),
                                    torch_name="bias_k")
            self.bias_v = nnx.Param(std * jax.random.normal(rngs.params(), (1, 1, E), param_dtype),
                                    torch_name="bias_v")
        else:
            self.bias_k = self.bias_v = None
        self.attn_dropout = nnx.Dropout(self.dropout, rngs=rngs, deterministic=deterministic)

    # ------------------------------------------------------------------ checks

    def _check_inputs(self, query, key, value, key_padding_mask, attn_mask):
        name = "MultiheadAttention"
        for arg, a in (("query", query), ("key", key), ("value", value)):
            _check_array(a, arg, name)
        if query.ndim not in (2, 3):
            raise ValueError(f"{name}: query must be unbatched (L, E) or batched "
                             f"{'(N, L, E)' if self.batch_first else '(L, N, E)'}, got shape "
                             f"{tuple(query.shape)}")
        for arg, a in (("key", key), ("value", value)):
            if a.ndim != query.ndim:
                raise ValueError(f"{name}: for a {query.ndim}-D query, {arg} must be "
                                 f"{query.ndim}-D too, got shape {tuple(a.shape)}")
        for arg, a, want in (("query", query, self.embed_dim), ("key", key, self.kdim),
                             ("value", value, self.vdim)):
            if a.shape[-1] != want:
                raise ValueError(f"{name}: {arg} must have {want} features in its last axis, "
                                 f"got shape {tuple(a.shape)}")
        batched = query.ndim == 3
        seq_axis = 1 if (batched and self.batch_first) else 0
        if key.shape[seq_axis] != value.shape[seq_axis]:
            raise ValueError(f"{name}: key and value must have the same sequence length, got "
                             f"shapes {tuple(key.shape)} and {tuple(value.shape)}")
        if batched:
            b_axis = 0 if self.batch_first else 1
            if not query.shape[b_axis] == key.shape[b_axis] == value.shape[b_axis]:
                raise ValueError(f"{name}: query, key and value must have the same batch size, "
                                 f"got shapes {tuple(query.shape)}, {tuple(key.shape)}, "
                                 f"{tuple(value.shape)}")
        n = query.shape[1 - seq_axis] if batched else 1
        L, S = query.shape[seq_axis], key.shape[seq_axis]
        if key_padding_mask is not None:
            want = (n, S) if batched else (S,)
            if tuple(getattr(key_padding_mask, "shape", ())) != want:
                raise ValueError(f"{name}: key_padding_mask must have shape {want} "
                                 f"({'(N, S)' if batched else '(S,)'}), got "
                                 f"{tuple(getattr(key_padding_mask, 'shape', ()))}")
        if attn_mask is not None:
            shape = tuple(getattr(attn_mask, "shape", ()))
            if shape not in ((L, S), (n * self.num_heads, L, S)):
                raise ValueError(
                    f"{name}: attn_mask must have shape {(L, S)} (L, S) or "
                    f"{(n * self.num_heads, L, S)} "
                    f"({'(N*num_heads, L, S)' if batched else '(num_heads, L, S)'}), got {shape}")

    # ------------------------------------------------------------------ forward

    @opmath_call
    def __call__(self, query, key, value, key_padding_mask=None, need_weights: bool = True,
                 attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False,
                 *, deterministic: bool | None = None):
        """query (L, N, E) / (N, L, E) with ``batch_first`` / (L, E) unbatched; key (S, N,
        kdim), value (S, N, vdim) in the same layout → ``(attn_output, attn_weights)``:
        attn_output like query; attn_weights (N, L, S) averaged over heads, or (N,
        num_heads, L, S) with ``average_attn_weights=False`` ((L, S) / (num_heads, L, S)
        unbatched), ``None`` with ``need_weights=False``."""
        name = "MultiheadAttention"
        need_weights = check_bool(need_weights, "need_weights", name)
        average_attn_weights = check_bool(average_attn_weights, "average_attn_weights", name)
        is_causal = check_bool(is_causal, "is_causal", name)
        self._check_inputs(query, key, value, key_padding_mask, attn_mask)
        if self.dtype is not None:
            query, key, value = (a.astype(self.dtype) for a in (query, key, value))
        dt = query.dtype
        key_padding_mask = canonical_mask(key_padding_mask, "key_padding_mask", name, dt,
                                          other=attn_mask, other_name="attn_mask")
        attn_mask = canonical_mask(attn_mask, "attn_mask", name, dt)
        batched = query.ndim == 3
        if not batched:  # torch: a batch axis of 1, removed at the end
            query, key, value = (a[:, None] for a in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask[None]
        elif self.batch_first:  # torch computes time-major
            query, key, value = (jnp.swapaxes(a, 0, 1) for a in (query, key, value))
        if is_causal and attn_mask is None:
            raise ValueError(f"{name}: is_causal=True needs attn_mask (torch: 'Need attn_mask "
                             f"if specifying the is_causal hint')")
        # torch hands the causal hint to scaled_dot_product_attention only on this path;
        # everywhere else attn_mask is used as given
        use_causal = is_causal and key_padding_mask is None and not need_weights
        if use_causal:
            attn_mask = None
        out, weights = self._attend(query, key, value, key_padding_mask, attn_mask,
                                    need_weights, average_attn_weights, use_causal,
                                    deterministic)
        if not batched:
            out = out[:, 0]
            weights = None if weights is None else weights[0]
        elif self.batch_first:
            out = jnp.swapaxes(out, 0, 1)
        return out, weights

    def _in_projection(self, query, key, value):
        E = self.embed_dim
        b = self.in_proj_bias.get_value().astype(query.dtype) if self.in_proj_bias is not None \
            else None
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight.get_value().astype(query.dtype)
            ws = (w[:E], w[E:2 * E], w[2 * E:])
        else:
            ws = tuple(p.get_value().astype(query.dtype)
                       for p in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight))
        outs = []
        for i, (x, wi) in enumerate(zip((query, key, value), ws)):
            y = x @ wi.T  # torch's linear: x @ W.T (+ b)
            if b is not None:
                y = y + b[i * E:(i + 1) * E]
            outs.append(y)
        return outs

    def _attend(self, query, key, value, kpm, attn_mask, need_weights, average, use_causal,
                deterministic):
        L, N, E = query.shape
        H, D = self.num_heads, self.head_dim
        q, k, v = self._in_projection(query, key, value)  # (L|S, N, E)
        if attn_mask is not None and attn_mask.ndim == 2:
            attn_mask = attn_mask[None]  # (1, L, S)
        if self.bias_k is not None:  # one more key/value position, "attend" in the masks
            k = jnp.concatenate([k, jnp.broadcast_to(self.bias_k.get_value().astype(k.dtype),
                                                     (1, N, E))], axis=0)
            v = jnp.concatenate([v, jnp.broadcast_to(self.bias_v.get_value().astype(v.dtype),
                                                     (1, N, E))], axis=0)
            attn_mask = None if attn_mask is None else jnp.pad(attn_mask, ((0, 0), (0, 0), (0, 1)))
            kpm = None if kpm is None else jnp.pad(kpm, ((0, 0), (0, 1)))

        def heads(x):  # (T, N, E) → (N, H, T, D); torch's batch·head index is n·H + h
            return jnp.transpose(x.reshape(x.shape[0], N, H, D), (1, 2, 0, 3))
        q, k, v = heads(q), heads(k), heads(v)
        if self.add_zero_attn:  # one zero key/value per head, "attend" in the masks
            zeros = jnp.zeros((N, H, 1, D), k.dtype)
            k, v = jnp.concatenate([k, zeros], axis=2), jnp.concatenate([v, zeros], axis=2)
            attn_mask = None if attn_mask is None else jnp.pad(attn_mask, ((0, 0), (0, 0), (0, 1)))
            kpm = None if kpm is None else jnp.pad(kpm, ((0, 0), (0, 1)))
        S = k.shape[2]
        mask = None
        if attn_mask is not None:  # (1|N·H, L, S) → broadcastable to (N, H, L, S)
            mask = attn_mask[None] if attn_mask.shape[0] == 1 else attn_mask.reshape(N, H, L, S)
        if kpm is not None:
            pad = kpm[:, None, None, :]
            mask = pad if mask is None else mask + pad
        if use_causal:  # SDPA's causal mask: query i sees keys j <= i (top-left aligned)
            causal = jnp.arange(S)[None, :] > jnp.arange(L)[:, None]
            mask = jnp.where(causal, jnp.array(-jnp.inf, q.dtype), jnp.array(0, q.dtype))
        scores = (q * math.sqrt(1.0 / D)) @ jnp.swapaxes(k, -1, -2)  # (N, H, L, S)
        if mask is not None:
            scores = scores + mask
        if need_weights:
            weights = torch_softmax(scores, -1)  # all -inf row → NaN, as torch
        else:
            # torch's SDPA: a row with every score -inf gets zero weights (and gradient)
            dead = jnp.all(scores == -jnp.inf, axis=-1, keepdims=True)
            weights = torch_softmax(jnp.where(dead, 0, scores), -1)
            weights = jnp.where(dead, 0, weights)
        dropped = self.attn_dropout(weights, deterministic=deterministic)
        out = dropped @ v  # (N, H, L, D)
        out = jnp.transpose(out, (2, 0, 1, 3)).reshape(L, N, E)
        out = self.out_proj(out)
        if not need_weights:
            return out, None
        # torch returns the weights after dropout (identical in eval mode)
        return out, jnp.mean(dropped, axis=1) if average else dropped
