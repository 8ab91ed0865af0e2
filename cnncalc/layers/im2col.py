"""Sliding windows as columns and back: nn.Unfold (im2col) and nn.Fold (col2im), as VOLO's outlook
attention uses them (issue 18). PyTorch's own names for the ATen ops they run."""

from __future__ import annotations

from typing import Any, Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, FieldStep, Shape, TorchModule, arg, per_axis, prod, register, times
from .counting import rules
from .layout import MemoryFormat
from .windowed import Windowed

_DEFAULTS = {"dilation": 1, "padding": 0, "stride": 1}


def _check_image(kind: str, shape: Shape, what: str) -> None:
    if len(shape) != 3:
        raise LayerError(f"{kind} takes {what} (2 spatial axes, as PyTorch's)", received=f"input {list(shape)}")


@register("im2col", "unfold2d")
@record
class Im2col(Windowed):
    summary = (
        "every sliding window as a column, as nn.Unfold / F.unfold (im2col): [C, H, W] -> [C*F*F, L], L the "
        "windows (VOLO's outlook attention); no arithmetic, a new tensor"
    )
    shorthand = "kernel"
    layout = MemoryFormat.CONTIGUOUS  # ATen's im2col allocates [N, C*F*F, L] anew
    counts = rules()

    kernel: Any = arg(kind=ArgKind.POSITIVE_AXES, aliases=("kernel_size",), doc="window size F")
    stride: Any = arg(1, kind=ArgKind.POSITIVE_AXES)
    padding: Any = arg(0, kind=ArgKind.NON_NEGATIVE_AXES, doc="zeros")
    dilation: Any = arg(1, kind=ArgKind.POSITIVE_AXES)

    def window_args(self) -> tuple[Any, Any, Any, Any, bool]:
        return self.kernel, self.stride, self.padding, self.dilation, False

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        _check_image(self.kind, inputs[0], "[C, H, W] inputs")
        windows = self.spatial_out(inputs[0])
        if min(windows) < 1:
            raise LayerError("im2col's window is larger than the (padded) input", received=f"input {list(inputs[0])}")
        # [C, H, W] -> [C * F*F, L]
        return (inputs[0][0] * prod(per_axis(self.kernel, 2, "kernel")), prod(windows))

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return []  # the windows as one axis: the positions are counted anew

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        kernel = times(per_axis(self.kernel, 2, "kernel"))
        return [
            *self.axis_working(inputs[0]),
            f"[{inputs[0][0]}*{kernel}, {times(self.spatial_out(inputs[0]))}] = [{output[0]}, {output[1]}]: "
            "each window a column (copied); no parameters",
        ]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        kwargs = {
            "kernel_size": self.kernel,
            "dilation": self.dilation,
            "padding": self.padding,
            "stride": self.stride,
        }
        return TorchModule("Unfold", kwargs, defaults=_DEFAULTS, positional=1)


@register("col2im", "fold")
@record
class Col2im(Windowed):
    summary = (
        "columns summed back into an image, as nn.Fold / F.fold (col2im): [C*F*F, L] -> [C, H, W], overlapping "
        "windows added (VOLO's outlook attention); the adds are no MACs"
    )
    layout = MemoryFormat.CONTIGUOUS  # ATen's col2im writes [N, C, H, W] anew
    counts = rules()

    output_size: Any = arg(kind=ArgKind.POSITIVE_AXES, doc="the image's H, W")
    kernel: Any = arg(kind=ArgKind.POSITIVE_AXES, aliases=("kernel_size",), doc="window size F")
    stride: Any = arg(1, kind=ArgKind.POSITIVE_AXES)
    padding: Any = arg(0, kind=ArgKind.NON_NEGATIVE_AXES, doc="cut off the image's border")
    dilation: Any = arg(1, kind=ArgKind.POSITIVE_AXES)

    def window_args(self) -> tuple[Any, Any, Any, Any, bool]:
        return self.kernel, self.stride, self.padding, self.dilation, False

    def _image(self, channels: int) -> Shape:
        return (channels, *per_axis(self.output_size, 2, "output_size"))

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if len(inputs[0]) != 2:
            raise LayerError("col2im takes columns [C*F*F, L]", received=f"input {list(inputs[0])}")
        volume = prod(per_axis(self.kernel, 2, "kernel"))
        columns, count = inputs[0]
        if columns % volume:
            raise LayerError(
                f"col2im's {columns} rows are not a whole number of {times(per_axis(self.kernel, 2, 'kernel'))} windows",
                received=f"input {list(inputs[0])}",
                expected=f"a multiple of {volume}",
            )
        image = self._image(columns // volume)
        windows = self.spatial_out(image)
        if min(windows) < 1 or prod(windows) != count:
            raise LayerError(
                f"col2im's {count} columns are not the {times(windows)} windows of a {times(image[1:])} image",
                received=f"input {list(inputs[0])}",
                expected=f"L = {prod(windows)}",
            )
        return image

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return []  # from columns back to positions: counted anew

    def fit_warnings(self, inputs: Sequence[Shape]) -> list[str]:
        return []  # the windows are the output's, checked whole in output_shape

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [
            f"[{inputs[0][0]}, {inputs[0][1]}] -> [{output[0]}, {times(output[1:])}]: "
            f"{times(self.spatial_out(output))} windows summed where they overlap (adds, no MACs); no parameters",
        ]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        kwargs = {
            "output_size": self.output_size,
            "kernel_size": self.kernel,
            "dilation": self.dilation,
            "padding": self.padding,
            "stride": self.stride,
        }
        return TorchModule("Fold", kwargs, defaults=_DEFAULTS, positional=2)
