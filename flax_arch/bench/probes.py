"""The bench's own cases (``--probes``), beyond the parity registry.

The DCGAN discriminator at batch 32 in train mode: the slide's model from
:mod:`flax_arch.models.dcgan` when present, otherwise the same Conv2d / BatchNorm2d /
LeakyReLU stack built from :mod:`flax_arch.nn`.
"""

from __future__ import annotations

from ..parity.harness import Case

__all__ = ["probe_cases", "normal_inputs"]

_C = "channels"


def normal_inputs(*shape):
    """An ``inputs`` function: one standard-normal array of ``shape``."""
    return lambda rng: (rng.standard_normal(shape),)


def _dcgan_probe() -> Case:
    from ..models import dcgan as fd
    import torch_ref.dcgan as td
    fcls = getattr(fd, "DCGANDiscriminator")
    tcls = next(getattr(td, n) for n in ("DCGANDiscriminator", "Discriminator")
                if hasattr(td, n))
    return Case("probe_dcgan_disc_b32", lambda: tcls(), lambda r: fcls(rngs=r),
                normal_inputs(32, 3, 64, 64), [_C], [_C], train=True)


def _torch_stack(ndf: int = 64):
    import torch.nn as nn
    layers = [nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
    for i in range(3):
        layers += [nn.Conv2d(ndf << i, ndf << (i + 1), 4, 2, 1, bias=False),
                   nn.BatchNorm2d(ndf << (i + 1)), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers, nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())


def _flax_stack(rngs, ndf: int = 64):
    import jax
    from .. import nn as fnn
    layers = [fnn.Conv2d(3, ndf, 4, 2, 1, bias=False, rngs=rngs), fnn.LeakyReLU(0.2)]
    for i in range(3):
        layers += [fnn.Conv2d(ndf << i, ndf << (i + 1), 4, 2, 1, bias=False, rngs=rngs),
                   fnn.BatchNorm2d(ndf << (i + 1)), fnn.LeakyReLU(0.2)]
    return fnn.Sequential(*layers, fnn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False, rngs=rngs),
                          jax.nn.sigmoid)


def probe_cases() -> list[Case]:
    """The probes (see the module docstring)."""
    try:
        return [_dcgan_probe()]
    except (ImportError, AttributeError, StopIteration):
        pass
    return [Case("probe_conv2d_stack_b32", _torch_stack, _flax_stack,
                 normal_inputs(32, 3, 64, 64), [_C], [_C], train=True)]
