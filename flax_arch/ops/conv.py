"""Convolutions as slices and matmuls: the forms ``flax_arch.nn.conv`` chooses between.

XLA:CPU computes ``lax.conv_general_dilated`` with Eigen, whose forward pass is fast but
whose derivatives are not: the kernel gradient of a convolution is itself a convolution
with the batch as its feature axis, and of a strided one a convolution with a dilated
kernel; neither has a fast CPU kernel. On the SEGAN encoder's last layer (157 steps,
256 → 512 channels, k = 31, stride 4) forward + gradients took 13.4 ms with
``lax.conv_general_dilated`` against 2.5 ms as patches and a matmul
(``benchmarks/conv_forms.py``; docs/benchmarks.md, "Convolution forms"). The forms here
are built from ``lax.pad`` / strided slices / ``concatenate`` / ``dot`` only, so reverse-
and forward-mode autodiff both work and every derivative is again slices and matmuls:

* :func:`conv_patches` — im2col: the K = prod(kernel_size) shifted, strided views of the
  padded input side by side, (N, *O, K·C_in), times the kernel as a (K·C_in, C_out) matrix.
  Its kernel gradient is one matmul, patchesᵀ @ g; its input gradient is g @ kernelᵀ
  scattered back by K pads (the transposes of the slices) and summed.
* :func:`conv_transpose_phases` — a transposed convolution of stride s as a stride-1
  convolution with s^n times the output channels followed by depth-to-space (the
  "sub-pixel" identity): output position m·s + r only ever meets kernel taps q·s + r, so
  each phase r is a correlation of the input with every s-th tap. No zeros are inserted
  into the input and no derivative is a dilated convolution.
* :func:`differentiate_as` — one form's values with another form's derivatives (a custom
  JVP; reverse mode transposes it), for a layer whose fastest forward and fastest
  derivatives are different forms.
* :func:`prefer_patches` — the measured crossover that ``method='auto'`` uses.

All functions are channels-last: x (N, *S, C_in), kernels (*kernel_size, C_in/groups,
C_out) as in ``flax_arch.nn.Conv*``.
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

__all__ = ["conv_patches", "conv_transpose_phases", "differentiate_as", "prefer_patches",
           "PATCHES_MAX_ELEMENTS"]

#: ``prefer_patches``'s limit on one sample's patch matrix, (output positions) × K × C_in/g
#: elements (8 MiB of float32). Measured on the 2-core Xeon VM (docs/benchmarks.md):
#: AlexNet's 13×13 convolutions (0.3–0.6 M elements) and every SEGAN/DCGAN strided layer
#: train 1.2–4x faster as patches; the ResLayer's 100×100×64 3×3 convolution (5.8 M) is
#: 1.5x slower, because building and re-reading its patch matrix costs more than Eigen's
#: whole forward pass.
PATCHES_MAX_ELEMENTS = 2 ** 21
#: below this many input channels per group, Eigen's convolution wins: a patch row is too
#: short for the matmul (AlexNet's and DCGAN's RGB input layers, SEGAN's 1-channel input)
PATCHES_MIN_CHANNELS = 16


def prefer_patches(out_positions: int, taps: int, in_channels_per_group: int) -> bool:
    """``method='auto'``'s rule on CPU: im2col + matmul (:func:`conv_patches`) rather than
    ``lax.conv_general_dilated`` when one sample's patch matrix, ``out_positions`` × ``taps``
    × ``in_channels_per_group`` elements, is at most :data:`PATCHES_MAX_ELEMENTS` and there
    are at least :data:`PATCHES_MIN_CHANNELS` input channels per group."""
    return (in_channels_per_group >= PATCHES_MIN_CHANNELS
            and out_positions * taps * in_channels_per_group <= PATCHES_MAX_ELEMENTS)


def _pad(x, padding):
    """Zero-pad (or, for negative amounts, crop) the spatial axes of (N, *S, C)."""
    if all(p == (0, 0) for p in padding):
        return x
    cfg = [(0, 0, 0)] + [(lo, hi, 0) for lo, hi in padding] + [(0, 0, 0)]
    return lax.pad(x, jnp.zeros((), x.dtype), cfg)


def conv_output_size(size: int, k: int, s: int, d: int) -> int:
    """Output length of a 'valid' correlation: ⌊(size − d·(k−1) − 1) / s⌋ + 1."""
    return (size - d * (k - 1) - 1) // s + 1


def conv_patches(x, kernel, strides, padding, dilation, groups: int = 1, precision=None):
    """``lax.conv_general_dilated`` (torch's cross-correlation) as im2col + one matmul.

    x (N, *S, C_in) channels-last; kernel (*k, C_in/groups, C_out); ``padding`` one
    (low, high) zero-padding pair per spatial axis (negative crops); returns
    (N, *O, C_out) with O = ⌊(S + low + high − d·(k−1) − 1) / s⌋ + 1.

    >>> import jax.numpy as jnp
    >>> conv_patches(jnp.ones((1, 8, 2)), jnp.ones((3, 2, 4)), (2,), ((1, 1),), (1,)).shape
    (1, 4, 4)
    """
    n = x.ndim - 2
    ks, cout = kernel.shape[:n], kernel.shape[-1]
    x = _pad(x, padding)
    outs = [conv_output_size(L, k, s, d)
            for L, k, s, d in zip(x.shape[1:-1], ks, strides, dilation)]
    # one strided view per tap: tap t of axis i reads t·d, t·d + s, …, t·d + s·(O−1)
    views = [x[(slice(None),) + tuple(slice(t * d, t * d + s * (o - 1) + 1, s)
                                      for t, d, s, o in zip(tap, dilation, strides, outs))]
             for tap in itertools.product(*(range(k) for k in ks))]
    taps, cin = len(views), x.shape[-1]
    cols = views[0] if taps == 1 else jnp.concatenate(views, axis=-1)  # (N, *O, K·C_in)
    if groups == 1:
        # kernel (*k, C_in, C_out) → (K·C_in, C_out): the same tap-major order as the columns
        return jnp.dot(cols, kernel.reshape(taps * cin, cout), precision=precision)
    cin_g, cout_g = cin // groups, cout // groups
    # cols (N, *O, K, g, C_in/g); kernel (*k, C_in/g, g·C_out/g) → (K, C_in/g, g, C_out/g)
    cols = cols.reshape(*cols.shape[:-1], taps, groups, cin_g)
    w = kernel.reshape(taps, cin_g, groups, cout_g)
    y = jnp.einsum("...kgc,kcgo->...go", cols, w, precision=precision)
    return y.reshape(*y.shape[:-2], cout)  # (N, *O, g·C_out/g): group-major as lax's


def conv_transpose_phases(x, kernel, stride, padding, output_padding, groups: int, conv):
    """torch's transposed convolution (dilation 1) as one stride-1 correlation and a
    depth-to-space.

    x (N, *S, C_in); kernel (*k, C_in, C_out/groups) (``flax_arch.nn.ConvTranspose*``'s
    layout); returns (N, *O, C_out) with O = (S − 1)·s − 2·padding + k + output_padding.
    ``conv(x, w, padding)`` computes a stride-1, dilation-1 correlation with ``groups``
    groups and explicit (low, high) padding (:func:`conv_patches` or ``lax``).

    Why it holds: output position o = m·s + r (phase r < s) receives x[l]·W[t] exactly
    when l·s + t = o, i.e. t = (m − l)·s + r. With Q = ⌈k / s⌉ and the kernel zero-padded
    to Q·s taps, block m of the output is Σ_q x[m − q] · W[q·s + r]: a correlation of x
    (padded by Q − 1 in front) with the kernel K2[j] = W[(Q − 1 − j)·s + r], whose s^n
    phases are stacked as output channels.
    """
    n = x.ndim - 2
    ks, S = kernel.shape[:n], x.shape[1:-1]
    cin_g, cout_g = x.shape[-1] // groups, kernel.shape[-1]
    Q = [-(-k // s) for k, s in zip(ks, stride)]
    outs = [(L - 1) * s - 2 * p + k + op
            for L, s, p, k, op in zip(S, stride, padding, ks, output_padding)]
    # the kernel, taps padded to Q·s: (*k, C_in, C_out/g) → (Q1, s1, …, g, C_in/g, C_out/g)
    w = jnp.pad(kernel, [(0, q * s - k) for q, s, k in zip(Q, stride, ks)] + [(0, 0)] * 2)
    w = w.reshape(*itertools.chain(*zip(Q, stride)), groups, cin_g, cout_g)
    w = jnp.flip(w, axis=tuple(range(0, 2 * n, 2)))  # block j ↔ tap block Q − 1 − j
    # → (Q1, …, C_in/g, g, s1, …, C_out/g) → (*Q, C_in/g, g·prod(s)·C_out/g): each group's
    # output channels are its phases × channels, contiguous (lax's group-major order)
    perm = [*range(0, 2 * n, 2), 2 * n + 1, 2 * n, *range(1, 2 * n, 2), 2 * n + 2]
    w = w.transpose(perm).reshape(*Q, cin_g, groups * math.prod(stride) * cout_g)
    # M blocks of s outputs cover the cropped range [padding, padding + O); x is padded by
    # Q − 1 in front and cropped or padded behind to give exactly M blocks
    M = [-(-(p + o) // s) for p, o, s in zip(padding, outs, stride)]
    y = conv(x, w, [(q - 1, m - L) for q, m, L in zip(Q, M, S)])  # (N, *M, g·prod(s)·c)
    N = x.shape[0]
    # (N, *M, g, *s, c) → (N, M1, s1, M2, s2, …, g, c) → (N, *M·s, C_out): depth to space
    y = y.reshape(N, *M, groups, *stride, cout_g)
    perm = [0, *itertools.chain(*((1 + i, 2 + n + i) for i in range(n))), 1 + n, 2 + 2 * n]
    y = y.transpose(perm).reshape(N, *(m * s for m, s in zip(M, stride)), groups * cout_g)
    return y[(slice(None),) + tuple(slice(p, p + o) for p, o in zip(padding, outs))]


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def differentiate_as(value_fn, tangent_fn, x, kernel):
    """``value_fn(x, kernel)``, differentiated as ``tangent_fn``.

    Both must compute the same bilinear map of (x, kernel) (two forms of one convolution).
    The JVP is tangent_fn(dx, kernel) + tangent_fn(x, dkernel), each term only for an
    argument that has a tangent; reverse mode transposes it, so the gradients are those of
    ``tangent_fn``'s form (e.g. slices and matmuls) while the forward pass runs
    ``value_fn``'s. Forward mode, reverse mode and higher orders all work.

    >>> import jax, jax.numpy as jnp
    >>> f = lambda x, k: x @ k
    >>> g = jax.grad(lambda k: differentiate_as(f, f, jnp.ones(2), k).sum())(jnp.ones((2, 1)))
    >>> g.tolist()
    [[1.0], [1.0]]
    """
    return value_fn(x, kernel)


def _differentiate_as_jvp(value_fn, tangent_fn, primals, tangents):
    x, kernel = primals
    dx, dkernel = tangents
    y = value_fn(x, kernel)
    parts = []
    if type(dx) is not SymbolicZero:
        parts.append(tangent_fn(dx, kernel))
    if type(dkernel) is not SymbolicZero:
        parts.append(tangent_fn(x, dkernel))
    dy = functools.reduce(lambda a, b: a + b, parts) if parts else jnp.zeros_like(y)
    return y, dy


differentiate_as.defjvp(_differentiate_as_jvp, symbolic_zeros=True)
