"""Layer types: one small frozen dataclass (a `record`) per type, registered under its YAML name.

`base` holds the base class, the registry and argument reading; each family of types is one
module beside it. Importing this package registers every type. To add a type, see "Adding a
layer type" in docs/spec.md: one class in one of these modules, one row in tests/test_layers.py.
"""

from .base import (
    ALIASES,
    REGISTRY,
    ArgKind,
    ElementWise,
    FieldStep,
    Layer,
    Saved,
    Shape,
    TorchModule,
    arg,
    argument_names,
    build_layer,
    layer_type,
    per_axis,
    register,
    spatial_rank,
)
from .counting import DEFAULT_RULES, Convention, Rule, rules

# the families, in the order the docs' table lists them (registration order: not sorted)
# isort: off
from .conv import Conv, ConvTranspose, StdConv
from .pool import AdaptiveAvgPool, AdaptiveMaxPool, AvgPool, GlobalAvgPool, MaxPool, check_pool_padding
from .linear import Linear
from .shape import Contiguous, Flatten, Reshape, Squeeze, Unsqueeze
from .permute import Permute, Unfold
from .norm import BatchNorm, LocalResponseNorm
from .norm_modern import GroupNorm, InstanceNorm, LayerNorm
from .passthrough import Dropout, Identity
from .resample import ChannelShuffle, PixelShuffle, PixelUnshuffle, Upsample  # group B (issue 10)
from .border import CenterCrop, Crop, Pad, ZeroPad  # group B (issue 10)
from .slicing import Slice  # issue 18
from .expand import Expand  # issue 18
from .activation import (
    ELU,
    GELU,
    Hardsigmoid,
    Hardswish,
    LeakyReLU,
    LogSoftmax,
    Mish,
    PReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from .merge import Add, Concat, Div, Matmul, Mul, Stack, Sub
from .arithmetic import Amax, Mean, Parameter, Scalar, Sum, Unary, Var  # issue 18
from .vector_norm import Normalize, VectorNorm  # issue 18
from .position import Repeat, SinePosition  # issue 18
from .residual import LayerScale, StochasticDepth
from .split import Chunk, Split, Unbind
from .attention import Attention  # issue 18
from .bias_table import BiasTable  # issue 18
from .blur import BlurPool  # issue 18
from .tokens import ClassToken  # issue 18
from .im2col import Col2im, Im2col  # issue 18
from .maximum import Max  # issue 18
from .traced import Traced
from .windowed import Windowed
# isort: on

__all__ = [
    "ALIASES",
    "REGISTRY",
    "ArgKind",
    "Convention",
    "DEFAULT_RULES",
    "ElementWise",
    "FieldStep",
    "Layer",
    "Rule",
    "Saved",
    "Shape",
    "TorchModule",
    "Windowed",
    "arg",
    "argument_names",
    "build_layer",
    "check_pool_padding",
    "layer_type",
    "per_axis",
    "register",
    "rules",
    "spatial_rank",
    "Conv",
    "ConvTranspose",
    "MaxPool",
    "AvgPool",
    "AdaptiveAvgPool",
    "AdaptiveMaxPool",
    "GlobalAvgPool",
    "Linear",
    "Flatten",
    "BatchNorm",
    "LocalResponseNorm",
    "Dropout",
    "Identity",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "ELU",
    "GELU",
    "SiLU",
    "Softmax",
    "Add",
    "Concat",
    "Mul",
    "Matmul",
    "Upsample",
    "PixelShuffle",
    "PixelUnshuffle",
    "ChannelShuffle",
    "Pad",
    "ZeroPad",
    "CenterCrop",
    "Crop",  # group B (issue 10)
    "Permute",
    "StochasticDepth",
    "LayerScale",
    "LayerNorm",
    "GroupNorm",
    "InstanceNorm",
    "ReLU6",
    "Hardswish",
    "Hardsigmoid",
    "Mish",
    "PReLU",
    "Softplus",
    "LogSoftmax",
    "Chunk",
    "Split",
    "Unbind",
    "Unfold",
    "Attention",
    "BiasTable",
    "BlurPool",
    "ClassToken",
    "Col2im",
    "Im2col",
    "Max",
    "Traced",
    "Contiguous",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Slice",
    "Expand",
    "Stack",
    "Scalar",
    "Sum",
    "Mean",
    "Sub",
    "Div",
    "Var",
    "Amax",
    "Unary",
    "Parameter",
    "Normalize",
    "VectorNorm",
    "Repeat",
    "SinePosition",
    "StdConv",
]
