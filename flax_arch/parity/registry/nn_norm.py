"""Cases for the normalisation twins (:mod:`flax_arch.nn.norm`): torch ``nn.Sequential``
stacks of normalisation layers between linear / convolution layers, against the matching
:class:`flax_arch.nn.Sequential`, in training mode (batch statistics, running statistics
updated and compared) and in eval mode (the running statistics used).
"""

from __future__ import annotations

import jax.numpy as jnp

from flax_arch.nn import Conv1d, Linear, Sequential
from flax_arch.nn import norm
from flax_arch.parity.harness import Case
from flax_arch.parity.registry import lazy_module

torch = lazy_module("torch")

C = "channels"


def _normal(*shape):
    return lambda rng: (rng.standard_normal(shape),)


# Tanh between GroupNorm and InstanceNorm: a per-channel normalisation right after a
# per-channel affine one would cancel the first convolution's bias exactly, leaving its
# gradient pure rounding noise.
def _conv_torch():
    nn = torch.nn
    return nn.Sequential(
        nn.Conv1d(3, 8, 3, padding=1), nn.GroupNorm(4, 8), nn.Tanh(),
        nn.InstanceNorm1d(8, affine=True, track_running_stats=True), nn.Tanh(),
        nn.Conv1d(8, 6, 3), nn.BatchNorm1d(6, bias=False), nn.LocalResponseNorm(3, 0.5, 0.75, 1.5))


def _conv_flax(r):
    return Sequential(
        Conv1d(3, 8, 3, padding=1, rngs=r), norm.GroupNorm(4, 8), jnp.tanh,
        norm.InstanceNorm1d(8, affine=True, track_running_stats=True), jnp.tanh,
        Conv1d(8, 6, 3, rngs=r), norm.BatchNorm1d(6, bias=False),
        norm.LocalResponseNorm(3, 0.5, 0.75, 1.5))


# a Tanh between the two running-statistics layers: after a normalisation the next one's
# running mean would be 0 in exact arithmetic, rounding noise that no tolerance compares.
# No LocalResponseNorm on 5-D inputs: torch's CPU kernel (avg_pool3d) has no float16 or
# bfloat16 implementation.
def _volume_torch():
    nn = torch.nn
    return nn.Sequential(nn.InstanceNorm3d(2, track_running_stats=True), nn.Tanh(),
                         nn.BatchNorm3d(2, momentum=None), nn.GroupNorm(1, 2, bias=False))


def _volume_flax(r):
    return Sequential(norm.InstanceNorm3d(2, track_running_stats=True), jnp.tanh,
                      norm.BatchNorm3d(2, momentum=None), norm.GroupNorm(1, 2, bias=False))


def _tokens_torch():
    nn = torch.nn
    return nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.Linear(8, 8), nn.RMSNorm(8),
                         nn.Linear(8, 4), nn.LayerNorm([5, 4], 1e-3, bias=False),
                         nn.RMSNorm([4], eps=1e-3))


def _tokens_flax(r):
    return Sequential(Linear(6, 8, rngs=r), norm.LayerNorm(8), Linear(8, 8, rngs=r),
                      norm.RMSNorm(8), Linear(8, 4, rngs=r),
                      norm.LayerNorm([5, 4], 1e-3, bias=False), norm.RMSNorm([4], eps=1e-3))


CASES = [
    Case("norm_conv1d_train", _conv_torch, _conv_flax, _normal(4, 3, 12), [C], [C],
         train=True, well_posed=True),
    Case("norm_conv1d_eval", _conv_torch, _conv_flax, _normal(4, 3, 12), [C], [C],
         well_posed=True),
    Case("norm_volume_train", _volume_torch, _volume_flax, _normal(2, 2, 3, 4, 3), [C], [C],
         train=True, well_posed=True),
    Case("norm_layer_rms", _tokens_torch, _tokens_flax, _normal(3, 5, 6), well_posed=True),
]
