"""Reordering the axes (group A of issue 10): the faithful ConvNeXt block works channels-last
between two permutes (torchvision.ops.Permute); and sliding windows as views (x.unfold, issue 18)."""

from __future__ import annotations

from typing import Any, Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, FieldStep, Layer, Shape, TorchModule, arg, axis_index, register
from .counting import rules
from .layout import Strides


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


@register("unfold")
@record
class Unfold(Layer):
    summary = (
        "sliding windows along one axis, as x.unfold(dim, size, step) (HaloNet's halo blocks): that axis "
        "becomes the number of windows, a new last axis holds each window's `size` (a view)"
    )
    aliases_input = True
    counts = rules()

    dim: int = arg(
        kind=ArgKind.AXIS, aliases=("dimension",), doc="the axis the windows slide along (PyTorch's numbering)"
    )
    size: int = arg(kind=ArgKind.POSITIVE, doc="the length of each window")
    step: int = arg(kind=ArgKind.POSITIVE, doc="how far each window starts after the one before")

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = inputs[0]
        axis = axis_index(self.dim, shape, self.kind)
        if self.size > shape[axis]:
            raise LayerError(
                f"unfold's windows of {self.size} are longer than axis {self.dim} ({shape[axis]})",
                received=f"input [N, {', '.join(map(str, shape))}]",
                expected=f"size <= {shape[axis]}",
            )
        # [..., L, ...] -> [..., (L - size) // step + 1, ..., size]
        windows = (shape[axis] - self.size) // self.step + 1
        return (*shape[:axis], windows, *shape[axis + 1 :], self.size)

    def view_strides(self, shape: Shape, strides: Strides, output: Shape) -> Strides | None:
        d = axis_index(self.dim, shape[1:], self.kind) + 1  # the batch axis first
        # ATen's unfold: the windows step over `step` elements of the axis, a window over one
        return (*strides[:d], strides[d] * self.step, *strides[d + 1 :], strides[d])

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return []  # a new axis: the spatial axes are counted anew

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        axis = axis_index(self.dim, inputs[0], self.kind)
        return [
            f"({inputs[0][axis]} - {self.size}) // {self.step} + 1 = {output[axis]} windows of {self.size} along axis "
            f"{self.dim}: [N, {', '.join(map(str, output))}] (a view); no parameters"
        ]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("TensorUnfold", {"dim": self.dim, "size": self.size, "step": self.step})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"{args[0]}.unfold({self.dim}, {self.size}, {self.step})"
