"""Small helpers shared by the torch-semantics layers: torch's default initialisers,
argument normalisation (``int`` or tuple, as torch accepts), and input checks whose
errors name the argument and the expected layout."""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp

__all__ = ["torch_uniform", "ntuple", "check_input"]


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
