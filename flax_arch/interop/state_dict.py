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

from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = ["load_torch_state_dict", "to_torch_state_dict", "torch_keys", "LAYOUTS",
           "StateDictError", "LoadResult"]


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
    """A state_dict does not fit a module; ``missing``, ``unexpected`` and ``mismatched``
    list every problem (mismatched: ``(key, expected shape, got shape)``)."""

    def __init__(self, missing, unexpected, mismatched, extra=()):
        self.missing, self.unexpected, self.mismatched = list(missing), list(unexpected), \
            list(mismatched)
        lines = ["state_dict does not match the module; nothing was loaded:"]
        if self.missing:
            lines.append(f"  missing keys ({len(self.missing)}): {', '.join(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected keys ({len(self.unexpected)}): "
                         f"{', '.join(self.unexpected)}")
        for key, want, got in self.mismatched:
            lines.append(f"  shape mismatch for {key}: the module expects {want} "
                         f"(torch layout), the state_dict has {got}")
        lines.extend(f"  {e}" for e in extra)
        super().__init__("\n".join(lines))


class LoadResult(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


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
        return np.array(v.detach().cpu().numpy(), copy=True)
    return np.array(v, copy=True)


def load_torch_state_dict(module: nnx.Module, state_dict: Mapping[str, Any], *,
                          strict: bool = True) -> LoadResult:
    """Load a torch ``state_dict`` (torch tensors or numpy arrays) into ``module`` in place.

    Arrays keep their dtype: float64 weights give a float64 model (JAX needs
    ``jax_enable_x64`` for that; without it this raises rather than silently downcasting).
    Integer buffers (``num_batches_tracked``) take the variable's integer dtype.

    Every problem — missing, unexpected and misshapen keys — is reported at once in a
    :class:`StateDictError`, and the module is left unchanged. With ``strict=False``
    missing and unexpected keys are returned instead (shape mismatches still raise),
    like torch's ``load_state_dict``.
    """
    entries = _entries(module)
    by_key = {e.key: e for e in entries}
    missing = [k for k in by_key if k not in state_dict]
    unexpected = [k for k in state_dict if k not in by_key]
    mismatched, extra, updates = [], [], []
    for key, entry in by_key.items():
        if key not in state_dict:
            continue
        arr = _to_numpy(state_dict[key])
        want = tuple(entry.to_torch(np.empty(entry.variable.get_value().shape, np.int8)).shape)
        if tuple(arr.shape) != want:
            mismatched.append((key, want, tuple(arr.shape)))
            continue
        cur = entry.variable.get_value()
        if jnp.issubdtype(cur.dtype, jnp.integer):
            value = jnp.asarray(arr.astype(np.dtype(cur.dtype)))
        elif not np.issubdtype(arr.dtype, np.floating):
            extra.append(f"dtype mismatch for {key}: expected floating point, got {arr.dtype}")
            continue
        else:
            if arr.dtype == np.float64 and not jax.config.jax_enable_x64:
                extra.append(f"{key} is float64 but jax_enable_x64 is off; enable it "
                             f"(jax.config.update('jax_enable_x64', True)) or cast to float32")
                continue
            value = jnp.asarray(entry.to_flax(arr))
        updates.append((entry.variable, value))
    if mismatched or extra or (strict and (missing or unexpected)):
        raise StateDictError(missing if strict else [], unexpected if strict else [],
                             mismatched, extra)
    for var, value in updates:  # all checks passed: now mutate
        var.set_value(value)
    return LoadResult(missing, unexpected)


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
