"""Convolution and transposed convolution."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

from ..errors import LayerError
from ..geometry import transposed_formula, transposed_output_size
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
from .counting import macs_and_bias, nothing, parameters_per_position, rules
from .layout import MemoryFormat
from .windowed import Windowed

# PyTorch's defaults for the arguments conv passes (export leaves an argument equal to them out).
CONV_DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True}


def _ptflops_conv(layer: Conv, inputs: Sequence[Shape], output: Shape) -> int:
    # ptflops hooks modules by exact class: an uneven 'tf_same' builds PaddedConv2d (a Conv2d
    # subclass, found by CI's tool cross-check), which it does not count
    if layer.padding == "tf_same" and layer.uneven_padding(inputs[0]) is not None:
        return 0
    return macs_and_bias(layer, inputs, output)


def _fvcore_conv(layer: Conv, inputs: Sequence[Shape], output: Shape) -> int:
    # padding 'same' or 'valid' traces to aten::_convolution_mode, which fvcore has no handler for;
    # 'tf_same' is built with its padding as numbers (aten::_convolution, counted)
    return 0 if layer.padding in ("same", "valid") else layer.macs(inputs, output)


def _filters(out: int, groups: int) -> str:
    return f"C: {out} filter{'s' if out != 1 else ''}" + (f" in {groups} groups" if groups > 1 else "")


def _check_groups(channels_in: int, channels_out: int, groups: int, layer: str) -> None:
    for label, channels in (("input", channels_in), ("output", channels_out)):
        if channels % groups:
            raise LayerError(
                f"{label} channels of {layer} are not divisible by groups",
                received=f"{channels} {label} channels, groups={groups}",
                expected="groups dividing both input and output channels",
            )


def _slow_3d(layer: Conv | ConvTranspose, shape: Shape) -> bool:
    """Whether ATen runs a 3-D convolution of an input of `shape` (batch first) on its own slow CPU
    kernel rather than on oneDNN: for a small single-sample fp32 input (`ConvParams::use_mkldnn`:
    one group, a kernel of at most 3 on either of the last two axes, a batch of one and n*c*d*h at
    most 20,480). (The same rule picks the slow kernel for a 1x1x1, unstrided, undilated
    convolution of a batch under 16 on one thread; cnncalc assumes several, torch's default on a
    machine of several cores.)"""
    if len(shape) != 5:
        return False
    n, c, d, h, _ = shape
    kernel = per_axis(layer.kernel, 3, "kernel")
    return not (layer.groups > 1 or (kernel[-1] > 3 and kernel[-2] > 3) or n > 1 or n * c * d * h > 20480)


def _conv_layout(layer: Conv | ConvTranspose, shape: Shape) -> MemoryFormat:
    """A convolution's output layout: a 3-D one keeps a channels-last input's format on oneDNN
    only, the slow kernel writing contiguous; 2-D ones keep it on every kernel."""
    return MemoryFormat.CONTIGUOUS if _slow_3d(layer, shape) else layer.layout


@register("conv", "conv1d", "conv2d", "conv3d", "convolution")
@record
class Conv(Windowed):
    summary = "convolution (cross-correlation), any of 1 to 3 spatial axes"
    layout = MemoryFormat.CONV_FORMAT  # a 1-D input is made contiguous, then runs as 2-D
    keeps = "input"  # for the weight gradient
    autocast = True
    shorthand = None
    counts = rules(fvcore=_fvcore_conv, torchinfo=parameters_per_position, ptflops=_ptflops_conv)

    out: int = arg(kind=ArgKind.POSITIVE, aliases=("out_channels", "filters"), doc="number of filters K")
    kernel: Any = arg(kind=ArgKind.POSITIVE_AXES, aliases=("kernel_size",), doc="filter size F")
    stride: Any = arg(1, kind=ArgKind.POSITIVE_AXES)
    padding: Any = arg(0, kind=ArgKind.PADDING)
    dilation: Any = arg(1, kind=ArgKind.POSITIVE_AXES)
    groups: int = arg(1, kind=ArgKind.POSITIVE)
    bias: bool = arg(True, kind=ArgKind.BOOL)

    def window_args(self) -> tuple[Any, Any, Any, Any, bool]:
        return self.kernel, self.stride, self.padding, self.dilation, False

    def layout_for(self, shape: Shape) -> MemoryFormat:
        return _conv_layout(self, shape)

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        _check_groups(shape[0], self.out, self.groups, self.kind)
        if self.padding == "same" and any(s != 1 for s in per_axis(self.stride, len(shape) - 1, "stride")):
            raise LayerError(
                "padding 'same' needs stride 1 (as in PyTorch)",
                received=f"stride {self.stride}",
                hint="TensorFlow/Keras's 'same' at a stride (output ceil(W/S), the odd padding position at "
                "the bottom/right) is padding: tf_same; or give the padding as a number",
            )
        return (self.out, *self.spatial_out(shape))

    def padded_elements(self, shape: Shape) -> int:
        """Elements per sample of the explicitly padded input that an uneven `tf_same` builds
        (F.pad's new tensor, PaddedConv*d), 0 where PyTorch's own padding does it."""
        if self.padding != "tf_same" or self.uneven_padding(shape) is None:
            return 0
        return shape[0] * prod([w.size + w.pad_left + w.pad_right for w in self.windows(shape)])

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        padded = self.padded_elements(inputs[0])
        # the conv keeps what it reads for its weight gradient: the padded copy, not the input
        return Saved(elements=padded) if padded else super().saved(inputs, output)

    def scratch(self, inputs: Sequence[Shape], output: Shape) -> int:
        return self.padded_elements(inputs[0])  # alive while the conv runs

    def kernel_volume(self, shape: Shape) -> int:
        return prod(per_axis(self.kernel, len(shape) - 1, "kernel"))

    def weights(self, inputs: Sequence[Shape]) -> int:
        # [K, C/g, *F] : (F*F*C/g) * K
        return self.kernel_volume(inputs[0]) * (inputs[0][0] // self.groups) * self.out

    def biases(self, inputs: Sequence[Shape]) -> int:
        return self.out if self.bias else 0

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # each output element: a dot product over (C/g) * F*F inputs
        return prod(output) * (inputs[0][0] // self.groups) * self.kernel_volume(inputs[0])

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        shape = inputs[0]
        kernel = times(per_axis(self.kernel, len(shape) - 1, "kernel"))
        channels = str(shape[0]) if self.groups == 1 else f"{shape[0]}/{self.groups}"
        return [
            *self.axis_working(shape),
            _filters(self.out, self.groups),
            f"weights: ({kernel}*{channels})*{self.out} = {self.weights(inputs):,}",
            f"biases: {self.out} (one per filter)" if self.bias else "biases: 0 (bias: false)",
            f"MACs: ({times((*output[1:], output[0]))} outputs)*({kernel}*{channels}) = {self.macs(inputs, output):,}",
        ]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        shape = inputs[0]
        rank = len(shape) - 1
        kwargs = {"in_channels": shape[0], "out_channels": self.out, **self.torch_window_kwargs(shape)}
        kwargs.update(dilation=per_axis(self.dilation, rank, "dilation"), groups=self.groups, bias=self.bias)
        uneven = self.uneven_padding(shape) if self.padding == "tf_same" else None
        if uneven is not None:  # TensorFlow's 'same' with an odd total: an explicit F.pad before the conv
            kwargs.update(padding=0, pad=uneven)
            return TorchModule(f"PaddedConv{rank}d", kwargs, defaults=CONV_DEFAULTS, positional=2)
        return TorchModule(f"Conv{rank}d", kwargs, defaults=CONV_DEFAULTS, positional=2)


def _fvcore_std_conv(layer: StdConv, inputs: Sequence[Shape], output: Shape) -> int:
    # the convolution, and its aten::batch_norm over the filters with batch statistics: fvcore's
    # norm counter, 5 per weight with an affine factor (the gain), 4 without
    filters = Conv.weights(layer, inputs)
    return _fvcore_conv(layer, inputs, output) + filters * (5 if layer.gain else 4)


def _torchinfo_std_conv(layer: StdConv, inputs: Sequence[Shape], output: Shape) -> int:
    # torchinfo's Conv rule reads the module's weight and bias only: the gain is left out
    return (Conv.weights(layer, inputs) + layer.biases(inputs)) * prod(output[1:])


@register("std_conv", "stdconv2d", "scaled_std_conv2d")
@record
class StdConv(Conv):
    summary = (
        "2-D convolution with a standardised weight (timm's StdConv2d and ScaledStdConv2d, NFNet's weight "
        "standardisation): each filter's weights to mean 0 and variance 1 in forward, then times its gain "
        "and scale; the gain [K, 1, 1, 1] is one more weight per filter"
    )

    eps: float = arg(1e-6, kind=ArgKind.NUMBER, doc="added to each filter's variance")
    gain: bool = arg(False, kind=ArgKind.BOOL, doc="a learned gain per filter (ScaledStdConv2d)")
    # ptflops hooks modules by exact class: a Conv2d subclass is not one of them (nor its functional batch norm)
    counts = rules(fvcore=_fvcore_std_conv, torchinfo=_torchinfo_std_conv, ptflops=nothing)

    scale: float | None = arg(
        None, kind=ArgKind.OPTIONAL_NUMBER, doc="a fixed factor (ScaledStdConv2d's gamma / sqrt(fan-in)); null: none"
    )

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if len(inputs[0]) != 3:
            raise LayerError("std_conv takes [C, H, W] inputs (2 spatial axes)", received=f"input {list(inputs[0])}")
        if self.scale is not None and not self.gain:
            raise LayerError("std_conv's scale multiplies its gain: give gain: true too", received="gain: false")
        shape = super().output_shape(inputs)
        if (inputs[0][0] // self.groups) * self.kernel_volume(inputs[0]) == 1:
            # PyTorch's batch norm over the filters refuses a single value per filter
            raise LayerError(
                "std_conv cannot standardise filters of one weight each (C/groups x kernel = 1)",
                received=f"{inputs[0][0]} channels, groups {self.groups}, kernel {self.kernel}",
            )
        return shape

    def weights(self, inputs: Sequence[Shape]) -> int:
        # the filters [K, C/g, F, F], and the gain [K, 1, 1, 1]
        return super().weights(inputs) + (self.out if self.gain else 0)

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        lines = super().working(inputs, output)
        if self.gain:
            lines.insert(-2, f"gain: {self.out} (one per filter), so weights {super().weights(inputs):,} + {self.out}")
        return [*lines, "each filter standardised (mean 0, variance 1) in forward: not counted as MACs"]

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        # the input, as any convolution; once per batch: the standardised filters the convolution
        # reads, the batch norm's mean and 1/std per filter, and the factor gain * scale it multiplies by
        filters = super().weights(inputs)
        return Saved(input=True, fp32_per_batch=filters + 2 * self.out + (self.out if self.gain else 0))

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        spec = super().torch_module(inputs)
        kwargs = {**spec.kwargs, "eps": self.eps, "gain": self.gain, "scale": self.scale}
        defaults = {**CONV_DEFAULTS, "eps": 1e-6, "gain": False, "scale": None}
        return TorchModule("StdConv2d", kwargs, defaults=defaults, positional=2)


@register("conv_transpose", "convtranspose", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "deconv")
@record
class ConvTranspose(Layer):
    summary = "transposed convolution: (W - 1)S - 2P + D(F - 1) + output_padding + 1"
    layout = MemoryFormat.CONV_FORMAT  # channels-last in, channels-last out; 1-D as 2-D
    keeps = "input"  # for the weight gradient
    autocast = True
    counts = rules(torchinfo=parameters_per_position, ptflops=macs_and_bias)

    out: int = arg(kind=ArgKind.POSITIVE, aliases=("out_channels", "filters"))
    kernel: Any = arg(kind=ArgKind.POSITIVE_AXES, aliases=("kernel_size",))
    stride: Any = arg(1, kind=ArgKind.POSITIVE_AXES)
    padding: Any = arg(0, kind=ArgKind.NON_NEGATIVE_AXES)
    output_padding: Any = arg(0, kind=ArgKind.NON_NEGATIVE_AXES)
    dilation: Any = arg(1, kind=ArgKind.POSITIVE_AXES)
    groups: int = arg(1, kind=ArgKind.POSITIVE)
    bias: bool = arg(True, kind=ArgKind.BOOL)

    def _axes(self, shape: Shape) -> list[tuple[int, int, int, int, int]]:
        rank = spatial_rank(shape, self.kind)
        return list(
            zip(
                per_axis(self.kernel, rank, "kernel"),
                per_axis(self.stride, rank, "stride"),
                per_axis(self.padding, rank, "padding"),
                per_axis(self.dilation, rank, "dilation"),
                per_axis(self.output_padding, rank, "output_padding"),
            )
        )

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        _check_groups(shape[0], self.out, self.groups, self.kind)
        sizes = []
        for size, (k, s, p, d, op) in zip(shape[1:], self._axes(shape)):
            sizes.append(transposed_output_size(size, k, s, p, d, op))
        return (self.out, *sizes)

    def kernel_volume(self, shape: Shape) -> int:
        return prod([a[0] for a in self._axes(shape)])

    def layout_for(self, shape: Shape) -> MemoryFormat:
        return _conv_layout(self, shape)

    def allocated(self, shape: Shape, output: Shape) -> int:
        # the slow 3-D transposed kernel writes into a buffer at least as large as its input
        # (measured: max(input, output) elements in 2,184 of 2,184 configurations, torch 2.13; the
        # slow forward kernel allocates the output alone)
        return max(prod(output), prod(shape[1:])) if _slow_3d(self, shape) else prod(output)

    def weights(self, inputs: Sequence[Shape]) -> int:
        # [C, K/g, *F]
        return inputs[0][0] * (self.out // self.groups) * self.kernel_volume(inputs[0])

    def biases(self, inputs: Sequence[Shape]) -> int:
        return self.out if self.bias else 0

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # every input element is scattered through the kernel into K/g output channels
        return prod(inputs[0][1:]) * self.weights(inputs)

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        shape = inputs[0]
        axes = self._axes(shape)
        kernel = times([a[0] for a in axes])
        per_group = str(self.out) if self.groups == 1 else f"{self.out}/{self.groups}"
        return [
            *group_axes([transposed_formula(size, *a[:4], a[4]) for size, a in zip(shape[1:], axes)]),
            _filters(self.out, self.groups),
            f"weights: {shape[0]}*{per_group}*{kernel} = {self.weights(inputs):,}",
            f"biases: {self.out}" if self.bias else "biases: 0 (bias: false)",
            f"MACs: ({times((*shape[1:], shape[0]))} inputs)*({per_group}*{kernel}) = {self.macs(inputs, output):,}",
        ]

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        # output o reads input i where i*S = o + P - j*D: how many depends on o mod S
        return [
            FieldStep(Fraction(k), Fraction(s), Fraction(p), transposed=True, dilation=d)
            for k, s, p, d, _ in self._axes(inputs[0])
        ]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        shape = inputs[0]
        rank = len(shape) - 1
        k, s, p, d, op = (tuple(a) for a in zip(*self._axes(shape)))
        kwargs = dict(
            in_channels=shape[0],
            out_channels=self.out,
            kernel_size=k,
            stride=s,
            padding=p,
            output_padding=op,
            groups=self.groups,
            bias=self.bias,
            dilation=d,
        )
        return TorchModule(
            f"ConvTranspose{rank}d", kwargs, defaults={**CONV_DEFAULTS, "output_padding": 0}, positional=2
        )
