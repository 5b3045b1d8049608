"""Slides "Fully Connected: A perceptron", "Multiclass classifier", "MultiLayer Perceptron".

Each is a :class:`~flax_arch.nn.Sequential`, like the slides' ``nn.Sequential``, so the
variable paths are the slides' state_dict keys (``0.weight`` → ``0/kernel`` …).
Inputs (N, num_inputs); ``LogSoftmax(dim=1)`` of the slides is the last axis here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ..nn import Linear, LogSoftmax, Sequential
from ._checks import check_batched, check_sizes

__all__ = ["LogisticRegression", "LinearRegression", "SoftmaxClassifier", "MLP"]


class LogisticRegression(Sequential):
    """``lor``: Linear(num_inputs, 1) + sigmoid. ``__call__``: (N, num_inputs) → (N, 1) in (0, 1).

    >>> from flax import nnx; import jax.numpy as jnp
    >>> LogisticRegression(5, rngs=nnx.Rngs(0))(jnp.ones((2, 5))).shape
    (2, 1)
    """

    def __init__(self, num_inputs: int, *, rngs: nnx.Rngs):
        check_sizes("LogisticRegression", num_inputs=num_inputs)
        super().__init__(Linear(num_inputs, 1, rngs=rngs), jax.nn.sigmoid)


class LinearRegression(Sequential):
    """``lir``: Linear(num_inputs, 1). ``__call__``: (N, num_inputs) → (N, 1)."""

    def __init__(self, num_inputs: int, *, rngs: nnx.Rngs):
        check_sizes("LinearRegression", num_inputs=num_inputs)
        super().__init__(Linear(num_inputs, 1, rngs=rngs))


class SoftmaxClassifier(Sequential):
    """``smx``: Linear + log-softmax. ``__call__``: (N, num_inputs) → (N, num_outputs) log-probs."""

    def __init__(self, num_inputs: int, num_outputs: int, *, rngs: nnx.Rngs):
        check_sizes("SoftmaxClassifier", num_inputs=num_inputs, num_outputs=num_outputs)
        super().__init__(Linear(num_inputs, num_outputs, rngs=rngs), LogSoftmax(dim=-1))

    def __call__(self, x):
        """x (N, num_inputs) → (N, num_outputs) log-probabilities. Batched only: the slide's
        ``LogSoftmax(dim=1)`` normalises over the classes for this layout alone."""
        check_batched(x, "SoftmaxClassifier", "(N, num_inputs)", self[0].in_features)
        return super().__call__(x)


class MLP(Sequential):
    """``mlp``: (Linear, tanh) × 2, Linear, log-softmax.

    ``__call__``: (N, num_inputs) → (N, num_outputs) log-probabilities.

    >>> from flax import nnx; import jax.numpy as jnp
    >>> MLP(rngs=nnx.Rngs(0))(jnp.ones((4, 100))).shape
    (4, 20)
    """

    def __init__(self, num_inputs: int = 100, hidden_size: int = 1024, num_outputs: int = 20,
                 *, rngs: nnx.Rngs):
        check_sizes("MLP", num_inputs=num_inputs, hidden_size=hidden_size,
                    num_outputs=num_outputs)
        super().__init__(
            Linear(num_inputs, hidden_size, rngs=rngs), jnp.tanh,
            Linear(hidden_size, hidden_size, rngs=rngs), jnp.tanh,
            Linear(hidden_size, num_outputs, rngs=rngs), LogSoftmax(dim=-1))

    def __call__(self, x):
        """x (N, num_inputs) → (N, num_outputs) log-probabilities. Batched only: the slide's
        ``LogSoftmax(dim=1)`` normalises over the classes for this layout alone."""
        check_batched(x, "MLP", "(N, num_inputs)", self[0].in_features)
        return super().__call__(x)
