"""Smoke tests of the ``flax-arch bench`` machinery (the :mod:`flax_arch.bench` package):
structure of the rows, table, JSON and plots on a few tiny cases. No timing is asserted
(timings are never tests)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from flax_arch import bench
from flax_arch.cli import main
from flax_arch.parity.registry import all_cases, select

TINY = ["^mlp_small$", "^conv1d_causal_small$"]


def _check_timing(t: dict):
    assert set(t) >= {"median_s", "q1_s", "q3_s", "min_s", "max_s", "n", "calls_per_sample"}
    assert 0 < t["min_s"] <= t["q1_s"] <= t["median_s"] <= t["q3_s"] <= t["max_s"]
    assert t["n"] >= 1 and t["calls_per_sample"] >= 1


def test_measure_statistics():
    calls = []
    t = bench.measure(lambda: calls.append(1), lambda out: out, runs=4, warmup=1,
                      min_sample_s=1e-4)
    _check_timing(t)
    assert t["n"] == 4
    assert len(calls) == 2 + 4 * t["calls_per_sample"]  # warm-up + calibration, samples


def test_plan_one_case_per_module():
    cases = select(all_cases(), [r"^mlp", r"^embedding"])
    plan = bench.plan_cases(cases, "small")
    names = [p.case.name for p in plan]
    assert names == ["mlp_small", "embedding_small"]
    assert all(p.size == "small" for p in plan)
    slide = bench.plan_cases(cases, "slide")
    assert [p.case.name for p in slide] == ["mlp", "embedding"]
    assert all(p.size == "slide" for p in slide)
    auto = bench.plan_cases(cases, "auto", flop_budget=-1.0)  # nothing is cheap enough
    assert [p.case.name for p in auto] == ["mlp_small", "embedding_small"]
    assert len(bench.plan_cases(cases, all_cases=True)) == len(cases)


def test_bench_case_rows():
    case = select(all_cases(), ["^conv1d_causal_small$"])[0]
    rows = bench.bench_case(case, impls=("flax_jit", "torch_eager"), runs=2, warmup=1,
                            min_sample_s=1e-4)
    assert [r["mode"] for r in rows] == ["forward", "train_step"]
    for r in rows:
        assert set(r["impls"]) == {"flax_jit", "torch_eager"}
        for t in r["impls"].values():
            assert "error" not in t, t
            _check_timing(t)
        f = r["impls"]["flax_jit"]
        assert f["compile_s"] >= f["lower_s"] > 0
        assert r["xla_flops"] > 0 and f["gflops_per_s"] > 0
        assert r["torch_eager_over_flax"] > 0
    assert rows[1]["xla_flops"] > rows[0]["xla_flops"]  # backward costs more than forward


def test_bench_case_translated_rows(capsys):
    """``--translated``: the case's torch module through from_torch, timed next to the
    hand-written port; the row's FLOPs stay the port's."""
    case = select(all_cases(), ["^conv1d_causal_small$"])[0]
    rows = bench.bench_case(case, impls=("flax_jit", "flax_translated"), runs=2, warmup=1,
                            min_sample_s=1e-4)
    for r in rows:
        assert set(r["impls"]) == {"flax_jit", "flax_translated"}
        for t in r["impls"].values():
            assert "error" not in t, t
            _check_timing(t)
        assert r["translated_over_flax"] > 0
    table = bench.format_table([dict(r, size="small") for r in rows])
    assert "from_torch/flax" in table.splitlines()[0]
    packed = select(all_cases(), ["^rnn_small$"])[0]  # has its own torch_call: refused
    rows = bench.bench_case(packed, modes=("forward",), impls=("flax_translated",), runs=1,
                            warmup=0, min_sample_s=1e-4)
    assert "own call" in rows[0]["impls"]["flax_translated"]["error"]


def test_setup_goes_through_the_harness():
    """The bench's set-up is the harness's ``prepare`` (float32); the cotangents are the
    harness's, one per output, the same values in each side's layout."""
    from flax_arch.bench.prepared import prepare_bench
    from flax_arch.parity.harness import flatten_outputs, prepare, to_torch_layout
    case = select(all_cases(), ["^reslayer_small_train$"])[0]
    b = prepare_bench(case)
    ref = prepare(case, "float32")
    assert b.prep.dtype == "float32" and case.out_layouts == ["channels"]
    for got, want in zip(b.prep.inputs, ref.inputs):
        np.testing.assert_array_equal(got, want)
    want_sd = ref.torch_module.state_dict()
    assert set(b.state_dict) == set(want_sd)
    for k, v in b.state_dict.items():
        np.testing.assert_array_equal(v.numpy(), want_sd[k].numpy())
    outs = flatten_outputs(ref.call_torch(ref.torch_module, *ref.torch_inputs()))
    assert [tuple(c.shape) for c in b.torch_cots] == [tuple(o.shape) for o in outs]
    for f, t in zip(b.flax_cots, b.torch_cots):
        np.testing.assert_array_equal(to_torch_layout(np.asarray(f), "channels"), t.numpy())
    np.testing.assert_array_equal(b.torch_cots[0].numpy(),
                                  ref.cotangents([tuple(outs[0].shape)])[0])


def test_bench_case_reports_failures_instead_of_raising():
    case = select(all_cases(), ["^mlp_small$"])[0]

    def broken(*a, **k):
        raise RuntimeError("boom")
    import dataclasses
    bad = dataclasses.replace(case, name="broken", torch_call=broken)
    rows = bench.bench_case(bad, modes=("forward",), impls=("flax_jit", "torch_eager"), runs=1,
                            warmup=0, min_sample_s=1e-4)
    assert len(rows) == 1
    for r in rows:
        assert "median_s" in r["impls"]["flax_jit"]
        assert r["impls"]["torch_eager"]["error"].startswith("RuntimeError: boom")
    assert "error" in bench.format_table(rows)


def test_cli_table_json_and_plot(tmp_path, capsys):
    out = tmp_path / "bench.json"
    png = tmp_path / "bench.png"
    want_plot = True
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        want_plot = False
    argv = ["bench", "--only", *TINY, "--size", "small", "--runs", "2", "--warmup", "1",
            "--min-sample-ms", "0.1", "--no-compile", "--quiet", "--json", str(out)]
    if want_plot:
        argv += ["--plot", str(png)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    header = text.splitlines()[0].split()
    assert header[:3] == ["case", "size", "mode"]
    for name in ("mlp_small", "conv1d_causal_small"):
        assert sum(line.startswith(name) for line in text.splitlines()) == 2
    payload = json.loads(out.read_text())
    assert payload["kind"] == "bench"
    _check_meta(payload["meta"])
    env = payload["meta"]["environment"]  # the record flax-arch parity keeps too
    assert env["versions"]["jax"] == payload["meta"]["jax"] and env["backend"] == "cpu"
    assert any(line.startswith("flax-arch ") and f"jax {env['versions']['jax']}" in line
               for line in text.splitlines())  # the footer's short form
    assert {"loadavg_start", "loadavg_end", "wall_s"} <= set(payload["meta"])
    assert [(r["case"], r["mode"]) for r in payload["rows"]] == [
        ("mlp_small", "forward"), ("mlp_small", "train_step"),
        ("conv1d_causal_small", "forward"), ("conv1d_causal_small", "train_step")]
    for r in payload["rows"]:
        assert r["size"] == "small" and r["module"].startswith("torch_ref.")
        assert set(r["impls"]) == {"flax_jit", "torch_eager"}
    if want_plot:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _check_meta(meta: dict):
    """What every JSON report records: versions, backend, device, XLA flags, the commit."""
    for k in ("python", "jax", "jaxlib", "flax", "optax", "numpy", "torch"):
        assert isinstance(meta[k], str) and meta[k], k
    assert meta["backend"] in ("cpu", "gpu", "tpu")
    assert meta["devices"] and isinstance(meta["device_kind"], str)
    assert isinstance(meta["xla_flags"], str)
    assert "commit" in meta and "dirty" in meta
    assert meta["commit"] is None or (len(meta["commit"]) == 40 and
                                      isinstance(meta["dirty"], bool))


def test_machine_info_records_environment_and_commit():
    import flax_arch
    from flax_arch.bench import report
    meta = report.machine_info("--xla_some_flag=1")
    _check_meta(meta)
    assert meta["xla_flags"] == "--xla_some_flag=1"
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=flax_arch.__path__[0])
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", flax_arch.__file__],
                             capture_output=True, cwd=flax_arch.__path__[0])
    want = head.stdout.strip() if head.returncode == 0 and tracked.returncode == 0 else None
    assert meta["commit"] == want


def test_import_does_not_import_torch():
    code = "import sys, flax_arch.bench; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_list(capsys):
    assert main(["bench", "--only", *TINY, "--size", "small", "--list"]) == 0
    assert capsys.readouterr().out.split()[0] == "mlp_small"


def test_sweep_smoke(tmp_path, capsys):
    out = tmp_path / "sweep.json"
    assert main(["bench", "--sweep", "--seq-lens", "5", "--sweep-dims", "2", "3", "4",
                 "--modes", "forward", "--runs", "1", "--warmup", "0", "--min-sample-ms", "0.1",
                 "--quiet", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["kind"] == "sweep" and payload["dims"] == {"B": 2, "F": 3, "H": 4}
    _check_meta(payload["meta"])
    series = {p["series"] for p in payload["points"]}
    assert "LSTM (torch eager)" in series
    assert {"QRNN scan (flax jit)", "QRNN associative (flax jit)", "LSTM (flax jit)",
            "QRNN slide loop (torch eager)"} <= series, payload["notes"]
    for p in payload["points"]:
        assert p["T"] == 5 and p["mode"] == "forward"
        assert p["error"] is None, p
        assert p["median_s"] > 0


def test_compare_table_relative_to_default():
    def payload(f, t):
        return {"rows": [{"case": "c", "mode": "forward",
                          "impls": {"flax_jit": {"median_s": f, "min_s": f / 2},
                                    "torch_eager": {"median_s": t, "min_s": t}}}]}
    settings = bench.resolve_settings(["ynn_off", "--xla_cpu_use_xnnpack=false"])
    assert [s[0] for s in settings] == ["default", "ynn_off", "--xla_cpu_use_xnnpack=false"]
    results = {"default": [payload(2.0, 4.0), payload(2.2, 4.0)],
               "ynn_off": [payload(1.0, 4.0)], "--xla_cpu_use_xnnpack=false": []}
    table, summary = bench.compare_table(settings, results)
    by = {e["setting"]: e for e in summary}
    assert np.isclose(by["default"]["flax_jit"], 2.1)
    assert np.isclose(by["ynn_off"]["flax_jit_vs_default"], 1.0 / 2.1)
    assert np.isclose(by["ynn_off"]["torch_eager_over_flax"], 4.0)
    assert np.isclose(by["ynn_off"]["flax_jit_min_vs_default"], 0.5 / 1.0)  # min over rounds
    assert by["--xla_cpu_use_xnnpack=false"]["flax_jit"] is None
    assert "ynn_off" in table


def test_unknown_preset_is_an_error():
    with pytest.raises(SystemExit):
        bench.resolve_settings(["no_such_preset"])
