"""Small helpers shared by the torch-semantics layers: torch's default initialisers,
argument normalisation (``int`` or tuple, as torch accepts), and input checks whose
errors name the argument and the expected layout."""

from __future__ import annotations

import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp

__all__ = ["torch_uniform", "ntuple", "check_input", "opmath_dtype", "in_opmath"]


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


def ntuple(value, n: int, name: str, minimum: int | None = None) -> tuple[int, ...]:
    """Torch's ``_ntuple``: an int is repeated ``n`` times; a sequence must have length ``n``.

    With ``minimum``, every entry must be at least that (torch rejects e.g. a zero stride or
    a negative padding, if only at the first call).
    """
    if isinstance(value, int):
        out = (value,) * n
    else:
        out = tuple(value)
        if len(out) != n or not all(isinstance(v, int) for v in out):
            raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {out!r}")
    if minimum is not None and any(v < minimum for v in out):
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return out


def check_input(x, *, name: str, layer: str, ranks: Sequence[int], layout: str,
                channels: int | None = None) -> None:
    """Raise a ValueError naming the argument when ``x`` has the wrong rank or channel count.

    ``layout`` is the expected layout string (e.g. ``"(N, L, C)"``), quoted in the error.
    """
    ndim = getattr(x, "ndim", None)
    if ndim is None:
        raise TypeError(f"{layer}: {name} must be an array, got {type(x).__name__}")
    if ndim not in ranks:
        raise ValueError(
            f"{layer}: {name} must have rank {' or '.join(map(str, ranks))} "
            f"with layout {layout}, got shape {tuple(x.shape)}")
    if channels is not None and x.shape[-1] != channels:
        raise ValueError(
            f"{layer}: {name} must be channels-last {layout} with C={channels} in the last "
            f"axis, got shape {tuple(x.shape)}" + (
                "; it looks channels-first: convert it with "
                "flax_arch.interop.channels_first_to_last"
                if channels in tuple(x.shape[:-1]) else ""))


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
