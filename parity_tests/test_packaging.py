"""Packaging and the registry's integrity: the wheel holds exactly ``flax_arch`` and
``torch_ref``; ``flax-arch parity`` and ``flax-arch bench`` run from that installed,
non-editable wheel in a directory outside the checkout; the registry imports without
torch and a listed family whose file is missing is an error, never a skip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from flax_arch.parity import registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                        str(out), ROOT], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = [f for f in os.listdir(out) if f.endswith(".whl")]
    return str(out / whl)


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> str:
    """The wheel installed (no dependencies: this venv has them) into its own folder."""
    target = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                        "-q", "--target", str(target), wheel],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return str(target)


def test_wheel_holds_exactly_the_product_and_the_reference(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"flax_arch", "torch_ref"}
    assert not [n for n in names if "conftest" in n or "parity_tests" in n]
    # the registry is product data: every family file ships
    for fam in registry.FAMILIES:
        assert f"flax_arch/parity/registry/{fam}.py" in names, fam
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "flax-arch = flax_arch.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def _run_installed(installed: str, cwd, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=installed)
    exe = os.path.join(installed, "bin", "flax-arch")
    return subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_installed_wheel_runs_parity_and_bench_outside_the_checkout(installed, tmp_path):
    env = dict(os.environ, PYTHONPATH=installed)
    where = subprocess.run(
        [sys.executable, "-c", "import flax_arch, torch_ref, importlib.util as u; "
         "print(flax_arch.__file__); print(torch_ref.__file__); "
         "print(u.find_spec('parity_tests'))"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert where.returncode == 0, where.stderr
    fa_file, tr_file, tests_spec = where.stdout.split()
    assert fa_file.startswith(installed) and tr_file.startswith(installed)
    assert tests_spec == "None"  # the test suite is not installed

    r = _run_installed(installed, tmp_path, "parity", "--only", "^mlp_small$",
                       "^conv1d_causal_small$", "--dtype", "float32", "--json", "p.json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 passed, 0 failed" in r.stdout
    report = json.loads((tmp_path / "p.json").read_text())
    env = report["environment"]
    assert env["versions"]["jax"] and env["versions"]["torch"] and env["backend"]
    assert env["commit"] is None  # an installed wheel is no checkout: no commit claimed
    assert "flax-arch 0.1.0 (no git)" in r.stdout
    results = report["results"]
    assert {x["case"] for x in results} == {"mlp_small", "conv1d_causal_small"}
    assert all(x["passed"] for x in results)

    r = _run_installed(installed, tmp_path, "bench", "--only", "^mlp_small$", "--size",
                       "small", "--runs", "1", "--warmup", "0", "--min-sample-ms", "1",
                       "--no-compile", "--json", "b.json", "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert {row["mode"] for row in rows} == {"forward", "train_step"}
    assert all("median_s" in t for row in rows for t in row["impls"].values())


def test_registry_imports_without_torch():
    r = subprocess.run(
        [sys.executable, "-c", "import sys; from flax_arch.parity.registry import all_cases; "
         "n = len(all_cases()); assert 'torch' not in sys.modules and "
         "'torch_ref' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m); "
         "print(n)"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == len(registry.all_cases()) > 0


def test_a_listed_family_without_its_file_is_an_error(monkeypatch):
    monkeypatch.setattr(registry, "FAMILIES", (*registry.FAMILIES, "no_such_family"))
    with pytest.raises(registry.RegistryError, match="no_such_family"):
        registry.all_cases()


def test_every_family_file_is_listed():
    """The converse: a family file that FAMILIES forgets would silently drop out."""
    here = os.path.dirname(registry.__file__)
    files = {f[:-3] for f in os.listdir(here) if f.endswith(".py") and f != "__init__.py"}
    assert files == set(registry.FAMILIES)


def test_duplicate_case_names_are_an_error(monkeypatch):
    basic = registry.family_cases("basic")
    monkeypatch.setattr(registry, "family_cases", lambda fam: basic)
    with pytest.raises(registry.RegistryError, match="duplicate case names"):
        registry.all_cases()


def test_nothing_in_the_product_imports_the_test_suite():
    r = subprocess.run(
        [sys.executable, "-c", "import importlib, pkgutil, sys, flax_arch\n"
         "for m in pkgutil.walk_packages(flax_arch.__path__, 'flax_arch.'):\n"
         "    importlib.import_module(m.name)\n"
         "assert 'parity_tests' not in sys.modules"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
