"""Slides "Skip connections: SEGAN": ``DownConv1dBlock``, ``UpConv1dBlock`` and the
generator that sums encoder outputs into its decoder. Layout is torch's: (N, C, L).

Fixes of the slides' OCR damage (the code is otherwise verbatim):

* the first deck reads ``ConvIdGenerator`` / ``DownConvIdBlock`` / ``UpConvIdBlock``
  ("1" read as "I") and ``enc_fmmaps`` / ``dec_fmmaps``; the second deck has the correct
  ``Conv1dGenerator`` / ``enc_fmaps`` / ``dec_fmaps``, used here;
* both decks lose underscores to spaces: ``enc fmap``, ``dec fmap``, ``dec fmaps``,
  ``enc layer``, ``dec layer``, ``skip h`` are ``enc_fmap``, ``dec_fmap``, ``dec_fmaps``,
  ``enc_layer``, ``dec_layer``, ``skip_h``;
* the first deck has ``y = h`` inside the decoder loop, the second after it; both return
  the last decoder output.

Behaviour kept as on the slides and mirrored by the Flax port: ``assert stride > 1``;
``kwidth = 1`` gives a left pad of −1, which ``F.pad`` turns into cropping the first
sample; ``enc_fmaps`` default is a list (``[64, 128, 256, 512]``), and a tuple is accepted
too (``list(enc_fmaps)``, since the slide's ``enc_fmaps[::-1][1:] + [1]`` needs a list).
"""

import torch.nn as nn
import torch.nn.functional as F


class DownConv1dBlock(nn.Module):
    """Pad (``kwidth // 2 − 1``, ``kwidth // 2``), strided Conv1d, ReLU.
    (1, 1, 4000) → (1, 1, 1000) for ``DownConv1dBlock(1, 1, 31, 4)``."""

    def __init__(self, ninp, fmap, kwidth, stride):
        super().__init__()
        assert stride > 1, stride
        self.kwidth = kwidth
        self.conv = nn.Conv1d(ninp, fmap, kwidth, stride=stride)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        # calculate padding with stride > 1
        pad_left = self.kwidth // 2 - 1
        pad_right = self.kwidth // 2
        xp = F.pad(x, (pad_left, pad_right))
        y = self.act(self.conv(xp))
        return y


class UpConv1dBlock(nn.Module):
    """Strided ConvTranspose1d with ``padding = max(0, (stride − kwidth) // −2)``, last
    sample dropped for odd ``kwidth``, ReLU if ``act``.
    (1, 1, 1000) → (1, 1, 4000) for ``UpConv1dBlock(1, 1, 31, 4)``."""

    def __init__(self, ninp, fmap, kwidth, stride, act=True):
        super().__init__()
        assert stride > 1, stride
        self.kwidth = kwidth
        pad = max(0, (stride - kwidth) // -2)
        self.deconv = nn.ConvTranspose1d(ninp, fmap, kwidth,
                                         stride=stride,
                                         padding=pad)
        if act:
            self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        h = self.deconv(x)
        if self.kwidth % 2 != 0:
            # drop last item for shape compatibility with TensorFlow deconvs
            h = h[:, :, :-1]
        if hasattr(self, 'act'):
            y = self.act(h)
        else:
            y = h
        return y


class Conv1dGenerator(nn.Module):
    """The slide's ``Conv1dGenerator`` (first deck: "ConvIdGenerator").
    (1, 1, 8192) → (1, 1, 8192) with the defaults."""

    def __init__(self, enc_fmaps=[64, 128, 256, 512], kwidth=31,
                 pooling=4):
        super().__init__()
        enc_fmaps = list(enc_fmaps)
        self.enc = nn.ModuleList()
        ninp = 1
        for enc_fmap in enc_fmaps:
            self.enc.append(DownConv1dBlock(ninp, enc_fmap, kwidth, pooling))
            ninp = enc_fmap

        self.dec = nn.ModuleList()
        # revert encoder feature maps
        dec_fmaps = enc_fmaps[::-1][1:] + [1]
        act = True
        for di, dec_fmap in enumerate(dec_fmaps, start=1):
            if di >= len(dec_fmaps):
                # last decoder layer has no activation
                act = False
            self.dec.append(UpConv1dBlock(ninp, dec_fmap, kwidth, pooling, act=act))
            ninp = dec_fmap

    def forward(self, x):
        skips = []
        h = x
        for ei, enc_layer in enumerate(self.enc, start=1):
            h = enc_layer(h)
            if ei < len(self.enc):
                skips.append(h)
        # now decode

        for di, dec_layer in enumerate(self.dec, start=1):
            if di > 1:
                # sum skip connection
                skip_h = skips.pop(-1)
                h = h + skip_h
            h = dec_layer(h)
        y = h
        return y
