"""Each convolution form (``method``) of ``flax_arch.nn`` on the slide models' layers, on CPU.

For every convolution in the slide-size AlexNet, ResLayer, SEGAN generator and DCGAN
(their shapes at batch 1, as in ``flax-arch bench``), times under ``jax.jit``, float32:

* ``fwd``: the layer's forward pass;
* ``grad``: forward + the gradients with respect to the input and every parameter of
  ``Σ y ⊙ g`` (fixed g): what a train step pays for the layer;

for each of the layer's methods (``Conv*``: 'conv', 'patches'; ``ConvTranspose*``:
'matmul', 'conv', 'phases', 'conv+phases'), and marks the one ``method='auto'`` picks.
Times are the median over ``--runs`` samples, each long enough (≥ 20 ms) to average many
calls.
This is the measurement behind ``flax_arch.ops.conv.prefer_patches`` and the 'auto' rules
(docs/benchmarks.md, "Convolution forms").

Usage::

    python benchmarks/conv_forms.py [--batch 1] [--runs 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

#: (model, layer class, in, out, kernel, kwargs, input spatial size)
LAYERS = [
    ("alexnet", "Conv2d", 3, 64, 11, dict(stride=4, padding=2), (224, 224)),
    ("alexnet", "Conv2d", 64, 192, 5, dict(padding=2), (27, 27)),
    ("alexnet", "Conv2d", 192, 384, 3, dict(padding=1), (13, 13)),
    ("alexnet", "Conv2d", 384, 256, 3, dict(padding=1), (13, 13)),
    ("reslayer", "Conv2d", 64, 64, 3, dict(padding=1), (100, 100)),
    ("segan enc", "Conv1d", 1, 64, 31, dict(stride=4), (8221,)),
    ("segan enc", "Conv1d", 64, 128, 31, dict(stride=4), (2077,)),
    ("segan enc", "Conv1d", 128, 256, 31, dict(stride=4), (541,)),
    ("segan enc", "Conv1d", 256, 512, 31, dict(stride=4), (157,)),
    ("segan dec", "ConvTranspose1d", 512, 256, 31, dict(stride=4, padding=13), (32,)),
    ("segan dec", "ConvTranspose1d", 256, 128, 31, dict(stride=4, padding=13), (128,)),
    ("segan dec", "ConvTranspose1d", 128, 64, 31, dict(stride=4, padding=13), (512,)),
    ("segan dec", "ConvTranspose1d", 64, 1, 31, dict(stride=4, padding=13), (2048,)),
    ("dcgan D", "Conv2d", 3, 64, 4, dict(stride=2, padding=1), (64, 64)),
    ("dcgan D", "Conv2d", 64, 128, 4, dict(stride=2, padding=1), (32, 32)),
    ("dcgan D", "Conv2d", 128, 256, 4, dict(stride=2, padding=1), (16, 16)),
    ("dcgan D", "Conv2d", 256, 512, 4, dict(stride=2, padding=1), (8, 8)),
    ("dcgan G", "ConvTranspose2d", 100, 512, 4, dict(stride=1), (1, 1)),
    ("dcgan G", "ConvTranspose2d", 512, 256, 4, dict(stride=2, padding=1), (4, 4)),
    ("dcgan G", "ConvTranspose2d", 256, 128, 4, dict(stride=2, padding=1), (8, 8)),
    ("dcgan G", "ConvTranspose2d", 128, 64, 4, dict(stride=2, padding=1), (16, 16)),
    ("dcgan G", "ConvTranspose2d", 64, 3, 4, dict(stride=2, padding=1), (32, 32)),
]
METHODS = {"Conv1d": ("conv", "patches"), "Conv2d": ("conv", "patches"),
           "ConvTranspose1d": ("matmul", "conv", "phases", "conv+phases"),
           "ConvTranspose2d": ("matmul", "conv", "phases", "conv+phases")}


def _ms(fn, args, runs: int, min_sample_s: float = 0.02) -> float:
    import jax
    jax.block_until_ready(fn(*args))
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    k = max(1, int(min_sample_s / max(time.perf_counter() - t0, 1e-7)))
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(k):
            out = fn(*args)
        jax.block_until_ready(out)
        samples.append((time.perf_counter() - t0) / k * 1e3)
    return statistics.median(samples)


def run(batch: int = 1, runs: int = 7) -> list[dict]:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    import flax_arch.nn as fnn

    rows = []
    for model, cls, cin, cout, k, kw, size in LAYERS:
        x = jax.random.normal(jax.random.key(0), (batch, *size, cin))
        row = {"model": model, "layer": f"{cls}({cin}, {cout}, {k}, {kw})",
               "input": list(x.shape), "ms": {}}
        for method in ("auto",) + METHODS[cls]:
            layer = getattr(fnn, cls)(cin, cout, k, **kw, method=method, rngs=nnx.Rngs(0))
            graphdef, params = nnx.split(layer)
            if method == "auto":
                row["auto"] = (layer.resolve_method(size) if cls.startswith("Conv")
                               and not cls.startswith("ConvTranspose")
                               else layer.resolve_method())
                continue
            fwd = jax.jit(lambda p, x: nnx.merge(graphdef, p)(x))
            g = jnp.ones_like(fwd(params, x))
            grad = jax.jit(jax.grad(lambda p, x: jnp.sum(nnx.merge(graphdef, p)(x) * g),
                                    argnums=(0, 1)))
            row["ms"][method] = {"fwd": _ms(fwd, (params, x), runs),
                                 "grad": _ms(grad, (params, x), runs)}
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def _line(row: dict) -> str:
    cells = "  ".join(f"{m}{'*' if m == row['auto'] else ''}: {t['fwd']:.3g} / {t['grad']:.3g}"
                      for m, t in row["ms"].items())
    return f"{row['model']:<10} {row['layer']:<58} {str(tuple(row['input'])):<18} {cells}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    print("ms, fwd / grad (forward + input and parameter gradients); * = method='auto'")
    rows = run(args.batch, args.runs)
    if args.json:
        from flax_arch.environment import environment
        with open(args.json, "w") as fh:
            json.dump({"kind": "conv_forms", "meta": environment(), "args": vars(args),
                       "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
