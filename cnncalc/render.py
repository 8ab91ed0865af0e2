"""Reports as text: rich tables, Markdown, CSV and the JSON contract. Free of torch.

Functions here return strings or rich renderables; the CLI decides where they go.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Sequence

from fractions import Fraction

from .analysis import Field, Report, Row, Totals, predicted_memory


class Format(str, Enum):
    TABLE = "table"
    MARKDOWN = "markdown"
    CSV = "csv"
    JSON = "json"


class Layout(str, Enum):
    """How shapes print: `224x224x64` (hwc, the lecture tables) or `64x224x224` (chw, PyTorch)."""

    HWC = "hwc"
    CHW = "chw"


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Row, Report], Any]
    total: Callable[[Totals, Report], Any] | None = None
    numeric: bool = True


class Columns(Enum):
    """Every column a table can show; each command picks its own list."""

    NAME = Column("Layer", lambda r, rep: r.name, lambda t, rep: "total", numeric=False)
    TYPE = Column("Type", lambda r, rep: r.type, numeric=False)
    SHAPE = Column("Output", lambda r, rep: r.output_shape, numeric=False)
    ACTIVATIONS = Column("Activations", lambda r, rep: r.activations, lambda t, rep: t.activations)
    BYTES = Column("Act. bytes", lambda r, rep: rep.bytes_of(r.activations), lambda t, rep: rep.bytes_of(t.activations))
    WEIGHTS = Column("Weights", lambda r, rep: r.weights, lambda t, rep: t.weights)
    BIASES = Column("Biases", lambda r, rep: r.biases, lambda t, rep: t.biases)
    PARAMS = Column("Params", lambda r, rep: r.params, lambda t, rep: t.params)
    BUFFERS = Column("Buffers", lambda r, rep: r.buffers, lambda t, rep: t.buffers)
    MACS = Column("MACs", lambda r, rep: r.macs, lambda t, rep: t.macs)
    FLOPS = Column("FLOPs (2xMACs)", lambda r, rep: r.flops, lambda t, rep: t.flops)
    RF = Column("RF", lambda r, rep: field_text(r.field, "size"))
    JUMP = Column("Jump", lambda r, rep: field_text(r.field, "jump"))
    START = Column("Start", lambda r, rep: field_text(r.field, "start"))


def number_text(value: Fraction) -> str:
    """A field quantity: an integer as such, a fraction as a short decimal."""
    return str(value.numerator) if value.denominator == 1 else f"{float(value):.2f}".rstrip("0").rstrip(".")


def field_text(field: Field | None, part: str) -> str:
    """`11` when every spatial axis agrees, `11x7` (H x W) when not; `all` after flatten or linear."""
    if field is None:
        return ""
    if field.whole:
        return "all"
    values = [number_text(v) for v in getattr(field, part)]
    return values[0] if len(set(values)) == 1 else "x".join(values)


def shape_text(shape: Sequence[int], layout: Layout) -> str:
    """`224x224x64` for hwc, `64x224x224` for chw; a flat vector prints as its length."""
    if len(shape) == 1:
        return str(shape[0])
    ordered = (*shape[1:], shape[0]) if layout is Layout.HWC else tuple(shape)
    return "x".join(str(s) for s in ordered)


def human(value: int) -> str:
    """138357544 -> 138.4M; small numbers as they are."""
    for unit, size in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return str(value)


def human_bytes(value: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def _cell(value: Any, layout: Layout) -> str:
    if isinstance(value, tuple):
        return shape_text(value, layout)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def totals_lines(report: Report) -> list[str]:
    """The totals under every table: always both weights and biases, exact and short."""
    t = report.totals

    def both(v: int) -> str:
        return f"{v:,} ({human(v)})" if v >= 1000 else f"{v:,}"

    dtype = report.dtype.value
    return [
        f"params: {both(t.params)} = weights {both(t.weights)} + biases {both(t.biases)}; buffers {t.buffers:,}",
        f"activations: {both(t.activations)} without the input, {both(t.activations_with_input)} with it; "
        f"peak live (inference) {both(t.peak_activations)}",
        f"MACs: {both(t.macs)}; FLOPs (2 x MACs): {both(t.flops)}   (per sample)",
        f"memory at batch {report.batch}, {dtype}: activations {human_bytes(report.bytes_of(t.activations_with_input))}, "
        f"peak live {human_bytes(report.bytes_of(t.peak_activations))}, parameters {human_bytes(report.param_bytes)}",
    ]


def predicted_line(report: Report) -> str:
    """The peak memory a run should reach at the report's batch and dtype (docs/conventions.md)."""
    return (f"predicted peak at batch {report.batch}, {report.dtype.value}: inference {human_bytes(predicted_memory(report, train=False))}, "
            f"training step (SGD with momentum) {human_bytes(predicted_memory(report, train=True))}; "
            "cnncalc profile measures it")  # fmt: skip


def title(report: Report, layout: Layout) -> str:
    return f"{report.name}  (input {shape_text(report.input_shape, layout)}, {layout.value})"


def _column(col: "Columns | Column") -> Column:
    return col.value if isinstance(col, Columns) else col


def text_table(report: Report, columns: Sequence["Columns | Column"], layout: Layout, explain: bool = False) -> str:
    """An aligned plain-text table with a totals row; `explain` puts each row's working under it."""
    columns = [_column(col) for col in columns]
    body = [[_cell(col.value(row, report), layout) for col in columns] for row in report.rows]
    total = [_cell(col.total(report.totals, report), layout) if col.total else "" for col in columns]
    notes = [row.working for row in report.rows] if explain else None
    lines = aligned([col.header for col in columns], body, [col.numeric for col in columns], total, notes)
    return "\n".join([title(report, layout), "", *lines]) + "\n"


def aligned(header: Sequence[str], body: Sequence[Sequence[str]], numeric: Sequence[bool],
            total: Sequence[str] | None = None, notes: Sequence[Sequence[str]] | None = None) -> list[str]:  # fmt: skip
    """Lines of an aligned plain-text table: numbers right-aligned, text left; `notes` go under rows.

    Written by hand rather than with rich.Table: it is never cropped to the terminal, and it
    renders 10,000 rows in milliseconds instead of seconds.
    """
    widths = [max(len(cell) for cell in cells) for cells in zip(header, *([total] if total else []), *body)]

    def line(cells: Sequence[str]) -> str:
        parts = (c.rjust(w) if right else c.ljust(w) for c, w, right in zip(cells, widths, numeric))
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [line(header), rule]
    for i, cells in enumerate(body):
        lines.append(line(cells))
        if notes:
            lines.extend(f"      {text}" for text in notes[i])
    if total:
        lines += [rule, line(total)]
    return lines


def markdown(report: Report, columns: Sequence["Columns | Column"], layout: Layout, explain: bool = False) -> str:
    """A Markdown table (a solution sheet); `explain` adds a Working column."""
    columns = [_column(col) for col in columns]
    lines = [f"### {title(report, layout)}", ""]
    lines.append("| " + " | ".join(col.header for col in columns) + (" | Working |" if explain else " |"))
    lines.append("|" + "|".join("---:" if col.numeric else "---" for col in columns) + ("|---|" if explain else "|"))
    for row in report.rows:
        cells = [_cell(col.value(row, report), layout) for col in columns]
        if explain:
            cells.append("<br>".join(text.replace("*", "\\*").replace("|", "\\|") for text in row.working))
        lines.append("| " + " | ".join(cells) + " |")
    total = [_cell(col.total(report.totals, report), layout) if col.total else "" for col in columns]
    lines.append("| " + " | ".join(f"**{v}**" if v else "" for v in [*total, *([""] if explain else [])]) + " |")
    lines.append("")
    lines.extend(f"- {line}" for line in totals_lines(report))
    return "\n".join(lines) + "\n"


def csv_text(report: Report, columns: Sequence["Columns | Column"], layout: Layout, explain: bool = False) -> str:
    """Plain integers (no separators) so spreadsheets read them as numbers."""
    columns = [_column(col) for col in columns]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*(col.header for col in columns), *(["Working"] if explain else [])])

    def plain(value: Any) -> Any:
        return shape_text(value, layout) if isinstance(value, tuple) else value

    for row in report.rows:
        writer.writerow([*(plain(col.value(row, report)) for col in columns), *(["; ".join(row.working)] if explain else [])])
    writer.writerow(plain(col.total(report.totals, report)) if col.total else "" for col in columns)
    return out.getvalue()


def json_data(report: Report) -> dict[str, Any]:
    """The JSON contract (README and docs/spec.md): shapes as [C, ...spatial], counts per sample."""
    rows = []
    for r in report.rows:
        rows.append(
            {
                "name": r.name,
                "type": r.type,
                "output_shape": list(r.output_shape),
                "inputs": list(r.inputs),
                "activations": r.activations,
                "activation_bytes": report.bytes_of(r.activations),
                "weights": r.weights,
                "biases": r.biases,
                "params": r.params,
                "buffers": r.buffers,
                "macs": r.macs,
                "flops": r.flops,
                "leaves": r.leaves,
            }
        )
        if r.working:
            rows[-1]["working"] = list(r.working)
        if r.field is not None:
            f = r.field
            rows[-1]["receptive_field"] = (
                "all" if f.whole else {key: [float(v) for v in getattr(f, key)] for key in ("size", "jump", "start")}
            )
    t = report.totals
    totals = {
        "weights": t.weights,
        "biases": t.biases,
        "params": t.params,
        "buffers": t.buffers,
        "activations": t.activations,
        "activations_with_input": t.activations_with_input,
        "macs": t.macs,
        "flops": t.flops,
        "peak_activations": t.peak_activations,
        "activation_bytes": report.bytes_of(t.activations_with_input),
        "peak_activation_bytes": report.bytes_of(t.peak_activations),
        "param_bytes": report.param_bytes,
        "buffer_bytes": report.buffer_bytes,
        "predicted_peak_bytes": {"inference": predicted_memory(report, train=False), "training": predicted_memory(report, train=True)},
    }
    warnings = [{"layer": w.layer, "line": w.where.line, "message": w.message} for w in report.warnings]
    return {
        "name": report.name,
        "input": list(report.input_shape),
        "batch": report.batch,
        "dtype": report.dtype.value,
        "layers": rows,
        "totals": totals,
        "warnings": warnings,
    }


def json_text(report: Report) -> str:
    return json.dumps(json_data(report), indent=2) + "\n"
