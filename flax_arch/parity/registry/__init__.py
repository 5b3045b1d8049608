"""The case registry: every slide module's parity cases, one file per slide family.

This is product data: ``flax-arch parity`` and ``flax-arch bench`` run it, and the pytest
suite (``parity_tests/``) parametrises over it. Each family module defines
``CASES: list[Case]``. Cases tagged ``"slow"`` (the slides' full sizes) run in
``flax-arch parity`` and under ``pytest -m slow``; the small ones cover every module in CI.

Every registry case has ``well_posed=True``: as :func:`~flax_arch.parity.harness.prepare`
builds its torch reference, units that would sit within float32 rounding of a ReLU-family
kink on the case's inputs are moved out of reach by tiny bias shifts
(:func:`flax_arch.parity.kinks.clear_kinks`), so a float32 comparison cannot depend on which
side of a kink each framework's rounding lands.
Max-pool near-ties cannot be moved that way: a case that has one is given another seed,
stated at the case; ``parity_tests/test_wellposed.py`` checks every case.

Importing the registry never imports torch: the family files reach the reference modules
through :func:`lazy_module`, so torch loads only when a case first builds its torch side.
A family listed in :data:`FAMILIES` whose file is missing is an error, never a skip.

Add a family: write ``<family>.py`` next to this file with its ``CASES`` and append its
name to :data:`FAMILIES`.
"""

from __future__ import annotations

import dataclasses
import importlib
import types

from ..harness import Case, select

__all__ = ["FAMILIES", "Case", "all_cases", "family_cases", "module_cases", "lazy_module",
           "select", "RegistryError"]

#: the registry's families, in the order their cases run
FAMILIES = ("basic", "recurrent", "qrnn", "classifiers", "generators",
            # torch.nn twins beyond the slides (issue 14): one case file per layer family
            "nn_pooling", "nn_padding", "nn_norm", "nn_activation", "nn_cells",
            "nn_attention", "nn_loss", "nn_ctc")


class RegistryError(RuntimeError):
    """The registry is broken: a listed family is missing, or case names collide."""


class _LazyModule(types.ModuleType):
    """A stand-in for a module that imports it on first attribute access."""

    def __init__(self, name: str):
        super().__init__(name)
        self._target: types.ModuleType | None = None

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        if self._target is None:
            self._target = importlib.import_module(self.__name__)
        return getattr(self._target, attr)


def lazy_module(name: str) -> types.ModuleType:
    """``name`` (e.g. ``"torch"``, ``"torch_ref.qrnn"``), imported on first use.

    Case files write ``torch = lazy_module("torch")`` at the top and use ``torch.…`` only
    inside the functions a case calls, so importing the registry stays torch-free.
    """
    return _LazyModule(name)


def family_cases(family: str) -> list[Case]:
    """The cases of one family; a missing family file raises :class:`RegistryError`."""
    if family not in FAMILIES:
        raise RegistryError(f"unknown family {family!r}; the registry lists {FAMILIES}")
    modname = f"{__name__}.{family}"
    try:
        mod = importlib.import_module(modname)
    except ModuleNotFoundError as e:
        if e.name == modname:
            raise RegistryError(f"registry family {family!r} is listed in FAMILIES but "
                                f"{modname} does not exist") from e
        raise
    # every registry case is made well-posed in low precision (see the module docstring)
    return [dataclasses.replace(c, well_posed=True) for c in module_cases(mod, modname)]


def module_cases(mod, where: str) -> list[Case]:
    """``mod.CASES``, checked to be a list of :class:`Case` (the registry's families, and
    a user's own case module run by ``flax-arch parity --cases``)."""
    cases = getattr(mod, "CASES", None)
    if not isinstance(cases, (list, tuple)) or not all(isinstance(c, Case) for c in cases):
        raise RegistryError(f"{where} must define CASES, a list of flax_arch.parity.Case")
    return list(cases)


def all_cases() -> list[Case]:
    """Every registered case, family by family; case names are unique."""
    cases = [c for fam in FAMILIES for c in family_cases(fam)]
    seen: set[str] = set()
    dup = sorted({c.name for c in cases if c.name in seen or seen.add(c.name)})
    if dup:
        raise RegistryError(f"duplicate case names: {dup}")
    return cases

