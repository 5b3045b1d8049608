"""Training: jitted optax steps that mirror torch's loops, generated datasets,
atomic orbax checkpoints, and the ``flax-arch train`` command.

Only :mod:`.steps` is imported eagerly (jax, flax, optax); :mod:`.checkpoint` imports
orbax-checkpoint when it reads or writes, legacy checkpoints need the optional
``safetensors`` and the image grids ``pillow`` (``pip install 'flax-arch[train]'``).
"""

from .steps import (SUPERVISED_LOSSES, AETrainer, GANTrainer, SupervisedTrainer, Trainer,
                    TrainState, VAETrainer, bce, kl_divergence, make_gan_step,
                    make_supervised_step, make_vae_step, mse_loss, nll_loss, vae_loss)

__all__ = ["AETrainer", "GANTrainer", "SUPERVISED_LOSSES", "SupervisedTrainer", "TrainState",
           "Trainer", "VAETrainer", "bce", "kl_divergence", "make_gan_step",
           "make_supervised_step", "make_vae_step", "mse_loss", "nll_loss", "vae_loss"]
