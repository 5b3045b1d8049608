"""Slides "DCGAN — Generator / Discriminator" (Radford, Metz, Chintala, "Unsupervised
Representation Learning with Deep Convolutional Generative Adversarial Networks", 2016;
the slides' code is PyTorch's official ``examples/dcgan``).

Channels-last: torch's (N, C, H, W) is (N, H, W, C) here, so the latent z of torch shape
(N, nz, 1, 1) is (N, 1, 1, nz). ``main`` is a :class:`~flax_arch.nn.Sequential` whose
indices are torch's (``main.0.weight``, ``main.1.running_mean``, …). BatchNorm follows the
module mode: ``model.train()`` (the default, as in torch) uses batch statistics and
updates the running ones; ``model.eval()`` uses the running statistics.

The slides fix ``nz = 100``, ``ngf = ndf = 64`` inside ``__init__``; they are keyword
arguments here (with those defaults) so that narrow versions can be tested quickly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ..nn import BatchNorm2d, Conv2d, ConvTranspose2d, LeakyReLU, Sequential
from ..nn._utils import check_input
from ._checks import check_sizes

__all__ = ["DCGANDiscriminator", "DCGANGenerator"]


class DCGANGenerator(nnx.Module):
    """DCGAN generator (slide "DCGAN — Generator"): z (N, 1, 1, nz) → image (N, 64, 64, nc)
    in [−1, 1], channels-last.

    Four BatchNorm+ReLU transposed-convolution stages (1 → 4 → 8 → 16 → 32) and a final
    transposed convolution to ``nc`` channels (→ 64) with tanh; no biases. A larger z map
    (N, h, w, nz) gives (N, 16·(h + 3), 16·(w + 3), nc), as in torch.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> DCGANGenerator(rngs=nnx.Rngs(0))(jnp.ones((1, 1, 1, 100))).shape
    (1, 64, 64, 3)
    """

    def __init__(self, nc: int = 3, *, nz: int = 100, ngf: int = 64, rngs: nnx.Rngs):
        check_sizes("DCGANGenerator", nc=nc, nz=nz, ngf=ngf)
        self.nc, self.nz, self.ngf = nc, nz, ngf
        relu = jax.nn.relu
        self.main = Sequential(
            # input is Z (N, 1, 1, nz), going into a convolution
            ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False, rngs=rngs),
            BatchNorm2d(ngf * 8), relu,
            # state size (N, 4, 4, ngf*8)
            ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False, rngs=rngs),
            BatchNorm2d(ngf * 4), relu,
            # state size (N, 8, 8, ngf*4)
            ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False, rngs=rngs),
            BatchNorm2d(ngf * 2), relu,
            # state size (N, 16, 16, ngf*2)
            ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False, rngs=rngs),
            BatchNorm2d(ngf), relu,
            # state size (N, 32, 32, ngf)
            ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False, rngs=rngs),
            jnp.tanh,
            # state size (N, 64, 64, nc)
        )

    def __call__(self, z):
        """z (N, 1, 1, nz) channels-last (torch's (N, nz, 1, 1)) → (N, 64, 64, nc)."""
        check_input(z, name="z", layer="DCGANGenerator", ranks=(4,), layout="(N, 1, 1, nz)",
                    floating=True, channels=self.nz)
        return self.main(z)


class DCGANDiscriminator(nnx.Module):
    """DCGAN discriminator (slide "DCGAN — Discriminator"): image (N, 64, 64, nc) →
    probability of "real" (N, 1, 1, 1), channels-last.

    Four stride-2 convolutions (64 → 32 → 16 → 8 → 4) with LeakyReLU(0.2), BatchNorm on
    all but the first, then a 4×4 valid convolution to one channel and a sigmoid; no
    biases. Other input sizes give (N, h, w, 1) maps, as in torch (h = ⌊H/16⌋ − 3 for H a
    multiple of 16).

    >>> from flax import nnx; import jax.numpy as jnp
    >>> DCGANDiscriminator(rngs=nnx.Rngs(0))(jnp.ones((2, 64, 64, 3))).shape
    (2, 1, 1, 1)
    """

    def __init__(self, nc: int = 3, *, ndf: int = 64, rngs: nnx.Rngs):
        check_sizes("DCGANDiscriminator", nc=nc, ndf=ndf)
        self.nc, self.ndf = nc, ndf
        self.main = Sequential(
            # input is (N, 64, 64, nc)
            Conv2d(nc, ndf, 4, 2, 1, bias=False, rngs=rngs), LeakyReLU(0.2),
            # state size (N, 32, 32, ndf)
            Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False, rngs=rngs),
            BatchNorm2d(ndf * 2), LeakyReLU(0.2),
            # state size (N, 16, 16, ndf*2)
            Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False, rngs=rngs),
            BatchNorm2d(ndf * 4), LeakyReLU(0.2),
            # state size (N, 8, 8, ndf*4)
            Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False, rngs=rngs),
            BatchNorm2d(ndf * 8), LeakyReLU(0.2),
            # state size (N, 4, 4, ndf*8)
            Conv2d(ndf * 8, 1, 4, 1, 0, bias=False, rngs=rngs),
            jax.nn.sigmoid,
            # state size (N, 1, 1, 1)
        )

    def __call__(self, x):
        """x (N, 64, 64, nc) channels-last (torch's (N, nc, 64, 64)) → (N, 1, 1, 1)."""
        check_input(x, name="x", layer="DCGANDiscriminator", ranks=(4,),
                    floating=True, layout="(N, 64, 64, nc)", channels=self.nc)
        return self.main(x)
