"""Basic slicing on any axis, with steps: GhostNet's and DPN's channel slices `x[:, :k]`, ResNet-20's
option-A shortcut `x[:, :, ::2, ::2]`. A view of its input, as PyTorch returns it."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, FieldStep, Layer, Shape, TorchModule, arg, axis_list, register
from .counting import rules
from .layout import Strides


@record
class Cut:
    """One axis of a slice: the per-sample axis (channels 0), and where it starts, how long it is
    and its step, all resolved against the axis's size as PyTorch resolves them."""

    axis: int
    start: int
    length: int
    step: int


@register("slice")
@record
class Slice(Layer):
    summary = (
        "x[..., begin:end:step] on the axes `dim` (PyTorch's numbering: 1 the channels); out-of-range and "
        "negative indices as PyTorch (and Python) clamp them; a view of its input"
    )
    aliases_input = True
    counts = rules()

    dim: Any = arg(kind=ArgKind.AXES, doc="the axis, or a list of them (PyTorch's numbering: 1 the channels)")
    # `start` is every item's key (a repeat's first number): a slice's start is `begin`, as in ATen's slice(dim, start, end, step)
    begin: Any = arg(
        None, kind=ArgKind.INDICES, doc="the first index (Python's start); null: 0; a list: one per axis in dim"
    )
    end: Any = arg(
        None,
        kind=ArgKind.INDICES,
        aliases=("stop",),
        doc="the index it stops before; null: the size; a list: one per axis",
    )
    step: Any = arg(None, kind=ArgKind.INDICES, doc="positive; null: 1; a list: one per axis in dim")

    def cuts(self, shape: Shape) -> list[Cut]:
        axes = axis_list(self.dim, shape, self.kind)

        def each(value: Any, name: str) -> tuple[Any, ...]:
            if not isinstance(value, tuple):
                return (value,) * len(axes)
            if len(value) != len(axes):
                raise LayerError(
                    f"slice's '{name}' has {len(value)} values for {len(axes)} axes",
                    received=list(value),
                    expected=f"one value, or one per axis in dim ({len(axes)})",
                )
            return value

        cuts = []
        for axis, start, stop, step in zip(
            axes, each(self.begin, "begin"), each(self.end, "end"), each(self.step, "step")
        ):
            if step is not None and step < 1:
                raise LayerError("slice step must be positive (as in PyTorch)", received=step)
            # Python's slice.indices clamps as PyTorch does for a positive step
            first, end, stride = slice(start, stop, step).indices(shape[axis])
            length = len(range(first, end, stride))
            if length == 0:
                raise LayerError(
                    "slice would leave nothing",
                    received=f"{start}:{stop}:{step} of {shape[axis]}",
                    expected="at least one index in range",
                )
            cuts.append(Cut(axis, first, length, stride))
        return cuts

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = list(inputs[0])
        for cut in self.cuts(inputs[0]):
            shape[cut.axis] = cut.length  # len(range(start, stop, step))
        return tuple(shape)

    def view_strides(self, shape: Shape, strides: Strides, output: Shape) -> Strides | None:
        steps = list(strides)
        for cut in self.cuts(shape[1:]):
            steps[cut.axis + 1] *= cut.step
        return tuple(steps)

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        spatial = {cut.axis: cut for cut in self.cuts(inputs[0]) if cut.axis > 0}
        if not spatial:
            return None  # channels only: positions kept
        steps = []
        for axis in range(1, len(inputs[0])):
            cut = spatial.get(axis)
            start, step = (cut.start, cut.step) if cut else (0, 1)
            steps.append(FieldStep(Fraction(1), Fraction(step), Fraction(-start)))
        return steps

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        texts = [
            f"axis {cut.axis + 1}: len(range({cut.start}, {cut.start + cut.length * cut.step - cut.step + 1}, {cut.step})) "
            f"= {cut.length}"
            for cut in self.cuts(inputs[0])
        ]
        return [*texts, "a slice (a view of its input): no arithmetic, no parameters"]

    def _index(self, shape: Shape) -> list[tuple[int, int, int] | None]:
        """(start, stop, step) for each axis after the batch up to the last one sliced; None: all of it."""
        by_axis = {cut.axis: cut for cut in self.cuts(shape)}
        return [
            (by_axis[k].start, by_axis[k].start + (by_axis[k].length - 1) * by_axis[k].step + 1, by_axis[k].step)
            if k in by_axis
            else None
            for k in range(max(by_axis) + 1)
        ]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Slice", {"index": self._index(inputs[0])})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        def text(cut: tuple[int, int, int] | None) -> str:
            if cut is None:
                return ":"
            start, stop, step = cut
            return f"{start or ''}:{stop}" + (f":{step}" if step != 1 else "")

        return f"{args[0]}[:, {', '.join(text(c) for c in self._index(inputs[0]))}]"
