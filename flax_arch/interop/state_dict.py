"""Torch ``state_dict`` ↔ NNX state, generically.

Structure comes from attribute paths: the NNX path ``features/0/kernel`` is the torch key
``features.0.weight``. The leaf name and the array layout come from rules:

1. a variable tagged with ``torch_name`` / ``torch_layout`` metadata (every layer in
   :mod:`flax_arch.nn` tags its variables, and a user's own layer can do the same);
2. otherwise, rules per stock NNX layer type (``nnx.Linear``, ``nnx.Conv``, ``nnx.Embed``,
   ``nnx.BatchNorm``, ``nnx.LayerNorm``) when a module is given;
3. otherwise the variable's own name, unchanged (a raw ``nnx.Param`` mirrors a raw
   ``nn.Parameter`` of the same name).

``nnx.Sequential``'s ``layers`` list is transparent (torch's ``nn.Sequential`` has no such
level) when a module is given; :class:`flax_arch.nn.Sequential` needs no such rule.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .tensors import is_float_dtype, tensor_to_numpy

__all__ = ["load_torch_state_dict", "to_torch_state_dict", "torch_keys", "LAYOUTS",
           "StateDictError", "LoadResult", "Slot", "Loaded", "load_arrays", "c_order"]


def _conv_to_flax(w):  # torch (O, I/g, *k) → flax (*k, I/g, O)
    return np.transpose(w, (*range(2, w.ndim), 1, 0))


def _conv_to_torch(k):  # flax (*k, I/g, O) → torch (O, I/g, *k)
    n = k.ndim - 2
    return np.transpose(k, (n + 1, n, *range(n)))


def _convt_to_flax(w):  # torch (I, O/g, *k) → flax (*k, I, O/g)
    return np.transpose(w, (*range(2, w.ndim), 0, 1))


def _convt_to_torch(k):  # flax (*k, I, O/g) → torch (I, O/g, *k)
    n = k.ndim - 2
    return np.transpose(k, (n, n + 1, *range(n)))


def _identity(a):
    return a


#: torch_layout name → (torch array → flax array, flax array → torch array)
LAYOUTS: dict[str | None, tuple[Callable, Callable]] = {
    None: (_identity, _identity),
    "linear": (np.transpose, np.transpose),
    "conv": (_conv_to_flax, _conv_to_torch),
    "conv_transpose": (_convt_to_flax, _convt_to_torch),
}

# Rules for stock NNX layers, whose variables carry no torch metadata:
# layer type → {flax variable name: (torch name, layout)}
_TYPE_RULES: dict[type, dict[str, tuple[str, str | None]]] = {
    nnx.Linear: {"kernel": ("weight", "linear"), "bias": ("bias", None)},
    nnx.Conv: {"kernel": ("weight", "conv"), "bias": ("bias", None)},
    nnx.Embed: {"embedding": ("weight", None)},
    nnx.BatchNorm: {"scale": ("weight", None), "bias": ("bias", None),
                    "mean": ("running_mean", None), "var": ("running_var", None)},
    nnx.LayerNorm: {"scale": ("weight", None), "bias": ("bias", None)},
}

_TORCH_STATE = (nnx.Param, nnx.BatchStat)


class StateDictError(ValueError):
    """Arrays do not fit what they are loaded into; nothing was loaded.

    ``missing`` and ``unexpected`` list keys; ``mismatched`` lists ``(key, expected, got)``
    for every misshapen array (shape tuples) and every array of the wrong dtype (dtype
    names, or ``"floating point"``); ``problems`` holds any other message, naming its key
    (a float64 array while ``jax_enable_x64`` is off, a value that is not an array, a
    non-string key, an integer that does not fit). The message lists all of them.

    ``source`` names what the arrays come from ("state_dict", a file name), ``target``
    what they were loaded into, and ``layout`` the layout the expected shapes are in.
    """

    def __init__(self, missing=(), unexpected=(), mismatched=(), extra=(), *,
                 source: str = "state_dict", target: str = "the module",
                 layout: str | None = "torch layout"):
        self.missing, self.unexpected, self.mismatched = list(missing), list(unexpected), \
            list(mismatched)
        self.problems = list(extra)
        self.source, self.target = source, target
        lines = [f"{source} does not match {target}; nothing was loaded:"]
        if self.missing:
            lines.append(f"  missing keys ({len(self.missing)}): {', '.join(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected keys ({len(self.unexpected)}): "
                         f"{', '.join(self.unexpected)}")
        for key, want, got in self.mismatched:
            if isinstance(want, tuple):
                where = f" ({layout})" if layout else ""
                lines.append(f"  shape mismatch for {key}: {target} expects {want}{where}, "
                             f"the {source} has {got}")
            else:
                lines.append(f"  dtype mismatch for {key}: expected {want}, got {got}")
        lines.extend(f"  {e}" for e in self.problems)
        super().__init__("\n".join(lines))


class LoadResult(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


# ------------------------------------------------------------------ the one loader


class Slot(NamedTuple):
    """One array that :func:`load_arrays` fills.

    ``key``: its key in the source mapping. ``shape``: the shape the source array must
    have, in the source's layout. ``dtype``: the destination's dtype. ``convert``: the
    checked numpy array → the value to write (a layout change, ``jnp.asarray``,
    re-wrapping PRNG key data, ...). ``target``: an ``nnx.Variable`` that receives the
    value, or ``None`` (the value is only returned). ``exact_dtype``: the source array
    must have exactly ``dtype``; otherwise torch's rules apply: an integer destination
    takes any numeric array (cast to ``dtype``), a floating one any floating array, which
    keeps its precision (float64 only with ``jax_enable_x64``).
    """

    key: str
    shape: tuple
    dtype: Any
    convert: Callable[[np.ndarray], Any] = jnp.asarray
    target: Any = None
    exact_dtype: bool = False


class Loaded(NamedTuple):
    """What :func:`load_arrays` loaded: ``{key: value}`` for every slot filled, and the
    keys missing from / unexpected in the source (empty unless ``strict=False``)."""

    values: dict[str, Any]
    missing: list[str]
    unexpected: list[str]


def _spec(value) -> tuple[tuple, np.dtype]:
    """Shape and dtype of an array without reading it (numpy, JAX, torch, lazily read
    arrays with ``shape``/``dtype``); ``TypeError`` for anything else (a float, a list,
    ``None``) and for a dtype numpy cannot hold (complex32)."""
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch: a view (CPU)
        value = tensor_to_numpy(value)
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        raise TypeError(f"expected a tensor or array, got {type(value).__name__}")
    return tuple(value.shape), np.dtype(value.dtype)


def _narrow_float(dtype: np.dtype) -> bool:
    """float8 (or narrower): a storage format, cast to the variable's dtype on load."""
    return is_float_dtype(dtype) and dtype.itemsize == 1


def load_arrays(slots: Iterable[Slot], arrays: Mapping[str, Any], *, strict: bool = True,
                ignore: Iterable[str] = (), source: str = "state_dict",
                target: str = "the module", layout: str | None = "torch layout",
                error: type[StateDictError] | None = None) -> Loaded:
    """Validate ``arrays`` against ``slots``, then — only if everything fits — convert
    them and write every slot's ``target``. The one routine behind torch state_dicts,
    Flax checkpoints and training checkpoints.

    Every missing key, unexpected key (keys in ``ignore`` are neither), misshapen array
    and array of the wrong dtype is reported at once in a :class:`StateDictError` (or the
    subclass ``error``); then nothing was read past the shapes and dtypes, and nothing was
    written. With ``strict=False`` missing and unexpected keys are returned instead.

    ``arrays`` must be a mapping (else ``TypeError``) with string keys. Its values may be
    numpy/JAX arrays, torch tensors (every float dtype, bfloat16 and float8 included), or
    lazily read arrays exposing ``shape`` and ``dtype``: values are read (``np.array``, a
    private copy) only after every check passed. A non-string key, a value that is not an
    array (a float, a list, ``None``) or has no numpy dtype (complex32) is reported, by
    key, like any other problem. float8 arrays (storage formats) are cast to the slot's
    dtype, as torch's ``load_state_dict`` casts them; integer slots take any integer-valued
    array that fits.
    """
    if not isinstance(arrays, Mapping):
        hint = "; pass its .state_dict()" if hasattr(arrays, "state_dict") else ""
        raise TypeError(f"{source} must be a mapping of names to arrays, got "
                        f"{type(arrays).__name__}{hint}")
    slots = list(slots)
    by_key = {s.key: s for s in slots}
    if len(by_key) != len(slots):
        dup = sorted({s.key for s in slots if sum(t.key == s.key for t in slots) > 1})
        raise ValueError(f"two slots load the same key: {dup}")
    ignore = set(ignore)
    missing = [k for k in by_key if k not in arrays]
    problems = [f"key {k!r} ({type(k).__name__}) is not a string" for k in arrays
                if not isinstance(k, str)]
    unexpected = [k for k in arrays if isinstance(k, str) and k not in by_key
                  and k not in ignore]
    mismatched, present = [], []
    x64 = jax.config.jax_enable_x64
    for slot in slots:
        if slot.key not in arrays:
            continue
        try:
            shape, dtype = _spec(arrays[slot.key])
        except TypeError as e:
            problems.append(f"{slot.key}: {e}")
            continue
        want = np.dtype(slot.dtype)
        if shape != tuple(slot.shape):
            mismatched.append((slot.key, tuple(slot.shape), shape))
        elif slot.exact_dtype:
            if dtype != want:
                mismatched.append((slot.key, str(want), str(dtype)))
                continue
            present.append(slot)
        elif np.issubdtype(want, np.integer):
            why = _integer_problem(arrays[slot.key], want)  # a counter: read it now (tiny)
            if why:
                problems.append(f"{slot.key}: {why}")
            else:
                present.append(slot)
        elif not is_float_dtype(dtype):
            mismatched.append((slot.key, "floating point", str(dtype)))
        elif dtype == np.float64 and not x64:
            problems.append(f"{slot.key} is float64 but jax_enable_x64 is off; enable it "
                            f"(jax.config.update('jax_enable_x64', True)) or cast to float32")
        else:
            present.append(slot)
    if mismatched or problems or (strict and (missing or unexpected)):
        raise (error or StateDictError)(missing if strict else [], unexpected if strict else [],
                                        mismatched, problems, source=source, target=target,
                                        layout=layout)
    values = {}
    for slot in present:  # every check passed: now read and convert ...
        arr = _to_numpy(arrays[slot.key])
        if not slot.exact_dtype and (np.issubdtype(np.dtype(slot.dtype), np.integer)
                                     or _narrow_float(arr.dtype)):
            arr = arr.astype(np.dtype(slot.dtype))
        values[slot.key] = slot.convert(arr)
    for slot in present:  # ... and only then write
        if slot.target is not None:
            slot.target.set_value(values[slot.key])
    return Loaded(values, missing, unexpected)


def _integer_problem(value, want: np.dtype) -> str | None:
    """Why ``value`` cannot become an integer array of dtype ``want`` exactly (a non-integer,
    or a value outside its range, e.g. num_batches_tracked = 2**40 into int32), or None."""
    arr = _to_numpy(value)
    if not (np.issubdtype(arr.dtype, np.integer) or is_float_dtype(arr.dtype)
            or arr.dtype == np.bool_):
        return f"expected an integer value, got dtype {arr.dtype}"
    if arr.size == 0:
        return None
    if is_float_dtype(arr.dtype):
        a64 = arr.astype(np.float64)
        if not np.all(np.isfinite(a64)) or np.any(a64 != np.round(a64)):
            return f"expected integer values for {want}, got {a64.ravel()[:3].tolist()}"
    info = np.iinfo(want)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < info.min or hi > info.max:
        return (f"value {hi if hi > info.max else lo} does not fit in {want} (the Flax "
                f"variable's dtype)")
    return None


def c_order(a) -> np.ndarray:
    """A C-contiguous numpy array of ``a`` (a view when it already is one) that keeps
    0-d arrays 0-d (``np.ascontiguousarray`` would make them 1-d)."""
    return np.require(np.asarray(a), requirements="C")


class _Entry(NamedTuple):
    key: str
    variable: Any
    to_flax: Callable
    to_torch: Callable


def _rule_for(var, parent, name):
    meta = var.get_metadata() if hasattr(var, "get_metadata") else {}
    if "torch_name" in meta:
        return meta["torch_name"], meta.get("torch_layout")
    for cls, rules in _TYPE_RULES.items():
        if parent is not None and isinstance(parent, cls) and name in rules:
            return rules[name]
    return name, None


def _torch_path(path, root) -> list[str]:
    """NNX path → torch key parts, dropping ``nnx.Sequential``'s ``layers`` level."""
    parts, node = [], root
    for p in path:
        if root is not None and isinstance(node, nnx.Sequential) and p == "layers":
            node = node.layers
            continue
        parts.append(str(p))
        if root is not None:
            node = node[p] if isinstance(p, int) or not hasattr(node, str(p)) else \
                getattr(node, str(p))
    return parts


def _entries(module_or_state, like=None) -> list[_Entry]:
    if isinstance(module_or_state, nnx.Module):
        root, state = module_or_state, nnx.state(module_or_state)
    elif isinstance(module_or_state, nnx.State):
        root, state = like, module_or_state
    else:
        raise TypeError(f"expected an nnx.Module or nnx.State, got "
                        f"{type(module_or_state).__name__}")
    out = []
    for path, var in nnx.to_flat_state(state):
        if not isinstance(var, _TORCH_STATE):  # skip RNG state and other non-torch variables
            continue
        parent = None
        if root is not None:
            parent = root
            for p in path[:-1]:
                parent = parent[p] if isinstance(p, int) else getattr(parent, p)
        name, layout = _rule_for(var, parent, path[-1])
        if layout not in LAYOUTS:
            raise KeyError(f"unknown torch_layout {layout!r} on {'/'.join(map(str, path))}; "
                           f"register it in flax_arch.interop.LAYOUTS")
        key = ".".join(_torch_path(path[:-1], root) + [name])
        to_flax, to_torch = LAYOUTS[layout]
        out.append(_Entry(key, var, to_flax, to_torch))
    keys = [e.key for e in out]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"two variables map to the same torch key: {dup}")
    return out


def torch_keys(module) -> list[str]:
    """The torch state_dict keys ``module`` corresponds to, in traversal order."""
    return [e.key for e in _entries(module)]


def _to_numpy(v) -> np.ndarray:
    """A private copy: ``jnp.asarray`` may alias a (suitably aligned) host buffer, so
    without it a later in-place torch update (an optimizer step, BatchNorm's running
    statistics, Embedding's max_norm renorm) would silently rewrite the loaded arrays."""
    if hasattr(v, "detach"):  # torch.Tensor, without importing torch
        return np.array(tensor_to_numpy(v), copy=True)
    return np.array(v, copy=True)


def _shape_after(fn, shape) -> tuple:
    """The shape ``fn`` (a layout change) gives an array of ``shape``, allocating nothing."""
    return tuple(fn(np.broadcast_to(np.empty((), np.int8), shape)).shape)


def load_torch_state_dict(module: nnx.Module, state_dict: Mapping[str, Any], *,
                          strict: bool = True) -> LoadResult:
    """Load a torch ``state_dict`` (a mapping of names to torch tensors or numpy arrays;
    torch itself takes tensors only) into ``module`` in place.

    Floating arrays keep their dtype: float16/bfloat16/float64 weights give a model of
    that dtype (float64 needs ``jax_enable_x64``; without it this raises rather than
    silently downcasting). float8 weights (every torch float8 type) are storage only: they
    are cast to the variable's dtype, exactly as torch's ``load_state_dict`` casts them.
    Integer buffers (``num_batches_tracked``) take the variable's integer dtype; a value
    that is not an integer or does not fit is an error. Complex and integer weights are
    refused.

    Every problem — missing, unexpected and misshapen keys, wrong dtypes, non-string keys,
    values that are not arrays — is reported at once in a :class:`StateDictError`, and the
    module is left unchanged; a ``state_dict`` that is not a mapping is a ``TypeError``.
    With ``strict=False`` missing and unexpected keys are returned instead (every other
    problem still raises), like torch's ``load_state_dict``.
    """
    slots = []
    for e in _entries(module):
        cur = e.variable.get_value()
        slots.append(Slot(e.key, _shape_after(e.to_torch, cur.shape), cur.dtype,
                          convert=lambda a, f=e.to_flax: jnp.asarray(f(a)), target=e.variable))
    res = load_arrays(slots, state_dict, strict=strict, source="state_dict",
                      target="the module", layout="torch layout")
    return LoadResult(res.missing, res.unexpected)


def to_torch_state_dict(module_or_state, *, like: nnx.Module | None = None
                        ) -> dict[str, np.ndarray]:
    """Torch-keyed, torch-layout numpy arrays from a module or an ``nnx.State``.

    A ``State`` (e.g. gradients from ``nnx.grad``) is converted from its paths and the
    variables' metadata alone; pass ``like=module`` when it comes from a model that uses
    stock NNX layers (whose variables carry no torch metadata) or ``nnx.Sequential``.
    """
    # a fresh, writable, C-contiguous copy: torch.from_numpy / as_tensor warn on the
    # read-only views np.asarray gives of JAX arrays
    return {e.key: np.array(e.to_torch(np.asarray(e.variable.get_value())), order="C")
            for e in _entries(module_or_state, like)}
