"""The questions after the first table: `diff` (two networks side by side), `sweep` (sizes,
batches and dtypes) and `plot` (bars in the terminal, or a picture with the plot extra).
`memory --fit`'s output is in budget.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, List, Optional, Sequence

import typer

from ..analysis import DType, NetworkOutput, Report, collapse
from ..analysis.compare import ROW_QUANTITIES, TOTAL_QUANTITIES, Change, Diff, RowDiff, Status, diff
from ..analysis.sweep import SweepRow, check_combinations, parse_batches, parse_dtypes, parse_shapes, sweep, sweep_each
from ..errors import CnncalcError
from ..graph import OutputKind
from ..quantities import Quantity, Unit
from ..render import (
    Abbreviated,
    Bar,
    Bytes,
    Delta,
    Format,
    Output,
    Ratio,
    ShapeOrder,
    Table,
    human,
    human_bytes,
    shape_text,
)
from ..spec import library
from .common import (
    ArgOpt,
    DepthOpt,
    DTypeOpt,
    ExitCode,
    FormatOpt,
    InputOpt,
    LayoutOpt,
    SpecArg,
    StrictOpt,
    app,
    choice_option,
    emit,
    load_graph,
    load_report,
    reported_errors,
)

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


QuantityListOpt = Annotated[
    Optional[List[Quantity]],
    choice_option(
        "--quantity",
        "-q",
        help="A quantity to compare per row (repeat the option); default params and macs.",
        members=ROW_QUANTITIES,
    ),
]


@app.command("diff")
def diff_command(
    spec_a: Annotated[str, typer.Argument(help="Spec A: a file or a built-in name.", show_default=False)],
    spec_b: Annotated[
        Optional[str],
        typer.Argument(help="Spec B (default: A again, to compare one spec at two inputs).", show_default=False),
    ] = None,
    input: InputOpt = None,
    input_a: Annotated[
        Optional[str], typer.Option("--input-a", help="Input of A only (channels first).", show_default=False)
    ] = None,
    input_b: Annotated[
        Optional[str], typer.Option("--input-b", help="Input of B only (channels first).", show_default=False)
    ] = None,
    quantity: QuantityListOpt = None,
    every_row: Annotated[bool, typer.Option("--all", help="Show the rows that are the same as well.")] = False,
    fail_on_change: Annotated[
        bool, typer.Option("--fail-on-change", help="Exit 7 when anything differs (for CI).")
    ] = False,
    batch: Annotated[int, typer.Option("--batch", "-b", min=1, help="Batch size for the predicted peaks.")] = 1,
    dtype: DTypeOpt = DType.FP32,
    format: FormatOpt = Format.TEXT,
    layout: LayoutOpt = ShapeOrder.HWC,
    depth: DepthOpt = None,
    strict: StrictOpt = False,
) -> None:
    """Two networks (or one at two inputs) side by side: rows matched by name, then by position
    where names differ; each quantity's change and ratio; rows only in one; totals with deltas."""
    with reported_errors():
        a = load_report(spec_a, input_a or input, batch, dtype, strict, depth)
        b = load_report(spec_b or spec_a, input_b or input, batch, dtype, strict, depth)
        d = diff(a, b)
        emit(diff_output(d, a, b, quantity or [Quantity.PARAMS, Quantity.MACS], layout, every_row), format)
    if fail_on_change and d.changed:
        raise typer.Exit(ExitCode.CHANGED)


# ----- sweep -----------------------------------------------------------------------------------


def sweep_output(name: str, rows: list[SweepRow], layout: ShapeOrder) -> Output:
    header = (
        "Input",
        "Batch",
        "DType",
        "Params",
        "MACs",
        "Sum of outputs",
        "Inference peak",
        "Training peak",
        "Output",
        "Note",
    )
    body: list[tuple[Any, ...]] = []
    for r in rows:
        if r.ok:
            body.append(
                (
                    r.input_shape,
                    r.batch,
                    r.dtype.value,
                    Abbreviated(r.params or 0),
                    Abbreviated(r.macs or 0),
                    Bytes(r.activation_bytes or 0),
                    Bytes(r.inference_bytes or 0),
                    Bytes(r.training_bytes or 0),
                    _returned_cell(r, layout) if r.outputs else r.output_shape,
                    "",
                )
            )
        else:
            body.append(
                (
                    r.input_shape,
                    r.batch,
                    r.dtype.value,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    "does not fit: " + "; ".join((r.error or "").split("; ")[:2]),
                )
            )
    failed = sum(not r.ok for r in rows)
    several = next((r for r in rows if r.outputs), None)
    table = Table(
        header=header,
        rows=tuple(body),
        numeric=(False, True, False, True, True, True, True, True, False, False),
        title=f"{name}: {len(rows)} combinations (input and output {layout.value})",
        footer=(
            "params and MACs per sample; bytes for the batch: the sum of every row's output (in-place activations "
            "and views included: more than is ever held at once, so it can exceed the peaks), predicted peaks "
            "(what is held at once: inference; training step with SGD and momentum) as in docs/conventions.md",
            *(
                [
                    f"{failed} of {len(rows)} combinations do not fit the network (Note says why; JSON has the whole message)"
                ]
                if failed
                else []
            ),
            *(
                [
                    f"Output: the {len(several.outputs)} tensors the network returns (its outputs:, a "
                    f"{several.returns.value}), bracketed as Python prints them: (a, b) a tuple, [a, b] a list, "
                    "{key: a} a dict, (field=a) a namedtuple"
                ]
                if several is not None
                else []
            ),
        ),
        layout=layout,
    )
    data = {
        "name": name,
        "rows": [
            {
                "input": list(r.input_shape),
                "batch": r.batch,
                "dtype": r.dtype.value,
                "fits": r.ok,
                "params": r.params,
                "macs": r.macs,
                "activation_bytes": r.activation_bytes,
                "inference_bytes": r.inference_bytes,
                "training_bytes": r.training_bytes,
                "output_shape": list(r.output_shape) if r.output_shape else None,
                "error": r.error,
                **(
                    {
                        "returns": r.returns.value,
                        "outputs": [
                            {"key": o.key, "layer": o.layer, "output_shape": list(o.output_shape)} for o in r.outputs
                        ],
                    }
                    if r.outputs
                    else {}
                ),
            }
            for r in rows
        ],
    }
    return Output("sweep", (table,), data=data)


def _returned_cell(row: SweepRow, layout: ShapeOrder) -> str:
    """Several returned tensors in one cell, bracketed as Python prints the structure:
    `(16x16x16, 32x8x8)`, `[16x16x16, 32x8x8]`, `{p1: 16x16x16, p2: 32x8x8}`, a namedtuple's
    `(p1=16x16x16, p2=32x8x8)`."""
    shapes = [shape_text(o.output_shape, layout) for o in row.outputs]
    if row.returns is OutputKind.DICT:
        return "{" + ", ".join(f"{o.key}: {shape}" for o, shape in zip(row.outputs, shapes)) + "}"
    if row.returns is OutputKind.NAMEDTUPLE:
        return "(" + ", ".join(f"{o.key}={shape}" for o, shape in zip(row.outputs, shapes)) + ")"
    inner = ", ".join(shapes)
    return f"[{inner}]" if row.returns is OutputKind.LIST else f"({inner})"


@app.command("sweep")
def sweep_command(
    spec_file: SpecArg,
    input: Annotated[
        Optional[str],
        typer.Option(
            "--input",
            help="Input shapes, channels first, with brace groups: 3x{128,160,224} or 3x224x224,3x256x256 (default: the spec's).",
            show_default=False,
        ),
    ] = None,
    batch: Annotated[str, typer.Option("--batch", "-b", help="Batch sizes: 1,8,64.")] = "1",
    dtype: Annotated[str, typer.Option("--dtype", help="Element types: fp32,bf16.")] = "fp32",
    format: FormatOpt = Format.TEXT,
    layout: Annotated[
        ShapeOrder, typer.Option("--layout", help="How shapes print: chw (as --input is written) or hwc.")
    ] = ShapeOrder.CHW,
    strict: StrictOpt = False,
    arg: ArgOpt = None,
) -> None:
    """One row per input size, batch and dtype: params, MACs, activation bytes, predicted peaks
    (inference and training) and the output shape. Sizes that do not fit are rows with the reason.

    A PyTorch model (file.py:Class, pkg.module:factory, torchvision:NAME) is built once and traced
    again at each size (its layers can depend on it): write each shape in full, 3x{128,224}x{128,224}.
    """
    with reported_errors():
        batches, dtypes = parse_batches(batch), parse_dtypes(dtype)
        if input and library.is_model_target(spec_file):
            inputs = parse_shapes(input)
            check_combinations(len(inputs), batches, dtypes)  # before tracing the model at every size
            from ..torch_bridge.importer import load_target_at  # imports torch

            imported = load_target_at(spec_file, inputs, arg or [])
            name = next((i.graph.name for _, i in imported if not isinstance(i, CnncalcError)), spec_file)
            graphs = [(shape, i if isinstance(i, CnncalcError) else i.graph) for shape, i in imported]
            rows = sweep_each(graphs, batches, dtypes, strict=strict)
        else:
            graph = load_graph(spec_file, None, arg)
            name = graph.name
            rows = sweep(graph, parse_shapes(input) if input else [graph.input_shape], batches, dtypes, strict=strict)
        emit(sweep_output(name, rows, layout), format)


# ----- plot --------------------------------------------------------------------------------------

BAR_WIDTH = 16


def bars_output(report: Report, layout: ShapeOrder) -> Output:
    """Per-layer bars of MACs, parameters and activation bytes in the terminal (no extra needed)."""
    rows = report.rows[1:]
    columns: list[list[int]] = [
        [Abbreviated(r.macs) for r in rows],
        [Abbreviated(r.params) for r in rows],
        [Bytes(report.bytes_of(r.activations)) for r in rows],
    ]
    tops = [max(values, default=0) for values in columns]
    body = []
    for i, r in enumerate(rows):
        cells: list[Any] = [r.name, r.type, r.output_shape]
        for values, top in zip(columns, tops):
            cells += [values[i], Bar(values[i], top, BAR_WIDTH)]
        body.append(tuple(cells))
    header = ("Layer", "Type", "Output", "MACs", "", "Params", "", "Act. bytes", "")
    table = Table(
        header,
        tuple(body),
        (False, False, False, True, False, True, False, True, False),
        title=f"{report.name}  (input {shape_text(report.input_shape, layout)}, batch {report.batch}, "
        f"{report.dtype.value}; each bar against its column's largest row)",
        footer=("cnncalc plot SPEC -o net.png draws them as a picture (the plot extra: pip install 'cnncalc[plot]')",),
        layout=layout,
    )
    data = {
        "name": report.name,
        "input": list(report.input_shape),
        "batch": report.batch,
        "dtype": report.dtype.value,
        "rows": [
            {
                "name": r.name,
                "type": r.type,
                "output_shape": list(r.output_shape),
                "macs": r.macs,
                "params": r.params,
                "activation_bytes": report.bytes_of(r.activations),
            }
            for r in rows
        ],
    }
    return Output("plot", (table,), data=data)


@app.command("plot")
def plot_command(
    spec_file: SpecArg,
    output: Annotated[
        Optional[Path],
        typer.Option(
            "--output", "-o", help="Write a picture: .png, .svg or .pdf (needs the plot extra).", show_default=False
        ),
    ] = None,
    format: FormatOpt = Format.TEXT,
    input: InputOpt = None,
    batch: Annotated[int, typer.Option("--batch", "-b", min=1, help="Batch size for activation bytes.")] = 1,
    dtype: DTypeOpt = DType.FP32,
    layout: LayoutOpt = ShapeOrder.HWC,
    depth: DepthOpt = None,
    strict: StrictOpt = False,
) -> None:
    """Per-layer bars of MACs, parameters and activation memory: in the terminal, or with -o as a
    picture (one panel per quantity; past 80 rows blocks collapse, or choose --depth)."""
    with reported_errors():
        report = load_report(spec_file, input, batch, dtype, strict)
        if output is None:
            emit(bars_output(collapse(report, depth) if depth else report, layout), format)
            return
        write_plot(report, output, depth)


def check_plot_target(path: Path) -> None:
    """Fail before any long work when `path` is not a picture format or matplotlib is missing."""
    from ..render.plot import SUFFIXES, _matplotlib

    if path.suffix.lower() not in SUFFIXES:
        raise CnncalcError(
            "unknown picture format", received=str(path), expected="a file ending in " + ", ".join(SUFFIXES)
        )
    _matplotlib()


def write_plot(report: Report, path: Path, depth: int | None, timings: Any = None) -> None:
    """Draw `report` (uncollapsed) to `path` with matplotlib; a line on stderr says what was written."""
    from ..render.plot import plot

    try:
        plotted = plot(report, path, timings=timings, depth=depth)
    except OSError as err:
        raise CnncalcError(
            f"cannot write {path}", received=err.strerror, hint="check the folder exists and is writable"
        ) from None
    collapsed = f", collapsed to depth {plotted.depth}" if plotted.depth else ""
    panels = ", ".join(q.value for q in plotted.values)
    sys.stderr.write(f"wrote {path} ({len(plotted.names)} rows{collapsed}; panels: {panels})\n")
