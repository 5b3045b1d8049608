"""Slides "Auto-Encoder Neural Network" and "Variational Auto-Encoder".

``AE`` is the slide's class verbatim. ``VAE`` is the slide's copy of the PyTorch examples'
MNIST VAE (``pytorch/examples`` ``vae/main.py``) with one change, for reproducibility:

Change: ``reparameterize(mu, logvar, eps=None)`` and ``forward(x, eps=None)`` take an
optional explicit standard-normal noise ``eps`` (same shape as ``mu``). With ``eps=None``
(the default) they draw ``torch.randn_like(std)`` exactly as the slide does; a given ``eps``
makes the forward pass deterministic, which is how the Flax port is checked against this
reference (the two frameworks cannot share a random number generator).

Layout: (N, num_inputs) vectors — no channel axis, so torch and Flax agree.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class AE(nn.Module):
    """Fully connected auto-encoder: num_inputs → 400 → 400 → 20 → 400 → 400 → num_inputs.

    ``forward(x)``: (N, num_inputs) → (N, num_inputs) reconstruction (no output activation).
    Keys: ``encoder.{0,2,4}.*``, ``decoder.{0,2,4}.*``.
    """

    def __init__(self, num_inputs=784):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(num_inputs, 400),
            nn.ReLU(inplace=True),
            nn.Linear(400, 400),
            nn.ReLU(inplace=True),
            nn.Linear(400, 20)
        )
        self.decoder = nn.Sequential(
            nn.Linear(20, 400),
            nn.ReLU(inplace=True),
            nn.Linear(400, 400),
            nn.ReLU(inplace=True),
            nn.Linear(400, num_inputs)
        )

    def forward(self, x):
        return self.decoder(self.encoder(x))


class VAE(nn.Module):
    """MNIST VAE: 784 → 400 → (mu, logvar) ∈ R^20 × R^20; z = mu + eps·exp(logvar/2);
    z → 400 → 784 → sigmoid.

    ``forward(x, eps=None)``: x of any shape with 784·N elements (``x.view(-1, 784)``, e.g.
    (N, 784) or (N, 1, 28, 28)) → ``(recon (N, 784) in (0, 1), mu (N, 20), logvar (N, 20))``.
    """

    def __init__(self):
        super(VAE, self).__init__()

        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar, eps=None):
        std = torch.exp(0.5*logvar)
        if eps is None:  # the slide's behaviour; an explicit eps is this repo's addition
            eps = torch.randn_like(std)
        return mu + eps*std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x, eps=None):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar, eps)
        return self.decode(z), mu, logvar
