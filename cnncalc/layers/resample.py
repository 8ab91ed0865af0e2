"""Resampling: interpolation to a new spatial size, and pixel/channel rearrangements (issue 10)."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import LayerError
from ..records import record
from .base import (
    ArgKind,
    ElementWise,
    FieldStep,
    Layer,
    Shape,
    TorchModule,
    arg,
    group_axes,
    per_axis,
    prod,
    register,
    spatial_rank,
)
from .counting import Rule, rules
from .layout import MemoryFormat

# The interpolation modes, the spatial rank each needs (None: any), and how many input positions
# per axis one output reads.
MODES: dict[str, tuple[int | None, int]] = {
    "nearest": (None, 1),
    "nearest-exact": (None, 1),
    "linear": (1, 2),
    "bilinear": (2, 2),
    "bicubic": (2, 4),
    "trilinear": (3, 2),
}


def _per_output(cost: dict[str, int]) -> Rule:
    """thop's count_upsample: a cost per output element that depends on the mode."""

    def rule(layer: Upsample, inputs: Sequence[Shape], output: Shape) -> int:
        if layer.like is not None:  # F.interpolate in a module thop has no hook for: nothing
            return 0
        return cost[layer.mode] * prod(output)

    return rule


def _fvcore_upsample(layer: Upsample, inputs: Sequence[Shape], output: Shape) -> int:
    # fvcore has handlers for aten::upsample_nearest2d (1 per output) and aten::upsample_bilinear2d
    # (4 per output) only: 1-D, 3-D, nearest-exact, linear, bicubic and trilinear count nothing
    if len(output) != 3:
        return 0
    return {"nearest": 1, "bilinear": 4}.get(layer.mode, 0) * prod(output)


def _ptflops_upsample(layer: Upsample, inputs: Sequence[Shape], output: Shape) -> int | float:
    # its nn.Upsample hook counts the output elements, and its patched F.interpolate counts again:
    # prod(size) x C with a size, else input elements x scale^rank (int(prod) for a tuple of scales)
    module = prod(output)
    scale = layer.scale_factor
    if layer.like is not None:  # F.interpolate alone (the Interpolate module has no hook)
        return prod(output)
    if scale is None:
        return module + prod(output)
    rank = len(inputs[0]) - 1  # a float scale makes a float count: an integer where it is one
    functional = prod(inputs[0]) * (int(math.prod(scale)) if isinstance(scale, tuple) else scale**rank)
    return module + (int(functional) if functional == int(functional) else functional)


@register("upsample", "interpolate")
@record
class Upsample(Layer):
    summary = (
        "interpolation to a size or by a scale factor (nn.Upsample): modes nearest, nearest-exact, linear (1-D), "
        "bilinear, bicubic (2-D), trilinear (3-D); out = floor(in * scale) per axis, or the size of the layer "
        "named by `like` (F.interpolate(x, size=other.shape[2:]), as segmentation heads end)"
    )
    layout = MemoryFormat.INPUT_FORMAT  # channels-last in, channels-last out
    shorthand = "scale_factor"
    max_inputs = 2  # the second is the layer `like` names, read for its size only
    counts = rules(
        fvcore=_fvcore_upsample,
        thop=_per_output(
            {"nearest": 0, "nearest-exact": 0, "linear": 5, "bilinear": 11, "bicubic": 259, "trilinear": 31}
        ),
        ptflops=_ptflops_upsample,
    )

    scale_factor: Any = arg(None, kind=ArgKind.OPTIONAL_SCALES, aliases=("scale",), doc="give one of the three")
    size: Any = arg(None, kind=ArgKind.OPTIONAL_POSITIVE_AXES, aliases=("output_size",), doc="give one of the three")
    mode: str = arg("nearest", kind=ArgKind.CHOICE, choices=tuple(MODES))
    align_corners: Any = arg(None, kind=ArgKind.OPTIONAL_BOOL, doc="linear modes only; null means false")
    like: Any = arg(None, kind=ArgKind.LAYER_NAME, doc="give one of the three")

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        rank = spatial_rank(inputs[0], self.kind)
        needs, _ = MODES[self.mode]
        if needs is not None and needs != rank:
            raise LayerError(
                f"upsample mode '{self.mode}' needs {needs} spatial axis(es)",
                received=f"input of shape {list(inputs[0])}",
                hint="nearest works on any rank; linear, bilinear and trilinear are 1-D, 2-D and 3-D",
            )
        if self.align_corners is not None and needs is None:
            raise LayerError(
                "align_corners is only for the interpolating modes (linear, bilinear, bicubic, trilinear), as in PyTorch",
                received=f"mode {self.mode}, align_corners {str(self.align_corners).lower()}",
            )
        if sum(value is not None for value in (self.size, self.scale_factor, self.like)) != 1:
            raise LayerError(
                "upsample needs exactly one of size, scale_factor and like",
                expected="size: [H, W], scale_factor: 2 or like: a_layer_name",
            )
        if self.like is not None:
            other = inputs[-1]
            if len(other) != len(inputs[0]):
                raise LayerError(
                    f"upsample's 'like: {self.like}' has another number of axes",
                    received=f"{list(inputs[0])} like {list(other)}",
                )
            out = tuple(other[1:])
        elif self.size is not None:
            out = per_axis(self.size, rank, "size")
        else:
            scales = self.scale_factor if isinstance(self.scale_factor, tuple) else (self.scale_factor,) * rank
            if len(scales) != rank:
                raise LayerError(
                    f"'scale_factor' has {len(scales)} values but the input has {rank} spatial axes",
                    received=list(scales),
                    expected=f"one value, or {rank} values",
                )
            out = tuple(int(size * s) for size, s in zip(inputs[0][1:], scales))  # floor(in * scale), in double as ATen
        if min(out) < 1:
            raise LayerError(
                "upsample's output would be empty",
                received=f"{list(inputs[0][1:])} x {self.scale_factor} = {list(out)}",
            )
        return (inputs[0][0], *out)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        if self.like is not None:  # the size is read from the second input when it runs
            return TorchModule(
                "Interpolate",
                {"mode": self.mode, "align_corners": self.align_corners},
                defaults={"align_corners": None},
            )
        rank = len(inputs[0]) - 1
        size = None if self.size is None else per_axis(self.size, rank, "size")
        kwargs = {
            "size": size,
            "scale_factor": self.scale_factor,
            "mode": self.mode,
            "align_corners": self.align_corners,
        }
        return TorchModule(
            "Upsample", kwargs, defaults={"size": None, "scale_factor": None, "mode": "nearest", "align_corners": None}
        )

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        # One output reads `taps` neighbours per axis, at input position (i + 0.5) * in/out - 0.5
        # (i * (in-1)/(out-1) with align_corners, floor(i * in/out) for nearest): where they lie
        # shifts from output to output, so this is the step at the first output, at the mean stride.
        _, taps = MODES[self.mode]
        steps = []
        for size, out in zip(inputs[0][1:], self.output_shape(inputs)[1:]):
            ratio = Fraction(size, out)
            if self.mode == "nearest":
                centre = Fraction(0)
            elif self.mode == "nearest-exact":
                centre = Fraction(math.floor(ratio / 2))
            elif self.align_corners:
                centre = Fraction(1, 2)  # taps 0, 1 (bicubic: -1 to 2)
            else:
                source = ratio / 2 - Fraction(1, 2)  # clamped at 0 for the linear modes, not for bicubic
                centre = math.floor(max(source, Fraction(0)) if taps == 2 else source) + Fraction(1, 2)
            steps.append(FieldStep(Fraction(taps), ratio, Fraction(taps - 1, 2) - centre))
        return steps

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        if self.size is not None or self.like is not None:
            given = "size given" if self.like is None else f"the size of {self.like}"
            texts = [f"{size} -> {out} ({given})" for size, out in zip(inputs[0][1:], output[1:])]
        else:
            scales = (
                self.scale_factor if isinstance(self.scale_factor, tuple) else (self.scale_factor,) * len(output[1:])
            )
            texts = [f"floor({size} * {s:g}) = {out}" for size, s, out in zip(inputs[0][1:], scales, output[1:])]
        _, taps = MODES[self.mode]
        return [
            *group_axes(texts),
            f"C: {inputs[0][0]}",
            f"{self.mode}: each output reads {taps} input position(s) per axis; no parameters",
            "receptive field: where an output reads moves with its position (shown: the first output, the mean stride)",
        ]


@record
class PixelRearrange(Layer):
    """nn.PixelShuffle / nn.PixelUnshuffle: channels <-> an r x r block of positions (2-D inputs).
    Each subclass declares its `factor`."""

    layout = MemoryFormat.INPUT_FORMAT  # channels-last in, channels-last out
    if TYPE_CHECKING:  # for the checker only: as a dataclass field here it would change the subclasses' fields

        @property
        def factor(self) -> int: ...

    def _check(self, shape: Shape) -> None:
        if len(shape) != 3:
            raise LayerError(
                f"{self.kind} needs a 2-D input [C, H, W] (as PyTorch's module reads it)",
                received=f"input of shape {list(shape)}",
            )

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        (c, h, w), (oc, oh, ow), r = inputs[0], output, self.factor
        op = "/" if oc < c else "*"
        return [
            f"C: {c} {op} {r}^2 = {oc}",
            f"H, W: {h}x{w} {'*' if op == '/' else '/'} {r} = {oh}x{ow}",
            "a rearrangement: no arithmetic, no parameters",
        ]

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        # shuffle: output i reads input floor(i / r) (stride 1/r); unshuffle: input i*r + k, one of r (kernel r, stride r)
        out = self.output_shape(inputs)
        steps = []
        for size, n in zip(inputs[0][1:], out[1:]):
            ratio = Fraction(size, n)
            kernel = max(ratio, Fraction(1))
            steps.append(FieldStep(kernel, ratio, Fraction(0)))
        return steps


@register("pixel_shuffle", "pixelshuffle")
@record
class PixelShuffle(PixelRearrange):
    summary = "[C*r^2, H, W] -> [C, H*r, W*r] (sub-pixel convolution's upscale)"
    shorthand = "factor"
    counts = rules()

    factor: int = arg(kind=ArgKind.POSITIVE, aliases=("upscale_factor",))

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        self._check(inputs[0])
        c, h, w = inputs[0]
        r = self.factor
        if c % (r * r):
            raise LayerError(f"pixel_shuffle needs channels divisible by factor^2 = {r * r}", received=f"{c} channels")
        return (c // (r * r), h * r, w * r)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("PixelShuffle", {"upscale_factor": self.factor}, positional=1)


@register("pixel_unshuffle", "pixelunshuffle")
@record
class PixelUnshuffle(PixelRearrange):
    summary = "[C, H*r, W*r] -> [C*r^2, H, W] (space to depth)"
    shorthand = "factor"
    counts = rules()

    factor: int = arg(kind=ArgKind.POSITIVE, aliases=("downscale_factor",))

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        self._check(inputs[0])
        c, h, w = inputs[0]
        r = self.factor
        if h % r or w % r:
            raise LayerError(
                f"pixel_unshuffle needs H and W divisible by the factor {r}",
                received=f"input of shape {list(inputs[0])}",
            )
        return (c * r * r, h // r, w // r)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("PixelUnshuffle", {"downscale_factor": self.factor}, positional=1)


@register("channel_shuffle", "channelshuffle")
@record
class ChannelShuffle(ElementWise):
    summary = "ShuffleNet's channel shuffle: [g, C/g] channels transposed to [C/g, g]; positions kept"
    layout = MemoryFormat.INPUT_FORMAT  # channels-last in, channels-last out
    shorthand = "groups"
    counts = rules()

    groups: int = arg(kind=ArgKind.POSITIVE)

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if len(inputs[0]) < 2:
            spatial_rank(inputs[0], self.kind)
        if inputs[0][0] % self.groups:
            raise LayerError(
                f"channel_shuffle needs channels divisible by groups {self.groups}", received=f"{inputs[0][0]} channels"
            )
        return inputs[0]

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        c, g = inputs[0][0], self.groups
        return [
            f"C: {c} = {g} groups x {c // g}, reordered to {c // g} x {g}; shape kept, no arithmetic, no parameters"
        ]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("ChannelShuffle", {"groups": self.groups}, positional=1)
