"""A report as the writers' values: its table (columns chosen per command), totals lines and
the JSON contract. Free of torch."""

from __future__ import annotations

from enum import Enum
from json.encoder import encode_basestring_ascii
from typing import Any, Callable, Iterator, Sequence

from ..analysis import Field, Report, Row, Style, Totals, predicted_memory
from ..graph import OutputKind
from ..records import record
from .cells import ShapeOrder, field_text, human, human_bytes, shape_text
from .document import RowStream, Table


@record
class Column:
    header: str
    value: Callable[[Row, Report], Any]
    total: Callable[[Totals, Report], Any] | None = None
    numeric: bool = True


class Columns(Enum):
    """Every column a table can show; each command picks its own list."""

    NAME = Column("Layer", lambda r, rep: _name_cell(r, rep), lambda t, rep: "total", numeric=False)
    TYPE = Column("Type", lambda r, rep: r.type, numeric=False)
    SHAPE = Column("Output", lambda r, rep: r.output_shape, numeric=False)
    ACTIVATIONS = Column("Activations", lambda r, rep: r.activations, lambda t, rep: t.activations)
    ACTIVATION_BYTES = Column(
        "Act. bytes", lambda r, rep: rep.bytes_of(r.activations), lambda t, rep: rep.bytes_of(t.activations)
    )
    WEIGHTS = Column("Weights", lambda r, rep: r.weights, lambda t, rep: t.weights)
    BIASES = Column("Biases", lambda r, rep: r.biases, lambda t, rep: t.biases)
    PARAMS = Column("Params", lambda r, rep: r.params, lambda t, rep: t.params)
    MACS = Column("MACs", lambda r, rep: r.macs, lambda t, rep: t.macs)
    FLOPS = Column("FLOPs (2xMACs)", lambda r, rep: r.flops, lambda t, rep: t.flops)
    RF = Column("RF", lambda r, rep: _field_cell(r.field, "size"))
    JUMP = Column("Jump", lambda r, rep: _field_cell(r.field, "jump"))
    START = Column("Start", lambda r, rep: _field_cell(r.field, "start"))


# the columns of `cnncalc summary` (and of a notebook's report)
SUMMARY_COLUMNS = (
    Columns.NAME,
    Columns.TYPE,
    Columns.SHAPE,
    Columns.ACTIVATIONS,
    Columns.WEIGHTS,
    Columns.BIASES,
    Columns.MACS,
)


def _field_cell(field: Field | None, part: str) -> str:
    """A receptive-field cell: `11`, `11x7`, `all`; `173..189` where the size varies by position
    (after a transposed convolution); `?` where it was not tabulated."""
    if field is not None and not field.whole and not field.known:
        return "?"
    if part == "size" and field is not None and not field.whole and field.varies:
        return f"{field_text(field, 'size_min')}..{field_text(field, 'size')}"
    return field_text(field, part)


def _name_cell(row: Row, report: Report) -> str:
    """The row's name, and where the network has `outputs:`, which of them it is (`layer3 (output p4)`;
    a collapsed block, those of its layers)."""
    keys = report.output_keys(row)
    return f"{row.name} (output {', '.join(keys)})" if keys else row.name


def outputs_line(report: Report) -> str | None:
    """What a network with `outputs:` returns, one line (None for one returned tensor, the last row)."""
    if report.returns is OutputKind.TENSOR:
        return None
    shown = ", ".join(f"{o.key} = {o.layer} {list(o.output_shape)}" for o in report.outputs)
    return f"outputs ({report.returns.value} of {len(report.outputs)}): {shown}; each kept alive to the end"


def totals_lines(report: Report) -> list[str]:
    """The totals under every table: always both weights and biases, exact and short."""
    t = report.totals

    def both(v: int) -> str:
        return f"{v:,} ({human(v)})" if v >= 1000 else f"{v:,}"

    dtype = report.dtype.value
    return [
        f"params: {both(t.params)} = weights {both(t.weights)} + biases {both(t.biases)}; buffers {t.buffers:,}",
        f"activations: {both(t.activations)} without the input, {both(t.activations_with_input)} with it, "
        + (
            "the rows shown (activations, views and identity rows folded, as the lecture tables count)"
            if report.style is Style.LECTURE
            else f"one output per row; new tensors {both(t.stored_activations)} (views such as flatten and dropout are not)"
        )
        + f"; peak live (inference) {both(t.peak_activations)}",
        f"MACs: {both(t.macs)}; FLOPs (2 x MACs): {both(t.flops)}   (per sample)",
        f"memory at batch {report.batch}, {dtype}: activations {human_bytes(report.bytes_of(t.activations_with_input))}, "
        f"peak live {human_bytes(report.bytes_of(t.peak_activations))}, parameters {human_bytes(report.param_bytes)}",
        *filter(None, [outputs_line(report)]),
    ]


def predicted_line(report: Report) -> str:
    """The peak memory a run should reach at the report's batch and dtype (docs/conventions.md)."""
    return (
        f"predicted peak at batch {report.batch}, {report.dtype.value}: inference {human_bytes(predicted_memory(report, train=False))}, "
        f"training step (SGD with momentum) {human_bytes(predicted_memory(report, train=True))}; "
        "cnncalc profile measures it"
    )


def title(report: Report, layout: ShapeOrder) -> str:
    return f"{report.name}  (input {shape_text(report.input_shape, layout)}, {layout.value})"


def _column(col: Columns | Column) -> Column:
    return col.value if isinstance(col, Columns) else col


def report_table(
    report: Report,
    columns: Sequence[Columns | Column],
    layout: ShapeOrder,
    explain: bool = False,
    footer: Sequence[str] | None = None,
) -> Table:
    """The report as a table of `columns` with a totals row; `explain` adds each row's working.
    The footer is the totals lines unless the command gives its own."""
    cols = [_column(col) for col in columns]
    return Table(
        header=tuple(col.header for col in cols),
        rows=tuple(tuple(col.value(row, report) for col in cols) for row in report.rows),
        numeric=tuple(col.numeric for col in cols),
        total=tuple(col.total(report.totals, report) if col.total else "" for col in cols),
        notes=tuple(row.working for row in report.rows) if explain else None,
        title=title(report, layout),
        footer=tuple(totals_lines(report) if footer is None else footer),
        layout=layout,
    )


def json_data(report: Report, streamed: bool = False) -> dict[str, Any]:
    """The JSON contract (README and docs/spec.md): shapes as [C, ...spatial], counts per sample.
    `streamed`: the layers as a `RowStream`, each row's dict made as the JSON writer writes it
    (a 100,000-row spec would otherwise hold every row's dict and the whole text at once)."""
    rows: list[dict[str, Any]] | RowStream = (
        RowStream(len(report.rows), lambda: json_row_lines(report)) if streamed else list(json_rows(report))
    )
    t = report.totals
    totals = {
        "weights": t.weights,
        "biases": t.biases,
        "params": t.params,
        "buffers": t.buffers,
        "activations": t.activations,
        "activations_with_input": t.activations_with_input,
        "stored_activations": t.stored_activations,
        "macs": t.macs,
        "flops": t.flops,
        "peak_activations": t.peak_activations,
        "activation_bytes": report.bytes_of(t.activations_with_input),
        "peak_activation_bytes": report.bytes_of(t.peak_activations),
        "param_bytes": report.param_bytes,
        "buffer_bytes": report.buffer_bytes,
        "predicted_peak_bytes": {
            "inference": predicted_memory(report, train=False),
            "training": predicted_memory(report, train=True),
        },
    }
    warnings = [{"layer": w.layer, "line": w.where.line, "message": w.message} for w in report.warnings]
    return {
        "name": report.name,
        "input": list(report.input_shape),
        "batch": report.batch,
        "dtype": report.dtype.value,
        "style": report.style.value,
        "layers": rows,
        "totals": totals,
        "warnings": warnings,
        **(
            {}  # one tensor, the last row's, as before `outputs:`
            if report.returns is OutputKind.TENSOR
            else {
                "returns": report.returns.value,
                "outputs": [
                    {"key": o.key, "layer": o.layer, "output_shape": list(o.output_shape)} for o in report.outputs
                ],
            }
        ),
    }


def json_row_lines(report: Report) -> Iterator[dict[str, Any] | str]:
    """`json_rows` for the JSON writer: a row of the plain keys (no working, no receptive field)
    as its line of JSON already, as `json.dumps(row)` writes it (keys in `json_rows`' order, `, `
    and `: ` between them, text escaped to ASCII): without a dict made and walked per row, a
    100,000-layer summary writes its rows in half the time. Other rows as `json_rows` makes them.
    The text around a row's name and inputs is written once per type, shape and numbers (a
    block's rows recur): half the time again."""
    text = encode_basestring_ascii
    per_element = report.batch * report.dtype.bytes  # report.bytes_of(1)
    # by (type, id of the shape, numbers): the text between the name and the inputs, and after
    # them (the rows hold the shapes: an id stays theirs)
    around: dict[tuple[object, ...], tuple[str, str]] = {}
    for r in report.rows:
        if r.working or r.field is not None:
            yield _json_row(r, report.bytes_of)
            continue
        key = (r.type, id(r.output_shape), r.activations, r.weights, r.biases, r.buffers, r.macs, r.leaves)
        found = around.get(key)
        if found is None:
            found = around[key] = (
                f', "type": {text(r.type)}, "output_shape": [{", ".join(map(str, r.output_shape))}], "inputs": [',
                f'], "activations": {r.activations}, "activation_bytes": {r.activations * per_element}, '
                f'"weights": {r.weights}, "biases": {r.biases}, "params": {r.weights + r.biases}, '
                f'"buffers": {r.buffers}, "macs": {r.macs}, "flops": {2 * r.macs}, "leaves": {r.leaves}}}',
            )
        yield f'{{"name": {text(r.name)}{found[0]}{", ".join(map(text, r.inputs))}{found[1]}'


def json_rows(report: Report) -> Iterator[dict[str, Any]]:
    """Each row of the JSON contract's `layers`, one at a time."""
    bytes_of = report.bytes_of
    for r in report.rows:
        yield _json_row(r, bytes_of)


def _json_row(r: Row, bytes_of: Callable[[int], int]) -> dict[str, Any]:
    """One row of the JSON contract's `layers`."""
    row: dict[str, Any] = {
        "name": r.name,
        "type": r.type,
        "output_shape": list(r.output_shape),
        "inputs": list(r.inputs),
        "activations": r.activations,
        "activation_bytes": bytes_of(r.activations),
        "weights": r.weights,
        "biases": r.biases,
        "params": r.params,
        "buffers": r.buffers,
        "macs": r.macs,
        "flops": r.flops,
        "leaves": r.leaves,
    }
    if r.working:
        row["working"] = list(r.working)
    if r.field is not None:
        f = r.field
        if f.whole or not f.known:
            row["receptive_field"] = "all" if f.whole else "unknown"
        else:
            field: dict[str, list[float]] = {
                key: [float(v) for v in getattr(f, key)] for key in ("size", "jump", "start")
            }
            if f.varies:  # position-dependent: the smallest field too
                field["size_min"] = [float(v) for v in f.size_min]
            row["receptive_field"] = field
    return row
