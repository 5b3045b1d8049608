"""The lecture's PyTorch code, mirrored faithfully: same classes, same attribute names,
hence the same state_dict keys. One file per slide family. Where a slide is broken or
garbled (OCR damage, typos), the fix is stated in the class docstring.

Source: "Deep Architectures" (S. Pascual, J. Serrà), both versions of the deck.
"""

from .perceptrons import LinearRegression, LogisticRegression, MLP, SoftmaxClassifier
from .embeddings import EmbeddingLookup, OneHotLinear
from .convolutions import CausalConv1d, ConvMLP, PaddedConv1d, TransposedConv1d, ValidConv1d

__all__ = ["CausalConv1d", "ConvMLP", "EmbeddingLookup", "LinearRegression",
           "LogisticRegression", "MLP", "OneHotLinear", "PaddedConv1d", "SoftmaxClassifier",
           "TransposedConv1d", "ValidConv1d"]
