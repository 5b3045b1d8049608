"""Slides "Auto-Encoder Neural Network" and "Variational Auto-Encoder" (the slide's VAE is
the PyTorch examples' MNIST VAE, after Kingma & Welling, "Auto-Encoding Variational Bayes",
ICLR 2014).

Inputs are flat vectors (N, num_inputs): there is no channel axis, so the layout is the
slides' own. Attribute names are the slides' (``encoder``/``decoder`` Sequentials;
``fc1``, ``fc21``, ``fc22``, ``fc3``, ``fc4``), so torch state_dicts load unchanged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ..nn import Linear, Sequential
from ..nn._utils import check_floating_input, check_input
from ._checks import check_sizes

__all__ = ["AE", "VAE"]


class AE(nnx.Module):
    """Fully connected auto-encoder (slide "Auto-Encoder Neural Network"):
    num_inputs → 400 → 400 → 20 (code) → 400 → 400 → num_inputs, ReLU between layers and no
    output activation.

    ``__call__(x)``: x (N, num_inputs) → reconstruction (N, num_inputs).
    ``encoder(x)`` alone gives the (N, 20) code, ``decoder(z)`` maps it back.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> AE(784, rngs=nnx.Rngs(0))(jnp.ones((10, 784))).shape
    (10, 784)
    """

    def __init__(self, num_inputs: int = 784, *, rngs: nnx.Rngs):
        check_sizes("AE", num_inputs=num_inputs)
        self.num_inputs = num_inputs
        self.encoder = Sequential(
            Linear(num_inputs, 400, rngs=rngs), jax.nn.relu,
            Linear(400, 400, rngs=rngs), jax.nn.relu,
            Linear(400, 20, rngs=rngs))
        self.decoder = Sequential(
            Linear(20, 400, rngs=rngs), jax.nn.relu,
            Linear(400, 400, rngs=rngs), jax.nn.relu,
            Linear(400, num_inputs, rngs=rngs))

    def __call__(self, x):
        """x (*, num_inputs) → (*, num_inputs), usually (N, num_inputs): Linear layers
        only, so any leading axes are batch axes, as in torch."""
        check_input(x, name="x", layer="AE", ranks=None, layout="(*, num_inputs)",
                    floating=True, channels=self.num_inputs)
        return self.decoder(self.encoder(x))


class VAE(nnx.Module):
    """Variational auto-encoder of the slide (MNIST sizes, fixed as there): encoder
    784 → 400 → (mu, logvar), each (N, 20); ``z = mu + eps · exp(logvar / 2)`` with
    eps ~ N(0, I) (the reparameterisation trick); decoder 20 → 400 → 784 → sigmoid.

    ``__call__(x, eps=None)`` → ``(recon, mu, logvar)``: x of any shape holding N·784 values,
    flattened row-major to (N, 784) like the slide's ``x.view(-1, 784)`` — e.g. (N, 784), or
    an MNIST batch (N, 28, 28, 1) (with one channel, channels-last flattens in the same order
    as torch's (N, 1, 28, 28)); recon (N, 784) in (0, 1); mu, logvar (N, 20).

    Noise: with ``eps=None`` eps is drawn from the module's own random stream, forked at
    construction from ``rngs``' ``'noise'`` stream (its ``'default'`` one when there is no
    ``'noise'``; seed it apart with ``nnx.Rngs(0, noise=1)``). Every call advances the
    stream, so repeated calls sample anew, reproducibly from the seed; ``rngs=`` at call
    time (an ``nnx.Rngs``, ``RngStream`` or key) overrides it for that call. An explicit
    ``eps`` (N, 20) makes the call deterministic. As on the slide, sampling happens in train
    and eval mode alike.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> recon, mu, logvar = VAE(rngs=nnx.Rngs(0))(jnp.ones((10, 784)))
    >>> recon.shape, mu.shape, logvar.shape
    ((10, 784), (10, 20), (10, 20))
    """

    def __init__(self, *, rngs: nnx.Rngs):
        self.fc1 = Linear(784, 400, rngs=rngs)
        self.fc21 = Linear(400, 20, rngs=rngs)
        self.fc22 = Linear(400, 20, rngs=rngs)
        self.fc3 = Linear(20, 400, rngs=rngs)
        self.fc4 = Linear(400, 784, rngs=rngs)
        self.rngs = rngs["noise"].fork()  # an RngStream of its own, like nnx.Dropout's

    def encode(self, x):
        """x (N, 784) → (mu, logvar), each (N, 20)."""
        h1 = jax.nn.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar, eps=None, *, rngs=None):
        """mu, logvar (N, 20) → z = mu + eps · exp(logvar / 2), (N, 20).

        ``eps`` (same shape as ``mu``) defaults to a fresh standard-normal draw from
        ``rngs`` if given, else from the module's stream.
        """
        std = jnp.exp(0.5 * logvar)
        if eps is None:
            if rngs is None:
                key = self.rngs()
            elif isinstance(rngs, nnx.Rngs):
                key = rngs["noise"]()
            elif isinstance(rngs, nnx.RngStream):
                key = rngs()
            else:
                key = rngs
            eps = jax.random.normal(key, std.shape, std.dtype)
        elif tuple(jnp.shape(eps)) != tuple(std.shape):
            raise ValueError(f"VAE: eps must have the shape of mu, (N, 20) = {tuple(std.shape)}, "
                             f"got {tuple(jnp.shape(eps))}")
        return mu + eps * std

    def decode(self, z):
        """z (N, 20) → reconstruction (N, 784) in (0, 1)."""
        h3 = jax.nn.relu(self.fc3(z))
        return jax.nn.sigmoid(self.fc4(h3))

    def __call__(self, x, eps=None, *, rngs=None):
        """x (..., holding N·784 values) → (recon (N, 784), mu (N, 20), logvar (N, 20))."""
        size = getattr(x, "size", None)
        if size is None or getattr(x, "ndim", 0) < 1 or size % 784 or size == 0:
            raise ValueError(f"VAE: x must hold N·784 values, e.g. (N, 784) or (N, 28, 28, 1), "
                             f"got shape {tuple(getattr(x, 'shape', ()))}")
        check_floating_input(x, name="x", layer="VAE")
        mu, logvar = self.encode(x.reshape(-1, 784))  # (N, 784), as x.view(-1, 784)
        z = self.reparameterize(mu, logvar, eps, rngs=rngs)
        return self.decode(z), mu, logvar
