"""``flax-arch convert``: torch checkpoints ↔ Flax checkpoints for a named architecture.

* **torch → Flax**: a torch ``state_dict`` (``.pt``/``.pth``, read with
  ``torch.load(weights_only=True)``, or ``.safetensors``) is loaded into the named
  architecture (:data:`ARCHITECTURES`, constructor arguments from ``--kwargs``) with
  :func:`flax_arch.interop.load_torch_state_dict` — every missing, unexpected or misshapen key
  is reported at once — and written as a **Flax checkpoint**: a safetensors file of the
  module's ``nnx.Param`` and ``nnx.BatchStat`` arrays keyed by their NNX paths
  (``features/0/kernel``, channels-last layouts), with metadata ``format``
  (:data:`FLAX_FORMAT`), ``arch`` and ``kwargs`` (JSON) naming the module to rebuild.
* **Flax → torch**: a Flax checkpoint (or a ``flax-arch train`` checkpoint, choosing the
  model with ``--model``) is loaded into its architecture and written as a torch
  ``state_dict`` (``.pt`` via ``torch.save``, or ``.safetensors``).

The direction follows the input: a safetensors file carrying flax-arch metadata is a Flax
checkpoint, anything else a torch one. A pickle that would run code (any global outside
torch's ``weights_only`` allow-list) is refused with :class:`ConvertError`; nothing is
executed. An existing output is not overwritten without ``--force``; outputs are written
atomically.

Python use::

    module = torch_to_flax(load_torch_checkpoint("mlp.pt"), "mlp")
    save_flax_checkpoint(module, "mlp.safetensors", "mlp")
    module, arch, kwargs = load_flax_checkpoint("mlp.safetensors")
"""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import sys
from typing import Any, Mapping

import numpy as np

__all__ = ["ARCHITECTURES", "FLAX_FORMAT", "ConvertError", "build", "load_torch_checkpoint",
           "torch_to_flax", "flax_arrays", "load_flax_arrays", "save_flax_checkpoint",
           "load_flax_checkpoint", "save_torch_state_dict", "add_arguments", "run"]

FLAX_FORMAT = "flax-arch/nnx-state/1"

#: architecture name → "module:Class" under flax_arch.models (constructed as
#: ``Class(**kwargs, rngs=nnx.Rngs(0))``; the weights are then replaced)
ARCHITECTURES: dict[str, str] = {
    "logistic-regression": "perceptrons:LogisticRegression",
    "linear-regression": "perceptrons:LinearRegression",
    "softmax-classifier": "perceptrons:SoftmaxClassifier",
    "mlp": "perceptrons:MLP",
    "valid-conv1d": "convolutions:ValidConv1d",
    "padded-conv1d": "convolutions:PaddedConv1d",
    "causal-conv1d": "convolutions:CausalConv1d",
    "conv-mlp": "convolutions:ConvMLP",
    "transposed-conv1d": "convolutions:TransposedConv1d",
    "one-hot-linear": "embeddings:OneHotLinear",
    "embedding-lookup": "embeddings:EmbeddingLookup",
    "rnn-classifier": "recurrent:RNNClassifier",
    "qrnn": "qrnn:QRNN",
    "ae": "autoencoders:AE",
    "vae": "autoencoders:VAE",
    "alexnet": "alexnet:AlexNet",
    "inception": "inception:InceptionModule",
    "reslayer": "resnet:ResLayer",
    "unet": "unet:UNet",
    "segan-g": "segan:Conv1dGenerator",
    "dcgan-g": "dcgan:DCGANGenerator",
    "dcgan-d": "dcgan:DCGANDiscriminator",
}

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
    from flax import nnx
    if arch not in ARCHITECTURES:
        raise ConvertError(f"unknown architecture {arch!r}; choose one of: "
                           f"{', '.join(sorted(ARCHITECTURES))}")
    modname, clsname = ARCHITECTURES[arch].split(":")
    try:
        cls = getattr(importlib.import_module(f"flax_arch.models.{modname}"), clsname)
    except (ImportError, AttributeError) as e:
        raise ConvertError(f"architecture {arch!r} (flax_arch.models.{modname}.{clsname}) "
                           f"is not available in this installation: {e}") from e
    kwargs = dict(kwargs or {})
    if "rngs" in kwargs:
        raise ConvertError("--kwargs must not contain 'rngs'")

    def make():
        return cls(**kwargs, rngs=nnx.Rngs(0))

    try:
        return nnx.eval_shape(make) if abstract else make()
    except (TypeError, ValueError) as e:
        raise ConvertError(f"cannot build {arch!r} ({clsname}) with kwargs {kwargs}: {e}") from e


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
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ConvertError("reading or writing .pt/.pth files needs torch: "
                           "pip install 'flax-arch[torch]'") from e
    return torch


def _c_order(a) -> np.ndarray:
    """C-contiguous numpy copy/view keeping 0-d arrays 0-d (``np.ascontiguousarray``
    would make them 1-d)."""
    return np.require(np.asarray(a), requirements="C")


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
    if not os.path.exists(path):
        raise ConvertError(f"{path}: no such file")
    if path.endswith(".safetensors"):
        from .training.checkpoint import require_safetensors
        stn = require_safetensors()
        return dict(stn.load_file(path))
    torch = _torch()
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        detail = next((line for line in lines if "GLOBAL" in line),
                      next((line for line in lines if "global" in line.lower()),
                           lines[0] if lines else type(e).__name__))
        raise ConvertError(
            f"refused to load {path}: the checkpoint contains code or unsupported globals "
            f"(not just tensors), and weights_only loading refused it — {detail.rstrip('.')}. "
            f"Nothing "
            f"was executed. Only load it with weights_only=False if you trust its source, "
            f"then re-save its state_dict()") from e
    except Exception as e:  # corrupt or not a torch file
        raise ConvertError(f"cannot read {path} as a torch checkpoint: "
                           f"{type(e).__name__}: {e}") from e
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
        raise ConvertError(f"{path} does not hold a state_dict (a mapping of names to "
                           f"tensors) but a {what}; use --key to pick the entry holding it")
    return {str(k): (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v))
            for k, v in obj.items()}


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
        torch.save({k: torch.from_numpy(np.array(v)) for k, v in state_dict.items()}, buf)
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
    import jax
    import jax.numpy as jnp

    from .interop import StateDictError
    variables, kept = _variables(module)
    missing = [k for k in kept if k not in arrays]
    unexpected = [k for k in arrays if k not in variables]
    mismatched, extra, updates = [], [], []
    for k in kept:
        if k not in arrays:
            continue
        arr, cur = np.asarray(arrays[k]), variables[k].get_value()
        if tuple(arr.shape) != tuple(cur.shape):
            mismatched.append((k, tuple(cur.shape), tuple(arr.shape)))
            continue
        if jnp.issubdtype(cur.dtype, jnp.integer):
            arr = arr.astype(np.dtype(cur.dtype))
        elif arr.dtype == np.float64 and not jax.config.jax_enable_x64:
            extra.append(f"{k} is float64 but jax_enable_x64 is off")
            continue
        updates.append((variables[k], jnp.asarray(arr)))
    if missing or unexpected or mismatched or extra:
        err = StateDictError(missing, unexpected, [], extra=[
            f"shape mismatch for {k}: the module expects {w} (Flax layout), the {source} "
            f"has {g}" for k, w, g in mismatched] + extra)
        err.mismatched = mismatched
        raise err
    for var, value in updates:
        var.set_value(value)
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


def _train_checkpoint_arrays(path, meta, model):
    """(arch, kwargs, arrays) of one model of a ``flax-arch train`` checkpoint."""
    cfg = json.loads(meta.get("config", "{}"))
    kind = cfg.get("model")
    names = {"ae": ["model"], "vae": ["model"], "dcgan": ["G", "D"]}.get(kind)
    if names is None:
        raise ConvertError(f"{path}: unknown model {kind!r} in the training checkpoint")
    if model is None:
        if len(names) > 1:
            raise ConvertError(f"{path} holds several models ({', '.join(names)}); "
                               f"choose one with --model")
        model = names[0]
    if model not in names:
        raise ConvertError(f"{path} has no model {model!r}; it holds {', '.join(names)}")
    if kind == "ae":
        arch, kwargs = "ae", {"num_inputs": 784}
    elif kind == "vae":
        arch, kwargs = "vae", {}
    elif model == "G":
        arch, kwargs = "dcgan-g", {"nc": 3, "nz": cfg["nz"], "ngf": cfg["ngf"]}
    else:
        arch, kwargs = "dcgan-d", {"nc": 3, "ndf": cfg["ndf"]}
    from .training.checkpoint import require_safetensors
    raw = require_safetensors().load_file(path)
    arrays = {}
    for part in ("params", "rest"):
        prefix = f"state/{part}/{model}/"
        arrays.update({k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)})
    return arch, kwargs, arrays


def _read_meta(path):
    from .training.checkpoint import read_metadata
    try:
        return read_metadata(path)
    except Exception as e:
        raise ConvertError(f"cannot read {path} as safetensors: {type(e).__name__}: {e}") from e


def load_flax_checkpoint(path, *, arch: str | None = None,
                         kwargs: Mapping[str, Any] | None = None, model: str | None = None,
                         abstract: bool = False):
    """``(module, arch, kwargs)`` from a Flax checkpoint (or one model of a training
    checkpoint). ``arch``/``kwargs`` default to the ones recorded in the file;
    ``abstract`` as for :func:`build`."""
    from .training.checkpoint import FORMAT as TRAIN_FORMAT
    from .training.checkpoint import require_safetensors
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ConvertError(f"{path}: no such file")
    meta = _read_meta(path)
    fmt = meta.get("format")
    if fmt == FLAX_FORMAT:
        f_arch, f_kwargs = meta.get("arch"), json.loads(meta.get("kwargs", "{}"))
        arrays = dict(require_safetensors().load_file(path))
    elif fmt == TRAIN_FORMAT:
        f_arch, f_kwargs, arrays = _train_checkpoint_arrays(path, meta, model)
    else:
        raise ConvertError(f"{path} is not a Flax checkpoint written by flax-arch (format "
                           f"{fmt!r})")
    arch = arch or f_arch
    if arch is None:
        raise ConvertError(f"{path} does not name its architecture; pass --arch")
    kwargs = f_kwargs if kwargs is None else dict(kwargs)
    module = build(arch, kwargs, abstract=abstract)
    load_flax_arrays(module, arrays, source=os.path.basename(path))
    return module, arch, kwargs


def _is_flax_file(path) -> bool:
    from .training.checkpoint import FORMAT as TRAIN_FORMAT
    if not os.fspath(path).endswith(".safetensors"):
        return False
    return _read_meta(path).get("format") in (FLAX_FORMAT, TRAIN_FORMAT)


# ------------------------------------------------------------------------ command


def add_arguments(p) -> None:
    p.add_argument("input", nargs="?",
                   help="torch checkpoint (.pt/.pth/.safetensors) or Flax checkpoint "
                        "(.safetensors written by flax-arch)")
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
        for name, target in ARCHITECTURES.items():
            print(f"{name:20s} flax_arch.models.{target.replace(':', '.')}")
        return 0
    if not args.input or not args.output:
        return _fail("INPUT and OUTPUT are required")
    import jax
    jax.config.update("jax_enable_x64", True)  # keep float64 checkpoints float64

    from .interop import StateDictError, to_torch_state_dict
    try:
        kwargs = json.loads(args.kwargs) if args.kwargs is not None else None
    except json.JSONDecodeError as e:
        return _fail(f"--kwargs is not valid JSON: {e}")
    if kwargs is not None and not isinstance(kwargs, dict):
        return _fail("--kwargs must be a JSON object")
    if not os.path.exists(args.input):
        return _fail(f"{args.input}: no such file")
    if os.path.abspath(args.input) == os.path.abspath(args.output):
        return _fail("INPUT and OUTPUT are the same file")
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
    return 0
