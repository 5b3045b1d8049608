"""One call to check a port of your own: :func:`assert_parity`.

It wraps the two modules in a :class:`~flax_arch.parity.Case` (copies, so yours are left as
they are) and runs :func:`~flax_arch.parity.run_case`: forward outputs, gradients with
respect to the inputs and every parameter, and the state after the call. With ``steps=N``
it also trains both sides for N optimizer steps on ``L = Σ_i <out_i, g_i>`` (the harness's
fixed cotangents). torch runs ``torch.optim.SGD`` / ``Adam`` / ``AdamW``, and Flax runs the
optax optimizer with the same hyper-parameters. After every step, every parameter and buffer
(BatchNorm running statistics included) is compared.

Example::

    report = assert_parity(torch_block, flax_block, [x], in_layouts=["channels"],
                           out_layouts=["channels"], train=True, steps=3, optimizer="adam")
    print(report)

A mismatch raises ``AssertionError`` carrying the whole report, which is what a pytest test
wants.

Adam and AdamW divide each gradient by its own running size. A parameter whose gradient is
zero in exact arithmetic (a bias in front of a train-mode BatchNorm) therefore moves by
about ``lr`` in a direction set by rounding noise, and the two frameworks disagree. Such a
model is ill-posed for an Adam step comparison: drop the bias (as is usual in front of
BatchNorm), or compare with SGD.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Sequence

import numpy as np

from ..interop import tensor_to_numpy
from .harness import (Case, CaseResult, flatten_outputs, parity_config, prepare,
                      relative_error, run_case, tolerance)

__all__ = ["assert_parity", "ParityReport", "compare_steps", "OPTIMIZERS"]

#: optimizer name → (torch.optim class name, its defaults that optax must be given)
OPTIMIZERS = {
    "sgd": ("SGD", {"momentum": 0.0}),
    "adam": ("Adam", {"betas": (0.9, 0.999), "eps": 1e-8}),
    "adamw": ("AdamW", {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2}),
}


@dataclasses.dataclass
class ParityReport:
    """What :func:`assert_parity` found: the single-call comparison and, with ``steps``,
    the largest relative error of any parameter or buffer after each optimizer step."""

    result: CaseResult
    step_errors: list[float] = dataclasses.field(default_factory=list)
    step_worst: list[str] = dataclasses.field(default_factory=list)
    optimizer: str | None = None

    @property
    def passed(self) -> bool:
        return self.result.passed and all(e <= self.result.tol for e in self.step_errors)

    def __str__(self) -> str:
        r = self.result
        lines = [f"{r.case} [{r.dtype}, {r.backend}]: {'PASS' if self.passed else 'FAIL'} "
                 f"(tolerance {r.tol:.0e})",
                 f"  forward {r.forward_err:.2e}, gradients {r.grad_err:.2e}, "
                 f"state {r.state_err:.2e}" + (f"; worst: {r.worst}" if r.worst else "")]
        if r.error:
            lines.append(f"  error: {r.error}")
        if r.diverged_at:
            lines.append(f"  first diverging submodule: {r.diverged_at}")
        for i, (e, w) in enumerate(zip(self.step_errors, self.step_worst), 1):
            lines.append(f"  {self.optimizer} step {i}: parameters and buffers {e:.2e}"
                         + (f" (worst {w})" if w else ""))
        return "\n".join(lines)


def _numpy(x) -> np.ndarray:
    return tensor_to_numpy(x) if hasattr(x, "detach") else np.asarray(x)


def assert_parity(torch_module, flax_module, inputs: Sequence, *, dtype: str = "float64",
                  in_layouts: Sequence[str | None] | None = None,
                  out_layouts: Sequence[str | None] | None = None, train: bool = False,
                  steps: int = 0, optimizer: str = "sgd", lr: float = 1e-3,
                  name: str = "user_module", **optimizer_kwargs) -> ParityReport:
    """Check that ``flax_module`` computes what ``torch_module`` computes.

    ``inputs``: arrays or tensors in torch's layout. ``in_layouts`` / ``out_layouts``:
    ``"channels"`` where torch is channels-first and the Flax module channels-last.
    ``train``: compare in training mode (batch statistics, running-statistic updates).
    ``steps``, ``optimizer`` ('sgd', 'adam', 'adamw'), ``lr`` and torch's keyword arguments
    of that optimizer (``momentum``, ``betas``, ``eps``, ``weight_decay``): optimizer steps
    to compare as well. Both modules are copied; neither is changed.

    Returns the :class:`ParityReport`. Raises ``AssertionError`` with the report when
    anything differs beyond the dtype's tolerance, and ``ValueError`` for bad arguments.
    """
    from flax import nnx
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {tuple(OPTIMIZERS)}, got {optimizer!r}")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    arrays = tuple(_numpy(x) for x in inputs)
    graphdef, state = nnx.split(flax_module)
    case = Case(name, torch_module=lambda: copy.deepcopy(torch_module),
                flax_module=lambda rngs: nnx.merge(graphdef, copy.deepcopy(state)),
                inputs=lambda rng: arrays, in_layouts=tuple(in_layouts or ()),
                out_layouts=tuple(out_layouts or ()), train=train)
    report = ParityReport(run_case(case, dtype))
    if steps and report.result.error is None:
        report.optimizer = optimizer
        report.step_errors, report.step_worst = compare_steps(
            case, dtype, steps, optimizer, lr, **optimizer_kwargs)
    if not report.passed:
        raise AssertionError(str(report))
    return report


def _optimizers(optimizer: str, lr: float, params, kwargs: dict):
    """(torch optimizer over ``params``, the optax transformation with the same
    hyper-parameters)."""
    import optax
    import torch
    cls_name, defaults = OPTIMIZERS[optimizer]
    hp = {**defaults, **kwargs}
    unknown = set(kwargs) - set(defaults)
    if unknown:
        raise ValueError(f"{optimizer}: unsupported optimizer arguments {sorted(unknown)}; "
                         f"supported: {sorted(defaults)}")
    topt = getattr(torch.optim, cls_name)(params, lr=lr, **hp)
    if optimizer == "sgd":
        tx = optax.sgd(lr, momentum=hp["momentum"] or None)
    elif optimizer == "adam":
        tx = optax.adam(lr, b1=hp["betas"][0], b2=hp["betas"][1], eps=hp["eps"])
    else:  # torch's AdamW decays by lr·wd·p before the Adam step; optax's adamw does too
        tx = optax.adamw(lr, b1=hp["betas"][0], b2=hp["betas"][1], eps=hp["eps"],
                         weight_decay=hp["weight_decay"])
    return topt, tx


def compare_steps(case: Case, dtype: str, steps: int, optimizer: str = "sgd",
                  lr: float = 1e-3, **optimizer_kwargs) -> tuple[list[float], list[str]]:
    """Train both sides of ``case`` for ``steps`` optimizer steps on
    ``L = Σ_i <out_i, g_i>``; after each, the largest relative error over every parameter
    and buffer, and the key where it is."""
    with parity_config():
        return _compare_steps(case, dtype, steps, optimizer, lr, optimizer_kwargs)


def _compare_steps(case, dtype, steps, optimizer, lr, kwargs):
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from ..interop import to_torch_state_dict
    prep = prepare(case, dtype)
    tmod, fmod = prep.torch_module, prep.flax_module
    t_in, f_in = prep.torch_inputs(), prep.flax_inputs()
    f_cots, t_cots = prep.output_cotangents()  # from the output shapes; nothing is run
    topt, tx = _optimizers(optimizer, lr, tmod.parameters(), kwargs)
    graphdef, params, rest = nnx.split(fmod, nnx.Param, ...)
    opt_state = tx.init(params)

    @jax.jit
    def fstep(params, rest, opt_state):
        model = nnx.merge(graphdef, params, rest)

        def loss_fn(m):
            outs = flatten_outputs(prep.call_flax(m, *f_in))
            return sum(jnp.sum(o * c) for o, c in zip(outs, f_cots) if c is not None)

        grads = nnx.grad(loss_fn)(model)
        _, _, rest = nnx.split(model, nnx.Param, ...)  # running statistics, updated
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), rest, opt_state

    errors, worst = [], []
    for _ in range(steps):
        topt.zero_grad(set_to_none=True)
        outs = flatten_outputs(prep.call_torch(tmod, *t_in))
        sum((o * c).sum() for o, c in zip(outs, t_cots) if c is not None).backward()
        topt.step()
        params, rest, opt_state = fstep(params, rest, opt_state)
        got = to_torch_state_dict(nnx.merge(graphdef, params, rest))
        e, key = 0.0, ""
        for k, v in tmod.state_dict().items():
            err = relative_error(got[k], tensor_to_numpy(v))
            if err > e:
                e, key = err, k
        errors.append(e)
        worst.append(key if e > tolerance(dtype) else "")
    return errors, worst

