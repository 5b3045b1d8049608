"""Slides "Deep Classifiers/Regressors": AlexNet (Krizhevsky et al., NIPS 2012, in the
single-GPU form of torchvision and of the slide).

The canonical slide (both decks) is mirrored verbatim by :class:`AlexNet`, with three
keyword-only additions whose defaults are the slide's:

* ``dropout=0.5``: the rate of both ``nn.Dropout()`` layers (the slide's default 0.5).
  Dropout masks cannot be shared between torch and JAX, so the train-mode parity cases
  set it to 0.0; the behaviour of the real rate is tested on the Flax side alone.
* ``channels=(64, 192, 384, 256, 256)``: the five convolutions' output widths;
* ``hidden=4096``: the two hidden fully connected widths.
  These two let CI run the exact architecture at small widths; the flatten size is
  ``channels[-1] * 6 * 6`` (the slide's ``256 * 6 * 6``).

Layout (N, 3, H, W) → (N, num_classes) logits. ``avgpool`` (adaptive, to 6×6) makes any
input from 63×63 up valid: the feature map is 1×1 at 63..94, 6×6 at 223..254 (224 on the
slide); other sizes give overlapping (or repeated) adaptive-pooling bins.

The second AlexNet on the slides cannot run, and is not mirrored
-----------------------------------------------------------------
Each deck follows the canonical slide with a second ``AlexNet`` class (MaxPool2d with
``padding=1`` after every convolution, the fully connected layers placed inside
``features``). Its ``forward`` is the canonical one, but:

* it uses ``self.avgpool`` and ``self.classifier``, which that ``__init__`` never defines
  (``AttributeError``);
* before getting there, ``features`` itself fails on a 1×3×224×224 input, because
  ``nn.Linear(256 * 6 * 6, 4096)`` does not match what reaches it:

  - deck 1 (convolution widths 64, 128, 256, 512, 512, a pool after each of the five, then
    ``nn.Flatten()``): with the ``padding=1`` pools the maps shrink 55 → 28 → 13 → 7 → 4 → 2,
    so 512·2·2 = 2048 features arrive, not 256·6·6 = 9216 (the 5×5 convolution there also
    has ``padding=1``, not 2);
  - deck 2 (widths 64, 192, 384, 256, 256, four pools, no flatten): the Linear is applied
    directly after a ReLU to the 4-D map (1, 256, 4, 4), i.e. to its last axis of size 4;
* it keeps only one of the two dropouts.

Any repair would have to choose widths, pooling and where to flatten that the slide does
not give, so this package mirrors the canonical version only.
"""

import torch.nn as nn


class AlexNet(nn.Module):
    """``forward(x)``: (N, 3, H, W), H, W ≥ 63 → (N, num_classes) logits.

    Keys: ``features.{0,3,6,8,10}.*`` (Conv2d), ``classifier.{1,4,6}.*`` (Linear).
    """

    def __init__(self, num_classes=1000, *, dropout=0.5, channels=(64, 192, 384, 256, 256),
                 hidden=4096):
        super(AlexNet, self).__init__()
        c1, c2, c3, c4, c5 = channels
        self.flat_features = c5 * 6 * 6  # the slide's 256 * 6 * 6
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(self.flat_features, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = x.view(x.size(0), self.flat_features)
        x = self.classifier(x)
        return x
