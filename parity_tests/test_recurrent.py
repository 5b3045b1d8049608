"""Recurrent layers (``flax_arch.nn.recurrent``) against ``torch.nn.RNN`` / ``LSTM`` / ``GRU``.

* hypothesis-fuzzed parity over every flag (layers, nonlinearity, bias, batch_first,
  bidirectional, proj_size, initial state, T = 1, batch 1, packed lengths — unsorted,
  ``enforce_sorted=False``), forward and gradients, float64 ≤ 1e-12 / float32 ≤ 1e-5,
  through :func:`flax_arch.parity.run_case`;
* dropout, which cannot share torch's random masks: eval mode is exact, train mode is
  deterministic given the seed and differs from eval;
* checkpoints round-trip through the torch state_dict in both directions;
* bad inputs raise ``ValueError`` naming the argument and the expected shape;
* the time loop is one ``lax.scan`` per layer whatever the length.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import example, given, settings, strategies as st

from flax_arch.interop import load_torch_state_dict, to_torch_state_dict
from flax_arch.models.recurrent import RNNClassifier
from flax_arch.nn.recurrent import GRU, LSTM, RNN
from flax_arch.parity import run_case
from flax_arch.parity.registry.recurrent import recurrent_case

FLAX = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}


def _assert_parity(case, dtype):
    r = run_case(case, dtype, locate=False)
    assert r.error is None, f"{case.name} [{dtype}]: {r.error}"
    assert r.passed, (f"{case.name} [{dtype}]: forward {r.forward_err:.2e}, grad "
                      f"{r.grad_err:.2e} > {r.tol:.0e}; worst {r.worst}")


# ------------------------------------------------------------------ fuzzed parity

@st.composite
def configs(draw, kind):
    hidden = draw(st.integers(1, 5))
    cfg = dict(
        input_size=draw(st.integers(1, 4)), hidden_size=hidden,
        num_layers=draw(st.integers(1, 3)), bias=draw(st.booleans()),
        batch_first=draw(st.booleans()), bidirectional=draw(st.booleans()),
        h0=draw(st.booleans()), seq_len=draw(st.sampled_from([1, 2, 3, 5])),
        batch=draw(st.integers(1, 3)), unroll=draw(st.sampled_from([1, 1, 2])))
    if kind == "RNN":
        cfg["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    if kind == "LSTM" and hidden > 1 and draw(st.booleans()):
        cfg["proj_size"] = draw(st.integers(1, hidden - 1))
    mode = draw(st.sampled_from(["dense", "lengths", "unbatched"]))
    if mode == "unbatched":
        cfg["unbatched"] = True
    elif mode == "lengths":  # unsorted lengths in [1, T]: packed with enforce_sorted=False
        cfg["lengths"] = draw(st.lists(st.integers(1, cfg["seq_len"]), min_size=cfg["batch"],
                                       max_size=cfg["batch"]))
    return cfg, draw(st.sampled_from(["float64", "float32"]))


def _fuzz(kind, cfg_dtype, seed):
    cfg, dtype = cfg_dtype
    case = recurrent_case(kind, **cfg, seed=seed)
    _assert_parity(case, dtype)


_EDGE = dict(input_size=2, hidden_size=3, num_layers=2, bias=True, batch_first=True,
             bidirectional=True, h0=True, unroll=1)
# explicit edge cases: T = 1 with lengths, batch 1 with lengths, unsorted lengths
_T1 = dict(_EDGE, seq_len=1, batch=2, lengths=[1, 1])
_N1 = dict(_EDGE, seq_len=4, batch=1, lengths=[3])
_UNSORTED = dict(_EDGE, batch_first=False, seq_len=5, batch=3, lengths=[2, 5, 3])

SETTINGS = settings(deadline=None, max_examples=6)


@pytest.mark.fuzz
@SETTINGS
@given(cfg=configs("RNN"), seed=st.integers(0, 2**16))
@example(cfg=(dict(_T1, nonlinearity="relu"), "float64"), seed=0)
def test_fuzz_rnn(cfg, seed):
    _fuzz("RNN", cfg, seed)


@pytest.mark.fuzz
@SETTINGS
@given(cfg=configs("LSTM"), seed=st.integers(0, 2**16))
@example(cfg=(dict(_N1, proj_size=2), "float32"), seed=1)
def test_fuzz_lstm(cfg, seed):
    _fuzz("LSTM", cfg, seed)


@pytest.mark.fuzz
@SETTINGS
@given(cfg=configs("GRU"), seed=st.integers(0, 2**16))
@example(cfg=(_UNSORTED, "float64"), seed=2)
def test_fuzz_gru(cfg, seed):
    _fuzz("GRU", cfg, seed)


# ------------------------------------------------------------------ dropout

def test_dropout_eval_mode_is_exact():
    """Eval mode: dropout is off in both, so parity holds whatever the rate."""
    _assert_parity(recurrent_case("GRU", 3, 4, 2, dropout=0.5, bidirectional=True,
                                  name="gru_dropout_eval"), "float64")


_call = nnx.jit(lambda m, x: m(x))  # one compiled program per configuration / mode


def _dropout_pair(seed=0):
    x = jax.random.normal(jax.random.key(1), (6, 2, 3))
    a = LSTM(3, 8, 2, dropout=0.5, rngs=nnx.Rngs(seed))
    b = LSTM(3, 8, 2, dropout=0.5, rngs=nnx.Rngs(seed))
    return a, b, x


def test_dropout_train_mode_deterministic_given_seed():
    a, b, x = _dropout_pair()
    out_a, (_, c_a) = _call(a, x)
    out_b, (_, c_b) = _call(b, x)
    np.testing.assert_array_equal(out_a, out_b)  # same seed → same masks
    np.testing.assert_array_equal(c_a, c_b)
    out_a2, _ = _call(a, x)  # the dropout stream advances: a new mask
    assert not np.allclose(out_a, out_a2)
    a.eval()
    assert a.drop.deterministic
    out_eval, _ = _call(a, x)
    assert not np.allclose(out_a, out_eval)
    a.train()
    assert not a.drop.deterministic
    # eval mode equals the same weights with dropout=0
    a.eval()
    ref = LSTM(3, 8, 2, dropout=0.0, rngs=nnx.Rngs(7))
    load_torch_state_dict(ref, to_torch_state_dict(a))
    ref.eval()
    np.testing.assert_array_equal(_call(a, x)[0], _call(ref, x)[0])


def test_dropout_train_mode_only_between_layers():
    """The first layer's state never sees dropout; the second layer's does; the mask
    scales kept entries by 1/(1−p)."""
    a, b, x = _dropout_pair()
    b.eval()
    _, (h_train, _) = _call(a, x)
    _, (h_eval, _) = _call(b, x)
    np.testing.assert_allclose(h_train[0], h_eval[0], rtol=1e-6)  # layer 0: no dropout
    assert not np.allclose(h_train[1], h_eval[1])                  # layer 1 input dropped


def test_dropout_train_mode_gradients():
    a, _, x = _dropout_pair()

    def loss(m, x):
        out, (h, c) = m(x)
        return jnp.sum(out ** 2) + jnp.sum(h) + jnp.sum(c)

    grads = nnx.jit(nnx.grad(loss))(a, x)
    g = to_torch_state_dict(grads)
    p = to_torch_state_dict(a)
    assert set(g) == set(p)
    for k in p:
        assert g[k].shape == p[k].shape and np.all(np.isfinite(g[k])), k
    assert np.any(g["weight_ih_l0"] != 0) and np.any(g["weight_hh_l1"] != 0)


def test_dropout_warning_and_range():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        RNN(3, 4, 1, dropout=0.2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"dropout should be a number in range \[0, 1\]"):
        RNN(3, 4, 2, dropout=1.5, rngs=nnx.Rngs(0))


# ------------------------------------------------------------------ parameters, checkpoints

@pytest.mark.parametrize("kind,kw", [("RNN", dict(nonlinearity="relu")), ("LSTM", {}),
                                     ("LSTM", dict(proj_size=2)), ("GRU", dict(bias=False))])
def test_state_dict_round_trip(kind, kw):
    torch.manual_seed(0)
    tm = getattr(torch.nn, kind)(3, 5, 2, bidirectional=True, **kw).double()
    fm = FLAX[kind](3, 5, 2, bidirectional=True, **kw, rngs=nnx.Rngs(0))
    # the same names and shapes (torch layout) before loading anything
    mine = to_torch_state_dict(fm)
    assert {k: v.shape for k, v in mine.items()} == \
        {k: tuple(v.shape) for k, v in tm.state_dict().items()}
    # torch → flax → torch is exact
    load_torch_state_dict(fm, tm.state_dict())
    back = to_torch_state_dict(fm)
    for k, v in tm.state_dict().items():
        np.testing.assert_array_equal(back[k], v.numpy())
    # flax → torch: a fresh torch module loaded from the Flax state computes the same
    fm2 = FLAX[kind](3, 5, 2, bidirectional=True, **kw, rngs=nnx.Rngs(3),
                     param_dtype=jnp.float64)
    tm.load_state_dict({k: torch.tensor(v) for k, v in to_torch_state_dict(fm2).items()})
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    want = tm(torch.as_tensor(x))[0].detach().numpy()
    got = nnx.jit(lambda m, x: m(x)[0])(fm2, jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-12)


def test_init_is_torch_uniform():
    m = LSTM(3, 16, 2, bidirectional=True, rngs=nnx.Rngs(0))
    sd = to_torch_state_dict(m)
    bound = 1 / np.sqrt(16)
    for k, v in sd.items():
        assert v.dtype == np.float32
        assert np.all(np.abs(v) <= bound), k
        assert np.abs(v).max() > 0.5 * bound, k  # spread over the interval, not zeros
    flat = np.concatenate([v.ravel() for v in sd.values()])
    assert abs(flat.mean()) < 0.1 * bound and abs(flat.std() - bound / np.sqrt(3)) < 0.1 * bound


def test_classifier_keys_are_the_slide_modules():
    import torch_ref.recurrent as tr
    fm = RNNClassifier(6, 8, 3, rngs=nnx.Rngs(0))
    assert set(to_torch_state_dict(fm)) == set(tr.RNNClassifier(6, 8, 3).state_dict())


# ------------------------------------------------------------------ structure, jit, lengths

@pytest.mark.parametrize("seq_len", [1, 50])
def test_one_scan_per_layer(seq_len):
    """The time loop is a lax.scan (one per layer, both directions in it), not Python."""
    m = GRU(3, 4, 3, bidirectional=True, rngs=nnx.Rngs(0))
    x = jnp.ones((seq_len, 2, 3))
    jaxpr = jax.make_jaxpr(lambda x: m(x, lengths=jnp.array([1, seq_len])))(x)
    scans = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "scan"]
    assert len(scans) == 3


def test_unroll_and_traced_lengths():
    x = jax.random.normal(jax.random.key(0), (2, 7, 3))
    lens = np.array([7, 3])
    base = LSTM(3, 4, 2, batch_first=True, bidirectional=True, rngs=nnx.Rngs(0))
    ref_out, (ref_h, ref_c) = nnx.jit(lambda m, x: m(x, lengths=lens))(base, x)
    unrolled = LSTM(3, 4, 2, batch_first=True, bidirectional=True, rngs=nnx.Rngs(0), unroll=3)
    out, (h, c) = nnx.jit(lambda m, x, n: m(x, lengths=n))(unrolled, x, jnp.asarray(lens))
    np.testing.assert_allclose(out, ref_out, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(h, ref_h, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(c, ref_c, rtol=1e-6, atol=1e-7)
    assert np.all(np.asarray(out)[1, 3:] == 0)  # past the length: zeros


def test_full_lengths_equal_no_lengths():
    x = jax.random.normal(jax.random.key(0), (5, 2, 3))
    m = RNN(3, 4, 2, bidirectional=True, rngs=nnx.Rngs(0))
    a, ha = _call(m, x)
    b, hb = nnx.jit(lambda m, x: m(x, lengths=[5, 5]))(m, x)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ha, hb)


# ------------------------------------------------------------------ bad inputs

def _rnn(**kw):
    return RNN(3, 4, 2, rngs=nnx.Rngs(0), **kw)


def _lstm(**kw):
    return LSTM(3, 4, 2, rngs=nnx.Rngs(0), **kw)


BAD = [
    ("rank 1", lambda: _rnn()(jnp.ones((5,))), r"x must have rank 3 .*\(L, N, H_in\)"),
    ("rank 4", lambda: _rnn(batch_first=True)(jnp.ones((2, 5, 3, 1))),
     r"x must have rank 3 with layout \(N, L, H_in\)"),
    ("features", lambda: _rnn()(jnp.ones((5, 2, 4))),
     r"x must have input_size = 3 features .*\(L, N, H_in\).*\(5, 2, 4\)"),
    ("h0 shape", lambda: _rnn()(jnp.ones((5, 2, 3)), jnp.zeros((1, 2, 4))),
     r"h0 must have shape \(num_layers\*num_directions, N, hidden_size\) = \(2, 2, 4\), "
     r"got \(1, 2, 4\)"),
    ("h0 batch", lambda: _rnn()(jnp.ones((5, 2, 3)), jnp.zeros((2, 3, 4))),
     r"h0 must have shape .* = \(2, 2, 4\)"),
    ("h0 3-D for unbatched", lambda: _rnn()(jnp.ones((5, 3)), jnp.zeros((2, 1, 4))),
     r"h0 must have shape \(num_layers\*num_directions, hidden_size\) = \(2, 4\).*"
     r"unbatched 2-D x"),
    ("h0 2-D for batched", lambda: _rnn()(jnp.ones((5, 2, 3)), jnp.zeros((2, 4))),
     r"h0 must have shape .* = \(2, 2, 4\).*batched 3-D x"),
    ("c0 shape", lambda: _lstm()(jnp.ones((5, 2, 3)), (jnp.zeros((2, 2, 4)),
                                                       jnp.zeros((2, 2, 5)))),
     r"c0 \(hx\[1\]\) must have shape \(num_layers\*num_directions, N, hidden_size\) = "
     r"\(2, 2, 4\)"),
    ("proj h0 shape", lambda: _lstm(proj_size=2)(jnp.ones((5, 2, 3)), (jnp.zeros((2, 2, 4)),
                                                                       jnp.zeros((2, 2, 4)))),
     r"h0 \(hx\[0\]\) must have shape \(num_layers\*num_directions, N, proj_size\) = "
     r"\(2, 2, 2\)"),
    ("hx not a pair", lambda: _lstm()(jnp.ones((5, 2, 3)), jnp.zeros((2, 2, 4))),
     r"hx must be a tuple \(h0, c0\)"),
    ("length 0", lambda: _rnn()(jnp.ones((5, 2, 3)), lengths=[0, 5]),
     r"lengths must lie in \[1, L\] = \[1, 5\]"),
    ("length > T", lambda: _rnn(batch_first=True)(jnp.ones((2, 5, 3)), lengths=[6, 5]),
     r"lengths must lie in \[1, L\] = \[1, 5\]"),
    ("lengths shape", lambda: _rnn()(jnp.ones((5, 2, 3)), lengths=[5, 5, 5]),
     r"lengths must have shape \(N,\) = \(2,\)"),
    ("lengths unbatched", lambda: _rnn()(jnp.ones((5, 3)), lengths=[5]),
     r"lengths needs batched 3-D x \(L, N, H_in\)"),
    ("nonlinearity", lambda: RNN(3, 4, nonlinearity="sigmoid", rngs=nnx.Rngs(0)),
     r"unknown nonlinearity 'sigmoid'"),
    ("proj_size", lambda: LSTM(3, 4, proj_size=4, rngs=nnx.Rngs(0)),
     r"proj_size \(4\) has to be smaller than hidden_size \(4\)"),
    ("hidden_size", lambda: GRU(3, 0, rngs=nnx.Rngs(0)),
     r"hidden_size must be greater than zero"),
]


@pytest.mark.parametrize("what,call,match", BAD, ids=[b[0] for b in BAD])
def test_bad_input(what, call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert re.search(r"^(RNN|LSTM|GRU): ", str(info.value)), str(info.value)


def test_lengths_must_be_integers():
    with pytest.raises(TypeError, match=r"lengths must be integers of shape \(N,\) = \(2,\)"):
        _rnn()(jnp.ones((5, 2, 3)), lengths=jnp.array([5.0, 2.0]))


# ------------------------------------------------------------------ forward mode

@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("lengths", [None, [4, 2, 5]])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_jvp_matches_torch(bidirectional, lengths):
    """``jax.jvp`` through the LSTM (its recurrence has a hand-written JVP rule,
    :mod:`flax_arch.ops.lstm`) along random tangents of x, h0, c0 and every parameter
    equals ``torch.func.jvp`` through ``torch.nn.LSTM`` (float64, 1e-12 of the largest
    tangent entry): the output, h_n and c_n. With ``lengths`` (torch has no forward AD
    through packed sequences) torch runs each sequence alone, unbatched and cut to its
    length, which is what packing computes."""
    T, N, F, H, layers = 5, 3, 3, 4, 2
    D = 2 if bidirectional else 1
    torch.manual_seed(0)
    tmod = torch.nn.LSTM(F, H, layers, bidirectional=bidirectional).double()
    fmod = LSTM(F, H, layers, bidirectional=bidirectional, param_dtype=jnp.float64,
                rngs=nnx.Rngs(0))
    load_torch_state_dict(fmod, tmod.state_dict())
    rng = np.random.default_rng(3)
    prim = {"x": rng.standard_normal((T, N, F)), "h0": rng.standard_normal((layers * D, N, H)),
            "c0": rng.standard_normal((layers * D, N, H))}
    tan = {k: rng.standard_normal(v.shape) for k, v in prim.items()}
    names = [n for n, _ in tmod.named_parameters()]
    tan_p = {n: rng.standard_normal(tuple(p.shape)) for n, p in tmod.named_parameters()}

    def tfn(x, h0, c0, *ps):
        call = lambda *a: torch.func.functional_call(tmod, dict(zip(names, ps)), a)  # noqa
        if lengths is None:
            out, (h, c) = call(x, (h0, c0))
            return out, h, c
        runs = [call(x[:n, b], (h0[:, b], c0[:, b])) for b, n in enumerate(lengths)]
        out = torch.stack([torch.cat([o, o.new_zeros(T - n, o.shape[-1])])
                           for (o, _), n in zip(runs, lengths)], dim=1)   # (T, N, D·H)
        return (out, torch.stack([h for _, (h, _) in runs], dim=1),
                torch.stack([c for _, (_, c) in runs], dim=1))
    as_t = lambda a: torch.from_numpy(np.asarray(a))  # noqa: E731
    _, want = torch.func.jvp(
        tfn, (*(as_t(prim[k]) for k in ("x", "h0", "c0")),
              *(p.detach() for _, p in tmod.named_parameters())),
        (*(as_t(tan[k]) for k in ("x", "h0", "c0")), *(as_t(tan_p[n]) for n in names)))

    graphdef, params, rest = nnx.split(fmod, nnx.Param, ...)
    tangent_model = LSTM(F, H, layers, bidirectional=bidirectional, param_dtype=jnp.float64,
                         rngs=nnx.Rngs(0))
    load_torch_state_dict(tangent_model, {n: as_t(v) for n, v in tan_p.items()})
    lens = None if lengths is None else jnp.asarray(lengths)

    def ffn(params, x, h0, c0):
        out, (h, c) = nnx.merge(graphdef, params, rest)(x, (h0, c0), lengths=lens)
        return out, h, c
    _, got = jax.jit(lambda p, a, tp, ta: jax.jvp(ffn, (p, *a), (tp, *ta)))(
        params, [jnp.asarray(prim[k]) for k in ("x", "h0", "c0")],
        nnx.state(tangent_model, nnx.Param), [jnp.asarray(tan[k]) for k in ("x", "h0", "c0")])
    for g, w, what in zip(got, want, ("out", "h_n", "c_n")):
        w = w.numpy()
        np.testing.assert_allclose(np.asarray(g), w, rtol=0, atol=1e-12 * np.abs(w).max(),
                                   err_msg=what)
