"""Forward-mode autodiff through every convolution form (``method``) against torch.

The reverse-mode parity of each form is fuzzed in ``test_layers.py``; here ``jax.jvp``
through the Flax layer, along random tangents of the input and of every parameter, is
compared with ``torch.func.jvp`` through the torch layer along the same tangents (float64,
1e-12 of the tangent's largest entry). The forms are built from slices, pads and matmuls
(:mod:`flax_arch.ops.conv`), so forward mode must keep working; this proves it does and
that the tangent is torch's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import flax_arch.nn as fnn
from flax_arch.interop import load_torch_state_dict
from flax_arch.ops.conv import PATCHES_MAX_ELEMENTS, prefer_patches

jax.config.update("jax_enable_x64", True)

# (torch class, flax class, args, kwargs, input spatial size, methods)
CONFIGS = [
    ("Conv1d", (4, 6, 5), dict(stride=3, padding=2, dilation=2, groups=2), (17,),
     ("conv", "patches")),
    ("Conv2d", (3, 4, (3, 2)), dict(stride=(2, 1), padding=(1, 0)), (7, 6),
     ("conv", "patches")),
    ("Conv2d", (4, 6, 3), dict(padding="same", groups=2, padding_mode="reflect"), (5, 5),
     ("conv", "patches")),
    ("ConvTranspose1d", (4, 6, 7), dict(stride=3, padding=2, output_padding=1, groups=2),
     (9,), ("matmul", "conv", "phases", "conv+phases")),
    ("ConvTranspose2d", (3, 4, (4, 3)), dict(stride=(2, 3), padding=(1, 2),
                                             output_padding=(1, 0)), (5, 4),
     ("matmul", "conv", "phases", "conv+phases")),
]
CASES = [(cls, args, kw, size, m) for cls, args, kw, size, methods in CONFIGS
         for m in methods]


def _torch_channels_first(a):
    return torch.from_numpy(np.moveaxis(np.asarray(a), -1, 1).copy())


# torch's forward AD scripts its decompositions on first use, and torch.jit.script warns
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("cls,args,kw,size,method", CASES,
                         ids=[f"{c[0]}-{i}-{c[4]}" for i, c in enumerate(CASES)])
def test_jvp_matches_torch(cls, args, kw, size, method):
    torch.manual_seed(0)
    tmod = getattr(torch.nn, cls)(*args, **kw).double()
    fmod = getattr(fnn, cls)(*args, **kw, method=method, param_dtype=jnp.float64,
                             rngs=nnx.Rngs(0))
    load_torch_state_dict(fmod, tmod.state_dict())
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, *size, args[0]))   # channels-last (N, *S, C_in)
    vx = rng.standard_normal(x.shape)
    names = [n for n, _ in tmod.named_parameters()]
    vp = {n: rng.standard_normal(tuple(p.shape)) for n, p in tmod.named_parameters()}

    # torch: tangents of the input and of every parameter, NC* layout
    params = {n: p.detach() for n, p in tmod.named_parameters()}

    def tfn(x, *ps):
        return torch.func.functional_call(tmod, dict(zip(names, ps)), (x,))
    _, t_tan = torch.func.jvp(
        tfn, (_torch_channels_first(x), *(params[n] for n in names)),
        (_torch_channels_first(vx), *(torch.from_numpy(vp[n]) for n in names)))
    want = np.moveaxis(t_tan.numpy(), 1, -1)

    # flax: the same tangents, the kernel's in Flax's layout (the converter's rule)
    graphdef, fparams, rest = nnx.split(fmod, nnx.Param, ...)
    tangent_model = getattr(fnn, cls)(*args, **kw, method=method, param_dtype=jnp.float64,
                                      rngs=nnx.Rngs(0))
    load_torch_state_dict(tangent_model, {n: torch.from_numpy(v) for n, v in vp.items()})
    fvp = nnx.state(tangent_model, nnx.Param)

    def ffn(params, x):
        return nnx.merge(graphdef, params, rest)(x)
    _, f_tan = jax.jit(lambda p, x, tp, tx: jax.jvp(ffn, (p, x), (tp, tx)))(
        fparams, jnp.asarray(x), fvp, jnp.asarray(vx))
    np.testing.assert_allclose(np.asarray(f_tan), want, rtol=0,
                               atol=1e-12 * np.abs(want).max())


def test_prefer_patches_rule():
    """The documented crossover: few input channels, or a patch matrix above the limit,
    keep ``lax.conv_general_dilated``."""
    assert prefer_patches(13 * 13, 9, 192)              # AlexNet's 3×3 layers
    assert not prefer_patches(100 * 100, 9, 64)         # the ResLayer's 100×100 3×3
    assert not prefer_patches(55 * 55, 121, 3)          # AlexNet's RGB input layer
    assert prefer_patches(PATCHES_MAX_ELEMENTS // 16, 1, 16)
    assert not prefer_patches(PATCHES_MAX_ELEMENTS // 16 + 1, 1, 16)


def test_auto_resolution():
    """What ``method='auto'`` stands for (module docstring of flax_arch.nn.conv): on CPU,
    'patches' for strided or 1-D convolutions with enough channels and a small patch
    matrix, 'phases' for strided undilated transposed convolutions, 'matmul' for the other
    transposed ones; 'conv' for everything on GPU/TPU."""
    cpu = jax.default_backend() == "cpu"
    R = nnx.Rngs(0)
    assert fnn.Conv1d(64, 128, 31, stride=4, rngs=R).resolve_method((2077,)) == (
        "patches" if cpu else "conv")
    assert fnn.Conv1d(1, 64, 31, stride=4, rngs=R).resolve_method((8221,)) == "conv"
    assert fnn.Conv2d(128, 256, 4, 2, 1, rngs=R).resolve_method((16, 16)) == (
        "patches" if cpu else "conv")
    assert fnn.Conv2d(192, 384, 3, padding=1, rngs=R).resolve_method((13, 13)) == "conv"
    assert fnn.Conv2d(4, 4, 3, method="patches", rngs=R).resolve_method((5, 5)) == "patches"
    assert fnn.ConvTranspose2d(8, 4, 4, 2, 1, rngs=R).resolve_method() == (
        "phases" if cpu else "conv")
    assert fnn.ConvTranspose2d(8, 4, 4, 1, 0, rngs=R).resolve_method() == (
        "matmul" if cpu else "conv")
    assert fnn.ConvTranspose1d(8, 4, 4, 2, 1, dilation=2, rngs=R).resolve_method() == (
        "matmul" if cpu else "conv")
