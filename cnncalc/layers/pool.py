"""Pooling: max and average over windows, adaptive, and global average."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Callable, ClassVar, Sequence

from ..errors import LayerError
from ..geometry import Window, adaptive_covered, adaptive_largest, covered
from ..records import record
from .base import (
    ArgKind,
    FieldStep,
    Layer,
    Saved,
    Shape,
    TorchModule,
    arg,
    group_axes,
    per_axis,
    prod,
    register,
    spatial_rank,
    times,
)
from .counting import per_element, rules
from .layout import MemoryFormat
from .windowed import Windowed

# ptflops counts every pooling twice per input element: its module hook and its patched functional call.
_PTFLOPS_POOL = per_element(2)


def check_pool_padding(windows: list[Window], limit: Callable[[Window], int], rule: str) -> None:
    for w in windows:
        if max(w.pad_left, w.pad_right) > limit(w):
            raise LayerError(
                f"padding must be at most half of the {rule} (as in PyTorch)",
                received=f"padding {w.pad_left} with kernel {w.kernel}",
                expected=f"padding <= {limit(w)}",
            )


@register("maxpool", "max_pool", "maxpool1d", "maxpool2d", "maxpool3d")
@record
class MaxPool(Windowed):
    summary = "max pooling; stride defaults to the kernel"
    layout = MemoryFormat.MAX_POOL_FORMAT
    shorthand = "kernel"
    counts = rules(ptflops=_PTFLOPS_POOL)

    kernel: Any = arg(kind=ArgKind.POSITIVE_AXES, aliases=("kernel_size",))
    stride: Any = arg(None, kind=ArgKind.OPTIONAL_POSITIVE_AXES, doc="= kernel")
    padding: Any = arg(0, kind=ArgKind.NON_NEGATIVE_AXES)
    dilation: Any = arg(1, kind=ArgKind.POSITIVE_AXES)
    ceil_mode: bool = arg(False, kind=ArgKind.BOOL)

    def window_args(self) -> tuple[Any, Any, Any, Any, bool]:
        return self.kernel, self.stride, self.padding, self.dilation, self.ceil_mode

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        windows = self.windows(inputs[0])
        # PyTorch checks the kernel itself, not the dilated span (aten/src/ATen/native/Pool.h)
        check_pool_padding(windows, lambda w: w.kernel // 2, "kernel")
        return (inputs[0][0], *self.spatial_out(inputs[0]))

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        return Saved(input=True, int64=prod(output))  # max_pool*_with_indices

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        rank = len(inputs[0]) - 1
        kwargs = self.torch_window_kwargs(inputs[0])
        kwargs.update(dilation=per_axis(self.dilation, rank, "dilation"), ceil_mode=self.ceil_mode)
        defaults = {"stride": kwargs["kernel_size"], "padding": 0, "dilation": 1, "ceil_mode": False}
        return TorchModule(f"MaxPool{rank}d", kwargs, defaults=defaults, positional=1)


def _thop_avgpool(layer: AvgPool, inputs: Sequence[Shape], output: Shape) -> int:
    # count_avgpool: one add per input each window really sums (clipped to the input, or to the
    # padded input with count_include_pad), one divide per output
    windows = layer.windows(inputs[0])
    return inputs[0][0] * math.prod(covered(w, layer.count_include_pad) for w in windows) + math.prod(output)


@register("avgpool", "avg_pool", "avgpool1d", "avgpool2d", "avgpool3d")
@record
class AvgPool(Windowed):
    summary = "average pooling; stride defaults to the kernel"
    keeps = "input"
    shorthand = "kernel"
    counts = rules(thop=_thop_avgpool, ptflops=_PTFLOPS_POOL)

    kernel: Any = arg(kind=ArgKind.POSITIVE_AXES, aliases=("kernel_size",))
    stride: Any = arg(None, kind=ArgKind.OPTIONAL_POSITIVE_AXES, doc="= kernel")
    padding: Any = arg(0, kind=ArgKind.NON_NEGATIVE_AXES)
    ceil_mode: bool = arg(False, kind=ArgKind.BOOL)
    count_include_pad: bool = arg(True, kind=ArgKind.BOOL)

    def window_args(self) -> tuple[Any, Any, Any, Any, bool]:
        return self.kernel, self.stride, self.padding, 1, self.ceil_mode

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        windows = self.windows(inputs[0])
        check_pool_padding(windows, lambda w: w.kernel // 2, "kernel")
        if len(windows) == 3 and any(w.size < w.kernel for w in windows):
            # PyTorch's avg_pool3d (unlike 1-D and 2-D) refuses an unpadded input smaller than the kernel
            raise LayerError(
                "3-D average pooling needs an input at least as large as the kernel (as in PyTorch)",
                received=f"input {list(inputs[0][1:])}, kernel {[w.kernel for w in windows]}",
            )
        return (inputs[0][0], *self.spatial_out(inputs[0]))

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        rank = len(inputs[0]) - 1
        kwargs = self.torch_window_kwargs(inputs[0])
        kwargs.update(ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad)
        defaults = {"stride": kwargs["kernel_size"], "padding": 0, "ceil_mode": False, "count_include_pad": True}
        return TorchModule(f"AvgPool{rank}d", kwargs, defaults=defaults, positional=1)


@record
class AdaptivePool(Layer):
    """Pooling to a fixed output size, whatever the input size."""

    layout = MemoryFormat.POOL_FORMAT  # channels-last in, channels-last out; 1-D as 2-D
    reduce: ClassVar[str] = "Avg"
    output: Any = arg(1, kind=ArgKind.POSITIVE_AXES, aliases=("output_size", "size"))

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        rank = spatial_rank(inputs[0], self.kind)
        return (inputs[0][0], *per_axis(self.output, rank, "output"))

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        rank = len(inputs[0]) - 1
        return TorchModule(
            f"Adaptive{self.reduce}Pool{rank}d", {"output_size": per_axis(self.output, rank, "output")}, positional=1
        )

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        texts = [
            f"{size} -> {out} (window from floor(i*{size}/{out}) to ceil((i+1)*{size}/{out}))"
            for size, out in zip(inputs[0][1:], output[1:])
        ]
        return [*group_axes(texts), f"C: {inputs[0][0]}", "params: 0"]

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return [_adaptive_step(size, out) for size, out in zip(inputs[0][1:], self.output_shape(inputs)[1:])]

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        if self.reduce == "Max":
            return Saved(input=True, int64=prod(output))
        # to a single position PyTorch takes the mean instead, which keeps nothing
        return Saved(input=any(size != 1 for size in output[1:]))


def _adaptive_step(size: int, out: int) -> FieldStep:
    """Adaptive pooling's windows, [floor(i*W/O), ceil((i+1)*W/O)): the largest one, and a stride of W/O."""
    kernel = adaptive_largest(size, out)
    return FieldStep(Fraction(kernel), Fraction(size, out), Fraction(0))


def _fvcore_adaptive_avg(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    # elementwise_flop_counter(1, 0) is registered for aten::adaptive_avg_pool2d only
    return math.prod(inputs[0]) if len(inputs[0]) == 3 else 0


def _thop_adaptive_avg(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    # count_adap_avgpool: one add per input each adaptive window sums, one divide per output
    sums = (adaptive_covered(size, out) for size, out in zip(inputs[0][1:], output[1:]))
    return inputs[0][0] * math.prod(sums) + math.prod(output)


# adaptive (and global) average pooling: what fvcore, thop and ptflops count
_ADAPTIVE_AVG_COUNTS = rules(fvcore=_fvcore_adaptive_avg, thop=_thop_adaptive_avg, ptflops=_PTFLOPS_POOL)


@register("adaptive_avgpool", "adaptiveavgpool", "adaptive_avgpool1d", "adaptive_avgpool2d", "adaptive_avgpool3d")
@record
class AdaptiveAvgPool(AdaptivePool):
    summary = "adaptive average pooling to a given output size"
    shorthand = "output"
    reduce = "Avg"
    counts = _ADAPTIVE_AVG_COUNTS


@register("adaptive_maxpool", "adaptivemaxpool", "adaptive_maxpool1d", "adaptive_maxpool2d", "adaptive_maxpool3d")
@record
class AdaptiveMaxPool(AdaptivePool):
    summary = "adaptive max pooling to a given output size"
    shorthand = "output"
    reduce = "Max"
    counts = rules(ptflops=_PTFLOPS_POOL)


@register("global_avgpool", "globalavgpool", "gap")
@record
class GlobalAvgPool(Layer):
    summary = "global average pooling: every spatial axis to 1"
    layout = MemoryFormat.POOL_FORMAT  # channels-last in, channels-last out; 1-D as 2-D
    counts = _ADAPTIVE_AVG_COUNTS

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        rank = spatial_rank(inputs[0], self.kind)
        return (inputs[0][0], *(1,) * rank)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        rank = len(inputs[0]) - 1
        return TorchModule(f"AdaptiveAvgPool{rank}d", {"output_size": (1,) * rank}, positional=1)

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [
            f"{times(inputs[0][1:])} -> {times(output[1:])}: the mean of each channel",
            f"C: {inputs[0][0]}",
            "params: 0",
        ]

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return [_adaptive_step(size, 1) for size in inputs[0][1:]]
