"""Bad inputs raise clear errors: the exception type torch users expect, and a message that
names the argument and the expected shape / layout (asserted with ``match``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import flax_arch.nn as fnn
from flax_arch.interop import StateDictError, load_torch_state_dict, to_torch_state_dict

R = nnx.Rngs(0)


# ----------------------------------------------------------- channel count and layout

@pytest.mark.parametrize("layer,x,match", [
    (lambda: fnn.Conv1d(3, 4, 3, rngs=R), jnp.ones((2, 9, 5)),
     r"Conv1d: x must be channels-last \(N, L, C_in\) with C=3 in the last axis, "
     r"got shape \(2, 9, 5\)$"),
    (lambda: fnn.Conv2d(3, 4, 3, rngs=R), jnp.ones((2, 8, 8, 1)),
     r"Conv2d: x must be channels-last \(N, H, W, C_in\) with C=3.*\(2, 8, 8, 1\)$"),
    (lambda: fnn.ConvTranspose1d(2, 4, 3, rngs=R), jnp.ones((1, 5, 3)),
     r"ConvTranspose1d: x must be channels-last \(N, L, C_in\) with C=2"),
    (lambda: fnn.ConvTranspose2d(2, 4, 3, rngs=R), jnp.ones((1, 5, 5, 3)),
     r"ConvTranspose2d: x must be channels-last \(N, H, W, C_in\) with C=2"),
    (lambda: fnn.Linear(4, 2, rngs=R), jnp.ones((3, 5)),
     r"Linear: x must be channels-last \(\*, in_features\) with C=4.*\(3, 5\)"),
    (lambda: fnn.BatchNorm1d(4), jnp.ones((3, 5)), r"BatchNorm1d: x .* with C=4"),
    (lambda: fnn.BatchNorm2d(4), jnp.ones((2, 3, 3, 5)), r"BatchNorm2d: x .* with C=4"),
])
def test_wrong_channel_count(layer, x, match):
    with pytest.raises(ValueError, match=match):
        layer()(x)


@pytest.mark.parametrize("layer,x", [
    (lambda: fnn.Conv1d(3, 4, 3, rngs=R), jnp.ones((2, 3, 9))),  # torch's (N, C, L)
    (lambda: fnn.Conv2d(3, 4, 3, rngs=R), jnp.ones((2, 3, 8, 8))),  # torch's (N, C, H, W)
    (lambda: fnn.ConvTranspose2d(2, 4, 3, rngs=R), jnp.ones((1, 2, 5, 5))),
    (lambda: fnn.BatchNorm1d(4), jnp.ones((2, 4, 7))),
    (lambda: fnn.BatchNorm2d(3), jnp.ones((2, 3, 8, 8))),
])
def test_channels_first_input_hints_at_conversion(layer, x):
    with pytest.raises(ValueError, match=r"looks channels-first: convert it with "
                                         r"flax_arch\.interop\.channels_first_to_last"):
        layer()(x)


def test_no_channels_first_hint_when_it_does_not_apply():
    with pytest.raises(ValueError) as info:
        fnn.Conv1d(3, 4, 3, rngs=R)(jnp.ones((2, 9, 5)))
    assert "channels-first" not in str(info.value)


# ----------------------------------------------------------------------------- rank

@pytest.mark.parametrize("layer,x,match", [
    (lambda: fnn.Conv1d(3, 4, 3, rngs=R), jnp.ones((2, 1, 9, 3)),
     r"Conv1d: x must have rank 2 or 3 with layout \(N, L, C_in\), got shape \(2, 1, 9, 3\)"),
    (lambda: fnn.Conv2d(3, 4, 3, rngs=R), jnp.ones((8, 3)),
     r"Conv2d: x must have rank 3 or 4 with layout \(N, H, W, C_in\)"),
    (lambda: fnn.ConvTranspose1d(3, 4, 3, rngs=R), jnp.ones((3,)),
     r"ConvTranspose1d: x must have rank 2 or 3"),
    (lambda: fnn.MaxPool2d(2), jnp.ones((1, 2, 8, 8, 3)),
     r"MaxPool2d: x must have rank 3 or 4 with layout \(N, H, W, C\)"),
    (lambda: fnn.MaxPool1d(2), jnp.ones((8,)), r"MaxPool1d: x must have rank 2 or 3"),
    (lambda: fnn.AdaptiveAvgPool2d(2), jnp.ones((8, 3)),
     r"AdaptiveAvgPool2d: x must have rank 3 or 4"),
    (lambda: fnn.BatchNorm1d(3), jnp.ones((2, 4, 4, 3)),
     r"BatchNorm1d: x must have rank 2 or 3 with layout \(N, C\) or \(N, L, C\)"),
    (lambda: fnn.BatchNorm2d(3), jnp.ones((4, 4, 3)),
     r"BatchNorm2d: x must have rank 4 with layout \(N, H, W, C\)"),
    (lambda: fnn.Linear(3, 2, rngs=R), jnp.ones(()), r"Linear: x must have rank"),
])
def test_wrong_rank(layer, x, match):
    with pytest.raises(ValueError, match=match):
        layer()(x)


def test_non_array_input():
    with pytest.raises(TypeError, match="Conv1d: x must be an array, got list"):
        fnn.Conv1d(1, 1, 1, rngs=R)([[1.0]])


# ------------------------------------------------------------------------- Embedding

@pytest.mark.parametrize("x", [jnp.array([0.0, 1.0]), np.array([1.5]), jnp.array([True])])
def test_embedding_float_indices(x):
    with pytest.raises(TypeError, match="Embedding: x must hold integer indices, got"):
        fnn.Embedding(10, 3, rngs=R)(x)


def test_embedding_list_indices():
    with pytest.raises(TypeError, match="Embedding: x must hold integer indices"):
        fnn.Embedding(10, 3, rngs=R)([1, 2])


@pytest.mark.parametrize("x,got", [([0, 10], r"\[0, 10\]"), ([-1, 3], r"\[-1, 3\]"),
                                   ([[2, 3], [4, 12]], r"\[2, 12\]")])
def test_embedding_out_of_range(x, got):
    with pytest.raises(IndexError, match=r"Embedding: indices in x must lie in \[0, 10\), "
                                         r"got values in " + got):
        fnn.Embedding(10, 3, rngs=R)(jnp.array(x))


def test_embedding_out_of_range_under_jit_is_nan_not_clamped():
    emb = fnn.Embedding(4, 2, rngs=R)
    out = nnx.jit(lambda m, x: m(x))(emb, jnp.array([1, 7]))
    assert np.isfinite(np.asarray(out[0])).all() and np.isnan(np.asarray(out[1])).all()


def test_embedding_sparse_rejected():
    with pytest.raises(ValueError, match="sparse=True"):
        fnn.Embedding(4, 2, sparse=True, rngs=R)


# ------------------------------------------------------------------------- BatchNorm

@pytest.mark.parametrize("layer,x", [
    (fnn.BatchNorm1d, jnp.ones((1, 3))),
    (fnn.BatchNorm1d, jnp.ones((1, 1, 3))),
    (fnn.BatchNorm2d, jnp.ones((1, 1, 1, 3))),
])
def test_batchnorm_one_value_per_channel_in_train_mode(layer, x):
    bn = layer(3)
    with pytest.raises(ValueError, match=r"expected more than 1 value per channel in training "
                                         r"mode, got x of shape"):
        bn(x)
    bn.eval()  # the running statistics need no batch
    assert bn(x).shape == x.shape
    nobuf = layer(3, track_running_stats=False)
    nobuf.eval()  # without buffers batch statistics are used even in eval mode
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nobuf(x)


# --------------------------------------------------------------------- too-small inputs

@pytest.mark.parametrize("layer,x,match", [
    (lambda: fnn.MaxPool2d(3), jnp.ones((1, 2, 8, 1)),
     r"MaxPool2d: input x of spatial size \(2, 8\) is too small for kernel_size=\(3, 3\)"),
    (lambda: fnn.MaxPool1d(3, dilation=2), jnp.ones((1, 4, 1)),
     r"MaxPool1d: input x of spatial size \(4,\) is too small"),
    (lambda: fnn.Conv1d(1, 1, 5, rngs=R), jnp.ones((1, 3, 1)),
     r"Conv1d: input x of spatial size \(3,\) is too small for kernel_size=\(5,\)"),
    (lambda: fnn.Conv2d(1, 1, 3, dilation=2, padding=1, rngs=R), jnp.ones((2, 8, 1)),
     r"Conv2d: input x of spatial size \(2, 8\) is too small"),
    (lambda: fnn.Conv1d(1, 1, 3, padding=3, padding_mode="reflect", rngs=R), jnp.ones((1, 3, 1)),
     r"Conv1d: input x of spatial size \(3,\) is too small for padding .* "
     r"padding_mode='reflect'"),
    (lambda: fnn.Conv1d(1, 1, 3, padding=4, padding_mode="circular", rngs=R),
     jnp.ones((1, 3, 1)), r"padding_mode='circular'"),
    (lambda: fnn.ConvTranspose1d(1, 1, 3, padding=3, rngs=R), jnp.ones((1, 2, 1)),
     r"ConvTranspose1d: input x of spatial size \(2,\) is too small for padding=\(3,\)"),
    (lambda: fnn.AdaptiveAvgPool1d(3), jnp.ones((1, 0, 2)), r"empty spatial axis"),
])
def test_too_small_input(layer, x, match):
    with pytest.raises(ValueError, match=match):
        layer()(x)


def test_pool_and_module_argument_errors():
    with pytest.raises(TypeError, match="return_indices must be True or False"):
        fnn.MaxPool2d(2, return_indices=1)
    with pytest.raises(ValueError, match=r"kernel_size must be an int or a tuple of 2 ints"):
        fnn.MaxPool2d((2, 2, 2))
    with pytest.raises(ValueError, match="output_size must be a positive int or a tuple of 2"):
        fnn.AdaptiveAvgPool2d((2, 0))
    with pytest.raises(ValueError, match="stride must be at least 1"):
        fnn.Conv2d(1, 1, 3, stride=(1, 0), rngs=R)
    with pytest.raises(ValueError, match=r"ConvTranspose2d: method must be one of 'auto', "
                                         r"'matmul', 'conv', 'phases', 'conv\+phases', "
                                         r"got 'fft'"):
        fnn.ConvTranspose2d(1, 1, 3, method="fft", rngs=R)
    with pytest.raises(ValueError, match="Conv1d: method must be one of 'auto', 'conv', "
                                         "'patches', got 'matmul'"):
        fnn.Conv1d(1, 1, 3, method="matmul", rngs=R)
    with pytest.raises(ValueError, match=r"ConvTranspose1d: method='phases' needs dilation "
                                         r"1, got dilation=\(2,\)"):
        fnn.ConvTranspose1d(1, 1, 3, dilation=2, method="phases", rngs=R)
    with pytest.raises(IndexError, match="Sequential index 2 out of range for 2 layers"):
        fnn.Sequential(jnp.tanh, jnp.tanh)[2]


# ------------------------------------------------------------------- state_dict problems

class _Net(nnx.Module):
    def __init__(self):
        self.fc = fnn.Linear(3, 2, rngs=R)
        self.bn = fnn.BatchNorm1d(2)


def _sd():
    return {k: np.array(v) for k, v in to_torch_state_dict(_Net()).items()}


def test_state_dict_missing_key():
    sd = _sd()
    del sd["fc.bias"]
    with pytest.raises(StateDictError, match=r"missing keys \(1\): fc\.bias"):
        load_torch_state_dict(_Net(), sd)


def test_state_dict_unexpected_key():
    sd = _sd()
    sd["fc.scale"] = np.zeros(2)
    with pytest.raises(StateDictError, match=r"unexpected keys \(1\): fc\.scale"):
        load_torch_state_dict(_Net(), sd)


def test_state_dict_misshapen_key_names_both_shapes():
    sd = _sd()
    sd["fc.weight"] = sd["fc.weight"].T  # a flax-layout kernel passed as torch's weight
    with pytest.raises(StateDictError, match=r"shape mismatch for fc\.weight: the module "
                                             r"expects \(2, 3\) \(torch layout\), the "
                                             r"state_dict has \(3, 2\)"):
        load_torch_state_dict(_Net(), sd)


def test_state_dict_non_float_weight():
    sd = _sd()
    sd["fc.bias"] = np.array([1, 2])
    with pytest.raises(StateDictError, match=r"dtype mismatch for fc\.bias: expected floating "
                                             r"point, got int64"):
        load_torch_state_dict(_Net(), sd)


def test_state_dict_float64_without_x64():
    sd = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in _sd().items()}
    with jax.enable_x64(False):
        net = _Net()
        with pytest.raises(StateDictError, match=r"fc\.weight is float64 but jax_enable_x64 "
                                                 r"is off"):
            load_torch_state_dict(net, sd)
        assert net.fc.kernel.get_value().dtype == jnp.float32


def test_state_dict_not_a_module():
    with pytest.raises(TypeError, match="expected an nnx.Module or nnx.State, got dict"):
        load_torch_state_dict({"fc": 1}, _sd())


# ---------------------------------------------------------------- issue 12: silent wrong results

def test_adaptive_avg_pool_refuses_integer_input_as_torch_does():
    import jax.numpy as jnp
    import torch
    import flax_arch.nn as fnn
    with pytest.raises(NotImplementedError):
        torch.nn.AdaptiveAvgPool1d(3)(torch.zeros(1, 2, 6, dtype=torch.int32))
    with pytest.raises(TypeError, match="x must be floating point"):
        fnn.AdaptiveAvgPool1d(3)(jnp.zeros((1, 6, 2), jnp.int32))


def test_conv_transpose_refuses_an_empty_spatial_axis_as_torch_does():
    import jax.numpy as jnp
    import torch
    from flax import nnx
    import flax_arch.nn as fnn
    with pytest.raises(RuntimeError):
        torch.nn.ConvTranspose1d(4, 6, 3, stride=2)(torch.zeros(2, 4, 0))
    with pytest.raises(ValueError, match="empty spatial axis"):
        fnn.ConvTranspose1d(4, 6, 3, stride=2, rngs=nnx.Rngs(0))(jnp.zeros((2, 0, 4)))


@pytest.mark.parametrize("batch_first", [False, True])
def test_recurrent_layers_refuse_zero_time_steps_as_torch_does(batch_first):
    import jax.numpy as jnp
    import torch
    from flax import nnx
    import flax_arch.nn as fnn
    shape = (2, 0, 3) if batch_first else (0, 2, 3)
    with pytest.raises(RuntimeError, match="sequence length"):
        torch.nn.LSTM(3, 4, batch_first=batch_first)(torch.zeros(shape))
    for cls in (fnn.RNN, fnn.LSTM, fnn.GRU):
        with pytest.raises(ValueError, match="at least one time step"):
            cls(3, 4, batch_first=batch_first, rngs=nnx.Rngs(0))(jnp.zeros(shape))


@pytest.mark.parametrize("value", [2 ** 31, 2 ** 40, 2.7, float("nan")])
def test_integer_buffer_that_does_not_fit_is_refused_and_nothing_loads(value):
    import numpy as np
    import torch
    from flax import nnx
    import flax_arch as fa
    import flax_arch.nn as fnn
    t, f = torch.nn.BatchNorm1d(3), fnn.BatchNorm1d(3, rngs=nnx.Rngs(0))
    before = np.asarray(f.scale.get_value()).copy()
    sd = {k: v + 1 if v.is_floating_point() else v for k, v in t.state_dict().items()}
    sd["num_batches_tracked"] = torch.tensor(value)
    with pytest.raises(fa.interop.StateDictError, match="num_batches_tracked"):
        fa.load_torch_state_dict(f, sd)
    assert np.array_equal(np.asarray(f.scale.get_value()), before)
    assert int(f.num_batches_tracked.get_value()) == 0


def test_bfloat16_torch_weights_load_exactly():
    import numpy as np
    import torch
    from flax import nnx
    import flax_arch as fa
    import flax_arch.nn as fnn
    torch.manual_seed(0)
    t = torch.nn.Linear(4, 3).to(torch.bfloat16)
    f = fnn.Linear(4, 3, rngs=nnx.Rngs(0))
    fa.load_torch_state_dict(f, t.state_dict())
    back = fa.to_torch_state_dict(f)
    assert back["weight"].dtype == np.dtype("bfloat16")
    assert np.array_equal(back["weight"].astype(np.float32), t.weight.float().detach().numpy())
