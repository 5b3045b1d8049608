"""``Sequential`` whose children sit at attribute paths ``0``, ``1``, … — torch's keys.

``nnx.Sequential`` keeps its children in a ``layers`` list, so their state paths read
``layers/0/kernel`` while torch's ``nn.Sequential`` state_dict reads ``0.weight``. This
container stores child ``i`` as attribute ``"i"`` instead, so the path of every variable
*is* the torch key and converting a gradient ``State`` needs no module at hand.
Plain callables (activations) may be mixed in, as in ``nn.Sequential``; they hold no
variables and so leave gaps in the numbering exactly as torch's parameter-free modules do.

Validation: every layer must be callable (TypeError naming ``layers[i]``; torch's
``nn.Sequential`` likewise refuses what is not a Module, but takes an ``OrderedDict``,
which is refused here), and an index an int in range (TypeError / IndexError; torch also
slices, which is refused here). Inputs are checked by the layers themselves.
"""

from __future__ import annotations

from flax import nnx

from ._utils import check_int

__all__ = ["Sequential"]


class Sequential(nnx.Module):
    """Torch ``nn.Sequential(*layers)``: applies each layer to the previous one's output.

    Example::

        >>> import jax, jax.numpy as jnp
        >>> from flax import nnx
        >>> from flax_arch.nn import Linear
        >>> mlp = Sequential(Linear(4, 8, rngs=nnx.Rngs(0)), jnp.tanh, Linear(8, 2, rngs=nnx.Rngs(1)))
        >>> mlp(jnp.ones((3, 4))).shape
        (3, 2)
        >>> sorted(k for k, _ in nnx.to_flat_state(nnx.state(mlp)))  # doctest: +NORMALIZE_WHITESPACE
        [('0', 'bias'), ('0', 'kernel'), ('2', 'bias'), ('2', 'kernel')]
    """

    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            if not callable(layer):
                raise TypeError(f"Sequential: layers[{i}] must be a module or a callable, got "
                                f"{type(layer).__name__}")
        self._n = len(layers)
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int):
        i = check_int(i, "index", "Sequential")
        if not -self._n <= i < self._n:
            raise IndexError(f"Sequential index {i} out of range for {self._n} layers")
        return getattr(self, str(i % self._n))

    def __iter__(self):
        return (self[i] for i in range(self._n))

    def __call__(self, x, *args, **kwargs):
        """Input and output shapes are those of the first and last layer."""
        for layer in self:
            x = layer(x, *args, **kwargs) if (args or kwargs) else layer(x)
            args, kwargs = (), {}
        return x
