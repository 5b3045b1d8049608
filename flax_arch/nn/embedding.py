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

Out-of-range indices (negative, or ≥ ``num_embeddings``): eager calls raise IndexError,
as torch does. Under ``jax.jit`` the values are unknown, and such an index gives a NaN
output row and touches nothing else: it renormalises no row, counts towards no row's
frequency and sends no gradient to any row (JAX's own indexing would wrap −1 to the last
row). Every path maps it to the sentinel ``num_embeddings``, which gathers NaN
(``mode="fill"``) and scatters nowhere (``mode="drop"``).

Validation (errors name the argument): ``num_embeddings`` an int ≥ 1, ``embedding_dim`` an
int ≥ 0, ``padding_idx`` None or an int in [−num_embeddings, num_embeddings), ``max_norm``
None or a number > 0, ``norm_type`` a number, the flags bools; ``x`` int32 or int64 indices
(torch takes no other dtype). Stricter than torch, which takes these: ``num_embeddings=0``
(torch fails at the first non-empty lookup), bools as sizes, ``max_norm`` ≤ 0 or NaN (a
negative one flips the sign of every looked-up row), a NaN ``norm_type``, and a string
``norm_type`` while ``max_norm`` is None (torch only checks it when it renormalises).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ._utils import check_bool, check_float, check_int

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
        num_embeddings = check_int(num_embeddings, "num_embeddings", "Embedding", minimum=1)
        embedding_dim = check_int(embedding_dim, "embedding_dim", "Embedding", minimum=0)
        padding_idx = check_int(padding_idx, "padding_idx", "Embedding", optional=True)
        max_norm = check_float(max_norm, "max_norm", "Embedding", optional=True)
        norm_type = check_float(norm_type, "norm_type", "Embedding")
        scale_grad_by_freq = check_bool(scale_grad_by_freq, "scale_grad_by_freq", "Embedding")
        if check_bool(sparse, "sparse", "Embedding"):
            raise ValueError("Embedding: sparse=True has no JAX counterpart (gradients are "
                             "dense arrays); use sparse=False")
        if max_norm is not None and max_norm <= 0:
            raise ValueError(f"Embedding: max_norm must be positive, got {max_norm}")
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
        """``x``: int32 / int64 indices (*) in [0, num_embeddings) → (*, embedding_dim).

        Out of range: an IndexError when ``x`` is concrete; a NaN row when traced by
        ``jax.jit`` (no renormalisation, count or gradient for any row; module docstring).
        """
        dtype = getattr(x, "dtype", None)
        if dtype is None or jnp.dtype(dtype) not in (jnp.int32, jnp.int64):
            got = type(x).__name__ if dtype is None else dtype
            raise TypeError(f"Embedding: x must hold integer indices, got {got} (torch takes "
                            f"int32 or int64)")
        if not isinstance(x, jax.core.Tracer) and x.size:
            xn = np.asarray(x)
            lo, hi = int(xn.min()), int(xn.max())
            if lo < 0 or hi >= self.num_embeddings:
                raise IndexError(f"Embedding: indices in x must lie in [0, "
                                 f"{self.num_embeddings}), got values in [{lo}, {hi}]")
        # out of range (only possible under jit) → the sentinel num_embeddings: NaN when
        # gathered, dropped when scattered (a negative index would wrap in both)
        n = self.num_embeddings
        idx = jnp.where((x >= 0) & (x < n), x, n)
        w = self.embedding.get_value()
        if self.max_norm is not None:
            w = self._renorm(w, idx)
        out = jnp.take(w, idx, axis=0, mode="fill", fill_value=jnp.nan)
        if self.scale_grad_by_freq:
            counts = jnp.zeros(n, out.dtype).at[idx.reshape(-1)].add(1, mode="drop")
            inv = (1.0 / jnp.take(counts, idx, mode="fill", fill_value=1))[..., None]
            out = out + (out - jax.lax.stop_gradient(out)) * (inv - 1)
        if self.padding_idx is not None:
            out = jnp.where((x == self.padding_idx)[..., None], jax.lax.stop_gradient(out), out)
        return out

    def _renorm(self, w, idx):
        """Torch's ``embedding_renorm_``: rescale referenced rows with norm > max_norm, in
        place. ``idx``: the indices, out-of-range ones already mapped to num_embeddings."""
        used = jnp.zeros(self.num_embeddings, bool).at[idx.reshape(-1)].set(True, mode="drop")
        sw = jax.lax.stop_gradient(w)
        p = self.norm_type
        norms = jnp.linalg.norm(sw, ord=p, axis=1)  # torch's vector p-norm, p = inf included
        scale = jnp.where(used & (norms > self.max_norm), self.max_norm / (norms + 1e-7), 1.0)
        renormed = sw * scale[:, None].astype(sw.dtype)
        self.embedding.set_value(renormed)
        # value: the renormalised rows; gradient: identity onto the weight (torch's no_grad renorm)
        return w + jax.lax.stop_gradient(renormed - w)
