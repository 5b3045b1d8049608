"""``torch.nn.functional`` as JAX functions: the table :func:`flax_arch.from_torch` uses to
execute a traced graph's ``call_function`` nodes whose target is a functional op.

``FUNCTIONAL`` maps a qualified name to a callable. Keys are ``"torch.nn.functional.<name>"``
and, where torch.fx records another name for the same object (``F.gelu`` *is*
``torch._C._nn.gelu``, ``F.conv2d`` *is* ``torch.conv2d``, ``F.threshold`` is recorded as
``torch.nn.functional._threshold``), that name too, mapped to the same callable. Each
callable takes exactly torch's arguments (names, order, defaults; ``inplace`` and
``_stacklevel`` accepted and without effect: JAX arrays are immutable, the interpreter
deals with aliasing) and returns what torch returns. Tensors arrive as ``jax.Array`` in
**torch's layout** (channels first) and leave in it; torch dtypes arrive as numpy dtypes.
Values *and* reverse-mode gradients are torch's (tested against torch in
``parity_tests/test_translate_functional.py``: float64 to 1e-12, float32 to 1e-5).

Where torch's functional conventions meet the channels-last twins (:mod:`flax_arch.nn`):

* **Parameter-free layers are the twins, built on the fly.** Pools, adaptive pools, LP
  pools, unpooling, non-constant padding, activations, the softmax family, the losses and
  LocalResponseNorm are ``nn.<Layer>(args)(x)``: the twins already carry torch's
  derivative conventions (ReLU'(0) = 0, Hardtanh at its bounds, the first maximum of a
  max-pool tie, softmax's backward formula, ...). A torch tensor (N, C, *S) / (C, *S) is
  moved to the twin's (N, *S, C) / (*S, C) with ``jnp.moveaxis`` and back
  (:func:`_apply_channels_last`); a loss's class axis 1 likewise (:func:`_class_last`).
* **Weights passed as arguments** (conv, conv_transpose, linear, bilinear, prelu,
  embedding) are small functions here in torch's layouts (``lax.conv_general_dilated``
  with NCHW/OIHW dimension numbers); the twins hold their weights as variables. The
  normalisations (layer/group/instance/RMS norm) run the twin without affine parameters
  and apply ``weight`` / ``bias`` here.
* **Ops with no twin** (interpolate, scaled_dot_product_attention, normalize,
  cosine_similarity, pairwise_distance, triplet_margin_loss, one_hot, pixel_(un)shuffle,
  unfold/fold, hardsigmoid, the weighted forms of mse/l1/huber loss) follow torch's
  kernels; each documents where it had to pin torch's exact arithmetic (interpolate's
  source indices, the norms' backward at zero).

Not here: ``dropout*`` and ``batch_norm`` (RNG and running-statistics state: the
interpreter handles them). Argument values without a translation raise
:class:`~flax_arch.translate.errors.UnsupportedError` naming the argument and value
(``interpolate(antialias=True)``, ``embedding(max_norm=...)``, ``one_hot(num_classes=-1)``,
``scaled_dot_product_attention(dropout_p=...)``, ``rrelu(training=True)``, ...); values
torch itself refuses raise ``ValueError`` / ``TypeError`` as the twins do.

Importing this module never imports torch.
"""

from __future__ import annotations

import functools
import math
import warnings
from fractions import Fraction
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import nn
from ..nn._utils import ntuple
from ..nn.conv import _conv_padding
from ..nn.ctc import ctc_loss as _ctc_loss
from ..nn.loss import _abs, _clamp_min, _legacy_reduction
from ..ops.elementwise import torch_softmax, with_slope
from .errors import UnsupportedError

__all__ = ["FUNCTIONAL"]

#: qualified name → JAX callable with torch's signature (module docstring)
FUNCTIONAL: dict[str, Callable] = {}

_F = "torch.nn.functional."


def _register(name: str, *aliases: str):
    """Register ``fn`` as ``torch.nn.functional.<name>`` and under each alias (the name
    torch.fx records for the same torch object, where it differs)."""
    def deco(fn):
        for key in (_F + name, *aliases):
            if key in FUNCTIONAL:
                raise RuntimeError(f"{key} registered twice")
            FUNCTIONAL[key] = fn
        return fn
    return deco


def _unsupported(op: str, arg: str, value, why: str):
    """The error for an argument value without a translation, naming both."""
    shown = (f"<array of shape {tuple(value.shape)}>" if hasattr(value, "shape")
             else repr(value))
    return UnsupportedError(f"{op}({arg}={shown}) is not supported: {why}")


# ------------------------------------------------------------------------------- layout

def _check_rank(x, n: int, op: str) -> None:
    """torch's (N, C, *S) or unbatched (C, *S) with ``n`` spatial axes."""
    if getattr(x, "ndim", None) not in (n + 1, n + 2):
        raise ValueError(f"{op}: input must be (N, C, *S) or unbatched (C, *S) with {n} "
                         f"spatial axes (torch's layout), got shape "
                         f"{tuple(getattr(x, 'shape', ()))}")


def _to_last(x, n: int):
    """torch (N, C, *S) / (C, *S) → the twins' (N, *S, C) / (*S, C)."""
    return jnp.moveaxis(x, x.ndim - n - 1, -1)


def _to_first(y, n: int):
    """The twins' channels-last (N, *S, C) / (*S, C) → torch's (N, C, *S) / (C, *S)."""
    return jnp.moveaxis(y, -1, y.ndim - n - 1)


def _apply_channels_last(layer, x, n: int, op: str, *extra):
    """Run a channels-last twin on torch-layout ``x`` (and extra torch-layout arrays of
    the same layout, e.g. unpooling indices); outputs come back in torch's layout."""
    _check_rank(x, n, op)
    out = layer(_to_last(x, n), *(_to_last(e, n) for e in extra))
    if isinstance(out, tuple):
        return tuple(_to_first(o, n) for o in out)
    return _to_first(out, n)


def _channel_view(v, ndim: int):
    """A per-channel (C,) vector shaped to broadcast against torch's (N, C, *S)."""
    return v.reshape(v.shape + (1,) * (ndim - 2))


def _stride(stride):
    """torch's pooling ``stride``: None, or an empty list (the C++ default), is the kernel."""
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        return None
    return stride


def _named(fn, name: str):
    fn.__name__ = fn.__qualname__ = name
    return fn


# ------------------------------------------------------------------------------ linear

@_register("linear", "torch._C._nn.linear")
def linear(input, weight, bias=None):
    """``input @ weight.T + bias``; weight (out, in) or (in,), torch's layout."""
    y = jnp.matmul(input, weight.T)
    return y if bias is None else y + bias


@_register("bilinear", "torch.bilinear")
def bilinear(input1, input2, weight, bias=None):
    """``y[..., o] = Σ_ij input1[..., i] · weight[o, i, j] · input2[..., j] + bias[o]``
    (``nn.Bilinear``'s sum; its twin holds the weight as a variable)."""
    y = jnp.einsum("...i,oij,...j->...o", input1, weight, input2)
    return y if bias is None else y + bias


# -------------------------------------------------------------------------------- conv

#: lax dimension numbers in torch's layouts, per number of spatial axes
_CONV_DN = {1: ("NCH", "OIH", "NCH"), 2: ("NCHW", "OIHW", "NCHW"),
            3: ("NCDHW", "OIDHW", "NCDHW")}


def _conv(n, input, weight, bias, stride, padding, dilation, groups):
    op = f"conv{n}d"
    _check_rank(input, n, op)
    stride = ntuple(stride, n, "stride", minimum=1, layer=op)
    dilation = ntuple(dilation, n, "dilation", minimum=1, layer=op)
    # torch's int / tuple / 'same' (left = total // 2, extra on the right) / 'valid'
    pads = _conv_padding(padding, weight.shape[2:], stride, dilation, n, op)
    unbatched = input.ndim == n + 1
    x = input[None] if unbatched else input
    y = lax.conv_general_dilated(x, weight, stride, pads, rhs_dilation=dilation,
                                 feature_group_count=groups, dimension_numbers=_CONV_DN[n])
    if bias is not None:
        y = y + _channel_view(bias, y.ndim)
    return y[0] if unbatched else y


def _conv_transpose(n, input, weight, bias, stride, padding, output_padding, groups,
                    dilation):
    """torch's transposed convolution: the correlation of the stride-dilated input with
    the flipped kernel, padded by ``dilation·(k−1) − padding`` (plus ``output_padding``
    behind); weight (C_in, C_out/groups, *k) in torch's layout."""
    op = f"conv_transpose{n}d"
    _check_rank(input, n, op)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a tuple of {n} ints (torch's "
                         f"transposed convolutions take no 'same' / 'valid'), got {padding!r}")
    stride = ntuple(stride, n, "stride", minimum=1, layer=op)
    padding = ntuple(padding, n, "padding", minimum=0, layer=op)
    output_padding = ntuple(output_padding, n, "output_padding", minimum=0, layer=op)
    dilation = ntuple(dilation, n, "dilation", minimum=1, layer=op)
    for o, s, d in zip(output_padding, stride, dilation):
        if not (o < s or o < d):
            raise ValueError(f"{op}: output_padding ({output_padding}) must be smaller than "
                             f"either stride ({stride}) or dilation ({dilation}), as in torch")
    unbatched = input.ndim == n + 1
    x = input[None] if unbatched else input
    cin, cout_g, ks = weight.shape[0], weight.shape[1], weight.shape[2:]
    # (C_in, C_out/g, *k) → (g, C_in/g, C_out/g, *k) → (g, C_out/g, C_in/g, *k) → OI*k,
    # the forward convolution's kernel whose output-channel blocks are the groups
    w = weight.reshape(groups, cin // groups, cout_g, *ks)
    w = jnp.swapaxes(w, 1, 2).reshape(groups * cout_g, cin // groups, *ks)
    w = jnp.flip(w, axis=tuple(range(2, 2 + n)))
    pads, crops = [], []
    for k, p, o, d in zip(ks, padding, output_padding, dilation):
        lo, hi = d * (k - 1) - p, d * (k - 1) - p + o
        # a padding beyond dilation·(k−1) crops the output instead
        pads.append((max(lo, 0), max(hi, 0)))
        crops.append((max(-lo, 0), max(-hi, 0)))
    y = lax.conv_general_dilated(x, w, (1,) * n, pads, lhs_dilation=stride,
                                 rhs_dilation=dilation, feature_group_count=groups,
                                 dimension_numbers=_CONV_DN[n])
    if any(c != (0, 0) for c in crops):
        y = y[(slice(None), slice(None)) + tuple(
            slice(lo, y.shape[2 + i] - hi) for i, (lo, hi) in enumerate(crops))]
    if bias is not None:
        y = y + _channel_view(bias, y.ndim)
    return y[0] if unbatched else y


def _make_conv(n):
    def conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        return _conv(n, input, weight, bias, stride, padding, dilation, groups)
    return _named(conv, f"conv{n}d")


def _make_conv_transpose(n):
    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                       groups=1, dilation=1):
        return _conv_transpose(n, input, weight, bias, stride, padding, output_padding,
                               groups, dilation)
    return _named(conv_transpose, f"conv_transpose{n}d")


for _n in (1, 2, 3):
    _register(f"conv{_n}d", f"torch.conv{_n}d")(_make_conv(_n))
    _register(f"conv_transpose{_n}d", f"torch.conv_transpose{_n}d")(_make_conv_transpose(_n))


# ----------------------------------------------------------------------------- pooling

_MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_AVG_POOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
_ADAPTIVE_AVG = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}
_ADAPTIVE_MAX = {1: nn.AdaptiveMaxPool1d, 2: nn.AdaptiveMaxPool2d, 3: nn.AdaptiveMaxPool3d}
_LP_POOL = {1: nn.LPPool1d, 2: nn.LPPool2d, 3: nn.LPPool3d}
_UNPOOL = {1: nn.MaxUnpool1d, 2: nn.MaxUnpool2d, 3: nn.MaxUnpool3d}


def _max_pool(n, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    layer = _MAX_POOL[n](kernel_size, _stride(stride), padding, dilation,
                         bool(return_indices), bool(ceil_mode))
    return _apply_channels_last(layer, input, n, f"max_pool{n}d")


def _make_max_pool(n, always_indices: bool):
    # torch's F.max_pool{n}d returns (values, indices) only with return_indices;
    # F.max_pool{n}d_with_indices (what fx records for return_indices=True) always does
    def max_pool(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 return_indices=False):
        return _max_pool(n, input, kernel_size, stride, padding, dilation, ceil_mode,
                         always_indices or return_indices)
    return _named(max_pool, f"max_pool{n}d" + ("_with_indices" if always_indices else ""))


def _make_avg_pool(n):
    if n == 1:
        def avg_pool(input, kernel_size, stride=None, padding=0, ceil_mode=False,
                     count_include_pad=True):
            layer = nn.AvgPool1d(kernel_size, _stride(stride), padding, bool(ceil_mode),
                                 bool(count_include_pad))
            return _apply_channels_last(layer, input, 1, "avg_pool1d")
    else:
        def avg_pool(input, kernel_size, stride=None, padding=0, ceil_mode=False,
                     count_include_pad=True, divisor_override=None):
            layer = _AVG_POOL[n](kernel_size, _stride(stride), padding, bool(ceil_mode),
                                 bool(count_include_pad), divisor_override)
            return _apply_channels_last(layer, input, n, f"avg_pool{n}d")
    return _named(avg_pool, f"avg_pool{n}d")


def _make_adaptive_avg_pool(n):
    def adaptive_avg_pool(input, output_size):
        return _apply_channels_last(_ADAPTIVE_AVG[n](output_size), input, n,
                                    f"adaptive_avg_pool{n}d")
    return _named(adaptive_avg_pool, f"adaptive_avg_pool{n}d")


def _make_adaptive_max_pool(n, always_indices: bool):
    def adaptive_max_pool(input, output_size, return_indices=False):
        layer = _ADAPTIVE_MAX[n](output_size, bool(always_indices or return_indices))
        return _apply_channels_last(layer, input, n, f"adaptive_max_pool{n}d")
    return _named(adaptive_max_pool,
                  f"adaptive_max_pool{n}d" + ("_with_indices" if always_indices else ""))


def _make_lp_pool(n):
    def lp_pool(input, norm_type, kernel_size, stride=None, ceil_mode=False):
        layer = _LP_POOL[n](norm_type, kernel_size, _stride(stride), bool(ceil_mode))
        return _apply_channels_last(layer, input, n, f"lp_pool{n}d")
    return _named(lp_pool, f"lp_pool{n}d")


def _make_max_unpool(n):
    def max_unpool(input, indices, kernel_size, stride=None, padding=0, output_size=None):
        if output_size is not None:
            # torch's full (N, C, *S) form → its spatial sizes (the twin's n + 2 form is
            # channels-last, so only the spatial sizes are passed on)
            output_size = list(output_size)
            if len(output_size) == n + 2:
                output_size = output_size[2:]
        layer = _UNPOOL[n](kernel_size, _stride(stride), padding)
        return _apply_channels_last(lambda x, i: layer(x, i, output_size), input, n,
                                    f"max_unpool{n}d", indices)
    return _named(max_unpool, f"max_unpool{n}d")


# the names torch.fx records for the pooling functions that are torch builtins
_POOL_ALIASES = {"avg_pool1d": ("torch.avg_pool1d",),
                 "avg_pool2d": ("torch._C._nn.avg_pool2d",),
                 "avg_pool3d": ("torch._C._nn.avg_pool3d",),
                 "adaptive_avg_pool1d": ("torch.adaptive_avg_pool1d",)}
for _n in (1, 2, 3):
    _register(f"max_pool{_n}d")(_make_max_pool(_n, False))
    _register(f"max_pool{_n}d_with_indices")(_make_max_pool(_n, True))
    _register(f"avg_pool{_n}d", *_POOL_ALIASES.get(f"avg_pool{_n}d", ()))(_make_avg_pool(_n))
    _register(f"adaptive_avg_pool{_n}d", *_POOL_ALIASES.get(f"adaptive_avg_pool{_n}d", ()))(
        _make_adaptive_avg_pool(_n))
    _register(f"adaptive_max_pool{_n}d")(_make_adaptive_max_pool(_n, False))
    _register(f"adaptive_max_pool{_n}d_with_indices")(_make_adaptive_max_pool(_n, True))
    _register(f"lp_pool{_n}d")(_make_lp_pool(_n))
    _register(f"max_unpool{_n}d")(_make_max_unpool(_n))


# ------------------------------------------------------------------------------ padding

_MODE_PAD = {"reflect": {1: nn.ReflectionPad1d, 2: nn.ReflectionPad2d, 3: nn.ReflectionPad3d},
             "replicate": {1: nn.ReplicationPad1d, 2: nn.ReplicationPad2d,
                           3: nn.ReplicationPad3d},
             "circular": {1: nn.CircularPad1d, 2: nn.CircularPad2d, 3: nn.CircularPad3d}}


@_register("pad")
def pad(input, pad, mode="constant", value=None):
    """torch's ``F.pad``: ``pad`` = (low, high) pairs from the LAST axis backwards.

    'constant' pads any number of trailing axes of any rank (negative amounts crop; ``lax.pad``
    does both, as torch's ``constant_pad_nd``), so it is written here rather than through
    the 1-3-d ConstantPad twins; 'reflect' / 'replicate' / 'circular' are the twins (torch's
    (N, C, *S) / (C, *S) with 1-3 padded axes), channels moved last and back."""
    pad = list(pad)
    if len(pad) % 2:
        raise ValueError(f"pad: the padding length must be divisible by 2, got {tuple(pad)}")
    n = len(pad) // 2
    if n > input.ndim:
        raise ValueError(f"pad: padding {tuple(pad)} pads {n} axes of an input of rank "
                         f"{input.ndim}")
    if mode == "constant":
        cfg = [(0, 0, 0)] * input.ndim
        for i in range(n):
            axis = input.ndim - 1 - i
            lo, hi = pad[2 * i], pad[2 * i + 1]
            if input.shape[axis] + lo + hi < 0:
                raise ValueError(f"pad: padding {tuple(pad)} crops axis {axis} (size "
                                 f"{input.shape[axis]}) below 0, as torch refuses")
            cfg[axis] = (lo, hi, 0)
        fill = jnp.asarray(np.asarray(0 if value is None else value).astype(input.dtype))
        return lax.pad(input, fill, cfg)
    if mode not in _MODE_PAD:
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or "
                         f"'circular', got {mode!r}")
    if value is not None and value != 0:
        raise ValueError(f"pad: padding mode {mode!r} doesn't take a value argument, got "
                         f"value={value!r}")
    if n not in (1, 2, 3) or input.ndim not in (n + 1, n + 2):
        raise ValueError(f"pad: mode {mode!r} pads 1-3 trailing axes of an (N, C, *S) or "
                         f"(C, *S) input, got padding {tuple(pad)} for shape "
                         f"{tuple(input.shape)}")
    return _apply_channels_last(_MODE_PAD[mode][n](tuple(pad)), input, n, "pad")


# -------------------------------------------------------------------------- interpolate
# -------------------------------------------------------------------------- interpolate
# torch's CPU index arithmetic (aten/src/ATen/native/UpSample.h, cpu/UpSampleKernel.cpp),
# pinned here because a different rounding picks a different source pixel (checked
# exhaustively for small sizes in the tests):
# * every source position is computed in the op-math type ``ot`` (double for float64,
#   float otherwise) from torch's scale: (in − 1) / (out − 1) with align_corners (0 when
#   out == 1), else 1 / scale_factor when a scale factor reaches the kernel, else
#   in / out; the integer index is then ``floorf`` of it — the position rounded to
#   float32 first, even in double (so 23 · 14/46 is pixel 7 for a float64 input, while
#   float32's 23 · float32(14/46) is pixel 6), clamped to in − 1;
# * nearest: position scale · dst (UpSample.h's ``nearest_idx`` and its out == in,
#   out == 2·in shortcuts are not what the CPU kernel runs: with scale_factor=1.1 on 2
#   pixels torch reads pixel 0 twice); nearest-exact: the pixel centre
#   scale · (dst + 0.5) − 0.5, clamped at 0, + 0.5; torch's compiled kernel forms every
#   pixel centre with one fused multiply-add (``_fma``), which decides ties such as
#   2 → 41 pixels in float32 (output 20 reads pixel 1);
# * linear: position scale · dst (align_corners) or the pixel centre clamped at 0;
#   λ = clamp(position − index, 0, 1); reads index and index + 1 (index itself at the
#   last pixel); copies when out == in, whatever the scale;
# * bicubic: the same positions without the clamp at 0, reads index − 1 … index + 2
#   clamped to the input, with torch's A = −0.75 cubic-convolution weights of λ.
# Separable modes are summed innermost (last) axis first, as torch's CPU kernel nests
# them; gradients are the transposes of these gathers (scatter-adds), as torch's.

_INTERP_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "bicubic",
                 "area")
_MODE_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def _opmath(dtype):
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


def _nearest_source(in_size, out_size, scale, exact, ot):
    """torch's CPU nearest / nearest-exact source index of every output index."""
    if exact:  # the pixel centre (clamped at 0), + 0.5
        src = _source_index(in_size, out_size, False, scale, ot, False) + ot(0.5)
    else:
        src = _scale(in_size, out_size, False, scale, ot) * np.arange(out_size).astype(ot)
    return np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), in_size - 1)


def _fma(a, b, c, ot):
    """``a·b + c`` rounded once to ``ot``, as torch's compiled kernel computes the pixel
    centre (a fused multiply-add: 2 → 41 pixels in float32, output 20 sits at 0.49999997,
    not at the 0.49999994 of two roundings, and reads pixel 1). float32: exact in double;
    float64: exact in rationals."""
    if ot == np.float32:
        return (np.float64(a) * np.asarray(b, np.float64) + c).astype(np.float32)
    fa = Fraction(float(a))
    return np.array([float(fa * Fraction(float(v)) + Fraction(c)) for v in b], np.float64)


def _scale(in_size, out_size, align_corners, scale, ot):
    """torch's ``area_pixel_compute_scale`` in op-math type ``ot``."""
    if align_corners:
        return ot(in_size - 1) / ot(out_size - 1) if out_size > 1 else ot(0)
    return ot(1.0 / scale) if scale is not None and scale > 0 else ot(in_size) / ot(out_size)


def _source_index(in_size, out_size, align_corners, scale, ot, cubic):
    """torch's real-valued source position of every output index, in op-math type ``ot``."""
    dst = np.arange(out_size).astype(ot)
    r = _scale(in_size, out_size, align_corners, scale, ot)
    if align_corners:
        return r * dst
    src = _fma(r, dst + ot(0.5), -0.5, ot)  # the pixel centre r·(dst + 0.5) − 0.5
    return src if cubic else np.where(src < 0, ot(0), src)


def _guard(src, in_size, ot):
    """torch's ``guard_index_and_lambda``: index = min(floorf(src), in − 1), λ ∈ [0, 1]."""
    idx = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), in_size - 1)
    lam = np.clip(src - idx.astype(ot), ot(0), ot(1)).astype(ot)
    return idx, lam


def _linear_taps(in_size, out_size, align_corners, scale, ot):
    if out_size == in_size:  # torch copies (whatever the scale factor)
        dst = np.arange(out_size)
        return [(dst, np.ones(out_size, ot)), (dst, np.zeros(out_size, ot))]
    idx, lam = _guard(_source_index(in_size, out_size, align_corners, scale, ot, False),
                      in_size, ot)
    nxt = idx + (idx < in_size - 1)
    return [(idx, ot(1) - lam), (nxt, lam)]


def _cubic_taps(in_size, out_size, align_corners, scale, ot):
    idx, t = _guard(_source_index(in_size, out_size, align_corners, scale, ot, True),
                    in_size, ot)
    a = ot(-0.75)

    def near(x):  # |x| ≤ 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    weights = [far(t + 1), near(t), near(1 - t), far(2 - t)]
    return [(np.clip(idx - 1 + j, 0, in_size - 1), w.astype(ot))
            for j, w in enumerate(weights)]


def _resample_axis(x, axis, taps):
    """Σ_j w_j · x[idx_j] along ``axis`` (taps: (index, weight) pairs, one per output)."""
    shape = [1] * x.ndim
    shape[axis] = -1
    out = None
    for idx, w in taps:
        part = jnp.take(x, jnp.asarray(idx), axis=axis) * jnp.asarray(
            w.reshape(shape), dtype=x.dtype)
        out = part if out is None else out + part
    return out


@_register("interpolate")
def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """torch's ``F.interpolate`` on (N, C, *S): modes nearest, nearest-exact, (bi/tri)linear,
    bicubic and area, with ``size`` or ``scale_factor`` (a number or one per axis),
    ``align_corners`` and ``recompute_scale_factor`` as torch resolves them (a scale
    factor reaches the kernel unless recomputed; area always recomputes)."""
    op = "interpolate"
    if mode not in _INTERP_MODES:
        raise ValueError(f"{op}: mode must be one of {', '.join(map(repr, _INTERP_MODES))}, "
                         f"got {mode!r}")
    if antialias:
        raise _unsupported(op, "antialias", antialias, "anti-aliased resampling has no "
                           "translation; use antialias=False")
    n = input.ndim - 2
    if n not in (1, 2, 3):
        raise ValueError(f"{op}: input must be (N, C, *S) with 1-3 spatial axes, got shape "
                         f"{tuple(input.shape)}")
    if mode in ("nearest", "nearest-exact", "area"):
        if align_corners is not None:
            raise ValueError(f"{op}: align_corners can only be set with the interpolating "
                             f"modes linear | bilinear | bicubic | trilinear, got "
                             f"mode={mode!r}")
    else:
        align_corners = bool(align_corners) if align_corners is not None else False
        if _MODE_RANK[mode] != n:
            raise ValueError(f"{op}: mode {mode!r} needs a {_MODE_RANK[mode] + 2}-D input, "
                             f"got shape {tuple(input.shape)}")
    spatial = input.shape[2:]
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: exactly one of size or scale_factor must be given")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(f"{op}: recompute_scale_factor is not meaningful with an "
                             f"explicit size")
        sizes = list(size) if isinstance(size, (tuple, list)) else [size] * n
        if len(sizes) != n:
            raise ValueError(f"{op}: size {size!r} must have {n} entries for input of shape "
                             f"{tuple(input.shape)}")
        sizes, scales = [int(s) for s in sizes], [None] * n
    else:
        scales = (list(scale_factor) if isinstance(scale_factor, (tuple, list))
                  else [scale_factor] * n)
        if len(scales) != n:
            raise ValueError(f"{op}: scale_factor {scale_factor!r} must have {n} entries for "
                             f"input of shape {tuple(input.shape)}")
        scales = [float(s) for s in scales]
        sizes = [int(math.floor(float(L) * s)) for L, s in zip(spatial, scales)]
        if recompute_scale_factor or mode == "area":
            scales = [None] * n  # the kernel then scales by in / out
    if any(o <= 0 for o in sizes) or 0 in spatial:
        raise ValueError(f"{op}: input and output sizes should be greater than 0, got input "
                         f"{tuple(spatial)} and output {tuple(sizes)}")
    if mode == "area":  # torch: adaptive average pooling to the output size
        return _apply_channels_last(_ADAPTIVE_AVG[n](tuple(sizes)), input, n, op)
    ot = _opmath(input.dtype)
    y = input
    for i in reversed(range(n)):  # innermost axis first, as torch nests its sums
        L, out, s, axis = spatial[i], sizes[i], scales[i], 2 + i
        if mode in ("nearest", "nearest-exact"):
            idx = _nearest_source(L, out, s, mode == "nearest-exact", ot)
            y = jnp.take(y, jnp.asarray(idx), axis=axis)
        elif mode == "bicubic":
            y = _resample_axis(y, axis, _cubic_taps(L, out, align_corners, s, ot))
        else:
            y = _resample_axis(y, axis, _linear_taps(L, out, align_corners, s, ot))
    return y


@_register("upsample")
def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """torch's deprecated ``F.upsample``: :func:`interpolate` (torch's deprecation warning
    is not repeated; the three upsample aliases are silent here)."""
    return interpolate(input, size, scale_factor, mode, align_corners)


@_register("upsample_nearest")
def upsample_nearest(input, size=None, scale_factor=None):
    """torch's deprecated ``F.upsample_nearest``: nearest :func:`interpolate`."""
    return interpolate(input, size, scale_factor, mode="nearest")


@_register("upsample_bilinear")
def upsample_bilinear(input, size=None, scale_factor=None):
    """torch's deprecated ``F.upsample_bilinear``: bilinear with ``align_corners=True``."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ------------------------------------------------------------------------- normalisation

def _affine(y, weight, bias, view=lambda v: v):
    if weight is not None:
        y = y * view(weight)
    if bias is not None:
        y = y + view(bias)
    return y


@_register("layer_norm")
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """The LayerNorm twin without affine parameters, then ``weight`` / ``bias``."""
    y = nn.LayerNorm(tuple(normalized_shape), eps, elementwise_affine=False)(input)
    return _affine(y, weight, bias)


@_register("rms_norm")
def rms_norm(input, normalized_shape, weight=None, eps=None):
    """The RMSNorm twin without affine parameters (``eps=None``: the dtype's epsilon, as
    torch), then ``weight``."""
    y = nn.RMSNorm(tuple(normalized_shape), eps, elementwise_affine=False)(input)
    return _affine(y, weight, None)


@_register("group_norm")
def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """The GroupNorm twin (channels-last) on torch's (N, C, *), then per-channel affine."""
    if input.ndim < 2:
        raise ValueError(f"group_norm: input must be (N, C, *), got shape "
                         f"{tuple(input.shape)}")
    c = input.shape[1]
    layer = nn.GroupNorm(num_groups, c, eps, affine=False)
    y = jnp.moveaxis(layer(jnp.moveaxis(input, 1, -1)), -1, 1)
    return _affine(y, weight, bias, lambda v: _channel_view(v, y.ndim))


_INSTANCE = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}


@_register("instance_norm")
def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Per sample and channel of (N, C, *S): the InstanceNorm twin with batch statistics
    (``use_input_stats=True``, no running statistics), or normalisation by the given
    running statistics (``use_input_stats=False``), then per-channel affine."""
    op = "instance_norm"
    s = input.ndim - 2
    if s < 1:
        raise ValueError(f"{op}: input must be (N, C, *S) with at least one spatial axis, got "
                         f"shape {tuple(input.shape)}")
    c = input.shape[1]
    if use_input_stats:
        if running_mean is not None or running_var is not None:
            name, value = (("running_mean", running_mean) if running_mean is not None
                           else ("running_var", running_var))
            raise _unsupported(op, name, value, "with use_input_stats=True torch updates the "
                               "running statistics in place (the interpreter handles that "
                               "state for InstanceNorm modules)")
        if s not in _INSTANCE:
            raise _unsupported(op, "input", input, "batch statistics over 1-3 spatial axes "
                               "only")
        y = _apply_channels_last(_INSTANCE[s](c, eps), input, s, op)
    else:
        if running_mean is None or running_var is None:
            raise ValueError(f"{op}: use_input_stats=False needs running_mean and running_var")
        mean, var = _channel_view(running_mean, input.ndim), _channel_view(running_var,
                                                                            input.ndim)
        y = (input - mean) * lax.rsqrt(var + eps)
    return _affine(y, weight, bias, lambda v: _channel_view(v, y.ndim))


@_register("local_response_norm")
def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """The LocalResponseNorm twin over torch's channel axis 1 (moved last and back)."""
    if input.ndim < 3:
        raise ValueError(f"local_response_norm: input must be 3-D or more, (N, C, *), got "
                         f"shape {tuple(input.shape)}")
    y = nn.LocalResponseNorm(size, alpha, beta, k)(jnp.moveaxis(input, 1, -1))
    return jnp.moveaxis(y, -1, 1)


# ------------------------------------------------------------------------------- norms

def _norm_value(x, p, axis, keepdims):
    a = jnp.abs(x)
    if p == 2:
        return jnp.sqrt(jnp.sum(x * x, axis, keepdims=keepdims))
    if p == 1:
        return jnp.sum(a, axis, keepdims=keepdims)
    if p == math.inf:
        return jnp.max(a, axis, keepdims=keepdims)
    if p == -math.inf:
        return jnp.min(a, axis, keepdims=keepdims)
    if p == 0:
        return jnp.sum((x != 0).astype(x.dtype), axis, keepdims=keepdims)
    return jnp.sum(a ** p, axis, keepdims=keepdims) ** (1.0 / p)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def _vector_norm(x, p, axis, keepdims):
    """torch's ``linalg.vector_norm`` with torch's ``norm_backward``: JAX's own derivative
    of √Σx² is NaN at a zero vector, torch's is 0 (it masks ``norm == 0``); ±∞ splits the
    gradient evenly among tied maxima (and NaNs); p = 0 has none."""
    return _norm_value(x, p, axis, keepdims)


@_vector_norm.defjvp
def _vector_norm_jvp(p, axis, keepdims, primals, tangents):
    (x,), (t,) = primals, tangents
    norm = _norm_value(x, p, axis, True)
    zero = jnp.zeros((), x.dtype)
    sgn = jnp.sign(x)
    if p == 0:
        coef = jnp.zeros_like(x)
    elif p == 1:
        coef = sgn
    elif p == 2:
        coef = jnp.where(norm == 0, zero, x / jnp.where(norm == 0, 1, norm))
    elif math.isinf(p):
        a = jnp.abs(x)
        mask = ((a == norm) | jnp.isnan(a)).astype(x.dtype)
        coef = sgn * mask / jnp.sum(mask, axis, keepdims=True)
    else:
        a = jnp.abs(x)
        if p < 1:
            scaled = sgn * jnp.where(x == 0, zero, a ** (p - 1))
            coef = scaled * norm ** (1 - p)
        else:
            scaled = sgn * a ** (p - 1) if p < 2 else x * a ** (p - 2)
            safe = jnp.where(norm == 0, 1, norm)
            coef = jnp.where(norm == 0, zero, scaled / safe ** (p - 1))
    dn = jnp.sum(coef * t, axis, keepdims=keepdims)
    return _norm_value(x, p, axis, keepdims), dn


@jax.custom_jvp
def _clamp_unrecorded(v, lo):
    """``v.clamp_min_(lo)`` under torch's ``no_grad``: clamped value, identity derivative."""
    return jnp.maximum(v, lo)


@_clamp_unrecorded.defjvp
def _clamp_unrecorded_jvp(primals, tangents):
    v, lo = primals
    return jnp.maximum(v, lo), tangents[0]


@_register("normalize")
def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """``input / max(‖input‖_p along dim, eps)``, torch's composite: the clamp passes the
    gradient where the norm is ≥ eps (``clamp_min``), the norm has torch's backward."""
    if out is not None:
        raise _unsupported("normalize", "out", out, "writing into an out tensor has no JAX "
                           "counterpart; use the returned value")
    norm = _vector_norm(input, float(p), dim, True)
    return input / _clamp_min(norm, eps)


@_register("cosine_similarity", "torch.cosine_similarity")
def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """torch's ATen form: ``Σ (x1 / n1) · (x2 / n2)`` along dim, each norm clamped at eps
    without recording the clamp (torch clamps in place under ``no_grad``)."""
    x1, x2 = jnp.broadcast_arrays(x1, x2)
    n1 = _clamp_unrecorded(_vector_norm(x1, 2.0, dim, True), eps)
    n2 = _clamp_unrecorded(_vector_norm(x2, 2.0, dim, True), eps)
    return jnp.sum((x1 / n1) * (x2 / n2), axis=dim)


@_register("pairwise_distance", "torch.pairwise_distance")
def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """``‖x1 − x2 + eps‖_p`` over the last axis of the broadcast shape, as torch."""
    axis = max(x1.ndim, x2.ndim) - 1
    return _vector_norm(x1 - x2 + eps, float(p), axis, bool(keepdim))


# ---------------------------------------------------------------------------- embedding

@_register("embedding")
def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """``weight[input]``. The ``padding_idx`` row gets no gradient (torch's backward skips
    it); ``scale_grad_by_freq`` divides each row's gradient by its count in ``input`` (as
    the Embedding twin writes it). ``sparse`` only changes torch's gradient's storage.
    ``max_norm`` renormalises ``weight`` in place: unsupported."""
    op = "embedding"
    if max_norm is not None:
        raise _unsupported(op, "max_norm", max_norm, "torch renormalises the weight in place; "
                           "use the Embedding module (its twin reproduces it)")
    num = weight.shape[0]
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ValueError(f"{op}: padding_idx must be within num_embeddings ({num}), got "
                             f"{padding_idx}")
        padding_idx %= num
    if not jnp.issubdtype(input.dtype, jnp.integer):
        raise TypeError(f"{op}: input must hold integer indices, got dtype {input.dtype}")
    if _concrete(input) and input.size:  # numpy: jnp under jit would trace
        lo, hi = int(np.min(np.asarray(input))), int(np.max(np.asarray(input)))
        if lo < 0 or hi >= num:
            raise IndexError(f"{op}: indices must lie in [0, {num}), got values in "
                             f"[{lo}, {hi}]")
    out = jnp.take(weight, input, axis=0)
    if scale_grad_by_freq:
        counts = jnp.zeros(num, weight.dtype).at[input.reshape(-1)].add(1)
        inv = (1 / counts[input])[..., None]
        out = out + (out - lax.stop_gradient(out)) * (inv - 1)
    if padding_idx is not None:
        out = jnp.where((input == padding_idx)[..., None], lax.stop_gradient(out), out)
    return out


def _concrete(x) -> bool:
    """Whether ``x`` has values now (not a tracer under jit/grad): value checks only then."""
    try:
        np.asarray(x)
    except jax.errors.TracerArrayConversionError:
        return False
    return True


@_register("one_hot", "torch._C._nn.one_hot")
def one_hot(tensor, num_classes=-1):
    """int64 one-hot vectors (*, num_classes). ``num_classes=-1`` (torch: max + 1) depends
    on the data and is unsupported."""
    if num_classes == -1:
        raise _unsupported("one_hot", "num_classes", num_classes, "the class count would "
                           "depend on the data (max + 1); pass num_classes explicitly")
    if not jnp.issubdtype(tensor.dtype, jnp.integer):
        raise TypeError(f"one_hot: tensor must hold integer class indices, got dtype "
                        f"{tensor.dtype}")
    if _concrete(tensor) and tensor.size:  # numpy: jnp under jit would trace
        if np.min(np.asarray(tensor)) < 0 or np.max(np.asarray(tensor)) >= num_classes:
            raise ValueError(f"one_hot: class values must lie in [0, {num_classes})")
    classes = jnp.arange(num_classes, dtype=tensor.dtype)
    return (tensor[..., None] == classes).astype(jnp.int64)


# --------------------------------------------------------------------------- activations
# Each builds the activation twin (torch's derivative conventions) and applies it; the
# twins check their arguments as torch does. ``inplace`` is accepted and has no effect.

@_register("relu")
def relu(input, inplace=False):
    return nn.ReLU()(input)


@_register("relu6")
def relu6(input, inplace=False):
    return nn.ReLU6()(input)


@_register("leaky_relu")
def leaky_relu(input, negative_slope=0.01, inplace=False):
    return nn.LeakyReLU(negative_slope)(input)


@_register("elu")
def elu(input, alpha=1.0, inplace=False):
    return nn.ELU(alpha)(input)


@_register("selu")
def selu(input, inplace=False):
    return nn.SELU()(input)


@_register("celu")
def celu(input, alpha=1.0, inplace=False):
    return nn.CELU(alpha)(input)


@_register("gelu", "torch._C._nn.gelu")
def gelu(input, approximate="none"):
    return nn.GELU(approximate)(input)


@_register("silu")
def silu(input, inplace=False):
    return nn.SiLU()(input)


@_register("mish")
def mish(input, inplace=False):
    return nn.Mish()(input)


@_register("hardtanh")
def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    return nn.Hardtanh(min_val, max_val)(input)


@_register("hardswish")
def hardswish(input, inplace=False):
    return nn.Hardswish()(input)


# torch's hardsigmoid (no twin): relu6(x + 3) / 6; backward grad · (1/6) strictly inside
# (-3, 3), 0 elsewhere (at the kinks and for NaN). torch's CPU kernel writes that 1/6 as a
# float literal (1.0f / 6.0f), so in float64 too the slope is float32(1/6) = 0.1666666716
_SIXTH = float(np.float32(1.0) / np.float32(6.0))
_HARDSIGMOID = with_slope(
    lambda x: jnp.clip(x + 3, 0, 6) / 6,
    lambda x: jnp.where((x > -3) & (x < 3), jnp.full_like(x, _SIXTH), jnp.zeros_like(x)))


@_register("hardsigmoid")
def hardsigmoid(input, inplace=False):
    return _HARDSIGMOID(input)


@_register("sigmoid")
def sigmoid(input):
    return nn.Sigmoid()(input)


@_register("tanh")
def tanh(input):
    return nn.Tanh()(input)


@_register("softplus", "torch._C._nn.softplus")
def softplus(input, beta=1.0, threshold=20.0):
    return nn.Softplus(beta, threshold)(input)


@_register("softsign")
def softsign(input):
    return nn.Softsign()(input)


@_register("tanhshrink")
def tanhshrink(input):
    return nn.Tanhshrink()(input)


@_register("hardshrink", "torch.hardshrink")
def hardshrink(input, lambd=0.5):
    return nn.Hardshrink(lambd)(input)


@_register("softshrink", "torch._C._nn.softshrink")
def softshrink(input, lambd=0.5):
    return nn.Softshrink(lambd)(input)


@_register("threshold", "torch.nn.functional._threshold")
def threshold(input, threshold, value, inplace=False):
    return nn.Threshold(threshold, value)(input)


@_register("logsigmoid", "torch._C._nn.log_sigmoid")
def logsigmoid(input):
    return nn.LogSigmoid()(input)


@_register("glu")
def glu(input, dim=-1):
    return nn.GLU(dim)(input)


@_register("rrelu")
def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Evaluation mode: leaky ReLU with slope (lower + upper) / 2, as torch; training
    draws random slopes (unsupported)."""
    if training:
        raise _unsupported("rrelu", "training", training, "random slopes from torch's "
                           "generator cannot be reproduced")
    return nn.LeakyReLU((lower + upper) / 2)(input)


@_register("prelu", "torch.prelu")
def prelu(input, weight):
    """``x`` where ``x > 0``, else ``weight · x``, ``weight`` one slope or one per channel
    of torch's axis 1 (the PReLU twin is channels-last and holds its weight). At 0 the
    slope is ``weight``, as torch."""
    if weight.size == 1:
        w = weight.reshape(())
    else:
        if input.ndim < 2 or input.shape[1] != weight.size:
            raise ValueError(f"prelu: weight has {weight.size} slopes, input of shape "
                             f"{tuple(input.shape)} needs 1 or one per channel (axis 1)")
        w = _channel_view(weight.reshape(-1), input.ndim)
    return jnp.where(input > 0, input, w * input)


# in-place variants: same values (the interpreter deals with the aliasing)
_register("relu_", "torch.relu_")(_named(lambda input: relu(input), "relu_"))
_register("elu_", "torch._C._nn.elu_")(
    _named(lambda input, alpha=1.0: elu(input, alpha), "elu_"))
_register("leaky_relu_", "torch._C._nn.leaky_relu_")(
    _named(lambda input, negative_slope=0.01: leaky_relu(input, negative_slope),
           "leaky_relu_"))
_register("hardtanh_", "torch._C._nn.hardtanh_")(
    _named(lambda input, min_val=-1.0, max_val=1.0: hardtanh(input, min_val, max_val),
           "hardtanh_"))
_register("threshold_", "torch.threshold_")(
    _named(lambda input, threshold, value: nn.Threshold(threshold, value)(input),
           "threshold_"))
_register("celu_", "torch.celu_")(_named(lambda input, alpha=1.0: celu(input, alpha), "celu_"))
_register("selu_", "torch.selu_")(_named(lambda input: selu(input), "selu_"))


# ------------------------------------------------------------------------------ softmax

def _softmax_dim(ndim: int, fn: str, stacklevel: int) -> int:
    """torch's implicit ``dim`` (``_get_softmax_dim``), with its deprecation warning."""
    warnings.warn(f"Implicit dimension choice for {fn} has been deprecated. Change the call "
                  f"to include dim=X as an argument.", UserWarning, stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def _softmax_family(layer_cls, fn: str):
    def f(input, dim=None, _stacklevel=3, dtype=None):
        if dtype is not None:  # torch casts the input first
            input = input.astype(dtype)
        if dim is None:
            dim = _softmax_dim(input.ndim, fn, 3)
        return layer_cls(dim)(input)
    return _named(f, fn)


_register("softmax")(_softmax_family(nn.Softmax, "softmax"))
_register("log_softmax")(_softmax_family(nn.LogSoftmax, "log_softmax"))
_register("softmin")(_softmax_family(nn.Softmin, "softmin"))


# ------------------------------------------------------------------------------- losses
# The loss twins, with torch's class axis 1 moved last where a twin wants it
# (cross_entropy, nll_loss); the others work on torch's own axes.

def _class_last(x):
    return x if x.ndim < 2 else jnp.moveaxis(x, 1, -1)


@_register("cross_entropy")
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    if tuple(target.shape) == tuple(input.shape):  # class probabilities, laid out as input
        target = _class_last(target)
    layer = nn.CrossEntropyLoss(weight, size_average, ignore_index, reduce, reduction,
                                label_smoothing)
    return layer(_class_last(input), target)


@_register("nll_loss")
def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    layer = nn.NLLLoss(weight, size_average, ignore_index, reduce, reduction)
    return layer(_class_last(input), target)


def _weighted_regression(op, elementwise, input, target, weight, reduction, mean):
    """torch's Python path for a ``weight`` (same shape as input): the elementwise loss
    times weight, then torch's per-loss 'mean' (``mean(w·l)`` or ``Σ w·l / Σ w``)."""
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(f"{op}: weights and input must have the same size, got "
                         f"{tuple(weight.shape)} and {tuple(input.shape)}")
    x, t = jnp.broadcast_arrays(input, target)
    loss = elementwise(x, t) * weight
    if reduction == "none":
        return loss
    if reduction == "sum":
        return jnp.sum(loss)
    if reduction == "mean":
        return jnp.mean(loss) if mean == "mean" else jnp.sum(loss) / jnp.sum(weight)
    raise ValueError(f"{op}: invalid reduction {reduction!r}, expected 'none', 'mean' or "
                     f"'sum'")


def _target_size_warning(input, target):
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"Using a target size ({tuple(target.shape)}) that is different to the "
                      f"input size ({tuple(input.shape)}). This will likely lead to incorrect "
                      f"results due to broadcasting. Please ensure they have the same size.",
                      UserWarning, stacklevel=3)


@_register("mse_loss")
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    if weight is None:
        return nn.MSELoss(size_average, reduce, reduction)(input, target)
    _target_size_warning(input, target)
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce, reduction, "mse_loss")
    return _weighted_regression("mse_loss", lambda x, t: (x - t) ** 2, input, target, weight,
                                reduction, "weight")


@_register("l1_loss")
def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    if weight is None:
        return nn.L1Loss(size_average, reduce, reduction)(input, target)
    _target_size_warning(input, target)
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce, reduction, "l1_loss")
    return _weighted_regression("l1_loss", lambda x, t: _abs(x - t), input, target,
                                weight, reduction, "weight")


@_register("smooth_l1_loss")
def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean",
                   beta=1.0):
    return nn.SmoothL1Loss(size_average, reduce, reduction, beta)(input, target)


@_register("huber_loss")
def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    if weight is None:
        return nn.HuberLoss(reduction, delta)(input, target)
    _target_size_warning(input, target)
    elementwise = nn.HuberLoss("none", delta)._elementwise
    return _weighted_regression("huber_loss", elementwise, input, target, weight, reduction,
                                "mean")


@_register("binary_cross_entropy")
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    return nn.BCELoss(weight, size_average, reduce, reduction)(input, target)


@_register("binary_cross_entropy_with_logits")
def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    layer = nn.BCEWithLogitsLoss(weight, size_average, reduce, reduction, pos_weight)
    return layer(input, target)


@_register("kl_div")
def kl_div(input, target, size_average=None, reduce=None, reduction="mean",
           log_target=False):
    return nn.KLDivLoss(size_average, reduce, reduction, log_target)(input, target)


@_register("poisson_nll_loss")
def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    layer = nn.PoissonNLLLoss(log_input, full, size_average, eps, reduce, reduction)
    return layer(input, target)


@_register("gaussian_nll_loss")
def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    return nn.GaussianNLLLoss(full=full, eps=eps, reduction=reduction)(input, target, var)


@_register("margin_ranking_loss")
def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                        reduction="mean"):
    layer = nn.MarginRankingLoss(margin, size_average, reduce, reduction)
    return layer(input1, input2, target)


@_register("hinge_embedding_loss")
def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None,
                         reduction="mean"):
    return nn.HingeEmbeddingLoss(margin, size_average, reduce, reduction)(input, target)


@_register("cosine_embedding_loss")
def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                          reduction="mean"):
    layer = nn.CosineEmbeddingLoss(margin, size_average, reduce, reduction)
    return layer(input1, input2, target)


@_register("soft_margin_loss")
def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    return nn.SoftMarginLoss(size_average, reduce, reduction)(input, target)


@_register("multilabel_margin_loss")
def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    return nn.MultiLabelMarginLoss(size_average, reduce, reduction)(input, target)


@_register("multilabel_soft_margin_loss")
def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean"):
    layer = nn.MultiLabelSoftMarginLoss(weight, size_average, reduce, reduction)
    return layer(input, target)


@_register("multi_margin_loss")
def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None,
                      reduce=None, reduction="mean"):
    layer = nn.MultiMarginLoss(p, margin, weight, size_average, reduce, reduction)
    return layer(input, target)


@_register("triplet_margin_loss")
def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    """torch's ATen composite (no twin): ``max(margin + d(a, p) − d(a, n), 0)`` with
    :func:`pairwise_distance`, ``swap`` taking min(d(a, n), d(p, n)) (ties split the
    gradient, as torch's ``min``); ``clamp_min`` passes the gradient at 0."""
    op = "triplet_margin_loss"
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce, reduction, op)
    if margin <= 0:
        raise ValueError(f"{op}: margin must be greater than 0, got {margin}")
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise ValueError(f"{op}: anchor, positive and negative must have the same number of "
                         f"dimensions, got {anchor.ndim}, {positive.ndim}, {negative.ndim}")
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = jnp.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    loss = _clamp_min(margin + d_pos - d_neg, 0)
    if reduction == "none":
        return loss
    if reduction in ("mean", "sum"):
        return jnp.mean(loss) if reduction == "mean" else jnp.sum(loss)
    raise ValueError(f"{op}: invalid reduction {reduction!r}, expected 'none', 'mean' or "
                     f"'sum'")


@_register("ctc_loss")
def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
    return _ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, reduction,
                     zero_infinity)


# ---------------------------------------------------------------------------- attention

@_register("scaled_dot_product_attention", "torch._C._nn.scaled_dot_product_attention")
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    """``softmax(q·kᵀ·scale + mask) · v`` over (…, L, E) / (…, S, E) / (…, S, Ev).

    A bool mask is True where attention is allowed (False → −∞); a float mask is added;
    ``is_causal`` is the top-left-aligned lower triangle (combined with ``attn_mask`` when
    both are given, as torch's CPU kernels do). A query row whose keys are all
    masked gets zero weights and a zero gradient (torch's "safe" softmax), not NaN.
    ``enable_gqa`` repeats each key/value head for its group of query heads (axis −3).
    Dropout draws from torch's generator: ``dropout_p`` must be 0."""
    op = "scaled_dot_product_attention"
    if dropout_p:
        raise _unsupported(op, "dropout_p", dropout_p, "attention dropout draws from torch's "
                           "random generator; use dropout_p=0.0 (evaluation)")
    if enable_gqa and key.shape[-3] != query.shape[-3]:
        group = query.shape[-3] // key.shape[-3]
        key = jnp.repeat(key, group, axis=-3)
        value = jnp.repeat(value, group, axis=-3)
    L, S, E = query.shape[-2], key.shape[-2], query.shape[-1]
    s = 1.0 / math.sqrt(E) if scale is None else scale
    scores = jnp.matmul(query, jnp.swapaxes(key, -1, -2)) * jnp.asarray(s, query.dtype)
    if attn_mask is not None:
        if attn_mask.dtype == jnp.bool_:
            scores = jnp.where(attn_mask, scores, jnp.asarray(-jnp.inf, scores.dtype))
        else:
            scores = scores + attn_mask
    if is_causal:
        # with an attn_mask too, torch's CPU kernels apply both (its Python reference
        # refuses the combination; the CPU math and flash paths mask with both)
        causal = jnp.asarray(np.tril(np.ones((L, S), bool)))
        scores = jnp.where(causal, scores, jnp.asarray(-jnp.inf, scores.dtype))
    dead = jnp.all(scores == -jnp.inf, axis=-1, keepdims=True)
    weights = torch_softmax(jnp.where(dead, jnp.zeros((), scores.dtype), scores), -1)
    weights = jnp.where(dead, jnp.zeros((), weights.dtype), weights)
    return jnp.matmul(weights, value)


# --------------------------------------------------------------------------------- misc

@_register("pixel_shuffle", "torch.pixel_shuffle")
def pixel_shuffle(input, upscale_factor):
    """(*, C·r², H, W) → (*, C, H·r, W·r), torch's channel order (c, i, j)."""
    r = upscale_factor
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise ValueError(f"pixel_shuffle: the channel axis ({c}) must be divisible by "
                         f"upscale_factor² ({r * r})")
    k = len(lead)
    y = input.reshape(*lead, c // (r * r), r, r, h, w)
    y = y.transpose(*range(k), k, k + 3, k + 1, k + 4, k + 2)  # (*, C, H, r, W, r)
    return y.reshape(*lead, c // (r * r), h * r, w * r)


@_register("pixel_unshuffle", "torch.pixel_unshuffle")
def pixel_unshuffle(input, downscale_factor):
    """(*, C, H·r, W·r) → (*, C·r², H, W), the inverse of :func:`pixel_shuffle`."""
    r = downscale_factor
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise ValueError(f"pixel_unshuffle: the spatial sizes ({h}, {w}) must be divisible by "
                         f"downscale_factor ({r})")
    k = len(lead)
    y = input.reshape(*lead, c, h // r, r, w // r, r)
    y = y.transpose(*range(k), k, k + 2, k + 4, k + 1, k + 3)  # (*, C, r, r, H, W)
    return y.reshape(*lead, c * r * r, h // r, w // r)


def _unfold4d(x, kernel_size, dilation, padding, stride):
    """(N, C, H, W) → (N, C·kh·kw, L): each block's values, channel-major then tap."""
    k = ntuple(kernel_size, 2, "kernel_size", minimum=1, layer="unfold")
    d = ntuple(dilation, 2, "dilation", minimum=1, layer="unfold")
    p = ntuple(padding, 2, "padding", minimum=0, layer="unfold")
    s = ntuple(stride, 2, "stride", minimum=1, layer="unfold")
    xp = jnp.pad(x, [(0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])])
    outs = [(xp.shape[2 + i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2)]
    if min(outs) <= 0:
        raise ValueError(f"unfold: input of spatial size {tuple(x.shape[2:])} is too small "
                         f"for kernel_size={k}, dilation={d}, padding={p}")
    taps = [xp[:, :, i * d[0]:i * d[0] + s[0] * (outs[0] - 1) + 1:s[0],
               j * d[1]:j * d[1] + s[1] * (outs[1] - 1) + 1:s[1]]
            for i in range(k[0]) for j in range(k[1])]
    y = jnp.stack(taps, axis=2)  # (N, C, kh·kw, oh, ow)
    return y.reshape(x.shape[0], -1, outs[0] * outs[1])


@_register("unfold")
def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """im2col of (N, C, H, W) (or unbatched (C, H, W)) → (N, C·kh·kw, L)."""
    if input.ndim not in (3, 4):
        raise ValueError(f"unfold: input must be (N, C, H, W) or (C, H, W), got shape "
                         f"{tuple(input.shape)}")
    if input.ndim == 3:
        return _unfold4d(input[None], kernel_size, dilation, padding, stride)[0]
    return _unfold4d(input, kernel_size, dilation, padding, stride)


@_register("fold")
def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """col2im, the transpose of :func:`unfold` (overlapping blocks are summed):
    (N, C·kh·kw, L) or (C·kh·kw, L) → (N, C, *output_size)."""
    unbatched = input.ndim == 2
    x = input[None] if unbatched else input
    k = ntuple(kernel_size, 2, "kernel_size", minimum=1, layer="fold")
    size = ntuple(output_size, 2, "output_size", minimum=1, layer="fold")
    if x.ndim != 3 or x.shape[1] % (k[0] * k[1]):
        raise ValueError(f"fold: input must be (N, C·kh·kw, L) with its axis 1 divisible by "
                         f"kh·kw = {k[0] * k[1]}, got shape {tuple(input.shape)}")
    shape = (x.shape[0], x.shape[1] // (k[0] * k[1]), *size)
    cols = jax.ShapeDtypeStruct(shape, x.dtype)
    (y,) = jax.linear_transpose(
        lambda im: _unfold4d(im, kernel_size, dilation, padding, stride), cols)(x)
    return y[0] if unbatched else y
