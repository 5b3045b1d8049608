"""Cases for the recurrent slides: ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` against
:mod:`flax_arch.nn.recurrent`, and the RNN + FC classifier.

:func:`recurrent_case` builds a case for any configuration of the layers (it is reused by
the hypothesis fuzzing in ``parity_tests/test_recurrent.py``). With ``lengths`` the torch
side runs on ``pack_padded_sequence(x, lengths, batch_first, enforce_sorted=False)`` and
unpacks with ``pad_packed_sequence(..., total_length=L)``; the Flax side gets
``lengths=``. Layouts agree on both sides (torch's own, time-major unless batch_first).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from flax_arch.models.recurrent import RNNClassifier
from flax_arch.nn.recurrent import GRU, LSTM, RNN
from flax_arch.parity.harness import Case

_FLAX = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}


def recurrent_case(kind: str, input_size: int = 4, hidden_size: int = 5, num_layers: int = 1,
                   *, nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                   bidirectional: bool = False, proj_size: int = 0, dropout: float = 0.0,
                   train: bool = False, seq_len: int = 6, batch: int = 3, h0: bool = False,
                   lengths: Sequence[int] | None = None, unbatched: bool = False,
                   unroll: int = 1, name: str | None = None, tags: tuple[str, ...] = (),
                   seed: int = 0) -> Case:
    """A parity case for ``nn.<kind>`` (kind: 'RNN', 'LSTM', 'GRU') with these flags.

    Inputs: x (L, N, input_size) / (N, L, input_size) / unbatched (L, input_size); if
    ``h0``, the initial state(s) (h0, and c0 for the LSTM); if ``lengths``, an int64 (N,)
    array (packed-sequence semantics).
    """
    if kind not in _FLAX:
        raise ValueError(f"kind must be one of {sorted(_FLAX)}, got {kind!r}")
    if unbatched and lengths is not None:
        raise ValueError("lengths need a batched input")
    kw = dict(num_layers=num_layers, bias=bias, batch_first=batch_first, dropout=dropout,
              bidirectional=bidirectional)
    if kind == "RNN":
        kw["nonlinearity"] = nonlinearity
    if proj_size:
        if kind != "LSTM":
            raise ValueError("proj_size is an LSTM option")
        kw["proj_size"] = proj_size
    d = 2 if bidirectional else 1
    h_out = proj_size or hidden_size
    lengths_arr = None if lengths is None else np.asarray(lengths, np.int64)
    if lengths_arr is not None and lengths_arr.shape != (batch,):
        raise ValueError(f"lengths must have {batch} entries, got {lengths_arr.shape}")
    n_states = (2 if kind == "LSTM" else 1) if h0 else 0

    def torch_module():
        import torch.nn as nn
        return getattr(nn, kind)(input_size, hidden_size, **kw)

    def flax_module(rngs):
        return _FLAX[kind](input_size, hidden_size, **kw, rngs=rngs, unroll=unroll)

    def inputs(rng):
        if unbatched:
            x_shape = (seq_len, input_size)
        elif batch_first:
            x_shape = (batch, seq_len, input_size)
        else:
            x_shape = (seq_len, batch, input_size)
        lead = (num_layers * d,) if unbatched else (num_layers * d, batch)
        out = [rng.standard_normal(x_shape)]
        if n_states:
            out.append(rng.standard_normal(lead + (h_out,)))
        if n_states == 2:
            out.append(rng.standard_normal(lead + (hidden_size,)))
        if lengths_arr is not None:
            out.append(lengths_arr.copy())
        return tuple(out)

    def split(args):
        x, rest = args[0], list(args[1:])
        states = rest[:n_states]
        lens = rest[n_states] if lengths_arr is not None else None
        if kind == "LSTM":
            hx = tuple(states) if states else None
        else:
            hx = states[0] if states else None
        return x, hx, lens

    def torch_call(m, *args):
        x, hx, lens = split(args)
        with warnings.catch_warnings():
            # float32 LSTMP on CPU: torch notes that it falls back from oneDNN (harmless)
            warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
            if lens is None:
                return m(x, hx)
            from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
            packed = pack_padded_sequence(x, lens, batch_first=batch_first,
                                          enforce_sorted=False)
            out, h = m(packed, hx)
        out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=seq_len)
        return out, h

    def flax_call(m, *args):
        x, hx, lens = split(args)
        return m(x, hx, lengths=lens)

    if name is None:
        flags = [f"l{num_layers}", "bf" if batch_first else "tm"]
        flags += [s for s, on in (("bidir", bidirectional), ("nobias", not bias),
                                  ("h0", h0), ("unbatched", unbatched)) if on]
        if kind == "RNN":
            flags.append(nonlinearity)
        if proj_size:
            flags.append(f"proj{proj_size}")
        if lengths is not None:
            flags.append("len" + "-".join(map(str, lengths)))
        name = f"{kind.lower()}_" + "_".join(flags) + f"_T{seq_len}N{batch}"
    return Case(name, torch_module, flax_module, inputs, train=train, torch_call=torch_call,
                flax_call=flax_call, tags=tags, seed=seed)


def _classifier_case(name, num_inputs, hidden_size, num_outputs, num_layers, n, t, tags=()):
    def torch_module():
        import torch_ref.recurrent as tr
        return tr.RNNClassifier(num_inputs, hidden_size, num_outputs, num_layers)

    return Case(name, torch_module,
                lambda r: RNNClassifier(num_inputs, hidden_size, num_outputs, num_layers,
                                        rngs=r),
                lambda rng: (rng.standard_normal((n, t, num_inputs)),), tags=tags)


SLOW = ("slow",)

CASES = [
    # --- small configurations (CI): every cell, direction, layout, state and lengths path
    recurrent_case("RNN", name="rnn_small"),
    recurrent_case("RNN", 3, 4, 2, nonlinearity="relu", bidirectional=True, h0=True,
                   name="rnn_relu_bidir_2layer_h0"),
    recurrent_case("RNN", 3, 4, 2, batch_first=True, bidirectional=True, h0=True,
                   lengths=[2, 6, 4], name="rnn_packed_unsorted_bidir"),
    recurrent_case("RNN", 3, 4, 1, bias=False, unbatched=True, h0=True, name="rnn_unbatched"),
    recurrent_case("LSTM", name="lstm_small"),
    recurrent_case("LSTM", 3, 4, 2, batch_first=True, bidirectional=True, h0=True,
                   name="lstm_bidir_2layer_h0"),
    recurrent_case("LSTM", 3, 5, 2, bidirectional=True, proj_size=2, h0=True,
                   lengths=[3, 6, 1], name="lstm_proj_packed_bidir"),
    recurrent_case("GRU", name="gru_small"),
    recurrent_case("GRU", 3, 4, 3, bidirectional=True, h0=True, lengths=[5, 5, 2],
                   name="gru_packed_bidir_3layer"),
    recurrent_case("GRU", 3, 4, 2, bias=False, unbatched=True, seq_len=1,
                   name="gru_unbatched_T1_nobias"),
    # dropout rate 1 in train mode is deterministic: every layer but the last is zeroed
    recurrent_case("LSTM", 3, 4, 2, dropout=1.0, train=True, name="lstm_dropout1_train"),
    _classifier_case("rnn_classifier_small", 6, 8, 3, 1, 2, 5),
    _classifier_case("rnn_classifier_2layer", 6, 8, 3, 2, 2, 5),
    # --- the slides' sizes
    recurrent_case("RNN", 100, 512, seq_len=100, batch=1, name="rnn_slide", tags=SLOW),
    recurrent_case("RNN", 100, 512, batch_first=True, seq_len=100, batch=1,
                   name="rnn_slide_batch_first", tags=SLOW),
    recurrent_case("LSTM", 100, 512, batch_first=True, seq_len=100, batch=1,
                   name="lstm_slide", tags=SLOW),
    _classifier_case("rnn_classifier", 100, 512, 10, 1, 1, 100, tags=SLOW),
]
