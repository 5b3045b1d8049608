"""Pooling with torch's semantics, channels-last: (N, L, C), (N, H, W, C), (N, D, H, W, C),
or the same without N for torch's unbatched inputs.

``MaxPool1d`` / ``2d`` / ``3d``: Flax's ``nnx.max_pool`` has no dilation, no ``ceil_mode``
and pads with its own rule; torch pads with −∞, lets the last window start inside the
input or the left padding only (``ceil_mode``), and routes the gradient of a tie to the
*first* maximum in the window. Undilated pools use ``lax.reduce_window``, whose gradient
already picks the first maximum; dilated pools (whose ``reduce_window`` gradient JAX does
not implement) gather the window taps and take the first ``argmax`` explicitly. With
``return_indices=True`` (and in the adaptive max pools) the taps of each axis are gathered
and reduced innermost axis first, carrying torch's flat indices (see
``_max_with_indices``): int64, or int32 when ``jax_enable_x64`` is off.

``MaxUnpool1d`` / ``2d`` / ``3d``: a scatter of each value to its index (zeros elsewhere)
whose JVP is a scatter-add, so its gradient is torch's: the output gradient gathered at
every index.

``AvgPool1d`` / ``2d`` / ``3d``: a ``reduce_window`` sum divided by torch's per-window
divisor (``_avg_divisors``: with ``count_include_pad`` the taps inside the padded input —
a ceil_mode window running past the right padding counts only up to it —, else the taps
inside x; or ``divisor_override``).

``AdaptiveAvgPool1d`` / ``2d`` / ``3d``: Flax has none. Torch's output bin i over an
input of size L covers ``[⌊i·L/out⌋, ⌈(i+1)·L/out⌉)``; bins overlap when L is not a
multiple of out. Each axis is pooled by a constant (out, L) averaging matrix built from
those bounds, so any input/output size works and the gradient is exact.
``AdaptiveMaxPool1d`` / ``2d`` / ``3d`` take the maximum over the same bins.

``LPPool1d`` / ``2d`` / ``3d``: torch's composite, op for op, with torch's derivative
formulas as custom JVPs (so zero, NaN and ∞ gradients land where torch's do).

Validation (errors name the argument; TypeError for a wrong type, ValueError for a wrong
value), as torch's: sizes are ints (``kernel_size`` / ``dilation`` / ``stride`` ≥ 1,
``padding`` ≥ 0 and at most half of ``kernel_size``), flags are bools; ``x`` has the
layer's rank, and no empty axis but the batch axis N (pooled spatial axes never, channels
only in the adaptive pools). Dtypes: MaxPool2d/3d (and MaxPool1d with
``return_indices``) also take integers and return torch's result in that dtype (padding
is the dtype's minimum where floats pad with −∞); the other pools take floating point
only (torch also averages integers, truncating); bool is refused everywhere, and a refused
dtype is refused for an empty x too (torch skips its dtype check there). Stricter than torch,
which takes these silently: bools as sizes (``kernel_size=True`` is a 1-tap pool; torch
refuses it here but takes ``(2, True)`` as an adaptive ``output_size``), non-bool flags
(``return_indices=1``), and ``output_size`` 0 (torch returns an empty tensor).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from flax import nnx

from ._utils import (check_bool, check_float, check_floating_input, check_input, check_int,
                     in_opmath, ntuple)

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
           "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
           "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
           "LPPool1d", "LPPool2d", "LPPool3d", "pool_output_size", "adaptive_bins",
           "index_dtype"]


def pool_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int,
                     ceil_mode: bool) -> int:
    """Torch's pooling output length (``pooling_output_shape`` in ATen), for valid
    arguments (checked as torch checks them; errors name the argument)."""
    where = "pool_output_size"
    for name, value, least in (("size", size, 0), ("kernel", kernel, 1), ("stride", stride, 1),
                               ("padding", padding, 0), ("dilation", dilation, 1)):
        check_int(value, name, where, minimum=least)
    check_bool(ceil_mode, "ceil_mode", where)
    _check_half_padding(where, padding, kernel, "kernel")
    eff = dilation * (kernel - 1) + 1
    num = size + 2 * padding - eff + ((stride - 1) if ceil_mode else 0)
    out = num // stride + 1
    # in ceil mode the last window must start inside the input or the left padding
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _check_pool_args(layer, kernel_size, stride, padding, dilation, n):
    """Torch's pooling arguments as n-tuples of ints: kernel_size, stride, dilation ≥ 1,
    padding ≥ 0 and at most half of kernel_size (ATen: ``kW / 2 >= padW``, and the same
    against the effective, dilated kernel, which that implies). ``stride=None`` is
    ``kernel_size``."""
    kernel_size = ntuple(kernel_size, n, "kernel_size", minimum=1, layer=layer)
    stride = (kernel_size if stride is None
              else ntuple(stride, n, "stride", minimum=1, layer=layer))
    padding = ntuple(padding, n, "padding", minimum=0, layer=layer)
    dilation = ntuple(dilation, n, "dilation", minimum=1, layer=layer)
    _check_half_padding(layer, padding, kernel_size, "kernel_size")
    return kernel_size, stride, padding, dilation


def _check_half_padding(where, padding, kernel, kernel_name):
    """ATen's ``kW / 2 >= padW``, per axis (ints, or tuples of them)."""
    pairs = zip(padding, kernel) if isinstance(padding, tuple) else [(padding, kernel)]
    if any(2 * p > k for p, k in pairs):
        raise ValueError(f"{where}: padding ({padding}) must be at most half of "
                         f"{kernel_name} ({kernel}), as in torch")


def _check_empty(layer, x, layout, batch_axis: bool, channels_ok: bool):
    """torch's rule for empty axes: the batch axis N may be empty; the channel axis only
    where ``channels_ok`` (the adaptive pools); a pooled spatial axis never."""
    shape = tuple(x.shape)
    axes = shape[1:] if batch_axis else shape
    if 0 in axes[:-1] or (0 == axes[-1] and not channels_ok):
        what = "spatial" if 0 in axes[:-1] else "channel"
        raise ValueError(f"{layer}: x has an empty {what} axis, shape {shape} (layout "
                         f"{layout}); torch allows an empty batch axis N only"
                         f"{' and an empty channel axis C' if channels_ok else ''}")


def _lowest(dtype):
    """The padding value of a max pool, as torch's: −∞, or an integer dtype's minimum."""
    dtype = np.dtype(dtype)
    return np.array(np.iinfo(dtype).min if dtype.kind in "iu" else -np.inf, dtype)


_LAYOUTS = {1: "(N, L, C)", 2: "(N, H, W, C)", 3: "(N, D, H, W, C)"}


def index_dtype():
    """The dtype of pooling indices: int64 like torch's, or int32 when JAX runs without
    ``jax_enable_x64`` (JAX has no int64 then; the numbers are the same while the input
    plane has fewer than 2**31 positions)."""
    return jax.dtypes.canonicalize_dtype(jnp.int64)


def _batched(x, n):
    """``(x with a batch axis, whether one was added)``: torch's unbatched (C, *S) input is
    (*S, C) here; it is pooled as a batch of one."""
    return (x[None], True) if x.ndim == n + 1 else (x, False)


def _max_pool(x, kernel, stride, padding, dilation, ceil_mode, layer):
    """Torch's max pool of a batched channels-last ``x`` (values only)."""
    spatial = x.shape[1:-1]
    outs = [pool_output_size(L, k, s, p, d, ceil_mode) for L, k, s, p, d in zip(
        spatial, kernel, stride, padding, dilation)]
    if any(o <= 0 for o in outs):
        raise ValueError(f"{layer}: input x of spatial size {spatial} is too small for "
                         f"kernel_size={kernel}, padding={padding}, dilation={dilation} "
                         f"(output size {tuple(outs)})")
    # high padding so that exactly `out` windows fit (ceil_mode may need more than `padding`)
    pads = [(p, max((o - 1) * s + d * (k - 1) + 1 - L - p, 0))
            for L, o, k, s, p, d in zip(spatial, outs, kernel, stride, padding, dilation)]
    neg = _lowest(x.dtype)  # concrete, or jit finds no max JVP rule
    if all(d == 1 for d in dilation):
        y = lax.reduce_window(x, neg, lax.max, (1, *kernel, 1), (1, *stride, 1),
                              [(0, 0), *pads, (0, 0)])
        return y[(slice(None), *(slice(0, o) for o in outs))]
    xp = jnp.pad(x, [(0, 0), *pads, (0, 0)], constant_values=neg)
    taps = []
    for offs in np.ndindex(*kernel):
        idx = tuple(slice(o * d, o * d + (out - 1) * s + 1, s) for o, d, out, s in
                    zip(offs, dilation, outs, stride))
        taps.append(xp[(slice(None), *idx)])
    taps = jnp.stack(taps, axis=-1)  # (N, *out, C, prod(k))
    first = jnp.argmax(taps, axis=-1)[..., None]  # ties → first tap, as torch
    return jnp.take_along_axis(taps, first, axis=-1)[..., 0]


def _window_taps(size, kernel, stride, padding, dilation, out):
    """The input positions of each output window along one axis, (out, kernel), and which
    of them lie inside the input (the others are padding)."""
    pos = (np.arange(out)[:, None] * stride - padding + np.arange(kernel)[None, :] * dilation)
    return pos, (pos >= 0) & (pos < size)


def _bin_taps(size, out):
    """Torch's adaptive bins along one axis as (out, longest bin) positions + validity."""
    bins = adaptive_bins(size, out)
    k = max(b - a for a, b in bins)
    pos = np.array([[a + j for j in range(k)] for a, _ in bins])
    return pos, np.array([[a + j < b for j in range(k)] for a, b in bins])


def _max_with_indices(x, taps):
    """Max over windows with torch's indices, for a batched channels-last ``x``.

    ``taps[a]`` = (positions, valid) of spatial axis a, both (out_a, k_a). Returns the
    maxima and their flat indices into each channel's unpadded spatial plane (C order, as
    torch numbers its (…, D, H, W) plane). Torch scans a window in C order and keeps a
    value that is greater than the kept one, or NaN; the kept index starts at the first
    in-bounds tap. So: ties → the first maximum; NaN → the last NaN; a window whose
    in-bounds values are all −∞ (an integer dtype's minimum) → its first in-bounds tap.
    Reducing the innermost axis first, then the next one out, gives that same pick
    (the first maximum in C order is the first row holding the maximum, then the first
    column in it; likewise the last NaN). Gradients reach only the picked tap, as in torch.
    """
    n = len(taps)
    spatial = x.shape[1:-1]
    lowest = _lowest(x.dtype)
    floating = jnp.issubdtype(x.dtype, jnp.floating)
    plane = np.arange(int(np.prod(spatial))).reshape(spatial)[None, ..., None]
    idx = jnp.broadcast_to(jnp.asarray(plane, index_dtype()), x.shape)
    v = x
    for a in reversed(range(n)):
        axis = 1 + a
        pos, valid = taps[a]
        out, k = pos.shape
        clipped = np.clip(pos, 0, spatial[a] - 1)
        tv = jnp.take(v, clipped, axis=axis)  # (…, out, k, …)
        ti = jnp.take(idx, clipped, axis=axis)
        shape = [1] * tv.ndim
        shape[axis], shape[axis + 1] = out, k
        tv = jnp.where(valid.reshape(shape), tv, lowest)
        choice = jnp.argmax(tv, axis=axis + 1, keepdims=True)  # first maximum
        top = jnp.take_along_axis(tv, choice, axis=axis + 1)
        # all in-bounds values at the lowest value: torch keeps the first in-bounds tap
        first_shape = list(shape)
        first_shape[axis + 1] = 1
        first_valid = np.argmax(valid, axis=1).reshape(first_shape)
        choice = jnp.where(top == lowest, first_valid, choice)
        if floating:
            isnan = jnp.isnan(tv)
            last_nan = k - 1 - jnp.argmax(jnp.flip(isnan, axis=axis + 1), axis=axis + 1,
                                          keepdims=True)
            choice = jnp.where(jnp.any(isnan, axis=axis + 1, keepdims=True), last_nan,
                               choice)
        v = jnp.take_along_axis(tv, choice, axis=axis + 1).squeeze(axis + 1)
        idx = jnp.take_along_axis(ti, choice, axis=axis + 1).squeeze(axis + 1)
    return v, idx


class _MaxPoolNd(nnx.Module):
    _n = 0
    _layout = ""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False, *,
                 rngs: nnx.Rngs | None = None):
        name = type(self).__name__
        # torch takes any truthy return_indices; only a bool here
        self.return_indices = check_bool(return_indices, "return_indices", name)
        self.kernel_size, self.stride, self.padding, self.dilation = _check_pool_args(
            name, kernel_size, stride, padding, dilation, self._n)
        self.ceil_mode = check_bool(ceil_mode, "ceil_mode", name)

    def __call__(self, x):
        n, name = self._n, type(self).__name__
        check_input(x, name="x", layer=name, ranks=(n + 1, n + 2), layout=self._layout)
        if not ((n > 1 or self.return_indices) and jnp.issubdtype(x.dtype, jnp.integer)):
            # torch: max_pool2d/3d take integers, max_pool1d only with return_indices;
            # bool inputs are refused everywhere
            check_floating_input(x, name="x", layer=name)
        _check_empty(name, x, self._layout, batch_axis=x.ndim == n + 2, channels_ok=False)
        x, unbatched = _batched(x, n)
        if not self.return_indices:
            y = _max_pool(x, self.kernel_size, self.stride, self.padding, self.dilation,
                          self.ceil_mode, name)
            return y[0] if unbatched else y
        spatial = x.shape[1:-1]
        outs = [pool_output_size(L, k, s, p, d, self.ceil_mode) for L, k, s, p, d in zip(
            spatial, self.kernel_size, self.stride, self.padding, self.dilation)]
        if any(o <= 0 for o in outs):
            raise ValueError(f"{name}: input x of spatial size {spatial} is too small for "
                             f"kernel_size={self.kernel_size}, padding={self.padding}, "
                             f"dilation={self.dilation} (output size {tuple(outs)})")
        taps = [_window_taps(*args) for args in zip(spatial, self.kernel_size, self.stride,
                                                    self.padding, self.dilation, outs)]
        y, idx = _max_with_indices(x, taps)
        return (y[0], idx[0]) if unbatched else (y, idx)


_MAXPOOL_DOC = """Torch ``nn.MaxPool{n}d(kernel_size, stride=None, padding=0, dilation=1,
    return_indices=False, ceil_mode=False)``, channels-last.

    ``__call__(x)``: x {layout} or its unbatched form without N → the pooled maxima, same
    layout, each spatial size ⌊(L + 2·padding − dilation·(k−1) − 1 [+ stride − 1 if
    ceil_mode]) / stride⌋ + 1 (minus one if that last window would start in the right
    padding). With ``return_indices=True`` it returns ``(out, indices)``: ``indices`` has
    out's shape and holds, as torch's, the flat C-order index of each maximum in its
    channel's unpadded {plane} plane (the same numbers as torch's, channels-last), ties
    going to the first maximum and NaN to the last NaN of the window; dtype int64 (int32
    when ``jax_enable_x64`` is off). Feed them to ``MaxUnpool{n}d``.
    """


class MaxPool1d(_MaxPoolNd):
    """Torch ``nn.MaxPool1d``: x (N, L, C) or (L, C) → (N, L_out, C), channels-last; with
    ``return_indices=True`` → (out, indices), indices into L as torch's (see
    :class:`MaxPool3d`). Floating-point x only (torch: "max_pool1d_impl not implemented
    for 'Long'"), but integer x with ``return_indices=True``, which torch takes too.
    """
    _n = 1
    _layout = "(N, L, C)"


class MaxPool2d(_MaxPoolNd):
    """Torch ``nn.MaxPool2d(kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False)``.

    ``__call__(x)``: x (N, H, W, C) or (H, W, C) → (N, H_out, W_out, C), channels-last, with
    H_out = ⌊(H + 2·padding − dilation·(k−1) − 1 [+ stride − 1 if ceil_mode]) / stride⌋ + 1
    (minus one if that last window would start in the right padding). Integer x is pooled
    in its dtype, as torch does; bool x is refused. ``return_indices=True``: see
    :class:`MaxPool3d`.

    >>> import jax.numpy as jnp
    >>> MaxPool2d(3, stride=2)(jnp.ones((1, 55, 55, 64))).shape
    (1, 27, 27, 64)
    """
    _n = 2
    _layout = "(N, H, W, C)"


class MaxPool3d(_MaxPoolNd):
    __doc__ = _MAXPOOL_DOC.format(n=3, layout="(N, D, H, W, C)", plane="(D, H, W)") + """
    Integer x is pooled in its dtype, as torch does; bool x is refused.

    >>> import jax.numpy as jnp
    >>> y, i = MaxPool3d(2, return_indices=True)(jnp.arange(8.0).reshape(1, 2, 2, 2, 1))
    >>> float(y[0, 0, 0, 0, 0]), int(i[0, 0, 0, 0, 0])
    (7.0, 7)
    """
    _n = 3
    _layout = "(N, D, H, W, C)"


# ------------------------------------------------------------------------------ AvgPool

def _avg_divisors(size, kernel, stride, padding, out, count_include_pad):
    """Torch's divisor of each output window along one axis (ATen's CPU/CUDA kernels):
    with ``count_include_pad`` the window's taps inside [−padding, size + padding) — so a
    ceil_mode window running past the right padding counts only up to it —, else its taps
    inside the input. The n-d divisor is the product over axes."""
    start = np.arange(out) * stride - padding
    end = np.minimum(start + kernel, size + padding)
    if count_include_pad:
        return end - start
    return np.maximum(np.minimum(end, size) - np.maximum(start, 0), 0)


def _avg_pool(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override,
              layer):
    """Torch's average pool of a batched channels-last floating ``x``."""
    spatial = x.shape[1:-1]
    if len(spatial) == 3 and any(L < k for L, k in zip(spatial, kernel)):
        # ATen's avg_pool3d (and so lp_pool3d), unlike its 1-d / 2-d pools, refuses an
        # input smaller than the kernel even where padding or ceil_mode would fit a window
        raise ValueError(f"{layer}: input x of spatial size {spatial} is smaller than "
                         f"kernel_size={kernel}; torch's 3-d average pool requires each "
                         f"spatial size ≥ the kernel's, whatever the padding")
    outs = [pool_output_size(L, k, s, p, 1, ceil_mode) for L, k, s, p in zip(
        spatial, kernel, stride, padding)]
    if any(o <= 0 for o in outs):
        raise ValueError(f"{layer}: input x of spatial size {spatial} is too small for "
                         f"kernel_size={kernel}, padding={padding} (output size "
                         f"{tuple(outs)})")
    pads = [(p, max((o - 1) * s + k - L - p, 0))
            for L, o, k, s, p in zip(spatial, outs, kernel, stride, padding)]
    total = lax.reduce_window(x, np.array(0, x.dtype), lax.add, (1, *kernel, 1),
                              (1, *stride, 1), [(0, 0), *pads, (0, 0)])
    total = total[(slice(None), *(slice(0, o) for o in outs))]
    if divisor_override is not None:
        return total / np.array(divisor_override, x.dtype)
    div = np.ones((), np.int64)
    for L, k, s, p, o in zip(spatial, kernel, stride, padding, outs):
        div = np.multiply.outer(div, _avg_divisors(L, k, s, p, o, count_include_pad))
    # a window with no input tap (unreachable for valid arguments): torch writes 0
    div = np.where(div == 0, 1, div)
    return total / div[..., None].astype(x.dtype)


class _AvgPoolNd(nnx.Module):
    _n = 0
    _layout = ""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None, *,
                 rngs: nnx.Rngs | None = None):
        name = type(self).__name__
        self.kernel_size, self.stride, self.padding, _ = _check_pool_args(
            name, kernel_size, stride, padding, 1, self._n)
        self.ceil_mode = check_bool(ceil_mode, "ceil_mode", name)
        self.count_include_pad = check_bool(count_include_pad, "count_include_pad", name)
        divisor_override = check_int(divisor_override, "divisor_override", name,
                                     optional=True)
        if divisor_override == 0:  # torch: "divisor must be not zero" (a negative one passes)
            raise ValueError(f"{name}: divisor_override must be nonzero or None, got 0")
        self.divisor_override = divisor_override

    @in_opmath
    def __call__(self, x):
        n, name = self._n, type(self).__name__
        check_input(x, name="x", layer=name, ranks=(n + 1, n + 2), layout=self._layout)
        # torch averages integers too, truncating; refused here (a silently floored mean)
        check_floating_input(x, name="x", layer=name)
        _check_empty(name, x, self._layout, batch_axis=x.ndim == n + 2, channels_ok=False)
        x, unbatched = _batched(x, n)
        y = _avg_pool(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                      self.count_include_pad, self.divisor_override, name)
        return y[0] if unbatched else y


_AVGPOOL_DOC = """Torch ``nn.AvgPool{n}d({args})``, channels-last.

    ``__call__(x)``: x {layout} or its unbatched form without N → the window means, same
    layout, each spatial size ⌊(L + 2·padding − k [+ stride − 1 if ceil_mode]) / stride⌋ + 1
    (minus one if that last window would start in the right padding). The zero padding
    counts in the divisor with ``count_include_pad`` — but, as in torch, a ceil_mode window
    that runs past the right padding divides only by its taps up to the padding's end;
    without it, by its taps inside x.{override} Floating-point x only (torch also averages
    integers, truncating: refused here).
    """


class AvgPool1d(_AvgPoolNd):
    __doc__ = _AVGPOOL_DOC.format(
        n=1, layout="(N, L, C)", override="",
        args="kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True") + """
    >>> import jax.numpy as jnp
    >>> AvgPool1d(2)(jnp.arange(4.0).reshape(4, 1))[:, 0].tolist()
    [0.5, 2.5]
    """
    _n = 1
    _layout = "(N, L, C)"

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, *, rngs: nnx.Rngs | None = None):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


_OVERRIDE = (" A ``divisor_override`` (a nonzero int) replaces every divisor.")
_AVG_ARGS = ("kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,"
             " divisor_override=None")


class AvgPool2d(_AvgPoolNd):
    __doc__ = _AVGPOOL_DOC.format(n=2, layout="(N, H, W, C)", override=_OVERRIDE,
                                  args=_AVG_ARGS) + """
    >>> import jax.numpy as jnp
    >>> AvgPool2d(3, stride=2, padding=1)(jnp.ones((1, 8, 8, 4))).shape
    (1, 4, 4, 4)
    """
    _n = 2
    _layout = "(N, H, W, C)"


class AvgPool3d(_AvgPoolNd):
    __doc__ = _AVGPOOL_DOC.format(n=3, layout="(N, D, H, W, C)", override=_OVERRIDE,
                                  args=_AVG_ARGS)
    _n = 3
    _layout = "(N, D, H, W, C)"


# ---------------------------------------------------------------------------- MaxUnpool

def _unpool_scatter_values(x, idx, size):
    """x, idx (N, P_in, C) → (N, size, C): each value written at its index along axis 1
    (indices already mapped out of range where invalid, and then dropped). Where indices
    repeat, the last input position wins (torch: "one of the different values wins")."""
    nb, p_in, c = x.shape
    rows = np.arange(nb)[:, None, None]
    cols = np.arange(c)[None, None, :]
    order = jnp.broadcast_to(jnp.arange(p_in, dtype=jnp.int32)[None, :, None], x.shape)
    winner = jnp.full((nb, size, c), -1, jnp.int32).at[rows, idx, cols].max(
        order, mode="drop")
    got = jnp.take_along_axis(x, jnp.maximum(winner, 0), axis=1)
    return jnp.where(winner >= 0, got, jnp.zeros((), x.dtype))


_unpool_scatter = jax.custom_jvp(_unpool_scatter_values, nondiff_argnums=(2,))


@_unpool_scatter.defjvp
def _unpool_scatter_jvp(size, primals, tangents):
    # torch's backward of max_unpool gathers the output gradient at every index, repeats
    # included: the transpose of this scatter-add tangent
    x, idx = primals
    nb, _, c = x.shape
    rows = np.arange(nb)[:, None, None]
    cols = np.arange(c)[None, None, :]
    t = jnp.zeros((nb, size, c), x.dtype).at[rows, idx, cols].add(tangents[0], mode="drop")
    return _unpool_scatter(x, idx, size), t


class _MaxUnpoolNd(nnx.Module):
    _n = 0
    _layout = ""

    def __init__(self, kernel_size, stride=None, padding=0, *, rngs: nnx.Rngs | None = None):
        name, n = type(self).__name__, self._n
        self.kernel_size = ntuple(kernel_size, n, "kernel_size", minimum=1, layer=name)
        self.stride = (self.kernel_size if stride is None
                       else ntuple(stride, n, "stride", minimum=1, layer=name))
        self.padding = ntuple(padding, n, "padding", minimum=0, layer=name)

    def _output_size(self, in_spatial, output_size):
        """Torch's ``_unpool_output_size``: default (L−1)·stride + k − 2·padding; a given
        size (n spatial entries, or the n + 2 of a batched channels-last shape
        (N, *spatial, C) — torch's n + 2 form is channels-first) must lie strictly within
        stride of it."""
        name, n = type(self).__name__, self._n
        default = [(L - 1) * s + k - 2 * p for L, s, k, p in zip(
            in_spatial, self.stride, self.kernel_size, self.padding)]
        if output_size is None:
            sizes = default
        else:
            if not isinstance(output_size, (tuple, list)) or len(output_size) not in (n, n + 2):
                raise ValueError(f"{name}: output_size must be a sequence of {n} spatial sizes "
                                 f"or a channels-last shape of {n + 2} (N, *spatial, C), "
                                 f"got {output_size!r}")
            sizes = list(output_size[1:1 + n] if len(output_size) == n + 2 else output_size)
            for d, (o, de, s) in enumerate(zip(sizes, default, self.stride)):
                check_int(o, "output_size", name)
                if not de - s < o < de + s:
                    raise ValueError(f"{name}: invalid output_size {tuple(output_size)} "
                                     f"(spatial axis {d} must be between {de - s} and "
                                     f"{de + s}, exclusive)")
        for d, o in enumerate(sizes):
            if o < 0:
                raise ValueError(f"{name}: output_size must be non-negative, got {o} for "
                                 f"spatial axis {d} (input too small for kernel_size="
                                 f"{self.kernel_size}, padding={self.padding})")
        return tuple(int(o) for o in sizes)

    def __call__(self, x, indices, output_size=None):
        n, name = self._n, type(self).__name__
        check_input(x, name="x", layer=name, ranks=(n + 1, n + 2), layout=self._layout)
        # torch: "max_unpool2d" not implemented for 'Long'
        check_floating_input(x, name="x", layer=name)
        if getattr(indices, "shape", None) is None or not jnp.issubdtype(
                indices.dtype, jnp.integer):
            raise TypeError(f"{name}: indices must be an integer array (a MaxPool{n}d's "
                            f"return_indices output), got "
                            f"{getattr(indices, 'dtype', type(indices).__name__)}")
        if tuple(indices.shape) != tuple(x.shape):
            raise ValueError(f"{name}: indices must have x's shape {tuple(x.shape)}, got "
                             f"{tuple(indices.shape)}")
        if 0 in x.shape[1 if x.ndim == n + 2 else 0:]:
            raise ValueError(f"{name}: x has an empty spatial or channel axis, shape "
                             f"{tuple(x.shape)} (layout {self._layout}); torch allows an "
                             f"empty batch axis N only")
        x, unbatched = _batched(x, n)
        indices = indices[None] if unbatched else indices
        out = self._output_size(x.shape[1:-1], output_size)
        size = int(np.prod(out))
        if not isinstance(indices, jax.core.Tracer):
            bad = (np.asarray(indices) < 0) | (np.asarray(indices) >= size)
            if bad.any():  # torch raises "Found an invalid max index"
                raise ValueError(f"{name}: indices must lie in [0, {size}) for output "
                                 f"spatial size {out}, found {int(np.asarray(indices)[bad][0])}")
        nb, c = x.shape[0], x.shape[-1]
        flat = indices.reshape(nb, -1, c)
        # under jit the indices cannot be checked: invalid ones (negative included) drop
        flat = jnp.where((flat >= 0) & (flat < size), flat, size)
        y = _unpool_scatter(x.reshape(nb, -1, c), flat, size).reshape(nb, *out, c)
        return y[0] if unbatched else y


_UNPOOL_DOC = """Torch ``nn.MaxUnpool{n}d(kernel_size, stride=None, padding=0)``, channels-last:
    the partial inverse of ``MaxPool{n}d(..., return_indices=True)``.

    ``__call__(x, indices, output_size=None)``: x {layout} (or unbatched, without N) and
    ``indices`` of x's shape, as MaxPool{n}d returned them → zeros of the output spatial size
    with each value of x at its index of its channel's flat {plane} plane, same layout.
    Output size (L − 1)·stride + kernel_size − 2·padding per axis, or ``output_size``: the
    {n} spatial sizes, or a full channels-last shape (N, *spatial, C) such as the pooled
    input's ``x.shape`` (torch's full form is channels-first (N, C, *spatial)); each within
    stride of the default, as torch. Where indices repeat with different values, torch
    lets an unspecified one win, here the last; gradients, as torch's, gather the output
    gradient at every index. An index out of range raises (torch: "invalid max index");
    under ``jit`` it cannot be checked and is dropped. Floating-point x only, as torch.
    """


class MaxUnpool1d(_MaxUnpoolNd):
    __doc__ = _UNPOOL_DOC.format(n=1, layout="(N, L, C)", plane="L")
    _n = 1
    _layout = "(N, L, C)"


class MaxUnpool2d(_MaxUnpoolNd):
    __doc__ = _UNPOOL_DOC.format(n=2, layout="(N, H, W, C)", plane="(H, W)") + """
    >>> import jax.numpy as jnp
    >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    >>> y, i = MaxPool2d(2, return_indices=True)(x)
    >>> MaxUnpool2d(2)(y, i)[0, :, :, 0].tolist()[1]
    [0.0, 5.0, 0.0, 7.0]
    """
    _n = 2
    _layout = "(N, H, W, C)"


class MaxUnpool3d(_MaxUnpoolNd):
    __doc__ = _UNPOOL_DOC.format(n=3, layout="(N, D, H, W, C)", plane="(D, H, W)")
    _n = 3
    _layout = "(N, D, H, W, C)"


def adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """Torch's adaptive-pooling bins: ``[⌊i·size/out⌋, ⌈(i+1)·size/out⌉)`` for i < out
    (``size`` and ``out`` ints ≥ 1)."""
    size = check_int(size, "size", "adaptive_bins", minimum=1)
    out = check_int(out, "out", "adaptive_bins", minimum=1)
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def _avg_matrix(size: int, out: int, dtype) -> np.ndarray:
    m = np.zeros((out, size), dtype=np.float64)
    for i, (a, b) in enumerate(adaptive_bins(size, out)):
        m[i, a:b] = 1.0 / (b - a)
    return m.astype(dtype)


def _adaptive_output_size(layer, n, output_size):
    """An int ≥ 1 or a tuple / list of n of them; in 2-D and 3-D an entry may be None (keep
    that axis), as in torch (which refuses a bare None, and None at all in 1-D)."""
    want = (f"{layer}: output_size must be a positive int or a tuple of "
            f"{n} positive int{'s / None' if n > 1 else ''}, got {output_size!r}")
    if isinstance(output_size, (tuple, list)):
        sizes = tuple(output_size)
        if len(sizes) != n:
            raise ValueError(want)
    elif output_size is None:
        raise TypeError(want)
    else:
        sizes = (output_size,) * n
    for o in sizes:
        if o is not None or n == 1:
            try:
                check_int(o, "output_size", minimum=1)
            except (TypeError, ValueError) as e:
                raise type(e)(want) from None
    return tuple(None if o is None else int(o) for o in sizes)


class _AdaptiveAvgPoolNd(nnx.Module):
    _n = 0
    _layout = ""

    def __init__(self, output_size, *, rngs: nnx.Rngs | None = None):
        self.output_size = self._check_output_size(output_size)

    def _check_output_size(self, output_size):
        return _adaptive_output_size(type(self).__name__, self._n, output_size)

    @in_opmath
    def __call__(self, x):
        n, name = self._n, type(self).__name__
        check_input(x, name="x", layer=name, ranks=(n + 1, n + 2), layout=self._layout)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            # torch raises too; an average cast to an integer dtype would be silently wrong
            raise TypeError(f"{name}: x must be floating point, got dtype {x.dtype}")
        _check_empty(name, x, self._layout, batch_axis=x.ndim == n + 2, channels_ok=True)
        first = x.ndim - n - 1  # first spatial axis
        y = x
        for i, o in enumerate(self.output_size):
            axis = first + i
            size = x.shape[axis]
            if o is None or o == size:
                continue
            m = jnp.asarray(_avg_matrix(size, o, np.dtype(x.dtype)))
            # contract `axis` with the (out, size) matrix, keep the axis order
            y = jnp.moveaxis(jnp.tensordot(y, m, axes=([axis], [1]),
                                           precision=lax.Precision.HIGHEST), -1, axis)
        return y


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """Torch ``nn.AdaptiveAvgPool1d``: x (N, L, C) or (L, C) → (N, out, C), channels-last."""
    _n = 1
    _layout = "(N, L, C)"


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Torch ``nn.AdaptiveAvgPool2d(output_size)`` with torch's (possibly overlapping) bins.

    ``__call__(x)``: x (N, H, W, C) or (H, W, C) → (N, oh, ow, C), channels-last.
    ``output_size`` is an int or (oh, ow); ``None`` keeps that input size.

    >>> import jax.numpy as jnp
    >>> AdaptiveAvgPool2d((6, 6))(jnp.ones((2, 13, 13, 256))).shape
    (2, 6, 6, 256)
    """
    _n = 2
    _layout = "(N, H, W, C)"


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """Torch ``nn.AdaptiveAvgPool3d(output_size)``: x (N, D, H, W, C) or (D, H, W, C) →
    (N, od, oh, ow, C), channels-last; ``None`` entries keep that input size."""
    _n = 3
    _layout = "(N, D, H, W, C)"


# ---------------------------------------------------------------------- AdaptiveMaxPool

class _AdaptiveMaxPoolNd(nnx.Module):
    _n = 0
    _layout = ""

    def __init__(self, output_size, return_indices: bool = False, *,
                 rngs: nnx.Rngs | None = None):
        name = type(self).__name__
        self.output_size = _adaptive_output_size(name, self._n, output_size)
        self.return_indices = check_bool(return_indices, "return_indices", name)

    def __call__(self, x):
        n, name = self._n, type(self).__name__
        check_input(x, name="x", layer=name, ranks=(n + 1, n + 2), layout=self._layout)
        # torch: "adaptive_max_pool2d" not implemented for 'Long'
        check_floating_input(x, name="x", layer=name)
        _check_empty(name, x, self._layout, batch_axis=x.ndim == n + 2, channels_ok=True)
        x, unbatched = _batched(x, n)
        spatial = x.shape[1:-1]
        taps = [_bin_taps(L, L if o is None else o)
                for L, o in zip(spatial, self.output_size)]
        y, idx = _max_with_indices(x, taps)
        if unbatched:
            y, idx = y[0], idx[0]
        return (y, idx) if self.return_indices else y


_ADAPTIVE_MAX_DOC = """Torch ``nn.AdaptiveMaxPool{n}d(output_size, return_indices=False)``,
    channels-last, over torch's (possibly overlapping) adaptive bins
    ``[⌊i·L/out⌋, ⌈(i+1)·L/out⌉)``.

    ``__call__(x)``: x {layout} or its unbatched form without N → the bin maxima, same
    layout, spatial sizes ``output_size`` ({none}). With ``return_indices=True``:
    ``(out, indices)``, indices as torch's: flat C-order positions in each channel's
    {plane} plane, ties → first maximum, NaN → last NaN; int64 (int32 without
    ``jax_enable_x64``). Floating-point x only, as torch.
    """


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    __doc__ = _ADAPTIVE_MAX_DOC.format(n=1, layout="(N, L, C)", plane="L",
                                       none="an int, or a 1-tuple")
    _n = 1
    _layout = "(N, L, C)"


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    __doc__ = _ADAPTIVE_MAX_DOC.format(n=2, layout="(N, H, W, C)", plane="(H, W)",
                                       none="None entries keep that input size") + """
    >>> import jax.numpy as jnp
    >>> AdaptiveMaxPool2d((2, None))(jnp.ones((1, 5, 6, 3))).shape
    (1, 2, 6, 3)
    """
    _n = 2
    _layout = "(N, H, W, C)"


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    __doc__ = _ADAPTIVE_MAX_DOC.format(n=3, layout="(N, D, H, W, C)", plane="(D, H, W)",
                                       none="None entries keep that input size")
    _n = 3
    _layout = "(N, D, H, W, C)"


# ------------------------------------------------------------------------------- LPPool
# torch's lp_poolNd is a composite: avg_pool(x.pow(p)), then
# (sign(out)·relu(|out|)).mul(numel(kernel)).pow(1/p). Its gradient is the chain of those
# ops' derivative formulas, whose order decides where 0·∞ makes NaN (a window whose p-th
# power sum is 0, a negative x with a fractional p). The pieces below carry torch's
# formulas as custom JVPs, so values, NaN and ∞ land where torch's do.

def _torch_sign(x):
    """torch.sign / torch.sgn of a real tensor: NaN → 0 (jnp.sign gives NaN)."""
    return jnp.where(jnp.isnan(x), jnp.zeros((), x.dtype), jnp.sign(x))


def _pow_value(x, p: float):
    """``x ** p`` computed as torch's ``pow(Tensor, Scalar)`` does for these exponents."""
    if p == 0:
        return jnp.ones_like(x)
    if p == 1:
        return x
    if p == 2:
        return x * x
    if p == 3:
        return x * x * x
    if p == 0.5:
        return jnp.sqrt(x)
    if p == -0.5:
        return lax.rsqrt(x)
    if p == -1:
        return 1 / x
    if p == -2:
        return 1 / (x * x)
    return jnp.power(x, np.array(p, x.dtype))


def _torch_pow_impl(x, p):
    return _pow_value(x, p)


_torch_pow = jax.custom_jvp(_torch_pow_impl, nondiff_argnums=(1,))


@_torch_pow.defjvp
def _torch_pow_jvp(p, primals, tangents):
    (x,), (t,) = primals, tangents
    y = _pow_value(x, p)
    if p == 0:  # torch: pow_backward is zeros for a zero exponent
        return y, jnp.zeros_like(t)
    return y, t * (np.array(p, x.dtype) * _pow_value(x, p - 1))


def _lp_tail_impl(out, numel, p):
    k = np.array(numel, out.dtype)
    return _pow_value(_torch_sign(out) * jnp.maximum(jnp.abs(out), 0) * k, 1.0 / p)


_lp_tail = jax.custom_jvp(_lp_tail_impl, nondiff_argnums=(1, 2))


@_lp_tail.defjvp
def _lp_tail_jvp(numel, p, primals, tangents):
    (out,), (t,) = primals, tangents
    dt = out.dtype
    sign = _torch_sign(out)
    relu = jnp.maximum(jnp.abs(out), 0)  # relu(NaN) is NaN, as torch's
    k = np.array(numel, dt)
    base = sign * relu * k
    y = _pow_value(base, 1.0 / p)
    # reverse order of torch's backward: abs (·sgn) → relu (zero where its result ≤ 0, a
    # select, so NaN/∞ there vanish) → ·sign (the sign factor's own gradient is zero)
    # → ·numel → pow (·(1/p)·base^(1/p − 1))
    tan = jnp.where(relu <= 0, jnp.zeros((), dt), t * sign) * sign * k
    tan = tan * (np.array(1.0 / p, dt) * _pow_value(base, 1.0 / p - 1))
    return y, tan


_torch_abs = jax.custom_jvp(jnp.abs)
# torch: abs backward is grad·sgn(x), zero at 0 (JAX's abs passes the tangent at 0)
_torch_abs.defjvps(lambda t, y, x: t * _torch_sign(x))


class _LPPoolNd(nnx.Module):
    _n = 0
    _layout = ""

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode: bool = False, *,
                 rngs: nnx.Rngs | None = None):
        name = type(self).__name__
        self.norm_type = check_float(norm_type, "norm_type", name)
        if self.norm_type == 0:  # torch divides by it (ZeroDivisionError)
            raise ValueError(f"{name}: norm_type must be nonzero, got {norm_type!r}")
        self.kernel_size, self.stride, _, _ = _check_pool_args(
            name, kernel_size, stride, 0, 1, self._n)
        self.ceil_mode = check_bool(ceil_mode, "ceil_mode", name)

    @in_opmath
    def __call__(self, x):
        n, name = self._n, type(self).__name__
        check_input(x, name="x", layer=name, ranks=(n + 1, n + 2), layout=self._layout)
        check_floating_input(x, name="x", layer=name)
        _check_empty(name, x, self._layout, batch_axis=x.ndim == n + 2, channels_ok=False)
        x, unbatched = _batched(x, n)
        p, k, s = self.norm_type, self.kernel_size, self.stride
        zeros, ones = (0,) * n, (1,) * n
        if p == np.inf:  # torch: max_pool(|x|)
            y = _max_pool(_torch_abs(x), k, s, zeros, ones, self.ceil_mode, name)
        elif p == -np.inf:  # torch: −max_pool(−|x|)
            y = -_max_pool(-_torch_abs(x), k, s, zeros, ones, self.ceil_mode, name)
        else:
            # count_include_pad with zero padding: a ceil_mode window hanging past x is
            # averaged over its taps inside x, then scaled by the whole kernel's size
            out = _avg_pool(_torch_pow(x, p), k, s, zeros, self.ceil_mode, True, None, name)
            y = _lp_tail(out, int(np.prod(k)), p)
        return y[0] if unbatched else y


_LPPOOL_DOC = """Torch ``nn.LPPool{n}d(norm_type, kernel_size, stride=None, ceil_mode=False)``,
    channels-last: the power-average pool (Σ_window x^p)^(1/p), computed as torch does,
    ``(sign(a)·relu(|a|)·numel(kernel))^(1/p)`` of ``a`` = the average pool of ``x^p``
    (no padding; a ceil_mode window hanging past x averages its taps inside x, then is
    scaled by the whole kernel size). ``norm_type`` ±∞ is torch's max pool of |x| (min
    for −∞). Gradients follow torch's formulas step by step, so they are zero, NaN or ∞
    where torch's are (zero for a window whose power sum is 0: relu's backward selects it
    away; NaN for a negative x with a fractional p).

    ``__call__(x)``: x {layout} or its unbatched form without N → the pooled norms, same
    layout, each spatial size ⌊(L − k [+ stride − 1 if ceil_mode]) / stride⌋ + 1.
    Floating-point x only.
    """


class LPPool1d(_LPPoolNd):
    __doc__ = _LPPOOL_DOC.format(n=1, layout="(N, L, C)") + """
    >>> import jax.numpy as jnp
    >>> LPPool1d(2, 2)(jnp.array([[3.0], [4.0]])).tolist()
    [[5.0]]
    """
    _n = 1
    _layout = "(N, L, C)"


class LPPool2d(_LPPoolNd):
    __doc__ = _LPPOOL_DOC.format(n=2, layout="(N, H, W, C)")
    _n = 2
    _layout = "(N, H, W, C)"


class LPPool3d(_LPPoolNd):
    __doc__ = _LPPOOL_DOC.format(n=3, layout="(N, D, H, W, C)")
    _n = 3
    _layout = "(N, D, H, W, C)"
