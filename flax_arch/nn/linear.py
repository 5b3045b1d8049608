"""``Linear`` with torch's signature, initialisation and state_dict mapping.

Flax's ``nnx.Linear`` already computes ``y = x @ kernel + bias`` over the last axis,
which is torch's ``x @ weight.T + bias``; only three things differ and are handled here:

* torch's argument names (``in_features, out_features, bias``) and its default
  initialisation U(-1/sqrt(in), 1/sqrt(in)) for weight *and* bias (Flax: LeCun normal, zeros);
* the kernel is stored ``(in_features, out_features)`` — the transpose of torch's
  ``weight`` — and tagged so the converter transposes it (``torch_layout='linear'``);
* a wrong feature count raises an error naming the argument.

``Bilinear`` (torch ``nn.Bilinear``, no Flax counterpart) keeps torch's weight layout
(out_features, in1_features, in2_features) unchanged.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from ._utils import check_bool, check_input, check_int, in_opmath, opmath_dtype, torch_uniform

__all__ = ["Bilinear", "Identity", "Linear"]


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


class Bilinear(nnx.Module):
    """Torch ``nn.Bilinear(in1_features, in2_features, out_features, bias=True)``:
    y[..., o] = Σ_ij x1[..., i] · weight[o, i, j] · x2[..., j] + bias[o].

    ``__call__(input1, input2)``: ``input1`` (*, in1_features) and ``input2``
    (*, in2_features) with the same leading axes (no broadcasting, as torch; rank 1 is the
    unbatched case) → (*, out_features).

    Variables: ``weight`` (out_features, in1_features, in2_features) in torch's layout
    (``torch_name='weight'``, no ``torch_layout``: copied unchanged), ``bias``
    (out_features,) or ``None``; both U(±1/√in1_features) as torch draws them.

    Validation: sizes ints ≥ 1 (``out_features`` ≥ 0); torch refuses in1_features ≤ 0
    too, and builds an ``in2_features=0`` layer that fails at the call — refused here.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> m = Bilinear(20, 30, 40, rngs=nnx.Rngs(0))
    >>> m(jnp.ones((128, 20)), jnp.ones((128, 30))).shape
    (128, 40)
    """

    def __init__(self, in1_features: int, in2_features: int, out_features: int,
                 bias: bool = True, *, rngs: nnx.Rngs | None = None, dtype=None,
                 param_dtype=jnp.float32):
        self.in1_features = check_int(in1_features, "in1_features", "Bilinear", minimum=1)
        self.in2_features = check_int(in2_features, "in2_features", "Bilinear", minimum=1)
        self.out_features = check_int(out_features, "out_features", "Bilinear", minimum=0)
        check_bool(bias, "bias", "Bilinear")
        self.dtype, self.param_dtype = dtype, param_dtype
        rngs = nnx.Rngs(0) if rngs is None else rngs
        init = torch_uniform(in1_features)  # torch: bound 1/sqrt(weight.size(1))
        self.weight = nnx.Param(
            init(rngs.params(), (out_features, in1_features, in2_features), param_dtype),
            torch_name="weight")
        self.bias = (nnx.Param(init(rngs.params(), (out_features,), param_dtype),
                               torch_name="bias") if bias else None)

    def __call__(self, input1, input2):
        """``input1`` (*, in1_features), ``input2`` (*, in2_features), same leading axes
        → (*, out_features)."""
        check_input(input1, name="input1", layer="Bilinear", ranks=None,
                    layout="(*, in1_features)", channels=self.in1_features, floating=True)
        check_input(input2, name="input2", layer="Bilinear", ranks=None,
                    layout="(*, in2_features)", channels=self.in2_features, floating=True)
        if input1.shape[:-1] != input2.shape[:-1]:
            raise ValueError(f"Bilinear: input1 (*, in1_features) and input2 (*, "
                             f"in2_features) must have the same leading axes (*), got shapes "
                             f"{tuple(input1.shape)} and {tuple(input2.shape)}")
        w = self.weight.get_value()
        b = None if self.bias is None else self.bias.get_value()
        dt = self.dtype if self.dtype is not None else jnp.result_type(
            input1, input2, w, *(() if b is None else (b,)))
        ct = opmath_dtype(dt)  # half precision: accumulate in float32 as torch's matmuls
        x1, x2, w = input1.astype(ct), input2.astype(ct), w.astype(ct)
        # (*, in1) @ (out, in1, in2) → (*, out, in2), then contract in2 with x2
        y = jnp.einsum("...i,oij,...j->...o", x1, w, x2)
        if b is not None:
            y = y + b.astype(ct)
        return y.astype(dt)
