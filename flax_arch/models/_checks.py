"""Constructor checks shared by the slide models: their sizes are counts (channels, units,
layers, kernel widths), so each must be an ``int`` ≥ 1, and an error names the model's own
argument rather than the layer deep inside that would trip over it.

A zero width is refused although torch's layers accept it (``nn.Linear(0, 3)`` builds an
empty weight): a slide model with an empty layer computes a constant, which is never what
its user meant.
"""

from __future__ import annotations

from ..nn._utils import check_input, check_int

__all__ = ["check_sizes", "check_batched"]


def check_sizes(model: str, *, minimum: int = 1, **sizes) -> None:
    """Raise TypeError (not an int; ``True`` included) or ValueError (below ``minimum``)
    naming ``model`` and the argument, for every ``name=value`` in ``sizes``.

    >>> check_sizes("MLP", num_inputs=100, hidden_size=0)
    Traceback (most recent call last):
    ...
    ValueError: MLP: hidden_size must be at least 1, got 0
    """
    for name, value in sizes.items():
        check_int(value, name, model, minimum=minimum)


def check_batched(x, model: str, layout: str, channels: int) -> None:
    """Refuse ``x`` unless it is a floating-point array of exactly ``layout``'s rank with
    ``channels`` in its last axis.

    For the models whose torch original normalises over a fixed axis (``LogSoftmax(dim=1)``
    or ``dim=2``): given one axis more or fewer, torch either fails or normalises over the
    wrong axis (over the batch, or the time steps); neither is a result to reproduce, so the
    twin asks for the slide's layout.
    """
    check_input(x, name="x", layer=model, ranks=(layout.count(",") + 1,), layout=layout,
                channels=channels, floating=True)
