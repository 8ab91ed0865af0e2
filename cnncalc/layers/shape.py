"""Layers that only reshape: no arithmetic, a view of the input."""

from __future__ import annotations

from typing import Sequence

from ..records import record
from .base import FieldStep, Layer, Shape, TorchModule, prod, register, times
from .counting import rules


@register("flatten")
@record
class Flatten(Layer):
    summary = "flattens channels and spatial axes into one (a view: no new memory)"
    aliases_input = True
    needs_dense_input = True  # flatten of a crop (a view with gaps) copies
    counts = rules()

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
