"""Slide "Deep Classifiers/Regressors": AlexNet (Krizhevsky, Sutskever & Hinton, "ImageNet
Classification with Deep Convolutional Neural Networks", NIPS 2012), the canonical
single-tower version of the slide (= torchvision's), channels-last.

The slides' second ``AlexNet`` cannot run (see :mod:`torch_ref.alexnet`); this is the
first one. Keyword-only additions, defaults = the slide: ``dropout`` (rate of both
dropouts), ``channels`` (the five convolution widths) and ``hidden`` (the fully connected
widths), the latter two for small-width tests.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from ..nn import AdaptiveAvgPool2d, Conv2d, Dropout, Linear, MaxPool2d, Sequential
from ..nn._utils import check_float, check_input
from ._checks import check_sizes

__all__ = ["AlexNet"]

MIN_SIZE = 63  # smallest H, W whose last max-pool still has a window (feature map 1×1)


class AlexNet(nnx.Module):
    """AlexNet: ``features`` (5 convolutions with ReLU, 3 max-pools), ``avgpool``
    (adaptive average pooling to 6×6), flatten, ``classifier`` (Dropout, Linear, ReLU,
    Dropout, Linear, ReLU, Linear).

    ``__call__(x)``: x (N, H, W, 3) channels-last, H, W ≥ 63 → (N, num_classes) logits.
    224×224 gives a 6×6 feature map; other sizes are pooled to 6×6 with torch's adaptive
    bins (overlapping, or repeated when the map is smaller than 6×6).

    The flatten is in torch's (C, H, W) order (the map is transposed to channels-first
    first), so ``classifier.1`` holds exactly torch's weight and ported weights work at
    every input size.

    Mode: Dropout is active in train mode only (the default, as in torch's fresh modules;
    ``model.eval()`` disables it). Its masks come from the ``'dropout'`` stream of ``rngs``
    (``'default'`` if absent), forked at construction.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> model = AlexNet(rngs=nnx.Rngs(0))
    >>> model.eval()
    >>> model(jnp.ones((1, 224, 224, 3))).shape
    (1, 1000)
    """

    def __init__(self, num_classes: int = 1000, *, dropout: float = 0.5,
                 channels: Sequence[int] = (64, 192, 384, 256, 256), hidden: int = 4096,
                 rngs: nnx.Rngs):
        channels = tuple(channels)
        if len(channels) != 5:
            raise ValueError(f"AlexNet: channels must be 5 convolution widths, got {channels}")
        check_sizes("AlexNet", num_classes=num_classes, hidden=hidden,
                    **{f"channels[{i}]": c for i, c in enumerate(channels)})
        check_float(dropout, "dropout", "AlexNet", minimum=0.0, maximum=1.0)
        c1, c2, c3, c4, c5 = channels
        relu = jax.nn.relu
        self.flat_features = c5 * 6 * 6  # the slide's 256 * 6 * 6
        self.features = Sequential(
            Conv2d(3, c1, kernel_size=11, stride=4, padding=2, rngs=rngs), relu,
            MaxPool2d(kernel_size=3, stride=2),
            Conv2d(c1, c2, kernel_size=5, padding=2, rngs=rngs), relu,
            MaxPool2d(kernel_size=3, stride=2),
            Conv2d(c2, c3, kernel_size=3, padding=1, rngs=rngs), relu,
            Conv2d(c3, c4, kernel_size=3, padding=1, rngs=rngs), relu,
            Conv2d(c4, c5, kernel_size=3, padding=1, rngs=rngs), relu,
            MaxPool2d(kernel_size=3, stride=2))
        self.avgpool = AdaptiveAvgPool2d((6, 6))
        self.classifier = Sequential(
            Dropout(dropout, rngs=rngs),
            Linear(self.flat_features, hidden, rngs=rngs), relu,
            Dropout(dropout, rngs=rngs),
            Linear(hidden, hidden, rngs=rngs), relu,
            Linear(hidden, num_classes, rngs=rngs))

    def __call__(self, x):
        """x (N, H, W, 3), H, W ≥ 63 → (N, num_classes)."""
        check_input(x, name="x", layer="AlexNet", ranks=(4,), layout="(N, H, W, 3)",
                    floating=True, channels=3)
        if min(x.shape[1:3]) < MIN_SIZE:
            raise ValueError(f"AlexNet: x must be (N, H, W, 3) with H, W ≥ {MIN_SIZE}, got "
                             f"shape {tuple(x.shape)}")
        x = self.features(x)  # (N, h, w, C5)
        x = self.avgpool(x)  # (N, 6, 6, C5)
        # torch flattens (C, H, W): go channels-first so the Linear sees torch's order
        x = jnp.transpose(x, (0, 3, 1, 2))  # (N, C5, 6, 6)
        x = x.reshape(x.shape[0], self.flat_features)  # (N, C5·36)
        return self.classifier(x)
