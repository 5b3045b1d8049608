"""Sampling and statistics: how one measurement is taken.

A measurement warms up, calibrates ``k`` (calls per sample) from the fastest warm-up call,
then takes samples of ``k`` back-to-back calls closed by one synchronisation, and reports
seconds per call: median, quartiles, min, max.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable

import numpy as np

__all__ = ["measure", "Sampling"]


def _calibrate(call: Callable[[], Any], sync: Callable[[Any], Any], warmup: int,
               min_sample_s: float) -> int:
    """Run the warm-up calls; the fastest one sets ``k`` so a sample lasts ≥ min_sample_s."""
    once = float("inf")
    for _ in range(max(warmup, 0) + 1):
        t0 = time.perf_counter()
        sync(call())
        once = min(once, time.perf_counter() - t0)
    return max(1, min(10_000, math.ceil(min_sample_s / max(once, 1e-7))))


def _summary(samples: list[float], k: int) -> dict:
    a = np.asarray(samples)
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {"median_s": float(med), "q1_s": float(q1), "q3_s": float(q3),
            "min_s": float(a.min()), "max_s": float(a.max()), "n": len(samples),
            "calls_per_sample": k}


def measure(call: Callable[[], Any], sync: Callable[[Any], Any], *, runs: int = 10,
            warmup: int = 2, min_sample_s: float = 0.02, max_seconds: float = 10.0) -> dict:
    """Time ``call``: ``warmup`` calls, then up to ``runs`` samples of ``k`` back-to-back
    calls closed by one ``sync(last_output)``; ``k`` makes a sample last ≥ ``min_sample_s``.
    Sampling stops after ``max_seconds`` once 3 samples exist. Returns seconds per call:
    median, quartiles, min, max, the sample count and ``calls_per_sample``."""
    k = _calibrate(call, sync, warmup, min_sample_s)
    samples: list[float] = []
    start = time.perf_counter()
    for _ in range(max(runs, 1)):
        t0 = time.perf_counter()
        for _ in range(k):
            out = call()
        sync(out)
        samples.append((time.perf_counter() - t0) / k)
        if time.perf_counter() - start > max_seconds and len(samples) >= 3:
            break
    return _summary(samples, k)


@dataclasses.dataclass(frozen=True)
class Sampling:
    """The sampling options of one bench run (``--runs``, ``--warmup``, ...)."""

    runs: int = 10
    warmup: int = 2
    min_sample_s: float = 0.02
    max_seconds: float = 10.0

    @classmethod
    def from_args(cls, args) -> "Sampling":
        return cls(args.runs, args.warmup, args.min_sample_ms / 1e3, args.max_seconds)

    def measure(self, call: Callable[[], Any], sync: Callable[[Any], Any]) -> dict:
        return measure(call, sync, **dataclasses.asdict(self))
