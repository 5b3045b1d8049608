"""``first_divergence``: bugs planted in the Flax port only (torch, the reference, is never
touched) are charged to the layer that makes them, in both modes; a unit flipped across a
ReLU kink within float32 rounding is named as a kink flip; a rounding disagreement is named
precision; and the diagnosis never raises."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from flax_arch import nn as fnn
from flax_arch.parity import Case, run_case
from flax_arch.parity.divergence import Divergence, first_divergence
from flax_arch.parity.harness import tolerance


def _check_line(d):
    assert isinstance(d, Divergence) and "\n" not in str(d), d
    return d


# ---------------------------------------------------------------- a conv stack


class _ScaledConv(fnn.Conv2d):
    """The planted bug: a convolution whose output is ``scale`` times too large."""
    scale = 1.001

    def __call__(self, x, **kw):
        return self.scale * super().__call__(x, **kw)


def _conv_stack(faulty: int, scale: float = 1.001) -> Case:
    """Four Conv2d(3, 3, 3, padding=1); the Flax one at index ``faulty`` scales by
    ``scale``."""
    import torch

    def flax(rngs):
        convs = [(_ScaledConv if i == faulty else fnn.Conv2d)(3, 3, 3, padding=1, rngs=rngs)
                 for i in range(4)]
        convs[faulty].scale = scale
        return fnn.Sequential(*convs)
    return Case("conv_stack", lambda: torch.nn.Sequential(*[
        torch.nn.Conv2d(3, 3, 3, padding=1) for _ in range(4)]), flax,
        lambda rng: (rng.standard_normal((2, 3, 6, 7)),),
        in_layouts=["channels"], out_layouts=["channels"])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_planted_conv_bug_is_charged_to_its_layer_and_only_it_in_isolation(dtype):
    """Layer 1 of 4 scales its output by 1.001. Layers 2 and 3 consume it: end to end
    (accumulated) they differ too, but fed torch's own inputs (isolated) they agree, and
    every layer was checked. The error is the 1e-3 of the plant, measured against torch."""
    case = _conv_stack(faulty=1)
    assert not run_case(case, dtype, locate=False).passed
    iso = _check_line(first_divergence(case, dtype))
    acc = _check_line(first_divergence(case, dtype, mode="accumulated"))
    for d, mode in ((iso, "isolated"), (acc, "accumulated")):
        assert (d.path, d.type, d.cause, d.mode, d.dtype) == ("1", "Conv2d", "semantic",
                                                              mode, dtype), d
        assert d.error == pytest.approx(1e-3, rel=0.02) and not d.unchecked, d
        assert str(d).startswith("1 (Conv2d: semantic, rel err 1.0"), d
    assert iso.others == (), iso  # layers 2, 3 (and 0) clean; the root holds layer 1
    assert {"2 (semantic)", "3 (semantic)"} <= set(acc.others), acc
    last = first_divergence(_conv_stack(faulty=3), dtype)  # a fault past clean layers
    assert (last.path, last.cause, last.others) == ("3", "semantic", ()), last


def test_low_precision_charges_only_what_rounding_cannot_explain():
    """In bfloat16 (eps 2⁻⁷) the same 0.1 % plant is within rounding: the harness passes
    it and the diagnosis finds nothing. A 10 % one is semantic, charged to its layer."""
    small = _conv_stack(faulty=1)
    assert run_case(small, "bfloat16", locate=False).passed
    assert first_divergence(small, "bfloat16") is None
    d = _check_line(first_divergence(_conv_stack(faulty=1, scale=1.1), "bfloat16"))
    assert (d.path, d.cause, d.others, d.dtype) == ("1", "semantic", (), "bfloat16"), d
    assert d.error == pytest.approx(0.1, rel=0.1) and "vs float64" in d.detail, d


def test_first_divergence_names_a_planted_bug_behind_a_shared_module():
    """The U-Net calls one ``MaxPool2d`` at every level. A bug planted in the second
    encoder level's first convolution is found there, in both modes; recording the torch
    side must not change what the shared pool returns (a hook that returned its first
    recording did)."""
    from flax_arch.parity.registry import all_cases, select

    (case,) = select(all_cases(), ["^unet_odd_depth3$"])

    def planted(m, x):
        conv = m.encoder[1][0]
        conv.bias.set_value(conv.bias[...] + 0.25)
        return m(x)

    for mode in ("isolated", "accumulated"):
        where = str(first_divergence(dataclasses.replace(case, flax_call=planted),
                                     "float64", mode=mode))
        assert where.startswith("encoder.1.0 (Conv2d: semantic"), where


def test_first_divergence_behind_an_lstm_in_a_conv_model():
    """Conv1d (channels-first in torch, channels-last in Flax) → LSTM (batch first, the
    same layout on both sides; a tuple output) → Linear. A bug planted in the Linear is
    charged to the Linear in both modes: the LSTM's input and output are taken as they
    are, not "converted" like a conv's."""
    import torch

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(3, 6, 3, padding=1)
            self.lstm = torch.nn.LSTM(6, 5, batch_first=True)
            self.fc = torch.nn.Linear(5, 2)

        def forward(self, x):  # (N, 3, L)
            h, _ = self.lstm(self.conv(x).transpose(1, 2))  # (N, L, 6) → (N, L, 5)
            return self.fc(h)

    class FlaxNet(nnx.Module):
        def __init__(self, rngs):
            self.conv = fnn.Conv1d(3, 6, 3, padding=1, rngs=rngs)
            self.lstm = fnn.LSTM(6, 5, batch_first=True, rngs=rngs)
            self.fc = fnn.Linear(5, 2, rngs=rngs)

        def __call__(self, x):  # (N, L, 3)
            h, _ = self.lstm(self.conv(x))
            return self.fc(h)

    def planted(m, x):
        m.fc.bias.set_value(m.fc.bias[...] + 0.5)
        return m(x)

    good = Case("conv_lstm", TorchNet, FlaxNet, lambda rng: (rng.standard_normal((2, 3, 7)),),
                in_layouts=["channels"])
    for mode in ("isolated", "accumulated"):
        d = first_divergence(dataclasses.replace(good, flax_call=planted), "float64",
                             mode=mode)
        assert str(d).startswith("fc (Linear: semantic"), d
        assert not d.unchecked, d  # the LSTM was compared too, and agreed
        assert first_divergence(good, "float64", mode=mode) is None
    assert run_case(good, "float64").passed


# ---------------------------------------------------------------- never raises


def test_a_diagnosis_that_fails_inside_returns_the_error():
    """A torch_call that raises on its second run (the diagnosis's float64 reference run)
    and an unknown mode: both come back as a result naming the error."""
    import torch
    runs = []

    def twice(m, x):
        runs.append(1)
        if len(runs) == 2:
            raise RuntimeError("second run refused")
        return m(x)

    case = Case("lin", lambda: torch.nn.Linear(4, 3), lambda r: fnn.Linear(4, 3, rngs=r),
                lambda rng: (rng.standard_normal((5, 4)),), torch_call=twice)
    d = _check_line(first_divergence(case, "float32"))
    assert d.cause == "diagnosis failed" and d.path is None, d
    assert "RuntimeError: second run refused" in str(d) and len(runs) == 2
    bad = first_divergence(dataclasses.replace(case, torch_call=None), "float32", mode="x")
    assert bad.cause == "diagnosis failed" and "mode must be one of" in str(bad), bad


class _Guarded(fnn.Linear):
    """Callable only inside its parent's call (a module that reads its parent's state)."""
    inside = False

    def __call__(self, x):
        if not _Guarded.inside:
            raise RuntimeError("only inside its parent")
        return super().__call__(x)


class _Masked(fnn.Linear):
    """Called with an extra mask array that torch's Linear does not get."""

    def __call__(self, x, mask):
        return super().__call__(x * mask)


def test_calls_that_cannot_be_isolated_are_listed_not_checked():
    """``a`` raises outside its parent, ``b`` takes an array torch's module does not: both
    are named as not checked, with why, and the bug planted in ``c`` is still found."""
    import torch

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = (torch.nn.Linear(4, 4) for _ in range(3))

        def forward(self, x):
            return self.c(torch.tanh(self.b(torch.tanh(self.a(x)))))

    class FlaxNet(nnx.Module):
        def __init__(self, rngs):
            self.a, self.b = _Guarded(4, 4, rngs=rngs), _Masked(4, 4, rngs=rngs)
            self.c = fnn.Linear(4, 4, rngs=rngs)

        def __call__(self, x):
            _Guarded.inside = True
            try:
                h = jnp.tanh(self.a(x))
            finally:
                _Guarded.inside = False
            return self.c(jnp.tanh(self.b(h, jnp.ones_like(h))))

    def planted(m, x):
        m.c.kernel.set_value(m.c.kernel[...] * 1.01)
        return m(x)

    case = Case("guarded", TorchNet, FlaxNet, lambda rng: (rng.standard_normal((3, 4)),),
                flax_call=planted)
    d = _check_line(first_divergence(case, "float64"))
    assert (d.path, d.cause) == ("c", "semantic"), d
    reasons = dict(u.split(" ", 1) for u in d.unchecked)
    assert set(reasons) == {"a", "b"}, d
    assert "only inside its parent" in reasons["a"], d
    assert "inputs not mapped: torch passes 1 tensor(s), Flax 2" in reasons["b"], d


# ---------------------------------------------------------------- kink flips and rounding


class _Mirror(fnn.Linear):
    """Unit (0, 0) of the output negated: a perturbation of 2·|h00|, a few ulps of the
    layer's scale when h00 sits within float32 rounding of 0."""

    def __call__(self, x):
        out = super().__call__(x)
        return out.at[0, 0].multiply(-1)


def _kink_case(leaky: bool, mirror: bool = True) -> Case:
    """Linear(4, 6) → ReLU (or LeakyReLU(0.1)) → Linear(6, 3) on 5 rows; row 0 of the input
    is zero, so the pre-activation h[0, 0] is fc1's bias, set to 1e-9: within float32
    rounding of the kink (the layer's scale is O(1)), exactly, in every precision. Flax's
    ReLU is ``jax.nn.relu`` (found through its producer, fc1) and its LeakyReLU a module
    (its own recorded input)."""
    import torch

    def torch_net():
        net = torch.nn.Sequential(torch.nn.Linear(4, 6),
                                  torch.nn.LeakyReLU(0.1) if leaky else torch.nn.ReLU(),
                                  torch.nn.Linear(6, 3))
        with torch.no_grad():
            net[0].bias[0] = 1e-9
        return net

    def flax_net(rngs):
        act = fnn.LeakyReLU(0.1) if leaky else jax.nn.relu
        return fnn.Sequential((_Mirror if mirror else fnn.Linear)(4, 6, rngs=rngs), act,
                              fnn.Linear(6, 3, rngs=rngs))

    def inputs(rng):
        x = rng.standard_normal((5, 4))
        x[0] = 0.0
        return (x,)
    return Case("kink", torch_net, flax_net, inputs)


@pytest.mark.parametrize("leaky", [False, True])
def test_a_unit_flipped_across_a_kink_within_rounding_is_a_kink_flip(leaky):
    """The Flax side mirrors one pre-activation across 0 by 2e-9, less than float32's
    rounding of the layer: every forward output agrees within float32's tolerance, the
    gradients do not (the unit's slope is 0/0.1 in one, 1 in the other). The diagnosis
    names the activation, one unit, at a margin below one rounding unit. In float64 the
    same 2e-9 is far beyond rounding: a semantic error of fc1."""
    import torch
    case = _kink_case(leaky)
    torch.manual_seed(0)
    with torch.no_grad():  # the reference's pre-activations: h[0, 0] = 1e-9, scale O(1)
        h = case.torch_module()[0](torch.as_tensor(
            case.inputs(np.random.default_rng(0))[0], dtype=torch.float32))
    assert 0 < 2 * float(h[0, 0]) < np.finfo(np.float32).eps * float(h.abs().max())
    r = run_case(case, "float32", locate=False)
    assert r.forward_err <= tolerance("float32") < r.grad_err, r
    d = _check_line(first_divergence(case, "float32"))
    assert (d.path, d.type, d.cause, d.units) == (
        "1", "LeakyReLU" if leaky else "ReLU", "kink flip", 1), d
    assert 0 < d.margin < 1, d
    assert ("input from 0" in d.detail) != leaky, d
    assert d.mode == "accumulated" and "kink flip, 1 unit(s)" in str(d), d  # end to end
    sem = first_divergence(case, "float64")
    assert (sem.path, sem.cause) == ("0", "semantic"), sem
    plain = _kink_case(leaky, mirror=False)  # the control: no flip, nothing found
    assert run_case(plain, "float32").passed and first_divergence(plain, "float32") is None


class _NudgedConv(fnn.Conv1d):
    """Output (sample 0, position 1, channel 0; channels-last) raised by two ulps."""

    def __call__(self, x, **kw):
        out = super().__call__(x, **kw)
        v = jax.lax.stop_gradient(out[0, 1, 0])  # nextafter has no derivative
        return out.at[0, 1, 0].add(jnp.nextafter(jnp.nextafter(v, jnp.inf), jnp.inf) - v)


def test_a_max_pool_tie_broken_differently_is_a_kink_flip():
    """Input positions 0 and 1 of sample 0 are equal, so the 1×1 convolution's outputs
    there tie exactly and torch's MaxPool1d(2) routes the gradient to position 0; the Flax
    side raises position 1 of channel 0 by two ulps (forward: within float32 rounding), so
    its gradient goes to position 1. One window flipped, margin 0: a tie."""
    import torch

    def inputs(rng):
        x = rng.standard_normal((2, 2, 6))
        x[0, :, 1] = x[0, :, 0]
        return (x,)
    case = Case("pool_tie", lambda: torch.nn.Sequential(torch.nn.Conv1d(2, 3, 1),
                                                         torch.nn.MaxPool1d(2)),
                lambda r: fnn.Sequential(_NudgedConv(2, 3, 1, rngs=r), fnn.MaxPool1d(2)),
                inputs, in_layouts=["channels"], out_layouts=["channels"])
    r = run_case(case, "float32", locate=False)
    assert r.forward_err <= tolerance("float32") < r.grad_err, r
    d = _check_line(first_divergence(case, "float32"))
    assert (d.path, d.type, d.cause, d.units, d.margin) == ("1", "MaxPool1d", "kink flip",
                                                            1, 0.0), d


class _ExactLinear(fnn.Linear):
    """A Linear that computes in float64 and rounds once: more accurate than torch's
    float32, not different."""

    def __call__(self, x):
        w, b = self.kernel[...].astype(jnp.float64), self.bias[...].astype(jnp.float64)
        return (x.astype(jnp.float64) @ w + b).astype(x.dtype)


def test_a_rounding_disagreement_is_precision_not_semantic():
    """Inputs 1000 + noise and biases that cancel the 1000·Σw: the float32 output is O(1)
    after cancelling terms of 1e4, so torch's float32 rounding is ~1e-4 of it. A Flax
    Linear that is *more* accurate then differs from torch beyond float32's tolerance, yet
    is the closer of the two to the float64 reference: precision. In float64 it agrees."""
    import torch

    def torch_net():
        lin = torch.nn.Linear(64, 8)
        with torch.no_grad():
            lin.bias.copy_(-1000 * lin.weight.sum(1))
        return lin

    case = Case("cancel", torch_net, lambda r: _ExactLinear(64, 8, rngs=r),
                lambda rng: (1000 + rng.standard_normal((3, 64)),))
    assert run_case(case, "float32", locate=False).forward_err > tolerance("float32")
    d = _check_line(first_divergence(case, "float32"))
    assert (d.path, d.cause, d.mode) == ("", "precision", "isolated"), d
    assert str(d).startswith("(root) (Linear: precision"), d
    assert first_divergence(case, "float64") is None
