"""Cases for the "advanced architectures" slides: AE, VAE, AlexNet, Inception module,
ResLayer.

Small widths / sizes run in CI; the slides' own sizes are tagged ``slow``. Modules with a
mode (BatchNorm, Dropout) run in eval and in train mode. Eval cases start from random
BatchNorm affine parameters and running statistics (so eval mode is not an identity
normalisation); train cases compare the updated running statistics too.

AlexNet input sizes and the feature map reaching ``avgpool`` (6×6 output):
63..94 → 1×1 (every bin repeats the one value), 127 → 3, 163 → 4, 224 → 6 (exact bins),
255 → 7, 287 → 8, 351 → 10 (7..10: overlapping bins).
Dropout masks cannot be shared between torch and JAX, so train-mode AlexNet cases use
``dropout=0.0``; ``test_classifiers.py`` checks the real rate on the Flax side.
The VAE gets the same explicit ``eps`` on both sides.
"""

from __future__ import annotations

import numpy as np

from flax_arch.models.alexnet import AlexNet
from flax_arch.models.autoencoders import AE, VAE
from flax_arch.models.inception import InceptionModule
from flax_arch.models.resnet import ResLayer
from flax_arch.parity.harness import Case
from flax_arch.parity.registry import lazy_module

torch = lazy_module("torch")
t_alexnet = lazy_module("torch_ref.alexnet")
t_ae = lazy_module("torch_ref.autoencoders")
t_inception = lazy_module("torch_ref.inception")
t_resnet = lazy_module("torch_ref.resnet")

C = "channels"

NARROW = dict(channels=(8, 16, 24, 16, 16), hidden=32)  # the slide's structure, small widths


def _normal(*shapes):
    """Inputs: one standard-normal array per shape."""
    return lambda rng: tuple(rng.standard_normal(s) for s in shapes)


def _normal_clear_of_zero(*shapes, gap=1e-3):
    """Standard-normal inputs moved ``gap`` away from 0 (``z + sign(z)·gap``).

    For the ResLayer: its output ReLU sees ``x + conv2(x)``, and where the trunk's last
    ReLU is off that is the input itself. An input entry within float32 rounding of 0
    would make the comparison depend on rounding (see ``flax_arch/parity/kinks.py``),
    and no bias can move it."""
    def make(rng):
        zs = [rng.standard_normal(s) for s in shapes]
        return tuple(z + np.sign(z) * gap for z in zs)
    return make


def _random_bn(make):
    """Build the torch module, then give every BatchNorm random affine parameters and
    running statistics (from torch's RNG, seeded by the harness), so eval mode is no
    identity normalisation."""
    def build():
        m = make()
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.uniform_(-0.5, 0.5)
                    mod.running_mean.normal_(0.0, 0.5)
                    mod.running_var.uniform_(0.5, 2.0)
                    mod.num_batches_tracked.fill_(5)
        return m
    return build


def _alexnet(name, size, *, batch=2, train=False, slow=False, num_classes=10, seed=0, **kw):
    h, w = (size, size) if isinstance(size, int) else size
    if train:
        kw["dropout"] = 0.0  # masks cannot match across frameworks; see module docstring
    return Case(name, lambda: t_alexnet.AlexNet(num_classes, **kw),
                lambda r: AlexNet(num_classes, rngs=r, **kw),
                _normal((batch, 3, h, w)), [C], [None], train=train,
                tags=("slow",) if slow else (), seed=seed)


CASES = [
    # ---- auto-encoders (no mode dependence)
    Case("ae_small", lambda: t_ae.AE(32), lambda r: AE(32, rngs=r), _normal((6, 32))),
    Case("ae", lambda: t_ae.AE(784), lambda r: AE(784, rngs=r), _normal((10, 784)),
         tags=("slow",)),
    Case("vae_small", lambda: t_ae.VAE(), lambda r: VAE(rngs=r), _normal((3, 784), (3, 20))),
    Case("vae_mnist_images", lambda: t_ae.VAE(), lambda r: VAE(rngs=r),
         _normal((2, 1, 28, 28), (2, 20)), [C, None], [None, None, None]),
    Case("vae", lambda: t_ae.VAE(), lambda r: VAE(rngs=r), _normal((10, 784), (10, 20)),
         tags=("slow",)),

    # ---- AlexNet, narrow (slide structure, small widths) at several input sizes
    # seeds other than 0 (here and below): with seed 0 a max-pool window has its two
    # largest entries within float32 rounding of each other (flax_arch/parity/kinks.py).
    # The first well-posed seed is taken; at the slide's sizes (tens of thousands of pool
    # windows, ~2-4 near-ties per draw on average) that took 6, 21 and 35 draws.
    _alexnet("alexnet_narrow_224", 224, seed=1, **NARROW),
    _alexnet("alexnet_narrow_overlap_255x287", (255, 287), **NARROW),
    _alexnet("alexnet_narrow_repeat_127x163_train", (127, 163), train=True, seed=1,
             **NARROW),
    _alexnet("alexnet_narrow_overlap_351_train", 351, batch=1, train=True, **NARROW),
    # full slide widths at the smallest valid input (1×1 map repeated to 6×6)
    _alexnet("alexnet_full_67", 67, num_classes=1000),
    # the slide: 1×3×224×224 → 1×1000, and larger overlapping-bin inputs
    _alexnet("alexnet", 224, batch=1, num_classes=1000, slow=True, seed=6),
    _alexnet("alexnet_train", 224, batch=2, num_classes=1000, train=True, slow=True, seed=21),
    _alexnet("alexnet_overlap_255x351", (255, 351), batch=1, num_classes=1000, slow=True,
             seed=35),

    # ---- Inception module (no mode dependence)
    Case("inception_small", lambda: t_inception.InceptionModule(6, 4, 3, 5, 2, 3, 4),
         lambda r: InceptionModule(6, 4, 3, 5, 2, 3, 4, rngs=r), _normal((2, 6, 9, 7)),
         [C], [C]),
    Case("inception_tiny_map", lambda: t_inception.InceptionModule(5, 2, 4, 3, 3, 2, 1),
         lambda r: InceptionModule(5, 2, 4, 3, 3, 2, 1, rngs=r), _normal((3, 5, 2, 3)),
         [C], [C]),
    # GoogLeNet's inception (3a)
    Case("inception_3a", lambda: t_inception.InceptionModule(192, 64, 96, 128, 16, 32, 32),
         lambda r: InceptionModule(192, 64, 96, 128, 16, 32, 32, rngs=r),
         _normal((1, 192, 28, 28)), [C], [C], tags=("slow",)),

    # ---- ResLayer (BatchNorm: eval and train)
    Case("reslayer_small", _random_bn(lambda: t_resnet.ResLayer(8)),
         lambda r: ResLayer(8, rngs=r), _normal_clear_of_zero((2, 8, 9, 7)), [C], [C]),
    Case("reslayer_small_train", _random_bn(lambda: t_resnet.ResLayer(8)),
         lambda r: ResLayer(8, rngs=r), _normal_clear_of_zero((3, 8, 7, 6)), [C], [C],
         train=True),
    Case("reslayer", _random_bn(lambda: t_resnet.ResLayer(64)),
         lambda r: ResLayer(64, rngs=r), _normal_clear_of_zero((1, 64, 100, 100)), [C], [C],
         tags=("slow",)),
    # Slide size in train mode: each ReLU sees 640,000 pre-activations, and the two
    # frameworks' float32 values differ by up to ~1e-5 (batch statistics summed in other
    # orders). A unit within that distance of the kink could switch sides, and its
    # gradient would jump. The case is well-posed (Case.well_posed, flax_arch/parity/
    # kinks.py): the trunk's kinks are cleared by bias shifts, the output ReLU's (behind the
    # residual sum) through the last BatchNorm's bias, and the inputs stay clear of 0
    # (_normal_clear_of_zero), where that ReLU sees the input itself.
    Case("reslayer_train", _random_bn(lambda: t_resnet.ResLayer(64)),
         lambda r: ResLayer(64, rngs=r), _normal_clear_of_zero((1, 64, 100, 100)), [C], [C],
         train=True, tags=("slow",)),
]
