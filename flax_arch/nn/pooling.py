"""Pooling with torch's semantics, channels-last.

``MaxPool1d`` / ``MaxPool2d``: Flax's ``nnx.max_pool`` has no dilation, no ``ceil_mode`` and
pads with its own rule; torch pads with −∞, lets the last window start inside the
input or the left padding only (``ceil_mode``), and routes the gradient of a tie to the
*first* maximum in the window. Undilated pools use ``lax.reduce_window``, whose gradient
already picks the first maximum; dilated pools (whose ``reduce_window`` gradient JAX does
not implement) gather the window taps and take the first ``argmax`` explicitly.

``AdaptiveAvgPool1d`` / ``AdaptiveAvgPool2d``: Flax has none. Torch's output bin i over an
input of size L covers ``[⌊i·L/out⌋, ⌈(i+1)·L/out⌉)``; bins overlap when L is not a
multiple of out. Each axis is pooled by a constant (out, L) averaging matrix built from
those bounds, so any input/output size works and the gradient is exact.

Validation (errors name the argument; TypeError for a wrong type, ValueError for a wrong
value), as torch's: sizes are ints (``kernel_size`` / ``dilation`` / ``stride`` ≥ 1,
``padding`` ≥ 0 and at most half of ``kernel_size``), flags are bools; ``x`` has the
layer's rank, and no empty axis but the batch axis N (pooled spatial axes never, channels
only in the adaptive pools). Dtypes: MaxPool1d and the adaptive pools take floating point
only; MaxPool2d also takes integers and returns torch's result in that dtype (padding is
the dtype's minimum where floats pad with −∞); bool is refused everywhere, and a refused
dtype is refused for an empty x too (torch skips its dtype check there). Stricter than torch,
which takes these silently: bools as sizes (``kernel_size=True`` is a 1-tap pool; torch
refuses it here but takes ``(2, True)`` as an adaptive ``output_size``), a non-bool
``return_indices``, and ``output_size`` 0 (torch returns an empty tensor).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax
from flax import nnx

from ._utils import check_bool, check_floating_input, check_input, check_int, in_opmath, ntuple

__all__ = ["MaxPool1d", "MaxPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
           "pool_output_size", "adaptive_bins"]


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


class _MaxPoolNd(nnx.Module):
    _n = 0
    _layout = ""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        name = type(self).__name__
        # torch takes any truthy return_indices; only a bool here
        if check_bool(return_indices, "return_indices", name):
            raise ValueError(f"{name}: return_indices=True is not supported (there is no "
                             f"MaxUnpool here to consume the indices)")
        self.kernel_size, self.stride, self.padding, self.dilation = _check_pool_args(
            name, kernel_size, stride, padding, dilation, self._n)
        self.ceil_mode = check_bool(ceil_mode, "ceil_mode", name)

    def __call__(self, x):
        n, name = self._n, type(self).__name__
        check_input(x, name="x", layer=name, ranks=(n + 1, n + 2), layout=self._layout)
        if not (n == 2 and jnp.issubdtype(x.dtype, jnp.integer)):
            # torch: max_pool2d takes integers, max_pool1d and bool inputs are refused
            check_floating_input(x, name="x", layer=name)
        _check_empty(name, x, self._layout, batch_axis=x.ndim == n + 2, channels_ok=False)
        unbatched = x.ndim == n + 1
        if unbatched:
            x = x[None]
        spatial = x.shape[1:1 + n]
        outs = [pool_output_size(L, k, s, p, d, self.ceil_mode) for L, k, s, p, d in zip(
            spatial, self.kernel_size, self.stride, self.padding, self.dilation)]
        if any(o <= 0 for o in outs):
            raise ValueError(f"{type(self).__name__}: input x of spatial size {spatial} is too "
                             f"small for kernel_size={self.kernel_size}, padding={self.padding}, "
                             f"dilation={self.dilation} (output size {tuple(outs)})")
        # high padding so that exactly `out` windows fit (ceil_mode may need more than `padding`)
        pads = [(p, max((o - 1) * s + d * (k - 1) + 1 - L - p, 0))
                for L, o, k, s, p, d in zip(spatial, outs, self.kernel_size, self.stride,
                                            self.padding, self.dilation)]
        neg = _lowest(x.dtype)  # concrete, or jit finds no max JVP rule
        if all(d == 1 for d in self.dilation):
            y = lax.reduce_window(x, neg, lax.max, (1, *self.kernel_size, 1),
                                  (1, *self.stride, 1), [(0, 0), *pads, (0, 0)])
            y = y[(slice(None), *(slice(0, o) for o in outs))]
        else:
            xp = jnp.pad(x, [(0, 0), *pads, (0, 0)], constant_values=neg)
            taps = []
            for offs in np.ndindex(*self.kernel_size):
                idx = tuple(slice(o * d, o * d + (out - 1) * s + 1, s) for o, d, out, s in
                            zip(offs, self.dilation, outs, self.stride))
                taps.append(xp[(slice(None), *idx)])
            taps = jnp.stack(taps, axis=-1)  # (N, *out, C, prod(k))
            first = jnp.argmax(taps, axis=-1)[..., None]  # ties → first tap, as torch
            y = jnp.take_along_axis(taps, first, axis=-1)[..., 0]
        return y[0] if unbatched else y


class MaxPool1d(_MaxPoolNd):
    """Torch ``nn.MaxPool1d``: x (N, L, C) or (L, C) → (N, L_out, C), channels-last.
    Floating-point x only (torch: "max_pool1d_impl not implemented for 'Long'")."""
    _n = 1
    _layout = "(N, L, C)"


class MaxPool2d(_MaxPoolNd):
    """Torch ``nn.MaxPool2d(kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False)``.

    ``__call__(x)``: x (N, H, W, C) or (H, W, C) → (N, H_out, W_out, C), channels-last, with
    H_out = ⌊(H + 2·padding − dilation·(k−1) − 1 [+ stride − 1 if ceil_mode]) / stride⌋ + 1
    (minus one if that last window would start in the right padding). Integer x is pooled
    in its dtype, as torch does; bool x is refused.

    >>> import jax.numpy as jnp
    >>> MaxPool2d(3, stride=2)(jnp.ones((1, 55, 55, 64))).shape
    (1, 27, 27, 64)
    """
    _n = 2
    _layout = "(N, H, W, C)"


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


class _AdaptiveAvgPoolNd(nnx.Module):
    _n = 0
    _layout = ""

    def __init__(self, output_size):
        self.output_size = self._check_output_size(output_size)

    def _check_output_size(self, output_size):
        """An int ≥ 1 or a tuple / list of n of them; in 2-D an entry may be None (keep
        that axis), as in torch (which refuses a bare None, and None at all in 1-D)."""
        n = self._n
        want = (f"{type(self).__name__}: output_size must be a positive int or a tuple of "
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
