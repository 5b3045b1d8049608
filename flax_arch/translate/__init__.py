"""Translate a torch module into an NNX module: :func:`from_torch`.

torch.fx traces the module's ``forward``. A submodule whose class has a
:mod:`flax_arch.nn` twin becomes that twin (weights converted through
:mod:`flax_arch.interop`); every other submodule is traced through, and its functions,
operators and tensor methods run as JAX code with torch's semantics
(:mod:`~flax_arch.translate.functions`, :mod:`~flax_arch.translate.functional`). The
result, a :class:`~flax_arch.translate.program.TranslatedModule`, takes and returns
torch's layouts, and its variables carry torch's names. How it works, what it supports and
its limits: ``docs/translate.md``.

Importing this package does not import torch; :func:`from_torch` does.
"""

from __future__ import annotations

from .errors import TranslationError, UnsupportedError
from .program import TranslatedModule

__all__ = ["from_torch", "TranslatedModule", "TranslationError", "UnsupportedError"]


def from_torch(model, example_inputs=(), example_kwargs=None, *, rngs=None, check=True):
    """An NNX module computing what torch ``model`` computes.

    Args:
      model: a ``torch.nn.Module`` that torch.fx can trace.
      example_inputs: forward's positional arguments (torch tensors; a single tensor may
        be passed as is). Arguments not given keep their defaults, fixed at translation.
      example_kwargs: forward's keyword arguments, likewise.
      rngs: the ``nnx.Rngs`` for dropout masks (default ``nnx.Rngs(0)``). Masks come from
        JAX's PRNG, so train-mode dropout samples differ from torch's.
      check: run the translation abstractly (``jax.eval_shape``) on the example inputs
        and require torch's output structure, shapes and dtypes.

    Returns:
      a :class:`TranslatedModule`, in ``model``'s train/eval mode, with its weights.

    Raises:
      TranslationError: an op or module without a translation, or Python control flow
        on a traced value; the message names the node, the op and the source line.

    Example::

        >>> import torch, jax.numpy as jnp
        >>> import flax_arch
        >>> net = torch.nn.Sequential(torch.nn.Conv1d(3, 4, 3), torch.nn.ReLU(),
        ...                           torch.nn.Flatten(), torch.nn.Linear(8, 2))
        >>> fm = flax_arch.from_torch(net, (torch.ones(5, 3, 4),))
        >>> fm(jnp.ones((5, 3, 4))).shape  # torch's (N, C, L) layout in, (N, 2) out
        (5, 2)
        >>> sorted(flax_arch.to_torch_state_dict(fm)) == sorted(net.state_dict())
        True
    """
    from .trace import from_torch as _from_torch
    return _from_torch(model, example_inputs, example_kwargs, rngs=rngs, check=check)
