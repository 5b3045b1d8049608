"""Checkpoints as safetensors files, written atomically.

A checkpoint is one ``.safetensors`` file: every array of a pytree (a
:class:`~flax_arch.training.TrainState`: parameters, BatchNorm statistics, optimizer
states) under a ``/``-joined key path such as ``params/G/main/0/kernel`` or
``opt/D/0/mu/main/1/scale``, and string metadata: ``format``, ``step``, ``rng`` (the
sampling key, JSON) and ``config`` (JSON: architecture, constructor arguments, optimizer,
data settings) — see ``docs/training.md``.

Typed PRNG keys (NNX ``RngKey`` variables) are stored as their raw ``uint32`` key data and
re-wrapped on load (the implementation is taken from the template).

Writes are atomic: the bytes go to a temporary file in the destination's directory, are
flushed to disk, and only then ``os.replace`` renames it over the old file, so a run killed
at any point leaves either the old or the new checkpoint, never a torn one.

``safetensors`` is an optional dependency (``pip install 'flax-arch[train]'``); it is
imported when a checkpoint is read or written.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["CheckpointError", "flatten", "unflatten", "save", "load", "read_metadata",
           "atomic_write_bytes", "require_safetensors", "FORMAT"]

FORMAT = "flax-arch/train-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint does not fit the state it is restored into; lists every problem."""

    def __init__(self, path, missing=(), unexpected=(), mismatched=(), extra=()):
        self.missing, self.unexpected, self.mismatched = list(missing), list(unexpected), \
            list(mismatched)
        lines = [f"checkpoint {path} does not match the training state:"]
        if self.missing:
            lines.append(f"  missing arrays ({len(self.missing)}): {', '.join(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected arrays ({len(self.unexpected)}): "
                         f"{', '.join(self.unexpected)}")
        for key, want, got in self.mismatched:
            lines.append(f"  {key}: expected {want}, the checkpoint has {got}")
        lines.extend(f"  {e}" for e in extra)
        super().__init__("\n".join(lines))


def require_safetensors():
    """Import ``safetensors.numpy`` or explain how to install it."""
    try:
        import safetensors.numpy as stn
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ImportError("checkpoints are safetensors files, and the 'safetensors' package "
                          "is not installed: pip install 'flax-arch[train]' (or pip install "
                          "safetensors)") from e
    return stn


def _c_order(a) -> np.ndarray:
    """C-contiguous numpy copy/view keeping 0-d arrays 0-d (``np.ascontiguousarray``
    would make them 1-d)."""
    return np.require(np.asarray(a), requirements="C")


def _key_part(entry) -> str | None:
    if isinstance(entry, jax.tree_util.DictKey):
        return str(entry.key)
    if isinstance(entry, jax.tree_util.SequenceKey):
        return str(entry.idx)
    if isinstance(entry, jax.tree_util.GetAttrKey):
        return None if entry.name in ("value", "raw_value", "_raw_value") else entry.name
    if isinstance(entry, jax.tree_util.FlattenedIndexKey):
        return str(entry.key)
    return str(entry)


def _path_key(path) -> str:
    return "/".join(p for p in map(_key_part, path) if p is not None)


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def flatten(tree) -> dict[str, np.ndarray]:
    """``{path: numpy array}`` for every leaf of ``tree`` (typed keys as key data)."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        key = _path_key(path)
        if key in out:
            raise ValueError(f"two leaves flatten to the same checkpoint key {key!r}")
        arr = jax.random.key_data(leaf) if _is_key(leaf) else leaf
        out[key] = _c_order(np.asarray(arr))
    return out


def unflatten(template, arrays: Mapping[str, np.ndarray], *, path="checkpoint"):
    """A pytree shaped like ``template`` with its leaves taken from ``arrays``.

    Shapes and dtypes must match the template exactly; every missing, unexpected or
    misshapen array is reported at once in a :class:`CheckpointError`.
    """
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    keys = [_path_key(p) for p, _ in leaves]
    missing = [k for k in keys if k not in arrays]
    unexpected = [k for k in arrays if k not in set(keys)]
    mismatched, new = [], []
    for key, (_, leaf) in zip(keys, leaves):
        if key not in arrays:
            continue
        arr = arrays[key]
        want = jax.random.key_data(leaf) if _is_key(leaf) else np.asarray(leaf)
        if arr.shape != want.shape or arr.dtype != want.dtype:
            mismatched.append((key, f"{want.dtype}{list(want.shape)}",
                               f"{arr.dtype}{list(arr.shape)}"))
            continue
        value = jnp.asarray(arr)
        if _is_key(leaf):
            value = jax.random.wrap_key_data(value, impl=jax.random.key_impl(leaf))
        new.append(value)
    if missing or unexpected or mismatched:
        raise CheckpointError(path, missing, unexpected, mismatched)
    return jax.tree_util.tree_unflatten(treedef, new)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync,
    ``os.replace``). On any failure the temp file is removed and ``path`` is untouched."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                               suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; give a normal file's mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable (best effort; not possible on every platform)
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # pragma: no cover
        pass


def save(path, tree, *, step: int, config: Mapping[str, Any] | None = None,
         rng=None, extra_metadata: Mapping[str, str] | None = None) -> None:
    """Write ``tree``'s arrays and the metadata to ``path`` (atomically)."""
    stn = require_safetensors()
    arrays = flatten(tree)
    meta = {"format": FORMAT, "step": str(int(step)),
            "config": json.dumps(dict(config or {}), sort_keys=True)}
    if rng is not None:
        data = jax.random.key_data(rng) if _is_key(rng) else np.asarray(rng)
        meta["rng"] = json.dumps({"key_data": np.asarray(data).tolist(),
                                  "dtype": str(np.asarray(data).dtype),
                                  "typed": bool(_is_key(rng))})
    meta.update(extra_metadata or {})
    atomic_write_bytes(path, stn.save(arrays, metadata=meta))


def read_metadata(path) -> dict[str, str]:
    """The string metadata of a safetensors file (without loading the arrays)."""
    require_safetensors()
    from safetensors import safe_open
    with safe_open(os.fspath(path), framework="numpy") as f:
        return dict(f.metadata() or {})


def load(path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(arrays, info)``: the arrays by key, and the metadata decoded — ``step`` (int),
    ``config`` (dict), ``rng`` (the key as saved, or ``None``), ``format`` (str)."""
    stn = require_safetensors()
    path = os.fspath(path)
    meta = read_metadata(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(path, extra=[f"not a flax-arch training checkpoint (format "
                                           f"{meta.get('format')!r}, expected {FORMAT!r})"])
    arrays = stn.load_file(path)
    info: dict[str, Any] = {"format": meta["format"], "step": int(meta["step"]),
                            "config": json.loads(meta.get("config", "{}")), "rng": None}
    if "rng" in meta:
        r = json.loads(meta["rng"])
        data = jnp.asarray(np.asarray(r["key_data"], dtype=r["dtype"]))
        info["rng"] = jax.random.wrap_key_data(data) if r.get("typed") else data
    info["metadata"] = meta
    return arrays, info
