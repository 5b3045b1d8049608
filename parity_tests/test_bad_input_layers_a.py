"""Bad input to Conv1d/2d, ConvTranspose1d/2d, causal_pad, Linear, Identity, BatchNorm1d/2d,
LeakyReLU, Softmax and LogSoftmax (issue 12): a clear error or torch's result, never a
silent wrong one.

The hypothesis tests draw bad (and good) constructor arguments and inputs, build the same
thing in torch (channels-first) and compare outcomes:

* torch raises (at construction or at its first call) → we raise a TypeError (wrong type)
  or ValueError (wrong value; ``numpy.exceptions.AxisError``, also an IndexError as torch's,
  for a softmax ``dim`` out of range) whose message names the argument;
* torch accepts → we accept, with torch's output shape (channels-last) and values;
* except the deliberate differences listed in :func:`_refused_on_purpose` (documented in
  the layers' docstrings): values torch takes silently (``True`` as a size, a truthy string
  as ``bias``, zero conv channels, NaN) are refused here, with the argument named.

Torch checks many arguments only at the first call (``stride=0``, ``padding=-1``,
``output_padding`` ≥ stride); we check them at construction, so the torch side is always
"construct and call on a valid input".
"""

from __future__ import annotations

import math
import os
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import event, given, settings
from hypothesis import strategies as st

import flax_arch.nn as fnn
from flax_arch.interop import load_torch_state_dict

# hypothesis imports libcst (a DeprecationWarning) only when it reports a failing example
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:
        pass

pytestmark = pytest.mark.fuzz
_SCALE = float(os.environ.get("FLAX_ARCH_FUZZ_SCALE", "1"))  # as in test_layers.py
fuzz = settings(max_examples=int(30 * _SCALE), deadline=None, derandomize=True, database=None)
R = nnx.Rngs(0)
SIZE = 9  # every spatial size of a "valid" input: large enough for every valid draw


# ------------------------------------------------------------------------------ helpers

def _outcome(fn):
    """(result, None) or (None, exception); torch's warnings (zero-element init, 'same'
    with an even kernel, the implicit softmax dim) are not what is compared."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(), None
    except Exception as e:  # noqa: BLE001 - every torch failure counts as "raises"
        return None, e


def _ours(fn):
    """Our outcome, warnings left as errors except torch's implicit-dim one we repeat."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Implicit dimension choice", UserWarning)
            return fn(), None
    except (TypeError, ValueError) as e:
        return None, e


def _empty_but_wrong(x, channels=None) -> bool:
    """Deliberate: an integer/bool input, or a wrong channel count, is refused even when
    the input is empty. torch's checks live in its kernels, and on an empty input some
    never run: Softmax, LogSoftmax, ConvTranspose and BatchNorm take an empty integer
    tensor, BatchNorm any channel count."""
    wrong_c = channels is not None and x.ndim > 0 and x.shape[-1] != channels
    return x.size == 0 and (x.dtype.kind != "f" or wrong_c)


def _has_bool(value) -> bool:
    return isinstance(value, bool) or (isinstance(value, (tuple, list))
                                       and any(isinstance(v, bool) for v in value))


def _refused_on_purpose(layer: str, arg: str, value) -> bool:
    """Where torch takes a value silently and we refuse it (documented in the docstrings):
    ``True`` as a size (torch builds a 1-tap kernel from ``kernel_size=True``); a non-bool
    flag (torch takes any truthy value); zero channels of a convolution (torch's
    ``Conv1d(0, C, k)`` returns 0 channels instead of C); NaN; ``dim=None`` on rank ≥ 3."""
    if arg in ("bias", "affine", "track_running_stats"):
        return not isinstance(value, bool)
    if _has_bool(value):
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return "Conv" in layer and arg in ("in_channels", "out_channels") and value == 0


def _assert_named(err, names) -> None:
    assert isinstance(err, (TypeError, ValueError)), repr(err)
    assert any(n in str(err) for n in names), f"{err!r} does not name {names}"


def _compare(theirs, ours, names, *, on_purpose=False):
    """The comparison every test ends with (see the module docstring)."""
    (t_out, t_err), (f_out, f_err) = theirs, ours
    event("torch raises" if t_err is not None else "refused on purpose" if on_purpose
          else "torch accepts")  # pytest --hypothesis-show-statistics
    if t_err is not None or on_purpose:
        assert f_err is not None, f"torch raised {t_err!r}, we returned {f_out!r}"
        _assert_named(f_err, names)
        return None
    assert f_err is None, f"torch accepted, we raised {f_err!r}"
    return t_out, f_out


def _to_first(x, unbatched_rank):
    """channels-last numpy array → torch's channels-first layout (C moves to 1, or to 0 for
    an unbatched input)."""
    if x.ndim < 2:
        return x
    return np.moveaxis(x, -1, 0 if x.ndim == unbatched_rank else 1)


def _to_last(y, unbatched_rank):
    if y.ndim < 2:
        return y
    return np.moveaxis(y, 0 if y.ndim == unbatched_rank else 1, -1)


def _assert_same_values(t_out, f_out, unbatched_rank=None):
    want = t_out.detach().numpy()
    if unbatched_rank is not None:
        want = _to_last(want, unbatched_rank)
    got = np.asarray(f_out)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------ strategies

BAD_SCALARS = st.one_of(st.integers(-3, 0), st.sampled_from([2.0, 0.5, float("nan")]),
                        st.booleans(), st.sampled_from(["3", "same", "valid", "full"]),
                        st.none())


def bad_sizes(n):
    """A mix of valid and invalid int-or-tuple arguments for an n-d layer."""
    ints = st.integers(-2, 3)
    return st.one_of(BAD_SCALARS, ints,
                     st.lists(st.one_of(ints, st.sampled_from([1.0, True])), min_size=n,
                              max_size=n).map(tuple),
                     st.lists(st.integers(1, 2), min_size=n + 1, max_size=n + 1).map(tuple))


CONVS = [("Conv1d", 1), ("Conv2d", 2), ("ConvTranspose1d", 1), ("ConvTranspose2d", 2)]
BOOL_OR_NOT = st.one_of(st.booleans(), st.sampled_from([None, 0, 1, "yes"]))


@st.composite
def conv_with_one_bad_argument(draw):
    layer, n = draw(st.sampled_from(CONVS))
    transpose = layer.startswith("ConvTranspose")
    args = dict(in_channels=2, out_channels=4, kernel_size=draw(st.integers(1, 3)),
                stride=draw(st.integers(1, 2)), padding=draw(st.integers(0, 1)),
                dilation=draw(st.integers(1, 2)), groups=draw(st.sampled_from([1, 2])))
    choices = [*args, "bias", "padding_mode"] + (["output_padding"] if transpose else [])
    arg = draw(st.sampled_from(choices))
    if arg == "bias":
        value = draw(BOOL_OR_NOT)
    elif arg == "padding_mode":
        value = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular", "mirror",
                                      None, 3]))
    elif arg in ("in_channels", "out_channels", "groups"):
        value = draw(st.one_of(BAD_SCALARS, st.integers(1, 6)))
    else:
        value = draw(bad_sizes(n))
    args[arg] = value
    return layer, n, args, arg, value


def _build_conv(module, layer, args, **extra):
    a = dict(args)
    return getattr(module, layer)(a.pop("in_channels"), a.pop("out_channels"),
                                  a.pop("kernel_size"), **a, **extra)


def _conv_input(n, cin, batch=2):
    return np.random.default_rng(0).standard_normal((batch, *(SIZE,) * n, cin)).astype(
        np.float32)


def _both(make_torch, make_ours, x, unbatched_rank=None):
    """Construct and call on both sides; where torch succeeds, our layer gets torch's
    weights for a value comparison. ``x`` is channels-last; with ``unbatched_rank`` torch
    gets it channels-first. Returns (theirs, ours, torch module), ours' result is (y, f)."""
    xt = torch.as_tensor(x if unbatched_rank is None else _to_first(x, unbatched_rank))
    torch.manual_seed(0)
    tm, err = _outcome(make_torch)
    state = {} if err else {k: v.clone() for k, v in tm.state_dict().items()}  # before the step
    theirs = (None, err) if err else _outcome(lambda: tm(xt))

    def ours():
        f = make_ours()
        if theirs[1] is None and state:
            load_torch_state_dict(f, state)
        return f(jnp.asarray(x)), f
    return theirs, _ours(ours), tm


def _run_conv(layer, n, args, x):
    return _both(lambda: _build_conv(torch.nn, layer, args),
                 lambda: _build_conv(fnn, layer, args, rngs=R), x, n + 1)


# ----------------------------------------------------------- constructors (hypothesis)

@fuzz
@given(conv_with_one_bad_argument())
def test_conv_constructor_arguments_as_torch(drawn):
    layer, n, args, arg, value = drawn
    cin = args["in_channels"] if isinstance(args["in_channels"], int) and not isinstance(
        args["in_channels"], bool) and 0 <= args["in_channels"] <= 6 else 2
    theirs, ours, _ = _run_conv(layer, n, args, _conv_input(n, cin))
    out = _compare(theirs, ours, [arg], on_purpose=_refused_on_purpose(layer, arg, value))
    if out:
        _assert_same_values(out[0], out[1][0], unbatched_rank=n + 1)


@st.composite
def conv_combination(draw):
    """Valid argument types, drawn so that the combinations torch refuses come up:
    channels not divisible by groups, 'same' with a stride, output_padding ≥ stride and
    dilation, 'same'/'valid' for a transposed convolution."""
    layer, n = draw(st.sampled_from(CONVS))
    args = dict(in_channels=draw(st.integers(1, 6)), out_channels=draw(st.integers(1, 6)),
                kernel_size=draw(st.integers(1, 3)), stride=draw(st.integers(1, 3)),
                padding=draw(st.one_of(st.integers(0, 1), st.sampled_from(["same", "valid"]))),
                dilation=draw(st.integers(1, 3)), groups=draw(st.integers(1, 4)))
    if layer.startswith("ConvTranspose"):
        args["output_padding"] = draw(st.integers(0, 3))
    return layer, n, args


@fuzz
@given(conv_combination())
def test_conv_argument_combinations_as_torch(drawn):
    layer, n, args = drawn
    theirs, ours, _ = _run_conv(layer, n, args, _conv_input(n, args["in_channels"]))
    out = _compare(theirs, ours, ["groups", "padding", "output_padding"])
    if out:
        _assert_same_values(out[0], out[1][0], unbatched_rank=n + 1)


@fuzz
@given(st.sampled_from(["Linear", "BatchNorm1d", "BatchNorm2d"]), st.data())
def test_linear_and_batchnorm_constructor_arguments_as_torch(layer, data):
    if layer == "Linear":
        args = dict(in_features=3, out_features=2, bias=True)
        arg = data.draw(st.sampled_from(list(args)))
        args[arg] = data.draw(BOOL_OR_NOT if arg == "bias"
                              else st.one_of(BAD_SCALARS, st.integers(0, 4)))
        width = args["in_features"] if arg == "in_features" and type(
            args[arg]) is int and args[arg] >= 0 else 3
        x = np.random.default_rng(0).standard_normal((4, width)).astype(np.float32)
        unbatched = None  # no layout change
    else:
        args = dict(num_features=3, eps=1e-5, momentum=0.1, affine=True,
                    track_running_stats=True)
        arg = data.draw(st.sampled_from(list(args)))
        pool = {"num_features": st.one_of(BAD_SCALARS, st.integers(0, 4)),
                "eps": st.one_of(st.sampled_from([0, 0.0, -1e-3, 1e-3, 1, float("nan"), "a",
                                                  None, True])),
                "momentum": st.sampled_from([None, 0.0, 0.5, 1, 2.0, -1.0, float("nan"), "a",
                                             True]),
                }.get(arg, BOOL_OR_NOT)
        args[arg] = data.draw(pool)
        width = args["num_features"] if arg == "num_features" and type(
            args[arg]) is int and args[arg] >= 0 else 3
        shape = (4, 5, width) if layer == "BatchNorm1d" else (2, 3, 3, width)
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        unbatched = -1  # no unbatched form: C is axis 1
    a = list(args.values())
    theirs, ours, tm = _both(lambda: getattr(torch.nn, layer)(*a),
                             lambda: getattr(fnn, layer)(*a, rngs=R), x, unbatched)
    out = _compare(theirs, ours, [arg], on_purpose=_refused_on_purpose(layer, arg, args[arg]))
    if out:
        t_out, (f_out, f) = out
        _assert_same_values(t_out, f_out, unbatched)
        if layer != "Linear" and tm.running_mean is not None:  # the running statistics too
            np.testing.assert_allclose(np.asarray(f.mean.get_value()),
                                       tm.running_mean.numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(np.asarray(f.var.get_value()),
                                       tm.running_var.numpy(), rtol=1e-5, atol=1e-6)


ACTIVATIONS = ["LeakyReLU", "Softmax", "LogSoftmax"]


@fuzz
@given(st.sampled_from(ACTIVATIONS),
       st.one_of(BAD_SCALARS, st.integers(-3, 3), st.sampled_from([0.2, -1.5, (0, 1)])),
       st.integers(0, 3))
def test_activation_arguments_as_torch(layer, value, rank):
    arg = "negative_slope" if layer == "LeakyReLU" else "dim"
    x = np.random.default_rng(0).standard_normal((2, 3, 4)[:rank]).astype(np.float32)
    theirs = _outcome(lambda: getattr(torch.nn, layer)(value)(torch.as_tensor(x)))
    ours = _ours(lambda: getattr(fnn, layer)(value)(jnp.asarray(x)))
    on_purpose = _refused_on_purpose(layer, arg, value) or (
        layer != "LeakyReLU" and value is None and rank >= 3)
    out = _compare(theirs, ours, [arg], on_purpose=on_purpose)
    if out:
        _assert_same_values(*out)


# ------------------------------------------------------------------ inputs (hypothesis)

DTYPES = st.sampled_from([np.float32] * 4 + [np.int32, np.int64, np.bool_, np.uint8])


@st.composite
def inputs(draw, ranks, channels):
    """A channels-last array: a rank around the valid ones, small dims with 0 likely, the
    right channel count most of the time, and sometimes an integer or bool dtype."""
    rank = draw(st.integers(max(0, min(ranks) - 1), max(ranks) + 1))
    shape = [draw(st.sampled_from([0, 1, 2, 3, 4])) for _ in range(rank)]
    if rank and channels is not None and draw(st.integers(0, 3)):
        shape[-1] = channels
    for i in range(1, rank - 1):  # spatial axes large enough, most of the time
        if draw(st.integers(0, 2)):
            shape[i] = max(shape[i], 5)
    dtype = draw(DTYPES)
    x = np.random.default_rng(0).standard_normal(shape)
    return (x > 0).astype(dtype) if dtype is np.bool_ else (x * 3).astype(dtype)


def _eval(m):
    m.eval()
    return m


# name: (torch layer, ours, our valid ranks, channels, torch's unbatched rank: C moves to 0
# there; -1: C is axis 1 at every rank; None: no layout change)
CALL_LAYERS = {
    "Conv1d": (lambda: torch.nn.Conv1d(2, 3, 3, padding=1),
               lambda: fnn.Conv1d(2, 3, 3, padding=1, rngs=R), (2, 3), 2, 2),
    "Conv1d reflect": (lambda: torch.nn.Conv1d(2, 3, 3, padding=1, padding_mode="reflect"),
                       lambda: fnn.Conv1d(2, 3, 3, padding=1, padding_mode="reflect", rngs=R),
                       (2, 3), 2, 2),
    "Conv2d": (lambda: torch.nn.Conv2d(2, 4, 2, groups=2),
               lambda: fnn.Conv2d(2, 4, 2, groups=2, rngs=R), (3, 4), 2, 3),
    "ConvTranspose1d": (lambda: torch.nn.ConvTranspose1d(2, 3, 3, stride=2),
                        lambda: fnn.ConvTranspose1d(2, 3, 3, stride=2, rngs=R), (2, 3), 2, 2),
    "ConvTranspose2d": (lambda: torch.nn.ConvTranspose2d(2, 2, 2, padding=1),
                        lambda: fnn.ConvTranspose2d(2, 2, 2, padding=1, rngs=R), (3, 4), 2, 3),
    "Linear": (lambda: torch.nn.Linear(3, 2), lambda: fnn.Linear(3, 2, rngs=R), (1, 2, 3), 3,
               None),
    "BatchNorm1d": (lambda: torch.nn.BatchNorm1d(3), lambda: fnn.BatchNorm1d(3), (2, 3), 3, -1),
    "BatchNorm1d eval": (lambda: torch.nn.BatchNorm1d(3).eval(),
                         lambda: _eval(fnn.BatchNorm1d(3)), (2, 3), 3, -1),
    "BatchNorm2d": (lambda: torch.nn.BatchNorm2d(2), lambda: fnn.BatchNorm2d(2), (4,), 2, -1),
    "LeakyReLU": (lambda: torch.nn.LeakyReLU(0.2), lambda: fnn.LeakyReLU(0.2), (0, 1, 2, 3),
                  None, None),
    "Softmax": (lambda: torch.nn.Softmax(-1), lambda: fnn.Softmax(-1), (0, 1, 2, 3), None,
                None),
    "LogSoftmax": (lambda: torch.nn.LogSoftmax(1), lambda: fnn.LogSoftmax(1), (0, 1, 2, 3),
                   None, None),
    "Identity": (lambda: torch.nn.Identity(), lambda: fnn.Identity(), (0, 1, 2, 3), None, None),
}


@settings(fuzz, max_examples=int(80 * _SCALE))
@given(st.sampled_from(list(CALL_LAYERS)), st.data())
def test_call_inputs_as_torch(name, data):
    """Bad ranks, channel counts, integer/bool dtypes and empty axes: torch's outcome and,
    where torch computes, its shape and values (BatchNorm: its running statistics too)."""
    make_torch, make_ours, ranks, channels, unbatched = CALL_LAYERS[name]
    x = data.draw(inputs(ranks, channels))
    theirs, ours, tm = _both(make_torch, make_ours, x, unbatched)
    on_purpose = name != "Identity" and _empty_but_wrong(x, channels)
    out = _compare(theirs, ours, ["x", "dim"], on_purpose=on_purpose)
    if out:
        _assert_same_values(out[0], out[1][0], unbatched)
        if name.startswith("BatchNorm"):
            f = out[1][1]
            np.testing.assert_allclose(np.asarray(f.mean.get_value()),
                                       tm.running_mean.numpy(), rtol=1e-5, atol=1e-6)
            assert int(f.num_batches_tracked.get_value()) == int(tm.num_batches_tracked)


@fuzz
@given(st.sampled_from(["Softmax", "LogSoftmax"]), st.one_of(st.none(), st.integers(-5, 4)),
       inputs((0, 1, 2, 3, 4), None))
def test_softmax_dim_against_input_rank(layer, dim, x):
    theirs = _outcome(lambda: getattr(torch.nn, layer)(dim)(torch.as_tensor(x)))
    ours = _ours(lambda: getattr(fnn, layer)(dim)(jnp.asarray(x)))
    on_purpose = (dim is None and x.ndim >= 3) or _empty_but_wrong(x)
    out = _compare(theirs, ours, ["x", "dim"], on_purpose=on_purpose)
    if out:
        _assert_same_values(*out)
    if theirs[1] is not None and "Dimension out of range" in str(theirs[1]):
        assert isinstance(ours[1], IndexError) or x.dtype.kind != "f"  # torch's class too


# ------------------------------------------------------ regressions named in issue 12

def test_linear_negative_size_is_a_value_error_not_mlir():
    with pytest.raises(ValueError, match=r"^Linear: in_features must be at least 0, got -1$"):
        fnn.Linear(-1, 3, rngs=R)
    with pytest.raises(ValueError, match=r"Linear: out_features must be at least 0, got -2"):
        fnn.Linear(3, -2, rngs=R)


def test_linear_zero_sizes_work_as_in_torch():
    f = fnn.Linear(0, 3, rngs=R)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "Initializing zero-element tensors"
        t = torch.nn.Linear(0, 3)
    load_torch_state_dict(f, t.state_dict())
    _assert_same_values(t(torch.zeros(2, 0)), f(jnp.zeros((2, 0), jnp.float32)))
    assert fnn.Linear(3, 0, rngs=R)(jnp.ones((2, 3))).shape == (2, 0)


def test_conv_negative_channels_is_a_value_error_not_mlir():
    with pytest.raises(ValueError, match=r"Conv1d: in_channels must be at least 1, got -4"):
        fnn.Conv1d(-4, 2, 3, rngs=R)


@pytest.mark.parametrize("cls", [fnn.Conv1d, fnn.ConvTranspose1d])
def test_float_kernel_size_is_a_type_error_naming_it(cls):
    with pytest.raises(TypeError, match=rf"{cls.__name__}: kernel_size must be an int or a "
                                        r"tuple of 1 ints, got 3\.0"):
        cls(2, 2, 3.0, rngs=R)


@pytest.mark.parametrize("cls", [fnn.Conv1d, fnn.Conv2d, fnn.ConvTranspose1d])
def test_bool_kernel_size_is_refused_not_a_one_tap_kernel(cls):
    # deliberate: torch builds a 1-tap kernel from kernel_size=True
    with pytest.raises(TypeError, match=rf"{cls.__name__}: kernel_size must be an int"):
        cls(2, 2, True, rngs=R)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_conv_transpose_string_padding_names_padding(padding):
    with pytest.raises(TypeError) as info:
        fnn.ConvTranspose1d(2, 2, 3, padding=padding, rngs=R)
    assert str(info.value).startswith("ConvTranspose1d: padding must be an int")
    assert "('s', 'a'" not in str(info.value) and f"got '{padding}'" in str(info.value)


def test_batchnorm_negative_size_is_a_value_error_not_a_broadcast_error():
    with pytest.raises(ValueError, match=r"BatchNorm1d: num_features must be at least 1, "
                                         r"got -1"):
        fnn.BatchNorm1d(-1)


@pytest.mark.parametrize("method", ["matmul", "conv"])
def test_conv_transpose_empty_length_raises_and_empty_batch_is_torchs(method):
    f = fnn.ConvTranspose1d(4, 6, 3, stride=2, method=method, rngs=R)
    with pytest.raises(ValueError, match="ConvTranspose1d: input x has an empty spatial axis"):
        f(jnp.zeros((2, 0, 4)))
    t = torch.nn.ConvTranspose1d(4, 6, 3, stride=2)
    for shape in ((0, 4, 0), (0, 4, 3)):  # regression: 'matmul' gave length 2, torch's is 1
        x = np.zeros(shape, np.float32)
        _assert_same_values(t(torch.as_tensor(x)), f(jnp.asarray(_to_last(x, 2))), 2)


# ------------------------------------------------------------ other fixed cases

@pytest.mark.parametrize("layer,x", [
    (lambda: fnn.Conv1d(2, 3, 3, padding=2, rngs=R), jnp.zeros((1, 0, 2))),
    (lambda: fnn.Conv1d(2, 3, 3, padding=2, rngs=R), jnp.zeros((0, 2))),  # unbatched
    (lambda: fnn.Conv1d(2, 3, 1, padding_mode="replicate", rngs=R), jnp.zeros((0, 0, 2))),
    (lambda: fnn.Conv2d(2, 3, 1, padding=1, rngs=R), jnp.zeros((1, 4, 0, 2))),
])
def test_conv_empty_spatial_axis_is_refused_not_bias_values(layer, x):
    with pytest.raises(ValueError, match="x has an empty spatial axis"):
        layer()(x)


def test_conv_empty_batch_gives_torchs_empty_result():
    t = torch.nn.Conv1d(2, 3, 3, padding=2)
    f = fnn.Conv1d(2, 3, 3, padding=2, rngs=R)
    _assert_same_values(t(torch.zeros(0, 2, 0)), f(jnp.zeros((0, 0, 2), jnp.float32)), 2)


@pytest.mark.parametrize("cls", [fnn.Conv1d, fnn.ConvTranspose1d])
@pytest.mark.parametrize("arg", ["in_channels", "out_channels"])
def test_conv_zero_channels_refused(cls, arg):
    # deliberate: torch builds them; its forward then fails or returns 0 channels
    args = dict(in_channels=2, out_channels=2)
    args[arg] = 0
    with pytest.raises(ValueError, match=rf"{cls.__name__}: {arg} must be at least 1, got 0"):
        cls(**args, kernel_size=3, rngs=R)


def test_conv_groups_messages():
    with pytest.raises(ValueError, match=r"Conv1d: groups must be at least 1, got 0"):
        fnn.Conv1d(2, 2, 3, groups=0, rngs=R)
    with pytest.raises(ValueError, match=r"Conv2d: in_channels must be divisible by groups, "
                                         r"got in_channels=3, groups=2"):
        fnn.Conv2d(3, 2, 3, groups=2, rngs=R)
    with pytest.raises(ValueError, match=r"ConvTranspose2d: out_channels must be divisible"):
        fnn.ConvTranspose2d(2, 3, 3, groups=2, rngs=R)
    with pytest.raises(TypeError, match=r"Conv1d: groups must be an int"):
        fnn.Conv1d(2, 2, 3, groups=2.0, rngs=R)


def test_conv_padding_mode_and_output_padding_messages():
    with pytest.raises(ValueError, match=r"Conv1d: padding_mode must be one of 'zeros', "
                                         r"'reflect', 'replicate', 'circular', got None"):
        fnn.Conv1d(2, 2, 3, padding_mode=None, rngs=R)
    with pytest.raises(ValueError, match=r"ConvTranspose1d: only padding_mode='zeros'.*got "
                                         r"padding_mode='circular'"):
        fnn.ConvTranspose1d(2, 2, 3, padding_mode="circular", rngs=R)
    # torch checks output_padding at the call; its rule depends only on the arguments
    with pytest.raises(ValueError, match=r"ConvTranspose1d: output_padding \(\(1,\)\) must be "
                                         r"smaller than either stride"):
        fnn.ConvTranspose1d(2, 2, 3, output_padding=1, rngs=R)


@pytest.mark.parametrize("cls,shape", [(fnn.Conv1d, (1, 5, 2)), (fnn.Conv2d, (1, 5, 5, 2)),
                                       (fnn.ConvTranspose1d, (1, 5, 2)),
                                       (fnn.ConvTranspose2d, (5, 5, 2))])
@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_, jnp.uint8])
def test_conv_integer_input_is_a_type_error(cls, shape, dtype):
    with pytest.raises(TypeError, match=rf"{cls.__name__}: x must be a floating-point array"):
        cls(2, 2, 3, rngs=R)(jnp.zeros(shape, dtype))


@pytest.mark.parametrize("layer", [lambda: fnn.Linear(3, 2, rngs=R), lambda: fnn.BatchNorm1d(3),
                                   lambda: fnn.LeakyReLU(), lambda: fnn.Softmax(-1),
                                   lambda: fnn.LogSoftmax(-1)])
def test_integer_input_is_a_type_error(layer):
    m = layer()
    with pytest.raises(TypeError, match=rf"{type(m).__name__}: x must be a floating-point"):
        m(jnp.zeros((4, 3), jnp.int32))


@pytest.mark.parametrize("x", [np.zeros((2, 3), np.int64), [1, 2], "text", None])
def test_identity_accepts_anything(x):
    assert fnn.Identity(54, unused=0.1)(x) is x  # torch's Identity ignores its arguments too


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(eps="a"), TypeError, "eps must be a number"),
    (dict(eps=-1e-3), ValueError, "eps must be at least 0.0"),
    (dict(eps=float("nan")), ValueError, "eps must be at least 0.0, got nan"),
    (dict(momentum="a"), TypeError, "momentum must be a number or None"),
    (dict(affine="yes"), TypeError, "affine must be True or False"),
    (dict(track_running_stats=1), TypeError, "track_running_stats must be True or False"),
    (dict(num_features=3.0), TypeError, "num_features must be an int"),
    (dict(num_features=0), ValueError, "num_features must be at least 1"),
])
def test_batchnorm_constructor_messages(kwargs, exc, match):
    args = dict(num_features=3) | kwargs
    with pytest.raises(exc, match=f"BatchNorm2d: {match}"):
        fnn.BatchNorm2d(**args)


def test_batchnorm_zero_eps_only_in_training_as_torch():
    bn = fnn.BatchNorm1d(3, eps=0.0)
    with pytest.raises(ValueError, match="BatchNorm1d: eps must be positive when batch "
                                         "statistics are used"):
        bn(jnp.ones((4, 3)))
    bn.eval()
    assert bn(jnp.ones((4, 3))).shape == (4, 3)  # torch: eps=0 is fine in eval mode


def test_batchnorm_momentum_none_is_accepted():
    assert fnn.BatchNorm1d(3, momentum=None).momentum is None


@pytest.mark.parametrize("shape", [(0, 3), (2, 0, 3), (0, 4, 3)])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_empty_batch_as_torch(shape, momentum):
    """torch returns an empty output, leaves the running statistics unchanged (no NaN) and
    still counts the batch."""
    t, f = torch.nn.BatchNorm1d(3, momentum=momentum), fnn.BatchNorm1d(3, momentum=momentum)
    x = np.zeros(shape, np.float32)
    _assert_same_values(t(torch.as_tensor(_to_first(x, -1))), f(jnp.asarray(x)), -1)
    np.testing.assert_array_equal(np.asarray(f.mean.get_value()), t.running_mean.numpy())
    np.testing.assert_array_equal(np.asarray(f.var.get_value()), t.running_var.numpy())
    assert int(f.num_batches_tracked.get_value()) == int(t.num_batches_tracked) == 1


def test_leaky_relu_slope_messages():
    with pytest.raises(TypeError, match="LeakyReLU: negative_slope must be a number, got 'a'"):
        fnn.LeakyReLU("a")
    with pytest.raises(TypeError, match="LeakyReLU: negative_slope must be a number"):
        fnn.LeakyReLU(True)  # deliberate: torch uses True as a slope of 1
    assert fnn.LeakyReLU(2)(jnp.array([-1.0])).tolist() == [-2.0]  # an int slope, as torch


@pytest.mark.parametrize("cls", [fnn.Softmax, fnn.LogSoftmax])
def test_softmax_dim_checks(cls):
    name = cls.__name__
    for bad in ("a", 1.0, True, (0, 1)):
        with pytest.raises(TypeError, match=f"{name}: dim must be an int or None"):
            cls(bad)
    with pytest.raises(np.exceptions.AxisError, match=rf"{name}: dim must be in \[-2, 1\]") \
            as info:
        cls(2)(jnp.ones((2, 3)))
    assert isinstance(info.value, IndexError) and isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match=f"{name}: dim=None is ambiguous"):  # deliberate
        cls()(jnp.ones((2, 3, 4)))
    with pytest.warns(UserWarning, match="Implicit dimension choice"):  # as torch
        y = cls()(jnp.ones((2, 3), jnp.float32))
    with pytest.warns(UserWarning):
        want = getattr(torch.nn, name)()(torch.ones(2, 3))
    _assert_same_values(want, y)


@pytest.mark.parametrize("cls", [fnn.Softmax, fnn.LogSoftmax])
def test_softmax_of_a_scalar_as_torch(cls):
    for dim in (0, -1):
        _assert_same_values(getattr(torch.nn, cls.__name__)(dim)(torch.tensor(0.3)),
                            cls(dim)(jnp.float32(0.3)))


def test_causal_pad_arguments():
    x = jnp.ones((1, 8, 2))
    with pytest.raises(ValueError, match="causal_pad: kernel_size must be at least 1, got 0"):
        fnn.causal_pad(x, 0)
    with pytest.raises(TypeError, match="causal_pad: kernel_size must be an int"):
        fnn.causal_pad(x, 2.0)
    with pytest.raises(ValueError, match="causal_pad: dilation must be at least 1"):
        fnn.causal_pad(x, 3, 0)
    with pytest.raises(ValueError, match=r"causal_pad: axis must be in \[-3, 2\]"):
        fnn.causal_pad(x, 3, axis=3)
    with pytest.raises(TypeError, match="causal_pad: x must be an array"):
        fnn.causal_pad([[1.0]], 3)
    causal = fnn.causal_pad(x, 3, 2)
    assert causal.shape == (1, 12, 2) and not causal[:, :4].any()
