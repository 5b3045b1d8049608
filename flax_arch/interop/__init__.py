"""Torch ↔ Flax interop: state_dict conversion, the validating array loader, and named
layout helpers."""

from .layout import (channels_first_to_last, channels_last_to_first, nchw_to_nhwc,
                     ncw_to_nwc, nhwc_to_nchw, nwc_to_ncw)
from .state_dict import (LAYOUTS, Loaded, LoadResult, Slot, StateDictError, c_order,
                         load_arrays, load_torch_state_dict, to_torch_state_dict, torch_keys)
from .tensors import is_float_dtype, numpy_to_tensor, tensor_to_numpy

__all__ = ["LAYOUTS", "LoadResult", "Loaded", "Slot", "StateDictError", "c_order",
           "channels_first_to_last", "channels_last_to_first", "load_arrays",
           "load_torch_state_dict", "nchw_to_nhwc", "ncw_to_nwc", "nhwc_to_nchw", "nwc_to_ncw",
           "to_torch_state_dict", "torch_keys", "is_float_dtype", "numpy_to_tensor",
           "tensor_to_numpy"]
