"""Layer types: one small frozen dataclass per type, registered under its YAML name.

A layer type answers everything that varies by type: its output shape, weights, biases,
buffers, multiply-accumulates, and the PyTorch module (class name and keyword arguments)
that computes the same thing. Parsing, analysis, rendering and the PyTorch bridge are generic.

Shapes are tuples `(C, *spatial)` for one sample: the batch axis is never part of a shape.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields, make_dataclass
from enum import Enum
from fractions import Fraction
from typing import Any, Callable, ClassVar, Mapping, Sequence

from .errors import LayerError, did_you_mean
from .geometry import Window, adaptive_largest, effective_kernel, same_padding, transposed_formula, transposed_output_size, window_output_size

Shape = tuple[int, ...]


class ArgKind(Enum):
    """How a YAML value is read into a layer argument."""

    POSITIVE = "a positive integer"
    NON_NEGATIVE = "a non-negative integer"
    POSITIVE_AXES = "a positive integer or a list of them, one per spatial axis"
    NON_NEGATIVE_AXES = "a non-negative integer or a list of them, one per spatial axis"
    PADDING = "a non-negative integer, a list of them (one per spatial axis), 'same' or 'valid'"
    BOOL = "true or false"
    NUMBER = "a number"
    PROBABILITY = "a number from 0 to 1"
    APPROXIMATE = "'none' or 'tanh'"
    OPTIONAL_POSITIVE_AXES = "a positive integer, a list of them, or null"


def arg(default: Any = MISSING, *, kind: ArgKind, aliases: tuple[str, ...] = (), doc: str = "") -> Any:
    """Declare a layer argument: its kind, the other spellings accepted (PyTorch's), a doc line."""
    return field(default=default, metadata={"kind": kind, "aliases": aliases, "doc": doc})


@dataclass(frozen=True)
class TorchModule:
    """What the PyTorch bridge must build: a `torch.nn` class name (or a bridge class) and its kwargs."""

    name: str
    kwargs: Mapping[str, Any]


@dataclass(frozen=True)
class Saved:
    """What a training step keeps of one layer for its backward pass, after PyTorch's autograd
    formulas (checked against `torch.autograd.graph.saved_tensors_hooks` in the tests)."""

    input: bool = False  # its input tensor (one copy, however many layers keep it)
    output: bool = False  # its output tensor
    elements: int = 0  # tensors of its own, per sample, in the activation dtype
    int64: int = 0  # int64 elements per sample (max pooling's indices)
    fp32_per_batch: int = 0  # fp32 elements for the whole batch (batch norm's mean and 1/std)


@dataclass(frozen=True)
class Layer:
    """Base of every layer type. Subclasses set `kind` and override what differs from these defaults."""

    kind: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    shorthand: ClassVar[str | None] = None  # the argument a scalar value sets (`linear: 4096`)
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    # True where PyTorch returns a view of (or the very) input tensor: no new activation storage.
    aliases_input: ClassVar[bool] = False
    copies_in_training: ClassVar[bool] = False  # an alias at inference that is a new tensor in training
    # The tensor its backward formula reads ("input", "output" or None); `saved` adds any others.
    keeps: ClassVar[str | None] = None

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        return inputs[0]

    def weights(self, inputs: Sequence[Shape]) -> int:
        return 0

    def biases(self, inputs: Sequence[Shape]) -> int:
        return 0

    def buffers(self, inputs: Sequence[Shape]) -> int:
        return 0

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        return 0

    def fit_warnings(self, inputs: Sequence[Shape]) -> list[str]:
        """Axes where the stride does not tile the (padded) input: the notes' "doesn't fit"."""
        return []

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        """What a training step keeps of this layer for backward: by default the tensor `keeps` names."""
        return Saved(input=self.keeps == "input", output=self.keeps == "output")

    def scratch(self, inputs: Sequence[Shape], output: Shape) -> int:
        """Activation elements per sample that PyTorch holds while running this layer at inference,
        beyond its inputs and its output (temporaries of composite operations)."""
        return 0

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        """The arithmetic behind this layer's numbers, filled in (`--explain`, `cnncalc conv`)."""
        return ["output shape = input shape; no parameters"]

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        """How this layer moves the receptive field, one step per spatial axis of its output.

        None: the layer keeps positions as they are (element-wise layers, merges). An empty list:
        every output reads the whole input (flatten, linear).
        """
        return None if len(inputs[0]) == len(self.output_shape(inputs)) else []

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        raise NotImplementedError(f"{self.kind} has no PyTorch module")


@dataclass(frozen=True)
class FieldStep:
    """One axis of a layer, as the receptive-field recurrences see it (in the layer's input units).

    r_out = r_in + (kernel - 1) * j_in;  j_out = j_in * stride;  start_out = start_in + ((kernel - 1)/2 - pad) * j_in
    """

    kernel: Fraction
    stride: Fraction
    pad: Fraction


REGISTRY: dict[str, type[Layer]] = {}
ALIASES: dict[str, str] = {}  # other spellings (PyTorch's class names) -> registered kind


def register(kind: str, *aliases: str) -> Callable[[type[Layer]], type[Layer]]:
    """Register a layer type under its YAML name (and other spellings); a name taken twice raises."""

    def decorate(cls: type[Layer]) -> type[Layer]:
        for name in (kind, *aliases):
            if name in REGISTRY or name in ALIASES:
                raise ValueError(f"layer type name {name!r} is registered twice")
        cls.kind = kind
        REGISTRY[kind] = cls
        for alias in aliases:
            ALIASES[alias] = kind
        return cls

    return decorate


def layer_type(name: str) -> type[Layer] | None:
    """The registered layer class for a YAML type name or alias, or None."""
    name = ALIASES.get(name, name)
    return REGISTRY.get(name)


# ----- reading arguments -------------------------------------------------------------------


def argument_names(cls: type[Layer]) -> dict[str, str]:
    """Every accepted key (canonical and alias) mapped to its canonical argument name."""
    names: dict[str, str] = {}
    for f in fields(cls):
        names[f.name] = f.name
        for alias in f.metadata.get("aliases", ()):
            names[alias] = f.name
    return names


def build_layer(cls: type[Layer], args: Mapping[str, Any]) -> Layer:
    """Make a layer from its YAML arguments, checking each key and value; raises LayerError."""
    names = argument_names(cls)
    values: dict[str, Any] = {}
    for key, value in args.items():
        canonical = names.get(str(key))
        if canonical is None:
            raise LayerError(
                f"unknown argument '{key}' for {cls.kind}",
                received=key,
                expected="one of " + (", ".join(f.name for f in fields(cls)) or "no arguments"),
                hint=did_you_mean(str(key), names),
            )
        if canonical in values:
            raise LayerError(f"argument '{canonical}' is given twice (as '{key}' and another spelling)", received=key)
        f = next(f for f in fields(cls) if f.name == canonical)
        values[canonical] = _convert(value, f.metadata["kind"], canonical, cls.kind)
    for f in fields(cls):
        if f.name not in values and f.default is MISSING:
            example = _EXAMPLES.get(f.metadata["kind"], "")
            raise LayerError(
                f"{cls.kind} needs '{f.name}'",
                expected=f"{f.name}: {f.metadata['kind'].value}{example}",
                hint=f.metadata.get("doc") or None,
            )
    return cls(**values)


_EXAMPLES = {ArgKind.POSITIVE: " (e.g. 64)", ArgKind.POSITIVE_AXES: " (e.g. 3 or [3, 3])"}


def _convert(value: Any, kind: ArgKind, name: str, layer: str) -> Any:
    def bad() -> LayerError:
        return LayerError(f"bad value for '{name}' of {layer}", received=value, expected=kind.value)

    def integer(v: Any, low: int) -> int:
        if type(v) is not int or v < low:
            raise bad()
        return v

    def axes(v: Any, low: int) -> int | tuple[int, ...]:
        if isinstance(v, list):
            if not 1 <= len(v) <= 3:
                raise bad()
            return tuple(integer(x, low) for x in v)
        return integer(v, low)

    if kind is ArgKind.POSITIVE:
        return integer(value, 1)
    if kind is ArgKind.NON_NEGATIVE:
        return integer(value, 0)
    if kind is ArgKind.POSITIVE_AXES:
        return axes(value, 1)
    if kind is ArgKind.OPTIONAL_POSITIVE_AXES:
        return None if value is None else axes(value, 1)
    if kind is ArgKind.NON_NEGATIVE_AXES:
        return axes(value, 0)
    if kind is ArgKind.PADDING:
        if value in ("same", "valid"):
            return value
        return axes(value, 0)
    if kind is ArgKind.BOOL:
        if type(value) is not bool:
            raise bad()
        return value
    if kind in (ArgKind.NUMBER, ArgKind.PROBABILITY):
        if type(value) not in (int, float) or math.isnan(value) or math.isinf(value):
            raise bad()
        if kind is ArgKind.PROBABILITY and not 0 <= value <= 1:
            raise bad()
        return float(value)
    if kind is ArgKind.APPROXIMATE:
        if value not in ("none", "tanh"):
            raise bad()
        return value
    raise AssertionError(kind)  # every ArgKind is handled above


# ----- shared helpers ----------------------------------------------------------------------


def per_axis(value: int | tuple[int, ...], rank: int, name: str) -> tuple[int, ...]:
    """An int for every spatial axis, or a list with exactly one value per axis."""
    if isinstance(value, int):
        return (value,) * rank
    if len(value) != rank:
        raise LayerError(
            f"'{name}' has {len(value)} values but the input has {rank} spatial axes",
            received=list(value),
            expected=f"one value, or {rank} values",
        )
    return tuple(value)


def spatial_rank(shape: Shape, layer: str, at_least: int = 1) -> int:
    rank = len(shape) - 1
    if rank < at_least:
        raise LayerError(
            f"{layer} needs an input with spatial axes",
            received=f"input of shape {list(shape)}",
            expected=f"[C, ...] with at least {at_least} spatial axis",
            hint="is there a flatten or linear layer before it?",
        )
    if rank > 3:
        raise LayerError(f"{layer} supports 1 to 3 spatial axes", received=f"input of shape {list(shape)}")
    return rank


def _prod(values: Sequence[int]) -> int:
    return math.prod(values)


@dataclass(frozen=True)
class Windowed(Layer):
    """Shared by convolution and pooling: sliding windows over every spatial axis."""

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
        else:
            pads = [(p, p) for p in per_axis(padding, rank, "padding")]
        return [
            Window(size, k, s, left, right, d, ceil_mode)
            for size, k, s, (left, right), d in zip(shape[1:], kernels, strides, pads, dilations)
        ]

    def spatial_out(self, shape: Shape) -> tuple[int, ...]:
        return tuple(window_output_size(w) for w in self.windows(shape))

    def fit_warnings(self, inputs: Sequence[Shape]) -> list[str]:
        by_text: dict[str, list[str]] = {}
        windows = self.windows(inputs[0])
        names = _AXIS_NAMES[len(windows)]
        for axis, w in zip(names, windows):
            if w.remainder and not w.ceil_mode:
                span = effective_kernel(w.kernel, w.dilation)
                text = (
                    f"({w.size} - {span} + {w.pad_left + w.pad_right})/{w.stride} + 1 = {w.fraction()}: "
                    f"floor drops the last {w.remainder} input position(s)"
                )
                by_text.setdefault(text, []).append(axis)
        return [f"stride does not tile the input ({' and '.join(axes)}): {text}" for text, axes in by_text.items()]

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return [FieldStep(Fraction(effective_kernel(w.kernel, w.dilation)), Fraction(w.stride), Fraction(w.pad_left))
                for w in self.windows(inputs[0])]  # fmt: skip

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        # pooling: the channels pass through, nothing is learned
        return [*self.axis_working(inputs[0]), f"C: {inputs[0][0]} (pooling keeps the channels)", "params: 0"]

    def axis_working(self, shape: Shape) -> list[str]:
        """`H, W: (227 - 11 + 2*0)/4 + 1 = 55`, axes with the same working on one line."""
        windows = self.windows(shape)
        return _group_axes([w.formula() for w in windows])

    def torch_window_kwargs(self, shape: Shape) -> dict[str, Any]:
        kernel, stride, padding, dilation, _ = self.window_args()
        rank = spatial_rank(shape, self.kind)
        kwargs: dict[str, Any] = {
            "kernel_size": per_axis(kernel, rank, "kernel"),
            "stride": per_axis(stride if stride is not None else kernel, rank, "stride"),
        }
        kwargs["padding"] = padding if isinstance(padding, str) else per_axis(padding, rank, "padding")
        return kwargs


_AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def _group_axes(texts: Sequence[str]) -> list[str]:
    """One line per distinct text, prefixed by the axes it holds for: `H, W: ...`."""
    by_text: dict[str, list[str]] = {}
    for axis, text in zip(_AXIS_NAMES[len(texts)], texts):
        by_text.setdefault(text, []).append(axis)
    return [f"{', '.join(axes)}: {text}" for text, axes in by_text.items()]


def _filters(out: int, groups: int) -> str:
    return f"C: {out} filter{'s' if out != 1 else ''}" + (f" in {groups} groups" if groups > 1 else "")


def _times(values: Sequence[int]) -> str:
    return "*".join(str(v) for v in values)


def _check_groups(channels_in: int, channels_out: int, groups: int, layer: str) -> None:
    for label, channels in (("input", channels_in), ("output", channels_out)):
        if channels % groups:
            raise LayerError(
                f"{label} channels of {layer} are not divisible by groups",
                received=f"{channels} {label} channels, groups={groups}",
                expected="groups dividing both input and output channels",
            )


# ----- convolution -------------------------------------------------------------------------


@register("conv", "conv1d", "conv2d", "conv3d", "convolution")
@dataclass(frozen=True)
class Conv(Windowed):
    summary = "convolution (cross-correlation), any of 1 to 3 spatial axes"
    keeps = "input"  # for the weight gradient
    shorthand = None

    out: int = arg(kind=ArgKind.POSITIVE, aliases=("out_channels", "filters"), doc="number of filters K")
    kernel: Any = arg(kind=ArgKind.POSITIVE_AXES, aliases=("kernel_size",), doc="filter size F")
    stride: Any = arg(1, kind=ArgKind.POSITIVE_AXES)
    padding: Any = arg(0, kind=ArgKind.PADDING)
    dilation: Any = arg(1, kind=ArgKind.POSITIVE_AXES)
    groups: int = arg(1, kind=ArgKind.POSITIVE)
    bias: bool = arg(True, kind=ArgKind.BOOL)

    def window_args(self) -> tuple[Any, Any, Any, Any, bool]:
        return self.kernel, self.stride, self.padding, self.dilation, False

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        _check_groups(shape[0], self.out, self.groups, self.kind)
        if self.padding == "same" and any(s != 1 for s in per_axis(self.stride, len(shape) - 1, "stride")):
            raise LayerError(
                "padding 'same' needs stride 1 (as in PyTorch)",
                received=f"stride {self.stride}",
                hint="give the padding as a number instead",
            )
        return (self.out, *self.spatial_out(shape))

    def kernel_volume(self, shape: Shape) -> int:
        return _prod(per_axis(self.kernel, len(shape) - 1, "kernel"))

    def weights(self, inputs: Sequence[Shape]) -> int:
        # [K, C/g, *F] : (F*F*C/g) * K
        return self.kernel_volume(inputs[0]) * (inputs[0][0] // self.groups) * self.out

    def biases(self, inputs: Sequence[Shape]) -> int:
        return self.out if self.bias else 0

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # each output element: a dot product over (C/g) * F*F inputs
        return _prod(output) * (inputs[0][0] // self.groups) * self.kernel_volume(inputs[0])

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        shape = inputs[0]
        kernel = _times(per_axis(self.kernel, len(shape) - 1, "kernel"))
        channels = str(shape[0]) if self.groups == 1 else f"{shape[0]}/{self.groups}"
        return [
            *self.axis_working(shape),
            _filters(self.out, self.groups),
            f"weights: ({kernel}*{channels})*{self.out} = {self.weights(inputs):,}",
            f"biases: {self.out} (one per filter)" if self.bias else "biases: 0 (bias: false)",
            f"MACs: ({_times((*output[1:], output[0]))} outputs)*({kernel}*{channels}) = {self.macs(inputs, output):,}",
        ]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        shape = inputs[0]
        rank = len(shape) - 1
        kwargs = {"in_channels": shape[0], "out_channels": self.out, **self.torch_window_kwargs(shape)}
        kwargs.update(dilation=per_axis(self.dilation, rank, "dilation"), groups=self.groups, bias=self.bias)
        return TorchModule(f"Conv{rank}d", kwargs)


@register("conv_transpose", "convtranspose", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "deconv")
@dataclass(frozen=True)
class ConvTranspose(Layer):
    summary = "transposed convolution: (W - 1)S - 2P + D(F - 1) + output_padding + 1"
    keeps = "input"  # for the weight gradient

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
        return _prod([a[0] for a in self._axes(shape)])

    def weights(self, inputs: Sequence[Shape]) -> int:
        # [C, K/g, *F]
        return inputs[0][0] * (self.out // self.groups) * self.kernel_volume(inputs[0])

    def biases(self, inputs: Sequence[Shape]) -> int:
        return self.out if self.bias else 0

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # every input element is scattered through the kernel into K/g output channels
        return _prod(inputs[0][1:]) * self.weights(inputs)

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        shape = inputs[0]
        axes = self._axes(shape)
        kernel = _times([a[0] for a in axes])
        per_group = str(self.out) if self.groups == 1 else f"{self.out}/{self.groups}"
        return [
            *_group_axes([transposed_formula(size, *a[:4], a[4]) for size, a in zip(shape[1:], axes)]),
            _filters(self.out, self.groups),
            f"weights: {shape[0]}*{per_group}*{kernel} = {self.weights(inputs):,}",
            f"biases: {self.out}" if self.bias else "biases: 0 (bias: false)",
            f"MACs: ({_times((*shape[1:], shape[0]))} inputs)*({per_group}*{kernel}) = {self.macs(inputs, output):,}",
        ]

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        # An output reads at most ceil(D(F-1)+1 / S) inputs; the map is S times finer.
        steps = []
        for k, s, p, d, _ in self._axes(inputs[0]):
            span = effective_kernel(k, d)
            taps = -(-span // s)
            steps.append(FieldStep(Fraction(taps), Fraction(1, s), Fraction(taps - 1, 2) - (Fraction(p) - Fraction(span - 1, 2)) / s))
        return steps

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        shape = inputs[0]
        rank = len(shape) - 1
        k, s, p, d, op = (tuple(a) for a in zip(*self._axes(shape)))
        kwargs = dict(
            in_channels=shape[0], out_channels=self.out, kernel_size=k, stride=s, padding=p,
            output_padding=op, groups=self.groups, bias=self.bias, dilation=d,
        )  # fmt: skip
        return TorchModule(f"ConvTranspose{rank}d", kwargs)


# ----- pooling -----------------------------------------------------------------------------


def check_pool_padding(windows: list[Window], limit: Callable[[Window], int], rule: str) -> None:
    for w in windows:
        if max(w.pad_left, w.pad_right) > limit(w):
            raise LayerError(
                f"padding must be at most half of the {rule} (as in PyTorch)",
                received=f"padding {w.pad_left} with kernel {w.kernel}",
                expected=f"padding <= {limit(w)}",
            )


@register("maxpool", "max_pool", "maxpool1d", "maxpool2d", "maxpool3d")
@dataclass(frozen=True)
class MaxPool(Windowed):
    summary = "max pooling; stride defaults to the kernel"
    shorthand = "kernel"

    kernel: Any = arg(kind=ArgKind.POSITIVE_AXES, aliases=("kernel_size",))
    stride: Any = arg(None, kind=ArgKind.OPTIONAL_POSITIVE_AXES)
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
        return Saved(input=True, int64=_prod(output))  # max_pool*_with_indices

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        rank = len(inputs[0]) - 1
        kwargs = self.torch_window_kwargs(inputs[0])
        kwargs.update(dilation=per_axis(self.dilation, rank, "dilation"), ceil_mode=self.ceil_mode)
        return TorchModule(f"MaxPool{rank}d", kwargs)


@register("avgpool", "avg_pool", "avgpool1d", "avgpool2d", "avgpool3d")
@dataclass(frozen=True)
class AvgPool(Windowed):
    summary = "average pooling; stride defaults to the kernel"
    keeps = "input"
    shorthand = "kernel"

    kernel: Any = arg(kind=ArgKind.POSITIVE_AXES, aliases=("kernel_size",))
    stride: Any = arg(None, kind=ArgKind.OPTIONAL_POSITIVE_AXES)
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
        return TorchModule(f"AvgPool{rank}d", kwargs)


@dataclass(frozen=True)
class AdaptivePool(Layer):
    """Pooling to a fixed output size, whatever the input size."""

    reduce: ClassVar[str] = "Avg"
    output: Any = arg(1, kind=ArgKind.POSITIVE_AXES, aliases=("output_size", "size"))

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        rank = spatial_rank(inputs[0], self.kind)
        return (inputs[0][0], *per_axis(self.output, rank, "output"))

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        rank = len(inputs[0]) - 1
        return TorchModule(f"Adaptive{self.reduce}Pool{rank}d", {"output_size": per_axis(self.output, rank, "output")})

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        texts = [f"{size} -> {out} (window from floor(i*{size}/{out}) to ceil((i+1)*{size}/{out}))" for size, out in zip(inputs[0][1:], output[1:])]
        return [*_group_axes(texts), f"C: {inputs[0][0]}", "params: 0"]

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return [_adaptive_step(size, out) for size, out in zip(inputs[0][1:], self.output_shape(inputs)[1:])]

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        if self.reduce == "Max":
            return Saved(input=True, int64=_prod(output))
        # to a single position PyTorch takes the mean instead, which keeps nothing
        return Saved(input=any(size != 1 for size in output[1:]))


def _adaptive_step(size: int, out: int) -> FieldStep:
    """Adaptive pooling's windows, [floor(i*W/O), ceil((i+1)*W/O)): the largest one, and a stride of W/O."""
    kernel = adaptive_largest(size, out)
    return FieldStep(Fraction(kernel), Fraction(size, out), Fraction(0))


@register("adaptive_avgpool", "adaptiveavgpool", "adaptive_avgpool1d", "adaptive_avgpool2d", "adaptive_avgpool3d")
@dataclass(frozen=True)
class AdaptiveAvgPool(AdaptivePool):
    summary = "adaptive average pooling to a given output size"
    shorthand = "output"
    reduce = "Avg"


@register("adaptive_maxpool", "adaptivemaxpool", "adaptive_maxpool1d", "adaptive_maxpool2d", "adaptive_maxpool3d")
@dataclass(frozen=True)
class AdaptiveMaxPool(AdaptivePool):
    summary = "adaptive max pooling to a given output size"
    shorthand = "output"
    reduce = "Max"


@register("global_avgpool", "globalavgpool", "gap")
@dataclass(frozen=True)
class GlobalAvgPool(Layer):
    summary = "global average pooling: every spatial axis to 1"

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        rank = spatial_rank(inputs[0], self.kind)
        return (inputs[0][0], *(1,) * rank)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        rank = len(inputs[0]) - 1
        return TorchModule(f"AdaptiveAvgPool{rank}d", {"output_size": (1,) * rank})

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [f"{_times(inputs[0][1:])} -> {_times(output[1:])}: the mean of each channel", f"C: {inputs[0][0]}", "params: 0"]

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return [_adaptive_step(size, 1) for size in inputs[0][1:]]


# ----- linear, flatten, normalisation ------------------------------------------------------


@register("linear", "fc", "dense")
@dataclass(frozen=True)
class Linear(Layer):
    summary = "fully connected layer on a flat input"
    keeps = "input"  # for the weight gradient
    shorthand = "out"

    out: int = arg(kind=ArgKind.POSITIVE, aliases=("out_features", "units"))
    bias: bool = arg(True, kind=ArgKind.BOOL)

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if len(inputs[0]) != 1:
            raise LayerError(
                "linear needs a flat input",
                received=f"input of shape {list(inputs[0])}",
                expected="[features]",
                hint="add '- flatten' before it (or a global_avgpool and a flatten)",
            )
        return (self.out,)

    def weights(self, inputs: Sequence[Shape]) -> int:
        # [out, in]
        return inputs[0][0] * self.out

    def biases(self, inputs: Sequence[Shape]) -> int:
        return self.out if self.bias else 0

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        return inputs[0][0] * self.out

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Linear", {"in_features": inputs[0][0], "out_features": self.out, "bias": self.bias})

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        n = inputs[0][0]
        return [
            f"output: {self.out} features",
            f"weights: {n}*{self.out} = {self.weights(inputs):,}",
            f"biases: {self.out}" if self.bias else "biases: 0 (bias: false)",
            f"MACs: {n}*{self.out} = {self.macs(inputs, output):,}",
        ]


@register("flatten")
@dataclass(frozen=True)
class Flatten(Layer):
    summary = "flattens channels and spatial axes into one (a view: no new memory)"
    aliases_input = True

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        return (_prod(inputs[0]),)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Flatten", {})

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [f"{_times((*inputs[0][1:], inputs[0][0]))} = {output[0]:,} features (a view of its input); no parameters"]


@register("batchnorm", "batch_norm", "bn", "batchnorm1d", "batchnorm2d", "batchnorm3d")
@dataclass(frozen=True)
class BatchNorm(Layer):
    summary = "batch normalisation: gamma (weight) and beta (bias) per channel; running mean/var as buffers"

    eps: float = arg(1e-5, kind=ArgKind.NUMBER)
    momentum: float = arg(0.1, kind=ArgKind.NUMBER)
    affine: bool = arg(True, kind=ArgKind.BOOL)
    track_running_stats: bool = arg(True, kind=ArgKind.BOOL)

    def weights(self, inputs: Sequence[Shape]) -> int:
        return inputs[0][0] if self.affine else 0

    def biases(self, inputs: Sequence[Shape]) -> int:
        return inputs[0][0] if self.affine else 0

    def buffers(self, inputs: Sequence[Shape]) -> int:
        # running_mean [C], running_var [C], num_batches_tracked [] (one int64)
        return 2 * inputs[0][0] + 1 if self.track_running_stats else 0

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        c = inputs[0][0]
        lines = ["output = input, normalised per channel"]
        lines.append(f"weights (gamma): {c}; biases (beta): {c}" if self.affine else "no weights (affine: false)")
        if self.track_running_stats:
            lines.append(f"buffers: running mean {c} + running var {c} + num_batches_tracked 1 = {2 * c + 1}")
        return lines

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        return Saved(input=True, fp32_per_batch=2 * inputs[0][0])  # and save_mean, save_invstd

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        rank = max(1, len(inputs[0]) - 1)  # BatchNorm1d takes [N, C] and [N, C, L]
        kwargs = dict(num_features=inputs[0][0], eps=self.eps, momentum=self.momentum, affine=self.affine,
                      track_running_stats=self.track_running_stats)  # fmt: skip
        return TorchModule(f"BatchNorm{rank}d", kwargs)


@register("lrn", "local_response_norm", "localresponsenorm", "norm")
@dataclass(frozen=True)
class LocalResponseNorm(Layer):
    summary = "local response normalisation across channels (AlexNet's NORM layers); no parameters"
    shorthand = "size"

    size: int = arg(5, kind=ArgKind.POSITIVE, doc="number of neighbouring channels")
    alpha: float = arg(1e-4, kind=ArgKind.NUMBER)
    beta: float = arg(0.75, kind=ArgKind.NUMBER)
    k: float = arg(1.0, kind=ArgKind.NUMBER)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("LocalResponseNorm", {"size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k})

    # F.local_response_norm is composite: x*x, padded by size - 1 channels, averaged over channel
    # windows, then *alpha + k, ** beta, and x / that.
    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        channels, positions = inputs[0][0], _prod(inputs[0][1:])
        padded = (channels + self.size - 1) * positions
        return Saved(input=True, elements=padded + 2 * channels * positions)  # the pool's input, pow's base and result

    def scratch(self, inputs: Sequence[Shape], output: Shape) -> int:
        return 2 * _prod(inputs[0])  # at its peak three temporaries of the input's size live, the output not yet


@register("dropout")
@dataclass(frozen=True)
class Dropout(Layer):
    summary = "dropout; at inference it returns its input (no new memory)"
    shorthand = "p"
    aliases_input = True

    p: float = arg(0.5, kind=ArgKind.PROBABILITY)
    copies_in_training: ClassVar[bool] = True  # training makes a new output

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Dropout", {"p": self.p})

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        # the scaled noise tensor on CPU (a 1-byte mask on CUDA, which this over-counts)
        return Saved(elements=_prod(output))


@register("identity")
@dataclass(frozen=True)
class Identity(Layer):
    summary = "returns its input unchanged"
    aliases_input = True

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Identity", {})


# ----- element-wise activations: one factory, one row each ---------------------------------


@dataclass(frozen=True)
class Activation(Layer):
    """An element-wise function: the output has the input's shape; no parameters."""

    torch_name: ClassVar[str] = ""
    keeps: ClassVar[str | None] = "input"

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule(self.torch_name, {f.name: getattr(self, f.name) for f in fields(self)})


def _activation(kind: str, torch_name: str, summary: str, *args: tuple[str, Any, ArgKind], fixed: Mapping[str, Any] | None = None,
                keeps: str = "input") -> type[Layer]:  # fmt: skip
    """Make and register an activation type with the given (name, default, kind) arguments."""
    cls = make_dataclass(
        torch_name,
        [(name, Any, arg(default, kind=kind)) for name, default, kind in args],
        bases=(Activation,),
        frozen=True,
        namespace={"torch_name": torch_name, "summary": summary, "shorthand": args[0][0] if args else None, "keeps": keeps},
    )
    if fixed:
        cls.torch_module = lambda self, inputs: TorchModule(torch_name, dict(fixed))  # type: ignore[method-assign]
    return register(kind)(cls)


ReLU = _activation("relu", "ReLU", "max(0, x)", keeps="output")
LeakyReLU = _activation("leaky_relu", "LeakyReLU", "max(ax, x)", ("negative_slope", 0.01, ArgKind.NUMBER))
Sigmoid = _activation("sigmoid", "Sigmoid", "1 / (1 + e^-x)", keeps="output")
Tanh = _activation("tanh", "Tanh", "tanh(x)", keeps="output")
ELU = _activation("elu", "ELU", "x, or a(e^x - 1) below zero", ("alpha", 1.0, ArgKind.NUMBER))
GELU = _activation("gelu", "GELU", "x * Phi(x)", ("approximate", "none", ArgKind.APPROXIMATE))
SiLU = _activation("silu", "SiLU", "x * sigmoid(x) (swish)")
Softmax = _activation("softmax", "Softmax", "softmax over channels", fixed={"dim": 1}, keeps="output")


# ----- merges ------------------------------------------------------------------------------


@register("add")
@dataclass(frozen=True)
class Add(Layer):
    summary = "element-wise sum of two or more inputs of one shape (residual connections)"
    min_inputs = 2
    max_inputs = None

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        first = inputs[0]
        for other in inputs[1:]:
            if other != first:
                what = "channel" if other[1:] == first[1:] and len(other) == len(first) else "shape"
                raise LayerError(
                    f"add needs inputs of one shape ({what} mismatch)",
                    received=" + ".join(str(list(s)) for s in inputs),
                    expected="the same [C, ...] for every input",
                    hint="a projection (1x1 conv) on the shortcut makes the channels and sizes match",
                )
        return first

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Add", {})

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [f"element-wise sum of {len(inputs)} inputs of one shape; no parameters"]


@register("concat", "cat")
@dataclass(frozen=True)
class Concat(Layer):
    summary = "concatenation of two or more inputs on the channel axis (Inception, DenseNet, U-Net)"
    min_inputs = 2
    max_inputs = None

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        first = inputs[0]
        for other in inputs[1:]:
            if other[1:] != first[1:]:
                raise LayerError(
                    "concat needs inputs with the same spatial size",
                    received=" | ".join(str(list(s)) for s in inputs),
                    expected="the same [..., H, W] for every input; channels may differ",
                )
        return (sum(s[0] for s in inputs), *first[1:])

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Concat", {})

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [f"C: {' + '.join(str(s[0]) for s in inputs)} = {output[0]} (concatenated channels); no parameters"]
