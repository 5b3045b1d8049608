"""The reference training loops in plain torch (autograd + ``torch.optim``).

These are the loops :mod:`flax_arch.training.steps` is checked against:

* ``supervised_step``: ``loss(model(x), y).backward(); opt.step()`` (NLL for the
  log-softmax classifiers, MSE for regression / the auto-encoder);
* ``vae_step``: the pytorch/examples ``vae/main.py`` train loop (the "Variational
  Auto-Encoder" slide's source) with an explicit ``eps``;
* ``gan_step``: one iteration of the pytorch/examples ``dcgan/main.py`` loop (the DCGAN
  slides' source), i.e. the "Adversarial Training (batch update)" slides (1)–(3).
  Change: the noise ``z`` is passed in instead of drawn with ``torch.randn``, and D's output
  is flattened with ``.view(-1)`` here (the example's ``Discriminator.forward`` does it
  itself; the slide's returns (N, 1, 1, 1)).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["supervised_step", "ae_step", "vae_loss", "vae_step", "gan_step", "LOSSES"]

LOSSES = {
    "nll": F.nll_loss,
    "mse": F.mse_loss,
    "bce": F.binary_cross_entropy,
}


def supervised_step(model, optimizer, x, y, loss="nll"):
    """One step of ``loss(model(x), y)``; returns the loss as a float."""
    loss_fn = LOSSES[loss] if isinstance(loss, str) else loss
    optimizer.zero_grad()
    out = loss_fn(model(x), y)
    out.backward()
    optimizer.step()
    return out.item()


def ae_step(model, optimizer, x):
    """Auto-encoder step: ``F.mse_loss(model(x), x)``."""
    return supervised_step(model, optimizer, x, x, loss="mse")


def vae_loss(recon_x, x, mu, logvar):
    """pytorch/examples ``loss_function``: reconstruction BCE (summed) + KL divergence."""
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction='sum')
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD, BCE, KLD


def vae_step(model, optimizer, x, eps):
    """pytorch/examples VAE ``train`` loop body, with explicit noise ``eps`` (N, 20)."""
    model.train()
    optimizer.zero_grad()
    recon_batch, mu, logvar = model(x, eps)
    loss, bce, kld = vae_loss(recon_batch, x, mu, logvar)
    loss.backward()
    optimizer.step()
    return {"loss": loss.item(), "bce": bce.item(), "kld": kld.item()}


def gan_step(netG, netD, optimizerG, optimizerD, real, noise, real_label=1.0, fake_label=0.0):
    """One iteration of the pytorch/examples DCGAN loop; returns its printed metrics.

    ``real`` (N, nc, 64, 64), ``noise`` (N, nz, 1, 1). Both nets stay in train mode: G's
    BatchNorm statistics update once (the single ``netG(noise)``), D's three times.
    """
    criterion = nn.BCELoss()

    ############################
    # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
    ###########################
    # train with real
    netD.zero_grad()
    batch_size = real.size(0)
    label = torch.full((batch_size,), real_label, dtype=real.dtype, device=real.device)

    output = netD(real).view(-1)
    errD_real = criterion(output, label)
    errD_real.backward()
    D_x = output.mean().item()

    # train with fake
    fake = netG(noise)
    label.fill_(fake_label)
    output = netD(fake.detach()).view(-1)
    errD_fake = criterion(output, label)
    errD_fake.backward()
    D_G_z1 = output.mean().item()
    errD = errD_real + errD_fake
    optimizerD.step()

    ############################
    # (2) Update G network: maximize log(D(G(z)))
    ###########################
    netG.zero_grad()
    label.fill_(real_label)  # fake labels are real for generator cost
    output = netD(fake).view(-1)
    errG = criterion(output, label)
    errG.backward()
    D_G_z2 = output.mean().item()
    optimizerG.step()

    return {"errD": errD.item(), "errD_real": errD_real.item(), "errD_fake": errD_fake.item(),
            "errG": errG.item(), "D_x": D_x, "D_G_z1": D_G_z1, "D_G_z2": D_G_z2}
