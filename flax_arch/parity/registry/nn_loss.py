"""Cases for the loss twins (:mod:`flax_arch.nn.loss`): a linear classifier head with a
weighted cross-entropy (``Sequential(Linear, CrossEntropyLoss)``, the loss's ``weight``
buffer loaded through the converter next to the Linear's parameters), a spatial
cross-entropy on a channels-last input with label smoothing and ignored positions,
BCE-with-logits with ``pos_weight``, a Gaussian NLL with a homoscedastic variance, a
weighted multi-label soft margin loss, and an unreduced Huber loss. (MultiMarginLoss and
MultiLabelMarginLoss are left out: torch has no float16/bfloat16 CPU kernel for them.)
Gradients w.r.t. every floating input are compared (probabilities and variances too)."""

from __future__ import annotations

import numpy as np

from flax_arch.nn import Linear, Sequential
from flax_arch.nn import loss as L
from flax_arch.parity.harness import Case
from flax_arch.parity.registry import lazy_module

torch = lazy_module("torch")

C = "channels"
_W5 = np.array([0.5, 1.0, 2.0, 0.75, 1.25])
_W4 = np.array([1.5, 0.5, 1.0, 2.0])


def _tensor(a):
    return torch.tensor(np.asarray(a))


def _head_inputs(rng):
    return rng.standard_normal((6, 8)), rng.integers(0, 5, 6)


def _spatial_inputs(rng):
    t = rng.integers(0, 4, (2, 3, 3))
    t[0, 0, 0] = t[1, 2, 1] = 2  # ignored positions
    return rng.standard_normal((2, 4, 3, 3)), t


def _bce_inputs(rng):
    return rng.standard_normal((5, 4, 2)) * 2, rng.uniform(0, 1, (5, 4, 2))


def _gauss_inputs(rng):
    return rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.uniform(0.2, 2, (4, 1))


def _multilabel_inputs(rng):
    return rng.standard_normal((6, 4)), rng.uniform(0, 1, (6, 4))


def _huber_inputs(rng):
    return rng.standard_normal((3, 5)), rng.standard_normal((3, 5))


CASES = [
    Case("loss_linear_cross_entropy",
         lambda: torch.nn.Sequential(torch.nn.Linear(8, 5),
                                     torch.nn.CrossEntropyLoss(weight=_tensor(_W5))),
         lambda r: Sequential(Linear(8, 5, rngs=r), L.CrossEntropyLoss(weight=_W5)),
         _head_inputs, torch_call=lambda m, x, t: m[1](m[0](x), t),
         flax_call=lambda m, x, t: m[1](m[0](x), t), well_posed=True),
    Case("loss_cross_entropy_spatial_smoothing",
         lambda: torch.nn.CrossEntropyLoss(weight=_tensor(_W4), ignore_index=2,
                                           label_smoothing=0.1),
         lambda r: L.CrossEntropyLoss(weight=_W4, ignore_index=2, label_smoothing=0.1),
         _spatial_inputs, [C, None], [None], well_posed=True),
    Case("loss_bce_with_logits_pos_weight",
         lambda: torch.nn.BCEWithLogitsLoss(pos_weight=_tensor([[0.5, 2.0]] * 4),
                                            reduction="sum"),
         lambda r: L.BCEWithLogitsLoss(pos_weight=np.array([[0.5, 2.0]] * 4), reduction="sum"),
         _bce_inputs, well_posed=True),
    Case("loss_gaussian_nll_homoscedastic",
         lambda: torch.nn.GaussianNLLLoss(full=True),
         lambda r: L.GaussianNLLLoss(full=True), _gauss_inputs, well_posed=True),
    Case("loss_multilabel_soft_margin_weighted",
         lambda: torch.nn.MultiLabelSoftMarginLoss(weight=_tensor(_W4)),
         lambda r: L.MultiLabelSoftMarginLoss(weight=_W4), _multilabel_inputs,
         well_posed=True),
    Case("loss_huber_none", lambda: torch.nn.HuberLoss(reduction="none", delta=0.5),
         lambda r: L.HuberLoss(reduction="none", delta=0.5), _huber_inputs, well_posed=True),
]
