"""Padding layers with torch's semantics, channels-last.

``ConstantPad{1,2,3}d`` / ``ZeroPad{1,2,3}d`` / ``ReflectionPad{1,2,3}d`` /
``ReplicationPad{1,2,3}d`` / ``CircularPad{1,2,3}d`` mirror torch's ``nn`` classes of the
same names (``F.pad`` with mode 'constant', 'reflect', 'replicate', 'circular').

Where torch and Flax conventions meet:

* ``padding`` is torch's argument, unchanged: an int (every side) or a tuple of 2·n ints
  ordered LAST spatial axis first: (left, right) for 1-D, (left, right, top, bottom) for
  2-D, (left, right, top, bottom, front, back) for 3-D. The layer keeps it in that order
  as ``padding``; ``_widths`` maps it onto the channels-last axes: for x (N, D, H, W, C),
  W gets (left, right), H (top, bottom), D (front, back).
* Layout: torch pads the last n axes of (N, C, *S) / (C, *S); here the input is
  channels-last (N, *S, C) / (*S, C) and the n axes BEFORE the last one are padded, i.e.
  torch's channel axis ``-(n+1)`` ↔ the last axis. Accepted ranks are torch's:
  reflection / replication / circular take n+1 (unbatched) or n+2 (batched) axes;
  constant / zero padding takes any rank ≥ n: a rank-n input has no channel axis (all n
  axes are padded, as torch pads them), a rank ≥ n+1 one is (*, *S, C) (torch's
  (*, C, *S)).
* Negative padding crops, where torch allows it, with torch's values:
  constant crops first (its kept part must not be negative); reflection and replication
  index the ORIGINAL input (output j of an axis reads x[f(j − left)], f reflecting or
  clamping), so they pad then crop; circular crops first, then wraps the cropped part.
* Refusals are ValueErrors naming ``padding`` (or ``x``) where torch raises:
  reflection needs every pad below the axis's size; reflection and replication need
  non-empty axes (except the batch axis) and a non-negative output size, and in 1-D a non-empty
  output (torch's 1-D kernels refuse an empty output, its 2-D/3-D ones return one); circular
  needs every positive pad at most the size of the (cropped) axis it wraps (torch raises, or
  for some negative pads returns uninitialised memory); constant needs a non-negative kept
  part. All axes are checked before any is padded. Stricter than torch: a ``padding`` tuple
  of the wrong length or with non-int entries is refused at construction (torch stores it,
  then pads fewer axes or fails at the call); ``value`` must be a number (not a bool).
* Gradients: every mode is built from ``lax.pad`` / ``jnp.pad`` / slices, whose transposes
  accumulate the cotangents of replicated, reflected or wrapped outputs into the input
  values they read (the border values), as torch's backward kernels do.
* Any dtype is padded (torch pads integer and bool tensors too); a constant ``value`` is
  cast to x's dtype (a float truncated toward zero for an integer x, as torch casts it).
  No parameters, no buffers, no train/eval difference.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax
from flax import nnx

from ._utils import _is_int, check_input

__all__ = [f"{kind}Pad{n}d" for kind in ("Constant", "Zero", "Reflection", "Replication",
                                         "Circular") for n in (1, 2, 3)]

_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}
_ORDER = {1: "(left, right)", 2: "(left, right, top, bottom)",
          3: "(left, right, top, bottom, front, back)"}


def _check_padding(padding, n: int, layer: str) -> tuple[int, ...]:
    """torch's ``padding`` (an int, or 2·n ints, last spatial axis first) → 2·n ints."""
    if _is_int(padding):
        return (int(padding),) * (2 * n)
    if isinstance(padding, (tuple, list)) and len(padding) == 2 * n and all(
            _is_int(p) for p in padding):
        return tuple(int(p) for p in padding)
    # a tuple of ints of the wrong length is a bad value, anything else a bad type
    wrong_length = isinstance(padding, (tuple, list)) and all(_is_int(p) for p in padding)
    raise (ValueError if wrong_length else TypeError)(
        f"{layer}: padding must be an int or a tuple of {2 * n} ints {_ORDER[n]} (last "
        f"spatial axis first, as in torch), got {padding!r}")


class _PadNd(nnx.Module):
    """Shared machinery: ``padding`` (torch order), the rank rules and one pad per axis."""
    _n: int = 0
    _mode: str = ""

    def __init__(self, padding, *, rngs: nnx.Rngs | None = None):
        del rngs  # no parameters; accepted for a uniform constructor
        self.padding = _check_padding(padding, self._n, type(self).__name__)

    def _widths(self):
        """(low, high) per spatial axis of the channels-last input, first axis first."""
        p = self.padding
        return [(p[2 * i], p[2 * i + 1]) for i in reversed(range(self._n))]

    def _layouts(self) -> str:
        s = _SPATIAL[self._n]
        return f"(N, {s}, C) or unbatched ({s}, C)"

    def _spatial_axes(self, x):
        n, name = self._n, type(self).__name__
        ranks = None if self._mode == "constant" else (n + 1, n + 2)
        check_input(x, name="x", layer=name, ranks=ranks, layout=self._layouts()
                    + (f" or ({_SPATIAL[n]}) without channels" if ranks is None else ""))
        if ranks is None and x.ndim < n:
            raise ValueError(f"{name}: x must have rank at least {n} with layout "
                             f"{self._layouts()} or ({_SPATIAL[n]}), got shape "
                             f"{tuple(x.shape)}")
        # rank n (constant only): no channel axis, every axis is spatial
        first = x.ndim - n - (0 if x.ndim == n else 1)
        return list(range(first, first + n))

    def __call__(self, x):
        """x channels-last (N, *S, C) or unbatched (*S, C) (constant/zero padding: any
        (*, *S, C), or (*S) without channels) → the same layout with each spatial size
        S + low + high (module docstring)."""
        axes = self._spatial_axes(x)
        if self._mode in ("reflect", "replicate") and 0 in x.shape[x.ndim == self._n + 2:]:
            raise ValueError(f"{type(self).__name__}: input x has an empty axis, shape "
                             f"{tuple(x.shape)} (layout {self._layouts()}); torch allows "
                             f"only an empty batch axis with padding mode {self._mode!r}")
        widths = self._widths()
        for a, (lo, hi) in zip(axes, widths):  # every axis checked before any is padded
            why = self._refusal(x.shape[a], lo, hi)
            if why:
                raise ValueError(
                    f"{type(self).__name__}: padding {self.padding} does not fit input x of "
                    f"shape {tuple(x.shape)} (layout {self._layouts()}): on axis {a} (size "
                    f"{x.shape[a]}) the pads ({lo}, {hi}) {why}, as torch refuses")
        for a, (lo, hi) in zip(axes, widths):
            x = self._pad_axis(x, a, lo, hi)
        return x

    def _refusal(self, size: int, lo: int, hi: int) -> str | None:
        """Why torch refuses to pad an axis of ``size`` by (lo, hi), or None."""
        raise NotImplementedError

    def _pad_axis(self, x, axis: int, lo: int, hi: int):
        raise NotImplementedError


def _crop(x, axis, lo, hi):
    """Drop ``lo`` entries in front and ``hi`` behind along ``axis`` (both ≥ 0)."""
    if lo == 0 and hi == 0:
        return x
    return lax.slice_in_dim(x, lo, x.shape[axis] - hi, axis=axis)


def _mode_pad(x, axis, lo, hi, mode):
    """``jnp.pad`` of one axis by non-negative (lo, hi) in ``mode``."""
    if lo == 0 and hi == 0:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (lo, hi)
    return jnp.pad(x, widths, mode=mode)


class _ConstantPadNd(_PadNd):
    _mode = "constant"

    def __init__(self, padding, value, *, rngs: nnx.Rngs | None = None):
        super().__init__(padding, rngs=rngs)
        if isinstance(value, (bool, np.bool_)) or not isinstance(
                value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{type(self).__name__}: value must be a number, got {value!r} "
                            f"({type(value).__name__})")
        self.value = value

    def _refusal(self, size, lo, hi):
        # torch crops first: the kept part must not be negative
        return ("crop more than the whole axis"
                if size + min(lo, 0) + min(hi, 0) < 0 else None)

    def _pad_axis(self, x, axis, lo, hi):
        if lo == 0 and hi == 0:
            return x
        cfg = [(0, 0, 0)] * x.ndim
        cfg[axis] = (lo, hi, 0)  # lax.pad crops for negative amounts
        # the value cast to x's dtype as torch casts it (truncation for integers)
        fill = jnp.asarray(np.asarray(self.value).astype(x.dtype))
        return lax.pad(x, fill, cfg)


def _empty_output(layer, size, lo, hi):
    """Reflection / replication: torch's 1-D kernels refuse an empty output, its 2-D / 3-D
    ones return one (a negative size is refused by all)."""
    least = 1 if layer._n == 1 else 0
    if size + lo + hi < least:
        return "leave an empty output" if least else "leave a negative output size"
    return None


class _ReflectionPadNd(_PadNd):
    _mode = "reflect"

    def _refusal(self, size, lo, hi):
        if lo >= size or hi >= size:
            return "must each be smaller than the axis size for reflection"
        return _empty_output(self, size, lo, hi)

    def _pad_axis(self, x, axis, lo, hi):
        # indices relative to the original axis: reflect the positive pads, then crop
        x = _mode_pad(x, axis, max(lo, 0), max(hi, 0), "reflect")
        return _crop(x, axis, max(-lo, 0), max(-hi, 0))


class _ReplicationPadNd(_PadNd):
    _mode = "replicate"

    def _refusal(self, size, lo, hi):
        return _empty_output(self, size, lo, hi)

    def _pad_axis(self, x, axis, lo, hi):
        # indices relative to the original axis: repeat the edges, then crop
        x = _mode_pad(x, axis, max(lo, 0), max(hi, 0), "edge")
        return _crop(x, axis, max(-lo, 0), max(-hi, 0))


class _CircularPadNd(_PadNd):
    _mode = "circular"

    def _refusal(self, size, lo, hi):
        kept = size + min(lo, 0) + min(hi, 0)
        if kept < 0:
            return "crop more than the whole axis"
        if max(lo, hi) > kept:  # torch raises, or returns memory it never wrote
            return f"wrap around the {kept} kept entries more than once"
        return None

    def _pad_axis(self, x, axis, lo, hi):
        # torch crops first, then wraps what is left
        x = _crop(x, axis, max(-lo, 0), max(-hi, 0))
        return _mode_pad(x, axis, max(lo, 0), max(hi, 0), "wrap")


class ConstantPad1d(_ConstantPadNd):
    """Torch ``nn.ConstantPad1d(padding, value)``: ``F.pad(x, padding, 'constant', value)``.

    ``__call__(x)``: x channels-last (*, L, C) (torch's (*, C, L)), or (L) without channels
    → the same layout with L padded by (left, right); negative pads crop. ``padding``: an
    int or 2 ints (left, right), last spatial axis first as in torch (stored as
    ``padding``); ``value`` a number cast to x's dtype. Details: module docstring.

    >>> import jax.numpy as jnp
    >>> ConstantPad1d(1, 0.5)(jnp.ones((2, 5, 3))).shape
    (2, 7, 3)
    """
    _n = 1


class ZeroPad1d(ConstantPad1d):
    """Torch ``nn.ZeroPad1d(padding)``: ``ConstantPad1d(padding, 0.0)`` (a subclass of it, as
    in torch). Shapes, ``padding`` and details as for ``ConstantPad1d``.

    >>> import jax.numpy as jnp
    >>> ZeroPad1d(1)(jnp.ones((2, 5, 3))).shape
    (2, 7, 3)
    """

    def __init__(self, padding, *, rngs: nnx.Rngs | None = None):
        super().__init__(padding, 0.0, rngs=rngs)


class ReflectionPad1d(_ReflectionPadNd):
    """Torch ``nn.ReflectionPad1d(padding)``: ``F.pad(x, padding, 'reflect')``, mirrored
    about the edge values (each pad smaller than its axis).

    ``__call__(x)``: x channels-last (N, L, C) or unbatched (L, C) (torch's
    (N, C, L) / (C, L)) → the same layout with L padded by (left, right); negative pads crop.
    ``padding``: an int or 2 ints (left, right), last spatial axis first as in torch
    (stored as ``padding``). Limits and refusals: module docstring.

    >>> import jax.numpy as jnp
    >>> ReflectionPad1d((1, 2))(jnp.ones((2, 5, 3))).shape
    (2, 8, 3)
    """
    _n = 1


class ReplicationPad1d(_ReplicationPadNd):
    """Torch ``nn.ReplicationPad1d(padding)``: ``F.pad(x, padding, 'replicate')``, the edge
    values repeated.

    ``__call__(x)``: x channels-last (N, L, C) or unbatched (L, C) (torch's
    (N, C, L) / (C, L)) → the same layout with L padded by (left, right); negative pads crop.
    ``padding``: an int or 2 ints (left, right), last spatial axis first as in torch
    (stored as ``padding``). Limits and refusals: module docstring.

    >>> import jax.numpy as jnp
    >>> ReplicationPad1d((1, 2))(jnp.ones((2, 5, 3))).shape
    (2, 8, 3)
    """
    _n = 1


class CircularPad1d(_CircularPadNd):
    """Torch ``nn.CircularPad1d(padding)``: ``F.pad(x, padding, 'circular')``, wrapped
    around periodically (each pad at most its axis's size).

    ``__call__(x)``: x channels-last (N, L, C) or unbatched (L, C) (torch's
    (N, C, L) / (C, L)) → the same layout with L padded by (left, right); negative pads crop.
    ``padding``: an int or 2 ints (left, right), last spatial axis first as in torch
    (stored as ``padding``). Limits and refusals: module docstring.

    >>> import jax.numpy as jnp
    >>> CircularPad1d((1, 2))(jnp.ones((2, 5, 3))).shape
    (2, 8, 3)
    """
    _n = 1


class ConstantPad2d(_ConstantPadNd):
    """Torch ``nn.ConstantPad2d(padding, value)``: ``F.pad(x, padding, 'constant', value)``.

    ``__call__(x)``: x channels-last (*, H, W, C) (torch's (*, C, H, W)), or (H, W) without
    channels → the same layout with W padded by (left, right), H by (top, bottom); negative
    pads crop. ``padding``: an int or 4 ints (left, right, top, bottom), last spatial axis
    first as in torch (stored as ``padding``); ``value`` a number cast to x's dtype.
    Details: module docstring.

    >>> import jax.numpy as jnp
    >>> ConstantPad2d(1, 0.5)(jnp.ones((2, 4, 5, 3))).shape
    (2, 6, 7, 3)
    """
    _n = 2


class ZeroPad2d(ConstantPad2d):
    """Torch ``nn.ZeroPad2d(padding)``: ``ConstantPad2d(padding, 0.0)`` (a subclass of it, as
    in torch). Shapes, ``padding`` and details as for ``ConstantPad2d``.

    >>> import jax.numpy as jnp
    >>> ZeroPad2d(1)(jnp.ones((2, 4, 5, 3))).shape
    (2, 6, 7, 3)
    """

    def __init__(self, padding, *, rngs: nnx.Rngs | None = None):
        super().__init__(padding, 0.0, rngs=rngs)


class ReflectionPad2d(_ReflectionPadNd):
    """Torch ``nn.ReflectionPad2d(padding)``: ``F.pad(x, padding, 'reflect')``, mirrored
    about the edge values (each pad smaller than its axis).

    ``__call__(x)``: x channels-last (N, H, W, C) or unbatched (H, W, C) (torch's (N, C, H,
    W) / (C, H, W)) → the same layout with W padded by (left, right), H by (top, bottom);
    negative pads crop. ``padding``: an int or 4 ints (left, right, top, bottom), last
    spatial axis first as in torch (stored as ``padding``). Limits and refusals: module
    docstring.

    >>> import jax.numpy as jnp
    >>> ReflectionPad2d((1, 2, 3, 1))(jnp.ones((2, 4, 5, 3))).shape
    (2, 8, 8, 3)
    """
    _n = 2


class ReplicationPad2d(_ReplicationPadNd):
    """Torch ``nn.ReplicationPad2d(padding)``: ``F.pad(x, padding, 'replicate')``, the edge
    values repeated.

    ``__call__(x)``: x channels-last (N, H, W, C) or unbatched (H, W, C) (torch's (N, C, H,
    W) / (C, H, W)) → the same layout with W padded by (left, right), H by (top, bottom);
    negative pads crop. ``padding``: an int or 4 ints (left, right, top, bottom), last
    spatial axis first as in torch (stored as ``padding``). Limits and refusals: module
    docstring.

    >>> import jax.numpy as jnp
    >>> ReplicationPad2d((1, 2, 3, 1))(jnp.ones((2, 4, 5, 3))).shape
    (2, 8, 8, 3)
    """
    _n = 2


class CircularPad2d(_CircularPadNd):
    """Torch ``nn.CircularPad2d(padding)``: ``F.pad(x, padding, 'circular')``, wrapped
    around periodically (each pad at most its axis's size).

    ``__call__(x)``: x channels-last (N, H, W, C) or unbatched (H, W, C) (torch's (N, C, H,
    W) / (C, H, W)) → the same layout with W padded by (left, right), H by (top, bottom);
    negative pads crop. ``padding``: an int or 4 ints (left, right, top, bottom), last
    spatial axis first as in torch (stored as ``padding``). Limits and refusals: module
    docstring.

    >>> import jax.numpy as jnp
    >>> CircularPad2d((1, 2, 3, 1))(jnp.ones((2, 4, 5, 3))).shape
    (2, 8, 8, 3)
    """
    _n = 2


class ConstantPad3d(_ConstantPadNd):
    """Torch ``nn.ConstantPad3d(padding, value)``: ``F.pad(x, padding, 'constant', value)``.

    ``__call__(x)``: x channels-last (*, D, H, W, C) (torch's (*, C, D, H, W)), or (D, H, W)
    without channels → the same layout with W padded by (left, right), H by (top, bottom), D
    by (front, back); negative pads crop. ``padding``: an int or 6 ints (left, right, top,
    bottom, front, back), last spatial axis first as in torch (stored as ``padding``);
    ``value`` a number cast to x's dtype. Details: module docstring.

    >>> import jax.numpy as jnp
    >>> ConstantPad3d(1, 0.5)(jnp.ones((2, 3, 4, 5, 3))).shape
    (2, 5, 6, 7, 3)
    """
    _n = 3


class ZeroPad3d(ConstantPad3d):
    """Torch ``nn.ZeroPad3d(padding)``: ``ConstantPad3d(padding, 0.0)`` (a subclass of it, as
    in torch). Shapes, ``padding`` and details as for ``ConstantPad3d``.

    >>> import jax.numpy as jnp
    >>> ZeroPad3d(1)(jnp.ones((2, 3, 4, 5, 3))).shape
    (2, 5, 6, 7, 3)
    """

    def __init__(self, padding, *, rngs: nnx.Rngs | None = None):
        super().__init__(padding, 0.0, rngs=rngs)


class ReflectionPad3d(_ReflectionPadNd):
    """Torch ``nn.ReflectionPad3d(padding)``: ``F.pad(x, padding, 'reflect')``, mirrored
    about the edge values (each pad smaller than its axis).

    ``__call__(x)``: x channels-last (N, D, H, W, C) or unbatched (D, H, W, C) (torch's (N,
    C, D, H, W) / (C, D, H, W)) → the same layout with W padded by (left, right), H by (top,
    bottom), D by (front, back); negative pads crop. ``padding``: an int or 6 ints (left,
    right, top, bottom, front, back), last spatial axis first as in torch (stored as
    ``padding``). Limits and refusals: module docstring.

    >>> import jax.numpy as jnp
    >>> ReflectionPad3d((1, 2, 3, 1, 1, 1))(jnp.ones((2, 3, 4, 5, 3))).shape
    (2, 5, 8, 8, 3)
    """
    _n = 3


class ReplicationPad3d(_ReplicationPadNd):
    """Torch ``nn.ReplicationPad3d(padding)``: ``F.pad(x, padding, 'replicate')``, the edge
    values repeated.

    ``__call__(x)``: x channels-last (N, D, H, W, C) or unbatched (D, H, W, C) (torch's (N,
    C, D, H, W) / (C, D, H, W)) → the same layout with W padded by (left, right), H by (top,
    bottom), D by (front, back); negative pads crop. ``padding``: an int or 6 ints (left,
    right, top, bottom, front, back), last spatial axis first as in torch (stored as
    ``padding``). Limits and refusals: module docstring.

    >>> import jax.numpy as jnp
    >>> ReplicationPad3d((1, 2, 3, 1, 1, 1))(jnp.ones((2, 3, 4, 5, 3))).shape
    (2, 5, 8, 8, 3)
    """
    _n = 3


class CircularPad3d(_CircularPadNd):
    """Torch ``nn.CircularPad3d(padding)``: ``F.pad(x, padding, 'circular')``, wrapped
    around periodically (each pad at most its axis's size).

    ``__call__(x)``: x channels-last (N, D, H, W, C) or unbatched (D, H, W, C) (torch's (N,
    C, D, H, W) / (C, D, H, W)) → the same layout with W padded by (left, right), H by (top,
    bottom), D by (front, back); negative pads crop. ``padding``: an int or 6 ints (left,
    right, top, bottom, front, back), last spatial axis first as in torch (stored as
    ``padding``). Limits and refusals: module docstring.

    >>> import jax.numpy as jnp
    >>> CircularPad3d((1, 2, 3, 1, 1, 1))(jnp.ones((2, 3, 4, 5, 3))).shape
    (2, 5, 8, 8, 3)
    """
    _n = 3
