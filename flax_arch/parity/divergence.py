"""Where a failing case first goes wrong, and why: :func:`first_divergence`.

Three runs on the case's inputs record every submodule call, its inputs and its output:
torch in the working dtype (forward pre-hooks with kwargs, forward hooks), the same torch
weights cast to float64 on the same rounded inputs (the reference that says what rounding
is), and the Flax port end to end (each submodule's class swapped for a recording subclass
for the duration). Each torch call with a Flax module at the same path is then compared,
in torch's completion order (children before parents, the root last, then the case call's
own glue), in one of two modes:

* ``"accumulated"``: the Flax submodule's output in its own end-to-end run. A faulty
  layer's consumers differ too; the first in order is named.
* ``"isolated"`` (the default): the Flax submodule is called again with torch's *exact*
  inputs to it, converted to Flax's layout. Each layer is charged only with the error it
  makes itself: a faulty layer's consumers are clean, so the other divergent modules listed
  are independent faults, and in float32 or below a layer is not blamed for drift it was
  handed. Where no layer diverges in isolation, the accumulated comparison is reported
  (its ``mode`` says so): drift that no single layer makes.

Layouts are decided per submodule from shapes (a recurrent layer inside a convolutional
model keeps torch's layout): a torch input is moved channels-last where that is the only
way to match the shape of the Flax submodule's own input in the end-to-end run, and a Flax
output is moved back where only that matches torch's. A call whose inputs or outputs cannot
be paired (a PackedSequence against padded arrays), that the port makes with a flag of its
own (QRNN's ``conv(x, add_bias=False)``), or that raises in isolation is listed as not
checked, with why; its parent is still compared. The diagnosis itself never raises.

Causes: ``"semantic"`` (the Flax layer computes something else: its error against the
float64 reference exceeds ``accuracy_bound(dtype, torch's)``; every float64 divergence),
``"precision"`` (within it: both sides are rounding, about equally far from float64),
``"kink flip"`` (no forward output diverges, but units whose float64 pre-activation lies
within rounding of a ReLU-family kink, or max-pool windows with a near tie, take different
branches in torch and in Flax: ReLU is continuous, so only gradients see it; found in the
end-to-end runs, whose gradients the harness compares, so its ``mode`` is accumulated).
A bug only in a backward pass (a wrong custom VJP) is not located: forward outputs agree.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ..interop import channels_first_to_last, channels_last_to_first, tensor_to_numpy
from .harness import (LOW_PRECISION, Case, accuracy_bound, parity_config, prepare,
                      relative_error, tolerance)
from .kinks import CLEAR_MARGIN, _is_pool, _kinks, kink_flips

__all__ = ["first_divergence", "Divergence", "MODES", "CAUSES"]

MODES = ("isolated", "accumulated")
CAUSES = ("semantic", "precision", "kink flip", "not located", "diagnosis failed")
#: a flipped unit within NEAR·δ of its kink (δ: the working dtype's rounding of that input)
#: is a rounding flip; the units clear_kinks would have moved
NEAR = CLEAR_MARGIN
CASE_CALL = "(case call)"  # the case's torch_call/flax_call glue around the root


@dataclasses.dataclass(frozen=True)
class Divergence:
    """What :func:`first_divergence` found; ``str()`` is a one-line description.

    ``path`` is the torch module path (``""`` the root, ``None`` when nothing was located
    or the diagnosis failed) and ``call`` which call of it (a shared pool is called more
    than once). ``error`` is Flax against torch at that call (for a kink flip: at the kink
    module's input). A kink flip has ``units`` flipped units (or pool windows) and
    ``margin``, the smallest float64 distance to the kink among them, in units of δ.
    ``others`` are further divergent modules (not those containing an earlier one);
    ``unchecked`` the calls that could not be compared, with why.
    """

    path: str | None
    type: str
    error: float
    mode: str
    cause: str
    dtype: str = ""
    call: int = 0
    detail: str = ""
    units: int = 0
    margin: float = math.nan
    others: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.path is None:
            s = f"{self.cause}: {self.detail} [{self.mode} {self.dtype}]"
        else:
            what = (f"kink flip, {self.units} unit(s), smallest margin {self.margin:.2g}·δ"
                    if self.cause == "kink flip" else f"{self.cause}, rel err {self.error:.2e}")
            s = f"{_label(self.path, self.call)} ({self.type}: {what}) [{self.mode} " \
                f"{self.dtype}{'; ' + self.detail if self.detail else ''}]"
        for name, items in (("also", self.others), ("not checked", self.unchecked)):
            if items:
                more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
                s += f"; {name}: {', '.join(items[:3])}{more}"
        return s


def first_divergence(case: Case, dtype: str = "float64", *,
                     mode: str = "isolated") -> Divergence | None:
    """The first submodule call (torch's completion order) whose Flax output differs from
    torch's beyond the case's criterion in ``dtype``, with its cause; else the first kink
    flip; ``None`` if every call agrees, was checked, and no unit flipped. Never raises: an
    error inside the diagnosis is returned as cause ``"diagnosis failed"``."""
    try:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        with parity_config():
            return _diagnose(case, dtype, mode)
    except Exception as e:
        return Divergence(None, "", math.nan, mode, "diagnosis failed", dtype,
                          detail=f"{type(e).__name__}: {e}")


class _Unchecked(Exception):
    """A call that cannot be compared; its message says why."""


@dataclasses.dataclass
class _Trace:
    """One run's calls, keyed (module path, call index)."""
    ins: dict = dataclasses.field(default_factory=dict)    # key → (args, kwargs)
    outs: dict = dataclasses.field(default_factory=dict)   # key → output
    order: list = dataclasses.field(default_factory=list)  # keys, completion order
    src: dict = dataclasses.field(default_factory=dict)    # kink call → producer of its input
    skipped: dict = dataclasses.field(default_factory=dict)  # path → why not recorded
    result: Any = None                                     # what the case call returned


@dataclasses.dataclass
class _Check:
    key: tuple[str, int]
    type: str
    error: float = math.nan
    cause: str | None = None  # None: agrees
    detail: str = ""
    reason: str = ""          # set: not checked


def _diagnose(case: Case, dtype: str, mode: str) -> Divergence | None:
    """The three recorded runs, then: the first divergent call in ``mode`` (isolated falls
    back to accumulated when no single call diverges), else the first kink flip, else
    "not located" when something could not be checked, else None."""
    import torch
    prep = prepare(case, dtype)
    t64mod = copy.deepcopy(prep.torch_module).double()  # before a train-mode run moves stats
    rng = torch.random.get_rng_state()  # both torch runs draw the same (dropout) numbers
    try:
        t = _run_torch(prep, prep.torch_module, prep.torch_inputs(), rng)
        t64 = _run_torch(prep, t64mod, [_up(x) for x in prep.torch_inputs()], rng)
    finally:
        torch.random.set_rng_state(rng)
    f, fmods = _run_flax(prep)
    ctx = dict(prep=prep, t=t, t64=t64, t64mod=t64mod, f=f, fmods=fmods, dtype=dtype,
               channels="channels" in tuple(case.out_layouts) + tuple(case.in_layouts))
    checks = _checks(mode, **ctx)
    flips, kink_unchecked = _kink_scan(**ctx)
    unchecked = tuple(f"{_label(*c.key)} ({c.reason})" for c in checks if c.reason)
    bad = [c for c in checks if c.cause]
    if not bad and not flips and mode == "isolated":  # no single layer: accumulated drift?
        acc = [c for c in _checks("accumulated", **ctx) if c.cause]
        if acc:
            bad, mode = acc, "accumulated"
    if bad:
        first, seen, others = bad[0], [bad[0].key[0]], []
        for c in bad[1:]:  # a container of an earlier one is explained by it: left out
            if not any(_contains(c.key[0], p) for p in seen):
                others.append(f"{_label(*c.key)} ({c.cause})")
            seen.append(c.key[0])
        # flips after the divergent call are its consequences: only earlier ones are noted
        end = t.order.index(first.key) if first.key in t.order else len(t.order)
        early = [_label(*k) for k, *_ in flips if t.order.index(k) < end]
        detail = "; ".join(filter(None, [first.detail, early and "kink flips at " +
                                         ", ".join(early)]))
        return Divergence(first.key[0], first.type, first.error, mode, first.cause, dtype,
                          first.key[1], detail, others=tuple(others), unchecked=unchecked)
    if flips:
        (path, i), tname, n, margin, err, via = flips[0]
        # found in the end-to-end runs (the ones whose gradients the harness compares)
        return Divergence(path, tname, err, "accumulated", "kink flip", dtype, i, via, units=n,
                          margin=margin, unchecked=unchecked + kink_unchecked,
                          others=tuple(f"{_label(*k)} ({n2})" for k, _, n2, *_ in flips[1:]))
    if unchecked or kink_unchecked:
        return Divergence(None, "", math.nan, mode, "not located", dtype,
                          detail="no checked submodule differs",
                          unchecked=unchecked + kink_unchecked)
    return None


def _checks(mode: str, *, prep, t, t64, t64mod, f, fmods, dtype, channels) -> list[_Check]:
    """One :class:`_Check` per torch call that has a Flax module at its path, in torch's
    completion order, then the case call itself (the glue of torch_call/flax_call)."""
    import torch
    out = []
    for key in t.order + [(CASE_CALL, 0)]:
        path, i = key
        if path != CASE_CALL and path not in fmods:
            continue  # a torch module the port writes as a plain function (jax.nn.relu)
        c = _Check(key, "case call" if path == CASE_CALL
                   else type(prep.torch_module.get_submodule(path)).__name__)
        out.append(c)
        try:
            if path == CASE_CALL:
                want, got, ref = t.result, f.result, (lambda: t64.result)
            else:
                if key not in f.outs:
                    raise _Unchecked(f.skipped.get(path, "the port does not make this call"))
                flags = _own_flags(fmods[path], f.ins[key][1], t.ins[key][1])
                if flags:  # e.g. QRNN's conv(x, add_bias=False): the bias comes later
                    raise _Unchecked(f"the port passes {', '.join(flags)}; torch does not")
                want = t.outs[key]
                got = _isolated(fmods[path], t.ins[key], f.ins[key], channels) \
                    if mode == "isolated" else f.outs[key]

                def ref(path=path, key=key):  # float64 on the inputs both sides got
                    if mode == "accumulated":
                        return t64.outs[key]
                    args, kwargs = _tree_map(_up, t.ins[key])
                    with torch.no_grad():
                        return t64mod.get_submodule(path)(*args, **kwargs)
            c.error = _error(got, want, channels)
            if dtype not in LOW_PRECISION and c.error <= tolerance(dtype):
                continue  # the harness's fixed tolerance: agrees
            if dtype == "float64":  # torch is the float64 reference
                f64, t64e = c.error, 0.0
            else:
                r = ref()
                f64, t64e = _error(got, r, channels), _error(want, r, False)
            within = f64 <= accuracy_bound(dtype, t64e)  # as close to float64 as torch
            if dtype in LOW_PRECISION and within:
                continue  # the low-precision criterion: agrees
            c.cause = "precision" if within else "semantic"
            c.detail = ("shapes or non-finite values differ" if c.error == math.inf else
                        "" if dtype == "float64" else
                        f"vs float64: flax {f64:.1e}, torch {t64e:.1e}")
        except _Unchecked as e:
            c.reason = str(e)
        except Exception as e:  # a call that cannot be compared never ends the diagnosis
            c.reason = f"{type(e).__name__}: {e}"
    return out


def _kink_scan(*, prep, t, t64, t64mod, f, fmods, dtype, channels):
    """Kink and max-pool calls whose input, in the two end-to-end runs, has units within
    NEAR·δ of the kink in float64 on opposite sides (pools: a different largest entry).
    End to end, because that is the run whose gradients the harness compares. The Flax
    input is the Flax module's own where the port has one, else the Flax output of the
    torch module that produced it (a port writes ReLU as ``jax.nn.relu``).
    Returns ([(key, type, units, smallest margin, input error, note)], unchecked)."""
    import torch
    eps = float(jnp.finfo(jnp.dtype(dtype)).eps)
    found, unchecked = [], []
    for key in t.order:
        mod = prep.torch_module.get_submodule(key[0])
        if _kinks(mod) is None and not _is_pool(mod):
            continue
        try:
            x_t, x64 = (_leaves(r.ins[key], torch.is_tensor)[0] for r in (t, t64))
            if key in f.ins:  # the port's own kink module (LeakyReLU, MaxPool2d)
                x_f, via = _leaves(f.ins[key], _is_array)[:1], ""
            else:  # a plain function in the port: the Flax output of the producer
                src = t.src.get(key)
                x_f = _leaves(f.outs.get(src, ()), _is_array)[:1]
                via = f"input from {_label(*src)}" if src else ""
            if not x_f:
                raise _Unchecked("no Flax value for its input")
            x_f = np.array(_torch_layout(x_f[0], tuple(x_t.shape), channels), np.float64)
            if x_f.shape != tuple(x_t.shape):
                raise _Unchecked(f"Flax input shape {x_f.shape}")
            delta = max(float((x64 - x_t.double()).abs().max()),
                        eps * float(x64.abs().max()))
            m = kink_flips(mod, x64, x_t, torch.from_numpy(x_f), delta)
            near = m[m <= NEAR]
            if near.numel():
                found.append((key, type(mod).__name__, int(near.numel()), float(near.min()),
                              relative_error(x_f, tensor_to_numpy(x_t)), via))
        except Exception as e:
            why = e if isinstance(e, _Unchecked) else f"{type(e).__name__}: {e}"
            unchecked.append(f"kinks of {_label(*key)} ({why})")
    return found, tuple(unchecked)


def _run_torch(prep, module, inputs, rng) -> _Trace:
    """The case call on ``module`` (no grad), recording every module call (the root's too).
    Inputs and outputs are copied: a later in-place op (ReLU(inplace=True)) must not change
    them."""
    import torch
    tr, counts, stack, made = _Trace(), {}, {}, []

    def pre(name):
        def hook(mod, args, kwargs):
            i = counts.get(name, 0)
            counts[name], tr.ins[(name, i)] = i + 1, _snapshot((args, kwargs))
            stack.setdefault(name, []).append(i)
            x = args[0] if args else None
            if torch.is_tensor(x) and (_kinks(mod) is not None or _is_pool(mod)):
                tr.src[(name, i)] = next((k for o, k in reversed(made) if o is x), None)
            return None  # a pre-hook that returns a value replaces the inputs
        return hook

    def post(name):
        def hook(mod, args, out):
            key = (name, stack[name].pop())
            tr.outs[key] = _snapshot(out)
            tr.order.append(key)
            if torch.is_tensor(out):
                made.append((out, key))  # a live reference: its id cannot be reused
            return None  # a returned value would replace a shared module's later outputs
        return hook

    hooks = [h for name, m in module.named_modules() for h in (
        m.register_forward_pre_hook(pre(name), with_kwargs=True),
        m.register_forward_hook(post(name)))]
    torch.random.set_rng_state(rng)
    try:
        with torch.no_grad():
            tr.result = _snapshot(prep.call_torch(module, *inputs))
    finally:
        for h in hooks:
            h.remove()
    return tr


def _run_flax(prep) -> tuple[_Trace, dict]:
    """The case call on the Flax port (eager), recording every module call; and the
    modules by path. A call made inside a JAX transformation (its values are tracers) is
    not recorded."""
    tr, counts, swapped, fmods = _Trace(), {}, [], {}
    for path, node in nnx.iter_graph(prep.flax_module):
        if not isinstance(node, nnx.Module):
            continue
        key, cls = ".".join(str(p) for p in path), type(node)
        fmods[key] = node

        def call(self, *a, _cls=cls, _key=key, **k):
            out = _cls.__call__(self, *a, **k)
            if _leaves((a, k, out), lambda v: isinstance(v, jax.core.Tracer)):
                tr.skipped[_key] = "called inside a JAX transformation"
            else:
                i = counts.get(_key, 0)
                counts[_key], tr.ins[(_key, i)], tr.outs[(_key, i)] = i + 1, (a, k), out
            return out

        object.__setattr__(node, "__class__", type(cls.__name__, (cls,), {"__call__": call}))
        swapped.append((node, cls))
    try:
        tr.result = prep.call_flax(prep.flax_module, *prep.flax_inputs())
    finally:
        for node, cls in swapped:
            object.__setattr__(node, "__class__", cls)
    return tr, fmods


def _isolated(fsub, t_in, f_in, channels: bool):
    """``fsub`` called on torch's recorded inputs ``t_in``, mapped onto the structure of
    its own recorded call ``f_in``: the i-th torch tensor replaces the i-th Flax array, in
    Flax's layout and dtype; non-array arguments (flags) are Flax's own."""
    import torch
    t_leaves, f_leaves = _leaves(t_in, torch.is_tensor), _leaves(f_in, _is_array)
    if len(t_leaves) != len(f_leaves):
        raise _Unchecked(f"inputs not mapped: torch passes {len(t_leaves)} tensor(s), "
                         f"Flax {len(f_leaves)} array(s)")
    new = []
    for tx, fx in zip(t_leaves, f_leaves):
        a, shape = tensor_to_numpy(tx), tuple(fx.shape)
        moved = channels_first_to_last(a) if a.ndim >= 3 else a
        if moved.shape == shape and (a.shape != shape or channels):
            a = moved
        elif a.shape != shape:
            raise _Unchecked(f"no layout maps torch input {a.shape} to Flax's {shape}")
        new.append(jnp.asarray(a, dtype=fx.dtype))
    it = iter(new)
    args, kwargs = _tree_map(lambda v: next(it) if _is_array(v) else v, f_in)
    try:
        return fsub(*args, **kwargs)
    except Exception as e:
        raise _Unchecked(f"isolated call failed: {type(e).__name__}: {e}") from e


def _own_flags(fsub, f_kwargs: dict, t_kwargs: dict) -> list[str]:
    """Keyword flags (not arrays, not None) of a Flax call that torch's call lacks and that
    differ from their default: the port asks its submodule for something else on purpose,
    so the two outputs are not comparable (the parent still is)."""
    try:
        params = inspect.signature(type(fsub).__call__).parameters
    except (TypeError, ValueError):
        params = {}
    return [f"{k}={v!r}" for k, v in f_kwargs.items()
            if k not in t_kwargs and v is not None and not _is_array(v)
            and (k not in params or params[k].default is inspect.Parameter.empty
                 or params[k].default != v)]


def _error(got, want, channels: bool) -> float:
    """The largest relative error over the arrays of an output (nested tuples walked),
    ``got`` in torch's layout decided per array from the shapes (``channels``: the hint
    for ambiguous shapes; ``False`` when both sides are torch's)."""
    import torch
    ws, gs = _leaves(want, torch.is_tensor), _leaves(got, lambda v: _is_array(v) or
                                                     torch.is_tensor(v))
    if len(ws) != len(gs):  # e.g. torch's PackedSequence against padded arrays
        raise _Unchecked(f"outputs not mapped: torch returns {len(ws)} tensor(s), the "
                         f"other side {len(gs)}")
    return max((relative_error(_torch_layout(g, tuple(w.shape), channels), tensor_to_numpy(w))
                for g, w in zip(gs, ws)), default=0.0)


def _torch_layout(x, torch_shape: tuple, channels: bool):
    """``x`` (a Flax array or a torch tensor) as numpy in torch's layout: as it is when
    only that matches ``torch_shape``, channels-last → first when only that does, and the
    case's hint (``channels``) when both do (C equal to the last spatial size)."""
    x = tensor_to_numpy(x) if hasattr(x, "detach") else np.asarray(x)
    moved = x.ndim >= 3 and channels_last_to_first(x).shape == torch_shape
    if moved and (x.shape != torch_shape or channels):
        return channels_last_to_first(x)
    return x


def _contains(outer: str, inner: str) -> bool:
    """Module path ``outer`` is ``inner`` or holds it (the root and the case call hold all)."""
    return outer in ("", CASE_CALL) or inner == outer or inner.startswith(outer + ".")


def _label(path: str, call: int) -> str:
    return (path or "(root)") + (f"#{call}" if call else "")


def _is_array(v) -> bool:
    return isinstance(v, (jax.Array, np.ndarray))


def _up(x):
    """A floating torch tensor in float64; anything else as it is."""
    return x.double() if hasattr(x, "is_floating_point") and x.is_floating_point() else x


def _snapshot(x):
    return _tree_map(lambda v: v.detach().clone() if hasattr(v, "detach") else v, x)


def _tree_map(fn, x):
    """``fn`` on every leaf of nested tuples (named ones too), lists and dicts."""
    if isinstance(x, dict):
        return {k: _tree_map(fn, v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        items = [_tree_map(fn, v) for v in x]
        # a named tuple (PackedSequence) rebuilt without its constructor's checks
        return x._make(items) if hasattr(x, "_make") else type(x)(items)
    return fn(x)


def _leaves(x, keep) -> list:
    """The leaves of ``x`` for which ``keep`` holds, in :func:`_tree_map`'s order."""
    if isinstance(x, dict):
        x = list(x.values())
    if isinstance(x, (tuple, list)):
        return [leaf for v in x for leaf in _leaves(v, keep)]
    return [x] if keep(x) else []
