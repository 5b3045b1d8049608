"""Flax :class:`flax_arch.nn.recurrent.LSTM` under ``jax.jit`` vs ``torch.nn.LSTM`` on the CPU.

Default configuration (issue 3): batch 8, sequence length 500, input and hidden size 256,
one layer, float32; the forward pass and forward + backward (gradient of ``out.sum()``
with respect to every parameter). Each measurement is the median of ``runs`` timed calls
after ``warmup`` untimed ones (the JAX programs are compiled before); JAX results are
waited for with ``block_until_ready``. Flax and torch take turns run by run, so that on a
shared machine background load hits both alike; the minimum is reported too. Torch's
forward runs under ``torch.no_grad()`` (inference, like the jitted forward, which keeps no
residuals for a backward pass).

Usage::

    python benchmarks/lstm.py                      # the table
    python benchmarks/lstm.py --unroll 1 4 16      # one Flax row per scan unroll factor
    python benchmarks/lstm.py --torch-threads 1    # torch single-threaded
    python benchmarks/lstm.py --json out.json      # also write the results
    python benchmarks/lstm.py --floor              # + the same work's matmuls alone

:func:`bench_lstm` returns the measurements as a dict, for ``flax-arch bench``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def _time_interleaved(fns: dict, runs: int, warmup: int) -> dict:
    """Median and minimum milliseconds of each callable, the callables taking turns run by
    run, so that a shared, noisy machine loads them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: {"median_ms": statistics.median(v), "min_ms": min(v)} for k, v in times.items()}


def _flax_fns(batch, seq_len, input_size, hidden_size, num_layers, unroll, seed):
    """Jitted forward and forward+backward closures (compiled here) and the compile times."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from flax_arch.nn.recurrent import LSTM

    model = LSTM(input_size, hidden_size, num_layers, rngs=nnx.Rngs(seed), unroll=unroll)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    x = jax.random.normal(jax.random.key(seed), (seq_len, batch, input_size), jnp.float32)

    @jax.jit
    def forward(params, x):
        out, (h, c) = nnx.merge(graphdef, params, rest)(x)
        return out, h, c

    @jax.jit
    def forward_backward(params, x):
        def loss(params):
            out, _ = nnx.merge(graphdef, params, rest)(x)
            return jnp.sum(out)
        return jax.value_and_grad(loss)(params)

    first = {}
    t0 = time.perf_counter()
    jax.block_until_ready(forward(params, x))
    first["forward"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(forward_backward(params, x))
    first["forward_backward"] = time.perf_counter() - t0
    return (lambda: jax.block_until_ready(forward(params, x)),
            lambda: jax.block_until_ready(forward_backward(params, x)), first)


def floor_fns(batch, seq_len, input_size, hidden_size, seed=0):
    """The forward's matmul floor under ``jax.jit``: the input projection alone, one
    (T·N, H_in) @ (H_in, 4H) matmul, and the recurrence's matmuls alone, a ``lax.scan``
    whose step is h ← (h W_hhᵀ)[:, :H] and nothing else (the smallest step that keeps the
    T dependent matmuls)."""
    import jax
    import jax.numpy as jnp

    k = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.normal(k[0], (seq_len * batch, input_size))
    w_ih = jax.random.normal(k[1], (input_size, 4 * hidden_size)) * 0.05
    w_hh = jax.random.normal(k[2], (hidden_size, 4 * hidden_size)) * 0.05
    h0 = jnp.zeros((batch, hidden_size))
    projection = jax.jit(lambda x, w: x @ w)
    recurrence = jax.jit(lambda h0, w: jax.lax.scan(
        lambda h, _: ((h @ w)[:, :hidden_size], None), h0, None, length=seq_len)[0])
    jax.block_until_ready((projection(x, w_ih), recurrence(h0, w_hh)))
    return {"floor_projection": lambda: jax.block_until_ready(projection(x, w_ih)),
            "floor_recurrence": lambda: jax.block_until_ready(recurrence(h0, w_hh))}


def _torch_fns(batch, seq_len, input_size, hidden_size, num_layers, seed):
    import torch

    torch.manual_seed(seed)
    model = torch.nn.LSTM(input_size, hidden_size, num_layers)
    x = torch.randn(seq_len, batch, input_size)

    def forward():
        with torch.no_grad():
            return model(x)

    def forward_backward():
        model.zero_grad(set_to_none=True)
        out, _ = model(x)
        out.sum().backward()

    info = {"threads": torch.get_num_threads(), "version": torch.__version__,
            "mkldnn": bool(torch.backends.mkldnn.is_available())}
    return forward, forward_backward, info


def bench_lstm(batch: int = 8, seq_len: int = 500, hidden_size: int = 256,
               input_size: int = 256, num_layers: int = 1, *, unroll: int = 1,
               runs: int = 20, warmup: int = 3, seed: int = 0,
               include_torch: bool = True, torch_threads: int | None = None,
               floor: bool = False) -> dict:
    """Time the Flax LSTM (jit) and ``torch.nn.LSTM`` on the CPU, float32.

    Returns ``{"name", "config", "jax": {"backend", "version"}, "flax": {...},
    "torch": {...} | None, "ratio": {"forward", "forward_backward"} | None}`` where the
    per-framework entries hold median milliseconds ``forward_ms`` and
    ``forward_backward_ms`` (and their minima under ``min_ms``), and ``ratio`` is Flax
    time / torch time (> 1: Flax slower). ``torch_threads`` sets ``torch.set_num_threads``
    (default: torch's own choice, one thread per core). ``floor`` adds ``"floor"``: the
    median and minimum ms of :func:`floor_fns`' two programs (the forward's matmuls
    alone), timed in the same interleaved runs.
    """
    import jax

    if jax.default_backend() != "cpu":
        print(f"note: JAX runs on {jax.default_backend()}, torch on the CPU", file=sys.stderr)
    config = dict(batch=batch, seq_len=seq_len, input_size=input_size,
                  hidden_size=hidden_size, num_layers=num_layers, unroll=unroll,
                  dtype="float32", runs=runs, warmup=warmup)
    f_fwd, f_bwd, first = _flax_fns(batch, seq_len, input_size, hidden_size, num_layers,
                                    unroll, seed)
    fns = {"flax_forward": f_fwd, "flax_forward_backward": f_bwd}
    if floor:
        fns.update(floor_fns(batch, seq_len, input_size, hidden_size, seed))
    if include_torch:
        if torch_threads:
            import torch
            torch.set_num_threads(torch_threads)
        t_fwd, t_bwd, info = _torch_fns(batch, seq_len, input_size, hidden_size, num_layers,
                                        seed)
        fns.update(torch_forward=t_fwd, torch_forward_backward=t_bwd)
    t = _time_interleaved(fns, runs, warmup)
    pick = lambda fw: {  # noqa: E731 — median and min per pass
        "forward_ms": t[f"{fw}_forward"]["median_ms"],
        "forward_backward_ms": t[f"{fw}_forward_backward"]["median_ms"],
        "min_ms": {"forward": t[f"{fw}_forward"]["min_ms"],
                   "forward_backward": t[f"{fw}_forward_backward"]["min_ms"]}}
    flax_res = dict(pick("flax"), first_call_s=first)
    torch_res = ratio = None
    if include_torch:
        torch_res = dict(pick("torch"), **info)
        ratio = {k: flax_res[f"{k}_ms"] / torch_res[f"{k}_ms"]
                 for k in ("forward", "forward_backward")}
    result = {"name": "lstm", "config": config,
              "jax": {"backend": jax.default_backend(), "version": jax.__version__},
              "flax": flax_res, "torch": torch_res, "ratio": ratio}
    if floor:
        result["floor"] = {k: t[k] for k in ("floor_projection", "floor_recurrence")}
    return result


def _table(results: list[dict]) -> str:
    head = ("flax unroll", "pass", "flax ms", "torch ms", "ratio", "flax min", "torch min")
    rows = []
    for r in results:
        f, t, ratio = r["flax"], r["torch"], r["ratio"]
        for kind, label in (("forward", "forward"), ("forward_backward", "fwd+bwd")):
            rows.append((str(r["config"]["unroll"]), label, f"{f[kind + '_ms']:.1f}",
                         f"{t[kind + '_ms']:.1f}" if t else "-",
                         f"{ratio[kind]:.2f}" if ratio else "-",
                         f"{f['min_ms'][kind]:.1f}",
                         f"{t['min_ms'][kind]:.1f}" if t else "-"))
    rows.insert(0, head)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=500)
    p.add_argument("--hidden-size", type=int, default=256)
    p.add_argument("--input-size", type=int, default=256)
    p.add_argument("--num-layers", type=int, default=1)
    p.add_argument("--unroll", type=int, nargs="+", default=[1],
                   help="scan unroll factor(s); one Flax row each")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--torch-threads", type=int, default=None,
                   help="torch.set_num_threads (default: torch's choice, one per core)")
    p.add_argument("--no-torch", action="store_true", help="time the Flax LSTM only")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--floor", action="store_true",
                   help="also time the forward's matmuls alone (projection, recurrence)")
    args = p.parse_args(argv)
    # torch is timed again alongside every unroll value (interleaved runs)
    results = [bench_lstm(args.batch, args.seq_len, args.hidden_size, args.input_size,
                          args.num_layers, unroll=unroll, runs=args.runs, warmup=args.warmup,
                          include_torch=not args.no_torch, torch_threads=args.torch_threads,
                          floor=args.floor)
               for unroll in args.unroll]
    c, t = results[0]["config"], results[0]["torch"]
    threads = f", torch {t['threads']} threads" if t else ""
    print(f"LSTM B={c['batch']} T={c['seq_len']} H_in={c['input_size']} "
          f"H={c['hidden_size']} layers={c['num_layers']} float32, CPU{threads}; median "
          f"(and min) of {c['runs']} interleaved runs; ratio = flax / torch, > 1: Flax slower")
    print(_table(results))
    for r in results:
        if "floor" in r:
            f = r["floor"]
            print("forward's matmul floor (XLA), median (min) ms: input projection "
                  f"{f['floor_projection']['median_ms']:.1f} "
                  f"({f['floor_projection']['min_ms']:.1f}), recurrence "
                  f"{f['floor_recurrence']['median_ms']:.1f} "
                  f"({f['floor_recurrence']['min_ms']:.1f})")
    if args.json:
        with open(args.json, "w") as fh:
            from flax_arch.environment import environment
            json.dump({"kind": "lstm", "meta": environment(), "args": vars(args),
                       "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
