"""Run one parity :class:`Case`: torch reference → state_dict → Flax port, same inputs.

What is compared, per dtype:

* forward outputs (every output of a tuple, converted to torch's layout);
* gradients of ``L = Σ_i <out_i, g_i>`` (fixed random cotangents ``g_i``) with respect to
  the float inputs and to every parameter, the latter keyed by torch name through
  :func:`flax_arch.interop.to_torch_state_dict`;
* in train mode, the buffers after the step (BatchNorm running statistics).

Errors are normwise relative: ``max|flax − torch| / max|torch|``. Tolerances are fixed:
float64 ≤ 1e-12 (same math, only rounding differs), float32 ≤ 1e-5 — except for a float32
quantity that torch itself gets wrong by more than 1e-5 (ill-conditioned in float32): that
one is judged against the float64 reference as low precision is; and a float64 quantity
that moves by more than 1e-12 when torch's inputs move by one rounding is judged against
that movement (``ill_conditioned`` names both kinds). float16 and bfloat16
have no fixed tolerance: both frameworks are measured against torch in float64 on the same
rounded weights, inputs and cotangents, and each quantity passes when Flax's error ≤
ACCURACY_FACTOR · torch's + ACCURACY_FLOOR · eps (:func:`accuracy_bound`).

When a case fails, :func:`~flax_arch.parity.divergence.first_divergence` names the first
submodule whose output differs and the cause (semantic, kink flip or precision).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import re
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .kinks import clear_kinks
from ..interop import (channels_first_to_last, channels_last_to_first, is_float_dtype,
                       load_torch_state_dict, numpy_to_tensor, tensor_to_numpy,
                       to_torch_state_dict)

__all__ = ["Case", "CaseResult", "Prepared", "prepare", "build_reference", "run_case", "relative_error",
           "tolerance", "torch_device", "flatten_outputs", "layout_of",
           "nonfinite_mismatch", "parity_config", "LAYOUT_NAMES", "torch_layout_shape",
           "flax_layout_shape",
           "to_flax_layout", "to_torch_layout", "select"]

TOLERANCE = {"float64": 1e-12, "float32": 1e-5}
#: dtypes compared against torch's own error instead of a fixed tolerance: both frameworks
#: are measured against the float64 reference, see :func:`accuracy_bound`
LOW_PRECISION = ("float16", "bfloat16")
DTYPES = tuple(TOLERANCE) + LOW_PRECISION
#: low precision passes when Flax's error ≤ ACCURACY_FACTOR · torch's error
#: + ACCURACY_FLOOR · eps(dtype), both against the float64 reference (justified in
#: :func:`accuracy_bound`)
ACCURACY_FACTOR = 2.0
ACCURACY_FLOOR = 2.0
#: layouts a Case may name: "channels" = torch channels-first, Flax channels-last;
#: None = both sides agree
LAYOUT_NAMES = ("channels", None)
#: a parameter gradient below ZERO_GRAD·eps·(largest gradient) counts as zero in exact arithmetic
ZERO_GRAD = 1e4


def check_dtype(dtype: str) -> str:
    """``dtype`` if the harness knows it, else a ValueError naming the choices."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return dtype


def tolerance(dtype: str) -> float:
    """The fixed relative tolerance of a comparison in ``dtype`` (float64, float32); for a
    low-precision dtype, the floor of :func:`accuracy_bound`."""
    check_dtype(dtype)
    if dtype in TOLERANCE:
        return TOLERANCE[dtype]
    return ACCURACY_FLOOR * float(jnp.finfo(_np_dtype(dtype)).eps)


def accuracy_bound(dtype: str, torch_err: float) -> float:
    """The largest error against the float64 reference that Flax may have in low-precision
    ``dtype`` when torch's error is ``torch_err``: ACCURACY_FACTOR · torch_err +
    ACCURACY_FLOOR · eps.

    Why 2 and 2·eps: two correct implementations round in different orders, so their
    errors differ by small factors even for the same algorithm class (over the registry,
    measured after the float32-opmath fix: Flax/torch at most 2.7 for every judged
    quantity, and above 2 only where torch's error is below eps). The floor is two
    roundings of the result: it covers quantities torch gets almost exactly (a sum of a few
    terms, a copy) where a ratio means nothing. Both were fixed before the registry was run
    in half precision, not fitted to it; a real defect (an accumulation in half precision)
    measured 5–60× torch's error."""
    return ACCURACY_FACTOR * torch_err + tolerance(dtype)


def _np_dtype(dtype: str):
    """The numpy dtype of a harness dtype name (bfloat16 from ml_dtypes, which JAX ships)."""
    if dtype == "bfloat16":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


@dataclasses.dataclass(frozen=True)
class Case:
    """One parity check.

    ``torch_module()`` builds the reference (weights from torch's seeded initialiser);
    ``flax_module(rngs)`` builds the port with the same structure. ``inputs(rng)`` returns
    numpy arrays in torch's layout; ``in_layouts[i]`` / ``out_layouts[i]`` is
    ``"channels"`` where torch is channels-first (the Flax side gets/returns channels-last)
    and ``None`` where layouts agree. ``torch_call`` / ``flax_call`` override
    ``module(*inputs)`` (e.g. to pass keyword flags). ``train`` runs both in training mode
    (BatchNorm batch statistics, running-stat updates compared). ``grad_inputs``: whether
    gradients w.r.t. the floating inputs are compared, or the positions of the inputs whose
    are (the others, e.g. a float mask, are inputs without a gradient). ``tags`` mark e.g.
    "slow".
    ``well_posed`` shifts the reference's biases by tiny amounts so that no unit is within
    float32 rounding of a ReLU-family kink on these inputs (:mod:`flax_arch.parity.kinks`;
    both sides then load the shifted weights).
    """

    name: str
    torch_module: Callable[[], Any]
    flax_module: Callable[[nnx.Rngs], nnx.Module]
    inputs: Callable[[np.random.Generator], Sequence[np.ndarray]]
    in_layouts: Sequence[str | None] = ()
    out_layouts: Sequence[str | None] = ()
    train: bool = False
    torch_call: Callable | None = None
    flax_call: Callable | None = None
    grad_inputs: bool | tuple[int, ...] = True
    tags: tuple[str, ...] = ()
    seed: int = 0
    well_posed: bool = False

    def __post_init__(self):
        for field in ("in_layouts", "out_layouts"):
            bad = [x for x in getattr(self, field) if x not in LAYOUT_NAMES]
            if bad:
                raise ValueError(f"Case {self.name!r}: {field} entries must be one of "
                                 f"{LAYOUT_NAMES}, got {bad}")


@dataclasses.dataclass
class CaseResult:
    """One case in one dtype. ``*_err``: the largest relative error of each group of
    quantities — in float64/float32 Flax against torch, in a low-precision dtype Flax
    against the float64 reference, with torch's own error against that reference in
    ``torch_*_err`` (``nan`` otherwise). ``tol``: the fixed tolerance, or the floor of the
    low-precision bound. ``worst``: the quantity nearest to (or furthest past) its bound.
    ``ill_posed``: in low precision, why the gradients were measured but not judged (units
    of the float64 reference within the dtype's rounding of a kink), else ``None``.
    ``ill_conditioned``: in float32, the quantities past the fixed tolerance that were
    judged against the float64 reference instead (torch's own float32 error is above the
    tolerance there; see ``_rejudge_float32``), with both errors, else ``None``."""

    case: str
    dtype: str
    backend: str
    forward_err: float
    grad_err: float
    state_err: float
    tol: float
    passed: bool
    worst: str = ""
    diverged_at: str | None = None
    error: str | None = None
    torch_forward_err: float = float("nan")
    torch_grad_err: float = float("nan")
    torch_state_err: float = float("nan")
    ill_posed: str | None = None
    ill_conditioned: str | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def nonfinite_mismatch(got, want) -> str | None:
    """Where ``got`` and ``want`` disagree on a non-finite value, or ``None``.

    NaN must sit where the reference has NaN, and ±inf where it has the same infinity; a
    finite value facing a non-finite one is a mismatch too. The message names the first
    such position and both values.
    """
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return f"shapes differ: {got.shape} vs {want.shape}"
    gf, wf = np.isfinite(got), np.isfinite(want)
    both_nan = np.isnan(got) & np.isnan(want)
    same_inf = np.isinf(got) & (got == want)
    bad = ~(gf & wf) & ~both_nan & ~same_inf
    if not bad.any():
        return None
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    return (f"{int(bad.sum())} non-finite mismatch(es), first at index {idx}: "
            f"got {got[idx]!r}, want {want[idx]!r}")


def relative_error(got, want, scale: float | None = None) -> float:
    """Normwise relative error ``max|got − want| / max|want|`` over the finite entries
    (absolute if ``want`` is all 0); ``scale`` replaces ``max|want|`` when given.

    Non-finite values must match exactly (NaN for NaN, the same signed infinity): any other
    non-finite entry on either side, or a shape mismatch, gives ``inf``. See
    :func:`nonfinite_mismatch` for where.
    """
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape or nonfinite_mismatch(got, want) is not None:
        return float("inf")
    finite = np.isfinite(want)  # the same positions are finite in ``got`` here
    if not finite.any():
        return 0.0
    g, w = got[finite], want[finite]
    if scale is None:
        scale = float(np.max(np.abs(w)))
    diff = float(np.max(np.abs(g - w)))
    return diff / scale if scale > 0 else diff


def flatten_outputs(x) -> list:
    """A module's output as a flat list: nested tuples/lists are walked depth first."""
    if isinstance(x, (tuple, list)):
        return [y for item in x for y in flatten_outputs(item)]
    return [x]


def layout_of(layouts: Sequence[str | None], i: int) -> str | None:
    """The layout of argument/output ``i`` (``None`` past the end: layouts agree)."""
    return layouts[i] if i < len(layouts) else None


def to_flax_layout(a, layout: str | None):
    """A torch-layout array in the Flax port's layout (channels-first → channels-last)."""
    return channels_first_to_last(a) if layout == "channels" else a


def to_torch_layout(a, layout: str | None):
    """A Flax-layout array in torch's layout (channels-last → channels-first)."""
    return channels_last_to_first(a) if layout == "channels" else a


def torch_layout_shape(shape: Sequence[int], layout: str | None) -> tuple[int, ...]:
    """A Flax-layout shape in torch's layout (the layout helper on a zero-stride view)."""
    return tuple(to_torch_layout(np.broadcast_to(np.int8(0), tuple(shape)), layout).shape)


def flax_layout_shape(shape: Sequence[int], layout: str | None) -> tuple[int, ...]:
    """A torch-layout shape in the Flax port's layout (the inverse of
    :func:`torch_layout_shape`)."""
    return tuple(to_flax_layout(np.broadcast_to(np.int8(0), tuple(shape)), layout).shape)


def torch_device():
    """CUDA when JAX runs on a GPU and torch sees one (TF32 off); the CPU otherwise
    (including on TPU, where torch stays on the host)."""
    import torch
    if jax.default_backend() == "gpu" and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return torch.device("cuda")
    return torch.device("cpu")


@dataclasses.dataclass
class Prepared:
    """A case set up for one dtype: both modules with the same weights, in the case's
    mode, and its inputs. Built by :func:`prepare`; the harness, ``first_divergence`` and
    ``flax-arch bench`` all start from it.

    ``inputs`` are numpy arrays in torch's layout (floating ones cast to ``dtype``);
    ``flax_inputs`` / ``torch_inputs`` give them to each side.
    """

    case: Case
    dtype: str
    device: Any
    torch_module: Any
    flax_module: nnx.Module
    inputs: list[np.ndarray]

    def flax_inputs(self) -> list[jax.Array]:
        """The inputs in the Flax port's layout (channels-last where the case says)."""
        return [jnp.asarray(to_flax_layout(a, layout_of(self.case.in_layouts, i)))
                for i, a in enumerate(self.inputs)]

    def torch_inputs(self) -> list:
        """The inputs as torch tensors on the reference's device."""
        return [numpy_to_tensor(a, self.device) for a in self.inputs]

    def call_torch(self, module, *inputs):
        """``module(*inputs)``, or the case's ``torch_call``."""
        return self.case.torch_call(module, *inputs) if self.case.torch_call else module(*inputs)

    def call_flax(self, module, *inputs):
        """``module(*inputs)``, or the case's ``flax_call``."""
        return self.case.flax_call(module, *inputs) if self.case.flax_call else module(*inputs)

    def cotangents(self, shapes: Sequence[tuple[int, ...] | None]) -> list[np.ndarray | None]:
        """Fixed random cotangents ``g_i`` for ``L = Σ_i <out_i, g_i>``, one per output
        shape given in torch's layout (``None`` for a non-float output: no cotangent)."""
        crng = np.random.default_rng(self.case.seed + 1)
        return [None if s is None else crng.standard_normal(tuple(s)).astype(_np_dtype(self.dtype))
                for s in shapes]

    def flax_output_shapes(self) -> list[jax.ShapeDtypeStruct]:
        """Shapes and dtypes of the Flax call's flattened outputs, from ``jax.eval_shape``
        (nothing is computed; the module is split and merged inside, so train-mode state
        updates stay traced and the module is left as it is)."""
        graphdef, state = nnx.split(self.flax_module)

        def outputs(state, *xs):
            return flatten_outputs(self.call_flax(nnx.merge(graphdef, state), *xs))
        return flatten_outputs(jax.eval_shape(outputs, state, *self.flax_inputs()))

    def output_cotangents(self) -> tuple[list, list]:
        """:meth:`cotangents` for the Flax outputs' shapes (nothing is run): ``(Flax-layout
        jax arrays, torch tensors on the device)``, ``None`` for a non-float output. For
        callers that time or train both sides without a reference forward pass first."""
        layouts = self.case.out_layouts
        shapes = [torch_layout_shape(s.shape, layout_of(layouts, i))
                  if jnp.issubdtype(s.dtype, jnp.floating) else None
                  for i, s in enumerate(self.flax_output_shapes())]
        cots = self.cotangents(shapes)  # torch layout, from the case seed
        flax_cots = [None if c is None else jnp.asarray(to_flax_layout(c, layout_of(layouts, i)))
                     for i, c in enumerate(cots)]
        torch_cots = [None if c is None else numpy_to_tensor(c, self.device) for c in cots]
        return flax_cots, torch_cots


def prepare(case: Case, dtype: str = "float64", *, device=None) -> Prepared:
    """Build ``case`` in ``dtype``: the torch reference from torch's seeded initialiser
    (on ``device``, default :func:`torch_device`), the Flax port with the reference's
    weights and buffers loaded, both in the case's mode, and the seeded inputs.

    float64 needs ``jax_enable_x64`` (the weight load raises a clear error otherwise).
    """
    import torch
    check_dtype(dtype)
    device = torch_device() if device is None else device
    raw = [np.asarray(a) for a in case.inputs(np.random.default_rng(case.seed))]
    tmod = build_reference(case, raw).to(device=device, dtype=getattr(torch, dtype))
    tmod.train(case.train)
    fmod = case.flax_module(nnx.Rngs(case.seed))
    load_torch_state_dict(fmod, tmod.state_dict())
    fmod.train() if case.train else fmod.eval()
    inputs = [a.astype(_np_dtype(dtype)) if is_float_dtype(a.dtype) else a for a in raw]
    return Prepared(case, dtype, device, tmod, fmod, inputs)


def build_reference(case: Case, inputs: Sequence[np.ndarray] | None = None):
    """The case's torch reference as :func:`prepare` builds it, before any dtype or device
    move: ``torch_module()`` after ``torch.manual_seed(seed)``, then, for a ``well_posed``
    case, :func:`~flax_arch.parity.kinks.clear_kinks` on the case's inputs (given, or drawn
    from its seed) in its mode."""
    import torch
    torch.manual_seed(case.seed)
    tmod = case.torch_module()
    if case.well_posed:
        if inputs is None:
            inputs = case.inputs(np.random.default_rng(case.seed))
        clear_kinks(tmod, inputs, call=case.torch_call, train=case.train)
    return tmod


@contextlib.contextmanager
def parity_config():
    """The JAX settings a parity run needs, for the duration of a ``with`` block only:
    x64 (float64 cases; int64 inputs stay int64) and full-precision matmuls (no TF32 or
    bf16 passes on GPU/TPU). Both are JAX's thread-local contexts, so the process's own
    configuration is untouched afterwards, also on error."""
    with jax.enable_x64(True), jax.default_matmul_precision("highest"):
        yield


def run_case(case: Case, dtype: str = "float64", *, locate: bool = True) -> CaseResult:
    """Run ``case`` in ``dtype`` and compare; never raises for a numerical mismatch.

    float64 and float32: Flax against torch, within :func:`tolerance`. float16 and
    bfloat16: both against torch in float64 on the same rounded weights, inputs and
    cotangents, each quantity within :func:`accuracy_bound` of torch's own error.
    """
    backend = jax.default_backend()
    tol = tolerance(dtype)  # an unknown dtype is the caller's error: a ValueError
    try:
        with parity_config():
            return _run(case, dtype, backend, tol, locate)
    except Exception as e:  # a crash is a failed case, reported with its message
        return CaseResult(case.name, dtype, backend, float("nan"), float("nan"), float("nan"),
                          tol, False, error=f"{type(e).__name__}: {e}")


def _label(what: str, err: float, got, want) -> str:
    """``what``, with where the non-finite values disagree when that is the error."""
    why = nonfinite_mismatch(got, want) if err == float("inf") else None
    return f"{what}: {why}" if why else what


def _check_outputs(case: Case, flax_out, torch_outs) -> None:
    """The Flax outputs match torch's in number, dtype and (after layout conversion) shape;
    otherwise a ValueError names the output, both shapes and both layouts. Runs at trace
    time, before any arithmetic. ``torch_outs``: ``(shape, dtype)`` per output, torch
    layout."""
    if len(flax_out) != len(torch_outs):
        raise ValueError(f"torch returned {len(torch_outs)} outputs, flax {len(flax_out)}")
    for i, (o, (shape, dtype)) in enumerate(zip(flax_out, torch_outs)):
        layout = layout_of(case.out_layouts, i)
        want = flax_layout_shape(shape, layout)
        if tuple(o.shape) != want:
            raise ValueError(
                f"output {i}: flax shape {tuple(o.shape)} (Flax layout, "
                f"{'channels-last' if layout == 'channels' else 'as torch'}) where torch's "
                f"{tuple(shape)} (torch layout{', channels-first' if layout else ''}) means "
                f"{want}")
        if is_float_dtype(dtype) and np.dtype(o.dtype) != np.dtype(dtype):
            raise ValueError(f"output {i}: flax dtype {np.dtype(o.dtype)}, torch {np.dtype(dtype)}")


@dataclasses.dataclass
class _Side:
    """One framework's numbers for a case, numpy in torch's layout: the outputs, the
    gradients of ``L`` with respect to the float inputs and to every parameter (by torch
    name), and the whole state after the call (by torch name)."""

    outputs: list
    input_grads: list
    param_grads: dict
    state: dict


def _torch_side(prep: Prepared, tmod, inputs: Sequence[np.ndarray], grad_idx, cots=None):
    """Forward and backward of ``L = Σ_i <out_i, g_i>`` in torch; ``cots`` are drawn for
    the outputs' shapes unless given. Returns ``(_Side, cots)``."""
    import torch
    t_in = [numpy_to_tensor(a, prep.device) for a in inputs]
    for i in grad_idx:
        t_in[i].requires_grad_(True)
    t_out = flatten_outputs(prep.call_torch(tmod, *t_in))
    if cots is None:
        cots = prep.cotangents([tuple(o.shape) if o.is_floating_point() else None for o in t_out])
    loss = sum((o * numpy_to_tensor(c, prep.device).to(o.dtype)).sum()
               for o, c in zip(t_out, cots) if c is not None)
    params = dict(tmod.named_parameters())
    wrt = [t_in[i] for i in grad_idx] + list(params.values())
    grads = torch.autograd.grad(loss, wrt, allow_unused=True) \
        if wrt and isinstance(loss, torch.Tensor) and loss.requires_grad else [None] * len(wrt)
    as_np = lambda g, like: np.zeros(tuple(like.shape), _np_dtype(prep.dtype)) if g is None \
        else tensor_to_numpy(g)  # noqa: E731
    side = _Side([tensor_to_numpy(o) for o in t_out],
                 [as_np(g, t_in[i]) for g, i in zip(grads[:len(grad_idx)], grad_idx)],
                 {k: as_np(g, params[k]) for k, g in zip(params, grads[len(grad_idx):])},
                 {k: tensor_to_numpy(v).copy() for k, v in tmod.state_dict().items()})
    return side, cots


def _flax_side(prep: Prepared, grad_idx, cots, torch_outs) -> _Side:
    """One jitted forward + backward of ``L`` in Flax (train-mode state updates flow back
    into the module), converted to torch's layout and names."""
    case, fmod = prep.case, prep.flax_module
    f_in = prep.flax_inputs()
    f_cots = [None if c is None else jnp.asarray(to_flax_layout(c, layout_of(case.out_layouts, i)))
              for i, c in enumerate(cots)]

    def loss_fn(model, *xs):
        args = list(f_in)
        for j, i in enumerate(grad_idx):
            args[i] = xs[j]
        out = flatten_outputs(prep.call_flax(model, *args))
        _check_outputs(case, out, torch_outs)  # at trace time, before any arithmetic
        total = sum(jnp.sum(o * c) for o, c in zip(out, f_cots) if c is not None)
        return total, out

    argnums = tuple(range(1 + len(grad_idx)))
    (_, f_out), grads = nnx.jit(nnx.value_and_grad(loss_fn, argnums=argnums, has_aux=True))(
        fmod, *[f_in[i] for i in grad_idx])
    outputs = [np.asarray(to_torch_layout(np.asarray(o), layout_of(case.out_layouts, i)))
               for i, o in enumerate(f_out)]
    in_grads = [np.asarray(to_torch_layout(np.asarray(grads[1 + j]), layout_of(case.in_layouts, i)))
                for j, i in enumerate(grad_idx)]
    return _Side(outputs, in_grads, to_torch_state_dict(grads[0], like=fmod),
                 to_torch_state_dict(fmod))


def _quantities(want: _Side, grad_idx, grad_scales: dict) -> list[tuple]:
    """Every compared quantity of a case: ``(group, label, getter, scale)`` with
    ``getter(side)`` the array and ``scale`` what its error is relative to (``None``: its
    own size); groups are "forward", "grad" and "state"."""
    q = [("forward", f"forward output {i}", lambda s, i=i: s.outputs[i], None)
         for i in range(len(want.outputs))]
    q += [("grad", f"grad input {i}", lambda s, j=j: s.input_grads[j], None)
          for j, i in enumerate(grad_idx)]
    q += [("grad", f"grad {k}", lambda s, k=k: s.param_grads[k], grad_scales[k])
          for k in want.param_grads]
    # the whole state after the step: buffers (running statistics) and parameters that the
    # forward pass itself changes (Embedding's in-place max_norm renormalisation)
    q += [("state", f"state {k}", lambda s, k=k: s.state[k], None) for k in want.state]
    return q


def _check_names(flax: _Side, torch: _Side) -> None:
    """Flax must have exactly torch's parameters and at least its state entries."""
    if set(flax.param_grads) != set(torch.param_grads):
        raise ValueError(f"parameter sets differ: only torch "
                         f"{sorted(set(torch.param_grads) - set(flax.param_grads))}, only flax "
                         f"{sorted(set(flax.param_grads) - set(torch.param_grads))}")
    for k in torch.state:
        if k not in flax.state:
            raise ValueError(f"torch state {k} has no Flax variable")


def _grad_scales(want: _Side, dtype: str, low: bool) -> dict[str, float | None]:
    """The scale each parameter gradient is measured against (``None``: its own size).

    A gradient that is zero in exact arithmetic (e.g. a convolution bias feeding a
    train-mode BatchNorm) is pure rounding noise in both frameworks; relative to itself
    that noise is O(1). In float64/float32 such a gradient (max|want| ≤ ZERO_GRAD·eps·G,
    G the largest parameter gradient) is measured against G instead. In low precision every
    gradient is measured against max(its own size, eps·G): the rounding level of the
    backward pass, the same for both frameworks.
    """
    sizes = {k: float(np.max(np.abs(g.astype(np.float64)))) if g.size else 0.0
             for k, g in want.param_grads.items()}
    gmax = max(sizes.values(), default=0.0)
    eps = float(jnp.finfo(_np_dtype(dtype)).eps)
    if low:
        return {k: max(v, eps * gmax) for k, v in sizes.items()}
    return {k: gmax if v <= ZERO_GRAD * eps * gmax else None for k, v in sizes.items()}


def _run(case, dtype, backend, tol, locate) -> CaseResult:
    prep = prepare(case, dtype)
    low = dtype in LOW_PRECISION
    float_idx = [i for i, a in enumerate(prep.inputs) if is_float_dtype(a.dtype)]
    if isinstance(case.grad_inputs, bool):
        grad_idx = float_idx if case.grad_inputs else []
    else:  # the floating inputs at these positions only (e.g. not a float mask)
        grad_idx = [i for i in float_idx if i in case.grad_inputs]
    ill_posed = None
    if low:
        # the float64 reference: the same (rounded) weights, inputs and cotangents, exactly
        # upcast, so that each side's error is its own computation's rounding only
        ref_mod = copy.deepcopy(prep.torch_module).double()
        ill_posed = _kink_reach(prep, ref_mod)
    t_side, cots = _torch_side(prep, prep.torch_module, prep.inputs, grad_idx)
    f_side = _flax_side(prep, grad_idx, cots,
                        [(o.shape, o.dtype) for o in t_side.outputs])
    _check_names(f_side, t_side)
    if low:
        up = lambda a: a.astype(np.float64) if is_float_dtype(a.dtype) else a  # noqa: E731
        want, _ = _torch_side(prep, ref_mod, [up(a) for a in prep.inputs], grad_idx,
                              [None if c is None else up(c) for c in cots])
    else:
        want = t_side

    errs = {"forward": [0.0, 0.0], "grad": [0.0, 0.0], "state": [0.0, 0.0]}
    worst, worst_ratio, passed = "", -1.0, True
    failed = []  # float32 quantities past the tolerance, re-judged below
    for group, label, get, scale in _quantities(want, grad_idx, _grad_scales(want, dtype, low)):
        w, f = get(want), get(f_side)
        err = relative_error(f, w, scale)
        if low:
            terr = relative_error(get(t_side), w, scale)
            bound = accuracy_bound(dtype, terr)
            if terr == float("inf"):  # torch overflowed: Flax must overflow the same way
                err = 0.0 if nonfinite_mismatch(f, get(t_side)) is None else float("inf")
                bound = tol
            errs[group][1] = max(errs[group][1], terr)
        else:
            bound = tol
        errs[group][0] = max(errs[group][0], err)
        if group == "grad" and ill_posed:
            continue  # measured and reported, not judged: see _kink_reach
        ratio = err / bound if bound > 0 else float("inf")
        if err > bound:
            if dtype in TOLERANCE and np.isfinite(err):
                failed.append((label, get, scale, err))
            else:
                passed = False
        if ratio > worst_ratio:
            worst, worst_ratio = _label(label, err, f, w), ratio
    ill_conditioned = None
    if failed:
        rejudge = _rejudge_float32 if dtype == "float32" else _rejudge_float64
        passed, ill_conditioned = rejudge(prep, grad_idx, cots, t_side, f_side, failed, passed)
    diverged = None
    if not passed and locate:
        from .divergence import first_divergence  # it builds on prepare(): imported late
        try:
            found = first_divergence(case, dtype)  # a Divergence: its one-line str is kept
            diverged = None if found is None else str(found)
        except Exception as e:  # the diagnosis must never hide the result it explains
            diverged = f"(diagnosis failed: {type(e).__name__}: {e})"
    nan = float("nan")
    return CaseResult(case.name, dtype, backend, errs["forward"][0], errs["grad"][0],
                      errs["state"][0], tol, passed, worst=worst, diverged_at=diverged,
                      torch_forward_err=errs["forward"][1] if low else nan,
                      torch_grad_err=errs["grad"][1] if low else nan,
                      torch_state_err=errs["state"][1] if low else nan, ill_posed=ill_posed,
                      ill_conditioned=ill_conditioned)


def _rejudge_float32(prep: Prepared, grad_idx, cots, t_side: _Side, f_side: _Side, failed,
                     passed: bool) -> tuple[bool, str | None]:
    """Judge float32 quantities that missed the fixed tolerance against the float64
    reference, as low precision is judged: returns ``(passed, note)``.

    Why: the fixed 1e-5 assumes the quantity is well-conditioned in float32, i.e. that
    torch's own float32 result is within 1e-5 of the exact one. Where it is not (a gradient
    through saturated tanh steps, a softmax gradient formed by cancellation) two correct
    float32 computations differ by more than 1e-5 for rounding order alone. Such a quantity
    passes when torch's float32 error against the float64 reference (torch in float64 on
    the same rounded weights, inputs and cotangents) exceeds the tolerance and Flax's error
    is within :func:`accuracy_bound` of it: Flax is as accurate as torch. A quantity torch
    gets to within the tolerance gets no second chance: a real defect stays a failure.
    """
    ref_mod = copy.deepcopy(prep.torch_module).double()
    up = lambda a: a.astype(np.float64) if is_float_dtype(a.dtype) else a  # noqa: E731
    ref, _ = _torch_side(prep, ref_mod, [up(a) for a in prep.inputs], grad_idx,
                         [None if c is None else up(c) for c in cots])
    notes = []
    for label, get, scale, err in failed:
        terr = relative_error(get(t_side), get(ref), scale)
        ferr = relative_error(get(f_side), get(ref), scale)
        ok = terr > tolerance("float32") and ferr <= accuracy_bound("float32", terr)
        passed = passed and ok
        notes.append(f"{label}: flax−torch {err:.1e}; against float64 torch "
                     f"{terr:.1e}, flax {ferr:.1e}{'' if ok else ' (FAIL)'}")
    return passed, "judged against the float64 reference: " + "; ".join(notes)


#: float64 re-judgement: torch is re-run this many times on inputs and weights each
#: perturbed by one rounding (relative ±2⁻⁵³, random signs)
PERTURBATIONS = 3


def _rejudge_float64(prep: Prepared, grad_idx, cots, t_side: _Side, f_side: _Side, failed,
                     passed: bool) -> tuple[bool, str | None]:
    """Judge float64 quantities that missed 1e-12 by torch's own sensitivity to one
    rounding of its inputs: returns ``(passed, note)``.

    There is no wider float than float64 for a reference, so conditioning is measured the
    way backward-error analysis defines it: a backward-stable computation returns the exact
    result for inputs off by about one rounding, so two correct implementations can differ
    by as much as the result moves when the inputs move by one rounding. torch is re-run
    :data:`PERTURBATIONS` times on inputs, weights and buffers each multiplied by
    ``1 ± 2⁻⁵³`` (random signs); a quantity passes when that movement exceeds the tolerance
    (it is ill-conditioned in float64: e.g. a softmax gradient formed by cancellation in
    saturated attention) and Flax is within :func:`accuracy_bound` of it. A quantity that
    torch reproduces to 1e-12 under the perturbation gets no second chance.
    """
    import torch
    rng = np.random.default_rng(prep.case.seed + 2)
    eps = float(np.finfo(np.float64).eps) / 2

    def nudge(a):
        return a * (1 + eps * rng.choice([-1.0, 1.0], size=a.shape)) \
            if is_float_dtype(a.dtype) else a
    moved = [0.0] * len(failed)
    for _ in range(PERTURBATIONS):
        mod = copy.deepcopy(prep.torch_module)
        with torch.no_grad():
            for t in [*mod.parameters(), *mod.buffers()]:
                if t.is_floating_point():
                    t.copy_(numpy_to_tensor(nudge(tensor_to_numpy(t)), t.device))
        side, _ = _torch_side(prep, mod, [nudge(a) for a in prep.inputs], grad_idx, cots)
        for i, (label, get, scale, err) in enumerate(failed):
            moved[i] = max(moved[i], relative_error(get(side), get(t_side), scale))
    notes = []
    for (label, get, scale, err), terr in zip(failed, moved):
        ok = terr > tolerance("float64") and err <= accuracy_bound("float64", terr)
        passed = passed and ok
        notes.append(f"{label}: flax−torch {err:.1e}; torch moves {terr:.1e} under one "
                     f"rounding of its inputs{'' if ok else ' (FAIL)'}")
    return passed, "judged by torch's sensitivity to one rounding: " + "; ".join(notes)


def _kink_reach(prep: Prepared, ref_mod) -> str | None:
    """Why a low-precision gradient comparison is ill-posed, or ``None``.

    A unit whose float64 pre-activation lies within the dtype's rounding of a kink (or a
    max-pool window whose two largest entries do) takes either branch in half precision,
    depending on the summation order; the gradient through it then takes either slope. In
    float32 the registry moves such units out of reach (:mod:`~flax_arch.parity.kinks`);
    in float16/bfloat16 rounding is 2⁸–2¹⁶ times coarser and a bias shift cannot clear a
    channel. Each framework then flips its own random few of those units, its gradient error
    is dominated by them, and one such error is no measure of the other's accuracy
    (measured: AE, AlexNet, DCGAN, U-Net gradients off by 10–60 % in either framework, the
    winner varying by case). Such gradients are still computed and reported, but only the
    forward outputs and the state are judged."""
    from .kinks import well_posedness
    xs = [a.astype(np.float64) if is_float_dtype(a.dtype) else a for a in prep.inputs]
    report = well_posedness(ref_mod, xs, call=prep.case.torch_call, train=prep.case.train,
                            dtype=prep.dtype)
    return None if report else f"gradients not judged in {prep.dtype}: {report}"


def select(cases: Sequence[Case], only: Sequence[str] | None = None) -> list[Case]:
    """Cases whose name matches any of the ``only`` regular expressions (all if none)."""
    if not only:
        return list(cases)
    pats = [re.compile(p) for p in only]
    return [c for c in cases if any(p.search(c.name) for p in pats)]
