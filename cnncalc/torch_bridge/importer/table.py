"""The mapping table: PyTorch module classes, functions and methods -> cnncalc layer types."""

from __future__ import annotations

import functools
import operator
from dataclasses import field
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import CnncalcError
from ...layers import ALIASES, REGISTRY, build_layer
from ...records import record
from .. import _OWN_MODULES
from .casts import CAST_METHODS, CAST_PARAMS
from .elementwise import UNARY_FUNCTIONS, UNARY_METHODS

# ----- the mapping table -------------------------------------------------------------------

# Module class -> cnncalc layer type (a REGISTRY name). tests/test_import.py checks every kind is registered.
MODULE_KINDS: dict[type[nn.Module], str] = {
    nn.Conv1d: "conv",
    nn.Conv2d: "conv",
    nn.Conv3d: "conv",
    nn.ConvTranspose1d: "conv_transpose",
    nn.ConvTranspose2d: "conv_transpose",
    nn.ConvTranspose3d: "conv_transpose",
    nn.MaxPool1d: "maxpool",
    nn.MaxPool2d: "maxpool",
    nn.MaxPool3d: "maxpool",
    nn.AvgPool1d: "avgpool",
    nn.AvgPool2d: "avgpool",
    nn.AvgPool3d: "avgpool",
    nn.AdaptiveAvgPool1d: "adaptive_avgpool",
    nn.AdaptiveAvgPool2d: "adaptive_avgpool",
    nn.AdaptiveAvgPool3d: "adaptive_avgpool",
    nn.AdaptiveMaxPool1d: "adaptive_maxpool",
    nn.AdaptiveMaxPool2d: "adaptive_maxpool",
    nn.AdaptiveMaxPool3d: "adaptive_maxpool",
    nn.Linear: "linear",
    nn.BatchNorm1d: "batchnorm",
    nn.BatchNorm2d: "batchnorm",
    nn.BatchNorm3d: "batchnorm",
    nn.LocalResponseNorm: "lrn",
    nn.Dropout: "dropout",
    nn.Dropout1d: "dropout",
    nn.Dropout2d: "dropout",
    nn.Dropout3d: "dropout",
    nn.Identity: "identity",
    nn.Flatten: "flatten",
    nn.ReLU: "relu",
    nn.LeakyReLU: "leaky_relu",
    nn.ELU: "elu",
    nn.GELU: "gelu",
    nn.SiLU: "silu",
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.Softmax: "softmax",
    _OWN_MODULES["Add"]: "add",
    _OWN_MODULES["Concat"]: "concat",
    _OWN_MODULES["Mul"]: "mul",
    _OWN_MODULES["Matmul"]: "matmul",
}
# Types issue 10 announces (by torch class name): used only once a layer type of that name is registered.
OPTIONAL_MODULE_KINDS: dict[str, str] = {
    "ReLU6": "relu6",
    "Hardswish": "hardswish",
    "Hardsigmoid": "hardsigmoid",
    "Mish": "mish",
    "Softplus": "softplus",
    "LogSoftmax": "log_softmax",
    "PReLU": "prelu",
    "Upsample": "upsample",
    "PixelShuffle": "pixel_shuffle",
    "PixelUnshuffle": "pixel_unshuffle",
    "ChannelShuffle": "channel_shuffle",
    "LayerNorm": "layernorm",
    "GroupNorm": "groupnorm",
    "InstanceNorm2d": "instancenorm",
    "ZeroPad2d": "zero_pad",
    "Unfold": "im2col",  # issue 18: VOLO's outlook attention
    "Fold": "col2im",
}
# Classes outside torch.nn (by module and qualified name) that compute what a cnncalc type's own
# module computes: torchvision's building blocks. Each is a leaf; its arguments are read from its
# attributes and checked as any module's are.
FOREIGN_MODULE_KINDS: dict[str, str] = {
    "torchvision.ops.stochastic_depth.StochasticDepth": "stochastic_depth",
    "torchvision.ops.misc.Permute": "permute",
    "torchvision.models.convnext.LayerNorm2d": "layernorm",  # over the channels, as cnncalc's ChannelLayerNorm
    # weight standardisation (NFNet, BiT): the weight computed from the parameters in forward
    "timm.layers.std_conv.StdConv2d": "std_conv",
    "timm.layers.std_conv.ScaledStdConv2d": "std_conv",
    "cnncalc.torch_bridge.held_modules.StdConv2d": "std_conv",
    # cnncalc's own (a built-in's to_torch() imported back)
    "cnncalc.torch_bridge.modules.StochasticDepth": "stochastic_depth",
    "cnncalc.torch_bridge.modules.Permute": "permute",
    "cnncalc.torch_bridge.modules.ChannelLayerNorm": "layernorm",
}
# Modules that compute the same as cnncalc's module at inference although their class differs.
SAME_AT_INFERENCE = {nn.Dropout1d, nn.Dropout2d, nn.Dropout3d}
# Containers: module classes that only hold others, so a repeated one is recognised by its structure.
GENERIC_CONTAINERS = (nn.Module, nn.Sequential, nn.ModuleList, nn.ModuleDict)


@record
class Equivalent:
    """A functional call that is a module's forward: `F.max_pool2d(x, 3, 2)` is `nn.MaxPool2d(3, 2)(x)`.

    `params` names the call's arguments in order (the tensor first); `required` pins arguments
    that cnncalc can only follow at one value; `ignored` are dropped (F.dropout's `training`).
    """

    module: type[nn.Module] | str  # a class, or an nn class name for an optional row
    params: tuple[str, ...]
    required: Mapping[str, Any] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()


@record
class Special:
    """A call mapped by shape rules: merges, flatten-like reshapes, a mean over the spatial axes."""

    kinds: tuple[str, ...]
    rule: str  # "merge", "cat", "flatten", "reshape", "mean"
    params: tuple[str, ...] = ()
    optional: bool = False


def _pool_params(extra: tuple[str, ...]) -> tuple[str, ...]:
    return ("input", "kernel_size", "stride", "padding", *extra)


_ACT = ("input", "inplace")
FUNCTIONS: dict[Any, Equivalent | Special] = {
    # arithmetic of two tensors, a tensor and a parameter, or a tensor and a number (elementwise.py)
    **{
        f: Special((kind, "scalar", "parameter"), "arith", ("input", "other"))
        for f, kind in (
            (operator.add, "add"),
            (operator.iadd, "add"),
            (operator.mul, "mul"),
            (operator.imul, "mul"),
            (operator.sub, "sub"),
            (operator.isub, "sub"),
            (operator.truediv, "div"),
            (operator.itruediv, "div"),
        )
    },
    torch.add: Special(("add", "scalar", "parameter"), "arith", ("input", "other", "alpha")),
    torch.sub: Special(("sub", "scalar", "parameter"), "arith", ("input", "other", "alpha")),
    torch.mul: Special(("mul", "scalar", "parameter"), "arith", ("input", "other")),
    torch.div: Special(("div", "scalar", "parameter"), "arith", ("input", "other", "rounding_mode")),
    operator.pow: Special(("scalar",), "arith", ("input", "other")),
    operator.ipow: Special(("scalar",), "arith", ("input", "other")),
    torch.pow: Special(("scalar",), "arith", ("input", "exponent")),
    **{f: Special(("unary",), "unary", ("input",)) for f in UNARY_FUNCTIONS},
    torch.var: Special(("var",), "reduce", ("input", "dim", "unbiased", "keepdim", "correction")),
    torch.amax: Special(("amax",), "reduce", ("input", "dim", "keepdim")),
    torch.max: Special(("max",), "max", ("input", "dim", "keepdim")),  # values and indices (maxima.py)
    torch.addcmul: Special(("parameter",), "addcmul", ("input", "tensor1", "tensor2", "value")),
    F.normalize: Special(("normalize",), "normalize", ("input", "p", "dim", "eps", "out")),
    torch.norm: Special(("vector_norm",), "vector_norm", ("input", "p", "dim", "keepdim", "out", "dtype")),
    F.pad: Special(("pad",), "pad", ("input", "pad", "mode", "value")),
    torch.stack: Special(("stack",), "stack", ("tensors", "dim")),
    # attention's q @ k.transpose(-2, -1) and attn @ v
    operator.matmul: Special(("matmul",), "matmul", ("input", "other")),
    torch.matmul: Special(("matmul",), "matmul", ("input", "other")),
    torch.bmm: Special(("matmul",), "matmul", ("input", "mat2")),
    # a module's forward written with functions on its own parameters (timm's BatchNormAct2d, Linear)
    # a module's running statistics (rule_functional), or a weight standardised in forward (conv_calls.py)
    F.batch_norm: Special(
        ("batchnorm", "std_conv"),
        "batch_norm_call",
        ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"),
    ),
    F.linear: Special(("linear",), "functional", ("input", "weight", "bias")),
    F.layer_norm: Special(("layernorm",), "functional", ("input", "normalized_shape", "weight", "bias", "eps")),
    F.group_norm: Special(("groupnorm",), "functional", ("input", "num_groups", "weight", "bias", "eps")),
    **{
        conv: Special(("conv",), "functional", ("input", "weight", "bias", "stride", "padding", "dilation", "groups"))
        for conv in (F.conv1d, F.conv3d)
    },
    # its own weight (rule_functional), or a fixed filter in a buffer: blur pooling (conv_calls.py)
    F.conv2d: Special(
        ("conv", "blur_pool"), "conv_call", ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
    ),
    torch.sum: Special(("sum",), "sum", ("input", "dim", "keepdim", "dtype")),
    # learned tokens first: class_token rows (tokens.py), else rule_cat
    torch.cat: Special(("concat", "class_token"), "cat_tokens", ("tensors", "dim")),
    torch.concat: Special(("concat", "class_token"), "cat_tokens", ("tensors", "dim")),
    torch.flatten: Special(("flatten",), "flatten", ("input", "start_dim", "end_dim")),
    torch.reshape: Special(("flatten",), "reshape", ("input", "shape")),
    torch.mean: Special(("global_avgpool", "flatten"), "mean", ("input", "dim", "keepdim", "dtype")),
    torch.permute: Special(("permute",), "permute", ("input", "dims")),
    torch.transpose: Special(("permute",), "transpose", ("input", "dim0", "dim1")),
    torch.chunk: Special(("chunk",), "pieces", ("input", "chunks", "dim")),
    torch.split: Special(("split",), "pieces", ("tensor", "split_size_or_sections", "dim")),
    # attention (importer/attention.py): q, k, v = qkv.unbind(0), the fused op
    torch.unbind: Special(("unbind",), "unbind", ("input", "dim")),
    F.scaled_dot_product_attention: Special(
        ("attention",),
        "attention",
        ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa"),
    ),
    F.relu: Equivalent(nn.ReLU, _ACT),
    F.relu_: Equivalent(nn.ReLU, ("input",)),
    torch.relu: Equivalent(nn.ReLU, ("input",)),
    torch.relu_: Equivalent(nn.ReLU, ("input",)),
    F.leaky_relu: Equivalent(nn.LeakyReLU, ("input", "negative_slope", "inplace")),
    F.elu: Equivalent(nn.ELU, ("input", "alpha", "inplace")),
    F.gelu: Equivalent(nn.GELU, ("input", "approximate")),
    F.silu: Equivalent(nn.SiLU, _ACT),
    torch.sigmoid: Equivalent(nn.Sigmoid, ("input",)),
    F.sigmoid: Equivalent(nn.Sigmoid, ("input",)),
    torch.tanh: Equivalent(nn.Tanh, ("input",)),
    F.tanh: Equivalent(nn.Tanh, ("input",)),
    F.softmax: Equivalent(nn.Softmax, ("input", "dim", "_stacklevel", "dtype"), {"dtype": None}, ("_stacklevel",)),
    torch.softmax: Equivalent(nn.Softmax, ("input", "dim", "dtype"), {"dtype": None}),
    F.dropout: Equivalent(nn.Dropout, ("input", "p", "training", "inplace"), ignored=("training",)),
    F.max_pool1d: Equivalent(nn.MaxPool1d, _pool_params(("dilation", "ceil_mode", "return_indices"))),
    F.max_pool2d: Equivalent(nn.MaxPool2d, _pool_params(("dilation", "ceil_mode", "return_indices"))),
    F.max_pool3d: Equivalent(nn.MaxPool3d, _pool_params(("dilation", "ceil_mode", "return_indices"))),
    F.avg_pool1d: Equivalent(nn.AvgPool1d, _pool_params(("ceil_mode", "count_include_pad"))),
    F.avg_pool2d: Equivalent(nn.AvgPool2d, _pool_params(("ceil_mode", "count_include_pad", "divisor_override"))),
    F.avg_pool3d: Equivalent(nn.AvgPool3d, _pool_params(("ceil_mode", "count_include_pad", "divisor_override"))),
    F.adaptive_avg_pool1d: Equivalent(nn.AdaptiveAvgPool1d, ("input", "output_size")),
    F.adaptive_avg_pool2d: Equivalent(nn.AdaptiveAvgPool2d, ("input", "output_size")),
    F.adaptive_avg_pool3d: Equivalent(nn.AdaptiveAvgPool3d, ("input", "output_size")),
    F.adaptive_max_pool1d: Equivalent(nn.AdaptiveMaxPool1d, ("input", "output_size", "return_indices")),
    F.adaptive_max_pool2d: Equivalent(nn.AdaptiveMaxPool2d, ("input", "output_size", "return_indices")),
    F.adaptive_max_pool3d: Equivalent(nn.AdaptiveMaxPool3d, ("input", "output_size", "return_indices")),
    F.unfold: Equivalent("Unfold", ("input", "kernel_size", "dilation", "padding", "stride")),
    F.fold: Equivalent("Fold", ("input", "output_size", "kernel_size", "dilation", "padding", "stride")),
    F.relu6: Equivalent("ReLU6", _ACT),
    F.hardswish: Equivalent("Hardswish", _ACT),
    F.hardsigmoid: Equivalent("Hardsigmoid", _ACT),
    F.interpolate: Equivalent(
        "Upsample",
        ("input", "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias"),
        {"antialias": False},
    ),
}
_SELF = ("input",)
METHODS: dict[str, Equivalent | Special] = {
    **{
        name: Special((kind, "scalar", "parameter"), "arith", ("input", "other", "alpha"))
        for name, kind in (("add", "add"), ("add_", "add"), ("sub", "sub"), ("sub_", "sub"))
    },
    **{
        name: Special((kind, "scalar", "parameter"), "arith", ("input", "other"))
        for name, kind in (("mul", "mul"), ("mul_", "mul"))
    },
    "div": Special(("div", "scalar", "parameter"), "arith", ("input", "other", "rounding_mode")),
    "div_": Special(("div", "scalar", "parameter"), "arith", ("input", "other", "rounding_mode")),
    "pow": Special(("scalar",), "arith", ("input", "exponent")),
    **{name: Special(("unary",), "unary", ("input",)) for name in UNARY_METHODS},
    "var": Special(("var",), "reduce", ("input", "dim", "unbiased", "keepdim", "correction")),
    "amax": Special(("amax",), "reduce", ("input", "dim", "keepdim")),
    "max": Special(("max",), "max", ("input", "dim", "keepdim")),
    "norm": Special(("vector_norm",), "vector_norm", ("input", "p", "dim", "keepdim", "dtype")),
    "repeat": Special(("repeat",), "repeat", ("input",)),
    "flatten": Special(("flatten",), "flatten", ("input", "start_dim", "end_dim")),
    "view": Special(("flatten",), "reshape", ("input",)),
    "reshape": Special(("flatten",), "reshape", ("input",)),
    "mean": Special(("global_avgpool", "flatten"), "mean", ("input", "dim", "keepdim", "dtype")),
    "permute": Special(("permute",), "permute", ("input", "dims")),
    "transpose": Special(("permute",), "transpose", ("input", "dim0", "dim1")),
    "unsqueeze": Special(("unsqueeze",), "view_like", ("input", "dim")),
    "sum": Special(("sum",), "sum", ("input", "dim", "keepdim", "dtype")),
    "squeeze": Special(("squeeze",), "view_like", ("input", "dim")),
    "contiguous": Special(("contiguous",), "view_like", ("input", "memory_format")),
    "chunk": Special(("chunk",), "pieces", ("input", "chunks", "dim")),
    "split": Special(("split",), "pieces", ("input", "split_size", "dim")),
    "unbind": Special(("unbind",), "unbind", ("input", "dim")),
    "unfold": Special(("unfold",), "unfold", ("input", "dimension", "size", "step")),
    "expand": Special(("expand",), "expand", ("input",)),
    "matmul": Special(("matmul",), "matmul", ("input", "other")),
    "bmm": Special(("matmul",), "matmul", ("input", "mat2")),
    "relu": Equivalent(nn.ReLU, _SELF),
    "relu_": Equivalent(nn.ReLU, _SELF),
    "sigmoid": Equivalent(nn.Sigmoid, _SELF),
    "sigmoid_": Equivalent(nn.Sigmoid, _SELF),
    "tanh": Equivalent(nn.Tanh, _SELF),
    "tanh_": Equivalent(nn.Tanh, _SELF),
    "softmax": Equivalent(nn.Softmax, ("input", "dim", "dtype"), {"dtype": None}),
    # a cast to the dtype the tensor has: the very tensor (casts.py)
    **{name: Special(("identity",), "cast", CAST_PARAMS) for name in CAST_METHODS},
}


def _registered(kind: str) -> bool:
    return kind in REGISTRY or kind in ALIASES


def _optional_class(name: str) -> type[nn.Module] | None:
    return getattr(nn, name, None)


def table_kinds() -> dict[str, tuple[str, bool]]:
    """Every row of the table: its key (as text) -> (the cnncalc kind it maps to, optional?)."""
    rows: dict[str, tuple[str, bool]] = {}
    for cls, kind in MODULE_KINDS.items():
        rows[f"module {cls.__name__}"] = (kind, False)
    for name, kind in OPTIONAL_MODULE_KINDS.items():
        rows[f"module {name}"] = (kind, True)
    for name, kind in FOREIGN_MODULE_KINDS.items():
        rows[f"module {name}"] = (kind, False)
    for table, label in ((FUNCTIONS, "function"), (METHODS, "method")):
        for key, rule in table.items():
            text = f"{label} {getattr(key, '__name__', key)}"
            if isinstance(rule, Special):
                for i, kind in enumerate(rule.kinds):
                    rows[f"{text}#{i}"] = (kind, rule.optional)
            elif isinstance(rule.module, str):
                rows[text] = (OPTIONAL_MODULE_KINDS[rule.module], True)
            else:
                rows[text] = (MODULE_KINDS[rule.module], False)
    return rows


def module_kind(module: nn.Module) -> str | None:
    """The registered cnncalc type for a module, or None when cnncalc has none."""
    cls = type(module)
    foreign = FOREIGN_MODULE_KINDS.get(_qualified(cls))
    if foreign is not None:
        return foreign if _registered(foreign) else None
    for base in cls.__mro__:
        if not issubclass(base, nn.Module):  # object, a mixin: no kind
            continue
        kind = MODULE_KINDS.get(base)
        if kind is None and base.__module__.startswith("torch.nn"):
            kind = OPTIONAL_MODULE_KINDS.get(base.__name__)
        if kind is None:
            continue
        # a subclass with its own forward computes something else
        if base is not cls and cls.forward is not base.forward:
            return None
        return kind if _registered(kind) else None
    if not cls.__module__.startswith("torch.nn"):
        return None
    return _discovered(frozenset(REGISTRY)).get(cls.__name__)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@functools.lru_cache(maxsize=4)
def _discovered(registered: frozenset[str]) -> dict[str, str]:
    """torch class name -> kind for registered types that build with their defaults (new activations).

    Built once per set of registered types (keyed by it, so a type registered later is seen): it
    builds every type at four ranks, which cost 15 ms per module asked about."""
    found: dict[str, set[str]] = {}
    for kind in sorted(registered):
        cls = REGISTRY[kind]
        try:
            layer = build_layer(cls, {})
        except CnncalcError:
            continue
        for shape in ((4,), (4, 8), (4, 8, 8), (4, 8, 8, 8)):
            try:
                name = layer.torch_module([shape] * max(1, cls.min_inputs)).name
            except Exception:  # noqa: BLE001 - a type that refuses this rank
                continue
            found.setdefault(name, set()).add(kind)
    return {name: next(iter(kinds)) for name, kinds in found.items() if len(kinds) == 1}
