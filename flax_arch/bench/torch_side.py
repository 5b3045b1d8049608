"""The torch side: the ``torch_ref`` module eagerly and under ``torch.compile``.

Each timing starts from a fresh module holding the weights the case was set up with
(so a train step timed earlier does not change what a later timing starts from). Forward
runs under ``torch.no_grad``; the train step is forward, backward of ``Σ <out_i, g_i>``
and ``torch.optim.SGD``. ``torch.compile`` starts from fresh dynamo caches and its first
call is reported as ``compile_s``. Each ``time_*`` returns ``(timing, {})`` (no row
fields), the same shape as the Flax side's.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ..parity.harness import flatten_outputs
from .prepared import BenchCase, loss_of
from .timing import Sampling

__all__ = ["time_eager_forward", "time_eager_train_step", "time_compiled_forward",
           "time_compiled_train_step", "reset_compiler"]


def _sync(b: BenchCase) -> Callable[[Any], Any]:
    import torch
    if b.prep.device.type == "cuda":
        return lambda out: torch.cuda.synchronize()
    return lambda out: out


def fresh_module(b: BenchCase):
    """A new reference module with the set-up weights, on the device, in the case's mode."""
    import torch
    m = b.case.torch_module().to(device=b.prep.device, dtype=getattr(torch, b.prep.dtype))
    m.load_state_dict(b.state_dict)
    return m.train(b.case.train)


def _forward_call(b: BenchCase, fn: Callable) -> Callable[[], Any]:
    import torch
    xs = b.prep.torch_inputs()

    def call():
        with torch.no_grad():
            return fn(*xs)
    return call


def _train_call(b: BenchCase, m, loss_fn: Callable, lr: float) -> Callable[[], Any]:
    import torch
    xs = b.prep.torch_inputs()
    opt = torch.optim.SGD(m.parameters(), lr=lr)

    def call():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(*xs)
        loss.backward()
        opt.step()
        return loss
    return call


def _loss_fn(b: BenchCase, m) -> Callable:
    return lambda *xs: loss_of(flatten_outputs(b.prep.call_torch(m, *xs)), b.torch_cots)


def time_eager_forward(b: BenchCase, sampling: Sampling):
    m = fresh_module(b)
    return sampling.measure(_forward_call(b, lambda *x: b.prep.call_torch(m, *x)),
                            _sync(b)), {}


def time_eager_train_step(b: BenchCase, sampling: Sampling, lr: float):
    m = fresh_module(b)
    return sampling.measure(_train_call(b, m, _loss_fn(b, m), lr), _sync(b)), {}


def _time_compiled(b: BenchCase, call: Callable[[], Any], sampling: Sampling) -> dict:
    """The first call (tracing + inductor compile) timed alone, then the measurement."""
    sync = _sync(b)
    t0 = time.perf_counter()
    sync(call())
    first = time.perf_counter() - t0
    return dict(sampling.measure(call, sync), compile_s=first)


def time_compiled_forward(b: BenchCase, sampling: Sampling):
    import torch
    reset_compiler()  # fresh caches: no recompile limit, an honest first-call time
    m = fresh_module(b)
    fn = torch.compile(lambda *x: b.prep.call_torch(m, *x))
    return _time_compiled(b, _forward_call(b, fn), sampling), {}


def time_compiled_train_step(b: BenchCase, sampling: Sampling, lr: float):
    import torch
    reset_compiler()
    m = fresh_module(b)
    return _time_compiled(b, _train_call(b, m, torch.compile(_loss_fn(b, m)), lr),
                          sampling), {}


def reset_compiler() -> None:
    """Drop ``torch.compile``'s caches (between cases, so none reaches a recompile limit)."""
    import torch
    torch._dynamo.reset()
