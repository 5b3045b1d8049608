"""PyTorch's module_db against the ``flax_arch.nn`` twins (see ``parity_tests/module_db.py``).

One test per covered class and dtype runs every module_db input of that class (train mode,
and eval mode where module_db says they differ): forward outputs, gradients and buffers
within 1e-12 (float64) / 1e-5 (float32) of torch. A class is covered when ``flax_arch.nn``
has a class of the same name; a twin that fails any input fails CI.
``test_coverage`` holds the number of covered classes to at least :data:`MIN_COVERED`.

With ``FLAX_ARCH_MODULE_DB_TABLE=PATH`` set (and ``-n 0``: one process sees every class),
the run writes the coverage table (class, inputs, worst errors) to PATH as markdown; the
same table comes from ``python -m parity_tests.module_db --table PATH``, which is how
``docs/module_db.md`` is made.
"""

from __future__ import annotations

import os

import pytest

from parity_tests import module_db as mdb

INFOS = mdb.module_infos()
COVERED = mdb.covered(INFOS)
#: the covered classes this suite guarantees (module_db has 114; see docs/module_db.md)
MIN_COVERED = 90
_RESULTS: dict[str, dict[str, mdb.ClassResult]] = {}


@pytest.fixture(scope="module", autouse=True)
def _write_table():
    yield
    path = os.environ.get("FLAX_ARCH_MODULE_DB_TABLE")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        path = None  # a worker sees only its share of the classes: the table needs -n 0
    if path and _RESULTS:
        with open(path, "w") as fh:
            fh.write(mdb.table(_RESULTS, INFOS))


@pytest.mark.module_db
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", COVERED)
def test_module_db(name, dtype):
    r = mdb.run_class(INFOS[name], dtype)
    _RESULTS.setdefault(name, {})[dtype] = r
    assert r.inputs > 0, f"{name}: module_db gave no inputs"
    assert r.ok, f"{name} [{dtype}]: {len(r.failures)} of {r.inputs} inputs fail:\n" + \
        "\n".join(r.failures[:10])


def test_coverage():
    """Classes with a twin, less those with a known failure, are at least MIN_COVERED
    (each of them passes every input, or its test above fails)."""
    missing = [n for n in INFOS if n not in COVERED and n not in mdb.EXCLUDED]
    known = {key.split("[")[0] for key, _ in mdb.KNOWN_FAILURES}
    passing = [n for n in COVERED if n not in known]
    assert len(passing) >= MIN_COVERED, (
        f"{len(passing)} of {len(INFOS)} module_db classes have a twin that passes every "
        f"input, fewer than {MIN_COVERED}; without a twin: {missing}; with known "
        f"failures: {sorted(known)}")


def test_excluded_have_no_twin_and_exist():
    """Every exclusion names a real module_db class (a renamed class would otherwise
    drop silently) and a class with a twin is never excluded."""
    for name in mdb.EXCLUDED:
        assert name in INFOS, f"{name} is excluded but not in module_db"
        assert mdb.twin_class(name) is None, f"{name} has a twin but is excluded"


def test_layout_rules_name_real_classes():
    """The runner's layout table names module_db classes or documented extras only."""
    extras = {"MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d"}
    unknown = [n for n in mdb.LAYOUT if n not in INFOS and n not in extras]
    assert not unknown, f"layout rules for unknown classes: {unknown}"
