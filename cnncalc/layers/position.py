"""Position encodings computed in forward (issue 18): the sine position encoding of a feature map, a
constant computed from its size alone (XCiT's and EdgeNeXt's PositionalEncodingFourier, DETR's
PositionEmbeddingSine), and a tensor tiled (`x.repeat(1, 2, 1)`; XCiT's `pos.repeat(B, 1, 1, 1)`).

Neither is counted by any tool: repeat, arange, sin and cos have no FLOP formula in
FlopCounterMode or fvcore, and thop and ptflops hook none of them.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, FieldStep, Layer, Saved, Shape, TorchModule, arg, register
from .counting import rules
from .layout import MemoryFormat


@register("repeat")
@record
class Repeat(Layer):
    summary = (
        "the input tiled along each axis, as x.repeat(1, *repeats) (one count per axis after the batch; "
        "XCiT's pos.repeat(B, 1, 1, 1) of a constant is repeats [1, 1, 1]); a copy, no parameters"
    )
    shorthand = "repeats"
    layout = MemoryFormat.CONTIGUOUS
    counts = rules()

    repeats: tuple[int, ...] = arg(kind=ArgKind.TENSOR_SHAPE, doc="how many times each axis after the batch")

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if len(self.repeats) != len(inputs[0]):
            raise LayerError(
                "repeat needs one count per axis of the input (after the batch)",
                received=f"repeats {list(self.repeats)} for an input [N, {', '.join(map(str, inputs[0]))}]",
                expected=f"{len(inputs[0])} counts",
            )
        return tuple(n * r for n, r in zip(inputs[0], self.repeats))

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        return Saved()  # repeat's backward sums the gradient's tiles: it reads no tensor

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return None if all(r == 1 for r in self.repeats[1:]) else []

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [f"output = x tiled {list(self.repeats)} times: {list(inputs[0])} -> {list(output)} (a copy)"]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Repeat", {"repeats": list(self.repeats)})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"{args[0]}.repeat(1, {', '.join(map(str, self.repeats))})"


@register("sine_position")
@record
class SinePosition(Layer):
    summary = (
        "the sine position encoding of a [C, H, W] input's positions, [2 * features, H, W], the input read "
        "for its size only: y then x, each scaled to (0, 2 pi], divided by temperature ** (2 * (i // 2) / "
        "features), sin and cos interleaved (XCiT's and EdgeNeXt's PositionalEncodingFourier, before its "
        "projection); a constant, no parameters"
    )
    shorthand = "features"
    layout = MemoryFormat.CONTIGUOUS
    counts = rules()  # arange, div, sin, cos: nothing any tool counts

    features: int = arg(kind=ArgKind.POSITIVE, doc="features per axis (timm's hidden_dim)")
    temperature: float = arg(10000.0, kind=ArgKind.NUMBER, doc="the base of the wavelengths")

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if self.features % 2:
            raise LayerError(
                "sine_position's features are pairs of sin and cos: an even number (PyTorch's stack refuses "
                "an odd one)",
                received=self.features,
                expected="an even number",
            )
        if len(inputs[0]) != 3:
            raise LayerError(
                "sine_position encodes the positions of a 2-D feature map",
                received=f"input [N, {', '.join(map(str, inputs[0]))}]",
                expected="[N, C, H, W]",
            )
        return (2 * self.features, *inputs[0][1:])

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        return Saved()  # a constant: nothing flows back through it

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return []  # reads no value of its input

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        h, w = inputs[0][1:]
        return [
            f"output = sin/cos of the {h}x{w} positions, {self.features} features for y and {self.features} "
            f"for x (temperature {self.temperature:g}): a constant of its input's size; no parameters"
        ]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("SinePosition", {"features": self.features, "temperature": self.temperature})
