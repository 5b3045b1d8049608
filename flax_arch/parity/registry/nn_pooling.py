"""Cases for the pooling family of :mod:`flax_arch.nn.pooling`: small composites of the
torch pools (average, power-average, adaptive max, max with indices → max unpool) against
their channels-last twins, in torch's layout on the way in and out."""

from __future__ import annotations

from flax import nnx

import flax_arch.nn.pooling as P
from flax_arch.nn.containers import Sequential
from flax_arch.parity.harness import Case
from flax_arch.parity.registry import lazy_module

torch = lazy_module("torch")

C = "channels"


def _normal(*shape):
    return lambda rng: (rng.standard_normal(shape),)


def _torch_stack2d():
    nn = torch.nn
    return nn.Sequential(nn.AvgPool2d(3, 1, 1, count_include_pad=False),
                         nn.LPPool2d(2, 2, ceil_mode=True),
                         nn.AdaptiveMaxPool2d((3, None)))


def _flax_stack2d(rngs):
    return Sequential(P.AvgPool2d(3, 1, 1, count_include_pad=False),
                      P.LPPool2d(2, 2, ceil_mode=True),
                      P.AdaptiveMaxPool2d((3, None)))


def _torch_unpool(n):
    nn = torch.nn

    class PoolUnpool(nn.Module):
        """max pool with indices → max unpool to the input's size → average pool (1-d), or
        adaptive average pool (3-d: torch's CPU avg_pool3d has no float16 / bfloat16)."""

        def __init__(self):
            super().__init__()
            self.pool = getattr(nn, f"MaxPool{n}d")(3, 2, 1, return_indices=True)
            self.unpool = getattr(nn, f"MaxUnpool{n}d")(3, 2, 1)
            self.avg = (nn.AvgPool1d(2, ceil_mode=True) if n == 1
                        else nn.AdaptiveAvgPool3d((2, 3, None)))

        def forward(self, x):
            y, i = self.pool(x)
            return self.avg(self.unpool(y, i, output_size=x.shape[2:]))

    return PoolUnpool()


class _PoolUnpool(nnx.Module):
    """The twin of ``_torch_unpool``'s module, channels-last."""

    def __init__(self, n: int):
        self.pool = getattr(P, f"MaxPool{n}d")(3, 2, 1, return_indices=True)
        self.unpool = getattr(P, f"MaxUnpool{n}d")(3, 2, 1)
        self.avg = (P.AvgPool1d(2, ceil_mode=True) if n == 1
                    else P.AdaptiveAvgPool3d((2, 3, None)))

    def __call__(self, x):
        y, i = self.pool(x)
        # output_size: a channels-last shape (N, *spatial, C) works as torch's x.size()
        return self.avg(self.unpool(y, i, output_size=x.shape))


CASES = [
    Case("pool_stack_2d", _torch_stack2d, _flax_stack2d, _normal(2, 3, 9, 8), [C], [C]),
    Case("pool_unpool_1d", lambda: _torch_unpool(1), lambda r: _PoolUnpool(1),
         _normal(2, 3, 11), [C], [C]),
    Case("pool_unpool_3d", lambda: _torch_unpool(3), lambda r: _PoolUnpool(3),
         _normal(1, 2, 5, 6, 7), [C], [C]),
]
