"""The floor of the ``embedding`` row's forward: one compiled gather of 10 rows.

``flax_arch.nn.Embedding`` maps out-of-range indices to a sentinel and gathers with
``mode='fill'`` (NaN rows). This times, as AOT-compiled calls (the cheapest call,
``flax_arch.aot``), that computation and bare ``jnp.take`` gathers with no range handling,
on the ``embedding`` case's shapes (table 10000 × 100, indices (10, 1)), float32, CPU.
``python benchmarks/gather_floor.py``: µs per call, median of 15 samples of 500 calls.
"""

from __future__ import annotations

import statistics
import time


def main() -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np

    n = 10000
    w = jax.random.normal(jax.random.key(0), (n, 100))
    x = jnp.asarray(np.random.default_rng(0).integers(0, n, (10, 1)))

    def embedding(w, x):  # what Embedding.__call__ computes (no max_norm, no padding_idx)
        idx = jnp.where((x >= 0) & (x < n), x, n)
        return jnp.take(w, idx, axis=0, mode="fill", fill_value=jnp.nan)
    forms = {"Embedding's gather (sentinel + fill)": embedding,
             "jnp.take, mode='fill'": lambda w, x: jnp.take(w, x, axis=0, mode="fill"),
             "jnp.take, mode='clip'": lambda w, x: jnp.take(w, x, axis=0, mode="clip")}
    for name, f in forms.items():
        compiled = jax.jit(f).lower(w, x).compile()
        jax.block_until_ready(compiled(w, x))
        samples = []
        for _ in range(15):
            t0 = time.perf_counter()
            for _ in range(500):
                out = compiled(w, x)
            jax.block_until_ready(out)
            samples.append((time.perf_counter() - t0) / 500 * 1e6)
        print(f"{name:<38} {statistics.median(samples):6.2f} µs")


if __name__ == "__main__":
    main()
