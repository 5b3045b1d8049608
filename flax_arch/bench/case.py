"""One case, every implementation and mode: the rows of the bench table.

:func:`bench_case` sets the case up once (:func:`~.prepared.prepare_bench`, i.e. the
parity harness's ``prepare``) and runs the timings in a fixed order — Flax forward,
Flax train step, torch eager forward and train step, ``torch.compile`` forward and train
step. A failing implementation never raises: its entry carries ``error``.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Callable, Sequence

import jax

from . import flax_side, torch_side
from .prepared import BenchCase, prepare_bench
from .timing import Sampling

__all__ = ["IMPLS", "EXTRA_IMPLS", "MODES", "IMPL_LABEL", "bench_case", "first_line"]

IMPLS = ("flax_jit", "torch_eager", "torch_compile")
#: timed only when asked for (``flax-arch bench --translated``): the case's torch module
#: translated by :func:`flax_arch.from_torch`, under jit, torch's layouts in and out
EXTRA_IMPLS = ("flax_translated",)
MODES = ("forward", "train_step")
IMPL_LABEL = {"flax_jit": "flax jit", "torch_eager": "torch eager",
              "torch_compile": "torch.compile", "flax_translated": "from_torch jit"}


def first_line(e: BaseException) -> str:
    """An exception as one short line for the table and the JSON."""
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}"[:300]


def _translated(b: BenchCase) -> BenchCase:
    """``b`` with its Flax side replaced by the translation of its torch module (same
    weights; inputs, outputs and cotangents in torch's layout)."""
    import torch
    from ..translate import from_torch
    if b.case.torch_call is not None or b.case.flax_call is not None:
        raise ValueError("a case with its own call (packed sequences, keyword flags) is "
                         "not translated")
    model = copy.deepcopy(b.prep.torch_module)
    fm = from_torch(model, [torch.as_tensor(a) for a in b.prep.inputs])
    case = dataclasses.replace(b.case, in_layouts=(), out_layouts=())
    prep = dataclasses.replace(b.prep, case=case, flax_module=fm)
    return BenchCase(prep, b.state_dict, *prep.output_cotangents())


def _jobs(b: BenchCase, sampling: Sampling, lr: float, dump_hlo: str | None,
          translated: Callable[[], BenchCase]) -> dict:
    """(mode, impl) → a function returning ``(timing, row_fields)``, in run order."""
    return {
        ("forward", "flax_jit"): lambda: flax_side.time_forward(b, sampling, dump_hlo),
        ("train_step", "flax_jit"): lambda: flax_side.time_train_step(b, sampling, lr,
                                                                      dump_hlo),
        ("forward", "flax_translated"): lambda: flax_side.time_forward(translated(), sampling),
        ("train_step", "flax_translated"): lambda: flax_side.time_train_step(
            translated(), sampling, lr),
        ("forward", "torch_eager"): lambda: torch_side.time_eager_forward(b, sampling),
        ("train_step", "torch_eager"): lambda: torch_side.time_eager_train_step(b, sampling,
                                                                                lr),
        ("forward", "torch_compile"): lambda: torch_side.time_compiled_forward(b, sampling),
        ("train_step", "torch_compile"): lambda: torch_side.time_compiled_train_step(
            b, sampling, lr),
    }


def _base_row(b: BenchCase) -> dict:
    return {"case": b.case.name, "n_params": b.n_params,
            "input_shapes": [list(a.shape) for a in b.prep.inputs],
            "train_flag": b.case.train, "backend": jax.default_backend()}


def _with_ratios(row: dict) -> dict:
    f = row["impls"].get("flax_jit", {})
    tr = row["impls"].get("flax_translated", {})
    if "median_s" in f and "median_s" in tr:
        row["translated_over_flax"] = tr["median_s"] / f["median_s"]
    for impl in ("torch_eager", "torch_compile"):
        t = row["impls"].get(impl, {})
        if "median_s" in f and "median_s" in t:
            row[f"{impl}_over_flax"] = t["median_s"] / f["median_s"]
    return row


def bench_case(case, *, modes: Sequence[str] = MODES, impls: Sequence[str] = IMPLS,
               runs: int = 10, warmup: int = 2, min_sample_s: float = 0.02,
               max_seconds: float = 10.0, lr: float = 1e-4, dump_hlo: str | None = None,
               log: Callable[[str], None] = lambda s: None) -> list[dict]:
    """Time one :class:`~flax_arch.parity.harness.Case`; one row (a dict) per mode.

    Raises only if the case cannot be set up; a failing implementation gets
    ``{"error": ...}`` in its row instead. A module without parameters has no train step.
    """
    b = prepare_bench(case)
    sampling = Sampling(runs, warmup, min_sample_s, max_seconds)
    rows = {m: dict(_base_row(b), mode=m, impls={}) for m in modes}
    if "train_step" in rows and b.n_params == 0:
        rows["train_step"]["impls"] = {i: {"error": "no parameters to train"} for i in impls}
    cache: list = []

    def translated() -> BenchCase:  # built once, on first use
        if not cache:
            cache.append(_translated(b))
        return cache[0]

    for (mode, impl), job in _jobs(b, sampling, lr, dump_hlo, translated).items():
        if mode not in rows or impl not in impls or rows[mode]["impls"].get(impl):
            continue
        log(f"{case.name}: {mode} {IMPL_LABEL[impl]}")
        try:
            rows[mode]["impls"][impl], fields = job()
            if impl != "flax_translated":  # the row's FLOPs etc. are the hand-written port's
                rows[mode].update(fields)
        except Exception as e:  # reported in the table, never fatal
            rows[mode]["impls"][impl] = {"error": first_line(e)}
    if "torch_compile" in impls:
        torch_side.reset_compiler()
    return [_with_ratios(r) for r in rows.values()]
