"""The first-order linear recurrence ``c_t = a_t ⊙ c_{t−1} + b_t`` along time, and its
derivatives in both autodiff modes.

The recurrence is the sequential part of a QRNN's pooling (slide "Quasi Recurrent Neural
Network (QRNN)"; Bradbury, Merity, Xiong, Socher, "Quasi-Recurrent Neural Networks",
arXiv:1611.01576, 2016, §2) and of other gated linear RNNs; nothing here is QRNN-specific.
Arrays are batch-major, (B, T, ...): time is axis 1; the state c_t is (B, ...).

Three implementations (argument ``method``), identical in exact arithmetic:

* ``'scan'`` — ``jax.lax.scan`` over blocks of ``chunk`` steps, in place on the
  batch-major arrays (no transposes to time-major): a block's inputs are prepared
  vectorised, its steps run one after the other (an inner, fully unrolled ``lax.scan``) and
  the block is written into the output. T/chunk sequential iterations, O(T) work.
  ``chunk=None`` picks the block length from the per-step size (:func:`scan_chunk`).
* ``'associative'`` — ``jax.lax.associative_scan`` over the pairs (a_t, b_t) with the
  composition (a₁, b₁)∘(a₂, b₂) = (a₁a₂, a₂b₁ + b₂) of the affine maps c ↦ a c + b
  (Blelloch, "Prefix sums and their applications", 1990): O(log T) depth, O(T) work,
  about 2·log₂T passes over memory.
* ``'blocked'`` — associative within blocks of ``chunk`` steps (all blocks at once), a
  sequential ``lax.scan`` carrying the state across the T/chunk blocks, then one
  elementwise fix-up: depth O(chunk + T/chunk).

Derivatives. With the initial state folded into the first step (b_1 + a_1 c_0), the
recurrence solves the lower-bidiagonal system M c = b, (M c)_t = c_t − a_t c_{t−1}, so

* forward mode (JVP): ``dc = M⁻¹(db + da ⊙ c_{t−1})`` — the tangent is again a linear
  recurrence, ``dc_t = a_t dc_{t−1} + (da_t c_{t−1} + db_t)``, run with the same method;
* reverse mode (VJP) is its transpose, ``g = M⁻ᵀ ∂L/∂c``: the *reversed* recurrence
  ``g_t = ∂L/∂c_t + a_{t+1} g_{t+1}``, then ``∂L/∂b_t = g_t``, ``∂L/∂a_t = g_t c_{t−1}``,
  ``∂L/∂c_0 = a_1 g_1``.

One ``jax.custom_jvp`` rule (:func:`fused_linear_recurrence`; :func:`linear_recurrence`
calls it with identity coefficients) computes the tangent. Its M⁻¹ is a
``jax.lax.custom_linear_solve`` whose transposed solve is the reversed recurrence, so JAX
derives reverse mode by transposing the tangent rule and runs the reversed loop written
here, not JAX's own transpose of the forward loop (which accumulates the loop's dynamic
slices into full-size buffers: ~20x slower for B=8, T=500, 256 units, measured on CPU).
The rule is rematerialised (``jax.checkpoint``): reverse mode keeps the inputs and c, and
recomputes a, b and their derivatives in the backward pass.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

__all__ = ["METHODS", "SCAN_BLOCK_ELEMENTS", "BLOCKED_CHUNK", "scan_chunk",
           "linear_recurrence", "fused_linear_recurrence"]

#: the implementations
METHODS = ("scan", "associative", "blocked")
#: ``chunk=None`` for 'scan' on CPU: the largest power of two ≤ 16 steps whose block of one
#: array holds at most this many elements (64 KiB of float32: a block's few arrays stay in
#: a core's L2 cache). Small per-step sizes get long blocks (fewer loop iterations), large
#: ones one step per iteration. Measured on CPU: docs/qrnn.md.
SCAN_BLOCK_ELEMENTS = 16384
#: ``chunk=None`` for 'blocked': steps per associatively scanned block
BLOCKED_CHUNK = 16


def check_method(method: str, chunk, where: str, *, argument: str = "method") -> None:
    """Raise ``ValueError`` (naming ``where`` and ``argument``) for an unknown method or a
    block length that is not a positive int or None."""
    if method not in METHODS:
        raise ValueError(f"{where}: {argument} must be one of {METHODS}, got {method!r}")
    if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
        raise ValueError(f"{where}: chunk must be a positive int or None, got {chunk!r}")


def scan_chunk(step_elements: int, backend: str | None = None) -> int:
    """The automatic block length of the 'scan' method for ``step_elements`` values per
    time step (B·H for a (B, T, H) recurrence; see :data:`SCAN_BLOCK_ELEMENTS`) on
    ``backend`` (default: JAX's).

    On a GPU/TPU a block's steps are elementwise and fuse into one kernel, and each loop
    iteration costs kernel launches rather than cache misses: the longest block (16) is
    used there (not yet measured: see docs/qrnn.md).
    """
    if (backend or jax.default_backend()) != "cpu":
        return 16
    k = 1
    while k < 16 and 2 * k * step_elements <= SCAN_BLOCK_ELEMENTS:
        k *= 2
    return k


# ------------------------------------------------------------------ the sequential engine

def _blocked_loop(xs: tuple, carry, prepare, step, chunk: int | None, reverse: bool):
    """Run ``step`` over axis 1 of the batch-major arrays ``xs`` (each (B, T, ...)).

    Per block of ``chunk`` steps: ``prepare(*blocks)`` maps the (B, K, ...) slices to a
    tuple of (B, K, ...) per-step inputs (vectorised work), then ``step(carry, inputs_t)
    -> (carry, y_t)`` runs on the (B, ...) slices in time order (``reverse``: from the last
    step to the first), and the (B, K, ...) outputs are written in place into the
    (B, T, ...) result. A last partial block (T mod chunk steps) is handled with static
    slices. The output is updated in place (``dynamic_update_slice`` on a loop-carried
    buffer): no stacking along a leading time axis, hence no transposes. Returns
    ``(carry, ys)``.
    """
    B, T = xs[0].shape[:2]
    if chunk is None:  # per-step size of the prepared inputs: (B, 1, ...) → B·∏...
        probe = jax.eval_shape(prepare, *(x[:, :1] for x in xs))[0]
        chunk = scan_chunk(probe.size)
    K = min(chunk, T)
    n_full, tail = divmod(T, K)

    def run_block(carry, blocks, k):
        ins = prepare(*blocks)  # each (B, k, ...)
        out = jnp.zeros(ins[0].shape, ins[0].dtype)  # (B, k, ...)

        def body(state, j):
            carry, out = state
            t = k - 1 - j if reverse else j
            carry, y = step(carry, tuple(lax.dynamic_index_in_dim(v, t, 1, False)
                                         for v in ins))
            return (carry, lax.dynamic_update_index_in_dim(out, y, t, 1)), None

        # unrolled: the indices are constants, the slices static
        return lax.scan(body, (carry, out), jnp.arange(k), unroll=True)[0]

    ys = None
    if n_full:
        # the output's per-step shape and dtype: those of prepare's first result
        probe = jax.eval_shape(prepare, *(x[:, :K] for x in xs))[0]
        ys = jnp.zeros((B, T, *probe.shape[2:]), probe.dtype)
        base = tail if reverse else 0  # full blocks cover [base, base + n_full·K)

        def outer(state, i):
            carry, ys = state
            blk = n_full - 1 - i if reverse else i
            start = base + blk * K
            blocks = tuple(lax.dynamic_slice_in_dim(x, start, K, 1) for x in xs)
            carry, out = run_block(carry, blocks, K)
            return (carry, lax.dynamic_update_slice_in_dim(ys, out, start, 1)), None

        (carry, ys), _ = lax.scan(outer, (carry, ys), jnp.arange(n_full))
    if tail:
        lo = 0 if reverse else n_full * K  # the partial block: first steps when reversed
        carry, out = run_block(carry, tuple(x[:, lo:lo + tail] for x in xs), tail)
        ys = out if ys is None else lax.dynamic_update_slice_in_dim(ys, out, lo, 1)
    return carry, ys


def _affine_step(c, ab):
    """One step c ↦ a c + b; the new state is also the step's output."""
    c = ab[0] * c + ab[1]
    return c, c


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


def _blocked_recurrence(a, b, c0, chunk: int | None, reverse: bool):
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
    enter = jnp.moveaxis(enter, 0, 1)[:, :, None]  # (n, B, ...) → (B, n, 1, ...)
    c = (A * enter + C).reshape(B, n * K, *rest)  # (B, n, K, ...) → (B, n·K, ...)
    return c[:, pad:] if reverse else c[:, :T]


def _solve(a, b, c0, method: str, chunk, reverse: bool):
    """The recurrence itself (no custom derivative): c (B, T, ...)."""
    if method == "associative":
        return _assoc_recurrence(a, b, c0, reverse)
    if method == "blocked":
        return _blocked_recurrence(a, b, c0, chunk, reverse)
    return _blocked_loop((a, b), c0, lambda a, b: (a, b), _affine_step, chunk, reverse)[1]


def _shift(x, first, reverse: bool):
    """x_{t−1} along axis 1 with ``first`` (B, ...) before step 0 (``reverse``: x_{t+1},
    ``first`` after the last step): (B, T, ...) → (B, T, ...)."""
    if reverse:
        return jnp.concatenate([x[:, 1:], first[:, None]], axis=1)
    return jnp.concatenate([first[:, None], x[:, :-1]], axis=1)


def _solve_transposed(a, g, method: str, chunk, reverse: bool):
    """The transposed system's solve: y_t = g_t + a_{t+1} y_{t+1} (``reverse``:
    a_{t−1} y_{t−1}), y (B, T, ...)."""
    zero = jnp.zeros_like(g[:, 0])
    if method == "scan":
        # carry q_t = a_t y_t, so that y_{t−1} = g_{t−1} + q_t: no shifted copy of a
        def step(q, ag):
            y = ag[1] + q
            return ag[0] * y, y

        return _blocked_loop((a, g), zero, lambda a, g: (a, g), step, chunk, not reverse)[1]
    # a_{t+1} with 0 after the last step (reverse: a_{t−1}, 0 before step 0)
    return _solve(_shift(a, jnp.zeros_like(a[:, 0]), not reverse), g, zero, method, chunk,
                  not reverse)


def _recurrence_solve(a, b, c0, method: str, chunk, reverse: bool):
    """c = M⁻¹ b as a ``jax.lax.custom_linear_solve``: JAX differentiates it (forward:
    ``M⁻¹(db − dM c)``) and transposes it with :func:`_solve_transposed`. ``c0`` (or None:
    zeros) is folded into the first step's b (``b_1 += a_1 c0``), so the right-hand side is
    one array, linear in every tangent (JAX's transpose of a solve needs that)."""
    if c0 is not None:
        first = -1 if reverse else 0
        b = b.at[:, first].add(a[:, first] * c0)
    zero = jnp.zeros_like(b[:, 0])

    def matvec(c):  # (M c)_t = c_t − a_t c_{t−1}
        return c - a * _shift(c, zero, reverse)

    return lax.custom_linear_solve(
        matvec, b, lambda _, r: _solve(a, r, zero, method, chunk, reverse),
        lambda _, g: _solve_transposed(a, g, method, chunk, reverse))


def _prepare(a, b, c0):
    """a and b in their common dtype; the shape checks."""
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(f"linear_recurrence: a and b must be (B, T, ...) of equal shape, "
                         f"got {a.shape} and {b.shape}")
    dt = jnp.result_type(a, b)
    if c0 is not None and jnp.shape(c0) != a.shape[:1] + a.shape[2:]:
        raise ValueError(f"linear_recurrence: c0 must be {a.shape[:1] + a.shape[2:]} "
                         f"(a and b without the time axis), got {jnp.shape(c0)}")
    return a.astype(dt), b.astype(dt)


def _identity(xs, params):
    """The coefficients are the inputs: (a, b) = xs."""
    return xs


def linear_recurrence(a, b, c0=None, *, method: str = "scan", chunk: int | None = None,
                      reverse: bool = False):
    """``c_t = a_t ⊙ c_{t−1} + b_t`` along time (``reverse``: ``c_t = a_t ⊙ c_{t+1} + b_t``).

    a, b: (B, T, ...) batch-major (time is axis 1); c0: (B, ...) the state before the first
    step (``reverse``: after the last) or None (zeros) → c: (B, T, ...) in a's and b's
    common dtype. ``method``: 'scan', 'associative' or 'blocked' (module docstring);
    ``chunk``: their block length (None: :func:`scan_chunk` for 'scan',
    :data:`BLOCKED_CHUNK` for 'blocked'; ignored by 'associative').

    Differentiable in both modes w.r.t. a, b and c0 (module docstring); reverse mode runs
    the reversed recurrence with the same method.

    >>> import jax.numpy as jnp
    >>> linear_recurrence(jnp.full((1, 3, 1), 0.5), jnp.ones((1, 3, 1)))[0, :, 0]
    Array([1.  , 1.5 , 1.75], dtype=float32)
    """
    check_method(method, chunk, "linear_recurrence")
    a, b = _prepare(a, b, c0)
    return fused_linear_recurrence(_identity, (a, b), (), c0, method=method, chunk=chunk,
                                   reverse=reverse)


# ------------------------------------------------------------------ fused coefficients

@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1, 2, 3))
def _fused(coefficients, method, chunk, reverse, xs, params, c0):
    """The recurrence on ``coefficients(xs, params)``, fused into the loop for 'scan'."""
    if method != "scan":
        a, b = coefficients(xs, params)
        return _solve(a, b, c0, method, chunk, reverse)
    return _blocked_loop(xs, c0, lambda *blocks: coefficients(blocks, params), _affine_step,
                         chunk, reverse)[1]


def _fused_jvp(coefficients, method, chunk, reverse, primals, tangents):
    """dc_t = a_t dc_{t−1} + (da_t c_{t−1} + db_t), rematerialised (module docstring)."""
    xs, params, c0 = primals
    dxs, dparams, dc0 = tangents
    c = _fused(coefficients, method, chunk, reverse, xs, params, c0)
    args, targs = (*xs, *params), (*dxs, *dparams)
    # differentiate only w.r.t. inputs with a tangent: a symbolic zero (e.g. a constant
    # mask) becomes neither a zero array to multiply nor a residual to keep
    live = tuple(i for i, t in enumerate(targs) if not isinstance(t, SymbolicZero))
    n = len(xs)

    def coefficients_of_live(full, *live_args):
        full = list(full)
        for i, v in zip(live, live_args):
            full[i] = v
        return coefficients(tuple(full[:n]), tuple(full[n:]))

    @jax.checkpoint  # reverse mode keeps args, c, c0 and recomputes the rest
    def tangent(args, c, c0, dlive, dc0):
        (a, _), (da, db) = jax.jvp(functools.partial(coefficients_of_live, args),
                                   tuple(args[i] for i in live), dlive)
        return _recurrence_solve(a, da * _shift(c, c0, reverse) + db, dc0, method, chunk,
                                 reverse)

    dc0 = None if isinstance(dc0, SymbolicZero) else dc0
    if not live:  # only the initial state has a tangent: dc_t = a_t dc_{t−1}
        a, _ = coefficients(xs, params)
        return c, _recurrence_solve(a, jnp.zeros_like(c), dc0, method, chunk, reverse)
    return c, tangent(args, c, c0, tuple(targs[i] for i in live), dc0)


_fused.defjvp(_fused_jvp, symbolic_zeros=True)


def fused_linear_recurrence(coefficients: Callable, xs: tuple, params: tuple = (), c0=None,
                            *, method: str = "scan", chunk: int | None = None,
                            reverse: bool = False):
    """``c_t = a_t ⊙ c_{t−1} + b_t`` with ``(a, b) = coefficients(xs, params)`` computed
    inside the loop.

    xs: a tuple of (B, T, ...) batch-major arrays (time is axis 1), sliced along time;
    params: a tuple of arrays used whole (e.g. a bias); ``coefficients(xs_blocks, params)``
    maps the (B, K, ...) slices of xs to two (B, K, S...) arrays (a, b), step by step (a
    step's coefficients may depend on that step's inputs only); c0: (B, S...) or None
    (zeros) → c: (B, T, S...). For 'scan' the coefficients of a block are computed inside
    the loop and never stored whole; the other methods compute them at once first.

    Differentiable in both modes w.r.t. xs, params and c0 (``jax.custom_jvp``: module
    docstring). Inputs whose tangent is a symbolic zero (``lax.stop_gradient``, constants)
    are not differentiated.
    """
    check_method(method, chunk, "fused_linear_recurrence")
    xs, params = tuple(xs), tuple(params)
    if not xs or any(x.ndim < 2 or x.shape[:2] != xs[0].shape[:2] for x in xs):
        raise ValueError(f"fused_linear_recurrence: xs must be (B, T, ...) arrays with equal "
                         f"B and T, got shapes {[x.shape for x in xs]}")
    # the state's shape and dtype: those of a, from one step's coefficients
    a = jax.eval_shape(lambda *x: coefficients(tuple(v[:, :1] for v in x), params), *xs)[0]
    shape = a.shape[:1] + a.shape[2:]
    c0 = jnp.zeros(shape, a.dtype) if c0 is None else jnp.asarray(c0).astype(a.dtype)
    if c0.shape != shape:
        raise ValueError(f"fused_linear_recurrence: c0 must be {shape}, got {c0.shape}")
    return _fused(coefficients, method, chunk, reverse, xs, params, c0)
