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

Pooling implementations (argument ``pooling``), identical in exact arithmetic:

* ``'scan'`` — ``jax.lax.scan`` over blocks of ``chunk`` steps, in place on the
  batch-major arrays (no transposes): the gates of a block are computed vectorised, then
  its steps run one after the other (an inner, fully unrolled ``lax.scan``) and the block
  is written into the output. T/chunk sequential iterations, O(T) work. ``chunk=None``
  (default) picks it from B·H (:func:`scan_chunk`; on CPU 8 for the benchmark's 8×256, 1
  for 32×512). Best on CPU (docs/qrnn.md).
* ``'associative'`` — ``jax.lax.associative_scan`` over the pairs (a_t, b_t) with the
  composition (a₁, b₁)∘(a₂, b₂) = (a₁a₂, a₂b₁ + b₂) of the affine maps c ↦ a c + b:
  O(log T) depth, O(T) work, but about 2·log₂T passes over memory.
* ``'blocked'`` — associative within blocks of ``chunk`` steps (all blocks at once), then
  a sequential ``lax.scan`` carries the state across the T/chunk blocks, then one
  elementwise fix-up: depth O(chunk + T/chunk) with vectorised work.

All three have one hand-written reverse-mode rule (:func:`jax.custom_vjp`): the gradient of
the recurrence is the reverse recurrence g_t = ∂L/∂c_t + f_{t+1} ⊙ g_{t+1}, run with the
same implementation; the gates are recomputed from the pre-activations instead of stored.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from flax import nnx

from ..nn import Conv1d, causal_pad
from ..nn._utils import check_input

__all__ = ["QRNNLayer", "QRNN", "GATES", "POOLINGS", "qrnn_pool", "f_pool",
           "linear_recurrence", "scan_chunk"]

#: gates per pooling variant, in the order of the convolution's output-channel blocks
GATES = {"f": ("z", "f"), "fo": ("z", "f", "o"), "ifo": ("z", "f", "o", "i")}
#: the pooling implementations
POOLINGS = ("scan", "associative", "blocked")
#: ``chunk=None`` for 'scan': the largest power of two ≤ 16 steps whose block of one array
#: holds at most this many elements (64 KiB of float32: a block's few arrays stay in a
#: core's L2 cache). Small B·H gets long blocks (fewer loop iterations), large B·H one
#: step per iteration. Measured on CPU: docs/qrnn.md.
SCAN_BLOCK_ELEMENTS = 16384
#: ``chunk=None`` for 'blocked': steps per associatively scanned block
BLOCKED_CHUNK = 16


def _check_pooling(pooling: str, chunk, where: str) -> None:
    if pooling not in POOLINGS:
        raise ValueError(f"{where}: pooling must be one of {POOLINGS}, got {pooling!r}")
    if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
        raise ValueError(f"{where}: chunk must be a positive int or None, got {chunk!r}")


def scan_chunk(step_elements: int, backend: str | None = None) -> int:
    """The automatic block length of the 'scan' pooling for ``step_elements`` = B·H values
    per time step (see :data:`SCAN_BLOCK_ELEMENTS`) on ``backend`` (default: JAX's).

    On a GPU/TPU a block's steps are elementwise over (B, H) and fuse into one kernel, and
    each loop iteration costs kernel launches rather than cache misses: the longest block
    (16) is used there (not yet measured: see docs/qrnn.md).
    """
    if (backend or jax.default_backend()) != "cpu":
        return 16
    k = 1
    while k < 16 and 2 * k * step_elements <= SCAN_BLOCK_ELEMENTS:
        k *= 2
    return k


# ------------------------------------------------------------------ sequential engine

def _blocked_loop(xs: tuple, carry, prepare, step, chunk: int, reverse: bool):
    """Run ``step`` over axis 1 of the batch-major arrays ``xs`` (each (B, T, ...)).

    Per block of ``chunk`` steps: ``prepare(*blocks)`` maps the (B, K, ...) slices to a
    tuple of (B, K, H) per-step inputs (vectorised work: the gates), then ``step(carry,
    inputs_t) -> (carry, y_t)`` runs on the (B, H) slices in time order (``reverse``:
    from the last step to the first), and the (B, K, H) outputs are written in place into
    the (B, T, H) result. A last partial block (T mod chunk steps) is handled with static
    slices. The output is updated in place (``dynamic_update_slice`` on a loop-carried
    buffer): no stacking along a leading time axis, hence no transposes. Returns
    ``(carry, ys)``.
    """
    B, T = xs[0].shape[:2]
    if chunk is None:  # per-step size of the prepared inputs: (B, 1, H...) → B·H
        probe = jax.eval_shape(prepare, *(a[:, :1] for a in xs))[0]
        chunk = scan_chunk(probe.size)
    K = min(chunk, T)
    n_full, tail = divmod(T, K)

    def run_block(carry, blocks, k):
        ins = prepare(*blocks)  # each (B, k, H)
        out = jnp.zeros(ins[0].shape, ins[0].dtype)  # (B, k, H)

        def body(state, j):
            carry, out = state
            t = k - 1 - j if reverse else j
            carry, y = step(carry, tuple(lax.dynamic_index_in_dim(a, t, 1, False)
                                         for a in ins))
            return (carry, lax.dynamic_update_index_in_dim(out, y, t, 1)), None

        # unrolled: the indices are constants, the slices static
        return lax.scan(body, (carry, out), jnp.arange(k), unroll=True)[0]

    ys = None
    if n_full:
        # the output's per-step shape and dtype: those of prepare's first result
        probe = jax.eval_shape(prepare, *(a[:, :K] for a in xs))[0]
        ys = jnp.zeros((B, T, *probe.shape[2:]), probe.dtype)
        base = tail if reverse else 0  # full blocks cover [base, base + n_full·K)

        def outer(state, i):
            carry, ys = state
            blk = n_full - 1 - i if reverse else i
            start = base + blk * K
            blocks = tuple(lax.dynamic_slice_in_dim(a, start, K, 1) for a in xs)
            carry, out = run_block(carry, blocks, K)
            return (carry, lax.dynamic_update_slice_in_dim(ys, out, start, 1)), None

        (carry, ys), _ = lax.scan(outer, (carry, ys), jnp.arange(n_full))
    if tail:
        lo = 0 if reverse else n_full * K  # the partial block: first steps when reversed
        carry, out = run_block(carry, tuple(a[:, lo:lo + tail] for a in xs), tail)
        ys = out if ys is None else lax.dynamic_update_slice_in_dim(ys, out, lo, 1)
    return carry, ys


def _affine_combine(left, right):
    """(a₁, b₁) then (a₂, b₂): c ↦ a₂(a₁c + b₁) + b₂ = (a₁a₂, a₂b₁ + b₂)."""
    a1, b1 = left
    a2, b2 = right
    return a1 * a2, a2 * b1 + b2


def _assoc_recurrence(a, b, c0, reverse: bool):
    """c_t = a_t c_{t∓1} + b_t along axis 1 with ``jax.lax.associative_scan``."""
    first = -1 if reverse else 0
    # fold the initial state into the first step's offset: b_first += a_first · c0
    b = b.at[:, first].add(a[:, first] * c0)
    _, c = lax.associative_scan(_affine_combine, (a, b), reverse=reverse, axis=1)
    return c


def _blocked_recurrence(a, b, c0, chunk: int, reverse: bool):
    """Associative within blocks of ``chunk`` steps, sequential carry across blocks."""
    B, T = a.shape[:2]
    rest = a.shape[2:]
    K = min(BLOCKED_CHUNK if chunk is None else chunk, T)
    pad = (-T) % K
    if pad:  # identity steps (a = 1, b = 0) complete the last block
        widths = [(0, 0), (pad, 0) if reverse else (0, pad)] + [(0, 0)] * len(rest)
        a = jnp.pad(a, widths, constant_values=1)
        b = jnp.pad(b, widths)
    n = a.shape[1] // K
    # (B, n·K, ...) → (B, n, K, ...): block index, step in block
    a4, b4 = a.reshape(B, n, K, *rest), b.reshape(B, n, K, *rest)
    A, C = lax.associative_scan(_affine_combine, (a4, b4), reverse=reverse, axis=2)
    # state entering each block: sequential over the n block totals (A, C at its end)
    end = 0 if reverse else K - 1
    A_end, C_end = A[:, :, end], C[:, :, end]  # (B, n, ...)

    def step(c, ac):
        a_blk, c_blk = ac
        return a_blk * c + c_blk, c  # emit the state *entering* the block

    # time-major over blocks (n is small): (B, n, ...) → (n, B, ...)
    _, enter = lax.scan(step, c0, (jnp.moveaxis(A_end, 1, 0), jnp.moveaxis(C_end, 1, 0)),
                        reverse=reverse)
    enter = jnp.moveaxis(enter, 0, 1)[:, :, None]  # (B, n, 1, ...)
    c = (A * enter + C).reshape(B, n * K, *rest)
    return c[:, pad:] if reverse else c[:, :T]


def linear_recurrence(a, b, c0=None, *, pooling: str = "scan", chunk: int | None = None,
                      reverse: bool = False):
    """``c_t = a_t ⊙ c_{t−1} + b_t`` along time (``reverse``: ``c_t = a_t ⊙ c_{t+1} + b_t``).

    a, b: (B, T, ...) batch-major; c0: (B, ...) or None (zeros) → c: (B, T, ...).
    Differentiable by JAX's own rules (the QRNN layer uses :func:`qrnn_pool`, whose
    gradient is hand-written).
    """
    _check_pooling(pooling, chunk, "linear_recurrence")
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(f"linear_recurrence: a and b must be (B, T, ...) of equal shape, "
                         f"got {a.shape} and {b.shape}")
    c0 = jnp.zeros(a.shape[:1] + a.shape[2:], jnp.result_type(a, b)) if c0 is None else c0
    if pooling == "associative":
        return _assoc_recurrence(a, b, c0, reverse)
    if pooling == "blocked":
        return _blocked_recurrence(a, b, c0, chunk, reverse)
    return _blocked_loop((a, b), c0, lambda a, b: (a, b),
                         lambda c, ab: (ab[0] * c + ab[1],) * 2, chunk, reverse)[1]


def f_pool(f, z, c0=None, *, pooling: str = "scan", chunk: int | None = None):
    """The slide's f-pooling on given gates: ``h_t = f_t ⊙ h_{t−1} + (1 − f_t) ⊙ z_t``.

    f, z: (B, T, H) batch-major (already σ / tanh); c0: (B, H) or None → h (B, T, H). The
    product (1 − f)⊙z is formed inside the loop ('scan'): the memory traffic is reading
    f and z once and writing h once (the pooling benchmark's floor).
    """
    _check_pooling(pooling, chunk, "f_pool")
    c0 = jnp.zeros(f.shape[:1] + f.shape[2:], jnp.result_type(f, z)) if c0 is None else c0
    if pooling == "scan":
        return _blocked_loop((f, z), c0, lambda f, z: (f, (1 - f) * z),
                             lambda c, ab: (ab[0] * c + ab[1],) * 2, chunk, False)[1]
    return linear_recurrence(f, (1 - f) * z, c0, pooling=pooling, chunk=chunk)


# ------------------------------------------------------------------ QRNN pooling (custom VJP)

def _gate_values(pre, bias, keep, gates: str):
    """Pre-activations (..., k·H) (+ ``bias`` (k·H,) unless None) → (z, s, f, one_minus_f,
    i) with f after zoneout.

    ``s = σ(pre_f)`` is the forget gate before zoneout; with a keep factor/mask ``keep``
    ``1 − f = keep ⊙ (1 − s)``. ``i`` is None unless ``gates == 'ifo'``.
    """
    H = pre.shape[-1] // len(GATES[gates])
    if bias is not None:
        pre = pre + bias
    z = jnp.tanh(pre[..., :H])
    s = jax.nn.sigmoid(pre[..., H:2 * H])
    omf = 1 - s if keep is None else keep * (1 - s)
    f = s if keep is None else 1 - omf
    i = jax.nn.sigmoid(pre[..., 3 * H:4 * H]) if gates == "ifo" else None
    return z, s, f, omf, i


def _coefficients(pre, bias, keep, gates: str):
    """(a, b) of the recurrence c_t = a_t c_{t−1} + b_t from the pre-activations."""
    z, _, f, omf, i = _gate_values(pre, bias, keep, gates)
    return f, (i if i is not None else omf) * z


def _cells(pre, bias, c0, keep, gates, pooling, chunk):
    """The cell states c (B, T, H) of the recurrence, gates computed from ``pre``.

    For 'scan' the gates (bias included: on CPU XLA does not fuse a bias add into the
    convolution, so adding it here saves a pass over the (B, T, k·H) pre-activations) are
    computed block by block inside the loop, never stored whole."""
    if pooling != "scan":
        a, b = _coefficients(pre, bias, keep, gates)
        return linear_recurrence(a, b, c0, pooling=pooling, chunk=chunk)
    if keep is None or keep.ndim == 0:
        def prepare(p):
            return _coefficients(p, bias, keep, gates)
        xs = (pre,)
    else:
        def prepare(p, k):
            return _coefficients(p, bias, k, gates)
        xs = (pre, keep)
    return _blocked_loop(xs, c0, prepare, lambda c, ab: (ab[0] * c + ab[1],) * 2,
                         chunk, False)[1]


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6))
def _pool_cells(pre, bias, c0, keep, gates, pooling, chunk):
    return _cells(pre, bias, c0, keep, gates, pooling, chunk)


def _pool_cells_fwd(pre, bias, c0, keep, gates, pooling, chunk):
    c = _cells(pre, bias, c0, keep, gates, pooling, chunk)
    return c, (pre, bias, c0, keep, c)


def _pool_cells_bwd(gates, pooling, chunk, res, dc):
    pre, bias, c0, keep, c = res
    z, s, f, omf, i = _gate_values(pre, bias, keep, gates)
    # g_t = ∂L/∂c_t (total) = dc_t + f_{t+1} ⊙ g_{t+1}; dc0 = f_1 ⊙ g_1
    if pooling == "scan":
        def step(q, fd):  # q = f_{t+1} ⊙ g_{t+1}
            g = fd[1] + q
            return fd[0] * g, g
        dc0, g = _blocked_loop((f, dc), jnp.zeros_like(c0), lambda f, d: (f, d), step,
                               chunk, True)
    else:
        # (B, T, H): f_{t+1}, with 0 after the last step
        f_next = jnp.concatenate([f[:, 1:], jnp.zeros_like(f[:, :1])], axis=1)
        g = linear_recurrence(f_next, dc, jnp.zeros_like(c0), pooling=pooling, chunk=chunk,
                              reverse=True)
        dc0 = f[:, 0] * g[:, 0]
    c_prev = jnp.concatenate([c0[:, None], c[:, :-1]], axis=1)  # (B, T, H): c_{t−1}
    if i is None:  # c = f c_prev + (1 − f) z
        df, dz = g * (c_prev - z), g * omf
    else:  # c = f c_prev + i z
        df, dz = g * c_prev, g * i
    ds = df if keep is None else df * keep  # f = 1 − keep (1 − s): ∂f/∂s = keep
    blocks = [dz * (1 - z * z), ds * s * (1 - s)]  # through tanh and σ
    if gates in ("fo", "ifo"):
        blocks.append(jnp.zeros_like(z))  # the output gate is applied outside
    if i is not None:
        blocks.append(g * z * i * (1 - i))
    dpre = jnp.concatenate(blocks, axis=-1)
    dbias = None if bias is None else jnp.sum(dpre, axis=(0, 1))
    return dpre, dbias, dc0, None if keep is None else jnp.zeros_like(keep)


_pool_cells.defvjp(_pool_cells_fwd, _pool_cells_bwd)


def qrnn_pool(pre, c0=None, *, bias=None, gates: str = "f", keep=None,
              pooling: str = "scan", chunk: int | None = None):
    """QRNN pooling from the convolution's pre-activations.

    pre: (B, T, k·H) batch-major, channel blocks z, f[, o[, i]] (k = 2, 3, 4 for
    ``gates`` 'f', 'fo', 'ifo'); bias: (k·H,) added to ``pre`` or None; c0: (B, H) or
    None (zeros); keep: None, a scalar, or a
    (B, T, H) array multiplying 1 − f (zoneout; a constant, no gradient) →
    ``(h, c_last)``: h (B, T, H), c_last (B, H) the last cell state.
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
    if keep is not None:
        keep = lax.stop_gradient(jnp.asarray(keep).astype(pre.dtype))
    if bias is not None:
        if bias.shape != (k * H,):
            raise ValueError(f"qrnn_pool: bias must be ({k * H},), got shape {bias.shape}")
        bias = bias.astype(pre.dtype)
    c = _pool_cells(pre, bias, c0, keep, gates, pooling, chunk)
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
    automatic). The convolution's bias is added where the gates are computed (inside the
    'scan' loop), not by ``conv`` itself, which saves a pass over the pre-activations.

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
        if not 0.0 <= zoneout < 1.0:
            raise ValueError(f"{name}: zoneout must be in [0, 1), got {zoneout!r}")
        if zoneout_eval not in ("expectation", "identity"):
            raise ValueError(f"{name}: zoneout_eval must be 'expectation' or 'identity', "
                             f"got {zoneout_eval!r}")
        if not isinstance(kwidth, int) or kwidth < 1:
            raise ValueError(f"{name}: kwidth must be a positive int, got {kwidth!r}")
        self.num_inputs, self.num_outputs, self.kwidth = num_inputs, num_outputs, kwidth
        self.pooling, self.chunk, self.gates = pooling, chunk, gates
        self.zoneout, self.zoneout_eval = zoneout, zoneout_eval
        self.conv = Conv1d(num_inputs, num_outputs * len(GATES[gates]), kwidth, rngs=rngs)
        self.deterministic = False  # torch modules start in training mode too
        self.rngs = rngs["dropout"].fork() if zoneout > 0 else nnx.data(None)

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
                    channels=self.num_inputs)
        B, T = x.shape[:2]
        if T < 1:
            raise ValueError(f"{name}: x must have at least one time step, got {x.shape}")
        H = self.num_outputs
        if state is not None and tuple(state.shape) != (B, H):
            raise ValueError(f"{name}: state must be (batch, num_outputs) = {(B, H)}, got "
                             f"shape {tuple(state.shape)}")
        # (B, T, C_in) → (B, kwidth − 1 + T, C_in) → conv without its bias → (B, T, k·H);
        # the bias is added where the gates are computed (qrnn_pool)
        xp = causal_pad(x, self.kwidth)
        kernel = self.conv.kernel.get_value()  # (kwidth, C_in, k·H)
        bias = self.conv.bias.get_value()
        dt = jnp.result_type(xp, kernel)
        pre = lax.conv_general_dilated(xp.astype(dt), kernel.astype(dt), (1,), "VALID",
                                       dimension_numbers=("NWC", "WIO", "NWC"))
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
        return qrnn_pool(pre, state, bias=bias, gates=self.gates, keep=keep,
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
        if num_layers < 1:
            raise ValueError(f"QRNN: num_layers must be >= 1, got {num_layers}")
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
                    channels=self.input_size)
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
