"""Jitted training steps with optax, mirroring torch's ``loss.backward(); opt.step()`` loops.

Every step is a pure function of a :class:`TrainState` pytree (parameters, the other
variables — BatchNorm running statistics —, optimizer states, step counter) and the batch,
compiled once with :func:`jax.jit`. The :class:`Trainer` classes hold the graph
definitions, the state and the compiled step; ``trainer.module(name)`` rebuilds an NNX
module from the current state.

Losses follow torch's definitions to the rounding error:

* :func:`bce` is ``F.binary_cross_entropy``: each log is clamped at −100 and the gradient
  is torch's ``(x − y) / max(x (1 − x), 1e-12)`` (not the derivative of the clamped log),
  divided by the number of elements for ``reduction="mean"``;
* :func:`nll_loss` is ``F.nll_loss`` on log-probabilities (mean over the batch);
* :func:`mse_loss` is ``F.mse_loss``;
* :func:`vae_loss` is the ``loss_function`` of the pytorch/examples VAE the "Variational
  Auto-Encoder" slide cites: summed BCE of the reconstruction against ``x.view(-1, 784)``
  plus ``KLD = −½ Σ (1 + logvar − mu² − exp(logvar))``.

The adversarial step (:func:`make_gan_step`) is the "Adversarial Training (batch update)"
procedure of the slides in the order of the pytorch/examples ``dcgan/main.py`` loop the
DCGAN slides cite (see ``docs/training.md``):

1. D on a real batch → label 1; ``errD_real.backward()``;
2. ``fake = G(z)`` (G in train mode: G's BatchNorm running statistics update once), D on
   ``fake.detach()`` → label 0; ``errD_fake.backward()``; one D optimizer step on the
   summed gradients. D's BatchNorm statistics have now updated twice (real, then fake);
3. D (already updated, still in train mode: its running statistics update a third time)
   on the same ``fake`` — not a second G forward — → label 1; the gradient flows through
   the frozen D into G and only G's optimizer steps.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

__all__ = ["bce", "nll_loss", "mse_loss", "vae_loss", "kl_divergence", "TrainState",
           "make_supervised_step", "make_vae_step", "make_gan_step", "Trainer",
           "SupervisedTrainer", "AETrainer", "VAETrainer", "GANTrainer", "SUPERVISED_LOSSES"]

# ---------------------------------------------------------------------------- losses

# torch's floor on x(1 − x) in the BCE gradient; a C++ float constant, hence the rounding
_BCE_EPSILON = float(np.float32(1e-12))
_LOG_FLOOR = -100.0    # torch clamps each log term of the BCE at −100


def _bce_elementwise(x, y):
    log_x = jnp.maximum(jnp.log(x), _LOG_FLOOR)
    log_1mx = jnp.maximum(jnp.log1p(-x), _LOG_FLOOR)
    return (y - 1) * log_1mx - y * log_x


@jax.custom_vjp
def _bce_sum(x, y):
    return jnp.sum(_bce_elementwise(x, y))


@jax.custom_vjp
def _bce_mean(x, y):
    return jnp.mean(_bce_elementwise(x, y))


def _bce_bwd(norm, res, g):
    x, y = res
    gx = g * (x - y) / jnp.maximum((1 - x) * x, _BCE_EPSILON)
    gy = g * (jnp.maximum(jnp.log1p(-x), _LOG_FLOOR) - jnp.maximum(jnp.log(x), _LOG_FLOOR))
    if norm:
        gx, gy = gx / x.size, gy / x.size
    return gx, gy


_bce_sum.defvjp(lambda x, y: (_bce_sum(x, y), (x, y)),
                lambda res, g: _bce_bwd(False, res, g))
_bce_mean.defvjp(lambda x, y: (_bce_mean(x, y), (x, y)),
                 lambda res, g: _bce_bwd(True, res, g))


def bce(x, y, reduction: str = "mean"):
    """``F.binary_cross_entropy(x, y, reduction=...)`` for probabilities ``x`` in [0, 1].

    Loss ``−(y·max(log x, −100) + (1 − y)·max(log(1 − x), −100))``, averaged or summed;
    the gradient w.r.t. ``x`` is torch's ``(x − y) / max(x(1 − x), 1e-12)``.
    ``x`` and ``y`` have the same shape (any).
    """
    x = jnp.asarray(x)
    y = jnp.asarray(y, x.dtype)
    if x.shape != y.shape:
        raise ValueError(f"bce: x has shape {x.shape} but the target y has {y.shape}; "
                         f"they must match (as torch's BCELoss requires)")
    if reduction == "mean":
        return _bce_mean(x, y)
    if reduction == "sum":
        return _bce_sum(x, y)
    if reduction == "none":
        return _bce_elementwise(x, y)
    raise ValueError(f"bce: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def nll_loss(logp, labels):
    """``F.nll_loss``: mean over the batch of ``−logp[i, labels[i]]``.

    ``logp`` (N, C) log-probabilities; ``labels`` (N,) integer classes → scalar.
    """
    if logp.ndim != 2 or labels.shape != logp.shape[:1]:
        raise ValueError(f"nll_loss: expected logp (N, C) and labels (N,), got "
                         f"{logp.shape} and {labels.shape}")
    picked = jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=1)[:, 0]
    return -jnp.mean(picked)


def mse_loss(pred, target, reduction: str = "mean"):
    """``F.mse_loss``: ``(pred − target)²`` averaged (or summed); shapes must match."""
    if pred.shape != target.shape:
        raise ValueError(f"mse_loss: pred has shape {pred.shape}, target {target.shape}")
    sq = jnp.square(pred - target)
    return jnp.mean(sq) if reduction == "mean" else jnp.sum(sq)


def kl_divergence(mu, logvar):
    """``−½ Σ (1 + logvar − mu² − exp(logvar))``: KL(N(mu, e^logvar) ‖ N(0, I)), summed."""
    return -0.5 * jnp.sum(1 + logvar - mu ** 2 - jnp.exp(logvar))


def vae_loss(recon, x, mu, logvar):
    """The pytorch/examples VAE loss: ``BCE(recon, x.view(-1, 784), 'sum') + KLD``.

    ``recon`` (N, D) in (0, 1); ``x`` any shape with N·D elements in [0, 1]; ``mu`` and
    ``logvar`` (N, latent). Returns ``(loss, bce, kld)`` (sums over the batch).
    """
    target = jnp.reshape(x, recon.shape)  # x.view(-1, 784)
    rec = bce(recon, target, reduction="sum")
    kld = kl_divergence(mu, logvar)
    return rec + kld, rec, kld


SUPERVISED_LOSSES: dict[str, Callable] = {"nll": nll_loss, "mse": mse_loss, "bce": bce}

# ---------------------------------------------------------------------------- state


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass
class TrainState:
    """Everything a step changes, as one pytree.

    ``params[name]`` / ``rest[name]``: the ``nnx.Param`` state and every other variable
    (BatchNorm running statistics, RNG state) of model ``name``; ``opt[name]`` its optax
    state; ``step`` the number of completed steps (int32 scalar).
    """

    params: dict[str, nnx.State]
    rest: dict[str, nnx.State]
    opt: dict[str, Any]
    step: jax.Array

    def tree_flatten(self):
        return (self.params, self.rest, self.opt, self.step), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)

    def as_tree(self) -> dict:
        """A plain dict view, ``{"params", "rest", "opt", "step"}`` (for checkpoints)."""
        return {"params": self.params, "rest": self.rest, "opt": self.opt, "step": self.step}

    @classmethod
    def from_tree(cls, tree: Mapping) -> "TrainState":
        return cls(tree["params"], tree["rest"], tree["opt"], tree["step"])


def _split(module: nnx.Module):
    return nnx.split(module, nnx.Param, ...)


def _merge(graphdef, params, rest):
    # copy: fresh Variables owned by the current trace, so a transform nested in the step
    # (grad, vjp) may update BatchNorm statistics that came in from the enclosing jit
    return nnx.merge(graphdef, params, rest, copy=True)


def _rest_of(module):
    return _split(module)[2]


def _apply(tx, grads, opt_state, params):
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


# ---------------------------------------------------------------------------- pure steps


def make_supervised_step(graphdef, tx: optax.GradientTransformation, loss_fn: Callable, *,
                         name: str = "model", call: Callable | None = None):
    """Pure ``step(state, x, y) -> (state, {"loss"})``: ``loss_fn(model(x), y)``, one
    optimizer step. ``call(model, x)`` overrides ``model(x)``."""

    def step(state: TrainState, x, y):
        def objective(params):
            model = _merge(graphdef, params, state.rest[name])
            out = call(model, x) if call is not None else model(x)
            return loss_fn(out, y), _rest_of(model)

        (loss, rest), grads = jax.value_and_grad(objective, has_aux=True)(state.params[name])
        params, opt = _apply(tx, grads, state.opt[name], state.params[name])
        new = TrainState({**state.params, name: params}, {**state.rest, name: rest},
                         {**state.opt, name: opt}, state.step + 1)
        return new, {"loss": loss}

    return step


def make_vae_step(graphdef, tx: optax.GradientTransformation, *, name: str = "model"):
    """Pure ``step(state, x, eps) -> (state, {"loss", "bce", "kld"})`` for a VAE called as
    ``recon, mu, logvar = vae(x, eps=eps)``; ``eps`` (N, latent) standard-normal noise."""

    def step(state: TrainState, x, eps):
        def objective(params):
            model = _merge(graphdef, params, state.rest[name])
            recon, mu, logvar = model(x, eps=eps)
            loss, rec, kld = vae_loss(recon, x, mu, logvar)
            return loss, (_rest_of(model), rec, kld)

        (loss, (rest, rec, kld)), grads = jax.value_and_grad(objective, has_aux=True)(
            state.params[name])
        params, opt = _apply(tx, grads, state.opt[name], state.params[name])
        new = TrainState({**state.params, name: params}, {**state.rest, name: rest},
                         {**state.opt, name: opt}, state.step + 1)
        return new, {"loss": loss, "bce": rec, "kld": kld}

    return step


def make_gan_step(graphdef_g, graphdef_d, tx_g: optax.GradientTransformation,
                  tx_d: optax.GradientTransformation, *, real_label: float = 1.0,
                  fake_label: float = 0.0):
    """Pure ``step(state, real, z) -> (state, metrics)``: one iteration of the
    pytorch/examples DCGAN loop (models ``"G"`` and ``"D"`` in the state).

    ``real`` (N, H, W, C) images, ``z`` the generator input (N, 1, 1, nz); D's output is
    flattened to (N,) (the example's ``.view(-1)``) and scored with :func:`bce` (mean).
    Metrics: ``errD``, ``errD_real``, ``errD_fake``, ``errG``, ``D_x``, ``D_G_z1``,
    ``D_G_z2`` as printed by the example.
    """

    def d_outputs(d, x):
        return jnp.reshape(d(x), (-1,))  # output.view(-1)

    def step(state: TrainState, real, z):
        pg, rg, pd, rd = state.params["G"], state.rest["G"], state.params["D"], state.rest["D"]
        n = real.shape[0]
        ones = jnp.full((n,), real_label, real.dtype)
        zeros = jnp.full((n,), fake_label, real.dtype)

        # fake = netG(noise): ONE generator forward (train mode; G's running stats update
        # here only). Its VJP is kept for the generator step, which reuses this `fake`.
        def g_forward(params):
            g = _merge(graphdef_g, params, rg)
            return g(z), _rest_of(g)

        fake, g_vjp, rg = jax.vjp(g_forward, pg, has_aux=True)

        # (1)+(2) discriminator: real → 1, fake.detach() → 0; gradients summed, one step.
        def d_objective(params):
            d = _merge(graphdef_d, params, rd)
            out_real = d_outputs(d, real)                       # BN stats update #1
            err_real = bce(out_real, ones)
            out_fake = d_outputs(d, jax.lax.stop_gradient(fake))  # BN stats update #2
            err_fake = bce(out_fake, zeros)
            aux = (_rest_of(d), err_real, err_fake, jnp.mean(out_real), jnp.mean(out_fake))
            return err_real + err_fake, aux

        (err_d, (rd, err_real, err_fake, d_x, d_g_z1)), grads_d = jax.value_and_grad(
            d_objective, has_aux=True)(pd)
        pd, opt_d = _apply(tx_d, grads_d, state.opt["D"], pd)

        # (3) generator through the frozen (just updated, train-mode) D → 1; only G steps.
        def g_objective(fake_images):
            d = _merge(graphdef_d, pd, rd)
            out = d_outputs(d, fake_images)                     # BN stats update #3
            return bce(out, ones), (_rest_of(d), jnp.mean(out))

        (err_g, (rd, d_g_z2)), d_fake = jax.value_and_grad(g_objective, has_aux=True)(fake)
        (grads_g,) = g_vjp(d_fake)
        pg, opt_g = _apply(tx_g, grads_g, state.opt["G"], pg)

        new = TrainState({"G": pg, "D": pd}, {"G": rg, "D": rd},
                         {"G": opt_g, "D": opt_d}, state.step + 1)
        metrics = {"errD": err_d, "errD_real": err_real, "errD_fake": err_fake,
                   "errG": err_g, "D_x": d_x, "D_G_z1": d_g_z1, "D_G_z2": d_g_z2}
        return new, metrics

    return step


# ---------------------------------------------------------------------------- trainers


class Trainer:
    """Holds graph definitions, a :class:`TrainState` and a jitted pure step.

    The modules passed in are put in train mode and split; they are not updated in place
    (call :meth:`module` for a module carrying the current state, or :meth:`sync` to write
    the state back into the originals).
    """

    def __init__(self, modules: Mapping[str, nnx.Module],
                 txs: Mapping[str, optax.GradientTransformation]):
        if set(modules) != set(txs):
            raise ValueError(f"one optimizer per module: modules {sorted(modules)}, "
                             f"optimizers {sorted(txs)}")
        self._originals = dict(modules)
        self.graphdefs, params, rest, opt = {}, {}, {}, {}
        for name, module in modules.items():
            module.train()
            self.graphdefs[name], params[name], rest[name] = _split(module)
            opt[name] = txs[name].init(params[name])
        self.txs = dict(txs)
        self.state = TrainState(params, rest, opt, jnp.zeros((), jnp.int32))
        self._step = jax.jit(self._make_step())

    def _make_step(self):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def step_count(self) -> int:
        return int(self.state.step)

    def step(self, *batch) -> dict[str, float]:
        """One training step on ``batch``; returns the metrics as Python floats (this
        waits for the step to finish)."""
        self.state, metrics = self._step(self.state, *batch)
        return {k: float(v) for k, v in metrics.items()}

    def step_async(self, *batch) -> dict[str, jax.Array]:
        """Like :meth:`step` but returns the metrics as (possibly unfinished) arrays."""
        self.state, metrics = self._step(self.state, *batch)
        return metrics

    def module(self, name: str | None = None) -> nnx.Module:
        """A module (train mode) carrying the current state of model ``name``."""
        name = self._default_name(name)
        return _merge(self.graphdefs[name], self.state.params[name], self.state.rest[name])

    def sync(self) -> None:
        """Write the current state into the modules given to the constructor."""
        for name, module in self._originals.items():
            nnx.update(module, self.state.params[name], self.state.rest[name])

    def _default_name(self, name):
        if name is None:
            if len(self.graphdefs) != 1:
                raise ValueError(f"name one of {sorted(self.graphdefs)}")
            return next(iter(self.graphdefs))
        return name


class SupervisedTrainer(Trainer):
    """``loss_fn(model(x), y)`` with one optax optimizer; ``loss`` is ``"nll"``, ``"mse"``,
    ``"bce"`` or a callable. ``trainer.step(x, y)``."""

    def __init__(self, model: nnx.Module, tx: optax.GradientTransformation,
                 loss: str | Callable = "nll"):
        if isinstance(loss, str):
            if loss not in SUPERVISED_LOSSES:
                raise ValueError(f"loss must be one of {sorted(SUPERVISED_LOSSES)} or a "
                                 f"callable, got {loss!r}")
            loss = SUPERVISED_LOSSES[loss]
        self.loss_fn = loss
        super().__init__({"model": model}, {"model": tx})

    def _make_step(self):
        return make_supervised_step(self.graphdefs["model"], self.txs["model"], self.loss_fn)


class AETrainer(SupervisedTrainer):
    """Auto-encoder: ``mse_loss(model(x), x)`` (the AE has no output activation).
    ``trainer.step(x)``."""

    def __init__(self, model: nnx.Module, tx: optax.GradientTransformation):
        super().__init__(model, tx, loss="mse")

    def step(self, x) -> dict[str, float]:  # type: ignore[override]
        return super().step(x, x)

    def step_async(self, x):  # type: ignore[override]
        return super().step_async(x, x)


class VAETrainer(Trainer):
    """The pytorch/examples VAE loop: ``trainer.step(x, eps)`` with explicit noise."""

    def __init__(self, model: nnx.Module, tx: optax.GradientTransformation):
        super().__init__({"model": model}, {"model": tx})

    def _make_step(self):
        return make_vae_step(self.graphdefs["model"], self.txs["model"])


class GANTrainer(Trainer):
    """The adversarial procedure (see :func:`make_gan_step`): ``trainer.step(real, z)``."""

    def __init__(self, generator: nnx.Module, discriminator: nnx.Module,
                 tx_g: optax.GradientTransformation, tx_d: optax.GradientTransformation):
        super().__init__({"G": generator, "D": discriminator}, {"G": tx_g, "D": tx_d})

    def _make_step(self):
        return make_gan_step(self.graphdefs["G"], self.graphdefs["D"], self.txs["G"],
                             self.txs["D"])
