"""Well-posed float32 comparisons: keep every unit out of rounding reach of a kink.

A piecewise-linear activation (ReLU, LeakyReLU, Hardtanh, ReLU6) has a kink: its slope
jumps where its input crosses a point ``k``. Suppose a unit's exact (float64) pre-activation
lies within float32 rounding of ``k``. Then the side it lands on in float32 depends on each
framework's summation order. Both answers are right to working precision, but the gradient
through that unit takes one branch's slope or the other's: an O(1) difference spread over
the unit's receptive field. A max-pool window whose two largest entries are within rounding
of each other has the same problem: the gradient goes to one entry or the other. Measured on
the paper-size U-Net (61×75 input): about ten ReLU units per random draw lie within 4·δ of
0. Here δ is the largest float32 rounding error of that layer's input; it is 2–8·10⁻⁷ and
the same order in torch and in XLA. One of those units flipped between torch and Flax, and
its input gradient differed by 2.8·10⁻². Redrawing the input until no unit is close does not
converge at that size.

:func:`clear_kinks` makes the reference well-posed instead, deterministically. One float64
forward pass visits every kink module in execution order. Where a channel has units within
:data:`CLEAR_MARGIN`·δ of a kink, it shifts that channel's bias by the smallest multiple of
3·margin that moves every unit of the channel out of reach. The bias shifted belongs to the
module whose output feeds the kink module directly (a convolution, a linear layer or a
BatchNorm). That is about 10⁻⁵ of the layer's scale: the test problem is the same, only
now it has one well-defined answer in float32. A kink fed by anything else (a residual
sum) gets the last biased module's shift instead, and another pass checks the result.
:func:`well_posedness` reports what is left, and max-pool near-ties, which a bias shift
cannot separate. The registry redraws a case's seed for those
(documented at the case).

The weights both frameworks load are the shifted ones, so the comparison itself is
unchanged: every output, gradient and buffer entry, at the full tolerance.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable, Sequence

__all__ = ["clear_kinks", "well_posedness", "Wellposedness", "kink_flips", "CLEAR_MARGIN",
           "CHECK_MARGIN"]

#: clear_kinks moves units within CLEAR_MARGIN·δ of a kink (δ measured in torch float32;
#: XLA's rounding was measured within 3.5× of torch's on the U-Net)
CLEAR_MARGIN = 16.0
#: well_posedness flags units (and max-pool gaps) within CHECK_MARGIN·δ
CHECK_MARGIN = 4.0


def _kinks(mod) -> list[float] | None:
    """The kink points of a torch activation module, or None if it has none."""
    import torch.nn as nn
    if isinstance(mod, (nn.ReLU, nn.LeakyReLU)):
        return [0.0]
    if isinstance(mod, nn.Hardtanh):  # ReLU6 is a Hardtanh(0, 6)
        return [float(mod.min_val), float(mod.max_val)]
    return None


def _has_kinks(module, pools: bool = False) -> bool:
    """Whether ``module`` holds a kink module (or, with ``pools``, a max-pool)."""
    return any(_kinks(m) is not None or (pools and _is_pool(m)) for m in module.modules())


def _is_pool(mod) -> bool:
    import torch.nn as nn
    return isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d))


def _run(module, inputs, call, train: bool, pre_hook=None, post_hook=None):
    """One no-grad forward pass with hooks on every module (not the root); the module's
    buffers (running statistics) are restored afterwards."""
    import torch
    buffers = {k: v.clone() for k, v in module.named_buffers()}
    rng = torch.random.get_rng_state()  # a train-mode pass must not consume the case's RNG
    was = module.training
    module.train(train)
    hooks = []
    for name, mod in module.named_modules():
        if not name:
            continue
        if pre_hook:
            hooks.append(mod.register_forward_pre_hook(
                lambda m, args, _n=name: pre_hook(_n, m, args)))
        if post_hook:
            hooks.append(mod.register_forward_hook(
                lambda m, args, out, _n=name: post_hook(_n, m, args, out)))
    try:
        with torch.no_grad():
            call(module, *inputs)
    finally:
        for h in hooks:
            h.remove()
        module.train(was)
        torch.random.set_rng_state(rng)
        with torch.no_grad():
            for k, v in module.named_buffers():
                v.copy_(buffers[k])


def _record(module, inputs, call, train) -> dict[tuple[str, int], Any]:
    """``{(module path, call index): float64 copy of its input}`` for every kink module
    and max-pool."""
    rec: dict[tuple[str, int], Any] = {}
    counts: dict[str, int] = {}

    def pre(name, mod, args):
        if _kinks(mod) is not None or _is_pool(mod):
            i = counts.get(name, 0)
            counts[name] = i + 1
            rec[(name, i)] = args[0].detach().double().clone()
        return None  # a pre-hook that returns a value would replace the input

    _run(module, inputs, call, train, pre_hook=pre)
    return rec


def _deltas(module, inputs64, call, train, dtype) -> tuple[dict, dict]:
    """(float64 inputs of the kink/pool calls, the largest rounding error of each in
    ``dtype``), from the same weights and inputs."""
    import torch
    low = copy.deepcopy(module).to(getattr(torch, dtype))
    inputs_low = [x.to(getattr(torch, dtype)) if x.is_floating_point() else x
                  for x in inputs64]
    rec64 = _record(module, inputs64, call, train)
    rec_low = _record(low, inputs_low, call, train)
    deltas = {key: float((x - rec_low[key]).abs().max()) if key in rec_low and x.numel()
              else 0.0 for key, x in rec64.items()}
    return rec64, deltas


def _float64_inputs(inputs: Sequence) -> list:
    """The inputs as torch tensors, floating ones in float64."""
    import torch
    xs = [torch.as_tensor(x) for x in inputs]
    return [x.double() if x.is_floating_point() else x for x in xs]


def _channel_axis(mod, out) -> int:
    import torch.nn as nn
    return out.ndim - 1 if isinstance(mod, nn.Linear) else 1


def _shift_for(x, axis: int, kinks: Sequence[float], margin: float):
    """Per-channel shifts (0 where clear) moving every unit at least ``margin`` from the
    kinks: the smallest of ±3·margin, ±6·margin, … that works."""
    import torch
    moved = x.movedim(axis, 0).reshape(x.shape[axis], -1)
    shifts = torch.zeros(x.shape[axis], dtype=x.dtype, device=x.device)

    def clear(v):
        return all(bool(((v - k).abs() > margin).all()) for k in kinks)

    for c in range(moved.shape[0]):
        if clear(moved[c]):
            continue
        for step in range(1, 64):  # +3m, -3m, +6m, -6m, …
            s = 3 * margin * ((step + 1) // 2) * (1 if step % 2 else -1)
            if clear(moved[c] + s):
                shifts[c] = s
                break
    return shifts


def _fed_by(x, feeder: dict) -> bool:
    """``x`` is the biased module's last output, or a view of it (a slice such as SEGAN's
    ``h[:, :, :-1]``) with the same channel axis, so shifting that bias shifts ``x``."""
    out = feeder.get("out")
    if out is None:
        return False
    if x is out:
        return True
    axis = _channel_axis(feeder["mod"], out)
    return (x._base is out or x._base is not None and x._base is out._base) \
        and x.ndim == out.ndim and x.shape[axis] == out.shape[axis]


def clear_kinks(module, inputs: Sequence, *, call: Callable | None = None,
                train: bool = False, dtype: str = "float32",
                margin: float = CLEAR_MARGIN, max_passes: int = 4) -> list[str]:
    """Shift biases of ``module`` (a torch module, in place) so that no unit feeding a kink
    is within ``margin``·δ of it on ``inputs`` (numpy or torch, torch's layout); returns
    one note per shifted channel group. See the module docstring.

    A kink fed directly by a biased module (or a view of its output) is cleared within the
    pass. A kink fed through something else (a residual sum) gets the last biased module's
    shift instead, which moves the units that module reaches; another pass then checks
    again, up to ``max_passes``. What is left is reported by :func:`well_posedness`.

    The passes run in float64 on a copy of the inputs, in the given mode (``train``), and
    leave the module's buffers as they were. Parameters on the meta device are left alone.
    """
    import torch
    call = call or (lambda m, *xs: m(*xs))
    if any(p.is_meta for p in module.parameters()) or not _has_kinks(module):
        return []
    dtype0 = next((p.dtype for p in module.parameters()), torch.float32)
    module.double()
    xs = _float64_inputs(inputs)
    _, deltas = _deltas(module, xs, call, train, dtype)
    notes: list[str] = []
    for _ in range(max_passes):
        indirect = _clearing_pass(module, xs, call, train, deltas, margin, notes)
        if not indirect:
            break
    module.to(dtype0)
    return notes


def _clearing_pass(module, xs, call, train, deltas, margin, notes) -> int:
    """One float64 pass of :func:`clear_kinks`; returns how many indirect shifts it made
    (their effect is seen only by the next pass)."""
    import torch
    feeder: dict[str, Any] = {}  # the last output of a module with a bias, and the module
    counts: dict[str, int] = {}
    indirect = 0

    def post(name, mod, args, out):
        bias = getattr(mod, "bias", None)
        if isinstance(bias, torch.nn.Parameter) and torch.is_tensor(out):
            feeder.update(out=out, mod=mod, name=name)
        return None

    def pre(name, mod, args):
        nonlocal indirect
        kinks = _kinks(mod)
        if kinks is None:
            return None
        i = counts.get(name, 0)
        counts[name] = i + 1
        x, delta = args[0], deltas.get((name, i), 0.0)
        if delta == 0.0 or "out" not in feeder:
            return None
        direct = _fed_by(x, feeder)
        axis = _channel_axis(feeder["mod"], feeder["out"])
        if not direct and x.shape[axis:axis + 1] != feeder["out"].shape[axis:axis + 1]:
            return None  # channels do not line up: reported by well_posedness
        shifts = _shift_for(x, axis, kinks, margin * delta)
        if not shifts.any():
            return None
        feeder["mod"].bias.add_(shifts)
        notes.append(f"{feeder['name']}.bias: {int((shifts != 0).sum())} channel(s) shifted "
                     f"by ≤ {float(shifts.abs().max()):.1e} (kinks of {name}"
                     f"{'' if direct else ', through a residual path'})")
        if not direct:
            indirect += 1
            return None
        view = [1] * x.ndim
        view[axis] = -1
        return (x + shifts.view(view), *args[1:])

    _run(module, xs, call, train, pre_hook=pre, post_hook=post)
    return indirect


@dataclasses.dataclass
class Wellposedness:
    """Units within ``CHECK_MARGIN``·δ of a kink, and max-pool windows whose two largest
    (positive) entries are within ``CHECK_MARGIN``·δ, per module call."""

    near_kinks: dict[str, int]
    near_ties: dict[str, int]

    def __bool__(self) -> bool:
        return not self.near_kinks and not self.near_ties

    def __str__(self) -> str:
        if self:
            return "well-posed"
        parts = [f"{n} unit(s) near a kink in {k}" for k, n in self.near_kinks.items()]
        parts += [f"{n} near-tied max-pool window(s) in {k}" for k, n in self.near_ties.items()]
        return "; ".join(parts)


def _pool_windows(mod, x):
    """(N, C, windows, window size) of a MaxPool1d/2d input, or None when the pool's
    options (dilation, ceil_mode) are not covered."""
    import torch
    import torch.nn.functional as F
    if mod.ceil_mode or mod.dilation not in (1, (1,), (1, 1)):
        return None
    d = x.ndim - 2
    k, s, p = (v if isinstance(v, tuple) else (v,) * d
               for v in (mod.kernel_size, mod.stride or mod.kernel_size, mod.padding))
    pad = [q for pp in reversed(p) for q in (pp, pp)]
    x = F.pad(x, pad, value=-torch.inf) if any(p) else x
    for i in range(d):
        x = x.unfold(2 + i, k[i], s[i])
    return x.reshape(*x.shape[:2], -1, int(torch.tensor(k).prod()))


def well_posedness(module, inputs: Sequence, *, call: Callable | None = None,
                   train: bool = False, dtype: str = "float32",
                   margin: float = CHECK_MARGIN) -> Wellposedness:
    """Check a torch reference on ``inputs`` for ``dtype``: how many units sit within
    ``margin``·δ of a kink, and how many max-pool windows have their two largest entries
    (the largest positive) within ``margin``·δ of each other."""
    call = call or (lambda m, *xs: m(*xs))
    if not _has_kinks(module, pools=True):
        return Wellposedness({}, {})
    m64 = copy.deepcopy(module).double()
    xs = _float64_inputs(inputs)
    rec64, deltas = _deltas(m64, xs, call, train, dtype)
    kinks_at, ties_at = {}, {}
    calls: dict[str, int] = {}
    for (name, i) in rec64:
        calls[name] = max(calls.get(name, 0), i + 1)
    for (name, i), x in rec64.items():
        mod, m = m64.get_submodule(name), margin * deltas[(name, i)]
        label = name if calls[name] == 1 else f"{name}#{i}"
        if _kinks(mod) is not None:
            n = sum(int(((x - k).abs() <= m).sum()) for k in _kinks(mod))
            if n:
                kinks_at[label] = n
        elif _is_pool(mod):
            w = _pool_windows(mod, x)
            if w is None or w.shape[-1] < 2:
                continue
            top2 = w.topk(2, dim=-1).values
            # ties at exactly 0 (a ReLU's zeros) route a gradient that the ReLU zeroes
            n = int((((top2[..., 0] - top2[..., 1]) <= m) & (top2[..., 0] != 0)).sum())
            if n:
                ties_at[label] = n
    return Wellposedness(kinks_at, ties_at)


def kink_flips(module, x64, a, b, delta: float):
    """Where two working-precision evaluations ``a`` and ``b`` of the input of ``module``
    (a torch kink module or max-pool; torch's layout, any float dtype) take different
    branches: a unit on opposite sides of a kink (``x > k`` in one, not in the other), or a
    max-pool window whose largest entry is a different one. Returns, for every such unit or
    window, its distance to the kink in the float64 reference ``x64`` (for a window, the gap
    between its two largest entries) in units of ``delta``, the working precision's
    rounding of that input; a float64 tensor, empty if nothing flipped or the module's
    options are not covered. Small values are rounding (a kink flip), large ones are not.
    """
    import torch
    x64, a, b = (torch.as_tensor(v).detach().double().cpu() for v in (x64, a, b))
    delta = delta if delta > 0 else float("inf")
    kinks = _kinks(module)
    if kinks is not None:
        flipped = torch.zeros(x64.shape, dtype=torch.bool)
        dist = torch.full(x64.shape, torch.inf, dtype=torch.float64)
        for k in kinks:
            flipped |= (a > k) != (b > k)
            dist = torch.minimum(dist, (x64 - k).abs())
        return dist[flipped] / delta
    if _is_pool(module):
        w64, wa, wb = (_pool_windows(module, v) for v in (x64, a, b))
        if w64 is None or w64.shape[-1] < 2:
            return torch.zeros(0, dtype=torch.float64)
        top2 = w64.topk(2, dim=-1).values
        # the first largest entry, on both sides: torch's tie rule, so only values decide
        flipped = wa.argmax(dim=-1) != wb.argmax(dim=-1)
        return (top2[..., 0] - top2[..., 1])[flipped] / delta
    return torch.zeros(0, dtype=torch.float64)
