"""``flax-arch`` command line: ``parity``, ``bench``, ``train``, ``convert``.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; they are imported only when chosen, so ``flax-arch --help`` needs
neither torch nor the heavier tools.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = {
    "parity": ("flax_arch.parity.cli", "compare every registered module with its torch original"),
    "bench": ("flax_arch.bench.cli", "time the registered modules: Flax under jit vs torch"),
    "train": ("flax_arch.training.cli", "train the AE, VAE or DCGAN on a generated dataset"),
    "convert": ("flax_arch.convert", "convert checkpoints between torch and Flax"),
}


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
    return int(modules[args.command].run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
