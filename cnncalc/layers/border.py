"""Borders: padding (constant, reflect, replicate, circular) and centre cropping (issue 10)."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from ..errors import LayerError
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
    register,
    spatial_rank,
)
from .counting import rules
from .layout import MemoryFormat

PAD_MODES = ("constant", "reflect", "replicate", "circular")
_PAD_MODULES = {
    "constant": "ConstantPad",
    "reflect": "ReflectionPad",
    "replicate": "ReplicationPad",
    "circular": "CircularPad",
}


@record
class Padding(Layer):
    """Padding by per-side amounts, written in PyTorch's order: the last axis first (left, right,
    then top, bottom, then front, back). Each subclass declares `padding` and `mode`."""

    if TYPE_CHECKING:  # for the checker only: as dataclass fields here they would come first in every subclass

        @property
        def padding(self) -> Any: ...

        @property
        def mode(self) -> str: ...

    @property
    def layout(self) -> MemoryFormat:  # type: ignore[override]
        amounts = self.padding if isinstance(self.padding, (list, tuple)) else [self.padding]
        if self.mode == "constant" and not any(amounts):
            return MemoryFormat.INPUT_ORDER  # nothing to pad: PyTorch returns a clone, in its input's order
        # circular padding is built from slices and torch.cat; the others follow the input's format
        return MemoryFormat.CONTIGUOUS if self.mode == "circular" else MemoryFormat.INPUT_FORMAT

    # F.pad's meaning of one more pair after the spatial axes' (`pad` in constant mode only): the
    # channels (ResNet-20's option-A shortcut, F.pad(x, (0, 0, 0, 0, p, p)))
    pads_channels: ClassVar[bool] = False

    def _flat(self, shape: Shape) -> tuple[int, ...]:
        rank = spatial_rank(shape, self.kind)
        padding: Any = self.padding
        flat = (padding,) * (2 * rank) if isinstance(padding, int) else padding
        channels = self.pads_channels and self.mode == "constant"
        if len(flat) != 2 * rank and not (channels and len(flat) == 2 * rank + 2):
            also = f", or {2 * rank + 2} (the channels last)" if channels else ""
            raise LayerError(
                f"'padding' has {len(flat)} values but the input has {rank} spatial axes",
                received=list(flat),
                expected=f"one value, or {2 * rank} (two per axis, last axis first){also}",
            )
        return tuple(flat)

    def amounts(self, shape: Shape) -> list[tuple[int, int]]:
        """(before, after) for each spatial axis, first axis first."""
        rank = len(shape) - 1
        flat = self._flat(shape)
        return [(flat[2 * (rank - 1 - i)], flat[2 * (rank - 1 - i) + 1]) for i in range(rank)]

    def channel_amounts(self, shape: Shape) -> tuple[int, int]:
        """(before, after) on the channel axis: F.pad's pair after the spatial axes', else none."""
        flat = self._flat(shape)
        return (flat[-2], flat[-1]) if len(flat) == 2 * len(shape) else (0, 0)

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        pads = self.amounts(inputs[0])
        for size, (before, after) in zip(inputs[0][1:], pads):
            if self.mode == "reflect" and max(before, after) >= size:
                raise LayerError(
                    "reflect padding must be smaller than the input (as in PyTorch)",
                    received=f"padding {max(before, after)} of size {size}",
                )
            if self.mode == "circular" and max(before, after) > size:
                raise LayerError(
                    "circular padding can wrap around at most once (as in PyTorch)",
                    received=f"padding {max(before, after)} of size {size}",
                )
        ahead, behind = self.channel_amounts(inputs[0])
        if self.mode != "constant" and min(ahead, behind, *(n for pad in pads for n in pad)) < 0:
            raise LayerError(
                f"{self.mode} padding by a negative amount (PyTorch crops in constant mode only)",
                received=f"padding {list(self._flat(inputs[0]))}",
            )
        # PyTorch crops first (a narrow by both negative amounts), then pads: an axis cropped by
        # more than its size is refused even when the other end's padding would refill it
        pairs = ((inputs[0][0], (ahead, behind)), *zip(inputs[0][1:], pads))
        for size, (before, after) in pairs:
            if size + min(before, 0) + min(after, 0) < 0:
                raise LayerError(
                    f"{self.kind} crops an axis by more than its size (PyTorch crops before it pads)",
                    received=f"padding {list(self._flat(inputs[0]))} of [{', '.join(map(str, inputs[0]))}]",
                )
        # [C, *spatial] -> [ahead + C + behind, before + W + after, ...] (a negative amount crops)
        out = (
            ahead + inputs[0][0] + behind,
            *(size + before + after for size, (before, after) in zip(inputs[0][1:], pads)),
        )
        if min(out) < 1:
            raise LayerError(
                f"{self.kind} would leave nothing: its negative amounts crop the whole input",
                received=f"padding {list(self._flat(inputs[0]))} of [{', '.join(map(str, inputs[0]))}]",
            )
        return out

    def torch_padding(self, shape: Shape) -> tuple[int, ...]:
        return self._flat(shape)

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        texts = [
            f"{before} + {size} + {after} = {out}"
            for size, (before, after), out in zip(inputs[0][1:], self.amounts(inputs[0]), output[1:])
        ]
        before, after = self.channel_amounts(inputs[0])
        channels = f"C: {before} + {inputs[0][0]} + {after} = {output[0]}" if before or after else f"C: {inputs[0][0]}"
        return [*group_axes(texts), channels, f"{self.mode} padding: no arithmetic, no parameters"]

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        # the positions shift by the padding before them (reflect, replicate and circular borders
        # read inputs from elsewhere: the field of a border output is the one of the input it copies)
        return [FieldStep(Fraction(1), Fraction(1), Fraction(before)) for before, _ in self.amounts(inputs[0])]

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        # reflection_pad*_backward and replication_pad*_backward take the input; the others keep nothing
        return Saved(input=self.mode in ("reflect", "replicate"))


@register("pad")
@record
class Pad(Padding):
    summary = (
        "padding by per-side amounts (PyTorch's order: last axis first), mode constant, reflect, replicate or circular"
    )
    shorthand = "padding"
    counts = rules()

    padding: Any = arg(
        kind=ArgKind.SIGNED_PAD_AMOUNTS, doc="constant mode: one more pair after the spatial axes' pads the channels"
    )
    mode: str = arg("constant", kind=ArgKind.CHOICE, choices=PAD_MODES)
    value: float = arg(0.0, kind=ArgKind.FILL, doc="constant mode only")
    pads_channels = True

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if self.mode != "constant" and self.value != 0:
            raise LayerError("'value' is for constant padding only", received=f"mode {self.mode}, value {self.value:g}")
        return super().output_shape(inputs)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        rank = len(inputs[0]) - 1
        if self.channel_amounts(inputs[0]) != (0, 0):  # no nn.ConstantPadNd pads the channels: F.pad does
            return TorchModule(
                "FunctionalPad",
                {"padding": self.torch_padding(inputs[0]), "value": self.value},
                defaults={"value": 0.0},
                positional=1,
            )
        name = f"{_PAD_MODULES[self.mode]}{rank}d"
        if self.mode == "constant":
            return TorchModule(name, {"padding": self.torch_padding(inputs[0]), "value": self.value}, positional=2)
        return TorchModule(name, {"padding": self.torch_padding(inputs[0])}, positional=1)


@register("zero_pad", "zeropad", "zeropad1d", "zeropad2d", "zeropad3d")
@record
class ZeroPad(Padding):
    summary = "zero padding by per-side amounts (nn.ZeroPad2d; PyTorch's order: last axis first)"
    shorthand = "padding"
    counts = rules()

    padding: Any = arg(kind=ArgKind.SIGNED_PAD_AMOUNTS)  # nn.ZeroPad2d((-1, 1, -1, 1)): NASNet's shift
    mode: ClassVar[str] = "constant"

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule(f"ZeroPad{len(inputs[0]) - 1}d", {"padding": self.torch_padding(inputs[0])}, positional=1)


@record
class Cropping(Layer):
    """A slice of every spatial axis (a view of its input): each subclass says where it starts
    (`offsets`) and how long it is (`target`)."""

    aliases_input = True  # a slice: a view of its input

    def target(self, inputs: Sequence[Shape]) -> tuple[int, ...]:
        raise NotImplementedError

    def offsets(self, inputs: Sequence[Shape]) -> tuple[int, ...]:
        raise NotImplementedError

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        target = self.target(inputs)
        if any(want > size for size, want in zip(inputs[0][1:], target)):
            raise LayerError(
                f"{self.kind} cannot crop to a larger size",
                received=f"{list(inputs[0][1:])} to {list(target)}",
                hint="pad instead (pad or zero_pad)",
            )
        if min(target) < 1:
            raise LayerError(f"{self.kind} would leave nothing", received=f"{list(inputs[0][1:])} to {list(target)}")
        return (inputs[0][0], *target)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Crop", {"start": self.offsets(inputs), "size": self.target(inputs)})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        slices = [
            f"{a}:{a + n}" if n != size else ":"
            for a, n, size in zip(self.offsets(inputs), self.target(inputs), inputs[0][1:])
        ]
        return f"{args[0]}[:, :, {', '.join(slices)}]"

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return [FieldStep(Fraction(1), Fraction(1), Fraction(-a)) for a in self.offsets(inputs)]


@register("center_crop", "centercrop")
@record
class CenterCrop(Cropping):
    summary = (
        "the centre of every spatial axis, to a size or to the size of the layer named by `like` (U-Net's skip "
        "crops); an odd difference leaves the extra position at the end; a view of its input"
    )
    shorthand = "size"
    max_inputs = 2  # the second is the layer `like` names, read for its size only
    counts = rules()

    size: Any = arg(None, kind=ArgKind.OPTIONAL_POSITIVE_AXES, doc="give it or like")
    like: Any = arg(None, kind=ArgKind.LAYER_NAME, doc="give it or size")

    def target(self, inputs: Sequence[Shape]) -> tuple[int, ...]:
        rank = spatial_rank(inputs[0], self.kind)
        if (self.size is None) == (self.like is None):
            raise LayerError(
                "center_crop needs exactly one of size and like", expected="size: [H, W] or like: a_layer_name"
            )
        if self.like is None:
            return per_axis(self.size, rank, "size")
        other = inputs[-1]
        if len(other) != len(inputs[0]):
            raise LayerError(
                f"center_crop's 'like: {self.like}' has another number of axes",
                received=f"{list(inputs[0])} like {list(other)}",
            )
        return tuple(other[1:])

    def offsets(self, inputs: Sequence[Shape]) -> tuple[int, ...]:
        return tuple((size - want) // 2 for size, want in zip(inputs[0][1:], self.target(inputs)))

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        texts = [
            f"{size} -> {n}, from {a} = ({size} - {n}) // 2"
            for size, n, a in zip(inputs[0][1:], output[1:], self.offsets(inputs))
        ]
        source = f" (the size of {self.like})" if self.like is not None else ""
        return [
            *group_axes(texts),
            f"C: {inputs[0][0]}{source}",
            "a slice (a view of its input): no arithmetic, no parameters",
        ]


@register("crop")
@record
class Crop(Cropping):
    summary = "cuts per-side amounts off every spatial axis (pad's order: last axis first); a view of its input"
    shorthand = "amounts"
    counts = rules()

    amounts: Any = arg(kind=ArgKind.PAD_AMOUNTS, aliases=("cropping",))

    def sides(self, shape: Shape) -> list[tuple[int, int]]:
        """(before, after) for each spatial axis, first axis first (the amounts are written last axis first)."""
        rank = spatial_rank(shape, self.kind)
        flat = (self.amounts,) * (2 * rank) if isinstance(self.amounts, int) else self.amounts
        if len(flat) != 2 * rank:
            raise LayerError(
                f"'amounts' has {len(flat)} values but the input has {rank} spatial axes",
                received=list(flat),
                expected=f"one value, or {2 * rank} (two per axis, last axis first)",
            )
        return [(flat[2 * (rank - 1 - i)], flat[2 * (rank - 1 - i) + 1]) for i in range(rank)]

    def target(self, inputs: Sequence[Shape]) -> tuple[int, ...]:
        return tuple(size - before - after for size, (before, after) in zip(inputs[0][1:], self.sides(inputs[0])))

    def offsets(self, inputs: Sequence[Shape]) -> tuple[int, ...]:
        return tuple(before for before, _ in self.sides(inputs[0]))

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        texts = [
            f"{size} - {before} - {after} = {n}"
            for size, (before, after), n in zip(inputs[0][1:], self.sides(inputs[0]), output[1:])
        ]
        return [*group_axes(texts), f"C: {inputs[0][0]}", "a slice (a view of its input): no arithmetic, no parameters"]
