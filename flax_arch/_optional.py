"""Optional dependencies, imported when a feature first needs them."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, message: str, error: type[Exception] = ImportError) -> ModuleType:
    """Import ``module``, or raise ``error(message)`` (which says how to install it)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise error(message) from e
