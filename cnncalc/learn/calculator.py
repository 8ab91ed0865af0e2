"""One layer on its own: the quiz questions "what is the output volume?", "how many parameters?".

The answers come from the same layer classes as the tables (one implementation), with the
working filled in.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Mapping

from ..errors import CnncalcError, LayerError
from ..layers import Shape, argument_names, build_layer, layer_type
from ..layers.base import per_axis
from ..records import record
from ..units import SIZE_SEPARATORS, read_sizes


@record
class LayerAnswer:
    kind: str
    input_shape: Shape  # channels first
    output_shape: Shape
    weights: int
    biases: int
    macs: int
    working: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def params(self) -> int:
        return self.weights + self.biases


# One layer on its own (`cnncalc conv`, a quiz's `conv:` question) has one filter unless `out` is
# given: the notes' output-size questions do not say how many. A spec still requires it.
DEFAULT_FILTERS = 1


def with_default_filters(kind: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """`args` with `out: DEFAULT_FILTERS` where `kind` is a convolution given no `out` (or alias)."""
    cls = layer_type(kind)
    if cls is None or cls.kind not in ("conv", "conv_transpose"):
        return dict(args)
    names = argument_names(cls)  # `filters: 96`, `out_channels: 96` are `out` too
    if any(names.get(key) == "out" for key in args):
        return dict(args)
    return {**args, "out": DEFAULT_FILTERS}


def answer(kind: str, input_shape: Shape, args: Mapping[str, Any]) -> LayerAnswer:
    """Output shape, weights, biases, MACs and the working of one layer on `input_shape` ([C, ...])."""
    cls = layer_type(kind)
    if cls is None:
        raise CnncalcError(f"unknown layer type '{kind}'")
    layer = build_layer(cls, args)
    inputs = [tuple(input_shape)]
    out = layer.output_shape(inputs)
    if any(size < 1 for size in out):
        raise LayerError(
            "output size is zero or less", received=f"output {list(out)}", hint="check kernel, stride and padding"
        )
    return LayerAnswer(
        cls.kind,
        tuple(input_shape),
        out,
        layer.weights(inputs),
        layer.biases(inputs),
        layer.macs(inputs, out),
        tuple(layer.working(inputs, out)),
        tuple(layer.fit_warnings(inputs)),
    )


@record
class Separable:
    """A standard convolution against the depthwise-separable one that replaces it (MobileNet): a
    depthwise k x k conv (one filter per input channel, the standard one's stride and padding)
    then a pointwise 1x1 conv to the same output channels."""

    standard: LayerAnswer
    depthwise: LayerAnswer
    pointwise: LayerAnswer
    kernel: tuple[int, ...]  # per spatial axis

    @property
    def params(self) -> int:
        return self.depthwise.params + self.pointwise.params

    @property
    def macs(self) -> int:
        return self.depthwise.macs + self.pointwise.macs

    def macs_ratio(self) -> Fraction:
        return Fraction(self.macs, self.standard.macs)

    def params_ratio(self) -> Fraction:
        return Fraction(self.params, self.standard.params)


def separable(input_shape: Shape, args: Mapping[str, Any]) -> Separable:
    """`args` (a conv's: out, kernel, stride, padding, dilation, bias; no groups) as a standard
    convolution and as its depthwise-separable replacement."""
    from ..layers.conv import Conv

    layer = build_layer(Conv, with_default_filters("conv", args))  # aliases (filters, kernel_size) read once
    assert isinstance(layer, Conv)
    if layer.groups != 1:
        raise CnncalcError(
            "a separable comparison starts from a standard convolution",
            received=f"groups {layer.groups}",
            hint="leave out --groups: the depthwise half has one group per input channel",
        )
    plain = {f: getattr(layer, f) for f in ("out", "kernel", "stride", "padding", "dilation", "bias")}
    plain = {f: list(v) if isinstance(v, tuple) else v for f, v in plain.items()}  # as written: lists
    standard = answer("conv", input_shape, plain)
    channels = input_shape[0]
    depthwise = answer("conv", input_shape, {**plain, "out": channels, "groups": channels})
    pointwise = answer("conv", depthwise.output_shape, {"out": layer.out, "kernel": 1, "bias": layer.bias})
    kernel = tuple(per_axis(layer.kernel, len(input_shape) - 1, "kernel"))
    return Separable(standard, depthwise, pointwise, kernel)


def read_input(text: str, hwc: bool = True, channels: int | None = None) -> Shape:
    """A layer input written the notes' way, returned channels first.

    hwc: `227x227x3` is H x W x C, `7x7` spatial sizes (one channel, or `channels`), and `7`
    means 7x7 as in the notes' "(N - F)/stride + 1";
    chw: the first number is always C (`3x227x227`, `1x7`).
    """
    sizes = read_sizes(text, "--input")
    if not hwc:
        if len(sizes) < 2 or len(sizes) > 4:
            raise CnncalcError(
                "malformed input shape", received=text, expected="C x L, C x H x W or C x D x H x W (chw)"
            )
        return sizes
    if len(sizes) == 1:
        sizes = sizes * 2  # `7`: a 7x7 input, as the notes write N for N x N
    if len(sizes) <= 2 or channels is not None:
        if len(sizes) > 3:
            raise CnncalcError("malformed input shape", received=text, expected="1 to 3 spatial sizes with --channels")
        return (channels or 1, *sizes)
    if len(sizes) > 4:
        raise CnncalcError("malformed input shape", received=text, expected="H x W x C (or L, H x W, D x H x W x C)")
    return (sizes[-1], *sizes[:-1])


def read_axes(text: str, name: str, allow_words: tuple[str, ...] = ()) -> int | tuple[int, ...] | str:
    """An option given once for every axis (`3`) or per axis (`3x5`, `3,5`); or one of `allow_words`."""
    value = str(text).strip().lower()
    if value in allow_words:
        return value
    try:
        sizes = tuple(int(p) for p in SIZE_SEPARATORS.split(value.strip("()[]")) if p)
    except ValueError:
        expected = "an integer or one per axis, such as 3 or 3x5" + (
            f", or {' / '.join(allow_words)}" if allow_words else ""
        )
        raise CnncalcError(f"cannot read --{name}", received=text, expected=expected) from None
    if not sizes:
        raise CnncalcError(f"cannot read --{name}", received=text, expected="an integer, such as 3")
    return sizes[0] if len(sizes) == 1 else sizes
