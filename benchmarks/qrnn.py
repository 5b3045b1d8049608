"""QRNN speed: the Flax layer against its matmul floor, the slide's torch loop and
``torch.nn.LSTM``; the pooling alone against a memory floor; the paper's GPU grid.

Run ``python benchmarks/qrnn.py`` (CPU, float32; prints markdown tables), with
``--json PATH`` to keep the numbers, ``--quick`` for a smoke run, ``--paper-grid`` for the
paper's inference grid (one 320-unit layer vs ``torch.nn.LSTM(320, 320)``, B ∈ {8, 16, 32,
64}, T ∈ {32, 128, 512}; on CUDA when JAX's backend is a GPU and torch sees one) followed
by the layer-against-T sweep on the same device (which pooling for which T there).

Every section is a function returning a JSON-able dict (``bench_layer``,
``bench_pooling``, ``bench_lengths``, ``bench_paper_grid``) and :func:`markdown` renders
them, so the ``flax-arch bench`` command can reuse them. Candidates are timed *interleaved* (round
robin, several rounds), so a slow phase of a shared machine hits all of them; each reports
the median and the minimum over all repetitions (ms). Ratios use the medians and, in
brackets, the minima (the better estimate on a noisy machine).

Sources: the slide "Quasi Recurrent Neural Network (QRNN)"; Bradbury et al. 2016,
"Quasi-Recurrent Neural Networks" (§3.1 speed: B=8, T=500, 256 units; Figure 4 grid).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import flax_arch.models.qrnn as fq  # noqa: E402

__all__ = ["bench_layer", "bench_pooling", "bench_lengths", "bench_paper_grid", "markdown",
           "machine", "time_interleaved", "run"]


# ------------------------------------------------------------------ timing

def _sync_torch(device):
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_interleaved(fns: dict[str, Callable[[], object]], *, rounds: int = 7,
                     reps: int = 3, warmup: int = 2) -> dict[str, dict]:
    """Time each thunk (which must block until its result is ready) round-robin.

    Returns name → {"median_ms", "min_ms", "n"} over rounds·reps calls each.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
    return {k: {"median_ms": float(np.median(v)) * 1e3, "min_ms": float(np.min(v)) * 1e3,
                "n": len(v)} for k, v in samples.items()}


def _jax_thunk(fn, *args):
    return lambda: jax.block_until_ready(fn(*args))


def machine() -> dict:
    """Where the numbers come from."""
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "jax": jax.__version__,
            "jax_backend": jax.default_backend(),
            "flax_arch": os.path.dirname(os.path.dirname(os.path.abspath(fq.__file__))),
            "jax_devices": [str(d) for d in jax.devices()]}
    try:
        import flax
        import torch
        info.update(flax=flax.__version__, torch=torch.__version__,
                    torch_threads=torch.get_num_threads(),
                    cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    except Exception:  # pragma: no cover - torch is optional for the Flax-only numbers
        pass
    try:
        with open("/proc/cpuinfo") as fh:
            names = {ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")}
        info["cpu"] = ", ".join(sorted(names))
    except OSError:
        pass
    try:
        info["loadavg_1m"] = os.getloadavg()[0]
    except OSError:
        pass
    return info


def _flax_layer_fns(F, H, kwidth, pooling, chunk, gates="f"):
    """Jitted forward and forward+backward of one QRNNLayer (eval mode, float32)."""
    model = fq.QRNNLayer(F, H, kwidth, pooling, gates=gates, chunk=chunk, rngs=nnx.Rngs(0))
    model.eval()
    graphdef, state = nnx.split(model)

    @jax.jit
    def fwd(state, x):
        return nnx.merge(graphdef, state)(x)

    @jax.jit
    def fwd_bwd(state, x, gh, gc):
        def loss(state, x):
            h, c = nnx.merge(graphdef, state)(x)
            return jnp.vdot(h, gh) + jnp.vdot(c, gc)
        return jax.value_and_grad(loss, argnums=(0, 1))(state, x)

    return state, fwd, fwd_bwd


def _ratio(a: dict, b: dict) -> dict:
    """time(a) / time(b) on medians and minima."""
    return {"median": a["median_ms"] / b["median_ms"], "min": a["min_ms"] / b["min_ms"]}


# ------------------------------------------------------------------ (a) the layer

def bench_layer(B: int = 8, T: int = 500, F: int = 256, H: int = 256, kwidth: int = 2, *,
                poolings=fq.POOLINGS, chunk: int | None = None, scan_chunks=(1, 4, 16), rounds: int = 7,
                reps: int = 3, backward: bool = True) -> dict:
    """Forward (and forward+backward) of one f-QRNN layer, float32, on this machine's CPU.

    Candidates: the matmul floor (the convolution's FLOPs as one jitted
    (B·T, kwidth·F) @ (kwidth·F, 2H) product; forward+backward: that product and its two
    gradient products), the layer's convolution alone (XLA, for reference), the Flax
    layer per pooling (jit), the slide's torch loop
    (``torch_ref.qrnn.fQRNNLayer``) and ``torch.nn.LSTM(F, H)``. ``chunk`` is the layers'
    block length (None: automatic); ``scan_chunks`` adds forward-only 'scan' candidates
    with those fixed block lengths (the exploration behind the automatic choice).
    """
    import torch
    import torch_ref.qrnn as tq

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((B, T, F)).astype(np.float32)
    x = jnp.asarray(x_np)
    gh = jnp.asarray(rng.standard_normal((B, T, H)).astype(np.float32))
    gc = jnp.asarray(rng.standard_normal((B, H)).astype(np.float32))
    a = jnp.asarray(rng.standard_normal((B * T, kwidth * F)).astype(np.float32))
    w = jnp.asarray(rng.standard_normal((kwidth * F, 2 * H)).astype(np.float32))
    gw = jnp.asarray(rng.standard_normal((B * T, 2 * H)).astype(np.float32))
    matmul = jax.jit(lambda a, w: a @ w)
    matmul_grad = jax.jit(jax.value_and_grad(lambda a, w: jnp.vdot(a @ w, gw), argnums=(0, 1)))

    # the layer's own convolution alone (XLA, causal padding folded in), for reference
    kern = jnp.asarray(rng.standard_normal((kwidth, F, 2 * H)).astype(np.float32) * 0.05)
    gp = jnp.asarray(rng.standard_normal((B, T, 2 * H)).astype(np.float32))

    def conv(x, k):
        return jax.lax.conv_general_dilated(x, k, (1,), [(kwidth - 1, 0)],
                                            dimension_numbers=("NWC", "WIO", "NWC"))

    conv_grad = jax.jit(jax.value_and_grad(lambda x, k: jnp.vdot(conv(x, k), gp),
                                           argnums=(0, 1)))
    fwd = {"matmul floor": _jax_thunk(matmul, a, w),
           "conv alone (XLA)": _jax_thunk(jax.jit(conv), x, kern)}
    both = {}
    if backward:
        both["matmul floor"] = _jax_thunk(matmul_grad, a, w)
        both["conv alone (XLA)"] = _jax_thunk(conv_grad, x, kern)
    for p in poolings:
        state, f1, f2 = _flax_layer_fns(F, H, kwidth, p, chunk)
        fwd[f"flax {p}"] = _jax_thunk(f1, state, x)
        if backward:
            both[f"flax {p}"] = _jax_thunk(f2, state, x, gh, gc)
    for c in scan_chunks:
        state, f1, _ = _flax_layer_fns(F, H, kwidth, "scan", c)
        fwd[f"flax scan chunk={c}"] = _jax_thunk(f1, state, x)

    slide = tq.fQRNNLayer(F, H, kwidth).eval()
    lstm = torch.nn.LSTM(F, H, batch_first=True).eval()
    xt = torch.from_numpy(x_np)
    ght, gct = torch.from_numpy(np.array(gh)), torch.from_numpy(np.array(gc))

    def torch_fwd(mod):
        def run():
            with torch.no_grad():
                mod(xt)
        return run

    def torch_both(mod, lstm_out=False):
        def run():
            xg = xt.detach().requires_grad_(True)
            out = mod(xg)
            h, c = (out[0], out[1][0][0]) if lstm_out else out
            (torch.sum(h * ght) + torch.sum(c * gct)).backward()
            mod.zero_grad(set_to_none=True)
        return run

    fwd["torch slide loop"] = torch_fwd(slide)
    fwd["torch LSTM"] = torch_fwd(lstm)
    if backward:
        both["torch slide loop"] = torch_both(slide)
        both["torch LSTM"] = torch_both(lstm, lstm_out=True)

    auto = fq.scan_chunk(B * H) if chunk is None else chunk
    out = {"config": dict(B=B, T=T, F=F, H=H, kwidth=kwidth, chunk=chunk, scan_chunk=auto,
                          dtype="float32",
                          matmul=f"({B * T}, {kwidth * F}) @ ({kwidth * F}, {2 * H})",
                          gflop=2 * B * T * kwidth * F * 2 * H / 1e9),
           "forward": time_interleaved(fwd, rounds=rounds, reps=reps)}
    if backward:
        out["forward_backward"] = time_interleaved(both, rounds=rounds, reps=max(1, reps - 1))
    out["goals"] = _layer_goals(out, poolings)
    return out


def _layer_goals(res: dict, poolings) -> dict:
    """The issue's goals: layer ≤ 1.25× matmul floor, ≥ 2.5× the torch loop, ≥ 1.6× LSTM."""
    goals = {}
    for phase in ("forward", "forward_backward"):
        if phase not in res:
            continue
        t = res[phase]
        for p in poolings:
            lay = t[f"flax {p}"]
            goals[f"{phase} {p}"] = {
                "x_matmul_floor": _ratio(lay, t["matmul floor"]),
                "speedup_vs_torch_loop": _ratio(t["torch slide loop"], lay),
                "speedup_vs_torch_lstm": _ratio(t["torch LSTM"], lay)}
    return goals


# ------------------------------------------------------------------ (b) the pooling alone

def _naive_time_major_scan(f, z):
    """The obvious version: lax.scan over time after transposing to (T, B, H) and back."""
    def step(c, fz):
        c = fz[0] * c + (1 - fz[0]) * fz[1]
        return c, c
    _, h = jax.lax.scan(step, jnp.zeros_like(f[:, 0]), (jnp.swapaxes(f, 0, 1),
                                                          jnp.swapaxes(z, 0, 1)))
    return jnp.swapaxes(h, 0, 1)


def bench_pooling(B: int = 32, T: int = 1024, H: int = 512, *,
                  scan_chunks=(1, 2, 4, 8, 16, 32), blocked_chunks=(16, 32, 64),
                  associative: bool = True, naive: bool = True, rounds: int = 5,
                  reps: int = 2) -> dict:
    """f-pooling alone, h_t = f_t h_{t−1} + (1 − f_t) z_t on given (B, T, H) float32 gates
    (batch-major in and out), against the memory floor: reading f and z and writing h,
    3·B·T·H·4 bytes, over the copy bandwidth measured in the same run (a jitted
    ``y = 1.0001·x`` on an array of the same size: 2·size bytes moved)."""
    rng = np.random.default_rng(0)
    f = jnp.asarray(1 / (1 + np.exp(-rng.standard_normal((B, T, H)))), jnp.float32)
    z = jnp.asarray(np.tanh(rng.standard_normal((B, T, H))), jnp.float32)
    big = jnp.ones((B * T * H,), jnp.float32)
    nbytes = B * T * H * 4
    fns = {"copy (bandwidth probe)": _jax_thunk(jax.jit(lambda v: v * 1.0001), big)}
    if naive:
        fns["naive lax.scan, time-major + transposes"] = _jax_thunk(
            jax.jit(_naive_time_major_scan), f, z)
    fns[f"scan (default: chunk={fq.scan_chunk(B * H)})"] = _jax_thunk(
        jax.jit(lambda f, z: fq.f_pool(f, z, pooling="scan")), f, z)
    for c in scan_chunks:
        fns[f"scan chunk={c}"] = _jax_thunk(
            jax.jit(lambda f, z, c=c: fq.f_pool(f, z, pooling="scan", chunk=c)), f, z)
    for c in blocked_chunks:
        fns[f"blocked chunk={c}"] = _jax_thunk(
            jax.jit(lambda f, z, c=c: fq.f_pool(f, z, pooling="blocked", chunk=c)), f, z)
    if associative:
        fns["associative"] = _jax_thunk(
            jax.jit(lambda f, z: fq.f_pool(f, z, pooling="associative")), f, z)
    t = time_interleaved(fns, rounds=rounds, reps=reps)
    copy = t["copy (bandwidth probe)"]
    bw = {k: 2 * nbytes / (copy[f"{k}_ms"] * 1e-3) / 1e9 for k in ("median", "min")}
    floor = {f"{k}_ms": 3 * nbytes / (bw[k] * 1e9) * 1e3 for k in ("median", "min")}
    ratios = {name: _ratio(v, floor) for name, v in t.items()
              if name != "copy (bandwidth probe)"}
    return {"config": dict(B=B, T=T, H=H, dtype="float32", floor_bytes=3 * nbytes),
            "times": t, "copy_bandwidth_GBps": bw, "memory_floor": floor,
            "x_memory_floor": ratios}


# ------------------------------------------------------------------ (c) against T

def bench_lengths(B: int = 8, F: int = 256, H: int = 256, kwidth: int = 2, *,
                  lengths=(16, 64, 256, 1024, 4096), poolings=fq.POOLINGS,
                  rounds: int = 5, reps: int = 2) -> dict:
    """The Flax layer per pooling against the sequence length T (forward and
    forward+backward, float32): which pooling to use for which T on this backend."""
    rows = []
    fns_by_pool = {p: _flax_layer_fns(F, H, kwidth, p, None) for p in poolings}
    for T in lengths:
        rng = np.random.default_rng(T)
        x = jnp.asarray(rng.standard_normal((B, T, F)).astype(np.float32))
        gh = jnp.asarray(rng.standard_normal((B, T, H)).astype(np.float32))
        gc = jnp.asarray(rng.standard_normal((B, H)).astype(np.float32))
        fns = {}
        for p, (state, f1, f2) in fns_by_pool.items():
            fns[f"{p} forward"] = _jax_thunk(f1, state, x)
            fns[f"{p} forward+backward"] = _jax_thunk(f2, state, x, gh, gc)
        rows.append({"T": T, "times": time_interleaved(fns, rounds=rounds, reps=reps)})
    return {"config": dict(B=B, F=F, H=H, kwidth=kwidth, dtype="float32",
                           backend=jax.default_backend(), poolings=list(poolings)),
            "rows": rows}


# ------------------------------------------------------------------ paper grid (GPU)

def bench_paper_grid(batches=(8, 16, 32, 64), lengths=(32, 128, 512), units: int = 320, *,
                     kwidth: int = 2, gates: str = "f", poolings=fq.POOLINGS,
                     chunk: int | None = None, rounds: int = 5, reps: int = 4,
                     tf32: bool = False) -> dict:
    """The paper's inference grid (Figure 4): one ``units``-unit QRNN layer (Flax, jit,
    each pooling) vs ``torch.nn.LSTM(units, units)`` (cuDNN on CUDA), forward only,
    float32, per (B, T). On CUDA when JAX runs on a GPU and torch sees one, else the CPU.
    ``tf32=False`` keeps both frameworks' matmuls in full float32."""
    import torch
    on_gpu = jax.default_backend() == "gpu" and torch.cuda.is_available()
    device = torch.device("cuda" if on_gpu else "cpu")
    if on_gpu:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    precision = "tensorfloat32" if tf32 else "highest"
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(units, units, batch_first=True).to(device).eval()
    rows = []
    with jax.default_matmul_precision(precision):
        layers = {p: _flax_layer_fns(units, units, kwidth, p, chunk, gates)[:2]
                  for p in poolings}
        for B in batches:
            for T in lengths:
                x_np = np.random.default_rng(B * 1000 + T).standard_normal(
                    (B, T, units)).astype(np.float32)
                x = jnp.asarray(x_np)
                xt = torch.from_numpy(x_np).to(device)

                def run_lstm(xt=xt):
                    with torch.no_grad():
                        lstm(xt)
                    _sync_torch(device)

                fns = {"torch LSTM": run_lstm}
                for p, (state, fwd) in layers.items():
                    fns[f"flax {p}"] = _jax_thunk(fwd, state, x)
                t = time_interleaved(fns, rounds=rounds, reps=reps)
                row = {"B": B, "T": T, "times": t}
                row["speedup_vs_lstm"] = {p: _ratio(t["torch LSTM"], t[f"flax {p}"])
                                          for p in poolings}
                rows.append(row)
    return {"config": dict(units=units, kwidth=kwidth, gates=gates, chunk=chunk,
                           dtype="float32", precision=precision, device=str(device),
                           jax_backend=jax.default_backend(),
                           device_name=(torch.cuda.get_device_name(0) if on_gpu
                                        else platform.processor() or "cpu")),
            "rows": rows}


# ------------------------------------------------------------------ report

def _ms(d: dict) -> str:
    return f"{d['median_ms']:.2f} ({d['min_ms']:.2f})"


def _x(r: dict) -> str:
    return f"{r['median']:.2f}x ({r['min']:.2f}x)"


def markdown(results: dict) -> str:
    """Markdown tables for whatever sections ``results`` holds."""
    lines = []
    m = results.get("machine", {})
    if m:
        lines += [f"Machine: {m.get('cpu', '?')}, {m.get('cpu_count')} cores, jax "
                  f"{m.get('jax')} ({m.get('jax_backend')}), torch {m.get('torch')} "
                  f"({m.get('torch_threads')} threads); load average at start "
                  f"{m.get('loadavg_1m', float('nan')):.2f}.", ""]
    if "layer" in results:
        r = results["layer"]
        c = r["config"]
        lines += [f"### Layer, float32: B={c['B']}, T={c['T']}, {c['F']} → {c['H']}, "
                  f"kwidth={c['kwidth']} (matmul floor {c['matmul']}, {c['gflop']:.2f} "
                  f"GFLOP); 'scan' block length {c.get('scan_chunk')}", "",
                  "Times in ms: median (min).", "",
                  "| candidate | forward | forward+backward |", "|---|---|---|"]
        for name, v in r["forward"].items():
            fb = r.get("forward_backward", {}).get(name)
            lines.append(f"| {name} | {_ms(v)} | {_ms(fb) if fb else '–'} |")
        lines += ["", "Goals (issue): ≤ 1.25x the matmul floor, ≥ 2.5x the torch loop, "
                  "≥ 1.6x torch LSTM. Ratios: median (min).", "",
                  "| phase, pooling | × matmul floor | speed-up vs torch loop | "
                  "speed-up vs torch LSTM |", "|---|---|---|---|"]
        for name, g in r["goals"].items():
            lines.append(f"| {name} | {_x(g['x_matmul_floor'])} | "
                         f"{_x(g['speedup_vs_torch_loop'])} | "
                         f"{_x(g['speedup_vs_torch_lstm'])} |")
        lines.append("")
    if "pooling" in results:
        r = results["pooling"]
        c = r["config"]
        bw, fl = r["copy_bandwidth_GBps"], r["memory_floor"]
        lines += [f"### Pooling alone, float32: B={c['B']}, T={c['T']}, H={c['H']}", "",
                  f"Copy bandwidth {bw['median']:.1f} GB/s ({bw['min']:.1f} GB/s from the "
                  f"fastest copy); memory floor 3·B·T·H·4 B = {c['floor_bytes'] / 1e6:.0f} MB "
                  f"→ {_ms(fl)} ms. Goal: ≤ 2x the floor.", "",
                  "| implementation | ms | × memory floor |", "|---|---|---|"]
        for name, v in r["times"].items():
            ratio = r["x_memory_floor"].get(name)
            lines.append(f"| {name} | {_ms(v)} | {_x(ratio) if ratio else '–'} |")
        lines.append("")
    if "lengths" in results:
        r = results["lengths"]
        c = r["config"]
        pools = c["poolings"]
        lines += [f"### Layer against T, float32: B={c['B']}, {c['F']} → {c['H']}, "
                  f"kwidth={c['kwidth']}, on {c['backend']}", "",
                  "Times in ms, median (min); ratio = time / best pooling's time (medians).",
                  "", "| T | phase | " + " | ".join(pools) + " |",
                  "|---|---|" + "---|" * len(pools)]
        for row in r["rows"]:
            for phase in ("forward", "forward+backward"):
                t = {p: row["times"][f"{p} {phase}"] for p in pools}
                best = min(v["median_ms"] for v in t.values())
                lines.append(f"| {row['T']} | {phase} | " + " | ".join(
                    f"{_ms(t[p])} {t[p]['median_ms'] / best:.2f}x" for p in pools) + " |")
        lines.append("")
    if "paper_grid" in results:
        r = results["paper_grid"]
        c = r["config"]
        pools = [k[5:] for k in r["rows"][0]["times"] if k.startswith("flax ")] \
            if r["rows"] else []
        lines += [f"### Paper grid: {c['units']}-unit layer (gates={c['gates']}, "
                  f"kwidth={c['kwidth']}) vs torch.nn.LSTM, forward, float32 "
                  f"({c['precision']}), on {c['device_name']} ({c['device']})", "",
                  "Times in ms, median (min); speed-up = LSTM / QRNN on medians (minima).",
                  "", "| B | T | torch LSTM | " + " | ".join(f"flax {p}" for p in pools)
                  + " | " + " | ".join(f"speed-up {p}" for p in pools) + " |",
                  "|---|---|---|" + "---|" * (2 * len(pools))]
        for row in r["rows"]:
            t = row["times"]
            lines.append(f"| {row['B']} | {row['T']} | {_ms(t['torch LSTM'])} | "
                         + " | ".join(_ms(t[f'flax {p}']) for p in pools) + " | "
                         + " | ".join(_x(row["speedup_vs_lstm"][p]) for p in pools) + " |")
        lines.append("")
    return "\n".join(lines)


def run(*, quick: bool = False, paper_grid: bool = False, layer: bool = True,
        pooling: bool = True, lengths: bool = True, rounds: int | None = None) -> dict:
    """All requested sections (``quick``: tiny sizes and few repetitions, a smoke test)."""
    results: dict = {"machine": machine(), "command": " ".join(sys.argv)}
    if paper_grid:
        if quick:
            results["paper_grid"] = bench_paper_grid((8,), (32,), 64, rounds=1, reps=1)
            results["lengths"] = bench_lengths(2, 16, 16, lengths=(4, 32), rounds=1, reps=1)
        else:
            results["paper_grid"] = bench_paper_grid(rounds=rounds or 5)
            results["lengths"] = bench_lengths(rounds=rounds or 5)
        return results
    if layer:
        results["layer"] = (bench_layer(2, 50, 32, 32, scan_chunks=(4,), rounds=1, reps=1)
                            if quick
                            else bench_layer(rounds=rounds or 7))
    if pooling:
        results["pooling"] = (bench_pooling(4, 64, 32, scan_chunks=(1, 8), blocked_chunks=(8,),
                                            rounds=1, reps=1) if quick
                              else bench_pooling(rounds=rounds or 5))
    if lengths:
        results["lengths"] = (bench_lengths(2, 16, 16, lengths=(4, 32), rounds=1, reps=1)
                              if quick else bench_lengths(rounds=rounds or 5))
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    ap.add_argument("--markdown", metavar="PATH", help="write the markdown tables here")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    ap.add_argument("--paper-grid", action="store_true",
                    help="the paper's grid: 320-unit layer vs torch.nn.LSTM, "
                         "B∈{8,16,32,64}, T∈{32,128,512} (GPU when available), then the "
                         "layer-against-T sweep on the same device")
    ap.add_argument("--only", choices=["layer", "pooling", "lengths"],
                    help="one section only (default: all three)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds per section")
    args = ap.parse_args(argv)
    res = run(quick=args.quick, paper_grid=args.paper_grid,
              layer=args.only in (None, "layer"), pooling=args.only in (None, "pooling"),
              lengths=args.only in (None, "lengths"), rounds=args.rounds)
    md = markdown(res)
    print(md)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(md + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
