"""Where a failing case first goes wrong: :func:`first_divergence`.

Both models run once more on the case's inputs, recording every submodule's output (torch
forward hooks; on the Flax side each submodule's class is swapped for a recording subclass
for the duration), and the first submodule in torch's execution order whose output differs
beyond the tolerance is named, with its error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flax import nnx

from ..interop import channels_last_to_first
from .harness import (Case, flatten_outputs, parity_config, prepare, relative_error,
                      tolerance)

__all__ = ["first_divergence"]


def _record_flax(fmod: nnx.Module, record: dict):
    """Swap each submodule's class for a subclass that records its output; return an undo."""
    swapped = []
    for path, node in nnx.iter_graph(fmod):
        if not isinstance(node, nnx.Module) or node is fmod or not path:
            continue
        key = ".".join(str(p) for p in path)
        cls = type(node)

        def call(self, *a, _cls=cls, _key=key, **k):
            out = _cls.__call__(self, *a, **k)
            record.setdefault(_key, out)
            return out

        sub = type(cls.__name__, (cls,), {"__call__": call})
        object.__setattr__(node, "__class__", sub)
        swapped.append((node, cls))

    def undo():
        for node, cls in swapped:
            object.__setattr__(node, "__class__", cls)
    return undo


def first_divergence(case: Case, dtype: str) -> str | None:
    """Name the first submodule (torch execution order) whose output differs beyond the
    tolerance, with its error; ``None`` if every shared submodule agrees."""
    with parity_config():
        return _first_divergence(case, dtype)


def _first_divergence(case: Case, dtype: str) -> str | None:
    import torch
    prep = prepare(case, dtype)
    tmod, fmod = prep.torch_module, prep.flax_module
    tol = tolerance(dtype)
    t_rec: dict[str, Any] = {}

    def snapshot(out):  # a copy: a later in-place op (ReLU(inplace=True)) must not change it
        if isinstance(out, (tuple, list)):
            return type(out)(snapshot(o) for o in out)
        return out.detach().clone() if hasattr(out, "detach") else out

    def recorder(name):
        def hook(mod, args, out):
            # a forward hook that returns a value replaces the module's output: this one
            # must return None, or a module called twice (a shared ReLU or pool) would
            # hand its first call's output to its second caller
            if name not in t_rec:
                t_rec[name] = snapshot(out)
        return hook

    hooks = [m.register_forward_hook(recorder(name))
             for name, m in tmod.named_modules() if name]
    try:
        with torch.no_grad():
            prep.call_torch(tmod, *prep.torch_inputs())
    finally:
        for h in hooks:
            h.remove()
    f_rec: dict[str, Any] = {}
    undo = _record_flax(fmod, f_rec)
    try:
        prep.call_flax(fmod, *prep.flax_inputs())
    finally:
        undo()
    channels = "channels" in tuple(case.out_layouts) + tuple(case.in_layouts)
    for name, t_out in t_rec.items():  # insertion order = completion order
        if name not in f_rec:
            continue
        t_list, f_list = flatten_outputs(t_out), flatten_outputs(f_rec[name])
        for t, f in zip(t_list, f_list):
            if not hasattr(t, "detach") or not hasattr(f, "shape"):
                continue
            f = _submodule_layout(np.asarray(f), tuple(t.shape), channels)
            e = relative_error(f, t.detach().cpu().numpy())
            if e > tol:
                what = "shape" if f.shape != tuple(t.shape) else f"rel err {e:.2e}"
                return f"{name} ({type(tmod.get_submodule(name)).__name__}: {what})"
    return None


def _submodule_layout(f: np.ndarray, torch_shape: tuple, channels: bool) -> np.ndarray:
    """A Flax submodule's output in torch's layout, decided per submodule from the shapes:
    as it is when only that matches torch's shape (a recurrent layer's (T, N, H) inside a
    convolutional model), channels-last → channels-first when only that matches, and the
    case's own hint (``channels``: the case converts layouts) when both do (C equal to the
    last spatial size)."""
    as_is = f.shape == torch_shape
    moved = f.ndim >= 3 and channels_last_to_first(f).shape == torch_shape
    if moved and (not as_is or channels):
        return channels_last_to_first(f)
    return f
