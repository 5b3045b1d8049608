"""The lecture's architectures as Flax NNX modules, one file per slide family."""

from .convolutions import CausalConv1d, ConvMLP, PaddedConv1d, TransposedConv1d, ValidConv1d
from .embeddings import EmbeddingLookup, OneHotLinear
from .perceptrons import MLP, LinearRegression, LogisticRegression, SoftmaxClassifier

__all__ = ["CausalConv1d", "ConvMLP", "EmbeddingLookup", "LinearRegression",
           "LogisticRegression", "MLP", "OneHotLinear", "PaddedConv1d", "SoftmaxClassifier",
           "TransposedConv1d", "ValidConv1d"]
