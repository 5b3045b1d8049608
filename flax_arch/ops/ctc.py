"""The CTC forward–backward recursions in log space, with torch's CPU gradient.

Connectionist Temporal Classification (Graves, Fernández, Gomez, Schmidhuber, ICML 2006,
§4.1): for each sequence, the target l (length S) is extended with blanks to
l' = (blank, l_1, blank, l_2, …, l_S, blank), length 2S+1. With y_t = log_probs[t],

* alpha: ``α_0(0) = y_0(blank)``, ``α_0(1) = y_0(l'_1)`` (if S > 0), ``α_0(s) = −∞`` else;
  ``α_t(s) = LSE(α_{t−1}(s), α_{t−1}(s−1), [α_{t−1}(s−2) if l'_s ≠ l'_{s−2}]) + y_t(l'_s)``;
* the loss: ``−LSE(α_{L−1}(2S), α_{L−1}(2S−1))`` (``−α_{L−1}(0)`` when S = 0; 0 when
  L = S = 0, ∞ when L = 0 < S), L the sequence's input length;
* beta, the same backwards from ``β_{L−1}(2S) = y_{L−1}(blank)``,
  ``β_{L−1}(2S−1) = y_{L−1}(l'_{2S−1})``.

Every recursion is a ``jax.lax.scan`` over time, vectorised over the batch and the 2S+1
label positions; sequences of different input and target lengths share one scan through
masks (positions beyond a sequence's 2S, times at or beyond its L). Arrays are time-major
(T, N, ·), as torch's ``log_probs``.

The three-term log-sum-exp is written exactly as aten's CPU kernel (LossCTC.cpp) writes it:
``log(e^(a−m) + e^(b−m) + e^(c−m)) + m`` with m the maximum, replaced by 0 when all three
are −∞; so float64 results agree with torch to the last few bits.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

__all__ = ["ctc_neg_log_likelihood", "extend_targets"]

_NEG_INF = -jnp.inf


def _exp(x):
    """``exp``; float32 is computed in float64 and rounded when x64 is enabled.

    Why: torch's kernel calls the C library's ``expf`` / ``logf``, which are correctly
    rounded in all but rare cases; XLA's float32 approximations differ by an ulp here and
    there. In the recursions each such difference can flip a rounding of a sum near −nll
    (|nll| ≈ 100: ulp ≈ 1e-5), and the gradient exponentiates those sums; with correctly
    rounded exp/log the float32 gradient matches torch to ~1e-7 instead of ~1e-5. Without
    x64 (JAX's default) float64 is unavailable and XLA's float32 functions are used.
    """
    if x.dtype == jnp.float32 and jax.config.jax_enable_x64:
        return jnp.exp(x.astype(jnp.float64)).astype(x.dtype)
    return jnp.exp(x)


def _log(x):
    """``log``, float32 as :func:`_exp` explains."""
    if x.dtype == jnp.float32 and jax.config.jax_enable_x64:
        return jnp.log(x.astype(jnp.float64)).astype(x.dtype)
    return jnp.log(x)


def _lse(*terms):
    """log Σ exp(terms), aten's way: the maximum subtracted, 0 in its place when it is −∞
    (so that −∞ − −∞ never happens)."""
    m = functools.reduce(jnp.maximum, terms)
    m = jnp.where(m == _NEG_INF, jnp.zeros_like(m), m)
    total = functools.reduce(lambda a, b: a + b, [_exp(x - m) for x in terms])
    return _log(total) + m


def _shift(x, k: int, fill):
    """``x`` moved ``k`` positions along the last axis: ``out[..., s] = x[..., s−k]``
    (k > 0) or ``x[..., s+|k|]`` (k < 0), ``fill`` where that falls outside."""
    if abs(k) >= x.shape[-1]:
        return jnp.full(x.shape, fill, x.dtype)
    pad = jnp.full(x.shape[:-1] + (abs(k),), fill, x.dtype)
    if k > 0:
        return jnp.concatenate([pad, x[..., :-k]], axis=-1)
    return jnp.concatenate([x[..., -k:], pad], axis=-1)


def extend_targets(targets, blank: int):
    """The extended label sequences l' = (blank, l_1, blank, …, l_S, blank) of padded
    ``targets`` (N, S): an (N, 2S+1) integer array."""
    n, s = targets.shape
    ext = jnp.full((n, 2 * s + 1), blank, dtype=targets.dtype)
    return ext.at[:, 1::2].set(targets)


def _setup(log_probs, ext, input_lengths, target_lengths):
    """Shared by both passes: y_t(l'_s) as (T, N, S'), the positions each sequence uses,
    and where the skip transition s−2 → s is allowed."""
    num_classes = log_probs.shape[-1]
    sp = ext.shape[1]
    idx = jnp.clip(ext, 0, num_classes - 1)  # padding beyond a target may hold anything
    idx = jnp.broadcast_to(idx[None], (log_probs.shape[0],) + idx.shape)
    lp_ext = jnp.take_along_axis(log_probs, idx, axis=2)
    pos = jnp.arange(sp)
    last = 2 * target_lengths  # (N,) the last used position, 2S
    valid = pos[None, :] <= last[:, None]  # (N, S')
    skip = jnp.concatenate([jnp.zeros_like(ext[:, :2], dtype=bool),
                            ext[:, 2:] != ext[:, :-2]], axis=1)  # l'_s ≠ l'_{s−2}, s ≥ 2
    return lp_ext, pos, last, valid, skip


def _alphas(lp_ext, target_lengths, valid, skip):
    """log α for every t: (T, N, S'); −∞ at positions beyond each sequence's 2S. Rows at
    or beyond a sequence's input length are computed but never used."""
    sp = lp_ext.shape[-1]
    pos = jnp.arange(sp)
    starts = (pos[None, :] == 0) | ((pos[None, :] == 1) & (target_lengths[:, None] > 0))
    first = jnp.where(starts, lp_ext[0], _NEG_INF)

    def step(prev, y):
        a2 = _shift(prev, 1, _NEG_INF)
        a3 = jnp.where(skip, _shift(prev, 2, _NEG_INF), _NEG_INF)
        new = _lse(prev, a2, a3) + y
        new = jnp.where(valid, new, _NEG_INF)
        return new, new

    _, rest = jax.lax.scan(step, first, lp_ext[1:])
    return jnp.concatenate([first[None], rest], axis=0)


def _nll_from_alphas(alphas, input_lengths, target_lengths):
    """−log p(l | x) per sequence, (N,), read off α at each sequence's last time step."""
    n = alphas.shape[1]
    rows = jnp.arange(n)
    t_last = jnp.clip(input_lengths - 1, 0, alphas.shape[0] - 1)
    a_last = alphas[t_last, rows]  # (N, S')
    s2 = 2 * target_lengths
    l1 = a_last[rows, s2]
    l2 = a_last[rows, jnp.maximum(s2 - 1, 0)]
    both = _lse(l1, l2)
    ll = jnp.where(target_lengths == 0, l1, both)  # S = 0: only the single blank state
    zero = jnp.zeros_like(ll)
    # L = 0: no frame, likelihood 1 for an empty target and 0 otherwise (torch: ±0 / ∞)
    ll = jnp.where(input_lengths == 0, jnp.where(target_lengths == 0, zero, _NEG_INF), ll)
    return -ll


def _forward(log_probs, ext, input_lengths, target_lengths):
    if log_probs.shape[0] == 0:  # T = 0: every input length is 0
        nll = -jnp.where(target_lengths == 0, 0.0, _NEG_INF).astype(log_probs.dtype)
        return nll, None
    lp_ext, _, _, valid, skip = _setup(log_probs, ext, input_lengths, target_lengths)
    alphas = _alphas(lp_ext, target_lengths, valid, skip)
    return _nll_from_alphas(alphas, input_lengths, target_lengths), alphas


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def ctc_neg_log_likelihood(log_probs, ext, input_lengths, target_lengths, blank: int,
                           zero_infinity: bool):
    """Per-sequence CTC loss ``−log p(l | x)``, (N,), before any reduction or zeroing.

    ``log_probs`` (T, N, C) time-major; ``ext`` (N, 2S+1) the extended targets
    (:func:`extend_targets`); ``input_lengths``, ``target_lengths`` (N,) integer arrays,
    already checked (0 ≤ L ≤ T, 0 ≤ S ≤ ext's S). ``blank`` and ``zero_infinity`` only
    shape the gradient (see :func:`_bwd`).
    """
    del blank, zero_infinity
    return _forward(log_probs, ext, input_lengths, target_lengths)[0]


def _fwd(log_probs, ext, input_lengths, target_lengths, blank, zero_infinity):
    nll, alphas = _forward(log_probs, ext, input_lengths, target_lengths)
    return nll, (log_probs, ext, input_lengths, target_lengths, nll, alphas)


def _betas(lp_ext, input_lengths, target_lengths, pos, last, valid, skip):
    """log β for every t: (T, N, S'); −∞ beyond each sequence's 2S and at or after its
    input length L (from t = L−1, where β starts, down to 0)."""
    t_total = lp_ext.shape[0]
    s_last_target = last - 1  # 2S − 1
    # the skip s+2 → s is allowed where l'_{s+2} ≠ l'_s (and s+2 ≤ 2S: valid handles that)
    skip_up = _shift(skip, -2, False)
    start_mask = (pos[None, :] == last[:, None]) | (
        (pos[None, :] == s_last_target[:, None]) & (target_lengths[:, None] > 0))

    def step(nxt, inp):
        t, y = inp
        b2 = jnp.where(pos[None, :] < last[:, None], _shift(nxt, -1, _NEG_INF), _NEG_INF)
        b3 = jnp.where(skip_up & (pos[None, :] < last[:, None] - 1),
                       _shift(nxt, -2, _NEG_INF), _NEG_INF)
        rec = _lse(nxt, b2, b3) + y
        start = jnp.where(start_mask, y, _NEG_INF)
        tl = t[None, None]
        cur = jnp.where(tl == input_lengths[:, None] - 1, start,
                        jnp.where(tl < input_lengths[:, None] - 1, rec, _NEG_INF))
        cur = jnp.where(valid, cur, _NEG_INF)
        return cur, cur

    init = jnp.full(lp_ext.shape[1:], _NEG_INF, lp_ext.dtype)
    _, betas = jax.lax.scan(step, init, (jnp.arange(t_total), lp_ext), reverse=True)
    return betas


def _collect(ab, ext, num_classes: int):
    """``lcab[t, n, c] = log Σ_{s: l'_s = c} exp(ab[t, n, s])``, (T, N, C), −∞ where no s.

    Accumulated as torch does, one position at a time from s = S'−1 down to 0 with a
    two-term log-add (the first term assigned): a ``lax.scan`` over s, vectorised over t
    and n. A one-shot log-sum-exp is more accurate, but in float32 these sums sit near
    −nll (≈ −100 and more), where each of torch's roundings is ~1e-5 absolute; the
    gradient exponentiates them, so only the same sequence of roundings matches torch's
    float32 gradient to 1e-5 (positions with ``ab = −∞`` leave the sum bit-identical).
    """
    t_total, n, _ = ab.shape
    cls = jnp.clip(ext, 0, num_classes - 1)  # (N, S')
    tb = jnp.arange(t_total)[:, None]
    nb = jnp.arange(n)[None, :]
    init = jnp.full((t_total, n, num_classes), _NEG_INF, ab.dtype)

    def step(acc, inp):
        lab, c = inp  # (T, N), (N,)
        cur = acc[tb, nb, c[None, :]]
        m = jnp.maximum(cur, lab)
        m_safe = jnp.where(m == _NEG_INF, jnp.zeros_like(m), m)
        both = _log(_exp(cur - m_safe) + _exp(lab - m_safe)) + m_safe
        new = jnp.where(cur == _NEG_INF, lab, both)
        return acc.at[tb, nb, c[None, :]].set(new), None

    acc, _ = jax.lax.scan(step, init, (jnp.moveaxis(ab, 2, 0), cls.T), reverse=True)
    return acc


def _bwd(blank, zero_infinity, res, g):
    """torch's CPU ``_ctc_loss_backward``, which is NOT the derivative of the forward.

    With ``occ_t(c) = exp(LSE_{s: l'_s = c}(α_t(s) + β_t(s)) + nll − y_t(c))`` the
    posterior occupancy of class c at time t (Graves eq. 16), the true derivative of
    ``nll`` w.r.t. ``log_probs[t, n, c]`` is ``−occ_t(c)``. torch returns
    ``(exp(y_t(c)) − occ_t(c)) · g`` instead: the gradient with respect to the *logits*
    z when ``log_probs = log_softmax(z)`` (Σ_c occ_t(c) = 1), which is what a model that
    feeds CTC through a log-softmax receives either way (log-softmax's backward removes
    the added ``exp(y)·Σ`` term again, since Σ_c (exp(y_t(c)) − occ_t(c)) = 0). Matched
    here for parity: a ``jax.grad`` w.r.t. ``log_probs`` itself gives torch's numbers,
    not the textbook derivative. Also as torch: rows t ≥ L are 0; a sequence whose loss
    is +∞ gets an all-zero gradient with ``zero_infinity``, NaN rows (t < L) without it.
    """
    log_probs, ext, input_lengths, target_lengths, nll, alphas = res
    if alphas is None:  # T = 0
        return jnp.zeros_like(log_probs), None, None, None
    t_total, n, num_classes = log_probs.shape
    lp_ext, pos, last, valid, skip = _setup(log_probs, ext, input_lengths, target_lengths)
    betas = _betas(lp_ext, input_lengths, target_lengths, pos, last, valid, skip)
    ab = alphas + betas  # (T, N, S'); −∞ wherever β is
    t_idx = jnp.arange(t_total)[:, None, None]
    # torch's quirk at t = L−1: it *assigns* the blank's entry from s = 2S and then the
    # entry of l'_{2S−1} from s = 2S−1, so when a target's last label is the blank itself
    # the s = 2S term is overwritten, not added (only targets containing the blank differ)
    s_last_lab = jnp.take_along_axis(ext, jnp.maximum(last - 1, 0)[:, None], axis=1)[:, 0]
    overwritten = ((t_idx == (input_lengths - 1)[None, :, None])
                   & (pos[None, None, :] == last[None, :, None])
                   & ((target_lengths > 0) & (s_last_lab == blank))[None, :, None])
    ab = jnp.where(overwritten, _NEG_INF, ab)
    lcab = _collect(ab, ext, num_classes)  # log Σ_{s: l'_s = c} α_t(s) β_t(s); −∞ for none
    occupancy = _exp(lcab + nll[None, :, None] - log_probs)
    grad = (_exp(log_probs) - occupancy) * g[None, :, None]  # torch's, see the docstring
    keep = t_idx < input_lengths[None, :, None]
    if zero_infinity:
        keep = keep & (nll != jnp.inf)[None, :, None]
    grad = jnp.where(keep, grad, jnp.zeros_like(grad))
    return grad, None, None, None


ctc_neg_log_likelihood.defvjp(_fwd, _bwd)
