"""The model registry's machinery: an :class:`Architecture` is an exported model class
under its command-line name. The registry itself, :data:`flax_arch.models.ARCHITECTURES`,
lives in :mod:`flax_arch.models` next to the imports it lists.

Constructor arguments are read from the class's ``__init__`` signature (NNX's metaclass
hides it from ``inspect.signature(cls)``): every model takes ``rngs`` keyword-only, and
the other arguments are the JSON-able ``kwargs`` that ``flax-arch convert`` and training
checkpoints record.
"""

from __future__ import annotations

import inspect
from typing import Any, Iterable, Mapping

__all__ = ["Architecture", "Registry"]


class Architecture:
    """A model class under its command-line ``name`` (``"dcgan-g"``)."""

    def __init__(self, name: str, cls: type):
        self.name, self.cls = name, cls

    def __repr__(self) -> str:
        return f"Architecture({self.name!r}, {self.path})"

    @property
    def path(self) -> str:
        """``flax_arch.models.<module>.<Class>``."""
        return f"{self.cls.__module__}.{self.cls.__qualname__}"

    def parameters(self) -> list[inspect.Parameter]:
        """The constructor's parameters other than ``self`` and ``rngs``."""
        sig = inspect.signature(self.cls.__init__)
        return [p for name, p in sig.parameters.items() if name not in ("self", "rngs")]

    def signature(self) -> str:
        """``(num_inputs=100, hidden_size=1024, *, dropout=0.5)``, for listings."""
        parts, star = [], False
        for p in self.parameters():
            if p.kind is p.VAR_KEYWORD:
                parts.append(f"**{p.name}")
                continue
            if p.kind is p.KEYWORD_ONLY and not star:
                parts.append("*")
                star = True
            parts.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
        return f"({', '.join(parts)})"

    def build(self, kwargs: Mapping[str, Any] | None = None, *, rngs=None,
              abstract: bool = False):
        """``cls(**kwargs, rngs=rngs)`` (``rngs`` defaults to ``nnx.Rngs(0)``).

        ``abstract=True`` builds it under ``nnx.eval_shape``: variables hold shapes and
        dtypes only (nothing is initialised or compiled) — a template to load weights
        into. Raises ``TypeError``/``ValueError`` naming the architecture when the
        arguments do not fit.
        """
        from flax import nnx
        kwargs = dict(kwargs or {})
        if "rngs" in kwargs:
            raise TypeError(f"{self.name}: kwargs must not contain 'rngs'")

        def make():
            return self.cls(**kwargs, rngs=nnx.Rngs(0) if rngs is None else rngs)

        return nnx.eval_shape(make) if abstract else make()


class Registry(Mapping):
    """``{name: Architecture}`` in declaration order; names and classes are unique."""

    def __init__(self, entries: Iterable[tuple[str, type]]):
        self._by_name: dict[str, Architecture] = {}
        for name, cls in entries:
            if name in self._by_name:
                raise ValueError(f"architecture name {name!r} registered twice")
            if any(a.cls is cls for a in self._by_name.values()):
                raise ValueError(f"{cls.__name__} registered under two names")
            self._by_name[name] = Architecture(name, cls)

    def __getitem__(self, name: str) -> Architecture:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"unknown architecture {name!r}; choose one of: "
                           f"{', '.join(sorted(self._by_name))}") from None

    def __iter__(self):
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def classes(self) -> list[type]:
        return [a.cls for a in self._by_name.values()]

    def name_of(self, cls: type) -> str:
        """The command-line name of ``cls``."""
        for a in self._by_name.values():
            if a.cls is cls:
                return a.name
        raise KeyError(f"{cls.__name__} is not a registered architecture")
