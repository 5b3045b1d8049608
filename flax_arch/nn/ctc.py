"""Torch's ``nn.CTCLoss`` / ``F.ctc_loss``: the Connectionist Temporal Classification loss.

Layout: as torch. ``log_probs`` is time-major (T, N, C) — C, the classes including the
blank, is already the last axis, so there is no channels-first/last change — or
unbatched (T, C). The recursions (:mod:`flax_arch.ops.ctc`) are ``jax.lax.scan`` over time
in log space, vectorised over the batch and the label positions.

Gradient: torch's CPU backward is not the derivative of its forward; it returns the
gradient as if ``log_probs`` came out of a log-softmax (see
:func:`flax_arch.ops.ctc._bwd`, where it is reproduced). ``jax.grad`` here gives torch's
numbers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ._utils import _is_int, check_bool, check_choice, check_int, check_input, in_opmath
from ..ops.ctc import ctc_neg_log_likelihood, extend_targets

__all__ = ["CTCLoss", "ctc_loss"]

_REDUCTIONS = ("none", "mean", "sum")
_NAME = "CTCLoss"


def _concrete(x) -> np.ndarray | None:
    """``x`` as a NumPy array when its values are known now (not traced), else None."""
    if isinstance(x, jax.core.Tracer):
        return None
    return np.asarray(x)


def _lengths(value, name: str, batch: int, batched: bool):
    """A lengths argument (tuple/list of ints, integer array, or for unbatched input also a
    single int / 0-d array) as an (N,) int32 array, plus its NumPy values when concrete."""
    if isinstance(value, (tuple, list)):
        if not all(_is_int(v) for v in value):
            raise TypeError(f"{_NAME}: {name} must be a tuple of ints or an integer array, "
                            f"got {value!r}")
        arr = np.asarray(value, dtype=np.int64).reshape(len(value))
    elif _is_int(value):
        if batched:
            raise TypeError(f"{_NAME}: {name} must be a tuple of {batch} ints or an integer "
                            f"array of shape ({batch},) for batched log_probs (T, N, C), got "
                            f"{value!r}")
        arr = np.asarray([value], dtype=np.int64)
    else:
        dtype = getattr(value, "dtype", None)
        if dtype is None or not jnp.issubdtype(dtype, jnp.integer):
            raise TypeError(f"{_NAME}: {name} must be a tuple of ints or an integer array, "
                            f"got {type(value).__name__}"
                            + (f" of dtype {dtype}" if dtype is not None else ""))
        if value.ndim > 1 or (batched and value.ndim != 1):
            raise ValueError(f"{_NAME}: {name} must have shape ({batch},)"
                             f"{'' if batched else ' or ()'}, got shape {tuple(value.shape)}")
        # a concrete array becomes NumPy first: a jnp op on it under jit would be traced
        arr = (value if isinstance(value, jax.core.Tracer) else np.asarray(value)).reshape(-1)
    if arr.shape[0] != batch:
        raise ValueError(f"{_NAME}: {name} must have one entry per sequence "
                         f"({batch}), got {arr.shape[0]}")
    values = _concrete(arr)
    return jnp.asarray(arr, dtype=jnp.int32), values


def _padded_targets(targets, tl, tl_values, batch: int, num_classes: int):
    """``targets`` (N, S) as given, or the concatenated (Σ S_n,) form gathered into
    (N, max S_n), padded with zeros; checked against the target lengths where known."""
    if targets.ndim == 2:
        if targets.shape[0] != batch:
            raise ValueError(f"{_NAME}: targets (N, S) must have N={batch} rows, got shape "
                             f"{tuple(targets.shape)}")
        if tl_values is not None and tl_values.size and tl_values.max() > targets.shape[1]:
            raise ValueError(f"{_NAME}: targets (N, S) must have S ≥ the largest target "
                             f"length {int(tl_values.max())}, got shape {tuple(targets.shape)}")
        padded = targets
    else:
        total = targets.shape[0]
        if tl_values is not None:
            if int(tl_values.sum()) != total:
                raise ValueError(f"{_NAME}: concatenated targets (sum(target_lengths),) must "
                                 f"have length {int(tl_values.sum())}, got shape "
                                 f"{tuple(targets.shape)}")
            width = int(tl_values.max()) if tl_values.size else 0
        else:  # traced lengths: the whole concatenation bounds every target
            width = total
        if width == 0 or total == 0:
            padded = jnp.zeros((batch, 0), targets.dtype)
        else:
            offsets = jnp.cumsum(tl) - tl
            j = jnp.arange(width)
            idx = jnp.clip(offsets[:, None] + j[None, :], 0, total - 1)
            padded = jnp.where(j[None, :] < tl[:, None], jnp.asarray(targets)[idx], 0)
    if tl_values is not None:
        values = _concrete(targets)
        if values is not None:
            values = values.reshape(-1)
            if targets.ndim == 2:
                used = (np.arange(targets.shape[1])[None, :] < tl_values[:, None]).reshape(-1)
            else:
                used = np.ones(values.shape, bool)
            bad = used & ((values < 0) | (values >= num_classes))
            if bad.any():
                raise ValueError(f"{_NAME}: targets must be class indices in "
                                 f"[0, {num_classes}), got {int(values[bad][0])}")
    return padded


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False):
    """Torch ``F.ctc_loss``: see :class:`CTCLoss` for arguments, shapes and semantics."""
    blank = check_int(blank, "blank", _NAME)
    reduction = check_choice(reduction, "reduction", _REDUCTIONS, _NAME)
    zero_infinity = check_bool(zero_infinity, "zero_infinity", _NAME)
    check_input(log_probs, name="log_probs", layer=_NAME, ranks=(2, 3),
                layout="(T, N, C) or unbatched (T, C)", floating=True)
    batched = log_probs.ndim == 3
    lp = log_probs if batched else log_probs[:, None, :]
    t_total, batch, num_classes = lp.shape
    if not 0 <= blank < num_classes:
        raise ValueError(f"{_NAME}: blank must be a class index in [0, {num_classes}) for "
                         f"log_probs with C={num_classes} classes, got {blank}")
    if getattr(targets, "ndim", None) is None:
        raise TypeError(f"{_NAME}: targets must be an integer array, got "
                        f"{type(targets).__name__}")
    if not jnp.issubdtype(targets.dtype, jnp.integer):
        raise TypeError(f"{_NAME}: targets must be an integer array of class indices, got "
                        f"dtype {targets.dtype}")
    if targets.ndim not in (1, 2):
        raise ValueError(f"{_NAME}: targets must have shape (N, S) or (sum(target_lengths),), "
                         f"got shape {tuple(targets.shape)}")
    il, il_values = _lengths(input_lengths, "input_lengths", batch, batched)
    tl, tl_values = _lengths(target_lengths, "target_lengths", batch, batched)
    if il_values is not None and ((il_values < 0) | (il_values > t_total)).any():
        raise ValueError(f"{_NAME}: input_lengths must be in [0, T={t_total}], got "
                         f"{il_values.tolist()}")
    if tl_values is not None and (tl_values < 0).any():
        raise ValueError(f"{_NAME}: target_lengths must be at least 0, got "
                         f"{tl_values.tolist()}")
    # traced lengths cannot be checked: kept in range so that nothing reads out of bounds
    il = jnp.clip(il, 0, t_total)
    tl = jnp.maximum(tl, 0)
    padded = _padded_targets(targets, tl, tl_values, batch, num_classes)
    tl = jnp.minimum(tl, padded.shape[1])
    ext = extend_targets(padded.astype(jnp.int32), blank)
    nll = ctc_neg_log_likelihood(lp, ext, il, tl, blank, zero_infinity)
    if zero_infinity:  # its gradient there is 0 (and the custom backward zeroes the row)
        nll = jnp.where(nll == jnp.inf, jnp.zeros_like(nll), nll)
    if reduction == "mean":  # each loss over its target length (at least 1), then batch mean
        return jnp.mean(nll / jnp.maximum(tl, 1).astype(nll.dtype))
    if reduction == "sum":
        return jnp.sum(nll)
    return nll if batched else nll[0]


class CTCLoss(nnx.Module):
    """Torch ``nn.CTCLoss(blank=0, reduction='mean', zero_infinity=False)``.

    ``loss(log_probs, targets, input_lengths, target_lengths)``:

    * ``log_probs``: (T, N, C) time-major log-probabilities (e.g. a log-softmax over the
      last axis), or unbatched (T, C). Torch's layout: C is already last, no conversion.
    * ``targets``: padded (N, S) class indices (S ≥ every target length), or the
      concatenation of all targets, (sum(target_lengths),); unbatched: (S,) or (1, S).
      Integer dtype; entries must not be the blank.
    * ``input_lengths``, ``target_lengths``: (N,) integer arrays or tuples/lists of ints;
      unbatched also a single int or a 0-d array. ``0 ≤ input_lengths ≤ T``.
    * output: ``reduction='none'`` the per-sequence losses (N,) (unbatched: ()); ``'sum'``
      their sum; ``'mean'`` each loss divided by its target length (clamped to ≥ 1), then
      the batch mean, as torch. dtype of ``log_probs``.

    An impossible alignment (input too short for the target) gives +∞;
    ``zero_infinity=True`` makes it 0 with a zero gradient. ``input_length = 0`` gives 0
    for an empty target and +∞ otherwise. Frames at or beyond a sequence's input length do
    not count, and get a zero gradient.

    Gradient (where Flax and torch meet): torch's CPU backward returns
    ``exp(log_probs) − occupancy`` rather than the true derivative ``−occupancy`` — the
    gradient with respect to the logits of a log-softmax producing ``log_probs``. It is
    reproduced with a ``jax.custom_vjp`` (:func:`flax_arch.ops.ctc._bwd` explains it), so
    ``jax.grad`` w.r.t. ``log_probs`` equals torch's ``autograd.grad``; through a
    log-softmax both equal the true gradient w.r.t. the logits.

    Checks (errors name the argument): ``blank`` an int in [0, C) (at the call, where C is
    known, as torch), ``reduction`` one of 'none', 'mean', 'sum' and ``zero_infinity`` a
    bool (at construction; torch: ``reduction`` at the call, any truthy flag); floating
    ``log_probs`` of rank 2 or 3; integer ``targets`` of rank 1 or 2; lengths with one
    entry per sequence, within range, consistent with ``targets`` (when their values are
    known, i.e. not traced under ``jax.jit``; traced lengths are clipped into range).
    Differences from torch: float ``targets`` are refused (torch casts them to int64);
    targets outside [0, C) are a ValueError (torch reads out of bounds); a plain int
    length is accepted for unbatched input (torch wants a tuple or a tensor); float16 /
    bfloat16 compute in float32 and round the loss once (torch's CPU kernel has no half
    precision; this is what its autocast does on CUDA).

    >>> import jax, jax.numpy as jnp
    >>> log_probs = jax.nn.log_softmax(jax.random.normal(jax.random.key(0), (6, 2, 4)), -1)
    >>> targets = jnp.array([[1, 2, 2], [3, 1, 0]])
    >>> loss = CTCLoss()(log_probs, targets, (6, 5), (3, 2))
    >>> loss.shape, bool(jnp.isfinite(loss))
    ((), True)
    """

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False,
                 *, rngs: nnx.Rngs | None = None):
        del rngs  # nothing random; kept for a uniform constructor
        self.blank = check_int(blank, "blank", _NAME, minimum=0)
        self.reduction = check_choice(reduction, "reduction", _REDUCTIONS, _NAME)
        self.zero_infinity = check_bool(zero_infinity, "zero_infinity", _NAME)

    @in_opmath  # float16/bfloat16: the recursions in float32, the loss rounded once
    def __call__(self, log_probs, targets, input_lengths, target_lengths):
        """Loss of ``log_probs`` (T, N, C) or (T, C) against ``targets`` (N, S) or
        (sum(target_lengths),): a scalar for 'mean'/'sum', (N,) (unbatched: ()) for 'none'."""
        return ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank,
                        self.reduction, self.zero_infinity)
