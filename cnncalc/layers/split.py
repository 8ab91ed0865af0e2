"""Layers with several outputs: pieces of the input along one axis, the channels by default
(ShuffleNetV2's `x.chunk(2, dim=1)`, Res2Net's `torch.split(x, width, 1)`). The spec expands one
`chunk`/`split` item into one row per piece, `name.0`, `name.1`, ... (each a view of the input, so
no new memory); `from: name.1` reads one. How many pieces there are is worked out from the spec's
input shape when the item is expanded (an integer `split` size: as many as torch.split makes)."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Callable, Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, FieldStep, Layer, Shape, TorchModule, arg, axis_index, register
from .counting import rules
from .layout import Strides


class _Pieces(Layer):
    """Base of the multi-output types: `piece_sizes(length)` gives every piece's length along the
    axis `dim`, `pieces(input_shape)` how many rows the spec expands the item into (it calls
    `input_shape()`, which works out the shapes of the layers before, only where it must)."""

    aliases_input = True  # torch.split/chunk return views
    counts = rules()

    if TYPE_CHECKING:  # fields of each subclass (here they would come first in every subclass)

        @property
        def piece(self) -> int: ...

        @property
        def dim(self) -> int: ...

    def piece_sizes(self, length: int) -> list[int]:
        raise NotImplementedError

    def pieces(self, input_shape: Callable[[], Shape]) -> int:
        shape = input_shape()
        return len(self.piece_sizes(shape[axis_index(self.dim, shape, self.kind)]))

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        axis = axis_index(self.dim, inputs[0], self.kind)
        sizes = self.piece_sizes(inputs[0][axis])
        if self.piece >= len(sizes):
            raise LayerError(f"{self.kind} has no piece {self.piece}", received=f"{len(sizes)} pieces")
        # [..., L_k, ...] = piece k of [..., L, ...] along dim
        return (*inputs[0][:axis], sizes[self.piece], *inputs[0][axis + 1 :])

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        axis = axis_index(self.dim, inputs[0], self.kind)
        if axis == 0:
            return None  # position for position
        start = sum(self.piece_sizes(inputs[0][axis])[: self.piece])
        return [
            FieldStep(Fraction(1), Fraction(1), Fraction(-start if k == axis else 0)) for k in range(1, len(inputs[0]))
        ]

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        axis = axis_index(self.dim, inputs[0], self.kind)
        sizes = self.piece_sizes(inputs[0][axis])
        what = "channels" if axis == 0 else f"positions on axis {axis + 1}"
        return [
            f"{inputs[0][axis]} {what} -> {' + '.join(map(str, sizes))}; piece {self.piece} has {output[axis]} (a view); "
            "no parameters"
        ]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        sizes = self.piece_sizes(inputs[0][axis_index(self.dim, inputs[0], self.kind)])
        return TorchModule("Piece", {"sizes": sizes, "index": self.piece, "dim": self.dim})


@register("chunk")
@record
class Chunk(_Pieces):
    summary = (
        "`chunks` pieces along an axis (the channels by default), as torch.chunk (rows name.0, name.1, ...; views)"
    )
    shorthand = "chunks"

    chunks: int = arg(kind=ArgKind.POSITIVE, doc="number of pieces")
    dim: int = arg(1, kind=ArgKind.AXIS, doc="the axis cut, PyTorch's numbering (1: the channels)")
    piece: int = arg(0, kind=ArgKind.NON_NEGATIVE, doc="which piece this row is (set by the expansion)")

    def pieces(self, input_shape: Callable[[], Shape]) -> int:
        return self.chunks

    def piece_sizes(self, length: int) -> list[int]:
        size = -(-length // self.chunks)  # torch.chunk: ceil(L / chunks) each, the last smaller
        sizes = [min(size, length - start) for start in range(0, length, size)]
        if len(sizes) != self.chunks:
            raise LayerError(
                f"{length} channels do not make {self.chunks} chunks",
                received=f"torch.chunk gives {sizes}",
                expected=f"at least {self.chunks} channels, divisible into pieces of ceil(C / {self.chunks})",
            )
        return sizes

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"torch.chunk({args[0]}, {self.chunks}, dim={self.dim})[{self.piece}]"


@register("split")
@record
class Split(_Pieces):
    summary = (
        "pieces along an axis (the channels by default), as torch.split: an integer is the size of every piece "
        "(the last smaller), a list the sizes (rows name.0, name.1, ...; views)"
    )
    shorthand = "sizes"

    sizes: int | tuple[int, ...] = arg(
        kind=ArgKind.SIZES,
        aliases=("split_size_or_sections", "split_size"),
        doc="the size of every piece (the last smaller), or a list of sizes adding up to the axis",
    )
    dim: int = arg(1, kind=ArgKind.AXIS, doc="the axis cut, PyTorch's numbering (1: the channels)")
    piece: int = arg(0, kind=ArgKind.NON_NEGATIVE, doc="which piece this row is (set by the expansion)")

    def pieces(self, input_shape: Callable[[], Shape]) -> int:
        # a list says how many; an integer makes as many as the input's length needs
        return super().pieces(input_shape) if isinstance(self.sizes, int) else len(self.sizes)

    def piece_sizes(self, length: int) -> list[int]:
        if isinstance(self.sizes, int):  # torch.split(x, n): pieces of n, the last smaller
            return [min(self.sizes, length - start) for start in range(0, length, self.sizes)]
        if sum(self.sizes) != length:
            raise LayerError(
                "split sizes must add up to the input's channels (its length along dim)",
                received=f"{' + '.join(map(str, self.sizes))} = {sum(self.sizes)}",
                expected=f"{length} (dim {self.dim})",
            )
        return list(self.sizes)

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        sizes = self.sizes if isinstance(self.sizes, int) else list(self.sizes)
        return f"torch.split({args[0]}, {sizes}, dim={self.dim})[{self.piece}]"


@register("unbind")
@record
class Unbind(_Pieces):
    summary = (
        "the slices of the input along an axis, that axis dropped, as torch.unbind (attention's `q, k, v = "
        "qkv.unbind(0)`): rows name.0, name.1, ..., one per index; views"
    )
    shorthand = "dim"

    dim: int = arg(1, kind=ArgKind.AXIS, doc="the axis cut and dropped, PyTorch's numbering (1: the channels)")
    piece: int = arg(0, kind=ArgKind.NON_NEGATIVE, doc="which slice this row is (set by the expansion)")

    def piece_sizes(self, length: int) -> list[int]:
        return [1] * length  # one slice per index along the axis

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        axis = axis_index(self.dim, inputs[0], self.kind)
        if self.piece >= inputs[0][axis]:
            raise LayerError(f"unbind has no piece {self.piece}", received=f"{inputs[0][axis]} pieces")
        if len(inputs[0]) == 1:  # cnncalc's shapes keep at least one axis besides the batch
            raise LayerError(
                "unbind would leave no axis besides the batch",
                received=list(inputs[0]),
                expected="an input of at least 2 axes besides the batch",
            )
        # [..., L, ...] -> L pieces [..., ...]: slice k along dim, the axis dropped
        return (*inputs[0][:axis], *inputs[0][axis + 1 :])

    def view_strides(self, shape: Shape, strides: Strides, output: Shape) -> Strides | None:
        axis = axis_index(self.dim, shape[1:], self.kind) + 1  # the batch axis first
        return (*strides[:axis], *strides[axis + 1 :])  # torch.select: the axis's stride goes

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return []  # an axis dropped: the spatial axes are counted anew

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        axis = axis_index(self.dim, inputs[0], self.kind)
        return [
            f"{inputs[0][axis]} slices along axis {axis + 1}, that axis dropped; piece {self.piece} is "
            f"{list(output)} (a view); no parameters"
        ]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Unbind", {"dim": self.dim, "index": self.piece})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"torch.unbind({args[0]}, dim={self.dim})[{self.piece}]"
