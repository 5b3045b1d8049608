"""``flax-arch translate pkg.module:factory``: translate your torch module, prove parity.

``factory`` is any importable callable (a class or a function) taking no arguments. It
returns either the torch module, or ``(module, example_inputs)`` with
``example_inputs`` a tuple of tensors (needed for integer inputs such as token ids). With a
bare module, ``--shape 8x3x32x32`` (repeatable, one per forward argument) draws standard
normal float inputs.

The module is translated with :func:`flax_arch.from_torch`, then compared with
:func:`flax_arch.parity.assert_parity`, in each ``--dtype``: forward outputs, gradients
with respect to the float inputs and every parameter, the buffers after the call, and
``--steps`` optimizer steps (``--optimizer``, ``--lr``). ``--train`` compares in training
mode (batch statistics, running-statistic updates). The report is printed per dtype.

Exit status: 0 every dtype passed, 1 a comparison failed, 2 a user error (a factory that
cannot be imported or returns something else, a module that cannot be translated: the
message names the node, the op and the source line).

Example::

    flax-arch translate torchvision.models:resnet18 --shape 2x3x64x64 --train --steps 3
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

__all__ = ["add_arguments", "run", "load_factory"]


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 8x3x32x32") from None
    if not dims or any(d < 0 for d in dims):
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 8x3x32x32")
    return dims


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..cli import nonnegative_int, positive_float, seed_int
    p.add_argument("factory", help="pkg.module:callable returning the torch module, or "
                                   "(module, example_inputs)")
    p.add_argument("--shape", type=_shape, action="append", default=[],
                   help="the shape of one float input (repeat per forward argument), e.g. "
                        "8x3x32x32; not needed when the factory returns example inputs")
    p.add_argument("--dtype", action="append", choices=("float64", "float32", "float16",
                                                         "bfloat16"),
                   help="dtype to compare in (repeatable; default float64 and float32)")
    p.add_argument("--train", action="store_true",
                   help="compare in training mode (BatchNorm batch statistics and updates)")
    p.add_argument("--steps", type=nonnegative_int, default=3,
                   help="optimizer steps to compare (default 3)")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="sgd")
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the drawn inputs")


def load_factory(spec: str):
    """The callable named by ``pkg.module:attr`` (the current directory importable)."""
    from ..cli import CLIError
    modname, sep, attr = spec.partition(":")
    if not sep or not modname or not attr:
        raise CLIError(f"factory {spec!r} must read pkg.module:callable")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        mod = importlib.import_module(modname)
    except ImportError as e:
        raise CLIError(f"cannot import {modname!r}: {e}") from None
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CLIError(f"{modname!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise CLIError(f"{spec} is not callable")
    return obj


def _model_and_inputs(args):
    import torch
    from ..cli import CLIError
    made = load_factory(args.factory)()
    if isinstance(made, tuple) and len(made) == 2 and isinstance(made[0], torch.nn.Module):
        model, inputs = made
        inputs = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
        if args.shape:
            raise CLIError("the factory returned example inputs; drop --shape")
    elif isinstance(made, torch.nn.Module):
        model = made
        if not args.shape:
            raise CLIError("the factory returned only a module: give each forward "
                           "argument's shape with --shape")
        g = torch.Generator().manual_seed(args.seed)
        inputs = tuple(torch.randn(s, generator=g) for s in args.shape)
    else:
        raise CLIError(f"the factory returned {type(made).__name__}; expected a "
                       f"torch.nn.Module or (module, example_inputs)")
    bad = [i for i, t in enumerate(inputs) if not isinstance(t, torch.Tensor)]
    if bad:
        raise CLIError(f"example input {bad[0]} is not a tensor")
    return model, inputs


def run(args) -> int:
    import jax
    jax.config.update("jax_enable_x64", True)  # float64 comparisons
    from ..cli import CLIError
    from ..interop import tensor_to_numpy
    from ..parity import assert_parity
    from . import TranslationError, from_torch
    model, inputs = _model_and_inputs(args)
    model.train(args.train)
    try:
        fm = from_torch(model, inputs)
    except (TranslationError, TypeError) as e:
        raise CLIError(f"cannot translate {args.factory}: {e}") from None
    print(f"translated {type(model).__name__}: {len(fm._fa_programs[0]) - 1} ops, "
          f"{len(list(model.state_dict()))} state_dict entries")
    arrays = [tensor_to_numpy(t.detach()) for t in inputs]
    ok = True
    for dtype in args.dtype or ("float64", "float32"):
        try:
            report = assert_parity(model, fm, arrays, dtype=dtype, train=args.train,
                                   steps=args.steps, optimizer=args.optimizer, lr=args.lr,
                                   name=type(model).__name__)
            print(report)
        except AssertionError as e:
            ok = False
            print(e)
    return 0 if ok else 1
