"""The Flax side: forward and SGD train step under ``jax.jit``, compiled ahead of time.

The module is split (``nnx.split(m, nnx.Param, ...)``) around a pure function, lowered and
compiled with ``jit(f).lower(...).compile()`` so compilation is timed apart from
execution; the compiled program takes the state's leaves as a flat list (no pytree of
``nnx.State`` flattened per call: the fastest call, :mod:`flax_arch.aot`). From the
compiled program come XLA's cost analysis (FLOPs, bytes) and a few HLO statistics. Each ``time_*`` returns ``(timing, row_fields)``: the implementation's entry
of a bench row and the fields the compiled program adds to the row itself.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from ..parity.harness import flatten_outputs
from .prepared import BenchCase, loss_of
from .timing import Sampling

__all__ = ["time_forward", "time_train_step", "aot_compile", "cost_analysis", "hlo_stats"]


def aot_compile(fn: Callable, args: tuple, donate: tuple[int, ...] = ()):
    """``(compiled, trace+lower seconds, XLA compile seconds)``."""
    t0 = time.perf_counter()
    lowered = jax.jit(fn, donate_argnums=donate).lower(*args)
    t_lower = time.perf_counter() - t0
    t0 = time.perf_counter()
    compiled = lowered.compile()
    return compiled, t_lower, time.perf_counter() - t0


def _flat(fn: Callable, trees: tuple) -> tuple[Callable, list]:
    """``fn(*trees)`` as a function of the trees' leaves (a flat list of arrays) and those
    leaves: a call then flattens no ``nnx.State`` (the fastest way to call a compiled
    module, flax_arch.aot; about 3 µs less per call)."""
    treedef = jax.tree.structure(trees)

    def flat_fn(leaves):
        return fn(*jax.tree.unflatten(treedef, leaves))
    return flat_fn, jax.tree.leaves(trees)


def cost_analysis(compiled) -> dict:
    """XLA's cost analysis of a compiled program (``{}`` where the backend has none)."""
    try:
        c = compiled.cost_analysis()
    except Exception:
        return {}
    if isinstance(c, (list, tuple)):
        c = c[0] if c else {}
    return dict(c or {})


def hlo_stats(text: str) -> dict:
    """Counts in the optimised HLO: a while loop (FLOPs then count one trip), YNNPACK and
    XNNPACK fusions, plain convolutions, custom calls."""
    return {"has_while": " while(" in text,
            "ynn_fusions": text.count('"kind":"__ynn_fusion"'),
            "xnn_fusions": text.count('"kind":"__xnn_fusion"'),
            "convolutions": text.count(" convolution("),
            "custom_calls": text.count(" custom-call(")}


def _program_fields(compiled, name: str, mode: str, dump_hlo: str | None) -> dict:
    """The row fields of a compiled program; its HLO is written to ``dump_hlo`` if set."""
    cost = cost_analysis(compiled)
    text = compiled.as_text() or ""
    stats = hlo_stats(text)
    if dump_hlo:
        os.makedirs(dump_hlo, exist_ok=True)
        with open(os.path.join(dump_hlo, f"{name}.{mode}.hlo.txt"), "w") as f:
            f.write(text)
    return {"xla_flops": cost.get("flops"), "xla_bytes": cost.get("bytes accessed"),
            "flops_lower_bound": stats["has_while"], "hlo": stats}


def _timed(compiled, t_lower, t_compile, call, sampling: Sampling, name: str, mode: str,
           dump_hlo: str | None) -> tuple[dict, dict]:
    fields = _program_fields(compiled, name, mode, dump_hlo)
    res = dict(sampling.measure(call, jax.block_until_ready), lower_s=t_lower,
               compile_s=t_compile + t_lower)
    if fields["xla_flops"]:
        res["gflops_per_s"] = fields["xla_flops"] / res["median_s"] / 1e9
    return res, fields


def _forward_fn(b: BenchCase, graphdef) -> Callable:
    """The pure forward; in train mode it also returns the updated non-parameter state
    (running statistics, rng counters) so XLA cannot drop the update."""
    prep = b.prep

    def forward(params, rest, *xs):
        m = nnx.merge(graphdef, params, rest)
        out = prep.call_flax(m, *xs)
        return (out, nnx.split(m, nnx.Param, ...)[2]) if prep.case.train else out
    return forward


def time_forward(b: BenchCase, sampling: Sampling, dump_hlo: str | None = None):
    """Compile and time one forward call."""
    graphdef, params, rest = nnx.split(b.prep.flax_module, nnx.Param, ...)
    fn, leaves = _flat(_forward_fn(b, graphdef), (params, rest, *b.prep.flax_inputs()))
    compiled, t_lower, t_compile = aot_compile(fn, (leaves,))
    return _timed(compiled, t_lower, t_compile, lambda: compiled(leaves),
                  sampling, b.case.name, "forward", dump_hlo)


def _train_step_fn(b: BenchCase, graphdef, tx, n_inputs: int) -> Callable:
    """The pure train step: forward, ``nnx.value_and_grad`` of ``Σ <out_i, g_i>`` with
    respect to the ``nnx.Param`` variables (the state the forward updates flows back into
    the merged module), and an optax update."""
    prep, has_cot = b.prep, [c is not None for c in b.flax_cots]

    def step(params, rest, opt_state, *xs_and_cots):
        xs, cots = xs_and_cots[:n_inputs], xs_and_cots[n_inputs:]
        cots = [c if keep else None for c, keep in zip(cots, has_cot)]
        m = nnx.merge(graphdef, params, rest)
        loss, grads = nnx.value_and_grad(
            lambda m: loss_of(flatten_outputs(prep.call_flax(m, *xs)), cots))(m)
        _, params, new_rest = nnx.split(m, nnx.Param, ...)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_rest, opt_state, loss
    return step


def time_train_step(b: BenchCase, sampling: Sampling, lr: float,
                    dump_hlo: str | None = None):
    """Compile and time one SGD train step; parameters, state and optimiser state are
    donated and carried from call to call (copies: the prepared module stays as it was)."""
    graphdef, params, rest = nnx.split(b.prep.flax_module, nnx.Param, ...)
    tx = optax.sgd(lr)
    state: list[Any] = [jax.tree.map(jnp.copy, params), jax.tree.map(jnp.copy, rest)]
    state.append(tx.init(state[0]))
    xs = b.prep.flax_inputs()
    cots = [c if c is not None else jnp.zeros(()) for c in b.flax_cots]
    # as flat leaves: the carried state (donated, updated in place) and the fixed data
    step = _train_step_fn(b, graphdef, tx, len(xs))
    state_def = jax.tree.structure(tuple(state))
    n_state = state_def.num_leaves

    def flat_step(state_leaves, data):
        out = step(*jax.tree.unflatten(state_def, state_leaves), *data)
        return jax.tree.leaves(out[:3]), out[3]
    leaves = [jax.tree.leaves(tuple(state)), [*xs, *cots]]
    compiled, t_lower, t_compile = aot_compile(flat_step, tuple(leaves), donate=(0,))
    assert len(leaves[0]) == n_state

    def call():
        leaves[0], loss = compiled(*leaves)
        return loss
    return _timed(compiled, t_lower, t_compile, call, sampling, b.case.name, "train_step",
                  dump_hlo)
