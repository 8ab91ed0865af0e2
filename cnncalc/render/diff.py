"""The output of `cnncalc diff`: two networks (or one at two inputs) row by row, what changed and by
how much, what each returns; as a table or JSON.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..analysis import NetworkOutput, Report
from ..analysis.compare import TOTAL_QUANTITIES, Change, Diff, RowDiff, Status
from ..graph import OutputKind
from ..quantities import Quantity, Unit
from ..render import Delta, Output, Ratio, ShapeOrder, Table, human, human_bytes, shape_text

# ----- diff --------------------------------------------------------------------------------------

QUANTITY_HEADERS = {
    Quantity.WEIGHTS: "Weights",
    Quantity.BIASES: "Biases",
    Quantity.PARAMS: "Params",
    Quantity.BUFFERS: "Buffers",
    Quantity.ACTIVATIONS: "Act.",
    Quantity.MACS: "MACs",
}
TOTAL_TEXT = {
    Quantity.WEIGHTS: "weights",
    Quantity.BIASES: "biases",
    Quantity.PARAMS: "params",
    Quantity.BUFFERS: "buffers",
    Quantity.ACTIVATIONS: "activations",
    Quantity.MACS: "MACs",
    Quantity.FLOPS: "FLOPs",
    Quantity.PEAK_ACTIVATIONS: "peak live activations",
    Quantity.SAVED_ACTIVATIONS: "activations saved for backward",
    Quantity.INFERENCE_BYTES: "predicted peak, inference",
    Quantity.TRAINING_BYTES: "predicted peak, training step",
}
STATUS_TEXT = {Status.SAME: "same", Status.CHANGED: "changed", Status.ONLY_A: "only A", Status.ONLY_B: "only B"}


def _ratio(change: Change) -> Ratio | None:
    return None if change.ratio is None else Ratio(change.ratio)


def _status(row: RowDiff) -> str:
    if row.renamed:
        assert row.a is not None
        return f"renamed from {row.a.name}"
    return STATUS_TEXT[row.status]


def _change_text(change: Change, size: bool = False) -> str:
    show = human_bytes if size else human
    ratio = f", x{change.ratio:.2f}" if change.ratio is not None else ""
    return f"{change.a:,} -> {change.b:,} ({show(change.a)} -> {show(change.b)}; {change.delta:+,}{ratio})"


def diff_output(
    d: Diff, a: Report, b: Report, quantities: list[Quantity], layout: ShapeOrder, every_row: bool
) -> Output:
    """The rows that differ (every row with `every_row`), each chosen quantity as A, B, change and
    ratio; the totals (all of them) as footer lines and in JSON."""
    shown = [r for r in d.rows if every_row or r.status is not Status.SAME]
    header = ["Layer", "Change", "Output A", "Output B"]
    for q in quantities:
        h = QUANTITY_HEADERS[q]
        header += [f"{h} A", f"{h} B", f"{h} +/-", f"{h} x"]
    rows = []
    for r in shown:
        cells: list[Any] = [r.name + _outputs_note(r), _status(r), r.shape_a, r.shape_b]
        for q in quantities:
            c = r.changes[q]
            cells += [c.a if r.a is not None else None, c.b if r.b is not None else None, Delta(c.delta), _ratio(c)]
        rows.append(tuple(cells))
    total: list[Any] = ["total", "", "", ""]
    for q in quantities:
        c = d.totals[q]
        total += [c.a, c.b, Delta(c.delta), _ratio(c)]
    same = sum(r.status is Status.SAME for r in d.rows)
    counts = (
        f"{len(d.matched)} rows matched ({same} the same, {len(d.matched) - same} changed), "
        f"{len(d.only_a)} only in A, {len(d.only_b)} only in B"
        + ("" if every_row else f"; {same} unchanged rows not shown (--all shows them)")
    )
    footer = [
        f"A: {d.name_a}, input {shape_text(d.input_a, ShapeOrder.CHW)}; B: {d.name_b}, input {shape_text(d.input_b, ShapeOrder.CHW)}",
        *_outputs_lines(d),
        counts,
        *(f"{TOTAL_TEXT[t]}: {_change_text(d.totals[t], size=t.unit is Unit.BYTES)}" for t in TOTAL_QUANTITIES),
        f"(per sample; predicted peaks at batch {b.batch}, {b.dtype.value}; x = B / A)",
    ]
    numeric = (False, False, False, False, *([True] * 4 * len(quantities)))
    table = Table(
        tuple(header),
        tuple(rows),
        numeric,
        total=tuple(total),
        title=f"{d.name_a}  ->  {d.name_b}",
        footer=tuple(footer),
        layout=layout,
    )
    return Output("diff", (table,), data=_diff_json(d, a, b))


def _outputs_note(row: RowDiff) -> str:
    """Which outputs the row makes: ` (output p4)`, or where A and B differ ` (output: A p4, B none)`."""
    if row.outputs_a == row.outputs_b:
        return f" (output {', '.join(row.outputs_a)})" if row.outputs_a else ""
    return f" (output: A {', '.join(row.outputs_a) or 'none'}, B {', '.join(row.outputs_b) or 'none'})"


def _returned_text(returns: OutputKind, outputs: Sequence[NetworkOutput]) -> str:
    if returns is OutputKind.TENSOR:
        (one,) = outputs
        return f"one tensor, {one.layer} {list(one.output_shape)}"
    return f"{returns.value} of {len(outputs)}: " + ", ".join(
        f"{o.key} = {o.layer} {list(o.output_shape)}" for o in outputs
    )


def _outputs_lines(d: Diff) -> list[str]:
    """What the two return, where either has `outputs:`: one line when they return the same rows
    under the same keys (each shape A -> B), else one line each."""
    if d.returns_a is OutputKind.TENSOR and d.returns_b is OutputKind.TENSOR:
        return []
    if not d.outputs_changed:
        pairs = zip(d.outputs_a, d.outputs_b)
        shown = ", ".join(
            f"{a.key} = {a.layer} {list(a.output_shape)}"
            + (f" -> {list(b.output_shape)}" if a.output_shape != b.output_shape else "")
            for a, b in pairs
        )
        return [f"outputs ({d.returns_a.value} of {len(d.outputs_a)}): {shown}"]
    return [
        f"outputs of A ({_returned_text(d.returns_a, d.outputs_a)}); of B ({_returned_text(d.returns_b, d.outputs_b)})"
    ]


def _change_json(c: Change) -> dict[str, Any]:
    return {"a": c.a, "b": c.b, "delta": c.delta, "ratio": c.ratio}


def _diff_json(d: Diff, a: Report, b: Report) -> dict[str, Any]:
    def side(report: Report) -> dict[str, Any]:
        return {
            "name": report.name,
            "input": list(report.input_shape),
            "batch": report.batch,
            "dtype": report.dtype.value,
            **(
                {
                    "returns": report.returns.value,
                    "outputs": [
                        {"key": o.key, "layer": o.layer, "output_shape": list(o.output_shape)} for o in report.outputs
                    ],
                }
                if report.returns is not OutputKind.TENSOR
                else {}
            ),
        }

    several = a.returns is not OutputKind.TENSOR or b.returns is not OutputKind.TENSOR

    rows = [
        {
            "name": r.name,
            "status": r.status.value,
            "name_a": r.a.name if r.a else None,
            "name_b": r.b.name if r.b else None,
            "type_a": r.a.type if r.a else None,
            "type_b": r.b.type if r.b else None,
            "output_shape_a": list(r.shape_a) if r.shape_a else None,
            "output_shape_b": list(r.shape_b) if r.shape_b else None,
            "changes": {q.value: _change_json(c) for q, c in r.changes.items()},
            **({"outputs_a": list(r.outputs_a), "outputs_b": list(r.outputs_b)} if several else {}),
        }
        for r in d.rows
    ]
    return {
        "a": side(a),
        "b": side(b),
        "changed": d.changed,
        "rows": rows,
        "totals": {t.value: _change_json(c) for t, c in d.totals.items()},
    }
