"""``Embedding`` with torch's ``padding_idx``, ``max_norm`` and ``scale_grad_by_freq``.

``nnx.Embed`` is a plain lookup; torch's layer adds behaviour that lives in the
gradient or in the weight itself, each reproduced here without a custom VJP:

* ``padding_idx``: that row starts at zero and receives no gradient — the looked-up
  rows for those positions are passed through ``stop_gradient``;
* ``max_norm``: before the lookup, torch renormalises *in place* every referenced row
  whose ``norm_type``-norm exceeds ``max_norm`` (scale ``max_norm / (norm + 1e-7)``), under
  ``no_grad``. Here the weight variable is updated the same way, and the output uses the
  renormalised rows while the gradient flows to the weight as an identity;
* ``scale_grad_by_freq``: the gradient of each row is divided by how often its index
  occurs in the batch — the output is written ``a + (a − sg(a)) · (1/count − 1)``, equal
  to ``a`` in value with the scaled gradient.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = ["Embedding"]


class Embedding(nnx.Module):
    """Torch ``nn.Embedding(num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
    norm_type=2.0, scale_grad_by_freq=False, sparse=False)``.

    ``__call__(x)``: integer indices of any shape (*) → (*, embedding_dim).

    Variables: ``embedding`` (num_embeddings, embedding_dim) ↔ torch ``weight``, drawn from
    N(0, 1) as torch does (``padding_idx`` row zero).

    >>> from flax import nnx; import jax.numpy as jnp
    >>> emb = Embedding(10000, 100, rngs=nnx.Rngs(0))
    >>> emb(jnp.zeros((10, 1), jnp.int32)).shape
    (10, 1, 100)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False, *,
                 rngs: nnx.Rngs, param_dtype=jnp.float32):
        if sparse:
            raise ValueError("Embedding: sparse=True has no JAX counterpart (gradients are "
                             "dense arrays); use sparse=False")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be within num_embeddings "
                                 f"({num_embeddings}), got {padding_idx}")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx, self.max_norm, self.norm_type = padding_idx, max_norm, norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        w = jax.random.normal(rngs.params(), (num_embeddings, embedding_dim), param_dtype)
        if padding_idx is not None:
            w = w.at[padding_idx].set(0)
        self.embedding = nnx.Param(w, torch_name="weight")

    def __call__(self, x):
        """``x``: integer indices (*) in [0, num_embeddings) → (*, embedding_dim)."""
        if not hasattr(x, "dtype") or not jnp.issubdtype(x.dtype, jnp.integer):
            raise TypeError(f"Embedding: x must hold integer indices, got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")
        if not isinstance(x, jax.core.Tracer) and x.size:
            xn = np.asarray(x)
            lo, hi = int(xn.min()), int(xn.max())
            if lo < 0 or hi >= self.num_embeddings:
                raise IndexError(f"Embedding: indices in x must lie in [0, "
                                 f"{self.num_embeddings}), got values in [{lo}, {hi}]")
        w = self.embedding.get_value()
        if self.max_norm is not None:
            w = self._renorm(w, x)
        # out-of-range indices under jit give NaN rows rather than being silently clamped
        out = jnp.take(w, x, axis=0, mode="fill", fill_value=jnp.nan)
        if self.scale_grad_by_freq:
            counts = jnp.zeros(self.num_embeddings, out.dtype).at[x.reshape(-1)].add(1)
            inv = (1.0 / counts[x])[..., None]
            out = out + (out - jax.lax.stop_gradient(out)) * (inv - 1)
        if self.padding_idx is not None:
            out = jnp.where((x == self.padding_idx)[..., None], jax.lax.stop_gradient(out), out)
        return out

    def _renorm(self, w, x):
        """Torch's ``embedding_renorm_``: rescale referenced rows with norm > max_norm, in place."""
        used = jnp.zeros(self.num_embeddings, bool).at[x.reshape(-1)].set(True)
        sw = jax.lax.stop_gradient(w)
        p = self.norm_type
        norms = jnp.linalg.norm(sw, ord=p, axis=1)  # torch's vector p-norm, p = inf included
        scale = jnp.where(used & (norms > self.max_norm), self.max_norm / (norms + 1e-7), 1.0)
        renormed = sw * scale[:, None].astype(sw.dtype)
        self.embedding.set_value(renormed)
        # value: the renormalised rows; gradient: identity onto the weight (torch's no_grad renorm)
        return w + jax.lax.stop_gradient(renormed - w)
