"""The case plan: which registry cases the bench times.

One case per torch module class (registry order), chosen by ``--size``: the slide size
(cases tagged ``"slow"``), the small CI size, or ``auto`` — the slide size when its
forward pass costs at most ``--flop-budget`` FLOPs (torch's ``FlopCounterMode``, on meta
tensors where the module allows), the small one otherwise.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..parity.harness import prepare

__all__ = ["Planned", "plan_cases", "torch_class", "forward_flops_estimate"]


@dataclasses.dataclass
class Planned:
    case: Any
    size: str  # "slide" (tagged slow), "small" or "probe"
    module: str
    est_flops: float | None = None
    note: str = ""


def torch_class(case) -> str:
    """Qualified name of the case's torch module class, built on the meta device (no
    initialisation cost) when possible."""
    import torch
    try:
        with torch.device("meta"):
            m = case.torch_module()
    except Exception:
        m = case.torch_module()
    t = type(m)
    return f"{t.__module__}.{t.__qualname__}"


def _count_on_meta(case) -> float:
    """FLOPs of one forward with weights and inputs on the meta device: only shapes
    matter, so nothing is initialised, seeded or loaded (no Flax side either)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    with torch.device("meta"):
        m = case.torch_module()
    m = m.to(torch.float32).train(case.train)
    raw = map(torch.as_tensor, case.inputs(np.random.default_rng(case.seed)))
    xs = [t.to("meta", torch.float32) if t.is_floating_point() else t.to("meta") for t in raw]
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        case.torch_call(m, *xs) if case.torch_call else m(*xs)
    return float(fc.get_total_flops())


def _count_for_real(case) -> float:
    """FLOPs of one real forward of the harness's set-up (modules that need values)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    prep = prepare(case, "float32", device=torch.device("cpu"))
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        prep.call_torch(prep.torch_module, *prep.torch_inputs())
    return float(fc.get_total_flops())


def forward_flops_estimate(case) -> float:
    """Matmul/conv FLOPs of one torch forward (torch's FlopCounterMode), on meta tensors
    when the module allows it, otherwise for real; ``inf`` if it cannot run."""
    for count in (_count_on_meta, _count_for_real):
        try:
            return count(case)
        except Exception:
            continue
    return float("inf")


def _label(case) -> str:
    return "slide" if "slow" in case.tags else "small"


def _pick(module: str, group: list, size: str, flop_budget: float) -> Planned:
    """The case of one module's group for ``size``."""
    slides = [c for c in group if "slow" in c.tags]
    smalls = [c for c in group if "slow" not in c.tags]
    if size in ("small", "slide") or not slides:
        first, second = (smalls, slides) if size != "slide" else (slides, smalls)
        pick = (first or second)[0]
        return Planned(pick, _label(pick), module)
    est = forward_flops_estimate(slides[0])  # auto
    if est <= flop_budget or not smalls:
        note = "" if est <= flop_budget else "over --flop-budget, no small case"
        return Planned(slides[0], "slide", module, est, note)
    return Planned(smalls[0], "small", module, None,
                   f"slide size {est:.2g} FLOPs > --flop-budget")


def plan_cases(cases, size: str = "auto", flop_budget: float = 2e9,
               all_cases: bool = False) -> list[Planned]:
    """One case per torch module class (registry order), chosen by ``size``; every case
    with ``all_cases``."""
    if all_cases:
        return [Planned(c, _label(c), torch_class(c)) for c in cases]
    groups: dict[str, list] = {}
    for c in cases:
        groups.setdefault(torch_class(c), []).append(c)
    return [_pick(module, group, size, flop_budget) for module, group in groups.items()]
