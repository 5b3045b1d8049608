"""The matmul floor of the ``one_hot_linear`` row: one (10 × 10000) @ (10000 × 100) dot.

XLA's dot under ``jax.jit`` with the kernel as Flax stores it, (in, out) ("NN"), and
transposed, (out, in) ("NT"), against torch's ``F.linear`` (torch's weight layout) and a
plain NN matmul, float32 on CPU. ``python benchmarks/dense_floor.py``: milliseconds per
call, median (and minimum) of 200 calls, the XLA forms interleaved.
"""

from __future__ import annotations

import statistics
import time


def _median_min(fns: dict, runs: int = 200) -> dict:
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: (statistics.median(v), min(v)) for k, v in times.items()}


def main() -> None:
    import jax
    import jax.numpy as jnp
    import torch

    n, d_in, d_out = 10, 10000, 100
    x = jax.random.normal(jax.random.key(0), (n, d_in))
    k = jax.random.normal(jax.random.key(1), (d_in, d_out))
    kt, b = jnp.asarray(k.T), jnp.zeros(d_out)
    nn_ = jax.jit(lambda x, k: x @ k + b)
    nt = jax.jit(lambda x, kt: jax.lax.dot_general(x, kt, (((1,), (1,)), ((), ()))) + b)
    xla = _median_min({"XLA NN (Flax layout)": lambda: jax.block_until_ready(nn_(x, k)),
                       "XLA NT (torch layout)": lambda: jax.block_until_ready(nt(x, kt))})
    tx, tw, tb = torch.randn(n, d_in), torch.randn(d_out, d_in), torch.zeros(d_out)
    twt = tw.T.contiguous()
    with torch.no_grad():
        tor = {"torch F.linear": _median_min({"": lambda: torch.nn.functional.linear(tx, tw, tb)})[""],
               "torch x @ W (NN)": _median_min({"": lambda: tx @ twt})[""]}
    print(f"({n} × {d_in}) @ ({d_in} × {d_out}), ms per call: median (min)")
    for name, (med, low) in {**xla, **tor}.items():
        print(f"{name:<24} {med:6.3f} ({low:.3f})")


if __name__ == "__main__":
    main()
