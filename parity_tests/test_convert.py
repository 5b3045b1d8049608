"""``flax-arch convert``: torch checkpoints → Flax checkpoints → torch, for named
architectures. The converted Flax model must compute what the torch model computes; the
round trip must give back the torch state_dict exactly; unsafe pickles, mismatched
checkpoints and existing outputs are refused with messages that say why."""

from __future__ import annotations

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest
import torch

pytest.importorskip("safetensors")

from flax_arch.cli import main  # noqa: E402
from flax_arch.convert import (ConvertError, FLAX_FORMAT, load_flax_checkpoint,  # noqa: E402
                               load_torch_checkpoint, torch_to_flax)
from flax_arch.interop import StateDictError, to_torch_state_dict  # noqa: E402
from flax_arch.training.checkpoint import read_metadata  # noqa: E402
import torch_ref.dcgan as t_dcgan  # noqa: E402
import torch_ref.perceptrons as t_mlp  # noqa: E402

MLP_KW = {"num_inputs": 10, "hidden_size": 16, "num_outputs": 3}


def _convert(*args):
    return main(["convert", *map(str, args)])


class _Evil:
    """Unpickling this runs ``os.system`` — what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


def _same_state_dict(a, b):
    assert set(a) == set(b)
    for k in a:
        x = a[k].detach().numpy() if hasattr(a[k], "detach") else np.asarray(a[k])
        y = b[k].detach().numpy() if hasattr(b[k], "detach") else np.asarray(b[k])
        assert x.shape == y.shape and np.array_equal(x, y), k


@pytest.mark.parametrize("torch_ext", [".pt", ".safetensors"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mlp_round_trip_and_forward(tmp_path, torch_ext, dtype):
    torch.manual_seed(0)
    tmod = t_mlp.MLP(**MLP_KW).to(dtype)
    src = tmp_path / f"mlp{torch_ext}"
    if torch_ext == ".pt":
        torch.save(tmod.state_dict(), src)
    else:
        from safetensors.torch import save_file
        save_file(tmod.state_dict(), str(src))
    flax_ckpt = tmp_path / "mlp.safetensors" if torch_ext == ".pt" else tmp_path / "f.safetensors"
    assert _convert(src, flax_ckpt, "--arch", "mlp", "--kwargs", json.dumps(MLP_KW)) == 0
    meta = read_metadata(flax_ckpt)
    assert meta["format"] == FLAX_FORMAT and meta["arch"] == "mlp"
    assert json.loads(meta["kwargs"]) == MLP_KW

    # the Flax checkpoint rebuilds a model that computes what torch computes
    fmod, arch, kwargs = load_flax_checkpoint(flax_ckpt)
    assert (arch, kwargs) == ("mlp", MLP_KW)
    x = np.random.default_rng(0).standard_normal((4, 10))
    want = tmod(torch.as_tensor(x, dtype=dtype)).detach().numpy()
    got = np.asarray(fmod(jnp.asarray(x, dtype=want.dtype)))
    assert got.dtype == want.dtype
    assert np.max(np.abs(got - want)) <= (1e-12 if dtype == torch.float64 else 1e-5)

    # ... and converts back to the same state_dict, bit for bit, in either torch format
    for ext in (".pt", ".safetensors"):
        back = tmp_path / f"back{ext}"
        assert _convert(flax_ckpt, back) == 0
        _same_state_dict(load_torch_checkpoint(back), tmod.state_dict())


def test_dcgan_buffers_round_trip(tmp_path):
    """BatchNorm buffers (running stats, num_batches_tracked) and conv layouts survive."""
    torch.manual_seed(0)
    tD = t_dcgan.DCGANDiscriminator(3, ndf=2)
    with torch.no_grad():
        tD(torch.randn(3, 3, 64, 64))  # train mode: non-trivial running statistics
    torch.save(tD.state_dict(), tmp_path / "d.pth")
    kw = json.dumps({"ndf": 2})
    assert _convert(tmp_path / "d.pth", tmp_path / "d.safetensors", "--arch", "dcgan-d",
                    "--kwargs", kw) == 0
    assert _convert(tmp_path / "d.safetensors", tmp_path / "back.pt") == 0
    back = load_torch_checkpoint(tmp_path / "back.pt")
    want = {k: v.numpy() for k, v in tD.state_dict().items()}
    for k in want:  # num_batches_tracked is int32 on the Flax side: compare values
        assert np.array_equal(back[k], want[k]), k
    assert int(back["main.3.num_batches_tracked"]) == 1
    tD2 = t_dcgan.DCGANDiscriminator(3, ndf=2)
    tD2.load_state_dict({k: torch.as_tensor(v) for k, v in back.items()})  # torch accepts it


def test_malicious_pickle_is_refused(tmp_path, capsys):
    marker = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.pt"
    torch.save({"0.weight": torch.zeros(16, 10), "payload": _Evil(marker)}, evil)
    out = tmp_path / "out.safetensors"
    assert _convert(evil, out, "--arch", "mlp", "--kwargs", json.dumps(MLP_KW)) == 2
    err = capsys.readouterr().err
    assert not marker.exists(), "the pickle's code ran"
    assert not out.exists()
    assert "contains code or unsupported globals" in err
    assert "weights_only loading refused it" in err
    assert "system" in err  # names the offending global
    with pytest.raises(ConvertError, match="weights_only"):
        load_torch_checkpoint(evil)
    assert not marker.exists()


def test_mismatches_are_all_listed(tmp_path, capsys):
    torch.manual_seed(0)
    sd = t_mlp.MLP(**MLP_KW).state_dict()
    del sd["2.bias"]                                   # missing
    sd["9.weight"] = torch.zeros(3)                    # unexpected
    sd["0.weight"] = torch.zeros(16, 11)               # wrong shape
    sd["4.bias"] = torch.zeros(4)                      # wrong shape
    torch.save(sd, tmp_path / "bad.pt")
    out = tmp_path / "out.safetensors"
    assert _convert(tmp_path / "bad.pt", out, "--arch", "mlp", "--kwargs",
                    json.dumps(MLP_KW)) == 2
    err = capsys.readouterr().err
    for needle in ("missing keys (1): 2.bias", "unexpected keys (1): 9.weight",
                   "shape mismatch for 0.weight", "(16, 11)", "shape mismatch for 4.bias"):
        assert needle in err, needle
    assert not out.exists()
    with pytest.raises(StateDictError) as e:
        torch_to_flax(load_torch_checkpoint(tmp_path / "bad.pt"), "mlp", MLP_KW)
    assert e.value.missing == ["2.bias"] and e.value.unexpected == ["9.weight"]
    assert {m[0] for m in e.value.mismatched} == {"0.weight", "4.bias"}

    # Flax → torch with other constructor arguments: every misfit listed, Flax paths
    torch.save(t_mlp.MLP(**MLP_KW).state_dict(), tmp_path / "good.pt")
    assert _convert(tmp_path / "good.pt", tmp_path / "good.safetensors", "--arch", "mlp",
                    "--kwargs", json.dumps(MLP_KW)) == 0
    assert _convert(tmp_path / "good.safetensors", tmp_path / "x.pt", "--kwargs",
                    json.dumps({**MLP_KW, "hidden_size": 8})) == 2
    err = capsys.readouterr().err
    for needle in ("0/kernel", "2/kernel", "2/bias", "4/kernel", "0/bias"):
        assert f"shape mismatch for {needle}" in err, needle
    assert not (tmp_path / "x.pt").exists()


def test_existing_output_needs_force(tmp_path, capsys):
    torch.manual_seed(0)
    tmod = t_mlp.MLP(**MLP_KW)
    torch.save(tmod.state_dict(), tmp_path / "m.pt")
    out = tmp_path / "m.safetensors"
    out.write_bytes(b"precious")
    args = [tmp_path / "m.pt", out, "--arch", "mlp", "--kwargs", json.dumps(MLP_KW)]
    assert _convert(*args) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert _convert(*args, "--force") == 0
    assert read_metadata(out)["arch"] == "mlp"


def test_nested_and_unknown(tmp_path, capsys):
    torch.manual_seed(0)
    tmod = t_mlp.MLP(**MLP_KW)
    torch.save({"epoch": 3, "state_dict": tmod.state_dict()}, tmp_path / "nested.pt")
    _same_state_dict(load_torch_checkpoint(tmp_path / "nested.pt"), tmod.state_dict())
    assert _convert(tmp_path / "nested.pt", tmp_path / "o.safetensors", "--arch",
                    "no-such-net") == 2
    assert "unknown architecture 'no-such-net'" in capsys.readouterr().err
    assert _convert(tmp_path / "nested.pt", tmp_path / "o.safetensors") == 2
    assert "--arch is required" in capsys.readouterr().err
    assert _convert(tmp_path / "nested.pt", tmp_path / "o.safetensors", "--arch", "mlp",
                    "--to", "torch") == 2
    assert "converts to flax" in capsys.readouterr().err


def test_export_from_training_checkpoint(tmp_path, capsys):
    """One model of a ``flax-arch train`` checkpoint (here the DCGAN's G) → torch; the
    architecture and constructor arguments come from the checkpoint itself."""
    from flax_arch.training import checkpoint, cli
    cfg = {"batch_size": 4, "lr": 2e-4, "beta1": 0.5, "optimizer": "adam", "momentum": 0.9,
           "seed": 0, "dataset_size": 8, "ngf": 2, "ndf": 2, "nz": 4}
    run = cli._Run("dcgan", cfg)  # built and initialised, not trained (no compilation)
    run.save(tmp_path / "ckpt")
    models = checkpoint.read_info(tmp_path / "ckpt")["models"]
    assert models == {"G": {"arch": "dcgan-g", "kwargs": {"nc": 3, "nz": 4, "ngf": 2}},
                      "D": {"arch": "dcgan-d", "kwargs": {"nc": 3, "ndf": 2}}}
    assert _convert(tmp_path / "ckpt", tmp_path / "g.pt") == 2  # which model?
    assert "several models (G, D)" in capsys.readouterr().err
    assert _convert(tmp_path / "ckpt", tmp_path / "g.pt", "--model", "X") == 2
    assert "no model 'X'" in capsys.readouterr().err
    assert _convert(tmp_path / "ckpt", tmp_path / "g.pt", "--model", "G") == 0
    g = t_dcgan.DCGANGenerator(3, nz=4, ngf=2)
    sd = load_torch_checkpoint(tmp_path / "g.pt")
    g.load_state_dict({k: torch.as_tensor(v) for k, v in sd.items()})
    _same_state_dict(sd, to_torch_state_dict(run.trainer.module("G")))


def test_list_comes_from_the_registry(capsys):
    """``--list`` shows every registered architecture with its constructor signature;
    the registry names exactly the exported model classes (less the building blocks)."""
    import flax_arch.models as models
    assert _convert("--list") == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == list(models.ARCHITECTURES)
    assert "mlp                  flax_arch.models.perceptrons.MLP(num_inputs=100, " \
           "hidden_size=1024, num_outputs=20)" in out
    assert any(line.startswith("dcgan-d") and line.endswith("(nc=3, *, ndf=64)")
               for line in out)
    exported = {getattr(models, n) for n in models.__all__}
    assert exported == set(models.ARCHITECTURES.classes()) | set(models.PARTS)
    assert models.ARCHITECTURES["unet"].cls is models.UNet
    with pytest.raises(KeyError, match="unknown architecture 'nope'"):
        models.ARCHITECTURES["nope"]


def test_bfloat16_checkpoint_converts_both_ways_bit_for_bit(tmp_path):
    """A bfloat16 torch checkpoint converts to Flax and back (both torch formats) unchanged:
    tensors cross through their 16-bit pattern, never through numpy's missing bfloat16."""
    torch.manual_seed(0)
    tmod = t_mlp.MLP(**MLP_KW).to(torch.bfloat16)
    torch.save(tmod.state_dict(), tmp_path / "m.pt")
    flax_ckpt = tmp_path / "f.safetensors"
    assert _convert(tmp_path / "m.pt", flax_ckpt, "--arch", "mlp", "--kwargs",
                    json.dumps(MLP_KW)) == 0
    for ext in (".pt", ".safetensors"):
        back = tmp_path / f"back{ext}"
        assert _convert(flax_ckpt, back) == 0
        got = load_torch_checkpoint(back)
        for k, v in tmod.state_dict().items():
            g = got[k] if hasattr(got[k], "detach") else torch.from_numpy(
                np.asarray(got[k]).view(np.int16)).view(torch.bfloat16)
            assert g.dtype == torch.bfloat16 and torch.equal(g, v), k
