"""A torch.nn module instance → its :mod:`flax_arch.nn` twin, and how to call it.

:func:`twin_name` says whether a torch module is translated as one twin (a *leaf* of the
trace): its class, or the torch.nn class it subclasses without changing how it computes,
has a twin of the same name. Every other module is traced through, down to functions.

:func:`build_twin` rebuilds the twin from the instance's configuration (the attributes
torch keeps under its constructor argument names; the weights come afterwards, through the
converter, with the whole model's state_dict). :data:`LAYOUTS` says which arguments and
outputs carry a channel axis: the translated graph keeps torch's layout, so a channels-last
twin gets its channels moved last on the way in and back on the way out. XLA cancels the
pairs of transposes this leaves between two such twins.

The layout rules are also what the module_db runner uses (``parity_tests/module_db.py``).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import nnx

from .. import nn as fnn
from .errors import UnsupportedError

__all__ = ["Layout", "LAYOUTS", "TWINS", "twin_name", "build_twin", "call_twin",
           "spatial", "axis1", "class_target", "positional"]


# ---------------------------------------------------------------- layouts
# A rule maps (array in torch's layout, all positional args) to the axis that holds
# torch's channels (moved last for the twin), or None when the layouts agree.

def spatial(n: int) -> Callable:
    """Channels right before ``n`` spatial axes: (N, C, *s) or unbatched (C, *s)."""
    return lambda a, args: a.ndim - 1 - n if a.ndim > n else None


def axis1(a, args):
    """Channels in axis 1 of an input of rank ≥ 2 (BatchNorm, GroupNorm, PReLU, LRN)."""
    return 1 if a.ndim >= 2 else None


def class_target(a, args):
    """A loss target: channels-last only when it holds class probabilities (floating and
    shaped like the input); class indices have no class axis."""
    x = args[0]
    if jnp.issubdtype(a.dtype, jnp.floating) and tuple(a.shape) == tuple(x.shape):
        return axis1(a, args)
    return None


def none(a, args):
    return None


@dataclasses.dataclass(frozen=True)
class Layout:
    """Per positional argument rules (the last repeats) and one rule for every output."""
    inputs: tuple = (none,)
    outputs: Callable = none


def _same(rule):
    return Layout((rule,), rule)


#: twin class name → where its channel axes are (classes not listed: layouts agree)
LAYOUTS: dict[str, Layout] = {}
for _n in (1, 2, 3):
    for _name in ("Conv{}d", "ConvTranspose{}d", "AvgPool{}d", "MaxPool{}d", "LPPool{}d",
                  "AdaptiveAvgPool{}d", "AdaptiveMaxPool{}d", "MaxUnpool{}d",
                  "InstanceNorm{}d", "ConstantPad{}d", "ZeroPad{}d", "ReflectionPad{}d",
                  "ReplicationPad{}d", "CircularPad{}d", "BatchNorm{}d"):
        LAYOUTS[_name.format(_n)] = _same(axis1 if _name.startswith("BatchNorm")
                                          else spatial(_n))
LAYOUTS["Softmax2d"] = _same(spatial(2))
for _name in ("GroupNorm", "LocalResponseNorm", "PReLU"):
    LAYOUTS[_name] = _same(axis1)
for _name in ("CrossEntropyLoss", "NLLLoss"):
    LAYOUTS[_name] = Layout((axis1, class_target), none)
del _n, _name


def _move(tree, rule, args, to_twin: bool):
    def move(a):
        if not hasattr(a, "ndim"):
            return a
        axis = rule(a, args)
        if axis is None:
            return a
        # torch (N, C, *s) ↔ twin (N, *s, C)
        return jnp.moveaxis(a, axis, -1) if to_twin else jnp.moveaxis(a, -1, axis)
    return jax.tree.map(move, tree)


# ---------------------------------------------------------------- which modules are twins

#: torch.nn class name → flax_arch.nn twin class (Sequential is a container: traced through)
TWINS: dict[str, type] = {name: getattr(fnn, name) for name in fnn.__all__
                          if isinstance(getattr(fnn, name), type) and name != "Sequential"}

# Methods a subclass may redefine and still compute what its torch.nn base computes.
_HARMLESS = {"__init__", "reset_parameters", "_reset_parameters", "extra_repr", "__repr__",
             "__setstate__", "_load_from_state_dict", "flatten_parameters"}


def twin_name(module) -> str | None:
    """The torch.nn class whose twin computes ``module``, or ``None`` (trace through it).

    The class itself, or its nearest torch.nn base when the subclasses between them only
    change construction (a ``ValidConv1d(nn.Conv1d)`` that fixes ``padding``). A subclass
    that overrides ``forward`` or a helper it calls (``_conv_forward``) is traced."""
    mro = type(module).__mro__
    for i, cls in enumerate(mro):
        if not cls.__module__.startswith("torch.nn") or cls.__name__ not in TWINS:
            continue
        base_attrs = set(dir(cls))
        for sub in mro[:i]:
            overridden = {k for k, v in vars(sub).items()
                          if callable(v) and k in base_attrs and k not in _HARMLESS}
            if overridden:
                return None
        return cls.__name__
    return None


# ---------------------------------------------------------------- building a twin

def _tensor(v):
    return jnp.asarray(v.detach().cpu().numpy())


def _param_dtype(module):
    for p in module.parameters():
        if p.is_floating_point():
            return jnp.dtype(str(p.dtype).removeprefix("torch."))
    return None


def _activation(fn, rngs):
    """A transformer layer's activation: the name the twin takes, or the twin module."""
    import torch
    F = torch.nn.functional
    names = {F.relu: "relu", F.gelu: "gelu"}
    if fn in names:
        return names[fn]
    if isinstance(fn, torch.nn.Module) and twin_name(fn) is not None:
        return build_twin(fn, rngs)
    raise UnsupportedError(f"activation={fn!r}: the transformer twins take 'relu', 'gelu', "
                           f"or a torch.nn activation module with a twin")


def _transformer_layer(m, rngs):
    return dict(d_model=m.self_attn.embed_dim, nhead=m.self_attn.num_heads,
                dim_feedforward=m.linear1.out_features, dropout=m.dropout.p,
                activation=_activation(m.activation, rngs), layer_norm_eps=m.norm1.eps,
                batch_first=m.self_attn.batch_first, norm_first=m.norm_first,
                bias=m.linear1.bias is not None)


def _special(name, m, rngs) -> dict | None:
    """Constructor arguments torch does not keep under their own names."""
    if name in ("TransformerEncoderLayer", "TransformerDecoderLayer"):
        return _transformer_layer(m, rngs)
    if name == "TransformerEncoder":
        return dict(encoder_layer=build_twin(m.layers[0], rngs), num_layers=m.num_layers,
                    norm=None if m.norm is None else build_twin(m.norm, rngs),
                    enable_nested_tensor=m.enable_nested_tensor, mask_check=m.mask_check)
    if name == "TransformerDecoder":
        return dict(decoder_layer=build_twin(m.layers[0], rngs), num_layers=m.num_layers,
                    norm=None if m.norm is None else build_twin(m.norm, rngs))
    if name == "Transformer":
        return dict(d_model=m.d_model, nhead=m.nhead, batch_first=m.batch_first,
                    custom_encoder=build_twin(m.encoder, rngs),
                    custom_decoder=build_twin(m.decoder, rngs))
    if name == "MultiheadAttention":
        return dict(embed_dim=m.embed_dim, num_heads=m.num_heads, dropout=m.dropout,
                    bias=m.in_proj_bias is not None, add_bias_kv=m.bias_k is not None,
                    add_zero_attn=m.add_zero_attn, kdim=m.kdim, vdim=m.vdim,
                    batch_first=m.batch_first)
    return None


#: twin constructor arguments that are not torch's (taken at their defaults)
_FLAX_ONLY = {"self", "rngs", "dtype", "param_dtype", "precision", "method", "unroll",
              "use_running_average", "deterministic", "device", "_weight", "_freeze"}


def build_twin(module, rngs: nnx.Rngs) -> nnx.Module:
    """The twin of torch ``module`` (see :func:`twin_name`), configured like it; its
    variables are freshly initialised (the caller loads the weights)."""
    import torch
    name = twin_name(module)
    if name is None:
        raise UnsupportedError(f"{type(module).__name__} has no flax_arch.nn twin")
    if name == "Dropout":
        return nnx.Dropout(rate=module.p, rngs=rngs)
    cls = TWINS[name]
    kwargs = _special(name, module, rngs)
    if kwargs is None:
        kwargs = {}
        for p in inspect.signature(cls.__init__).parameters.values():
            if p.name in _FLAX_ONLY or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.name == "bias" and hasattr(module, "bias") and \
                    not isinstance(getattr(module, "bias"), bool):
                # torch keeps the bias *tensor* (or None) where the constructor took a bool
                kwargs["bias"] = module.bias is not None
            elif hasattr(module, p.name):
                v = getattr(module, p.name)
                kwargs[p.name] = _tensor(v) if isinstance(v, torch.Tensor) else v
    params = inspect.signature(cls.__init__).parameters
    extra = {}
    if "rngs" in params:
        extra["rngs"] = rngs
    dtype = _param_dtype(module)
    if dtype is not None and "param_dtype" in params:
        extra["param_dtype"] = dtype
    return cls(**kwargs, **extra)


# ---------------------------------------------------------------- calling a twin

def positional(forward, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Torch's forward arguments with every keyword that names one of the leading
    positional parameters (``input=...``) moved into its position: the twin's
    ``__call__`` takes torch's order but may name them differently (``x``)."""
    try:
        sig = inspect.signature(forward)
        params = list(sig.parameters.values())[1:]  # no self
        bound = sig.bind_partial(None, *args, **kwargs).arguments
    except (TypeError, ValueError):
        return tuple(args), dict(kwargs)
    bound.pop(next(iter(sig.parameters)), None)  # self
    pos = []
    for p in params:
        if p.kind is not p.POSITIONAL_OR_KEYWORD or p.name not in bound:
            break
        pos.append(bound.pop(p.name))
    rest = {}
    for k, v in bound.items():
        kind = sig.parameters[k].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            pos.extend(v)
        elif kind is inspect.Parameter.VAR_KEYWORD:
            rest.update(v)
        else:
            rest[k] = v
    return tuple(pos), rest


def call_twin(twin, name: str, args: tuple, kwargs: dict) -> Any:
    """Call ``twin`` (of torch class ``name``) on torch-layout arguments (already in
    torch's positional order, :func:`positional`); the result is in torch's layout."""
    layout = LAYOUTS.get(name)
    if layout is None:
        return twin(*args, **kwargs)
    moved = [_move(a, layout.inputs[min(i, len(layout.inputs) - 1)], args, to_twin=True)
             for i, a in enumerate(args)]
    out = twin(*moved, **kwargs)
    return _move(out, layout.outputs, args, to_twin=False)
