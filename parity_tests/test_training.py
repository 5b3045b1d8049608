"""Training parity: K optimizer steps in Flax (optax, jitted) against the same K steps in
torch (autograd + torch.optim, :mod:`torch_ref.training`), from identical weights and on
identical batches/noise. After the steps every parameter and every buffer (BatchNorm
running statistics and ``num_batches_tracked``) must agree: float64 ≤ 1e-10, float32 ≤ 1e-4
(normwise relative, per tensor), and so must the losses of every step.

Also: torch's BCE (clamped logs, its gradient formula) at the edges of [0, 1]; and the
``flax-arch train`` command — resuming continues the trajectory bit for bit, an interrupted
checkpoint write leaves the previous checkpoint intact, Ctrl-C saves the last step.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from flax import nnx

from flax_arch.interop import channels_first_to_last, load_torch_state_dict, to_torch_state_dict
from flax_arch.models.autoencoders import AE, VAE
from flax_arch.models.dcgan import DCGANDiscriminator, DCGANGenerator
from flax_arch.models.perceptrons import MLP
from flax_arch.parity import relative_error
from flax_arch.training import AETrainer, GANTrainer, SupervisedTrainer, VAETrainer, bce
import torch_ref.autoencoders as t_ae
import torch_ref.dcgan as t_dcgan
import torch_ref.perceptrons as t_mlp
from torch_ref import training as t_train

TOL = {"float64": 1e-10, "float32": 1e-4}
TDTYPE = {"float64": torch.float64, "float32": torch.float32}
K = 3  # optimizer steps

# (torch optimizer factory, optax transformation factory); hyper-parameters chosen so the
# few steps move the weights visibly
OPTIMIZERS = {
    "sgd": (lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9),
            lambda lr: optax.sgd(lr, momentum=0.9)),
    "adam": (lambda ps, lr: torch.optim.Adam(ps, lr=lr, betas=(0.5, 0.999)),
             lambda lr: optax.adam(lr, b1=0.5, b2=0.999, eps=1e-8)),
}


def _port(make, tmod):
    """The Flax port carrying the torch module's weights. Built abstractly (nothing is
    initialised or compiled) since every variable is then loaded from torch."""
    fmod = nnx.eval_shape(make)
    load_torch_state_dict(fmod, tmod.state_dict())
    return fmod


def _compare_state(fmod, tmod, tol, what):
    got = to_torch_state_dict(fmod)
    want = {k: v.detach().cpu().numpy() for k, v in tmod.state_dict().items()}
    assert set(got) == set(want), f"{what}: keys differ {set(got) ^ set(want)}"
    errs = {k: relative_error(got[k], want[k]) for k in want}
    worst = max(errs, key=errs.get)
    assert errs[worst] <= tol, f"{what}: {worst} differs by {errs[worst]:.2e} > {tol:.0e}"
    # the weights did move (a step that changed nothing would pass trivially)
    return errs


def _to_torch(a, dtype):
    return torch.as_tensor(np.asarray(a, dtype))


def _params_moved(tmod, before):
    return max(float((p.detach() - before[k]).abs().max()) for k, p in tmod.named_parameters())


@pytest.mark.parametrize("opt", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_mlp_classifier(dtype, opt):
    torch.manual_seed(0)
    tmod = t_mlp.MLP(12, 32, 5).to(TDTYPE[dtype])
    fmod = _port(lambda: MLP(12, 32, 5, rngs=nnx.Rngs(0)), tmod)
    before = {k: p.detach().clone() for k, p in tmod.named_parameters()}
    t_opt, f_opt = OPTIMIZERS[opt]
    lr = 0.05 if opt == "sgd" else 1e-2
    topt = t_opt(tmod.parameters(), lr)
    trainer = SupervisedTrainer(fmod, f_opt(lr), loss="nll")
    rng = np.random.default_rng(1)
    for _ in range(K):
        x = rng.standard_normal((16, 12)).astype(dtype)
        y = rng.integers(0, 5, 16)
        lt = t_train.supervised_step(tmod, topt, _to_torch(x, dtype), torch.as_tensor(y))
        lf = trainer.step(jnp.asarray(x), jnp.asarray(y))["loss"]
        assert abs(lf - lt) <= TOL[dtype] * abs(lt)
    assert _params_moved(tmod, before) > 1e-3
    _compare_state(trainer.module(), tmod, TOL[dtype], f"MLP {opt} {dtype}")


@pytest.mark.parametrize("opt", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_autoencoder(dtype, opt):
    torch.manual_seed(0)
    tmod = t_ae.AE(64).to(TDTYPE[dtype])
    fmod = _port(lambda: AE(64, rngs=nnx.Rngs(0)), tmod)
    t_opt, f_opt = OPTIMIZERS[opt]
    lr = 0.1 if opt == "sgd" else 1e-3
    topt = t_opt(tmod.parameters(), lr)
    trainer = AETrainer(fmod, f_opt(lr))
    rng = np.random.default_rng(2)
    for _ in range(K):
        x = rng.uniform(0, 1, (8, 64)).astype(dtype)
        lt = t_train.ae_step(tmod, topt, _to_torch(x, dtype))
        lf = trainer.step(jnp.asarray(x))["loss"]
        assert abs(lf - lt) <= TOL[dtype] * abs(lt)
    _compare_state(trainer.module(), tmod, TOL[dtype], f"AE {opt} {dtype}")


@pytest.mark.parametrize("opt", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_vae(dtype, opt):
    """The pytorch/examples VAE loop: loss = summed BCE (clamped logs) + KL; explicit eps."""
    torch.manual_seed(0)
    tmod = t_ae.VAE().to(TDTYPE[dtype])
    fmod = VAE(rngs=nnx.Rngs(0))  # built for real: its noise stream is not in torch's state
    load_torch_state_dict(fmod, tmod.state_dict())
    t_opt, f_opt = OPTIMIZERS[opt]
    # the summed loss has large gradients (SGD); Adam normalises each gradient element, so
    # in float32 its update inherits the relative rounding error of small, cancelling
    # gradient entries: a moderate rate keeps that under the 1e-4 bound
    lr = 1e-4
    topt = t_opt(tmod.parameters(), lr)
    trainer = VAETrainer(fmod, f_opt(lr))
    rng = np.random.default_rng(3)
    for _ in range(K):
        # binarised pixels, as MNIST mostly is: exercises the BCE at targets 0 and 1
        x = (rng.uniform(0, 1, (8, 784)) > 0.7).astype(dtype)
        eps = rng.standard_normal((8, 20)).astype(dtype)
        mt = t_train.vae_step(tmod, topt, _to_torch(x, dtype), _to_torch(eps, dtype))
        mf = trainer.step(jnp.asarray(x), jnp.asarray(eps))
        for k in ("loss", "bce", "kld"):
            assert abs(mf[k] - mt[k]) <= TOL[dtype] * abs(mt["loss"]), k
    _compare_state(trainer.module(), tmod, TOL[dtype], f"VAE {opt} {dtype}")


@pytest.mark.parametrize("opt", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dcgan_adversarial_procedure(dtype, opt):
    """The DCGAN loop of pytorch/examples (the slides' adversarial procedure): D real → 1,
    D on G(z).detach() → 0, one D step, then G through the updated D → 1, one G step. The
    BatchNorm buffers pin down the order: D's ``num_batches_tracked`` is 3K, G's K."""
    nz, ngf, ndf, n = 8, 4, 4, 4
    torch.manual_seed(0)
    tG = t_dcgan.DCGANGenerator(3, nz=nz, ngf=ngf).to(TDTYPE[dtype])
    tD = t_dcgan.DCGANDiscriminator(3, ndf=ndf).to(TDTYPE[dtype])
    fG = _port(lambda: DCGANGenerator(3, nz=nz, ngf=ngf, rngs=nnx.Rngs(0)), tG)
    fD = _port(lambda: DCGANDiscriminator(3, ndf=ndf, rngs=nnx.Rngs(0)), tD)
    t_opt, f_opt = OPTIMIZERS[opt]
    # Adam: the example's own lr 2e-4 (and beta1 0.5). These tiny ReLU/LeakyReLU nets are
    # non-smooth: a rounding-level change can flip an activation and move a gradient by
    # ~1e-2, so float32 agreement after K steps is bounded by the step size — moderate
    # rates keep the weights moving (1-7 % in 3 steps) and float32 within 1e-4
    lr = 1e-3 if opt == "sgd" else 2e-4
    optG, optD = t_opt(tG.parameters(), lr), t_opt(tD.parameters(), lr)
    trainer = GANTrainer(fG, fD, f_opt(lr), f_opt(lr))
    rng = np.random.default_rng(4)
    for _ in range(K):
        real = rng.uniform(-1, 1, (n, 3, 64, 64)).astype(dtype)
        z = rng.standard_normal((n, nz, 1, 1)).astype(dtype)
        mt = t_train.gan_step(tG, tD, optG, optD, _to_torch(real, dtype), _to_torch(z, dtype))
        mf = trainer.step(jnp.asarray(channels_first_to_last(real)),
                          jnp.asarray(channels_first_to_last(z)))
        for k, v in mt.items():
            assert abs(mf[k] - v) <= TOL[dtype] * max(1.0, abs(v)), k
    _compare_state(trainer.module("G"), tG, TOL[dtype], f"G {opt} {dtype}")
    _compare_state(trainer.module("D"), tD, TOL[dtype], f"D {opt} {dtype}")
    assert int(tD.state_dict()["main.3.num_batches_tracked"]) == 3 * K
    assert int(tG.state_dict()["main.1.num_batches_tracked"]) == K


def test_bce_matches_torch_at_the_edges():
    """Clamped logs (−100) and torch's gradient (x − y) / max(x(1 − x), 1e-12), including
    x = 0 and x = 1 exactly, in both reductions."""
    x = np.array([0.0, 1e-300, 1e-50, 1e-8, 0.3, 0.5, 1 - 1e-12, 1.0, 1.0, 0.0, 0.7])
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.5, 0.0, 1.0, 0.0, 1.0, 0.2])
    for reduction in ("mean", "sum"):
        tx = torch.tensor(x, requires_grad=True)
        tl = torch.nn.functional.binary_cross_entropy(tx, torch.tensor(y), reduction=reduction)
        tl.backward()
        fl, fg = jax.value_and_grad(lambda a: bce(a, jnp.asarray(y), reduction))(jnp.asarray(x))
        assert relative_error(fl, tl.item()) <= 1e-15
        assert relative_error(fg, tx.grad.numpy()) <= 1e-15


# --------------------------------------------------------------------------- the command

def _needs_train_extra():
    """The command needs Pillow (the PNG grids); legacy checkpoints need safetensors."""
    pytest.importorskip("safetensors")
    pytest.importorskip("PIL")


def _train(model, out, steps, *extra):
    from flax_arch.cli import main
    common = {"ae": ["--dataset-size", "48", "--batch-size", "8"],
              "vae": ["--dataset-size", "48", "--batch-size", "8"],
              "dcgan": ["--dataset-size", "16", "--batch-size", "4", "--ngf", "2", "--ndf",
                        "2", "--nz", "4"]}[model]
    return main(["train", model, "--steps", str(steps), "--out", str(out), "--quiet",
                 "--grid", "8", *common, *extra])


def _load(path):
    from flax_arch.training import checkpoint
    return checkpoint.load(path)


def _assert_same_checkpoint(a, b):
    (arr_a, info_a), (arr_b, info_b) = _load(a), _load(b)
    assert info_a["step"] == info_b["step"]
    assert np.array_equal(np.asarray(info_a["rng"]), np.asarray(info_b["rng"]))
    assert set(arr_a) == set(arr_b)
    for k in arr_a:  # bitwise
        assert arr_a[k].dtype == arr_b[k].dtype and arr_a[k].tobytes() == arr_b[k].tobytes(), k


def _saves(ckpt):
    return sorted(os.listdir(ckpt))


@pytest.mark.parametrize("model", ["vae", pytest.param("dcgan", marks=pytest.mark.slow)])
def test_resume_continues_the_trajectory(tmp_path, model):
    """2N steps straight == N steps, then --resume to 2N: every array bitwise equal."""
    _needs_train_extra()
    n = 3
    assert _train(model, tmp_path / "straight", 2 * n) == 0
    assert _train(model, tmp_path / "split", n, "--checkpoint-every", "0") == 0
    assert _load(tmp_path / "split" / "checkpoint")[1]["step"] == n
    assert _train(model, tmp_path / "split", 2 * n, "--resume") == 0
    _assert_same_checkpoint(tmp_path / "straight" / "checkpoint",
                            tmp_path / "split" / "checkpoint")
    assert _saves(tmp_path / "split" / "checkpoint") == ["save_000002"]  # the old one went
    pngs = {"vae": ["reconstructions.png", "samples.png"], "dcgan": ["samples.png"]}[model]
    from PIL import Image
    for name in pngs:
        with Image.open(tmp_path / "split" / name) as im:
            assert im.format == "PNG" and im.size[0] > 28


class _Killed(BaseException):
    """Stands for SIGKILL: nothing catches it, nothing cleans up."""


def test_interrupted_write_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    """A write killed before orbax renames its temporary directory leaves the previous
    checkpoint in use, unchanged (the torn temporary is ignored, then removed by the next
    save); one killed after the rename but before the old save is removed leaves both,
    and the new one is used. Ctrl-C between steps saves the last completed step, from
    which --resume continues."""
    _needs_train_extra()
    from flax_arch.training import checkpoint, cli
    out = tmp_path / "run"
    ckpt = out / "checkpoint"
    assert _train("ae", out, 2) == 0
    before = _load(ckpt)[0]
    real_rename = os.rename

    def killed_before_rename(src, dst, *a, **k):
        if ".orbax-checkpoint-tmp" in os.fspath(src):
            assert os.listdir(src)  # the new checkpoint was written...
            raise _Killed  # ...but never put in place
        return real_rename(src, dst, *a, **k)

    monkeypatch.setattr(os, "rename", killed_before_rename)
    with pytest.raises(_Killed):
        _train("ae", out, 4, "--resume")
    monkeypatch.undo()
    assert any(".orbax-checkpoint-tmp" in n for n in _saves(ckpt))  # the torn write
    arrays, info = _load(ckpt)
    assert info["step"] == 2 and info["path"].endswith("save_000001")
    assert all(arrays[k].tobytes() == before[k].tobytes() for k in before)

    real_remove = checkpoint._remove

    def killed_before_cleanup(path):
        if ".orbax-checkpoint-tmp" not in path:  # removing an older, complete save
            raise _Killed
        real_remove(path)

    monkeypatch.setattr(checkpoint, "_remove", killed_before_cleanup)
    with pytest.raises(_Killed):
        _train("ae", out, 3, "--resume")
    monkeypatch.undo()
    assert "save_000001" in _saves(ckpt) and "save_000002" in _saves(ckpt)
    assert _load(ckpt)[1]["step"] == 3  # the newer save is the checkpoint

    # Ctrl-C during step 4 (0-based): the checkpoint holds the 4 completed steps
    real_step = cli._Run.step

    def interrupted(self, step):
        if step == 4:
            raise KeyboardInterrupt
        return real_step(self, step)

    monkeypatch.setattr(cli._Run, "step", interrupted)
    assert _train("ae", out, 6, "--resume") == 130
    monkeypatch.undo()
    assert _load(ckpt)[1]["step"] == 4
    assert _saves(ckpt) == ["save_000003"]  # older saves and the torn temporary removed
    assert _train("ae", out, 6, "--resume") == 0
    assert _train("ae", tmp_path / "straight", 6) == 0
    _assert_same_checkpoint(ckpt, tmp_path / "straight" / "checkpoint")


_KILL_LOOP = r"""
import sys, numpy as np
from flax_arch.training import checkpoint
print("ready", flush=True)
for n in range(1, 10**6):
    tree = {"a": np.full((64, 256), n, np.float32), "b": {"c": np.full(7, n, np.int32)}}
    checkpoint.save(sys.argv[1], tree, step=n, config={"n": n})
"""


def test_sigkill_during_saves_never_tears_the_checkpoint(tmp_path):
    """A process saving in a loop is SIGKILLed at an arbitrary moment: what is left
    loads, and its arrays and metadata all belong to the same save."""
    import signal
    import subprocess
    import sys
    import time

    from flax_arch.training import checkpoint
    ckpt = tmp_path / "ck"
    proc = subprocess.Popen([sys.executable, "-c", _KILL_LOOP, str(ckpt)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.time() + 60
        while checkpoint.latest(ckpt) is None or len(_saves(ckpt)) < 2:
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.05)
        time.sleep(0.37)  # somewhere in a later save
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    arrays, info = checkpoint.load(ckpt)
    n = info["step"]
    assert n >= 1 and info["config"] == {"n": n}
    assert np.all(arrays["a"] == n) and np.all(arrays["b/c"] == n)
    template = {"a": np.zeros((64, 256), np.float32), "b": {"c": np.zeros(7, np.int32)}}
    tree, _ = checkpoint.restore(ckpt, template)
    assert np.all(np.asarray(tree["b"]["c"]) == n)


def test_atomic_write_failure_mid_write(tmp_path, monkeypatch):
    from flax_arch.training import checkpoint
    target = tmp_path / "f.bin"
    checkpoint.atomic_write_bytes(target, b"old")

    class Boom(Exception):
        pass

    real_fdopen = os.fdopen

    def failing_fdopen(fd, mode):
        f = real_fdopen(fd, mode)
        real_write = f.write

        def write(data):
            real_write(data[: len(data) // 2])  # half the bytes reach the temp file
            raise Boom
        f.write = write
        return f

    monkeypatch.setattr(checkpoint.os, "fdopen", failing_fdopen)
    with pytest.raises(Boom):
        checkpoint.atomic_write_bytes(target, b"new contents")
    monkeypatch.undo()
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]


_AE_CONFIG = {"model": "ae", "batch_size": 8, "lr": 1e-3, "beta1": 0.9, "optimizer": "adam",
              "momentum": 0.9, "seed": 0, "dataset_size": 48}


def test_train_guards(tmp_path, capsys):
    """No silent overwrite, no resume without a checkpoint, conflicting options refused."""
    _needs_train_extra()
    from flax_arch.cli import main
    from flax_arch.training import checkpoint
    out = tmp_path / "r"
    assert main(["train", "ae", "--out", str(out), "--resume", "--quiet"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    checkpoint.save(out / "checkpoint", {"x": np.zeros(2, np.float32)}, step=1,
                    config=_AE_CONFIG, rng=np.zeros(2, np.uint32))
    assert main(["train", "ae", "--out", str(out), "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "ae", "--out", str(out), "--resume", "--lr", "0.5",
                 "--quiet"]) == 2
    assert "--lr 0.5 (the checkpoint has 0.001)" in capsys.readouterr().err
    assert main(["train", "vae", "--out", str(out), "--resume", "--quiet"]) == 2
    assert "for 'ae'" in capsys.readouterr().err
    info = checkpoint.read_info(out / "checkpoint")
    assert info["config"]["lr"] == 1e-3 and info["step"] == 1


def test_orbax_round_trip_without_warnings(tmp_path, caplog):
    """save → restore gives every leaf back bit for bit with its dtype, typed PRNG keys
    re-wrapped with their implementation; a second save replaces the first; orbax logs no
    warning on the way (its log goes through absl → Python logging)."""
    import logging

    from flax_arch.training import checkpoint
    caplog.set_level(logging.WARNING)
    rng = np.random.default_rng(0)
    tree = {"w": jnp.asarray(rng.standard_normal((3, 5)), jnp.float32),
            "d": {"x64": jnp.asarray(rng.standard_normal(4)),  # float64 (x64 is on)
                  "n": jnp.asarray(7, jnp.int32)},
            "key": jax.random.key(3, impl="rbg"),
            "raw": jax.random.PRNGKey(5),
            "opt": optax.adam(1e-3).init({"w": jnp.ones((3, 5), jnp.float32)})}
    first = checkpoint.save(tmp_path / "ck", tree, step=9, config={"lr": 0.1},
                            rng=jax.random.key(11), models={"m": {"arch": "mlp",
                                                                  "kwargs": {"num_inputs": 3}}})
    assert os.path.basename(first) == "save_000001"
    template = jax.tree.map(lambda a: a, tree)
    template["w"] = jnp.zeros((3, 5), jnp.float32)
    got, info = checkpoint.restore(tmp_path / "ck", template)
    want_leaves = jax.tree_util.tree_leaves_with_path(tree)
    got_leaves = jax.tree_util.tree_leaves_with_path(got)
    assert [p for p, _ in want_leaves] == [p for p, _ in got_leaves]
    for (path, a), (_, b) in zip(want_leaves, got_leaves):
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            assert jax.random.key_impl(a) == jax.random.key_impl(b), path
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        assert a.dtype == b.dtype and np.asarray(a).tobytes() == np.asarray(b).tobytes(), path
    assert np.asarray(template["w"]).max() == 0  # the template is not modified
    assert info["step"] == 9 and info["config"] == {"lr": 0.1}
    assert info["models"] == {"m": {"arch": "mlp", "kwargs": {"num_inputs": 3}}}
    assert np.array_equal(jax.random.key_data(info["rng"]),
                          jax.random.key_data(jax.random.key(11)))
    checkpoint.save(tmp_path / "ck", tree, step=10)
    assert _saves(tmp_path / "ck") == ["save_000002"]
    assert checkpoint.read_info(tmp_path / "ck")["step"] == 10
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not noisy, [r.getMessage() for r in noisy]


def test_mismatching_checkpoint_lists_everything_and_changes_nothing(tmp_path, capsys):
    """A checkpoint with a missing, an unexpected, a misshapen and a wrong-dtype array:
    one CheckpointError (a StateDictError) lists all four, and the run is untouched."""
    _needs_train_extra()
    from flax_arch.interop import StateDictError
    from flax_arch.training import checkpoint, cli
    cfg = {k: v for k, v in _AE_CONFIG.items() if k != "model"}
    r = cli._Run("ae", cfg)
    arrays = checkpoint.flatten(r.tree())
    del arrays["state/params/model/decoder/4/bias"]                       # missing
    arrays["state/params/model/extra"] = np.zeros(3, np.float32)          # unexpected
    arrays["state/params/model/encoder/0/kernel"] = np.zeros((784, 7), np.float32)  # shape
    arrays["state/step"] = np.asarray(0, np.int64)                         # dtype
    out = tmp_path / "run"
    checkpoint.save(out / "checkpoint", arrays, step=0, config={"model": "ae", **cfg},
                    rng=np.zeros(2, np.uint32))
    before = r.current
    with pytest.raises(checkpoint.CheckpointError) as e:
        r.restore(out / "checkpoint")
    assert isinstance(e.value, StateDictError) and isinstance(e.value, ValueError)
    assert e.value.missing == ["state/params/model/decoder/4/bias"]
    assert e.value.unexpected == ["state/params/model/extra"]
    assert ("state/params/model/encoder/0/kernel", (784, 400), (784, 7)) in e.value.mismatched
    assert ("state/step", "int32", "int64") in e.value.mismatched
    assert r.current is before
    assert _train("ae", out, 2, "--resume") == 2
    err = capsys.readouterr().err
    for needle in ("missing keys (1): state/params/model/decoder/4/bias",
                   "unexpected keys (1): state/params/model/extra",
                   "shape mismatch for state/params/model/encoder/0/kernel",
                   "dtype mismatch for state/step: expected int32, got int64"):
        assert needle in err, needle


def test_legacy_safetensors_checkpoint_resumes_and_converts(tmp_path):
    """A ``checkpoint.safetensors`` in the layout earlier versions wrote (written here by
    hand) still resumes on the same trajectory, and converts to torch."""
    _needs_train_extra()
    from safetensors.numpy import save_file

    from flax_arch.convert import load_flax_checkpoint
    from flax_arch.training import checkpoint
    assert _train("vae", tmp_path / "straight", 4) == 0
    assert _train("vae", tmp_path / "new", 2) == 0
    arrays, info = _load(tmp_path / "new" / "checkpoint")
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    rng = np.asarray(info["rng"])
    save_file({k: np.ascontiguousarray(v) if v.ndim else v for k, v in arrays.items()},
              str(legacy / "checkpoint.safetensors"),
              metadata={"format": "flax-arch/train-checkpoint/1", "step": "2",
                        "config": json.dumps(info["config"], sort_keys=True),
                        "rng": json.dumps({"key_data": rng.tolist(), "dtype": str(rng.dtype),
                                           "typed": False})})
    legacy_info = checkpoint.read_info(legacy / "checkpoint.safetensors")
    assert legacy_info["models"] == info["models"] == {"model": {"arch": "vae",
                                                                  "kwargs": {}}}
    vae, arch, kwargs = load_flax_checkpoint(legacy / "checkpoint.safetensors")
    fresh, _, _ = load_flax_checkpoint(tmp_path / "new" / "checkpoint")
    assert (arch, kwargs) == ("vae", {})
    a, b = to_torch_state_dict(vae), to_torch_state_dict(fresh)
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)
    assert _train("vae", legacy, 4, "--resume") == 0
    _assert_same_checkpoint(legacy / "checkpoint", tmp_path / "straight" / "checkpoint")
