"""Output of the bench commands: tables, the JSON report and the environment it records.

Every JSON report's ``meta`` (:func:`machine_info`) records the date, the command, the
versions (python, jax, jaxlib, flax, optax, numpy, torch), the backend and devices, the
CPU model and cores, torch's threads, ``XLA_FLAGS``, the load average, and the source
state: the git ``commit`` of the checkout this package runs from (``None`` when it is not
one, e.g. an installed wheel) and whether that tree was ``dirty``. The versions, devices and
source state come from :func:`flax_arch.environment.environment`, which ``flax-arch
parity`` records too; its whole record is kept under ``environment``.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from typing import Callable

from ..environment import environment
from .case import IMPL_LABEL

__all__ = ["machine_info", "format_table", "fmt_table", "write_json", "emit"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _command() -> str:
    if sys.argv and sys.argv[0].endswith("flax-arch"):
        return "flax-arch " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return " ".join(sys.argv)


def loadavg() -> list[float]:
    return list(os.getloadavg())


def _torch_info(backend: str) -> dict:
    try:
        import torch
    except ImportError:
        return {"torch": None}
    info = {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "torch_cuda": torch.cuda.is_available() and backend == "gpu"}
    if info["torch_cuda"]:
        info["torch_device_name"] = torch.cuda.get_device_name()
    return info


def machine_info(xla_flags: str) -> dict:
    """The environment of a run (see the module docstring): the shared record of
    :func:`flax_arch.environment.environment` under ``environment``, and the bench's own
    fields (CPU, threads, load) at the top level, where earlier reports kept the versions
    too. ``loadavg_end`` and ``wall_s`` are added by the command when it finishes."""
    import jax
    env = environment()
    info = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": _command(), "python": env["python"],
            **{name: env["versions"][name] for name in ("jax", "jaxlib", "flax", "optax",
                                                          "numpy")},
            "backend": env["backend"], "devices": env["devices"],
            "device_kind": env["device_kind"],
            "cpu": _cpu_model(), "cpus_allowed": len(os.sched_getaffinity(0)),
            "xla_flags": xla_flags,
            "jax_cpu_async_dispatch": bool(jax.config.values.get(
                "jax_cpu_enable_async_dispatch", True)),
            "loadavg_start": loadavg(), "environment": env}
    info.update(_torch_info(info["backend"]))
    info.update(commit=env["commit"], dirty=env["dirty"])
    return info


def warn_if_loaded(info: dict) -> None:
    if info["backend"] == "cpu" and info["loadavg_start"][0] > 0.5 * info["cpus_allowed"]:
        print(f"[bench] warning: load average {info['loadavg_start'][0]:.1f} on "
              f"{info['cpus_allowed']} cores: other processes compete for the CPU, timings "
              "will be noisy; torch's OpenMP threads suffer most (a thread waiting at a "
              "barrier for a descheduled peer), see --torch-threads", file=sys.stderr)


def progress(tag: str, quiet: bool) -> Callable[[str], None]:
    """A progress logger writing ``[tag] ...`` lines to stderr (silent when ``quiet``)."""
    if quiet:
        return lambda s: None
    return lambda s: print(f"[{tag}] {s}", file=sys.stderr, flush=True)


def args_dict(args) -> dict:
    return {k: v for k, v in vars(args).items()
            if isinstance(v, (int, float, str, list, bool, type(None)))}


# --------------------------------------------------------------------------- tables

def fmt_table(header, rows) -> str:
    """Left-aligned columns, a dashed rule under the header."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

    def line(r):
        return "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _ms(t: dict | None) -> str:
    if not t:
        return "-"
    if "error" in t:
        return "error"
    med = t["median_s"]
    spread = (t["q3_s"] - t["q1_s"]) / med * 100 if med > 0 else 0.0
    return f"{med * 1e3:.3g} ±{spread:.0f}%"


def _table_row(r: dict, translated: bool = False) -> tuple:
    im = r["impls"]
    f, te, tc = im.get("flax_jit"), im.get("torch_eager"), im.get("torch_compile")
    flops = r.get("xla_flops")
    gf = "-" if not flops else ("≥" if r.get("flops_lower_bound") else "") + f"{flops / 1e9:.3g}"
    ratio = r.get("torch_eager_over_flax")
    cells = (r["case"], r.get("size", ""), r["mode"], _ms(f), _ms(te), _ms(tc),
             f"{ratio:.2f}x" if ratio else "-", gf,
             f"{f['gflops_per_s']:.3g}" if f and "gflops_per_s" in f else "-",
             f"{f['compile_s']:.2f}" if f and "compile_s" in f else "-",
             f"{tc['compile_s']:.1f}" if tc and "compile_s" in tc else "-")
    if translated:
        tr = r.get("translated_over_flax")
        cells += (_ms(im.get("flax_translated")), f"{tr:.2f}x" if tr else "-")
    return cells


def format_table(rows: list[dict]) -> str:
    """The bench table: per case and mode, median ms (± interquartile range / median) per
    implementation, torch-eager time over Flax time, XLA FLOPs (≥: a loop counted once),
    achieved GFLOP/s and compile times."""
    header = ("case", "size", "mode", "flax jit ms", "torch eager ms", "torch.compile ms",
              "eager/flax", "GFLOP", "flax GFLOP/s", "jax compile s", "torch.compile s")
    translated = any("flax_translated" in r["impls"] for r in rows)
    if translated:  # flax-arch bench --translated
        header += ("from_torch jit ms", "from_torch/flax")
    return fmt_table(header, [_table_row(r, translated) for r in rows])


def errors(rows: list[dict]) -> list[str]:
    return [f"{r['case']} {r['mode']} {IMPL_LABEL.get(k, k)}: {v['error']}"
            for r in rows for k, v in r["impls"].items() if "error" in v]


# --------------------------------------------------------------------------- files

def write_json(path: str, payload: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)


def emit(payload: dict, args) -> int:
    """Write the JSON (``--json``) and the plot (``--plot``) of a finished command;
    returns its exit status (3: the plot needs matplotlib)."""
    if args.json:
        write_json(args.json, payload)
    if not args.plot:
        return 0
    try:
        from . import plot
    except ImportError as e:
        print(f"--plot needs matplotlib ({e}); install it with pip install "
              "'flax-arch[train]' or pip install matplotlib", file=sys.stderr)
        return 3
    plot.PLOTS[payload["kind"]](payload, args.plot)
    print(f"plot written to {args.plot}")
    return 0
