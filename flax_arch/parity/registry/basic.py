"""Cases for the basic slides: perceptrons, embeddings, 1-D convolutions, transposed conv."""

from __future__ import annotations

import numpy as np

import flax_arch as fa
from flax_arch.parity.harness import Case
from flax_arch.parity.registry import lazy_module

tr = lazy_module("torch_ref")

C = "channels"


def _normal(*shape):
    return lambda rng: (rng.standard_normal(shape),)


def _indices(num, *shape):
    return lambda rng: (rng.integers(0, num, size=shape),)


def _one_hot(vocab, n):
    def make(rng):
        x = np.zeros((n, vocab))
        x[np.arange(n), rng.integers(0, vocab, n)] = 1.0
        return (x,)
    return make


CASES = [
    Case("logistic_regression", lambda: tr.LogisticRegression(16),
         lambda r: fa.LogisticRegression(16, rngs=r), _normal(8, 16)),
    Case("linear_regression", lambda: tr.LinearRegression(16),
         lambda r: fa.LinearRegression(16, rngs=r), _normal(8, 16)),
    Case("softmax_classifier", lambda: tr.SoftmaxClassifier(16, 5),
         lambda r: fa.SoftmaxClassifier(16, 5, rngs=r), _normal(8, 16)),
    Case("mlp_small", lambda: tr.MLP(12, 32, 5), lambda r: fa.MLP(12, 32, 5, rngs=r),
         _normal(6, 12)),
    Case("mlp", lambda: tr.MLP(), lambda r: fa.MLP(rngs=r), _normal(10, 100), tags=("slow",)),
    Case("one_hot_linear_small", lambda: tr.OneHotLinear(50, 8),
         lambda r: fa.OneHotLinear(50, 8, rngs=r), _one_hot(50, 10)),
    Case("one_hot_linear", lambda: tr.OneHotLinear(), lambda r: fa.OneHotLinear(rngs=r),
         _one_hot(10000, 10), tags=("slow",)),
    Case("embedding_small", lambda: tr.EmbeddingLookup(50, 8),
         lambda r: fa.EmbeddingLookup(50, 8, rngs=r), _indices(50, 10, 3)),
    Case("embedding_padding_maxnorm", lambda: tr.EmbeddingLookup(20, 6, padding_idx=3, max_norm=1.0),
         lambda r: fa.EmbeddingLookup(20, 6, padding_idx=3, max_norm=1.0, rngs=r),
         _indices(20, 7, 5)),
    Case("embedding", lambda: tr.EmbeddingLookup(), lambda r: fa.EmbeddingLookup(rngs=r),
         _indices(10000, 10, 1), tags=("slow",)),
    Case("conv1d_valid_small", lambda: tr.ValidConv1d(2, 16, 3),
         lambda r: fa.ValidConv1d(2, 16, 3, rngs=r), _normal(2, 2, 9), [C], [C]),
    Case("conv1d_valid", lambda: tr.ValidConv1d(), lambda r: fa.ValidConv1d(rngs=r),
         _normal(1, 1, 8), [C], [C], tags=("slow",)),
    Case("conv1d_padded_small", lambda: tr.PaddedConv1d(2, 16, 5),
         lambda r: fa.PaddedConv1d(2, 16, 5, rngs=r), _normal(2, 2, 9), [C], [C]),
    Case("conv1d_padded", lambda: tr.PaddedConv1d(), lambda r: fa.PaddedConv1d(rngs=r),
         _normal(1, 1, 8), [C], [C], tags=("slow",)),
    Case("conv1d_causal_small", lambda: tr.CausalConv1d(2, 16, 4),
         lambda r: fa.CausalConv1d(2, 16, 4, rngs=r), _normal(2, 2, 9), [C], [C]),
    Case("conv1d_causal", lambda: tr.CausalConv1d(), lambda r: fa.CausalConv1d(rngs=r),
         _normal(1, 1, 8), [C], [C], tags=("slow",)),
    Case("conv_mlp_small", lambda: tr.ConvMLP(12, 32, 5), lambda r: fa.ConvMLP(12, 32, 5, rngs=r),
         _normal(2, 12, 7), [C], [C]),
    Case("conv_mlp", lambda: tr.ConvMLP(), lambda r: fa.ConvMLP(rngs=r),
         _normal(1, 100, 1), [C], [C], tags=("slow",)),
    Case("conv_transpose1d", lambda: tr.TransposedConv1d(), lambda r: fa.TransposedConv1d(rngs=r),
         _normal(1, 1, 2), [C], [C]),
    Case("conv_transpose1d_wide", lambda: tr.TransposedConv1d(3, 4, 5, 3),
         lambda r: fa.TransposedConv1d(3, 4, 5, 3, rngs=r), _normal(2, 3, 7), [C], [C]),
]
