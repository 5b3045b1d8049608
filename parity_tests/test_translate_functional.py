"""``flax_arch.translate.functional.FUNCTIONAL`` against ``torch.nn.functional``.

Every table entry is called on the same values as the torch function its key names
(resolved from the key itself, so an alias key such as ``torch._C._nn.gelu`` runs torch's
object of that name): forward outputs and the reverse-mode gradients w.r.t. every
differentiated float argument (torch's ``autograd.grad`` with a fixed random cotangent
against ``jax.vjp``) must agree, normwise relative (max |diff| / max |torch|), to 1e-12 in
float64 and 1e-5 in float32 (a subset). Integer outputs (pooling indices, one_hot) must be
equal. Inputs put values on the kinks (0, ±lambd, ±3, the hardtanh bounds) and, for max
pooling, ties, where torch's derivative conventions matter. Warnings are recorded on both
sides; a case warns in torch exactly when it warns here, unless marked otherwise. Each
case runs the entry's forward and backward under one ``jax.jit`` (one compilation per
case, and proof that every entry traces); non-differentiated arguments stay concrete.

Hyper-parameters of conv / conv_transpose / pooling / pad / interpolate are also fuzzed
with hypothesis (``FLAX_ARCH_FUZZ_SCALE`` multiplies the example counts for a deeper run).
``test_every_key_has_a_case`` fails for a key without a parity case.
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch.fx.node import _get_qualified_name

from flax_arch.translate.errors import UnsupportedError
from flax_arch.translate.functional import FUNCTIONAL

# hypothesis imports libcst (which warns) only when it reports a failing example; with
# warnings as errors that would turn a failure into an INTERNALERROR
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:
        pass

_F = "torch.nn.functional."


# ------------------------------------------------------------------------------ harness

class Const:
    """A tensor argument that is not differentiated (torch's non-differentiable inputs,
    a loss's class weights, pooling indices)."""

    def __init__(self, a):
        self.a = np.asarray(a)


class Dt:
    """A dtype argument: torch's dtype on the torch side, the numpy dtype on ours."""

    def __init__(self, name):
        self.name = name


def resolve(key: str):
    """The torch object a key names (``torch._C._nn.gelu`` → that builtin)."""
    obj = importlib.import_module("torch")
    for part in key.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


def _relerr(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != torch's {want.shape}"
    assert np.array_equal(np.isnan(got), np.isnan(want)), "NaN positions differ"
    fin = np.isfinite(want)
    assert np.array_equal(got[~fin], want[~fin], equal_nan=True), "non-finite values differ"
    if not fin.any():
        return 0.0
    diff = np.max(np.abs(got[fin] - want[fin]))
    scale = np.max(np.abs(want[fin]))
    return diff / scale if scale > 0 else diff


def _as_tuple(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def run_case(key, args, kwargs, *, dtype="float64", grad=True, tol=None, warns="same",
             torch_fn=None, seed=0):
    """Compare FUNCTIONAL[key] with torch on ``args`` / ``kwargs`` (numpy arrays for
    tensors: floating ones are differentiated unless wrapped in :class:`Const`)."""
    dt = np.dtype(dtype)
    tol = tol if tol is not None else (1e-12 if dt == np.float64 else 1e-5)
    fn_t = torch_fn or resolve(key)
    fn_j = FUNCTIONAL[key]
    leaves_np, leaves_t = [], []

    def to_torch(v):
        if isinstance(v, Dt):
            return getattr(torch, v.name)
        if isinstance(v, Const):
            a = v.a.astype(dt) if v.a.dtype.kind == "f" else v.a
            return torch.from_numpy(np.array(a))
        if isinstance(v, np.ndarray):
            if v.dtype.kind != "f":
                return torch.from_numpy(np.array(v))
            t = torch.from_numpy(v.astype(dt))
            if grad:
                t.requires_grad_(True)
                leaves_t.append(t)
                leaves_np.append(v.astype(dt))
            return t
        if isinstance(v, (list, tuple)) and any(isinstance(e, (np.ndarray, Const)) for e in v):
            return type(v)(to_torch(e) for e in v)
        return v

    t_args = [to_torch(v) for v in args]
    t_kwargs = {k: to_torch(v) for k, v in kwargs.items()}

    def to_jax(v, leaves, it):
        if isinstance(v, Dt):
            return np.dtype(v.name)
        if isinstance(v, Const):
            return jnp.asarray(v.a.astype(dt) if v.a.dtype.kind == "f" else v.a)
        if isinstance(v, np.ndarray):
            if v.dtype.kind != "f":
                return jnp.asarray(v)
            return next(it) if grad else jnp.asarray(v.astype(dt))
        if isinstance(v, (list, tuple)) and any(isinstance(e, (np.ndarray, Const)) for e in v):
            return type(v)(to_jax(e, leaves, it) for e in v)
        return v

    def call_jax(*leaves):
        it = iter(leaves)
        j_args = [to_jax(v, leaves, it) for v in args]
        j_kwargs = {k: to_jax(v, leaves, it) for k, v in kwargs.items()}
        outs = _as_tuple(fn_j(*j_args, **j_kwargs))
        floats = tuple(o for o in outs if jnp.issubdtype(o.dtype, jnp.floating))
        return floats, outs

    with warnings.catch_warnings(record=True) as w_torch:
        warnings.simplefilter("always")
        out_t = _as_tuple(fn_t(*t_args, **t_kwargs))
    float_t = [o for o in out_t if o.dtype.is_floating_point]
    # the cotangents (one per float output, torch's shapes) and torch's gradients
    rng = np.random.default_rng(seed + 1)
    cots = [rng.standard_normal(tuple(o.shape)).astype(dt) for o in float_t]
    grads_t = None
    if leaves_t and float_t:
        pairs = [(o, torch.from_numpy(c)) for o, c in zip(float_t, cots) if o.requires_grad]
        grads_t = torch.autograd.grad([o for o, _ in pairs], leaves_t, [c for _, c in pairs],
                                      allow_unused=True) if pairs else [None] * len(leaves_t)

    def forward_backward(leaves, cotangents):
        if grads_t is None:
            return call_jax(*leaves)[1], ()
        _, pullback, outs = jax.vjp(call_jax, *leaves, has_aux=True)
        return outs, pullback(cotangents)

    with warnings.catch_warnings(record=True) as w_jax:
        warnings.simplefilter("always")
        # one jit: forward and backward compile as one program per case (and every entry
        # is checked to trace); non-differentiated arguments stay concrete constants
        outs_j, grads_j = jax.jit(forward_backward)(
            tuple(jnp.asarray(a) for a in leaves_np), tuple(jnp.asarray(c) for c in cots))
    if warns == "same":
        assert bool(w_torch) == bool(w_jax), (
            f"torch warned {[str(w.message) for w in w_torch]}, "
            f"here {[str(w.message) for w in w_jax]}")
    assert len(outs_j) == len(out_t), f"{len(outs_j)} outputs, torch has {len(out_t)}"
    for i, (oj, ot) in enumerate(zip(outs_j, out_t)):
        if ot.dtype.is_floating_point:
            assert np.dtype(oj.dtype) == dt, f"output {i}: dtype {oj.dtype}, expected {dt}"
            err = _relerr(np.asarray(oj), ot.detach().numpy())
            assert err <= tol, f"output {i}: relative error {err:.2e} > {tol:.0e}"
        else:
            np.testing.assert_array_equal(np.asarray(oj), ot.numpy(), f"output {i}")
    for i, (gj, gt) in enumerate(zip(grads_j, grads_t or ())):
        if gt is not None and gt.is_sparse:  # embedding(sparse=True): same numbers
            gt = gt.to_dense()
        want = np.zeros(leaves_np[i].shape, dt) if gt is None else gt.numpy()
        err = _relerr(np.asarray(gj), want)
        assert err <= tol, (f"gradient of float argument {i}: relative error {err:.2e} > "
                            f"{tol:.0e}")


# --------------------------------------------------------------------------------- cases

_rng = np.random.default_rng(20240601)


def rn(*shape):
    return _rng.standard_normal(shape)


def kinks(*shape, points=(0.0, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0, 6.0, 2.0, -2.0)):
    """Normal values with the kink points of the activations planted at the front."""
    x = rn(*shape).reshape(-1) * 3
    x[:len(points)] = points[:x.size]
    return x.reshape(shape)


def ties(*shape):
    """Small integers as floats: max-pool windows with tied maxima."""
    return _rng.integers(-2, 3, size=shape).astype(np.float64)


def probs(*shape, axis=1):
    e = np.exp(rn(*shape))
    return e / e.sum(axis=axis, keepdims=True)


def ints(hi, *shape, lo=0):
    return _rng.integers(lo, hi, size=shape).astype(np.int64)


CASES = []


def case(key, *args, _f32=False, _grad=True, _tol=None, _warns="same", _torch=None,
         **kwargs):
    """Register a parity case for ``key`` (short names are ``torch.nn.functional.*``)."""
    full = key if key.startswith("torch.") else _F + key
    n = sum(1 for c in CASES if c.values[0] == full)
    opts = dict(grad=_grad, tol=_tol, warns=_warns, torch_fn=_torch)
    CASES.append(pytest.param(full, args, kwargs, opts, "float64", id=f"{key}-{n}"))
    if _f32:
        CASES.append(pytest.param(full, args, kwargs, opts, "float32", id=f"{key}-{n}-f32"))


# linear family
case("linear", rn(3, 4), rn(5, 4), rn(5), _f32=True)
case("linear", rn(2, 3, 4), rn(5, 4))
case("linear", rn(4), rn(5, 4), rn(5))
case("torch._C._nn.linear", rn(3, 4), rn(4), None)
case("bilinear", rn(3, 4), rn(3, 5), rn(2, 4, 5), rn(2))
case("torch.bilinear", rn(2, 3, 4), rn(2, 3, 5), rn(2, 4, 5))

# convolutions
case("conv1d", rn(2, 4, 9), rn(6, 2, 3), rn(6), 2, 1, 2, 2, _f32=True)
case("conv1d", rn(4, 9), rn(3, 4, 3), None, padding="same", dilation=2)
case("conv2d", rn(2, 3, 7, 8), rn(4, 3, 3, 2), rn(4), (2, 1), (1, 0), _f32=True)
case("conv2d", rn(1, 4, 6, 6), rn(4, 1, 3, 3), None, padding="same", groups=4)
# torch warns that an even kernel with 'same' padding copies the input (a performance note)
case("conv2d", rn(1, 2, 6, 5), rn(3, 2, 2, 4), rn(3), padding="same", dilation=(2, 1),
     _warns="torch")
case("conv2d", rn(3, 6, 5), rn(2, 3, 3, 3), padding="valid")
case("torch.conv2d", rn(1, 2, 5, 5), rn(2, 2, 3, 3), rn(2), 2, 1)
case("torch.conv1d", rn(2, 3, 7), rn(2, 3, 2), rn(2), 2)
case("torch.conv3d", rn(1, 2, 3, 4, 3), rn(2, 2, 2, 2, 2))
case("torch.conv_transpose1d", rn(2, 3, 4), rn(3, 2, 3), rn(2), 2, 1, 1)
case("torch.conv_transpose3d", rn(1, 2, 2, 3, 2), rn(2, 1, 2, 2, 2), None, 2)
case("conv3d", rn(1, 2, 5, 4, 6), rn(4, 1, 2, 3, 2), rn(4), 1, (1, 0, 1), (1, 1, 2), 2)
case("conv_transpose1d", rn(2, 4, 5), rn(4, 3, 4), rn(3), 3, 1, 2)
case("conv_transpose1d", rn(4, 5), rn(4, 1, 3), None, 2, 2, 0, 2, 2)
case("conv_transpose2d", rn(2, 4, 3, 4), rn(4, 2, 3, 2), rn(4), (2, 3), (1, 0), (1, 2), 2,
     (1, 2), _f32=True)
case("conv_transpose2d", rn(1, 2, 5, 5), rn(2, 3, 3, 3), None, 2, 3)  # padding crops
case("torch.conv_transpose2d", rn(1, 2, 3, 3), rn(2, 3, 2, 2), rn(3), 2)
case("conv_transpose3d", rn(1, 2, 3, 2, 3), rn(2, 2, 2, 3, 2), rn(2), 2, (0, 1, 0), 1,
     dilation=(1, 2, 1))

# pooling
case("max_pool1d", ties(2, 3, 9), 3, 2, 1)
case("max_pool1d", ties(3, 10), 3, 2, 1, 2, True, True)
case("max_pool1d_with_indices", ties(2, 3, 9), 2)
case("max_pool2d", ties(2, 2, 7, 6), 3, 2, 1, ceil_mode=True, _f32=True)
case("max_pool2d", ties(2, 2, 7, 6), (2, 3), (1, 2), (1, 0), (2, 1), return_indices=True)
case("max_pool2d_with_indices", rn(2, 6, 6), 2, return_indices=True)
case("max_pool3d", ties(1, 2, 5, 5, 4), 2, 2, 1, return_indices=True, ceil_mode=True)
case("max_pool3d", rn(1, 2, 5, 5, 4), 3, 1, 1, 2)
case("max_pool3d_with_indices", ties(1, 2, 4, 4, 4), 2)
case("avg_pool1d", rn(2, 3, 9), 3, 2, 1, True, False)
case("torch.avg_pool1d", rn(3, 8), 2)
case("avg_pool2d", rn(2, 2, 7, 6), 3, 2, 1, True, True, _f32=True)
case("avg_pool2d", rn(2, 7, 6), (2, 3), (1, 2), (1, 1), False, False, 5)
case("torch._C._nn.avg_pool2d", rn(1, 2, 5, 5), 2, 1)
case("avg_pool3d", rn(1, 2, 5, 6, 4), 2, 2, 1, True, False)
case("avg_pool3d", rn(1, 2, 4, 4, 4), (2, 3, 2), divisor_override=3)
case("torch._C._nn.avg_pool3d", rn(1, 1, 4, 4, 4), 2)
case("adaptive_avg_pool1d", rn(2, 3, 10), 4, _f32=True)
case("torch.adaptive_avg_pool1d", rn(3, 7), 3)
case("adaptive_avg_pool2d", rn(2, 3, 7, 9), (3, None))
case("adaptive_avg_pool2d", rn(3, 5, 6), 4)
case("adaptive_avg_pool3d", rn(1, 2, 5, 6, 4), (2, 3, 3))
case("adaptive_max_pool1d", ties(2, 3, 10), 4, True)
case("adaptive_max_pool1d_with_indices", ties(3, 7), 3)
case("adaptive_max_pool2d", ties(2, 3, 7, 9), (3, 4))
case("adaptive_max_pool2d", ties(3, 5, 6), (2, None), return_indices=True)
case("adaptive_max_pool2d_with_indices", ties(1, 2, 5, 6), 3)
case("adaptive_max_pool3d", ties(1, 2, 5, 6, 4), 2, True)
case("adaptive_max_pool3d_with_indices", ties(1, 2, 4, 4, 4), (2, 1, 3))
case("lp_pool1d", rn(2, 3, 9), 2, 3, 2, _f32=True)
case("lp_pool1d", np.abs(rn(2, 3, 9)) + 0.1, 1.5, 2, None, True)
case("lp_pool2d", rn(2, 2, 7, 6), 3, (2, 3), 2, True)
case("lp_pool2d", rn(2, 5, 6), float("inf"), 2)
case("lp_pool3d", rn(1, 2, 4, 5, 4), 2, 2)


def _unpool_case(n, shape, k, s, p, out_size=None):
    x = torch.from_numpy(ties(*shape))
    pooled, idx = getattr(F, f"max_pool{n}d")(x, k, s, p, return_indices=True)
    case(f"max_unpool{n}d", pooled.numpy(), idx.numpy(), k, s, p, out_size)


_unpool_case(1, (2, 3, 9), 2, 2, 0)
_unpool_case(2, (2, 2, 7, 6), 3, 2, 1, (2, 2, 7, 6))
_unpool_case(2, (2, 6, 6), 2, None, 0, (7, 7))
_unpool_case(3, (1, 2, 4, 5, 4), 2, 2, 0, (4, 5, 4))

# padding
case("pad", rn(2, 3, 4, 5), (1, 2, -1, 3), _f32=True)
case("pad", rn(3, 4), (2, 1), "constant", 1.5)
case("pad", rn(2, 3, 6), (2, 3), "reflect")
case("pad", rn(2, 3, 5, 6), (1, 2, 3, 0), "reflect")
case("pad", rn(2, 5, 4, 6), (-1, 2, 3, 1), "replicate")
case("pad", rn(2, 3, 6), (3, 2), "circular")
case("pad", rn(2, 4, 5), (1, -2, 2, 1), "circular")
case("pad", rn(1, 2, 3, 4, 5), (1, 1, 2, 0, 1, 2), "circular")

# interpolate
case("interpolate", rn(2, 3, 5), 8)
case("interpolate", rn(2, 3, 6), None, 0.7)
case("interpolate", rn(1, 2, 5, 7), None, (1.5, 0.6), "nearest-exact", _f32=True)
case("interpolate", rn(1, 2, 3, 4, 5), None, 2, "nearest")
case("interpolate", rn(2, 3, 7), 12, None, "linear", False)
case("interpolate", rn(2, 3, 9), None, 1.7, "linear", None, True)
case("interpolate", rn(1, 2, 5, 6), (9, 4), None, "bilinear", False, _f32=True)
case("interpolate", rn(1, 2, 5, 6), 7, None, "bilinear")  # an int size: every axis
case("interpolate", rn(1, 2, 5, 6), None, (2.3, 0.5), "bilinear", True)
case("interpolate", rn(1, 2, 5, 6), (1, 1), None, "bilinear", False)
case("interpolate", rn(1, 2, 3, 4, 5), (5, 3, 7), None, "trilinear", False)
case("interpolate", rn(1, 2, 5, 6), (9, 4), None, "bicubic", False, _f32=True)
case("interpolate", rn(1, 2, 5, 6), None, (1.7, 2.0), "bicubic", True)
case("interpolate", rn(1, 2, 7, 9), (3, 4), None, "area")
case("upsample", rn(1, 2, 4, 5), None, 2, "bilinear", _warns="torch")
case("upsample_nearest", rn(1, 2, 4, 5), (7, 3), _warns="torch")
case("upsample_bilinear", rn(1, 2, 4, 5), None, 2, _warns="torch")

# normalisation
case("layer_norm", rn(3, 4, 5), (5,), rn(5), rn(5), _f32=True)
case("layer_norm", rn(2, 4, 5), [4, 5], rn(4, 5), None, 1e-3)
case("layer_norm", rn(2, 6), (6,))
case("group_norm", rn(2, 6, 5), 3, rn(6), rn(6), _f32=True)
case("group_norm", rn(2, 4, 3, 3), 2, None, None, 1e-3)
case("group_norm", rn(3, 4), 2, rn(4))
case("instance_norm", rn(2, 3, 7), _f32=True)
case("instance_norm", rn(2, 3, 4, 5), None, None, rn(3), rn(3), eps=1e-3)
case("instance_norm", rn(2, 3, 2, 3, 2), weight=rn(3))
case("instance_norm", rn(2, 3, 5), Const(rn(3)), Const(np.abs(rn(3)) + 0.5), rn(3), rn(3),
     use_input_stats=False)
case("rms_norm", rn(3, 4, 5), (5,), rn(5))
case("rms_norm", rn(2, 4, 5), (4, 5), None, 1e-3)
case("local_response_norm", rn(2, 6, 5), 3, _f32=True)
case("local_response_norm", rn(2, 5, 3, 4), 2, 1e-2, 0.5, 2.0)
case("local_response_norm", rn(1, 4, 2, 3, 2), 3)


def _with_zero_row(*shape):
    x = rn(*shape)
    x[0] = 0.0
    return x


case("normalize", _with_zero_row(3, 4), _f32=True)
case("normalize", rn(2, 3, 4), 1.0, -1)
case("normalize", _with_zero_row(3, 5), 3.0, 1)
case("normalize", _with_zero_row(3, 5), 1.5, 1)
case("normalize", ties(4, 5), float("inf"), 1)
case("normalize", rn(4, 5), 0.5, 0, 1e-3)
case("normalize", rn(4, 5), 0.0, 1)
case("cosine_similarity", rn(3, 5), rn(3, 5), _f32=True)
case("torch.cosine_similarity", _with_zero_row(4, 3), rn(1, 3), dim=-1)
case("cosine_similarity", rn(2, 4, 3), rn(2, 4, 3), 0, 1e-3)
case("pairwise_distance", rn(3, 5), rn(3, 5))
case("torch.pairwise_distance", rn(3, 5), rn(5), 1.0, 1e-6, True)
case("pairwise_distance", rn(2, 3, 5), rn(2, 3, 5), 3)
case("pairwise_distance", ties(3, 5), ties(3, 5), float("inf"))

# embedding / one_hot
case("embedding", ints(6, 3, 4), rn(6, 5))
case("embedding", np.array([[0, 2, 2, 5], [5, 1, 2, 0]]), rn(6, 3), 2)
case("embedding", np.array([0, 2, 2, 5, 2]), rn(6, 3), -1, scale_grad_by_freq=True)
case("embedding", np.array([1, 3]), rn(4, 2), sparse=True)
case("one_hot", ints(5, 3, 4), 5)
case("torch._C._nn.one_hot", ints(3, 6), 4)

# activations (kink points planted in every input)
X = kinks(4, 6)
_SMOOTH = {"elu", "gelu", "silu", "mish", "sigmoid", "tanh", "softplus", "logsigmoid",
           "celu"}
for name, extra in [("relu", ()), ("relu6", ()), ("leaky_relu", (0.2,)), ("elu", (1.5,)),
                    ("selu", ()), ("celu", (0.7,)), ("gelu", ()), ("silu", ()),
                    ("mish", ()), ("hardtanh", (-2.0, 3.0)), ("hardswish", ()),
                    ("hardsigmoid", ()), ("sigmoid", ()), ("tanh", ()), ("softplus", ()),
                    ("softsign", ()), ("tanhshrink", ()), ("hardshrink", ()),
                    ("softshrink", (1.0,)), ("threshold", (0.5, -3.0)), ("logsigmoid", ()),
                    ("rrelu", (0.1, 0.3))]:
    # float32 where the value is computed (not selected): rounding can matter there
    case(name, X, *extra, _f32=name in _SMOOTH)
case("gelu", X, approximate="tanh")
case("torch._C._nn.gelu", X, approximate="tanh")
case("softplus", X, 2.0, 1.0)
case("torch._C._nn.softplus", X, 0.5, 3.0)
case("torch.hardshrink", X, 1.0)
case("torch._C._nn.softshrink", X)
case("torch.nn.functional._threshold", X, 1.0, 2.0)
case("torch._C._nn.log_sigmoid", X)
case("relu", X, inplace=True, _torch=lambda x, inplace: F.relu(x.clone(), inplace=inplace))
case("hardtanh", X, 0.0, 1.0, True, _torch=lambda x, *a: F.hardtanh(x.clone(), *a))
case("glu", rn(3, 8))
case("glu", rn(2, 6, 3), 1)
case("prelu", kinks(2, 3, 4), rn(3))
case("prelu", kinks(2, 3), rn(1))
case("torch.prelu", kinks(4, 2, 3, 3), rn(2))
case("softmax", rn(3, 5), 1, _f32=True)
case("softmax", rn(2, 3, 4), -2, 3, Dt("float64"))
case("softmax", rn(3, 5))  # implicit dim: torch's rule and warning
case("log_softmax", rn(3, 5), 0, _f32=True)
case("log_softmax", rn(2, 3, 4), dim=2)
case("softmin", rn(3, 5), 1)
case("softmin", rn(4), dim=0)

# in-place variants (torch's on a clone, so that its autograd accepts them)
for name, extra in [("relu_", ()), ("elu_", (0.5,)), ("leaky_relu_", (0.1,)),
                    ("hardtanh_", (-0.5, 2.0)), ("threshold_", (0.5, 9.0)), ("celu_", (1.5,)),
                    ("selu_", ())]:
    fn = getattr(F, name)
    case(name, X, *extra, _torch=lambda x, *a, fn=fn: fn(x.clone(), *a))
    alias = _get_qualified_name(fn)
    case(alias, X, *extra, _torch=lambda x, *a, fn=fn: fn(x.clone(), *a))

# losses
case("cross_entropy", rn(4, 5), ints(5, 4))
case("cross_entropy", rn(3, 5, 2, 3), ints(5, 3, 2, 3), Const(np.abs(rn(5))), None, 1,
     reduction="sum")
case("cross_entropy", rn(4, 5), np.array([0, 3, -100, 4]), label_smoothing=0.2)
case("cross_entropy", rn(4, 5), np.array([0, 3, 1, 4]), Const(np.abs(rn(5))), ignore_index=3,
     reduction="none", label_smoothing=0.1)
case("cross_entropy", rn(3, 4, 5), probs(3, 4, 5), _f32=True)
case("cross_entropy", rn(2, 4, 3), probs(2, 4, 3), Const(np.abs(rn(4))), label_smoothing=0.3,
     reduction="none")
case("cross_entropy", rn(5), np.array(2))
case("nll_loss", np.log(probs(4, 5)), ints(5, 4))
case("nll_loss", rn(3, 5, 4), np.array([[0, 1, 4, 2], [3, 3, 0, 1], [2, 0, 1, 4]]),
     Const(np.abs(rn(5))), ignore_index=1)
case("nll_loss", rn(3, 5, 2), ints(5, 3, 2), reduction="none")
for name in ("mse_loss", "l1_loss"):
    Y = rn(3, 4)
    Y[0, :2] = 0.0
    Xs = Y.copy()
    Xs[0, 1] = 1.0  # input == target at [0, 0]: L1's sign(0) = 0
    case(name, Xs, Y, _f32=name == "mse_loss")
    case(name, rn(3, 4), rn(3, 4), reduction="sum")
    case(name, rn(3, 4), rn(4), reduction="none")  # broadcast target: warns in both
    case(name, rn(3, 4), rn(3, 4), weight=np.abs(rn(3, 4)))
    case(name, rn(3, 4), rn(3, 4), weight=np.abs(rn(3, 4)), reduction="sum")
    case(name, rn(3, 4), rn(3, 4), reduce=False)
case("smooth_l1_loss", rn(3, 4), rn(3, 4))
case("smooth_l1_loss", rn(3, 4) * 2, rn(3, 4), reduction="sum", beta=0.5)
case("smooth_l1_loss", rn(3, 4), rn(3, 4), beta=0.0)
case("huber_loss", rn(3, 4) * 2, rn(3, 4))
case("huber_loss", rn(3, 4) * 2, rn(3, 4), "none", 0.7)
case("huber_loss", rn(3, 4) * 2, rn(3, 4), "mean", 1.3, np.abs(rn(3, 4)))
case("huber_loss", rn(3, 4) * 2, rn(3, 4), "sum", 1.3, np.abs(rn(3, 4)))
P = probs(3, 4)
case("binary_cross_entropy", P, probs(3, 4), _f32=True)
case("binary_cross_entropy", P, Const(probs(3, 4)), Const(np.abs(rn(4))), reduction="sum")
case("binary_cross_entropy", P, probs(3, 4), reduction="none")
case("binary_cross_entropy_with_logits", rn(3, 4), probs(3, 4), _f32=True)
case("binary_cross_entropy_with_logits", rn(3, 4), probs(3, 4), Const(np.abs(rn(3, 4))),
     pos_weight=Const(np.abs(rn(4))), reduction="sum")
case("binary_cross_entropy_with_logits", rn(2, 3, 4, 5), probs(2, 3, 4, 5), reduction="none",
     pos_weight=Const(np.abs(rn(3, 1, 1))))
case("kl_div", np.log(probs(3, 4)), probs(3, 4), reduction="batchmean", _f32=True)
case("kl_div", np.log(probs(3, 4)), probs(3, 4))  # 'mean' warns in both
case("kl_div", np.log(probs(3, 4)), np.log(probs(3, 4)), reduction="sum", log_target=True)
case("kl_div", np.log(probs(3, 4)), probs(3, 4), reduction="none")
case("poisson_nll_loss", rn(3, 4), np.abs(rn(3, 4)) * 3)
case("poisson_nll_loss", np.abs(rn(3, 4)) + 0.1, np.abs(rn(3, 4)) * 3, False, True,
     reduction="sum")
case("gaussian_nll_loss", rn(3, 4), rn(3, 4), np.abs(rn(3, 4)) + 0.1)
case("gaussian_nll_loss", rn(3, 4), rn(3, 4), np.abs(rn(3, 1)) + 0.1, True, reduction="sum")
SIGNS = np.array([1.0, -1.0, 1.0, -1.0])
case("margin_ranking_loss", rn(4), rn(4), Const(SIGNS), 0.3)
case("hinge_embedding_loss", rn(4), Const(SIGNS), 0.5, reduction="sum")
case("cosine_embedding_loss", rn(4, 3), rn(4, 3), Const(SIGNS), 0.2)
case("soft_margin_loss", rn(4), Const(SIGNS))
case("multilabel_margin_loss", rn(3, 4), np.array([[3, 0, -1, 1], [1, 2, 3, -1],
                                                   [0, -1, 2, 2]]))
case("multilabel_soft_margin_loss", rn(3, 4), Const(_rng.integers(0, 2, (3, 4)).astype(float)),
     Const(np.abs(rn(4))))
case("multi_margin_loss", rn(3, 4), ints(4, 3), 2, 0.7, Const(np.abs(rn(4))))
case("triplet_margin_loss", rn(4, 5), rn(4, 5), rn(4, 5))
case("triplet_margin_loss", rn(4, 5), rn(4, 5), rn(4, 5), 0.5, 1, 1e-3, True, reduction="none")
case("triplet_margin_loss", rn(5), rn(5), rn(5), 2.0, 3, swap=True, reduction="sum")
_lp = np.log(probs(6, 2, 4, axis=2))
case("ctc_loss", _lp, np.array([[1, 2, 0], [3, 3, 1]]), np.array([6, 5]), np.array([2, 3]))
case("ctc_loss", _lp, np.array([1, 2, 3, 1]), np.array([6, 6]), np.array([2, 2]),
     reduction="sum")

# attention
Q, K, V = rn(2, 3, 4, 5), rn(2, 3, 6, 5), rn(2, 3, 6, 7)
V5 = rn(2, 3, 6, 5)
case("scaled_dot_product_attention", Q, K, V, _f32=True)
_bm = _rng.random((4, 6)) < 0.6
_bm[1] = False  # a fully masked query row: zero output and gradient
case("scaled_dot_product_attention", Q, K, V, Const(_bm))
case("scaled_dot_product_attention", Q, K, V, rn(2, 1, 4, 6), scale=0.3)
case("scaled_dot_product_attention", Q, K, V, is_causal=True)
# a bool mask and is_causal: torch's CPU flash kernel (taken here: v's head size is q's)
# applies both; its math kernel (other head sizes, float masks) refuses the combination
case("scaled_dot_product_attention", Q, K, V5, Const(_bm), is_causal=True)
case("torch._C._nn.scaled_dot_product_attention", rn(4, 5), rn(4, 5), rn(4, 3), None, 0.0,
     True)
case("scaled_dot_product_attention", rn(1, 4, 3, 2), rn(1, 2, 5, 2), rn(1, 2, 5, 3),
     enable_gqa=True)

# misc
case("pixel_shuffle", rn(2, 8, 3, 2), 2)
case("torch.pixel_shuffle", rn(2, 1, 9, 2, 3), 3)
case("pixel_unshuffle", rn(2, 2, 4, 6), 2)
case("torch.pixel_unshuffle", rn(3, 6, 3), 3)
case("unfold", rn(2, 3, 6, 5), (2, 3), 1, 1, (2, 1))
case("unfold", rn(2, 5, 6), 2, 2, 0, 1)
case("fold", rn(2, 12, 12), (4, 5), 2, 1, 0, 1)
case("fold", rn(3 * 6, 6), (5, 6), (2, 3), 1, 1, (2, 3))


@pytest.mark.parametrize("key,args,kwargs,opts,dtype", CASES)
def test_parity(key, args, kwargs, opts, dtype):
    opts = dict(opts)
    warns = opts.pop("warns")
    run_case(key, args, kwargs, dtype=dtype, warns=warns, **opts)


# ---------------------------------------------------------------------------------- fuzz

_SCALE = float(os.environ.get("FLAX_ARCH_FUZZ_SCALE", "1"))


def fuzz(n: int):
    """Deterministic hypothesis settings, ``n`` × ``FLAX_ARCH_FUZZ_SCALE`` examples."""
    return settings(deadline=None, max_examples=max(1, int(n * _SCALE)), derandomize=True,
                    database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _tup(draw, n, lo, hi):
    """A torch int-or-tuple argument: (value passed, per-axis tuple)."""
    if draw(st.booleans()):
        v = draw(st.integers(lo, hi))
        return v, (v,) * n
    t = tuple(draw(st.integers(lo, hi)) for _ in range(n))
    return t, t


#: the keys the fuzz tests below exercise
FUZZED = {_F + f"{name}{n}d" for name in ("conv", "conv_transpose", "max_pool", "avg_pool")
          for n in (1, 2, 3)} | {_F + "pad", _F + "interpolate"}


@pytest.mark.fuzz
@fuzz(10)
@given(st.data())
def test_fuzz_conv(data):
    n = data.draw(st.integers(1, 3))
    k_arg, k = _tup(data.draw, n, 1, 3)
    s_arg, s = _tup(data.draw, n, 1, 2)
    d_arg, d = _tup(data.draw, n, 1, 2)
    g = data.draw(st.integers(1, 2))
    cin, cout = g * data.draw(st.integers(1, 2)), g * data.draw(st.integers(1, 2))
    if data.draw(st.booleans()) and all(v == 1 for v in s):
        p_arg, p = data.draw(st.sampled_from(["same", "valid"])), (0,) * n
    else:
        p_arg, p = _tup(data.draw, n, 0, 2)
    least = [max(1, di * (ki - 1) + 1 - 2 * pi) for ki, di, pi in zip(k, d, p)]
    sizes = [data.draw(st.integers(lo, max(lo, 6 if n < 3 else 4))) for lo in least]
    batched = data.draw(st.booleans())
    x = rn(*([2] if batched else []), cin, *sizes)
    bias = rn(cout) if data.draw(st.booleans()) else None
    run_case(_F + f"conv{n}d", (x, rn(cout, cin // g, *k), bias, s_arg, p_arg, d_arg, g), {},
             dtype=data.draw(st.sampled_from(["float64", "float64", "float32"])),
             warns="torch")  # torch's performance note on 'same' with an even kernel


@pytest.mark.fuzz
@fuzz(10)
@given(st.data())
def test_fuzz_conv_transpose(data):
    n = data.draw(st.integers(1, 3))
    k_arg, k = _tup(data.draw, n, 1, 3)
    s_arg, s = _tup(data.draw, n, 1, 3)
    d_arg, d = _tup(data.draw, n, 1, 2)
    p_arg, p = _tup(data.draw, n, 0, 2)
    op = tuple(data.draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d))
    g = data.draw(st.integers(1, 2))
    cin, cout = g * data.draw(st.integers(1, 2)), g * data.draw(st.integers(1, 2))
    sizes = [data.draw(st.integers(1, 4 if n < 3 else 3)) for _ in range(n)]
    assume(all((L - 1) * si - 2 * pi + di * (ki - 1) + o + 1 > 0
               for L, si, pi, di, ki, o in zip(sizes, s, p, d, k, op)))
    x = rn(*([2] if data.draw(st.booleans()) else []), cin, *sizes)
    bias = rn(cout) if data.draw(st.booleans()) else None
    run_case(_F + f"conv_transpose{n}d",
             (x, rn(cin, cout // g, *k), bias, s_arg, p_arg, op, g, d_arg), {},
             dtype=data.draw(st.sampled_from(["float64", "float64", "float32"])))


def _pool_sizes(draw, k, s, p, d, n):
    return [draw(st.integers(max(1, di * (ki - 1) + 1 - 2 * pi), 7 if n < 3 else 5))
            for ki, si, pi, di in zip(k, s, p, d)]


@pytest.mark.fuzz
@fuzz(8)
@given(st.data())
def test_fuzz_max_pool(data):
    n = data.draw(st.integers(1, 3))
    k_arg, k = _tup(data.draw, n, 1, 3)
    s_arg, s = (None, k) if data.draw(st.booleans()) else _tup(data.draw, n, 1, 3)
    p = tuple(data.draw(st.integers(0, ki // 2)) for ki in k)
    d_arg, d = _tup(data.draw, n, 1, 2)
    ceil = data.draw(st.booleans())
    sizes = _pool_sizes(data.draw, k, s, p, d, n)
    # a window lying wholly in the padding (possible with dilation) makes torch read past
    # the input plane (its index points into the next channel): not drawn
    for L, ki, si, pi, di in zip(sizes, k, s, p, d):
        out = (L + 2 * pi - di * (ki - 1) - 1 + ((si - 1) if ceil else 0)) // si + 1
        if ceil and (out - 1) * si >= L + pi:
            out -= 1
        assume(all(any(0 <= o * si - pi + j * di < L for j in range(ki)) for o in range(out)))
    maker = ties if data.draw(st.booleans()) else rn
    x = maker(*([2] if data.draw(st.booleans()) else []), 2, *sizes)
    run_case(_F + f"max_pool{n}d", (x, k_arg, s_arg, p, d_arg, ceil,
                                    data.draw(st.booleans())), {})


@pytest.mark.fuzz
@fuzz(8)
@given(st.data())
def test_fuzz_avg_pool(data):
    n = data.draw(st.integers(1, 3))
    k_arg, k = _tup(data.draw, n, 1, 3)
    s_arg, s = (None, k) if data.draw(st.booleans()) else _tup(data.draw, n, 1, 3)
    p = tuple(data.draw(st.integers(0, ki // 2)) for ki in k)
    ceil, cip = data.draw(st.booleans()), data.draw(st.booleans())
    sizes = [data.draw(st.integers(max(ki, 1) if n == 3 else max(1, ki - 2 * pi), 7))
             for ki, pi in zip(k, p)]
    x = rn(*([2] if data.draw(st.booleans()) else []), 2, *sizes)
    args = (x, k_arg, s_arg, p, ceil, cip)
    if n > 1 and data.draw(st.booleans()):
        args += (data.draw(st.integers(1, 5)),)
    run_case(_F + f"avg_pool{n}d", args, {},
             dtype=data.draw(st.sampled_from(["float64", "float64", "float32"])))


@pytest.mark.fuzz
@fuzz(12)
@given(st.data())
def test_fuzz_pad(data):
    mode = data.draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    n = data.draw(st.integers(1, 3))
    rank = data.draw(st.sampled_from([n + 1, n + 2] + ([n + 3] if mode == "constant" else [])))
    shape = [data.draw(st.integers(1, 4)) for _ in range(rank - n)] + [
        data.draw(st.integers(2, 5)) for _ in range(n)]
    pads = []
    for size in reversed(shape[rank - n:]):
        if mode == "reflect":
            lo, hi = (data.draw(st.integers(-1, size - 1)) for _ in range(2))
        elif mode == "circular":
            lo = data.draw(st.integers(-1, 2))
            hi = data.draw(st.integers(-1, 2))
            assume(max(lo, hi) <= size + min(lo, 0) + min(hi, 0))
        else:
            lo, hi = (data.draw(st.integers(-2, 3)) for _ in range(2))
        assume(size + lo + hi >= (1 if mode in ("reflect", "replicate") else 0))
        pads += [lo, hi]
    kwargs = {"value": data.draw(st.floats(-2, 2))} if mode == "constant" else {}
    run_case(_F + "pad", (rn(*shape), tuple(pads), mode), kwargs)


@pytest.mark.fuzz
@fuzz(20)
@given(st.data())
def test_fuzz_interpolate(data):
    mode = data.draw(st.sampled_from(["nearest", "nearest-exact", "linear", "bilinear",
                                      "trilinear", "bicubic", "area"]))
    n = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}.get(
        mode, data.draw(st.integers(1, 3)))
    sizes = [data.draw(st.integers(1, 9 if n < 3 else 5)) for _ in range(n)]
    x = rn(1, 2, *sizes)
    kwargs = {"mode": mode}
    if mode not in ("nearest", "nearest-exact", "area"):
        kwargs["align_corners"] = data.draw(st.sampled_from([None, False, True]))
    if data.draw(st.booleans()):
        size = [data.draw(st.integers(1, 11 if n < 3 else 6)) for _ in range(n)]
        kwargs["size"] = size if n > 1 or data.draw(st.booleans()) else size[0]
    else:
        choices = st.sampled_from([0.5, 0.6, 0.7, 1.0, 4 / 3, 1.5, 1.7, 2.0, 2.3, 3.0])
        scales = [data.draw(choices) for _ in range(n)]
        assume(all(math.floor(L * s) >= 1 for L, s in zip(sizes, scales)))
        kwargs["scale_factor"] = scales if data.draw(st.booleans()) else scales[0]
        if not isinstance(kwargs["scale_factor"], list):
            assume(all(math.floor(L * scales[0]) >= 1 for L in sizes))
        kwargs["recompute_scale_factor"] = data.draw(st.sampled_from([None, False, True]))
    run_case(_F + "interpolate", (x,), kwargs,
             dtype=data.draw(st.sampled_from(["float64", "float64", "float32"])))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_nearest_indices_exhaustive(dtype):
    """torch's nearest / nearest-exact source indices for every in/out size pair up to 64
    and a set of scale factors, per dtype (the index arithmetic runs in the op-math type):
    torch's output on an arange input is its index."""
    from flax_arch.translate.functional import _nearest_source
    ot = np.float64 if dtype == "float64" else np.float32
    for mode in ("nearest", "nearest-exact"):
        exact = mode == "nearest-exact"
        for L in range(1, 65):
            x = torch.arange(L, dtype=getattr(torch, dtype)).reshape(1, 1, L)
            for out in range(1, 65):
                want = F.interpolate(x, out, mode=mode).numpy()[0, 0]
                np.testing.assert_array_equal(_nearest_source(L, out, None, exact, ot), want,
                                              f"{mode} {L} -> {out}")
            for s in (0.3, 0.7, 1.1, 1.3, 1 / 3, 2.5, 2.9, 3.7):
                if math.floor(L * s) < 1:
                    continue
                want = F.interpolate(x, scale_factor=s, mode=mode).numpy()[0, 0]
                got = _nearest_source(L, math.floor(L * s), s, exact, ot)
                np.testing.assert_array_equal(got, want, f"{mode} {L} x{s}")


# ------------------------------------------------------------------- table-level checks

def _covered() -> set[str]:
    return {p.values[0] for p in CASES} | FUZZED


def test_every_key_has_a_case():
    missing = sorted(set(FUNCTIONAL) - _covered())
    assert not missing, f"keys without a parity case: {missing}"


def test_fx_names_are_keys():
    """Whatever name torch.fx records for a table function (``torch._C._nn.gelu``,
    ``torch.conv2d``, ``torch.nn.functional._threshold``) is a key for the same callable."""
    for key in [k for k in FUNCTIONAL if k.startswith(_F)]:
        qualified = _get_qualified_name(resolve(key))
        assert FUNCTIONAL.get(qualified) is FUNCTIONAL[key], f"{key}: fx records {qualified}"


def test_signatures_match_torch():
    """Parameter names, order and defaults are torch's wherever torch's own signature is
    introspectable (Python functions; builtins and boolean-dispatched pools have none)."""
    checked = 0
    for key, fn in FUNCTIONAL.items():
        try:
            sig_t = inspect.signature(resolve(key))
        except (TypeError, ValueError):
            continue
        params = list(sig_t.parameters.values())
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
            continue
        want = [(p.name, p.default) for p in params]
        got = [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]
        assert [n for n, _ in got] == [n for n, _ in want], f"{key}: {got} != {want}"
        for (name, dg), (_, dw) in zip(got, want):
            if dw is inspect.Parameter.empty:
                assert dg is inspect.Parameter.empty, f"{key}: {name} has a default"
            else:
                assert dg == dw or (isinstance(dw, float) and math.isclose(dg, dw)), (
                    f"{key}: default of {name} is {dg!r}, torch's {dw!r}")
        checked += 1
    assert checked > 60


def test_import_does_not_import_torch():
    code = ("import sys, flax_arch.translate.functional as f; "
            "assert f.FUNCTIONAL and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- unsupported

_x4 = jnp.zeros((1, 2, 4, 4))
UNSUPPORTED = [
    ("interpolate", (_x4,), {"size": 8, "mode": "bilinear", "antialias": True},
     "antialias=True"),
    ("embedding", (jnp.zeros(3, jnp.int64), jnp.zeros((4, 2))), {"max_norm": 1.0},
     "max_norm=1.0"),
    ("one_hot", (jnp.zeros(3, jnp.int64),), {}, "num_classes=-1"),
    ("scaled_dot_product_attention", (_x4, _x4, _x4), {"dropout_p": 0.1}, "dropout_p=0.1"),
    ("rrelu", (_x4,), {"training": True}, "training=True"),
    ("normalize", (_x4,), {"out": _x4}, "out=<array of shape (1, 2, 4, 4)>"),
    ("instance_norm", (_x4, jnp.zeros(2), jnp.ones(2)), {}, "running_mean=<array of shape"),
    ("instance_norm", (jnp.zeros((1, 2, 2, 2, 2, 2)),), {}, "input=<array of shape"),
]


@pytest.mark.parametrize("name,args,kwargs,match", UNSUPPORTED,
                         ids=[u[0] + "-" + u[3] for u in UNSUPPORTED])
def test_unsupported(name, args, kwargs, match):
    with pytest.raises(UnsupportedError) as info:
        FUNCTIONAL[_F + name](*args, **kwargs)
    assert match in str(info.value) and name in str(info.value)
    assert isinstance(info.value, NotImplementedError)


@pytest.mark.parametrize("name,args,kwargs", [
    ("conv2d", (_x4, jnp.zeros((2, 2, 3, 3))), {"stride": 2, "padding": "same"}),
    ("conv_transpose2d", (_x4, jnp.zeros((2, 2, 3, 3))), {"padding": "same"}),
    ("interpolate", (_x4,), {"size": 8, "mode": "nearest", "align_corners": True}),
    ("interpolate", (_x4,), {"size": 8, "scale_factor": 2.0}),
    ("interpolate", (_x4,), {"size": 8, "mode": "linear"}),
    ("interpolate", (_x4,), {"size": 8, "recompute_scale_factor": True}),
    ("pad", (_x4, (1, 2, 3)), {}),
    ("pad", (_x4, (4, 0)), {"mode": "reflect"}),
    ("pad", (_x4, (1, 1)), {"mode": "replicate", "value": 1.0}),
])
def test_invalid_arguments_raise_like_torch(name, args, kwargs):
    """Values torch refuses are refused here too (ValueError, as the twins)."""
    with pytest.raises(Exception):
        getattr(F, name)(*(torch.from_numpy(np.asarray(a)) if hasattr(a, "shape") else a
                           for a in args),
                         **{k: torch.from_numpy(np.asarray(v)) if hasattr(v, "shape") else v
                            for k, v in kwargs.items()})
    with pytest.raises(ValueError):
        FUNCTIONAL[_F + name](*args, **kwargs)
