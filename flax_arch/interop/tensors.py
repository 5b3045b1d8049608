"""torch tensors ↔ numpy arrays, bfloat16 included.

``Tensor.numpy()`` refuses bfloat16 (numpy has no such type) and ``torch.as_tensor``
refuses ``ml_dtypes.bfloat16`` arrays (the type JAX uses on the host). Both directions go
through the 16-bit pattern instead: a view, so nothing is rounded. torch is never imported
here; a tensor is recognised by its ``detach`` method.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

__all__ = ["tensor_to_numpy", "numpy_to_tensor", "is_float_dtype"]

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


def is_float_dtype(dtype) -> bool:
    """Whether ``dtype`` is a floating type, bfloat16 included (``np.issubdtype`` says no
    for the ``ml_dtypes`` types)."""
    dtype = np.dtype(dtype)
    return np.issubdtype(dtype, np.floating) or dtype == BFLOAT16


def tensor_to_numpy(t) -> np.ndarray:
    """A torch tensor's values as a numpy array of the same dtype (bfloat16 as
    ``ml_dtypes.bfloat16``), detached and on the host; may share memory with ``t``."""
    import torch
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(BFLOAT16)
    return t.numpy()


def numpy_to_tensor(a, device=None):
    """A numpy array as a torch tensor of the same dtype on ``device`` (bfloat16 from
    ``ml_dtypes.bfloat16``)."""
    import torch
    a = np.asarray(a)
    if a.dtype == BFLOAT16:
        return torch.from_numpy(np.ascontiguousarray(a).view(np.int16)).view(
            torch.bfloat16).to(device)
    return torch.as_tensor(a, device=device)
