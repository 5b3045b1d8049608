"""Cases for the encoder–decoder / generative slides: SEGAN blocks and generator, DCGAN
generator and discriminator, U-Net.

Small widths run in CI; the slides' full sizes (and the paper's U-Net) are tagged "slow".
Inputs are in torch's layout; "channels" converts image/signal tensors (and DCGAN's
(N, nz, 1, 1) latent) to channels-last for the Flax side. Modules with BatchNorm (DCGAN,
U-Net with ``batch_norm=True``) run in train mode (batch statistics; running statistics
compared after the step) and in eval mode; SEGAN has no mode-dependent layer, one
train-mode case confirms that. Sizes go beyond the slides: odd lengths, even and odd
kernel widths (SEGAN, kwidth 1 included), odd image sizes (U-Net, DCGAN discriminator),
a spatial latent map (DCGAN generator).
"""

from __future__ import annotations

from flax import nnx

from flax_arch.models import dcgan, segan, unet
from flax_arch.parity.harness import Case
from flax_arch.parity.registry import lazy_module

torch = lazy_module("torch")
tdcgan = lazy_module("torch_ref.dcgan")
tsegan = lazy_module("torch_ref.segan")
tunet = lazy_module("torch_ref.unet")

C = "channels"


def _abstract(build):
    """A ``flax_module`` factory building the port abstractly (``nnx.eval_shape``).

    No random initialisation runs — eager JAX compiles one initialiser per parameter
    shape, seconds per model on a CPU — since the harness overwrites every parameter and
    buffer with the torch reference's (strict loading: an unloaded variable would fail).
    """
    return lambda rngs: nnx.eval_shape(lambda: build(nnx.Rngs(0)))


def _normal(*shape):
    return lambda rng: (rng.standard_normal(shape),)


def _warmed(torch_module, shape):
    """The torch reference after three no-grad train-mode steps on random batches, so that
    an eval-mode case runs on non-trivial BatchNorm running statistics (loaded into the
    port with the weights) rather than the initial zeros / ones."""
    def build():
        m = torch_module()
        m.train()
        with torch.no_grad():
            for _ in range(3):
                m(2 * torch.randn(*shape) + 0.5)
        return m
    return build


def _case(name, torch_module, build, shape, train=False, **kw):
    if not train:
        torch_module = _warmed(torch_module, shape)
    return Case(name, torch_module, _abstract(build), _normal(*shape), [C], [C], train=train,
                **kw)


def _down(name, args, shape, **kw):
    return _case(f"segan_down_conv_block_{name}", lambda: tsegan.DownConv1dBlock(*args),
                 lambda r: segan.DownConv1dBlock(*args, rngs=r), shape, **kw)


def _up(name, args, shape, act=True, **kw):
    return _case(f"segan_up_conv_block_{name}", lambda: tsegan.UpConv1dBlock(*args, act=act),
                 lambda r: segan.UpConv1dBlock(*args, act=act, rngs=r), shape, **kw)


def _gen(name, shape, *args, **kw):
    return _case(f"segan_generator_{name}", lambda: tsegan.Conv1dGenerator(*args),
                 lambda r: segan.Conv1dGenerator(*args, rngs=r), shape, **kw)


def _dcgan_g(name, shape, train, nc=3, tags=(), **widths):
    return _case(f"dcgan_generator_{name}", lambda: tdcgan.DCGANGenerator(nc, **widths),
                 lambda r: dcgan.DCGANGenerator(nc, **widths, rngs=r), shape, train=train,
                 tags=tags)


def _dcgan_d(name, shape, train, nc=3, tags=(), seed=0, **widths):
    return _case(f"dcgan_discriminator_{name}",
                 lambda: tdcgan.DCGANDiscriminator(nc, **widths),
                 lambda r: dcgan.DCGANDiscriminator(nc, **widths, rngs=r), shape, train=train,
                 tags=tags, seed=seed)


def _unet(name, shape, args, train=False, tags=(), seed=0, **kw):
    return _case(f"unet_{name}", lambda: tunet.UNet(*args, **kw),
                 lambda r: unet.UNet(*args, **kw, rngs=r), shape, train=train, tags=tags,
                 seed=seed)


CASES = [
    # ---- SEGAN DownConv1dBlock: the slide's (1, 1, 31, 4) on (1, 1, 4000) → (1, 1, 1000)
    _down("slide", (1, 1, 31, 4), (1, 1, 4000)),
    _down("even_k8_s2_odd_len", (3, 5, 8, 2), (2, 3, 37)),  # pads (3, 4)
    _down("odd_k5_s3_odd_len", (2, 4, 5, 3), (2, 2, 23)),  # pads (1, 2)
    _down("k2_s4", (2, 3, 2, 4), (2, 2, 10)),  # pads (0, 1)
    _down("k1_crop", (2, 3, 1, 2), (2, 2, 11)),  # pads (−1, 0): F.pad crops the first sample
    # ---- SEGAN UpConv1dBlock: the slide's (1, 1, 31, 4) on (1, 1, 1000) → (1, 1, 4000)
    _up("slide", (1, 1, 31, 4), (1, 1, 1000)),
    _up("even_k8_s4_noact", (4, 3, 8, 4), (2, 4, 13), act=False),  # padding 2
    _up("odd_k5_s2", (2, 3, 5, 2), (2, 2, 9)),  # padding (2 − 5) // −2 = 1, last sample dropped
    _up("k3_lt_s5", (3, 2, 3, 5), (2, 3, 7)),  # padding max(0, 2 // −2 = −1) = 0
    _up("k1_s2", (2, 2, 1, 2), (1, 2, 6)),  # padding 0, odd: (L − 1)·2 + 1 − 1
    # ---- SEGAN Conv1dGenerator: narrow, L a multiple of pooling ** len(enc_fmaps)
    _gen("odd_k7_p2", (2, 1, 40), (4, 8, 16), 7, 2),
    _gen("even_k6_p4", (2, 1, 48), (3, 6), 6, 4),
    _gen("even_k6_p4_train", (1, 1, 32), (3, 6), 6, 4, train=True),
    _gen("slide", (1, 1, 8192), tags=("slow",)),
    # ---- DCGAN: narrow in CI; the slides' nz = 100, ngf = ndf = 64 tagged slow
    _dcgan_g("small_train", (2, 16, 1, 1), True, nz=16, ngf=4),
    _dcgan_g("small_eval", (3, 8, 1, 1), False, nc=1, nz=8, ngf=4),
    _dcgan_g("small_zmap_train", (2, 8, 2, 3), True, nz=8, ngf=2),  # → (2, 3, 80, 96)
    _dcgan_g("slide_train", (1, 100, 1, 1), True, tags=("slow",)),
    _dcgan_g("slide_eval", (1, 100, 1, 1), False, tags=("slow",)),
    _dcgan_d("small_train", (2, 3, 64, 64), True, ndf=4),
    _dcgan_d("small_eval", (2, 1, 64, 64), False, nc=1, ndf=4),
    _dcgan_d("small_odd_train", (2, 3, 75, 67), True, ndf=2),  # → (2, 1, 2, 2)
    # seed 1: with seed 0 a unit of the first LeakyReLU, fed by a bias-free convolution
    # (nothing to shift), is within float32 rounding of 0 (flax_arch/parity/kinks.py)
    _dcgan_d("slide_train", (1, 3, 64, 64), True, tags=("slow",), seed=1),
    _dcgan_d("slide_eval", (1, 3, 64, 64), False, tags=("slow",), seed=1),
    # ---- U-Net: odd sizes exercise the pad-to-skip path at several levels
    _unet("odd_depth3", (1, 3, 19, 13), (3, 2, 4, 3)),  # 19 → 9 → 4 → 2, 13 → 6 → 3 → 1
    _unet("bn_odd_train", (2, 2, 11, 14), (2, 3, 4, 2), train=True, batch_norm=True),
    _unet("bn_odd_eval", (2, 2, 11, 14), (2, 3, 4, 2), batch_norm=True),
    # 64 … 1024 channels. Seed 1: with seed 0 a max-pool window of the first level has its
    # two largest entries within float32 rounding of each other (see kinks.py)
    _unet("paper_odd", (1, 1, 61, 75), (1, 2), tags=("slow",), seed=1),
]
