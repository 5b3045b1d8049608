"""Torch's loss modules (all but ``CTCLoss``, see :mod:`flax_arch.nn.ctc`), as NNX modules.

Each class has torch's name, constructor arguments (names, order, defaults) and forward
arguments, and returns torch's value and torch's gradients with respect to every floating
argument, including at the kinks and clamps where torch's hand-written backward formulas
differ from what autodiff of the forward would give (L1 at 0: ``sign(0) = 0``; the hinge
losses' ``z > 0`` vs ``clamp_min``'s ``≥``; BCELoss's ``1e-12`` floor and its
``-logit(input)`` target gradient; GaussianNLLLoss's variance clamp, which torch applies
without recording it, so its gradient passes straight through).

**Reduction.** ``reduction`` is ``'mean'`` | ``'sum'`` | ``'none'`` (KLDivLoss also
``'batchmean'``), checked at construction (torch: at the first call). The deprecated
``size_average`` / ``reduce`` are accepted and mapped by torch's legacy rule (both
default to True; ``reduce=False`` → ``'none'``; ``size_average=False`` → ``'sum'``;
otherwise ``'mean'``), overriding ``reduction`` with the same UserWarning torch gives;
they must be bools or None. ``'mean'`` of an empty input is NaN, as in torch.

**Layout.** Only ``CrossEntropyLoss`` and ``NLLLoss`` have a class axis inside a
batched, spatial input, and it is channels-last here: torch's ``(N, C, d1, …, dk)`` is
``(N, d1, …, dk, C)``; ``(N, C)`` and unbatched ``(C,)`` are unchanged; a class-index
target ``(N, d1, …, dk)`` is the same in both; a class-probability target is laid out
like the input. Every other loss is elementwise or works on torch's own axes, so its
layout is torch's (``BCEWithLogitsLoss``'s ``pos_weight`` broadcasts against the input's
*trailing* axes, by numpy/torch broadcasting, as in torch: a ``(C,)`` pos_weight weighs
the class axis of an ``(N, C)`` input; for ``(N, C, H, W)`` torch's docs use a
``(C, 1, 1)`` pos_weight and so does this port, since the input keeps torch's layout).

**Buffers.** ``weight`` (and ``pos_weight``) are torch buffers: stored as
:class:`flax_arch.nn._utils.Buffer` with their torch names, so
``load_torch_state_dict`` / ``to_torch_state_dict`` round-trip them; None stays None.
They are cast to the input's dtype at the call (torch requires them to match).

**Half precision.** float16/bfloat16 inputs are computed in float32 and the loss rounded
once (``in_opmath``), as torch's CPU kernels accumulate.

**Checks.** Inputs must be floating point (TypeError naming the argument); class-index
targets must be integer arrays (int32 and int64 both work); shape mismatches are
ValueErrors naming the argument and the expected shape. Value checks that torch makes on
the data (class index out of range, BCELoss input outside [0, 1], a negative variance)
raise here when the arrays are concrete; under ``jax.jit`` / ``jax.grad`` they cannot
raise, and an out-of-range class index gives NaN instead.

Differences from torch (all refusals of what torch accepts or fails on later):
``reduction``, ``beta``, ``delta``, ``label_smoothing``, ``p`` and the weights are
validated at construction (torch: mostly at the first call); the deprecated
``reduction='elementwise_mean'`` is refused; ``label_smoothing`` must lie in [0, 1]
(torch ignores a negative value); a bool ``margin`` or ``eps`` is refused.
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ..ops.elementwise import torch_log_softmax
from ._utils import Buffer, check_bool, check_choice, check_float, check_floating_input, in_opmath

__all__ = ["L1Loss", "MSELoss", "SmoothL1Loss", "HuberLoss", "SoftMarginLoss", "BCELoss",
           "BCEWithLogitsLoss", "KLDivLoss", "PoissonNLLLoss", "GaussianNLLLoss",
           "MarginRankingLoss", "HingeEmbeddingLoss", "CosineEmbeddingLoss",
           "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss", "MultiMarginLoss", "NLLLoss",
           "CrossEntropyLoss"]

_REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------- helpers

def _host(x):
    """``x`` as a numpy array when it is concrete (a value check can run), else None.
    The check itself must run in numpy: under a trace, jnp ops on constants are staged."""
    if isinstance(x, jax.core.Tracer):
        return None
    return np.asarray(x)


def _array(x, name: str, layer: str):
    if not hasattr(x, "ndim") or not hasattr(x, "dtype"):
        raise TypeError(f"{layer}: {name} must be an array, got {type(x).__name__}")
    return jnp.asarray(x)


def _floating(x, name: str, layer: str):
    x = _array(x, name, layer)
    check_floating_input(x, name=name, layer=layer)
    return x


def _integer(x, name: str, layer: str):
    x = _array(x, name, layer)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"{layer}: {name} must be an integer array of class indices (int32 "
                        f"or int64), got dtype {x.dtype}")
    return x


def _weight_buffer(weight, name: str, layer: str, *, ndim1: bool = False):
    """A torch buffer argument as a :class:`Buffer` (``torch_name=name``), None as None."""
    if weight is None:
        return None
    if not hasattr(weight, "dtype"):
        raise TypeError(f"{layer}: {name} must be an array or None, got "
                        f"{type(weight).__name__}")
    w = jnp.asarray(weight)
    if not jnp.issubdtype(w.dtype, jnp.floating):
        raise TypeError(f"{layer}: {name} must be a floating-point array, got dtype {w.dtype}")
    if ndim1 and w.ndim != 1:
        raise ValueError(f"{layer}: expected {name} to be None or a 1-D array, got shape "
                         f"{tuple(w.shape)}")
    return Buffer(w, torch_name=name)


def _get(buf, dtype):
    """A buffer's value in the computation dtype, or None."""
    return None if buf is None else buf.get_value().astype(dtype)


def _legacy_reduction(size_average, reduce, reduction, layer: str) -> str:
    """torch's ``_Reduction.legacy_get_string``, with its warning, when either legacy
    argument is given; ``reduction`` otherwise."""
    if size_average is None and reduce is None:
        return reduction
    for v, n in ((size_average, "size_average"), (reduce, "reduce")):
        if v is not None:
            check_bool(v, n, layer)
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    out = "mean" if (size_average and reduce) else "sum" if reduce else "none"
    warnings.warn(f"size_average and reduce args will be deprecated, please use "
                  f"reduction='{out}' instead.", UserWarning, stacklevel=4)
    return out


def _reduce(loss, reduction: str):
    if reduction == "mean":
        return jnp.mean(loss)
    if reduction == "sum":
        return jnp.sum(loss)
    return loss


def _clamp_min(x, m):
    """``x.clamp_min(m)`` with torch's gradient: it passes where ``x ≥ m`` (JAX's
    ``maximum`` would halve it at a tie)."""
    return jnp.where(x < m, jnp.asarray(m, x.dtype), x)


def _abs(d):
    """``|d|`` with torch's derivative ``sign(d)``, 0 at 0 (JAX's ``abs`` gives 1 there)."""
    return d * jnp.sign(d)  # exact: sign is ±1 or 0 (NaN stays NaN); its derivative is 0


def _positive_part(z):
    """``z if z > 0 else 0`` with the gradient of torch's margin kernels: zero at z = 0."""
    return jnp.where(z > 0, z, jnp.zeros_like(z))


def _broadcast_target(x, t, layer: str):
    """torch's regression losses: a target of another shape is broadcast, with its warning."""
    if tuple(t.shape) != tuple(x.shape):
        warnings.warn(
            f"Using a target size ({tuple(t.shape)}) that is different to the input size "
            f"({tuple(x.shape)}). This will likely lead to incorrect results due to "
            f"broadcasting. Please ensure they have the same size.", UserWarning, stacklevel=4)
        try:
            shape = jnp.broadcast_shapes(x.shape, t.shape)
        except ValueError:
            raise ValueError(f"{layer}: target of shape {tuple(t.shape)} does not broadcast "
                             f"with input of shape {tuple(x.shape)}") from None
        x, t = jnp.broadcast_to(x, shape), jnp.broadcast_to(t, shape)
    return x, t


def _check_broadcasts_to(w, shape, name: str, layer: str):
    """``w`` broadcasts to ``shape`` without growing it (torch multiplies in place)."""
    try:
        ok = jnp.broadcast_shapes(tuple(w.shape), tuple(shape)) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{layer}: {name} of shape {tuple(w.shape)} must broadcast to the "
                         f"input's shape {tuple(shape)}")


def _xlogy(x, y):
    """torch's ``xlogy``: ``x·log(y)``, 0 where ``x == 0``, NaN where ``y`` is NaN."""
    out = jnp.where(x == 0, jnp.zeros_like(x * y), x * jnp.log(y))
    return jnp.where(jnp.isnan(y), jnp.full_like(out, jnp.nan), out)


@jax.custom_jvp
def _kl_term(x, t):
    """KLDivLoss's elementwise ``xlogy(t, t) − t·x`` with torch's derivatives."""
    return _xlogy(t, t) - t * x


@_kl_term.defjvp
def _kl_term_jvp(primals, tangents):
    # torch: xlogy's derivatives are xlogy(t != 0, t) and t / t (NaN at t = 0), and its
    # autograd adds them before the −x of the product: the target's derivative is formed
    # in that order here, so its cancellation near log t + 1 = x rounds as torch's does
    x, t = primals
    dx, dt = tangents
    out = _kl_term(x, t)
    log_t = jnp.log(_log_operand(t)).astype(t.dtype)
    d_first = jnp.where(t != 0, log_t, jnp.zeros_like(log_t))  # xlogy(t != 0, t)
    d_first = jnp.where(jnp.isnan(t), jnp.full_like(d_first, jnp.nan), d_first)
    coef = (d_first + t / t) - x
    return out, dt * coef - dx * t


def _log_operand(t):
    """``t`` such that ``log`` of it rounds as torch's float32 log: where float64 exists,
    a float32 ``t`` is upcast (its float64 log rounded back agrees with torch's in 99.5% of
    cases, XLA's float32 log in 75%). Only used where a cancellation magnifies that last
    bit: the KL target derivative ``log t + 1 − x``."""
    if t.dtype == jnp.float32 and jax.dtypes.canonicalize_dtype(jnp.float64) == jnp.float64:
        return t.astype(jnp.float64)
    return t


#: torch's ``EPSILON`` of the BCE backward and of cosine_embedding_loss: the float32
#: constant 1e-12 (9.99999996e-13), not the double
_TORCH_EPS = float(np.float32(1e-12))


@jax.custom_jvp
def _bce(x, t):
    """torch's elementwise binary cross-entropy, logs clamped at -100."""
    return (t - 1) * jnp.maximum(jnp.log1p(-x), -100.0) - t * jnp.maximum(jnp.log(x), -100.0)


@_bce.defjvp
def _bce_jvp(primals, tangents):
    # torch's backward ignores the clamps: (x − t) / max((1 − x)·x, 1e-12) for the input,
    # −logit(x) for the target
    x, t = primals
    dx, dt = tangents
    gx = (x - t) / jnp.maximum((1 - x) * x, _TORCH_EPS)
    gt = -jnp.log(x / (1 - x))
    return _bce(x, t), dx * gx + dt * gt


@jax.custom_jvp
def _clamp_no_grad(v, eps):
    """``v.clamp(min=eps)`` done as torch's GaussianNLLLoss does it, under ``no_grad`` on a
    clone: the value is clamped, the derivative is the identity."""
    return jnp.maximum(v, eps)


@_clamp_no_grad.defjvp
def _clamp_no_grad_jvp(primals, tangents):
    v, eps = primals
    return jnp.maximum(v, eps), tangents[0]


class _Loss(nnx.Module):
    """Holds ``reduction`` (after torch's legacy mapping), checked against ``_choices``."""
    _choices = _REDUCTIONS

    def _set_reduction(self, size_average, reduce, reduction):
        name = type(self).__name__
        reduction = _legacy_reduction(size_average, reduce, reduction, name)
        self.reduction = check_choice(reduction, "reduction", self._choices, name)


class _Regression(_Loss):
    """Elementwise losses of (input, target): same shapes, or broadcast with torch's
    warning; output as the input (``'none'``) or a 0-d array."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", *,
                 rngs: nnx.Rngs | None = None):
        del rngs  # no parameters; accepted for a uniform API
        self._set_reduction(size_average, reduce, reduction)

    def _elementwise(self, x, t):
        raise NotImplementedError

    @in_opmath
    def __call__(self, input, target):
        """``input`` (*) floating, ``target`` of input's shape (torch's layout): the loss,
        0-d, or input's shape with ``reduction='none'``."""
        name = type(self).__name__
        x = _floating(input, "input", name)
        t = _array(target, "target", name)
        x, t = _broadcast_target(x, t, name)
        return _reduce(self._elementwise(x, t), self.reduction)


# ----------------------------------------------------------------------------- regression

class L1Loss(_Regression):
    """Torch ``nn.L1Loss(size_average=None, reduce=None, reduction='mean')``:
    ``|input − target|``, reduced. The gradient at ``input == target`` is 0 (torch's
    ``sign(0)``; JAX's own ``abs`` would give 1).

    >>> import jax.numpy as jnp
    >>> float(L1Loss()(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0])))
    1.5
    """

    def _elementwise(self, x, t):
        return _abs(x - t)


class MSELoss(_Regression):
    """Torch ``nn.MSELoss(size_average=None, reduce=None, reduction='mean')``:
    ``(input − target)²``, reduced.

    >>> import jax.numpy as jnp
    >>> float(MSELoss(reduction='sum')(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0])))
    5.0
    """

    def _elementwise(self, x, t):
        d = x - t
        return d * d


class SmoothL1Loss(_Regression):
    """Torch ``nn.SmoothL1Loss(size_average=None, reduce=None, reduction='mean',
    beta=1.0)``: with ``z = |input − target|``, ``0.5·z²/beta`` where ``z < beta``, else
    ``z − 0.5·beta``; ``beta = 0`` is L1Loss, as torch. ``beta`` must be ≥ 0 (ValueError at
    construction; torch: at the call).

    >>> import jax.numpy as jnp
    >>> float(SmoothL1Loss()(jnp.array([0.5, 3.0]), jnp.zeros(2)))
    1.3125
    """

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 beta: float = 1.0, *, rngs: nnx.Rngs | None = None):
        super().__init__(size_average, reduce, reduction, rngs=rngs)
        self.beta = check_float(beta, "beta", "SmoothL1Loss", minimum=0.0)

    def _elementwise(self, x, t):
        d = x - t
        z = _abs(d)
        if self.beta == 0.0:
            return z
        # the quadratic branch's derivative is d/beta, the linear one's sign(d): torch's
        # backward takes the linear side at |d| == beta, and both agree there
        return jnp.where(z < self.beta, 0.5 * d * d / self.beta, z - 0.5 * self.beta)


class HuberLoss(_Regression):
    """Torch ``nn.HuberLoss(reduction='mean', delta=1.0)``: with ``z = |input − target|``,
    ``0.5·z²`` where ``z < delta``, else ``delta·(z − 0.5·delta)``. ``delta`` must be a
    number (TypeError, as torch) and > 0 (ValueError at construction; torch: at the call).

    >>> import jax.numpy as jnp
    >>> float(HuberLoss(delta=2.0)(jnp.array([1.0, 4.0]), jnp.zeros(2)))
    3.25
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0, *,
                 rngs: nnx.Rngs | None = None):
        super().__init__(None, None, reduction, rngs=rngs)
        self.delta = check_float(delta, "delta", "HuberLoss")
        if not self.delta > 0:
            raise ValueError(f"HuberLoss: delta must be positive, got {self.delta}")

    def _elementwise(self, x, t):
        d = x - t
        z = _abs(d)
        return jnp.where(z < self.delta, 0.5 * d * d, self.delta * (z - 0.5 * self.delta))


class SoftMarginLoss(_Regression):
    """Torch ``nn.SoftMarginLoss(size_average=None, reduce=None, reduction='mean')``:
    ``log(1 + exp(−target·input))``, reduced; ``target`` holds ±1 (any floating values
    are used as given, as torch). torch's ``soft_margin_loss`` is not differentiable
    w.r.t. ``target`` (it refuses a target that requires grad); here the target is a
    constant of the derivative (``stop_gradient``): its gradient is 0.

    >>> import jax.numpy as jnp
    >>> round(float(SoftMarginLoss()(jnp.array([0.0]), jnp.array([1.0]))), 6)
    0.693147
    """

    def _elementwise(self, x, t):
        return jnp.log1p(jnp.exp(-x * jax.lax.stop_gradient(t)))


# ----------------------------------------------------------------------------- binary

class BCELoss(_Loss):
    """Torch ``nn.BCELoss(weight=None, size_average=None, reduce=None, reduction='mean')``:
    ``−w·(t·log(x) + (1 − t)·log(1 − x))`` with each log clamped at −100, as torch.

    ``input`` (*) probabilities in [0, 1], ``target`` of the same shape (ValueError
    otherwise, as torch); ``weight`` (a Buffer, torch name ``weight``) broadcasts to the
    target's shape. Gradients are torch's formulas, which ignore the clamps: w.r.t. the
    input ``w·(x − t) / max((1 − x)·x, ε)`` (ε = float32(1e-12), torch's constant),
    w.r.t. the target ``−w·logit(x)``.

    >>> import jax.numpy as jnp
    >>> round(float(BCELoss()(jnp.array([0.5]), jnp.array([1.0]))), 6)
    0.693147
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean",
                 *, rngs: nnx.Rngs | None = None):
        del rngs
        self._set_reduction(size_average, reduce, reduction)
        self.weight = _weight_buffer(weight, "weight", "BCELoss")

    @in_opmath
    def __call__(self, input, target):
        """``input`` (*), ``target`` (*) of the same shape: 0-d loss, or (*) with 'none'."""
        x = _floating(input, "input", "BCELoss")
        t = _floating(target, "target", "BCELoss")
        if tuple(t.shape) != tuple(x.shape):
            raise ValueError(f"BCELoss: target must have the input's shape {tuple(x.shape)}, "
                             f"got {tuple(t.shape)}")
        xh = _host(x)
        if xh is not None and xh.size and not np.all((xh >= 0) & (xh <= 1)):
            raise ValueError("BCELoss: all elements of input should be between 0 and 1")
        loss = _bce(x, t.astype(x.dtype))
        w = _get(self.weight, x.dtype)
        if w is not None:
            _check_broadcasts_to(w, t.shape, "weight", "BCELoss")
            loss = loss * w
        return _reduce(loss, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Torch ``nn.BCEWithLogitsLoss(weight=None, size_average=None, reduce=None,
    reduction='mean', pos_weight=None)``: with ``lw = 1 + (pos_weight − 1)·t``,
    ``w·((1 − t)·x − lw·log_sigmoid(x))``.

    ``input`` (*) logits and ``target`` (*) the same shape (ValueError otherwise, as torch),
    torch's layout. ``weight`` and ``pos_weight`` (Buffers, torch names ``weight`` /
    ``pos_weight``) must broadcast to the input's shape; broadcasting aligns trailing axes
    as in torch, so a (C,) ``pos_weight`` weighs the last axis, the class axis of an
    (N, C) input.

    >>> import jax.numpy as jnp
    >>> round(float(BCEWithLogitsLoss()(jnp.array([0.0]), jnp.array([1.0]))), 6)
    0.693147
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean",
                 pos_weight=None, *, rngs: nnx.Rngs | None = None):
        del rngs
        self._set_reduction(size_average, reduce, reduction)
        self.weight = _weight_buffer(weight, "weight", "BCEWithLogitsLoss")
        self.pos_weight = _weight_buffer(pos_weight, "pos_weight", "BCEWithLogitsLoss")

    @in_opmath
    def __call__(self, input, target):
        """``input`` (*), ``target`` (*) of the same shape: 0-d loss, or (*) with 'none'."""
        name = "BCEWithLogitsLoss"
        x = _floating(input, "input", name)
        t = _floating(target, "target", name)
        if tuple(t.shape) != tuple(x.shape):
            raise ValueError(f"{name}: target size {tuple(t.shape)} must be the same as input "
                             f"size {tuple(x.shape)}")
        t = t.astype(x.dtype)
        log_sig = jax.nn.log_sigmoid(x)
        pw = _get(self.pos_weight, x.dtype)
        if pw is not None:
            _check_broadcasts_to(pw, x.shape, "pos_weight", name)
            log_sig = log_sig * ((pw - 1) * t + 1)
        loss = (1 - t) * x - log_sig
        w = _get(self.weight, x.dtype)
        if w is not None:
            _check_broadcasts_to(w, x.shape, "weight", name)
            loss = loss * w
        return _reduce(loss, self.reduction)


# ----------------------------------------------------------------------------- likelihoods

class KLDivLoss(_Loss):
    """Torch ``nn.KLDivLoss(size_average=None, reduce=None, reduction='mean',
    log_target=False)``: ``target·(log target − input)`` (``xlogy(t, t) − t·input``, 0
    where ``t == 0``), or with ``log_target`` ``exp(t)·(t − input)``; ``input`` holds
    log-probabilities, torch's layout, ``target`` broadcastable to it.

    ``reduction`` may also be ``'batchmean'``: the sum divided by ``input.shape[0]`` (not
    divided for a 0-d input, as torch). ``'mean'`` warns as torch does (it divides by the
    number of elements, not the batch size). The target's gradient at ``t == 0`` is NaN
    without ``log_target``, as torch's.

    >>> import jax.numpy as jnp
    >>> float(KLDivLoss(reduction='sum')(jnp.log(jnp.array([0.5, 0.5])), jnp.array([0.5, 0.5])))
    0.0
    """
    _choices = ("mean", "sum", "none", "batchmean")

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 log_target: bool = False, *, rngs: nnx.Rngs | None = None):
        del rngs
        self._set_reduction(size_average, reduce, reduction)
        self.log_target = check_bool(log_target, "log_target", "KLDivLoss")

    @in_opmath
    def __call__(self, input, target):
        """``input`` (*) log-probabilities, ``target`` (*): 0-d loss, or (*) with 'none'."""
        x = _floating(input, "input", "KLDivLoss")
        t = _floating(target, "target", "KLDivLoss").astype(x.dtype)
        if self.reduction == "mean":
            warnings.warn(
                "reduction: 'mean' divides the total loss by both the batch size and the "
                "support size.'batchmean' divides only by the batch size, and aligns with the "
                "KL div math definition.'mean' will be changed to behave the same as "
                "'batchmean' in the next major release.", UserWarning, stacklevel=3)
        if self.log_target:
            loss = jnp.exp(t) * (t - x)
        else:
            loss = _kl_term(x, t)
        if self.reduction == "batchmean":
            total = jnp.sum(loss)
            return total / x.shape[0] if x.ndim != 0 else total
        return _reduce(loss, self.reduction)


class PoissonNLLLoss(_Loss):
    """Torch ``nn.PoissonNLLLoss(log_input=True, full=False, size_average=None, eps=1e-8,
    reduce=None, reduction='mean')``: ``exp(input) − target·input`` (``log_input``), else
    ``input − target·log(input + eps)``; with ``full`` plus Stirling's term
    ``t·log t − t + 0.5·log(2π·t)`` where ``t > 1``. The forward's first argument is
    torch's ``log_input``; torch's layout.

    >>> import jax.numpy as jnp
    >>> float(PoissonNLLLoss()(jnp.zeros(3), jnp.ones(3)))
    1.0
    """

    def __init__(self, log_input: bool = True, full: bool = False, size_average=None,
                 eps: float = 1e-8, reduce=None, reduction: str = "mean", *,
                 rngs: nnx.Rngs | None = None):
        del rngs
        self._set_reduction(size_average, reduce, reduction)
        self.log_input = check_bool(log_input, "log_input", "PoissonNLLLoss")
        self.full = check_bool(full, "full", "PoissonNLLLoss")
        self.eps = check_float(eps, "eps", "PoissonNLLLoss")

    @in_opmath
    def __call__(self, log_input, target):
        """``log_input`` (*) and ``target`` (*) broadcastable: 0-d loss, or the broadcast
        shape with 'none'."""
        x = _floating(log_input, "log_input", "PoissonNLLLoss")
        t = _array(target, "target", "PoissonNLLLoss")
        if self.log_input:
            loss = jnp.exp(x) - t * x
        else:
            loss = x - t * jnp.log(x + self.eps)
        if self.full:
            # computed everywhere and masked, as torch: a target t ≤ 1 that requires grad
            # gets torch's (NaN at t = 0) gradient
            stirling = t * jnp.log(t) - t + 0.5 * jnp.log((2 * math.pi) * t)
            loss = loss + jnp.where(t <= 1, jnp.zeros_like(stirling), stirling)
        return _reduce(loss, self.reduction)


class GaussianNLLLoss(_Loss):
    """Torch ``nn.GaussianNLLLoss(*, full=False, eps=1e-6, reduction='mean')``:
    ``0.5·(log v + (input − target)²/v)`` (+ ``0.5·log 2π`` with ``full``), where
    ``v = var`` clamped at ``eps`` the way torch does it — without recording the clamp, so
    the gradient w.r.t. ``var`` passes straight through the clamp.

    ``var``: input's shape (heteroscedastic); input's shape less its last axis, or that
    shape with a trailing 1, or one axis of size 1 (homoscedastic, broadcast); or a Python
    number (torch: a float only; an int is taken too). A negative entry is a ValueError when
    ``var`` is concrete, as torch; torch's layout throughout.

    >>> import jax.numpy as jnp
    >>> float(GaussianNLLLoss()(jnp.zeros(2), jnp.zeros(2), jnp.ones(2)))
    0.0
    """

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean",
                 rngs: nnx.Rngs | None = None):
        del rngs
        self._set_reduction(None, None, reduction)
        self.full = check_bool(full, "full", "GaussianNLLLoss")
        self.eps = check_float(eps, "eps", "GaussianNLLLoss")

    @in_opmath
    def __call__(self, input, target, var):
        """``input`` (*), ``target`` (*), ``var`` as above: 0-d loss, or (*) with 'none'."""
        name = "GaussianNLLLoss"
        x = _floating(input, "input", name)
        t = _array(target, "target", name)
        if isinstance(var, (int, float, np.integer, np.floating)) and not isinstance(var, bool):
            if var < 0:
                raise ValueError(f"{name}: var has negative entry/entries")
            v = var * jnp.ones_like(x)
        else:
            v = _floating(var, "var", name).astype(x.dtype)
            vh = _host(v)
            if vh is not None and np.any(vh < 0):
                raise ValueError(f"{name}: var has negative entry/entries")
        if tuple(v.shape) != tuple(x.shape):
            if tuple(x.shape[:-1]) == tuple(v.shape):
                v = v[..., None]
            elif not (x.ndim == v.ndim and sum(b for a, b in zip(x.shape, v.shape)
                                               if a != b) == 1):
                raise ValueError(f"{name}: var is of incorrect size: got shape "
                                 f"{tuple(v.shape)} for input of shape {tuple(x.shape)}")
        v = _clamp_no_grad(v, self.eps)
        loss = 0.5 * (jnp.log(v) + (x - t) ** 2 / v)
        if self.full:
            loss = loss + 0.5 * math.log(2 * math.pi)
        return _reduce(loss, self.reduction)


# ----------------------------------------------------------------------------- margins

class MarginRankingLoss(_Loss):
    """Torch ``nn.MarginRankingLoss(margin=0.0, size_average=None, reduce=None,
    reduction='mean')``: ``max(0, −target·(input1 − input2) + margin)``. All three
    arguments must have the same rank (ValueError, torch: RuntimeError); ``target`` (±1) may
    be an integer array. The gradient passes at the kink, as torch's ``clamp_min``.

    >>> import jax.numpy as jnp
    >>> float(MarginRankingLoss()(jnp.array([1.0]), jnp.array([2.0]), jnp.array([1.0])))
    1.0
    """

    def __init__(self, margin: float = 0.0, size_average=None, reduce=None,
                 reduction: str = "mean", *, rngs: nnx.Rngs | None = None):
        del rngs
        self._set_reduction(size_average, reduce, reduction)
        self.margin = check_float(margin, "margin", "MarginRankingLoss")

    @in_opmath
    def __call__(self, input1, input2, target):
        """``input1``, ``input2``, ``target`` (*) of one rank: 0-d loss, or (*) with 'none'."""
        name = "MarginRankingLoss"
        x1 = _floating(input1, "input1", name)
        x2 = _floating(input2, "input2", name)
        t = _array(target, "target", name)
        if not x1.ndim == x2.ndim == t.ndim:
            raise ValueError(f"{name}: input1, input2 and target must have the same rank, got "
                             f"shapes {tuple(x1.shape)}, {tuple(x2.shape)}, {tuple(t.shape)}")
        return _reduce(_clamp_min(-t * (x1 - x2) + self.margin, 0), self.reduction)


class HingeEmbeddingLoss(_Loss):
    """Torch ``nn.HingeEmbeddingLoss(margin=1.0, size_average=None, reduce=None,
    reduction='mean')``: ``x`` where ``target == 1``, ``max(0, margin − x)`` where
    ``target == −1`` (targets that are neither get both terms, as torch). Torch's layout.

    >>> import jax.numpy as jnp
    >>> loss = HingeEmbeddingLoss(reduction='sum')
    >>> round(float(loss(jnp.array([0.3, 0.2]), jnp.array([1.0, -1.0]))), 6)
    1.1
    """

    def __init__(self, margin: float = 1.0, size_average=None, reduce=None,
                 reduction: str = "mean", *, rngs: nnx.Rngs | None = None):
        del rngs
        self._set_reduction(size_average, reduce, reduction)
        self.margin = check_float(margin, "margin", "HingeEmbeddingLoss")

    @in_opmath
    def __call__(self, input, target):
        """``input`` (*), ``target`` (*) of ±1: 0-d loss, or (*) with 'none'."""
        x = _floating(input, "input", "HingeEmbeddingLoss")
        t = _array(target, "target", "HingeEmbeddingLoss")
        zeros = jnp.zeros_like(x)
        out_margin = jnp.where(t != 1, _clamp_min(self.margin - x, 0), zeros)
        out_self = jnp.where(t != -1, x, zeros)
        return _reduce(out_margin + out_self, self.reduction)


class CosineEmbeddingLoss(_Loss):
    """Torch ``nn.CosineEmbeddingLoss(margin=0.0, size_average=None, reduce=None,
    reduction='mean')``: with ``cos`` the cosine similarity along the last axis (each
    squared norm + float32(1e-12), as torch), ``1 − cos`` where ``target == 1`` and
    ``max(0, cos − margin)`` where ``target == −1``.

    ``input1``, ``input2`` (N, D) with ``target`` (N,), or (D,) with a 0-d ``target``
    (ValueError otherwise, as torch's RuntimeError); output 0-d, or (N,) / 0-d with 'none'.

    >>> import jax.numpy as jnp
    >>> a, b = jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 1.0]])
    >>> float(CosineEmbeddingLoss()(a, b, jnp.array([1.0])))
    1.0
    """

    def __init__(self, margin: float = 0.0, size_average=None, reduce=None,
                 reduction: str = "mean", *, rngs: nnx.Rngs | None = None):
        del rngs
        self._set_reduction(size_average, reduce, reduction)
        self.margin = check_float(margin, "margin", "CosineEmbeddingLoss")

    @in_opmath
    def __call__(self, input1, input2, target):
        name = "CosineEmbeddingLoss"
        x1 = _floating(input1, "input1", name)
        x2 = _floating(input2, "input2", name)
        t = _array(target, "target", name)
        if t.ndim not in (0, 1):
            raise ValueError(f"{name}: target must be 0-D or 1-D (multi-target not supported), "
                             f"got shape {tuple(t.shape)}")
        want = 2 if t.ndim == 1 else 1
        if x1.ndim != want or x2.ndim != want:
            raise ValueError(f"{name}: a {t.ndim}-D target expects {want}-D input1 and input2, "
                             f"got shapes {tuple(x1.shape)} and {tuple(x2.shape)}")
        ax = t.ndim
        prod = jnp.sum(x1 * x2, axis=ax)
        m1 = jnp.sum(x1 * x1, axis=ax) + _TORCH_EPS
        m2 = jnp.sum(x2 * x2, axis=ax) + _TORCH_EPS
        cos = prod / jnp.sqrt(m1 * m2)
        zeros = jnp.zeros_like(cos)
        pos = jnp.where(t == 1, 1 - cos, zeros)
        neg = jnp.where(t == -1, _clamp_min(cos - self.margin, 0), zeros)
        return _reduce(pos + neg, self.reduction)


def _frames(x, name: str, layer: str):
    """MultiMargin/MultiLabelMargin inputs: 0-d, (C,) or (N, C) → (N, C) and the rank."""
    if x.ndim > 2:
        raise ValueError(f"{layer}: {name} must be 0-D, (C,) or (N, C), got shape "
                         f"{tuple(x.shape)}")
    if x.ndim <= 1 and x.size == 0 or x.ndim == 2 and x.shape[1] == 0:
        raise ValueError(f"{layer}: expected a non-empty vector or matrix with optional 0-dim "
                         f"batch size for {name}, got shape {tuple(x.shape)}")
    return x.reshape(1, -1) if x.ndim <= 1 else x


class MultiLabelMarginLoss(_Loss):
    """Torch ``nn.MultiLabelMarginLoss(size_average=None, reduce=None, reduction='mean')``:
    per sample, ``Σ_j Σ_{i ∉ targets} max(0, 1 − (x[y_j] − x[i])) / C`` over the target
    classes ``y_j``, the entries of ``target`` before its first −1.

    ``input`` (C,) or (N, C) (or 0-d); ``target`` an integer array of the input's shape
    (ValueError otherwise). Output 0-d; with 'none' (N,) for a 2-D input, else 0-d. The
    gradient at a hinge ``= 0`` is 0, as torch's kernel (``z > 0``). Indices outside
    [−1, C) raise when concrete.

    >>> import jax.numpy as jnp
    >>> x, y = jnp.array([0.1, 0.2, 0.4, 0.8]), jnp.array([3, 0, -1, 1])
    >>> round(float(MultiLabelMarginLoss()(x, y)), 6)
    0.85
    """

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", *,
                 rngs: nnx.Rngs | None = None):
        del rngs
        self._set_reduction(size_average, reduce, reduction)

    @in_opmath
    def __call__(self, input, target):
        name = "MultiLabelMarginLoss"
        x = _floating(input, "input", name)
        y = _integer(target, "target", name)
        xf = _frames(x, "input", name)
        n, c = xf.shape
        ok = (y.shape == (n, c)) if x.ndim == 2 else (y.ndim <= 1 and y.size == c)
        if not ok:
            raise ValueError(f"{name}: target must have shape {(n, c) if x.ndim == 2 else (c,)}"
                             f" for input of shape {tuple(x.shape)}, got {tuple(y.shape)}")
        yf = y.reshape(n, c)
        yh = _host(y)
        if yh is not None and np.any((yh < -1) | (yh >= c)):
            raise ValueError(f"{name}: target index out of range [-1, {c})")
        active = jnp.cumprod(yf >= 0, axis=1).astype(bool)  # entries before the first -1
        safe = jnp.where(active, yf, 0)
        onehot = (safe[..., None] == jnp.arange(c)) & active[..., None]  # (n, k, c)
        is_target = jnp.any(onehot, axis=1)  # (n, c)
        x_target = jnp.take_along_axis(xf, safe, axis=1)  # (n, k)
        z = 1 - x_target[:, :, None] + xf[:, None, :]  # (n, k, c)
        mask = active[:, :, None] & ~is_target[:, None, :]
        h = jnp.where(mask, _positive_part(z), jnp.zeros_like(z))
        per = jnp.sum(h, axis=(1, 2)) / c
        if self.reduction == "none":
            return per if x.ndim == 2 else per.reshape(())
        return jnp.mean(per) if self.reduction == "mean" else jnp.sum(per)


class MultiLabelSoftMarginLoss(_Loss):
    """Torch ``nn.MultiLabelSoftMarginLoss(weight=None, size_average=None, reduce=None,
    reduction='mean')``: ``−(t·log σ(x) + (1 − t)·log σ(−x))·w``, averaged over the last
    (class) axis; then reduced over the rest. ``input`` (N, C) or (C,), torch's layout
    (the class axis is last in both); ``target`` 0/1 of the same shape, any dtype;
    ``weight`` a Buffer (torch name ``weight``) broadcasting against (C,).

    >>> import jax.numpy as jnp
    >>> round(float(MultiLabelSoftMarginLoss()(jnp.zeros((1, 2)), jnp.array([[1, 0]]))), 6)
    0.693147
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean",
                 *, rngs: nnx.Rngs | None = None):
        del rngs
        self._set_reduction(size_average, reduce, reduction)
        self.weight = _weight_buffer(weight, "weight", "MultiLabelSoftMarginLoss")

    @in_opmath
    def __call__(self, input, target):
        name = "MultiLabelSoftMarginLoss"
        x = _floating(input, "input", name)
        t = _array(target, "target", name)
        if x.ndim == 0:
            raise ValueError(f"{name}: input must be (N, C) or (C,), got a 0-d array")
        loss = -(t * jax.nn.log_sigmoid(x) + (1 - t) * jax.nn.log_sigmoid(-x))
        w = _get(self.weight, x.dtype)
        if w is not None:
            loss = loss * w
        loss = jnp.sum(loss, axis=-1) / x.shape[-1]
        return _reduce(loss, self.reduction)


class MultiMarginLoss(_Loss):
    """Torch ``nn.MultiMarginLoss(p=1, margin=1.0, weight=None, size_average=None,
    reduce=None, reduction='mean')``: per sample with class ``y``,
    ``Σ_{i ≠ y} w[y]·max(0, margin − x[y] + x[i])^p / C``.

    ``input`` (N, C) or (C,) (or 0-d), torch's layout; ``target`` integer (N,), or 0-d /
    (1,) for one sample; ``p`` 1 or 2 (ValueError, as torch); ``weight`` None or (C,) (a
    Buffer, torch name ``weight``). Output 0-d; with 'none' the target's shape ((N,), (1,)
    or 0-d). The gradient at a hinge = 0 is 0, as torch's kernel.

    >>> import jax.numpy as jnp
    >>> round(float(MultiMarginLoss()(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))), 6)
    0.325
    """

    def __init__(self, p: int = 1, margin: float = 1.0, weight=None, size_average=None,
                 reduce=None, reduction: str = "mean", *, rngs: nnx.Rngs | None = None):
        del rngs
        self._set_reduction(size_average, reduce, reduction)
        if isinstance(p, bool) or p not in (1, 2):
            raise ValueError(f"MultiMarginLoss: only p == 1 and p == 2 supported, got p={p!r}")
        self.p = int(p)
        self.margin = check_float(margin, "margin", "MultiMarginLoss")
        self.weight = _weight_buffer(weight, "weight", "MultiMarginLoss", ndim1=True)

    @in_opmath
    def __call__(self, input, target):
        name = "MultiMarginLoss"
        x = _floating(input, "input", name)
        y = _integer(target, "target", name)
        xf = _frames(x, "input", name)
        n, c = xf.shape
        if not (y.ndim <= 1 and y.size == n):
            raise ValueError(f"{name}: target must be 1-D with size equal to the batch size "
                             f"{n} (or 0-d for an unbatched input), got shape "
                             f"{tuple(y.shape)}")
        yf = y.reshape(n)
        yh = _host(y)
        if yh is not None and np.any((yh < 0) | (yh >= c)):
            raise ValueError(f"{name}: target out of range [0, {c})")
        w = _get(self.weight, x.dtype)
        if w is not None and w.size != c:
            raise ValueError(f"{name}: weight must have {c} entries, got shape "
                             f"{tuple(w.shape)}")
        bad = (yf < 0) | (yf >= c)
        safe = jnp.where(bad, 0, yf)
        x_target = jnp.take_along_axis(xf, safe[:, None], axis=1)  # (n, 1)
        z = _positive_part(self.margin - x_target + xf)
        h = z if self.p == 1 else z * z
        if w is not None:
            h = h * w[safe][:, None]
        h = jnp.where(jnp.arange(c) == safe[:, None], jnp.zeros_like(h), h)
        per = jnp.sum(h, axis=1) / c
        per = jnp.where(bad, jnp.full_like(per, jnp.nan), per)
        if self.reduction == "none":
            return per.reshape(y.shape)
        return jnp.mean(per) if self.reduction == "mean" else jnp.sum(per)


# ----------------------------------------------------------------------------- classification

def _class_shapes(x, t, layer: str):
    """Check a class-index target against a channels-last input: (C,) with 0-d, else
    (N, *d, C) with (N, *d)."""
    if x.ndim == 0:
        raise ValueError(f"{layer}: input must have at least 1 dimension, (C,), (N, C) or "
                         f"channels-last (N, d1, ..., dk, C); got a 0-d array")
    want = () if x.ndim == 1 else tuple(x.shape[:-1])
    if tuple(t.shape) != want:
        if x.ndim > 1 and (t.ndim == 0 or t.shape[0] != x.shape[0]):
            raise ValueError(f"{layer}: expected input batch_size ({x.shape[0]}) to match "
                             f"target batch_size ({t.shape[0] if t.ndim else 'a 0-d target'})")
        raise ValueError(f"{layer}: target must have shape {want} (input's shape without its "
                         f"last, class axis: the input is channels-last (N, d1, ..., dk, C)), "
                         f"got {tuple(t.shape)} for input of shape {tuple(x.shape)}")


def _nll(logp, t, w, ignore_index: int, reduction: str, layer: str):
    """torch's ``nll_loss_nd`` on a channels-last ``logp`` (*, C) and indices ``t`` (*)."""
    c = logp.shape[-1]
    th = _host(t)
    if th is not None:
        bad = (th != ignore_index) & ((th < 0) | (th >= c))
        if np.any(bad):
            raise IndexError(f"{layer}: target {int(th[bad][0])} is out of bounds for {c} "
                             f"classes")
    valid = t != ignore_index
    out_of_range = valid & ((t < 0) | (t >= c))
    safe = jnp.where(valid & ~out_of_range, t, 0)
    picked = jnp.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
    ww = jnp.ones_like(picked) if w is None else w[safe]
    zeros = jnp.zeros_like(picked)
    loss = jnp.where(valid, -picked * ww, zeros)
    loss = jnp.where(out_of_range, jnp.full_like(loss, jnp.nan), loss)
    if reduction == "none":
        return loss
    total = jnp.sum(loss)
    if reduction == "sum":
        return total
    return total / jnp.sum(jnp.where(valid, ww, zeros))  # 0/0 = NaN: all ignored, or empty


def _check_weight(w, c: int, layer: str):
    if w is not None and (w.ndim != 1 or w.shape[0] != c):
        raise ValueError(f"{layer}: weight should be defined either for all {c} classes or no "
                         f"classes, got weight of shape {tuple(w.shape)}")


class NLLLoss(_Loss):
    """Torch ``nn.NLLLoss(weight=None, size_average=None, ignore_index=-100, reduce=None,
    reduction='mean')``: ``−w[y]·input[..., y]`` per position; ``'mean'`` divides the sum by
    the sum of the picked weights (NaN when every target is ignored, or the input empty, as
    torch); ignored positions are 0 with ``'none'``.

    Layout: CHANNELS-LAST. ``input`` holds log-probabilities as (C,), (N, C) or
    (N, d1, ..., dk, C) — torch's (N, C, d1, ..., dk) with the class axis moved last;
    ``target`` class indices (int32 or int64) of shape () / (N,) / (N, d1, ..., dk), the
    same as torch's. Output 0-d, or the target's shape with ``'none'``. ``weight`` (C,) is a
    Buffer (torch name ``weight``).

    >>> import jax, jax.numpy as jnp
    >>> logp = jax.nn.log_softmax(jnp.zeros((2, 3, 4)), axis=-1)  # torch's (2, 4, 3)
    >>> round(float(NLLLoss()(logp, jnp.array([[0, 1, 2], [3, 3, 0]]))), 6)
    1.386294
    """

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", *, rngs: nnx.Rngs | None = None):
        del rngs
        from ._utils import check_int
        self._set_reduction(size_average, reduce, reduction)
        self.weight = _weight_buffer(weight, "weight", type(self).__name__)
        self.ignore_index = check_int(ignore_index, "ignore_index", type(self).__name__)

    @in_opmath
    def __call__(self, input, target):
        """``input`` channels-last (C,) / (N, C) / (N, d1, ..., dk, C); ``target`` () / (N,) /
        (N, d1, ..., dk) integer: 0-d loss, or the target's shape with 'none'."""
        name = "NLLLoss"
        x = _floating(input, "input", name)
        t = _integer(target, "target", name)
        _class_shapes(x, t, name)
        w = _get(self.weight, x.dtype)
        _check_weight(w, x.shape[-1], name)
        return _nll(x, t, w, self.ignore_index, self.reduction, name)


class CrossEntropyLoss(_Loss):
    """Torch ``nn.CrossEntropyLoss(weight=None, size_average=None, ignore_index=-100,
    reduce=None, reduction='mean', label_smoothing=0.0)``: ``log_softmax`` over the class
    axis, then NLLLoss; with class-probability targets ``−Σ_c w_c·t_c·log_softmax(x)_c``.

    Layout: CHANNELS-LAST. ``input`` logits (C,), (N, C) or (N, d1, ..., dk, C) (torch's
    (N, C, d1, ..., dk) with the class axis last). ``target`` either class indices (int32 /
    int64) of shape () / (N,) / (N, d1, ..., dk) (as torch), or class probabilities of the
    input's shape (floating, laid out like the input). As torch, a target of exactly the
    input's shape is taken as probabilities. Output 0-d, or the target's batch shape with
    ``'none'``.

    Exactly torch's formulas: index targets, ``'mean'`` divides by the sum of the picked
    class weights (NaN when every target is ignored); with ``label_smoothing = ε`` the loss
    is ``(1 − ε)·nll + ε/C·smooth``, where ``smooth`` is ``−Σ_c w_c·log p_c`` per
    position,
    0 at ignored positions, and its ``'mean'`` divides by the same picked-weight sum (the
    count of non-ignored positions without weights). Probability targets: the targets are
    smoothed to ``t·(1 − ε) + ε/C``, ``'mean'`` divides by the number of positions (NaN for
    an empty input), and ``ignore_index`` must be negative (ValueError, as torch).

    >>> import jax.numpy as jnp
    >>> round(float(CrossEntropyLoss()(jnp.zeros((2, 4)), jnp.array([0, 3]))), 6)
    1.386294
    """

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0, *,
                 rngs: nnx.Rngs | None = None):
        del rngs
        from ._utils import check_int
        name = type(self).__name__
        self._set_reduction(size_average, reduce, reduction)
        self.weight = _weight_buffer(weight, "weight", name)
        self.ignore_index = check_int(ignore_index, "ignore_index", name)
        self.label_smoothing = check_float(label_smoothing, "label_smoothing", name,
                                           minimum=0.0, maximum=1.0)

    @in_opmath
    def __call__(self, input, target):
        """``input`` channels-last (C,) / (N, C) / (N, d1, ..., dk, C); ``target`` indices
        () / (N,) / (N, d1, ..., dk) or probabilities of input's shape: 0-d loss, or the
        batch shape with 'none'."""
        name = "CrossEntropyLoss"
        x = _floating(input, "input", name)
        t = _array(target, "target", name)
        if x.ndim == 0:
            _class_shapes(x, t, name)
        c = x.shape[-1]
        w = _get(self.weight, x.dtype)
        _check_weight(w, c, name)
        eps = self.label_smoothing
        logp = torch_log_softmax(x, -1)  # torch's backward formula (see ops.elementwise)
        if tuple(t.shape) == tuple(x.shape):  # class probabilities, as torch decides
            if not jnp.issubdtype(t.dtype, jnp.floating):
                raise TypeError(f"{name}: a target of the input's shape holds class "
                                f"probabilities and must be floating point, got dtype "
                                f"{t.dtype}")
            if self.ignore_index >= 0:
                raise ValueError(f"{name}: ignore_index is not supported for class-probability "
                                 f"targets (got ignore_index={self.ignore_index})")
            t = t.astype(x.dtype)
            if eps > 0:
                t = t * (1 - eps) + eps / c
            prod = logp * t if w is None else logp * t * w
            if self.reduction == "none":
                return -jnp.sum(prod, axis=-1)
            total = -jnp.sum(prod)
            if self.reduction == "sum":
                return total
            if x.size == 0:
                return jnp.full_like(total, jnp.nan)
            return total / (x.size // c)
        t = _integer(target, "target", name)
        _class_shapes(x, t, name)
        nll = _nll(logp, t, w, self.ignore_index, self.reduction, name)
        if eps == 0:
            return nll
        smooth = -jnp.sum(logp if w is None else logp * w, axis=-1)
        ignored = t == self.ignore_index
        smooth = jnp.where(ignored, jnp.zeros_like(smooth), smooth)
        if self.reduction == "mean":
            if w is not None:
                ww = w[jnp.where(ignored, 0, t)]
                denom = jnp.sum(jnp.where(ignored, jnp.zeros_like(ww), ww))
            else:
                denom = jnp.sum(~ignored).astype(smooth.dtype)
            ret = jnp.sum(smooth) / denom
        elif self.reduction == "sum":
            ret = jnp.sum(smooth)
        else:
            ret = smooth
        return (1 - eps) * nll + ret * (eps / c)
