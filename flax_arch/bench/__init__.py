"""``flax-arch bench``: time every registered module, Flax under ``jax.jit`` against torch.

For each module of the parity registry (:mod:`flax_arch.parity.registry`) one case is
chosen (``--size``) and timed in two modes:

* ``forward``: one call of the module on the case's inputs (torch under ``no_grad``; in
  train mode the BatchNorm running statistics are updated, and returned on the JAX side so
  XLA cannot drop the update);
* ``train_step``: forward, backward of ``L = Σ_i <out_i, g_i>`` (fixed random cotangents, as
  in the parity harness) and an SGD update of every parameter (``optax.sgd`` inside one
  ``jax.jit`` with the state donated; ``torch.optim.SGD`` on torch).

Three implementations: the Flax module under ``jax.jit`` (compiled ahead of time), the
``torch_ref`` module eagerly, and the same under ``torch.compile``; compilation is timed
apart from execution. Each case is set up by the parity harness's
:func:`~flax_arch.parity.harness.prepare` (float32): the bench times exactly the modules,
weights and inputs the parity suite proves equal. See ``docs/benchmarks.md`` for the
methodology and the measured numbers.

Layout, one job per module:

* :mod:`.timing` — :func:`measure`: warm-up, calibration, samples, statistics;
* :mod:`.plan` — the case plan: one case per torch module class, size choice, FLOP estimate;
* :mod:`.probes` — the bench's own cases (``--probes``);
* :mod:`.prepared` — a case set up for timing (``prepare`` + weights copy, cotangents, loss);
* :mod:`.flax_side` — Flax forward and train step under ``jax.jit`` (AOT compile, XLA cost
  analysis, HLO statistics);
* :mod:`.torch_side` — torch eager and ``torch.compile`` forward and train step;
* :mod:`.case` — :func:`bench_case`: one case, every mode and implementation → table rows;
* :mod:`.sweep` — ``--sweep``: QRNN vs LSTM against sequence length;
* :mod:`.xla_flags` — ``--compare-xla-flags``: one subprocess per XLA setting;
* :mod:`.report` — tables, JSON, the environment every report records;
* :mod:`.plot` — the plots (matplotlib; ``python -m flax_arch.bench.plot R.json OUT.png``);
* :mod:`.cli` — :func:`add_arguments` / :func:`run`, the subcommand glue.

Importing this package imports JAX but never torch (torch loads when a case is timed).
"""

from __future__ import annotations

from .case import IMPL_LABEL, IMPLS, MODES, bench_case
from .cli import add_arguments, run
from .plan import Planned, forward_flops_estimate, plan_cases
from .probes import probe_cases
from .report import format_table, machine_info
from .sweep import sweep_cases
from .timing import Sampling, measure
from .xla_flags import CONV_HEAVY, FLAG_PRESETS, compare_table, resolve_settings

__all__ = ["add_arguments", "run", "plan_cases", "Planned", "forward_flops_estimate",
           "bench_case", "measure", "Sampling", "probe_cases", "sweep_cases", "format_table",
           "machine_info", "compare_table", "resolve_settings", "FLAG_PRESETS", "CONV_HEAVY",
           "IMPLS", "IMPL_LABEL", "MODES"]
