"""Bad input to the pooling, embedding, recurrent and container layers never gives a silent
wrong result (issue 12): MaxPool1d/2d, AdaptiveAvgPool1d/2d, pool_output_size,
adaptive_bins, Embedding, RNN/LSTM/GRU and Sequential.

The hypothesis suites draw constructor arguments and inputs, good and bad (negative,
float, bool, string and None sizes; bad kernel/stride/padding/dilation combinations; bad
ranks, integer dtypes and empty axes), build the same thing in torch (channels-first there,
channels-last here; the recurrent layers mirror torch's layouts) and assert:

* torch raises → we raise a TypeError, ValueError or IndexError whose message starts with
  the layer's name and names a bad argument (or ``x`` / ``h0`` / ``c0``);
* torch accepts → we accept, with torch's output shape (and values where exact);
* where we refuse on purpose what torch accepts (listed in each layer's docstring: bools as
  sizes, a non-bool flag torch takes as truthy, ``output_size=0``, ``max_norm`` ≤ 0 ...),
  we raise that clear error whatever torch does.

Then one regression test per defect the issue names for these layers.
"""

from __future__ import annotations

import math
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import flax_arch.nn as fnn

# hypothesis imports libcst (which warns a DeprecationWarning) only when it reports a
# failing example; with warnings as errors that turns a failure into an INTERNALERROR.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # optional dependency of hypothesis
        pass

OURS = (TypeError, ValueError, IndexError)
R = nnx.Rngs(0)


def fuzz(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# ---------------------------------------------------------------------------- helpers

def torch_outcome(call):
    """``(output, None)`` or ``(None, exception)``; torch's warnings are not ours to judge."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return call(), None
        except Exception as e:  # RuntimeError, AssertionError, NotImplementedError, ...
            return None, e


def assert_refused(call, layer: str, names):
    """``call`` raises one of OURS, its message starts with ``layer`` and names one of
    ``names``."""
    with pytest.raises(OURS) as info:
        call()
    msg = str(info.value)
    assert msg.startswith(layer), msg
    assert re.search(r"(?<![\w])(" + "|".join(map(re.escape, names)) + r")(?![\w])", msg), \
        f"{msg!r} names none of {names}"


def against_torch(tcall, fcall, compare, *, layer, names, deliberate=False):
    """The contract: refuse where torch refuses (or where we ``deliberate``-ly refuse), and
    otherwise agree with torch through ``compare(torch_output, our_output)``."""
    if deliberate:
        event("refused here on purpose")
        assert_refused(fcall, layer, names)
        return
    t, err = torch_outcome(tcall)
    event(f"torch {'refuses' if err is not None else 'accepts'}")
    if err is not None:
        assert_refused(fcall, layer, names)
    else:
        compare(t, fcall())


def has_bool(v) -> bool:
    return isinstance(v, bool) or (isinstance(v, (tuple, list)) and any(map(has_bool, v)))


def draw_args(draw, spec):
    """``(args, bad)``: each argument of ``spec`` ({name: (valid, bad) strategies}) drawn
    valid, except for up to two drawn bad, whose names ``bad`` lists."""
    k = min(len(spec), draw(st.sampled_from([0, 0, 1, 1, 1, 2])))
    bad = draw(st.lists(st.sampled_from(list(spec)), min_size=k, max_size=k, unique=True))
    return {name: draw(spec[name][name in bad]) for name in spec}, bad


def bad_ints(minimum: int):
    """Values that are no valid int ≥ minimum: too small, float, bool, str, None."""
    return st.one_of(st.integers(minimum - 3, minimum - 1), st.floats(-3, 5),
                     st.just(math.nan), st.booleans(), st.text(max_size=2), st.none())


def sized(valid, bad, n):
    """An int argument of an n-d layer: an int, a tuple of n, or a bad value alone or inside
    a tuple (or a tuple of the wrong length): a (valid, bad) pair of strategies."""
    return (st.one_of(valid, st.tuples(*[valid] * n)),
            st.one_of(bad, st.tuples(*[valid] * (n - 1), bad), st.tuples(*[valid] * (n + 1))))


def to_last(a, n):
    """torch's (N, C, *S) or (C, *S) → our (N, *S, C) or (*S, C); other ranks unchanged."""
    a = np.asarray(a)
    return np.moveaxis(a, a.ndim - n - 1, -1) if a.ndim in (n + 1, n + 2) else a


def same_values(rtol=0.0):
    def compare(t, ours, n):
        t = to_last(t.numpy(), n)
        ours = np.asarray(ours)
        assert ours.shape == t.shape and ours.dtype == t.dtype, (ours.shape, t.shape)
        np.testing.assert_allclose(ours.astype(np.float64), t.astype(np.float64), rtol=rtol,
                                   atol=rtol)
    return compare


DTYPES = ["float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"]


# ------------------------------------------------------------------ MaxPool constructor

@st.composite
def maxpool_configs(draw):
    n = draw(st.sampled_from([1, 2]))
    stride_valid, stride_bad = sized(st.integers(1, 3), bad_ints(1), n)
    args, bad = draw_args(draw, {
        "kernel_size": sized(st.integers(1, 4), bad_ints(1), n),
        "stride": (st.one_of(st.none(), stride_valid), stride_bad),  # None: = kernel_size
        "padding": sized(st.sampled_from([0, 0, 1, 2]), bad_ints(0), n),
        "dilation": sized(st.integers(1, 3), bad_ints(1), n),
        "ceil_mode": (st.booleans(), st.sampled_from([0, 1, "yes", None])),
        # torch returns (output, indices) for any truthy return_indices; only bools here
        "return_indices": (st.booleans(), st.sampled_from([1, 0, "no", None]))})
    length = draw(st.sampled_from([9, 8, 7, 6, 5, 4, 3, 2, 1]))
    return n, args, bad, length


@pytest.mark.fuzz
@fuzz(150)
@given(maxpool_configs())
def test_maxpool_arguments_against_torch(config):
    n, args, bad, length = config
    layer = f"MaxPool{n}d"
    x = np.random.default_rng(0).standard_normal((2, 3) + (length,) * n)
    deliberate = has_bool([args[k] for k in ("kernel_size", "stride", "padding", "dilation")]) \
        or not isinstance(args["return_indices"], bool)

    def compare(t, ours):  # (output, indices) with return_indices: both must agree
        for t_i, ours_i in zip(*((t, ours) if isinstance(t, tuple) else ((t,), (ours,)))):
            same_values()(t_i, ours_i, n)

    against_torch(
        lambda: getattr(torch.nn, layer)(**args)(torch.tensor(x)),
        lambda: getattr(fnn, layer)(**args)(jnp.asarray(to_last(x, n))),
        compare,
        # a bad argument, or the combination rule (padding ≤ kernel_size / 2), or x too small
        layer=layer, names=[*bad, "padding", "x"], deliberate=deliberate)


# --------------------------------------------------------- AdaptiveAvgPool constructor

@st.composite
def adaptive_configs(draw):
    n = draw(st.sampled_from([1, 2]))
    entry = st.integers(1, 5) if n == 1 else st.one_of(st.integers(1, 5), st.none())
    valid = st.one_of(st.integers(1, 5), st.tuples(*[entry] * n),
                      st.lists(entry, min_size=n, max_size=n))
    args, _ = draw_args(draw, {"output_size": (valid, st.one_of(
        bad_ints(1), st.tuples(*[entry] * (n - 1), bad_ints(0)),
        st.tuples(*[entry] * (n + 1))))})
    return n, args["output_size"]


@pytest.mark.fuzz
@fuzz(80)
@given(adaptive_configs())
def test_adaptive_avg_pool_output_size_against_torch(config):
    n, output_size = config
    layer = f"AdaptiveAvgPool{n}d"
    x = np.random.default_rng(0).standard_normal((2, 3) + (5,) * n)
    entries = output_size if isinstance(output_size, (tuple, list)) else [output_size]
    # torch takes bools as sizes and 0 (an empty output); refused here
    deliberate = has_bool(output_size) or 0 in [e for e in entries if not has_bool(e)]
    against_torch(
        lambda: getattr(torch.nn, layer)(output_size)(torch.tensor(x)),
        lambda: getattr(fnn, layer)(output_size)(jnp.asarray(to_last(x, n))),
        lambda t, ours: same_values(1e-12)(t, ours, n),
        layer=layer, names=["output_size"], deliberate=deliberate)


# ------------------------------------------------------------------------ pool inputs

POOLS = [  # (name, n, torch module, ours, rtol or None for an exact max)
    ("MaxPool1d", 1, lambda: torch.nn.MaxPool1d(2), lambda: fnn.MaxPool1d(2), 0.0),
    ("MaxPool2d", 2, lambda: torch.nn.MaxPool2d(3, 1, 1), lambda: fnn.MaxPool2d(3, 1, 1), 0.0),
    ("MaxPool2d", 2, lambda: torch.nn.MaxPool2d(2, 1, 1, 2, ceil_mode=True),
     lambda: fnn.MaxPool2d(2, 1, 1, 2, ceil_mode=True), 0.0),
    ("AdaptiveAvgPool1d", 1, lambda: torch.nn.AdaptiveAvgPool1d(3),
     lambda: fnn.AdaptiveAvgPool1d(3), 1e-6),
    ("AdaptiveAvgPool2d", 2, lambda: torch.nn.AdaptiveAvgPool2d((2, None)),
     lambda: fnn.AdaptiveAvgPool2d((2, None)), 1e-6),
]


@st.composite
def arrays(draw, ranks, dtypes=DTYPES, last=None):
    """Arrays of a rank from ``ranks`` (repeat one to draw it more often), of sizes 0 to 5
    (0 drawn about once in seven), and a dtype from ``dtypes``."""
    rank = draw(st.sampled_from(ranks))
    size = st.sampled_from([1, 2, 3, 4, 5, 5, 0])
    shape = tuple(draw(st.lists(size, min_size=rank, max_size=rank)))
    if last is not None and rank:
        shape = shape[:-1] + (draw(last),)
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 3)))
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.fuzz
@fuzz(150)
@given(st.sampled_from(POOLS),
       arrays([0, 1, 2, 3, 3, 3, 4, 4, 4, 5], ["float64", "float32", "float16", *DTYPES]))
def test_pool_inputs_against_torch(pool, x):
    """Rank, empty axes and dtypes, as torch: MaxPool2d pools integers (compared value for
    value), MaxPool1d and the adaptive pools refuse them; only N (and C in the adaptive
    pools) may be empty."""
    layer, n, tmake, fmake, rtol = pool
    rtol = 1e-3 if x.dtype == np.float16 and rtol else rtol
    # torch skips its dtype check on an empty tensor; a refused dtype is refused here always
    deliberate = x.dtype.kind == "b" or (x.dtype.kind in "iu" and layer != "MaxPool2d")
    against_torch(lambda: tmake()(torch.from_numpy(x.copy())),
                  lambda: fmake()(jnp.asarray(to_last(x, n))),
                  lambda t, ours: same_values(rtol)(t, ours, n), layer=layer, names=["x"],
                  deliberate=deliberate)


def test_pool_helpers_validate_their_arguments():
    with pytest.raises(TypeError, match=r"pool_output_size: kernel must be an int, got 2\.0"):
        fnn.pool_output_size(8, 2.0, 2, 0, 1, False)
    with pytest.raises(ValueError, match=r"pool_output_size: padding \(2\) must be at most half "
                                         r"of kernel \(2\)"):
        fnn.pool_output_size(8, 2, 2, 2, 1, False)
    with pytest.raises(TypeError, match="pool_output_size: ceil_mode must be True or False"):
        fnn.pool_output_size(8, 2, 2, 0, 1, 1)
    with pytest.raises(ValueError, match="adaptive_bins: out must be at least 1, got 0"):
        fnn.adaptive_bins(5, 0)
    with pytest.raises(ValueError, match="adaptive_bins: size must be at least 1, got 0"):
        fnn.adaptive_bins(0, 3)  # its (out, 0) averaging matrix would divide by zero


# ------------------------------------------------------------------ Embedding constructor

@st.composite
def embedding_configs(draw):
    return draw_args(draw, {
        "num_embeddings": (st.integers(1, 5), bad_ints(1)),
        "embedding_dim": (st.integers(0, 3), bad_ints(0)),
        "padding_idx": (st.one_of(st.none(), st.integers(-6, 6)),
                        st.one_of(st.floats(-3, 3), st.booleans(), st.text(max_size=1))),
        "max_norm": (st.one_of(st.none(), st.floats(0.1, 3), st.integers(1, 3)),
                     st.one_of(st.floats(-2, 0), st.just(math.nan), st.booleans(),
                               st.text(max_size=1))),
        # |p| < 1e-30 is left out: JAX's vector norm rounds it to 0 in float32 and warns
        "norm_type": (st.one_of(st.sampled_from([1, 2, 2.0, 0.5, 3, math.inf]),
                                st.floats(-3, 3).filter(lambda p: p == 0 or abs(p) > 1e-30)),
                      st.one_of(st.just(math.nan), st.booleans(), st.text(max_size=1),
                                st.none())),
        "scale_grad_by_freq": (st.booleans(), st.sampled_from([0, 1, "yes", None])),
        "sparse": (st.just(False), st.sampled_from([True, 0, 1, None]))})


@pytest.mark.fuzz
@fuzz(150)
@given(embedding_configs())
def test_embedding_arguments_against_torch(config):
    args, bad = config
    # refused here, taken by torch (see Embedding's docstring): bools as sizes or flags,
    # max_norm ≤ 0 or NaN, a NaN or non-number norm_type, sparse=True
    deliberate = any(a in bad for a in ("max_norm", "norm_type", "sparse")) \
        or any(isinstance(args[a], bool) for a in ("num_embeddings", "embedding_dim"))
    x = np.array([[0, 1], [1, 0]])

    def compare(t, ours):
        assert np.asarray(ours).shape == tuple(t.shape)

    against_torch(lambda: torch.nn.Embedding(**args)(torch.tensor(x)),
                  lambda: fnn.Embedding(**args, rngs=nnx.Rngs(0))(jnp.asarray(x)), compare,
                  layer="Embedding", names=bad or [*args, "x"], deliberate=deliberate)


# ----------------------------------------------------------------------- Embedding input

@pytest.mark.fuzz
@fuzz(100)
@given(arrays([0, 1, 2, 2, 3], ["int64", "int64", "int32", "int32", "int16", "int8",
                               "uint8", "bool", "float32"]),
       st.sampled_from([0, 0, 0, 1, 3]))
def test_embedding_indices_against_torch(x, shift):
    """Any shape (empty and 0-d included) of int32/int64 indices; out-of-range indices
    raise IndexError, other dtypes TypeError; values equal torch's rows."""
    if x.dtype.kind in "iu":
        x = np.asarray(x.astype(np.int64) % 6 - shift).astype(x.dtype)  # some out of [0, 5)
    t = torch.nn.Embedding(5, 3, padding_idx=1)
    f = fnn.Embedding(5, 3, padding_idx=1, rngs=nnx.Rngs(0))
    f.embedding.set_value(jnp.asarray(t.weight.detach().numpy()))
    against_torch(lambda: t(torch.from_numpy(x.copy())), lambda: f(jnp.asarray(x)),
                  lambda t, ours: np.testing.assert_array_equal(np.asarray(ours),
                                                                t.detach().numpy()),
                  layer="Embedding", names=["x"])


# ------------------------------------------------------------------ recurrent constructor

@st.composite
def rnn_configs(draw):
    kind = draw(st.sampled_from(["RNN", "LSTM", "GRU"]))
    flag = (st.booleans(), st.sampled_from([0, 1, "no", None]))
    spec = {"input_size": (st.integers(1, 3), bad_ints(1)),
            "hidden_size": (st.integers(1, 4), bad_ints(1)),
            "num_layers": (st.integers(1, 2), bad_ints(1)),
            "dropout": (st.one_of(st.just(0.0), st.floats(0, 1), st.just(1)),
                        st.one_of(st.floats(-2, -0.01), st.floats(1.01, 3), st.just(math.nan),
                                  st.booleans(), st.text(max_size=1), st.none())),
            "bias": flag, "batch_first": flag, "bidirectional": flag}
    if kind == "RNN":
        spec["nonlinearity"] = (st.sampled_from(["tanh", "relu"]),
                                st.sampled_from(["sigmoid", "RELU", "", None, 1]))
    if kind == "LSTM":  # valid proj_size ≥ hidden_size: the combination rule
        spec["proj_size"] = (st.integers(0, 4), st.one_of(st.integers(-2, -1), st.floats(0, 2),
                                                          st.booleans(), st.none()))
    return (kind, *draw_args(draw, spec))


@pytest.mark.fuzz
@pytest.mark.filterwarnings("ignore:.*dropout option adds dropout after all but last:UserWarning")
@fuzz(60)
@given(rnn_configs())
def test_recurrent_arguments_against_torch(config):
    kind, args, bad = config
    size = args["input_size"] if "input_size" not in bad else 3
    shape = (2, 4, size) if args["batch_first"] is True else (4, 2, size)
    x = np.random.default_rng(0).standard_normal(shape)
    # torch builds bools as sizes (RNN(True, 4) has input_size 1), refused here
    deliberate = any(isinstance(args.get(a), bool)
                     for a in ("input_size", "hidden_size", "num_layers", "proj_size"))

    def compare(t, ours):
        assert jax.tree.map(np.shape, ours) == jax.tree.map(lambda a: tuple(a.shape), t)

    against_torch(lambda: getattr(torch.nn, kind)(**args).double()(torch.tensor(x)),
                  lambda: getattr(fnn, kind)(**args, rngs=nnx.Rngs(0))(jnp.asarray(x)),
                  compare, layer=kind, names=bad or [*args, "x"], deliberate=deliberate)


# ----------------------------------------------------------------------- recurrent input

def perturbed(shape):
    """The right state shape, or one with an axis dropped, added or resized."""
    def change(draw):
        s = list(shape)
        how = draw(st.sampled_from(["drop", "add", "resize"]))
        if how == "drop" and s:
            s.pop(draw(st.integers(0, len(s) - 1)))
        elif how == "add":
            s.insert(draw(st.integers(0, len(s))), 1)
        elif s:
            i = draw(st.integers(0, len(s) - 1))
            s[i] = s[i] + draw(st.sampled_from([-1, 1]))
        return tuple(max(v, 0) for v in s)
    return st.one_of(st.just(tuple(shape)), st.composite(lambda draw: change(draw))())


@st.composite
def rnn_inputs(draw):
    kind = draw(st.sampled_from(["RNN", "LSTM", "GRU"]))
    batch_first = draw(st.booleans())
    x = draw(arrays([0, 1, 2, 2, 3, 3, 3, 3, 4], ["float64"] * 5 + ["int64", "int32", "bool"],
                    last=st.sampled_from([3, 3, 3, 3, 2, 0])))
    states = None
    if draw(st.booleans()) and x.ndim in (2, 3):
        n = x.shape[0 if batch_first else 1] if x.ndim == 3 else None
        want = (1, 4) if n is None else (1, n, 4)
        dtype = draw(st.sampled_from(["float64"] * 3 + ["int64"]))
        states = tuple(np.zeros(draw(perturbed(want)), dtype)
                       for _ in range(2 if kind == "LSTM" else 1))
    return kind, batch_first, x, states


@pytest.mark.fuzz
@fuzz(50)
@given(rnn_inputs())
def test_recurrent_inputs_against_torch(case):
    """Rank, features, dtype, empty axes (zero time steps refused, an empty batch works) and
    the shape and dtype of h0 / c0, as torch checks them."""
    kind, batch_first, x, states = case
    t = getattr(torch.nn, kind)(3, 4, batch_first=batch_first).double()
    f = getattr(fnn, kind)(3, 4, batch_first=batch_first, rngs=nnx.Rngs(0))
    targs = fargs = ()
    if states is not None:  # LSTM: one hx = (h0, c0) argument; RNN / GRU: h0
        ts, fs = tuple(map(torch.from_numpy, states)), tuple(map(jnp.asarray, states))
        targs, fargs = ((ts,), (fs,)) if kind == "LSTM" else (ts, fs)

    def compare(t, ours):
        assert jax.tree.map(np.shape, ours) == jax.tree.map(lambda a: tuple(a.shape), t)

    against_torch(lambda: t(torch.from_numpy(x.copy()), *targs),
                  lambda: f(jnp.asarray(x), *fargs), compare, layer=kind,
                  names=["x", "h0", "c0"])


# ------------------------------------------------------------------------- Sequential

@pytest.mark.parametrize("bad", [3, None, "relu", [jnp.tanh], {"a": jnp.tanh}])
def test_sequential_refuses_what_is_not_callable(bad):
    with pytest.raises(TypeError):  # torch: at construction, or (None) at the call
        torch.nn.Sequential(torch.nn.Tanh(), bad)(torch.zeros(2))
    with pytest.raises(TypeError, match=r"Sequential: layers\[1\] must be a module or a "
                                        r"callable, got"):
        fnn.Sequential(jnp.tanh, bad)


@pytest.mark.parametrize("index,error", [(1.0, TypeError), (True, TypeError),
                                         (slice(0, 1), TypeError), (2, IndexError),
                                         (-3, IndexError)])
def test_sequential_index(index, error):
    """torch also slices a Sequential; refused here (TypeError naming the index)."""
    with pytest.raises(error, match="Sequential:? index"):
        fnn.Sequential(jnp.tanh, jnp.tanh)[index]


# ========================================================= regression tests (issue 12)

def test_embedding_negative_size_is_a_value_error_not_mlir():
    with pytest.raises(RuntimeError):
        torch.nn.Embedding(-1, 3)
    with pytest.raises(ValueError, match="Embedding: num_embeddings must be at least 1, "
                                         "got -1"):
        fnn.Embedding(-1, 3, rngs=R)
    with pytest.raises(ValueError, match="Embedding: embedding_dim must be at least 0"):
        fnn.Embedding(3, -1, rngs=R)


def test_embedding_float_padding_idx_is_a_type_error():
    with pytest.raises(IndexError):  # torch: an indexer error
        torch.nn.Embedding(3, 3, padding_idx=2.5)
    with pytest.raises(TypeError, match=r"Embedding: padding_idx must be an int or None, "
                                        r"got 2\.5"):
        fnn.Embedding(3, 3, padding_idx=2.5, rngs=R)


@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "int8", "uint8", "bool"])
def test_maxpool1d_refuses_integer_input_as_torch_does(dtype):
    """Was an OverflowError (−∞ cast to an integer dtype)."""
    with pytest.raises(NotImplementedError):
        torch.nn.MaxPool1d(2)(torch.zeros(1, 3, 8, dtype=getattr(torch, dtype)))
    with pytest.raises(TypeError, match=f"MaxPool1d: x must be a floating-point array .*"
                                        f"got dtype {dtype}"):
        fnn.MaxPool1d(2)(jnp.zeros((1, 8, 3), dtype))


@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "int8", "uint8"])
@pytest.mark.parametrize("args", [(2,), (3, 1, 1), (2, 1, 1, 2), (3, 2, 1, 1, False, True),
                                  (2, 3, 0, 3)])
def test_maxpool2d_pools_integers_as_torch_does(dtype, args):
    """torch pools integers with the dtype's minimum as padding; the extremes included."""
    info = np.iinfo(dtype)
    x = np.random.default_rng(0).integers(info.min, info.max, (2, 3, 9, 7), dtype=dtype,
                                          endpoint=True)
    x[0, 0, :3, :3] = info.min
    t = torch.nn.MaxPool2d(*args)(torch.from_numpy(x)).numpy()
    ours = fnn.MaxPool2d(*args)(jnp.asarray(to_last(x, 2)))
    assert ours.dtype == x.dtype
    np.testing.assert_array_equal(np.asarray(ours), to_last(t, 2))


def test_maxpool2d_refuses_bool_input_as_torch_does():
    with pytest.raises(NotImplementedError):
        torch.nn.MaxPool2d(2)(torch.zeros(1, 3, 8, 8, dtype=torch.bool))
    with pytest.raises(TypeError, match="MaxPool2d: x must be a floating-point array"):
        fnn.MaxPool2d(2)(jnp.zeros((1, 8, 8, 3), bool))


@pytest.mark.parametrize("kernel_size,error", [(3.0, TypeError), (True, TypeError),
                                               ((2, True), TypeError), (0, ValueError),
                                               ("3", TypeError), (None, TypeError)])
def test_maxpool_kernel_size_type_and_value(kernel_size, error):
    """kernel_size=3.0 was "'float' object is not iterable"; True a 1-tap pool. torch
    refuses all but (2, True), which it takes as (2, 1); refused here too."""
    t, err = torch_outcome(lambda: torch.nn.MaxPool2d(kernel_size)(torch.zeros(1, 1, 8, 8)))
    assert (err is None) == (kernel_size == (2, True))
    with pytest.raises(error, match="MaxPool2d: kernel_size must be"):
        fnn.MaxPool2d(kernel_size)


def test_maxpool_flags_must_be_bools():
    with pytest.raises(TypeError, match="MaxPool2d: ceil_mode must be True or False, got 1"):
        fnn.MaxPool2d(2, ceil_mode=1)
    with pytest.raises(TypeError, match="MaxPool1d: return_indices must be True or False"):
        fnn.MaxPool1d(2, return_indices=1)  # torch takes it and returns a tuple


@pytest.mark.parametrize("layer,x", [
    (lambda: fnn.MaxPool2d(2), jnp.zeros((1, 8, 8, 0))),
    (lambda: fnn.MaxPool2d(2), jnp.zeros((1, 0, 8, 3))),
    (lambda: fnn.MaxPool1d(2), jnp.zeros((0, 3))),
    (lambda: fnn.AdaptiveAvgPool2d((None, 2)), jnp.zeros((1, 0, 8, 3))),
])
def test_pool_empty_axes_are_refused_except_batch(layer, x):
    with pytest.raises(ValueError, match=r"x has an empty (spatial|channel) axis"):
        layer()(x)


def test_pool_empty_batch_and_adaptive_empty_channels_work_as_in_torch():
    assert fnn.MaxPool2d(2)(jnp.zeros((0, 8, 8, 3))).shape == (0, 4, 4, 3)
    assert fnn.AdaptiveAvgPool2d(2)(jnp.zeros((1, 8, 8, 0))).shape == (1, 2, 2, 0)
    assert tuple(torch.nn.AdaptiveAvgPool2d(2)(torch.zeros(1, 0, 8, 8)).shape) == (1, 0, 2, 2)


def test_adaptive_avg_pool_refusals_beyond_torch():
    """torch takes (2, True) as (2, 1) and 0 as an empty output; both refused here."""
    with pytest.raises(TypeError, match="AdaptiveAvgPool2d: output_size must be"):
        fnn.AdaptiveAvgPool2d((2, True))
    with pytest.raises(ValueError, match="AdaptiveAvgPool1d: output_size must be"):
        fnn.AdaptiveAvgPool1d(0)
    with pytest.raises(TypeError, match="AdaptiveAvgPool1d: output_size must be"):
        fnn.AdaptiveAvgPool1d(None)  # as torch: no None in 1-d


# ------------------------------------------------- Embedding out of range under jit

def _jit_embedding(**kw):
    t = torch.nn.Embedding(5, 3, **kw)
    f = fnn.Embedding(5, 3, **kw, rngs=nnx.Rngs(0))
    f.embedding.set_value(jnp.asarray(t.weight.detach().numpy()))
    return t, f


X_BAD = np.array([[-1, 2, 5], [2, -5, 0], [7, 2, 1]])  # −1 and −5 would wrap to rows 4 and 0
VALID = (X_BAD >= 0) & (X_BAD < 5)


def test_embedding_out_of_range_under_jit_is_a_nan_row():
    t, f = _jit_embedding()
    out = np.asarray(nnx.jit(lambda m, x: m(x))(f, jnp.asarray(X_BAD)))
    assert np.isnan(out[~VALID]).all()
    np.testing.assert_array_equal(out[VALID], t.weight.detach().numpy()[X_BAD[VALID]])
    with pytest.raises(IndexError, match="Embedding: indices in x must lie in"):
        f(jnp.asarray(X_BAD))  # eager, as torch
    with pytest.raises(IndexError):
        t(torch.from_numpy(X_BAD))


def test_embedding_max_norm_under_jit_renormalises_only_valid_rows():
    """Was: −1 renormalised the last row. The updated weight is torch's for the valid
    indices alone."""
    t, f = _jit_embedding(max_norm=0.5)
    with torch.no_grad():
        t.weight.mul_(4)  # every row's norm above max_norm
    f.embedding.set_value(jnp.asarray(t.weight.detach().numpy()))
    out = np.asarray(nnx.jit(lambda m, x: m(x))(f, jnp.asarray(X_BAD)))
    ref = t(torch.from_numpy(X_BAD[VALID])).detach().numpy()
    np.testing.assert_allclose(out[VALID], ref, rtol=1e-6)
    assert np.isnan(out[~VALID]).all()
    np.testing.assert_allclose(np.asarray(f.embedding.get_value()), t.weight.detach().numpy(),
                               rtol=1e-6)
    assert np.linalg.norm(np.asarray(f.embedding.get_value())[4]) > 1  # row 4 untouched


@pytest.mark.parametrize("loss", ["sum_sq", "nansum"])
def test_embedding_gradient_under_jit_ignores_out_of_range(loss):
    """scale_grad_by_freq counts and the gradient see only the valid indices (−5 used to
    count as row 0, and −1 to send a gradient to row 4); padding_idx stays gradient-free."""
    t, f = _jit_embedding(scale_grad_by_freq=True, padding_idx=1)
    c = np.random.default_rng(1).standard_normal(X_BAD.shape + (3,))

    def our_loss(m, x):
        out = m(x)
        if loss == "sum_sq":  # NaN in value, but no NaN may reach the weight's gradient
            return jnp.sum(out ** 2 * c)
        return jnp.sum(jnp.where(jnp.isnan(out), 0.0, out) * c)

    g = nnx.jit(nnx.grad(our_loss))(f, jnp.asarray(X_BAD)).embedding.get_value()
    out_t = t(torch.from_numpy(X_BAD[VALID]))
    ct = torch.from_numpy(c[VALID]).float()
    (out_t ** 2 * ct if loss == "sum_sq" else out_t * ct).sum().backward()
    np.testing.assert_allclose(np.asarray(g), t.weight.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(g)[[1, 3, 4]] == 0)  # padding row; rows 3, 4 never validly used


# ------------------------------------------------------------------ recurrent regressions

@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_recurrent_refuses_integer_input(kind, dtype):
    with pytest.raises(ValueError):  # torch: input dtype does not match weight dtype
        getattr(torch.nn, kind)(3, 4)(torch.zeros(5, 2, 3, dtype=getattr(torch, dtype)))
    with pytest.raises(TypeError, match=f"{kind}: x must be floating point, got dtype {dtype}"):
        getattr(fnn, kind)(3, 4, rngs=R)(jnp.zeros((5, 2, 3), dtype))


@pytest.mark.parametrize("kind,hx,match", [
    ("GRU", np.zeros((2, 2, 4)), r"GRU: h0 must have shape \(num_layers\*num_directions, N, "
                                 r"hidden_size\) = \(1, 2, 4\), got \(2, 2, 4\)"),
    ("RNN", np.zeros((1, 2, 4), np.int64), r"RNN: h0 must be floating point, got dtype int64"),
    ("RNN", [[[0.0] * 4] * 2], r"RNN: h0 must be an array of shape .* = \(1, 2, 4\), got list"),
    ("LSTM", (np.zeros((1, 2, 4)), np.zeros((1, 2, 5))),
     r"LSTM: c0 \(hx\[1\]\) must have shape .* = \(1, 2, 4\), got \(1, 2, 5\)"),
    ("LSTM", (np.zeros((1, 2, 4), np.int32), np.zeros((1, 2, 4))),
     r"LSTM: h0 \(hx\[0\]\) must be floating point"),
])
def test_recurrent_state_errors_name_the_state(kind, hx, match):
    with pytest.raises(OURS, match=match):
        getattr(fnn, kind)(3, 4, rngs=R)(jnp.zeros((5, 2, 3)), hx)


@pytest.mark.parametrize("kw,error,match", [
    (dict(input_size=0), ValueError, "input_size must be greater than zero, got 0"),
    (dict(input_size=True), TypeError, r"input_size must be an int, got True \(bool\)"),
    (dict(hidden_size=4.0), TypeError, "hidden_size must be an int, got 4.0"),
    (dict(num_layers=0), ValueError, "num_layers must be greater than zero"),
    (dict(dropout="0.1"), TypeError, "dropout must be a number in"),
    (dict(dropout=math.nan), ValueError, r"dropout should be a number in range \[0, 1\]"),
    (dict(bias=1), TypeError, "bias must be True or False, got 1"),
    (dict(batch_first="yes"), TypeError, "batch_first must be True or False"),
    (dict(bidirectional=1), TypeError, "bidirectional must be True or False"),
    (dict(unroll=0), ValueError, "unroll must be at least 1"),
])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_recurrent_constructor_errors(kind, kw, error, match):
    args = {"input_size": 3, "hidden_size": 4, **kw}
    with pytest.raises(error, match=f"^{kind}: {match}"):
        getattr(fnn, kind)(**args, rngs=R)


def test_lstm_proj_size_and_rnn_nonlinearity():
    with pytest.raises(ValueError, match="LSTM: proj_size must be non-negative"):
        fnn.LSTM(3, 4, proj_size=-1, rngs=R)
    with pytest.raises(TypeError, match="LSTM: proj_size must be an int, got True"):
        fnn.LSTM(3, 4, proj_size=True, rngs=R)
    with pytest.raises(ValueError, match="RNN: unknown nonlinearity None; nonlinearity must"):
        fnn.RNN(3, 4, nonlinearity=None, rngs=R)
