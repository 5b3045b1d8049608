"""``flax-arch bench``: time every registered module, Flax under ``jax.jit`` against torch.

For each module of the parity registry (:mod:`parity_tests.cases`) one case is chosen
(``--size``) and timed in two modes:

* ``forward``: one call of the module on the case's inputs (torch under ``no_grad``; in
  train mode the BatchNorm running statistics are updated, and returned on the JAX side so
  XLA cannot drop the update);
* ``train_step``: forward, backward of ``L = Σ_i <out_i, g_i>`` (fixed random cotangents, as
  in the parity harness) and an SGD update of every parameter (``optax.sgd`` inside one
  ``jax.jit`` with the state donated; ``torch.optim.SGD`` on torch).

Three implementations: the Flax module under ``jax.jit`` (``nnx.split`` / ``nnx.merge``
around a pure function, compiled ahead of time with ``jit(f).lower(...).compile()``), the
``torch_ref`` module eagerly, and the same under ``torch.compile``. Compilation is timed
apart from execution (JAX: trace+lower and XLA compile; ``torch.compile``: the first call).
Each measurement warms up, then takes ``--runs`` samples; a sample is ``k`` back-to-back calls
followed by one synchronisation (``block_until_ready`` / ``torch.cuda.synchronize``), ``k``
chosen so a sample lasts at least ``--min-sample-ms``. Reported: the median time per call
and the spread (quartiles, min, max). FLOPs come from XLA's cost analysis of the compiled
program; GFLOP/s = FLOPs / median time.

Also here: ``--sweep`` (QRNN vs LSTM, time against sequence length) and
``--compare-xla-flags`` (the same cases under several ``XLA_FLAGS`` settings, each in its
own process since XLA reads its flags once, when the backend starts).
See ``docs/benchmarks.md`` for the methodology and measured numbers.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["add_arguments", "run", "plan_cases", "bench_case", "measure", "probe_cases",
           "sweep_cases", "FLAG_PRESETS", "IMPLS", "MODES"]

IMPLS = ("flax_jit", "torch_eager", "torch_compile")
MODES = ("forward", "train_step")
IMPL_LABEL = {"flax_jit": "flax jit", "torch_eager": "torch eager",
              "torch_compile": "torch.compile"}

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


# --------------------------------------------------------------------------- arguments

def add_arguments(p):
    g = p.add_argument_group("what to run")
    g.add_argument("--only", nargs="+", metavar="REGEX",
                   help="cases whose name matches one of these regular expressions")
    g.add_argument("--size", choices=["auto", "small", "slide"], default="auto",
                   help="per module: the registry's slide-size case ('slide'), its small CI "
                        "case ('small'), or the slide size when its forward pass costs at most "
                        "--flop-budget FLOPs and the small one otherwise ('auto', default)")
    g.add_argument("--flop-budget", type=float, default=2e9, metavar="FLOPS",
                   help="forward FLOPs up to which --size auto takes the slide size "
                        "(default 2e9)")
    g.add_argument("--all-cases", action="store_true",
                   help="every selected case rather than one per module")
    g.add_argument("--probes", action="store_true",
                   help="add the bench's own probes (DCGAN discriminator at batch 32)")
    g.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    g.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    g.add_argument("--no-torch", action="store_true", help="time the Flax side only")
    g.add_argument("--list", action="store_true", help="list the planned cases and exit")
    g = p.add_argument_group("timing")
    g.add_argument("--runs", type=int, default=10, metavar="N",
                   help="timed samples per measurement (default 10)")
    g.add_argument("--warmup", type=int, default=2, metavar="N",
                   help="untimed calls before timing (default 2)")
    g.add_argument("--min-sample-ms", type=float, default=20.0, metavar="MS",
                   help="repeat a call within one sample until the sample lasts this long "
                        "(default 20)")
    g.add_argument("--max-seconds", type=float, default=10.0, metavar="S",
                   help="stop sampling a measurement after this long (at least 3 samples)")
    g.add_argument("--lr", type=float, default=1e-4, help="SGD learning rate (default 1e-4)")
    g = p.add_argument_group("output")
    g.add_argument("--json", metavar="PATH", help="write the results as JSON")
    g.add_argument("--plot", metavar="PATH.png", help="write a plot (needs matplotlib)")
    g.add_argument("--dump-hlo", metavar="DIR",
                   help="write each compiled XLA program (optimised HLO) to DIR")
    g.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    g = p.add_argument_group("machine settings (applied before JAX and torch start)")
    g.add_argument("--xla-cpu-flags", default=None, metavar="FLAGS",
                   help="appended to XLA_FLAGS before the JAX backend starts "
                        f"(default: {DEFAULT_XLA_CPU_FLAGS or 'none'}; 'none' for XLA's own)")
    g.add_argument("--torch-threads", type=int, metavar="N",
                   help="torch.set_num_threads(N) (default: torch's, = cores)")
    g.add_argument("--cpus", type=int, metavar="N",
                   help="pin this process to its first N allowed CPUs (both frameworks)")
    g.add_argument("--warm-compile-cache", action="store_true",
                   help="let torch.compile use inductor's on-disk cache (default: a fresh "
                        "empty one, so its first-call time is a cold compile, like JAX's)")
    g = p.add_argument_group("other benchmarks")
    g.add_argument("--sweep", action="store_true",
                   help="QRNN (scan, associative) vs LSTM (Flax, torch) vs the slide's torch "
                        "QRNN loop, time against sequence length")
    g.add_argument("--seq-lens", type=int, nargs="+", metavar="T",
                   default=[16, 32, 64, 128, 256, 512, 1024],
                   help="--sweep: sequence lengths (default 16 … 1024)")
    g.add_argument("--sweep-dims", type=int, nargs=3, metavar=("B", "F", "H"),
                   default=[8, 256, 256], help="--sweep: batch, input and hidden size")
    g.add_argument("--compare-xla-flags", nargs="*", metavar="PRESET_OR_FLAGS",
                   help="run the selected cases (default: the convolution-heavy ones) once "
                        "per setting, each in a fresh process, and compare; settings are "
                        f"preset names ({', '.join(FLAG_PRESETS)}) or raw XLA_FLAGS strings; "
                        "none given = all presets")
    g.add_argument("--repeat", type=int, default=1, metavar="K",
                   help="--compare-xla-flags: rounds, settings interleaved (default 1)")


# --------------------------------------------------------------------------- environment

def _apply_machine_settings(args) -> str:
    """XLA_FLAGS, CPU affinity: must happen before the JAX backend (or torch) starts."""
    from jax._src import xla_bridge
    flags = args.xla_cpu_flags if args.xla_cpu_flags is not None else DEFAULT_XLA_CPU_FLAGS
    flags = "" if flags.strip().lower() == "none" else flags.strip()
    if args.cpus:
        allowed = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, allowed[:args.cpus])
    if not args.warm_compile_cache and not args.no_compile:
        import atexit
        import shutil
        d = tempfile.mkdtemp(prefix="flax_arch_bench_inductor_")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = d  # read by inductor when it compiles
        atexit.register(shutil.rmtree, d, ignore_errors=True)
    if flags:
        if xla_bridge.backends_are_initialized():
            raise RuntimeError("--xla-cpu-flags: the JAX backend is already running in this "
                               "process; XLA reads its flags only when it starts")
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()
    return os.environ.get("XLA_FLAGS", "")


def _setup_frameworks(torch_threads: int | None = None):
    import jax
    jax.config.update("jax_default_matmul_precision", "highest")
    try:
        import torch
    except ImportError:
        return None
    if torch_threads:
        torch.set_num_threads(torch_threads)
    return torch


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(xla_flags: str) -> dict:
    import flax
    import jax
    import jaxlib
    info = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "flax-arch " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        if sys.argv and sys.argv[0].endswith("flax-arch") else " ".join(sys.argv),
        "python": platform.python_version(),
        "jax": jax.__version__, "jaxlib": jaxlib.__version__, "flax": flax.__version__,
        "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        "cpu": _cpu_model(), "cpus_allowed": len(os.sched_getaffinity(0)),
        "xla_flags": xla_flags,
        "jax_cpu_async_dispatch": bool(jax.config.values.get("jax_cpu_enable_async_dispatch",
                                                             True)),
        "loadavg_start": list(os.getloadavg()),
    }
    try:
        import torch
        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads(),
                    torch_cuda=torch.cuda.is_available() and jax.default_backend() == "gpu")
        if info["torch_cuda"]:
            info["torch_device_name"] = torch.cuda.get_device_name()
    except ImportError:
        info["torch"] = None
    return info


# --------------------------------------------------------------------------- timing

def measure(call: Callable[[], Any], sync: Callable[[Any], Any], *, runs: int = 10,
            warmup: int = 2, min_sample_s: float = 0.02, max_seconds: float = 10.0) -> dict:
    """Time ``call``: ``warmup`` calls, then up to ``runs`` samples of ``k`` back-to-back
    calls closed by one ``sync(last_output)``; ``k`` makes a sample last ≥ ``min_sample_s``.
    Returns seconds per call: median, quartiles, min, max, and the sample count."""
    once = float("inf")
    for _ in range(max(warmup, 0) + 1):  # the fastest warm-up call calibrates k
        t0 = time.perf_counter()
        sync(call())
        once = min(once, time.perf_counter() - t0)
    k = max(1, min(10_000, math.ceil(min_sample_s / max(once, 1e-7))))
    samples = []
    start = time.perf_counter()
    for _ in range(max(runs, 1)):
        t0 = time.perf_counter()
        for _ in range(k):
            out = call()
        sync(out)
        samples.append((time.perf_counter() - t0) / k)
        if time.perf_counter() - start > max_seconds and len(samples) >= 3:
            break
    a = np.asarray(samples)
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {"median_s": float(med), "q1_s": float(q1), "q3_s": float(q3),
            "min_s": float(a.min()), "max_s": float(a.max()), "n": len(samples),
            "calls_per_sample": k}


# --------------------------------------------------------------------------- case plan

def _torch_class(case) -> str:
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


def forward_flops_estimate(case) -> float:
    """Matmul/conv FLOPs of one torch forward (torch's FlopCounterMode), run on meta tensors
    when the module allows it, otherwise for real; ``inf`` if it cannot run."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    raw = [np.asarray(a) for a in case.inputs(np.random.default_rng(case.seed))]

    def count(device):
        with torch.device(device):
            m = case.torch_module()
        m = m.to(torch.float32).train(case.train)
        xs = [torch.as_tensor(a.astype(np.float32) if np.issubdtype(a.dtype, np.floating)
                              else a).to(device) for a in raw]
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            case.torch_call(m, *xs) if case.torch_call else m(*xs)
        return float(fc.get_total_flops())

    for device in ("meta", "cpu"):
        try:
            return count(device)
        except Exception:
            continue
    return float("inf")


@dataclasses.dataclass
class Planned:
    case: Any
    size: str  # "slide" (tagged slow) or "small"
    module: str
    est_flops: float | None = None
    note: str = ""


def plan_cases(cases, size: str = "auto", flop_budget: float = 2e9,
               all_cases: bool = False) -> list[Planned]:
    """One case per torch module class (registry order), chosen by ``size``; every case
    with ``all_cases``."""
    label = lambda c: "slide" if "slow" in c.tags else "small"  # noqa: E731
    if all_cases:
        return [Planned(c, label(c), _torch_class(c)) for c in cases]
    groups: dict[str, list] = {}
    for c in cases:
        groups.setdefault(_torch_class(c), []).append(c)
    plan = []
    for module, group in groups.items():
        slides = [c for c in group if "slow" in c.tags]
        smalls = [c for c in group if "slow" not in c.tags]
        if size == "small":
            pick = smalls[0] if smalls else slides[0]
            plan.append(Planned(pick, label(pick), module))
        elif size == "slide":
            pick = slides[0] if slides else smalls[0]
            plan.append(Planned(pick, label(pick), module))
        else:
            if slides:
                est = forward_flops_estimate(slides[0])
                if est <= flop_budget or not smalls:
                    note = "" if est <= flop_budget else "over --flop-budget, no small case"
                    plan.append(Planned(slides[0], "slide", module, est, note))
                    continue
                plan.append(Planned(smalls[0], "small", module, None,
                                    f"slide size {est:.2g} FLOPs > --flop-budget"))
            else:
                plan.append(Planned(smalls[0], "small", module))
    return plan


# --------------------------------------------------------------------------- one case

def _flatten(x) -> list:
    if isinstance(x, (tuple, list)):
        return [y for item in x for y in _flatten(item)]
    return [x]


def _layout(seq, i):
    return seq[i] if i < len(seq) else None


def _first_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}"[:300]


def _cost(compiled) -> dict:
    try:
        c = compiled.cost_analysis()
    except Exception:
        return {}
    if isinstance(c, (list, tuple)):
        c = c[0] if c else {}
    return dict(c or {})


def _hlo_stats(text: str) -> dict:
    return {"has_while": " while(" in text,
            "ynn_fusions": text.count('"kind":"__ynn_fusion"'),
            "xnn_fusions": text.count('"kind":"__xnn_fusion"'),
            "convolutions": text.count(" convolution("),
            "custom_calls": text.count(" custom-call(")}


def bench_case(case, *, modes: Sequence[str] = MODES, impls: Sequence[str] = IMPLS,
               runs: int = 10, warmup: int = 2, min_sample_s: float = 0.02,
               max_seconds: float = 10.0, lr: float = 1e-4, dump_hlo: str | None = None,
               log: Callable[[str], None] = lambda s: None) -> list[dict]:
    """Time one :class:`~flax_arch.parity.Case`; one row (a dict) per mode.

    Never raises for a failing implementation: its entry carries ``error`` instead.
    """
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from .interop import channels_first_to_last, channels_last_to_first, load_torch_state_dict

    import torch  # the weights come from torch's initialiser, as in the parity suite

    from .parity.harness import torch_device
    device = torch_device()
    cuda = device.type == "cuda"

    # ---- inputs, modules, cotangents
    raw = [np.asarray(a) for a in case.inputs(np.random.default_rng(case.seed))]
    np_in = [a.astype(np.float32) if np.issubdtype(a.dtype, np.floating) else a for a in raw]
    torch.manual_seed(case.seed)
    tmod = case.torch_module().to(device=device, dtype=torch.float32)
    tmod.train(case.train)
    base_sd = copy.deepcopy(tmod.state_dict())
    n_params = int(sum(p.numel() for p in tmod.parameters()))
    fmod = case.flax_module(nnx.Rngs(case.seed))
    load_torch_state_dict(fmod, base_sd)
    fmod.train() if case.train else fmod.eval()

    f_in = [jnp.asarray(channels_first_to_last(a) if _layout(case.in_layouts, i) == "channels"
                        else a) for i, a in enumerate(np_in)]
    fcall = case.flax_call or (lambda m, *a: m(*a))
    tcall = case.torch_call or (lambda m, *a: m(*a))
    graphdef, params, rest = nnx.split(fmod, nnx.Param, ...)

    def forward(params, rest, *xs):
        m = nnx.merge(graphdef, params, rest)
        out = fcall(m, *xs)
        if case.train:  # running statistics (and rng counters) updated by the call
            return out, nnx.split(m, nnx.Param, ...)[2]
        return out

    out_shapes = _flatten(jax.eval_shape(lambda p, r, *x: _flatten(
        fcall(nnx.merge(graphdef, p, r), *x)), params, rest, *f_in))
    crng = np.random.default_rng(case.seed + 1)
    cots_np = [crng.standard_normal(s.shape).astype(np.float32)
               if jnp.issubdtype(s.dtype, jnp.floating) else None for s in out_shapes]
    f_cots = [None if c is None else jnp.asarray(c) for c in cots_np]
    t_cots = [None if c is None else torch.as_tensor(
        np.ascontiguousarray(channels_last_to_first(c)) if _layout(case.out_layouts, i)
        == "channels" else c, device=device) for i, c in enumerate(cots_np)]
    t_in = [torch.as_tensor(a, device=device) for a in np_in]

    base = {"case": case.name, "n_params": n_params,
            "input_shapes": [list(a.shape) for a in np_in], "train_flag": case.train,
            "backend": jax.default_backend()}
    rows = {m: dict(base, mode=m, impls={}) for m in modes}
    kw = dict(runs=runs, warmup=warmup, min_sample_s=min_sample_s, max_seconds=max_seconds)
    jsync = jax.block_until_ready
    tsync = (lambda out: torch.cuda.synchronize()) if cuda else (lambda out: out)

    def loss_of(outs, cots):
        terms = [(o * c).sum() for o, c in zip(outs, cots) if c is not None]
        if not terms:
            raise ValueError("no floating-point output to differentiate")
        return sum(terms[1:], terms[0])

    def record(mode, impl, fn):
        log(f"{case.name}: {mode} {IMPL_LABEL[impl]}")
        try:
            rows[mode]["impls"][impl] = fn()
        except Exception as e:  # reported in the table, never fatal
            rows[mode]["impls"][impl] = {"error": _first_line(e)}

    # ---- (a) Flax under jax.jit, compiled ahead of time
    def aot(fn, args, donate=()):
        t0 = time.perf_counter()
        lowered = jax.jit(fn, donate_argnums=donate).lower(*args)
        t_lower = time.perf_counter() - t0
        t0 = time.perf_counter()
        compiled = lowered.compile()
        t_compile = time.perf_counter() - t0
        return compiled, t_lower, t_compile

    def flax_result(mode, compiled, t_lower, t_compile, timing):
        cost = _cost(compiled)
        text = compiled.as_text() or ""
        stats = _hlo_stats(text)
        if dump_hlo:
            os.makedirs(dump_hlo, exist_ok=True)
            with open(os.path.join(dump_hlo, f"{case.name}.{mode}.hlo.txt"), "w") as f:
                f.write(text)
        flops = cost.get("flops")
        rows[mode].update(xla_flops=flops, xla_bytes=cost.get("bytes accessed"),
                          flops_lower_bound=stats["has_while"], hlo=stats)
        res = dict(timing, lower_s=t_lower, compile_s=t_compile + t_lower)
        if flops:
            res["gflops_per_s"] = flops / timing["median_s"] / 1e9
        return res

    if "flax_jit" in impls and "forward" in modes:
        def flax_forward():
            compiled, tl, tc = aot(forward, (params, rest, *f_in))
            timing = measure(lambda: compiled(params, rest, *f_in), jsync, **kw)
            return flax_result("forward", compiled, tl, tc, timing)
        record("forward", "flax_jit", flax_forward)

    if "train_step" in modes and n_params == 0:
        for impl in impls:
            rows["train_step"]["impls"][impl] = {"error": "no parameters to train"}
        modes = [m for m in modes if m != "train_step"]

    if "flax_jit" in impls and "train_step" in modes:
        tx = optax.sgd(lr)

        float_out = [c is not None for c in f_cots]

        def step(params, rest, opt_state, *xs_and_cots):
            xs, cots = xs_and_cots[:len(f_in)], xs_and_cots[len(f_in):]
            cots = [c if keep else None for c, keep in zip(cots, float_out)]
            m = nnx.merge(graphdef, params, rest)

            def loss_fn(m):
                return loss_of(_flatten(fcall(m, *xs)), cots)

            # nnx.value_and_grad: gradients wrt the nnx.Param variables; the BatchNorm
            # running statistics the forward pass updates flow back into ``m``
            loss, grads = nnx.value_and_grad(loss_fn)(m)
            _, params, new_rest = nnx.split(m, nnx.Param, ...)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), new_rest, opt_state, loss

        def flax_train():
            p = jax.tree.map(jnp.copy, params)  # donated below: leave the originals alone
            r = jax.tree.map(jnp.copy, rest)
            o = tx.init(p)
            cot_args = [c if c is not None else jnp.zeros(()) for c in f_cots]
            compiled, tl, tc = aot(step, (p, r, o, *f_in, *cot_args), donate=(0, 1, 2))
            state = [p, r, o]

            def call():
                out = compiled(*state, *f_in, *cot_args)
                state[:] = out[:3]
                return out
            timing = measure(call, jsync, **kw)
            return flax_result("train_step", compiled, tl, tc, timing)
        record("train_step", "flax_jit", flax_train)

    # ---- (b) torch eager, (c) torch.compile
    def fresh_torch():
        m = case.torch_module().to(device=device, dtype=torch.float32)
        m.load_state_dict(base_sd)
        return m.train(case.train)

    def torch_forward(fn):
        def call():
            with torch.no_grad():
                return fn(*t_in)
        return call

    def torch_train_call(m, loss_fn):
        opt = torch.optim.SGD(m.parameters(), lr=lr)

        def call():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(*t_in)
            loss.backward()
            opt.step()
            return loss
        return call

    if "torch_eager" in impls:
        if "forward" in modes:
            m_fwd = fresh_torch()
            record("forward", "torch_eager",
                   lambda: measure(torch_forward(lambda *x: tcall(m_fwd, *x)), tsync, **kw))
        if "train_step" in modes:
            def eager_train():
                m = fresh_torch()
                return measure(torch_train_call(
                    m, lambda *x: loss_of(_flatten(tcall(m, *x)), t_cots)), tsync, **kw)
            record("train_step", "torch_eager", eager_train)

    if "torch_compile" in impls:
        def compiled_measure(call):
            torch._dynamo.reset()  # fresh caches: no recompile limit, honest first-call time
            t0 = time.perf_counter()
            tsync(call())
            first = time.perf_counter() - t0
            return dict(measure(call, tsync, **kw), compile_s=first)

        if "forward" in modes:
            def compile_forward():
                m = fresh_torch()
                fn = torch.compile(lambda *x: tcall(m, *x))
                return compiled_measure(torch_forward(fn))
            record("forward", "torch_compile", compile_forward)
        if "train_step" in modes:
            def compile_train():
                m = fresh_torch()
                fn = torch.compile(lambda *x: loss_of(_flatten(tcall(m, *x)), t_cots))
                return compiled_measure(torch_train_call(m, fn))
            record("train_step", "torch_compile", compile_train)
        torch._dynamo.reset()

    out = []
    for m in rows:
        row = rows[m]
        f = row["impls"].get("flax_jit", {})
        for impl in ("torch_eager", "torch_compile"):
            t = row["impls"].get(impl, {})
            if "median_s" in f and "median_s" in t:
                row[f"{impl}_over_flax"] = t["median_s"] / f["median_s"]
        out.append(row)
    return out


# --------------------------------------------------------------------------- extra cases

def _normal(*shape):
    return lambda rng: (rng.standard_normal(shape),)


def probe_cases() -> list:
    """The bench's own cases: the DCGAN discriminator at batch 32 (the slide's model from
    :mod:`flax_arch.models.dcgan` when present, otherwise the same Conv2d/BatchNorm2d/
    LeakyReLU stack built from :mod:`flax_arch.nn`), in train mode."""
    from .parity.harness import Case
    C = "channels"
    try:
        from .models import dcgan as fd
        import torch_ref.dcgan as td
        fcls = getattr(fd, "DCGANDiscriminator")
        tcls = next(getattr(td, n) for n in ("DCGANDiscriminator", "Discriminator")
                    if hasattr(td, n))
        return [Case("probe_dcgan_disc_b32", lambda: tcls(), lambda r: fcls(rngs=r),
                     _normal(32, 3, 64, 64), [C], [C], train=True)]
    except (ImportError, AttributeError, StopIteration):
        pass

    def torch_stack():
        import torch.nn as nn
        ndf, layers = 64, [nn.Conv2d(3, 64, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
        for i in range(3):
            layers += [nn.Conv2d(ndf << i, ndf << (i + 1), 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ndf << (i + 1)), nn.LeakyReLU(0.2)]
        return nn.Sequential(*layers, nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def flax_stack(rngs):
        import jax
        from . import nn as fnn
        ndf = 64
        layers = [fnn.Conv2d(3, 64, 4, 2, 1, bias=False, rngs=rngs), fnn.LeakyReLU(0.2)]
        for i in range(3):
            layers += [fnn.Conv2d(ndf << i, ndf << (i + 1), 4, 2, 1, bias=False, rngs=rngs),
                       fnn.BatchNorm2d(ndf << (i + 1)), fnn.LeakyReLU(0.2)]
        return fnn.Sequential(*layers, fnn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False, rngs=rngs),
                              jax.nn.sigmoid)

    return [Case("probe_conv2d_stack_b32", torch_stack, flax_stack, _normal(32, 3, 64, 64),
                 [C], [C], train=True)]


def sweep_cases(T: int, B: int = 8, F: int = 256, H: int = 256):
    """(series name → (case, impl)) for the sequence-length sweep at length ``T``, and notes
    for the modules that are not available. Input (B, T, F), batch-first on both sides."""
    from .parity.harness import Case
    series, notes = {}, []
    x = _normal(B, T, F)
    try:
        from .models.qrnn import QRNNLayer
        from torch_ref.qrnn import fQRNNLayer
        cases = {p: Case(f"qrnn_{p}_T{T}", lambda: fQRNNLayer(F, H, kwidth=2),
                         lambda r, _p=p: QRNNLayer(F, H, kwidth=2, pooling=_p, rngs=r), x)
                 for p in ("scan", "associative")}
        series["QRNN scan (flax jit)"] = (cases["scan"], "flax_jit")
        series["QRNN associative (flax jit)"] = (cases["associative"], "flax_jit")
        series["QRNN slide loop (torch eager)"] = (cases["scan"], "torch_eager")
    except ImportError as e:
        notes.append(f"QRNN not available yet ({e})")
    try:
        import torch.nn as tnn
        from .nn.recurrent import LSTM
        case = Case(f"lstm_T{T}", lambda: tnn.LSTM(F, H, batch_first=True),
                    lambda r: LSTM(F, H, batch_first=True, rngs=r), x)
        series["LSTM (flax jit)"] = (case, "flax_jit")
        series["LSTM (torch eager)"] = (case, "torch_eager")
    except ImportError as e:
        notes.append(f"Flax LSTM not available yet ({e})")
        import torch.nn as tnn
        case = Case(f"lstm_T{T}", lambda: tnn.LSTM(F, H, batch_first=True), None, x)
        series["LSTM (torch eager)"] = (case, "torch_eager")
    return series, notes


# --------------------------------------------------------------------------- output

def _ms(t: dict | None) -> str:
    if not t:
        return "-"
    if "error" in t:
        return "error"
    med = t["median_s"]
    spread = (t["q3_s"] - t["q1_s"]) / med * 100 if med > 0 else 0.0
    return f"{med * 1e3:.3g} ±{spread:.0f}%"


def _fmt_table(header, rows) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def format_table(rows: list[dict]) -> str:
    """The bench table: per case and mode, median ms (± interquartile range / median) per
    implementation, torch-eager time over Flax time, XLA FLOPs, achieved GFLOP/s and
    compile times."""
    header = ("case", "size", "mode", "flax jit ms", "torch eager ms", "torch.compile ms",
              "eager/flax", "GFLOP", "flax GFLOP/s", "jax compile s", "torch.compile s")
    out = []
    for r in rows:
        im = r["impls"]
        f, te, tc = im.get("flax_jit"), im.get("torch_eager"), im.get("torch_compile")
        flops = r.get("xla_flops")
        gf = "-" if not flops else (("≥" if r.get("flops_lower_bound") else "")
                                    + f"{flops / 1e9:.3g}")
        rate = (f"{f['gflops_per_s']:.3g}" if f and "gflops_per_s" in f else "-")
        ratio = r.get("torch_eager_over_flax")
        out.append((r["case"], r.get("size", ""), r["mode"], _ms(f), _ms(te), _ms(tc),
                    f"{ratio:.2f}x" if ratio else "-", gf, rate,
                    f"{f['compile_s']:.2f}" if f and "compile_s" in f else "-",
                    f"{tc['compile_s']:.1f}" if tc and "compile_s" in tc else "-"))
    return _fmt_table(header, out)


def _errors(rows) -> list[str]:
    return [f"{r['case']} {r['mode']} {IMPL_LABEL.get(k, k)}: {v['error']}"
            for r in rows for k, v in r["impls"].items() if "error" in v]


def _write_json(path, payload):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)


# --------------------------------------------------------------------------- commands

def run(args) -> int:
    if args.compare_xla_flags is not None:
        return run_compare_flags(args)
    xla_flags = _apply_machine_settings(args)
    torch = _setup_frameworks(args.torch_threads or args.cpus)
    if torch is None:
        print("flax-arch bench needs torch (pip install 'flax-arch[torch]')", file=sys.stderr)
        return 2
    if args.sweep:
        return run_sweep(args, xla_flags)

    from flax_arch.parity.registry import all_cases, select
    # the probes join when asked for (--probes, or an --only pattern naming "probe")
    probes = args.probes or any("probe" in p for p in args.only or ())
    cases = select(all_cases(), args.only)
    extra = select(probe_cases(), args.only) if probes else []
    if not cases and not extra:
        print("no case matches", args.only, file=sys.stderr)
        return 2
    plan = plan_cases(cases, args.size, args.flop_budget, args.all_cases) if cases else []
    plan += [Planned(c, "probe", _torch_class(c)) for c in extra]  # never grouped away
    if args.list:
        for p in plan:
            est = f"  ~{p.est_flops:.3g} fwd FLOPs" if p.est_flops is not None else ""
            print(f"{p.case.name}  [{p.size}]  {p.module}{est}"
                  + (f"  ({p.note})" if p.note else ""))
        return 0
    impls = ["flax_jit"] + ([] if args.no_torch else
                            ["torch_eager"] + ([] if args.no_compile else ["torch_compile"]))
    info = machine_info(xla_flags)
    log = (lambda s: None) if args.quiet else (lambda s: print(f"[bench] {s}", file=sys.stderr,
                                                                flush=True))
    _warn_if_loaded(info)
    rows = []
    t_start = time.perf_counter()
    for i, p in enumerate(plan):
        log(f"({i + 1}/{len(plan)}) {p.case.name} [{p.size}]")
        try:
            case_rows = bench_case(p.case, modes=args.modes, impls=impls, runs=args.runs,
                                   warmup=args.warmup, min_sample_s=args.min_sample_ms / 1e3,
                                   max_seconds=args.max_seconds, lr=args.lr,
                                   dump_hlo=args.dump_hlo, log=log)
        except Exception as e:  # the case could not even be built
            case_rows = [{"case": p.case.name, "mode": m,
                          "impls": {"flax_jit": {"error": _first_line(e)}}} for m in args.modes]
        for r in case_rows:
            r.update(size=p.size, module=p.module)
        rows.extend(case_rows)
    info["loadavg_end"] = list(os.getloadavg())
    info["wall_s"] = time.perf_counter() - t_start
    print(format_table(rows))
    for e in _errors(rows):
        print("  " + e)
    print(f"{len(plan)} cases on {info['backend']} ({info['cpu'] if info['backend'] == 'cpu' else info['device_kind']}), "
          f"load average {info['loadavg_start'][0]:.1f} → {info['loadavg_end'][0]:.1f}, "
          f"{info['wall_s']:.0f} s; XLA_FLAGS={xla_flags or '(none)'}")
    payload = {"kind": "bench", "meta": info, "args": _args_dict(args), "rows": rows}
    if args.json:
        _write_json(args.json, payload)
    if args.plot:
        return _plot("plot_bench", payload, args.plot)
    return 0


def _warn_if_loaded(info: dict) -> None:
    if info["backend"] == "cpu" and info["loadavg_start"][0] > 0.5 * info["cpus_allowed"]:
        print(f"[bench] warning: load average {info['loadavg_start'][0]:.1f} on "
              f"{info['cpus_allowed']} cores: other processes compete for the CPU, timings "
              "will be noisy; torch's OpenMP threads suffer most (a thread waiting at a "
              "barrier for a descheduled peer), see --torch-threads", file=sys.stderr)


def _args_dict(args) -> dict:
    return {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, list, bool,
                                                                  type(None)))}


def _plot(fn: str, payload: dict, path: str) -> int:
    try:
        from . import bench_plot
        getattr(bench_plot, fn)(payload, path)
    except ImportError as e:
        print(f"--plot needs matplotlib ({e}); install it with pip install "
              "'flax-arch[train]' or pip install matplotlib", file=sys.stderr)
        return 3
    print(f"plot written to {path}")
    return 0


def run_sweep(args, xla_flags: str) -> int:
    """Time the QRNN and LSTM layers against sequence length (forward and train step)."""
    B, F, H = args.sweep_dims
    info = machine_info(xla_flags)
    _warn_if_loaded(info)
    log = (lambda s: None) if args.quiet else (lambda s: print(f"[sweep] {s}", file=sys.stderr,
                                                                flush=True))
    points, notes = [], set()
    for T in args.seq_lens:
        series, n = sweep_cases(T, B, F, H)
        notes.update(n)
        by_case: dict[str, tuple] = {}
        for name, (case, impl) in series.items():
            by_case.setdefault(case.name, (case, []))[1].append((name, impl))
        for case, entries in by_case.values():
            impls = [impl for _, impl in entries]
            if case.flax_module is None:
                rows = _torch_only_rows(case, args)
            else:
                rows = bench_case(case, modes=args.modes, impls=impls, runs=args.runs,
                                  warmup=args.warmup, min_sample_s=args.min_sample_ms / 1e3,
                                  max_seconds=args.max_seconds, lr=args.lr, log=log)
            for r in rows:
                for name, impl in entries:
                    t = r["impls"].get(impl, {})
                    points.append({"series": name, "T": T, "mode": r["mode"],
                                   "median_s": t.get("median_s"), "q1_s": t.get("q1_s"),
                                   "q3_s": t.get("q3_s"), "error": t.get("error"),
                                   "xla_flops": r.get("xla_flops") if impl == "flax_jit"
                                   else None})
    info["loadavg_end"] = list(os.getloadavg())
    names = list(dict.fromkeys(p["series"] for p in points))
    for mode in args.modes:
        header = ("T", *names)
        tab = []
        for T in args.seq_lens:
            cells = []
            for nm in names:
                p = next((q for q in points if q["series"] == nm and q["T"] == T
                          and q["mode"] == mode), None)
                cells.append("-" if p is None else "error" if p["error"] or p["median_s"] is
                             None else f"{p['median_s'] * 1e3:.3g}")
            tab.append((T, *cells))
        print(f"\n{mode} (ms), B={B}, F={F}, H={H}")
        print(_fmt_table(header, tab))
    for p in points:
        if p["error"]:
            print(f"  {p['series']} T={p['T']} {p['mode']}: {p['error']}")
    for n in sorted(notes):
        print("note:", n)
    payload = {"kind": "sweep", "meta": info, "args": _args_dict(args),
               "dims": {"B": B, "F": F, "H": H}, "notes": sorted(notes), "points": points}
    if args.json:
        _write_json(args.json, payload)
    if args.plot:
        return _plot("plot_sweep", payload, args.plot)
    return 0


def _torch_only_rows(case, args) -> list[dict]:
    """Torch eager timing of a case whose Flax side is missing (sweep before it lands)."""
    import torch
    torch.manual_seed(case.seed)
    m = case.torch_module()
    x = [torch.as_tensor(a.astype(np.float32)) for a in case.inputs(np.random.default_rng(0))]
    kw = dict(runs=args.runs, warmup=args.warmup, min_sample_s=args.min_sample_ms / 1e3,
              max_seconds=args.max_seconds)
    rows = []
    if "forward" in args.modes:
        def fwd():
            with torch.no_grad():
                return m(*x)
        rows.append({"mode": "forward", "impls": {"torch_eager": measure(fwd, lambda o: o,
                                                                         **kw)}})
    if "train_step" in args.modes:
        opt = torch.optim.SGD(m.parameters(), lr=args.lr)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = sum(o.sum() for o in _flatten(m(*x)))
            loss.backward()
            opt.step()
            return loss
        rows.append({"mode": "train_step", "impls": {"torch_eager": measure(step, lambda o: o,
                                                                            **kw)}})
    return rows


# --------------------------------------------------------------------------- XLA flags

def _resolve_settings(items: Sequence[str]) -> list[tuple[str, str, dict, list]]:
    items = list(items) or list(FLAG_PRESETS)
    if "default" not in items:
        items = ["default", *items]
    out = []
    for it in items:
        if it in FLAG_PRESETS:
            flags, env, extra = FLAG_PRESETS[it]
            out.append((it, flags, env, extra))
        elif it.startswith("--"):
            out.append((it, it, {}, []))
        else:
            raise SystemExit(f"--compare-xla-flags: unknown preset {it!r} (presets: "
                             f"{', '.join(FLAG_PRESETS)}; or pass raw '--xla_...' flags)")
    return out


def run_compare_flags(args) -> int:
    """Run the selected cases once per setting, each in a fresh ``flax-arch bench`` process
    (XLA parses ``XLA_FLAGS`` once per process), rounds interleaved; compare the Flax
    medians. torch eager runs in every process too, as a control for machine-load drift."""
    settings = _resolve_settings(args.compare_xla_flags)
    only = args.only or CONV_HEAVY
    base_cmd = [sys.executable, "-m", "flax_arch.cli", "bench", "--only", *only,
                "--size", args.size, "--flop-budget", str(args.flop_budget),
                "--runs", str(args.runs), "--warmup", str(args.warmup),
                "--min-sample-ms", str(args.min_sample_ms), "--max-seconds",
                str(args.max_seconds), "--modes", *args.modes, "--no-compile", "--quiet"]
    if args.probes:
        base_cmd.append("--probes")
    if args.all_cases:
        base_cmd.append("--all-cases")
    if args.no_torch:
        base_cmd.append("--no-torch")
    results: dict[str, list[dict]] = {name: [] for name, *_ in settings}
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(max(args.repeat, 1)):
            for name, flags, env_extra, extra in settings:
                slug = re.sub(r"[^\w]", "_", name)[:60]
                path = os.path.join(tmp, f"{len(results[name])}_{slug}.json")
                env = dict(os.environ, **env_extra)
                env.pop("XLA_FLAGS", None) if not os.environ.get("XLA_FLAGS") else None
                cmd = base_cmd + [f"--xla-cpu-flags={flags or 'none'}", "--json", path, *extra]
                print(f"[flags] round {rnd + 1}: {name}: XLA_FLAGS={flags or '(none)'}"
                      + (f" {env_extra}" if env_extra else "") + (f" {' '.join(extra)}"
                                                                  if extra else ""),
                      file=sys.stderr, flush=True)
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if proc.returncode != 0 or not os.path.exists(path):
                    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                    failures[name] = " | ".join(tail)[:400]
                    continue
                with open(path) as f:
                    results[name].append(json.load(f))
    table, summary = _compare_table(settings, results)
    print(table)
    for name, why in failures.items():
        print(f"  {name}: failed: {why}")
    payload = {"kind": "xla_flags", "meta": machine_info(os.environ.get("XLA_FLAGS", "")),
               "args": _args_dict(args),
               "settings": [{"name": n, "xla_flags": f, "env": e, "args": x}
                            for n, f, e, x in settings],
               "summary": summary, "failures": failures, "runs": results}
    if args.json:
        _write_json(args.json, payload)
    if args.plot:
        return _plot("plot_flags", payload, args.plot)
    return 0


def _compare_table(settings, results):
    """Median over rounds of each setting's median, per (case, mode) and implementation;
    and each relative to the 'default' setting's."""
    summary = []
    keys = []
    for runs in results.values():
        for payload in runs:
            for r in payload["rows"]:
                k = (r["case"], r["mode"])
                if k not in keys:
                    keys.append(k)
    for name, *_ in settings:
        for case, mode in keys:
            entry = {"setting": name, "case": case, "mode": mode}
            for impl in ("flax_jit", "torch_eager"):
                got = [r["impls"][impl] for p in results.get(name, [])
                       for r in p["rows"] if (r["case"], r["mode"]) == (case, mode)
                       and "median_s" in r["impls"].get(impl, {})]
                entry[impl] = float(np.median([t["median_s"] for t in got])) if got else None
                entry[f"{impl}_min"] = float(min(t["min_s"] for t in got)) if got else None
                errs = [r["impls"][impl]["error"] for p in results.get(name, [])
                        for r in p["rows"] if (r["case"], r["mode"]) == (case, mode)
                        and "error" in r["impls"].get(impl, {})]
                if errs:
                    entry[f"{impl}_error"] = errs[0]
            summary.append(entry)
    ref = {(e["case"], e["mode"]): e for e in summary if e["setting"] == "default"}
    rows = []
    for e in summary:
        d = ref.get((e["case"], e["mode"]), {})
        for impl in ("flax_jit", "torch_eager"):
            if e.get(impl) and d.get(impl):
                e[f"{impl}_vs_default"] = e[impl] / d[impl]
            if e.get(f"{impl}_min") and d.get(f"{impl}_min"):
                e[f"{impl}_min_vs_default"] = e[f"{impl}_min"] / d[f"{impl}_min"]
        if e.get("flax_jit") and e.get("torch_eager"):
            e["torch_eager_over_flax"] = e["torch_eager"] / e["flax_jit"]
        fx = lambda v: f"{v * 1e3:.3g}" if v else "-"  # noqa: E731
        rows.append((e["setting"], e["case"], e["mode"], fx(e.get("flax_jit")),
                     f"{e['flax_jit_vs_default']:.2f}" if "flax_jit_vs_default" in e else "-",
                     f"{e['flax_jit_min_vs_default']:.2f}" if "flax_jit_min_vs_default" in e
                     else "-",
                     fx(e.get("torch_eager")),
                     f"{e['torch_eager_vs_default']:.2f}" if "torch_eager_vs_default" in e
                     else "-",
                     f"{e['torch_eager_over_flax']:.2f}x" if "torch_eager_over_flax" in e
                     else "-"))
    header = ("setting", "case", "mode", "flax jit ms", "vs default", "min vs default",
              "torch eager ms", "vs default", "eager/flax")
    return _fmt_table(header, rows), summary
