"""Torch's tensor operations as JAX functions: the table :func:`flax_arch.from_torch` uses to
execute a traced graph's ``call_function`` / ``call_method`` nodes that are not
``torch.nn.functional`` (that table is :mod:`flax_arch.translate.functional`).

``FUNCTIONS`` maps a key to a callable:

* ``"torch.<name>"``: the function ``torch.<name>`` (``torch.cat``, ``torch.sum``);
* ``"Tensor.<name>"``: the tensor method (fx ``call_method``: ``x.view(2, -1)``);
* ``"operator.<name>"``: Python's operators, as fx records them (``x + y`` is
  ``operator.add(x, y)``, ``2 - x`` is ``operator.sub(2, x)``, ``x[i]`` is
  ``operator.getitem``). With no array among the arguments the Python operator itself runs
  (``x.size(0) + 1`` stays a Python int, so shapes stay static);
* ``"builtins.getattr"``: an attribute of a tensor (``x.shape``, ``x.dtype``, ``x.T``);
  of anything else (a ``(values, indices)`` result), Python's ``getattr``.

Each callable takes torch's arguments (positional and keyword, torch's names and
defaults) and returns what torch returns. Tensors arrive as ``jax.Array`` in torch's
layout; torch dtypes as numpy dtypes; devices as ``None``. ``device``, ``layout``,
``pin_memory``, ``memory_format``, ``non_blocking``, ``requires_grad`` and ``copy`` are
accepted where torch accepts them and have no effect; ``out=`` is refused (JAX arrays are
immutable). In-place variants (``add_``) are not here: the interpreter maps them to these.

Values *and* reverse-mode gradients are torch's (``parity_tests/test_translate_functions.py``
compares both against torch: float64 to 1e-12, float32 to 1e-5). Where JAX and torch
differ, the difference is handled where it arises, with a short comment; in summary:

* **Type promotion** is torch's (:func:`_result_type`): a 0-d tensor or a Python scalar
  never raises a dimensioned tensor's dtype within its category (``float32 + float64 0-d``
  is float32), a Python float is torch's default dtype float32 (``int + 1.5`` is float32,
  JAX under x64 says float64), ``int / int`` and the float functions of an int tensor
  (``exp``, ``sqrt``, ``mean``…) are float32; integer sums and products are int64.
  Factories default to float32, ``arange`` of ints and ``full`` of an int to int64.
  int64/float64 become int32/float32 when JAX's x64 mode is off, silently.
* **Half precision** (float16, bfloat16): arithmetic, math functions, reductions and matrix
  products compute in float32 and round once, as torch's kernels do (their "opmath" type);
  where torch does otherwise, so does the table: ``add``/``sub`` round a Python scalar to
  the half type first, ``scalar / x`` is ``reciprocal(x) * scalar`` (torch's
  ``__rtruediv__``), ``logsumexp`` rounds each of its tensor ops, and a float64 tensor is
  converted to half through float32 (torch rounds twice, XLA once).
* **Derivative conventions**: ``abs``' slope is ``sign(x)`` (0 at 0, JAX says 1); ``clamp``
  passes the gradient where ``min <= x <= max`` inclusive and to a tensor bound only where
  it is the value taken (JAX's ``clip`` splits ties); ``maximum``/``minimum`` split a tie
  0.5/0.5 and give both operands the whole gradient where one is NaN; ``max(dim)``
  gives the gradient to the returned index only, ``max()`` spreads it over the ties
  (and the NaNs, when the result is NaN), ``amax``/``amin`` over the ties along ``dim``
  (NaN where the result is NaN, which XLA's jit would turn into 0); ``std``, ``norm`` have
  gradient 0 where the result is 0 (JAX: NaN); ``rsqrt``, ``reciprocal``, ``logsumexp``,
  ``lerp``, ``softmax``, ``tanh``, ``sigmoid`` use torch's backward formulas; rounding
  divisions have gradient 0.
* **Semantics**: ``sign(NaN)`` is 0, ``div(rounding_mode='floor')`` and ``remainder`` follow
  torch's fmod-based kernels, integer ``pow`` with a negative exponent is 0 (JAX: garbage),
  ``chunk`` / ``split`` / ``squeeze`` / ``expand`` / ``repeat`` / ``narrow`` / ``gather``
  take torch's arguments (JAX's ``squeeze`` of a non-1 axis is an error, torch's a no-op),
  an out-of-range integer index raises IndexError (JAX clamps), ``max(dim)`` returns a
  ``(values, indices)`` :class:`ValuesIndices`.

A few keys are the interpreter's targets for in-place methods with no out-of-place twin in
torch: ``Tensor.fill`` (``fill_``), ``Tensor.zero`` (``zero_``), ``Tensor.copy``
(``copy_``), ``Tensor.requires_grad`` (``requires_grad_``, the identity).

Data-dependent shapes or values (boolean-mask indexing, ``item()``, ``tolist()``,
``nonzero()``, ``unique()``) and argument values with no translation raise
:class:`~flax_arch.translate.errors.UnsupportedError` naming the argument and its value.

Importing this module never imports torch.
"""

from __future__ import annotations

import builtins
import functools
import math
import operator
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..nn.activation import Sigmoid
from ..ops.elementwise import torch_log_softmax, torch_softmax, torch_tanh, with_slope
from .errors import UnsupportedError

__all__ = ["FUNCTIONS", "ValuesIndices"]

FUNCTIONS: dict[str, Callable] = {}


def _no_out(fn):
    """torch.* functions take ``out=``; writing into a given tensor has no JAX meaning."""
    @functools.wraps(fn)
    def wrapper(*args, out=None, **kwargs):
        if out is not None:
            raise UnsupportedError(f"out={type(out).__name__}: writing the result into a given "
                                   f"tensor is not supported (JAX arrays are immutable); use "
                                   f"the returned value")
        return fn(*args, **kwargs)
    return wrapper


def _register(*keys: str):
    def deco(fn):
        for key in keys:
            if key in FUNCTIONS:
                raise KeyError(f"{key} registered twice")
            FUNCTIONS[key] = _no_out(fn) if key.startswith("torch.") else fn
        return fn
    return deco


def _both(*names: str) -> tuple[str, ...]:
    """``torch.<name>`` and ``Tensor.<name>`` for each name."""
    return tuple(k for n in names for k in (f"torch.{n}", f"Tensor.{n}"))


# ------------------------------------------------------------------ dtypes and promotion

_DEFAULT_FLOAT = np.dtype("float32")  # torch's default dtype
_LOW_PRECISION = (np.dtype(jnp.float16), np.dtype(jnp.bfloat16))


def _canon(dtype) -> np.dtype:
    """A dtype JAX can hold now: int64/float64 → int32/float32 when x64 is off."""
    return jax.dtypes.canonicalize_dtype(np.dtype(dtype))


_INT64 = functools.partial(_canon, np.int64)  # torch's index / integer-sum dtype


def _is_array(v) -> bool:
    return isinstance(v, (jax.Array, np.ndarray))


def _as_dtype(v):
    """A numpy dtype from a dtype argument (numpy dtype, scalar type, jnp.float32), else None."""
    if isinstance(v, np.dtype):
        return v
    if isinstance(v, type):
        try:
            return np.dtype(v)
        except TypeError:
            return None
    return None


def _is_float(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.floating)


def _is_complex(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.complexfloating)


def _category(dtype) -> int:
    """torch's promotion categories: bool < integer < floating < complex."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return 0
    if jnp.issubdtype(dtype, jnp.integer):
        return 1
    return 3 if _is_complex(dtype) else 2


def _promote(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return np.dtype(jnp.promote_types(a, b))


def _combine(higher, lower):
    """torch's ``combine_categories``: ``lower`` (0-d tensors, then Python scalars) only
    changes the dtype when it is of a higher category."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    ch, cl = _category(higher), _category(lower)
    if ch == 3:
        return higher
    if cl == 3:
        return _promote(higher, np.complex64) if ch == 2 else lower
    if ch == 2:
        return higher
    if ch == 0 or cl == 2:
        return _promote(higher, lower)
    return higher


def _scalar_dtype(v) -> np.dtype:
    """A Python scalar's dtype as torch sees it: a float is the default dtype, not double."""
    if isinstance(v, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(v, (int, np.integer)):
        return np.dtype(np.int64)
    if isinstance(v, (float, np.floating)):
        return _DEFAULT_FLOAT
    if isinstance(v, (complex, np.complexfloating)):
        return np.dtype(np.complex64)
    raise TypeError(f"expected a tensor or a number, got {type(v).__name__} ({v!r})")


def _result_type(*values) -> np.dtype:
    """torch's ``result_type``: tensors with dimensions decide, then 0-d tensors, then Python
    scalars, each only where it is of a higher category (JAX promotes them all alike)."""
    dim = zero = wrapped = None
    for v in values:
        if v is None:
            continue
        if _is_array(v):
            if v.ndim:
                dim = _promote(dim, v.dtype)
            else:
                zero = _promote(zero, v.dtype)
        else:
            wrapped = _promote(wrapped, _scalar_dtype(v))
    return _canon(_combine(dim, _combine(zero, wrapped)))


def _cast(v, dtype):
    if _is_array(v):
        return v if v.dtype == dtype else jnp.asarray(v).astype(dtype)
    return jnp.asarray(v, dtype)


def _opmath(dtype) -> np.dtype:
    """The dtype torch computes ``dtype`` in: float32 for float16/bfloat16."""
    return np.dtype(jnp.float32) if dtype in _LOW_PRECISION else np.dtype(dtype)


def _float_dtype(dtype) -> np.dtype:
    """The dtype of a float function of a ``dtype`` tensor: integers give float32."""
    return np.dtype(dtype) if _is_float(dtype) or _is_complex(dtype) else _DEFAULT_FLOAT


def _elementwise(fn, *values, result=None, to_float=False):
    """``fn`` of ``values`` promoted as torch does, computed in the opmath dtype and rounded
    to the result dtype once. ``to_float``: an integer result type becomes float32."""
    dtype = _result_type(*values) if result is None else result
    if to_float:
        dtype = _float_dtype(dtype)
    compute = _opmath(dtype)
    out = fn(*(_cast(v, compute) for v in values))
    return out.astype(dtype) if out.dtype != dtype else out


def _array(v, name: str, op: str):
    if not _is_array(v):
        raise TypeError(f"{op}: {name} must be a tensor, got {type(v).__name__} ({v!r})")
    return jnp.asarray(v)


def _static_int(v, name: str, op: str) -> int:
    """A Python int from an int (or a concrete 0-d integer array); a traced value would make
    a shape depend on data."""
    if isinstance(v, (int, np.integer)):
        return int(v)
    if _is_array(v) and v.ndim == 0 and not _is_float(v.dtype):
        try:
            return int(v)
        except jax.errors.JAXTypeError:
            raise UnsupportedError(f"{op}: {name} is a traced tensor; a shape or index that "
                                   f"depends on tensor values is not supported") from None
    raise TypeError(f"{op}: {name} must be an int, got {type(v).__name__} ({v!r})")


def _shape_args(args, op: str, name: str = "size") -> tuple[int, ...]:
    """torch's ``*size`` argument: varargs ``(2, 3)`` or one sequence ``((2, 3),)``."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    return tuple(_static_int(s, name, op) for s in args)


def _axis(dim, ndim: int, op: str, name: str = "dim") -> int:
    d = _static_int(dim, name, op)
    n = builtins.max(ndim, 1)  # a 0-d tensor has axes 0 and -1, as in torch
    if not -n <= d < n:
        raise IndexError(f"{op}: {name}={d} is out of range for a tensor of rank {ndim} "
                         f"(expected in [{-n}, {n - 1}])")
    return d % n


def _axes(dim, ndim: int, op: str):
    """A reduction's ``dim`` (int, sequence, or None/[] for all) → a JAX axis or None."""
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        if len(dim) == 0:  # torch: an empty dim list reduces over every dim
            return None
        return tuple(_axis(d, ndim, op) for d in dim)
    return _axis(dim, ndim, op)


def _reduce_input(x, dim, op: str):
    """(x, axis): a 0-d tensor reduces over its one implicit axis, i.e. over nothing."""
    axis = _axes(dim, x.ndim, op)
    if x.ndim == 0:
        return x, None
    return x, axis


def _unsupported_dtype(op: str, x, what: str = "floating-point"):
    return UnsupportedError(f"{op}: input of dtype {x.dtype} is not supported (torch computes "
                            f"it for {what} tensors only)")


# ------------------------------------------------------------------ join and split

def _cat_dtype(tensors, op):
    tensors = [_array(t, "tensors", op) for t in tensors]
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty list of tensors")
    dtype = _result_type(*tensors)
    return [t.astype(dtype) for t in tensors]


@_register("torch.cat", "torch.concat")
def _cat(tensors, dim=0):
    tensors = _cat_dtype(tensors, "cat")
    # torch's legacy rule: a 1-D empty tensor is skipped whatever the others' rank
    kept = [t for t in tensors if t.shape != (0,)] or tensors[:1]
    return jnp.concatenate(kept, axis=_axis(dim, kept[0].ndim, "cat"))


@_register("torch.concatenate")
def _concatenate(tensors, axis=0):
    return _cat(tensors, axis)


@_register("torch.stack")
def _stack(tensors, dim=0):
    tensors = _cat_dtype(tensors, "stack")
    return jnp.stack(tensors, axis=_axis(dim, tensors[0].ndim + 1, "stack"))


@_register("torch.hstack")
def _hstack(tensors):
    tensors = [jnp.atleast_1d(t) for t in _cat_dtype(tensors, "hstack")]
    return _cat(tensors, 0 if tensors[0].ndim == 1 else 1)


@_register("torch.vstack")
def _vstack(tensors):
    return _cat([jnp.atleast_2d(t) for t in _cat_dtype(tensors, "vstack")], 0)


def _pieces(x, axis: int, sizes) -> tuple:
    out, start = [], 0
    for s in sizes:
        out.append(lax.slice_in_dim(x, start, start + s, axis=axis))
        start += s
    return tuple(out)


@_register("torch.split")
def _split(tensor, split_size_or_sections, dim=0):
    x = _array(tensor, "tensor", "split")
    axis = _axis(dim, x.ndim, "split")
    n = x.shape[axis]
    if isinstance(split_size_or_sections, (tuple, list)):
        sizes = [_static_int(s, "split_size_or_sections", "split") for s in split_size_or_sections]
        if builtins.sum(sizes) != n or builtins.any(s < 0 for s in sizes):
            raise ValueError(f"split: split_size_or_sections={list(sizes)} must be non-negative "
                             f"sizes summing to the size {n} of dim {dim}")
        return _pieces(x, axis, sizes)
    size = _static_int(split_size_or_sections, "split_size_or_sections", "split")
    if size < 0 or (size == 0 and n != 0):
        raise ValueError(f"split: split_size_or_sections={size} must be positive (0 only for "
                         f"an empty dim)")
    # torch: pieces of ``size``, the last one smaller; at least one piece
    count = builtins.max(-(-n // size), 1) if size else 1
    return _pieces(x, axis, [size] * (count - 1) + [n - size * (count - 1)])


@_register("Tensor.split")
def _split_method(self, split_size, dim=0):
    return _split(self, split_size, dim)


@_register(*_both("chunk"))
def _chunk(input, chunks, dim=0):
    x = _array(input, "input", "chunk")
    chunks = _static_int(chunks, "chunks", "chunk")
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    axis = _axis(dim, x.ndim, "chunk")
    n = x.shape[axis]
    if n == 0:  # torch: `chunks` empty pieces
        return _pieces(x, axis, [0] * chunks)
    # torch: pieces of ceil(n / chunks), possibly fewer than ``chunks`` of them
    return _split(x, -(-n // chunks), axis)


@_register(*_both("tensor_split"))
def _tensor_split(input, indices_or_sections=None, dim=0, *, sections=None, indices=None):
    x = _array(input, "input", "tensor_split")
    given = [v for v in (indices_or_sections, sections, indices) if v is not None]
    if len(given) != 1:
        raise TypeError("tensor_split: give exactly one of indices_or_sections, sections "
                        "and indices")
    indices_or_sections = given[0]
    if _is_array(indices_or_sections):  # a tensor of indices (1-D) or of sections (0-d)
        try:
            indices_or_sections = np.asarray(indices_or_sections).tolist()
        except jax.errors.JAXTypeError:
            raise UnsupportedError("tensor_split: a traced tensor of indices gives "
                                   "data-dependent shapes") from None
    axis = _axis(dim, x.ndim, "tensor_split")
    n = x.shape[axis]
    if isinstance(indices_or_sections, (tuple, list)):
        bounds = [_static_int(i, "indices_or_sections", "tensor_split")
                  for i in indices_or_sections]
        edges = [None, *bounds, None]
        index = [slice(None)] * x.ndim
        out = []
        for a, b in zip(edges[:-1], edges[1:]):  # Python slicing, as numpy's array_split
            index[axis] = slice(a, b)
            out.append(x[tuple(index)])
        return tuple(out)
    k = _static_int(indices_or_sections, "indices_or_sections", "tensor_split")
    if k <= 0:
        raise ValueError(f"tensor_split: indices_or_sections must be positive, got {k}")
    q, r = divmod(n, k)  # the first n % k pieces one larger
    return _pieces(x, axis, [q + 1] * r + [q] * (k - r))


@_register(*_both("unbind"))
def _unbind(input, dim=0):
    x = _array(input, "input", "unbind")
    axis = _axis(dim, x.ndim, "unbind")
    return tuple(lax.index_in_dim(x, i, axis, keepdims=False) for i in range(x.shape[axis]))


# ------------------------------------------------------------------ shape

def _view_shape(shape, op):
    return _shape_args(shape, op, "shape")


@_register("Tensor.view")
def _view(self, *shape):
    x = _array(self, "self", "view")
    if len(shape) == 1 and _as_dtype(shape[0]) is not None:  # x.view(dtype): reinterpret
        dtype = _canon(_as_dtype(shape[0]))
        if dtype.itemsize != x.dtype.itemsize:
            raise UnsupportedError(f"view(dtype={dtype}): reinterpreting {x.dtype} as a dtype "
                                   f"of another size is not supported")
        return lax.bitcast_convert_type(x, dtype)
    return jnp.reshape(x, _view_shape(shape, "view"))


@_register("Tensor.reshape")
def _reshape_method(self, *shape):
    return jnp.reshape(self, _view_shape(shape, "reshape"))


@_register("torch.reshape")
def _reshape(input, shape):
    return jnp.reshape(input, _view_shape((shape,), "reshape"))


@_register("Tensor.view_as", "Tensor.reshape_as")
def _view_as(self, other):
    return jnp.reshape(self, other.shape)


@_register("Tensor.permute")
def _permute_method(self, *dims):
    return _permute(self, dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list))
                    else dims)


@_register("torch.permute")
def _permute(input, dims):
    x = _array(input, "input", "permute")
    axes = tuple(_axis(d, x.ndim, "permute", "dims") for d in dims)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"permute: dims={tuple(dims)} is not a permutation of the "
                         f"{x.ndim} dims of the input")
    return jnp.transpose(x, axes)


@_register(*_both("transpose", "swapaxes", "swapdims"))
def _transpose(input, dim0, dim1):
    x = _array(input, "input", "transpose")
    return jnp.swapaxes(x, _axis(dim0, x.ndim, "transpose", "dim0"),
                        _axis(dim1, x.ndim, "transpose", "dim1"))


@_register(*_both("t"))
def _t(input):
    x = _array(input, "input", "t")
    if x.ndim > 2:
        raise ValueError(f"t: expects a tensor of rank <= 2, got shape {tuple(x.shape)}")
    return x.T


@_register(*_both("flatten"))
def _flatten(input, start_dim=0, end_dim=-1):
    x = _array(input, "input", "flatten")
    if x.ndim == 0:  # torch: a 0-d tensor flattens to one element
        return x.reshape(1)
    s = _axis(start_dim, x.ndim, "flatten", "start_dim")
    e = _axis(end_dim, x.ndim, "flatten", "end_dim")
    if s > e:
        raise ValueError(f"flatten: start_dim={start_dim} comes after end_dim={end_dim}")
    return x.reshape(x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:])


@_register(*_both("unflatten"))
def _unflatten(input, dim, sizes):
    x = _array(input, "input", "unflatten")
    axis = _axis(dim, x.ndim, "unflatten")
    sizes = _shape_args((sizes,), "unflatten", "sizes")
    if sizes.count(-1) == 1:  # one -1: the size that makes the product x.shape[axis]
        known = math.prod(s for s in sizes if s != -1)
        sizes = tuple(x.shape[axis] // known if known and s == -1 else s for s in sizes)
    if math.prod(sizes) != x.shape[axis]:
        raise ValueError(f"unflatten: sizes={sizes} do not multiply to the size "
                         f"{x.shape[axis]} of dim {dim}")
    return x.reshape(x.shape[:axis] + sizes + x.shape[axis + 1:])


@_register(*_both("squeeze"))
def _squeeze(input, dim=None):
    x = _array(input, "input", "squeeze")
    if dim is None:
        axes = range(x.ndim)
    elif isinstance(dim, (tuple, list)):
        axes = [_axis(d, x.ndim, "squeeze") for d in dim]
    else:
        axes = [_axis(dim, x.ndim, "squeeze")]
    # torch leaves a dim of size != 1 in place; JAX's squeeze would raise
    return jnp.squeeze(x, tuple(sorted(a for a in set(axes) if x.ndim and x.shape[a] == 1)))


@_register(*_both("unsqueeze"))
def _unsqueeze(input, dim):
    x = _array(input, "input", "unsqueeze")
    return jnp.expand_dims(x, _axis(dim, x.ndim + 1, "unsqueeze"))


def _expand_shape(x, sizes, op):
    sizes = _shape_args(sizes, op)
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ValueError(f"{op}: the number of sizes ({len(sizes)}) must be at least the rank "
                         f"{x.ndim} of the tensor")
    shape = []
    for i, s in enumerate(sizes):
        if s == -1:  # torch: -1 keeps the size (not allowed for a new leading dim)
            if i < lead:
                raise ValueError(f"{op}: -1 is not allowed for the new leading dim {i}")
            s = x.shape[i - lead]
        shape.append(s)
    return tuple(shape)


@_register("Tensor.expand")
def _expand(self, *sizes):
    x = _array(self, "self", "expand")
    return jnp.broadcast_to(x, _expand_shape(x, sizes, "expand"))


@_register("Tensor.expand_as")
def _expand_as(self, other):
    return jnp.broadcast_to(self, other.shape)


@_register(*_both("broadcast_to"))
def _broadcast_to(input, size):
    x = _array(input, "input", "broadcast_to")
    return jnp.broadcast_to(x, _expand_shape(x, (size,), "broadcast_to"))


@_register("Tensor.repeat")
def _repeat(self, *sizes):
    x = _array(self, "self", "repeat")
    reps = _shape_args(sizes, "repeat", "sizes")
    if len(reps) < x.ndim:
        raise ValueError(f"repeat: the number of repeats ({len(reps)}) can not be smaller than "
                         f"the rank {x.ndim} of the tensor")
    return jnp.tile(x, reps)


@_register("torch.tile")
def _tile(input, dims):
    return jnp.tile(_array(input, "input", "tile"), _shape_args((dims,), "tile", "dims"))


@_register("Tensor.tile")
def _tile_method(self, *dims):
    return _tile(self, dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list))
                 else dims)


@_register(*_both("repeat_interleave"))
def _repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    x = _array(input, "input", "repeat_interleave")
    if repeats is None:
        raise UnsupportedError("repeat_interleave(repeats): the one-argument form has a "
                               "data-dependent output shape")
    if dim is None:
        x, axis = x.reshape(-1), 0
    else:
        axis = _axis(dim, x.ndim, "repeat_interleave")
    if _is_array(repeats) and repeats.ndim > 0:
        if output_size is not None:
            return jnp.repeat(x, repeats, axis=axis, total_repeat_length=output_size)
        try:
            repeats = np.asarray(repeats)
        except jax.errors.JAXTypeError:
            raise UnsupportedError("repeat_interleave: a traced tensor of repeats without "
                                   "output_size gives a data-dependent shape") from None
        return jnp.repeat(x, repeats, axis=axis)
    return jnp.repeat(x, _static_int(repeats, "repeats", "repeat_interleave"), axis=axis)


@_register("Tensor.contiguous")
def _contiguous(self, memory_format=None):
    return self


@_register("Tensor.cpu")
def _cpu(self, memory_format=None):
    return self


@_register("Tensor.cuda")
def _cuda(self, device=None, non_blocking=False, memory_format=None):
    return self  # devices are JAX's business: the array stays where it is


@_register("Tensor.requires_grad")  # x.requires_grad_(), mapped by the interpreter
def _requires_grad(self, requires_grad=True):
    return self


@_register("Tensor.copy")  # x.copy_(src), mapped by the interpreter
def _copy(self, src, non_blocking=False):
    return jnp.broadcast_to(_cast(src, self.dtype), self.shape)


@_register(*_both("clone"))
def _clone(input, *, memory_format=None):
    return input


@_register(*_both("detach"))
def _detach(input):
    return lax.stop_gradient(input)


@_register("Tensor.size")
def _size(self, dim=None):
    if dim is None:
        return tuple(self.shape)
    if self.ndim == 0:
        raise IndexError(f"size: dim={dim} given for a 0-d tensor, which has no dims")
    return self.shape[_axis(dim, self.ndim, "size")]


@_register("Tensor.dim", "Tensor.ndimension")
def _dim(self):
    return self.ndim


@_register("Tensor.numel", "Tensor.nelement", "torch.numel")
def _numel(input):
    return int(math.prod(input.shape))


@_register("Tensor.element_size")
def _element_size(self):
    return self.dtype.itemsize


@_register(*_both("is_floating_point"))
def _is_floating_point(input):
    return bool(_is_float(input.dtype))


@_register(*_both("is_complex"))
def _is_complex_method(input):
    return bool(_is_complex(input.dtype))


@_register("Tensor.is_contiguous")
def _is_contiguous(self, memory_format=None):
    return True


@_register("torch.is_tensor")
def _is_tensor(obj):
    return _is_array(obj)


def _astype(x, dtype):
    dtype = _canon(dtype)
    if dtype in _LOW_PRECISION and x.dtype == np.float64:
        # torch converts double to half via float (c10::Half(float(x))): rounded twice,
        # where XLA and numpy round once; 1 in 10^4 values differ by an ulp otherwise
        x = x.astype(np.float32)
    return x.astype(dtype)


@_register("Tensor.to")
def _to(self, *args, dtype=None, device=None, non_blocking=False, copy=False,
        memory_format=None):
    """``to(dtype)``, ``to(other)``, ``to(device, dtype)``: only the dtype has an effect."""
    for a in args:
        if _is_array(a):
            dtype = a.dtype
        elif a is None or isinstance(a, (str, bool)) or (isinstance(a, int)):
            continue  # a device (None after translation, a name or an index), or a flag
        elif _as_dtype(a) is not None:
            dtype = _as_dtype(a)
        else:
            raise UnsupportedError(f"to: argument {a!r} ({type(a).__name__}) is neither a "
                                   f"dtype, a tensor nor a device")
    return self if dtype is None else _astype(self, dtype)


def _cast_method(dtype):
    def method(self, memory_format=None):
        return _astype(self, dtype)
    return method


for _name, _dt in {"float": np.float32, "double": np.float64, "half": np.float16,
                   "bfloat16": jnp.bfloat16, "long": np.int64, "int": np.int32,
                   "short": np.int16, "char": np.int8, "byte": np.uint8,
                   "bool": np.bool_}.items():
    _register(f"Tensor.{_name}")(_cast_method(_dt))


@_register("Tensor.type_as")
def _type_as(self, other):
    return _astype(self, other.dtype)


@_register("Tensor.type")
def _type(self, dtype=None, non_blocking=False):
    if _as_dtype(dtype) is None:
        raise UnsupportedError(f"type(dtype={dtype!r}): only a dtype is supported (no type "
                               f"names)")
    return _astype(self, _as_dtype(dtype))


@_register(*_both("movedim", "moveaxis"))
def _movedim(input, source, destination):
    x = _array(input, "input", "movedim")
    src = source if isinstance(source, (tuple, list)) else (source,)
    dst = destination if isinstance(destination, (tuple, list)) else (destination,)
    return jnp.moveaxis(x, [_axis(d, x.ndim, "movedim", "source") for d in src],
                        [_axis(d, x.ndim, "movedim", "destination") for d in dst])


@_register(*_both("roll"))
def _roll(input, shifts, dims=None):
    x = _array(input, "input", "roll")
    if dims is None:  # torch: roll the flattened tensor
        return jnp.roll(x.reshape(-1), shifts).reshape(x.shape)
    if isinstance(dims, (tuple, list)):
        dims, shifts = tuple(dims), tuple(shifts) if isinstance(shifts, (tuple, list)) else shifts
    return jnp.roll(x, shifts, axis=dims)


@_register("torch.flip")
def _flip(input, dims):
    x = _array(input, "input", "flip")
    dims = dims if isinstance(dims, (tuple, list)) else (dims,)
    return jnp.flip(x, tuple(_axis(d, x.ndim, "flip", "dims") for d in dims))


@_register("Tensor.flip")
def _flip_method(self, *dims):
    return _flip(self, dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list))
                 else dims)


@_register(*_both("narrow"))
def _narrow(input, dim, start, length):
    x = _array(input, "input", "narrow")
    axis = _axis(dim, x.ndim, "narrow")
    n = x.shape[axis]
    start = _static_int(start, "start", "narrow")
    length = _static_int(length, "length", "narrow")
    if start < 0:  # torch wraps a negative start
        start += n
    if not (0 <= start <= n and 0 <= length <= n - start):
        raise IndexError(f"narrow: start={start}, length={length} is out of range for dim "
                         f"{dim} of size {n}")
    return lax.slice_in_dim(x, start, start + length, axis=axis)


@_register(*_both("select"))
def _select(input, dim, index):
    x = _array(input, "input", "select")
    axis = _axis(dim, x.ndim, "select")
    i, n = _static_int(index, "index", "select"), x.shape[axis]
    if not -n <= i < n:
        raise IndexError(f"select: index {i} is out of range for dim {dim} of size {n}")
    return lax.index_in_dim(x, i % n, axis, keepdims=False)


@_register(*_both("gather"))
def _gather(input, dim, index, *, sparse_grad=False):
    x = _array(input, "input", "gather")
    index = _array(index, "index", "gather")
    axis = _axis(dim, x.ndim, "gather")
    if index.ndim != x.ndim:
        raise ValueError(f"gather: index (rank {index.ndim}) must have the rank of input "
                         f"({x.ndim})")
    # torch allows index to be smaller than input along the other dims: read that corner
    corner = tuple(slice(None) if a == axis else slice(0, index.shape[a]) for a in range(x.ndim))
    return jnp.take_along_axis(x[corner], index, axis=axis)


@_register(*_both("index_select"))
def _index_select(input, dim, index):
    x = _array(input, "input", "index_select")
    index = _array(index, "index", "index_select")
    # a 0-d index selects one entry and keeps the dim, as a 1-element index does in torch
    return jnp.take(x, index.reshape(-1), axis=_axis(dim, x.ndim, "index_select"))


@_register("torch.where")
def _where(condition, input=None, other=None):
    if input is None and other is None:
        raise UnsupportedError("where(condition): the one-argument form (nonzero) has a "
                               "data-dependent shape")
    return _elementwise(lambda a, b: jnp.where(condition, a, b), input, other)


@_register("Tensor.where")
def _where_method(self, condition, other):
    return _where(condition, self, other)


@_register(*_both("masked_fill"))
def _masked_fill(input, mask, value):
    x = _array(input, "input", "masked_fill")
    if _is_array(mask) and mask.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got {mask.dtype}")
    return jnp.where(mask, _cast(value, x.dtype), x)


@_register(*_both("tril"))
def _tril(input, diagonal=0):
    return jnp.tril(input, _static_int(diagonal, "diagonal", "tril"))


@_register(*_both("triu"))
def _triu(input, diagonal=0):
    return jnp.triu(input, _static_int(diagonal, "diagonal", "triu"))


# ------------------------------------------------------------------ indexing

def _index_entry(i, x, axis: int):
    """One entry of an index tuple, checked; ``axis``: the input axis an int entry reads."""
    if i is None or i is Ellipsis or isinstance(i, (bool, np.bool_)):
        return i
    if isinstance(i, slice):
        parts = [None if v is None else _static_int(v, "slice bound", "getitem")
                 for v in (i.start, i.stop, i.step)]
        if parts[2] is not None and parts[2] <= 0:
            raise UnsupportedError(f"getitem: slice step {parts[2]}: torch requires a positive "
                                   f"step (use flip)")
        return slice(*parts)
    if isinstance(i, (int, np.integer)):
        n = x.shape[axis] if axis < x.ndim else None
        if n is not None and not -n <= i < n:  # JAX would clamp; torch raises
            raise IndexError(f"getitem: index {int(i)} is out of bounds for dim {axis} with "
                             f"size {n}")
        return int(i)
    if isinstance(i, (list, tuple)):
        i = np.asarray(i) if not builtins.any(_is_array(v) for v in i) else jnp.asarray(i)
    if _is_array(i):
        if i.dtype == np.bool_:
            raise UnsupportedError("getitem: a boolean-mask index has a data-dependent "
                                   "shape (the number of True entries); use torch.where or "
                                   "masked_fill instead")
        if not jnp.issubdtype(i.dtype, jnp.integer):
            raise IndexError(f"getitem: tensors used as indices must be integer or bool, got "
                             f"{i.dtype}")
        return jnp.asarray(i)
    raise TypeError(f"getitem: unsupported index {i!r} ({type(i).__name__})")


def _getitem_array(x, idx):
    parts = idx if isinstance(idx, tuple) else (idx,)
    # the axis an entry reads: the entries before it that consume one (None and bools do
    # not); after an Ellipsis, counted from the end
    consumed = [p is not None and p is not Ellipsis and not isinstance(p, (bool, np.bool_))
                for p in parts]
    ell = next((k for k, p in enumerate(parts) if p is Ellipsis), None)
    out = []
    for k, p in enumerate(parts):
        after = ell is not None and k > ell
        axis = x.ndim - builtins.sum(consumed[k:]) if after else builtins.sum(consumed[:k])
        out.append(_index_entry(p, x, axis))
    return x[tuple(out)]


@_register("operator.getitem")
def _getitem(obj, idx):
    if not _is_array(obj):
        return obj[idx]
    return _getitem_array(jnp.asarray(obj), idx)


_TENSOR_ATTRS: dict[str, Callable[[Any], Any]] = {
    "shape": lambda x: tuple(x.shape),
    "dtype": lambda x: x.dtype,
    "ndim": lambda x: x.ndim,
    "T": lambda x: jnp.transpose(x),  # torch: all dims reversed (deprecated for ndim != 2)
    "mT": lambda x: jnp.swapaxes(x, -1, -2),
    "H": lambda x: jnp.conj(jnp.transpose(x)),
    "mH": lambda x: jnp.conj(jnp.swapaxes(x, -1, -2)),
    "real": jnp.real,
    "imag": jnp.imag,
    "data": lax.stop_gradient,
    "device": lambda x: None,  # devices are dropped in translation
    "layout": lambda x: None,
    "grad": lambda x: None,
    "is_cuda": lambda x: False,
    "is_cpu": lambda x: True,
    "is_sparse": lambda x: False,
    "is_quantized": lambda x: False,
    "is_meta": lambda x: False,
    "is_mps": lambda x: False,
    "is_nested": lambda x: False,
    # JAX has no autograd tape: gradients are taken of functions, so no tensor "requires" one
    "requires_grad": lambda x: False,
    "itemsize": lambda x: x.dtype.itemsize,
    "nbytes": lambda x: x.dtype.itemsize * int(math.prod(x.shape)),
}


@_register("builtins.getattr")
def _getattr(obj, name, *default):
    if not _is_array(obj):
        return getattr(obj, name, *default)
    if name in _TENSOR_ATTRS:
        return _TENSOR_ATTRS[name](obj)
    if default:
        return default[0]
    raise UnsupportedError(f"getattr: the tensor attribute {name!r} has no translation")


def _data_dependent(op: str, what: str):
    def refuse(*args, **kwargs):
        raise UnsupportedError(f"{op}: {what} depends on tensor values, which a traced "
                               f"program does not have (keep it a tensor)")
    return refuse


_register("Tensor.item")(_data_dependent("item()", "a Python number read from a tensor"))
_register("Tensor.tolist")(_data_dependent("tolist()", "a Python list read from a tensor"))
_register(*_both("nonzero"))(_data_dependent("nonzero()", "the output's shape"))
_register(*_both("unique"))(_data_dependent("unique()", "the output's shape"))
_register(*_both("masked_select"))(_data_dependent("masked_select()", "the output's shape"))


# ------------------------------------------------------------------ arithmetic

def _python_or(py_op, fn):
    """An ``operator.*`` entry: the Python operator when no argument is an array."""
    @functools.wraps(fn)
    def op(*args):
        if not builtins.any(_is_array(a) for a in args):
            return py_op(*args)
        return fn(*args)
    return op


def _add_fn(a, b, alpha):
    return a + b if alpha == 1 else a + alpha * b


def _scalars_in(dtype, *values):
    """torch's add/sub round a Python scalar to a float16/bfloat16 result's dtype before
    computing in float32 (mul and div keep it in float32)."""
    if dtype not in _LOW_PRECISION:
        return values
    return tuple(v if _is_array(v) else jnp.asarray(v, dtype) for v in values)


@_register(*_both("add"))
def _add(input, other, *, alpha=1):
    dtype = _result_type(input, other)
    return _elementwise(lambda a, b: _add_fn(a, b, alpha), *_scalars_in(dtype, input, other),
                        result=dtype)


@_register(*_both("sub", "subtract"))
def _sub(input, other, *, alpha=1):
    dtype = _result_type(input, other)
    return _elementwise(lambda a, b: a - b if alpha == 1 else a - alpha * b,
                        *_scalars_in(dtype, input, other), result=dtype)


@_register(*_both("mul", "multiply"))
def _mul(input, other):
    return _elementwise(jnp.multiply, input, other)


@_register(*_both("true_divide"))
def _true_divide(input, other):
    # torch: true division of integers gives the default float dtype
    return _elementwise(jnp.true_divide, input, other, to_float=True)


def _floor_divide_float(a, b):
    """torch's ``div_floor_floating``: fmod-based, so the quotient is exact where a / b
    rounds across an integer; gradient 0 (torch's for a rounding division)."""
    mod = lax.rem(a, b)
    div = (a - mod) / b
    div = jnp.where((mod != 0) & ((b < 0) != (mod < 0)), div - 1, div)
    floor = jnp.floor(div)
    floor = jnp.where(div - floor > 0.5, floor + 1, floor)
    out = jnp.where(div != 0, floor, jnp.copysign(jnp.zeros_like(div), a / b))
    return lax.stop_gradient(jnp.where(b == 0, a / b, out))


def _floor_divide_fn(a, b):
    if jnp.issubdtype(a.dtype, jnp.integer) or a.dtype == np.bool_:
        return jnp.floor_divide(a, b)
    return _floor_divide_float(a, b)


def _trunc_divide_fn(a, b):
    if jnp.issubdtype(a.dtype, jnp.integer) or a.dtype == np.bool_:
        return lax.div(a, b)  # C's integer division truncates, as torch's
    return lax.stop_gradient(jnp.trunc(a / b))  # gradient 0, as torch's


@_register(*_both("div", "divide"))
def _div(input, other, *, rounding_mode=None):
    if rounding_mode is None:
        return _true_divide(input, other)
    if rounding_mode == "trunc":
        return _elementwise(_trunc_divide_fn, input, other)
    if rounding_mode == "floor":
        return _elementwise(_floor_divide_fn, input, other)
    raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got "
                     f"{rounding_mode!r}")


@_register(*_both("floor_divide"))
def _floor_divide(input, other):
    return _elementwise(_floor_divide_fn, input, other)


def _remainder_fn(a, b):
    if jnp.issubdtype(a.dtype, jnp.integer):
        return jnp.remainder(a, b)
    # torch: fmod, then + b where the signs differ (Python's modulo); gradient w.r.t. b is
    # -floor(a / b), which JAX's autodiff of this form gives
    mod = lax.rem(a, b)
    return jnp.where((mod != 0) & ((b < 0) != (mod < 0)), mod + b, mod)


@_register(*_both("remainder"))
def _remainder(input, other):
    return _elementwise(_remainder_fn, input, other)


@_register(*_both("fmod"))
def _fmod(input, other):
    return _elementwise(lax.rem, input, other)


def _pow_fn(exponent):
    """x ** a Python exponent as torch's ``pow_tensor_scalar``: integer exponents by
    multiplication (2 is ``x * x``, as torch), 0.5 as sqrt, others by ``pow``."""
    if isinstance(exponent, (int, np.integer)) or (
            isinstance(exponent, (float, np.floating)) and float(exponent).is_integer()
            and builtins.abs(exponent) <= 64):
        return lambda x: lax.integer_pow(x, int(exponent))
    if exponent == 0.5:
        return jnp.sqrt
    if exponent == -0.5:
        return lambda x: 1 / jnp.sqrt(x)
    return lambda x: jnp.power(x, exponent)


def _int_pow(a, b):
    """Integer powers as torch's: a negative exponent gives 0 (1 or ±1 for a base of 1 or
    -1) where JAX's would be garbage."""
    if a.dtype == np.bool_:
        return a | ~b
    pos = jnp.power(a, jnp.maximum(b, 0))
    neg = jnp.where(a == 1, 1, jnp.where(a == -1, jnp.where(b % 2 == 0, 1, -1), 0))
    return jnp.where(b < 0, neg.astype(a.dtype), pos)


@_register(*_both("pow"))
def _pow(input, exponent):
    if _is_array(input) and not _is_array(exponent):
        dtype = _result_type(input, exponent)
        if not (_is_float(dtype) or _is_complex(dtype)) and exponent < 0:
            raise ValueError(f"pow: integers to negative integer powers are not allowed "
                             f"(exponent={exponent})")
        if _is_float(dtype) or _is_complex(dtype):
            return _elementwise(_pow_fn(exponent), input, result=dtype)
        return _elementwise(lambda x: lax.integer_pow(x, int(exponent)), input, result=dtype)
    dtype = _result_type(input, exponent)
    return _elementwise(jnp.power if _is_float(dtype) or _is_complex(dtype) else _int_pow,
                        input, exponent, result=dtype)


@_register(*_both("square"))
def _square(input):
    return _pow(input, 2)


@_register(*_both("neg", "negative"))
def _neg(input):
    return jnp.negative(input)


def _sign_value(x):
    # torch: (0 < x) - (x < 0), so sign(NaN) = 0 (JAX: NaN)
    return (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)


@_register(*_both("sign"))
def _sign(input):
    if input.dtype == np.bool_:
        return input
    return lax.stop_gradient(_sign_value(input))


_ABS = with_slope(jnp.abs, _sign_value)  # torch: grad * sgn(x), 0 at 0 (and at NaN)


@_register(*_both("abs", "absolute"))
def _abs(input):
    if not _is_float(input.dtype):
        return jnp.abs(input)
    return _ABS(input)


def _float_unary(fn, op):
    """A float function: an integer tensor gives float32 (torch), float16/bfloat16 are
    computed in float32 and rounded once."""
    def f(input):
        x = _array(input, "input", op)
        return _elementwise(fn, x, result=_float_dtype(x.dtype))
    return f


_FLOAT_UNARY = {"exp": jnp.exp, "expm1": jnp.expm1, "log": jnp.log, "log1p": jnp.log1p,
                "log2": jnp.log2, "log10": jnp.log10, "sqrt": jnp.sqrt,
                "sin": jnp.sin, "cos": jnp.cos, "tan": jnp.tan, "atan": jnp.arctan,
                "erf": lax.erf,
                "tanh": torch_tanh,  # torch's rounding and its 1 - y² backward
                "sigmoid": lambda x: Sigmoid()(x)}  # torch's y(1 - y) backward
for _name, _fn in _FLOAT_UNARY.items():
    _register(*_both(_name))(_float_unary(_fn, _name))


def _rsqrt_value(x):
    return 1 / jnp.sqrt(x)


# torch's rsqrt backward: -0.5 * grad * y³ from the output y
_RSQRT = with_slope(_rsqrt_value, lambda x: -0.5 * _rsqrt_value(x) ** 3)
_register(*_both("rsqrt"))(_float_unary(_RSQRT, "rsqrt"))

# torch's reciprocal backward: -grad * y² from the output y
_RECIPROCAL = with_slope(lambda x: 1 / x, lambda x: -(1 / x) * (1 / x))
_reciprocal = _register(*_both("reciprocal"))(_float_unary(_RECIPROCAL, "reciprocal"))


def _integer_identity(fn):
    """floor/ceil/round/trunc: an integer tensor is returned as it is; gradient 0."""
    def f(input):
        if not _is_float(input.dtype):
            return input
        return _elementwise(fn, input, result=input.dtype)
    return f


for _name, _fn in {"floor": jnp.floor, "ceil": jnp.ceil, "trunc": jnp.trunc}.items():
    _register(*_both(_name))(_integer_identity(_fn))


@_register(*_both("round"))
def _round(input, *, decimals=0):
    if not _is_float(input.dtype):
        if decimals:
            raise UnsupportedError(f"round: decimals={decimals} on an integer tensor")
        return input
    decimals = _static_int(decimals, "decimals", "round")
    if decimals == 0:  # torch's nearbyint: ties to even, as jnp.round
        return _elementwise(jnp.round, input, result=input.dtype)
    scale = 10.0 ** builtins.abs(decimals)
    # torch: nearbyint(x * 10^d) / 10^d, or nearbyint(x / 10^-d) * 10^-d for d < 0
    fn = (lambda x: jnp.round(x * scale) / scale) if decimals > 0 else \
        (lambda x: jnp.round(x / scale) * scale)
    return _elementwise(lambda x: lax.stop_gradient(fn(x)), input, result=input.dtype)


@_register(*_both("relu"))
def _relu(input):
    # torch: slope 0 at x <= 0, 1 above and for NaN (its threshold_backward)
    return jnp.where(input <= 0, jnp.zeros_like(input), input)


# ---- clamp: torch's masks (derivatives.yaml, clamp_backward / clamp_backward_min_max):
# x gets the gradient where min <= x <= max, a tensor min where x < min < max, a tensor max
# where x > max or max < min. JAX's clip splits ties 0.5/0.5; NaN gets gradient 0 here.

@jax.custom_jvp
def _clamp_both(x, lo, hi):
    return jnp.minimum(jnp.maximum(x, lo), hi)


@_clamp_both.defjvp
def _clamp_both_jvp(primals, tangents):
    (x, lo, hi), (tx, tlo, thi) = primals, tangents
    y = _clamp_both(x, lo, hi)
    zero = jnp.zeros_like(y)
    t = (jnp.where((x >= lo) & (x <= hi), tx, zero) + jnp.where((x < lo) & (lo < hi), tlo, zero)
         + jnp.where((x > hi) | (hi < lo), thi, zero))
    return y, t


@jax.custom_jvp
def _clamp_lo(x, lo):
    return jnp.maximum(x, lo)


@_clamp_lo.defjvp
def _clamp_lo_jvp(primals, tangents):
    (x, lo), (tx, tlo) = primals, tangents
    y = _clamp_lo(x, lo)
    zero = jnp.zeros_like(y)
    return y, jnp.where(x >= lo, tx, zero) + jnp.where(x < lo, tlo, zero)


@jax.custom_jvp
def _clamp_hi(x, hi):
    return jnp.minimum(x, hi)


@_clamp_hi.defjvp
def _clamp_hi_jvp(primals, tangents):
    (x, hi), (tx, thi) = primals, tangents
    y = _clamp_hi(x, hi)
    zero = jnp.zeros_like(y)
    return y, jnp.where(x <= hi, tx, zero) + jnp.where(x > hi, thi, zero)


@_register(*_both("clamp", "clip"))
def _clamp(input, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must not be None")
    x = _array(input, "input", "clamp")
    dtype = _result_type(x, min, max)
    x, lo, hi = (None if v is None else _cast(v, dtype) for v in (x, min, max))
    if not _is_float(dtype):
        y = x if lo is None else jnp.maximum(x, lo)
        return y if hi is None else jnp.minimum(y, hi)
    if lo is None:
        return _clamp_hi(x, hi)
    if hi is None:
        return _clamp_lo(x, lo)
    return _clamp_both(x, lo, hi)


@_register(*_both("clamp_min"))
def _clamp_min(input, min):
    return _clamp(input, min, None)


@_register(*_both("clamp_max"))
def _clamp_max(input, max):
    return _clamp(input, None, max)


# ---- maximum / minimum: torch gives a tie 0.5 / 0.5 (as JAX) and, where either is NaN
# (no comparison holds), the whole gradient to both operands (JAX: to neither)

@jax.custom_jvp
def _maximum_float(a, b):
    return jnp.maximum(a, b)


@_maximum_float.defjvp
def _maximum_jvp(primals, tangents):
    (a, b), (ta, tb) = primals, tangents
    y = jnp.maximum(a, b)
    zero = jnp.zeros_like(y)
    return y, (jnp.where(a == b, 0.5 * ta, jnp.where(a < b, zero, ta))
               + jnp.where(a == b, 0.5 * tb, jnp.where(a > b, zero, tb)))


@jax.custom_jvp
def _minimum_float(a, b):
    return jnp.minimum(a, b)


@_minimum_float.defjvp
def _minimum_jvp(primals, tangents):
    (a, b), (ta, tb) = primals, tangents
    y = jnp.minimum(a, b)
    zero = jnp.zeros_like(y)
    return y, (jnp.where(a == b, 0.5 * ta, jnp.where(a > b, zero, ta))
               + jnp.where(a == b, 0.5 * tb, jnp.where(a < b, zero, tb)))


def _extremum2(fn_float, fn_int):
    def f(input, other):
        dtype = _result_type(input, other)
        return _elementwise(fn_float if _is_float(dtype) else fn_int, input, other, result=dtype)
    return f


_maximum = _register(*_both("maximum"))(_extremum2(_maximum_float, jnp.maximum))
_minimum = _register(*_both("minimum"))(_extremum2(_minimum_float, jnp.minimum))


# ---- lerp: torch's formula switches at |weight| = 0.5 for accuracy; its gradient is
# (1 - w, w, end - start) whichever form computed the value

@jax.custom_jvp
def _lerp_fn(start, end, weight):
    diff = end - start
    return jnp.where(jnp.abs(weight) < 0.5, start + weight * diff, end - diff * (1 - weight))


@_lerp_fn.defjvp
def _lerp_jvp(primals, tangents):
    (s, e, w), (ts, te, tw) = primals, tangents
    return _lerp_fn(s, e, w), ts * (1 - w) + te * w + tw * (e - s)


@_register(*_both("lerp"))
def _lerp(input, end, weight):
    return _elementwise(_lerp_fn, input, end, weight, result=_result_type(input, end))


# ---- comparisons and logic

def _compare(fn):
    def f(input, other):
        dtype = _result_type(input, other)
        return fn(_cast(input, dtype), _cast(other, dtype))
    return f


_COMPARISONS = {"eq": jnp.equal, "ne": jnp.not_equal, "lt": jnp.less, "le": jnp.less_equal,
                "gt": jnp.greater, "ge": jnp.greater_equal}
for _name, _fn in _COMPARISONS.items():
    _register(*_both(_name))(_compare(_fn))


@_register(*_both("logical_and"))
def _logical_and(input, other):
    return jnp.logical_and(input, other)


@_register(*_both("logical_or"))
def _logical_or(input, other):
    return jnp.logical_or(input, other)


@_register(*_both("logical_xor"))
def _logical_xor(input, other):
    return jnp.logical_xor(input, other)


@_register(*_both("logical_not"))
def _logical_not(input):
    return jnp.logical_not(input)


def _bitwise(fn, name):
    def f(input, other):
        dtype = _result_type(input, other)
        if _is_float(dtype) or _is_complex(dtype):
            raise TypeError(f"{name}: only integer and bool tensors, got {dtype}")
        return fn(_cast(input, dtype), _cast(other, dtype))
    return f


_bitwise_and = _register(*_both("bitwise_and"))(_bitwise(jnp.bitwise_and, "bitwise_and"))
_bitwise_or = _register(*_both("bitwise_or"))(_bitwise(jnp.bitwise_or, "bitwise_or"))
_bitwise_xor = _register(*_both("bitwise_xor"))(_bitwise(jnp.bitwise_xor, "bitwise_xor"))


@_register(*_both("bitwise_not"))
def _bitwise_not(input):
    return jnp.invert(input)


@_register(*_both("isnan"))
def _isnan(input):
    return jnp.isnan(input)


@_register(*_both("isfinite"))
def _isfinite(input):
    return jnp.isfinite(input)


@_register(*_both("isinf"))
def _isinf(input):
    return jnp.isinf(input)


# ---- softmax family (torch's backward formulas, computed in float32 for half precision)

@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _half_log_softmax(v, axis, half):
    """log_softmax of float32 ``v`` (upcast from ``half``) as torch's half kernel: the sum
    and its log are rounded to ``half``, ``(x - max) - half(log(half(sum)))``; its backward
    ``g - exp(y) * sum(g)`` (torch_log_softmax's) from the output ``y`` rounded to
    ``half``. Values and gradients bit-identical to torch's."""
    m = lax.stop_gradient(jnp.max(v, axis, keepdims=True))
    total = jnp.sum(jnp.exp(v - m), axis, keepdims=True).astype(half).astype(v.dtype)
    return ((v - m) - jnp.log(total).astype(half).astype(v.dtype)).astype(half).astype(v.dtype)


@_half_log_softmax.defjvp
def _half_log_softmax_jvp(axis, half, primals, tangents):
    (v,), (t,) = primals, tangents
    y = _half_log_softmax(v, axis, half)
    return y, t - jnp.sum(jnp.exp(y) * t, axis, keepdims=True)


def _softmax_like(fn, op):
    def f(input, dim, dtype=None):
        x = _array(input, "input", op)
        if dtype is not None:
            x = _astype(x, dtype)
        if not _is_float(x.dtype):
            raise _unsupported_dtype(op, x)
        axis = _axis(dim, x.ndim, op)
        g = fn
        if fn is torch_log_softmax and x.dtype in _LOW_PRECISION:
            g = functools.partial(_half_log_softmax, half=x.dtype)
        if x.ndim == 0:  # torch: one element along the implicit axis
            return _elementwise(lambda v: g(v[None], 0)[0], x, result=x.dtype)
        return _elementwise(lambda v: g(v, axis), x, result=x.dtype)
    return f


_register(*_both("softmax"))(_softmax_like(torch_softmax, "softmax"))
_register(*_both("log_softmax"))(_softmax_like(torch_log_softmax, "log_softmax"))


# ---- Python operators (fx: ``x + y`` is operator.add; ``2 - x`` is operator.sub(2, x))

def _operator_truediv(a, b):
    if not _is_array(a):  # torch's __rtruediv__: reciprocal(b) * a, rounded twice
        return _mul(_reciprocal(b), a)
    return _true_divide(a, b)


_OPERATORS = {
    "add": _add, "sub": _sub, "mul": _mul, "truediv": _operator_truediv,
    "floordiv": _floor_divide, "mod": _remainder, "pow": _pow,
    "eq": _compare(jnp.equal), "ne": _compare(jnp.not_equal), "lt": _compare(jnp.less),
    "le": _compare(jnp.less_equal), "gt": _compare(jnp.greater),
    "ge": _compare(jnp.greater_equal),
    "and_": _bitwise_and, "or_": _bitwise_or, "xor": _bitwise_xor,
    "neg": _neg, "pos": lambda x: x, "abs": _abs, "invert": _bitwise_not,
}
for _name, _fn in _OPERATORS.items():
    _register(f"operator.{_name}")(_python_or(getattr(operator, _name), _fn))


# ------------------------------------------------------------------ reductions

def _int_sum_dtype(x, dtype):
    """torch sums and multiplies bool and integer tensors in int64 unless told otherwise."""
    if dtype is not None:
        return _canon(dtype)
    return _INT64() if not (_is_float(x.dtype) or _is_complex(x.dtype)) else x.dtype


@_register(*_both("sum"))
def _sum(input, dim=None, keepdim=False, *, dtype=None):
    x = _array(input, "input", "sum")
    dtype = _int_sum_dtype(x, dtype)
    x, axis = _reduce_input(x.astype(dtype), dim, "sum")
    return _elementwise(lambda v: jnp.sum(v, axis=axis, keepdims=keepdim), x, result=dtype)


@_register(*_both("mean"))
def _mean(input, dim=None, keepdim=False, *, dtype=None):
    x = _array(input, "input", "mean")
    if dtype is not None:
        x = _astype(x, dtype)
    if not (_is_float(x.dtype) or _is_complex(x.dtype)):
        raise _unsupported_dtype("mean", x)
    x, axis = _reduce_input(x, dim, "mean")
    return _elementwise(lambda v: jnp.mean(v, axis=axis, keepdims=keepdim), x, result=x.dtype)


@_register(*_both("prod"))
def _prod(input, dim=None, keepdim=False, *, dtype=None):
    x = _array(input, "input", "prod")
    dtype = _int_sum_dtype(x, dtype)
    x, axis = _reduce_input(x.astype(dtype), dim, "prod")
    return _elementwise(lambda v: jnp.prod(v, axis=axis, keepdims=keepdim), x, result=dtype)


@_register(*_both("cumsum"))
def _cumsum(input, dim, *, dtype=None):
    x = _array(input, "input", "cumsum")
    dtype = _int_sum_dtype(x, dtype)
    if x.ndim == 0:
        _axis(dim, 0, "cumsum")
        return x.astype(dtype)
    axis = _axis(dim, x.ndim, "cumsum")
    return _elementwise(lambda v: jnp.cumsum(v, axis=axis), x, result=dtype)


class ValuesIndices(NamedTuple):
    """``max(dim)`` / ``min(dim)``'s result, as torch's ``torch.return_types.max``."""
    values: Any
    indices: Any


def _evenly(reduce):
    """``max()`` / ``min()`` over all elements with torch's ``evenly_distribute_backward``:
    the gradient is split among the elements equal to the result, or among the NaNs when
    the result is NaN (JAX's max gives NaN's gradient to none)."""
    f = jax.custom_jvp(lambda x: reduce(x))

    @f.defjvp
    def _jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        y = reduce(x)
        mask = jnp.where(jnp.isnan(y), jnp.isnan(x), x == y)
        count = jnp.sum(mask).astype(y.dtype)
        return y, jnp.sum(jnp.where(mask, t, jnp.zeros_like(t))) / count

    return f


_MAX_ALL, _MIN_ALL = _evenly(jnp.max), _evenly(jnp.min)


def _extremum(arg_fn, all_fn, binary, op):
    def f(input, dim=None, keepdim=False, *, other=None):
        x = _array(input, "input", op)
        if _is_array(dim) or other is not None:  # max(input, other): the elementwise form
            return binary(x, other if other is not None else dim)
        if dim is None:
            return all_fn(x)
        axis = _axis(dim, x.ndim, op)
        v = x if x.ndim else x[None]
        # torch's gradient goes to the returned index only: read the value at the index
        # (the first extremum; NaN counts as the extremum, as in torch)
        idx = arg_fn(v, axis=axis, keepdims=True)
        values = jnp.take_along_axis(v, idx, axis=axis)
        if not keepdim or x.ndim == 0:
            values, idx = jnp.squeeze(values, axis), jnp.squeeze(idx, axis)
        return ValuesIndices(values, idx)
    return f


_register(*_both("max"))(_extremum(jnp.argmax, _MAX_ALL, _maximum, "max"))
_register(*_both("min"))(_extremum(jnp.argmin, _MIN_ALL, _minimum, "min"))


def _scaled_by_count(reduce):
    """amax/amin with torch's backward ``(grad / count) * mask``: split among the ties
    along the reduced dims (as JAX's), NaN where no entry equals the result (a NaN max:
    g / 0 * 0), which XLA's rewrite of JAX's ``mask * (g / count)`` into a select turns
    into 0 under jit."""
    @functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
    def f(x, axis, keepdim):
        return reduce(x, axis=axis, keepdims=keepdim)

    @f.defjvp
    def _jvp(axis, keepdim, primals, tangents):
        (x,), (t,) = primals, tangents
        y = f(x, axis, keepdim)
        mask = x == f(x, axis, True)
        count = jnp.sum(mask, axis=axis, keepdims=True).astype(x.dtype)
        zero = jnp.zeros_like(t)
        poison = jnp.where(count == 0, jnp.nan, 0).astype(x.dtype)
        ty = (jnp.sum(jnp.where(mask, t, zero), axis=axis, keepdims=True) / count
              + poison * jnp.sum(jnp.where(count == 0, t, zero), axis=axis, keepdims=True))
        return y, ty if keepdim else jnp.squeeze(ty, axis)

    return f


def _amax_like(fn, op):
    g = _scaled_by_count(fn)

    def f(input, dim=(), keepdim=False):
        x, axis = _reduce_input(_array(input, "input", op), dim, op)
        if not _is_float(x.dtype):
            return fn(x, axis=axis, keepdims=keepdim)
        axis = tuple(range(x.ndim)) if axis is None else (
            (axis,) if isinstance(axis, int) else axis)
        return g(x, axis, keepdim)
    return f


_register(*_both("amax"))(_amax_like(jnp.max, "amax"))
_register(*_both("amin"))(_amax_like(jnp.min, "amin"))


def _arg_like(fn, op):
    def f(input, dim=None, keepdim=False):
        x = _array(input, "input", op)
        if dim is None:
            return fn(x, axis=None, keepdims=keepdim)
        if x.ndim == 0:
            _axis(dim, 0, op)
            return jnp.zeros((), _INT64())
        return fn(x, axis=_axis(dim, x.ndim, op), keepdims=keepdim)
    return f


_register(*_both("argmax"))(_arg_like(jnp.argmax, "argmax"))
_register(*_both("argmin"))(_arg_like(jnp.argmin, "argmin"))


def _bool_reduce(fn, op):
    def f(input, dim=None, keepdim=False):
        x, axis = _reduce_input(_array(input, "input", op), dim, op)
        return fn(x, axis=axis, keepdims=keepdim)
    return f


_register(*_both("all"))(_bool_reduce(jnp.all, "all"))
_register(*_both("any"))(_bool_reduce(jnp.any, "any"))


def _correction(unbiased, correction, op):
    if unbiased is not None and correction is not None:
        raise ValueError(f"{op}: give unbiased or correction, not both")
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


def _var_args(input, dim, unbiased, correction, op):
    x = _array(input, "input", op)
    if not (_is_float(x.dtype) or _is_complex(x.dtype)):
        raise _unsupported_dtype(op, x)
    if isinstance(dim, bool):  # torch.var(x, False): the legacy (input, unbiased) form
        dim, unbiased = None, dim
    x, axis = _reduce_input(x, dim, op)
    return x, axis, _correction(unbiased, correction, op)


@_register(*_both("var"))
def _var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    x, axis, c = _var_args(input, dim, unbiased, correction, "var")
    return _elementwise(lambda v: jnp.var(v, axis=axis, ddof=c, keepdims=keepdim), x,
                        result=x.dtype)


# torch's std backward: grad / (2 std), 0 where std is 0 (JAX: inf * 0 = NaN)
_SQRT_MASKED = with_slope(jnp.sqrt, lambda v: jnp.where(v == 0, jnp.zeros_like(v),
                                                        1 / (2 * jnp.sqrt(v))))


@_register(*_both("std"))
def _std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    x, axis, c = _var_args(input, dim, unbiased, correction, "std")
    return _elementwise(lambda v: _SQRT_MASKED(jnp.var(v, axis=axis, ddof=c, keepdims=keepdim)),
                        x, result=x.dtype)


# ---- logsumexp: torch's value (max shifted out, infinite max not) and backward
# grad * exp(x - result)

@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _logsumexp_fn(x, axis, keepdim):
    m = lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    m = jnp.where(jnp.isinf(m), jnp.zeros_like(m), m)
    y = jnp.log(jnp.sum(jnp.exp(x - m), axis=axis, keepdims=True)) + m
    return y if keepdim else jnp.squeeze(y, axis)


@_logsumexp_fn.defjvp
def _logsumexp_jvp(axis, keepdim, primals, tangents):
    (x,), (t,) = primals, tangents
    y = _logsumexp_fn(x, axis, True)
    ty = jnp.sum(t * jnp.exp(x - y), axis=axis, keepdims=True)
    if not keepdim:
        y, ty = jnp.squeeze(y, axis), jnp.squeeze(ty, axis)
    return y, ty


@_register(*_both("logsumexp"))
def _logsumexp(input, dim=None, keepdim=False):
    x = _array(input, "input", "logsumexp")
    if not _is_float(x.dtype):  # torch: integers are summed in the default dtype
        x = x.astype(_DEFAULT_FLOAT)
    x, axis = _reduce_input(x, dim, "logsumexp")
    if axis is None:
        axis = tuple(range(x.ndim))
    axis = (axis,) if isinstance(axis, int) else axis
    # torch composes it of tensor ops, each rounded to x's dtype: no float32 opmath here
    return _logsumexp_fn(x, axis, keepdim)


# ---- vector norms with torch's backward (norm_backward): 0 where the norm is 0

def _norm_value(x, p, axis, keepdim):
    a = jnp.abs(x)
    if p == 2:
        return jnp.sqrt(jnp.sum(a * a, axis=axis, keepdims=keepdim))
    if p == 1:
        return jnp.sum(a, axis=axis, keepdims=keepdim)
    if p == math.inf:
        return jnp.max(a, axis=axis, keepdims=keepdim)
    if p == -math.inf:
        return jnp.min(a, axis=axis, keepdims=keepdim)
    if p == 0:
        return jnp.sum((a != 0).astype(x.dtype), axis=axis, keepdims=keepdim)
    return jnp.sum(a ** p, axis=axis, keepdims=keepdim) ** (1 / p)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def _vector_norm(x, p, axis, keepdim):
    return _norm_value(x, p, axis, keepdim)


@_vector_norm.defjvp
def _vector_norm_jvp(p, axis, keepdim, primals, tangents):
    (x,), (t,) = primals, tangents
    y = _vector_norm(x, p, axis, keepdim)
    n = _vector_norm(x, p, axis, True)  # broadcastable against x
    zero = jnp.zeros_like(x)
    sgn = _sign_value(x)
    if p == 0:
        w = zero
    elif p == 1:
        w = sgn
    elif p == 2:
        w = jnp.where(n == 0, zero, x / n)
    elif math.isinf(p):
        a = jnp.abs(x)
        mask = (a == n) | jnp.isnan(a)
        w = sgn * jnp.where(mask, 1 / jnp.sum(mask, axis=axis, keepdims=True).astype(x.dtype),
                            zero)
    elif p < 1:
        w = sgn * jnp.where(x == 0, zero, jnp.abs(x) ** (p - 1)) * n ** (1 - p)
    elif p < 2:
        w = sgn * jnp.abs(x) ** (p - 1) * jnp.where(n == 0, zero, 1 / n ** (p - 1))
    else:
        w = x * jnp.abs(x) ** (p - 2) * jnp.where(n == 0, zero, 1 / n ** (p - 1))
    return y, jnp.sum(w * t, axis=axis, keepdims=keepdim)


@_register(*_both("norm"))
def _norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    x = _array(input, "input", "norm")
    if dtype is not None:
        if jnp.promote_types(x.dtype, _canon(dtype)) != _canon(dtype):
            raise ValueError(f"norm: dtype={dtype} would narrow the input's {x.dtype}")
        x = _astype(x, dtype)
    if not _is_float(x.dtype):
        raise _unsupported_dtype("norm", x)
    if isinstance(p, str):
        ndims = 1 if dim is None or not isinstance(dim, (tuple, list)) else len(dim)
        if p != "fro" or (dim is not None and ndims > 2):
            raise UnsupportedError(f"norm: p={p!r} (a matrix norm) is not supported; p='fro' "
                                   f"over at most 2 dims and numeric p are")
        p = 2  # torch: 'fro' is the 2-norm of the flattened dims
    p = 2.0 if p is None else float(p)
    x, axis = _reduce_input(x, dim, "norm")
    axis = tuple(range(x.ndim)) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    return _elementwise(lambda v: _vector_norm(v, p, axis, keepdim), x, result=x.dtype)


# ------------------------------------------------------------------ linear algebra

def _matmul_like(fn, op, ranks=None):
    def f(input, other):
        a, b = _array(input, "input", op), _array(other, "other", op)
        if ranks is not None and (a.ndim, b.ndim) != ranks:
            raise ValueError(f"{op}: expects tensors of rank {ranks[0]} and {ranks[1]}, got "
                             f"shapes {tuple(a.shape)} and {tuple(b.shape)}")
        return _elementwise(fn, a, b)  # half precision: float32 products, as torch
    return f


_matmul = _register(*_both("matmul"), "operator.matmul")(_matmul_like(jnp.matmul, "matmul"))
_mm = _register(*_both("mm"))(_matmul_like(jnp.matmul, "mm", (2, 2)))
_bmm = _register(*_both("bmm"))(_matmul_like(jnp.matmul, "bmm", (3, 3)))
_register(*_both("outer", "ger"))(_matmul_like(jnp.outer, "outer", (1, 1)))


def _add_product(product):
    """addmm / baddbmm: ``beta * input + alpha * product(a, b)``."""
    def f(input, a, b, *, beta=1, alpha=1):
        def fn(c, a, b):
            out = product(a, b)
            if alpha != 1:
                out = out * alpha
            if beta == 0:  # torch: input is ignored (its NaNs too)
                return jnp.broadcast_to(out, jnp.broadcast_shapes(out.shape, c.shape))
            return out + (c if beta == 1 else beta * c)
        return _elementwise(fn, input, a, b)
    return f


_register(*_both("addmm"))(_add_product(_mm))
_register(*_both("baddbmm"))(_add_product(_bmm))


@_register("torch.einsum")
def _einsum(equation, *operands):
    if not isinstance(equation, str):
        raise UnsupportedError("einsum: the sublist form (operand, [dims], ...) is not "
                               "supported; pass an equation string")
    if len(operands) == 1 and isinstance(operands[0], (tuple, list)):
        operands = tuple(operands[0])
    return _elementwise(lambda *ops: jnp.einsum(equation.replace(" ", ""), *ops), *operands)


# ------------------------------------------------------------------ factories

def _factory_dtype(dtype, default=_DEFAULT_FLOAT):
    return _canon(default if dtype is None else dtype)


def _sized(fill):
    def f(*size_args, size=None, dtype=None, layout=None, device=None, pin_memory=False,
          requires_grad=False, memory_format=None, names=None):
        shape = _shape_args(size_args if size is None else (size,), "factory")
        return jnp.full(shape, fill, _factory_dtype(dtype))
    return f


_register("torch.zeros", "torch.empty")(_sized(0))  # torch.empty's contents are arbitrary
_register("torch.ones")(_sized(1))


def _fill_dtype(fill_value):
    """torch.full infers the dtype from the value: bool, int64, or the default float."""
    if _is_array(fill_value):
        return fill_value.dtype
    return _scalar_dtype(fill_value)


@_register("torch.full")
def _full(size, fill_value, *, dtype=None, layout=None, device=None, pin_memory=False,
          requires_grad=False, names=None):
    dtype = _factory_dtype(dtype, _fill_dtype(fill_value))
    return jnp.full(_shape_args((size,), "full"), fill_value, dtype)


def _like(fill):
    def f(input, *, dtype=None, layout=None, device=None, pin_memory=False,
          requires_grad=False, memory_format=None):
        return jnp.full(input.shape, fill, _factory_dtype(dtype, input.dtype))
    return f


_register("torch.zeros_like", "torch.empty_like")(_like(0))
_register("torch.ones_like")(_like(1))


@_register("torch.full_like")
def _full_like(input, fill_value, *, dtype=None, layout=None, device=None, pin_memory=False,
               requires_grad=False, memory_format=None):
    return jnp.full(input.shape, fill_value, _factory_dtype(dtype, input.dtype))


def _new_sized(fill):
    def f(self, *size_args, size=None, dtype=None, layout=None, device=None,
          pin_memory=False, requires_grad=False):
        shape = _shape_args(size_args if size is None else (size,), "new")
        return jnp.full(shape, fill, _factory_dtype(dtype, self.dtype))
    return f


_register("Tensor.new_zeros", "Tensor.new_empty")(_new_sized(0))
_register("Tensor.new_ones")(_new_sized(1))


@_register("Tensor.new_full")
def _new_full(self, size, fill_value, *, dtype=None, layout=None, device=None,
              pin_memory=False, requires_grad=False):
    return jnp.full(_shape_args((size,), "new_full"), fill_value,
                    _factory_dtype(dtype, self.dtype))


def _data_dtype(data):
    """torch.tensor's inference: Python floats give the default dtype, ints int64."""
    if _is_array(data):
        return data.dtype
    if isinstance(data, (tuple, list)):
        dtype = None
        for v in data:
            dtype = _promote(dtype, _data_dtype(v))
        return _DEFAULT_FLOAT if dtype is None else dtype  # torch.tensor([]) is float32
    return _scalar_dtype(data)


def _from_data(data, dtype):
    if isinstance(data, (tuple, list)) and builtins.any(
            _is_array(v) for v in jax.tree.leaves(data)):
        return jnp.stack([_from_data(v, dtype) for v in data]) if data else \
            jnp.zeros((0,), dtype)
    return jnp.asarray(data, dtype)


@_register("torch.tensor")
def _tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False):
    return _from_data(data, _factory_dtype(dtype, _data_dtype(data)))


@_register("torch.as_tensor")
def _as_tensor(data, dtype=None, device=None):
    return _from_data(data, _factory_dtype(dtype, _data_dtype(data)))


@_register("Tensor.new_tensor")
def _new_tensor(self, data, *, dtype=None, device=None, requires_grad=False,
                pin_memory=False):
    # torch: the new tensor takes self's dtype unless told otherwise
    return _from_data(data, _factory_dtype(dtype, self.dtype))


@_register("torch.arange")
def _arange(start, end=None, step=1, *, dtype=None, layout=None, device=None,
            pin_memory=False, requires_grad=False):
    if end is None:
        start, end = 0, start
    try:
        values = [v.item() if _is_array(v) else v for v in (start, end, step)]
    except jax.errors.JAXTypeError:
        raise UnsupportedError("arange: a traced start/end/step gives a data-dependent "
                               "shape") from None
    start, end, step = values
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    ints = builtins.all(isinstance(v, (int, np.integer)) for v in values)
    dtype = _factory_dtype(dtype, np.int64 if ints else _DEFAULT_FLOAT)
    if ints:
        n = len(range(start, end, step))
    else:  # torch: ceil((end - start) / step) in double
        n = builtins.max(math.ceil((float(end) - float(start)) / float(step)), 0)
    # torch's CPU kernel: start + step * i in double (float types), then cast
    values = np.float64(start) + np.float64(step) * np.arange(n, dtype=np.float64) \
        if not ints else start + step * np.arange(n, dtype=np.int64)
    return jnp.asarray(values.astype(dtype) if ints or _is_float(dtype) else
                       np.trunc(values).astype(dtype))


@_register("torch.linspace")
def _linspace(start, end, steps, *, dtype=None, layout=None, device=None, pin_memory=False,
              requires_grad=False):
    steps = _static_int(steps, "steps", "linspace")
    if steps < 0:
        raise ValueError(f"linspace: steps must be non-negative, got {steps}")
    dtype = _factory_dtype(dtype)
    if steps == 1:
        return jnp.full((1,), start, dtype)
    # torch's kernel: from start for the first half, from end (backwards) for the second
    i = np.arange(steps, dtype=np.float64)
    step = (float(end) - float(start)) / builtins.max(steps - 1, 1)
    values = np.where(i < steps // 2, start + step * i, end - step * (steps - i - 1))
    return jnp.asarray(values.astype(dtype) if _is_float(dtype) else
                       np.trunc(values).astype(dtype))


@_register("torch.eye")
def _eye(n, m=None, *, dtype=None, layout=None, device=None, pin_memory=False,
         requires_grad=False):
    n = _static_int(n, "n", "eye")
    m = n if m is None else _static_int(m, "m", "eye")
    return jnp.eye(n, m, dtype=_factory_dtype(dtype))


@_register("torch.fill", "Tensor.fill")  # Tensor.fill: x.fill_(v), mapped by the interpreter
def _fill(input, value):
    x = _array(input, "input", "fill")
    return jnp.broadcast_to(_cast(value, x.dtype), x.shape)


@_register("Tensor.zero")  # x.zero_(), which the interpreter maps to "Tensor.zero"
def _zero(self):
    return jnp.zeros_like(self)


del _name, _fn, _dt
