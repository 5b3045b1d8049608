"""``flax-arch parity``: run the case registry, print a table, exit non-zero on failure."""

from __future__ import annotations

import json
import sys


def add_arguments(p):
    p.add_argument("--only", nargs="+", metavar="REGEX",
                   help="run only cases whose name matches one of these regular expressions")
    p.add_argument("--dtype", choices=["float64", "float32", "both"], default="both")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--fast", action="store_true",
                   help="skip the slide-size cases tagged 'slow' (the CI subset)")
    p.add_argument("--list", action="store_true", help="list the selected cases and exit")


def _fmt(x: float) -> str:
    return "nan" if x != x else f"{x:.1e}"


def run(args) -> int:
    import jax
    from tqdm import tqdm

    from ..environment import environment, summary
    from .registry import all_cases, select
    from .harness import run_case

    cases = select(all_cases(), args.only)
    if args.fast:
        cases = [c for c in cases if "slow" not in c.tags]
    if args.list:
        for c in cases:
            print(c.name + (f"  [{', '.join(c.tags)}]" if c.tags else ""))
        return 0
    if not cases:
        print("no case matches", args.only, file=sys.stderr)
        return 2
    dtypes = ["float64", "float32"] if args.dtype == "both" else [args.dtype]
    jobs = [(c, d) for c in cases for d in dtypes]
    results = []
    bar = tqdm(jobs, desc="parity", unit="case", file=sys.stderr, dynamic_ncols=True)
    for case, dtype in bar:
        bar.set_postfix_str(f"{case.name} {dtype}")
        results.append(run_case(case, dtype))
    bar.close()

    header = ("case", "dtype", "backend", "forward", "grad", "state", "tol", "pass")
    rows = [(r.case, r.dtype, r.backend, _fmt(r.forward_err), _fmt(r.grad_err),
             _fmt(r.state_err), f"{r.tol:.0e}", "PASS" if r.passed else "FAIL") for r in results]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda row: "  ".join(str(x).ljust(w) for x, w in zip(row, widths))  # noqa: E731
    print(line(header))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))
    failed = [r for r in results if not r.passed]
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
