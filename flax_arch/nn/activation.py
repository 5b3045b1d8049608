"""Torch's activation modules (``torch.nn.modules.activation``), one twin per class.

Every twin takes torch's constructor arguments (names, order, defaults) plus a
keyword-only ``rngs`` (unused: no activation draws anything; accepted for a uniform API),
and computes torch's values *and* torch's derivatives, including at the points where the
function has a kink or switches formula. Those derivative conventions are torch's backward
kernels (``derivatives.yaml``), pinned here and tested in float64 at exactly those points
(``parity_tests/test_nn_activation.py``):

* ReLU, Threshold, Hardtanh/ReLU6, Hardshrink, Softshrink: slope 0 *at* the kink
  (``x <= threshold``, ``x <= min_val or x >= max_val``, ``-lambd <= x <= lambd``);
  LeakyReLU and PReLU take the negative slope at 0 (``x > 0`` picks the identity);
  ELU/CELU/SELU take the exponential branch's slope at 0 (``x <= 0``); Hardswish has
  slope 0 at -3 and 1 at +3; Softplus is the identity only where ``beta * x > threshold``.
* NaN goes where torch's comparisons send it: a comparison with NaN is false, so e.g.
  ReLU, Threshold and Hardtanh pass NaN through with slope 1, LeakyReLU with its slope.

Elementwise twins keep torch's layout (any shape, unchanged). Where torch has a channel
axis the twin is channels-last: :class:`PReLU` (one slope per channel, torch's axis 1 is
the last axis here) and :class:`Softmax2d` (torch's axis -3 is the last axis here).
``Softmax`` / ``LogSoftmax`` / ``Softmin`` / ``GLU`` keep torch's ``dim`` argument, but
remember the layout: torch's ``LogSoftmax(dim=1)`` over (N, C, L) is
``LogSoftmax(dim=-1)`` over the channels-last (N, L, C).

``inplace`` is accepted (a bool, as torch) and has no effect: JAX arrays are immutable,
so the twin always returns a new array (torch's in-place variant returns the same values).

Inputs must be floating-point arrays (TypeError naming x); torch computes some of these
(ReLU, Tanh, Threshold …) on integer tensors too, this is a deliberate difference. In
float16/bfloat16 the smooth activations compute in float32 and round once, as torch's CPU
kernels do (``in_opmath``); the piecewise-linear ones select in the input's dtype.
"""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ..ops.elementwise import torch_tanh, with_slope
from ._utils import (check_bool, check_choice, check_float, check_floating_input, check_int,
                     check_input, in_opmath)

__all__ = ["LogSoftmax", "Softmax", "Softmin", "Softmax2d", "LeakyReLU", "ReLU", "ReLU6",
           "Threshold", "Hardtanh", "Hardshrink", "Softshrink", "Hardswish", "ELU", "CELU",
           "SELU", "GELU", "GLU", "Mish", "SiLU", "PReLU", "LogSigmoid", "Sigmoid", "Tanh",
           "Tanhshrink", "Softplus", "Softsign"]


# ------------------------------------------------------------------ softmax family

class _SoftmaxBase(nnx.Module):
    """Softmax / LogSoftmax / Softmin: ``dim`` checks, torch's implicit choice, 0-d input."""
    _fn = _torch_fn = None  # set by the subclasses

    def __init__(self, dim: int | None = None, *, rngs: nnx.Rngs | None = None):
        del rngs  # nothing random; accepted for a uniform constructor
        self.dim = check_int(dim, "dim", type(self).__name__, optional=True)

    def _axis(self, x) -> int:
        name, dim, ndim = type(self).__name__, self.dim, x.ndim
        if dim is None:
            if ndim > 2:
                raise ValueError(f"{name}: dim=None is ambiguous for an input of rank {ndim} "
                                 f"(torch's implicit choice assumes channels-first); "
                                 f"pass dim explicitly")
            warnings.warn(f"Implicit dimension choice for {self._torch_fn} has been "
                          f"deprecated. Change the call to include dim=X as an argument.",
                          UserWarning, stacklevel=4)
            dim = 0 if ndim <= 1 else 1
        if not -max(ndim, 1) <= dim < max(ndim, 1):  # a 0-d input has axes 0 and -1, as torch
            raise np.exceptions.AxisError(
                f"{name}: dim must be in [{-max(ndim, 1)}, {max(ndim, 1) - 1}] for x of shape "
                f"{tuple(x.shape)}, got {dim}")
        return dim

    @in_opmath  # float32 sums and logs in half precision, as torch
    def __call__(self, x):
        """x of any shape → same shape and dtype, normalised along axis ``dim``."""
        check_floating_input(x, name="x", layer=type(self).__name__)
        axis = self._axis(x)
        if x.ndim == 0:  # torch treats a 0-d tensor as one element along axis 0
            return type(self)._fn(x[None], axis=0)[0]
        return type(self)._fn(x, axis=axis)


class LogSoftmax(_SoftmaxBase):
    """Torch ``nn.LogSoftmax(dim=None)``: log-softmax along axis ``dim``; shape unchanged.
    Arguments and checks as for :class:`Softmax`.

    >>> import jax.numpy as jnp
    >>> LogSoftmax(-1)(jnp.zeros((1, 2))).tolist()  # doctest: +ELLIPSIS
    [[-0.693..., -0.693...]]
    """
    _fn = staticmethod(jax.nn.log_softmax)
    _torch_fn = "log_softmax"


class Softmax(_SoftmaxBase):
    """Torch ``nn.Softmax(dim=None)``: softmax along axis ``dim``; shape unchanged.

    ``dim``: an int, or None for torch's deprecated implicit choice (with its warning).

    Input checks as torch: ``x`` must be a floating-point array (TypeError naming x); a
    ``dim`` outside ``x``'s axes raises ``numpy.exceptions.AxisError`` naming dim, which is
    both the IndexError torch raises and a ValueError. A 0-d ``x`` works, as in torch.

    Differences from torch: ``dim`` is checked at construction (torch: at the first call,
    and it stores ``'a'`` or ``1.0`` silently). ``dim=None`` on an input of rank ≥ 3 is a
    ValueError naming dim: torch's implicit choice (axis 0 for rank 3, axis 1 for rank 4)
    assumes its channels-first layout, so it would pick another axis here. Ranks 0–2 get
    torch's choice (axis 0, 0, 1), which is the same axis in both layouts. An empty integer
    or bool ``x`` is refused too (torch returns it, its kernel never running).

    >>> import jax.numpy as jnp
    >>> Softmax(-1)(jnp.zeros((1, 2))).tolist()
    [[0.5, 0.5]]
    """
    _fn = staticmethod(jax.nn.softmax)
    _torch_fn = "softmax"


def _softmin(x, axis):
    return jax.nn.softmax(-x, axis=axis)  # torch: softmax of the negated input


class Softmin(_SoftmaxBase):
    """Torch ``nn.Softmin(dim=None)``: ``softmax(-x)`` along axis ``dim``; shape unchanged.
    Arguments, checks and the implicit ``dim`` as for :class:`Softmax`.

    >>> import jax.numpy as jnp
    >>> Softmin(-1)(jnp.array([0.0, 0.0])).tolist()
    [0.5, 0.5]
    """
    _fn = staticmethod(_softmin)
    _torch_fn = "softmin"


class Softmax2d(nnx.Module):
    """Torch ``nn.Softmax2d()``: softmax over the channels at every spatial position.

    Layout: torch normalises its axis -3 of (N, C, H, W) or (C, H, W); the twin is
    channels-last, (N, H, W, C) or (H, W, C), and normalises the last axis. Another rank is
    a ValueError naming x (torch: "expected input to be 3D or 4D").

    >>> import jax.numpy as jnp
    >>> Softmax2d()(jnp.zeros((1, 1, 2))).tolist()
    [[[0.5, 0.5]]]
    """

    def __init__(self, *, rngs: nnx.Rngs | None = None):
        del rngs

    @in_opmath  # float32 sums in half precision, as torch
    def __call__(self, x):
        """x (N, H, W, C) or (H, W, C), channels-last → same shape, softmax over C."""
        check_input(x, name="x", layer="Softmax2d", ranks=(3, 4),
                    layout="(N, H, W, C) or (H, W, C)", floating=True)
        return jax.nn.softmax(x, axis=-1)


# ------------------------------------------------------------------ elementwise helpers

class _Elementwise(nnx.Module):
    """Base of the elementwise twins: any shape, torch's layout, shape and dtype kept."""

    def __init__(self, *, rngs: nnx.Rngs | None = None):
        del rngs  # nothing random; accepted for a uniform constructor

    def _f(self, x):
        raise NotImplementedError

    def __call__(self, x):
        """x (*) of any shape, floating-point → same shape and dtype."""
        check_floating_input(x, name="x", layer=type(self).__name__)
        return self._f(x)


class _SmoothElementwise(_Elementwise):
    """An elementwise twin torch computes in float32 for float16/bfloat16 inputs."""

    @in_opmath
    def __call__(self, x):
        """x (*) of any shape, floating-point → same shape and dtype."""
        check_floating_input(x, name="x", layer=type(self).__name__)
        return self._f(x)


def _inplace(value, layer):
    check_bool(value, "inplace", layer)
    return False  # no effect: JAX arrays are immutable, the result is always a new array


# ------------------------------------------------------------------ piecewise linear

class ReLU(_Elementwise):
    """Torch ``nn.ReLU(inplace=False)``: ``max(x, 0)``; any shape, unchanged.

    Derivative as torch: 0 for ``x <= 0`` (so ReLU'(0) = 0), 1 above; NaN passes through
    with slope 1 (torch's ``x <= 0`` test is false for NaN). ``inplace`` has no effect.

    >>> import jax.numpy as jnp
    >>> ReLU()(jnp.array([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 2.0]
    """

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self.inplace = _inplace(inplace, "ReLU")

    def _f(self, x):
        return jnp.where(x <= 0, jnp.zeros_like(x), x)


class Threshold(_Elementwise):
    """Torch ``nn.Threshold(threshold, value, inplace=False)``: ``x`` where
    ``x > threshold``, else ``value``; any shape, unchanged.

    Torch's rule: an ``x`` *equal* to ``threshold`` is replaced (``x <= threshold`` →
    ``value``, slope 0); NaN is kept, with slope 1. Both arguments must be numbers
    (TypeError naming them); NaN arguments are refused (ValueError; torch takes them).

    >>> import jax.numpy as jnp
    >>> Threshold(0.5, -1.0)(jnp.array([0.5, 0.75])).tolist()
    [-1.0, 0.75]
    """

    def __init__(self, threshold: float, value: float, inplace: bool = False, *,
                 rngs: nnx.Rngs | None = None):
        self.threshold = check_float(threshold, "threshold", "Threshold")
        self.value = check_float(value, "value", "Threshold")
        self.inplace = _inplace(inplace, "Threshold")

    def _f(self, x):
        return jnp.where(x <= self.threshold, jnp.full_like(x, self.value), x)


class Hardtanh(_Elementwise):
    """Torch ``nn.Hardtanh(min_val=-1.0, max_val=1.0, inplace=False, min_value=None,
    max_value=None)``: ``x`` clipped to [min_val, max_val]; any shape, unchanged.

    Derivative as torch: 0 at and beyond both bounds (``x <= min_val or x >= max_val``),
    1 strictly inside; NaN passes through with slope 1. ``max_val <= min_val`` is a
    ValueError naming max_val (torch: an AssertionError). ``min_value`` / ``max_value`` are
    torch's deprecated spellings, accepted with its FutureWarning.

    >>> import jax.numpy as jnp
    >>> Hardtanh(-1.0, 2.0)(jnp.array([-3.0, 0.5, 3.0])).tolist()
    [-1.0, 0.5, 2.0]
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False,
                 min_value: float | None = None, max_value: float | None = None, *,
                 rngs: nnx.Rngs | None = None):
        name = type(self).__name__
        if min_value is not None:
            warnings.warn("keyword argument `min_value` is deprecated and renamed to "
                          "`min_val`", FutureWarning, stacklevel=2)
            min_val = min_value
        if max_value is not None:
            warnings.warn("keyword argument `max_value` is deprecated and renamed to "
                          "`max_val`", FutureWarning, stacklevel=2)
            max_val = max_value
        self.min_val = check_float(min_val, "min_val", name)
        self.max_val = check_float(max_val, "max_val", name)
        if self.max_val <= self.min_val:
            raise ValueError(f"{name}: max_val ({self.max_val}) must be greater than min_val "
                             f"({self.min_val})")
        self.inplace = _inplace(inplace, name)

    def _f(self, x):
        lo, hi = self.min_val, self.max_val
        # slope 1 strictly inside only: the bounds themselves (and NaN) get slope 0
        return jnp.where((x > lo) & (x < hi), x, jax.lax.stop_gradient(jnp.clip(x, lo, hi)))


class ReLU6(Hardtanh):
    """Torch ``nn.ReLU6(inplace=False)``: ``Hardtanh(0, 6)`` (a subclass, as in torch);
    slope 0 at 0 and at 6.

    >>> import jax.numpy as jnp
    >>> ReLU6()(jnp.array([-1.0, 3.0, 7.0])).tolist()
    [0.0, 3.0, 6.0]
    """

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        super().__init__(0.0, 6.0, inplace)


class Hardshrink(_Elementwise):
    """Torch ``nn.Hardshrink(lambd=0.5)``: 0 where ``-lambd <= x <= lambd``, else ``x``;
    any shape, unchanged.

    Slope 0 on the closed interval (its ends included), 1 outside; NaN is kept with slope
    1. A negative ``lambd`` is accepted as torch does (the interval is empty: identity).

    >>> import jax.numpy as jnp
    >>> Hardshrink(0.5)(jnp.array([-0.5, 0.25, 1.0])).tolist()
    [0.0, 0.0, 1.0]
    """

    def __init__(self, lambd: float = 0.5, *, rngs: nnx.Rngs | None = None):
        self.lambd = check_float(lambd, "lambd", "Hardshrink")

    def _f(self, x):
        lam = self.lambd
        # slope 1 only where torch's kernel keeps x (|x| beyond lambd); NaN stays NaN with
        # slope 0, as torch's vectorised kernel (its scalar tail gives slope 1)
        keep = (x > lam) | (x < -lam)
        dropped = jnp.where(jnp.isnan(x), x, jnp.zeros_like(x))
        return jnp.where(keep, x, jax.lax.stop_gradient(dropped))


class Softshrink(_SmoothElementwise):
    """Torch ``nn.Softshrink(lambd=0.5)``: ``x - lambd`` above ``lambd``, ``x + lambd``
    below ``-lambd``, 0 in between; any shape, unchanged.

    Slope 0 on the closed interval [-lambd, lambd], 1 outside; NaN is kept with slope 1.
    ``lambd`` must be ≥ 0 (ValueError naming lambd; torch too, at the first call).

    >>> import jax.numpy as jnp
    >>> Softshrink(0.5)(jnp.array([-1.0, 0.5, 2.0])).tolist()
    [-0.5, 0.0, 1.5]
    """

    def __init__(self, lambd: float = 0.5, *, rngs: nnx.Rngs | None = None):
        self.lambd = check_float(lambd, "lambd", "Softshrink", minimum=0.0)

    def _f(self, x):
        lam = self.lambd
        # NaN stays NaN with slope 0, as torch's vectorised kernel (its scalar tail: slope 1)
        inner = jax.lax.stop_gradient(jnp.where(jnp.isnan(x), x, jnp.zeros_like(x)))
        return jnp.where(x > lam, x - lam, jnp.where(x < -lam, x + lam, inner))


class LeakyReLU(_Elementwise):
    """Torch ``nn.LeakyReLU(negative_slope=0.01, inplace=False)``; shape unchanged.

    Torch's rule: ``x`` where ``x > 0``, else ``negative_slope * x``; so the slope *at* 0
    is ``negative_slope`` (``jax.nn.leaky_relu`` takes 1 there), and NaN gets the negative
    slope too. ``inplace`` has no effect.

    ``x`` must be a floating-point array (torch refuses integer and bool tensors; TypeError
    naming x). ``negative_slope`` must be a number: a TypeError at construction (torch: at
    the first call). Stricter than torch: a bool slope and NaN are refused (TypeError,
    ValueError) rather than used as 1.0/0.0 and NaN.

    >>> import jax.numpy as jnp
    >>> LeakyReLU(0.5)(jnp.array([-2.0, 3.0])).tolist()
    [-1.0, 3.0]
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False, *,
                 rngs: nnx.Rngs | None = None):
        self.negative_slope = check_float(negative_slope, "negative_slope", "LeakyReLU")
        self.inplace = _inplace(inplace, "LeakyReLU")

    def _f(self, x):
        return jnp.where(x > 0, x, x * self.negative_slope)


class PReLU(nnx.Module):
    """Torch ``nn.PReLU(num_parameters=1, init=0.25, device=None, dtype=None)``: ``x``
    where ``x > 0``, else ``weight * x``, with a learned slope.

    ``weight``: an ``nnx.Param`` of shape (num_parameters,), filled with ``init`` (torch's
    ``weight``). Layout: torch applies slope ``c`` to its channel axis 1; the twin is
    channels-last, so for an input of rank ≥ 2 the slopes run along the *last* axis:
    torch (N, C, *) is (N, *, C) here, and (N, C) is the same in both. With
    ``num_parameters > 1`` that axis must have ``num_parameters`` entries (ValueError naming
    x). Inputs of rank 0 or 1 have no channel axis: only ``num_parameters=1`` applies
    (as torch, which refuses the others).

    Derivatives as torch: at ``x == 0`` (and NaN) the slope is ``weight``; the gradient of
    ``weight`` is ``sum(x * g)`` over the positions with ``x <= 0``.

    ``device`` is accepted and ignored (JAX places arrays by its own rules). ``dtype`` is
    Flax's computation dtype (torch's ``dtype`` sets the parameter's; here that is
    ``param_dtype``). ``num_parameters`` must be ≥ 1 (torch builds an unusable 0-slope
    module).

    >>> import jax.numpy as jnp
    >>> PReLU(2, 0.5)(jnp.array([[-2.0, -4.0], [1.0, 1.0]])).tolist()
    [[-1.0, -2.0], [1.0, 1.0]]
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None,
                 *, rngs: nnx.Rngs | None = None, param_dtype=jnp.float32):
        del rngs, device  # torch's initialisation is a constant
        self.num_parameters = check_int(num_parameters, "num_parameters", "PReLU", minimum=1)
        self.init = check_float(init, "init", "PReLU")
        self.dtype = dtype
        self.weight = nnx.Param(jnp.full((self.num_parameters,), self.init, param_dtype),
                                torch_name="weight")

    @in_opmath  # the slope gradient is a sum: float32 in half precision, as torch
    def __call__(self, x):
        """x (N, *, C) channels-last, or any shape when num_parameters == 1 → same shape."""
        check_floating_input(x, name="x", layer="PReLU")
        w = self.weight.get_value()
        if self.dtype is not None:
            x, w = x.astype(self.dtype), w.astype(self.dtype)
        if self.num_parameters == 1:
            w = w.reshape(())
        elif x.ndim < 2 or x.shape[-1] != self.num_parameters:
            raise ValueError(
                f"PReLU: x must be channels-last (N, *, C) with C={self.num_parameters} in the "
                f"last axis (num_parameters={self.num_parameters}), got shape "
                f"{tuple(x.shape)}" + (
                    "; it looks channels-first: convert it with "
                    "flax_arch.interop.channels_first_to_last"
                    if x.ndim >= 2 and self.num_parameters in tuple(x.shape[:-1]) else ""))
        return jnp.where(x > 0, x, w * x)


# ------------------------------------------------------------------ smooth

@functools.lru_cache(maxsize=None)
def _elu(alpha: float, scale: float, input_scale: float, grad_input_scale: float | None = None):
    """torch's elu kernel: (exp(x * input_scale) - 1) * alpha * scale where x <= 0, else
    x * scale; its backward takes the exponential branch's slope at 0. ``grad_input_scale``:
    the input scale torch's backward uses, where it differs from the forward's (CELU)."""
    neg = alpha * scale
    gis = input_scale if grad_input_scale is None else grad_input_scale

    def value(x):
        return jnp.where(x <= 0, jnp.expm1(x * input_scale) * neg, x * scale)

    def slope(x):  # NaN takes the exponential branch (NaN), as torch's vectorised kernel
        return jnp.where(x > 0, jnp.full_like(x, scale),
                         gis * neg * jnp.exp(x * gis))

    return with_slope(value, slope)


class ELU(_SmoothElementwise):
    """Torch ``nn.ELU(alpha=1.0, inplace=False)``: ``x`` for ``x > 0``, else
    ``alpha * (exp(x) - 1)``; any shape, unchanged.

    Slope at 0: ``alpha`` (torch takes the exponential branch for ``x <= 0``). ``inplace``
    has no effect.

    >>> import jax.numpy as jnp
    >>> ELU(2.0)(jnp.array([0.0, 1.0])).tolist()
    [0.0, 1.0]
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False, *,
                 rngs: nnx.Rngs | None = None):
        self.alpha = check_float(alpha, "alpha", "ELU")
        self.inplace = _inplace(inplace, "ELU")

    def _f(self, x):
        return _elu(self.alpha, 1.0, 1.0)(x)


class CELU(_SmoothElementwise):
    """Torch ``nn.CELU(alpha=1.0, inplace=False)``: ``x`` for ``x > 0``, else
    ``alpha * (exp(x / alpha) - 1)``; any shape, unchanged.

    Slope 1 at 0 from both sides, up to a torch quirk reproduced here: its backward uses
    ``1 / float32(alpha)`` as the input scale (the forward ``1 / alpha``), so for an alpha
    not exact in float32 the derivative is off by float32 rounding (0.99999996 at 0 for
    alpha=0.3). ``alpha=0`` is a ValueError naming alpha (torch:
    "ZeroDivisionError: alpha cannot be 0 for CELU"). ``inplace`` has no effect.

    >>> import jax.numpy as jnp
    >>> CELU(2.0)(jnp.array([0.0, 1.0])).tolist()
    [0.0, 1.0]
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False, *,
                 rngs: nnx.Rngs | None = None):
        self.alpha = check_float(alpha, "alpha", "CELU")
        if self.alpha == 0:
            raise ValueError("CELU: alpha cannot be 0 (it divides x)")
        self.inplace = _inplace(inplace, "CELU")

    def _f(self, x):
        # torch: input scale 1/alpha; its backward (derivatives.yaml) computes that scale as
        # 1.0 / alpha.toFloat(), i.e. from alpha rounded to float32, so for an alpha such as
        # 0.3 the slope at 0 is 0.99999996, not 1; reproduced here
        grad_scale = 1.0 / float(np.float32(self.alpha))
        return _elu(self.alpha, 1.0, 1.0 / self.alpha, grad_scale)(x)


#: SELU's constants, as torch (Klambauer et al., 2017)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


class SELU(_SmoothElementwise):
    """Torch ``nn.SELU(inplace=False)``: ``scale * ELU(x, alpha)`` with torch's constants
    (:data:`SELU_ALPHA`, :data:`SELU_SCALE`); any shape, unchanged. Slope at 0:
    ``scale * alpha`` (the exponential branch, as torch). ``inplace`` has no effect.

    >>> import jax.numpy as jnp
    >>> SELU()(jnp.array([0.0])).tolist()
    [0.0]
    """

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self.inplace = _inplace(inplace, "SELU")

    def _f(self, x):
        return _elu(SELU_ALPHA, SELU_SCALE, 1.0)(x)


_SQRT1_2 = 0.70710678118654752440  # 1/sqrt(2)
_INV_SQRT_2PI = 0.39894228040143267794  # 1/sqrt(2 pi): the normal density's factor
_SQRT_2_PI = 0.79788456080286535588  # sqrt(2/pi)
_KAPPA = 0.044715


def _gelu_value(x):
    return x * 0.5 * (1 + jax.lax.erf(x * _SQRT1_2))


def _gelu_slope(x):
    cdf = 0.5 * (1 + jax.lax.erf(x * _SQRT1_2))
    return cdf + x * (jnp.exp(-0.5 * x * x) * _INV_SQRT_2PI)


def _gelu_tanh_value(x):
    inner = _SQRT_2_PI * (x + _KAPPA * (x * x * x))
    return 0.5 * x * (1 + jnp.tanh(inner))


def _gelu_tanh_slope(x):
    x2 = x * x
    th = jnp.tanh(_SQRT_2_PI * (x + _KAPPA * (x2 * x)))
    return 0.5 * (1 + th) + (0.5 * x) * (1 - th * th) * _SQRT_2_PI * (1 + 3 * _KAPPA * x2)


_GELU = {"none": with_slope(_gelu_value, _gelu_slope),
         "tanh": with_slope(_gelu_tanh_value, _gelu_tanh_slope)}


class GELU(_SmoothElementwise):
    """Torch ``nn.GELU(approximate='none')``: ``x * Phi(x)``; any shape, unchanged.

    ``approximate='none'``: ``Phi`` is the normal CDF, ``0.5 * (1 + erf(x / sqrt(2)))``;
    ``'tanh'``: torch's approximation ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715
    x^3)))``. Derivatives are torch's ``gelu_backward`` formulas. Another ``approximate``
    is a ValueError naming it (torch: at the first call).

    >>> import jax.numpy as jnp
    >>> GELU('tanh')(jnp.array([0.0])).tolist()
    [0.0]
    """

    def __init__(self, approximate: str = "none", *, rngs: nnx.Rngs | None = None):
        self.approximate = check_choice(approximate, "approximate", ("none", "tanh"), "GELU")

    def _f(self, x):
        return _GELU[self.approximate](x)


def _mish_value(x):
    return x * jnp.tanh(jnp.log1p(jnp.exp(x)))


def _mish_slope(x):
    sig = 1 / (1 + jnp.exp(-x))
    tsp = jnp.tanh(jnp.log1p(jnp.exp(x)))
    return tsp + x * sig * (1 - tsp * tsp)


class Mish(_SmoothElementwise):
    """Torch ``nn.Mish(inplace=False)``: ``x * tanh(softplus(x))``; any shape, unchanged.

    Values and derivative are torch's kernel formulas (softplus as ``log1p(exp(x))``, no
    threshold), so non-finite inputs give what torch gives (``Mish(-inf)`` is NaN).
    ``inplace`` has no effect.

    >>> import jax.numpy as jnp
    >>> Mish()(jnp.array([0.0])).tolist()
    [0.0]
    """

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self.inplace = _inplace(inplace, "Mish")

    def _f(self, x):
        return _MISH(x)


_MISH = with_slope(_mish_value, _mish_slope)


def _silu_slope(x):
    sig = 1 / (1 + jnp.exp(-x))
    return sig * (1 + x * (1 - sig))


_SILU = with_slope(lambda x: x / (1 + jnp.exp(-x)), _silu_slope)


class SiLU(_SmoothElementwise):
    """Torch ``nn.SiLU(inplace=False)``: ``x * sigmoid(x)`` (torch's ``x / (1 + exp(-x))``,
    and its backward ``s * (1 + x * (1 - s))``); any shape, unchanged. ``inplace`` has no
    effect.

    >>> import jax.numpy as jnp
    >>> SiLU()(jnp.array([0.0])).tolist()
    [0.0]
    """

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self.inplace = _inplace(inplace, "SiLU")

    def _f(self, x):
        return _SILU(x)


def _log_sigmoid_slope(x):
    neg = x < 0
    z = jnp.exp(-jnp.abs(x))
    return jnp.where(neg, 1.0, 0.0).astype(x.dtype) - jnp.where(neg, 1.0, -1.0).astype(
        x.dtype) * (z / (1 + z))


_LOG_SIGMOID = with_slope(
    lambda x: jnp.minimum(x, 0) - jnp.log1p(jnp.exp(-jnp.abs(x))), _log_sigmoid_slope)


class LogSigmoid(_SmoothElementwise):
    """Torch ``nn.LogSigmoid()``: ``log(1 / (1 + exp(-x)))``, computed stably as torch
    (``min(x, 0) - log1p(exp(-|x|))``); any shape, unchanged.

    >>> import jax.numpy as jnp
    >>> LogSigmoid()(jnp.array([0.0])).tolist()  # doctest: +ELLIPSIS
    [-0.693...]
    """

    def _f(self, x):
        return _LOG_SIGMOID(x)


class Sigmoid(_SmoothElementwise):
    """Torch ``nn.Sigmoid()``: ``1 / (1 + exp(-x))``; any shape, unchanged (derivative
    ``y * (1 - y)``, as torch's ``sigmoid_backward``).

    >>> import jax.numpy as jnp
    >>> Sigmoid()(jnp.array([0.0])).tolist()
    [0.5]
    """

    def _f(self, x):
        return jax.nn.sigmoid(x)




class Tanh(_SmoothElementwise):
    """Torch ``nn.Tanh()``; any shape, unchanged. Derivative ``1 - y**2`` from the output
    ``y``, as torch's ``tanh_backward``; ``y`` is computed to match torch's rounding where
    that derivative is small (see ``_tanh_value``).

    >>> import jax.numpy as jnp
    >>> Tanh()(jnp.array([0.0])).tolist()
    [0.0]
    """

    def _f(self, x):
        return torch_tanh(x)


class Tanhshrink(_SmoothElementwise):
    """Torch ``nn.Tanhshrink()``: ``x - tanh(x)``; any shape, unchanged.

    >>> import jax.numpy as jnp
    >>> Tanhshrink()(jnp.array([0.0])).tolist()
    [0.0]
    """

    def _f(self, x):
        return x - jnp.tanh(x)


class Softsign(_SmoothElementwise):
    """Torch ``nn.Softsign()``: ``x / (1 + |x|)``; any shape, unchanged (slope 1 at 0).

    >>> import jax.numpy as jnp
    >>> Softsign()(jnp.array([1.0])).tolist()
    [0.5]
    """

    def _f(self, x):
        return x / (jnp.abs(x) + 1)


class Hardswish(_SmoothElementwise):
    """Torch ``nn.Hardswish(inplace=False)``: ``x * relu6(x + 3) / 6``; any shape,
    unchanged.

    Derivative as torch's ``hardswish_backward``: 0 for ``x <= -3``, ``x / 3 + 0.5`` for
    ``-3 < x < 3``, 1 for ``x >= 3`` (so 0 at -3 and 1 at +3), and 1 for NaN.
    ``inplace`` has no effect.

    >>> import jax.numpy as jnp
    >>> Hardswish()(jnp.array([0.0, 1.5, 4.0])).tolist()
    [0.0, 1.125, 4.0]
    """

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self.inplace = _inplace(inplace, "Hardswish")

    def _f(self, x):
        return _HARDSWISH(x)


def _hardswish_value(x):
    return x * jnp.clip(x + 3, 0, 6) / 6  # torch's formula everywhere: -inf gives NaN


def _hardswish_slope(x):
    one = jnp.ones_like(x)
    # NaN falls to the middle formula (NaN), as torch's vectorised kernel
    return jnp.where(x <= -3, jnp.zeros_like(x), jnp.where(x >= 3, one, x / 3 + 0.5))


_HARDSWISH = with_slope(_hardswish_value, _hardswish_slope)


@functools.lru_cache(maxsize=None)
def _softplus(beta: float, threshold: float):
    """torch's softplus kernel: x where beta * x > threshold, else log1p(exp(beta * x)) /
    beta; slope 1 there, else z / (z + 1) with z = exp(beta * x)."""

    def value(x):
        bx = x * beta
        return jnp.where(bx > threshold, x, jnp.log1p(jnp.exp(bx)) / beta)

    def slope(x):
        bx = x * beta
        z = jnp.exp(bx)
        return jnp.where(bx > threshold, jnp.ones_like(x), z / (z + 1))

    return with_slope(value, slope)


class Softplus(_SmoothElementwise):
    """Torch ``nn.Softplus(beta=1.0, threshold=20.0)``: ``log(1 + exp(beta * x)) / beta``,
    reverting to ``x`` where ``beta * x > threshold``; any shape, unchanged.

    The switch is torch's: strictly above ``threshold`` (at ``beta * x == threshold`` the
    log form and its slope ``sigmoid(beta * x)`` are used). Both arguments must be numbers
    (TypeError naming them); NaN is refused (ValueError). ``beta=0`` is accepted as torch
    does (values inf).

    >>> import jax.numpy as jnp
    >>> Softplus(threshold=0.5)(jnp.array([1.0])).tolist()
    [1.0]
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0, *,
                 rngs: nnx.Rngs | None = None):
        self.beta = check_float(beta, "beta", "Softplus")
        self.threshold = check_float(threshold, "threshold", "Softplus")

    def _f(self, x):
        return _softplus(self.beta, self.threshold)(x)


class GLU(nnx.Module):
    """Torch ``nn.GLU(dim=-1)``: splits ``x`` in halves ``a, b`` along axis ``dim`` and
    returns ``a * sigmoid(b)``: that axis halves, the others are unchanged.

    ``dim`` indexes ``x`` as given (no layout change; for torch's ``GLU(1)`` on a
    channels-first input, pass the channels-last axis, e.g. ``GLU(-1)``). A ``dim``
    outside ``x``'s axes is a ``numpy.exceptions.AxisError`` naming dim (an IndexError, as
    torch's, and a ValueError); an odd size along it, or a 0-d ``x``, a ValueError.

    >>> import jax.numpy as jnp
    >>> GLU()(jnp.array([[2.0, 0.0]])).tolist()
    [[1.0]]
    """

    def __init__(self, dim: int = -1, *, rngs: nnx.Rngs | None = None):
        del rngs
        self.dim = check_int(dim, "dim", "GLU")

    @in_opmath
    def __call__(self, x):
        """x (*, 2n, *) → (*, n, *): the axis ``dim`` halves."""
        check_floating_input(x, name="x", layer="GLU")
        if x.ndim == 0:
            raise ValueError("GLU: x must have at least one axis (it is halved along dim), "
                             "got a 0-d array")
        if not -x.ndim <= self.dim < x.ndim:
            raise np.exceptions.AxisError(
                f"GLU: dim must be in [{-x.ndim}, {x.ndim - 1}] for x of shape "
                f"{tuple(x.shape)}, got {self.dim}")
        n = x.shape[self.dim]
        if n % 2:
            raise ValueError(f"GLU: the axis dim={self.dim} of x is halved, so its size must be "
                             f"even, got {n} (x of shape {tuple(x.shape)})")
        a, b = jnp.split(x, 2, axis=self.dim)
        return a * jax.nn.sigmoid(b)
