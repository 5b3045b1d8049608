"""Slides "DCGAN — Generator / Discriminator" (from PyTorch's ``examples/dcgan/main.py``).
Layout is torch's: z (N, nz, 1, 1) → image (N, nc, 64, 64) → D → (N, 1, 1, 1).

The slides' class names are ``Generator`` / ``Discriminator``; they are kept as aliases of
``DCGANGenerator`` / ``DCGANDiscriminator``. Change from the slides: ``nz = 100`` and
``ngf = ndf = 64`` are fixed locals there; here they are keyword arguments with those
defaults (so narrow models can be tested quickly). With the defaults the modules are the
slides' exactly. The second deck's ``super(Discriminator, self).__init__()`` is written
``super().__init__()`` so the alias works; it is the same call. The first deck splits
the Discriminator's code so that ``def forward`` appears unindented, outside the class (a
layout artefact): it is the method, as in the second deck.
"""

import torch.nn as nn


class DCGANGenerator(nn.Module):
    """The slide's ``Generator``: (1, 100, 1, 1) → (1, 3, 64, 64)."""

    def __init__(self, nc=3, *, nz=100, ngf=64):
        super().__init__()
        self.main = nn.Sequential(
            # input is Z, going into a convolution
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            # state size. (ngf*8) x 4 x 4
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            # state size. (ngf*4) x 8 x 8
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            # state size. (ngf*2) x 16 x 16
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            # state size. (ngf) x 32 x 32
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh()
            # state size. (nc) x 64 x 64
        )

    def forward(self, input):
        return self.main(input)


class DCGANDiscriminator(nn.Module):
    """The slide's ``Discriminator``: (1, 3, 64, 64) → (1, 1, 1, 1)."""

    def __init__(self, nc=3, *, ndf=64):
        super().__init__()
        self.main = nn.Sequential(
            # input is (nc) x 64 x 64
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf) x 32 x 32
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*2) x 16 x 16
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*4) x 8 x 8
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*8) x 4 x 4
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            nn.Sigmoid()
        )

    def forward(self, input):
        return self.main(input)


Generator = DCGANGenerator
Discriminator = DCGANDiscriminator
