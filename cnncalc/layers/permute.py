"""Reordering the axes (group A of issue 10): the faithful ConvNeXt block works channels-last
between two permutes (torchvision.ops.Permute)."""

from __future__ import annotations

from typing import Any, Sequence

from ..errors import LayerError
from ..layout import Strides
from ..records import record
from .base import ArgKind, FieldStep, Layer, Shape, TorchModule, arg, register
from .counting import rules


@register("permute")
@record
class Permute(Layer):
    summary = "reorders the axes, counted with the batch axis 0 that stays first (a view: no new memory)"
    shorthand = "dims"
    aliases_input = True
    counts = rules()

    dims: Any = arg(kind=ArgKind.AXES_ORDER, doc="the new order of the axes, batch axis 0 first")

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if len(self.dims) != len(inputs[0]) + 1:
            raise LayerError(
                f"permute has {len(self.dims)} axes but its input has {len(inputs[0]) + 1} (with the batch axis)",
                received=f"dims {list(self.dims)} on input [N, {', '.join(map(str, inputs[0]))}]",
                expected=f"a permutation of 0 to {len(inputs[0])}, 0 first",
            )
        full = (0, *inputs[0])  # the batch axis stands in as 0
        return tuple(full[d] for d in self.dims[1:])

    def view_strides(self, shape: Shape, strides: Strides, output: Shape) -> Strides | None:
        return tuple(strides[d] for d in self.dims)

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        # positions keep their meaning while the spatial axes keep their order (channels moved
        # last, as ConvNeXt does); any other reordering ends them
        spatial = [d for d in self.dims[1:] if d >= 2]
        return None if spatial == sorted(spatial) else []

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        before, after = ", ".join(map(str, inputs[0])), ", ".join(map(str, output))
        return [f"[N, {before}] permuted by {list(self.dims)} = [N, {after}] (a view of its input); no parameters"]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Permute", {"dims": list(self.dims)}, positional=1)
