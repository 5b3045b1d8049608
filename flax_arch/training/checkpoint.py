"""Training checkpoints: orbax-checkpoint directories, written atomically.

``flax-arch train`` keeps its checkpoint in a directory (``OUT/checkpoint/``) holding one
orbax checkpoint per save, ``save_<n>/`` (``n`` counts the saves; the highest complete one
is the checkpoint). Each is an orbax composite checkpoint of two items:

* ``state``: every array of a pytree (a :class:`~flax_arch.training.TrainState`:
  parameters, BatchNorm statistics, RNG state, optimizer states, step counter) as a
  nested dict of numpy arrays whose ``/``-joined key paths are the array names, e.g.
  ``state/params/G/main/0/kernel`` or ``state/opt/D/0/mu/main/1/scale``;
* ``metadata`` (JSON): ``format`` (:data:`FORMAT`), ``step``, ``rng`` (the sampling key),
  ``config`` (the settings that fix the trajectory), ``models`` (per model the state holds:
  its registry ``arch`` name and constructor ``kwargs``, enough to rebuild it without
  knowing how the training command builds its models) and ``flax_arch_version``.

Typed PRNG keys (NNX ``RngKey`` variables) are stored as their raw ``uint32`` key data and
re-wrapped on restore (the implementation is taken from the template).

**Restoring** validates before it reads: the stored shapes and dtypes (orbax metadata, no
array read) are checked against the target state by
:func:`flax_arch.interop.load_arrays`, which lists every missing, unexpected, misshapen
and wrong-dtype array at once in a :class:`CheckpointError` (a
:class:`~flax_arch.interop.StateDictError`); only if everything fits is the ``state`` item
restored with orbax into the abstract target (shapes, dtypes, device) and the keys
re-wrapped. Nothing is changed on failure.

**Atomicity.** orbax writes a save to ``save_<n>.orbax-checkpoint-tmp`` and renames the
directory to ``save_<n>`` once every file is written (and a ``commit_success.txt`` marks
it). Only after that rename are the older saves (and temporary directories a killed
write left behind) removed. A run killed at any point therefore leaves the previous save,
the new one, or both (the newer is used) — never a torn checkpoint. The writes are
synchronous: :func:`save` returns with the checkpoint on disk (the new files are also
fsync'ed, best effort, before the old save is removed).

**Legacy files.** A ``checkpoint.safetensors`` file written by earlier versions (format
:data:`LEGACY_FORMAT`, the same array names, metadata as strings) is still read: by
:func:`restore`, :func:`load`, :func:`read_info` and ``flax-arch convert``; its ``models``
are derived from its ``config`` by the training command's own
:func:`flax_arch.training.cli.model_specs`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..interop.state_dict import Slot, StateDictError, c_order, load_arrays

__all__ = ["CheckpointError", "FORMAT", "LEGACY_FORMAT", "flatten", "unflatten", "save",
           "restore", "load", "read_info", "latest", "model_arrays", "atomic_write_bytes",
           "require_safetensors", "read_metadata"]

FORMAT = "flax-arch/train-checkpoint/2"
LEGACY_FORMAT = "flax-arch/train-checkpoint/1"
_SAVE = re.compile(r"^save_(\d+)$")
_TMP_MARK = ".orbax-checkpoint-tmp"


class CheckpointError(StateDictError):
    """A training checkpoint cannot be read, or does not fit the state it is restored
    into; ``missing``, ``unexpected`` and ``mismatched`` list every problem."""

    @classmethod
    def about(cls, path, *problems: str) -> "CheckpointError":
        """An error about the checkpoint as a whole (unreadable, wrong format)."""
        err = cls(extra=problems, source=f"checkpoint {path}", target="a training state")
        err.args = (f"checkpoint {path}: {'; '.join(problems)}",)
        return err


# ---------------------------------------------------------------------------- pytrees


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


def _leaves(tree) -> list[tuple[str, Any]]:
    out, seen = [], set()
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        key = _path_key(path)
        if key in seen:
            raise ValueError(f"two leaves flatten to the same checkpoint key {key!r}")
        seen.add(key)
        out.append((key, leaf))
    return out


def flatten(tree) -> dict[str, np.ndarray]:
    """``{path: numpy array}`` for every leaf of ``tree`` (typed keys as key data)."""
    return {k: c_order(np.asarray(jax.random.key_data(leaf) if _is_key(leaf) else leaf))
            for k, leaf in _leaves(tree)}


def _slots(template) -> tuple[list[Slot], Any]:
    """One exact-dtype :class:`Slot` per leaf of ``template`` (typed keys: their key
    data, re-wrapped with the template's implementation), and the tree definition."""
    leaves = _leaves(template)
    slots = []
    for key, leaf in leaves:
        if _is_key(leaf):
            data = jax.random.key_data(leaf)
            impl = jax.random.key_impl(leaf)
            slots.append(Slot(key, tuple(data.shape), data.dtype, exact_dtype=True,
                              convert=lambda a, impl=impl: jax.random.wrap_key_data(
                                  jnp.asarray(a), impl=impl)))
        else:
            slots.append(Slot(key, tuple(np.shape(leaf)), np.dtype(leaf.dtype),
                              exact_dtype=True))
    return slots, jax.tree_util.tree_structure(template)


def unflatten(template, arrays: Mapping[str, Any], *, path="checkpoint"):
    """A pytree shaped like ``template`` with its leaves taken from ``arrays``
    (``{path: array}``, as :func:`flatten` gives).

    Shapes and dtypes must match the template exactly; every missing, unexpected,
    misshapen or wrong-dtype array is reported at once in a :class:`CheckpointError`
    (through :func:`flax_arch.interop.load_arrays`, which reads ``arrays`` only once all
    fit).
    """
    slots, treedef = _slots(template)
    loaded = load_arrays(slots, arrays, source=f"checkpoint {path}",
                         target="the training state", layout=None, error=CheckpointError)
    return jax.tree_util.tree_unflatten(treedef, [loaded.values[s.key] for s in slots])


def _nest(flat: Mapping[str, Any]) -> dict:
    """``{"a/b/c": x}`` → ``{"a": {"b": {"c": x}}}`` (what orbax stores)."""
    root: dict = {}
    for key, value in flat.items():
        *parents, last = key.split("/")
        node = root
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"checkpoint key {key!r} nests under an array")
        if last in node:
            raise ValueError(f"checkpoint key {key!r} is also a prefix of another key")
        node[last] = value
    return root


def _unnest(tree, prefix="") -> dict:
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_unnest(v, key + "/"))
        else:
            out[key] = v
    return out


# ---------------------------------------------------------------------------- orbax


def _orbax():
    import orbax.checkpoint as ocp
    return ocp


@contextlib.contextmanager
def _checkpointer():
    """A synchronous orbax checkpointer of the two items. Their handlers are registered
    up front: a checkpointer that only meets them in a saved directory logs that it
    "could not restore" them, and ``metadata()`` then knows nothing of the arrays."""
    ocp = _orbax()
    registry = ocp.DefaultCheckpointHandlerRegistry()
    state, meta = ocp.StandardCheckpointHandler(), ocp.JsonCheckpointHandler()
    for args in (ocp.args.StandardSave, ocp.args.StandardRestore):
        registry.add("state", args, state)
    for args in (ocp.args.JsonSave, ocp.args.JsonRestore):
        registry.add("metadata", args, meta)
    ckptr = ocp.Checkpointer(ocp.CompositeCheckpointHandler(handler_registry=registry))
    try:
        yield ckptr
    finally:
        ckptr.close()


def _saves(directory: str) -> list[tuple[int, str]]:
    """``[(n, path)]`` of the complete saves in a checkpoint directory, oldest first."""
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for name in names:
        m = _SAVE.match(name)
        full = os.path.join(directory, name)
        if m and os.path.isdir(full):
            out.append((int(m.group(1)), full))
    return sorted(out)


def _is_orbax_checkpoint(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "metadata")) and \
        os.path.isdir(os.path.join(path, "state"))


def latest(path) -> str | None:
    """The checkpoint ``path`` refers to, or ``None`` if there is none (yet): a legacy
    ``.safetensors`` file, one orbax save (``save_<n>/``), or the newest complete save in
    a checkpoint directory."""
    path = os.fspath(path)
    if os.path.isfile(path):
        return path
    if _is_orbax_checkpoint(path):
        return path
    saves = _saves(path)
    return saves[-1][1] if saves else None


def _fsync_tree(root: str) -> None:
    """Best effort: flush every file and directory under ``root`` to disk."""
    for dirpath, _, files in os.walk(root):
        for name in [*files, "."]:
            try:
                fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            except OSError:  # pragma: no cover
                continue
            try:
                os.fsync(fd)
            except OSError:  # pragma: no cover - not possible on every platform
                pass
            finally:
                os.close(fd)


def save(directory, tree, *, step: int, config: Mapping[str, Any] | None = None,
         rng=None, models: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """Write ``tree``'s arrays and the metadata as a new save in ``directory``
    (atomically; see the module docs), remove the older saves, and return the new
    save's path.

    ``models``: ``{name: {"arch": registry name, "kwargs": {...}}}`` for each model the
    state holds (``state/params/<name>/...``), so that it can be rebuilt from the file.
    """
    from .. import __version__
    directory = os.fspath(directory)
    if os.path.isfile(directory):
        raise CheckpointError.about(directory, "is a file; a checkpoint is a directory")
    os.makedirs(directory, exist_ok=True)
    meta = {"format": FORMAT, "step": int(step), "config": dict(config or {}),
            "models": {k: {"arch": v["arch"], "kwargs": dict(v.get("kwargs") or {})}
                       for k, v in (models or {}).items()},
            "flax_arch_version": __version__, "rng": None}
    if rng is not None:
        data = np.asarray(jax.random.key_data(rng) if _is_key(rng) else rng)
        meta["rng"] = {"key_data": data.tolist(), "dtype": str(data.dtype),
                       "typed": bool(_is_key(rng))}
    state = _nest(flatten(tree))
    for name in os.listdir(directory):  # temporaries of killed writes: never a checkpoint
        if _TMP_MARK in name:
            _remove(os.path.join(directory, name))
    saves = _saves(directory)
    target = os.path.join(directory, f"save_{(saves[-1][0] + 1) if saves else 1:06d}")
    ocp = _orbax()
    with _checkpointer() as ckptr:
        ckptr.save(os.path.abspath(target),  # orbax needs absolute paths
                   args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                           metadata=ocp.args.JsonSave(meta)))
    _fsync_tree(target)
    for _, old in saves:  # only now that the new save is complete
        _remove(old)
    return target


def _remove(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


class _StoredArray:
    """A stored array's shape and dtype; reading it (``np.asarray``) restores the whole
    ``state`` item once, with orbax, into the abstract target."""

    def __init__(self, store: "_OrbaxArrays", key: str, shape, dtype):
        self._store, self._key = store, key
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)

    def __array__(self, dtype=None, copy=None):
        arr = np.asarray(self._store.read()[self._key], dtype=dtype)
        return np.array(arr, copy=True) if copy else arr


class _OrbaxArrays(Mapping):
    """``{key: array}`` of an orbax save, read lazily (see :class:`_StoredArray`)."""

    def __init__(self, path: str, specs: Mapping[str, tuple], target=None):
        self._path, self._target, self._values = path, target, None
        self._items = {k: _StoredArray(self, k, *spec) for k, spec in specs.items()}

    def __getitem__(self, key):
        return self._items[key]

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)

    def read(self) -> dict[str, Any]:
        if self._values is None:
            ocp = _orbax()
            device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
            target = self._target if self._target is not None else \
                {k: (v.shape, v.dtype) for k, v in self._items.items()}
            abstract = _nest({k: jax.ShapeDtypeStruct(shape, dtype, sharding=device)
                              for k, (shape, dtype) in target.items()})
            with _checkpointer() as ckptr:
                got = ckptr.restore(os.path.abspath(self._path), args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract)))
            self._values = _unnest(got["state"])
        return self._values


def _orbax_specs(path: str) -> dict[str, tuple]:
    with _checkpointer() as ckptr:
        meta = ckptr.metadata(os.path.abspath(path)).item_metadata["state"]
    tree = getattr(meta, "tree", meta)
    return {k: (tuple(v.shape), v.dtype) for k, v in _unnest(tree).items()}


def _decode_rng(r):
    if r is None:
        return None
    data = jnp.asarray(np.asarray(r["key_data"], dtype=r["dtype"]))
    return jax.random.wrap_key_data(data) if r.get("typed") else data


def _read_legacy(path: str) -> dict[str, Any]:
    meta = read_metadata(path)
    if meta.get("format") != LEGACY_FORMAT:
        raise CheckpointError.about(path, f"not a flax-arch training checkpoint (format "
                                          f"{meta.get('format')!r})")
    info: dict[str, Any] = {"format": meta["format"], "step": int(meta["step"]),
                            "config": json.loads(meta.get("config", "{}")), "rng": None}
    if "rng" in meta:
        info["rng"] = _decode_rng(json.loads(meta["rng"]))
    from .cli import model_specs  # legacy files did not record their models
    try:
        info["models"] = model_specs(info["config"].get("model"), info["config"])
    except (KeyError, ValueError):
        info["models"] = {}
    info["metadata"] = meta
    return info


def read_info(path) -> dict[str, Any]:
    """The decoded metadata of a checkpoint, without reading its arrays: ``format``,
    ``step`` (int), ``config`` (dict), ``rng`` (the key as saved, or ``None``),
    ``models`` (``{name: {"arch", "kwargs"}}``) and ``path`` (the save it was read
    from)."""
    path = os.fspath(path)
    found = latest(path)
    if found is None:
        raise CheckpointError.about(path, "no checkpoint there (no complete save_<n>/, "
                                          "and not a .safetensors file)")
    if os.path.isfile(found):
        try:
            info = _read_legacy(found)
        except CheckpointError:
            raise
        except Exception as e:
            raise CheckpointError.about(found, f"cannot read it: {type(e).__name__}: {e}") \
                from e
    else:
        ocp = _orbax()
        try:
            with _checkpointer() as ckptr:
                meta = ckptr.restore(os.path.abspath(found), args=ocp.args.Composite(
                    metadata=ocp.args.JsonRestore()))["metadata"]
        except Exception as e:
            raise CheckpointError.about(found, f"cannot read its metadata: "
                                               f"{type(e).__name__}: {e}") from e
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            fmt = meta.get("format") if isinstance(meta, dict) else None
            raise CheckpointError.about(found, f"not a flax-arch training checkpoint "
                                               f"(format {fmt!r}, expected {FORMAT!r})")
        info = {"format": meta["format"], "step": int(meta["step"]),
                "config": dict(meta.get("config") or {}), "rng": _decode_rng(meta.get("rng")),
                "models": dict(meta.get("models") or {}), "metadata": meta}
    info["path"] = found
    return info


def _arrays(info, target=None) -> Mapping[str, Any]:
    """The arrays of the checkpoint ``info`` describes: numpy arrays (legacy) or lazily
    read orbax arrays, restored into ``target`` (``{key: (shape, dtype)}``) if given."""
    path = info["path"]
    if os.path.isfile(path):
        return dict(require_safetensors().load_file(path))
    return _OrbaxArrays(path, _orbax_specs(path), target)


def restore(path, template) -> tuple[Any, dict[str, Any]]:
    """``(tree, info)``: ``template``'s structure filled from the checkpoint at ``path``
    (a checkpoint directory, one save, or a legacy ``.safetensors`` file), and its
    :func:`read_info`.

    Every missing, unexpected, misshapen or wrong-dtype array is reported at once in a
    :class:`CheckpointError` before any array is read; ``template`` is never modified.
    """
    info = read_info(path)
    slots, treedef = _slots(template)
    arrays = _arrays(info, {s.key: (s.shape, s.dtype) for s in slots})
    loaded = load_arrays(slots, arrays, source=f"checkpoint {info['path']}",
                         target="the training state", layout=None, error=CheckpointError)
    return jax.tree_util.tree_unflatten(treedef, [loaded.values[s.key] for s in slots]), info


def load(path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(arrays, info)``: every array by key (numpy), and :func:`read_info`."""
    info = read_info(path)
    arrays = _arrays(info)
    return {k: c_order(np.asarray(arrays[k])) for k in arrays}, info


def model_arrays(path, model: str | None = None):
    """``(name, spec, arrays)`` for one model of a training checkpoint: its name in the
    state, ``spec = {"arch", "kwargs"}`` as recorded, and ``{nnx path: array}`` of its
    parameters and other variables (``state/params/<name>/``, ``state/rest/<name>/``).
    ``model`` may be omitted when the checkpoint holds one model."""
    info = read_info(path)
    models = info["models"]
    if not models:
        raise CheckpointError.about(info["path"], "it does not record its models")
    if model is None:
        if len(models) > 1:
            raise CheckpointError.about(info["path"], f"it holds several models "
                                                      f"({', '.join(models)}); choose one")
        model = next(iter(models))
    if model not in models:
        raise CheckpointError.about(info["path"], f"it has no model {model!r}; it holds "
                                                  f"{', '.join(models)}")
    arrays = _arrays(info)
    out = {}
    for part in ("params", "rest"):
        prefix = f"state/{part}/{model}/"
        out.update({k[len(prefix):]: arrays[k] for k in arrays if k.startswith(prefix)})
    return model, dict(models[model]), out


# ---------------------------------------------------------------------------- files


def require_safetensors():
    """Import ``safetensors.numpy`` or explain how to install it."""
    from .._optional import require
    return require("safetensors.numpy", "this needs the 'safetensors' package, which is not "
                   "installed: pip install 'flax-arch[train]' (or pip install safetensors)")


def read_metadata(path) -> dict[str, str]:
    """The string metadata of a safetensors file (without loading the arrays)."""
    require_safetensors()
    from safetensors import safe_open
    with safe_open(os.fspath(path), framework="numpy") as f:
        return dict(f.metadata() or {})


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
