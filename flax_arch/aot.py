"""The cheapest way to call a module many times: compiled once, its state as a flat list.

Calling a jitted function costs Python work besides the computation: ``nnx.jit`` walks the
module graph on every call, ``jax.jit`` looks up its trace cache and flattens the argument
pytrees (an ``nnx.State`` is a nested dict). For a module whose work takes microseconds
that is most of the time. Measured on the 2-core Xeon VM (``python
benchmarks/call_overhead.py``; docs/benchmarks.md, "Per-call overhead"), µs per call of
Linear(1, 1) on a batch of 4:

=======================  =====
``nnx.jit``              124
``nnx.cached_partial``    67
``jax.jit`` over state     7.5
AOT over state             7.8
AOT over flat leaves       4.9
torch eager                4.2
=======================  =====

:func:`compile_forward` is the last form: ``jax.jit(f).lower(...).compile()`` over
``jax.tree.leaves(state)``, so a call is one C++ dispatch with a list of arrays.

>>> import jax.numpy as jnp
>>> from flax import nnx
>>> from flax_arch.nn import Linear
>>> model = Linear(3, 2, rngs=nnx.Rngs(0))
>>> fast = compile_forward(model, jnp.ones((4, 3)))
>>> bool(jnp.allclose(fast(jnp.ones((4, 3))), model(jnp.ones((4, 3)))))
True
"""

from __future__ import annotations

from typing import Any

import jax
from flax import nnx

__all__ = ["CompiledForward", "compile_forward"]


class CompiledForward:
    """``model(*args)`` compiled for the example arguments' shapes and dtypes.

    The model's state (parameters, buffers) is read when this is built and again by
    :meth:`refresh`; the model itself is never mutated. Inference only: in training mode,
    state a call would update (BatchNorm running statistics, rng counters) is not written
    back. Arguments of another shape or dtype than the examples raise the compiled
    executable's TypeError (compile again for them).
    """

    def __init__(self, model: nnx.Module, *example_args: Any):
        self._model = model
        graphdef, state = nnx.split(model)
        self._treedef = jax.tree.structure(state)
        treedef = self._treedef

        def forward(leaves, *args):
            return nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves))(*args)
        self._leaves = jax.tree.leaves(state)
        self._compiled = jax.jit(forward).lower(self._leaves, *example_args).compile()

    def __call__(self, *args: Any) -> Any:
        return self._compiled(self._leaves, *args)

    def refresh(self) -> None:
        """Read the model's state again (after training steps or a weight load). Its
        structure must be unchanged."""
        state = nnx.state(self._model)
        if jax.tree.structure(state) != self._treedef:
            raise ValueError("CompiledForward.refresh: the model's state changed structure "
                             "since compiling; call compile_forward again")
        self._leaves = jax.tree.leaves(state)


def compile_forward(model: nnx.Module, *example_args: Any) -> CompiledForward:
    """Compile ``model(*example_args)`` ahead of time with the model's state as a flat list
    of arrays: the fastest way to call a module repeatedly for inference (module
    docstring). Returns a :class:`CompiledForward`."""
    return CompiledForward(model, *example_args)
