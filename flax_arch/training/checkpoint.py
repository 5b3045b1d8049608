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

**Atomicity.** orbax writes a save to ``save_<n>.orbax-checkpoint-tmp-<timestamp>`` and
renames the directory to ``save_<n>`` once every file is written (and a
``commit_success.txt`` marks it). Only after that rename are the older saves removed, each
first renamed to a temporary name and then deleted, so a reader never meets a
half-removed save. A run killed at any point therefore leaves the previous save, the new
one, or both (the newer is used) — never a torn checkpoint. The writes are synchronous:
:func:`save` returns with the checkpoint on disk (the new files are also fsync'ed, best
effort, before the old save is removed).

**Leftovers.** A killed write leaves a temporary behind; none is ever read as a checkpoint
(:func:`latest` only takes complete ``save_<n>`` directories), and each is removed as soon
as it is *certainly* stale, never while its writer may still be writing:

* orbax's temporary directories (``*.orbax-checkpoint-tmp*``) in a checkpoint directory:
  :func:`save` holds an exclusive ``flock`` on the checkpoint directory for its whole
  write. The kernel drops that lock when the holder dies, even by SIGKILL, so whoever
  holds it knows no save is under way there and every temporary is stale. :func:`save`
  removes them once it has the lock (a second concurrent save waits for it); :func:`latest`
  (hence :func:`read_info`, :func:`restore`, ``--resume``, ``flax-arch convert``) removes
  them only if it gets the lock without waiting, and otherwise just ignores them. Where
  ``flock`` is not available (no ``fcntl``; some network filesystems) they are ignored and
  kept.
* :func:`atomic_write_bytes`' temporary files carry their writer in their name
  (``.<name>.<pid>@<host>.<random>.tmp``); the next :func:`atomic_write_bytes` into that
  directory, or :func:`latest` on a file there, removes those whose writer ran on this
  host and no longer exists (``os.kill(pid, 0)`` fails with ``ProcessLookupError``). A
  process that exists, a reused pid, another user's process or another host's all count as
  alive: at worst a stale file is kept (and ignored), never a live one removed. Files
  named without a pid (written by earlier versions) are ignored and kept.

**Legacy files.** A ``checkpoint.safetensors`` file written by earlier versions (format
:data:`LEGACY_FORMAT`, the same array names, metadata as strings) is still read: by
:func:`restore`, :func:`load`, :func:`read_info` and ``flax-arch convert``; its ``models``
are derived from its ``config`` by the training command's own
:func:`flax_arch.training.cli.model_specs`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import socket
import tempfile
from typing import Any, Mapping

try:  # POSIX: the writer lock of a checkpoint directory (see "Leftovers")
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

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
# atomic_write_bytes' temporaries: ".<name>.<pid>@<host>.<random>.tmp"
_ATOMIC_TMP = re.compile(r"^\.(?P<base>.+)\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9_-]*)"
                         r"\.[A-Za-z0-9_]+\.tmp$")


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
    a checkpoint directory.

    Temporaries of killed writes are never taken for a checkpoint; those certainly stale
    are removed on the way (see "Leftovers" in the module docs)."""
    path = os.fspath(path)
    if os.path.isfile(path):
        _remove_stale_writes(os.path.dirname(os.path.abspath(path)))
        return path
    if _is_orbax_checkpoint(path):
        return path
    if os.path.isdir(path):
        with _writer_lock(path, wait=False) as locked:
            _remove_leftovers(path, torn_saves=locked)
    saves = _saves(path)
    if not saves and os.path.isdir(path) and _SAVE.match(os.path.basename(path)):
        return path  # one save, damaged: reading it says what is wrong
    return saves[-1][1] if saves else None


# ---------------------------------------------------------------------------- leftovers


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname())[:64]


def _process_gone(pid: int) -> bool:
    """``True`` only when no process ``pid`` exists on this machine: never for this
    process, a process of another user, or where this cannot be asked (not POSIX)."""
    if os.name != "posix" or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists, owned by someone else
        return False
    return False  # it exists (a zombie too: not yet reaped, the write may be its last act)


def _remove_stale_writes(directory: str) -> list[str]:
    """Remove the temporaries of :func:`atomic_write_bytes` in ``directory`` whose writer,
    named in the file name (``pid@host``), was on this machine and no longer runs."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    host, removed = _host(), []
    for name in names:
        m = _ATOMIC_TMP.match(name)
        if m and m["host"] == host and _process_gone(int(m["pid"])):
            full = os.path.join(directory, name)
            try:
                if os.path.isfile(full) and not os.path.islink(full):
                    os.unlink(full)
                    removed.append(full)
            except OSError:  # gone meanwhile, or not ours to remove (read-only)
                pass
    return removed


@contextlib.contextmanager
def _writer_lock(directory: str, *, wait: bool):
    """Yields whether this process holds the exclusive writer lock of the checkpoint
    directory ``directory`` (``flock`` on the directory itself: no lock file, and the
    kernel drops the lock when its holder dies, even by SIGKILL). :func:`save` holds it
    for its whole write (``wait=True``); a reader only tries (``wait=False``), and gets
    ``False`` while a save is under way. ``False`` also where locking is not available
    (no ``fcntl``, a filesystem without ``flock``)."""
    fd, locked = None, False
    if fcntl is not None:
        try:
            fd = os.open(directory, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            locked = True
        except OSError:  # held by a writer (EWOULDBLOCK), or not supported here
            pass
    try:
        yield locked
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _remove_leftovers(directory: str, *, torn_saves: bool) -> list[str]:
    """Remove what killed writes left in the checkpoint directory ``directory``: stale
    :func:`atomic_write_bytes` temporaries always, and orbax's temporary save directories
    (``*.orbax-checkpoint-tmp*``) when ``torn_saves``: only while holding the writer lock,
    which makes them certainly stale."""
    removed = _remove_stale_writes(directory)
    if torn_saves:
        try:
            names = os.listdir(directory)
        except OSError:
            names = []
        for name in names:
            if _TMP_MARK in name:
                full = os.path.join(directory, name)
                _rmtree(full)
                removed.append(full)
    return removed


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
    directory = os.fspath(directory)
    if os.path.isfile(directory):
        raise CheckpointError.about(directory, "is a file; a checkpoint is a directory")
    os.makedirs(directory, exist_ok=True)
    with _writer_lock(directory, wait=True) as locked:
        return _save_locked(directory, tree, step=step, config=config, rng=rng,
                            models=models, locked=locked)


def _save_locked(directory, tree, *, step, config, rng, models, locked) -> str:
    from .. import __version__
    meta = {"format": FORMAT, "step": int(step), "config": dict(config or {}),
            "models": {k: {"arch": v["arch"], "kwargs": dict(v.get("kwargs") or {})}
                       for k, v in (models or {}).items()},
            "flax_arch_version": __version__, "rng": None}
    if rng is not None:
        data = np.asarray(jax.random.key_data(rng) if _is_key(rng) else rng)
        meta["rng"] = {"key_data": data.tolist(), "dtype": str(data.dtype),
                       "typed": bool(_is_key(rng))}
    state = _nest(flatten(tree))
    # temporaries of killed writes: never a checkpoint; with the lock held no other save
    # is under way, so every one of them is stale
    _remove_leftovers(directory, torn_saves=locked)
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
    """Remove an older save: renamed first to a temporary name (one atomic step, so a
    reader never meets a half-removed save), then deleted; a removal killed midway leaves
    a temporary, which the next writer removes."""
    doomed = f"{path}{_TMP_MARK}-removed"
    try:
        os.rename(path, doomed)
    except OSError:
        doomed = path
    _rmtree(doomed)


def _rmtree(path: str) -> None:
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
            with _reading(self._path, "its arrays"), _checkpointer() as ckptr:
                got = ckptr.restore(os.path.abspath(self._path), args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract)))
            self._values = _unnest(got["state"])
        return self._values


@contextlib.contextmanager
def _reading(path: str, what: str):
    """Whatever orbax (or tensorstore under it) raises while reading the files of the
    save ``path`` (missing, truncated, garbage) becomes a :class:`CheckpointError` naming
    the save, with orbax's error as its cause. Only the library calls reading the files
    are wrapped; the decoding of what they return is checked field by field."""
    try:
        yield
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - orbax's errors have no common class
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError.about(path, f"cannot read {what} (a damaged or incomplete "
                                          f"save?): {type(e).__name__}: {msg}") from e


def _orbax_specs(path: str) -> dict[str, tuple]:
    with _reading(path, "its array metadata"):
        with _checkpointer() as ckptr:
            meta = ckptr.metadata(os.path.abspath(path)).item_metadata["state"]
        tree = getattr(meta, "tree", meta)
        return {k: (tuple(v.shape), np.dtype(v.dtype)) for k, v in _unnest(tree).items()}


# ------------------------------------------------------------------------ metadata checks


def _bad(path, field: str, value, expected: str) -> CheckpointError:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return CheckpointError.about(path, f"its metadata {field!r} is {shown}, not {expected} "
                                       f"(corrupt or edited?)")


def _check_step(path, step) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise _bad(path, "step", step, "a non-negative integer")
    return step


def _check_config(path, config) -> dict:
    if config is None:
        return {}
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise _bad(path, "config", config, "a JSON object")
    return dict(config)


def _check_models(path, models) -> dict:
    if models is None:
        return {}
    ok = isinstance(models, dict) and all(
        isinstance(k, str) and isinstance(v, dict) and isinstance(v.get("arch"), str)
        and isinstance(v.get("kwargs", {}), dict) for k, v in models.items())
    if not ok:
        raise _bad(path, "models", models, 'a JSON object {name: {"arch": str, "kwargs": '
                                           '{...}}}')
    return {k: {"arch": v["arch"], "kwargs": dict(v.get("kwargs") or {})}
            for k, v in models.items()}


def _decode_rng(path, r):
    """The key stored as ``{"key_data": [...], "dtype": "uint32", "typed": bool}``."""
    if r is None:
        return None
    expected = 'null or {"key_data": [ints], "dtype": an integer dtype, "typed": bool}'
    if not isinstance(r, dict) or not isinstance(r.get("key_data"), list) or \
            not isinstance(r.get("dtype"), str) or not isinstance(r.get("typed", False), bool):
        raise _bad(path, "rng", r, expected)
    try:
        dtype = np.dtype(r["dtype"])
        if dtype.kind not in "iu" or not all(
                isinstance(x, int) and not isinstance(x, bool) for x in
                np.asarray(r["key_data"], dtype=object).ravel().tolist()):
            raise ValueError
        data = jnp.asarray(np.asarray(r["key_data"], dtype=dtype))
        return jax.random.wrap_key_data(data) if r.get("typed") else data
    except (TypeError, ValueError, OverflowError):
        raise _bad(path, "rng", r, expected) from None


def _read_legacy(path: str) -> dict[str, Any]:
    require_safetensors()
    from safetensors import SafetensorError
    try:
        meta = read_metadata(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError.about(path, f"not a readable safetensors file (truncated, "
                                          f"empty or another kind of file?): {e}") from e
    if meta.get("format") != LEGACY_FORMAT:
        raise CheckpointError.about(path, f"not a flax-arch training checkpoint (format "
                                          f"{meta.get('format')!r})")

    def parsed(key, default):
        if key not in meta:
            return default
        try:
            return json.loads(meta[key])
        except ValueError:
            raise _bad(path, key, meta[key], "JSON") from None

    step = meta.get("step")
    if not isinstance(step, str) or not re.fullmatch(r"\d+", step):
        raise _bad(path, "step", step, "a non-negative integer")
    info: dict[str, Any] = {"format": meta["format"], "step": int(step),
                            "config": _check_config(path, parsed("config", {})),
                            "rng": _decode_rng(path, parsed("rng", None))}
    from .cli import model_specs  # legacy files did not record their models
    try:
        info["models"] = model_specs(info["config"].get("model"), info["config"])
    except (KeyError, ValueError, TypeError):
        info["models"] = {}
    info["metadata"] = meta
    return info


def read_info(path) -> dict[str, Any]:
    """The decoded metadata of a checkpoint, without reading its arrays: ``format``,
    ``step`` (int), ``config`` (dict), ``rng`` (the key as saved, or ``None``),
    ``models`` (``{name: {"arch", "kwargs"}}``) and ``path`` (the save it was read
    from).

    A checkpoint that cannot be read (empty, truncated, garbage, another kind of file or
    directory) or whose metadata does not decode raises a :class:`CheckpointError` naming
    the file and what is wrong."""
    path = os.fspath(path)
    found = latest(path)
    if found is None:
        raise CheckpointError.about(path, "no checkpoint there (no complete save_<n>/, "
                                          "and not a .safetensors file)")
    if os.path.isfile(found):
        info = _read_legacy(found)
    else:
        ocp = _orbax()
        with _reading(found, "its metadata"), _checkpointer() as ckptr:
            meta = ckptr.restore(os.path.abspath(found), args=ocp.args.Composite(
                metadata=ocp.args.JsonRestore()))["metadata"]
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            fmt = meta.get("format") if isinstance(meta, dict) else None
            raise CheckpointError.about(found, f"not a flax-arch training checkpoint "
                                               f"(format {fmt!r}, expected {FORMAT!r})")
        info = {"format": meta["format"], "step": _check_step(found, meta.get("step")),
                "config": _check_config(found, meta.get("config")),
                "rng": _decode_rng(found, meta.get("rng")),
                "models": _check_models(found, meta.get("models")), "metadata": meta}
    info["path"] = found
    return info


def _arrays(info, target=None) -> Mapping[str, Any]:
    """The arrays of the checkpoint ``info`` describes: numpy arrays (legacy) or lazily
    read orbax arrays, restored into ``target`` (``{key: (shape, dtype)}``) if given."""
    path = info["path"]
    if os.path.isfile(path):
        st = require_safetensors()
        from safetensors import SafetensorError
        try:
            return dict(st.load_file(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError.about(path, f"cannot read its arrays (truncated or "
                                              f"damaged?): {e}") from e
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
    ``os.replace``). On any failure the temp file is removed and ``path`` is untouched.

    The temp file is ``.<name>.<pid>@<host>.<random>.tmp``: one that a killed writer
    (SIGKILL, power loss) left behind is removed by the next write into that directory
    (and by :func:`latest`) once that process no longer runs; see "Leftovers" in the
    module docs."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    _remove_stale_writes(directory)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp",
                               prefix=f".{os.path.basename(path)}.{os.getpid()}@{_host()}.")
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
