"""Bad input to the slide models, judged against their torch originals.

Every registered architecture (and building block) is checked two ways:

* constructors: hypothesis draws a bad value (negative, zero, float, bool, string, None) for
  one size argument at a time; the error is a TypeError/ValueError naming the model and that
  argument (:mod:`flax_arch.models._checks`);
* calls: for one registry case per model, the input is altered the ways users get it wrong
  (integer dtype, no batch axis, an extra leading axis, an empty batch, one channel too
  many) and both frameworks are called. Where torch refuses, the Flax model must refuse with
  a TypeError/ValueError naming the argument; where torch accepts, the Flax model must accept
  and give torch's numbers (compared layout-free: sorted values).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings, strategies as st

from flax_arch.models import ARCHITECTURES, PARTS
from flax_arch.models.registry import Architecture
from flax_arch.parity.harness import flatten_outputs, prepare
from flax_arch.parity.registry import FAMILIES, family_cases

torch = pytest.importorskip("torch")

# ------------------------------------------------------------------------ constructors

#: small valid arguments per model; every int among them is fuzzed
VALID = {
    "LogisticRegression": dict(num_inputs=4),
    "LinearRegression": dict(num_inputs=4),
    "SoftmaxClassifier": dict(num_inputs=4, num_outputs=3),
    "MLP": dict(num_inputs=4, hidden_size=5, num_outputs=3),
    "ValidConv1d": dict(num_channels_in=2, hidden_size=3, kernel_width=3),
    "PaddedConv1d": dict(num_channels_in=2, hidden_size=3, kernel_width=3),
    "CausalConv1d": dict(num_channels_in=2, hidden_size=3, kernel_width=3),
    "ConvMLP": dict(num_inputs=4, hidden_size=5, num_outputs=3),
    "TransposedConv1d": dict(num_channels_in=2, hidden_size=3, kernel_width=4, stride=2),
    "OneHotLinear": dict(vocab_size=10, hidden_size=4),
    "EmbeddingLookup": dict(vocab_size=10, hidden_size=4),
    "RNNClassifier": dict(num_inputs=4, hidden_size=5, num_outputs=3, num_layers=2),
    "QRNN": dict(input_size=3, hidden_size=4, num_layers=2, kwidth=2),
    "QRNNLayer": dict(num_inputs=3, num_outputs=4, kwidth=2),
    "AE": dict(num_inputs=16),
    "VAE": dict(),
    "AlexNet": dict(num_classes=5, hidden=8),
    "InceptionModule": dict(in_channels=3, ch1x1=2, ch3x3red=2, ch3x3=3, ch5x5red=2, ch5x5=3,
                            pool_proj=2),
    "ResLayer": dict(num_inputs=3),
    "UNet": dict(in_channels=1, out_channels=2, base_channels=2, depth=2),
    "Conv1dGenerator": dict(kwidth=5, pooling=2),
    "DCGANGenerator": dict(nc=3, nz=4, ngf=2),
    "DCGANDiscriminator": dict(nc=3, ndf=2),
    "DownConv1dBlock": dict(ninp=2, fmap=3, kwidth=4, stride=2),
    "UpConv1dBlock": dict(ninp=2, fmap=3, kwidth=4, stride=2),
    "UNetDoubleConv": dict(in_channels=2, out_channels=3),
}
CLASSES = {cls.__name__: cls for cls in (*ARCHITECTURES.classes(), *PARTS)}
SIZE_ARGS = [(name, arg) for name, kw in VALID.items() for arg, v in kw.items()
             if isinstance(v, int)]


def test_every_model_is_covered():
    assert set(VALID) == set(CLASSES)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_arguments_build(name):
    CLASSES[name](**VALID[name], rngs=nnx.Rngs(0))


BAD_SIZES = st.one_of(st.integers(max_value=0), st.floats(allow_nan=True), st.booleans(),
                      st.text(max_size=3), st.none(), st.just((3,)))


@pytest.mark.fuzz
@pytest.mark.parametrize("name,arg", SIZE_ARGS, ids=[f"{n}.{a}" for n, a in SIZE_ARGS])
@settings(max_examples=8, deadline=None)
@given(bad=BAD_SIZES)
def test_bad_size_is_refused_naming_the_argument(name, arg, bad):
    with pytest.raises((TypeError, ValueError)) as info:
        CLASSES[name](**{**VALID[name], arg: bad}, rngs=nnx.Rngs(0))
    assert re.search(rf"\b{re.escape(arg)}\b", str(info.value)), str(info.value)


@pytest.mark.parametrize("kwargs,match", [
    (dict(dropout=1.5), r"AlexNet: dropout must be in \[0.0, 1.0\], got 1.5"),
    (dict(dropout="0.5"), r"AlexNet: dropout must be a number"),
    (dict(channels=(8, 8, 8, 8, -1)), r"AlexNet: channels\[4\] must be at least 1, got -1"),
    (dict(channels=(8, 8, 8, 8)), r"AlexNet: channels must be 5 convolution widths"),
])
def test_alexnet_arguments(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        CLASSES["AlexNet"](**{**VALID["AlexNet"], **kwargs}, rngs=nnx.Rngs(0))


def test_qrnn_flags():
    with pytest.raises(TypeError, match="QRNN: bidirectional must be True or False"):
        CLASSES["QRNN"](3, 4, bidirectional="yes", rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="QRNNLayer: zoneout must be a number"):
        CLASSES["QRNNLayer"](3, 4, zoneout="0.1", rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="UNet: batch_norm must be True or False"):
        CLASSES["UNet"](batch_norm=1, rngs=nnx.Rngs(0))


# ------------------------------------------------------------------------------- calls

def _cases_by_class():
    """The first small registry case of every Flax model class of the slide families (the
    ``nn_*`` families' layers have their bad-input tests in ``test_nn_<family>.py``)."""
    picked: dict[str, object] = {}
    slide_cases = [c for f in FAMILIES if not f.startswith("nn_") for c in family_cases(f)]
    for case in slide_cases:
        if "slow" in case.tags:
            continue
        cls = type(nnx.eval_shape(lambda: case.flax_module(nnx.Rngs(0)))).__name__
        picked.setdefault(cls, case)
    return picked


CASES = _cases_by_class()


@functools.lru_cache(maxsize=None)
def _prepared(model):
    return prepare(CASES[model], "float32")
#: the arguments a refusal may name (the models' inputs and states)
ARG = r"\b(x|z|input|state|eps|h0|hx|c0)\b"


def _channel_axis(case, ndim, flax: bool) -> int:
    if flax or not case.in_layouts or case.in_layouts[0] != "channels":
        return ndim - 1
    return 1 if ndim >= 3 else 0


def _alter(kind, case, a, flax):
    """One way to get the first input wrong, applied in either framework's layout."""
    if kind == "integer":
        return a.astype(np.int32) if np.issubdtype(a.dtype, np.floating) else a.astype(np.float32)
    if kind == "no batch axis":
        return a[0]
    if kind == "extra leading axis":
        return a[None]
    if kind == "empty batch":
        return a[:0]
    if kind == "one channel too many":
        ax = _channel_axis(case, a.ndim, flax)
        return np.concatenate([a, np.take(a, [0], axis=ax)], axis=ax)
    raise AssertionError(kind)


KINDS = ("integer", "no batch axis", "extra leading axis", "empty batch", "one channel too many")


def _outcome(call):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's own UserWarnings are not the subject
            return call(), None
    except Exception as e:  # noqa: BLE001 - the class is what is being compared
        return None, e


#: where torch returns a result and the Flax twin refuses, on purpose (docstrings say why)
DELIBERATE = {
    # the slide's LogSoftmax(dim=1) normalises over the wrong axis for these layouts:
    # over L for an unbatched (C, L) input, over the batch for a 3-D one
    ("ConvMLP", "no batch axis"): r"ConvMLP: x must have rank 3",
    ("MLP", "extra leading axis"): r"MLP: x must have rank 2",
    ("SoftmaxClassifier", "extra leading axis"): r"SoftmaxClassifier: x must have rank 2",
    # torch broadcasts mu (1, 20) against eps (3, 20) into 3 samples of one input
    ("VAE", "no batch axis"): r"VAE: eps must have the shape of mu",
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("model", sorted(CASES))
def test_call_refuses_what_torch_refuses(model, kind):
    case = CASES[model]
    prep = _prepared(model)
    # fresh copies: a train-mode call updates running statistics in place
    prep = dataclasses.replace(prep, torch_module=copy.deepcopy(prep.torch_module),
                               flax_module=nnx.clone(prep.flax_module))
    t_in = [a for a in prep.inputs]
    f_in = [np.asarray(a) for a in prep.flax_inputs()]
    t_in[0], f_in[0] = _alter(kind, case, t_in[0], False), _alter(kind, case, f_in[0], True)
    with torch.no_grad():
        want, t_err = _outcome(lambda: prep.call_torch(
            prep.torch_module, *[torch.from_numpy(np.ascontiguousarray(a)) for a in t_in]))
    got, f_err = _outcome(lambda: prep.call_flax(prep.flax_module,
                                                 *[jnp.asarray(a) for a in f_in]))
    if (model, kind) in DELIBERATE:
        assert t_err is None, f"torch now refuses too: {t_err!r}; drop the DELIBERATE entry"
        assert isinstance(f_err, ValueError) and re.search(DELIBERATE[model, kind], str(f_err))
        return
    if t_err is not None:
        assert f_err is not None, f"torch refuses ({type(t_err).__name__}: {t_err}); Flax " \
                                  f"returned a result"
        assert isinstance(f_err, (TypeError, ValueError, IndexError)), repr(f_err)
        assert re.search(ARG, str(f_err)), f"the error does not name the argument: {f_err}"
        assert "Traceback" not in str(f_err)
        return
    assert f_err is None, f"torch accepts; Flax raised {type(f_err).__name__}: {f_err}"
    want = [np.asarray(w.detach().numpy(), np.float64) for w in flatten_outputs(want)]
    got = [np.asarray(g, np.float64) for g in flatten_outputs(got)]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert sorted(g.shape) == sorted(w.shape)
        np.testing.assert_allclose(np.sort(g, axis=None), np.sort(w, axis=None),
                                   rtol=1e-5, atol=1e-5)
