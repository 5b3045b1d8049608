"""3-D convolutions and the padding layers against torch.

* ``Conv3d`` / ``ConvTranspose3d``: hypothesis fuzzing over strides, padding (ints,
  'same', 'valid', padding modes), dilation, groups, output_padding and every ``method``;
  unbatched inputs for all six convolution classes; ``ConvTranspose*``'s ``output_size``.
* ``{Constant,Zero,Reflection,Replication,Circular}Pad{1,2,3}d``: fuzzing over ranks
  (batched, unbatched, and for constant padding rank n and extra leading axes), padding
  tuples with negative (cropping) entries; that we refuse exactly the paddings torch
  refuses; errors name the argument.

Every comparison is :func:`flax_arch.parity.run_case` (forward, input and parameter
gradients): float64 within 1e-12, a subset in float32 within 1e-5.
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import assume, given
from hypothesis import strategies as st

from flax_arch.nn import conv as fconv
from flax_arch.nn import padding as fpad
from flax_arch.parity import Case

from .test_layers import C, arg, check, float32_too, fuzz, inputs, seeds


def _last(caxis):
    """A flax_call that moves torch's channel axis ``caxis`` of a torch-layout input to the
    end, calls the module, and moves the output's last axis back (``caxis=None``: as is)."""
    if caxis is None:
        return None

    def call(m, x, *args, **kw):
        return jnp.moveaxis(m(jnp.moveaxis(x, caxis, -1), *args, **kw), -1, caxis)
    return call


# ------------------------------------------------------------------------------ Conv3d

@st.composite
def conv3d_configs(draw):
    g = draw(st.integers(1, 2))
    cin, cout = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 2))
    k_arg, k = arg(draw, 3, 1, 3)
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    same = draw(st.integers(0, 3))
    if same == 0:
        s_arg, s, d_arg, d = 1, (1,) * 3, *arg(draw, 3, 1, 2)
        pad_arg, pad = "same", tuple(di * (ki - 1) for ki, di in zip(k, d))
        pad = tuple((p // 2, p - p // 2) for p in pad)
    else:
        s_arg, s = arg(draw, 3, 1, 2)
        d_arg, d = arg(draw, 3, 1, 2)
        pad_arg, p = arg(draw, 3, 0, 2) if same > 1 else ("valid", (0, 0, 0))
        pad = tuple((q, q) for q in p)
    sizes = []
    for ki, di, (lo, hi) in zip(k, d, pad):
        least = max(1, di * (ki - 1) + 1 - lo - hi, hi + 1 if mode == "reflect" else 1,
                    hi if mode == "circular" else 1, lo + 1 if mode == "reflect" else 1)
        sizes.append(draw(st.integers(least, least + 2)))
    kw = dict(stride=s_arg, padding=pad_arg, dilation=d_arg, groups=g,
              bias=draw(st.booleans()), padding_mode=mode)
    return cin, cout, k_arg, kw, tuple(sizes), draw(st.sampled_from(["conv", "patches"]))


@pytest.mark.fuzz
@fuzz(6)
@given(conv3d_configs(), st.booleans(), seeds, float32_too)
def test_conv3d(cfg, batched, seed, f32):
    cin, cout, k, kw, sizes, method = cfg
    shape = (2, cin, *sizes) if batched else (cin, *sizes)
    check(Case(f"Conv3d({cin}, {cout}, {k}, {kw}, method={method!r}) on {shape}",
               lambda: torch.nn.Conv3d(cin, cout, k, **kw),
               lambda r: fconv.Conv3d(cin, cout, k, **kw, method=method, rngs=r),
               inputs(shape), *(([C], [C]) if batched else ((), ())),
               flax_call=None if batched else _last(0), seed=seed), f32)


# --------------------------------------------------------------------- ConvTranspose3d

@st.composite
def conv_transpose3d_configs(draw):
    g = draw(st.integers(1, 2))
    cin, cout = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 2))
    k_arg, k = arg(draw, 3, 1, 3)
    s_arg, s = arg(draw, 3, 1, 3)
    d_arg, d = arg(draw, 3, 1, 2)
    pad = tuple(draw(st.integers(0, di * (ki - 1) + 1)) for ki, di in zip(k, d))
    op = tuple(draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d))
    sizes = []
    for ki, si, di, pi, oi in zip(k, s, d, pad, op):
        need = 2 * pi - di * (ki - 1) - oi
        least = 1 + max(0, -(-need // si))
        sizes.append(draw(st.integers(least, least + 1)))
    kw = dict(stride=s_arg, padding=pad, output_padding=op, groups=g,
              bias=draw(st.booleans()), dilation=d_arg)
    method = draw(st.sampled_from(["matmul", "conv"] + (["phases", "conv+phases"]
                                                        if d == (1,) * 3 else [])))
    return cin, cout, k_arg, kw, tuple(sizes), method


@pytest.mark.fuzz
@fuzz(6)
@given(conv_transpose3d_configs(), st.booleans(), seeds, float32_too)
def test_conv_transpose3d(cfg, batched, seed, f32):
    cin, cout, k, kw, sizes, method = cfg
    shape = (2, cin, *sizes) if batched else (cin, *sizes)
    check(Case(f"ConvTranspose3d({cin}, {cout}, {k}, {kw}, method={method!r}) on {shape}",
               lambda: torch.nn.ConvTranspose3d(cin, cout, k, **kw),
               lambda r: fconv.ConvTranspose3d(cin, cout, k, **kw, method=method, rngs=r),
               inputs(shape), *(([C], [C]) if batched else ((), ())),
               flax_call=None if batched else _last(0), seed=seed), f32)


# ------------------------------------------------- unbatched input, all six conv classes

UNBATCHED = [
    ("Conv1d", (3, 4, 3), dict(stride=2, padding=1), (3, 7)),
    ("Conv2d", (2, 4, 3), dict(padding="same", padding_mode="reflect", groups=2), (2, 5, 6)),
    ("Conv3d", (2, 3, 2), dict(stride=(1, 2, 1), dilation=(2, 1, 1)), (2, 4, 5, 3)),
    ("ConvTranspose1d", (3, 4, 3), dict(stride=2, output_padding=1), (3, 5)),
    ("ConvTranspose2d", (2, 4, 3), dict(stride=(2, 1), padding=1, groups=2), (2, 4, 3)),
    ("ConvTranspose3d", (2, 3, 2), dict(stride=2, dilation=(1, 2, 1)), (2, 3, 2, 3)),
]


@pytest.mark.parametrize("cls,args,kw,shape", UNBATCHED, ids=[u[0] for u in UNBATCHED])
def test_unbatched_conv(cls, args, kw, shape):
    """torch's (C, *S) ↔ (*S, C): unbatched in, unbatched out; gradients too."""
    check(Case(f"{cls}{args} {kw} unbatched", lambda: getattr(torch.nn, cls)(*args, **kw),
               lambda r: getattr(fconv, cls)(*args, **kw, rngs=r), inputs(shape),
               flax_call=_last(0)), cls.endswith("3d"))


def test_conv3d_method_auto_is_conv():
    """3-D 'auto' is plain lax (no crossover measured in 3-D); every form is accepted."""
    r = nnx.Rngs(0)
    assert fconv.Conv3d(16, 16, 1, stride=2, rngs=r).resolve_method((8, 8, 8)) == "conv"
    assert fconv.ConvTranspose3d(16, 16, 1, stride=2, rngs=r).resolve_method() == "conv"
    assert fconv.Conv3d(2, 2, 3, method="patches", rngs=r).resolve_method((5, 5, 5)) == \
        "patches"
    with pytest.raises(ValueError, match="dilation"):
        fconv.ConvTranspose3d(2, 2, 3, dilation=2, method="phases", rngs=r)


# ------------------------------------------------------------ ConvTranspose output_size

OUTPUT_SIZE = [  # (class, n, kwargs, torch-layout input shape, output_size, method)
    ("ConvTranspose1d", 1, dict(stride=3, padding=1), (2, 3, 4), [11], "phases"),
    ("ConvTranspose1d", 1, dict(stride=3, padding=1), (3, 4), [12], "conv+phases"),
    ("ConvTranspose2d", 2, dict(stride=(2, 3), padding=1, dilation=2),
     (2, 3, 4, 3), [10, 11], "conv"),
    ("ConvTranspose2d", 2, dict(stride=2, output_padding=1), (3, 4, 3), (9, 8), "matmul"),
    ("ConvTranspose3d", 3, dict(stride=2, padding=(1, 0, 1), groups=3),
     (2, 3, 2, 3, 2), [3, 8, 4], "phases"),
    ("ConvTranspose3d", 3, dict(stride=(3, 1, 2)), (3, 2, 2, 2), [6, 4, 5], "matmul"),
    ("ConvTranspose3d", 3, dict(stride=2, dilation=(1, 2, 1)), (1, 3, 2, 2, 2), [6, 7, 5],
     "conv"),
]


@pytest.mark.parametrize("cls,n,kw,shape,size,method", OUTPUT_SIZE,
                         ids=[f"{o[0]}-{i}" for i, o in enumerate(OUTPUT_SIZE)])
def test_conv_transpose_output_size(cls, n, kw, shape, size, method):
    """torch's forward(x, output_size): spatial sizes, or the whole output shape whose
    non-spatial entries are ignored; it replaces output_padding for the call."""
    batched = len(shape) == n + 2
    for full in (False, True):
        fsize = ((shape[0], *size, 3) if batched else (*size, 3)) if full else size
        check(Case(f"{cls} {kw} output_size={fsize}",
                   lambda: getattr(torch.nn, cls)(3, 3, 3, **kw),
                   lambda r: getattr(fconv, cls)(3, 3, 3, **kw, method=method, rngs=r),
                   inputs(shape), torch_call=lambda m, x: m(x, output_size=list(size)),
                   flax_call=lambda m, x: _last(1 if batched else 0)(
                       m, x, output_size=fsize)),
              False)


def test_conv_transpose_output_size_errors():
    m = fconv.ConvTranspose2d(2, 2, 3, stride=2, rngs=nnx.Rngs(0))
    x = jnp.ones((1, 4, 4, 2))
    assert m(x, output_size=[10, 9]).shape == (1, 10, 9, 2)
    for bad in ([8, 9], [11, 9], [10], [1, 2, 10, 9, 2]):
        with pytest.raises(ValueError, match="output_size"):
            m(x, output_size=bad)
        with pytest.raises(ValueError):
            torch.nn.ConvTranspose2d(2, 2, 3, stride=2)(torch.ones(1, 2, 4, 4),
                                                          output_size=bad)
    with pytest.raises(TypeError, match="output_size"):
        m(x, output_size=10)
    with pytest.raises(TypeError, match="output_size"):
        m(x, output_size=[10.0, 9])


# ----------------------------------------------------------------- conv3d bad arguments

def test_conv3d_errors():
    r = nnx.Rngs(0)
    with pytest.raises(ValueError, match="kernel_size"):
        fconv.Conv3d(2, 2, (3, 3), rngs=r)
    with pytest.raises(ValueError, match="padding='same'"):
        fconv.Conv3d(2, 2, 3, stride=(1, 2, 1), padding="same", rngs=r)
    with pytest.raises(ValueError, match="divisible by groups"):
        fconv.Conv3d(3, 2, 3, groups=2, rngs=r)
    with pytest.raises(ValueError, match="output_padding"):
        fconv.ConvTranspose3d(2, 2, 3, stride=2, output_padding=(0, 2, 0), rngs=r)
    with pytest.raises(ValueError, match=r"rank 4 or 5.*\(N, D, H, W, C_in\)"):
        fconv.Conv3d(2, 2, 3, rngs=r)(jnp.ones((5, 5, 2)))
    with pytest.raises(ValueError, match="C=2"):
        fconv.ConvTranspose3d(2, 2, 3, rngs=r)(jnp.ones((1, 2, 5, 5, 5)))
    with pytest.raises(ValueError, match="too small"):
        fconv.Conv3d(2, 2, 3, padding=2, padding_mode="reflect", rngs=r)(
            jnp.ones((1, 2, 5, 5, 2)))


# --------------------------------------------------------------------- padding layers

KINDS = ("Constant", "Zero", "Reflection", "Replication", "Circular")


def _valid(kind, sizes, pads):
    """Whether torch pads ``sizes`` (spatial, first axis first) by per-axis ``pads``
    (values not garbage: circular's positive pads must fit the cropped axis)."""
    for L, (lo, hi) in zip(sizes, pads):
        kept = L + min(lo, 0) + min(hi, 0)
        if kind in ("Constant", "Zero"):
            ok = kept >= 0 and L + lo + hi >= 0
        elif kind == "Reflection":  # torch's 1-D kernels refuse an empty output, 2-D/3-D not
            ok = lo < L and hi < L and L + lo + hi >= (len(sizes) == 1)
        elif kind == "Replication":
            ok = L + lo + hi >= (len(sizes) == 1)
        else:
            ok = kept >= 0 and max(lo, hi) <= kept
        if not ok:
            return False
    return True


@st.composite
def pad_configs(draw, kind, n):
    sizes = tuple(draw(st.integers(1, 4)) for _ in range(n))
    if draw(st.integers(0, 3)) == 0:
        padding = draw(st.integers(-1, 3))
    else:
        padding = tuple(draw(st.integers(-3, 4)) for _ in range(2 * n))
    p = (padding,) * (2 * n) if isinstance(padding, int) else padding
    pads = [(p[2 * i], p[2 * i + 1]) for i in reversed(range(n))]
    assume(_valid(kind, sizes, pads))
    if kind in ("Constant", "Zero"):
        lead = draw(st.sampled_from([None, (), (2,), (1, 2)]))  # None: rank n, no channels
    else:
        lead = draw(st.sampled_from([(), (2,)]))
    shape = sizes if lead is None else (*lead, draw(st.integers(1, 3)), *sizes)
    value = draw(st.floats(-2, 2, allow_nan=False)) if kind == "Constant" else None
    return padding, value, shape


def _pad_case(kind, n, cfg, seed):
    padding, value, shape = cfg
    name = f"{kind}Pad{n}d"
    args = (padding,) if value is None else (padding, value)
    # torch's channel axis -(n+1) ↔ the last axis (rank n: no channel axis)
    caxis = None if len(shape) == n else len(shape) - n - 1
    return Case(f"{name}{args} on {shape}", lambda: getattr(torch.nn, name)(*args),
                lambda r: getattr(fpad, name)(*args, rngs=r), inputs(shape),
                flax_call=_last(caxis), seed=seed)


@pytest.mark.fuzz
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_padding(kind, n):
    @fuzz(4)
    @given(pad_configs(kind, n), seeds, float32_too)
    def run(cfg, seed, f32):
        check(_pad_case(kind, n, cfg, seed), f32)
    run()


@pytest.mark.fuzz
@pytest.mark.parametrize("kind", KINDS)
@fuzz(25)
@given(st.integers(1, 3), st.data())
def test_padding_refuses_what_torch_refuses(kind, n, data):
    """Random paddings (negative ones too) on small axes: torch raises iff we raise a
    ValueError naming ``padding`` (circular pads that torch fills with uninitialised
    memory instead of raising are left out)."""
    sizes = tuple(data.draw(st.integers(1, 4)) for _ in range(n))
    padding = tuple(data.draw(st.integers(-5, 5)) for _ in range(2 * n))
    pads = [(padding[2 * i], padding[2 * i + 1]) for i in reversed(range(n))]
    name = f"{kind}Pad{n}d"
    args = (padding, 1.5) if kind == "Constant" else (padding,)
    x = np.random.default_rng(0).standard_normal((2, 3, *sizes))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = getattr(torch.nn, name)(*args)(torch.as_tensor(x)).numpy()
    except (RuntimeError, ValueError):
        want = None
    if kind == "Circular" and want is not None and not _valid(kind, sizes, pads):
        return  # torch returned memory it never wrote
    f = getattr(fpad, name)(*args)
    if want is None:
        with pytest.raises(ValueError, match="padding"):
            f(jnp.moveaxis(jnp.asarray(x), 1, -1))
    else:
        got = np.moveaxis(np.asarray(f(jnp.moveaxis(jnp.asarray(x), 1, -1))), -1, 1)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("kind", KINDS)
def test_padding_ranks(kind, n):
    """torch's ranks: constant any ≥ n, the other modes n+1 or n+2; errors name x."""
    name = f"{kind}Pad{n}d"
    args = (1, 0.5) if kind == "Constant" else (1,)
    f, t = getattr(fpad, name)(*args), getattr(torch.nn, name)(*args)
    for rank in range(max(1, n - 1), n + 4):
        x = np.ones((2,) * rank)
        try:
            t(torch.as_tensor(x))
            torch_ok = True
        except (RuntimeError, ValueError, NotImplementedError):
            torch_ok = False
        if torch_ok:
            assert f(jnp.asarray(x)).ndim == rank
        else:
            with pytest.raises(ValueError, match="x must have rank"):
                f(jnp.asarray(x))


def test_padding_constant_dtypes_and_value():
    """Any dtype is padded; the value is cast as torch casts it."""
    for dtype, tdtype in ((np.int64, torch.int64), (np.int32, torch.int32),
                          (np.bool_, torch.bool), (np.float32, torch.float32)):
        x = np.arange(6).reshape(1, 2, 3).astype(dtype)
        for value in (2.5, -2.5, 0, 3):
            want = torch.nn.ConstantPad1d((1, 2), value)(torch.as_tensor(x)).numpy()
            got = fpad.ConstantPad1d((1, 2), value)(jnp.moveaxis(jnp.asarray(x), 1, -1))
            np.testing.assert_array_equal(np.moveaxis(np.asarray(got), -1, 1), want)
    for kind in ("Reflection", "Replication", "Circular"):
        x = np.arange(6).reshape(1, 2, 3)
        want = getattr(torch.nn, f"{kind}Pad1d")(1)(torch.as_tensor(x)).numpy()
        got = getattr(fpad, f"{kind}Pad1d")(1)(jnp.moveaxis(jnp.asarray(x), 1, -1))
        np.testing.assert_array_equal(np.moveaxis(np.asarray(got), -1, 1), want)


def test_padding_empty_axes():
    """An empty batch is padded; reflection/replication refuse other empty axes (naming
    x), circular and constant padding follow their size rules."""
    assert fpad.ReflectionPad2d(1)(jnp.ones((0, 3, 3, 2))).shape == (0, 5, 5, 2)
    assert fpad.ReplicationPad1d(1)(jnp.ones((0, 3, 2))).shape == (0, 5, 2)
    assert fpad.CircularPad1d(1)(jnp.ones((2, 3, 0))).shape == (2, 5, 0)
    assert fpad.ConstantPad1d(1, 0.0)(jnp.ones((2, 0, 3))).shape == (2, 2, 3)
    for f, shape in ((fpad.ReflectionPad1d(1), (2, 3, 0)), (fpad.ReplicationPad1d(1), (0, 2)),
                     (fpad.ReplicationPad2d(0), (1, 0, 3, 1))):
        with pytest.raises(ValueError, match="empty axis"):
            f(jnp.ones(shape))
    with pytest.raises(ValueError, match="padding"):
        fpad.CircularPad1d(1)(jnp.ones((2, 0, 3)))


@pytest.mark.parametrize("make,err,match", [
    (lambda: fpad.ReflectionPad2d((1, 2)), ValueError, r"4 ints \(left, right, top"),
    (lambda: fpad.ZeroPad3d((1, 2, 3, 4)), ValueError, "padding must be an int or a tuple of 6"),
    (lambda: fpad.ReplicationPad1d(1.5), TypeError, "padding"),
    (lambda: fpad.CircularPad1d((1, True)), TypeError, "padding"),
    (lambda: fpad.CircularPad1d("same"), TypeError, "padding"),
    (lambda: fpad.ConstantPad1d(1, "zero"), TypeError, "value"),
    (lambda: fpad.ConstantPad1d(1, True), TypeError, "value"),
])
def test_padding_bad_arguments(make, err, match):
    with pytest.raises(err, match=match):
        make()


def test_padding_attributes_and_errors_name_padding():
    assert fpad.ReflectionPad3d(2).padding == (2,) * 6
    assert fpad.ZeroPad2d((1, 2, 3, 4)).padding == (1, 2, 3, 4)
    assert fpad.ZeroPad2d(1).value == 0.0 and isinstance(fpad.ZeroPad2d(1), fpad.ConstantPad2d)
    assert fpad.ConstantPad1d(1, 3).value == 3
    # (left, right, top, bottom) act on W then H: x (N, H, W, C)
    y = fpad.ZeroPad2d((1, 2, 3, 4))(jnp.ones((1, 5, 6, 2)))
    assert y.shape == (1, 5 + 7, 6 + 3, 2)
    with pytest.raises(ValueError, match=r"padding \(3, 0\).*axis 1 \(size 3\)"):
        fpad.ReflectionPad1d((3, 0))(jnp.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="padding.*more than once"):
        fpad.CircularPad1d((-2, 3))(jnp.ones((2, 4, 1)))
    with pytest.raises(ValueError, match="padding.*negative output size"):
        fpad.ReplicationPad2d((0, 0, -2, -3))(jnp.ones((4, 4, 1)))
    with pytest.raises(ValueError, match="padding.*empty output"):
        fpad.ReplicationPad1d((-2, -2))(jnp.ones((4, 1)))
    assert fpad.ReflectionPad2d((0, 0, -2, -2))(jnp.ones((4, 4, 1))).shape == (0, 4, 1)
