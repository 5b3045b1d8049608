"""Slides "When input is discrete..." (one-hot codes through a Linear) and "Embedding
Layer" (the same map as a lookup: select a row instead of multiplying by a one-hot)."""

from __future__ import annotations

from flax import nnx

from ..nn import Embedding, Linear
from ._checks import check_sizes

__all__ = ["OneHotLinear", "EmbeddingLookup"]


class OneHotLinear(Linear):
    """``emb_1``: ``__call__``: one-hot (N, vocab_size) → (N, hidden_size)."""

    def __init__(self, vocab_size: int = 10000, hidden_size: int = 100, *, rngs: nnx.Rngs):
        check_sizes("OneHotLinear", vocab_size=vocab_size, hidden_size=hidden_size)
        super().__init__(vocab_size, hidden_size, rngs=rngs)


class EmbeddingLookup(Embedding):
    """``emb_2``: ``__call__``: integer indices (*) → (*, hidden_size).

    >>> from flax import nnx; import jax.numpy as jnp
    >>> EmbeddingLookup(rngs=nnx.Rngs(0))(jnp.zeros((10, 1), jnp.int32)).shape
    (10, 1, 100)
    """

    def __init__(self, vocab_size: int = 10000, hidden_size: int = 100, *, rngs: nnx.Rngs,
                 **kwargs):
        check_sizes("EmbeddingLookup", vocab_size=vocab_size, hidden_size=hidden_size)
        super().__init__(vocab_size, hidden_size, rngs=rngs, **kwargs)
