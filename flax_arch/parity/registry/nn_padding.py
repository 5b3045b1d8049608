"""Cases for the 3-D convolutions of :mod:`flax_arch.nn.conv` and the padding layers of
:mod:`flax_arch.nn.padding`: small composites of torch's layers (every padding mode,
negative padding that crops, Conv3d with a padding mode and groups, ConvTranspose3d with
output_padding) against their channels-last twins, in torch's layout on the way in and
out."""

from __future__ import annotations

import flax_arch.nn.conv as K
import flax_arch.nn.padding as P
from flax_arch.nn.containers import Sequential
from flax_arch.parity.harness import Case
from flax_arch.parity.registry import lazy_module

torch = lazy_module("torch")

C = "channels"


def _normal(*shape):
    return lambda rng: (rng.standard_normal(shape),)


def _torch_volume():
    nn = torch.nn
    return nn.Sequential(
        nn.ReflectionPad3d((1, 1, 1, 0, 0, 1)),
        nn.Conv3d(2, 4, 3, padding=(1, 0, 1), padding_mode="circular", groups=2),
        nn.ReplicationPad3d((0, 1, -1, 1, 1, 0)),
        nn.ConvTranspose3d(4, 3, (2, 3, 2), stride=(2, 1, 2), padding=(0, 1, 1),
                           output_padding=(1, 0, 0)),
        nn.ConstantPad3d((-1, 0, 1, 1, 0, -1), 0.25),
        nn.CircularPad3d((1, 0, 0, 1, 1, 1)),
        nn.Conv3d(3, 2, (1, 2, 2), stride=2, dilation=(1, 2, 1)),
    )


def _flax_volume(rngs):
    return Sequential(
        P.ReflectionPad3d((1, 1, 1, 0, 0, 1)),
        K.Conv3d(2, 4, 3, padding=(1, 0, 1), padding_mode="circular", groups=2, rngs=rngs),
        P.ReplicationPad3d((0, 1, -1, 1, 1, 0)),
        K.ConvTranspose3d(4, 3, (2, 3, 2), stride=(2, 1, 2), padding=(0, 1, 1),
                          output_padding=(1, 0, 0), rngs=rngs),
        P.ConstantPad3d((-1, 0, 1, 1, 0, -1), 0.25),
        P.CircularPad3d((1, 0, 0, 1, 1, 1)),
        K.Conv3d(3, 2, (1, 2, 2), stride=2, dilation=(1, 2, 1), rngs=rngs),
    )


def _torch_planes():
    nn = torch.nn
    return nn.Sequential(nn.ZeroPad2d((2, -1, 0, 1)), nn.ReflectionPad2d(2),
                         nn.Conv2d(3, 4, 3, stride=(1, 2)), nn.CircularPad2d((2, 1, 0, 1)),
                         nn.ReplicationPad2d((1, 0, 2, 1)))


def _flax_planes(rngs):
    return Sequential(P.ZeroPad2d((2, -1, 0, 1)), P.ReflectionPad2d(2),
                      K.Conv2d(3, 4, 3, stride=(1, 2), rngs=rngs),
                      P.CircularPad2d((2, 1, 0, 1)), P.ReplicationPad2d((1, 0, 2, 1)))


def _torch_signal():
    nn = torch.nn
    return nn.Sequential(nn.ReplicationPad1d((3, -1)), nn.ConstantPad1d((1, 2), -0.5),
                         nn.Conv1d(2, 3, 3), nn.CircularPad1d((2, 2)),
                         nn.ReflectionPad1d((-1, 2)), nn.ZeroPad1d(1))


def _flax_signal(rngs):
    return Sequential(P.ReplicationPad1d((3, -1)), P.ConstantPad1d((1, 2), -0.5),
                      K.Conv1d(2, 3, 3, rngs=rngs), P.CircularPad1d((2, 2)),
                      P.ReflectionPad1d((-1, 2)), P.ZeroPad1d(1))


CASES = [
    Case("nn_pad_conv3d_stack", _torch_volume, _flax_volume, _normal(2, 2, 3, 4, 5), [C], [C],
         well_posed=True),
    Case("nn_pad_2d_stack", _torch_planes, _flax_planes, _normal(2, 3, 5, 6), [C], [C],
         well_posed=True),
    Case("nn_pad_1d_stack", _torch_signal, _flax_signal, _normal(2, 2, 7), [C], [C],
         well_posed=True),
]
