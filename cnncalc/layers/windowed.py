"""Sliding windows over every spatial axis: the base shared by convolution and pooling."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

from ..geometry import (
    Window,
    effective_kernel,
    lost_positions,
    lost_text,
    same_padding,
    tf_same_padding,
    tf_same_working,
    window_output_size,
)
from ..records import record
from .base import AXIS_NAMES, FieldStep, Layer, Shape, group_axes, per_axis, spatial_rank
from .layout import MemoryFormat

# What a lost position is called along each axis: `input rows 6 of 0..6 are never read`.
AXIS_NOUNS = {"L": "positions", "D": "planes", "H": "rows", "W": "columns"}


@record
class Windowed(Layer):
    """Shared by convolution and pooling: sliding windows over every spatial axis."""

    layout = MemoryFormat.POOL_FORMAT  # channels-last in, channels-last out; 1-D as 2-D

    def window_args(self) -> tuple[Any, Any, Any, Any, bool]:
        """(kernel, stride, padding, dilation, ceil_mode) as written."""
        raise NotImplementedError

    def windows(self, shape: Shape) -> list[Window]:
        kernel, stride, padding, dilation, ceil_mode = self.window_args()
        rank = spatial_rank(shape, self.kind)
        kernels = per_axis(kernel, rank, "kernel")
        dilations = per_axis(dilation, rank, "dilation")
        strides = per_axis(stride if stride is not None else kernel, rank, "stride")
        if padding == "valid":
            pads = [(0, 0)] * rank
        elif padding == "same":
            pads = [same_padding(k, d) for k, d in zip(kernels, dilations)]
        elif padding == "tf_same":
            pads = [tf_same_padding(size, k, s, d) for size, k, s, d in zip(shape[1:], kernels, strides, dilations)]
        else:
            pads = [(p, p) for p in per_axis(padding, rank, "padding")]
        return [
            Window(size, k, s, left, right, d, ceil_mode)
            for size, k, s, (left, right), d in zip(shape[1:], kernels, strides, pads, dilations)
        ]

    def spatial_out(self, shape: Shape) -> tuple[int, ...]:
        return tuple(window_output_size(w) for w in self.windows(shape))

    def fit_warnings(self, inputs: Sequence[Shape]) -> list[str]:
        """The notes' "doesn't fit", only where it costs input: a stride that does not tile the
        padded input and leaves real input positions unread (not where only padding goes unused,
        as in ResNet's 7x7/2 pad 3 on 224). Axes with the same arithmetic share one warning."""
        by_text: dict[str, list[str]] = {}
        windows = self.windows(inputs[0])
        names = AXIS_NAMES[len(windows)]
        for axis, w in zip(names, windows):
            lost = lost_positions(w, 2)
            if lost:
                span = effective_kernel(w.kernel, w.dilation)
                text = f"({w.size} - {span} + {w.pad_left + w.pad_right})/{w.stride} + 1 = {w.fraction()}"
                if w.remainder and not w.ceil_mode:
                    text = f"stride does not tile the input (%s): {text}, floored to {window_output_size(w)}"
                else:  # the stride tiles, but a dilated last window's gaps fall on the input
                    text = f"the last window's dilated taps skip input (%s): {text}"
                by_text.setdefault(f"{text}\0{lost_text(w)}\0{w.size}", []).append(axis)
        warnings = []
        for key, axes in by_text.items():
            text, positions, size = key.split("\0")
            nouns = " and ".join(AXIS_NOUNS[a] for a in axes)
            count = len(positions.split(",")) > 1 or "-" in positions or "..." in positions
            verb = "are" if count or len(axes) > 1 else "is"
            noun = nouns if count or len(axes) > 1 else nouns.rstrip("s")
            warnings.append(
                f"{text % ' and '.join(axes)}: input {noun} {positions} of 0..{int(size) - 1} {verb} never read"
            )
        return warnings

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return [
            FieldStep(Fraction(effective_kernel(w.kernel, w.dilation)), Fraction(w.stride), Fraction(w.pad_left))
            for w in self.windows(inputs[0])
        ]

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        # pooling: the channels pass through, nothing is learned
        return [*self.axis_working(inputs[0]), f"C: {inputs[0][0]} (pooling keeps the channels)", "params: 0"]

    def axis_working(self, shape: Shape) -> list[str]:
        """`H, W: (227 - 11 + 2*0)/4 + 1 = 55`, axes with the same working on one line."""
        windows = self.windows(shape)
        lines = group_axes([w.formula() for w in windows])
        if self.window_args()[2] == "tf_same":  # how the padding was worked out, before the formula
            works = [tf_same_working(w.size, w.kernel, w.stride, w.dilation) for w in windows]
            lines = group_axes(works) + lines
        return lines

    def torch_window_kwargs(self, shape: Shape) -> dict[str, Any]:
        kernel, stride, padding, dilation, _ = self.window_args()
        rank = spatial_rank(shape, self.kind)
        kwargs: dict[str, Any] = {
            "kernel_size": per_axis(kernel, rank, "kernel"),
            "stride": per_axis(stride if stride is not None else kernel, rank, "stride"),
        }
        if padding == "tf_same":  # PyTorch has no such word: the padding worked out (even on every axis here)
            kwargs["padding"] = [w.pad_left for w in self.windows(shape)]
        else:
            kwargs["padding"] = padding if isinstance(padding, str) else per_axis(padding, rank, "padding")
        return kwargs

    def uneven_padding(self, shape: Shape) -> tuple[int, ...] | None:
        """F.pad's pairs (last axis first) where the padding differs between the two ends of an
        axis (TensorFlow's 'same'), which PyTorch's layers cannot take; None where it does not."""
        windows = self.windows(shape)
        if all(w.pad_left == w.pad_right for w in windows):
            return None
        return tuple(p for w in reversed(windows) for p in (w.pad_left, w.pad_right))
