"""``flax-arch bench --compare-xla-flags``: the same cases under several XLA settings.

XLA parses ``XLA_FLAGS`` once, when the backend starts, so each setting runs in a fresh
``flax-arch bench`` process writing a JSON report; rounds (``--repeat``) interleave the
settings. The Flax medians are compared with the ``default`` setting's; torch eager runs in
every process too, as a control for machine-load drift.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Sequence

import numpy as np

from . import report

__all__ = ["FLAG_PRESETS", "CONV_HEAVY", "DEFAULT_XLA_CPU_FLAGS", "resolve_settings",
           "compare_table", "run_compare_flags"]

#: ``XLA_FLAGS`` made the default of ``--xla-cpu-flags`` (see docs/benchmarks.md, "XLA:CPU
#: options"); empty = XLA's own defaults.
DEFAULT_XLA_CPU_FLAGS = ""

#: Settings compared by ``--compare-xla-flags``: name → (XLA_FLAGS, extra environment,
#: extra ``flax-arch bench`` arguments).
FLAG_PRESETS: dict[str, tuple[str, dict[str, str], list[str]]] = {
    "default": ("", {}, []),
    # YNNPACK (XNNPACK's successor) runs dots and convolutions by default in this jaxlib;
    # an explicit list replaces the built-in one: "dot" keeps dots on YNNPACK and sends
    # convolutions back to XLA's own (Eigen) kernels; empty turns YNNPACK fusions off.
    "ynn_dot_only": ("--xla_cpu_experimental_ynn_fusion_type=dot", {}, []),
    "ynn_off": ("--xla_cpu_experimental_ynn_fusion_type=", {}, []),
    "ynn_all": ("--xla_cpu_experimental_ynn_fusion_type=dot,eltwise,reduce", {}, []),
    "xnnpack_off": ("--xla_cpu_use_xnnpack=false", {}, []),
    "xnn_graph_greedy": (
        "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY", {}, []),
    "onednn": ("--xla_cpu_use_onednn=true", {}, []),
    "eigen_single_thread": ("--xla_cpu_multi_thread_eigen=false", {}, []),
    "fast_runtime_preset": ("--xla_cpu_opt_preset=CPU_OPT_PRESET_FAST_RUNTIME", {}, []),
    "no_fusion_emitters": ("--xla_cpu_use_fusion_emitters=false", {}, []),
    "sync_dispatch": ("", {"JAX_CPU_ENABLE_ASYNC_DISPATCH": "false"}, []),
    "torch_1_thread": ("", {}, ["--torch-threads", "1"]),
    "one_core": ("", {}, ["--cpus", "1"]),
}

#: Cases ``--compare-xla-flags`` runs when no ``--only`` is given: the convolution-heavy
#: modules (their names in the registry) and the bench's own probes.
CONV_HEAVY = [r"^probe_", r"dcgan.*disc", r"disc.*dcgan", r"alexnet", r"res_?layer",
              r"inception"]

_IMPLS = ("flax_jit", "torch_eager")


def resolve_settings(items: Sequence[str]) -> list[tuple[str, str, dict, list]]:
    """Preset names or raw ``--xla_...`` strings → (name, XLA_FLAGS, env, extra args);
    ``default`` always first, every preset when none is given."""
    items = list(items) or list(FLAG_PRESETS)
    if "default" not in items:
        items = ["default", *items]
    out = []
    for it in items:
        if it in FLAG_PRESETS:
            out.append((it, *FLAG_PRESETS[it]))
        elif it.startswith("--"):
            out.append((it, it, {}, []))
        else:
            raise SystemExit(f"--compare-xla-flags: unknown preset {it!r} (presets: "
                             f"{', '.join(FLAG_PRESETS)}; or pass raw '--xla_...' flags)")
    return out


def _child_command(args) -> list[str]:
    """The ``flax-arch bench`` command each setting runs (no torch.compile, quiet)."""
    cmd = [sys.executable, "-m", "flax_arch.cli", "bench", "--only", *(args.only or CONV_HEAVY),
           "--size", args.size, "--flop-budget", str(args.flop_budget),
           "--runs", str(args.runs), "--warmup", str(args.warmup),
           "--min-sample-ms", str(args.min_sample_ms), "--max-seconds", str(args.max_seconds),
           "--modes", *args.modes, "--no-compile", "--quiet"]
    flags = {"--probes": args.probes, "--all-cases": args.all_cases,
             "--no-torch": args.no_torch}
    return cmd + [f for f, on in flags.items() if on]


def _run_setting(cmd: list[str], setting: tuple, path: str, rnd: int):
    """Run one setting's process; ``(payload, None)`` or ``(None, why it failed)``."""
    name, flags, env_extra, extra = setting
    env = dict(os.environ, **env_extra)
    if not os.environ.get("XLA_FLAGS"):
        env.pop("XLA_FLAGS", None)
    print(f"[flags] round {rnd + 1}: {name}: XLA_FLAGS={flags or '(none)'}"
          + (f" {env_extra}" if env_extra else "") + (f" {' '.join(extra)}" if extra else ""),
          file=sys.stderr, flush=True)
    proc = subprocess.run(cmd + [f"--xla-cpu-flags={flags or 'none'}", "--json", path, *extra],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.exists(path):
        return None, " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])[:400]
    with open(path) as f:
        return json.load(f), None


def _run_all(args, settings) -> tuple[dict, dict]:
    """Every setting, ``--repeat`` rounds interleaved: (name → payloads, name → failure)."""
    cmd = _child_command(args)
    results: dict[str, list[dict]] = {name: [] for name, *_ in settings}
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(max(args.repeat, 1)):
            for s in settings:
                slug = re.sub(r"[^\w]", "_", s[0])[:60]
                path = os.path.join(tmp, f"{len(results[s[0]])}_{slug}.json")
                payload, why = _run_setting(cmd, s, path, rnd)
                if why is not None:
                    failures[s[0]] = why
                else:
                    results[s[0]].append(payload)
    return results, failures


def run_compare_flags(args) -> int:
    """Run the selected cases (default: :data:`CONV_HEAVY`) once per setting and round,
    print the comparison, write the JSON / plot when asked."""
    settings = resolve_settings(args.compare_xla_flags)
    results, failures = _run_all(args, settings)
    table, summary = compare_table(settings, results)
    print(table)
    for name, why in failures.items():
        print(f"  {name}: failed: {why}")
    payload = {"kind": "xla_flags",
               "meta": report.machine_info(os.environ.get("XLA_FLAGS", "")),
               "args": report.args_dict(args),
               "settings": [{"name": n, "xla_flags": f, "env": e, "args": x}
                            for n, f, e, x in settings],
               "summary": summary, "failures": failures, "runs": results}
    return report.emit(payload, args)


# --------------------------------------------------------------------------- comparison

def _rows_of(payloads: list[dict], key: tuple) -> list[dict]:
    return [r for p in payloads for r in p["rows"] if (r["case"], r["mode"]) == key]


def _summary_entry(name: str, key: tuple, payloads: list[dict]) -> dict:
    """One setting, case and mode: per implementation the median over rounds of the
    medians, the min over rounds of the mins, and the first error."""
    entry = {"setting": name, "case": key[0], "mode": key[1]}
    rows = _rows_of(payloads, key)
    for impl in _IMPLS:
        got = [r["impls"][impl] for r in rows if "median_s" in r["impls"].get(impl, {})]
        entry[impl] = float(np.median([t["median_s"] for t in got])) if got else None
        entry[f"{impl}_min"] = float(min(t["min_s"] for t in got)) if got else None
        errs = [r["impls"][impl]["error"] for r in rows if "error" in r["impls"].get(impl, {})]
        if errs:
            entry[f"{impl}_error"] = errs[0]
    return entry


def _add_relative(e: dict, d: dict) -> None:
    """``*_vs_default`` (this setting over the default's) and ``torch_eager_over_flax``."""
    for impl in _IMPLS:
        if e.get(impl) and d.get(impl):
            e[f"{impl}_vs_default"] = e[impl] / d[impl]
        if e.get(f"{impl}_min") and d.get(f"{impl}_min"):
            e[f"{impl}_min_vs_default"] = e[f"{impl}_min"] / d[f"{impl}_min"]
    if e.get("flax_jit") and e.get("torch_eager"):
        e["torch_eager_over_flax"] = e["torch_eager"] / e["flax_jit"]


def _table_row(e: dict) -> tuple:
    def ms(v):
        return f"{v * 1e3:.3g}" if v else "-"

    def rel(k, suffix=""):
        return f"{e[k]:.2f}{suffix}" if k in e else "-"
    return (e["setting"], e["case"], e["mode"], ms(e.get("flax_jit")),
            rel("flax_jit_vs_default"), rel("flax_jit_min_vs_default"),
            ms(e.get("torch_eager")), rel("torch_eager_vs_default"),
            rel("torch_eager_over_flax", "x"))


def compare_table(settings, results: dict) -> tuple[str, list[dict]]:
    """The comparison table and its summary entries, one per (setting, case, mode)."""
    keys = list(dict.fromkeys((r["case"], r["mode"]) for runs in results.values()
                              for p in runs for r in p["rows"]))
    summary = [_summary_entry(name, key, results.get(name, []))
               for name, *_ in settings for key in keys]
    ref = {(e["case"], e["mode"]): e for e in summary if e["setting"] == "default"}
    for e in summary:
        _add_relative(e, ref.get((e["case"], e["mode"]), {}))
    header = ("setting", "case", "mode", "flax jit ms", "vs default", "min vs default",
              "torch eager ms", "vs default", "eager/flax")
    return report.fmt_table(header, [_table_row(e) for e in summary]), summary
