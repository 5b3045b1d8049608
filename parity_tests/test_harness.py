"""The parity harness itself: its error measure on hand-built arrays (non-finite values must
match exactly), its configuration scoping (a run leaves the process as it found it), and its
errors for malformed cases (shape and count mismatches named before any arithmetic,
unknown dtypes and layouts)."""

from __future__ import annotations

import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from flax_arch import nn as fnn
from flax_arch.parity import Case, run_case
from flax_arch.parity.harness import nonfinite_mismatch, relative_error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
inf, nan = float("inf"), float("nan")


@pytest.mark.parametrize("got,want", [
    ([1.0, 2.0], [1.0, inf]),          # finite where the reference is infinite
    ([1.0, inf], [1.0, 2.0]),          # infinite where the reference is finite
    ([inf], [-inf]),                   # the sign of an infinity
    ([nan, 1.0], [1.0, 1.0]),          # NaN where the reference is finite
    ([1.0, 1.0], [nan, 1.0]),          # finite where the reference is NaN
    ([nan], [inf]),
])
def test_nonfinite_mismatches_are_infinite_error(got, want):
    assert relative_error(got, want) == inf
    assert nonfinite_mismatch(got, want) is not None


def test_matching_nonfinite_values_leave_the_finite_part_measured():
    want = np.array([nan, inf, -inf, 4.0, -2.0])
    got = np.array([nan, inf, -inf, 4.0 + 4e-3, -2.0])
    assert nonfinite_mismatch(got, want) is None
    assert relative_error(got, want) == pytest.approx(1e-3)
    assert relative_error(want, want) == 0.0


def test_mismatch_message_names_the_first_position_and_values():
    msg = nonfinite_mismatch(np.array([[1.0, 2.0], [3.0, 4.0]]),
                             np.array([[1.0, 2.0], [-inf, 4.0]]))
    assert "(1, 0)" in msg and "3.0" in msg and "-inf" in msg and msg.startswith("1 ")


def test_error_measure_basics():
    assert relative_error([1.0, 2.0], [1.0, 2.0, 3.0]) == inf      # shapes differ
    assert relative_error([0.5, 0.0], [0.0, 0.0]) == 0.5            # absolute against zeros
    assert relative_error([2.0, 4.0], [2.0, 5.0]) == pytest.approx(0.2)
    assert relative_error([2.0, 4.0], [2.0, 5.0], scale=10.0) == pytest.approx(0.1)
    assert relative_error(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0


def _linear_case(name="lin", **kw):
    import torch
    return Case(name, lambda: torch.nn.Linear(4, 3),
                lambda r: fnn.Linear(4, 3, rngs=r),
                lambda rng: (rng.standard_normal((5, 4)),), **kw)


def test_a_port_returning_inf_fails_and_says_where():
    case = _linear_case(flax_call=lambda m, x: m(x).at[2, 1].set(jnp.inf))
    r = run_case(case, "float64", locate=False)
    assert not r.passed and r.error is None
    assert r.forward_err == inf
    assert "non-finite" in r.worst and "(2, 1)" in r.worst


def test_output_shape_mismatch_is_named_before_arithmetic():
    r = run_case(_linear_case(flax_call=lambda m, x: m(x)[:, :2]), "float64", locate=False)
    assert not r.passed
    assert r.error.startswith("ValueError: output 0: flax shape (5, 2)"), r.error
    assert "(5, 3)" in r.error


def test_output_count_mismatch_is_named():
    r = run_case(_linear_case(flax_call=lambda m, x: (m(x), m(x))), "float64", locate=False)
    assert not r.passed and "torch returned 1 outputs, flax 2" in r.error


def test_unknown_dtype_and_layout_are_clear_errors():
    with pytest.raises(ValueError, match="dtype must be one of"):
        run_case(_linear_case(), "float8")
    with pytest.raises(ValueError, match="in_layouts entries must be one of"):
        _linear_case(in_layouts=["NCHW"])


def test_run_case_leaves_the_process_configuration_alone():
    """In a fresh interpreter (the test process has x64 on, see conftest.py): x64 and the
    matmul precision are as before after a passing run, a failing run and a crash."""
    code = (
        "import jax, jax.numpy as jnp, torch\n"
        "from flax_arch import nn as fnn\n"
        "from flax_arch.parity import Case, run_case\n"
        "before = (jax.config.jax_enable_x64, jax.config.jax_default_matmul_precision)\n"
        "mk = lambda **kw: Case('lin', lambda: torch.nn.Linear(4, 3),\n"
        "    lambda r: fnn.Linear(4, 3, rngs=r), lambda rng: (rng.standard_normal((5, 4)),), **kw)\n"
        "assert run_case(mk(), 'float64').passed\n"
        "assert run_case(mk(), 'float32').passed\n"
        "assert not run_case(mk(flax_call=lambda m, x: 2 * m(x)), 'float64').passed\n"
        "def boom(m, x): raise RuntimeError('boom')\n"
        "assert 'boom' in run_case(mk(flax_call=boom), 'float64').error\n"
        "after = (jax.config.jax_enable_x64, jax.config.jax_default_matmul_precision)\n"
        "assert before == after == (False, None), (before, after)\n"
        "assert jnp.ones(2).dtype == jnp.float32\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr


def test_environment_names_versions_and_the_checkout_commit():
    from flax_arch.environment import environment, summary
    env = environment()
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    assert env["commit"] == head and isinstance(env["dirty"], bool)
    for name in ("jax", "jaxlib", "flax", "optax", "numpy", "torch"):
        assert env["versions"][name], name
    assert env["backend"] == "cpu" or env["devices"]
    line = summary(env)
    assert head[:10] in line and env["versions"]["jax"] in line

