"""Convolutions with torch's semantics, channels-last.

``Conv1d`` / ``Conv2d`` / ``Conv3d`` subclass ``nnx.Conv``: Flax already computes torch's
cross-correlation with strides, explicit (low, high) padding, dilation and groups. What
differs and is handled here:

* torch's argument names and defaults; ``padding`` as int / tuple / ``'same'`` /
  ``'valid'`` with torch's rule for ``'same'`` (left = total // 2, the extra element on the
  right, stride 1 only); ``padding_mode`` ('zeros', 'reflect', 'replicate', 'circular');
* torch's initialisation U(±1/sqrt(fan_in)), fan_in = in_channels / groups · prod(kernel);
* kernel stored (*kernel_size, in/groups, out), i.e. torch's (out, in/groups, *k) with the
  axes reversed in order (``torch_layout='conv'``);
* ``method`` (keyword-only): how the sum is computed, same numbers up to rounding order.
  ``'conv'`` is ``lax.conv_general_dilated`` (what ``nnx.Conv`` calls); ``'patches'`` is
  im2col + one matmul (:func:`flax_arch.ops.conv.conv_patches`), whose kernel gradient is
  a matmul instead of XLA:CPU's slow backward-filter convolution (a dilated-kernel one
  when strided). ``'auto'`` (default) is ``'patches'`` on CPU for strided or 1-D
  convolutions that :func:`~flax_arch.ops.conv.prefer_patches` accepts (at least 16 input
  channels per group, a patch matrix of at most 2^21 elements per sample), ``'conv'``
  otherwise and on GPU/TPU. Crossovers measured in docs/benchmarks.md. ``Conv3d``'s
  'auto' is always ``'conv'`` (no 3-D crossover was measured); ``'patches'`` works in 3-D
  when asked for.

``ConvTranspose1d`` / ``ConvTranspose2d`` / ``ConvTranspose3d`` are written here because
``nnx.ConvTranspose`` pads differently (its ``padding`` applies to the dilated input, not
torch's ``dilation·(k−1) − padding`` rule), has no ``output_padding`` and no groups. Three
computations of the same sum, selected by ``method``:

* ``'conv'``: the forward convolution the transposed one is the gradient of: the input
  is dilated by ``stride`` (``lhs_dilation``), padded by ``dilation·(k−1) − padding`` on
  both sides (plus ``output_padding`` on the high side), and correlated with the
  spatially flipped kernel whose in/out roles are swapped per group.
* ``'matmul'``: what torch's CPU kernel does (columns + col2im): one matmul gives every
  kernel tap's contribution, (N, *S, C_in) @ (C_in, *k·C_out), then each tap's slice is
  placed at its strided output positions (``lax.pad`` with interior padding ``stride −
  1``; negative edge padding crops ``padding``) and the taps are summed (overlap-add).
  No multiplications by the dilation zeros, and its gradients are matmuls and slices.
* ``'phases'`` (dilation 1 only): the sub-pixel identity
  (:func:`flax_arch.ops.conv.conv_transpose_phases`): one stride-1 correlation with
  stride^n times the output channels, then depth-to-space. The correlation is patches +
  matmul where ``prefer_patches`` accepts it, so every derivative is a matmul or a slice.
  The overlap-add's backward gathers its k strided slices into one operand: forward +
  gradients of the SEGAN decoder layer (512 steps, 128 → 64, k = 31, stride 4) took
  140 ms as 'matmul' and 2.6 ms as 'phases' (``benchmarks/conv_forms.py``).
* ``'conv+phases'`` (dilation 1 only): the values of ``'conv'``, the derivatives of
  ``'phases'`` (:func:`flax_arch.ops.conv.differentiate_as`, a custom JVP that reverse mode
  transposes): the fastest forward pass where a model is mostly run forward. Measured on
  the slide-size generators against ``'phases'`` (docs/benchmarks.md): forward 20–35%
  faster, train step 10–15% slower (it runs the ``'conv'`` forward and still builds the
  patches the derivatives need), so ``'auto'`` takes ``'phases'``.

``'auto'`` (default) is ``'phases'`` on CPU for a strided, undilated layer,
``'matmul'`` for the others on CPU (stride 1: no interior padding, plain slices), and
``'conv'`` on GPU/TPU. Why not plain ``'conv'`` on CPU: its kernel gradient is a
convolution with a dilated kernel (``rhs_dilate``), which has no fast CPU kernel: the DCGAN
generator's train step took 84 ms against torch's 23 ms (docs/benchmarks.md). GPU/TPU
convolution libraries handle dilation natively. ``ConvTranspose3d``'s 'auto' is always
``'conv'`` (no 3-D crossover was measured); every other method works in 3-D when asked
for (the phases ones with dilation 1, as in 1-D/2-D).

Every layer takes batched (N, *S, C) and unbatched (*S, C) input, as torch takes (N, C, *S)
and (C, *S); an unbatched input gives an unbatched output. ``ConvTranspose*``'s forward takes
torch's ``output_size`` (see ``ConvTranspose1d``).

Validation (a TypeError for a wrong type, a ValueError for a wrong value, naming the
argument): channels and ``groups`` ints ≥ 1 with both channel counts divisible by
``groups``; ``kernel_size`` / ``stride`` / ``dilation`` ints ≥ 1 and ``padding`` /
``output_padding`` ints ≥ 0 (or tuples of them); ``bias`` a bool; ``padding_mode`` one of
torch's; ``x`` a floating-point array of the layer's rank with ``in_channels`` last, whose
spatial axes may be empty only in an empty batch (which gives torch's empty output).
Differences from torch, all refusals or earlier errors:

* torch checks a zero or negative stride, kernel size or dilation, a negative padding,
  an ``output_padding`` not below stride or dilation, and ConvTranspose's ``padding='same'``
  only at the first call; here the constructor raises;
* ``True`` as a size is refused (torch builds a 1-tap kernel from ``kernel_size=True``),
  so is a non-bool ``bias`` (torch takes its truthiness);
* ``in_channels=0`` / ``out_channels=0`` are refused: torch builds them, then its forward
  fails, or returns a tensor with 0 channels instead of ``out_channels``;
* an integer or bool ``x`` is refused even in an empty batch, where torch's ConvTranspose
  returns an empty float tensor; half/double ``x`` with float32 parameters is computed in
  promoted precision (torch refuses mixed dtypes).
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
from jax import lax
from flax import nnx

from ..ops.conv import (conv_patches, conv_transpose_phases, differentiate_as,
                        prefer_patches)
from ._utils import (check_bool, check_choice, check_input, check_int, in_opmath, ntuple,
                     torch_uniform)

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d", "causal_pad"]

#: how Conv / ConvTranspose compute (module docstring)
_CONV_METHODS = ("auto", "conv", "patches")
_CT_METHODS = ("auto", "matmul", "conv", "phases", "conv+phases")
_PAD_MODES = {"zeros": None, "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
#: lax dimension numbers of a channels-last input / output, per number of spatial axes
_SPECS = {1: "NWC", 2: "NHWC", 3: "NDHWC"}


def causal_pad(x, kernel_size: int, dilation: int = 1, *, axis: int = -2):
    """Left-pad the time axis by ``dilation·(kernel_size−1)`` zeros (torch ``F.pad(x, (P, 0))``).

    A convolution over the result sees no future samples and keeps the input length:
    output step t depends on inputs t−P … t only. ``x`` is channels-last (N, L, C) by
    default (``axis=-2`` is L). ``kernel_size`` and ``dilation`` must be positive ints
    and ``axis`` an axis of ``x`` (errors name the argument); any dtype is padded, as
    ``F.pad`` pads any dtype.

    >>> import jax.numpy as jnp
    >>> causal_pad(jnp.ones((1, 8, 1)), 3).shape
    (1, 10, 1)
    """
    kernel_size = check_int(kernel_size, "kernel_size", "causal_pad", minimum=1)
    dilation = check_int(dilation, "dilation", "causal_pad", minimum=1)
    axis = check_int(axis, "axis", "causal_pad")
    ndim = getattr(x, "ndim", None)
    if ndim is None:
        raise TypeError(f"causal_pad: x must be an array, got {type(x).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"causal_pad: axis must be in [{-ndim}, {ndim - 1}] for x of shape "
                         f"{tuple(x.shape)}, got {axis}")
    pad = dilation * (kernel_size - 1)
    widths = [(0, 0)] * x.ndim
    widths[axis] = (pad, 0)
    return jnp.pad(x, widths)


def _check_channels(layer, in_channels, out_channels, groups, bias):
    """The arguments every convolution shares. Channels must be at least 1: torch builds
    ``in_channels=0`` or ``out_channels=0`` but its forward then fails, or (for
    ``Conv1d(0, C, k)``) returns a tensor with 0 channels instead of C."""
    in_channels = check_int(in_channels, "in_channels", layer, minimum=1)
    out_channels = check_int(out_channels, "out_channels", layer, minimum=1)
    groups = check_int(groups, "groups", layer, minimum=1)
    for arg, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if value % groups:
            raise ValueError(f"{layer}: {arg} must be divisible by groups, got {arg}={value}, "
                             f"groups={groups}")
    return in_channels, out_channels, groups, check_bool(bias, "bias", layer)


def _check_empty(layer, x, n, layout, padded_ok=True):
    """torch's rule for empty spatial axes: allowed only in an empty batch (an unbatched
    input counts as a batch of one), and never with a non-'zeros' padding (``F.pad``
    refuses empty axes). Otherwise a convolution would return bias values only."""
    spatial = x.shape[x.ndim - n - 1:-1]
    if 0 in spatial and (x.ndim == n + 1 or x.shape[0] or not padded_ok):
        raise ValueError(f"{layer}: input x has an empty spatial axis, shape {tuple(x.shape)} "
                         f"(layout {layout}); torch allows one only in an empty batch"
                         + ("" if padded_ok else " with padding_mode='zeros'"))


def _conv_padding(padding, kernel_size, stride, dilation, n, layer):
    """Torch's ``padding`` argument → a tuple of (low, high) pairs per spatial axis."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{layer}: padding='same' is not supported for strided "
                                 f"convolutions (stride={stride}), as in torch")
            pads = []
            for k, d in zip(kernel_size, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError(f"{layer}: padding must be an int, a tuple, 'same' or 'valid', "
                         f"got {padding!r}")
    return tuple((p, p) for p in ntuple(padding, n, "padding", minimum=0, layer=layer))


class _ConvNd(nnx.Conv):
    _n: int = 0
    _layout: str = ""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1,
                 padding=0, dilation=1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", *, rngs: nnx.Rngs, dtype=None,
                 param_dtype=jnp.float32, precision=None, method: str = "auto"):
        name = type(self).__name__
        n = self._n
        in_channels, out_channels, groups, bias = _check_channels(
            name, in_channels, out_channels, groups, bias)
        check_choice(padding_mode, "padding_mode", tuple(_PAD_MODES), name)
        self.method = check_choice(method, "method", _CONV_METHODS, name)
        kernel_size = ntuple(kernel_size, n, "kernel_size", minimum=1, layer=name)
        stride = ntuple(stride, n, "stride", minimum=1, layer=name)
        dilation = ntuple(dilation, n, "dilation", minimum=1, layer=name)
        pads = _conv_padding(padding, kernel_size, stride, dilation, n, name)
        fan_in = in_channels // groups * math.prod(kernel_size)
        init = torch_uniform(fan_in)
        super().__init__(
            in_channels, out_channels, kernel_size, stride,
            # non-zero padding modes pad explicitly in __call__, the convolution is then 'valid'
            padding=pads if padding_mode == "zeros" else ((0, 0),) * n,
            kernel_dilation=dilation, feature_group_count=groups, use_bias=bias,
            dtype=dtype, param_dtype=param_dtype, precision=precision,
            kernel_init=init, bias_init=init, rngs=rngs,
            kernel_metadata={"torch_name": "weight", "torch_layout": "conv"},
            bias_metadata={"torch_name": "bias"})
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.stride, self.dilation = stride, dilation
        self.torch_padding = pads
        self.padding_mode = padding_mode

    @in_opmath
    def __call__(self, x, *, add_bias: bool = True):
        name = type(self).__name__
        check_input(x, name="x", layer=name, ranks=(self._n + 1, self._n + 2),
                    layout=self._layout, channels=self.in_channels, floating=True)
        _check_empty(name, x, self._n, self._layout, padded_ok=self.padding_mode == "zeros")
        spatial = tuple(x.shape[x.ndim - self._n - 1:-1])
        for size, k, d, (lo, hi) in zip(spatial, self.kernel_size, self.dilation,
                                        self.torch_padding):
            # torch's limits: reflect pads less than the size, circular wraps at most once
            if (self.padding_mode == "reflect" and max(lo, hi) >= size) or (
                    self.padding_mode == "circular" and max(lo, hi) > size):
                raise ValueError(f"{name}: input x of spatial size {spatial} is too small for "
                                 f"padding {self.torch_padding} with padding_mode="
                                 f"{self.padding_mode!r}")
            if size + lo + hi < d * (k - 1) + 1:
                raise ValueError(f"{name}: input x of spatial size {spatial} is too small for "
                                 f"kernel_size={self.kernel_size}, dilation={self.dilation} "
                                 f"and padding {self.torch_padding} (empty output)")
        mode = _PAD_MODES[self.padding_mode]
        if mode is not None:
            lead = [(0, 0)] * (x.ndim - self._n - 1)
            x = jnp.pad(x, lead + list(self.torch_padding) + [(0, 0)], mode=mode)
        bias = self.bias[...] if add_bias and self.bias is not None else None
        x, kernel, bias = self.promote_dtype((x, self.kernel[...], bias), dtype=self.dtype)
        unbatched = x.ndim == self._n + 1
        y = self._convolve(x[None] if unbatched else x, kernel)
        if bias is not None:
            y = y + bias
        return y[0] if unbatched else y

    def resolve_method(self, spatial) -> str:
        """The computation ``method`` stands for on this backend for an input of spatial
        size ``spatial`` ('conv' or 'patches'; module docstring)."""
        if self.method != "auto":
            return self.method
        if self._n == 3:  # no 3-D crossover was measured: plain lax everywhere
            return "conv"
        outs = [(L + lo + hi - d * (k - 1) - 1) // s + 1 for L, (lo, hi), k, s, d in zip(
            spatial, self.padding, self.kernel_size, self.strides, self.kernel_dilation)]
        # 2-D stride-1 convolutions stay with lax: AlexNet's 13×13 layers are faster as
        # patches one by one, but its whole train step was 15–25% slower with them
        return "patches" if (
            jax.default_backend() == "cpu"
            and (self._n == 1 or any(s > 1 for s in self.strides))
            and prefer_patches(math.prod(outs), math.prod(self.kernel_size),
                               self.in_channels // self.groups)) else "conv"

    def _convolve(self, x, kernel):
        """The convolution of a batched x (N, *S, C_in), without the bias.

        ``add_bias=False`` leaves the bias to the caller, to add inside a computation of its
        own: the QRNN adds it inside its recurrence; XLA:CPU does not fuse a bias into a
        convolution, so a separate add costs a pass over the output.

        ``method`` (module docstring): 'conv' is ``lax.conv_general_dilated`` (what
        ``nnx.Conv`` calls), 'patches' is im2col + matmul (:mod:`flax_arch.ops.conv`), and
        'auto' is 'patches' on CPU where :func:`~flax_arch.ops.conv.prefer_patches` says it
        trains faster, 'conv' otherwise. Same sum, same numbers up to rounding order."""
        method = self.resolve_method(x.shape[1:-1])
        if method == "patches":
            return conv_patches(x, kernel, self.strides, self.padding, self.kernel_dilation,
                                self.groups, self.precision)
        spec = _SPECS[self._n]
        return lax.conv_general_dilated(
            x, kernel, self.strides, list(self.padding), rhs_dilation=self.kernel_dilation,
            feature_group_count=self.groups,
            dimension_numbers=(spec, spec[1:-1] + "IO", spec), precision=self.precision)


class Conv1d(_ConvNd):
    """Torch ``nn.Conv1d`` over channels-last input.

    ``__call__(x, *, add_bias=True)``: x (N, L, C_in) or unbatched (L, C_in) →
    (N, L_out, C_out) (unbatched (L_out, C_out)), with
    L_out = ⌊(L + 2·padding − dilation·(kernel_size−1) − 1) / stride⌋ + 1.
    ``add_bias=False`` leaves the bias out, for a caller that adds ``bias`` inside a fused
    computation of its own (the QRNN does). Keyword-only ``method`` ('auto', 'conv',
    'patches'): how the sum is computed (module docstring).

    Variables: ``kernel`` (kernel_size, C_in/groups, C_out) ↔ torch ``weight``
    (C_out, C_in/groups, kernel_size); ``bias`` (C_out,).

    Argument and input checks, and where they are stricter than torch (e.g.
    ``kernel_size=True``, ``stride=0`` and zero channels raise at construction): module
    docstring, "Validation".

    >>> from flax import nnx; import jax.numpy as jnp
    >>> Conv1d(1, 1024, 3, rngs=nnx.Rngs(0))(jnp.ones((1, 8, 1))).shape
    (1, 6, 1024)
    """
    _n = 1
    _layout = "(N, L, C_in)"


class Conv2d(_ConvNd):
    """Torch ``nn.Conv2d`` over channels-last input.

    ``__call__(x, *, add_bias=True)``: x (N, H, W, C_in) or unbatched (H, W, C_in) →
    (N, H_out, W_out, C_out) (unbatched (H_out, W_out, C_out)), each spatial size as for
    ``Conv1d``; ``add_bias`` as there.

    Variables: ``kernel`` (kH, kW, C_in/groups, C_out) ↔ torch ``weight``
    (C_out, C_in/groups, kH, kW); ``bias`` (C_out,). Checks as for ``Conv1d``.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> Conv2d(3, 64, 11, stride=4, padding=2, rngs=nnx.Rngs(0))(jnp.ones((1, 224, 224, 3))).shape
    (1, 55, 55, 64)
    """
    _n = 2
    _layout = "(N, H, W, C_in)"


class Conv3d(_ConvNd):
    """Torch ``nn.Conv3d`` over channels-last input.

    ``__call__(x, *, add_bias=True)``: x (N, D, H, W, C_in) or unbatched (D, H, W, C_in) →
    (N, D_out, H_out, W_out, C_out) (unbatched (D_out, H_out, W_out, C_out)), each spatial
    size as for ``Conv1d``; torch's layout is (N, C_in, D, H, W). ``add_bias``, ``padding``
    ('same', 'valid', ints), ``padding_mode``, ``groups`` and ``dilation`` as for
    ``Conv1d``/``Conv2d``.

    Variables: ``kernel`` (kD, kH, kW, C_in/groups, C_out) ↔ torch ``weight``
    (C_out, C_in/groups, kD, kH, kW); ``bias`` (C_out,).

    ``method``: 'conv' and 'patches' both compute 3-D convolutions; 'auto' is 'conv'
    (``lax.conv_general_dilated``) on every backend, since the CPU crossovers behind the
    1-D/2-D rule were not measured in 3-D. Checks as for ``Conv1d``.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> Conv3d(2, 4, 3, stride=2, padding=1, rngs=nnx.Rngs(0))(jnp.ones((1, 5, 6, 7, 2))).shape
    (1, 3, 3, 4, 4)
    """
    _n = 3
    _layout = "(N, D, H, W, C_in)"


class _ConvTransposeNd(nnx.Module):
    _n: int = 0
    _layout: str = ""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1,
                 padding=0, output_padding=0, groups: int = 1, bias: bool = True,
                 dilation=1, padding_mode: str = "zeros", *, rngs: nnx.Rngs, dtype=None,
                 param_dtype=jnp.float32, precision=None, method: str = "auto"):
        name = type(self).__name__
        n = self._n
        self.method = check_choice(method, "method", _CT_METHODS, name)
        in_channels, out_channels, groups, bias = _check_channels(
            name, in_channels, out_channels, groups, bias)
        if padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported, as in torch, "
                             f"got padding_mode={padding_mode!r}")
        if isinstance(padding, str):
            raise TypeError(f"{name}: padding must be an int or a tuple of {n} ints (a "
                            f"transposed convolution takes no 'same' or 'valid', as in torch), "
                            f"got {padding!r}")
        self.kernel_size = ntuple(kernel_size, n, "kernel_size", minimum=1, layer=name)
        self.stride = ntuple(stride, n, "stride", minimum=1, layer=name)
        self.padding = ntuple(padding, n, "padding", minimum=0, layer=name)
        self.output_padding = ntuple(output_padding, n, "output_padding", minimum=0, layer=name)
        self.dilation = ntuple(dilation, n, "dilation", minimum=1, layer=name)
        if method in ("phases", "conv+phases") and any(d != 1 for d in self.dilation):
            raise ValueError(f"{name}: method={method!r} needs dilation 1, got dilation="
                             f"{self.dilation}")
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if not (op < s or op < d):
                raise ValueError(f"{name}: output_padding ({self.output_padding}) must be "
                                 f"smaller than either stride ({self.stride}) or dilation "
                                 f"({self.dilation}), as in torch")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.dtype, self.precision = dtype, precision
        # torch computes fan_in from its weight (C_in, C_out/groups, *k): dim 1 × receptive field
        init = torch_uniform(out_channels // groups * math.prod(self.kernel_size))
        shape = (*self.kernel_size, in_channels, out_channels // groups)
        self.kernel = nnx.Param(init(rngs.params(), shape, param_dtype),
                                torch_name="weight", torch_layout="conv_transpose")
        self.bias = (nnx.Param(init(rngs.params(), (out_channels,), param_dtype),
                               torch_name="bias") if bias else None)

    @in_opmath
    def __call__(self, x, output_size=None):
        n, name = self._n, type(self).__name__
        check_input(x, name="x", layer=name, ranks=(n + 1, n + 2), layout=self._layout,
                    channels=self.in_channels, floating=True)
        _check_empty(name, x, n, self._layout)  # else the output would be bias values only
        unbatched = x.ndim == n + 1
        if unbatched:
            x = x[None]
        output_padding = self._output_padding(x.shape[1:-1], output_size, unbatched)
        outs = tuple((L - 1) * s - 2 * p + d * (k - 1) + op + 1 for L, s, p, d, k, op in zip(
            x.shape[1:-1], self.stride, self.padding, self.dilation, self.kernel_size,
            output_padding))
        if any(o <= 0 for o in outs):
            raise ValueError(f"{type(self).__name__}: input x of spatial size {x.shape[1:-1]} "
                             f"is too small for padding={self.padding} (output size {outs})")
        kernel = self.kernel.get_value()
        if self.dtype is not None:
            x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
        else:
            dt = jnp.result_type(x, kernel)
            x, kernel = x.astype(dt), kernel.astype(dt)
        method = self.resolve_method()
        if not x.shape[0]:  # an empty batch: torch's empty output (the overlap-add's pads
            y = jnp.zeros((0, *outs, self.out_channels), x.dtype)  # miscount an empty axis)
        elif method == "phases":
            y = self._phases(x, kernel, output_padding)
        elif method == "conv+phases":
            y = differentiate_as(
                functools.partial(self._dilated_conv, output_padding=output_padding),
                functools.partial(self._phases, output_padding=output_padding), x, kernel)
        elif method == "matmul":
            y = self._overlap_add(x, kernel, outs)
        else:
            y = self._dilated_conv(x, kernel, output_padding)
        if self.bias is not None:
            y = y + self.bias.get_value().astype(y.dtype)
        return y[0] if unbatched else y

    def _output_padding(self, spatial, output_size, unbatched):
        """torch's ``output_size`` forward argument → the output padding of this call.

        ``None`` gives the constructor's ``output_padding``. Otherwise ``output_size`` is the
        n spatial output sizes, or the whole channels-last output shape ((N, *S, C_out), or
        (*S, C_out) for an unbatched x) whose batch and channel entries are ignored, as torch
        ignores its (N, C_out) entries; each size must lie in [min, min + stride − 1] with min
        the size for output_padding 0, and the constructor's ``output_padding`` is then
        ignored (as in torch)."""
        if output_size is None:
            return self.output_padding
        n, name = self._n, type(self).__name__
        if hasattr(output_size, "shape") and getattr(output_size, "ndim", 1) == 1:
            output_size = [int(v) for v in output_size]  # a jnp / np shape vector
        if not isinstance(output_size, (tuple, list)):
            raise TypeError(f"{name}: output_size must be None or a sequence of ints, got "
                            f"{output_size!r} ({type(output_size).__name__})")
        full = n + (1 if unbatched else 2)
        if len(output_size) == full:  # the whole channels-last shape: keep the spatial sizes
            output_size = output_size[:-1] if unbatched else output_size[1:-1]
        if len(output_size) != n:
            raise ValueError(f"{name}: output_size must have {n} (spatial) or {full} (the "
                             f"whole channels-last output shape) entries for x of rank "
                             f"{full}, got {tuple(output_size)!r}")
        output_size = ntuple(tuple(output_size), n, "output_size", layer=name)
        mins = [(L - 1) * s - 2 * p + d * (k - 1) + 1 for L, s, p, d, k in zip(
            spatial, self.stride, self.padding, self.dilation, self.kernel_size)]
        maxs = [m + s - 1 for m, s in zip(mins, self.stride)]
        if any(not lo <= o <= hi for o, lo, hi in zip(output_size, mins, maxs)):
            raise ValueError(f"{name}: output_size {output_size} is out of range: valid "
                             f"spatial sizes range from {tuple(mins)} to {tuple(maxs)} for an "
                             f"input of spatial size {tuple(spatial)}")
        return tuple(o - m for o, m in zip(output_size, mins))

    def resolve_method(self) -> str:
        """The computation ``method`` stands for on this backend ('matmul', 'conv',
        'phases' or 'conv+phases'; module docstring)."""
        if self.method != "auto":
            return self.method
        if jax.default_backend() != "cpu" or self._n == 3:  # 3-D: no crossover measured
            return "conv"
        # stride 1: the overlap-add has no interior padding, its gradients are plain
        # slices (and a 1×1 input, the DCGAN's first layer, is a single matmul)
        return ("phases" if all(d == 1 for d in self.dilation)
                and any(s > 1 for s in self.stride) else "matmul")

    def _phases(self, x, kernel, output_padding):
        """method='phases': one stride-1 correlation, then depth-to-space."""
        return conv_transpose_phases(x, kernel, self.stride, self.padding,
                                     output_padding, self.groups, self._phase_conv)

    def _phase_conv(self, x, w, padding):
        """method='phases': the stride-1 correlation behind the depth-to-space, as patches +
        matmul where :func:`~flax_arch.ops.conv.prefer_patches` says so (on CPU), else
        ``lax.conv_general_dilated``."""
        n, g = self._n, self.groups
        taps = w.shape[:n]
        outs = [L + lo + hi - k + 1 for L, (lo, hi), k in zip(x.shape[1:-1], padding, taps)]
        if jax.default_backend() == "cpu" and prefer_patches(
                math.prod(outs), math.prod(taps), self.in_channels // g):
            return conv_patches(x, w, (1,) * n, padding, (1,) * n, g, self.precision)
        spec = _SPECS[n]
        return lax.conv_general_dilated(
            x, w, (1,) * n, padding, feature_group_count=g,
            dimension_numbers=(spec, spec[1:-1] + "IO", spec), precision=self.precision)

    def _overlap_add(self, x, kernel, outs):
        """method='matmul': per-tap products by one matmul, then strided overlap-add."""
        n, g = self._n, self.groups
        ks, S = self.kernel_size, x.shape[1:-1]
        cin_g, cout_g = self.in_channels // g, self.out_channels // g
        sp, kp = "hwd"[:n], "ijk"[:n]  # einsum letters: spatial, kernel taps
        # x (N, *S, C_in) → (N, *S, g, C_in/g); kernel (*k, C_in, C_out/g) → (*k, g, C_in/g,
        # C_out/g); cols (N, *S, *k, g, C_out/g): input position × tap × output channel
        cols = jnp.einsum(f"n{sp}gc,{kp}gco->n{sp}{kp}go",
                          x.reshape(*x.shape[:-1], g, cin_g),
                          kernel.reshape(*ks, g, cin_g, cout_g), precision=self.precision)
        cols = cols.reshape(*cols.shape[:-2], self.out_channels)  # (N, *S, *k, C_out)
        zero = jnp.zeros((), cols.dtype)
        y = None
        for tap in itertools.product(*(range(k) for k in ks)):
            # input position l lands on output l·stride + tap·dilation − padding: a pad
            # with interior stride − 1 zeros; negative edges crop what falls outside
            cfg = [(0, 0, 0)]
            for L, s, p, d, t, o in zip(S, self.stride, self.padding, self.dilation, tap,
                                        outs):
                lo = t * d - p
                cfg.append((lo, o - lo - (L - 1) * s - 1, s - 1))
            cfg.append((0, 0, 0))
            part = lax.pad(cols[(slice(None),) * (n + 1) + tap], zero, cfg)
            y = part if y is None else y + part
        return y

    def _dilated_conv(self, x, kernel, output_padding):
        """method='conv': the correlation of the stride-dilated input with the flipped
        kernel (lhs_dilation)."""
        n, g = self._n, self.groups
        ks = self.kernel_size
        cin_g, cout_g = self.in_channels // g, self.out_channels // g
        # (*k, C_in, C_out/g) → (*k, g, C_in/g, C_out/g) → (*k, C_in/g, g, C_out/g)
        # → (*k, C_in/g, C_out): the forward-conv kernel whose output channel blocks are groups
        k = kernel.reshape(*ks, g, cin_g, cout_g)
        k = jnp.moveaxis(k, n, n + 1).reshape(*ks, cin_g, self.out_channels)
        k = jnp.flip(k, axis=tuple(range(n)))  # transposed conv = correlation with flipped kernel
        pads, crops = [], []
        for kk, p, op, d in zip(ks, self.padding, output_padding, self.dilation):
            lo, hi = d * (kk - 1) - p, d * (kk - 1) - p + op
            # negative padding (padding > dilation·(k−1)) crops the output instead
            pads.append((max(lo, 0), max(hi, 0)))
            crops.append((max(-lo, 0), max(-hi, 0)))
        spatial = _SPECS[n][1:-1]
        dn = lax.conv_dimension_numbers(
            x.shape, k.shape, (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"))
        y = lax.conv_general_dilated(
            x, k, window_strides=(1,) * n, padding=pads, lhs_dilation=self.stride,
            rhs_dilation=self.dilation, dimension_numbers=dn, feature_group_count=g,
            precision=self.precision)
        if any(c != (0, 0) for c in crops):
            y = y[(slice(None),) + tuple(slice(lo, y.shape[i + 1] - hi)
                                         for i, (lo, hi) in enumerate(crops))]
        return y


class ConvTranspose1d(_ConvTransposeNd):
    """Torch ``nn.ConvTranspose1d`` over channels-last input (a learnable upsampler).

    ``__call__(x, output_size=None)``: x (N, L, C_in) or unbatched (L, C_in) →
    (N, L_out, C_out) (unbatched (L_out, C_out)) with
    L_out = (L − 1)·stride − 2·padding + dilation·(kernel_size − 1) + output_padding + 1.
    ``output_size`` as in torch's forward: the wanted output length(s) ([L_out], or the
    whole channels-last output shape, whose batch and channel entries are ignored), each
    at most stride − 1 above the size for output_padding 0; it replaces ``output_padding``
    for that call.

    Variables: ``kernel`` (kernel_size, C_in, C_out/groups) ↔ torch ``weight``
    (C_in, C_out/groups, kernel_size); ``bias`` (C_out,).

    Keyword-only ``method`` ('auto', 'matmul', 'conv', 'phases', 'conv+phases'): how the
    sum is computed (same numbers; module docstring): 'auto' is 'phases' (strided) or
    'matmul' on CPU, 'conv' on GPU/TPU; 'conv+phases' for a faster forward pass.

    Checks as for ``Conv1d`` (module docstring, "Validation"); ``padding`` takes no
    'same'/'valid' (a TypeError here, torch's at its first call), and a bad
    ``output_padding`` raises at construction.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> ConvTranspose1d(1, 1, 8, stride=4, rngs=nnx.Rngs(0))(jnp.ones((1, 2, 1))).shape
    (1, 12, 1)
    """
    _n = 1
    _layout = "(N, L, C_in)"


class ConvTranspose2d(_ConvTransposeNd):
    """Torch ``nn.ConvTranspose2d`` over channels-last input.

    ``__call__(x, output_size=None)``: x (N, H, W, C_in) or unbatched (H, W, C_in) →
    (N, H_out, W_out, C_out) (unbatched (H_out, W_out, C_out)), each spatial size and
    ``output_size`` as for ``ConvTranspose1d``.

    Variables: ``kernel`` (kH, kW, C_in, C_out/groups) ↔ torch ``weight``
    (C_in, C_out/groups, kH, kW); ``bias`` (C_out,). ``method`` and checks as for
    ``ConvTranspose1d``.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> ConvTranspose2d(100, 512, 4, 1, 0, bias=False, rngs=nnx.Rngs(0))(jnp.ones((1, 1, 1, 100))).shape
    (1, 4, 4, 512)
    """
    _n = 2
    _layout = "(N, H, W, C_in)"


class ConvTranspose3d(_ConvTransposeNd):
    """Torch ``nn.ConvTranspose3d`` over channels-last input.

    ``__call__(x, output_size=None)``: x (N, D, H, W, C_in) or unbatched (D, H, W, C_in) →
    (N, D_out, H_out, W_out, C_out) (unbatched (D_out, H_out, W_out, C_out)), each spatial
    size and ``output_size`` as for ``ConvTranspose1d``; torch's layout is
    (N, C_in, D, H, W).

    Variables: ``kernel`` (kD, kH, kW, C_in, C_out/groups) ↔ torch ``weight``
    (C_in, C_out/groups, kD, kH, kW); ``bias`` (C_out,).

    ``method``: 'matmul', 'conv', 'phases' and 'conv+phases' all compute 3-D transposed
    convolutions (the phases ones need dilation 1, as in 1-D/2-D); 'auto' is 'conv'
    (``lax.conv_general_dilated`` with ``lhs_dilation``) on every backend, since the CPU
    crossovers behind the 1-D/2-D rule were not measured in 3-D. Checks as for
    ``ConvTranspose1d``.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> ConvTranspose3d(2, 3, 3, stride=2, padding=1, output_padding=1, rngs=nnx.Rngs(0))(
    ...     jnp.ones((1, 2, 3, 4, 2))).shape
    (1, 4, 6, 8, 3)
    """
    _n = 3
    _layout = "(N, D, H, W, C_in)"
