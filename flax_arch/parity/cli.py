"""``flax-arch parity``: run the case registry, print a table, exit non-zero on failure."""

from __future__ import annotations

import json
import re
import sys

from ..cli import output_file


def add_arguments(p):
    p.add_argument("--only", nargs="+", metavar="REGEX",
                   help="run only cases whose name matches one of these regular expressions")
    p.add_argument("--dtype", choices=["all", "both", "float64", "float32", "float16", "bfloat16"],
                   default="all",
                   help="all: float64, float32, float16 and bfloat16 (default); both: float64 "
                        "and float32")
    p.add_argument("--json", metavar="PATH", type=output_file,
                   help="also write the results as JSON")
    p.add_argument("--fast", action="store_true",
                   help="skip the slide-size cases tagged 'slow' (the CI subset)")
    p.add_argument("--list", action="store_true", help="list the selected cases and exit")
    p.add_argument("--cases", metavar="PYTHON.MODULE",
                   help="run your own registry instead of the project's: an importable module "
                        "(a dotted name, or a .py file) that defines CASES, a list of "
                        "flax_arch.parity.Case")


def _user_cases(spec: str) -> list:
    """``CASES`` of a module given by dotted name or as a path to a ``.py`` file."""
    import importlib
    import importlib.util
    import os

    from .registry import RegistryError, module_cases
    try:
        if spec.endswith(".py") or os.sep in spec:
            if not os.path.isfile(spec):
                raise RegistryError(f"{spec}: no such file")
            loaded = importlib.util.spec_from_file_location("_flax_arch_user_cases", spec)
            mod = importlib.util.module_from_spec(loaded)
            loaded.loader.exec_module(mod)
        else:
            mod = importlib.import_module(spec)
    except ModuleNotFoundError as e:
        raise RegistryError(f"cannot import {spec!r}: {e}") from e
    return module_cases(mod, spec)


def _fmt(x: float) -> str:
    return "nan" if x != x else f"{x:.1e}"


def _cell(r, group: str) -> str:
    """An error cell: Flax's error, and in low precision torch's in parentheses (both
    against the float64 reference); ``*``: measured, not judged (``r.ill_posed``)."""
    err = _fmt(getattr(r, f"{group}_err"))
    torch_err = getattr(r, f"torch_{group}_err")
    if torch_err == torch_err:  # not nan: a low-precision row
        err += f" (t {_fmt(torch_err)})"
    return err + ("*" if group == "grad" and r.ill_posed else "")


def _criterion(r) -> str:
    from .harness import ACCURACY_FACTOR, TOLERANCE
    if r.dtype in TOLERANCE:
        return f"≤{r.tol:.0e}"
    return f"≤{ACCURACY_FACTOR:g}t+{r.tol:.1e}"


def run(args) -> int:
    import jax
    from tqdm import tqdm

    from ..environment import environment, summary
    from .registry import RegistryError, all_cases, select
    from .harness import run_case

    try:
        cases = select(_user_cases(args.cases) if args.cases else all_cases(), args.only)
    except re.error as e:
        print(f"flax-arch parity: --only: not a regular expression: {e}", file=sys.stderr)
        return 2
    except RegistryError as e:
        print(f"flax-arch parity: {'--cases: ' if args.cases else ''}{e}", file=sys.stderr)
        return 2
    if args.fast:
        cases = [c for c in cases if "slow" not in c.tags]
    if args.list:
        for c in cases:
            print(c.name + (f"  [{', '.join(c.tags)}]" if c.tags else ""))
        return 0
    if not cases:
        print("no case matches", args.only, file=sys.stderr)
        return 2
    from .harness import DTYPES
    dtypes = {"all": list(DTYPES), "both": ["float64", "float32"]}.get(args.dtype, [args.dtype])
    jobs = [(c, d) for c in cases for d in dtypes]
    results = []
    bar = tqdm(jobs, desc="parity", unit="case", file=sys.stderr, dynamic_ncols=True)
    for case, dtype in bar:
        bar.set_postfix_str(f"{case.name} {dtype}")
        results.append(run_case(case, dtype))
    bar.close()

    header = ("case", "dtype", "backend", "forward", "grad", "state", "criterion", "pass")
    rows = [(r.case, r.dtype, r.backend, _cell(r, "forward"), _cell(r, "grad"),
             _cell(r, "state"), _criterion(r), "PASS" if r.passed else "FAIL") for r in results]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda row: "  ".join(str(x).ljust(w) for x, w in zip(row, widths))  # noqa: E731
    print(line(header))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))
    failed = [r for r in results if not r.passed]
    if any(r.torch_forward_err == r.torch_forward_err for r in results):
        print("float16/bfloat16: Flax's error (torch's) against torch float64 on the same "
              "rounded weights and inputs; each quantity passes when Flax's ≤ 2·torch's + the "
              "floor.")
    ill = [r for r in results if r.ill_posed]
    if ill:
        print(f"* {len(ill)} row(s): gradients measured, not judged: units of the float64 "
              f"reference lie within that dtype's rounding of a kink (JSON: ill_posed)")
    for r in failed:
        why = r.error or f"worst: {r.worst}"
        where = f"; first diverging layer: {r.diverged_at}" if r.diverged_at else ""
        print(f"FAIL {r.case} [{r.dtype}]: {why}{where}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed "
          f"({len(cases)} cases × {len(dtypes)} dtypes on {jax.default_backend()})")
    env = environment()
    print(summary(env))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "backend": env["backend"],
                       "devices": env["devices"], "results": [r.as_dict() for r in results]},
                      f, indent=1)
    return 1 if failed else 0
