"""Cases for attention and transformers: ``nn.MultiheadAttention`` (self- and cross-
attention with masks) and a small ``nn.Transformer`` (encoder + decoder, causal target
mask, key padding) against :mod:`flax_arch.nn.attention` / :mod:`flax_arch.nn.transformer`.

Layouts agree (torch's own: batch_first where stated, time-major otherwise). The
feed-forward activation is GELU, which has no kink, so no case depends on which side of
a ReLU kink float32 rounding lands.
"""

from __future__ import annotations

import numpy as np

from flax_arch.parity.harness import Case
from flax_arch.parity.registry import lazy_module

torch = lazy_module("torch")
jnp = lazy_module("jax.numpy")
fattn = lazy_module("flax_arch.nn.attention")
ftrans = lazy_module("flax_arch.nn.transformer")

_PAD = np.array([[False, False, False, False, True, True],  # batch 0: 2 padded positions
                 [False, False, False, False, False, False]])
_CAUSAL5 = np.triu(np.ones((5, 5), bool), 1)


def _torch_mask(m, like):
    return torch.as_tensor(m) if m.dtype == bool else torch.as_tensor(m).to(like.dtype)


def _flax_mask(m, like):
    return jnp.asarray(m) if m.dtype == bool else jnp.asarray(m).astype(like.dtype)


def _mha_torch_call(m, q, kv):
    out, w = m(q, kv, kv, key_padding_mask=_torch_mask(_PAD, q), average_attn_weights=False)
    return out, w


def _mha_flax_call(m, q, kv):
    out, w = m(q, kv, kv, key_padding_mask=_flax_mask(_PAD, q), average_attn_weights=False)
    return out, w


def _transformer_torch_call(m, src, tgt):
    return m(src, tgt, tgt_mask=_torch_mask(_CAUSAL5, src),
             src_key_padding_mask=_torch_mask(_PAD, src),
             memory_key_padding_mask=_torch_mask(_PAD, src))


def _transformer_flax_call(m, src, tgt):
    return m(src, tgt, tgt_mask=_flax_mask(_CAUSAL5, src),
             src_key_padding_mask=_flax_mask(_PAD, src),
             memory_key_padding_mask=_flax_mask(_PAD, src))


def _normal(*shapes):
    return lambda rng: tuple(rng.standard_normal(s) for s in shapes)


_TRANSFORMER = dict(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1,
                    dim_feedforward=16, dropout=0.0, activation="gelu", batch_first=True)

CASES = [
    Case("mha_cross_attention_padding",
         lambda: torch.nn.MultiheadAttention(8, 2, batch_first=True, kdim=5, vdim=5),
         lambda r: fattn.MultiheadAttention(8, 2, batch_first=True, kdim=5, vdim=5, rngs=r),
         lambda rng: (rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 6, 5))),
         torch_call=_mha_torch_call, flax_call=_mha_flax_call, well_posed=True),
    Case("transformer_small",
         lambda: torch.nn.Transformer(**_TRANSFORMER),
         lambda r: ftrans.Transformer(**_TRANSFORMER, rngs=r),
         _normal((2, 6, 8), (2, 5, 8)),
         torch_call=_transformer_torch_call, flax_call=_transformer_flax_call, well_posed=True),
]
