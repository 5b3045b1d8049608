"""Batch normalisation with torch's running-statistics semantics, channels-last.

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
``num_batches_tracked``, as torch does. Differences from torch, all refusals of what torch
takes silently or fails on later: ``num_features=0`` (torch builds it, then fails at the
call), a NaN ``eps`` or ``momentum``, a string ``eps`` (torch: a TypeError at the call),
non-bool flags (torch takes any truthy value), and an empty input with a wrong channel
count or an integer dtype (torch's kernel returns early on an empty input, unchecked).
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from ._utils import check_bool, check_float, check_input, check_int, in_opmath

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(nnx.Module):
    _ranks: tuple[int, ...] = ()
    _layout = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *,
                 rngs: nnx.Rngs | None = None, use_running_average: bool = False,
                 dtype=None, param_dtype=jnp.float32):
        del rngs  # torch initialises deterministically (ones / zeros); kept for a uniform API
        name = type(self).__name__
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
        c = (num_features,)
        self.scale = (nnx.Param(jnp.ones(c, param_dtype), torch_name="weight")
                      if affine else None)
        self.bias = nnx.Param(jnp.zeros(c, param_dtype), torch_name="bias") if affine else None
        if track_running_stats:
            self.mean = nnx.BatchStat(jnp.zeros(c, param_dtype), torch_name="running_mean")
            self.var = nnx.BatchStat(jnp.ones(c, param_dtype), torch_name="running_var")
            self.num_batches_tracked = nnx.BatchStat(
                jnp.zeros((), jnp.int32), torch_name="num_batches_tracked")
        else:
            self.mean = self.var = self.num_batches_tracked = None

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
        if self.affine:
            y = y * self.scale.get_value().astype(y.dtype) + self.bias.get_value().astype(y.dtype)
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
