"""Errors raised while translating a torch module with :func:`flax_arch.from_torch`."""

from __future__ import annotations

__all__ = ["TranslationError", "UnsupportedError"]


class TranslationError(Exception):
    """A torch module cannot be translated; nothing was returned.

    ``node`` names the graph node (torch.fx's name, e.g. ``relu_1``), ``op`` the operation
    (``torch.nn.functional.interpolate``, ``Tensor.view``, a module class) and ``where``
    the user's source line that created it, when known. The message carries all three.
    """

    def __init__(self, message: str, *, node: str | None = None, op: str | None = None,
                 where: str | None = None):
        self.node, self.op, self.where, self.reason = node, op, where, message
        parts = []
        if node is not None:
            parts.append(f"node {node!r}")
        if op is not None:
            parts.append(f"op {op}")
        head = f"{', '.join(parts)}: " if parts else ""
        tail = f"\n  at {where}" if where else ""
        super().__init__(f"{head}{message}{tail}")


class UnsupportedError(NotImplementedError):
    """An operation, or one of its argument values, has no translation (yet).

    Raised by the function tables (:mod:`flax_arch.translate.functions`,
    :mod:`flax_arch.translate.functional`) with a message naming the argument; the
    translator wraps it in a :class:`TranslationError` naming the node and source line.
    """
