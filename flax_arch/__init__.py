"""flax-arch: the classic deep-learning architectures in JAX/Flax NNX, each proven
numerically identical to its PyTorch original.

* :mod:`flax_arch.nn` — torch-semantics layers (channels-last);
* :mod:`flax_arch.models` — the lecture's architectures;
* :mod:`flax_arch.interop` — torch state_dict ↔ NNX state, layout helpers;
* :mod:`flax_arch.parity` — cross-framework parity tools (torch imported only when used);
* :func:`flax_arch.from_torch` — a traceable torch module translated into an NNX module
  (:mod:`flax_arch.translate`);
* :func:`flax_arch.compile_forward` — a module compiled for repeated calls at the least
  per-call cost (:mod:`flax_arch.aot`).

Importing this package never imports torch.
"""

from . import interop, models, nn
from .models import *  # noqa: F401,F403
from .models import __all__ as _models_all
from .aot import CompiledForward, compile_forward
from .interop import load_torch_state_dict, to_torch_state_dict
from .translate import TranslatedModule, TranslationError, from_torch

__version__ = "0.1.0"
__all__ = ["interop", "models", "nn", "CompiledForward", "compile_forward", "from_torch",
           "TranslatedModule", "TranslationError",
           "load_torch_state_dict", "to_torch_state_dict", *_models_all]
