"""Cases for the activation twins (:mod:`flax_arch.nn.activation`): torch ``nn.Sequential``
stacks of activations between linear / convolution layers, against the matching
:class:`flax_arch.nn.Sequential`. The linear layers give every activation a spread of
inputs on both sides of its kinks and bends, and gradients flow through all of them.

Only kinks that :mod:`flax_arch.parity.kinks` knows (ReLU, LeakyReLU, Hardtanh) are kept out
of rounding reach by ``well_posed``; the other piecewise activations (PReLU at 0, Hardswish
at ±3) sit in cases whose seeds leave no unit near those points.
"""

from __future__ import annotations


from flax_arch.nn import Conv2d, Linear, Sequential
from flax_arch.nn import activation as act
from flax_arch.parity.harness import Case
from flax_arch.parity.registry import lazy_module

torch = lazy_module("torch")

C = "channels"


def _normal(*shape):
    return lambda rng: (rng.standard_normal(shape),)


# (torch class name, constructor args) of the smooth stack; each follows a Linear(8 → 8)
# (GLU halves: its Linear is 8 → 16)
# (two short stacks, not one long one: through 13 saturating activations the float16
# input gradient underflows, in torch as here, and nothing is measured)
_SMOOTH = [("ELU", (0.7,)), ("GELU", ("tanh",)), ("Mish", ()), ("GLU", (-1,)),
           ("Softplus", (2.0, 5.0)), ("SiLU", ())]
_SMOOTH2 = [("SELU", ()), ("CELU", (1.5,)), ("GELU", ("none",)), ("Softsign", ()),
            ("Tanhshrink", ()), ("LogSigmoid", ()), ("Sigmoid", ())]
_KINKED = [("ReLU", ()), ("Hardtanh", (-0.5, 0.5)), ("LeakyReLU", (0.1,)), ("ReLU6", ()),
           ("Hardswish", ()), ("Tanh", ())]


def _stack(spec, last, lib, linear, rngs=None):
    """[Linear, activation]* then Linear(8 → 5) and ``last``, in torch or flax_arch."""
    layers = []
    for name, args in spec:
        layers.append(linear(8, 16 if name == "GLU" else 8, rngs))
        layers.append(getattr(lib, name)(*args))
    layers.append(linear(8, 5, rngs))
    layers.append(getattr(lib, last[0])(*last[1]))
    return layers


def _torch_stack(spec, last):
    return torch.nn.Sequential(*_stack(spec, last, torch.nn,
                                       lambda i, o, r: torch.nn.Linear(i, o)))


def _flax_stack(spec, last, rngs):
    return Sequential(*_stack(spec, last, act, lambda i, o, r: Linear(i, o, rngs=r), rngs))


def _conv_torch():
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.PReLU(4, 0.1),
                         nn.Conv2d(4, 6, 3), nn.PReLU(), nn.Softmax2d(), nn.Conv2d(6, 5, 1))


def _conv_flax(r):
    return Sequential(Conv2d(3, 4, 3, padding=1, rngs=r), act.PReLU(4, 0.1),
                      Conv2d(4, 6, 3, rngs=r), act.PReLU(), act.Softmax2d(),
                      Conv2d(6, 5, 1, rngs=r))


CASES = [
    Case("activations_smooth", lambda: _torch_stack(_SMOOTH, ("Softmin", (-1,))),
         lambda r: _flax_stack(_SMOOTH, ("Softmin", (-1,)), r), _normal(7, 8),
         well_posed=True),
    Case("activations_smooth2", lambda: _torch_stack(_SMOOTH2, ("LogSoftmax", (-1,))),
         lambda r: _flax_stack(_SMOOTH2, ("LogSoftmax", (-1,)), r), _normal(7, 8),
         well_posed=True),
    Case("activations_kinked", lambda: _torch_stack(_KINKED, ("LogSoftmax", (-1,))),
         lambda r: _flax_stack(_KINKED, ("LogSoftmax", (-1,)), r), _normal(7, 8),
         well_posed=True),
    Case("activations_prelu_softmax2d", _conv_torch, _conv_flax, _normal(2, 3, 6, 5), [C], [C],
         well_posed=True),
]
