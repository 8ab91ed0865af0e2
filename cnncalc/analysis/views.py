"""Other views of a report: the lecture rows, and blocks collapsed to a depth."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from ..errors import CnncalcError
from .report import Report, Row, Style


def collapse(report: Report, depth: int) -> Report:
    """Rows for blocks at most `depth` names deep: deeper layers are summed into their block's row.

    A block row's shape is that of its last layer; its activations, parameters and MACs are the
    sums of its layers, so rows still add up to the totals.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise CnncalcError("depth must be a positive integer", received=depth, expected="1, 2, ... (names deep)")
    containers = report.containers or {}
    rows: list[Row] = []
    for name, members in groups([row.name for row in report.rows], depth):
        first = report.rows[members[0]]
        if name == first.name:  # a row no deeper than `depth` stands alone
            rows.append(first)
            continue
        inner = [report.rows[i] for i in members]
        rows.append(
            replace(
                first,
                name=name,
                type=containers.get(name, "group"),
                leaves=len(inner),
                working=(),
                output_shape=inner[-1].output_shape,
                field=inner[-1].field,
                activations=sum(r.activations for r in inner),
                weights=sum(r.weights for r in inner),
                biases=sum(r.biases for r in inner),
                buffers=sum(r.buffers for r in inner),
                macs=sum(r.macs for r in inner),
            )
        )
    return replace(report, rows=tuple(rows))


def groups(names: Sequence[str], depth: int) -> list[tuple[str, list[int]]]:
    """The rows `collapse` makes, as (name, indices of the rows it sums): a run of consecutive rows
    under one block `depth` names deep is one group; shallower rows stand alone."""
    if depth < 1:
        raise CnncalcError("depth must be at least 1", received=depth)
    result: list[tuple[str, list[int]]] = []
    open_group: str | None = None  # the block of result[-1], while its layers keep coming
    for i, name in enumerate(names):
        parts = name.split(".")
        if len(parts) <= depth:
            result.append((name, [i]))
            open_group = None
        elif open_group == ".".join(parts[:depth]):
            result[-1][1].append(i)
        else:
            open_group = ".".join(parts[:depth])
            result.append((open_group, [i]))
    return result


def lecture(report: Report) -> Report:
    """The lecture tables' view: rows that `folds` marks are left out (their output is the row
    before them, computed in place or seen through), and the activation totals count the rows
    shown. Parameters and MACs do not change: folded rows have none."""
    rows = tuple(row for i, row in enumerate(report.rows) if i == 0 or not row.folds)
    activations = sum(row.activations for row in rows[1:])
    totals = replace(report.totals, activations=activations, activations_with_input=activations + rows[0].activations)
    shown: dict[str, str] = {}  # each row -> the row shown for it (itself, or the one it folds into)
    for i, row in enumerate(report.rows):
        shown[row.name] = row.name if i == 0 or not row.folds else shown[report.rows[i - 1].name]
    outputs = tuple(replace(o, shown=shown.get(o.layer)) for o in report.outputs)
    return replace(report, rows=rows, totals=totals, style=Style.LECTURE, outputs=outputs)
