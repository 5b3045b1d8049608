"""The torch side of :func:`flax_arch.from_torch`: trace, rebuild the structure, convert.

Why torch.fx and not torch.export: fx's symbolic trace keeps the module calls
(``call_module`` nodes, named by their attribute path), so a layer with a twin becomes that
twin and its weights keep their torch names; ``torch.nn.functional`` calls and tensor
methods stay the ops the user wrote, at the level where torch's semantics are documented.
torch.export lowers everything to ATen's core IR (``aten.convolution``,
``aten._native_batch_norm_legit_functional`` with its buffers turned into outputs, SymInt
shape arithmetic): the module boundaries survive only as metadata, every op would need its
ATen decomposition reproduced, and it needs real example values run through the model.
fx needs neither; it refuses what it cannot follow (Python control flow on a traced value)
with an error at the line that did it, which is the error this translator wants to give.
"""

from __future__ import annotations

import builtins
import copy
import inspect
import operator
import os
import re
import traceback

import jax
import jax.numpy as jnp
from flax import nnx

from ..interop import load_torch_state_dict, torch_keys
from ..interop.tensors import tensor_to_numpy
from ..nn._utils import Buffer
from .errors import TranslationError
from .program import (Constant, DictOf, ListOf, Op, Ref, SliceOf, TorchScope,
                      TranslatedModule, _STATEFUL, _functions)
from .twins import build_twin, positional, twin_name

__all__ = ["from_torch"]

# torch is imported by the first from_torch call, not with this module (every flax_arch
# module imports without torch)
torch = fx = None
_TORCH_DIR = None
_HERE = os.path.dirname(os.path.dirname(__file__))  # flax_arch/


def _import_torch() -> None:
    global torch, fx, _TORCH_DIR
    if torch is None:
        import torch as torch_
        import torch.fx as fx_
        torch, fx = torch_, fx_
        _TORCH_DIR = os.path.dirname(torch.__file__)


# ------------------------------------------------------------------ source lines

_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<fn>[^\n]+)\n'
                    r'(?P<code>[^\n]*)')


def _outside(path: str) -> bool:
    return not (path.startswith(_TORCH_DIR) or path.startswith(_HERE))


def _user_line(stack_trace: str | None) -> str | None:
    """The innermost frame of fx's recorded stack that is the user's code."""
    if not stack_trace:
        return None
    frames = [m for m in _FRAME.finditer(stack_trace) if _outside(m["file"])]
    if not frames:
        return None
    m = frames[-1]
    return f'{m["file"]}:{m["line"]} in {m["fn"].strip()}: {m["code"].strip()}'


def _error_line(exc: BaseException) -> str | None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _outside(f.filename)]
    if not frames:
        return None
    f = frames[-1]
    return f"{f.filename}:{f.lineno} in {f.name}: {(f.line or '').strip()}"


# ------------------------------------------------------------------ tracing

def _tracer():
    """An fx tracer that stops at the modules that have a twin and traces through
    everything else, recording each node's stack."""
    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return twin_name(m) is not None

    tracer = Tracer()
    tracer.record_stack_traces = True
    return tracer


def _trace(model, concrete: dict) -> fx.GraphModule:
    tracer = _tracer()
    try:
        graph = tracer.trace(model, concrete_args=concrete or None)
    except Exception as e:  # noqa: BLE001 - every tracing failure is reported the same way
        where = _error_line(e)
        raise TranslationError(
            f"torch.fx cannot trace {type(model).__name__}.forward: {type(e).__name__}: {e}. "
            "Python control flow that depends on a traced value (an `if` on a tensor, a "
            "loop over range(x.size(1)), len() of a tensor, .item()) cannot be translated "
            "into one static graph; write it with tensor ops, or translate the parts "
            "around it", op="torch.fx.Tracer.trace", where=where) from e
    return fx.GraphModule(tracer.root, graph)


# ------------------------------------------------------------------ function keys

def _resolve_key(key: str):
    mod, _, name = key.rpartition(".")
    roots = {"torch": torch, "torch.nn.functional": torch.nn.functional,
             "torch._C._nn": torch._C._nn, "operator": operator, "builtins": builtins}
    return getattr(roots[mod], name, None) if mod in roots else None


_REVERSE: dict[int, str] | None = None


def _reverse() -> dict[int, str]:
    """id(torch callable) → its table key."""
    global _REVERSE
    if _REVERSE is None:
        rev = {}
        for key in [*_functions(), *_STATEFUL]:
            obj = _resolve_key(key)
            if obj is not None:
                rev.setdefault(id(obj), key)
        _REVERSE = rev
    return _REVERSE


_INPLACE_OPERATORS = {"iadd": "add", "isub": "sub", "imul": "mul", "itruediv": "truediv",
                      "ifloordiv": "floordiv", "imod": "mod", "ipow": "pow",
                      "imatmul": "matmul", "iand": "and_", "ior": "or_", "ixor": "xor"}


def _callable_name(target) -> str:
    mod = getattr(target, "__module__", None) or ""
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", repr(target))
    if mod.startswith("torch._C._nn"):
        mod = "torch.nn.functional"
    return f"{mod}.{name}" if mod else name


def _function_key(target) -> tuple[str | None, bool]:
    """(table key, in place?) of a call_function target."""
    if target in (operator.setitem, operator.delitem):
        return None, False
    if getattr(target, "__module__", None) in ("_operator", "operator") and \
            target.__name__ in _INPLACE_OPERATORS:
        return f"operator.{_INPLACE_OPERATORS[target.__name__]}", True
    key = _reverse().get(id(target))
    if key is not None:  # F.relu_, torch.relu_ ... are in the tables as in-place keys
        name = key.rpartition(".")[2]
        return key, name.endswith("_") and not name.endswith("__")
    name = getattr(target, "__name__", "")
    if name.endswith("_") and not name.endswith("__"):  # torch.relu_
        base = _resolve_key(f"torch.{name[:-1]}")
        if base is not None and id(base) in _reverse():
            return _reverse()[id(base)], True
    qual = getattr(target, "__qualname__", "")
    if qual.startswith(("Tensor.", "TensorBase.")):  # torch.Tensor.add(x, y)
        return _method_key(target.__name__)
    return None, False


def _method_key(name: str) -> tuple[str, bool]:
    if name.endswith("_") and not name.endswith("__"):
        return f"Tensor.{name[:-1]}", True
    return f"Tensor.{name}", False


# ------------------------------------------------------------------ program values



def _np_dtype(d: torch.dtype):
    return jnp.dtype(str(d).removeprefix("torch."))


class _Converter:
    """fx node arguments → program values (see :mod:`flax_arch.translate.program`)."""

    def __init__(self, where: str | None, node: str):
        self.where, self.node = where, node

    def __call__(self, v):
        if isinstance(v, fx.Node):
            return Ref(v.name)
        if isinstance(v, torch.Size):
            return tuple(int(s) for s in v)
        if isinstance(v, tuple):
            return tuple(self(x) for x in v)
        if isinstance(v, list):
            return ListOf(tuple(self(x) for x in v))
        if isinstance(v, dict):
            return DictOf(tuple((k, self(x)) for k, x in v.items()))
        if isinstance(v, slice):
            return SliceOf(self(v.start), self(v.stop), self(v.step))
        if isinstance(v, torch.dtype):
            return _np_dtype(v)
        if isinstance(v, (torch.device, torch.layout, torch.memory_format)):
            return None
        if v is None or v is Ellipsis or isinstance(v, (bool, int, float, complex, str)):
            return v
        raise TranslationError(f"an argument of type {type(v).__name__} ({v!r}) has no "
                               f"translation", node=self.node, where=self.where)


# ------------------------------------------------------------------ structure

_RESERVED = set(dir(TranslatedModule)) | {"deterministic"}


def _check_name(name: str, path: str):
    if name in _RESERVED or name.startswith("_fa_"):
        raise TranslationError(f"the torch attribute {path!r} has a name the translated "
                               f"module uses itself ({name!r}); rename it to translate")


def _array(t: torch.Tensor):
    return jnp.asarray(tensor_to_numpy(t.detach()))


def _build(module, path: str, rngs, memo: dict, root=None):
    """The NNX counterpart of ``module``: its twin, or a scope holding its own variables
    and the counterparts of its children. A module reached twice is built once."""
    if id(module) in memo:
        return memo[id(module)]
    if root is None and twin_name(module) is not None:
        out = build_twin(module, rngs)
        memo[id(module)] = out
        return out
    scope = root if root is not None else TorchScope()
    memo[id(module)] = scope
    for name, child in module.named_children():
        _check_name(name, f"{path}{name}")
        setattr(scope, name, _build(child, f"{path}{name}.", rngs, memo))
    for name, p in module.named_parameters(recurse=False):
        _check_name(name, f"{path}{name}")
        setattr(scope, name, nnx.Param(_array(p)))
    non_persistent = getattr(module, "_non_persistent_buffers_set", set())
    for name, b in module.named_buffers(recurse=False):
        _check_name(name, f"{path}{name}")
        kind = Constant if name in non_persistent else Buffer
        setattr(scope, name, kind(_array(b)))
    return scope


# ------------------------------------------------------------------ the program

def _program(gm: fx.GraphModule, model, mode: str, signature: tuple, concrete: dict,
             root: TranslatedModule, state_keys: set) -> tuple[Op, ...]:
    table = {**_functions(), **_STATEFUL}
    ops, unsupported = [], []
    placeholders = 0
    for node in gm.graph.nodes:
        where = _user_line(node.stack_trace)
        conv = _Converter(where, node.name)
        if node.op == "placeholder":
            name = signature[placeholders]
            placeholders += 1
            has_default = bool(node.args) or name in concrete
            default = concrete.get(name, node.args[0] if node.args else None)
            ops.append(Op(node.name, "input", name, args=(conv(default),),
                          has_default=has_default))
        elif node.op == "get_attr":
            ops.append(Op(node.name, "attr", _attr_target(gm, node, mode, root, state_keys),
                          where=where))
        elif node.op == "call_module":
            sub = gm.get_submodule(node.target)
            name = twin_name(sub)
            args, kwargs = positional(getattr(torch.nn, name).forward, node.args, node.kwargs)
            ops.append(Op(node.name, "module", node.target, args=conv(tuple(args)),
                          kwargs=tuple((k, conv(v)) for k, v in kwargs.items()), twin=name,
                          inplace=bool(getattr(sub, "inplace", False)), where=where))
        elif node.op in ("call_function", "call_method"):
            if node.op == "call_function" and \
                    getattr(node.target, "__name__", "") == "_assert_is_none":
                ops.append(Op(node.name, "skip", "_assert_is_none", args=conv(node.args)))
                continue
            if node.op == "call_function":
                key, inplace = _function_key(node.target)
                shown = _callable_name(node.target)
            else:
                key, inplace = _method_key(node.target)
                shown = f"Tensor.{node.target}"
            if key is None or key not in table:
                unsupported.append((node.name, shown, where))
                continue
            inplace = inplace or node.kwargs.get("inplace") is True
            ops.append(Op(node.name, "function", key, args=conv(tuple(node.args)),
                          kwargs=tuple((k, conv(v)) for k, v in node.kwargs.items()),
                          inplace=inplace, where=where))
        elif node.op == "output":
            ops.append(Op(node.name, "output", "output", args=(conv(node.args[0]),)))
    if unsupported:
        name, shown, where = unsupported[0]
        more = ""
        if len(unsupported) > 1:
            rest = sorted({s for _, s, _ in unsupported[1:]} - {shown})
            more = f" (and {len(unsupported) - 1} more nodes" + \
                (f", also: {', '.join(rest)}" if rest else "") + ")"
        raise TranslationError(f"no translation for {shown}{more}; see docs/translate.md "
                               f"for what is supported", node=name, op=shown, where=where)
    ops = tuple(ops)
    _check_aliasing(ops)
    return ops


#: ops whose result may share memory with their first argument (torch views)
_VIEWS = {f"Tensor.{n}" for n in ("view", "view_as", "reshape", "reshape_as", "permute",
                                  "transpose", "t", "squeeze", "unsqueeze", "expand",
                                  "expand_as", "narrow", "select", "flatten", "unflatten",
                                  "chunk", "split", "unbind", "detach", "contiguous",
                                  "diagonal", "swapaxes", "movedim")} | \
    {f"torch.{n}" for n in ("reshape", "permute", "transpose", "squeeze", "unsqueeze",
                            "narrow", "select", "flatten", "chunk", "split", "unbind",
                            "movedim", "swapaxes", "detach")} | \
    {"operator.getitem", "builtins.getattr"}


def _check_aliasing(ops: tuple[Op, ...]) -> None:
    """An in-place op is translated as "compute, then later readers of its first argument
    see the result". That is torch's semantics unless the argument shares memory with
    another value read later (a view of it, or what it is a view of): refuse those."""
    position = {op.name: i for i, op in enumerate(ops)}
    base_of, views_of = {}, {}
    for op in ops:
        if op.kind == "function" and op.target in _VIEWS and op.args and \
                isinstance(op.args[0], Ref):
            base_of[op.name] = op.args[0].name
            views_of.setdefault(op.args[0].name, []).append(op.name)

    refs = [_refs(o) for o in ops]

    def read_after(name: str, i: int) -> bool:
        return any(Ref(name) in r for r in refs[i + 1:])

    for i, op in enumerate(ops):
        if not (op.inplace and op.args and isinstance(op.args[0], Ref)):
            continue
        target = op.args[0].name
        shared = [v for v in views_of.get(target, []) if position[v] < i]
        if target in base_of:
            shared.append(base_of[target])
        for other in shared:
            if read_after(other, i):
                raise TranslationError(
                    f"an in-place op changes {target!r}, which shares memory with "
                    f"{other!r} (a view) read later; torch would see the change there too. "
                    f"Write it out of place", node=op.name, op=op.target, where=op.where)


def _refs(op: Op) -> set:
    out: set = set()

    def walk(v):
        if isinstance(v, Ref):
            out.add(v)
        elif isinstance(v, tuple):
            for x in v:
                walk(x)
        elif isinstance(v, (ListOf, DictOf)):
            walk(v.items)
        elif isinstance(v, SliceOf):
            walk((v.start, v.stop, v.step))
    walk(op.args)
    walk(tuple(v for _, v in op.kwargs))
    return out


def _attr_target(gm, node, mode: str, root: TranslatedModule, state_keys: set) -> str:
    """The path a get_attr node reads: a state_dict entry, a non-persistent buffer of a
    scope, or a tensor fx created while tracing (stored on the root as a Constant)."""
    target = node.target
    if target in state_keys:
        return target
    owner, _, name = target.rpartition(".")
    try:
        holder = root
        for part in filter(None, owner.split(".")):
            holder = getattr(holder, part)
        if isinstance(getattr(holder, name, None), Constant):
            return target
    except AttributeError:
        pass
    value = operator.attrgetter(target)(gm)
    if not isinstance(value, torch.Tensor):
        raise TranslationError(f"reads the attribute {target!r}, a {type(value).__name__}; "
                               f"only tensors can be read", node=node.name,
                               where=_user_line(node.stack_trace))
    stored = f"_fa_const_{mode}_{target.replace('.', '_')}"
    setattr(root, stored, Constant(_array(value)))
    return stored


def _signature(model) -> tuple[str, ...]:
    params = list(inspect.signature(model.forward).parameters.values())
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TranslationError(f"{type(model).__name__}.forward takes *{p.name}: torch.fx "
                                   f"traces fixed arguments only")
    return tuple(p.name for p in params)


# ------------------------------------------------------------------ loading

def _load(root, model):
    """The torch weights into the translated module, through the converter. Tied
    parameters (one tensor at two keys) are one variable: the duplicate keys are dropped
    after checking that they alias a loaded key."""
    sd = model.state_dict()
    keys = torch_keys(root)
    extra = [k for k in sd if k not in set(keys)]
    loaded_ptrs = {(sd[k].data_ptr(), tuple(sd[k].shape)) for k in keys if k in sd}
    for k in extra:
        if (sd[k].data_ptr(), tuple(sd[k].shape)) not in loaded_ptrs:
            raise TranslationError(f"the state_dict entry {k!r} has no variable in the "
                                   f"translation")
    load_torch_state_dict(root, {k: sd[k] for k in keys if k in sd})


# ------------------------------------------------------------------ checking

def _shapes(tree):
    return jax.tree.map(lambda a: (tuple(a.shape), str(a.dtype)), tree)


def _check(fm: TranslatedModule, model, args, kwargs):
    """Run the translation abstractly on the example inputs; its output structure, shapes
    and dtypes must be torch's."""
    ref = copy.deepcopy(model)
    with torch.no_grad():
        want = ref(*args, **kwargs)
    want = jax.tree.map(lambda t: jax.ShapeDtypeStruct(tuple(t.shape), _np_dtype(t.dtype))
                        if isinstance(t, torch.Tensor) else t, want,
                        is_leaf=lambda t: isinstance(t, torch.Tensor))
    jargs = jax.tree.map(_jnp_input, args, is_leaf=lambda t: isinstance(t, torch.Tensor))
    jkwargs = jax.tree.map(_jnp_input, kwargs, is_leaf=lambda t: isinstance(t, torch.Tensor))
    graphdef, state = nnx.split(fm)

    def run(state, a, k):
        return nnx.merge(graphdef, state)(*a, **k)

    got = jax.eval_shape(run, state, jargs, jkwargs)
    w, g = _shapes(want), _shapes(got)
    if jax.tree.structure(want) != jax.tree.structure(got) or w != g:
        raise TranslationError(f"the translation's outputs {g} differ from torch's {w} on the "
                               f"example inputs")


def _jnp_input(t):
    if not isinstance(t, torch.Tensor):
        return t
    if t.dtype == torch.float64 and not jax.config.jax_enable_x64:
        raise ValueError("a float64 example input needs JAX's x64 mode: "
                         "jax.config.update('jax_enable_x64', True)")
    return jnp.asarray(tensor_to_numpy(t.detach()))


# ------------------------------------------------------------------ entry point

def from_torch(model, example_inputs=(), example_kwargs=None, *,
               rngs: nnx.Rngs | None = None, check: bool = True) -> TranslatedModule:
    _import_torch()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"from_torch: model must be a torch.nn.Module, got "
                        f"{type(model).__name__}")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if not isinstance(example_inputs, (tuple, list)):
        raise TypeError(f"from_torch: example_inputs must be a tuple of forward's arguments "
                        f"(torch tensors), got {type(example_inputs).__name__}")
    example_kwargs = dict(example_kwargs or {})
    signature = _signature(model)
    if len(example_inputs) > len(signature):
        raise TypeError(f"from_torch: {len(example_inputs)} example inputs for forward"
                        f"({', '.join(signature)})")
    params = inspect.signature(model.forward).parameters
    given = set(signature[:len(example_inputs)]) | set(example_kwargs)
    concrete = {}
    for name in signature:
        if name in given:
            if name in example_kwargs and example_kwargs[name] is None:
                concrete[name] = None
            elif name in signature[:len(example_inputs)] and \
                    example_inputs[signature.index(name)] is None:
                concrete[name] = None
            continue
        if params[name].default is inspect.Parameter.empty:
            raise TypeError(f"from_torch: forward's argument {name!r} has no default; give it "
                            f"in example_inputs")
        concrete[name] = params[name].default
    rngs = rngs if rngs is not None else nnx.Rngs(0)

    # trace in both modes: a forward that reads self.training gets one program per mode
    modes = {m: m.training for m in model.modules()}
    try:
        model.train()
        gm_train = _trace(model, concrete)
        model.eval()
        gm_eval = _trace(model, concrete)
    finally:
        for m, t in modes.items():
            m.training = t
    same = gm_train.code == gm_eval.code

    root = TranslatedModule()
    _build(model, "", rngs, {}, root=root)
    state_keys = set(model.state_dict())
    train = _program(gm_train, model, "train", signature, concrete, root, state_keys)
    evalp = train if same else _program(gm_eval, model, "eval", signature, concrete, root,
                                        state_keys)
    _load(root, model)
    root._setup((train, evalp), model.training, rngs, signature)
    if not model.training:
        root.eval()
    else:
        root.train()
    if check:
        _check(root, model, tuple(example_inputs), example_kwargs)
    return root
