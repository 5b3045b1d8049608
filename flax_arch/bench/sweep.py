"""``flax-arch bench --sweep``: QRNN vs LSTM, time against sequence length.

At each length ``T`` the QRNN layer (``scan`` and ``associative`` pooling) and the LSTM
are timed with :func:`~.case.bench_case` (Flax under jit; torch eager for the LSTM and for
the slide's QRNN loop), input ``(B, T, F)`` batch-first on both sides. A series whose
module is not importable is left out with a note.
"""

from __future__ import annotations

from ..parity.harness import Case
from . import report
from .case import bench_case
from .probes import normal_inputs
from .timing import Sampling

__all__ = ["sweep_cases", "run_sweep"]


def _qrnn_series(T: int, B: int, F: int, H: int) -> dict:
    from ..models.qrnn import QRNNLayer
    from torch_ref.qrnn import fQRNNLayer
    cases = {p: Case(f"qrnn_{p}_T{T}", lambda: fQRNNLayer(F, H, kwidth=2),
                     lambda r, _p=p: QRNNLayer(F, H, kwidth=2, pooling=_p, rngs=r),
                     normal_inputs(B, T, F))
             for p in ("scan", "associative")}
    return {"QRNN scan (flax jit)": (cases["scan"], "flax_jit"),
            "QRNN associative (flax jit)": (cases["associative"], "flax_jit"),
            "QRNN slide loop (torch eager)": (cases["scan"], "torch_eager")}


def _lstm_series(T: int, B: int, F: int, H: int) -> dict:
    import torch.nn as tnn
    from ..nn.recurrent import LSTM
    case = Case(f"lstm_T{T}", lambda: tnn.LSTM(F, H, batch_first=True),
                lambda r: LSTM(F, H, batch_first=True, rngs=r), normal_inputs(B, T, F))
    return {"LSTM (flax jit)": (case, "flax_jit"), "LSTM (torch eager)": (case, "torch_eager")}


def sweep_cases(T: int, B: int = 8, F: int = 256, H: int = 256):
    """(series name → (case, impl)) for the sweep at length ``T``, and notes for the
    modules that are not available."""
    series, notes = {}, []
    for name, build in (("QRNN", _qrnn_series), ("Flax LSTM", _lstm_series)):
        try:
            series.update(build(T, B, F, H))
        except ImportError as e:
            notes.append(f"{name} not available ({e})")
    return series, notes


def _points_at(T: int, dims, args, log) -> tuple[list[dict], list[str]]:
    """Time every series at length ``T``; a case shared by several series runs once."""
    series, notes = sweep_cases(T, *dims)
    by_case: dict[str, tuple] = {}
    for name, (case, impl) in series.items():
        by_case.setdefault(case.name, (case, []))[1].append((name, impl))
    points = []
    s = Sampling.from_args(args)
    for case, entries in by_case.values():
        rows = bench_case(case, modes=args.modes, impls=[impl for _, impl in entries],
                          runs=s.runs, warmup=s.warmup, min_sample_s=s.min_sample_s,
                          max_seconds=s.max_seconds, lr=args.lr, log=log)
        points += [_point(name, T, r, impl) for r in rows for name, impl in entries]
    return points, notes


def _point(name: str, T: int, row: dict, impl: str) -> dict:
    t = row["impls"].get(impl, {})
    return {"series": name, "T": T, "mode": row["mode"], "median_s": t.get("median_s"),
            "q1_s": t.get("q1_s"), "q3_s": t.get("q3_s"), "error": t.get("error"),
            "xla_flops": row.get("xla_flops") if impl == "flax_jit" else None}


def _mode_table(points: list[dict], mode: str, seq_lens) -> str:
    """Median ms per series (columns) and length (rows) for one mode."""
    names = list(dict.fromkeys(p["series"] for p in points))
    at = {(p["series"], p["T"]): p for p in points if p["mode"] == mode}

    def cell(p):
        if p is None:
            return "-"
        return "error" if p["error"] or p["median_s"] is None else f"{p['median_s'] * 1e3:.3g}"
    return report.fmt_table(("T", *names), [(T, *(cell(at.get((n, T))) for n in names))
                                            for T in seq_lens])


def run_sweep(args, xla_flags: str) -> int:
    """Time the QRNN and LSTM layers against sequence length (forward and train step);
    print one table per mode, write the JSON / plot when asked."""
    B, F, H = args.sweep_dims
    info = report.machine_info(xla_flags)
    report.warn_if_loaded(info)
    log = report.progress("sweep", args.quiet)
    points, notes = [], set()
    for T in args.seq_lens:
        got, n = _points_at(T, (B, F, H), args, log)
        points += got
        notes.update(n)
    info["loadavg_end"] = report.loadavg()
    for mode in args.modes:
        print(f"\n{mode} (ms), B={B}, F={F}, H={H}")
        print(_mode_table(points, mode, args.seq_lens))
    for p in points:
        if p["error"]:
            print(f"  {p['series']} T={p['T']} {p['mode']}: {p['error']}")
    for n in sorted(notes):
        print("note:", n)
    payload = {"kind": "sweep", "meta": info, "args": report.args_dict(args),
               "dims": {"B": B, "F": F, "H": H}, "notes": sorted(notes), "points": points}
    return report.emit(payload, args)
