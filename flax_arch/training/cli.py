"""``flax-arch train {ae,vae,dcgan}``: train a slide model on a generated dataset.

* ``ae`` / ``vae``: the "Auto-Encoder" / "Variational Auto-Encoder" slides' models on 28×28
  digit-like glyphs (:func:`flax_arch.training.data.digits`); AE loss MSE, VAE loss the
  pytorch/examples one (summed BCE + KL). Output: ``reconstructions.png`` (rows of inputs
  above their reconstructions) and, for the VAE, ``samples.png`` (decoded prior draws).
* ``dcgan``: the DCGAN slides' generator and discriminator on 64×64 coloured shapes
  (:func:`flax_arch.training.data.shapes`), trained with the adversarial procedure of the
  slides (:func:`flax_arch.training.steps.make_gan_step`), weights initialised as in the
  pytorch/examples DCGAN. Output: ``samples.png`` from a fixed noise batch.

Every run writes its checkpoint, an orbax checkpoint directory ``DIR/checkpoint/``
(atomically; :mod:`flax_arch.training.checkpoint`), every ``--checkpoint-every`` steps, on
Ctrl-C, and at the end; ``--resume`` continues the same trajectory from it (or from a
``DIR/checkpoint.safetensors`` written by earlier versions).

The models are built from the registry (:data:`flax_arch.models.ARCHITECTURES`) by the
specs :func:`model_specs` gives; the checkpoint records those specs, so ``flax-arch
convert`` rebuilds a model from the file alone.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
import time
from typing import Mapping

from ..cli import (nonnegative_float, nonnegative_int, output_dir, positive_float,
                   positive_int, seed_int, unit_interval)

MODELS = ("ae", "vae", "dcgan")
CHECKPOINT = "checkpoint"                        # the orbax checkpoint directory
LEGACY_CHECKPOINT = "checkpoint.safetensors"     # written by earlier versions; still read

# Defaults per model: the pytorch/examples settings (VAE: Adam 1e-3, batch 128; DCGAN:
# Adam 2e-4, beta1 0.5, batch 64), scaled-down widths for the DCGAN so it runs on a CPU.
DEFAULTS = {
    "ae": {"batch_size": 128, "lr": 1e-3, "beta1": 0.9, "steps": 2000, "dataset_size": 4096},
    "vae": {"batch_size": 128, "lr": 1e-3, "beta1": 0.9, "steps": 2000, "dataset_size": 4096},
    "dcgan": {"batch_size": 64, "lr": 2e-4, "beta1": 0.5, "steps": 1000, "dataset_size": 2048,
              "ngf": 16, "ndf": 16, "nz": 100},
}
COMMON = {"optimizer": "adam", "momentum": 0.9, "seed": 0}
# options that fix the trajectory: stored in the checkpoint, must agree on --resume
TRAJECTORY = ("batch_size", "lr", "beta1", "optimizer", "momentum", "seed", "dataset_size",
              "ngf", "ndf", "nz")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", choices=MODELS, help="what to train")
    p.add_argument("--steps", type=nonnegative_int, default=None,
                   help="train until this many steps in total (ae/vae 2000, dcgan 1000); "
                        "with --resume, counts the steps already done")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="ae/vae 128, dcgan 64")
    p.add_argument("--lr", type=positive_float, default=None, help="learning rate (ae/vae 1e-3, "
                   "dcgan 2e-4)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default=None, help="default adam")
    p.add_argument("--beta1", type=unit_interval, default=None,
                   help="Adam's beta1 (dcgan 0.5 as in pytorch/examples, else 0.9)")
    p.add_argument("--momentum", type=nonnegative_float, default=None,
                   help="SGD momentum (0.9)")
    p.add_argument("--seed", type=seed_int, default=None,
                   help="seed of the weights, the dataset, the batches and the noise (0)")
    p.add_argument("--dataset-size", type=positive_int, default=None,
                   help="number of generated images (ae/vae 4096, dcgan 2048)")
    p.add_argument("--ngf", type=positive_int, default=None, help="dcgan generator width (16; the "
                   "slides' 64 is slow on a CPU)")
    p.add_argument("--ndf", type=positive_int, default=None,
                   help="dcgan discriminator width (16)")
    p.add_argument("--nz", type=positive_int, default=None, help="dcgan latent size (100)")
    p.add_argument("--out", type=output_dir, default=None,
                   help="output directory (default runs/MODEL)")
    p.add_argument("--resume", action="store_true",
                   help=f"continue from OUT/{CHECKPOINT}/ (or a legacy OUT/"
                        f"{LEGACY_CHECKPOINT}): the same trajectory as an uninterrupted "
                        f"run; its stored settings are used")
    p.add_argument("--force", action="store_true",
                   help="start afresh even if OUT already holds a checkpoint (overwrites it)")
    p.add_argument("--checkpoint-every", type=nonnegative_int, default=500, metavar="K",
                   help="write the checkpoint every K steps (0: only at the end)")
    p.add_argument("--grid", type=positive_int, default=64, metavar="N",
                   help="images in the PNG grids (64)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


# ------------------------------------------------------------------------ building blocks


def model_specs(name: str, cfg: Mapping) -> dict[str, dict]:
    """``{model name in the state: {"arch": registry name, "kwargs": {...}}}``: the
    models a ``flax-arch train NAME`` run builds with the settings ``cfg``."""
    if name == "ae":
        return {"model": {"arch": "ae", "kwargs": {"num_inputs": 784}}}
    if name == "vae":
        return {"model": {"arch": "vae", "kwargs": {}}}
    if name == "dcgan":
        return {"G": {"arch": "dcgan-g", "kwargs": {"nc": 3, "nz": cfg["nz"],
                                                    "ngf": cfg["ngf"]}},
                "D": {"arch": "dcgan-d", "kwargs": {"nc": 3, "ndf": cfg["ndf"]}}}
    raise ValueError(f"unknown model {name!r}; one of {', '.join(MODELS)}")


def _optimizer(cfg):
    import optax
    if cfg["optimizer"] == "adam":
        return optax.adam(cfg["lr"], b1=cfg["beta1"], b2=0.999, eps=1e-8)
    return optax.sgd(cfg["lr"], momentum=cfg["momentum"] or None)


def dcgan_init(make, seed: int):
    """Build a DCGAN module with the pytorch/examples DCGAN ``weights_init``: convolution
    weights ~ N(0, 0.02), BatchNorm weights ~ N(1, 0.02), BatchNorm biases 0 (running
    statistics at their initial 0 / 1 / 0).

    Since that re-draws every weight, the module is built abstractly (``nnx.eval_shape``)
    and filled from numpy's generator seeded with ``seed``: nothing is compiled.
    """
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from ..nn import BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
    convs = (Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d)
    module = nnx.eval_shape(make)
    rng = np.random.default_rng([seed, 2])

    def fill(var, value):
        spec = var.get_value()
        var.set_value(jnp.asarray(np.asarray(value).astype(spec.dtype).reshape(spec.shape)))

    for _, node in nnx.iter_graph(module):
        if isinstance(node, convs):
            shape = node.kernel.get_value().shape
            fill(node.kernel, rng.normal(0.0, 0.02, shape))
            if node.bias is not None:
                fill(node.bias, np.zeros(node.bias.get_value().shape))
        elif isinstance(node, (BatchNorm1d, BatchNorm2d)):
            if node.affine:
                fill(node.scale, rng.normal(1.0, 0.02, node.scale.get_value().shape))
                fill(node.bias, np.zeros(node.bias.get_value().shape))
            if node.track_running_stats:
                fill(node.mean, np.zeros(node.mean.get_value().shape))
                fill(node.var, np.ones(node.var.get_value().shape))
                fill(node.num_batches_tracked, 0)
    left = ["/".join(map(str, p)) for p, v in nnx.to_flat_state(nnx.state(module))
            if not hasattr(v.get_value(), "devices")]
    if left:
        raise RuntimeError(f"dcgan_init left variables uninitialised: {left}")
    return module


class _Run:
    """The model-specific parts of a run: trainer, batches, noise, images."""

    def __init__(self, name: str, cfg: dict):
        import jax
        from flax import nnx

        from ..models import ARCHITECTURES
        from . import data
        from .steps import AETrainer, GANTrainer, VAETrainer
        self.name, self.cfg = name, cfg
        self.specs = model_specs(name, cfg)
        seed = cfg["seed"]
        tx = _optimizer

        def make(model, rngs):
            spec = self.specs[model]
            return ARCHITECTURES[spec["arch"]].build(spec["kwargs"], rngs=rngs)

        if name in ("ae", "vae"):
            images, _ = data.digits(cfg["dataset_size"], seed=seed)
            self.images = images.reshape(len(images), 784)           # (n, 784) uint8
            self.to_float = data.to_unit
            if name == "ae":
                self.trainer = AETrainer(make("model", nnx.Rngs(seed)), tx(cfg))
                self.noise_shape = None
            else:
                self.trainer = VAETrainer(make("model", nnx.Rngs(seed)), tx(cfg))
                self.noise_shape = (cfg["batch_size"], 20)            # eps (N, 20)
        else:
            self.images = data.shapes(cfg["dataset_size"], seed=seed)  # (n, 64, 64, 3)
            self.to_float = data.to_tanh
            g = dcgan_init(lambda: make("G", nnx.Rngs(0)), seed)
            d = dcgan_init(lambda: make("D", nnx.Rngs(0)), seed + 1)
            self.trainer = GANTrainer(g, d, tx(cfg), tx(cfg))
            self.noise_shape = (cfg["batch_size"], 1, 1, cfg["nz"])  # z (N, 1, 1, nz)
        # (train state, noise key): replaced together in one assignment per step, so an
        # interrupt never separates the two
        self.current = (self.trainer.state, jax.random.PRNGKey(seed + 3))  # key: uint32[2]
        pure_step, shape = self.trainer._step, self.noise_shape

        @jax.jit
        def full_step(state, rng, batch):
            if shape is None:  # the AE: target = input
                state, metrics = pure_step(state, batch, batch)
                return (state, rng), metrics
            rng, sub = jax.random.split(rng)
            state, metrics = pure_step(state, batch, jax.random.normal(sub, shape, batch.dtype))
            return (state, rng), metrics

        self._full_step = full_step

    def step(self, step: int):
        """Run training step number ``step`` (0-based); returns the metrics (arrays)."""
        from .data import batch_indices
        idx = batch_indices(len(self.images), self.cfg["batch_size"], step, self.cfg["seed"])
        batch = self.to_float(self.images[idx])
        self.current, metrics = self._full_step(*self.current, batch)
        return metrics

    def postfix(self, metrics) -> dict:
        if self.name == "dcgan":
            return {k: f"{float(metrics[k]):.3f}" for k in ("errD", "errG", "D_x")}
        if self.name == "vae":  # per-image, as the example prints it
            return {"loss": f"{float(metrics['loss']) / self.cfg['batch_size']:.2f}"}
        return {"loss": f"{float(metrics['loss']):.4f}"}

    # -- checkpoints
    @property
    def step_count(self) -> int:
        return int(self.current[0].step)

    def tree(self):
        return {"state": self.current[0].as_tree()}

    def restore(self, path):
        """Continue from the checkpoint at ``path`` (a checkpoint directory or a legacy
        file). A checkpoint that does not fit raises :class:`CheckpointError` listing
        every problem, and the run's state is left as it was."""
        import numpy as np

        from . import checkpoint
        from .steps import TrainState
        rng = self.current[1]
        tree, info = checkpoint.restore(path, {"state": self.current[0].as_tree()})
        new_rng = info["rng"]
        if new_rng is None or np.shape(new_rng) != np.shape(rng) or \
                np.asarray(new_rng).dtype != np.asarray(rng).dtype:
            raise checkpoint.CheckpointError.about(
                info["path"], f"its 'rng' metadata {new_rng!r} is not a key like "
                              f"{np.asarray(rng).dtype}{list(np.shape(rng))}")
        state = TrainState.from_tree(tree["state"])
        if int(state.step) != info["step"]:
            raise checkpoint.CheckpointError.about(
                info["path"], f"its 'step' metadata {info['step']} disagrees with the step "
                              f"counter of its state ({int(state.step)})")
        self.current = (state, new_rng)
        self.trainer.state = self.current[0]
        return info

    def save(self, path) -> str:
        """Write the checkpoint directory ``path``; returns the new save's path."""
        from . import checkpoint
        state, rng = self.current
        return checkpoint.save(path, {"state": state.as_tree()}, step=int(state.step),
                               config={"model": self.name, **self.cfg}, rng=rng,
                               models=self.specs)

    # -- pictures
    def _generate(self):
        """Jitted ``(G params, G rest, z) -> images``, compiled once per run."""
        if getattr(self, "_generate_fn", None) is None:
            import jax
            from flax import nnx
            graphdef = self.trainer.graphdefs["G"]

            @jax.jit
            def generate(params, rest, z):
                # netG(fixed_noise) in train mode as in the example (batch statistics); the
                # running-statistics update of this extra forward is discarded.
                return nnx.merge(graphdef, params, rest, copy=True)(z)

            self._generate_fn = generate
        return self._generate_fn

    def pictures(self, out_dir: str, n: int) -> list[str]:
        import jax
        import jax.numpy as jnp
        import numpy as np
        self.trainer.state = self.current[0]
        written = []
        if self.name in ("ae", "vae"):
            k = max(1, min(n // 2, len(self.images)))
            x = jnp.asarray(self.to_float(self.images[:k]))
            model = self.trainer.module()
            if self.name == "ae":
                recon = model(x)
            else:  # reconstruct from the posterior mean (eps = 0)
                recon, _, _ = model(x, eps=jnp.zeros((k, 20), x.dtype))
            pairs = _interleave_rows(np.asarray(x), np.clip(np.asarray(recon), 0, 1), ncol=8)
            written.append(save_grid(pairs.reshape(-1, 28, 28, 1),
                                     os.path.join(out_dir, "reconstructions.png"), ncol=8))
            if self.name == "vae":
                z = jax.random.normal(jax.random.PRNGKey(self.cfg["seed"] + 4), (n, 20))
                samples = np.asarray(model.decode(z)).reshape(-1, 28, 28, 1)
                written.append(save_grid(samples, os.path.join(out_dir, "samples.png"),
                                         ncol=8))
        else:
            z = jax.random.normal(jax.random.PRNGKey(self.cfg["seed"] + 4),
                                  (n, 1, 1, self.cfg["nz"]))
            s = self.current[0]
            fake = np.asarray(self._generate()(s.params["G"], s.rest["G"], z))
            written.append(save_grid((fake + 1) / 2, os.path.join(out_dir, "samples.png"),
                                     ncol=8))
        return written


def _interleave_rows(a, b, ncol):
    """Rows of ``ncol`` images of ``a`` each followed by the matching row of ``b``."""
    import numpy as np
    out = []
    for i in range(0, len(a), ncol):
        out.extend([a[i:i + ncol], b[i:i + ncol]])
    return np.concatenate(out)


def _require_pillow():
    from .._optional import require
    return require("PIL.Image", "writing PNG grids needs Pillow: pip install "
                   "'flax-arch[train]' (or pip install pillow)")


def save_grid(images, path: str, *, ncol: int = 8, pad: int = 2) -> str:
    """Tile ``images`` (N, H, W, C) in [0, 1] (C = 1 or 3) into a PNG at ``path``
    (written atomically). Needs Pillow (``pip install 'flax-arch[train]'``)."""
    import numpy as np
    Image = _require_pillow()
    from .checkpoint import atomic_write_bytes
    images = np.clip(np.asarray(images, np.float32), 0, 1)
    n, h, w, c = images.shape
    ncol = min(ncol, n)
    nrow = -(-n // ncol)
    grid = np.ones((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), np.float32)
    for i, im in enumerate(images):
        r, q = divmod(i, ncol)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h,
             pad + q * (w + pad):pad + q * (w + pad) + w] = im
    arr = np.round(grid * 255).astype(np.uint8)
    img = Image.fromarray(arr[..., 0] if c == 1 else arr)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return path


# ------------------------------------------------------------------------ command


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# what a stored setting must be: (description, check); the options' own checks, again,
# for a checkpoint's config (which may have been edited or damaged)
STORED_SETTINGS = {
    "batch_size": ("a positive integer", lambda v: _is_int(v) and v >= 1),
    "dataset_size": ("a positive integer", lambda v: _is_int(v) and v >= 1),
    "ngf": ("a positive integer", lambda v: _is_int(v) and v >= 1),
    "ndf": ("a positive integer", lambda v: _is_int(v) and v >= 1),
    "nz": ("a positive integer", lambda v: _is_int(v) and v >= 1),
    "seed": ("an integer in [0, 2**31 - 1]", lambda v: _is_int(v) and 0 <= v < 2 ** 31),
    "lr": ("a positive number", lambda v: _is_number(v) and v > 0),
    "beta1": ("a number in [0, 1)", lambda v: _is_number(v) and 0 <= v < 1),
    "momentum": ("a number >= 0", lambda v: _is_number(v) and v >= 0),
    "optimizer": ("'adam' or 'sgd'", lambda v: v in ("adam", "sgd")),
}


def _check_stored(name: str, stored: Mapping, path: str) -> None:
    """A checkpoint's config must be a complete, valid config of model ``name``; else a
    :class:`CheckpointError` naming the file and every problem."""
    from .checkpoint import CheckpointError
    if stored.get("model") != name:
        raise CheckpointError.about(path, f"it is for {stored.get('model')!r}, not {name!r}")
    keys = [k for k in TRAJECTORY if k in {**COMMON, **DEFAULTS[name]}]
    problems = [f"its config lacks {k!r}" for k in keys if k not in stored]
    problems += [f"its config has {k} = {stored[k]!r}, not {STORED_SETTINGS[k][0]}"
                 for k in keys if k in stored and not STORED_SETTINGS[k][1](stored[k])]
    if problems:
        problems[-1] += " (corrupt, edited, or not written by flax-arch train?)"
        raise CheckpointError.about(path, *problems)


def _config(args, stored: dict | None, path: str | None = None) -> dict:
    """The run's settings: stored ones on --resume (explicit options must agree), else
    the options given, else the defaults."""
    name = args.model
    defaults = {**COMMON, **DEFAULTS[name]}
    keys = [k for k in TRAJECTORY if k in defaults]
    given = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    if stored is None:
        return {k: given.get(k, defaults[k]) for k in keys}
    _check_stored(name, stored, path)
    conflicts = [f"--{k.replace('_', '-')} {given[k]} (the checkpoint has {stored[k]})"
                 for k in given if given[k] != stored[k]]
    if conflicts:
        raise SystemExit("error: --resume continues the stored trajectory; these options "
                         "differ from the checkpoint's settings: " + "; ".join(conflicts))
    return {k: stored[k] for k in keys}


def _validate(cfg, stored_in: str | None = None):
    """What the option types cannot check alone (the ranges are theirs)."""
    if cfg["batch_size"] > cfg["dataset_size"]:
        where = f" (the settings stored in {stored_in})" if stored_in else ""
        raise SystemExit(f"error: --batch-size {cfg['batch_size']} exceeds --dataset-size "
                         f"{cfg['dataset_size']}{where}")


def existing_checkpoint(out: str) -> str | None:
    """The checkpoint a run in ``out`` continues from: the newest complete save in
    ``out/checkpoint/``, else a legacy ``out/checkpoint.safetensors``, else ``None``."""
    from . import checkpoint
    found = checkpoint.latest(os.path.join(out, CHECKPOINT))
    if found is not None and not os.path.isfile(found):
        return found
    legacy = checkpoint.latest(os.path.join(out, LEGACY_CHECKPOINT))
    return legacy if legacy is not None and os.path.isfile(legacy) else None


def run(args) -> int:
    """The command; every user error (bad settings, an unusable output path, a corrupt,
    truncated or foreign checkpoint) is a message on stderr and status 2."""
    from . import checkpoint
    try:
        return _run(args)
    except checkpoint.CheckpointError as e:
        print(f"error: {'cannot resume: ' if args.resume else ''}{e}", file=sys.stderr)
        return 2


def _run(args) -> int:
    from . import checkpoint
    try:  # fail early, before any training
        _require_pillow()
    except ImportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out or os.path.join("runs", args.model)
    ckpt = os.path.join(out, CHECKPOINT)
    for path, what in ((out, "the output directory (--out)"),
                       (ckpt, "the checkpoint directory")):
        if os.path.exists(path) and not os.path.isdir(path):
            print(f"error: {path} is {what} but exists and is not a directory",
                  file=sys.stderr)
            return 2
    found = existing_checkpoint(out)
    stored = None
    if args.resume:
        if found is None:
            print(f"error: --resume: no checkpoint at {ckpt}", file=sys.stderr)
            return 2
        stored = checkpoint.read_info(found)["config"]
    elif found is not None and not args.force:
        print(f"error: {found} exists; pass --resume to continue it or --force to start "
              f"over (overwriting it)", file=sys.stderr)
        return 2
    try:
        cfg = _config(args, stored, found)
        _validate(cfg, found if stored is not None else None)
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 2
    total = args.steps if args.steps is not None else DEFAULTS[args.model]["steps"]
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        print(f"error: --out {out}: cannot create the output directory: "
              f"{e.strerror or e}", file=sys.stderr)
        return 2

    from tqdm import tqdm
    t0 = time.time()
    r = _Run(args.model, cfg)
    start = 0
    if args.resume:
        info = r.restore(found)  # a CheckpointError: reported by run()
        start = info["step"]
        print(f"resumed {found} at step {start}", file=sys.stderr)
        if os.path.isfile(found):
            print(f"note: {found} is a legacy checkpoint; new checkpoints are written to "
                  f"{ckpt}/", file=sys.stderr)
    if start >= total:
        print(f"nothing to do: the checkpoint is at step {start} >= --steps {total}",
              file=sys.stderr)
        return 0

    bar = tqdm(total=total, initial=start, desc=f"train {args.model}", unit="step",
               file=sys.stderr, disable=args.quiet, dynamic_ncols=True)
    metrics = None
    step = start
    try:
        for step in range(start, total):
            metrics = r.step(step)
            done = step + 1
            if done % 10 == 0 or done == total:
                bar.set_postfix(r.postfix(metrics), refresh=False)
            bar.update(1)
            if args.checkpoint_every and done % args.checkpoint_every == 0 and done < total:
                r.save(ckpt)
                r.pictures(out, args.grid)
        step = total
    except KeyboardInterrupt:
        bar.close()
        r.save(ckpt)  # the state after the last completed step
        print(f"\ninterrupted: saved step {r.step_count} to {ckpt}; continue with "
              f"--resume", file=sys.stderr)
        return 130
    bar.close()
    files = [r.save(ckpt), *r.pictures(out, args.grid)]
    loss = r.postfix(metrics) if metrics is not None else {}
    print(f"{args.model}: {total - start} steps ({start}→{total}) in {time.time() - t0:.1f}s; "
          f"last {', '.join(f'{k} {v}' for k, v in loss.items())}")
    for f in files:
        print(f"  wrote {f}")
    return 0
