"""Torch's normalisation layers, channels-last: BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d,
GroupNorm, LayerNorm, RMSNorm, LocalResponseNorm.

The rest of this note is about batch normalisation, with torch's running-statistics
semantics; each other class documents its own.

Written here rather than taken from ``nnx.BatchNorm`` because three things differ:

* **momentum**: torch updates ``running = (1 − momentum)·running + momentum·batch``
  (Flax's ``momentum`` weighs the *old* value), and ``momentum=None`` means a cumulative
  average with factor ``1 / num_batches_tracked``;
* **unbiased running variance**: in train mode torch normalises with the biased batch
  variance but folds the *unbiased* one (× n/(n−1)) into ``running_var``;
* **num_batches_tracked**: torch keeps this buffer; it is kept here as its own variable,
  so state_dicts round-trip with nothing dropped.

Mode follows NNX: ``use_running_average=False`` (torch's ``train()``, the default, as in
torch) normalises with batch statistics and updates the running ones; ``True``
(``model.eval()``) uses the running statistics. Without ``track_running_stats`` batch
statistics are always used and no buffers exist.

Validation (errors name the argument): ``num_features`` an int ≥ 1, ``eps`` a number ≥ 0
(and > 0 whenever batch statistics are used, checked at the call, as in torch),
``momentum`` a number or None, ``affine`` / ``track_running_stats`` /
``use_running_average`` bools; ``x`` a floating-point array of the layer's rank with
``num_features`` channels last. An empty input gives an empty output, as in torch; in
training it leaves the running statistics unchanged and counts the batch in
``num_batches_tracked``, as torch does. ``bias=False`` (torch's keyword-only
argument) keeps ``scale`` and sets ``bias`` to None. Differences from torch, all refusals
of what torch takes silently or fails on later: ``num_features=0`` (torch builds it, then fails at the
call), a NaN ``eps`` or ``momentum``, a string ``eps`` (torch: a TypeError at the call),
non-bool flags (torch takes any truthy value), and an empty input with a wrong channel
count or an integer dtype (torch's kernel returns early on an empty input, unchecked).
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
from flax import nnx

from ._utils import (_is_int, check_bool, check_float, check_floating_input, check_input,
                     check_int, in_opmath)

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d",
           "InstanceNorm3d", "GroupNorm", "LayerNorm", "RMSNorm", "LocalResponseNorm"]


def _norm_variables(module, num_features: int, affine: bool, bias: bool, track: bool,
                    param_dtype) -> None:
    """The variables of torch's ``_NormBase`` (BatchNorm, InstanceNorm) on ``module``:
    ``scale``/``bias`` (Param; torch's keyword-only ``bias=False`` keeps the weight and
    drops the bias alone) and ``mean``/``var``/``num_batches_tracked`` (BatchStat), each
    ``None`` where torch has no such parameter or buffer."""
    c = (num_features,)
    module.scale = (nnx.Param(jnp.ones(c, param_dtype), torch_name="weight")
                    if affine else None)
    module.bias = (nnx.Param(jnp.zeros(c, param_dtype), torch_name="bias")
                   if affine and bias else None)
    if track:
        module.mean = nnx.BatchStat(jnp.zeros(c, param_dtype), torch_name="running_mean")
        module.var = nnx.BatchStat(jnp.ones(c, param_dtype), torch_name="running_var")
        module.num_batches_tracked = nnx.BatchStat(
            jnp.zeros((), jnp.int32), torch_name="num_batches_tracked")
    else:
        module.mean = module.var = module.num_batches_tracked = None


class _BatchNorm(nnx.Module):
    _ranks: tuple[int, ...] = ()
    _layout = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *, bias: bool = True,
                 rngs: nnx.Rngs | None = None, use_running_average: bool = False,
                 dtype=None, param_dtype=jnp.float32):
        del rngs  # torch initialises deterministically (ones / zeros); kept for a uniform API
        name = type(self).__name__
        bias = check_bool(bias, "bias", name)
        num_features = check_int(num_features, "num_features", name, minimum=1)
        eps = check_float(eps, "eps", name, minimum=0.0)
        momentum = check_float(momentum, "momentum", name, optional=True)
        affine = check_bool(affine, "affine", name)
        track_running_stats = check_bool(track_running_stats, "track_running_stats", name)
        use_running_average = check_bool(use_running_average, "use_running_average", name)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.use_running_average = use_running_average
        self.dtype = dtype
        _norm_variables(self, num_features, affine, bias, track_running_stats, param_dtype)

    @in_opmath
    def __call__(self, x, use_running_average: bool | None = None):
        name = type(self).__name__
        check_input(x, name="x", layer=name, ranks=self._ranks, layout=self._layout,
                    channels=self.num_features, floating=True)
        if use_running_average is None:
            use_running_average = self.use_running_average
        use_running_average = check_bool(use_running_average, "use_running_average", name)
        if self.dtype is not None:
            x = x.astype(self.dtype)
        axes = tuple(range(x.ndim - 1))  # every axis but channels
        if use_running_average and self.track_running_stats:
            mean, var = self.mean.get_value().astype(x.dtype), self.var.get_value().astype(x.dtype)
        else:
            n = x.size // self.num_features
            if n == 1:  # torch: 0 values (an empty batch) give an empty output
                raise ValueError(f"{name}: expected more than 1 value per channel in training "
                                 f"mode, got x of shape {tuple(x.shape)}")
            if self.eps <= 0:
                raise ValueError(f"{name}: eps must be positive when batch statistics are used "
                                 f"(training mode), as in torch, got {self.eps}")
            mean = jnp.mean(x, axis=axes)
            var = jnp.mean(jnp.square(x - mean), axis=axes)  # biased, used to normalise
            if not use_running_average and self.track_running_stats:
                count = self.num_batches_tracked.get_value() + 1
                self.num_batches_tracked.set_value(count)
                if n:  # torch leaves the running statistics alone for an empty batch
                    f = (1.0 / count) if self.momentum is None else self.momentum
                    unbiased = var * (n / (n - 1))
                    old_m, old_v = self.mean.get_value(), self.var.get_value()
                    self.mean.set_value(((1 - f) * old_m + f * mean).astype(old_m.dtype))
                    self.var.set_value(((1 - f) * old_v + f * unbiased).astype(old_v.dtype))
        y = (x - mean) * (1.0 / jnp.sqrt(var + self.eps))
        if self.scale is not None:
            y = y * self.scale.get_value().astype(y.dtype)
        if self.bias is not None:
            y = y + self.bias.get_value().astype(y.dtype)
        return y


class BatchNorm1d(_BatchNorm):
    """Torch ``nn.BatchNorm1d``: x (N, C) or channels-last (N, L, C) → same shape.

    Variables: ``scale``/``bias`` (Param) ↔ torch ``weight``/``bias``; ``mean``/``var``/
    ``num_batches_tracked`` (BatchStat) ↔ ``running_mean``/``running_var``/``num_batches_tracked``.

    >>> import jax.numpy as jnp
    >>> BatchNorm1d(4)(jnp.arange(8.0).reshape(2, 4)).shape
    (2, 4)
    """
    _ranks = (2, 3)
    _layout = "(N, C) or (N, L, C)"


class BatchNorm2d(_BatchNorm):
    """Torch ``nn.BatchNorm2d``: x (N, H, W, C), channels-last → same shape.

    Variables as for :class:`BatchNorm1d`. Train mode (the default, as in torch) updates
    the running statistics in place; ``model.eval()`` switches to them.

    >>> import jax.numpy as jnp
    >>> BatchNorm2d(3)(jnp.ones((2, 4, 4, 3))).shape
    (2, 4, 4, 3)
    """
    _ranks = (4,)
    _layout = "(N, H, W, C)"


class BatchNorm3d(_BatchNorm):
    """Torch ``nn.BatchNorm3d``: x (N, D, H, W, C), channels-last → same shape.

    Variables and modes as for :class:`BatchNorm1d` (torch (N, C, D, H, W) is moved to
    channels-last; the statistics are per channel over N, D, H and W either way).

    >>> import jax.numpy as jnp
    >>> BatchNorm3d(2, bias=False)(jnp.ones((2, 3, 3, 3, 2))).shape
    (2, 3, 3, 3, 2)
    """
    _ranks = (5,)
    _layout = "(N, D, H, W, C)"


def _normalized_shape(value, layer: str) -> tuple[int, ...]:
    """Torch's ``normalized_shape``: an int, or a non-empty sequence of ints (a list, tuple
    or ``torch.Size``), every entry ≥ 0 (torch builds a size-0 layer and returns an empty
    output for it)."""
    if _is_int(value):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not all(_is_int(v) for v in value):
        raise TypeError(f"{layer}: normalized_shape must be an int or a sequence of ints, "
                        f"got {value!r} ({type(value).__name__})")
    if not value:
        raise ValueError(f"{layer}: normalized_shape must have at least one entry, as in "
                         f"torch, got {tuple(value)!r}")
    if any(v < 0 for v in value):
        raise ValueError(f"{layer}: normalized_shape entries must be at least 0, got "
                         f"{tuple(value)!r}")
    return tuple(int(v) for v in value)


def _check_trailing(x, shape: tuple[int, ...], layer: str) -> None:
    """``x`` must be floating point and end with ``shape`` (torch's message, naming x)."""
    ndim = getattr(x, "ndim", None)
    if ndim is None:
        raise TypeError(f"{layer}: x must be an array, got {type(x).__name__}")
    if ndim < len(shape) or tuple(x.shape[ndim - len(shape):]) != shape:
        raise ValueError(f"{layer}: x must have shape (*, {', '.join(map(str, shape))}) "
                         f"(normalized_shape={shape} as its trailing axes), got shape "
                         f"{tuple(x.shape)}")
    check_floating_input(x, name="x", layer=layer)


class LayerNorm(nnx.Module):
    """Torch ``nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True)``.

    Normalises over the trailing ``len(normalized_shape)`` axes of x (*, *normalized_shape)
    → same shape; no channel axis, so the layout is torch's. Statistics are the mean and
    the biased variance (mean of squared deviations), computed in two passes, in float32
    for half-precision inputs, as torch's kernels do.

    Variables: ``weight`` / ``bias`` (Param, shape ``normalized_shape``) ↔ torch
    ``weight`` / ``bias``; ``None`` when ``elementwise_affine=False`` (both) or
    ``bias=False`` (bias only), as torch registers them.

    Checks (errors name the argument): ``normalized_shape`` an int or a non-empty sequence
    of ints ≥ 0, ``eps`` a number ≥ 0, flags bools; ``x`` floating point with the
    normalised axes last. Differences from torch: a NaN ``eps`` and non-bool flags are
    refused (torch takes them).

    >>> import jax.numpy as jnp
    >>> LayerNorm(3)(jnp.array([[1.0, 2.0, 3.0]])).round(4)
    Array([[-1.2247,  0.    ,  1.2247]], dtype=float32)
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, *, rngs: nnx.Rngs | None = None, dtype=None,
                 param_dtype=jnp.float32):
        del rngs  # torch initialises deterministically (ones / zeros)
        name = type(self).__name__
        self.normalized_shape = _normalized_shape(normalized_shape, name)
        self.eps = check_float(eps, "eps", name, minimum=0.0)
        self.elementwise_affine = check_bool(elementwise_affine, "elementwise_affine", name)
        bias = check_bool(bias, "bias", name)
        self.dtype = dtype
        shape = self.normalized_shape
        self.weight = (nnx.Param(jnp.ones(shape, param_dtype), torch_name="weight")
                       if self.elementwise_affine else None)
        self.bias = (nnx.Param(jnp.zeros(shape, param_dtype), torch_name="bias")
                     if self.elementwise_affine and bias else None)

    @in_opmath
    def __call__(self, x):
        """x (*, *normalized_shape) → same shape and dtype."""
        name = type(self).__name__
        _check_trailing(x, self.normalized_shape, name)
        if self.dtype is not None:
            x = x.astype(self.dtype)
        axes = tuple(range(x.ndim - len(self.normalized_shape), x.ndim))
        if x.size == 0:  # torch: an empty output, no statistics (no 0/0 in the gradient)
            y = x
        else:
            mean = jnp.mean(x, axis=axes, keepdims=True)
            centred = x - mean
            var = jnp.mean(jnp.square(centred), axis=axes, keepdims=True)
            y = centred * jax.lax.rsqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight.get_value().astype(y.dtype)
        if self.bias is not None:
            y = y + self.bias.get_value().astype(y.dtype)
        return y


class _InstanceNorm(nnx.Module):
    _spatial = 1  # spatial axes of a batched input
    _layout = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, *,
                 bias: bool = True, rngs: nnx.Rngs | None = None,
                 use_running_average: bool = False, dtype=None, param_dtype=jnp.float32):
        del rngs  # torch initialises deterministically (ones / zeros)
        name = type(self).__name__
        self.num_features = check_int(num_features, "num_features", name, minimum=1)
        self.eps = check_float(eps, "eps", name, minimum=0.0)
        # torch passes ``momentum or 0.0`` to its kernel: None freezes the running
        # statistics (no cumulative average, unlike BatchNorm)
        self.momentum = check_float(momentum, "momentum", name, optional=True)
        self.affine = check_bool(affine, "affine", name)
        self.track_running_stats = check_bool(track_running_stats, "track_running_stats", name)
        bias = check_bool(bias, "bias", name)
        self.use_running_average = check_bool(use_running_average, "use_running_average", name)
        self.dtype = dtype
        # num_batches_tracked: torch registers it (shared _NormBase), InstanceNorm never
        # increments it
        _norm_variables(self, self.num_features, self.affine, bias, self.track_running_stats,
                        param_dtype)

    @in_opmath
    def __call__(self, x, use_running_average: bool | None = None):
        """x channels-last (N, *spatial, C), or unbatched (*spatial, C) → same shape."""
        name = type(self).__name__
        s = self._spatial
        check_input(x, name="x", layer=name, ranks=(s + 1, s + 2), layout=self._layout,
                    floating=True)
        if x.shape[-1] != self.num_features:
            if self.affine or self.track_running_stats:  # torch: ValueError / RuntimeError
                check_input(x, name="x", layer=name, ranks=(s + 1, s + 2),
                            layout=self._layout, channels=self.num_features)
            # torch only warns: without affine parameters or running statistics
            # num_features is unused (torch's channel axis 1 is the last one here)
            warnings.warn(f"{name}: x's channel axis (last) has size {x.shape[-1]}, not "
                          f"num_features ({self.num_features}); num_features is unused "
                          f"because affine=False", UserWarning, stacklevel=3)
        if use_running_average is None:
            use_running_average = self.use_running_average
        use_running_average = check_bool(use_running_average, "use_running_average", name)
        if self.dtype is not None:
            x = x.astype(self.dtype)
        unbatched = x.ndim == s + 1
        if unbatched:  # torch: unsqueeze(0), normalise, squeeze(0)
            x = x[None]
        if use_running_average and self.track_running_stats:
            mean = self.mean.get_value().astype(x.dtype)
            var = self.var.get_value().astype(x.dtype)
        else:
            n = math.prod(x.shape[1:-1])  # values per (sample, channel)
            if n == 1:
                raise ValueError(f"{name}: expected more than 1 spatial element when "
                                 f"training (batch statistics), got x of shape "
                                 f"{tuple(x.shape[1:] if unbatched else x.shape)}")
            axes = tuple(range(1, x.ndim - 1))
            mean = jnp.mean(x, axis=axes, keepdims=True)
            var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
            if self.track_running_stats and not use_running_average:
                # torch's kernel runs batch norm on (1, N·C, *spatial) with the running
                # statistics repeated N times, then stores the mean of the N updated copies
                f = 0.0 if self.momentum is None else self.momentum
                old_m, old_v = self.mean.get_value(), self.var.get_value()
                flat_m = mean.reshape(x.shape[0], x.shape[-1])
                flat_v = var.reshape(x.shape[0], x.shape[-1])
                if n:  # an empty plane leaves every copy unchanged
                    new_m = (1 - f) * old_m.astype(x.dtype) + f * flat_m
                    new_v = (1 - f) * old_v.astype(x.dtype) + f * flat_v * (n / (n - 1))
                else:
                    new_m = jnp.broadcast_to(old_m.astype(x.dtype), flat_m.shape)
                    new_v = jnp.broadcast_to(old_v.astype(x.dtype), flat_v.shape)
                # N = 0: the mean of no copies is NaN, as in torch
                self.mean.set_value(_mean0(new_m).astype(old_m.dtype))
                self.var.set_value(_mean0(new_v).astype(old_v.dtype))
        y = (x - mean) * jax.lax.rsqrt(var + self.eps)
        if self.scale is not None:
            y = y * self.scale.get_value().astype(y.dtype)
        if self.bias is not None:
            y = y + self.bias.get_value().astype(y.dtype)
        return y[0] if unbatched else y


def _mean0(a):
    """Mean over axis 0; NaN (no warning) when that axis is empty."""
    if a.shape[0] == 0:
        return jnp.full(a.shape[1:], jnp.nan, a.dtype)
    return jnp.mean(a, axis=0)


_INSTANCE_DOC = """

    Per sample and channel, normalises over the spatial axes with the mean and the biased
    variance. Arguments as torch: ``num_features``, ``eps=1e-5``, ``momentum=0.1``,
    ``affine=False``, ``track_running_stats=False``, keyword-only ``bias=True`` (False keeps
    ``scale`` and drops ``bias``).

    Variables (as :class:`BatchNorm1d`): ``scale``/``bias`` (Param, with ``affine``) ↔
    torch ``weight``/``bias``; ``mean``/``var``/``num_batches_tracked`` (BatchStat, with
    ``track_running_stats``) ↔ ``running_mean``/``running_var``/``num_batches_tracked``.

    Modes (NNX ``use_running_average`` ↔ torch ``not training``): batch statistics are used
    in training, or always without ``track_running_stats``; in training with
    ``track_running_stats`` the running statistics become the mean over the batch of
    ``(1 − momentum)·running + momentum·stat`` (unbiased variance), torch's update;
    ``momentum=None`` leaves them unchanged (torch passes 0), and ``num_batches_tracked``
    stays 0, as in torch. In eval mode with ``track_running_stats`` the running statistics
    are used.

    Checks: a channel count other than ``num_features`` is a ValueError with ``affine`` or
    ``track_running_stats`` (torch: ValueError / RuntimeError), otherwise torch's
    UserWarning; batch statistics over a single spatial element are a ValueError, as in
    torch. Differences from torch: negative or NaN ``eps`` (torch: NaN outputs) and
    non-bool flags are refused.
"""


class InstanceNorm1d(_InstanceNorm):
    """Torch ``nn.InstanceNorm1d``: x (N, L, C) or unbatched (L, C), channels-last → same
    shape (torch (N, C, L) / (C, L)).{doc}
    >>> import jax.numpy as jnp
    >>> InstanceNorm1d(2)(jnp.array([[[0.0, 1.0], [2.0, 3.0]]])).round(3)
    Array([[[-1., -1.],
            [ 1.,  1.]]], dtype=float32)
    """
    _spatial = 1
    _layout = "(N, L, C) or (L, C)"


class InstanceNorm2d(_InstanceNorm):
    """Torch ``nn.InstanceNorm2d``: x (N, H, W, C) or unbatched (H, W, C), channels-last →
    same shape (torch (N, C, H, W) / (C, H, W)).{doc}
    >>> import jax.numpy as jnp
    >>> InstanceNorm2d(3, affine=True)(jnp.ones((2, 4, 4, 3))).shape
    (2, 4, 4, 3)
    """
    _spatial = 2
    _layout = "(N, H, W, C) or (H, W, C)"


class InstanceNorm3d(_InstanceNorm):
    """Torch ``nn.InstanceNorm3d``: x (N, D, H, W, C) or unbatched (D, H, W, C),
    channels-last → same shape (torch (N, C, D, H, W) / (C, D, H, W)).{doc}
    >>> import jax.numpy as jnp
    >>> InstanceNorm3d(3, track_running_stats=True)(jnp.ones((2, 2, 2, 2, 3))).shape
    (2, 2, 2, 2, 3)
    """
    _spatial = 3
    _layout = "(N, D, H, W, C) or (D, H, W, C)"


for _cls in (InstanceNorm1d, InstanceNorm2d, InstanceNorm3d):
    _cls.__doc__ = _cls.__doc__.replace("{doc}", _INSTANCE_DOC)


class GroupNorm(nnx.Module):
    """Torch ``nn.GroupNorm(num_groups, num_channels, eps=1e-5, affine=True, *, bias=True)``:
    x channels-last (N, *, C) → same shape (torch (N, C, *)).

    The channels are split into ``num_groups`` contiguous blocks of
    ``num_channels // num_groups`` (channel c is in group ``c // (C / G)``, as in torch); each
    sample's group is normalised with its mean and biased variance over its channels and
    every spatial position, then ``weight``/``bias`` apply per channel. Same in train and
    eval mode (no running statistics).

    Variables: ``weight`` / ``bias`` (Param, shape (C,)) ↔ torch ``weight`` / ``bias``;
    ``None`` without ``affine`` (both) or with ``bias=False`` (bias only).

    Checks (errors name the argument): ``num_groups`` an int ≥ 1, ``num_channels`` an int ≥ 0
    divisible by it (torch's ValueError text), ``eps`` ≥ 0; ``x`` floating point of rank ≥ 2
    with C channels last; a group of a single value in the whole batch (N·C/G·∏spatial = 1)
    is a ValueError, as in torch. Differences: negative or NaN ``eps`` (torch: NaN outputs)
    and non-bool flags are refused; ``num_groups=0`` is a ValueError, not torch's
    ZeroDivisionError.

    >>> import jax.numpy as jnp
    >>> GroupNorm(2, 4)(jnp.array([[1.0, 3.0, 0.0, 10.0]])).round(2)
    Array([[-1.,  1., -1.,  1.]], dtype=float32)
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, *, bias: bool = True, rngs: nnx.Rngs | None = None,
                 dtype=None, param_dtype=jnp.float32):
        del rngs  # torch initialises deterministically (ones / zeros)
        name = type(self).__name__
        self.num_groups = check_int(num_groups, "num_groups", name, minimum=1)
        self.num_channels = check_int(num_channels, "num_channels", name, minimum=0)
        if self.num_channels % self.num_groups:
            raise ValueError(f"{name}: num_channels ({self.num_channels}) must be divisible "
                             f"by num_groups ({self.num_groups})")
        self.eps = check_float(eps, "eps", name, minimum=0.0)
        self.affine = check_bool(affine, "affine", name)
        bias = check_bool(bias, "bias", name)
        self.dtype = dtype
        c = (self.num_channels,)
        self.weight = (nnx.Param(jnp.ones(c, param_dtype), torch_name="weight")
                       if self.affine else None)
        self.bias = (nnx.Param(jnp.zeros(c, param_dtype), torch_name="bias")
                     if self.affine and bias else None)

    @in_opmath
    def __call__(self, x):
        """x channels-last (N, *, C), rank ≥ 2 → same shape and dtype."""
        name = type(self).__name__
        check_input(x, name="x", layer=name, ranks=None, layout="(N, *, C)",
                    channels=self.num_channels, floating=True)
        if x.ndim < 2:
            raise ValueError(f"{name}: x must have rank at least 2 with layout (N, *, C), "
                             f"got shape {tuple(x.shape)}")
        if self.dtype is not None:
            x = x.astype(self.dtype)
        g = self.num_groups
        per_group = x.shape[0] * (self.num_channels // g) * math.prod(x.shape[1:-1])
        if per_group == 1:
            raise ValueError(f"{name}: expected more than 1 value per group (torch: 'per "
                             f"channel when training'), got x of shape {tuple(x.shape)}")
        if x.size == 0:
            y = x
        else:
            grouped = x.reshape(*x.shape[:-1], g, self.num_channels // g)
            axes = (*range(1, x.ndim - 1), x.ndim)  # spatial axes and the in-group axis
            mean = jnp.mean(grouped, axis=axes, keepdims=True)
            centred = grouped - mean
            var = jnp.mean(jnp.square(centred), axis=axes, keepdims=True)
            y = (centred * jax.lax.rsqrt(var + self.eps)).reshape(x.shape)
        if self.weight is not None:
            y = y * self.weight.get_value().astype(y.dtype)
        if self.bias is not None:
            y = y + self.bias.get_value().astype(y.dtype)
        return y


class RMSNorm(nnx.Module):
    """Torch ``nn.RMSNorm(normalized_shape, eps=None, elementwise_affine=True)``.

    x (*, *normalized_shape) → same shape; torch's layout (no channel axis).
    ``y = x / sqrt(mean(x², trailing axes) + eps) · weight``, computed in float32 for
    float16/bfloat16 inputs and rounded once, as torch's fused kernel. ``eps=None`` is
    torch's choice: the machine epsilon of that computation type, i.e.
    ``finfo(float32).eps`` (≈1.19e-7) for float16, bfloat16 and float32 inputs and
    ``finfo(float64).eps`` for float64 ones.

    Variables: ``weight`` (Param, shape ``normalized_shape``) ↔ torch ``weight``; ``None``
    without ``elementwise_affine``.

    Checks as :class:`LayerNorm`; ``eps`` a number ≥ 0 or None.

    >>> import jax.numpy as jnp
    >>> [round(float(v), 3) for v in RMSNorm(2)(jnp.array([[3.0, 4.0]]))[0]]
    [0.849, 1.131]
    """

    def __init__(self, normalized_shape, eps: float | None = None,
                 elementwise_affine: bool = True, *, rngs: nnx.Rngs | None = None,
                 dtype=None, param_dtype=jnp.float32):
        del rngs  # torch initialises deterministically (ones)
        name = type(self).__name__
        self.normalized_shape = _normalized_shape(normalized_shape, name)
        self.eps = check_float(eps, "eps", name, minimum=0.0, optional=True)
        self.elementwise_affine = check_bool(elementwise_affine, "elementwise_affine", name)
        self.dtype = dtype
        self.weight = (nnx.Param(jnp.ones(self.normalized_shape, param_dtype),
                                 torch_name="weight") if self.elementwise_affine else None)

    @in_opmath
    def __call__(self, x):
        """x (*, *normalized_shape) → same shape and dtype."""
        name = type(self).__name__
        _check_trailing(x, self.normalized_shape, name)
        if self.dtype is not None:
            x = x.astype(self.dtype)
        # x is already in the computation type here (in_opmath upcast half precision)
        eps = float(jnp.finfo(x.dtype).eps) if self.eps is None else self.eps
        axes = tuple(range(x.ndim - len(self.normalized_shape), x.ndim))
        if x.size == 0:
            y = x
        else:
            y = x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=axes, keepdims=True) + eps)
        if self.weight is not None:
            y = y * self.weight.get_value().astype(y.dtype)
        return y


class LocalResponseNorm(nnx.Module):
    """Torch ``nn.LocalResponseNorm(size, alpha=1e-4, beta=0.75, k=1.0)``: x channels-last
    (N, *, C) of rank ≥ 3 → same shape (torch (N, C, *); its channel axis 1 is the last
    axis here).

    ``y_c = x_c / (k + alpha/size · Σ x_{c'}²)^beta``, the sum over the window
    ``c − size//2 ≤ c' ≤ c + (size−1)//2`` of channels, zero-padded at both ends and always
    divided by ``size`` (torch's average pool with zero padding). An empty x is returned
    as is, as in torch. No parameters.

    Checks: ``size`` an int ≥ 1 (torch fails at the call for 0 or less), ``alpha``/``beta``/
    ``k`` numbers; ``x`` floating point of rank ≥ 3 (torch's rule; the layout is (N, L, C)
    for rank 3). Half precision is computed in float32 and rounded once (torch rounds after
    each elementwise step; on CPU it has no float16/bfloat16 kernel at all for rank ≥ 4,
    where it pools with avg_pool3d); this is a difference only in being more accurate.

    >>> import jax.numpy as jnp
    >>> y = LocalResponseNorm(2, alpha=1.0, beta=1.0)(jnp.ones((1, 1, 3)))
    >>> [round(float(v), 3) for v in y[0, 0]]  # channel 0's window holds one zero pad
    [0.667, 0.5, 0.5]
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, *,
                 rngs: nnx.Rngs | None = None):
        del rngs
        name = type(self).__name__
        self.size = check_int(size, "size", name, minimum=1)
        self.alpha = check_float(alpha, "alpha", name)
        self.beta = check_float(beta, "beta", name)
        self.k = check_float(k, "k", name)

    @in_opmath
    def __call__(self, x):
        """x channels-last (N, *, C), rank ≥ 3 → same shape and dtype."""
        name = type(self).__name__
        check_input(x, name="x", layer=name, ranks=None, layout="(N, *, C)", floating=True)
        if x.ndim < 3:
            raise ValueError(f"{name}: x must have rank at least 3 with layout (N, *, C) "
                             f"(torch: 3D or higher), got shape {tuple(x.shape)}")
        if x.size == 0:
            return x
        size = self.size
        window = (1,) * (x.ndim - 1) + (size,)
        pads = ((0, 0),) * (x.ndim - 1) + ((size // 2, (size - 1) // 2),)
        # a literal 0 init makes this XLA's differentiable windowed sum
        total = jax.lax.reduce_window(jnp.square(x), 0.0, jax.lax.add, window,
                                      (1,) * x.ndim, pads)
        div = (total / size * self.alpha + self.k) ** self.beta
        return x / div
