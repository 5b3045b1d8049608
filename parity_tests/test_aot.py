"""flax_arch.compile_forward: a module compiled over its state's flat leaves gives torch's
numbers, follows weight loads after ``refresh``, and refuses a changed state structure."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import flax_arch
import flax_arch.nn as fnn
from flax_arch.interop import load_torch_state_dict


def test_compile_forward_matches_torch_and_refreshes():
    torch.manual_seed(0)
    tmod = torch.nn.Sequential(torch.nn.Conv1d(3, 4, 3, stride=2), torch.nn.Tanh())
    fmod = fnn.Sequential(fnn.Conv1d(3, 4, 3, stride=2, rngs=nnx.Rngs(0)), jnp.tanh)
    load_torch_state_dict(fmod, tmod.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 9, 3)).astype(np.float32)  # (N, L, C)
    fast = flax_arch.compile_forward(fmod, jnp.asarray(x))
    want = tmod(torch.from_numpy(x.transpose(0, 2, 1).copy())).detach().numpy()
    np.testing.assert_allclose(np.asarray(fast(jnp.asarray(x))), want.transpose(0, 2, 1),
                               rtol=1e-5, atol=1e-6)
    # new weights reach the compiled call only through refresh()
    with torch.no_grad():
        tmod[0].weight.mul_(-2.0)
    load_torch_state_dict(fmod, tmod.state_dict())
    stale = np.asarray(fast(jnp.asarray(x)))
    fast.refresh()
    want = tmod(torch.from_numpy(x.transpose(0, 2, 1).copy())).detach().numpy()
    np.testing.assert_allclose(np.asarray(fast(jnp.asarray(x))), want.transpose(0, 2, 1),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(stale, np.asarray(fast(jnp.asarray(x))))


def test_refresh_refuses_a_changed_structure():
    model = fnn.Linear(2, 2, rngs=nnx.Rngs(0))
    fast = flax_arch.compile_forward(model, jnp.ones((1, 2)))
    model.extra = nnx.Param(jnp.zeros(3))
    with pytest.raises(ValueError, match="state changed structure"):
        fast.refresh()
