"""Merges of two or more inputs: residual adds and channel concatenation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..errors import LayerError
from .base import FieldStep, Layer, Shape, TorchModule, register
from .counting import rules


@register("add")
@dataclass(frozen=True)
class Add(Layer):
    summary = "element-wise sum of two or more inputs of one shape (residual connections)"
    min_inputs = 2
    max_inputs = None
    counts = rules()

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        first = inputs[0]
        for other in inputs[1:]:
            if other != first:
                what = "channel" if other[1:] == first[1:] and len(other) == len(first) else "shape"
                raise LayerError(
                    f"add needs inputs of one shape ({what} mismatch)",
                    received=" + ".join(str(list(s)) for s in inputs),
                    expected="the same [C, ...] for every input",
                    hint="a projection (1x1 conv) on the shortcut makes the channels and sizes match",
                )
        return first

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Add", {})

    def torch_expression(self, args: Sequence[str]) -> str | None:
        return " + ".join(args)

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return None  # position for position
    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [f"element-wise sum of {len(inputs)} inputs of one shape; no parameters"]


@register("concat", "cat")
@dataclass(frozen=True)
class Concat(Layer):
    summary = "concatenation of two or more inputs on the channel axis (Inception, DenseNet, U-Net)"
    min_inputs = 2
    max_inputs = None
    counts = rules()

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        first = inputs[0]
        for other in inputs[1:]:
            if other[1:] != first[1:]:
                raise LayerError(
                    "concat needs inputs with the same spatial size",
                    received=" | ".join(str(list(s)) for s in inputs),
                    expected="the same [..., H, W] for every input; channels may differ",
                )
        return (sum(s[0] for s in inputs), *first[1:])

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Concat", {})

    def torch_expression(self, args: Sequence[str]) -> str | None:
        return f"torch.cat([{', '.join(args)}], dim=1)"

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return None  # position for position

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [f"C: {' + '.join(str(s[0]) for s in inputs)} = {output[0]} (concatenated channels); no parameters"]
