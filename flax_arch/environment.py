"""What a report needs to be tied to the run that produced it: versions, backend, devices,
XLA flags, and the project's version and git commit.

Versions come from the installed distributions' metadata (``importlib.metadata``), so
recording torch's version does not import torch. Used by ``flax-arch parity`` and
``flax-arch bench`` for their JSON reports and table footers.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess

__all__ = ["environment", "summary", "git_commit"]

_PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "torch", "orbax-checkpoint")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*argv: str) -> str | None:
    """``git -C <this package's directory> argv…``: its stdout, ``None`` on any failure."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        proc = subprocess.run(["git", "-C", here, *argv], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_commit() -> dict:
    """``{"commit": sha, "dirty": bool}`` when this package's files are tracked in a git
    checkout (``dirty``: ``git status --porcelain`` non-empty); both ``None`` otherwise, e.g.
    for an installed wheel, also one installed into an ignored ``.venv`` inside a
    checkout."""
    anchor = os.path.abspath(__file__)
    if _git("ls-files", "--error-unmatch", anchor) is None:
        return {"commit": None, "dirty": None}
    status = _git("status", "--porcelain")
    return {"commit": _git("rev-parse", "HEAD"),
            "dirty": None if status is None else bool(status)}


def environment() -> dict:
    """The environment of this process, JSON-able. Starts JAX's backend if it is not
    running yet (the devices are part of the record)."""
    import jax
    from . import __version__
    devices = jax.devices()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: _version(name) for name in _PACKAGES},
        "backend": jax.default_backend(),
        "devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind if devices else None,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "flax_arch": __version__,
        **git_commit(),
    }


def summary(env: dict) -> str:
    """One line for a table footer."""
    v = env["versions"]
    commit = env.get("commit")
    where = (commit[:10] + ("+dirty" if env.get("dirty") else "")) if commit else "no git"
    return (f"flax-arch {env['flax_arch']} ({where}); jax {v['jax']}, flax {v['flax']}, "
            f"torch {v['torch']}, numpy {v['numpy']}, python {env['python']}; "
            f"{env['backend']} {env['device_kind']}; XLA_FLAGS={env['xla_flags'] or '(none)'}")
