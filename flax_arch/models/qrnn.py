"""Slide "Quasi Recurrent Neural Network (QRNN)" (``fQRNNLayer``, both decks) and the
paper's variants: Bradbury, Merity, Xiong, Socher, "Quasi-Recurrent Neural Networks",
ICLR 2017 (arXiv:1611.01576, 2016).

A QRNN layer is (1) a causal convolution over time computing every gate for every step at
once, then (2) *pooling*, a gated linear recurrence along time,

    c_t = f_t ⊙ c_{t−1} + b_t,   b_t = (1 − f_t) ⊙ z_t  (f-, fo-pooling)  or  i_t ⊙ z_t  (ifo),
    h_t = c_t  (f-pooling, the slide)  or  o_t ⊙ c_t  (fo-, ifo-pooling),

with z = tanh and f, o, i = σ of blocks of the convolution's output channels (order z, f,
o, i). Only (2) is sequential, and it is elementwise: no matrix product inside the loop.

Layout: batch first, channels last, as the slide: ``x`` (batch, time, features); the
slide's torch convolution works on (batch, features, time), the Flax one on
(batch, time, features) — the same numbers.

This file holds the QRNN glue: the gates as coefficients (a, b) = (f, (1 − f) ⊙ z) or
(f, i ⊙ z) of the recurrence, and the modules. The recurrence itself, its three
implementations (argument ``pooling`` = the ``method`` of
:mod:`flax_arch.ops.recurrence`: 'scan', 'associative', 'blocked') and its
derivatives are in :mod:`flax_arch.ops.recurrence`. For 'scan' the gates of a block
of steps are computed inside the loop, never stored whole; both autodiff modes work (the
tangent is again a linear recurrence, reverse mode its transpose: the reversed recurrence),
and reverse mode keeps only the pre-activations and the cell states.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from flax import nnx

from ..nn import Conv1d, causal_pad
from ..nn._utils import check_bool, check_float, check_input, in_opmath
from ._checks import check_sizes
from ..ops.recurrence import (BLOCKED_CHUNK, SCAN_BLOCK_ELEMENTS,  # noqa: F401
                                     METHODS, check_method, fused_linear_recurrence,
                                     linear_recurrence, scan_chunk)

__all__ = ["QRNNLayer", "QRNN", "GATES", "POOLINGS", "qrnn_pool", "f_pool",
           "linear_recurrence", "scan_chunk"]

#: gates per pooling variant, in the order of the convolution's output-channel blocks
GATES = {"f": ("z", "f"), "fo": ("z", "f", "o"), "ifo": ("z", "f", "o", "i")}
#: the pooling implementations (:data:`flax_arch.ops.recurrence.METHODS`)
POOLINGS = METHODS


def _check_pooling(pooling: str, chunk, where: str) -> None:
    check_method(pooling, chunk, where, argument="pooling")


def _f_coefficients(xs, params):
    """(f, z) blocks → (a, b) = (f, (1 − f) ⊙ z): the slide's f-pooling on given gates."""
    f, z = xs
    return f, (1 - f) * z


def f_pool(f, z, c0=None, *, pooling: str = "scan", chunk: int | None = None):
    """The slide's f-pooling on given gates: ``h_t = f_t ⊙ h_{t−1} + (1 − f_t) ⊙ z_t``.

    f, z: (B, T, H) batch-major (already σ / tanh); c0: (B, H) or None → h (B, T, H). The
    product (1 − f)⊙z is formed inside the loop ('scan'): the memory traffic is reading
    f and z once and writing h once (the pooling benchmark's floor).
    """
    _check_pooling(pooling, chunk, "f_pool")
    return fused_linear_recurrence(_f_coefficients, (f, z), (), c0, method=pooling,
                                   chunk=chunk)


def _gate_coefficients(xs, params, *, gates: str, bias: bool, keep: str):
    """Pre-activations → the recurrence's (a, b): (f, (1 − f) ⊙ z) or (f, i ⊙ z).

    xs = (pre,) or (pre, keep) with pre (B, K, k·H) and a per-step keep (B, K, H);
    params = (bias (k·H,),) if ``bias``, then the scalar keep if ``keep == 'scalar'``. With
    zoneout, ``1 − f = keep ⊙ (1 − σ(pre_f))`` (paper §2.1, no 1/(1−p) rescaling).
    """
    pre = xs[0] if not bias else xs[0] + params[0]
    k = xs[1] if keep == "steps" else params[-1] if keep == "scalar" else None
    # (B, K, k·H) → k blocks (B, K, H) in the order z, f[, o[, i]]; a split, not slices,
    # so that the gradient is one concatenation rather than a sum of zero-padded blocks
    blocks = jnp.split(pre, len(GATES[gates]), axis=-1)
    z = jnp.tanh(blocks[0])
    f = jax.nn.sigmoid(blocks[1])
    one_minus_f = 1 - f
    if k is not None:  # f = 1 − keep ⊙ (1 − σ); without zoneout f = σ exactly, no 1 − (1 − σ)
        one_minus_f = k * one_minus_f
        f = 1 - one_minus_f
    if gates == "ifo":
        return f, jax.nn.sigmoid(blocks[3]) * z
    return f, one_minus_f * z


def qrnn_pool(pre, c0=None, *, bias=None, gates: str = "f", keep=None,
              pooling: str = "scan", chunk: int | None = None):
    """QRNN pooling from the convolution's pre-activations.

    pre: (B, T, k·H) batch-major, channel blocks z, f[, o[, i]] (k = 2, 3, 4 for
    ``gates`` 'f', 'fo', 'ifo'); bias: (k·H,) added to ``pre`` or None (for 'scan' it is
    added inside the loop, saving a pass over ``pre``); c0: (B, H) or None (zeros); keep:
    None, a scalar, or a (B, T, H) array multiplying 1 − f (zoneout; a constant, no
    gradient) → ``(h, c_last)``: h (B, T, H), c_last (B, H) the last cell state.
    """
    if gates not in GATES:
        raise ValueError(f"qrnn_pool: gates must be one of {sorted(GATES)}, got {gates!r}")
    _check_pooling(pooling, chunk, "qrnn_pool")
    k = len(GATES[gates])
    if pre.ndim != 3 or pre.shape[-1] % k:
        raise ValueError(f"qrnn_pool: pre must be (B, T, {k}·H) for gates={gates!r}, "
                         f"got shape {pre.shape}")
    if pre.shape[1] < 1:
        raise ValueError(f"qrnn_pool: pre must have at least one time step, got {pre.shape}")
    H = pre.shape[-1] // k
    c0 = jnp.zeros((pre.shape[0], H), pre.dtype) if c0 is None else c0.astype(pre.dtype)
    xs, params, keep_kind = (pre,), (), "none"
    if bias is not None:
        if bias.shape != (k * H,):
            raise ValueError(f"qrnn_pool: bias must be ({k * H},), got shape {bias.shape}")
        bias = bias.astype(pre.dtype)
        params = (bias,)
    if keep is not None:
        keep = lax.stop_gradient(jnp.asarray(keep).astype(pre.dtype))
        if keep.ndim == 0:
            params, keep_kind = params + (keep,), "scalar"
        else:
            xs, keep_kind = (pre, keep), "steps"
    coefficients = functools.partial(_gate_coefficients, gates=gates, bias=bias is not None,
                                     keep=keep_kind)
    c = fused_linear_recurrence(coefficients, xs, params, c0, method=pooling, chunk=chunk)
    if "o" in GATES[gates]:  # fo, ifo: h = σ(pre_o + bias_o) ⊙ c
        o = pre[..., 2 * H:3 * H] + (0 if bias is None else bias[2 * H:3 * H])
        h = c * jax.nn.sigmoid(o)
    else:
        h = c
    return h, c[:, -1]


# ------------------------------------------------------------------ modules

class QRNNLayer(nnx.Module):
    """One QRNN layer: the slide's ``fQRNNLayer`` (``gates='f'``), with the paper's fo-/ifo-
    pooling and zoneout.

    Causal convolution ``conv`` (:class:`~flax_arch.nn.Conv1d`, num_inputs →
    k·num_outputs channels, kernel ``kwidth``, left-padded by ``kwidth − 1`` with
    :func:`~flax_arch.nn.causal_pad`; torch key ``conv.weight``), split into blocks z, f
    [, o [, i]], then pooling (module docstring). ``pooling`` picks the implementation
    ('scan', 'associative', 'blocked'; same results), ``chunk`` its block length (None:
    automatic). The layer calls ``conv`` without its bias (``add_bias=False``) and adds the
    bias inside the pooling: a separate add would be one more elementwise pass over the
    (B, T, k·H) pre-activations, which XLA:CPU does not fuse into the convolution (3–6 %
    of the 'scan' forward at the paper's size, docs/qrnn.md).

    Zoneout (paper §2.1): ``f ← 1 − dropout(1 − f)`` without the 1/(1−p) rescaling. In
    training mode (``deterministic`` False, after ``model.train()``) a keep-mask
    ``m ~ Bernoulli(1 − p)`` per (batch, step, unit) gives ``f ← 1 − m ⊙ (1 − f)`` (where
    m = 0 the unit keeps its state); the mask is drawn from the ``'dropout'`` stream of the
    ``rngs`` given at construction, or passed explicitly as ``zoneout_mask``. In evaluation
    mode ``zoneout_eval='expectation'`` uses ``f ← 1 − (1 − p)(1 − f)`` (Salesforce's
    ``F *= 1 − zoneout``), ``'identity'`` leaves f unchanged.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> hts, h_last = QRNNLayer(4, 8, rngs=nnx.Rngs(0))(jnp.ones((2, 5, 4)))
    >>> hts.shape, h_last.shape
    ((2, 5, 8), (2, 8))
    """

    def __init__(self, num_inputs: int, num_outputs: int, kwidth: int = 2,
                 pooling: str = "scan", *, gates: str = "f", zoneout: float = 0.0,
                 zoneout_eval: str = "expectation", chunk: int | None = None,
                 rngs: nnx.Rngs):
        name = type(self).__name__
        if gates not in GATES:
            raise ValueError(f"{name}: gates must be one of {sorted(GATES)}, got {gates!r}")
        _check_pooling(pooling, chunk, name)
        check_sizes(name, num_inputs=num_inputs, num_outputs=num_outputs, kwidth=kwidth)
        check_float(zoneout, "zoneout", name)
        if not 0.0 <= zoneout < 1.0:
            raise ValueError(f"{name}: zoneout must be in [0, 1), got {zoneout!r}")
        if zoneout_eval not in ("expectation", "identity"):
            raise ValueError(f"{name}: zoneout_eval must be 'expectation' or 'identity', "
                             f"got {zoneout_eval!r}")
        self.num_inputs, self.num_outputs, self.kwidth = num_inputs, num_outputs, kwidth
        self.pooling, self.chunk, self.gates = pooling, chunk, gates
        self.zoneout, self.zoneout_eval = zoneout, zoneout_eval
        self.conv = Conv1d(num_inputs, num_outputs * len(GATES[gates]), kwidth, rngs=rngs)
        self.deterministic = False  # torch modules start in training mode too
        self.rngs = rngs["dropout"].fork() if zoneout > 0 else nnx.data(None)

    # half precision: the bias joins inside the recurrence (add_bias=False), so the whole
    # layer runs in float32 and rounds once; its bias gradient, a sum over batch × time,
    # would otherwise be summed in bfloat16 (measured 4.5× torch's error at T=500)
    @in_opmath
    def __call__(self, x, state=None, *, zoneout_mask=None):
        """x (batch, time, num_inputs), batch first, channels last; state (batch,
        num_outputs) or None (zeros) → ``(hts, c_last)``: hts (batch, time, num_outputs),
        c_last (batch, num_outputs), the last pooling state c_T (= h_T for 'f'), to be
        passed back as ``state`` to continue the sequence.

        ``zoneout_mask`` (batch, time, num_outputs), nonzero = keep: training mode only;
        it replaces the random draw (for tests against another framework).
        """
        name = type(self).__name__
        check_input(x, name="x", layer=name, ranks=(3,), layout="(batch, time, features)",
                    floating=True, channels=self.num_inputs)
        B, T = x.shape[:2]
        if T < 1:
            raise ValueError(f"{name}: x must have at least one time step, got {x.shape}")
        H = self.num_outputs
        if state is not None and tuple(state.shape) != (B, H):
            raise ValueError(f"{name}: state must be (batch, num_outputs) = {(B, H)}, got "
                             f"shape {tuple(state.shape)}")
        # (B, T, C_in) → (B, kwidth − 1 + T, C_in) → valid convolution → (B, T, k·H)
        pre = self.conv(causal_pad(x, self.kwidth), add_bias=False)  # bias: in the pooling
        keep = None
        if not self.deterministic:
            if zoneout_mask is not None:
                if tuple(zoneout_mask.shape) != (B, T, H):
                    raise ValueError(f"{name}: zoneout_mask must be (batch, time, "
                                     f"num_outputs) = {(B, T, H)}, got shape "
                                     f"{tuple(zoneout_mask.shape)}")
                keep = zoneout_mask != 0
            elif self.zoneout > 0:
                keep = jax.random.bernoulli(self.rngs(), 1.0 - self.zoneout, (B, T, H))
        else:
            if zoneout_mask is not None:
                raise ValueError(f"{name}: zoneout_mask is only used in training mode "
                                 f"(call model.train())")
            if self.zoneout > 0 and self.zoneout_eval == "expectation":
                keep = 1.0 - self.zoneout
        return qrnn_pool(pre, state, bias=self.conv.bias[...], gates=self.gates, keep=keep,
                         pooling=self.pooling, chunk=self.chunk)


class QRNN(nnx.Module):
    """A stack of :class:`QRNNLayer`, optionally bidirectional, batch first.

    ``layers`` is an ``nnx.List`` of num_layers·D layers (D = 2 if ``bidirectional``),
    layer l direction d at ``layers[l·D + d]`` (torch keys ``layers.{l·D+d}.conv.weight``,
    the indexing of ``nn.LSTM``'s ``h_n``). Layer l > 0 reads the D·hidden_size
    concatenated outputs of layer l − 1. The backward direction runs its layer on the
    time-reversed sequence and reverses its output back.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> out, c_n = QRNN(4, 8, 2, bidirectional=True, rngs=nnx.Rngs(0))(jnp.ones((3, 5, 4)))
    >>> out.shape, c_n.shape
    ((3, 5, 16), (4, 3, 8))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 kwidth: int = 2, pooling: str = "scan", *, gates: str = "f",
                 zoneout: float = 0.0, zoneout_eval: str = "expectation",
                 bidirectional: bool = False, chunk: int | None = None, rngs: nnx.Rngs):
        check_sizes("QRNN", input_size=input_size, hidden_size=hidden_size,
                    num_layers=num_layers)
        check_bool(bidirectional, "bidirectional", "QRNN")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.bidirectional = num_layers, bidirectional
        d = 2 if bidirectional else 1
        self.layers = nnx.List([
            QRNNLayer(input_size if i // d == 0 else d * hidden_size, hidden_size, kwidth,
                      pooling, gates=gates, zoneout=zoneout, zoneout_eval=zoneout_eval,
                      chunk=chunk, rngs=rngs)
            for i in range(num_layers * d)])

    def __call__(self, x, state=None, *, zoneout_mask=None):
        """x (batch, time, input_size), batch first; state (num_layers·D, batch,
        hidden_size) or None → ``(out, c_n)``: out (batch, time, D·hidden_size) (forward
        direction's features first), c_n (num_layers·D, batch, hidden_size), each
        layer/direction's last pooling state (the backward direction's after step 0).

        ``zoneout_mask`` (num_layers·D, batch, time, hidden_size), by original time step:
        training mode only (see :class:`QRNNLayer`).
        """
        check_input(x, name="x", layer="QRNN", ranks=(3,), layout="(batch, time, features)",
                    floating=True, channels=self.input_size)
        d = 2 if self.bidirectional else 1
        n = self.num_layers * d
        B, T = x.shape[:2]
        for arg, shape in (("state", (n, B, self.hidden_size)),
                           ("zoneout_mask", (n, B, T, self.hidden_size))):
            val = state if arg == "state" else zoneout_mask
            if val is not None and tuple(val.shape) != shape:
                raise ValueError(f"QRNN: {arg} must be (num_layers·D, batch, "
                                 f"{'time, ' if arg != 'state' else ''}hidden_size) = "
                                 f"{shape}, got shape {tuple(val.shape)}")
        last = []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(d):
                i = layer * d + direction
                s = None if state is None else state[i]
                m = None if zoneout_mask is None else zoneout_mask[i]
                mod = self.layers[i]
                if direction == 0:
                    h, c = mod(x, s, zoneout_mask=m)
                else:  # time-reversed: (B, T, ·) flipped along axis 1
                    h, c = mod(jnp.flip(x, 1), s,
                               zoneout_mask=None if m is None else jnp.flip(m, 1))
                    h = jnp.flip(h, 1)
                outs.append(h)
                last.append(c)
            # (B, T, H) per direction → (B, T, D·H)
            x = jnp.concatenate(outs, axis=-1) if d == 2 else outs[0]
        return x, jnp.stack(last, axis=0)  # (num_layers·D, B, H)
