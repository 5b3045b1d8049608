"""torch tensors ↔ numpy arrays, for every float dtype torch has.

numpy has no bfloat16 and no float8 types: ``Tensor.numpy()`` refuses them and
``torch.as_tensor`` refuses their ``ml_dtypes`` counterparts (the types JAX uses on the
host). Both directions go through the bit pattern instead (int16 / uint8): a view, so
nothing is rounded. A dtype with no numpy counterpart at all (``complex32``, the packed
``float4_e2m1fn_x2``, quantized types) is a ``TypeError`` that names it. torch is never
imported here; a tensor is recognised by its ``detach`` method.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

__all__ = ["tensor_to_numpy", "numpy_to_tensor", "is_float_dtype"]

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)

#: torch dtype name → its ml_dtypes counterpart (the same bits, the same values)
ML_DTYPES = {name: np.dtype(getattr(ml_dtypes, name)) for name in (
    "bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
    "float8_e8m0fnu")}
_TORCH_NAME = {dtype: name for name, dtype in ML_DTYPES.items()}
_BITS = {1: "uint8", 2: "int16"}  # itemsize → the integer type a bit-pattern view goes through

# every floating type ml_dtypes defines (bfloat16, float8, float6, float4)
_ML_FLOATS = frozenset(np.dtype(getattr(ml_dtypes, n)) for n in dir(ml_dtypes)
                       if n.startswith(("bfloat", "float")))


def is_float_dtype(dtype) -> bool:
    """Whether ``dtype`` is a floating type, the ``ml_dtypes`` ones (bfloat16, float8, …)
    included (``np.issubdtype`` says no for them)."""
    dtype = np.dtype(dtype)
    return np.issubdtype(dtype, np.floating) or dtype in _ML_FLOATS


def tensor_to_numpy(t) -> np.ndarray:
    """A torch tensor's values as a numpy array of the same dtype (bfloat16 and float8 as
    their ``ml_dtypes`` types), detached and on the host; may share memory with ``t``.
    Raises ``TypeError`` for a dtype numpy cannot hold."""
    import torch
    t = t.detach().cpu()
    name = str(t.dtype).removeprefix("torch.")
    if name in ML_DTYPES:
        bits = getattr(torch, _BITS[t.element_size()])
        return t.view(bits).numpy().view(ML_DTYPES[name])
    try:
        return t.numpy()
    except TypeError as e:
        raise TypeError(f"a {t.dtype} tensor has no numpy counterpart ({e})") from e


def numpy_to_tensor(a, device=None):
    """A numpy array as a torch tensor of the same dtype on ``device`` (bfloat16 and float8
    from their ``ml_dtypes`` types)."""
    import torch
    a = np.asarray(a)
    if a.dtype in _TORCH_NAME:
        bits = np.require(a, requirements="C").view(_BITS[a.dtype.itemsize])  # keeps 0-d
        return torch.from_numpy(bits).view(getattr(torch, _TORCH_NAME[a.dtype])).to(device)
    return torch.as_tensor(a, device=device)
