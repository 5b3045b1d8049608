"""``import flax_arch`` never imports torch, and the package works with torch absent; the
docstring examples of :mod:`flax_arch.nn` and :mod:`flax_arch.models` run as written."""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import subprocess
import sys
import textwrap

import jax
import pytest

import flax_arch.models
import flax_arch.nn
import flax_arch.ops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter from the repository root."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_import_does_not_import_torch():
    r = _python("import flax_arch, flax_arch.nn, flax_arch.models, flax_arch.interop, "
                "flax_arch.parity, sys; assert 'torch' not in sys.modules, "
                "[m for m in sys.modules if m.split('.')[0] == 'torch']")
    assert r.returncode == 0, r.stderr


_BLOCKED = textwrap.dedent('''
    import importlib, importlib.abc, pkgutil, sys

    class BlockTorch(importlib.abc.MetaPathFinder):
        """torch is not installed, as far as this interpreter can tell."""
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "torch":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, BlockTorch())
    try:
        import torch
    except ModuleNotFoundError:
        pass
    else:
        raise AssertionError("torch was not blocked")

    import flax_arch
    # every module of the package imports without torch
    for info in pkgutil.walk_packages(flax_arch.__path__, "flax_arch."):
        importlib.import_module(info.name)

    import jax.numpy as jnp
    import numpy as np
    from flax import nnx
    import flax_arch.nn as fnn
    from flax_arch.interop import load_torch_state_dict, to_torch_state_dict

    # a tiny model: build, run, convert weights both ways (numpy state_dict, no torch)
    model = fnn.Sequential(fnn.Conv1d(2, 4, 3, padding=1, rngs=nnx.Rngs(0)), fnn.BatchNorm1d(4),
                           fnn.MaxPool1d(2), fnn.AdaptiveAvgPool1d(1))
    y = model(jnp.ones((3, 8, 2)))
    assert y.shape == (3, 1, 4), y.shape
    sd = to_torch_state_dict(model)
    assert sorted(sd) == ["0.bias", "0.weight", "1.bias", "1.num_batches_tracked",
                          "1.running_mean", "1.running_var", "1.weight"], sorted(sd)
    sd["0.weight"] = np.zeros_like(sd["0.weight"])
    load_torch_state_dict(model, sd)
    assert float(jnp.abs(model[0].kernel.get_value()).max()) == 0.0
    mlp = flax_arch.MLP(4, 8, 2, rngs=nnx.Rngs(0))
    assert mlp(jnp.ones((5, 4))).shape == (5, 2)
    assert "torch" not in sys.modules
    print("ok")
''')


def test_works_with_torch_unimportable():
    r = _python(_BLOCKED)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


# ---------------------------------------------------------------------------- doctests

def _modules(pkg) -> list[str]:
    return [pkg.__name__] + [f"{pkg.__name__}.{m.name}"
                             for m in pkgutil.iter_modules(pkg.__path__)]


DOC_MODULES = (_modules(flax_arch.nn) + _modules(flax_arch.models) + _modules(flax_arch.ops)
               + ["flax_arch.aot"])


@pytest.mark.parametrize("name", DOC_MODULES)
def test_doctests(name):
    """Each module's docstring examples, as a user runs them (JAX's default float32)."""
    module = importlib.import_module(name)
    with jax.enable_x64(False):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS
                                 | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctests failed in {name}"


def test_doctests_exist():
    """The layer docs carry examples (guards against the collection silently finding none)."""
    finder = doctest.DocTestFinder()
    n = sum(len(t.examples) for name in DOC_MODULES
            for t in finder.find(importlib.import_module(name)))
    assert n >= 20, n
