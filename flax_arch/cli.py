"""``flax-arch`` command line: ``parity``, ``bench``, ``train``, ``convert``, ``translate``.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; they are imported only when chosen, so ``flax-arch --help`` needs
neither torch nor the heavier tools.

**Exit status.** A user error never ends in a traceback: it gets a one-paragraph message
on stderr (naming the option, or the file and what is wrong with it) and a non-zero exit.

* ``0``: success.
* ``1``: the command ran and found failures (``parity``: a case failed).
* ``2``: bad input, nothing done. argparse's usage errors (an unknown option, a value of
  the wrong type or out of range: the option types below check it while parsing) and the
  errors found later at run time (a regular expression that does not compile, a corrupt,
  truncated or foreign checkpoint, an output path that is a file) alike.
* ``3``: ``bench --plot`` without matplotlib (the table and the JSON are written first).
* ``130``: interrupted (Ctrl-C; ``train`` saves its checkpoint first).

A subcommand reports a run-time user error by returning 2 after printing, or by raising
:class:`CLIError`, which :func:`main` turns into that message and status 2. Nothing else is
caught: any other exception is a bug, and its traceback is kept.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import re
import sys

SUBCOMMANDS = {
    "parity": ("flax_arch.parity.cli", "compare every registered module with its torch original"),
    "bench": ("flax_arch.bench.cli", "time the registered modules: Flax under jit vs torch"),
    "train": ("flax_arch.training.cli", "train the AE, VAE or DCGAN on a generated dataset"),
    "convert": ("flax_arch.convert", "convert checkpoints between torch and Flax"),
    "translate": ("flax_arch.translate.cli",
                  "translate your torch module (pkg.module:factory) and check its parity"),
}

USAGE_ERROR = 2  # the exit status of every user error (argparse's too)


class CLIError(Exception):
    """A user error found at run time: :func:`main` prints ``flax-arch CMD: error: MSG``
    on stderr and exits with status 2 (no traceback)."""


# ------------------------------------------------------------------ argparse option types
# Each raises argparse.ArgumentTypeError, so argparse reports "argument --x: ..." and
# exits 2 before anything runs.


def _number(text: str, kind):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _bounded(name: str, kind, ok, problem: str, doc: str):
    """An option type: ``kind(text)`` (finite), then ``ok(value)`` or ``problem`` (formatted
    with the value) as argparse's message."""
    def parse(text: str):
        value = _number(text, kind)
        if not ok(value):
            raise argparse.ArgumentTypeError(problem.format(value))
        return value
    parse.__name__ = parse.__qualname__ = name
    parse.__doc__ = doc
    return parse


positive_int = _bounded("positive_int", int, lambda v: v >= 1,
                        "{} is not a positive integer (>= 1)", "An integer ≥ 1.")
nonnegative_int = _bounded("nonnegative_int", int, lambda v: v >= 0,
                           "{} is negative (must be >= 0)", "An integer ≥ 0.")
seed_int = _bounded("seed_int", int, lambda v: 0 <= v < 2 ** 31,
                    "{} is not a seed in [0, 2**31 - 1]",
                    "A seed: an integer in [0, 2**31 - 1] (numpy's and JAX's seeds both take it).")
positive_float = _bounded("positive_float", float, lambda v: v > 0,
                          "{} is not positive (must be > 0)", "A finite number > 0.")
nonnegative_float = _bounded("nonnegative_float", float, lambda v: v >= 0,
                             "{} is negative (must be >= 0)", "A finite number ≥ 0.")
unit_interval = _bounded("unit_interval", float, lambda v: 0 <= v < 1, "{} is not in [0, 1)",
                         "A number in [0, 1) (Adam's beta1, SGD's momentum).")


def regex(text: str) -> str:
    """A regular expression that compiles (returned as the string)."""
    try:
        re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular expression: {e}") \
            from None
    return text


def output_file(text: str) -> str:
    """A file to write: not empty, not a directory, in a directory that exists."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a directory, not a file")
    parent = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"{text}: its directory {parent} does not exist")
    return text


def output_dir(text: str) -> str:
    """A directory to write into (created if missing): not empty, not an existing file."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path")
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} exists and is not a directory")
    return text


# ------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flax-arch", description=__doc__.splitlines()[0])
    subs = parser.add_subparsers(dest="command", required=True)
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    modules = {}
    for name, (modname, help_) in SUBCOMMANDS.items():
        sub = subs.add_parser(name, help=help_, description=help_)
        if name == chosen:  # import only the chosen subcommand's module
            try:
                modules[name] = importlib.import_module(modname)
            except ModuleNotFoundError as e:
                if e.name != modname:
                    raise
                parser.error(f"'{name}' is not available in this installation ({modname})")
            modules[name].add_arguments(sub)
    args = parser.parse_args(argv)
    try:
        return int(modules[args.command].run(args) or 0)
    except CLIError as e:
        print(f"flax-arch {args.command}: error: {e}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
