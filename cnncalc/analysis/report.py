"""The records of an analysis: the report, its rows and totals, and the element types."""

from __future__ import annotations

from enum import Enum
from typing import Mapping

from ..errors import Where
from ..graph import OutputKind
from ..layers import Shape
from ..quantities import DType as DType  # re-exported: its home is the bottom of the package
from ..records import record
from .field import Field


class Style(str, Enum):
    """Which rows a table shows: every layer of the graph, or the lecture tables' rows."""

    FULL = "full"  # one row per layer, as PyTorch runs them
    LECTURE = "lecture"  # activations, views and identity rows folded into the row that made their input


@record
class Row:
    """One row of the table: a leaf layer, the input, or a block collapsed by `depth`."""

    name: str
    type: str
    output_shape: Shape
    activations: int  # elements of the output, for one sample
    weights: int
    biases: int
    buffers: int
    macs: int  # multiply-accumulates, one sample
    inputs: tuple[str, ...] = ()
    leaves: int = 1  # leaf layers this row stands for
    working: tuple[str, ...] = ()  # the arithmetic, filled in (analyze(explain=True))
    field: Field | None = None  # receptive field (analyze(fields=True))
    folds: bool = False  # the lecture view shows it as part of the row that made its input (`lecture`)

    @property
    def params(self) -> int:
        return self.weights + self.biases

    @property
    def flops(self) -> int:
        return 2 * self.macs


@record
class FitWarning:
    """A layer whose stride does not tile its input and leaves real input positions unread
    (legal, as PyTorch's floor allows it; `--strict` makes it an error)."""

    layer: str
    where: Where
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@record
class Totals:
    weights: int
    biases: int
    params: int
    buffers: int
    activations: int  # sum over layers, input excluded: one output per row, views included
    activations_with_input: int
    macs: int
    flops: int
    peak_activations: int  # most elements alive at once during inference, the input included
    saved_activations: int = 0  # elements a training step keeps for backward (input excluded)
    saved_int64: int = 0  # int64 elements kept for backward (max pooling's indices)
    saved_fp32_per_batch: int = 0  # fp32 elements kept per batch, whatever its size (batch norm's statistics)
    # most bytes alive at once in a training step's forward pass, at the report's batch and dtype:
    # what the layers keep so far, what later layers still read, the input included
    training_forward_peak_bytes: int = 0
    stored_activations: int = 0  # the rows' outputs that are new tensors at inference (views are not), input excluded
    # under fp16/bf16 autocast (cnncalc/analysis/budget.py): the weights and biases cast to 16 bits (conv,
    # linear), and how many 16-bit copies of the fp32 input layers keep for backward
    autocast_weights: int = 0
    autocast_input_copies: int = 0


@record
class NetworkOutput:
    """One tensor the network returns: under which key (None for a network that returns one tensor,
    the position "0", "1", ... in a tuple or list, the key in a dict), which row makes it, its shape."""

    key: str | None
    layer: str
    output_shape: Shape
    shown: str | None = None  # the lecture view's row that stands for `layer` where it folds it (`lecture`)


@record
class Report:
    """Everything `cnncalc` prints for one network; rows[0] is the input."""

    name: str
    input_shape: Shape
    rows: tuple[Row, ...]
    totals: Totals
    warnings: tuple[FitWarning, ...] = ()
    batch: int = 1
    dtype: DType = DType.FP32
    containers: Mapping[str, str] | None = None
    style: Style = Style.FULL  # LECTURE after `lecture`: folded rows left out, activation totals of the rows shown
    outputs: tuple[NetworkOutput, ...] = ()  # what the network returns (the spec's `outputs:`, else its last row)
    returns: OutputKind = OutputKind.TENSOR  # how: one tensor, a tuple, a list or a dict of `outputs`

    def output_keys(self, row: Row) -> tuple[str, ...]:
        """The keys of the outputs `row` makes, in order (a collapsed block: those of its layers; the
        lecture view: those folded into it); () where it makes none or the network returns one tensor."""
        if self.returns is OutputKind.TENSOR:
            return ()
        return tuple(
            str(o.key)
            for o in self.outputs
            if (o.shown or o.layer) == row.name or (row.leaves > 1 and (o.shown or o.layer).startswith(row.name + "."))
        )

    def bytes_of(self, activations: int) -> int:
        """Bytes of that many activations for the whole batch."""
        return activations * self.batch * self.dtype.bytes

    @property
    def saved_bytes(self) -> int:
        """Bytes a training step keeps for backward (the input left out), for the whole batch."""
        t = self.totals
        return (
            self.bytes_of(t.saved_activations)
            + 8 * self.batch * t.saved_int64
            + self.dtype.weight_bytes * t.saved_fp32_per_batch
        )

    @property
    def param_bytes(self) -> int:
        return self.totals.params * self.dtype.weight_bytes

    @property
    def buffer_bytes(self) -> int:
        return self.totals.buffers * self.dtype.weight_bytes

    def __str__(self) -> str:
        """One line: the network, its rows and totals (the table is `cnncalc.render.notebook.to_text`)."""
        t = self.totals
        return (
            f"{self.name}: {len(self.rows) - 1} rows, {t.params:,} parameters, {t.macs:,} MACs"
            " (the table: cnncalc.render.notebook.to_text(report))"
        )
