"""Cases for the QRNN slide (``fQRNNLayer``) and the paper's variants: every gate variant ×
every pooling implementation, state given or not, zoneout in evaluation mode and (with an
injected mask, the same on both sides) in training mode, stacks uni- and bidirectional.

Layout is batch first, channels last on both sides, (batch, time, features): no layout
conversion. Lengths not divisible by the block length (``chunk``) exercise the partial
block of the 'scan' and 'blocked' poolings.
"""

from __future__ import annotations

import flax_arch.models.qrnn as fq
from flax_arch.parity.harness import Case
from flax_arch.parity.registry import lazy_module

tq = lazy_module("torch_ref.qrnn")

POOLINGS = fq.POOLINGS


def _x(B, T, F):
    return lambda rng: (rng.standard_normal((B, T, F)),)


def _x_state(B, T, F, *state_shape):
    return lambda rng: (rng.standard_normal((B, T, F)), rng.standard_normal(state_shape))


def _x_mask(B, T, F, *mask_shape, keep=0.6):
    # the zoneout keep-mask is a bool input: no gradient is compared for it
    return lambda rng: (rng.standard_normal((B, T, F)), rng.random(mask_shape) < keep)


def _torch_masked(m, x, mask):
    return m(x, None, mask)


def _flax_masked(m, x, mask):
    return m(x, zoneout_mask=mask)


def _layer(F, H, k, pooling, chunk=4, **kw):
    return lambda r: fq.QRNNLayer(F, H, k, pooling, chunk=chunk, rngs=r, **kw)


CASES: list[Case] = []

# the slide: fQRNNLayer (fixed) against QRNNLayer(gates='f'), every pooling, T = 9 with
# blocks of 4 (two full blocks and a partial one)
for p in POOLINGS:
    CASES += [
        Case(f"qrnn_slide_{p}", lambda: tq.fQRNNLayer(3, 6, 2), _layer(3, 6, 2, p),
             _x(2, 9, 3)),
        Case(f"qrnn_slide_state_{p}", lambda: tq.fQRNNLayer(3, 6, 3), _layer(3, 6, 3, p),
             _x_state(2, 9, 3, 2, 6)),
    ]

# the paper's fo- and ifo-pooling, state given, wider kernel
for g in ("fo", "ifo"):
    for p in POOLINGS:
        CASES.append(Case(f"qrnn_{g}_{p}", lambda g=g: tq.QRNNLayer(4, 5, 3, gates=g),
                          _layer(4, 5, 3, p, gates=g), _x_state(3, 7, 4, 3, 5)))

# zoneout, evaluation mode: the expectation f ← 1 − (1 − p)(1 − f), or nothing
CASES += [
    Case("qrnn_zoneout_eval_f", lambda: tq.QRNNLayer(3, 5, 2, zoneout=0.3),
         _layer(3, 5, 2, "scan", zoneout=0.3), _x(2, 6, 3)),
    Case("qrnn_zoneout_eval_ifo", lambda: tq.QRNNLayer(3, 5, 2, gates="ifo", zoneout=0.4),
         _layer(3, 5, 2, "associative", gates="ifo", zoneout=0.4), _x(2, 6, 3)),
    Case("qrnn_zoneout_eval_identity",
         lambda: tq.QRNNLayer(3, 5, 2, gates="fo", zoneout=0.4, zoneout_eval="identity"),
         _layer(3, 5, 2, "blocked", gates="fo", zoneout=0.4, zoneout_eval="identity"),
         _x(2, 6, 3)),
]

# zoneout, training mode, the same keep-mask injected on both sides
for g, p in (("f", "scan"), ("fo", "blocked"), ("ifo", "associative")):
    CASES.append(Case(f"qrnn_zoneout_train_{g}_{p}",
                      lambda g=g: tq.QRNNLayer(3, 5, 2, gates=g, zoneout=0.4),
                      _layer(3, 5, 2, p, gates=g, zoneout=0.4), _x_mask(2, 7, 3, 2, 7, 5),
                      train=True, torch_call=_torch_masked, flax_call=_flax_masked))

# stacks
CASES += [
    Case("qrnn_stack_bidir_state",
         lambda: tq.QRNN(3, 4, 2, kwidth=2, gates="fo", bidirectional=True),
         lambda r: fq.QRNN(3, 4, 2, 2, "scan", gates="fo", bidirectional=True, chunk=3, rngs=r),
         _x_state(2, 7, 3, 4, 2, 4)),
    Case("qrnn_stack_3layers_k1",
         lambda: tq.QRNN(3, 4, 3, kwidth=1, gates="ifo"),
         lambda r: fq.QRNN(3, 4, 3, 1, "associative", gates="ifo", rngs=r), _x(2, 5, 3)),
    Case("qrnn_stack_bidir_zoneout_train",
         lambda: tq.QRNN(3, 4, 2, kwidth=3, zoneout=0.5, bidirectional=True),
         lambda r: fq.QRNN(3, 4, 2, 3, "blocked", zoneout=0.5, bidirectional=True, chunk=2,
                           rngs=r),
         _x_mask(2, 5, 3, 4, 2, 5, 4), train=True, torch_call=_torch_masked,
         flax_call=_flax_masked),
]

# slide-ish / paper sizes: the speed-benchmark layer (B=8, T=500, 256 → 256), a 2-layer
# bidirectional fo-QRNN encoder
CASES += [
    Case(f"qrnn_slide_b8_t500_h256_{p}", lambda: tq.fQRNNLayer(256, 256, 2),
         _layer(256, 256, 2, p, chunk=None), _x(8, 500, 256), tags=("slow",))
    for p in POOLINGS
] + [
    Case("qrnn_paper_bidir_fo_2x256",
         lambda: tq.QRNN(128, 256, 2, kwidth=2, gates="fo", zoneout=0.1, bidirectional=True),
         lambda r: fq.QRNN(128, 256, 2, 2, "scan", gates="fo", zoneout=0.1, bidirectional=True,
                           rngs=r),
         _x_mask(4, 100, 128, 4, 4, 100, 256, keep=0.9), train=True,
         torch_call=_torch_masked, flax_call=_flax_masked, tags=("slow",)),
]

