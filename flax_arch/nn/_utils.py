"""Small helpers shared by the torch-semantics layers: torch's default initialisers,
argument normalisation (``int`` or tuple, as torch accepts), and input checks whose
errors name the argument and the expected layout."""

from __future__ import annotations

import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = ["Buffer", "torch_uniform", "ntuple", "check_int", "check_float", "check_bool", "check_choice",
           "check_input", "check_floating_input", "opmath_dtype", "in_opmath"]


class Buffer(nnx.BatchStat):
    """A torch buffer that is not a running statistic (a loss's class ``weight``, a mask).

    A subclass of ``nnx.BatchStat``, so the converter maps it to the torch buffer named by
    its ``torch_name`` metadata, optimizers leave it alone (it is no ``nnx.Param``), and
    ``nnx.state(model, nnx.BatchStat)`` still holds every buffer.
    """


def torch_uniform(fan_in: int):
    """Initializer drawing from U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    This is what torch's ``kaiming_uniform_(a=sqrt(5))`` reduces to for the weights of
    ``nn.Linear`` / ``nn.ConvNd`` and what it uses for their biases. ``fan_in`` is passed
    explicitly because torch computes it from its own (out, in, *k) layout, which differs
    from the Flax layout the parameter is stored in.
    """
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _is_int(value) -> bool:
    """A true integer: ``int`` or a NumPy integer scalar, never ``bool`` (``True`` is an int
    to Python, and torch would build a 1-tap kernel from it)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _where(layer: str | None) -> str:
    return f"{layer}: " if layer else ""


def check_int(value, name: str, layer: str | None = None, *, minimum: int | None = None,
              optional: bool = False) -> int | None:
    """Return ``value`` as an ``int``, or raise naming ``name``.

    TypeError when it is not an integer (a float, a bool, a string); ValueError when it is
    below ``minimum``. With ``optional``, ``None`` passes through.

    >>> check_int(3, "in_features", "Linear")
    3
    """
    if value is None and optional:
        return None
    if not _is_int(value):
        raise TypeError(f"{_where(layer)}{name} must be an int"
                        f"{' or None' if optional else ''}, got {value!r} "
                        f"({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{_where(layer)}{name} must be at least {minimum}, got {value}")
    return int(value)


def check_float(value, name: str, layer: str | None = None, *, minimum: float | None = None,
                maximum: float | None = None, optional: bool = False) -> float | None:
    """Return ``value`` as a ``float`` (ints accepted, bools not), or raise naming ``name``.

    TypeError for a non-number; ValueError for NaN or a value outside [minimum, maximum].
    """
    if value is None and optional:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                     np.floating)):
        raise TypeError(f"{_where(layer)}{name} must be a number"
                        f"{' or None' if optional else ''}, got {value!r} "
                        f"({type(value).__name__})")
    value = float(value)
    if math.isnan(value) or (minimum is not None and value < minimum) or (
            maximum is not None and value > maximum):
        rng = (f"in [{minimum}, {maximum}]" if minimum is not None and maximum is not None
               else f"at least {minimum}" if minimum is not None else f"at most {maximum}")
        raise ValueError(f"{_where(layer)}{name} must be {rng}, got {value}")
    return value


def check_bool(value, name: str, layer: str | None = None) -> bool:
    """Return ``value`` if it is a bool, else raise a TypeError naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{_where(layer)}{name} must be True or False, got {value!r} "
                        f"({type(value).__name__})")
    return bool(value)


def check_choice(value, name: str, choices, layer: str | None = None):
    """Return ``value`` if it is one of ``choices``, else raise a ValueError listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{_where(layer)}{name} must be one of "
                         f"{', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def ntuple(value, n: int, name: str, minimum: int | None = None,
           layer: str | None = None) -> tuple[int, ...]:
    """Torch's ``_ntuple``: an int is repeated ``n`` times; a sequence must have length ``n``.

    Entries must be ints (TypeError otherwise: torch fails on ``3.0`` deep inside
    ``torch.empty``, and silently builds a 1-tap kernel from ``True``; here both are refused
    up front). With ``minimum``, every entry must be at least that (torch rejects e.g. a zero
    stride or a negative padding, if only at the first call).
    """
    if _is_int(value):
        out = (int(value),) * n
    elif isinstance(value, (tuple, list)):
        out = tuple(value)
        if len(out) != n:
            raise ValueError(f"{_where(layer)}{name} must be an int or a tuple of {n} ints, "
                             f"got {out!r}")
        if not all(_is_int(v) for v in out):
            raise TypeError(f"{_where(layer)}{name} must be an int or a tuple of {n} ints, "
                            f"got {out!r}")
        out = tuple(int(v) for v in out)
    else:
        raise TypeError(f"{_where(layer)}{name} must be an int or a tuple of {n} ints, "
                        f"got {value!r} ({type(value).__name__})")
    if minimum is not None and any(v < minimum for v in out):
        raise ValueError(f"{_where(layer)}{name} must be at least {minimum}, got {value!r}")
    return out


def check_input(x, *, name: str, layer: str, ranks: Sequence[int] | None, layout: str,
                channels: int | None = None, floating: bool = False) -> None:
    """Raise a ValueError naming the argument when ``x`` has the wrong rank or channel count
    (a TypeError when it is no array, or, with ``floating``, not a floating-point one).

    ``layout`` is the expected layout string (e.g. ``"(N, L, C)"``), quoted in the error;
    ``ranks=None`` accepts any rank ≥ 1 (``"(*, C)"``).
    """
    ndim = getattr(x, "ndim", None)
    if ndim is None:
        raise TypeError(f"{layer}: {name} must be an array, got {type(x).__name__}")
    if (ndim < 1) if ranks is None else (ndim not in ranks):
        want = "at least 1" if ranks is None else " or ".join(map(str, ranks))
        raise ValueError(f"{layer}: {name} must have rank {want} with layout {layout}, "
                         f"got shape {tuple(x.shape)}")
    if channels is not None and x.shape[-1] != channels:
        raise ValueError(
            f"{layer}: {name} must be channels-last {layout} with C={channels} in the last "
            f"axis, got shape {tuple(x.shape)}" + (
                "; it looks channels-first: convert it with "
                "flax_arch.interop.channels_first_to_last"
                if channels in tuple(x.shape[:-1]) else ""))
    if floating:
        check_floating_input(x, name=name, layer=layer)


def check_floating_input(x, *, name: str, layer: str) -> None:
    """Raise a TypeError naming the argument when ``x`` is not a floating-point array.

    torch refuses integer and bool inputs to its float layers ("not implemented for 'Long'",
    "mat1 and mat2 must have the same dtype"); JAX would promote them silently, or compute
    in the integer dtype. Called after :func:`check_input`, which checks it is an array.
    """
    dtype = getattr(x, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{layer}: {name} must be a floating-point array (float16, bfloat16, "
                        f"float32 or float64), got dtype {dtype}")


def opmath_dtype(dtype):
    """The dtype torch computes a ``dtype`` layer in, its "opmath" type: float32 for
    float16 and bfloat16, ``dtype`` itself otherwise."""
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if dtype in (jnp.float16, jnp.bfloat16) else dtype


def in_opmath(call):
    """Decorate a layer's ``__call__(self, x, ...)`` to compute as torch does in half
    precision: a float16/bfloat16 ``x`` is upcast to float32, the parameters follow by
    promotion, and every floating output is rounded back to ``x``'s dtype once.

    Why: torch's half-precision kernels (matmul, convolution, normalisation statistics,
    pooling sums, softmax) accumulate in float32 and round only their result; so do their
    backward passes (a bias gradient is a float32 sum, rounded once). XLA computes an op in
    its operands' dtype, and JAX's autodiff sums a broadcast bias's cotangent in that dtype:
    in bfloat16, a bias gradient summed over thousands of positions lost two digits. Here the
    casts' transposes do the same in reverse: cotangents are summed in float32 and a
    parameter's gradient is rounded to its dtype once. float32 and float64 are unchanged.
    """
    @functools.wraps(call)
    def wrapper(self, x, *args, **kwargs):
        dtype = getattr(x, "dtype", None)
        if dtype is None or opmath_dtype(dtype) == jnp.dtype(dtype):
            return call(self, x, *args, **kwargs)
        out = call(self, x.astype(opmath_dtype(dtype)), *args, **kwargs)
        return jax.tree.map(
            lambda y: y.astype(dtype) if jnp.issubdtype(y.dtype, jnp.floating) else y, out)
    return wrapper
