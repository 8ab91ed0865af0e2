"""Layers that only reshape: no arithmetic, a view of the input."""

from __future__ import annotations

from typing import Sequence

from ..layout import Strides, view
from ..records import record
from .base import FieldStep, Layer, Shape, TorchModule, prod, register, times
from .counting import rules


@register("flatten")
@record
class Flatten(Layer):
    summary = "flattens channels and spatial axes into one (a view: no new memory)"
    aliases_input = True
    counts = rules()

    def view_strides(self, shape: Shape, strides: Strides, output: Shape) -> Strides | None:
        # a view where channels and positions read as one axis; of a crop or a permute, a copy
        return view(shape, strides, output)

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        return (prod(inputs[0]),)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Flatten", {})

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return []  # positions end here: what follows reads all of them

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [
            f"{times((*inputs[0][1:], inputs[0][0]))} = {output[0]:,} features (a view of its input); no parameters"
        ]
