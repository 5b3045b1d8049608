"""What one call costs: the ways of calling a Flax NNX module, against torch eager.

For a module whose work is negligible (the slides' ``linear_regression``, Linear(1, 1) on
a batch of 4; and the ``embedding`` case, Embedding(10, 3) on (4, 5) indices), every call
style below computes the same thing; what differs is the Python and dispatch work around
the computation:

* ``nnx eager``: ``model(x)``, op by op, no compilation;
* ``nnx.jit``: ``nnx.jit(lambda m, x: m(x))(model, x)``: traverses the module graph on every
  call (to find its variables and write back state);
* ``nnx.cached_partial``: ``nnx.cached_partial(nnx.jit(f), model)(x)``: the graph
  traversal cached;
* ``jax.jit(state)``: ``graphdef, state = nnx.split(model)`` once, then
  ``f(state, x)`` with ``f = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))``: a pytree of
  arrays per call, no graph;
* ``AOT``: the same function lowered and compiled once (``jax.jit(f).lower(state,
  x).compile()``), then ``compiled(state, x)``: no tracing-cache lookup;
* ``AOT, flat leaves``: compiled over ``jax.tree.leaves(state)`` (a flat list of arrays)
  instead of the ``nnx.State`` tree: no nested-dict flattening per call;
* ``torch eager``: ``module(x)`` under ``torch.no_grad()``.

Each figure is the median over ``--runs`` samples of ``--calls`` back-to-back calls
(microseconds per call), ending each sample with one ``block_until_ready``.

Usage::

    python benchmarks/call_overhead.py                 # the table
    python benchmarks/call_overhead.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def _per_call_us(call, sync, calls: int, runs: int) -> float:
    for _ in range(3):
        sync(call())
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(calls):
            out = call()
        sync(out)
        samples.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(samples)


def _styles(model, x):
    """name → zero-argument call, every one computing ``model(x)``."""
    import jax
    from flax import nnx

    graphdef, state = nnx.split(model)

    def fwd(state, x):
        return nnx.merge(graphdef, state)(x)
    jitted = jax.jit(fwd)
    compiled = jitted.lower(state, x).compile()
    leaves, treedef = jax.tree.flatten(state)

    def fwd_flat(leaves, x):
        return fwd(jax.tree.unflatten(treedef, leaves), x)
    compiled_flat = jax.jit(fwd_flat).lower(leaves, x).compile()
    nnx_jitted = nnx.jit(lambda m, x: m(x))
    cached = nnx.cached_partial(nnx_jitted, model)
    return {
        "nnx eager": lambda: model(x),
        "nnx.jit": lambda: nnx_jitted(model, x),
        "nnx.cached_partial": lambda: cached(x),
        "jax.jit(state)": lambda: jitted(state, x),
        "AOT": lambda: compiled(state, x),
        "AOT, flat leaves": lambda: compiled_flat(leaves, x),
    }


def bench(calls: int = 200, runs: int = 15) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch
    from flax import nnx

    import flax_arch.nn as fnn
    from flax_arch.interop import load_torch_state_dict

    rng = np.random.default_rng(0)
    cases = {
        "linear_regression: Linear(1, 1), x (4, 1)": (
            torch.nn.Linear(1, 1), lambda r: fnn.Linear(1, 1, rngs=r),
            rng.standard_normal((4, 1)).astype(np.float32)),
        "embedding: Embedding(10, 3), idx (4, 5)": (
            torch.nn.Embedding(10, 3), lambda r: fnn.Embedding(10, 3, rngs=r),
            rng.integers(0, 10, (4, 5))),
    }
    results = {}
    for name, (tmod, make, xnp) in cases.items():
        fmod = make(nnx.Rngs(0))
        load_torch_state_dict(fmod, tmod.state_dict())
        x = jnp.asarray(xnp)
        row = {k: _per_call_us(c, jax.block_until_ready, calls, runs)
               for k, c in _styles(fmod, x).items()}
        tx = torch.from_numpy(xnp)
        with torch.no_grad():
            row["torch eager"] = _per_call_us(lambda: tmod(tx), lambda o: o, calls, runs)
        results[name] = row
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=200, help="back-to-back calls per sample")
    p.add_argument("--runs", type=int, default=15, help="samples (median reported)")
    p.add_argument("--json", metavar="PATH", help="also write the results (with the "
                   "environment) as JSON")
    args = p.parse_args(argv)
    results = bench(args.calls, args.runs)
    styles = list(next(iter(results.values())))
    width = max(map(len, styles))
    print(f"µs per call, median of {args.runs} samples of {args.calls} calls")
    print(" " * width + "  " + "  ".join(f"{n.split(':')[0]:>18}" for n in results))
    for s in styles:
        print(f"{s:<{width}}  " + "  ".join(f"{results[n][s]:>18.1f}" for n in results))
    if args.json:
        from flax_arch.environment import environment
        with open(args.json, "w") as fh:
            json.dump({"kind": "call_overhead", "meta": environment(),
                       "args": vars(args), "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
