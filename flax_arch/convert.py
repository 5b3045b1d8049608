"""``flax-arch convert``: torch checkpoints ↔ Flax checkpoints for a named architecture.

* **torch → Flax**: a torch ``state_dict`` (``.pt``/``.pth``, read with
  ``torch.load(weights_only=True)``, or ``.safetensors``) is loaded into the named
  architecture (:data:`flax_arch.models.ARCHITECTURES`, constructor arguments from
  ``--kwargs``) with
  :func:`flax_arch.interop.load_torch_state_dict` — every missing, unexpected or misshapen key
  is reported at once — and written as a **Flax checkpoint**: a safetensors file of the
  module's ``nnx.Param`` and ``nnx.BatchStat`` arrays keyed by their NNX paths
  (``features/0/kernel``, channels-last layouts), with metadata ``format``
  (:data:`FLAX_FORMAT`), ``arch`` and ``kwargs`` (JSON) naming the module to rebuild.
* **Flax → torch**: a Flax checkpoint (or a ``flax-arch train`` checkpoint — its
  directory, or a legacy ``.safetensors`` file —, choosing the model with ``--model``; the
  checkpoint records each model's architecture and kwargs) is loaded into its
  architecture and written as a torch ``state_dict`` (``.pt`` via ``torch.save``, or
  ``.safetensors``).

Both directions load through :func:`flax_arch.interop.load_arrays`: every missing,
unexpected, misshapen or wrong-dtype array is listed in one
:class:`~flax_arch.interop.StateDictError`, and nothing is written.

Every float dtype torch has converts: bfloat16, float16 and float64 weights keep their
dtype; float8 weights are cast to the model's dtype, as torch's ``load_state_dict`` does.

The direction follows the input: a training checkpoint directory or a safetensors file
carrying flax-arch metadata is a Flax checkpoint, anything else a torch one. A pickle that
would run code (any global outside torch's ``weights_only`` allow-list) is refused with
:class:`ConvertError`; nothing is executed. An existing output is not overwritten without
``--force``; outputs are written atomically, into a directory that must exist.

Every user error — a corrupt, truncated, empty or foreign input, a state_dict that does
not fit, an output that is a directory, safetensors not installed — is one message on
stderr naming the file and what is wrong, with exit status 2; never a traceback.

Python use::

    module = torch_to_flax(load_torch_checkpoint("mlp.pt"), "mlp")
    save_flax_checkpoint(module, "mlp.safetensors", "mlp")
    module, arch, kwargs = load_flax_checkpoint("mlp.safetensors")
"""

from __future__ import annotations

import io
import json
import os
import pickle
import sys
from typing import Any, Mapping

import numpy as np

from . import models as _models
from .interop import numpy_to_tensor, tensor_to_numpy
from .interop.state_dict import c_order as _c_order

__all__ = ["ARCHITECTURES", "FLAX_FORMAT", "ConvertError", "build", "load_torch_checkpoint",
           "torch_to_flax", "flax_arrays", "load_flax_arrays", "save_flax_checkpoint",
           "load_flax_checkpoint", "save_torch_state_dict", "add_arguments", "run"]

FLAX_FORMAT = "flax-arch/nnx-state/1"

#: the model registry (name → :class:`~flax_arch.models.registry.Architecture`); an
#: architecture is built as ``Class(**kwargs, rngs=nnx.Rngs(0))``, then its weights replaced
ARCHITECTURES = _models.ARCHITECTURES

_TORCH_EXT = (".pt", ".pth", ".bin")
_CONVERTED = None  # (nnx.Param, nnx.BatchStat), set lazily


class ConvertError(ValueError):
    """A checkpoint cannot be converted (unsafe, unreadable, or for another model)."""


# ------------------------------------------------------------------------ architectures


def build(arch: str, kwargs: Mapping[str, Any] | None = None, *, abstract: bool = False):
    """A fresh ``flax_arch.models`` module for architecture ``arch``.

    ``abstract=True`` builds it with ``nnx.eval_shape``: variables hold shapes and dtypes
    only (nothing is initialised or compiled) — a template to load weights into.
    """
    if arch not in ARCHITECTURES:
        raise ConvertError(f"unknown architecture {arch!r}; choose one of: "
                           f"{', '.join(sorted(ARCHITECTURES))}")
    entry = ARCHITECTURES[arch]
    kwargs = dict(kwargs or {})
    if "rngs" in kwargs:
        raise ConvertError("--kwargs must not contain 'rngs'")
    try:
        return entry.build(kwargs, abstract=abstract)
    except (TypeError, ValueError) as e:
        raise ConvertError(f"cannot build {arch!r} ({entry.cls.__name__}{entry.signature()}) "
                           f"with kwargs {kwargs}: {e}") from e


def _converted_types():
    global _CONVERTED
    if _CONVERTED is None:
        from flax import nnx
        _CONVERTED = (nnx.Param, nnx.BatchStat)
    return _CONVERTED


def _variables(module):
    """``{nnx path: Variable}`` of every variable, and the set of converted ones."""
    from flax import nnx
    out, kept = {}, set()
    for path, var in nnx.to_flat_state(nnx.state(module)):
        key = "/".join(map(str, path))
        out[key] = var
        if isinstance(var, _converted_types()):
            kept.add(key)
    return out, kept


# ------------------------------------------------------------------------ torch side


def _torch():
    from ._optional import require
    return require("torch", "reading or writing .pt/.pth files needs torch: "
                   "pip install 'flax-arch[torch]'", ConvertError)


def _is_tensor_dict(obj) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(
        hasattr(v, "detach") or isinstance(v, np.ndarray) for v in obj.values())


def load_torch_checkpoint(path, *, key: str | None = None) -> dict[str, np.ndarray]:
    """A torch ``state_dict`` as numpy arrays, from ``.safetensors`` or a torch pickle.

    Pickles are read with ``torch.load(weights_only=True)``: anything but tensors and
    plain containers is refused (:class:`ConvertError`) before it can run. A checkpoint
    that nests the state_dict (``{"state_dict": …}``, ``{"model": …}``) is unwrapped;
    ``key`` names the entry explicitly.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConvertError(f"{path}: "
                           f"{'is a directory' if os.path.isdir(path) else 'no such file'}")
    if path.endswith(".safetensors"):
        return _load_safetensors(path)
    torch = _torch()
    if os.path.getsize(path) == 0:
        raise ConvertError(f"cannot read {path} as a torch checkpoint: the file is empty")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        detail = next((line for line in lines if "GLOBAL" in line),
                      next((line for line in lines if "global" in line.lower()),
                           lines[0] if lines else type(e).__name__))
        operand = next((line for line in lines if line.startswith("Unsupported operand")), None)
        if operand:  # not a pickle opcode: bytes that are no pickle at all, nothing to run
            raise ConvertError(f"cannot read {path} as a torch checkpoint (corrupt, truncated "
                               f"or not written by torch.save): {operand}") from e
        raise ConvertError(
            f"refused to load {path}: the checkpoint contains code or unsupported globals "
            f"(not just tensors), and weights_only loading refused it — {detail.rstrip('.')}. "
            f"Nothing "
            f"was executed. Only load it with weights_only=False if you trust its source, "
            f"then re-save its state_dict()") from e
    except Exception as e:  # corrupt or not a torch file
        raise ConvertError(f"cannot read {path} as a torch checkpoint (corrupt, truncated or "
                           f"not written by torch.save): {type(e).__name__}: {e}") from e
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            raise ConvertError(f"{path} has no entry {key!r}"
                               + (f" (entries: {', '.join(map(str, obj))})"
                                  if isinstance(obj, Mapping) else ""))
        obj = obj[key]
    elif not _is_tensor_dict(obj) and isinstance(obj, Mapping):
        for k in ("state_dict", "model_state_dict", "model", "net"):
            if _is_tensor_dict(obj.get(k)):
                obj = obj[k]
                break
    if not _is_tensor_dict(obj):
        what = type(obj).__name__
        if isinstance(obj, Mapping) and obj:
            k, v = next((k, v) for k, v in obj.items() if not _is_tensor_dict({k: v}))
            what += f" whose entry {k!r} holds {type(v).__name__}, not a tensor"
        raise ConvertError(f"{path} does not hold a state_dict (a mapping of names to "
                           f"tensors) but a {what}; use --key to pick the entry holding it")
    return {k: _tensor_to_numpy(v, f"{path}: {k!r}") for k, v in obj.items()}


def _tensor_to_numpy(v, where: str) -> np.ndarray:
    if not hasattr(v, "detach"):
        return np.asarray(v)
    try:
        return tensor_to_numpy(v)
    except TypeError as e:  # a dtype numpy cannot hold (complex32, packed float4)
        raise ConvertError(f"{where}: {e}") from e


def _load_safetensors(path) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file, through torch where it is installed (numpy has no
    float8 types, so safetensors' numpy reader refuses them)."""
    from .training.checkpoint import require_safetensors
    stn = require_safetensors()
    try:
        import safetensors.torch
    except ImportError:  # no torch: bfloat16 and the rest of numpy's types still load
        load = stn.load_file
    else:
        load = safetensors.torch.load_file
    try:
        arrays = load(path)
    except Exception as e:  # corrupt, truncated, not safetensors
        raise ConvertError(f"cannot read {path} as safetensors: {type(e).__name__}: {e}") \
            from e
    return {k: _tensor_to_numpy(v, f"{path}: {k!r}") for k, v in arrays.items()}


def torch_to_flax(state_dict: Mapping[str, Any], arch: str,
                  kwargs: Mapping[str, Any] | None = None, *, abstract: bool = False):
    """Build ``arch`` and load the torch ``state_dict`` into it (every problem is listed
    in a :class:`flax_arch.interop.StateDictError`). With ``abstract=True`` only the
    converted variables (Param, BatchStat) are concrete — enough to save or export."""
    from .interop import load_torch_state_dict
    module = build(arch, kwargs, abstract=abstract)
    load_torch_state_dict(module, state_dict)
    return module


def save_torch_state_dict(state_dict: Mapping[str, np.ndarray], path) -> None:
    """Write a torch-keyed state_dict as ``.pt``/``.pth`` (``torch.save`` of tensors) or
    ``.safetensors`` (metadata ``format: pt``), atomically."""
    from .training.checkpoint import atomic_write_bytes
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        from .training.checkpoint import require_safetensors
        data = require_safetensors().save(
            {k: _c_order(v) for k, v in state_dict.items()},
            metadata={"format": "pt"})
    else:
        torch = _torch()
        buf = io.BytesIO()
        torch.save({k: numpy_to_tensor(np.array(v)) for k, v in state_dict.items()}, buf)
        data = buf.getvalue()
    atomic_write_bytes(path, data)


# ------------------------------------------------------------------------ flax side


def flax_arrays(module) -> dict[str, np.ndarray]:
    """``{nnx path: array}`` of the module's ``Param`` and ``BatchStat`` variables."""
    variables, kept = _variables(module)
    return {k: _c_order(np.asarray(variables[k].get_value())) for k in variables
            if k in kept}


def load_flax_arrays(module, arrays: Mapping[str, np.ndarray], *, source: str = "checkpoint"):
    """Set the module's ``Param``/``BatchStat`` variables from ``{nnx path: array}``.

    Keys of the module's other variables (RNG state) are ignored. Every missing,
    unexpected or misshapen key is reported at once in a
    :class:`flax_arch.interop.StateDictError`; the module is changed only if all fit.
    """
    from .interop import Slot, load_arrays
    variables, kept = _variables(module)
    slots = []
    for k in kept:
        cur = variables[k].get_value()
        slots.append(Slot(k, tuple(cur.shape), cur.dtype, target=variables[k]))
    load_arrays(slots, arrays, ignore=[k for k in variables if k not in kept], source=source,
                target="the module", layout="Flax layout")
    return module


def save_flax_checkpoint(module, path, arch: str, kwargs: Mapping[str, Any] | None = None,
                         *, source: str | None = None) -> None:
    """Write ``module``'s Param/BatchStat arrays with the metadata to rebuild it."""
    from . import __version__
    from .training.checkpoint import atomic_write_bytes, require_safetensors
    meta = {"format": FLAX_FORMAT, "arch": arch, "kwargs": json.dumps(dict(kwargs or {})),
            "flax_arch_version": __version__}
    if source:
        meta["source"] = os.path.basename(source)
    atomic_write_bytes(path, require_safetensors().save(flax_arrays(module), metadata=meta))


def _train_checkpoint_arrays(path, model):
    """(arch, kwargs, arrays) of one model of a ``flax-arch train`` checkpoint, as the
    checkpoint records them."""
    from .training import checkpoint
    try:
        _, spec, arrays = checkpoint.model_arrays(path, model)
    except checkpoint.CheckpointError as e:
        raise ConvertError(f"{e}{' (pass --model)' if 'choose one' in str(e) else ''}") \
            from e
    return spec["arch"], spec.get("kwargs") or {}, arrays


def _read_meta(path):
    from .training.checkpoint import read_metadata
    try:
        return read_metadata(path)
    except ImportError:  # safetensors is not installed: run() says how to install it
        raise
    except Exception as e:
        raise ConvertError(f"cannot read {path} as safetensors: {type(e).__name__}: {e}") from e


def load_flax_checkpoint(path, *, arch: str | None = None,
                         kwargs: Mapping[str, Any] | None = None, model: str | None = None,
                         abstract: bool = False):
    """``(module, arch, kwargs)`` from a Flax checkpoint (or one model of a training
    checkpoint). ``arch``/``kwargs`` default to the ones recorded in the file;
    ``abstract`` as for :func:`build`."""
    from .training.checkpoint import LEGACY_FORMAT
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ConvertError(f"{path}: no such file")
    meta = {"format": "training"} if os.path.isdir(path) else _read_meta(path)
    fmt = meta.get("format")
    if fmt == FLAX_FORMAT:
        f_arch, f_kwargs = meta.get("arch"), _json_object(meta.get("kwargs", "{}"),
                                                          f"{path}: metadata 'kwargs'")
        arrays = _load_safetensors(path)
    elif fmt in ("training", LEGACY_FORMAT):
        f_arch, f_kwargs, arrays = _train_checkpoint_arrays(path, model)
    else:
        raise ConvertError(f"{path} is not a Flax checkpoint written by flax-arch (format "
                           f"{fmt!r})")
    arch = arch or f_arch
    if arch is None:
        raise ConvertError(f"{path} does not name its architecture; pass --arch")
    kwargs = f_kwargs if kwargs is None else dict(kwargs)
    module = build(arch, kwargs, abstract=abstract)
    load_flax_arrays(module, arrays, source=os.path.basename(os.path.normpath(path)))
    return module, arch, kwargs


def _json_object(text: str, what: str) -> dict:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConvertError(f"{what} is not valid JSON: {e}") from e
    if not isinstance(obj, dict):
        raise ConvertError(f"{what} must be a JSON object, got {text!r}")
    return obj


def _is_flax_file(path) -> bool:
    """A Flax checkpoint, a training checkpoint directory or a legacy training file."""
    from .training.checkpoint import LEGACY_FORMAT
    if os.path.isdir(path):
        return True
    if not os.fspath(path).endswith(".safetensors"):
        return False
    return _read_meta(path).get("format") in (FLAX_FORMAT, LEGACY_FORMAT)


# ------------------------------------------------------------------------ command


def add_arguments(p) -> None:
    p.add_argument("input", nargs="?",
                   help="torch checkpoint (.pt/.pth/.safetensors), Flax checkpoint "
                        "(.safetensors written by flax-arch) or 'flax-arch train' "
                        "checkpoint (its directory)")
    p.add_argument("output", nargs="?",
                   help="Flax checkpoint (.safetensors) for a torch input; torch state_dict "
                        "(.pt/.pth or .safetensors) for a Flax input")
    p.add_argument("--arch", help="architecture (see --list); required for a torch input, "
                   "read from the file for a Flax one")
    p.add_argument("--kwargs", default=None, metavar="JSON",
                   help='constructor arguments as JSON, e.g. \'{"num_inputs": 100}\'')
    p.add_argument("--to", choices=("flax", "torch"), default=None,
                   help="direction (default: from the input; a check if given)")
    p.add_argument("--key", default=None,
                   help="entry of a torch checkpoint holding the state_dict")
    p.add_argument("--model", default=None,
                   help="model of a 'flax-arch train' checkpoint to export (G or D for dcgan)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--list", action="store_true", help="list the architectures and exit")


def _fail(msg: str) -> int:
    print(f"flax-arch convert: error: {msg}", file=sys.stderr)
    return 2


def run(args) -> int:
    if args.list:
        for name, entry in ARCHITECTURES.items():
            print(f"{name:20s} {entry.path}{entry.signature()}")
        return 0
    if not args.input or not args.output:
        return _fail("INPUT and OUTPUT are required")
    import jax
    jax.config.update("jax_enable_x64", True)  # keep float64 checkpoints float64

    from .interop import StateDictError, to_torch_state_dict
    try:
        kwargs = _json_object(args.kwargs, "--kwargs") if args.kwargs is not None else None
    except ConvertError as e:
        return _fail(str(e))
    if not os.path.exists(args.input):
        return _fail(f"{args.input}: no such file")
    if os.path.abspath(args.input) == os.path.abspath(args.output):
        return _fail("INPUT and OUTPUT are the same file")
    if os.path.isdir(args.output):
        return _fail(f"{args.output} is a directory; OUTPUT must be a file name")
    parent = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(parent):  # as cp and torch.save: a typo creates no directories
        return _fail(f"cannot write {args.output}: its directory {parent} does not exist")
    if os.path.exists(args.output) and not args.force:
        return _fail(f"{args.output} exists; pass --force to overwrite it")
    try:
        to_torch = _is_flax_file(args.input)
        if args.to is not None and args.to != ("torch" if to_torch else "flax"):
            return _fail(f"{args.input} is a {'Flax' if to_torch else 'torch'} checkpoint; it "
                         f"converts to {'torch' if to_torch else 'flax'}, not {args.to}")
        if to_torch:
            module, arch, kw = load_flax_checkpoint(args.input, arch=args.arch, kwargs=kwargs,
                                                    model=args.model, abstract=True)
            sd = to_torch_state_dict(module)
            save_torch_state_dict(sd, args.output)
            print(f"{args.input} ({arch} {json.dumps(kw)}) → torch state_dict "
                  f"{args.output} ({len(sd)} tensors)")
        else:
            if not args.output.endswith(".safetensors"):
                return _fail("a Flax checkpoint is a .safetensors file; name OUTPUT *.safetensors")
            if args.arch is None:
                return _fail(f"--arch is required for a torch input; one of: "
                             f"{', '.join(sorted(ARCHITECTURES))}")
            sd = load_torch_checkpoint(args.input, key=args.key)
            module = torch_to_flax(sd, args.arch, kwargs, abstract=True)
            save_flax_checkpoint(module, args.output, args.arch, kwargs, source=args.input)
            print(f"{args.input} → Flax checkpoint {args.output} ({args.arch} "
                  f"{json.dumps(kwargs or {})}, {len(flax_arrays(module))} arrays)")
    except StateDictError as e:
        return _fail(f"{args.input} does not fit {args.arch or 'the architecture'}:\n{e}")
    except ConvertError as e:
        return _fail(str(e))
    except ImportError as e:  # safetensors (or torch) is not installed: says how to install
        return _fail(str(e))
    except OSError as e:  # the output cannot be written (no permission, disk full)
        return _fail(f"cannot write {args.output}: {e.strerror or e}")
    return 0
