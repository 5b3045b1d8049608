"""``Linear`` with torch's signature, initialisation and state_dict mapping.

Flax's ``nnx.Linear`` already computes ``y = x @ kernel + bias`` over the last axis,
which is torch's ``x @ weight.T + bias``; only three things differ and are handled here:

* torch's argument names (``in_features, out_features, bias``) and its default
  initialisation U(-1/sqrt(in), 1/sqrt(in)) for weight *and* bias (Flax: LeCun normal, zeros);
* the kernel is stored ``(in_features, out_features)`` — the transpose of torch's
  ``weight`` — and tagged so the converter transposes it (``torch_layout='linear'``);
* a wrong feature count raises an error naming the argument.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from ._utils import check_bool, check_input, check_int, in_opmath, torch_uniform

__all__ = ["Linear", "Identity"]


class Linear(nnx.Linear):
    """Torch ``nn.Linear(in_features, out_features, bias=True)`` as an NNX module.

    Variables: ``kernel`` (in_features, out_features) ↔ torch ``weight`` (transposed);
    ``bias`` (out_features,) ↔ torch ``bias``.

    Sizes must be ints ≥ 0 (0 works, as in torch), ``bias`` a bool, and ``x`` a
    floating-point array of rank ≥ 1 with ``in_features`` in its last axis (errors name the
    argument). Stricter than torch, which takes ``in_features=True`` as 1 and any ``bias``
    by its truthiness (``'no'`` is True, ``None`` False): both are refused here.

    Example::

        >>> from flax import nnx
        >>> import jax.numpy as jnp
        >>> layer = Linear(100, 20, rngs=nnx.Rngs(0))
        >>> layer(jnp.ones((8, 100))).shape
        (8, 20)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 rngs: nnx.Rngs, dtype=None, param_dtype=jnp.float32, precision=None):
        in_features = check_int(in_features, "in_features", "Linear", minimum=0)
        out_features = check_int(out_features, "out_features", "Linear", minimum=0)
        bias = check_bool(bias, "bias", "Linear")
        init = torch_uniform(in_features)
        super().__init__(
            in_features, out_features, use_bias=bias, dtype=dtype, param_dtype=param_dtype,
            precision=precision, kernel_init=init, bias_init=init, rngs=rngs,
            kernel_metadata={"torch_name": "weight", "torch_layout": "linear"},
            bias_metadata={"torch_name": "bias"})

    @in_opmath
    def __call__(self, x):
        """``x``: (*, in_features) → (*, out_features); any number of leading axes."""
        check_input(x, name="x", layer="Linear", ranks=None, layout="(*, in_features)",
                    channels=self.in_features, floating=True)
        return super().__call__(x)


class Identity(nnx.Module):
    """Torch ``nn.Identity``: returns its input unchanged, whatever it is (no variables).
    Like torch's, it takes and ignores any constructor arguments."""

    def __init__(self, *args, **kwargs):
        del args, kwargs

    def __call__(self, x):
        return x
