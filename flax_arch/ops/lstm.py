"""The LSTM recurrence with a hand-written JVP: cheap steps, the weight gradient as one matmul.

:func:`lstm_recurrence` runs torch's LSTM cell (gate order i, f, g, o) over precomputed
input projections. It is what :class:`flax_arch.nn.LSTM` (without ``proj_size``) calls; the
input projection x W_ihᵀ + b_ih + b_hh, one matmul over all steps, is the caller's.

Why it is written out (the recurrence alone, batch 8, 256 units, 500 steps, float32, on
the 2-core Xeon VM; docs/benchmarks.md, "LSTM"):

* **One tanh per step for every gate.** XLA:CPU computes ``logistic`` as an exact
  1 / (1 + exp(−x)) and ``tanh`` as a short rational approximation; σ(v) = (1 + tanh(v/2))
  / 2 is the same function, so a step evaluates one tanh over all 4H gate values (scaled
  by ½ for i, f, o). Forward: 43 → 25–28 ms, against 15 ms for the steps' matmuls alone.
* **A JVP rule instead of differentiating the scan.** JAX's transpose of a scan whose body
  multiplies by the loop-invariant W_hh accumulates W_hh's gradient inside the backward
  loop: an (H, 4H) outer product added to an (H, 4H) carry at every step. Here the tangent
  of the weight enters as h_{t−1} dW for all steps at once, one (T·N, H) @ (H, 4H)
  matmul outside the tangent recurrence, so its transpose, the weight gradient, is one
  matmul over the saved states too.
* **A linear tangent step with precomputed, gate-wide coefficients.** The primal scan
  saves what the tangent step multiplies by (two (4, H) coefficient blocks, σ(f) and
  ∂h/∂c·σ(f)), so partial evaluation finds nothing to hoist into a third loop, and the
  transposed step is one broadcast-multiply per gate block instead of four slices whose
  transposes are pads. Gradient of the recurrence: 199 → 95 ms.

Forward and reverse mode (``jax.jvp``, ``jax.grad``) both work, and higher orders, as the
rule is itself differentiable.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["lstm_recurrence"]


def _gate_scale(a, hidden: int, sigma: float):
    """a (…, 4H) times ``sigma`` in the σ gates' blocks (i, f, o) and 1 in the g block."""
    s = jnp.asarray(sigma, a.dtype)
    return a * jnp.concatenate([jnp.full((2 * hidden,), s, a.dtype),
                                jnp.ones((hidden,), a.dtype), jnp.full((hidden,), s, a.dtype)])


def _gate_tanh(a, hidden: int):
    """Pre-activations a (…, 4H) → t = tanh(a ⊙ (½, ½, 1, ½)) per gate block (i, f, g, o);
    then σ(i) = ½ + ½·t_i (σ(v) = ½ + ½·tanh(v/2)), tanh(g) = t_g."""
    return jnp.tanh(_gate_scale(a, hidden, 0.5))


def _split(t, hidden: int):
    """t (…, 4H) → the four gate blocks (i, f, g, o)."""
    return tuple(t[..., k * hidden:(k + 1) * hidden] for k in range(4))


def _run(xg, w, h0, c0, mask, unroll: int, keep: bool):
    """The primal scan. ``keep`` also returns per step what the JVP needs and cannot get
    from the outputs: the gate tanh t (T, D, N, 4H), the carried cell state c_t and
    tanh(c_t) before masking, and (with a mask) the carried h_t."""
    hidden = h0.shape[-1]
    half, zero = jnp.asarray(0.5, h0.dtype), jnp.zeros((), h0.dtype)

    def step(carry, inp):
        h, c = carry
        a_x, m = inp if mask is not None else (inp, None)
        t = _gate_tanh(a_x + jnp.einsum("dnh,dhg->dng", h, w), hidden)  # (D, N, 4H)
        ti, tf, g, to = _split(t, hidden)
        c2 = (half + half * tf) * c + (half + half * ti) * g
        tc = jnp.tanh(c2)
        h2 = (half + half * to) * tc
        y = h2
        if m is not None:  # past a sequence's end: keep the state, emit zeros
            h2, c2, y = jnp.where(m, h2, h), jnp.where(m, c2, c), jnp.where(m, h2, zero)
        res = None
        if keep:
            # the tangent step's coefficients, computed here so that the tangent scan is
            # linear with no work of its own (JAX's partial evaluation would hoist any into
            # a third loop), and 4H-wide so that its transpose has no per-gate pads:
            # with da the pre-activation tangent, (D, N, 4, H) by gate,
            #   dc_t = Σ_gates A ⊙ da + σ(f)·dc_{t−1},
            #   dh_t = Σ_gates B ⊙ da + σ(o)·tanh'(c_t)·σ(f)·dc_{t−1}
            # A = (tanh g·σ'(i), c_{t−1}·σ'(f), σ(i)·tanh'(g), 0),
            # B = σ(o)·tanh'(c_t)·A + (0, 0, 0, tanh(c_t)·σ'(o)),
            # σ'(v) = ¼(1 − tanh²(v/2)), tanh' = 1 − tanh²
            one = jnp.ones((), t.dtype)
            gp = _gate_scale(one - t * t, hidden, 0.25)   # gate derivatives (D, N, 4H)
            gi, gf, gg, go = _split(gp, hidden)
            oc = (half + half * to) * (one - tc * tc)       # ∂h_t/∂c_t
            a = jnp.stack([g * gi, c * gf, (half + half * ti) * gg, jnp.zeros_like(g)], -2)
            b = oc[..., None, :] * a + jnp.stack([jnp.zeros_like(g)] * 3 + [tc * go], -2)
            f = half + half * tf
            res = (a, b, f, oc * f)                           # (D, N, 4, H) ×2, (D, N, H) ×2
            if m is not None:
                res = res + (h2,)
        return (h2, c2), (y, res)

    xs = xg if mask is None else (xg, mask)
    (h, c), (ys, res) = lax.scan(step, (h0, c0), xs, unroll=unroll)
    return ys, h, c, res


@functools.partial(jax.custom_jvp, nondiff_argnums=(5,))
def lstm_recurrence(xg, w, h0, c0, mask=None, unroll: int = 1):
    """torch's LSTM cell over T steps, both directions of a layer at once.

    * ``xg`` (T, D, N, 4H): input projections x_t W_ihᵀ + b_ih + b_hh per step and direction
      (a reverse direction's already time-flipped), gates in torch's order i, f, g, o;
    * ``w`` (D, H, 4H): W_hhᵀ per direction;
    * ``h0``, ``c0`` (D, N, H): initial states;
    * ``mask`` (T, D, N, 1) bool or ``None``: where False, the step keeps its state and
      emits zeros (``lengths``; see :mod:`flax_arch.nn.recurrent`);
    * ``unroll``: passed to ``jax.lax.scan``.

    Returns ``(ys, h_T, c_T)``: ys (T, D, N, H) the emitted h_t, and the final states
    (D, N, H).

    >>> import jax.numpy as jnp
    >>> ys, h, c = lstm_recurrence(jnp.zeros((5, 1, 2, 12)), jnp.zeros((1, 3, 12)),
    ...                            jnp.zeros((1, 2, 3)), jnp.zeros((1, 2, 3)))
    >>> ys.shape, h.shape
    ((5, 1, 2, 3), (1, 2, 3))
    """
    ys, h, c, _ = _run(xg, w, h0, c0, mask, unroll, keep=False)
    return ys, h, c


@lstm_recurrence.defjvp
def _lstm_recurrence_jvp(unroll, primals, tangents):
    xg, w, h0, c0, mask = primals
    dxg, dw, dh0, dc0, _ = tangents
    hidden = h0.shape[-1]
    ys, h, c, res = _run(xg, w, h0, c0, mask, unroll, keep=True)
    coefs = res[:4]
    hs = ys if mask is None else res[4]                     # carried h_t (T, D, N, H)
    hprev = jnp.concatenate([h0[None], hs[:-1]], axis=0)     # state entering each step
    # the weight's tangent for every step at once: (T, D, N, H) @ (D, H, 4H) — transposed,
    # the weight gradient is this one matmul over the saved states
    dxg = dxg + jnp.einsum("tdnh,dhg->tdng", hprev, dw)
    zero = jnp.zeros((), h0.dtype)

    def step(carry, inp):
        dh, dc = carry
        (da_x, a, b, f, ocf), m = (inp, None) if mask is None else inp
        da = da_x + jnp.einsum("dnh,dhg->dng", dh, w)       # (D, N, 4H)
        da = da.reshape(*da.shape[:-1], 4, hidden)           # (D, N, 4, H): gate blocks
        dc2 = jnp.sum(a * da, axis=-2) + f * dc
        dh2 = jnp.sum(b * da, axis=-2) + ocf * dc
        dy = dh2
        if m is not None:
            dh2, dc2, dy = jnp.where(m, dh2, dh), jnp.where(m, dc2, dc), jnp.where(m, dh2, zero)
        return (dh2, dc2), dy

    xs = (dxg, *coefs)
    (dh, dc), dys = lax.scan(step, (dh0, dc0), xs if mask is None else (xs, mask),
                             unroll=unroll)
    return (ys, h, c), (dys, dh, dc)
