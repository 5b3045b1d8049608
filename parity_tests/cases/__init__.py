"""The case registry: every slide module's parity cases, one file per slide family.

Each family module defines ``CASES: list[Case]``. Cases tagged ``"slow"`` (the slides' full
sizes) run in ``flax-arch parity`` and under ``pytest -m slow``; the small ones cover every
module in CI.
"""

from __future__ import annotations

import importlib

from flax_arch.parity.harness import Case, select

FAMILIES = ["basic", "recurrent", "qrnn", "classifiers", "generators"]


def all_cases() -> list[Case]:
    cases: list[Case] = []
    for fam in FAMILIES:
        try:
            mod = importlib.import_module(f"{__name__}.{fam}")
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{fam}":
                continue  # family not written yet
            raise
        cases.extend(mod.CASES)
    names = [c.name for c in cases]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"duplicate case names: {sorted(dup)}")
    return cases


__all__ = ["Case", "all_cases", "select"]
