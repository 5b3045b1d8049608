"""``flax-arch bench``'s command line: the options, the machine settings applied before
JAX and torch start, and the dispatch to the bench table, ``--sweep`` or
``--compare-xla-flags``."""

from __future__ import annotations

import os
import sys
import tempfile
import time

from ..cli import (CLIError, nonnegative_float, nonnegative_int, output_dir, output_file,
                   positive_float, positive_int, regex)
from ..environment import summary
from . import report
from .case import MODES, bench_case, first_line
from .plan import Planned, plan_cases, torch_class
from .probes import probe_cases
from .timing import Sampling
from .xla_flags import DEFAULT_XLA_CPU_FLAGS, FLAG_PRESETS

__all__ = ["add_arguments", "run"]


# --------------------------------------------------------------------------- arguments

def _selection_arguments(p) -> None:
    g = p.add_argument_group("what to run")
    g.add_argument("--only", nargs="+", metavar="REGEX", type=regex,
                   help="cases whose name matches one of these regular expressions")
    g.add_argument("--size", choices=["auto", "small", "slide"], default="auto",
                   help="per module: the registry's slide-size case ('slide'), its small CI "
                        "case ('small'), or the slide size when its forward pass costs at most "
                        "--flop-budget FLOPs and the small one otherwise ('auto', default)")
    g.add_argument("--flop-budget", type=nonnegative_float, default=2e9, metavar="FLOPS",
                   help="forward FLOPs up to which --size auto takes the slide size "
                        "(default 2e9)")
    g.add_argument("--all-cases", action="store_true",
                   help="every selected case rather than one per module")
    g.add_argument("--probes", action="store_true",
                   help="add the bench's own probes (DCGAN discriminator at batch 32)")
    g.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    g.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    g.add_argument("--no-torch", action="store_true", help="time the Flax side only")
    g.add_argument("--translated", action="store_true",
                   help="also time each case's torch module translated by "
                        "flax_arch.from_torch (column 'from_torch jit', ratio "
                        "translated/flax)")
    g.add_argument("--list", action="store_true", help="list the planned cases and exit")


def _timing_arguments(p) -> None:
    g = p.add_argument_group("timing")
    g.add_argument("--runs", type=positive_int, default=10, metavar="N",
                   help="timed samples per measurement (default 10)")
    g.add_argument("--warmup", type=nonnegative_int, default=2, metavar="N",
                   help="untimed calls before timing (default 2)")
    g.add_argument("--min-sample-ms", type=nonnegative_float, default=20.0, metavar="MS",
                   help="repeat a call within one sample until the sample lasts this long "
                        "(default 20)")
    g.add_argument("--max-seconds", type=positive_float, default=10.0, metavar="S",
                   help="stop sampling a measurement after this long (at least 3 samples)")
    g.add_argument("--lr", type=positive_float, default=1e-4,
                   help="SGD learning rate (default 1e-4)")


def _output_arguments(p) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--json", metavar="PATH", type=output_file,
                   help="write the results as JSON")
    g.add_argument("--plot", metavar="PATH.png", type=output_file,
                   help="write a plot (needs matplotlib)")
    g.add_argument("--dump-hlo", metavar="DIR", type=output_dir,
                   help="write each compiled XLA program (optimised HLO) to DIR")
    g.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def _machine_arguments(p) -> None:
    g = p.add_argument_group("machine settings (applied before JAX and torch start)")
    g.add_argument("--xla-cpu-flags", default=None, metavar="FLAGS",
                   help="appended to XLA_FLAGS before the JAX backend starts "
                        f"(default: {DEFAULT_XLA_CPU_FLAGS or 'none'}; 'none' for XLA's own)")
    g.add_argument("--torch-threads", type=positive_int, metavar="N",
                   help="torch.set_num_threads(N) (default: torch's, = cores)")
    g.add_argument("--cpus", type=positive_int, metavar="N",
                   help="pin this process to its first N allowed CPUs (both frameworks)")
    g.add_argument("--warm-compile-cache", action="store_true",
                   help="let torch.compile use inductor's on-disk cache (default: a fresh "
                        "empty one, so its first-call time is a cold compile, like JAX's)")


def _other_arguments(p) -> None:
    g = p.add_argument_group("other benchmarks")
    g.add_argument("--sweep", action="store_true",
                   help="QRNN (scan, associative) vs LSTM (Flax, torch) vs the slide's torch "
                        "QRNN loop, time against sequence length")
    g.add_argument("--seq-lens", type=positive_int, nargs="+", metavar="T",
                   default=[16, 32, 64, 128, 256, 512, 1024],
                   help="--sweep: sequence lengths (default 16 … 1024)")
    g.add_argument("--sweep-dims", type=positive_int, nargs=3, metavar=("B", "F", "H"),
                   default=[8, 256, 256], help="--sweep: batch, input and hidden size")
    g.add_argument("--compare-xla-flags", nargs="*", metavar="PRESET_OR_FLAGS",
                   help="run the selected cases (default: the convolution-heavy ones) once "
                        "per setting, each in a fresh process, and compare; settings are "
                        f"preset names ({', '.join(FLAG_PRESETS)}) or raw XLA_FLAGS strings; "
                        "none given = all presets")
    g.add_argument("--repeat", type=positive_int, default=1, metavar="K",
                   help="--compare-xla-flags: rounds, settings interleaved (default 1)")


def add_arguments(p) -> None:
    """The options of ``flax-arch bench``, in groups."""
    for group in (_selection_arguments, _timing_arguments, _output_arguments,
                  _machine_arguments, _other_arguments):
        group(p)


# --------------------------------------------------------------------------- environment

def _fresh_inductor_cache() -> None:
    import atexit
    import shutil
    d = tempfile.mkdtemp(prefix="flax_arch_bench_inductor_")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = d  # read by inductor when it compiles
    atexit.register(shutil.rmtree, d, ignore_errors=True)


def apply_machine_settings(args) -> str:
    """CPU affinity, inductor's cache and ``XLA_FLAGS``: must happen before the JAX
    backend (or torch) starts. Returns the ``XLA_FLAGS`` in effect."""
    from jax._src import xla_bridge
    flags = args.xla_cpu_flags if args.xla_cpu_flags is not None else DEFAULT_XLA_CPU_FLAGS
    flags = "" if flags.strip().lower() == "none" else flags.strip()
    if args.cpus:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.cpus])
    if not args.warm_compile_cache and not args.no_compile:
        _fresh_inductor_cache()
    if flags:
        if xla_bridge.backends_are_initialized():
            raise RuntimeError("--xla-cpu-flags: the JAX backend is already running in this "
                               "process; XLA reads its flags only when it starts")
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()
    return os.environ.get("XLA_FLAGS", "")


def setup_frameworks(torch_threads: int | None = None):
    """Full-precision matmuls in JAX; torch's thread count. Returns torch, or ``None``
    when it is not installed."""
    import jax
    jax.config.update("jax_default_matmul_precision", "highest")
    try:
        import torch
    except ImportError:
        return None
    if torch_threads:
        torch.set_num_threads(torch_threads)
    return torch


# --------------------------------------------------------------------------- commands

def run(args) -> int:
    """``flax-arch bench``: the XLA-flag comparison, the sweep, or the bench table."""
    if args.compare_xla_flags is not None:
        from .xla_flags import resolve_settings, run_compare_flags
        try:  # an unknown preset: a user error, reported before anything runs
            resolve_settings(args.compare_xla_flags)
        except SystemExit as e:
            raise CLIError(str(e)) from None
        return run_compare_flags(args)
    xla_flags = apply_machine_settings(args)
    if setup_frameworks(args.torch_threads or args.cpus) is None:
        print("flax-arch bench needs torch (pip install 'flax-arch[torch]')", file=sys.stderr)
        return 2
    if args.sweep:
        from .sweep import run_sweep
        return run_sweep(args, xla_flags)
    plan = _plan(args)
    if plan is None:
        print("no case matches", args.only, file=sys.stderr)
        return 2
    if args.list:
        _print_plan(plan)
        return 0
    return _run_table(args, plan, xla_flags)


def _plan(args) -> list[Planned] | None:
    """The planned registry cases, then the probes (asked for with --probes or an --only
    pattern naming "probe"; never grouped away); ``None`` when nothing matches."""
    from ..parity.registry import all_cases, select
    cases = select(all_cases(), args.only)
    probes = args.probes or any("probe" in p for p in args.only or ())
    extra = select(probe_cases(), args.only) if probes else []
    if not cases and not extra:
        return None
    plan = plan_cases(cases, args.size, args.flop_budget, args.all_cases) if cases else []
    return plan + [Planned(c, "probe", torch_class(c)) for c in extra]


def _print_plan(plan: list[Planned]) -> None:
    for p in plan:
        est = f"  ~{p.est_flops:.3g} fwd FLOPs" if p.est_flops is not None else ""
        print(f"{p.case.name}  [{p.size}]  {p.module}{est}" + (f"  ({p.note})" if p.note else ""))


def _impls(args) -> list[str]:
    extra = ["flax_translated"] if args.translated else []
    if args.no_torch:
        return ["flax_jit", *extra]
    return ["flax_jit", *extra, "torch_eager"] + ([] if args.no_compile else ["torch_compile"])


def _case_rows(p: Planned, args, log) -> list[dict]:
    """One planned case's rows; a case that cannot even be set up gets an error row."""
    s = Sampling.from_args(args)
    try:
        rows = bench_case(p.case, modes=args.modes, impls=_impls(args), runs=s.runs,
                          warmup=s.warmup, min_sample_s=s.min_sample_s,
                          max_seconds=s.max_seconds, lr=args.lr, dump_hlo=args.dump_hlo,
                          log=log)
    except Exception as e:
        rows = [{"case": p.case.name, "mode": m, "impls": {"flax_jit": {"error": first_line(e)}}}
                for m in args.modes]
    for r in rows:
        r.update(size=p.size, module=p.module)
    return rows


def _run_table(args, plan: list[Planned], xla_flags: str) -> int:
    """Time every planned case; print the table and a summary line; JSON / plot."""
    info = report.machine_info(xla_flags)
    log = report.progress("bench", args.quiet)
    report.warn_if_loaded(info)
    rows, t_start = [], time.perf_counter()
    for i, p in enumerate(plan):
        log(f"({i + 1}/{len(plan)}) {p.case.name} [{p.size}]")
        rows += _case_rows(p, args, log)
    info["loadavg_end"] = report.loadavg()
    info["wall_s"] = time.perf_counter() - t_start
    print(report.format_table(rows))
    for e in report.errors(rows):
        print("  " + e)
    where = info["cpu"] if info["backend"] == "cpu" else info["device_kind"]
    print(f"{len(plan)} cases on {info['backend']} ({where}), load average "
          f"{info['loadavg_start'][0]:.1f} → {info['loadavg_end'][0]:.1f}, "
          f"{info['wall_s']:.0f} s; XLA_FLAGS={xla_flags or '(none)'}")
    print(summary(info["environment"]))
    payload = {"kind": "bench", "meta": info, "args": report.args_dict(args), "rows": rows}
    return report.emit(payload, args)
