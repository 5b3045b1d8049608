"""``flax-arch bench`` with the transposed convolutions' ``method='auto'`` replaced.

``CT_METHOD=conv+phases python benchmarks/conv_transpose_ab.py --only '^dcgan_generator'
--no-compile`` runs the bench as usual, except that every ConvTranspose whose 'auto' would
pick 'phases' computes with ``CT_METHOD`` instead ('phases', 'conv+phases', 'matmul',
'conv'). Run it alternately with two values to compare them on whole models
(docs/benchmarks.md, "Issue 13").
"""

from __future__ import annotations

import os
import sys

import flax_arch.nn.conv as conv
from flax_arch.cli import main

_METHOD = os.environ.get("CT_METHOD", "phases")
_auto = conv._ConvTransposeNd.resolve_method


def _resolve(self) -> str:
    chosen = _auto(self)
    return _METHOD if self.method == "auto" and chosen == "phases" else chosen


if __name__ == "__main__":
    conv._ConvTransposeNd.resolve_method = _resolve
    sys.exit(main(["bench", *sys.argv[1:]]))
