"""Plots for ``flax-arch bench`` (matplotlib, Agg backend; imported only for ``--plot``).

Each function takes the JSON payload the command writes (so a saved ``--json`` file can be
re-plotted: ``python -m flax_arch.bench.plot RESULT.json OUT.png``) and a PNG path.
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["plot_bench", "plot_sweep", "plot_flags", "PLOTS", "main"]

_COLORS = {"flax_jit": "#1f77b4", "torch_eager": "#ff7f0e", "torch_compile": "#2ca02c"}
_LABELS = {"flax_jit": "Flax (jax.jit)", "torch_eager": "torch eager",
           "torch_compile": "torch.compile"}


def _subtitle(meta: dict) -> str:
    dev = meta.get("cpu") if meta.get("backend") == "cpu" else meta.get("device_kind")
    load = meta.get("loadavg_start")
    s = f"{meta.get('backend', '?')}: {dev}; jax {meta.get('jax')}, torch {meta.get('torch')}"
    if meta.get("backend") == "cpu":
        s += f"; {meta.get('cpus_allowed')} cores, torch threads {meta.get('torch_threads')}"
        if load:
            s += f"; load avg {load[0]:.1f}"
    if meta.get("xla_flags"):
        s += f"\nXLA_FLAGS={meta['xla_flags']}"
    return s


def _ratio(r: float) -> str:
    return f"{r:.2f}x" if r < 10 else f"{r:.0f}x"


def _bench_bars(ax, by_case: dict, cases: list, impls: list) -> None:
    """One group of horizontal bars per case, one bar per implementation; whiskers =
    interquartile range."""
    bar = 0.8 / max(len(impls), 1)
    for j, impl in enumerate(impls):
        y, w, lo, hi = [], [], [], []
        for i, c in enumerate(cases):
            t = by_case.get(c, {}).get("impls", {}).get(impl, {})
            if "median_s" not in t:
                continue
            y.append(i + (j - (len(impls) - 1) / 2) * bar)
            w.append(t["median_s"] * 1e3)
            lo.append((t["median_s"] - t["q1_s"]) * 1e3)
            hi.append((t["q3_s"] - t["median_s"]) * 1e3)
        ax.barh(y, w, height=bar, color=_COLORS[impl], label=_LABELS[impl],
                xerr=[lo, hi] if w else None, error_kw={"lw": 0.8, "capsize": 1.5})


def _bench_panel(ax, rows: list, mode: str, cases: list, impls: list) -> None:
    """The bars of one mode, and torch eager / Flax right of them (red: torch faster)."""
    by_case = {r["case"]: r for r in rows if r["mode"] == mode}
    _bench_bars(ax, by_case, cases, impls)
    for i, c in enumerate(cases):
        ratio = by_case.get(c, {}).get("torch_eager_over_flax")
        if ratio:
            ax.annotate(_ratio(ratio), (1.0, i), xycoords=("axes fraction", "data"),
                        xytext=(3, 0), textcoords="offset points", va="center",
                        fontsize=7, color="k" if ratio >= 1 else "crimson",
                        annotation_clip=False)
    ax.set_xscale("log")
    ax.set_title(f"{mode.replace('_', ' ')}  (right: torch eager / Flax)", fontsize=10)
    ax.set_xlabel("median time per call [ms] (log)")
    ax.grid(axis="x", which="both", alpha=0.3)


def plot_bench(payload: dict, path: str) -> None:
    """Horizontal bars per case: median time per call of each implementation (log scale),
    whiskers = interquartile range; one panel per mode."""
    rows = payload["rows"]
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    cases = list(dict.fromkeys(r["case"] for r in rows))
    impls = [i for i in _COLORS if any(i in r["impls"] for r in rows)]
    h = max(3.0, 0.42 * len(cases) * max(1, len(impls)) / 2 + 1.5)
    fig, axes = plt.subplots(1, len(modes), figsize=(7 * len(modes), h), squeeze=False,
                             sharey=True)
    for ax, mode in zip(axes[0], modes):
        _bench_panel(ax, rows, mode, cases, impls)
    axes[0][0].set_ylim(len(cases) - 0.5, -0.5)  # first case on top
    axes[0][0].set_yticks(range(len(cases)))
    axes[0][0].set_yticklabels(cases, fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="upper right", ncol=len(impls))
    fig.suptitle("flax-arch bench\n" + _subtitle(payload.get("meta", {})), fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / h))
    fig.savefig(path, dpi=120)
    plt.close(fig)


_STYLES = ["o-", "s-", "^--", "D-", "v--", "x-"]


def _sweep_panel(ax, pts: list, mode: str, series: list) -> None:
    """One line per series (time against T, log-log), the quartiles shaded."""
    for k, name in enumerate(series):
        sel = sorted((p for p in pts if p["series"] == name and p["mode"] == mode
                      and p.get("median_s")), key=lambda p: p["T"])
        if not sel:
            continue
        T = np.array([p["T"] for p in sel])
        ax.plot(T, np.array([p["median_s"] for p in sel]) * 1e3, _STYLES[k % len(_STYLES)],
                label=name, ms=4)
        if all(p.get("q1_s") is not None for p in sel):
            ax.fill_between(T, [p["q1_s"] * 1e3 for p in sel],
                            [p["q3_s"] * 1e3 for p in sel], alpha=0.2)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("median time per call [ms]")
    ax.set_title(mode.replace("_", " "), fontsize=10)
    ax.grid(which="both", alpha=0.3)
    ax.legend(fontsize=8)


def plot_sweep(payload: dict, path: str) -> None:
    """Time per call against sequence length T (log-log), one line per implementation."""
    pts = payload["points"]
    modes = list(dict.fromkeys(p["mode"] for p in pts))
    series = list(dict.fromkeys(p["series"] for p in pts))
    fig, axes = plt.subplots(1, len(modes), figsize=(6.5 * len(modes), 4.8), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        _sweep_panel(ax, pts, mode, series)
    d = payload.get("dims", {})
    fig.suptitle(f"QRNN vs LSTM, B={d.get('B')}, F={d.get('F')}, H={d.get('H')}\n"
                 + _subtitle(payload.get("meta", {})), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _flags_panel(ax, summ: list, key: tuple, settings: list) -> None:
    """One case and mode: Flax time / default per setting (bars), torch eager's (dots)."""
    def rel(impl):
        return [next((e.get(f"{impl}_vs_default") for e in summ if e["setting"] == s
                      and (e["case"], e["mode"]) == key), None) for s in settings]
    x = np.arange(len(settings))
    ax.bar(x, [v or 0 for v in rel("flax_jit")], color=_COLORS["flax_jit"],
           label="Flax jit time / default")
    ax.plot(x, [v if v else np.nan for v in rel("torch_eager")], "o",
            color=_COLORS["torch_eager"], label="torch eager (control)")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels(settings, rotation=60, ha="right", fontsize=7)
    ax.set_title(f"{key[0]} {key[1].replace('_', ' ')}", fontsize=9)
    ax.set_ylabel("time relative to default (lower is faster)")
    ax.grid(axis="y", alpha=0.3)


def plot_flags(payload: dict, path: str) -> None:
    """Per setting, the Flax time relative to XLA's defaults (bars) and torch eager's
    relative time (dots, the machine-load control), for each case and mode."""
    summ = payload["summary"]
    keys = list(dict.fromkeys((e["case"], e["mode"]) for e in summ))
    settings = [s["name"] for s in payload["settings"]]
    ncols = min(len(keys), 3)
    nrows = -(-len(keys) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=((0.45 * len(settings) + 2) * ncols,
                                                    4.6 * nrows), squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    for ax, key in zip(axes.flat, keys):
        _flags_panel(ax, summ, key, settings)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("XLA:CPU settings\n" + _subtitle(payload.get("meta", {})), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


#: the plot of each report kind (the JSON's ``"kind"``)
PLOTS = {"bench": plot_bench, "sweep": plot_sweep, "xla_flags": plot_flags}


def main(argv=None) -> int:
    """``python -m flax_arch.bench.plot RESULT.json OUT.png``: re-plot a saved result."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(main.__doc__, file=sys.stderr)
        return 2
    with open(argv[0]) as fh:
        payload = json.load(fh)
    PLOTS[payload["kind"]](payload, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
