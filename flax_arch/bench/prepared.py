"""A case set up for timing: the harness's :func:`~flax_arch.parity.harness.prepare` in
float32, plus what both timed sides share — a copy of the reference's initial weights,
the fixed random cotangents of the train step (in each side's layout) and the loss.

Nothing here seeds, builds or loads on its own: that is ``prepare``'s job, shared with the
parity harness, so the bench times exactly the modules the parity suite proves equal.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ..parity.harness import (Case, Prepared, flatten_outputs, layout_of, prepare,
                              to_flax_layout, to_torch_layout)

__all__ = ["BenchCase", "prepare_bench", "loss_of", "flax_output_shapes", "torch_shape"]

#: the bench times float32 (jax's default; x64 is never enabled here)
DTYPE = "float32"


@dataclasses.dataclass
class BenchCase:
    """``prep``: the harness's set-up; ``state_dict``: a deep copy of the reference's
    weights and buffers taken before anything ran (a fresh torch module per timing starts
    from it); ``flax_cots`` / ``torch_cots``: one cotangent per output (``None`` for a
    non-float output), in the Flax layout (jax arrays) and torch's (tensors on device)."""

    prep: Prepared
    state_dict: dict
    flax_cots: list
    torch_cots: list

    @property
    def case(self) -> Case:
        return self.prep.case

    @property
    def n_params(self) -> int:
        return int(sum(p.numel() for p in self.prep.torch_module.parameters()))


def flax_output_shapes(prep: Prepared) -> list[jax.ShapeDtypeStruct]:
    """Shapes and dtypes of the Flax call's flattened outputs (``jax.eval_shape``; the
    module is split and merged inside so train-mode state updates stay traced)."""
    graphdef, state = nnx.split(prep.flax_module)

    def outputs(state, *xs):
        return flatten_outputs(prep.call_flax(nnx.merge(graphdef, state), *xs))
    return flatten_outputs(jax.eval_shape(outputs, state, *prep.flax_inputs()))


def torch_shape(shape: tuple[int, ...], layout: str | None) -> tuple[int, ...]:
    """A Flax-layout shape in torch's layout (the layout helper on a zero-stride view)."""
    return tuple(to_torch_layout(np.broadcast_to(np.float32(0), shape), layout).shape)


def _cotangents(prep: Prepared) -> tuple[list, list]:
    import torch
    layouts = prep.case.out_layouts
    shapes = [torch_shape(s.shape, layout_of(layouts, i))
              if jnp.issubdtype(s.dtype, jnp.floating) else None
              for i, s in enumerate(flax_output_shapes(prep))]
    cots = prep.cotangents(shapes)  # torch layout, from the case seed
    flax_cots = [None if c is None else jnp.asarray(to_flax_layout(c, layout_of(layouts, i)))
                 for i, c in enumerate(cots)]
    torch_cots = [None if c is None else torch.as_tensor(c, device=prep.device) for c in cots]
    return flax_cots, torch_cots


def prepare_bench(case: Case) -> BenchCase:
    """Set ``case`` up for timing (float32, on the harness's torch device)."""
    prep = prepare(case, DTYPE)
    state_dict = copy.deepcopy(prep.torch_module.state_dict())
    return BenchCase(prep, state_dict, *_cotangents(prep))


def loss_of(outs: list, cots: list) -> Any:
    """``Σ_i <out_i, g_i>`` over the outputs with a cotangent (jax or torch arrays)."""
    terms = [(o * c).sum() for o, c in zip(outs, cots) if c is not None]
    if not terms:
        raise ValueError("no floating-point output to differentiate")
    return sum(terms[1:], terms[0])
