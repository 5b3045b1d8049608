"""PyTorch's own module tests, run against the ``flax_arch.nn`` twins.

``torch.testing._internal.common_modules.module_db`` is the suite PyTorch checks its
``torch.nn`` classes with: for each class a function that returns ``ModuleInput`` s
(constructor arguments, forward arguments, train/eval). Nobody here wrote those inputs,
which is the point: for every class that has a twin in :mod:`flax_arch.nn` (same name),
each input becomes a :class:`flax_arch.parity.Case`:

* torch side: ``cls(*constructor args)``, called with the forward arguments;
* Flax side: the twin built from the same arguments (tensors become arrays, a torch
  module argument becomes its twin, torch activation functions their names), torch's
  weights and buffers loaded by the generic converter;
* layouts: where torch has a channel axis the twin is channels-last, so the channel axis
  of each such input (axis 1, or 0 for an unbatched input, see :data:`LAYOUT`) is moved
  last on the way in and back on the way out, inside the Flax call: the harness compares
  every output and every gradient in torch's layout;
* the harness (:func:`flax_arch.parity.run_case`) compares forward outputs, gradients
  with respect to the inputs module_db marks ``requires_grad`` and to every parameter, and
  the buffers after the call: float64 within 1e-12, float32 within 1e-5, in train and in
  eval mode where module_db says they differ.

Other float tensors and bool tensors (masks, targets not requiring grad) are constants of
the call, cast to the run's dtype.

Run it: ``python -m parity_tests.module_db [Class ...] [--dtype float64 float32]
[--table docs/module_db.md]``. ``parity_tests/test_module_db.py`` runs every covered class
in CI.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib
import inspect
import sys
import time
import warnings
import zlib
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from flax_arch.parity.harness import Case, run_case

#: the flax_arch.nn family files a twin is looked up in, by torch's class name
FAMILY_FILES = ("activation", "attention", "containers", "conv", "ctc", "embedding", "linear",
                "loss", "norm", "padding", "pooling", "recurrent", "transformer")

#: module_db classes without a twin on purpose, and why
EXCLUDED = {
    **{f"Lazy{n}": "lazy modules infer in_channels at the first call; a Flax module's "
                   "parameters exist at construction, so the eager twin is the port"
       for n in ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
                 "ConvTranspose3d")},
    "FractionalMaxPool2d": "random pooling regions drawn from torch's generator: no "
                           "sample-exact twin is possible from JAX's PRNG",
    "FractionalMaxPool3d": "random pooling regions drawn from torch's generator: no "
                           "sample-exact twin is possible from JAX's PRNG",
}


# ---------------------------------------------------------------- layouts
# A rule maps (array in torch's layout, all positional args) to the axis that holds
# torch's channels (moved last for the twin), or None when the layouts agree.

def spatial(n: int) -> Callable:
    """Channels right before ``n`` spatial axes: (N, C, *s) or unbatched (C, *s)."""
    return lambda a, args: a.ndim - 1 - n if a.ndim > n else None


def axis1(a, args):
    """Channels in axis 1 of an input of rank ≥ 2 (BatchNorm, GroupNorm, PReLU, LRN)."""
    return 1 if a.ndim >= 2 else None


def class_target(a, args):
    """A loss target: channels-last only when it holds class probabilities (floating and
    shaped like the input); class indices have no class axis."""
    x = args[0]
    if jnp.issubdtype(a.dtype, jnp.floating) and tuple(a.shape) == tuple(x.shape):
        return axis1(a, args)
    return None


def none(a, args):
    return None


@dataclasses.dataclass(frozen=True)
class Layout:
    """Per positional argument rules (the last repeats) and one rule for every output."""
    inputs: tuple = (none,)
    outputs: Callable = none


def _same(rule):
    return Layout((rule,), rule)


LAYOUT: dict[str, Layout] = {}
for _n in (1, 2, 3):
    for _name in ("Conv{}d", "ConvTranspose{}d", "AvgPool{}d", "MaxPool{}d", "LPPool{}d",
                  "AdaptiveAvgPool{}d", "AdaptiveMaxPool{}d", "MaxUnpool{}d",
                  "InstanceNorm{}d", "ConstantPad{}d", "ZeroPad{}d", "ReflectionPad{}d",
                  "ReplicationPad{}d", "CircularPad{}d", "BatchNorm{}d"):
        LAYOUT[_name.format(_n)] = _same(axis1 if _name.startswith("BatchNorm")
                                         else spatial(_n))
LAYOUT["Softmax2d"] = _same(spatial(2))
for _name in ("GroupNorm", "LocalResponseNorm", "PReLU"):
    LAYOUT[_name] = _same(axis1)
for _name in ("CrossEntropyLoss", "NLLLoss"):
    LAYOUT[_name] = Layout((axis1, class_target), none)


# ---------------------------------------------------------------- arguments

def twin_class(name: str):
    """The ``flax_arch.nn`` class named ``name``, or ``None``."""
    for family in FAMILY_FILES:
        modname = f"flax_arch.nn.{family}"
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name == modname:
                continue
            raise
        cls = getattr(mod, name, None)
        if isinstance(cls, type):
            return cls
    return None


def _activation(fn):
    """A torch activation (function or module) as the twin's argument: a name the
    transformer layers take, or the twin of the module."""
    import torch
    names = {torch.nn.functional.relu: "relu", torch.nn.functional.gelu: "gelu"}
    if fn in names:
        return names[fn]
    if isinstance(fn, torch.nn.Module):
        return _module_twin(fn)
    raise TypeError(f"no twin for the activation {fn!r}")


def _module_twin(mod):
    """The twin of a torch module passed as a constructor argument, built from its
    configuration (its weights come with the outer module's state_dict)."""
    import torch
    from flax import nnx
    name = type(mod).__name__
    cls = twin_class(name)
    if cls is None:
        raise TypeError(f"no twin for the constructor argument {name}")
    if name in ("TransformerEncoderLayer", "TransformerDecoderLayer"):
        kw = dict(d_model=mod.self_attn.embed_dim, nhead=mod.self_attn.num_heads,
                  dim_feedforward=mod.linear1.out_features, dropout=mod.dropout.p,
                  activation=_activation(mod.activation), layer_norm_eps=mod.norm1.eps,
                  batch_first=mod.self_attn.batch_first, norm_first=mod.norm_first,
                  bias=mod.linear1.bias is not None)
        return cls(**kw, rngs=nnx.Rngs(0))
    if isinstance(mod, torch.nn.LayerNorm):
        return cls(mod.normalized_shape, mod.eps, mod.elementwise_affine,
                   bias=mod.bias is not None, rngs=nnx.Rngs(0))
    if isinstance(mod, (torch.nn.ReLU, torch.nn.Tanh, torch.nn.Sigmoid, torch.nn.SiLU)):
        return cls()
    if isinstance(mod, torch.nn.GELU):
        return cls(mod.approximate)
    raise TypeError(f"no rule to build the twin of a {name} argument")


def _flax_value(v):
    """A constructor argument for the twin."""
    import torch
    if isinstance(v, torch.Tensor):
        return jnp.asarray(v.detach().cpu().numpy())
    if isinstance(v, torch.nn.Module):
        return _module_twin(v)
    if callable(v) and not isinstance(v, type):
        return _activation(v)
    if isinstance(v, (tuple, list)):
        return type(v)(_flax_value(x) for x in v)
    if isinstance(v, dict):
        return {k: _flax_value(x) for k, x in v.items()}
    return v


@dataclasses.dataclass(frozen=True)
class _Slot:
    """Where a tensor of the forward arguments goes: a harness input (``"in"``: floats
    module_db differentiates, and integer tensors) or a constant of the call."""
    kind: str
    index: int


def _split(obj, inputs: list, consts: list):
    import torch
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu()
        floating = t.is_floating_point()
        if (floating and obj.requires_grad) or not (floating or t.dtype == torch.bool):
            inputs.append(t.numpy())
            return _Slot("in", len(inputs) - 1)
        consts.append(t.numpy())
        return _Slot("const", len(consts) - 1)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_split(o, inputs, consts) for o in obj)
    if isinstance(obj, dict):
        return {k: _split(o, inputs, consts) for k, o in obj.items()}
    return obj


def _fill(obj, fn):
    if isinstance(obj, _Slot):
        return fn(obj)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_fill(o, fn) for o in obj)
    if isinstance(obj, dict):
        return {k: _fill(o, fn) for k, o in obj.items()}
    return obj


def _flat(out) -> tuple:
    """A module's outputs, nested tuples flattened, ``None`` (an output not asked for,
    e.g. attention weights with need_weights=False) left out."""
    if out is None:
        return ()
    if isinstance(out, (tuple, list)):
        return tuple(y for o in out for y in _flat(o))
    return (out,)


def _float_dtype(xs, default):
    """The dtype of the first floating input (the run's dtype), else ``default``."""
    for x in xs:
        if getattr(x, "is_floating_point", None) is not None:  # a torch tensor
            if x.is_floating_point():
                return x.dtype
        elif jnp.issubdtype(x.dtype, jnp.floating):
            return x.dtype
    return default


def _takes_rngs(cls) -> bool:
    """Whether a twin's constructor takes ``rngs`` (parameter-free layers need none)."""
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False
    return "rngs" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _map_layout(args, rules, to_flax: bool):
    """Apply per-position layout rules to the positional arguments (nested tuples too)."""
    def move(a, rule):
        if not hasattr(a, "ndim"):
            return a
        axis = rule(a, args)
        if axis is None:
            return a
        return jnp.moveaxis(a, axis, -1) if to_flax else jnp.moveaxis(a, -1, axis)

    out = []
    for i, a in enumerate(args):
        rule = rules[min(i, len(rules) - 1)]
        out.append(jax.tree.map(lambda x, r=rule: move(x, r), a))
    return out


def _positional(cls, args, kwargs):
    """Torch's forward arguments with every keyword that names one of its leading
    positional parameters (``input=...``) moved into its position: the twin's
    ``__call__`` takes torch's order but may name them differently (``x``)."""
    try:
        params = list(inspect.signature(cls.forward).parameters.values())[1:]  # no self
        bound = inspect.signature(cls.forward).bind_partial(None, *args, **kwargs).arguments
    except (TypeError, ValueError):
        return tuple(args), dict(kwargs)
    pos = []
    for p in params:
        if p.kind is not p.POSITIONAL_OR_KEYWORD or p.name not in bound:
            break
        pos.append(bound.pop(p.name))
    bound.pop(next(iter(inspect.signature(cls.forward).parameters)), None)  # self
    rest = {}
    for k, v in bound.items():
        kind = inspect.signature(cls.forward).parameters[k].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            pos.extend(v)
        elif kind is inspect.Parameter.VAR_KEYWORD:
            rest.update(v)
        else:
            rest[k] = v
    return tuple(pos), rest


def cases(info, training: bool) -> list[Case]:
    """One harness :class:`Case` per module_db input of ``info`` in the given mode."""
    import torch
    name = info.module_cls.__name__
    twin = twin_class(name)
    layout = LAYOUT.get(name, Layout())
    # module_db draws its tensors from torch's global generator: seed it per class and
    # mode, so an input does not depend on which classes ran before it
    torch.manual_seed(zlib.crc32(f"{name}/{training}".encode()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        minputs = info.module_inputs_func(info, device="cpu", dtype=torch.float64,
                                          requires_grad=True, training=training)
    out = []
    for i, mi in enumerate(minputs):
        c, f = mi.constructor_input, mi.forward_input
        inputs, consts = [], []
        template = _split(_positional(info.module_cls, f.args, f.kwargs), inputs, consts)
        c_args, c_kwargs = c.args, c.kwargs

        def torch_module(cls=info.module_cls, a=c_args, k=c_kwargs):
            return cls(*copy.deepcopy(a), **copy.deepcopy(k))

        def flax_module(rngs, a=c_args, k=c_kwargs):
            extra = {"rngs": rngs} if _takes_rngs(twin) else {}
            return twin(*_flax_value(a), **_flax_value(k), **extra)

        def torch_call(module, *xs, template=template, consts=consts):
            dtype = _float_dtype(xs, torch.float64)
            args, kwargs = _fill(template, lambda s: xs[s.index] if s.kind == "in" else (
                torch.as_tensor(consts[s.index]).to(
                    dtype if consts[s.index].dtype.kind == "f" else None)))
            return _flat(module(*args, **kwargs))

        def flax_call(module, *xs, template=template, consts=consts, layout=layout):
            dtype = _float_dtype(xs, jnp.float64)
            args, kwargs = _fill(template, lambda s: xs[s.index] if s.kind == "in" else (
                jnp.asarray(consts[s.index]).astype(dtype)
                if consts[s.index].dtype.kind == "f" else jnp.asarray(consts[s.index])))
            args = _map_layout(list(args), layout.inputs, to_flax=True)
            outs = _flat(module(*args, **kwargs))
            return tuple(_map_layout(list(outs), (layout.outputs,), to_flax=False))

        mode = "train" if training else "eval"
        out.append(Case(f"{name}[{i}] {mode}: {mi.desc or ''}".rstrip(": "),
                        torch_module, flax_module,
                        lambda rng, inputs=inputs: [a.copy() for a in inputs],
                        train=training, torch_call=torch_call, flax_call=flax_call))
    return out


def module_infos() -> dict[str, Any]:
    """module_db's ModuleInfo by class name."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.testing._internal.common_modules import module_db
    return {m.module_cls.__name__: m for m in module_db}


def covered(infos: dict[str, Any]) -> list[str]:
    """The module_db classes that have a twin (and are not excluded), in module_db order."""
    return [n for n in infos if n not in EXCLUDED and twin_class(n) is not None]


def modes(info) -> tuple[bool, ...]:
    """Train mode always; eval mode too where module_db says they differ."""
    return (True, False) if info.train_and_eval_differ else (True,)


@dataclasses.dataclass
class ClassResult:
    name: str
    dtype: str
    inputs: int = 0
    passed: int = 0
    forward_err: float = 0.0
    grad_err: float = 0.0
    state_err: float = 0.0
    failures: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.inputs > 0 and self.passed == self.inputs


def run_class(info, dtype: str = "float64", *, verbose: bool = False) -> ClassResult:
    """Every module_db input of one class (in each of its modes), in ``dtype``."""
    t0 = time.perf_counter()
    res = ClassResult(info.module_cls.__name__, dtype)
    for training in modes(info):
        for case in cases(info, training):
            # warnings both sides give by design (KLDivLoss 'mean', torch's LSTM with
            # projections off oneDNN, ...) are not what is compared here: the family tests
            # check the twins' warnings; pytest's "warnings are errors" would turn them
            # into failed cases
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = run_case(case, dtype, locate=False)
            res.inputs += 1
            for attr in ("forward_err", "grad_err", "state_err"):
                v = getattr(r, attr)
                if np.isfinite(v) or r.error is None:
                    setattr(res, attr, max(getattr(res, attr), v))
            if r.error is None and r.passed:
                res.passed += 1
            else:
                res.failures.append(f"{case.name} [{dtype}]: " + (
                    r.error if r.error else f"forward {r.forward_err:.2e}, grad "
                    f"{r.grad_err:.2e}, state {r.state_err:.2e} > {r.tol:.0e} ({r.worst})"))
            if verbose:
                status = "ok  " if r.error is None and r.passed else "FAIL"
                print(f"  {status} {case.name} [{dtype}] fwd {r.forward_err:.1e} grad "
                      f"{r.grad_err:.1e} state {r.state_err:.1e}"
                      + (f"  {r.error}" if r.error else ""), flush=True)
    res.seconds = time.perf_counter() - t0
    return res


def table(results: dict[str, dict[str, ClassResult]], infos: dict[str, Any]) -> str:
    """The coverage table (markdown): every module_db class, its inputs and worst errors."""
    dtypes = sorted({d for r in results.values() for d in r}, reverse=True)
    ok = [n for n, r in results.items() if all(x.ok for x in r.values())]
    lines = [f"module_db classes: {len(infos)}; with a twin, every input passing: "
             f"**{len(ok)}**", "",
             "| class | inputs | " + " | ".join(
                 f"{d} forward | {d} grad | {d} state" for d in dtypes) + " | status |",
             "|---|---|" + "---|---|---|" * len(dtypes) + "---|"]
    for name in infos:
        if name in results:
            rs = results[name]
            n = next(iter(rs.values())).inputs
            errs = " | ".join(f"{rs[d].forward_err:.1e} | {rs[d].grad_err:.1e} | "
                              f"{rs[d].state_err:.1e}" for d in dtypes)
            status = "pass" if all(r.ok for r in rs.values()) else \
                f"FAIL ({sum(len(r.failures) for r in rs.values())})"
            lines.append(f"| {name} | {n} | {errs} | {status} |")
        else:
            why = EXCLUDED.get(name, "no twin yet")
            lines.append(f"| {name} | – | " + " | ".join(["–"] * 3 * len(dtypes))
                         + f" | left out: {why} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("classes", nargs="*", help="torch.nn class names (default: all covered)")
    p.add_argument("--dtype", nargs="+", default=["float64", "float32"])
    p.add_argument("--table", metavar="PATH", help="write the markdown coverage table")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-input lines")
    args = p.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    infos = module_infos()
    names = args.classes or covered(infos)
    unknown = [n for n in names if n not in infos]
    if unknown:
        p.error(f"not in module_db: {unknown}")
    results: dict[str, dict[str, ClassResult]] = {}
    bad = 0
    for name in names:
        if twin_class(name) is None:
            print(f"{name}: no twin in flax_arch.nn")
            bad += 1
            continue
        for dtype in args.dtype:
            r = run_class(infos[name], dtype, verbose=not args.quiet)
            results.setdefault(name, {})[dtype] = r
            print(f"{name} [{dtype}]: {r.passed}/{r.inputs} pass, forward {r.forward_err:.1e}, "
                  f"grad {r.grad_err:.1e}, state {r.state_err:.1e} ({r.seconds:.1f} s)",
                  flush=True)
            for f in r.failures[:5 if args.quiet else 0]:
                print(f"    {f}")
            bad += not r.ok
    if args.table:
        with open(args.table, "w") as fh:
            fh.write(table(results, infos))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
