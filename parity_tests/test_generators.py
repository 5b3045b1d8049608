"""Targeted tests for SEGAN, DCGAN and U-Net beyond the parity registry: argument checks
(the slides' ``assert stride > 1``), the slides' shapes, torch's state_dict keys, input
errors, and hypothesis fuzzing of the SEGAN blocks' padding arithmetic against torch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

import torch_ref.dcgan as tdcgan
import torch_ref.segan as tsegan
import torch_ref.unet as tunet
from flax_arch.interop import load_torch_state_dict, torch_keys
from flax_arch.models import dcgan, segan, unet
from flax_arch.parity import Case, run_case


def _abstract(build):
    """The module with abstract variables: shapes and structure, no initialisation run."""
    return nnx.eval_shape(lambda: build(nnx.Rngs(0)))


def _out_shape(build, shape):
    """Output shape of ``build(rngs)(zeros(shape))`` without computing anything."""
    return jax.eval_shape(lambda: build(nnx.Rngs(0))(jnp.zeros(shape))).shape


# ------------------------------------------------------------------ SEGAN argument checks

@pytest.mark.parametrize("block", [segan.DownConv1dBlock, segan.UpConv1dBlock])
@pytest.mark.parametrize("stride", [1, 0, -2])
def test_segan_blocks_reject_stride_le_1(block, stride):
    with pytest.raises(ValueError, match=r"stride must be > 1.*stride=" + str(stride)):
        block(1, 1, 31, stride, rngs=nnx.Rngs(0))
    # the torch twin rejects them too (the slide's assert)
    tblock = {segan.DownConv1dBlock: tsegan.DownConv1dBlock,
              segan.UpConv1dBlock: tsegan.UpConv1dBlock}[block]
    with pytest.raises(AssertionError):
        tblock(1, 1, 31, stride)


def test_segan_generator_rejects_pooling_1():
    with pytest.raises(ValueError, match="Conv1dGenerator: pooling must be at least 2, got 1"):
        segan.Conv1dGenerator((4, 8), 5, 1, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="stride must be > 1"):  # the blocks' own check
        segan.DownConv1dBlock(4, 8, 5, 1, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("block", [segan.DownConv1dBlock, segan.UpConv1dBlock])
def test_segan_blocks_reject_bad_kwidth(block):
    with pytest.raises(ValueError, match="kwidth must be >= 1"):
        block(1, 1, 0, 2, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="kwidth must be an int"):
        block(1, 1, 3.0, 2, rngs=nnx.Rngs(0))


def test_segan_generator_rejects_empty_enc_fmaps():
    with pytest.raises(ValueError, match="enc_fmaps"):
        segan.Conv1dGenerator((), rngs=nnx.Rngs(0))


# ------------------------------------------------------------------ shapes from the slides

def test_slide_shapes():
    assert _out_shape(lambda r: segan.DownConv1dBlock(1, 1, 31, 4, rngs=r),
                      (1, 4000, 1)) == (1, 1000, 1)
    assert _out_shape(lambda r: segan.UpConv1dBlock(1, 1, 31, 4, rngs=r),
                      (1, 1000, 1)) == (1, 4000, 1)
    assert _out_shape(lambda r: segan.Conv1dGenerator(rngs=r), (1, 8192, 1)) == (1, 8192, 1)
    assert _out_shape(lambda r: dcgan.DCGANGenerator(rngs=r), (1, 1, 1, 100)) == (1, 64, 64, 3)
    assert _out_shape(lambda r: dcgan.DCGANDiscriminator(rngs=r),
                      (1, 64, 64, 3)) == (1, 1, 1, 1)
    # the paper's 572 × 572 tile, same-size output here
    assert _out_shape(lambda r: unet.UNet(rngs=r), (1, 572, 572, 1)) == (1, 572, 572, 2)


@pytest.mark.parametrize("kwidth,stride,length", [(31, 4, 4000), (8, 2, 37), (5, 3, 23),
                                                  (1, 2, 11), (2, 4, 10), (4, 3, 2)])
def test_segan_block_lengths_match_torch(kwidth, stride, length):
    with torch.no_grad():
        t_down = tsegan.DownConv1dBlock(2, 3, kwidth, stride)(torch.zeros(1, 2, length))
        t_up = tsegan.UpConv1dBlock(2, 3, kwidth, stride)(torch.zeros(1, 2, length))
    assert _out_shape(lambda r: segan.DownConv1dBlock(2, 3, kwidth, stride, rngs=r),
                      (1, length, 2)) == (1, t_down.shape[2], 3)
    assert _out_shape(lambda r: segan.UpConv1dBlock(2, 3, kwidth, stride, rngs=r),
                      (1, length, 2)) == (1, t_up.shape[2], 3)


def test_up_block_padding_is_pythons_floor_division():
    # (stride − kwidth) // −2 with Python's floor semantics, clamped at 0
    for kwidth, stride, pad in [(31, 4, 13), (8, 4, 2), (5, 2, 1), (3, 5, 0), (1, 2, 0),
                                (6, 3, 1), (30, 4, 13)]:
        blk = _abstract(lambda r, k=kwidth, s=stride: segan.UpConv1dBlock(1, 1, k, s, rngs=r))
        assert blk.padding == pad == tsegan.UpConv1dBlock(1, 1, kwidth, stride).deconv.padding[0]


# ------------------------------------------------------------------ state_dict keys

@pytest.mark.parametrize("build,tbuild", [
    (lambda r: segan.Conv1dGenerator(rngs=r), lambda: tsegan.Conv1dGenerator()),
    (lambda r: segan.UpConv1dBlock(1, 1, 31, 4, act=False, rngs=r),
     lambda: tsegan.UpConv1dBlock(1, 1, 31, 4, act=False)),
    (lambda r: dcgan.DCGANGenerator(rngs=r), lambda: tdcgan.Generator()),
    (lambda r: dcgan.DCGANDiscriminator(rngs=r), lambda: tdcgan.Discriminator()),
    (lambda r: unet.UNet(rngs=r), lambda: tunet.UNet()),
    (lambda r: unet.UNet(3, 5, 8, 2, batch_norm=True, rngs=r),
     lambda: tunet.UNet(3, 5, 8, 2, batch_norm=True)),
], ids=["segan_generator", "segan_up_noact", "dcgan_generator", "dcgan_discriminator", "unet",
        "unet_bn"])
def test_state_dict_keys_match_torch(build, tbuild):
    fmod = _abstract(build)
    tsd = tbuild().state_dict()
    assert sorted(torch_keys(fmod)) == sorted(tsd)


def test_segan_generator_keys_are_module_list_keys():
    keys = torch_keys(_abstract(lambda r: segan.Conv1dGenerator(rngs=r)))
    assert "enc.0.conv.weight" in keys and "dec.3.deconv.bias" in keys


# ------------------------------------------------------------------ input errors

def test_segan_generator_skip_mismatch_is_a_value_error():
    # 6 → 3 → 2 → 1 down; up 1 → 2 (+ skip 2) → 4, but the next skip has length 3
    with pytest.raises(RuntimeError):  # torch: size mismatch in h + skip_h
        tsegan.Conv1dGenerator([2, 3, 4], 4, 2)(torch.zeros(1, 1, 6))
    with pytest.raises(ValueError, match=r"skip connection .* multiple of pooling"):
        _out_shape(lambda r: segan.Conv1dGenerator((2, 3, 4), 4, 2, rngs=r), (1, 6, 1))


def test_segan_generator_rejects_what_torch_silently_broadcasts():
    # L = 2: 2 → 1 → 1 → 1; torch adds a length-1 skip to a length-2 map by broadcasting
    assert tsegan.Conv1dGenerator([2, 3, 4], 4, 2)(torch.zeros(1, 1, 2)).shape == (1, 1, 8)
    with pytest.raises(ValueError, match="skip connection"):
        _out_shape(lambda r: segan.Conv1dGenerator((2, 3, 4), 4, 2, rngs=r), (1, 2, 1))


def test_segan_block_rejects_channels_first_and_short_input():
    blk = _abstract(lambda r: segan.DownConv1dBlock(3, 4, 5, 2, rngs=r))
    with pytest.raises(ValueError, match="channels_first_to_last"):
        blk(jnp.ones((2, 3, 17)))  # torch layout (N, C, L)
    with pytest.raises(ValueError, match="too short"):
        blk(jnp.ones((2, 1, 3)))  # odd kwidth: the padded length L + 3 < 5


def test_segan_generator_refuses_unbatched_as_torch():
    """The slide's generator indexes the batch axis: torch refuses an unbatched (1, L)
    signal, and so does the twin (rather than answer for a batch of one)."""
    torch.manual_seed(0)
    tG = tsegan.Conv1dGenerator([2, 3], 5, 2)
    with pytest.raises((IndexError, RuntimeError)):
        tG(torch.zeros(1, 20))
    G = segan.Conv1dGenerator((2, 3), 5, 2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"Conv1dGenerator: x must have rank 3 with layout "
                                         r"\(N, L, 1\), got shape \(20, 1\)"):
        G(jnp.zeros((20, 1)))


def test_dcgan_rejects_torch_layout_latent():
    G = _abstract(lambda r: dcgan.DCGANGenerator(rngs=r))
    with pytest.raises(ValueError, match="z must be channels-last"):
        G(jnp.ones((1, 100, 1, 1)))
    D = _abstract(lambda r: dcgan.DCGANDiscriminator(rngs=r))
    with pytest.raises(ValueError, match="x must be channels-last"):
        D(jnp.ones((1, 3, 64, 64)))


def test_unet_checks():
    with pytest.raises(ValueError, match="UNet: depth must be at least 1, got 0"):
        unet.UNet(depth=0, rngs=nnx.Rngs(0))
    net = _abstract(lambda r: unet.UNet(1, 2, 4, 3, rngs=r))
    with pytest.raises(ValueError, match=r"H, W >= 2 \*\* depth = 8"):
        net(jnp.ones((1, 7, 32, 1)))
    with pytest.raises(ValueError, match="channels-last"):
        net(jnp.ones((1, 1, 32, 32)))


def test_concrete_construction_uses_torch_init_bounds():
    # the parity cases build abstractly and load torch's weights; check the real init once
    blk = segan.UpConv1dBlock(2, 3, 5, 2, rngs=nnx.Rngs(0))
    bound = 1 / np.sqrt(3 * 5)  # torch's fan_in of ConvTranspose1d: weight.size(1) · k
    k = np.asarray(blk.deconv.kernel[...])
    assert k.shape == (5, 2, 3) and np.abs(k).max() <= bound and np.abs(k).max() > bound / 2


# ------------------------------------------------------------------ fuzzing against torch

C = "channels"


@pytest.mark.fuzz
@settings(deadline=None, max_examples=12)
@given(kwidth=st.integers(1, 12), stride=st.integers(2, 5), length=st.integers(2, 40),
       ninp=st.integers(1, 3), fmap=st.integers(1, 3), act=st.booleans(),
       up=st.booleans())
def test_fuzz_segan_blocks_against_torch(kwidth, stride, length, ninp, fmap, act, up):
    """Forward and gradients in float64, any kernel width (even/odd, 1 included: the
    down block's crop), stride and length (odd ones included)."""
    if up:
        case = Case("fuzz_up", lambda: tsegan.UpConv1dBlock(ninp, fmap, kwidth, stride, act),
                    lambda r: _abstract(lambda r: segan.UpConv1dBlock(ninp, fmap, kwidth, stride,
                                                                      act, rngs=r)),
                    lambda rng: (rng.standard_normal((2, ninp, length)),), [C], [C])
    else:
        case = Case("fuzz_down", lambda: tsegan.DownConv1dBlock(ninp, fmap, kwidth, stride),
                    lambda r: _abstract(lambda r: segan.DownConv1dBlock(ninp, fmap, kwidth,
                                                                        stride, rngs=r)),
                    lambda rng: (rng.standard_normal((2, ninp, length)),), [C], [C])
    r = run_case(case, "float64", locate=False)
    assert r.error is None, r.error
    assert r.passed, r
