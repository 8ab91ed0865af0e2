"""A learned bias gathered from a table by relative position and added to attention logits (issue 18).

LeViT, EfficientFormer (v1 and v2), EfficientViT (MSRA) and TinyViT hold `attention_biases` [heads, T]
and an index buffer `attention_bias_idxs` [n, m]; their forward adds `attention_biases[:, idxs]` to the
logits [heads, n, m]. The index counts the absolute offset between a query's and a key's grid
position, |dy| * W + |dx| (queries every `stride` keys where the attention downsamples). Swin-style
relative position biases (timm's RelPosBias in GCViT and MaxViT) hold the table the other way round,
[T, heads], index it by the signed offset (dy + H - 1) * (2W - 1) + (dx + W - 1) flattened to [n * m],
then view and permute it to [heads, n, m]. The index is a function of the grid: the bridge rebuilds it
(`index`, below) and the importer checks it against the model's own buffer before it writes this row.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, FieldStep, Layer, Saved, Shape, TorchModule, arg, prod, register
from .counting import rules

OFFSETS = ("absolute", "signed")


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def positions(grid: Sequence[int], stride: int = 1) -> list[tuple[int, int]]:
    """The (y, x) positions of a grid, row by row, every `stride`-th on each axis."""
    height, width = grid
    return [(y, x) for y in range(0, height, stride) for x in range(0, width, stride)]


def index(grid: Sequence[int], stride: int, offsets: str) -> list[list[int]]:
    """The table entry each (query, key) pair reads: [n queries][m keys]."""
    height, width = grid
    keys = positions(grid)
    if offsets == "absolute":
        # LeViT's rel_pos = |q_pos - k_pos|; idx = rel_y * W + rel_x
        return [[abs(qy - ky) * width + abs(qx - kx) for ky, kx in keys] for qy, qx in positions(grid, stride)]
    # Swin's relative_position_index: (dy + H - 1) * (2W - 1) + (dx + W - 1)
    return [[(qy - ky + height - 1) * (2 * width - 1) + (qx - kx + width - 1) for ky, kx in keys] for qy, qx in keys]


@register("bias_table")
@record
class BiasTable(Layer):
    summary = (
        "attention logits [heads, n, m] plus a learned table gathered by relative position: "
        "table[h, |dy|*W + |dx|] (offsets absolute: LeViT, EfficientFormer, EfficientViT, TinyViT's "
        "attention_biases [heads, H*W]) or table[(dy+H-1)*(2W-1) + dx+W-1, h] (offsets signed: Swin-style "
        "RelPosBias [(2H-1)*(2W-1), heads]); the index is a buffer rebuilt from the grid; add: false gives the bias alone (an attn_mask)"
    )
    # an add of a gathered parameter: FlopCounterMode and fvcore count no aten.add/index, thop and
    # ptflops see no module of theirs, torchinfo counts the table as parameters only
    counts = rules()

    heads: int = arg(kind=ArgKind.POSITIVE, doc="the number of heads (the logits' first axis)")
    grid: tuple[int, ...] = arg(kind=ArgKind.TENSOR_SHAPE, doc="the keys' grid [H, W] (a window, or the feature map)")
    stride: int = arg(
        1, kind=ArgKind.POSITIVE, doc="queries every `stride` keys on each axis (LeViT's downsampling attention)"
    )
    offsets: str = arg(
        "absolute",
        kind=ArgKind.CHOICE,
        choices=OFFSETS,
        doc="absolute: table [heads, H*W] read at |dy|*W + |dx|; signed: table [(2H-1)*(2W-1), heads] read at "
        "(dy+H-1)*(2W-1) + dx+W-1",
    )
    index_name: str = arg(
        "attention_bias_idxs", kind=ArgKind.TEXT, doc="the index buffer's name beside the table (state_dict key)"
    )
    flat: bool = arg(False, kind=ArgKind.BOOL, doc="the index buffer held flat, [n*m] (RelPosBias), not [n, m]")
    persistent: bool = arg(False, kind=ArgKind.BOOL, doc="the index buffer is in the state_dict")
    add: bool = arg(
        True,
        kind=ArgKind.BOOL,
        doc="false: the bias [heads, n, m] alone (an attn_mask for attention), with axes of 1 before it up to "
        "the input's rank; the input only places the row",
    )

    def queries(self) -> int:
        return prod([_ceil_div(n, self.stride) for n in self.grid])

    def table(self) -> tuple[int, int]:
        """The table's shape as the model holds it."""
        height, width = self.grid
        if self.offsets == "absolute":
            return (self.heads, height * width)
        return ((2 * height - 1) * (2 * width - 1), self.heads)

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if len(self.grid) != 2:
            raise LayerError("bias_table's grid has two sizes [H, W]", received=list(self.grid), expected="[7, 7]")
        if self.offsets == "signed" and self.stride != 1:
            raise LayerError(
                "bias_table with signed offsets has queries and keys on one grid",
                received=f"stride {self.stride}",
                expected="stride 1",
            )
        bias = (self.heads, self.queries(), prod(self.grid))
        if not self.add:  # as a mask of the input's rank: axes of 1 before it (windows folded into the batch)
            return (1,) * (len(inputs[0]) - 3) + bias
        if tuple(inputs[0][-3:]) != bias:
            raise LayerError(
                "bias_table adds a bias [heads, n, m] to logits of that shape (the last three axes)",
                received=f"logits [N, {', '.join(map(str, inputs[0]))}]",
                expected=f"[N, ..., {', '.join(map(str, bias))}]",
            )
        return inputs[0]

    def weights(self, inputs: Sequence[Shape]) -> int:
        return prod(self.table())

    def buffers(self, inputs: Sequence[Shape]) -> int:
        return self.queries() * prod(self.grid)  # one int64 index per (query, key)

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        return Saved()  # the gradient of a sum reads neither operand (index_put's indices are the buffer)

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return None if self.add else []  # the bias alone depends on no position of the input

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        t, (h, w) = self.table(), self.grid
        return [
            f"output = {'logits + ' if self.add else ''}table[index] ({self.offsets} offsets on a {h}x{w} grid"
            + (f", queries every {self.stride}" if self.stride != 1 else "")
            + f"); weights: table {t[0]}*{t[1]} = {prod(t)}; "
            f"buffers: index {self.queries()}*{h * w} = {self.buffers(inputs)}"
        ]

    def parent_parameter(self, inputs: Sequence[Shape]) -> tuple[tuple[int, ...], float] | None:
        return self.table(), 0.0

    def held_buffers(self, inputs: Sequence[Shape]) -> list[tuple[str, str, bool]]:
        # the index in plain torch, as timm builds it: grid positions [2, n] of queries and keys
        (h, w), s = self.grid, self.stride
        keys = f'torch.stack(torch.meshgrid(torch.arange({h}), torch.arange({w}), indexing="ij")).flatten(1)'
        if self.offsets == "absolute":  # |dy| * W + |dx|
            queries = (
                f"torch.stack(torch.meshgrid(torch.arange(0, {h}, {s}), torch.arange(0, {w}, {s}), "
                'indexing="ij")).flatten(1)'
            )
            source = (
                f"(lambda q, k: ((q[:, :, None] - k[:, None, :]).abs() * torch.tensor([{w}, 1])[:, None, None])"
                f".sum(0))({queries}, {keys})"
            )
        else:  # (dy + H - 1) * (2W - 1) + dx + W - 1
            source = (
                f"(lambda k: ((k[:, :, None] - k[:, None, :] + torch.tensor([{h - 1}, {w - 1}])[:, None, None]) "
                f"* torch.tensor([{2 * w - 1}, 1])[:, None, None]).sum(0))({keys})"
            )
        return [(self.index_name, source + (".flatten()" if self.flat else ""), self.persistent)]

    def parent_expression(self, arg: str, parameter: str, buffers: Sequence[str] = ()) -> str:
        x, held = arg, parameter
        (index,) = buffers
        n, m = self.queries(), prod(self.grid)
        bias = (
            f"{held}[:, {index}]"
            if self.offsets == "absolute"
            else f"{held}[{index}.flatten()].view({n}, {m}, -1).permute(2, 0, 1)"
        )
        return f"({x} + {bias})" if self.add else f"{bias}.expand({x}.shape[0], {self.heads}, {n}, {m})"

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule(
            "BiasTable",
            {
                "heads": self.heads,
                "grid": list(self.grid),
                "stride": self.stride,
                "offsets": self.offsets,
                "index_name": self.index_name,
                "flat": self.flat,
                "persistent": self.persistent,
                "add": self.add,
            },
        )
