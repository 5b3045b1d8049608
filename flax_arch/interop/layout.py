"""Named layout conversions between torch's channels-first and Flax's channels-last.

These are the only places where NCW/NCHW ↔ NWC/NHWC conversion happens; they work on
numpy arrays, JAX arrays and torch tensors alike (anything with ``transpose``-by-axes or
``permute``).
"""

from __future__ import annotations

__all__ = ["channels_first_to_last", "channels_last_to_first", "ncw_to_nwc", "nwc_to_ncw",
           "nchw_to_nhwc", "nhwc_to_nchw"]


def _permute(x, axes):
    if hasattr(x, "permute"):  # torch.Tensor
        return x.permute(*axes)
    return x.transpose(axes)


def channels_first_to_last(x):
    """(N, C, *spatial) → (N, *spatial, C), for any number of spatial axes."""
    if x.ndim < 3:
        raise ValueError(f"channels_first_to_last: x must be (N, C, *spatial) with at least "
                         f"one spatial axis, got shape {tuple(x.shape)}")
    return _permute(x, (0, *range(2, x.ndim), 1))


def channels_last_to_first(x):
    """(N, *spatial, C) → (N, C, *spatial), for any number of spatial axes."""
    if x.ndim < 3:
        raise ValueError(f"channels_last_to_first: x must be (N, *spatial, C) with at least "
                         f"one spatial axis, got shape {tuple(x.shape)}")
    return _permute(x, (0, x.ndim - 1, *range(1, x.ndim - 1)))


def _checked(fn, rank, name, layout):
    def convert(x):
        if x.ndim != rank:
            raise ValueError(f"{name}: x must be {layout}, got shape {tuple(x.shape)}")
        return fn(x)
    convert.__name__ = name
    convert.__doc__ = f"{layout} → the other layout; rank {rank} only."
    return convert


ncw_to_nwc = _checked(channels_first_to_last, 3, "ncw_to_nwc", "(N, C, W)")
nwc_to_ncw = _checked(channels_last_to_first, 3, "nwc_to_ncw", "(N, W, C)")
nchw_to_nhwc = _checked(channels_first_to_last, 4, "nchw_to_nhwc", "(N, C, H, W)")
nhwc_to_nchw = _checked(channels_last_to_first, 4, "nhwc_to_nchw", "(N, H, W, C)")
