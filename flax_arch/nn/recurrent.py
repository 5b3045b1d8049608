"""Recurrent layers with torch's semantics: ``RNN``, ``LSTM``, ``GRU``, and the single-step
cells ``RNNCell``, ``LSTMCell``, ``GRUCell``.

Slides "Recurrent Layer" (h_t = f(W·x_t + U·h_{t−1} + b), quoting the ``torch.nn.RNN``
documentation), "Connecting an RNN with a FC layer" and "LSTM Layer" ("LSTM has two
states"); LSTM: Hochreiter & Schmidhuber (1997), with the forget gate of Gers et al.
(2000); GRU: Cho et al. (2014), in the variant cuDNN and torch compute.

What is reproduced from ``torch.nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``
-------------------------------------------------------------------
* The constructor arguments and defaults (``input_size, hidden_size, num_layers=1,
  nonlinearity='tanh', bias=True, batch_first=False, dropout=0.0, bidirectional=False``,
  and ``proj_size=0`` for the LSTM) and the call: ``out, h_n = rnn(x, h0)``,
  ``out, (h_n, c_n) = lstm(x, (h0, c0))``, ``out, h_n = gru(x, h0)``; a missing initial
  state is zeros.
* Layouts, which are torch's (time-major unless ``batch_first``): ``x`` (L, N, H_in) or
  (N, L, H_in), or unbatched (L, H_in); ``out`` (L, N, D·H_out) / (N, L, D·H_out) /
  (L, D·H_out) with the forward direction in the first H_out features and the reverse
  direction in the last; ``h_n`` / ``c_n`` (num_layers·D, N, H) — never batch-first — where
  row ``layer·D + direction`` holds that layer and direction (D = 2 if bidirectional, else
  1; H_out = proj_size if proj_size > 0 else hidden_size). Unbatched input takes and
  returns states without the N axis.
* The cell equations, gate order and rounding order of torch's CPU kernels:

  - RNN: h' = tanh or relu((x W_ihᵀ + b_ih) + (h W_hhᵀ + b_hh));
  - LSTM, gates (i, f, g, o) stacked in that order along W_ih's rows:
    c' = σ(f)·c + σ(i)·tanh(g), h' = σ(o)·tanh(c') (then h' W_hrᵀ if proj_size > 0);
  - GRU, gates (r, z, n): r = σ(x_r + h_r), z = σ(x_z + h_z),
    n = tanh(x_n + r ⊙ (h W_hnᵀ + b_hn)) — ``b_hn`` inside the reset product —
    h' = n + z ⊙ (h − n) (= (1 − z) ⊙ n + z ⊙ h).
* Dropout on the output of every layer except the last, in training mode only
  (``model.train()`` / ``model.eval()`` toggle the ``deterministic`` attribute of the
  child :class:`flax.nnx.Dropout`; its mask comes from the ``dropout`` stream of ``rngs``,
  so it cannot equal torch's mask, but rate 0 and rate 1 are exact).
* Initialisation: every weight and bias U(−1/√hidden_size, 1/√hidden_size).

Parameter layout
----------------
Each parameter is its own ``nnx.Param`` attribute named exactly as torch names it —
``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` (and
``weight_hr_l{k}`` for a projected LSTM), with the suffix ``_reverse`` for the reverse
direction — *in torch's layout*: ``weight_ih_l{k}`` (G·hidden_size, in_k),
``weight_hh_l{k}`` (G·hidden_size, H_out), biases (G·hidden_size,), ``weight_hr_l{k}``
(proj_size, hidden_size), G = 1 / 4 / 3 for RNN / LSTM / GRU and in_k = input_size for
layer 0, D·H_out above. Each carries ``torch_name`` metadata equal to its name and no
``torch_layout``, so :func:`flax_arch.interop.load_torch_state_dict` /
:func:`~flax_arch.interop.to_torch_state_dict` copy them unchanged and gradients map one
to one onto torch's. The transposes are taken inside ``__call__`` (once, outside the time
loop).

Computation
-----------
The input projection of a layer is one matmul over all time steps and both directions
(x W_ihᵀ + b_ih, outside the recurrence); the recurrence is a single ``jax.lax.scan`` per
layer (``unroll`` is passed to it) whose carry holds both directions, (D, N, H), so the
two directions share one batched matmul h W_hhᵀ per step. The reverse direction runs on
the time-reversed projections.

Validation
----------
Errors name the argument. Constructor: sizes and ``num_layers`` ints > 0, ``proj_size`` an
int in [0, hidden_size), ``dropout`` a number in [0, 1], the flags bools, ``nonlinearity``
'tanh' or 'relu', as torch checks them (bools as sizes are refused; torch takes them).
Call: ``x`` of rank 2 or 3 with ``input_size`` features, floating point (integer or bool
``x``: a TypeError; torch raises a ValueError on the dtype mismatch) and at least one time
step; an empty batch (N = 0) gives empty outputs, as in torch. ``h0`` / ``c0``:
floating-point arrays of exactly the shape torch expects, quoted in the error.

Cells (``RNNCell`` / ``LSTMCell`` / ``GRUCell``)
------------------------------------------------
One time step, torch's ``nn.RNNCell(input_size, hidden_size, bias=True,
nonlinearity='tanh')``, ``nn.LSTMCell(input_size, hidden_size, bias=True)``,
``nn.GRUCell(...)``: ``h' = cell(input, hx)``, ``(h', c') = lstm_cell(input, (h, c))``
with ``input`` (N, input_size) or unbatched (input_size,), states (N, hidden_size) or
(hidden_size,) (zeros when ``hx`` is None). Variables ``weight_ih`` (G·hidden_size,
input_size), ``weight_hh`` (G·hidden_size, hidden_size), ``bias_ih``, ``bias_hh``
(G·hidden_size,), torch's names and layout, U(±1/√hidden_size). The gate math is the
layers' (:func:`_cell_step`). Errors name ``input`` / ``hx`` (``hx[0]``, ``hx[1]``) and the
expected shape; the state must have the input's rank (torch fails on a mismatch too, with
a less direct message); ``nonlinearity`` is checked at construction (torch: at the call).

Variable lengths (``lengths``)
------------------------------
``lengths`` (N,) integers in [1, L] give the semantics of running torch's module on
``pack_padded_sequence(x, lengths, batch_first, enforce_sorted=False)`` and unpacking
the result with ``pad_packed_sequence(..., total_length=L)``:

* ``out`` is zero at every step t ≥ lengths[b] (in every layer, so deeper layers see
  zeros there, as torch's packed layers never see those steps);
* the forward direction's ``h_n`` / ``c_n`` is the state after step lengths[b] − 1;
* the reverse direction starts from ``h0`` at step lengths[b] − 1 (each sequence's own
  end) and runs back to step 0, whose state is its ``h_n``;
* the batch order is the caller's (torch restores it with the packed sequence's
  ``unsorted_indices``), so the lengths need not be sorted.

Inside the scan, a step past a sequence's length keeps its state unchanged and emits
zero. The values of ``lengths`` are checked (1 ≤ length ≤ L) when they are concrete, i.e.
not traced by ``jax.jit``; traced lengths are used as given.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from flax import nnx

from ..ops.lstm import lstm_recurrence
from ..ops.elementwise import torch_tanh as _torch_tanh
from ._utils import (check_bool, check_choice, check_floating_input, check_int, in_opmath,
                     opmath_dtype, torch_uniform)

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _check_args(layer, input_size, hidden_size, num_layers, dropout, proj_size, bias,
                batch_first, bidirectional, unroll):
    """torch's checks (and messages) on the constructor arguments. Stricter than torch:
    bools as sizes (torch builds ``RNN(True, 4)`` with input_size 1, or fails later), a
    non-bool ``bidirectional`` (torch fails at the call), and a dropout that is no number
    (a TypeError here, a ValueError in torch)."""
    for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                    ("num_layers", num_layers)):
        if check_int(v, name, layer) <= 0:
            raise ValueError(f"{layer}: {name} must be greater than zero, got {v}")
    if check_int(proj_size, "proj_size", layer) < 0:
        raise ValueError(f"{layer}: proj_size must be non-negative (0 disables the "
                         f"projection), got {proj_size}")
    if proj_size >= hidden_size:
        raise ValueError(f"{layer}: proj_size ({proj_size}) has to be smaller than "
                         f"hidden_size ({hidden_size})")
    for name, v in (("bias", bias), ("batch_first", batch_first),
                    ("bidirectional", bidirectional)):
        check_bool(v, name, layer)
    if not isinstance(unroll, (bool, np.bool_)):
        check_int(unroll, "unroll", layer, minimum=1)
    if isinstance(dropout, (bool, np.bool_)) or not isinstance(
            dropout, (int, float, np.integer, np.floating)):
        raise TypeError(f"{layer}: dropout must be a number in [0, 1], got {dropout!r} "
                        f"({type(dropout).__name__})")
    if not 0 <= dropout <= 1:  # NaN too
        raise ValueError(f"{layer}: dropout should be a number in range [0, 1] representing "
                         f"the probability of an element being zeroed, got {dropout!r}")
    if dropout > 0 and num_layers == 1:
        warnings.warn(f"{layer}: dropout option adds dropout after all but last recurrent "
                      f"layer, so non-zero dropout expects num_layers greater than 1, but got "
                      f"dropout={dropout} and num_layers={num_layers}", UserWarning,
                      stacklevel=4)


def _concrete(a):
    """``a`` as a numpy array, or ``None`` when it is traced (values unknown)."""
    try:
        return np.asarray(a)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def _init_uniform(key, shapes, fan_in: int, dtype) -> list:
    """U(±1/sqrt(fan_in)) arrays of the given shapes, sliced from one uniform draw.

    One draw of a power-of-two size (so its compiled sampler is shared by many layer
    configurations) and slices taken on the host, instead of one compiled sampler per
    distinct parameter shape — XLA compiles of the threefry sampler dominate the
    construction time otherwise.
    """
    sizes = [math.prod(s) for s in shapes]
    total = max(1, sum(sizes))
    flat = torch_uniform(fan_in)(key, (1 << (total - 1).bit_length(),), dtype)
    host = _concrete(flat)  # slice on the host when concrete: no compiled program at all
    out, off = [], 0
    for shape, size in zip(shapes, sizes):
        piece = host if host is not None else flat
        out.append(jnp.asarray(piece[off:off + size].reshape(shape)))  # (size,) → shape
        off += size
    return out


def _cell_step(mode: str, xg, hg, carry: tuple, w_hr=None) -> tuple:
    """One step of torch's cell equations, shared by the layers' scans and the cells.

    ``xg`` = x W_ihᵀ + b_ih and ``hg`` = h W_hhᵀ + b_hh (…, G·H), ``carry`` the state tuple
    ((h,) or (h, c) for the LSTM); returns the new state tuple. Additions in torch's order
    (hg + xg, as its CPU kernels add the input gates into the hidden gates).

    tanh is the ``Tanh`` of :mod:`flax_arch.nn.activation`: torch's rounding of the value
    where it saturates, and torch's derivative 1 − y² from the output. XLA's ``tanh`` is
    an ulp off there, and that ulp is all of 1 − y²: with inputs of a few units (module_db
    draws from [−9, 9]) a float32 RNN's weight gradient differed from torch's by 1e-4.
    """
    if mode == "RNN_TANH":
        return (_torch_tanh(hg + xg),)
    if mode == "RNN_RELU":
        return (jax.nn.relu(hg + xg),)
    if mode == "LSTM":
        gates = hg + xg
        i, f, g, o = jnp.split(gates, 4, axis=-1)  # torch's gate order i, f, g, o
        c = jax.nn.sigmoid(f) * carry[1] + jax.nn.sigmoid(i) * _torch_tanh(g)
        h = jax.nn.sigmoid(o) * _torch_tanh(c)
        if w_hr is not None:
            h = jnp.matmul(h, w_hr)  # (D, N, H) @ (D, H, P) → (D, N, P)
        return (h, c)
    # GRU, gates r, z, n; b_hn sits in hg, inside r ⊙ (W_hn h + b_hn)
    xr, xz, xn = jnp.split(xg, 3, axis=-1)
    hr, hz, hn = jnp.split(hg, 3, axis=-1)
    r = jax.nn.sigmoid(hr + xr)
    z = jax.nn.sigmoid(hz + xz)
    n = _torch_tanh(xn + r * hn)
    h = carry[0]
    return ((h - n) * z + n,)


class _RNNBase(nnx.Module):
    """Shared implementation; ``mode`` is torch's: 'RNN_TANH', 'RNN_RELU', 'LSTM', 'GRU'."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, *, rngs: nnx.Rngs,
                 unroll: int | bool = 1, dtype=None, param_dtype=jnp.float32):
        layer = type(self).__name__
        _check_args(layer, input_size, hidden_size, num_layers, dropout, proj_size, bias,
                    batch_first, bidirectional, unroll)
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bool(bias), bool(batch_first), \
            bool(bidirectional)
        self.dropout = float(dropout)
        self.proj_size = proj_size
        self.unroll = unroll
        self.dtype, self.param_dtype = dtype, param_dtype
        d = 2 if bidirectional else 1
        g = _GATES[mode] * hidden_size
        h_out = proj_size if proj_size > 0 else hidden_size
        shapes = {}
        for k in range(num_layers):
            in_k = input_size if k == 0 else d * h_out
            for suffix in ("", "_reverse")[:d]:
                shapes[f"weight_ih_l{k}{suffix}"] = (g, in_k)
                shapes[f"weight_hh_l{k}{suffix}"] = (g, h_out)
                if bias:
                    shapes[f"bias_ih_l{k}{suffix}"] = (g,)
                    shapes[f"bias_hh_l{k}{suffix}"] = (g,)
                if proj_size > 0:
                    shapes[f"weight_hr_l{k}{suffix}"] = (proj_size, hidden_size)
        # torch: U(±1/sqrt(hidden_size)) for every tensor, in torch's parameter order
        values = _init_uniform(rngs.params(), tuple(shapes.values()), hidden_size,
                               jnp.dtype(param_dtype))
        for (name, _), value in zip(shapes.items(), values):
            setattr(self, name, nnx.Param(value, torch_name=name))
        self.drop = nnx.Dropout(self.dropout, rngs=rngs)

    # ------------------------------------------------------------------ helpers

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def _h_out(self) -> int:
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    def _param(self, kind: str, k: int, suffix: str):
        p = getattr(self, f"{kind}_l{k}{suffix}", None)
        return None if p is None else p.get_value()

    def _x_layout(self) -> str:
        return "(N, L, H_in)" if self.batch_first else "(L, N, H_in)"

    def _check_x(self, x):
        layer = type(self).__name__
        ndim = getattr(x, "ndim", None)
        if ndim is None:
            raise TypeError(f"{layer}: x must be an array, got {type(x).__name__}")
        if ndim not in (2, 3):
            raise ValueError(
                f"{layer}: x must have rank 3 with layout {self._x_layout()} "
                f"(batch_first={self.batch_first}) or rank 2 for unbatched (L, H_in), "
                f"with H_in = input_size = {self.input_size}; got shape {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            lay = self._x_layout() if ndim == 3 else "(L, H_in)"
            raise ValueError(
                f"{layer}: x must have input_size = {self.input_size} features in its last "
                f"axis, layout {lay}; got shape {tuple(x.shape)}")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"{layer}: x must be floating point, got dtype {x.dtype}")
        time_axis = 1 if self.batch_first and ndim == 3 else 0
        if x.shape[time_axis] == 0:  # torch: "Expected sequence length to be larger than 0"
            raise ValueError(f"{layer}: x must have at least one time step (axis {time_axis} "
                             f"of {self._x_layout() if ndim == 3 else '(L, H_in)'}); got "
                             f"shape {tuple(x.shape)}")

    def _check_state(self, s, name: str, size: int, n: int | None):
        """``s`` must be (num_layers·D, N, size), or (num_layers·D, size) when unbatched."""
        layer = type(self).__name__
        ld = self.num_layers * self.num_directions
        if n is None:
            want, lay = (ld, size), "(num_layers*num_directions, {})"
        else:
            want, lay = (ld, n, size), "(num_layers*num_directions, N, {})"
        what = "hidden_size" if size == self.hidden_size else "proj_size"
        lay = lay.format(what)
        dtype = getattr(s, "dtype", None)
        if dtype is None:
            raise TypeError(f"{layer}: {name} must be an array of shape {lay} = {want}, got "
                            f"{type(s).__name__}")
        if not jnp.issubdtype(dtype, jnp.floating):  # torch: "mat1 and mat2 must have ..."
            raise TypeError(f"{layer}: {name} must be floating point, got dtype {dtype}")
        shape = tuple(s.shape)
        if shape != want:
            extra = ""
            if n is None and len(shape) == 3:
                extra = "; for unbatched 2-D x the state must be 2-D too"
            elif n is not None and len(shape) == 2:
                extra = "; for batched 3-D x the state must be 3-D too"
            raise ValueError(f"{layer}: {name} must have shape {lay} = {want}, got "
                             f"{shape}{extra}")

    def _check_lengths(self, lengths, n: int, t: int):
        layer = type(self).__name__
        shape = tuple(getattr(lengths, "shape", np.shape(lengths)))
        if shape != (n,):
            raise ValueError(f"{layer}: lengths must have shape (N,) = ({n},) (one length per "
                             f"sequence of the batch), got shape {shape}")
        lengths = jnp.asarray(lengths) if not isinstance(lengths, jax.Array) else lengths
        if not jnp.issubdtype(lengths.dtype, jnp.integer):
            raise TypeError(f"{layer}: lengths must be integers of shape (N,) = ({n},), got "
                            f"dtype {lengths.dtype}")
        vals = _concrete(lengths)
        if vals is not None and vals.size and (vals.min() < 1 or vals.max() > t):
            raise ValueError(f"{layer}: lengths must lie in [1, L] = [1, {t}] (L = the "
                             f"length of x's time axis), got {vals.tolist()}")
        return lengths

    # ------------------------------------------------------------------ the recurrence

    def _layer(self, k: int, x, carry, mask, dt):
        """Layer ``k`` over x (L, N, in_k), carry tuple of (D, N, ·) → (out (L, N, D·H_out),
        final carry)."""
        d = self.num_directions
        suffixes = ("", "_reverse")[:d]
        stack = lambda kind: jnp.stack(  # (D, …): per-direction parameters stacked
            [self._param(kind, k, s).astype(dt) for s in suffixes])
        w_ih_t = jnp.swapaxes(stack("weight_ih"), 1, 2)   # (D, G·H, in_k) → (D, in_k, G·H)
        w_hh_t = jnp.swapaxes(stack("weight_hh"), 1, 2)   # (D, G·H, H_out) → (D, H_out, G·H)
        w_hr_t = (jnp.swapaxes(stack("weight_hr"), 1, 2)  # (D, P, H) → (D, H, P)
                  if self.proj_size > 0 else None)
        # input projection for every step and direction at once, outside the recurrence:
        # (L, 1, N, in_k) @ (D, in_k, G·H) → (L, D, N, G·H)
        xg = jnp.matmul(x[:, None], w_ih_t)
        b_hh = None
        if self.bias:
            xg = xg + stack("bias_ih")[:, None, :]        # (D, 1, G·H) broadcast over N
            b_hh = stack("bias_hh")[:, None, :]           # (D, 1, G·H)
        if d == 2:  # the reverse direction walks time backwards: flip its inputs
            xg = jnp.stack([xg[:, 0], xg[::-1, 1]], axis=1)
        if self.mode == "LSTM" and w_hr_t is None:
            # flax_arch.ops.lstm: one tanh per step, the weight gradient as one matmul;
            # b_hh joins the input projection (one add per element, outside the loop)
            if b_hh is not None:
                xg = xg + b_hh
            ys, h, c = lstm_recurrence(xg, w_hh_t, *carry, mask, self.unroll)
            return self._unflip(ys), (h, c)
        xs = xg if mask is None else (xg, mask)

        def step(carry, inp):
            xg_t, m_t = (inp, None) if mask is None else inp
            hg = jnp.matmul(carry[0], w_hh_t)             # (D, N, H_out) @ (D, H_out, G·H)
            if b_hh is not None:
                hg = hg + b_hh
            new = _cell_step(self.mode, xg_t, hg, carry, w_hr_t)
            if m_t is None:
                return new, new[0]
            # past a sequence's end: keep the state, emit zeros
            new = tuple(jnp.where(m_t, a, b) for a, b in zip(new, carry))
            return new, jnp.where(m_t, new[0], jnp.zeros((), new[0].dtype))

        carry, ys = lax.scan(step, carry, xs, unroll=self.unroll)  # ys (L, D, N, H_out)
        return self._unflip(ys), carry

    def _unflip(self, ys):
        """ys (L, D, N, H_out) → (L, N, D·H_out): the reverse direction un-flipped in time,
        features [forward | reverse]."""
        if self.num_directions == 2:
            return jnp.concatenate([ys[:, 0], ys[::-1, 1]], axis=-1)  # (L, N, 2·H_out)
        return ys[:, 0]                                    # (L, N, H_out)

    def _forward(self, x, states: Sequence, lengths):
        """Shared body. ``states``: per carry component an initial state or ``None``."""
        self._check_x(x)
        unbatched = x.ndim == 2
        layer = type(self).__name__
        if unbatched:
            if lengths is not None:
                raise ValueError(f"{layer}: lengths needs batched 3-D x {self._x_layout()}; "
                                 f"got unbatched x of shape {tuple(x.shape)}")
            x = x[:, None, :]                              # (L, H_in) → (L, 1, H_in)
        elif self.batch_first:
            x = jnp.swapaxes(x, 0, 1)                      # (N, L, H_in) → (L, N, H_in)
        t, n = x.shape[0], x.shape[1]
        params = [v.get_value() for _, v in nnx.to_flat_state(nnx.state(self, nnx.Param))]
        dt = self.dtype if self.dtype is not None else jnp.result_type(x, *params)
        x = x.astype(dt)
        d, ld = self.num_directions, self.num_layers * self.num_directions
        sizes = [self._h_out, self.hidden_size][:len(states)]
        init = []
        for (name, s), size in zip(states, sizes):
            if s is None:
                s = jnp.zeros((ld, n, size), dt)
            else:
                self._check_state(s, name, size, None if unbatched else n)
                s = jnp.asarray(s).astype(dt)
                if unbatched:
                    s = s[:, None, :]                      # (L·D, H) → (L·D, 1, H)
            init.append(s)
        mask = None
        if lengths is not None:
            lengths = self._check_lengths(lengths, n, t)
            m = jnp.arange(t)[:, None] < lengths[None, :]  # (L, N): step t is valid
            if d == 2:
                m = jnp.stack([m, m[::-1]], axis=1)        # (L, D, N); reverse time-flipped
            else:
                m = m[:, None]                             # (L, 1, N)
            mask = m[..., None]                            # (L, D, N, 1)
        finals = []
        for k in range(self.num_layers):
            carry = tuple(s[k * d:(k + 1) * d] for s in init)  # rows layer·D + direction
            x, carry = self._layer(k, x, carry, mask, dt)
            finals.append(carry)
            if k < self.num_layers - 1:
                x = self.drop(x)  # identity in eval mode / at rate 0
        # per component: concatenate layers' (D, N, H) → (L·D, N, H)
        outs = [jnp.concatenate([f[i] for f in finals], axis=0) for i in range(len(init))]
        if unbatched:
            x = x[:, 0]                                    # (L, 1, D·H) → (L, D·H)
            outs = [o[:, 0] for o in outs]                 # (L·D, 1, H) → (L·D, H)
        elif self.batch_first:
            x = jnp.swapaxes(x, 0, 1)                      # (L, N, D·H) → (N, L, D·H)
        return x, outs


_CALL_DOC = """
        Shapes (D = 2 if bidirectional else 1, H_out = {hout}):

        * ``x``: (L, N, input_size), or (N, L, input_size) if ``batch_first``, or unbatched
          (L, input_size);
        * ``{state}``: {state_shape}; zeros if ``None``;
        * ``lengths``: optional (N,) integers in [1, L] — ``pack_padded_sequence``
          semantics (see the module docstring); batched input only.

        Returns ``{ret}``: ``out`` (L, N, D·H_out) / (N, L, D·H_out) if ``batch_first`` /
        (L, D·H_out) unbatched, the last layer's outputs with the forward direction in the
        first H_out features; {ret_shape}, rows ordered layer-major
        (row = layer·D + direction), never batch-first (no N axis when unbatched).
"""


class RNN(_RNNBase):
    """Torch ``nn.RNN``: multi-layer Elman RNN, h' = tanh|relu(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh).

    Variables (torch names and layout, k = layer, ``_reverse`` for the reverse direction):
    ``weight_ih_l{k}`` (hidden_size, in_k), ``weight_hh_l{k}`` (hidden_size, hidden_size),
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` (hidden_size,).

    ``unroll`` is passed to ``jax.lax.scan``; ``dtype`` is the computation dtype (default:
    promoted from input and parameters), ``param_dtype`` the initial parameter dtype.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> rnn = RNN(100, 512, rngs=nnx.Rngs(0))
    >>> ht, state = rnn(jnp.ones((100, 1, 100)))
    >>> ht.shape, state.shape
    ((100, 1, 512), (1, 1, 512))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, *, rngs: nnx.Rngs,
                 unroll: int | bool = 1, dtype=None, param_dtype=jnp.float32):
        modes = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}
        if not isinstance(nonlinearity, str) or nonlinearity not in modes:
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; nonlinearity must "
                             f"be 'tanh' or 'relu'")
        self.nonlinearity = nonlinearity
        super().__init__(modes[nonlinearity], input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional, rngs=rngs, unroll=unroll,
                         dtype=dtype, param_dtype=param_dtype)

    @in_opmath
    def __call__(self, x, h0=None, lengths=None):
        out, (h_n,) = self._forward(x, [("h0", h0)], lengths)
        return out, h_n

    __call__.__doc__ = "``out, h_n = rnn(x, h0=None, lengths=None)``.\n" + _CALL_DOC.format(
        hout="hidden_size", state="h0",
        state_shape="(num_layers·D, N, hidden_size), or (num_layers·D, hidden_size) unbatched",
        ret="(out, h_n)", ret_shape="``h_n`` has the shape of ``h0``: each layer's and "
        "direction's final hidden state")


class GRU(_RNNBase):
    """Torch ``nn.GRU``: gates r, z, n; n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),
    h' = (1 − z) ⊙ n + z ⊙ h.

    Variables (torch names and layout): ``weight_ih_l{k}`` (3·hidden_size, in_k) with the
    rows of W_ir, W_iz, W_in stacked; ``weight_hh_l{k}`` (3·hidden_size, hidden_size);
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` (3·hidden_size,); ``_reverse`` for the reverse
    direction.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> out, h_n = GRU(10, 20, 2, bidirectional=True, rngs=nnx.Rngs(0))(jnp.ones((5, 3, 10)))
    >>> out.shape, h_n.shape
    ((5, 3, 40), (4, 3, 20))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, rngs: nnx.Rngs, unroll: int | bool = 1,
                 dtype=None, param_dtype=jnp.float32):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, rngs=rngs, unroll=unroll, dtype=dtype,
                         param_dtype=param_dtype)

    @in_opmath
    def __call__(self, x, h0=None, lengths=None):
        out, (h_n,) = self._forward(x, [("h0", h0)], lengths)
        return out, h_n

    __call__.__doc__ = "``out, h_n = gru(x, h0=None, lengths=None)``.\n" + _CALL_DOC.format(
        hout="hidden_size", state="h0",
        state_shape="(num_layers·D, N, hidden_size), or (num_layers·D, hidden_size) unbatched",
        ret="(out, h_n)", ret_shape="``h_n`` has the shape of ``h0``: each layer's and "
        "direction's final hidden state")


class LSTM(_RNNBase):
    """Torch ``nn.LSTM``: gates i, f, g, o; c' = σ(f)·c + σ(i)·tanh(g), h' = σ(o)·tanh(c').

    Two states ("BEWARE: LSTM has two states!"): the bounded output h and the cell c.
    With ``proj_size`` > 0, h' is projected by ``weight_hr_l{k}`` to proj_size features
    (torch's LSTMP).

    Variables (torch names and layout): ``weight_ih_l{k}`` (4·hidden_size, in_k) with the
    rows of W_ii, W_if, W_ig, W_io stacked; ``weight_hh_l{k}`` (4·hidden_size, H_out);
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` (4·hidden_size,); ``weight_hr_l{k}``
    (proj_size, hidden_size) if proj_size > 0; ``_reverse`` for the reverse direction.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> lstm = LSTM(100, 512, batch_first=True, rngs=nnx.Rngs(0))
    >>> ht, (hT, cT) = lstm(jnp.ones((1, 100, 100)))
    >>> ht.shape, hT.shape, cT.shape
    ((1, 100, 512), (1, 1, 512), (1, 1, 512))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, *, rngs: nnx.Rngs,
                 unroll: int | bool = 1, dtype=None, param_dtype=jnp.float32):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, rngs=rngs, unroll=unroll,
                         dtype=dtype, param_dtype=param_dtype)

    @in_opmath
    def __call__(self, x, hx=None, lengths=None):
        if hx is None:
            h0 = c0 = None
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise ValueError(f"LSTM: hx must be a tuple (h0, c0) of two arrays (or None), "
                                 f"got {type(hx).__name__}"
                                 + (f" of length {len(hx)}" if isinstance(hx, (tuple, list))
                                    else ""))
            h0, c0 = hx
            if (h0 is None) != (c0 is None):
                raise ValueError("LSTM: hx must give both h0 and c0, or be None")
        out, (h_n, c_n) = self._forward(x, [("h0 (hx[0])", h0), ("c0 (hx[1])", c0)], lengths)
        return out, (h_n, c_n)

    __call__.__doc__ = ("``out, (h_n, c_n) = lstm(x, hx=None, lengths=None)``, "
                        "``hx = (h0, c0)``.\n" + _CALL_DOC.format(
                            hout="proj_size if proj_size > 0 else hidden_size",
                            state="hx = (h0, c0)",
                            state_shape="h0 (num_layers·D, N, H_out) and c0 (num_layers·D, N, "
                            "hidden_size), or without the N axis unbatched",
                            ret="(out, (h_n, c_n))",
                            ret_shape="``h_n`` / ``c_n`` have the shapes of h0 / c0: each "
                            "layer's and direction's final hidden and cell state"))


# ---------------------------------------------------------------------------- single cells


class _RNNCellBase(nnx.Module):
    """One time step of an RNN / LSTM / GRU layer: torch's ``nn.RNNCellBase`` family.

    Variables (torch's names and layout, ``torch_name`` = the name, no ``torch_layout``):
    ``weight_ih`` (G·hidden_size, input_size), ``weight_hh`` (G·hidden_size, hidden_size),
    ``bias_ih`` / ``bias_hh`` (G·hidden_size,) or ``None`` with ``bias=False``; every one
    drawn from U(±1/√hidden_size) as torch does (0 bound for hidden_size 0). The step is
    :func:`_cell_step`, the same gate math as the layers' scans.
    """

    _STATE = ("hx",)  # the names of the state components, for the errors

    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool, *,
                 rngs: nnx.Rngs | None, dtype, param_dtype):
        layer = type(self).__name__
        # torch checks neither size; 0 works there (empty matmuls) and here
        self.input_size = check_int(input_size, "input_size", layer, minimum=0)
        self.hidden_size = check_int(hidden_size, "hidden_size", layer, minimum=0)
        self.bias = check_bool(bias, "bias", layer)
        self.mode = mode
        self.dtype, self.param_dtype = dtype, param_dtype
        g = _GATES[mode] * hidden_size
        shapes = {"weight_ih": (g, input_size), "weight_hh": (g, hidden_size)}
        if bias:
            shapes.update(bias_ih=(g,), bias_hh=(g,))
        rngs = nnx.Rngs(0) if rngs is None else rngs
        values = _init_uniform(rngs.params(), tuple(shapes.values()), hidden_size,
                               jnp.dtype(param_dtype))
        for (name, _), value in zip(shapes.items(), values):
            setattr(self, name, nnx.Param(value, torch_name=name))
        if not bias:
            self.bias_ih = self.bias_hh = None

    def _check_x(self, x):
        layer = type(self).__name__
        ndim = getattr(x, "ndim", None)
        if ndim is None:
            raise TypeError(f"{layer}: input must be an array, got {type(x).__name__}")
        if ndim not in (1, 2):
            raise ValueError(f"{layer}: input must be 2-D (N, input_size) or unbatched 1-D "
                             f"(input_size,), got shape {tuple(x.shape)} ({ndim}-D)")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{layer}: input must have input_size = {self.input_size} "
                             f"features in its last axis, got shape {tuple(x.shape)}")
        check_floating_input(x, name="input", layer=layer)

    def _check_state(self, s, name: str, n: int | None):
        """``s`` must be (N, hidden_size), or (hidden_size,) for an unbatched input."""
        layer = type(self).__name__
        want = (self.hidden_size,) if n is None else (n, self.hidden_size)
        lay = "(hidden_size,) (input is unbatched)" if n is None else "(N, hidden_size)"
        if getattr(s, "ndim", None) is None:
            raise TypeError(f"{layer}: {name} must be an array of shape {lay} = {want}, got "
                            f"{type(s).__name__}")
        if tuple(s.shape) != want:
            raise ValueError(f"{layer}: {name} must have shape {lay} = {want} (rank as "
                             f"input's), got {tuple(s.shape)}")
        check_floating_input(s, name=name, layer=layer)

    def _step(self, x, states: Sequence):
        """``states``: per state component an array or ``None`` (zeros) → new state tuple,
        in ``x``'s layout (batched or not) and dtype."""
        self._check_x(x)
        unbatched = x.ndim == 1
        n = None if unbatched else x.shape[0]
        for name, s in zip(self._STATE, states):
            if s is not None:
                self._check_state(s, name, n)
        params = [p for p in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
                  if p is not None]
        params = [p.get_value() for p in params]
        dt = self.dtype if self.dtype is not None else jnp.result_type(x, *params)
        # half precision: torch's matmuls accumulate in float32 (as in_opmath); the new
        # state is rounded to x's dtype once
        ct = opmath_dtype(dt)
        x = jnp.atleast_2d(x.astype(ct))                   # (input_size,) → (1, input_size)
        zeros = jnp.zeros((x.shape[0], self.hidden_size), ct)
        carry = tuple(zeros if s is None else jnp.atleast_2d(jnp.asarray(s).astype(ct))
                      for s in states)                     # (hidden_size,) → (1, hidden_size)
        w_ih, w_hh = (p.astype(ct) for p in params[:2])
        xg = jnp.matmul(x, w_ih.T)                         # (N, in) @ (in, G·H); torch (G·H, in)
        hg = jnp.matmul(carry[0], w_hh.T)                  # (N, H) @ (H, G·H)
        if self.bias:
            xg = xg + params[2].astype(ct)
            hg = hg + params[3].astype(ct)
        new = _cell_step(self.mode, xg, hg, carry)
        return tuple((h[0] if unbatched else h).astype(dt) for h in new)


class RNNCell(_RNNCellBase):
    """Torch ``nn.RNNCell(input_size, hidden_size, bias=True, nonlinearity='tanh')``:
    h' = tanh|relu(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh), one time step.

    Variables: ``weight_ih`` (hidden_size, input_size), ``weight_hh`` (hidden_size,
    hidden_size), ``bias_ih`` / ``bias_hh`` (hidden_size,) — torch's names and layout.
    ``nonlinearity`` is checked here (torch only fails at the call).

    >>> from flax import nnx; import jax.numpy as jnp
    >>> cell = RNNCell(10, 20, rngs=nnx.Rngs(0))
    >>> cell(jnp.ones((3, 10))).shape, cell(jnp.ones(10), jnp.zeros(20)).shape
    ((3, 20), (20,))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", *, rngs: nnx.Rngs | None = None, dtype=None,
                 param_dtype=jnp.float32):
        modes = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}
        self.nonlinearity = check_choice(nonlinearity, "nonlinearity", tuple(modes), "RNNCell")
        super().__init__(modes[nonlinearity], input_size, hidden_size, bias, rngs=rngs,
                         dtype=dtype, param_dtype=param_dtype)

    def __call__(self, input, hx=None):
        """``h' = cell(input, hx=None)``: ``input`` (N, input_size) or unbatched
        (input_size,); ``hx`` (N, hidden_size) / (hidden_size,), zeros if ``None``.
        Returns h' of ``hx``'s shape."""
        return self._step(input, (hx,))[0]


class GRUCell(_RNNCellBase):
    """Torch ``nn.GRUCell(input_size, hidden_size, bias=True)``: gates r, z, n;
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h.

    Variables: ``weight_ih`` (3·hidden_size, input_size) with the rows of W_ir, W_iz, W_in
    stacked, ``weight_hh`` (3·hidden_size, hidden_size), ``bias_ih`` / ``bias_hh``
    (3·hidden_size,) — torch's names and layout.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> GRUCell(10, 20, rngs=nnx.Rngs(0))(jnp.ones((3, 10)), jnp.zeros((3, 20))).shape
    (3, 20)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *,
                 rngs: nnx.Rngs | None = None, dtype=None, param_dtype=jnp.float32):
        super().__init__("GRU", input_size, hidden_size, bias, rngs=rngs, dtype=dtype,
                         param_dtype=param_dtype)

    def __call__(self, input, hx=None):
        """``h' = cell(input, hx=None)``: ``input`` (N, input_size) or unbatched
        (input_size,); ``hx`` (N, hidden_size) / (hidden_size,), zeros if ``None``.
        Returns h' of ``hx``'s shape."""
        return self._step(input, (hx,))[0]


class LSTMCell(_RNNCellBase):
    """Torch ``nn.LSTMCell(input_size, hidden_size, bias=True)``: gates i, f, g, o;
    c' = σ(f)·c + σ(i)·tanh(g), h' = σ(o)·tanh(c').

    Variables: ``weight_ih`` (4·hidden_size, input_size) with the rows of W_ii, W_if, W_ig,
    W_io stacked, ``weight_hh`` (4·hidden_size, hidden_size), ``bias_ih`` / ``bias_hh``
    (4·hidden_size,) — torch's names and layout.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> h, c = LSTMCell(10, 20, rngs=nnx.Rngs(0))(jnp.ones((3, 10)))
    >>> h.shape, c.shape
    ((3, 20), (3, 20))
    """

    _STATE = ("hx[0]", "hx[1]")

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *,
                 rngs: nnx.Rngs | None = None, dtype=None, param_dtype=jnp.float32):
        super().__init__("LSTM", input_size, hidden_size, bias, rngs=rngs, dtype=dtype,
                         param_dtype=param_dtype)

    def __call__(self, input, hx=None):
        """``(h', c') = cell(input, hx=None)``: ``input`` (N, input_size) or unbatched
        (input_size,); ``hx`` the tuple (h, c) of (N, hidden_size) / (hidden_size,)
        arrays, both zeros if ``None``. Returns the tuple (h', c') of the same shapes."""
        if hx is None:
            hx = (None, None)
        elif not isinstance(hx, (tuple, list)) or len(hx) != 2 or any(s is None for s in hx):
            raise ValueError(f"LSTMCell: hx must be None or a tuple (h, c) of two arrays, "
                             f"got {type(hx).__name__}"
                             + (f" of length {len(hx)}" if isinstance(hx, (tuple, list))
                                else ""))
        h, c = self._step(input, tuple(hx))
        return h, c
