"""Slides "Skip connections: SEGAN" — the SEGAN generator's strided 1-D encoder/decoder
blocks and the generator that sums encoder feature maps into the decoder (Pascual,
Bonafonte, Serrà, "SEGAN: Speech Enhancement Generative Adversarial Network", 2017).

Channels-last: the slides' (N, C, L) is (N, L, C) here. The torch twins are in
``torch_ref/segan.py`` (same attribute names, hence the same state_dict keys:
``enc.0.conv.weight``, ``dec.3.deconv.bias``, …).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
from flax import nnx
from jax import lax

from ..nn import Conv1d, ConvTranspose1d
from ..nn._utils import check_input
from ._checks import check_sizes

__all__ = ["Conv1dGenerator", "DownConv1dBlock", "UpConv1dBlock"]


def _check_block_args(layer: str, ninp, fmap, kwidth, stride) -> None:
    for name, v in (("ninp", ninp), ("fmap", fmap), ("kwidth", kwidth), ("stride", stride)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"{layer}: {name} must be an int, got {v!r}")
    # the slides' `assert stride > 1, stride`, as an error that survives `python -O`
    if stride <= 1:
        raise ValueError(f"{layer}: stride must be > 1 (the slide asserts `stride > 1`: the "
                         f"block's padding is designed for strided, resampling convolutions), "
                         f"got stride={stride}")
    if kwidth < 1:
        raise ValueError(f"{layer}: kwidth must be >= 1, got kwidth={kwidth}")
    if ninp < 1 or fmap < 1:
        raise ValueError(f"{layer}: ninp and fmap must be >= 1, got ninp={ninp}, fmap={fmap}")


class DownConv1dBlock(nnx.Module):
    """SEGAN encoder block (slide "Skip connections: SEGAN", ``DownConv1dBlock``): pad the
    time axis asymmetrically, strided ``Conv1d``, ReLU.

    Padding: ``kwidth // 2 − 1`` samples on the left, ``kwidth // 2`` on the right, as the
    slide's ``F.pad(x, (pad_left, pad_right))``. For ``kwidth = 1`` the left pad is −1, and
    torch's ``F.pad`` with a negative pad *crops*: the first sample is dropped. That is
    reproduced exactly here (``lax.pad`` with negative low padding) rather than rejected,
    so every torch configuration has a numerically identical port.

    Output length: L_out = ⌊(L − 2) / stride⌋ + 1 for odd ``kwidth``, ⌈L / stride⌉ for even
    ``kwidth``; the slide's (1, 4000, 1) → (1, 1000, 1) with ``(1, 1, 31, 4)``.

    Variables: ``conv`` (:class:`~flax_arch.nn.Conv1d`; torch ``conv.weight``,
    ``conv.bias``).

    >>> from flax import nnx; import jax.numpy as jnp
    >>> DownConv1dBlock(1, 1, 31, 4, rngs=nnx.Rngs(0))(jnp.ones((1, 4000, 1))).shape
    (1, 1000, 1)
    """

    def __init__(self, ninp: int, fmap: int, kwidth: int, stride: int, *, rngs: nnx.Rngs):
        _check_block_args("DownConv1dBlock", ninp, fmap, kwidth, stride)
        self.ninp, self.fmap, self.kwidth, self.stride = ninp, fmap, kwidth, stride
        self.conv = Conv1d(ninp, fmap, kwidth, stride=stride, rngs=rngs)

    def __call__(self, x):
        """x (N, L, ninp) or unbatched (L, ninp), channels-last → (N, L_out, fmap)."""
        check_input(x, name="x", layer="DownConv1dBlock", ranks=(2, 3),
                    floating=True, layout="(N, L, ninp)", channels=self.ninp)
        pad_left = self.kwidth // 2 - 1  # −1 for kwidth = 1: crops, as torch's F.pad
        pad_right = self.kwidth // 2
        length = x.shape[-2]
        if length + pad_left + pad_right < self.kwidth:
            raise ValueError(
                f"DownConv1dBlock: x is too short: L={length} padded by ({pad_left}, "
                f"{pad_right}) is shorter than kwidth={self.kwidth}; need "
                f"L >= {self.kwidth - pad_left - pad_right}")
        # pad (or, when negative, crop) the time axis only: (N, L, C) → (N, L + pads, C)
        config = [(0, 0, 0)] * x.ndim
        config[-2] = (pad_left, pad_right, 0)
        xp = lax.pad(x, jax.numpy.zeros((), x.dtype), config)
        return jax.nn.relu(self.conv(xp))


class UpConv1dBlock(nnx.Module):
    """SEGAN decoder block (slide "Skip connections: SEGAN", ``UpConv1dBlock``): strided
    ``ConvTranspose1d`` with ``padding = max(0, (stride − kwidth) // −2)``, the last output
    sample dropped when ``kwidth`` is odd ("shape compatibility with TensorFlow deconvs"),
    then ReLU unless ``act=False``.

    The padding is the slide's Python expression evaluated with Python ints, so its floor
    division of a negative numerator is Python's (−27 // −2 = 13 for kwidth 31, stride 4),
    i.e. ``max(0, ⌊(kwidth − stride) / 2⌋)``.

    Output length: L_out = (L − 1)·stride − 2·padding + kwidth − (kwidth mod 2); the
    slide's (1, 1000, 1) → (1, 4000, 1) with ``(1, 1, 31, 4)``. For even ``stride`` and
    ``kwidth ≥ stride`` this is exactly L·stride.

    Variables: ``deconv`` (:class:`~flax_arch.nn.ConvTranspose1d`, torch ``deconv.weight`` /
    ``deconv.bias``).

    >>> from flax import nnx; import jax.numpy as jnp
    >>> UpConv1dBlock(1, 1, 31, 4, rngs=nnx.Rngs(0))(jnp.ones((1, 1000, 1))).shape
    (1, 4000, 1)
    """

    def __init__(self, ninp: int, fmap: int, kwidth: int, stride: int, act: bool = True, *,
                 rngs: nnx.Rngs):
        _check_block_args("UpConv1dBlock", ninp, fmap, kwidth, stride)
        self.ninp, self.fmap, self.kwidth, self.stride = ninp, fmap, kwidth, stride
        pad = max(0, (stride - kwidth) // -2)  # Python floor division, as on the slide
        self.padding = pad
        self.deconv = ConvTranspose1d(ninp, fmap, kwidth, stride=stride, padding=pad,
                                      rngs=rngs)
        # the slide registers `self.act` only when act=True; `None` plays the absent attribute
        self.act = jax.nn.relu if act else None

    def __call__(self, x):
        """x (N, L, ninp), channels-last → (N, L_out, fmap). Batched only, as the slide's
        block: its crop ``h[:, :, :-1]`` needs three axes, so torch refuses (C, L)."""
        check_input(x, name="x", layer="UpConv1dBlock", ranks=(3,),
                    floating=True, layout="(N, L, ninp)", channels=self.ninp)
        h = self.deconv(x)
        if self.kwidth % 2 != 0:
            h = h[..., :-1, :]  # drop the last time step: (N, L', C) → (N, L' − 1, C)
        return self.act(h) if self.act is not None else h


class Conv1dGenerator(nnx.Module):
    """SEGAN-style generator (slide "Skip connections: SEGAN", ``Conv1dGenerator``).

    Encoder: one :class:`DownConv1dBlock` per entry of ``enc_fmaps`` (1 input channel,
    stride ``pooling``). Decoder: :class:`UpConv1dBlock` layers with the encoder's feature
    maps reversed, ending in 1 channel with no activation. Before every decoder layer but
    the first, the matching encoder output is *added* (skip connection by summation); the
    last encoder output is not a skip (it is the decoder's input).

    ``__call__``: x (N, L, 1) channels-last → (N, L', 1); with the defaults, L a multiple of
    ``pooling ** len(enc_fmaps)`` and an even ``pooling ≤ kwidth``, L' = L (the slide:
    (1, 8192, 1) → (1, 8192, 1)). Where an upsampled map's shape differs from its skip's,
    a ValueError is raised (torch raises too, except where its broadcasting would silently
    stretch a length-1 map — that case is rejected here as well).

    Variables: ``enc`` and ``dec`` are ``nnx.List`` s of blocks, so the keys are torch's
    ``nn.ModuleList`` keys: ``enc.0.conv.weight`` … ``dec.3.deconv.bias``.

    >>> from flax import nnx; import jax, jax.numpy as jnp
    >>> G = Conv1dGenerator(rngs=nnx.Rngs(0))
    >>> jax.eval_shape(G, jax.ShapeDtypeStruct((1, 8192, 1), jnp.float32)).shape
    (1, 8192, 1)
    """

    def __init__(self, enc_fmaps: Sequence[int] = (64, 128, 256, 512), kwidth: int = 31,
                 pooling: int = 4, *, rngs: nnx.Rngs):
        enc_fmaps = list(enc_fmaps)
        if not enc_fmaps:
            raise ValueError("Conv1dGenerator: enc_fmaps must name at least one feature map")
        check_sizes("Conv1dGenerator", kwidth=kwidth,
                    **{f"enc_fmaps[{i}]": f for i, f in enumerate(enc_fmaps)})
        # the blocks' stride: > 1, as the slide asserts (see _check_block_args)
        check_sizes("Conv1dGenerator", minimum=2, pooling=pooling)
        self.enc_fmaps, self.kwidth, self.pooling = tuple(enc_fmaps), kwidth, pooling
        enc, ninp = [], 1
        for enc_fmap in enc_fmaps:
            enc.append(DownConv1dBlock(ninp, enc_fmap, kwidth, pooling, rngs=rngs))
            ninp = enc_fmap
        self.enc = nnx.List(enc)
        # revert encoder feature maps; the last decoder layer maps back to 1 channel
        dec_fmaps = enc_fmaps[::-1][1:] + [1]
        dec = []
        for di, dec_fmap in enumerate(dec_fmaps, start=1):
            act = di < len(dec_fmaps)  # last decoder layer has no activation
            dec.append(UpConv1dBlock(ninp, dec_fmap, kwidth, pooling, act=act, rngs=rngs))
            ninp = dec_fmap
        self.dec = nnx.List(dec)

    def __call__(self, x):
        """x (N, L, 1), channels-last → (N, L', 1). Batched only: the slide's generator
        indexes the batch axis, so torch refuses an unbatched signal, and so does this."""
        check_input(x, name="x", layer="Conv1dGenerator", ranks=(3,), layout="(N, L, 1)",
                    floating=True, channels=1)
        skips = []
        h = x
        for ei, enc_layer in enumerate(self.enc, start=1):
            h = enc_layer(h)
            if ei < len(self.enc):
                skips.append(h)
        for di, dec_layer in enumerate(self.dec, start=1):
            if di > 1:
                skip_h = skips.pop(-1)
                if skip_h.shape != h.shape:
                    raise ValueError(
                        f"Conv1dGenerator: decoder layer {di - 1} outputs shape "
                        f"{tuple(h.shape)} but the skip connection from encoder layer "
                        f"{len(skips) + 1} has shape {tuple(skip_h.shape)}; choose the input "
                        f"length L of x (N, L, 1) so that the lengths match, e.g. a multiple "
                        f"of pooling ** len(enc_fmaps) = {self.pooling ** len(self.enc)} "
                        f"(got L={x.shape[-2]}, pooling={self.pooling}, kwidth={self.kwidth})")
                h = h + skip_h  # sum skip connection
            h = dec_layer(h)
        return h
