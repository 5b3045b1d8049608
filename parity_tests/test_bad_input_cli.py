"""Bad input to the command line never ends in a traceback (issue 12, item 5).

* Every user error gets a message on stderr naming the option, or the file and what is
  wrong with it, and exit status 2 (argparse's usage errors and the run-time ones alike;
  see :mod:`flax_arch.cli`).
* ``train --resume`` from an empty, truncated, garbage or foreign checkpoint, or one whose
  metadata was tampered with: each case is its own regression test, for the orbax
  directory and for the legacy safetensors file; hypothesis draws more of them.
* A write killed by a real SIGKILL leaves nothing that a later run trips over: the
  previous checkpoint is intact, the next run's ``latest()``/save/``--resume`` removes the
  temporaries, and a temporary whose writer is still alive is never touched.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flax_arch.cli import main
from flax_arch.training import checkpoint

# hypothesis imports libcst (a DeprecationWarning) only when it reports a failing example
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:
        pass

pytest.importorskip("safetensors")
pytest.importorskip("PIL")
from safetensors.numpy import save_file  # noqa: E402

fuzz = settings(max_examples=25, deadline=None, derandomize=True, database=None)
AE = ["--dataset-size", "48", "--batch-size", "8"]
QUIET = ["--quiet", "--grid", "8"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(capsys, *argv) -> tuple[int, str]:
    """``(exit status, stderr)`` of ``flax-arch ARGV`` run in this process."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # argparse
        rc = e.code
    return rc, capsys.readouterr().err


def _quiet_cli(*argv) -> tuple[int, str]:
    """The same without pytest's capsys (for hypothesis, which runs many examples)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:
            rc = e.code
    return rc, err.getvalue()


def _user_error(rc, err, *needles):
    assert rc == 2, err
    assert "Traceback" not in err, err
    for n in needles:
        assert str(n) in err, (n, err)


# ----------------------------------------------------------------------- option values


def test_parity_only_bad_regex(capsys):
    _user_error(*_cli(capsys, "parity", "--only", "("), "--only", "not a regular expression",
                "missing ), unterminated subpattern")


def test_bench_only_bad_regex(capsys):
    _user_error(*_cli(capsys, "bench", "--only", "mlp", "(", "--list"), "argument --only",
                "not a regular expression")


@pytest.mark.parametrize("argv", [
    ["--runs", "0"], ["--warmup", "-1"], ["--max-seconds", "nan"], ["--min-sample-ms", "-5"],
    ["--lr", "0"], ["--cpus", "0"], ["--torch-threads", "-2"], ["--repeat", "0"],
    ["--flop-budget", "x"], ["--seq-lens", "16", "0"], ["--sweep-dims", "2", "0", "4"],
    ["--json", "/no/such/dir/out.json"], ["--plot", "."],
], ids=lambda a: " ".join(a))
def test_bench_bad_option_values(capsys, argv):
    _user_error(*_cli(capsys, "bench", *argv, "--list"), f"argument {argv[0]}")


def test_bench_unknown_xla_preset(capsys):
    _user_error(*_cli(capsys, "bench", "--compare-xla-flags", "no_such_preset"),
                "unknown preset 'no_such_preset'")


def test_parity_json_into_missing_directory(capsys, tmp_path):
    _user_error(*_cli(capsys, "parity", "--json", tmp_path / "nope" / "r.json", "--list"),
                "argument --json", "does not exist")


@pytest.mark.parametrize("argv", [
    ["--steps", "-1"], ["--batch-size", "0"], ["--lr", "0"], ["--lr", "nan"],
    ["--lr", "inf"], ["--beta1", "1"], ["--momentum", "-0.5"], ["--seed", "-1"],
    ["--seed", "2.5"], ["--dataset-size", "0"], ["--ngf", "0"], ["--ndf", "-3"],
    ["--nz", "0"], ["--checkpoint-every", "-1"], ["--grid", "0"], ["--out", ""],
], ids=lambda a: " ".join(a))
def test_train_bad_option_values(capsys, tmp_path, argv):
    out = [] if argv[0] == "--out" else ["--out", tmp_path / "r"]
    _user_error(*_cli(capsys, "train", "dcgan", *out, *argv, *QUIET), f"argument {argv[0]}")
    assert not (tmp_path / "r").exists()  # nothing done


def test_train_batch_larger_than_dataset(capsys, tmp_path):
    _user_error(*_cli(capsys, "train", "ae", "--out", tmp_path / "r", "--batch-size", "64",
                      "--dataset-size", "8", *QUIET), "--batch-size 64 exceeds")


def test_train_out_is_a_file(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("mine")
    _user_error(*_cli(capsys, "train", "ae", "--out", f, *QUIET), "argument --out", f,
                "not a directory")
    assert f.read_text() == "mine"


def test_train_out_under_a_file(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("mine")
    _user_error(*_cli(capsys, "train", "ae", "--out", f / "run", *AE, *QUIET, "--steps", "1"),
                "--out", f / "run", "cannot create")


def test_train_checkpoint_path_is_a_file(capsys, tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "checkpoint").write_text("mine")
    _user_error(*_cli(capsys, "train", "ae", "--out", tmp_path / "r", *AE, *QUIET),
                tmp_path / "r" / "checkpoint", "not a directory")


# ------------------------------------------------------------------ corrupt checkpoints


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    """A finished 1-step AE run: ``OUT/checkpoint/save_000001``."""
    out = tmp_path_factory.mktemp("ae") / "run"
    assert main(["train", "ae", "--steps", "1", "--out", str(out), "--checkpoint-every", "0",
                 *AE, *QUIET]) == 0
    return out


@pytest.fixture(scope="module")
def legacy(ae_run):
    """``(arrays, metadata)`` of the AE run as a legacy ``checkpoint.safetensors``."""
    arrays, info = checkpoint.load(ae_run / "checkpoint")
    rng = np.asarray(info["rng"])
    meta = {"format": checkpoint.LEGACY_FORMAT, "step": str(info["step"]),
            "config": json.dumps(info["config"]),
            "rng": json.dumps({"key_data": rng.tolist(), "dtype": str(rng.dtype),
                               "typed": False})}
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}, meta


def _legacy_bytes(arrays, meta, tmp) -> bytes:
    path = os.path.join(tmp, "x.safetensors")
    save_file(arrays, path, metadata=meta)
    with open(path, "rb") as f:
        return f.read()


def _resume(capsys, out, *extra):
    return _cli(capsys, "train", "ae", "--out", out, "--resume", "--steps", "2", *QUIET,
                *extra)


def _legacy_case(case, arrays, meta, tmp):
    valid = _legacy_bytes(arrays, meta, tmp)
    edit = lambda **kw: _legacy_bytes(arrays, {**meta, **kw}, tmp)  # noqa: E731
    cfg = json.loads(meta["config"])
    return {
        "empty": lambda: b"",
        "garbage": lambda: b"\x89PNG\r\n\x1a\n this is not a checkpoint " * 3,
        "truncated": lambda: valid[: len(valid) // 2],
        "truncated-header": lambda: valid[:5],
        "foreign-file": lambda: _legacy_bytes({"weight": np.zeros(3, np.float32)},
                                              {"format": "pt"}, tmp),
        "foreign-arrays": lambda: _legacy_bytes({"state/w": np.zeros(3, np.float32)},
                                                meta, tmp),
        "step-not-int": lambda: edit(step="three"),
        "step-negative": lambda: edit(step="-1"),
        "config-not-json": lambda: edit(config="{lr: 1"),
        "config-without-lr": lambda: edit(config=json.dumps(
            {k: v for k, v in cfg.items() if k != "lr"})),
        "config-wrong-model": lambda: edit(config=json.dumps({**cfg, "model": "vae"})),
        "rng-garbage": lambda: edit(rng='{"key_data": "x"}'),
    }[case]()


LEGACY_CASES = {  # case: what the message says
    "empty": "not a readable safetensors file", "garbage": "not a readable safetensors file",
    "truncated": "not a readable safetensors file",
    "truncated-header": "not a readable safetensors file",
    "foreign-file": "not a flax-arch training checkpoint",
    "foreign-arrays": "missing keys", "step-not-int": "'step' is 'three'",
    "step-negative": "'step' is '-1'", "config-not-json": "'config' is '{lr: 1'",
    "config-without-lr": "its config lacks 'lr'",
    "config-wrong-model": "it is for 'vae', not 'ae'", "rng-garbage": "'rng'",
}


@pytest.mark.parametrize("case", list(LEGACY_CASES))
def test_resume_from_bad_legacy_file(capsys, tmp_path, legacy, case):
    out = tmp_path / "run"
    out.mkdir()
    path = out / "checkpoint.safetensors"
    path.write_bytes(_legacy_case(case, *legacy, tmp_path))
    before = path.read_bytes()
    _user_error(*_resume(capsys, out), "cannot resume", path, LEGACY_CASES[case])
    assert path.read_bytes() == before and not (out / "checkpoint").exists()


def _edit_meta(save, **changes):
    p = save / "metadata" / "metadata"
    meta = json.loads(p.read_text())
    for k, v in changes.items():
        if v is _DROP:
            meta.pop(k)
        else:
            meta[k] = v
    p.write_text(json.dumps(meta))


_DROP = object()


def _orbax_case(case, save):
    cfg = json.loads((save / "metadata" / "metadata").read_text())["config"]
    if case == "empty-dir":
        shutil.rmtree(save)
        save.mkdir()
    elif case == "not-a-checkpoint":
        shutil.rmtree(save)
        save.mkdir()
        (save / "notes.txt").write_text("hello")
        (save / "state").mkdir()
        (save / "metadata").mkdir()
    elif case == "metadata-garbage":
        (save / "metadata" / "metadata").write_bytes(b"\x00\xffnot json")
    elif case == "arrays-truncated":
        for root, _, files in os.walk(save / "state"):
            for name in files:
                p = os.path.join(root, name)
                with open(p, "rb+") as f:
                    f.truncate(os.path.getsize(p) // 2)
    elif case == "arrays-missing":
        shutil.rmtree(save / "state")
    elif case == "foreign-arrays":
        shutil.rmtree(save.parent)
        checkpoint.save(save.parent, {"x": np.zeros(3, np.float32)}, step=1, config=cfg,
                        rng=np.zeros(2, np.uint32))
    elif case == "other-config":  # settings that cannot go together
        _edit_meta(save, config={**cfg, "dataset_size": 4})
    else:
        _edit_meta(save, **{
            "format": {"format": "someone-else/1"},
            "step-string": {"step": "1"}, "step-negative": {"step": -1},
            "step-bool": {"step": True}, "step-missing": {"step": _DROP},
            "step-disagrees": {"step": 5},
            "config-list": {"config": [1, 2]},
            "config-without-lr": {"config": {k: v for k, v in cfg.items() if k != "lr"}},
            "config-lr-string": {"config": {**cfg, "lr": "fast"}},
            "config-wrong-model": {"config": {**cfg, "model": "vae"}},
            "rng-garbage": {"rng": "xyz"},
            "rng-wrong-shape": {"rng": {"key_data": [1, 2, 3], "dtype": "uint32"}},
            "rng-float": {"rng": {"key_data": [0.5, 1], "dtype": "float32"}},
            "models-garbage": {"models": {"model": 3}},
        }[case])


ORBAX_CASES = {  # case: what the message says
    "empty-dir": "cannot read its metadata", "not-a-checkpoint": "cannot read its metadata",
    "metadata-garbage": "cannot read its metadata",
    "arrays-truncated": "cannot read its array", "arrays-missing": "cannot read its array",
    "foreign-arrays": "missing keys", "other-config": "batch-size 8 exceeds",
    "format": "not a flax-arch training checkpoint (format 'someone-else/1'",
    "step-string": "'step' is '1', not a non-negative integer",
    "step-negative": "'step' is -1", "step-bool": "'step' is True",
    "step-missing": "'step' is None", "step-disagrees": "'step' metadata 5 disagrees",
    "config-list": "'config' is [1, 2]", "config-without-lr": "its config lacks 'lr'",
    "config-lr-string": "lr = 'fast', not a positive number",
    "config-wrong-model": "it is for 'vae', not 'ae'", "rng-garbage": "'rng' is 'xyz'",
    "rng-wrong-shape": "'rng' metadata", "rng-float": "'rng' is",
    "models-garbage": "'models' is",
}


@pytest.mark.parametrize("case", list(ORBAX_CASES))
def test_resume_from_bad_orbax_checkpoint(capsys, tmp_path, ae_run, case):
    out = tmp_path / "run"
    shutil.copytree(ae_run / "checkpoint", out / "checkpoint")
    save = out / "checkpoint" / "save_000001"
    _orbax_case(case, save)
    _user_error(*_resume(capsys, out), save, ORBAX_CASES[case])
    assert os.listdir(out / "checkpoint") == ["save_000001"]  # left as it was


# ---------------------------------------------------------------- hypothesis: garbage

@st.composite
def _garbage_file(draw):
    """Random bytes, a strict truncation of a valid legacy file, or a valid one with a
    byte of its JSON header flipped."""
    kind = draw(st.sampled_from(["random", "truncated", "flipped"]))
    if kind == "random":
        return draw(st.binary(max_size=600))
    valid = _TINY
    if kind == "truncated":
        return valid[:draw(st.integers(0, len(valid) - 1))]
    header = int.from_bytes(valid[:8], "little")
    i = draw(st.integers(8, 8 + header - 1))
    return valid[:i] + bytes([valid[i] ^ draw(st.integers(1, 255))]) + valid[i + 1:]


def _tiny_legacy() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        return _legacy_bytes({"state/w": np.arange(6, dtype=np.float32).reshape(2, 3),
                              "state/step": np.asarray([3], np.int32)},
                             {"format": checkpoint.LEGACY_FORMAT, "step": "3",
                              "config": '{"lr": 0.1}'}, d)


_TINY = _tiny_legacy()
_TINY_TEMPLATE = {"state": {"w": np.zeros((2, 3), np.float32),
                            "step": np.zeros(1, np.int32)}}


@fuzz
@given(data=_garbage_file())
def test_garbage_legacy_bytes_restore(data):
    """Reading or restoring garbage: a CheckpointError naming the file, or (a flipped
    byte that left the header meaning the same) exactly the original arrays."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "checkpoint.safetensors")
        with open(path, "wb") as f:
            f.write(data)
        try:
            tree, info = checkpoint.restore(path, _TINY_TEMPLATE)
        except checkpoint.CheckpointError as e:
            assert path in str(e)
            return
        assert data != _TINY[:len(data)] or len(data) == len(_TINY)
        assert isinstance(info["step"], int) and info["step"] >= 0
        assert np.asarray(tree["state"]["w"]).shape == (2, 3)


@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(data=_garbage_file())
def test_garbage_legacy_bytes_cli(data):
    """The same through ``train --resume``: status 2, no traceback, the file named."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "checkpoint.safetensors")
        with open(path, "wb") as f:
            f.write(data)
        rc, err = _quiet_cli("train", "ae", "--out", d, "--resume", *QUIET)
        _user_error(rc, err, path)


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70)
                     | st.floats(allow_nan=False) | st.text(max_size=8),
                     lambda c: st.lists(c, max_size=3)
                     | st.dictionaries(st.text(max_size=8), c, max_size=3), max_leaves=8)
_FIELDS = ["format", "step", "config", "rng", "models", "flax_arch_version"]


@pytest.fixture(scope="module")
def tiny_orbax(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny") / "ck"
    checkpoint.save(d, {"w": np.ones(3, np.float32)}, step=2, config={"lr": 0.1},
                    rng=np.zeros(2, np.uint32), models={"m": {"arch": "mlp", "kwargs": {}}})
    return d / "save_000001"


@fuzz
@given(field=st.sampled_from(_FIELDS), value=_JSON | st.just(_DROP))
def test_mutated_orbax_metadata(tiny_orbax, field, value):
    """Any JSON in any metadata field: a CheckpointError naming the save, or metadata
    that decodes to what the documentation promises."""
    p = tiny_orbax / "metadata" / "metadata"
    original = p.read_text()
    try:
        _edit_meta(tiny_orbax, **{field: value})
        try:
            info = checkpoint.read_info(tiny_orbax)
        except checkpoint.CheckpointError as e:
            assert str(tiny_orbax) in str(e)
            return
        assert isinstance(info["step"], int) and not isinstance(info["step"], bool)
        assert info["step"] >= 0 and isinstance(info["config"], dict)
        assert all(isinstance(v["arch"], str) and isinstance(v["kwargs"], dict)
                   for v in info["models"].values())
        assert info["rng"] is None or np.asarray(info["rng"]).dtype.kind in "iu"
    finally:
        p.write_text(original)


@fuzz
@given(field=st.sampled_from(["format", "step", "config", "rng"]),
       text=st.text(max_size=40))
def test_mutated_legacy_metadata(field, text):
    """Any string in a legacy file's metadata: a CheckpointError or sane metadata."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "checkpoint.safetensors")
        meta = {"format": checkpoint.LEGACY_FORMAT, "step": "3", "config": '{"lr": 0.1}',
                field: text}
        save_file({"state/w": np.zeros(3, np.float32)}, path, metadata=meta)
        try:
            info = checkpoint.read_info(path)
        except checkpoint.CheckpointError as e:
            assert path in str(e)
            return
        assert isinstance(info["step"], int) and info["step"] >= 0
        assert isinstance(info["config"], dict)


_BAD_STEP = (st.integers(max_value=-1) | st.floats() | st.text(max_size=5) | st.booleans()
             | st.none() | st.lists(st.integers(), max_size=2))
_BAD_CONFIG = (st.lists(st.integers(), max_size=2) | st.text(max_size=5) | st.integers()
               | st.dictionaries(st.sampled_from(["lr", "seed", "model", "x"]), _JSON,
                                 max_size=3))


@settings(max_examples=20, deadline=None, derandomize=True, database=None)
@given(change=st.one_of(st.builds(lambda v: {"step": v}, _BAD_STEP),
                        st.builds(lambda v: {"config": v}, _BAD_CONFIG),
                        st.builds(lambda v: {"rng": v}, _JSON.filter(
                            lambda v: v is not None))))
def test_mutated_metadata_cli(ae_run, change):
    """Tampered step / config / rng through ``train --resume``: status 2, no traceback,
    the save named."""
    with tempfile.TemporaryDirectory() as d:
        shutil.copytree(ae_run / "checkpoint", os.path.join(d, "checkpoint"))
        save = os.path.join(d, "checkpoint", "save_000001")
        from pathlib import Path
        _edit_meta(Path(save), **change)
        rc, err = _quiet_cli("train", "ae", "--out", d, "--resume", "--steps", "2", *QUIET)
        _user_error(rc, err, save)


# ---------------------------------------------------------------- SIGKILL mid-write

def _child(script: str, *args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, text=True)


def _wait_blocked(proc):
    line = proc.stdout.readline()  # the child prints this, or exits (then "")
    assert line.strip() == "blocked", f"the child ended early ({proc.wait()})"


def _kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


def _temporaries(*dirs) -> list[str]:
    return [n for d in dirs for n in os.listdir(d) if "tmp" in n]


# a training run whose second checkpoint write blocks after orbax wrote the temporary
# directory and before it renames it into place: SIGKILL then lands mid-write
_TRAIN_CHILD = r"""
import os, sys, time
real_rename = os.rename
def rename(src, dst, *a, **k):
    if "save_000002" in os.fspath(src) and ".orbax-checkpoint-tmp" in os.fspath(src):
        print("blocked", flush=True)
        time.sleep(600)
    return real_rename(src, dst, *a, **k)
os.rename = rename
import jax  # as parity_tests/conftest.py sets it, so that the arrays compare bitwise
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_default_matmul_precision", "highest")
from flax_arch.cli import main
sys.exit(main(["train", "ae", "--out", sys.argv[1], "--steps", "3", "--checkpoint-every",
               "1", "--dataset-size", "48", "--batch-size", "8", "--quiet", "--grid", "8"]))
"""


def test_sigkill_during_a_checkpoint_write(capsys, tmp_path, ae_run):
    out = tmp_path / "run"
    ckpt = out / "checkpoint"
    proc = _child(_TRAIN_CHILD, out)
    try:
        _wait_blocked(proc)
        torn = _temporaries(ckpt)
        assert len(torn) == 1 and torn[0].startswith("save_000002.orbax-checkpoint-tmp")
        # its writer is alive and holds the directory's lock: a reader leaves it alone
        assert checkpoint.latest(ckpt) == str(ckpt / "save_000001")
        assert _temporaries(ckpt) == torn
    finally:
        _kill(proc)
    assert _temporaries(ckpt) == torn  # the kill left it behind
    # the previous complete checkpoint is intact: the 1-step run's, bit for bit
    arrays, info = checkpoint.load(ckpt)
    want, _ = checkpoint.load(ae_run / "checkpoint")
    assert info["step"] == 1 and info["path"] == str(ckpt / "save_000001")
    assert set(arrays) == set(want)
    assert all(arrays[k].tobytes() == want[k].tobytes() for k in want)
    assert _temporaries(ckpt) == []  # latest() removed it: its writer is gone
    # and a resumed run goes on from it, leaving only its own checkpoint
    rc, err = _cli(capsys, "train", "ae", "--out", out, "--resume", "--steps", "3", *QUIET)
    assert rc == 0, err
    assert os.listdir(ckpt) == ["save_000002"] and _temporaries(out, ckpt) == []
    assert checkpoint.read_info(ckpt)["step"] == 3


def test_save_removes_torn_saves(tmp_path):
    """``save`` itself (with no ``latest`` before it) removes a killed write's temporary
    directory: it holds the writer lock, so none can be under way."""
    ck = tmp_path / "ck"
    checkpoint.save(ck, {"w": np.zeros(2, np.float32)}, step=1)
    torn = ck / "save_000002.orbax-checkpoint-tmp-1234567"
    (torn / "state").mkdir(parents=True)
    (torn / "state" / "half").write_bytes(b"\0" * 10)
    checkpoint.save(ck, {"w": np.ones(2, np.float32)}, step=2)
    assert os.listdir(ck) == ["save_000002"]


_ATOMIC_CHILD = r"""
import os, sys, time
from flax_arch.training import checkpoint
checkpoint.atomic_write_bytes(sys.argv[1], b"old")
def replace(src, dst):
    print("blocked", flush=True)
    time.sleep(600)
os.replace = replace
checkpoint.atomic_write_bytes(sys.argv[1], b"new" * 100000)
"""


def test_sigkill_during_an_atomic_write(tmp_path):
    """``atomic_write_bytes`` (the PNGs, ``flax-arch convert``'s outputs): the killed
    writer's temporary is removed by the next write into that directory, never while the
    writer lives; the target keeps its previous contents."""
    target = tmp_path / "f.bin"
    proc = _child(_ATOMIC_CHILD, target)
    try:
        _wait_blocked(proc)
        torn = _temporaries(tmp_path)
        assert len(torn) == 1 and torn[0].startswith(f".f.bin.{proc.pid}@")
        checkpoint.atomic_write_bytes(tmp_path / "other.bin", b"x")  # writer alive: kept
        assert checkpoint.latest(target) == str(target)
        assert _temporaries(tmp_path) == torn
    finally:
        _kill(proc)
    assert _temporaries(tmp_path) == torn and target.read_bytes() == b"old"
    checkpoint.atomic_write_bytes(target, b"newer")
    assert sorted(os.listdir(tmp_path)) == ["f.bin", "other.bin"]
    assert target.read_bytes() == b"newer"


def test_foreign_temporaries_are_kept(tmp_path):
    """Only temporaries certainly stale are removed: not another host's, not this
    process's, not one named without a pid (an earlier version's), not a user's file."""
    keep = [".f.bin.1@another-host.abc123.tmp", f".f.bin.{os.getpid()}@x.abc.tmp",
            ".f.bin.k2j3h4g5.tmp", "notes.tmp", ".f.bin.99999999@.tmp"]
    host = checkpoint._host()
    for name in keep:
        (tmp_path / name).write_text("x")
    (tmp_path / f".f.bin.{os.getpid()}@{host}.abc123.tmp").write_text("x")  # alive: us
    checkpoint.atomic_write_bytes(tmp_path / "f.bin", b"data")
    assert sorted(os.listdir(tmp_path)) == sorted(
        [*keep, f".f.bin.{os.getpid()}@{host}.abc123.tmp", "f.bin"])
