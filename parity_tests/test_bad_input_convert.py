"""Bad input to the converter never gives a silent wrong result (issue 12, items 4 and 5).

* ``load_torch_state_dict`` loads every float dtype torch has: float16, bfloat16, float32
  and float64 keep their dtype; the float8 types are cast to the variable's dtype, the
  values torch's own ``load_state_dict`` gives. Complex weights are refused by key.
* Integer buffers keep their full value, or are refused by key.
* Non-tensor values, non-string keys and a state_dict that is not a mapping get an error
  naming the key or the argument, and a failed load leaves the model unchanged — also
  for the bad state_dicts a hypothesis strategy generates.
* ``flax-arch convert`` answers every user error with one message on stderr naming the
  file and what is wrong, exit status 2, no traceback and no output file.
"""

from __future__ import annotations

import json
import sys

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flax_arch.nn as fnn
from flax_arch.interop import (StateDictError, load_torch_state_dict, numpy_to_tensor,
                               tensor_to_numpy, to_torch_state_dict)

pytest.importorskip("safetensors")

from flax_arch.cli import main  # noqa: E402
import torch_ref.dcgan as t_dcgan  # noqa: E402
import torch_ref.perceptrons as t_mlp  # noqa: E402

FLOAT8 = [torch.float8_e4m3fn, torch.float8_e5m2, torch.float8_e4m3fnuz,
          torch.float8_e5m2fnuz, torch.float8_e8m0fnu]
MLP_KW = {"num_inputs": 10, "hidden_size": 16, "num_outputs": 3}


def _models():
    """A small Flax model and its torch twin: Linear, BatchNorm1d (with the integer
    num_batches_tracked buffer), Linear."""
    torch.manual_seed(0)
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                            torch.nn.Linear(4, 2))
    f = fnn.Sequential(fnn.Linear(3, 4, rngs=nnx.Rngs(0)), fnn.BatchNorm1d(4),
                       fnn.Linear(4, 2, rngs=nnx.Rngs(0)))
    return f, t


def _snapshot(module) -> dict:
    """Every variable of ``nnx.state(module)``: a copy of its value, with its dtype."""
    return {path: np.array(v.get_value()) for path, v in nnx.to_flat_state(nnx.state(module))}


def _assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k


def _bits(t):
    """The tensor's bit pattern (NaN == NaN, -0 != 0)."""
    return t.view({1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[
        t.element_size()])


# ------------------------------------------------------------------------ float dtypes


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32,
                                   torch.float64, *FLOAT8], ids=str)
def test_every_torch_float_dtype_loads(dtype):
    """float16/bfloat16/float32/float64 keep their dtype, bit for bit; float8 is cast to
    the variable's dtype (float32), as torch's ``load_state_dict`` casts it."""
    f, t = _models()
    src = {k: (v * 3).to(dtype) if v.is_floating_point() else v
           for k, v in t.state_dict().items()}
    load_torch_state_dict(f, src)
    t.load_state_dict(src)  # torch: param.copy_(input), into its float32 parameters
    back = to_torch_state_dict(f)
    for k, v in src.items():
        got = numpy_to_tensor(back[k])
        if not v.is_floating_point():
            assert torch.equal(got.long(), v), k
        elif dtype in FLOAT8:  # the values torch loads, in the model's dtype
            assert got.dtype == torch.float32 and torch.equal(got, t.state_dict()[k]), k
        else:  # the checkpoint's own dtype and bits
            assert got.dtype == dtype and torch.equal(_bits(got), _bits(v)), k
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    if dtype in FLOAT8:  # the loaded model computes what torch's loaded model computes
        t.eval(), f.eval()
        want = t(torch.from_numpy(x)).detach().numpy()
        assert np.allclose(np.asarray(f(jnp.asarray(x))), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, *FLOAT8], ids=str)
def test_every_bit_pattern_crosses_unchanged(dtype):
    """tensor ↔ numpy through the bit pattern: every value of the type (NaN included)
    keeps its value and its bits both ways."""
    if dtype.itemsize == 1:
        t = torch.arange(256, dtype=torch.int32).to(torch.uint8).view(dtype)
    else:
        t = torch.arange(-2 ** 15, 2 ** 15, dtype=torch.int32).to(torch.int16).view(dtype)
    a = tensor_to_numpy(t)
    assert a.dtype == np.dtype(getattr(ml_dtypes, str(dtype).removeprefix("torch.")))
    assert np.array_equal(a.astype(np.float32), t.float().numpy(), equal_nan=True)
    back = numpy_to_tensor(a)
    assert back.dtype == dtype and torch.equal(_bits(back), _bits(t))
    assert numpy_to_tensor(a[3]).shape == ()  # 0-d stays 0-d


def test_float8_model_exports_to_torch_float8():
    """A model holding float8 variables exports float8 tensors with the same bits."""
    f = fnn.Linear(3, 2, rngs=nnx.Rngs(0))
    k = np.asarray(f.kernel.get_value()).astype(ml_dtypes.float8_e4m3fn)
    f.kernel.set_value(jnp.asarray(k))
    w = numpy_to_tensor(to_torch_state_dict(f)["weight"])
    assert w.dtype == torch.float8_e4m3fn
    assert torch.equal(_bits(w), _bits(numpy_to_tensor(k.T)))


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")
@pytest.mark.parametrize("dtype", [torch.complex32, torch.complex64, torch.complex128],
                         ids=str)
def test_complex_weights_are_refused_by_key(dtype):
    f, t = _models()
    before = _snapshot(f)
    sd = t.state_dict()
    sd["2.weight"] = sd["2.weight"].to(dtype)
    with pytest.raises(StateDictError, match=r"2\.weight") as e:
        load_torch_state_dict(f, sd)
    assert "complex" in str(e.value)
    _assert_same(before, _snapshot(f))


def test_numpy_and_jax_values_load():
    """numpy and JAX arrays are accepted as values (torch itself takes tensors only)."""
    f, t = _models()
    sd = t.state_dict()
    mixed = {k: (v.numpy() if i % 2 else jnp.asarray(v.numpy())) for i, (k, v)
             in enumerate(sd.items())}
    load_torch_state_dict(f, mixed)
    for k, v in to_torch_state_dict(f).items():
        assert np.array_equal(v, sd[k].numpy()), k


# ------------------------------------------------------------------------ integer buffers


@pytest.mark.parametrize("value", [0, 7, 2 ** 31 - 1, -3, 5.0])
def test_integer_buffer_keeps_its_value(value):
    f, t = _models()
    sd = t.state_dict()
    sd["1.num_batches_tracked"] = torch.tensor(value)
    load_torch_state_dict(f, sd)
    got = to_torch_state_dict(f)["1.num_batches_tracked"]
    assert np.issubdtype(got.dtype, np.integer) and int(got) == value


@pytest.mark.parametrize("value", [2 ** 40, -2 ** 40, 2.5, float("inf")])
def test_integer_buffer_that_does_not_fit_is_named(value):
    f, t = _models()
    before = _snapshot(f)
    sd = t.state_dict()
    sd["1.num_batches_tracked"] = torch.tensor(value)
    dtype = np.dtype(before[("1", "num_batches_tracked")].dtype)
    if isinstance(value, int) and np.iinfo(dtype).min <= value <= np.iinfo(dtype).max:
        load_torch_state_dict(f, sd)  # an int64 variable holds it: kept exactly
        assert int(to_torch_state_dict(f)["1.num_batches_tracked"]) == value
        return
    with pytest.raises(StateDictError, match=r"1\.num_batches_tracked"):
        load_torch_state_dict(f, sd)
    _assert_same(before, _snapshot(f))


# ------------------------------------------------------------ non-tensors, keys, mappings


@pytest.mark.parametrize("value", [1.5, [1.0, 2.0], "w", None, {"a": 1}])
def test_non_tensor_value_is_named_not_a_shape_mismatch(value):
    f, t = _models()
    before = _snapshot(f)
    sd = t.state_dict()
    sd["0.bias"] = value
    with pytest.raises(StateDictError, match=r"0\.bias: expected a tensor or array, got "
                                             + type(value).__name__) as e:
        load_torch_state_dict(f, sd)
    assert "shape mismatch" not in str(e.value)
    _assert_same(before, _snapshot(f))


@pytest.mark.parametrize("key", [3, None, ("0", "bias"), b"0.bias", 1.5])
@pytest.mark.parametrize("strict", [True, False])
def test_non_string_key_is_named(key, strict):
    f, t = _models()
    before = _snapshot(f)
    sd = {**t.state_dict(), key: torch.zeros(4)}
    with pytest.raises(StateDictError, match="is not a string") as e:
        load_torch_state_dict(f, sd, strict=strict)
    assert f"key {key!r} ({type(key).__name__})" in str(e.value)
    _assert_same(before, _snapshot(f))


@pytest.mark.parametrize("bad", [None, [("0.bias", torch.zeros(4))], torch.zeros(3), "sd",
                                 torch.nn.Linear(3, 4)], ids=lambda b: type(b).__name__)
def test_state_dict_that_is_not_a_mapping(bad):
    f, _ = _models()
    before = _snapshot(f)
    with pytest.raises(TypeError, match=f"state_dict must be a mapping of names to arrays, "
                                        f"got {type(bad).__name__}"):
        load_torch_state_dict(f, bad)
    _assert_same(before, _snapshot(f))


def test_module_passed_as_state_dict_hints_at_state_dict():
    f, t = _models()
    with pytest.raises(TypeError, match=r"pass its \.state_dict\(\)"):
        load_torch_state_dict(f, t)


# ------------------------------------------------------------ generated bad state_dicts

_KEYS = list(_models()[1].state_dict())
_non_string_keys = st.one_of(st.integers(-5, 50), st.none(), st.floats(allow_nan=False),
                             st.binary(max_size=4), st.tuples(st.integers(0, 3)))
_non_tensors = st.one_of(st.floats(allow_nan=False), st.integers(-3, 3), st.text(max_size=3),
                         st.none(), st.lists(st.floats(-1, 1), max_size=4))
_bad_float_dtypes = st.sampled_from([torch.int32, torch.int64, torch.bool, torch.uint8,
                                     torch.complex64])


@st.composite
def _bad_state_dicts(draw):
    """``(state_dict, must_name)``: a good state_dict of :func:`_models` with 1-3 defects
    on distinct keys, and the keys (or reprs of non-string keys) the error must name; or
    ``(not_a_mapping, None)``."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(st.none(), st.lists(st.integers(), max_size=2),
                              st.just(torch.zeros(2)), st.text(max_size=3))), None
    sd = _models()[1].state_dict()
    keys = draw(st.permutations(_KEYS))
    kinds = draw(st.lists(st.sampled_from(["key", "value", "shape", "dtype", "missing",
                                           "unexpected"]), min_size=1, max_size=3))
    names = []
    for kind, key in zip(kinds, keys):
        if kind == "key":
            sd[draw(_non_string_keys)] = torch.zeros(1)  # named below (0 == 0.0 == -0.0)
        elif kind == "value":
            sd[key] = draw(_non_tensors)
        elif kind == "shape":
            shape = draw(st.lists(st.integers(0, 5), max_size=3).filter(
                lambda s: tuple(s) != tuple(sd[key].shape)))
            sd[key] = torch.zeros(shape, dtype=sd[key].dtype)
        elif kind == "dtype":
            if key.endswith("num_batches_tracked"):  # a count: not an integer value
                sd[key] = torch.tensor(draw(st.sampled_from([0.5, float("nan"), 2.0 ** 70])))
            else:
                sd[key] = sd[key].to(draw(_bad_float_dtypes))
        elif kind == "missing":
            del sd[key]
        else:
            key = f"extra{draw(st.integers(0, 9))}.{key}"
            sd[key] = torch.zeros(2)
        if kind != "key":
            names.append(key)
    return sd, names + [f"key {k!r}" for k in sd if not isinstance(k, str)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_bad_state_dicts())
def test_generated_bad_state_dicts_are_refused_by_name_and_change_nothing(case):
    sd, names = case
    f, _ = _models()
    before = _snapshot(f)
    if names is None:
        with pytest.raises(TypeError, match="state_dict must be a mapping"):
            load_torch_state_dict(f, sd)
    else:
        with pytest.raises(StateDictError) as e:
            load_torch_state_dict(f, sd)
        for name in names:
            assert name in str(e.value), (name, str(e.value))
    _assert_same(before, _snapshot(f))


# ------------------------------------------------------------------------ flax-arch convert


def _convert(capsys, *args):
    """``flax-arch convert`` in-process: (exit status, stderr)."""
    rc = main(["convert", *map(str, args)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def _mlp_args(src, out):
    return [src, out, "--arch", "mlp", "--kwargs", json.dumps(MLP_KW)]


@pytest.fixture
def mlp_pt(tmp_path):
    torch.manual_seed(0)
    tmod = t_mlp.MLP(**MLP_KW)
    torch.save(tmod.state_dict(), tmp_path / "m.pt")
    from safetensors.torch import save_file
    save_file(tmod.state_dict(), str(tmp_path / "m_torch.safetensors"))
    return tmod, tmp_path


@pytest.mark.parametrize("ext", [".pt", ".safetensors"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, *FLOAT8], ids=str)
def test_convert_low_precision_checkpoints(tmp_path, capsys, ext, dtype):
    """A bfloat16 or float8 checkpoint converts: bfloat16 kept, float8 cast to float32 —
    what torch's load_state_dict puts in a float32 model."""
    from safetensors.torch import save_file
    torch.manual_seed(0)
    src_mod = t_mlp.MLP(**MLP_KW)
    sd = {k: v.to(dtype) for k, v in src_mod.state_dict().items()}
    src = tmp_path / f"m{ext}"
    torch.save(sd, src) if ext == ".pt" else save_file(sd, str(src))
    rc, err = _convert(capsys, *_mlp_args(src, tmp_path / "f.safetensors"))
    assert rc == 0, err
    rc, err = _convert(capsys, tmp_path / "f.safetensors", tmp_path / "back.pt")
    assert rc == 0, err
    back = torch.load(tmp_path / "back.pt", weights_only=True)
    want = t_mlp.MLP(**MLP_KW).to(torch.bfloat16 if dtype == torch.bfloat16 else torch.float32)
    want.load_state_dict(sd)
    for k, v in want.state_dict().items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v), k


@pytest.mark.parametrize("name,data", [
    ("truncated.pt", lambda good: good[: len(good) // 2]),
    ("empty.pt", lambda good: b""),
    ("garbage.pt", lambda good: b"not a checkpoint at all\n" * 8),
    ("truncated.safetensors", lambda good: good[: len(good) // 2]),
    ("empty.safetensors", lambda good: b""),
    ("garbage.safetensors", lambda good: b"\x10\0\0\0\0\0\0\0{not json}......"),
])
def test_convert_corrupt_input(mlp_pt, capsys, name, data):
    _, tmp = mlp_pt
    good = (tmp / ("m.pt" if name.endswith(".pt") else "m_torch.safetensors")).read_bytes()
    (tmp / name).write_bytes(data(good))
    out = tmp / "out.safetensors"
    rc, err = _convert(capsys, *_mlp_args(tmp / name, out))
    assert rc == 2 and err.startswith("flax-arch convert: error: ")
    assert name in err and ("cannot read" in err or "not a Flax checkpoint" in err), err
    assert not out.exists()


def test_convert_missing_input(tmp_path, capsys):
    rc, err = _convert(capsys, *_mlp_args(tmp_path / "nope.pt", tmp_path / "o.safetensors"))
    assert rc == 2 and "nope.pt: no such file" in err


def test_convert_directory_as_output_even_with_force(mlp_pt, capsys):
    _, tmp = mlp_pt
    (tmp / "outdir").mkdir()
    rc, err = _convert(capsys, *_mlp_args(tmp / "m.pt", tmp / "outdir"), "--force")
    assert rc == 2 and "outdir is a directory" in err
    assert _convert(capsys, *_mlp_args(tmp / "m.pt", tmp / "f.safetensors"))[0] == 0
    rc, err = _convert(capsys, tmp / "f.safetensors", tmp / "outdir", "--force")
    assert rc == 2 and "outdir is a directory" in err
    assert list((tmp / "outdir").iterdir()) == []


def test_convert_output_directory_must_exist(mlp_pt, capsys):
    """A missing parent directory (or a file in its place) is an error, as for cp and
    torch.save: a typo in the path creates nothing."""
    _, tmp = mlp_pt
    (tmp / "afile").write_text("x")
    for out in (tmp / "new" / "f.safetensors", tmp / "afile" / "f.safetensors"):
        rc, err = _convert(capsys, *_mlp_args(tmp / "m.pt", out))
        assert rc == 2 and f"its directory {out.parent} does not exist" in err
    assert not (tmp / "new").exists() and (tmp / "afile").read_text() == "x"
    assert _convert(capsys, *_mlp_args(tmp / "m.pt", tmp / "f.safetensors"))[0] == 0
    rc, err = _convert(capsys, tmp / "f.safetensors", tmp / "new" / "back.pt")
    assert rc == 2 and "does not exist" in err


@pytest.mark.parametrize("direction", ["to-flax", "to-torch"])
def test_convert_without_safetensors(mlp_pt, capsys, monkeypatch, direction):
    _, tmp = mlp_pt
    assert _convert(capsys, *_mlp_args(tmp / "m.pt", tmp / "f.safetensors"))[0] == 0
    for mod in ("safetensors", "safetensors.numpy", "safetensors.torch"):
        monkeypatch.setitem(sys.modules, mod, None)  # import fails as if not installed
    args = _mlp_args(tmp / "m.pt", tmp / "g.safetensors") if direction == "to-flax" \
        else [tmp / "f.safetensors", tmp / "g.pt"]
    rc, err = _convert(capsys, *args)
    assert rc == 2 and "safetensors" in err and "pip install" in err
    assert not (tmp / "g.safetensors").exists() and not (tmp / "g.pt").exists()


def test_convert_refuses_a_malicious_pickle_even_when_torch_is_told_not_to(
        tmp_path, capsys, monkeypatch):
    """TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 only changes torch.load's default; convert passes
    weights_only=True explicitly, so nothing runs."""
    from parity_tests.test_convert import _Evil
    marker = tmp_path / "pwned.txt"
    torch.save({"0.weight": torch.zeros(16, 10), "payload": _Evil(marker)}, tmp_path / "e.pt")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    rc, err = _convert(capsys, *_mlp_args(tmp_path / "e.pt", tmp_path / "o.safetensors"))
    assert rc == 2 and "e.pt" in err and "contains code or unsupported globals" in err
    assert not marker.exists() and not (tmp_path / "o.safetensors").exists()


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")
@pytest.mark.parametrize("obj,needle", [
    (lambda: {0: torch.zeros(16, 10)}, "key 0 (int) is not a string"),
    (lambda: {"0.weight": torch.zeros(16, 10), "epoch": 3},
     "entry 'epoch' holds int, not a tensor"),
    (lambda: {"0.weight": torch.zeros(16, 10, dtype=torch.complex32)},
     "'0.weight': a torch.complex32 tensor has no numpy counterpart"),
    (lambda: {"0.weight": torch.zeros(16, 10, dtype=torch.complex64)},
     "dtype mismatch for 0.weight: expected floating point, got complex64"),
    (lambda: [torch.zeros(3)], "does not hold a state_dict"),
])
def test_convert_bad_state_dict_contents_are_named(tmp_path, capsys, obj, needle):
    torch.save(obj(), tmp_path / "bad.pt")
    rc, err = _convert(capsys, *_mlp_args(tmp_path / "bad.pt", tmp_path / "o.safetensors"))
    assert rc == 2 and "bad.pt" in err and needle in err, err
    assert not (tmp_path / "o.safetensors").exists()


def test_convert_num_batches_tracked_keeps_its_value_or_is_named(tmp_path, capsys):
    tD = t_dcgan.DCGANDiscriminator(3, ndf=2)
    kw = ["--arch", "dcgan-d", "--kwargs", json.dumps({"ndf": 2})]
    for value in (2 ** 31 - 1, 2 ** 40):
        sd = tD.state_dict()
        sd["main.3.num_batches_tracked"] = torch.tensor(value)
        torch.save(sd, tmp_path / "d.pt")
        out = tmp_path / f"d{value}.safetensors"
        rc, err = _convert(capsys, tmp_path / "d.pt", out, *kw)
        if rc == 0:  # kept exactly, both ways
            assert _convert(capsys, out, tmp_path / "back.pt")[0] == 0
            back = torch.load(tmp_path / "back.pt", weights_only=True)
            assert int(back["main.3.num_batches_tracked"]) == value
        else:
            assert value > 2 ** 31 - 1 and rc == 2
            assert "main.3.num_batches_tracked" in err and "does not fit" in err
            assert not out.exists()


@pytest.mark.parametrize("kwargs", ["{not json", "[1, 2]"])
def test_convert_tampered_flax_metadata(mlp_pt, capsys, kwargs):
    from safetensors.numpy import load_file, save_file
    from flax_arch.training.checkpoint import read_metadata
    _, tmp = mlp_pt
    assert _convert(capsys, *_mlp_args(tmp / "m.pt", tmp / "f.safetensors"))[0] == 0
    meta = {**read_metadata(tmp / "f.safetensors"), "kwargs": kwargs}
    save_file(load_file(tmp / "f.safetensors"), str(tmp / "t.safetensors"), metadata=meta)
    rc, err = _convert(capsys, tmp / "t.safetensors", tmp / "back.pt")
    assert rc == 2 and "t.safetensors: metadata 'kwargs'" in err
    assert not (tmp / "back.pt").exists()
