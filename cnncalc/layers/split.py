"""Layers with several outputs: pieces of the input along the channel axis (ShuffleNetV2's
`x.chunk(2, dim=1)`). The spec expands one `chunk`/`split` item into one row per piece,
`name.0`, `name.1`, ... (each a view of the input, so no new memory); `from: name.1` reads one."""

from __future__ import annotations

from typing import Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, FieldStep, Layer, Shape, TorchModule, arg, register
from .counting import rules


class _Pieces(Layer):
    """Base of the multi-output types: `piece_sizes(channels)` gives every piece's channel count,
    `pieces()` how many rows the spec expands the item into."""

    aliases_input = True  # torch.split/chunk return views
    counts = rules()

    def piece_sizes(self, channels: int) -> list[int]:
        raise NotImplementedError

    def pieces(self) -> int:
        raise NotImplementedError

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        sizes = self.piece_sizes(inputs[0][0])
        if self.piece >= len(sizes):  # type: ignore[attr-defined]
            raise LayerError(f"{self.kind} has no piece {self.piece}", received=f"{len(sizes)} pieces")  # type: ignore[attr-defined]
        # [C_k, ...] = piece k of [C, ...] along channels
        return (sizes[self.piece], *inputs[0][1:])  # type: ignore[attr-defined]

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return None  # position for position

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        sizes = self.piece_sizes(inputs[0][0])
        return [f"{inputs[0][0]} channels -> {' + '.join(map(str, sizes))}; piece {self.piece} has {output[0]} (a view); "  # type: ignore[attr-defined]
                "no parameters"]  # fmt: skip

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Piece", {"sizes": self.piece_sizes(inputs[0][0]), "index": self.piece})  # type: ignore[attr-defined]


@register("chunk")
@record
class Chunk(_Pieces):
    summary = "`chunks` equal pieces along channels, as torch.chunk (rows name.0, name.1, ...; views)"
    shorthand = "chunks"

    chunks: int = arg(kind=ArgKind.POSITIVE, doc="number of pieces")
    piece: int = arg(0, kind=ArgKind.NON_NEGATIVE, doc="which piece this row is (set by the expansion)")

    def pieces(self) -> int:
        return self.chunks

    def piece_sizes(self, channels: int) -> list[int]:
        size = -(-channels // self.chunks)  # torch.chunk: ceil(C / chunks) each, the last smaller
        sizes = [min(size, channels - start) for start in range(0, channels, size)]
        if len(sizes) != self.chunks:
            raise LayerError(f"{channels} channels do not make {self.chunks} chunks", received=f"torch.chunk gives {sizes}",
                             expected=f"at least {self.chunks} channels, divisible into pieces of ceil(C / {self.chunks})")  # fmt: skip
        return sizes

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"torch.chunk({args[0]}, {self.chunks}, dim=1)[{self.piece}]"


@register("split")
@record
class Split(_Pieces):
    summary = "pieces of the given channel counts, as torch.split (rows name.0, name.1, ...; views)"
    shorthand = "sizes"

    sizes: int | tuple[int, ...] = arg(kind=ArgKind.POSITIVE_AXES, aliases=("split_size_or_sections",),
                                  doc="channels of each piece, summing to the input's")  # fmt: skip
    piece: int = arg(0, kind=ArgKind.NON_NEGATIVE, doc="which piece this row is (set by the expansion)")

    def pieces(self) -> int:
        return len(self._list())

    def _list(self) -> list[int]:
        return list(self.sizes) if isinstance(self.sizes, tuple) else [self.sizes]

    def piece_sizes(self, channels: int) -> list[int]:
        if sum(self._list()) != channels:
            raise LayerError("split sizes must add up to the input's channels", received=f"{' + '.join(map(str, self._list()))} "
                             f"= {sum(self._list())}", expected=f"{channels} channels")  # fmt: skip
        return self._list()

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"torch.split({args[0]}, {self._list()}, dim=1)[{self.piece}]"
