"""Parameter-free torch activation modules whose behaviour depends on an axis.

Elementwise activations (``jnp.tanh``, ``jax.nn.relu``, ``jax.nn.sigmoid`` …) are used as
plain functions. ``LogSoftmax`` / ``Softmax`` keep torch's ``dim`` argument, but remember
the layout: torch's ``LogSoftmax(dim=1)`` over (N, C, L) is ``LogSoftmax(dim=-1)`` over the
channels-last (N, L, C).
"""

from __future__ import annotations

import warnings

import jax
import numpy as np
from flax import nnx

from ._utils import check_float, check_floating_input, check_int, in_opmath

__all__ = ["LogSoftmax", "Softmax", "LeakyReLU"]


class _SoftmaxBase(nnx.Module):
    """Softmax / LogSoftmax: ``dim`` checks, torch's implicit choice, 0-d input."""
    _fn = _torch_fn = None  # set by the subclasses

    def __init__(self, dim: int | None = None):
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
        check_floating_input(x, name="x", layer=type(self).__name__)
        axis = self._axis(x)
        if x.ndim == 0:
            return self._fn(x[None], axis=0)[0]
        return self._fn(x, axis=axis)


class LogSoftmax(_SoftmaxBase):
    """Torch ``nn.LogSoftmax(dim=None)``: log-softmax along axis ``dim``; shape unchanged.
    Arguments and checks as for :class:`Softmax`."""
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
    """
    _fn = staticmethod(jax.nn.softmax)
    _torch_fn = "softmax"


class LeakyReLU(nnx.Module):
    """Torch ``nn.LeakyReLU(negative_slope=0.01)``; shape unchanged.

    ``x`` must be a floating-point array (torch refuses integer and bool tensors; TypeError
    naming x). ``negative_slope`` must be a number: a TypeError at construction (torch: at
    the first call). Stricter than torch: a bool slope and NaN are refused (TypeError,
    ValueError) rather than used as 1.0/0.0 and NaN.
    """

    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = check_float(negative_slope, "negative_slope", "LeakyReLU")

    def __call__(self, x):
        check_floating_input(x, name="x", layer="LeakyReLU")
        return jax.nn.leaky_relu(x, self.negative_slope)
