"""Element-wise activations: one factory, one row each."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any, ClassVar, Mapping, Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, ElementWise, FieldStep, Layer, Shape, TorchModule, arg, axis_index, register
from .counting import Rule, parameters, per_element, rules
from .layout import MemoryFormat


@record
class Activation(ElementWise):
    """An element-wise function: the output has the input's shape; no parameters. Its arguments'
    defaults are PyTorch's (export leaves them out; tests/test_export.py checks them)."""

    torch_name: ClassVar[str] = ""
    keeps: ClassVar[str | None] = "input"
    in_place: ClassVar[bool] = True

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        kwargs = {f.name: getattr(self, f.name) for f in fields(self)}
        return TorchModule(self.torch_name, kwargs, defaults={f.name: f.default for f in fields(self)})


def _activation(
    kind: str,
    torch_name: str,
    summary: str,
    *args: tuple[str, Any, ArgKind],
    fixed: Mapping[str, Any] | None = None,
    keeps: str = "input",
    in_place: bool = True,
    layout: MemoryFormat = MemoryFormat.INPUT_ORDER,
    **counts: Rule,
) -> type[Layer]:
    """Make and register an activation type with the given (name, default, kind) arguments and
    counting rules by convention name (the others: `DEFAULT_RULES`)."""
    namespace: dict[str, Any] = {
        "torch_name": torch_name,
        "summary": summary,
        "shorthand": args[0][0] if args else None,
        "keeps": keeps,
        "in_place": in_place,
        "layout": layout,
        "counts": rules(**counts),
    }
    if fixed:
        namespace["torch_module"] = lambda self, inputs: TorchModule(torch_name, dict(fixed))
    namespace["__annotations__"] = {name: Any for name, _, _ in args}
    namespace |= {name: arg(default, kind=kind) for name, default, kind in args}
    return register(kind)(record(type(torch_name, (Activation,), namespace)))


def _softmax_rows(shape: Shape, axis: int) -> int:
    """thop's count_softmax over `axis` of a per-sample `shape`: (exp + add + div) = 3n - 1 for each
    of the prod(shape) / n rows it normalises, n the size of that axis."""
    n = shape[axis]
    return math.prod(shape) // n * (3 * n - 1)


def _thop_softmax(layer: Softmax, inputs: Sequence[Shape], output: Shape) -> int:
    return _softmax_rows(inputs[0], axis_index(layer.dim, inputs[0], layer.kind))


# ptflops counts ReLU, ELU and GELU twice per element, LeakyReLU, SiLU and softmax once, sigmoid and tanh not at all
ReLU = _activation("relu", "ReLU", "max(0, x)", keeps="output", ptflops=per_element(2))
LeakyReLU = _activation(
    "leaky_relu", "LeakyReLU", "max(ax, x)", ("negative_slope", 0.01, ArgKind.NUMBER), ptflops=per_element(1)
)
Sigmoid = _activation("sigmoid", "Sigmoid", "1 / (1 + e^-x)", keeps="output")
Tanh = _activation("tanh", "Tanh", "tanh(x)", keeps="output")
ELU = _activation("elu", "ELU", "x, or a(e^x - 1) below zero", ("alpha", 1.0, ArgKind.NUMBER), ptflops=per_element(2))
GELU = _activation("gelu", "GELU", "x * Phi(x)", ("approximate", "none", ArgKind.APPROXIMATE), ptflops=per_element(2))
SiLU = _activation("silu", "SiLU", "x * sigmoid(x) (swish)", ptflops=per_element(1))


@register("softmax")
@record
class Softmax(Activation):
    summary = "softmax over one axis: dim 1 (the channels) by default, -1 the last (attention's scores)"
    torch_name = "Softmax"
    shorthand = "dim"
    keeps = "output"
    in_place = False
    layout = MemoryFormat.CONTIGUOUS  # computed on a contiguous copy of its input, whatever the axis
    # thop: count_softmax, 3n - 1 per row along dim; ptflops: its patched F.softmax, 1 per element
    counts = rules(thop=_thop_softmax, ptflops=per_element(1))

    dim: int = arg(1, kind=ArgKind.AXIS, doc="the axis normalised (PyTorch's numbering: 1 the channels, -1 the last)")

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        axis_index(self.dim, inputs[0], self.kind)  # in range, and not the batch axis
        return inputs[0]

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        # over the channels: positions kept; over another axis every output reads the whole of it
        return None if axis_index(self.dim, inputs[0], self.kind) == 0 else []

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Softmax", {"dim": self.dim})  # always written: nn.Softmax's own default (None) guesses

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        axis = axis_index(self.dim, inputs[0], self.kind)
        return [
            f"output shape = input shape; each of the {math.prod(inputs[0]) // inputs[0][axis]} rows along "
            f"axis {axis + 1} (size {inputs[0][axis]}) sums to 1; no parameters"
        ]


# ----- group A (issue 10): the activations of MobileNet, EfficientNet and friends -----------


def _thop_log_softmax(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    # count_softmax's 3C - 1 per position, plus one per position for the log
    return _softmax_rows(inputs[0], 0) + math.prod(inputs[0]) // inputs[0][0]


# ptflops hooks the ReLU6 module once (its forward is F.hardtanh, which it does not patch); the
# others it knows neither as a module nor as a functional. thop registers ReLU6 at zero and leaves
# the rest unregistered (zero); fvcore has no handler for any of them.
ReLU6 = _activation("relu6", "ReLU6", "min(max(0, x), 6)", ptflops=per_element(1))
Hardswish = _activation("hardswish", "Hardswish", "x * relu6(x + 3) / 6 (MobileNetV3)")
Hardsigmoid = _activation("hardsigmoid", "Hardsigmoid", "relu6(x + 3) / 6 (MobileNetV3's squeeze-excitation gate)")
Mish = _activation("mish", "Mish", "x * tanh(softplus(x))")
Softplus = _activation(
    "softplus",
    "Softplus",
    "log(1 + e^(beta x)) / beta, x above the threshold",
    ("beta", 1.0, ArgKind.NUMBER),
    ("threshold", 20.0, ArgKind.NUMBER),
)
LogSoftmax = _activation(
    "log_softmax",
    "LogSoftmax",
    "log of softmax over channels",
    fixed={"dim": 1},
    keeps="output",
    in_place=False,
    layout=MemoryFormat.CONTIGUOUS,
    thop=_thop_log_softmax,
)


@register("prelu")
@record
class PReLU(Activation):
    summary = "max(ax, x) with a learned slope a: one for all channels, or one per channel"
    torch_name = "PReLU"
    # thop: count_prelu, 1 per element; ptflops: its PReLU module hook and the patched F.prelu, 1 each
    counts = rules(torchinfo=parameters, thop=per_element(1), ptflops=per_element(2))

    num_parameters: int = arg(1, kind=ArgKind.POSITIVE, doc="1, or the input's channel count")
    init: float = arg(0.25, kind=ArgKind.NUMBER)

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        channels = inputs[0][0]
        if self.num_parameters not in (1, channels):
            raise LayerError(
                "prelu's num_parameters must be 1 or the input's channel count",
                received=f"num_parameters {self.num_parameters} on {channels} channels",
                expected=f"1 or {channels}",
            )
        return inputs[0]

    def weights(self, inputs: Sequence[Shape]) -> int:
        return self.num_parameters  # the slopes a: [num_parameters]

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        per = (
            "one slope for every channel"
            if self.num_parameters == 1
            else f"one slope per channel: {self.num_parameters}"
        )
        return ["output shape = input shape", f"weights: {per}"]
