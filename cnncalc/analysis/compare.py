"""Two reports side by side: which rows match, what each quantity became, what is only in one.

Matching rule (`diff`):

1. Rows are aligned by name: the longest run of names common to both, in order (difflib's
   matcher over the two sequences of (name, type)), anchors the alignment; a name whose type
   differs on the two sides (`features.2`, a relu in VGG11 and a conv in VGG13) is no anchor. A name present in both but out of
   order (a reordered layer) is not an anchor; it is handled by step 2.
2. Between two anchors, the rows left over on each side are paired by position where their types
   agree (difflib's matcher over the two type sequences of that gap), so a renamed layer of the
   same type is matched, while an inserted layer is not.
3. Everything else is only in A or only in B.

A network with `outputs:` returns several rows: a row that is an output on one side and not the
other (or under another key) has changed, and so has the diff where the two return other rows,
keys or structures.

Quantities are per sample (as in `Report.rows` and `Report.totals`); predicted memory is in bytes
at each report's own batch and dtype.
"""

from __future__ import annotations

import difflib
from enum import Enum
from typing import Mapping

from ..graph import OutputKind
from ..layers import Shape
from ..quantities import Quantity
from ..records import record
from . import NetworkOutput, Report, Row, predicted_memory

# the per-row numbers `diff` compares, each the `Row` attribute of its value
ROW_QUANTITIES = (
    Quantity.WEIGHTS,
    Quantity.BIASES,
    Quantity.PARAMS,
    Quantity.BUFFERS,
    Quantity.ACTIVATIONS,
    Quantity.MACS,
)
# the whole-network numbers it compares: `Totals` attributes, then the predicted peaks in bytes
TOTAL_QUANTITIES = (
    *ROW_QUANTITIES,
    Quantity.FLOPS,
    Quantity.PEAK_ACTIVATIONS,
    Quantity.SAVED_ACTIVATIONS,
    Quantity.INFERENCE_BYTES,  # predicted_memory(train=False)
    Quantity.TRAINING_BYTES,  # predicted_memory(train=True)
)


class Status(str, Enum):
    SAME = "same"
    CHANGED = "changed"
    ONLY_A = "only_a"
    ONLY_B = "only_b"


@record
class Change:
    """One number in A and in B. `delta` = b - a; `ratio` = b / a, None where a is 0."""

    a: int
    b: int

    @property
    def delta(self) -> int:
        return self.b - self.a

    @property
    def ratio(self) -> float | None:
        return self.b / self.a if self.a else None

    @property
    def changed(self) -> bool:
        return self.a != self.b


@record
class RowDiff:
    """One line of the comparison: a matched pair of rows, or a row on one side only.

    A missing side counts as zero in `changes`, so the rows' deltas add up to the totals' deltas.
    """

    a: Row | None
    b: Row | None
    changes: Mapping[Quantity, Change]  # ROW_QUANTITIES
    outputs_a: tuple[str, ...] = ()  # the keys of A's `outputs:` this row makes (Report.output_keys)
    outputs_b: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """B's name where B has the row (the newer side), else A's."""
        row = self.b if self.b is not None else self.a
        assert row is not None
        return row.name

    @property
    def renamed(self) -> bool:
        return self.a is not None and self.b is not None and self.a.name != self.b.name

    @property
    def shape_a(self) -> Shape | None:
        return self.a.output_shape if self.a is not None else None

    @property
    def shape_b(self) -> Shape | None:
        return self.b.output_shape if self.b is not None else None

    @property
    def status(self) -> Status:
        if self.a is None:
            return Status.ONLY_B
        if self.b is None:
            return Status.ONLY_A
        same = (
            self.a.name == self.b.name
            and self.a.type == self.b.type
            and self.a.output_shape == self.b.output_shape
            and self.outputs_a == self.outputs_b
            and not any(c.changed for c in self.changes.values())
        )
        return Status.SAME if same else Status.CHANGED


@record
class Diff:
    """`diff(a, b)`: the rows in alignment order (A's order, B's extra rows where they fall)."""

    name_a: str
    name_b: str
    input_a: Shape
    input_b: Shape
    rows: tuple[RowDiff, ...]
    totals: Mapping[Quantity, Change]  # TOTAL_QUANTITIES
    # what each network returns: its last row (TENSOR), or its `outputs:` as a tuple, list or dict
    returns_a: OutputKind = OutputKind.TENSOR
    returns_b: OutputKind = OutputKind.TENSOR
    outputs_a: tuple[NetworkOutput, ...] = ()
    outputs_b: tuple[NetworkOutput, ...] = ()

    @property
    def outputs_changed(self) -> bool:
        """The networks return other rows, under other keys or in another structure."""
        return (self.returns_a, [(o.key, o.layer) for o in self.outputs_a]) != (
            self.returns_b,
            [(o.key, o.layer) for o in self.outputs_b],
        )

    @property
    def only_a(self) -> tuple[RowDiff, ...]:
        return tuple(r for r in self.rows if r.status is Status.ONLY_A)

    @property
    def only_b(self) -> tuple[RowDiff, ...]:
        return tuple(r for r in self.rows if r.status is Status.ONLY_B)

    @property
    def matched(self) -> tuple[RowDiff, ...]:
        return tuple(r for r in self.rows if r.a is not None and r.b is not None)

    @property
    def changed(self) -> bool:
        """Anything differs (for `--fail-on-change`): a row, a total or the input shape."""
        return (
            self.input_a != self.input_b
            or self.outputs_changed
            or any(r.status is not Status.SAME for r in self.rows)
            or any(c.changed for c in self.totals.values())
        )


def _value(row: Row | None, quantity: Quantity) -> int:
    return 0 if row is None else int(getattr(row, quantity.value))


def _row_diff(a: Row | None, b: Row | None, report_a: Report, report_b: Report) -> RowDiff:
    return RowDiff(
        a,
        b,
        {q: Change(_value(a, q), _value(b, q)) for q in ROW_QUANTITIES},
        report_a.output_keys(a) if a is not None else (),
        report_b.output_keys(b) if b is not None else (),
    )


def _totals(report: Report) -> dict[Quantity, int]:
    t = report.totals
    out = {q: int(getattr(t, q.value)) for q in TOTAL_QUANTITIES if hasattr(t, q.value)}
    out[Quantity.INFERENCE_BYTES] = predicted_memory(report, train=False)
    out[Quantity.TRAINING_BYTES] = predicted_memory(report, train=True)
    return out


def align(
    names_a: list[str], types_a: list[str], names_b: list[str], types_b: list[str]
) -> list[tuple[int | None, int | None]]:
    """Index pairs (i in A, j in B), None for a missing side, in alignment order (the module's rule)."""
    pairs: list[tuple[int | None, int | None]] = []
    # a name anchors only with its type: torchvision-style names (features.2) are positions, and
    # features.2 being a relu in VGG11 but a conv in VGG13 must not pair the two
    keys_a, keys_b = list(zip(names_a, types_a)), list(zip(names_b, types_b))
    anchors = difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False).get_matching_blocks()
    i = j = 0
    for block in anchors:  # the last block is the (len_a, len_b, 0) sentinel
        pairs.extend(_pair_gap(range(i, block.a), range(j, block.b), types_a, types_b))
        pairs.extend((block.a + k, block.b + k) for k in range(block.size))
        i, j = block.a + block.size, block.b + block.size
    return pairs


def _pair_gap(
    gap_a: range, gap_b: range, types_a: list[str], types_b: list[str]
) -> list[tuple[int | None, int | None]]:
    """Rows between two anchors: paired by position where the types agree, else on one side."""
    ta = [types_a[i] for i in gap_a]
    tb = [types_b[j] for j in gap_b]
    out: list[tuple[int | None, int | None]] = []
    for tag, a0, a1, b0, b1 in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        if tag == "equal":
            out.extend((gap_a[a0 + k], gap_b[b0 + k]) for k in range(a1 - a0))
        else:
            out.extend((gap_a[k], None) for k in range(a0, a1))
            out.extend((None, gap_b[k]) for k in range(b0, b1))
    return out


def diff(a: Report, b: Report) -> Diff:
    """Compare two reports (two specs, one spec at two inputs, collapsed or not)."""
    pairs = align(
        [r.name for r in a.rows], [r.type for r in a.rows], [r.name for r in b.rows], [r.type for r in b.rows]
    )
    rows = tuple(_row_diff(None if i is None else a.rows[i], None if j is None else b.rows[j], a, b) for i, j in pairs)
    ta, tb = _totals(a), _totals(b)
    return Diff(
        a.name,
        b.name,
        a.input_shape,
        b.input_shape,
        rows,
        {q: Change(ta[q], tb[q]) for q in TOTAL_QUANTITIES},
        a.returns,
        b.returns,
        a.outputs,
        b.outputs,
    )
