"""The translated graph: a torch-free, hashable program and the NNX module that runs it.

:func:`flax_arch.from_torch` (``trace.py``) turns torch.fx's graph into a tuple of
:class:`Op` s. An :class:`Op`'s arguments are Python values with every graph value
replaced by a :class:`Ref` (and slices, lists and dicts by hashable stand-ins), so the
program is a static attribute of the module: ``nnx.split`` puts it in the GraphDef, and
``jax.jit`` caches on it. Running it needs no torch.

:class:`TranslatedModule` holds the torch module's structure under torch's attribute
names: a twin for every module translated as a whole, a :class:`TorchScope` for every
module traced through, holding that module's own parameters and buffers. So every
variable's path *is* its torch key, and :func:`flax_arch.to_torch_state_dict` gives back
the torch module's ``state_dict``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import nnx

from ..interop.state_dict import _entries
from .errors import TranslationError, UnsupportedError
from .twins import call_twin

__all__ = ["Ref", "SliceOf", "ListOf", "DictOf", "Op", "Constant", "TorchScope",
           "TranslatedModule", "resolve"]


# ------------------------------------------------------------------ program values

@dataclasses.dataclass(frozen=True)
class Ref:
    """The value of the op named ``name``."""
    name: str


@dataclasses.dataclass(frozen=True)
class SliceOf:
    """A ``slice`` (unhashable before Python 3.12) whose bounds may be :class:`Ref` s."""
    start: Any
    stop: Any
    step: Any


@dataclasses.dataclass(frozen=True)
class ListOf:
    """A list argument (``torch.cat([a, b])``), kept a list when resolved."""
    items: tuple


@dataclasses.dataclass(frozen=True)
class DictOf:
    items: tuple  # ((key, value), ...)


@dataclasses.dataclass(frozen=True)
class Op:
    """One node of the program.

    ``kind``: ``"input"`` (``target`` = the forward argument's name, ``args`` = its default
    when it has one), ``"attr"`` (a parameter, buffer or constant at torch path
    ``target``), ``"module"`` (the twin at path ``target``, of torch class ``twin``),
    ``"function"`` (table key ``target``), ``"skip"`` (an fx check that holds by
    construction) or ``"output"``. ``inplace``: the op overwrites its first argument
    (``add_``, ``inplace=True``), which later ops then see. ``where``: the source line.
    """
    name: str
    kind: str
    target: str
    args: tuple = ()
    kwargs: tuple = ()  # ((name, value), ...)
    twin: str | None = None
    inplace: bool = False
    has_default: bool = False
    where: str | None = None


def resolve(v, env: dict) -> Any:
    """A program value with every :class:`Ref` replaced by its value in ``env``."""
    if isinstance(v, Ref):
        return env[v.name]
    if isinstance(v, tuple):
        return tuple(resolve(x, env) for x in v)
    if isinstance(v, ListOf):
        return [resolve(x, env) for x in v.items]
    if isinstance(v, DictOf):
        return {k: resolve(x, env) for k, x in v.items}
    if isinstance(v, SliceOf):
        return slice(resolve(v.start, env), resolve(v.stop, env), resolve(v.step, env))
    return v


# ------------------------------------------------------------------ the module

class Constant(nnx.Variable):
    """A tensor the graph reads that is not in the torch ``state_dict`` (a
    non-persistent buffer, a tensor created while tracing). Optimizers leave it alone and
    the converter skips it."""


class TorchScope(nnx.Module):
    """A torch module that was traced through: its own parameters (``nnx.Param``), buffers
    (:class:`~flax_arch.nn._utils.Buffer`, ``Constant`` when not persistent) and child
    modules, under torch's attribute names."""


def _lookup(root, path: str):
    node = root
    for part in path.split("."):
        node = getattr(node, part)
    return node


def _functions() -> dict[str, Callable]:
    from .functional import FUNCTIONAL
    from .functions import FUNCTIONS
    return {**FUNCTIONS, **FUNCTIONAL}


class TranslatedModule(TorchScope):
    """A torch module translated by :func:`flax_arch.from_torch`.

    ``__call__`` takes and returns what the torch module's ``forward`` does, in torch's
    layouts (channels-first where torch is): the same positional and keyword arguments,
    the same output structure. It is a plain NNX module: ``nnx.jit``, ``nnx.grad``,
    ``nnx.Optimizer`` and ``nnx.split`` work on it, ``train()`` / ``eval()`` switch the
    BatchNorm and Dropout behaviour as torch's do, and
    :func:`flax_arch.to_torch_state_dict` gives back the torch module's keys and values.

    Where a ``forward`` reads ``self.training`` (``F.dropout(x, training=self.training)``),
    the module was traced in both modes and each mode runs its own program.
    """

    def _setup(self, programs: tuple, training: bool, rngs: nnx.Rngs, signature: tuple):
        #: (train program, eval program): tuples of :class:`Op`
        self._fa_programs = programs
        self._fa_signature = signature  # forward's argument names, in order
        self._fa_rngs = rngs
        # nnx's train()/eval() set ``deterministic`` on every module that has it
        self.deterministic = not training

    def __call__(self, *args, **kwargs):
        """Torch's ``forward``: the same arguments and outputs, in torch's layouts."""
        program = self._fa_programs[1 if self.deterministic else 0]
        if len(args) > len(self._fa_signature):
            raise TypeError(f"takes {len(self._fa_signature)} positional arguments "
                            f"({', '.join(self._fa_signature)}) but {len(args)} were given")
        unknown = set(kwargs) - set(self._fa_signature)
        if unknown:
            raise TypeError(f"unexpected keyword arguments {sorted(unknown)}; forward takes "
                            f"{list(self._fa_signature)}")
        return _Run(self, program, args, kwargs).run()


class _Run:
    """One execution of a program: the values computed so far, by op name."""

    def __init__(self, module: TranslatedModule, program, args, kwargs):
        self.module, self.program, self.args, self.kwargs = module, program, args, kwargs
        self.env: dict[str, Any] = {}
        self.table = _functions()
        # torch key → (variable, flax → torch layout), for every converted variable
        self.attrs = {e.key: (e.variable, e.to_torch) for e in _entries(module)}
        # attr op name → torch path: where an in-place op on it writes back
        self.attr_targets = {op.name: op.target for op in program if op.kind == "attr"}

    def run(self):
        for op in self.program:
            if op.kind == "output":
                return resolve(op.args[0], self.env)
            try:
                self.env[op.name] = self.step(op)
            except TranslationError:
                raise
            except UnsupportedError as e:
                raise TranslationError(str(e), node=op.name, op=_op_name(op),
                                       where=op.where) from e
            except (TypeError, ValueError, IndexError, KeyError) as e:
                raise TranslationError(f"{type(e).__name__}: {e}", node=op.name,
                                       op=_op_name(op), where=op.where) from e
        raise TranslationError("the program has no output")

    def bind(self, op: Op):
        if op.target in self.kwargs:
            return self.kwargs[op.target]
        i = self.module._fa_signature.index(op.target)
        if i < len(self.args):
            return self.args[i]
        if op.has_default:
            return op.args[0]
        raise TypeError(f"missing required argument {op.target!r}")

    def read_attr(self, path: str):
        if path in self.attrs:
            var, to_torch = self.attrs[path]
            return jnp.asarray(to_torch(var[...]))
        return _lookup(self.module, path)[...]

    def buffer(self, ref) -> nnx.Variable | None:
        """The variable an argument was read from, when it is one (else None)."""
        if isinstance(ref, Ref) and ref.name in self.attr_targets:
            target = self.attr_targets[ref.name]
            if target in self.attrs:
                return self.attrs[target][0]
            return _lookup(self.module, target)
        return None

    def step(self, op: Op):
        if op.kind == "input":
            return self.bind(op)
        if op.kind == "attr":
            return self.read_attr(op.target)
        if op.kind == "skip":
            if resolve(op.args[0], self.env) is not None:
                raise TypeError(str(op.args[1]))
            return None
        a = resolve(op.args, self.env)
        k = {key: resolve(v, self.env) for key, v in op.kwargs}
        if op.kind == "module":
            out = call_twin(_lookup(self.module, op.target), op.twin, a, k)
        elif op.target in _STATEFUL:
            out = _STATEFUL[op.target](self, op, a, k)
        else:
            fn = self.table.get(op.target)
            if fn is None:
                raise UnsupportedError(f"no translation for {op.target}")
            out = fn(*a, **k)
        if op.inplace and op.args and isinstance(op.args[0], Ref):
            # later readers of the first argument see the new value, as in torch; a buffer
            # read through an ``attr`` op is updated (``num_batches_tracked.add_(1)``)
            self.env[op.args[0].name] = out
            var = self.buffer(op.args[0])
            if var is not None:
                var[...] = jnp.asarray(out).astype(var[...].dtype)
        return out


def _op_name(op: Op) -> str:
    return op.twin if op.kind == "module" else op.target


# ------------------------------------------------------------------ ops with state

def _dropout_mask(module, shape, p):
    key = module._fa_rngs.dropout()
    return jax.random.bernoulli(key, 1.0 - p, shape)


def _dropout(feature_dims: int | None):
    """``F.dropout`` (``feature_dims=None``) or ``F.dropout{1,2,3}d``: one mask entry per
    element, or per (sample, channel) of a torch-layout (N, C, *s) input. JAX's PRNG draws
    the mask, so train-mode samples differ from torch's; eval mode is the identity."""
    def run(ctx, op, a, k):
        names = ("input", "p", "training", "inplace")
        bound = dict(zip(names, a))
        bound.update(k)
        x, p = bound["input"], float(bound.get("p", 0.5))
        training = bound.get("training", True)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, got p={p}")
        if not training or p == 0.0:
            return x
        if p == 1.0:
            return jnp.zeros_like(x)
        shape = x.shape
        if feature_dims is not None:
            batched = x.ndim == feature_dims + 2
            keep = 2 if batched else 1  # (N, C) or (C,) keep their own entries
            shape = x.shape[:keep] + (1,) * (x.ndim - keep)
        mask = _dropout_mask(ctx.module, shape, p)
        return jnp.where(mask, x / (1.0 - p), jnp.zeros((), x.dtype)).astype(x.dtype)
    return run


def _batch_norm(ctx, op, a, k):
    """``F.batch_norm`` on torch's (N, C, *) layout. In training mode it normalises with
    the batch statistics and, like torch, updates the running buffers it was given in
    place: ``(1 − momentum)·running + momentum·batch``, the variance unbiased."""
    names = ("input", "running_mean", "running_var", "weight", "bias", "training",
             "momentum", "eps")
    bound = dict(zip(names, a))
    bound.update(k)
    x = bound["input"]
    rm, rv = bound.get("running_mean"), bound.get("running_var")
    w, b = bound.get("weight"), bound.get("bias")
    training = bound.get("training", False)
    momentum, eps = bound.get("momentum", 0.1), bound.get("eps", 1e-5)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)  # broadcast (C,) over (N, C, *)
    if training:
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - mean.reshape(shape)), axis=axes)
        n = x.size // x.shape[1]
        if rm is not None and momentum is not None:
            for arg, new in ((1, mean), (2, var * n / max(n - 1, 1))):
                ref = op.args[arg] if len(op.args) > arg else dict(op.kwargs).get(names[arg])
                var_ = ctx.buffer(ref)
                if var_ is None:
                    raise UnsupportedError(f"{names[arg]} must be a buffer of the module to "
                                           f"be updated in training mode")
                old = var_[...]
                var_[...] = ((1 - momentum) * old + momentum * new).astype(old.dtype)
    else:
        if rm is None or rv is None:
            raise UnsupportedError("running_mean and running_var are required when "
                                   "training=False")
        mean, var = rm, rv
    # as the BatchNorm twin (and torch's CPU kernel): 1/sqrt, not rsqrt
    y = (x - mean.reshape(shape)) * (1.0 / jnp.sqrt(var.reshape(shape) + eps))
    if w is not None:
        y = y * w.reshape(shape)
    if b is not None:
        y = y + b.reshape(shape)
    return y.astype(x.dtype)


_F = "torch.nn.functional."
#: table keys whose translation needs the module (its RNG, its buffers)
_STATEFUL: dict[str, Callable] = {
    _F + "dropout": _dropout(None),
    "torch.dropout": _dropout(None),
    _F + "dropout1d": _dropout(1),
    _F + "dropout2d": _dropout(2),
    _F + "dropout3d": _dropout(3),
    _F + "batch_norm": _batch_norm,
}
