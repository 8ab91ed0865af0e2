"""The table commands: shapes, params, memory, flops and summary (list, layers and validate are
in catalog.py; memory --train and --fit's output in budget.py)."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, List, Optional, Sequence

import typer

from ..analysis import DType, Report, Style, analyze, collapse, groups
from ..analysis.budget import Optimizer
from ..analysis.conventions import Convention, count
from ..errors import CnncalcError
from ..render import Format, Output, ShapeOrder, human
from ..render.report import (
    SUMMARY_COLUMNS,
    Column,
    Columns,
    json_data,
    outputs_line,
    predicted_line,
    report_table,
    totals_lines,
)
from .common import (
    ArgOpt,
    BatchOpt,
    DepthOpt,
    DTypeOpt,
    ExplainOpt,
    GraphFormatOpt,
    InputOpt,
    LayoutOpt,
    QuietOpt,
    RfOpt,
    SpecArg,
    StrictOpt,
    StyleOpt,
    app,
    emit,
    load_graph,
    load_report,
    parse_input,
    print_warnings,
    reported_errors,
)

if TYPE_CHECKING:
    from ..render.graph_text import Drawing

RF_NOTE = (
    "RF: input pixels one output position can see; Jump: input distance between neighbouring outputs; "
    "Start: centre of the first output's field (0 = first pixel's centre). See docs/conventions.md."
)
RF_VARIES_NOTE = (
    "RF a..b: the field varies by position (after a transposed convolution), from a to b input pixels; "
    "Jump is then the average distance."
)


def report_output(
    command: str,
    report: Report,
    columns: Sequence[Columns | Column],
    layout: ShapeOrder,
    explain: bool = False,
    rf: bool = False,
    notes: Sequence[str] = (),
    graph: Drawing | None = None,
    fmt: Format | None = None,
) -> Output:
    """A report as its table (totals and `notes` below it), its JSON contract and its layer graph;
    for `fmt` JSON only the contract, its rows made as they are written (a 100,000-row spec
    would otherwise build a table it does not print and hold every row's dict at once)."""
    if fmt is Format.JSON:
        return Output(command, data=json_data(report, streamed=True), graph=graph)
    if rf:
        varies = any(
            row.field is not None and row.field.known and not row.field.whole and row.field.varies
            for row in report.rows
        )
        columns, notes = (
            [*columns, Columns.RF, Columns.JUMP, Columns.START],
            [*notes, RF_NOTE, *([RF_VARIES_NOTE] if varies else [])],
        )
    table = report_table(report, columns, layout, explain, footer=[*totals_lines(report), *notes])
    return Output(command, (table,), data=json_data(report), graph=graph)


def drawn(
    fmt: Format, source: str, input: str | None, strict: bool, depth: int | None, args: list[str] | None = None
) -> Drawing | None:
    """The layer graph for `--format dot|mermaid` (None for the other formats, which need none)."""
    if fmt not in (Format.DOT, Format.MERMAID):
        return None
    from ..render.graph_text import drawing  # only these formats need it (start-up time)

    graph = load_graph(source, input, args)
    return drawing(graph, analyze(graph, input_shape=parse_input(input, graph.input_shape), strict=strict), depth)


@app.command()
def shapes(
    spec_file: SpecArg,
    format: GraphFormatOpt = Format.TEXT,
    input: InputOpt = None,
    layout: LayoutOpt = ShapeOrder.HWC,
    depth: DepthOpt = None,
    strict: StrictOpt = False,
    explain: ExplainOpt = False,
    rf: RfOpt = False,
    quiet: QuietOpt = False,
    style: StyleOpt = Style.FULL,
) -> None:
    """Output shape of every layer: floor((W - F + 2P)/S) + 1 per axis."""
    with reported_errors():
        report = load_report(
            spec_file, input, strict=strict, depth=depth, explain=explain, rf=rf, quiet=quiet, style=style
        )
        emit(
            report_output(
                "shapes",
                report,
                [Columns.NAME, Columns.TYPE, Columns.SHAPE],
                layout,
                explain,
                rf,
                graph=drawn(format, spec_file, input, strict, depth),
                fmt=format,
            ),
            format,
        )


@app.command()
def params(
    spec_file: SpecArg,
    biases: Annotated[bool, typer.Option("--biases", help="Add biases (and weights + biases) to the columns.")] = False,
    format: GraphFormatOpt = Format.TEXT,
    input: InputOpt = None,
    layout: LayoutOpt = ShapeOrder.HWC,
    depth: DepthOpt = None,
    strict: StrictOpt = False,
    explain: ExplainOpt = False,
    quiet: QuietOpt = False,
    style: StyleOpt = Style.FULL,
) -> None:
    """Learned parameters per layer: weights only, like the lecture's VGG table, or with --biases."""
    with reported_errors():
        report = load_report(spec_file, input, strict=strict, depth=depth, explain=explain, quiet=quiet, style=style)
        columns = [Columns.NAME, Columns.TYPE, Columns.SHAPE, Columns.WEIGHTS]
        if biases:
            columns += [Columns.BIASES, Columns.PARAMS]
        emit(
            report_output(
                "params",
                report,
                columns,
                layout,
                explain,
                graph=drawn(format, spec_file, input, strict, depth),
                fmt=format,
            ),
            format,
        )


@app.command()
def memory(
    spec_file: SpecArg,
    batch: BatchOpt = 1,
    dtype: DTypeOpt = DType.FP32,
    format: GraphFormatOpt = Format.TEXT,
    input: InputOpt = None,
    layout: LayoutOpt = ShapeOrder.HWC,
    depth: DepthOpt = None,
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
    style: StyleOpt = Style.FULL,
    fit: Annotated[
        Optional[str],
        typer.Option(
            "--fit",
            help="Instead: the largest batch whose predicted peak fits this memory (16GiB, 80GB, 512MiB).",
            show_default=False,
        ),
    ] = None,
    train: Annotated[
        bool, typer.Option("--train", help="Predict a training step, not inference: by part at --batch, or with --fit.")
    ] = False,
    optimizer: Annotated[
        Optional[Optimizer],
        typer.Option(
            "--optimizer",
            help="With --train: the optimizer, whose state is kept per parameter (default: momentum).",
            show_default=False,
        ),
    ] = None,
    reserve: Annotated[
        Optional[str],
        typer.Option(
            "--reserve",
            help="Memory the runtime holds besides the model (CUDA context, cuDNN workspace): 1GiB, 600MB.",
            show_default=False,
        ),
    ] = None,
    checkpoint: Annotated[
        Optional[List[str]],
        typer.Option(
            "--checkpoint",
            help="With --train: blocks recomputed in backward (torch.utils.checkpoint), by name: layer1,layer2.",
            show_default=False,
        ),
    ] = None,
    arg: ArgOpt = None,
) -> None:
    """Activations per layer (elements of its output) and their bytes at --batch and --dtype;
    with --train, a training step's predicted peak by part; with --fit, the largest batch that
    fits a memory budget. --dtype fp16/bf16 is autocast (fp32 master weights)."""
    with reported_errors():
        blocks = [name.strip() for item in checkpoint or [] for name in item.split(",") if name.strip()]
        for given, option, what in (
            (blocks, "--checkpoint", "recomputes blocks in a training step's backward pass"),
            (optimizer, "--optimizer", "is the optimizer of a training step"),
        ):
            if given and not train:
                raise CnncalcError(f"{option} {what}", received=f"{option} without --train", hint="add --train")
        optimizer = optimizer or Optimizer.MOMENTUM
        if fit is not None:
            from .budget import fit_output

            emit(fit_output(spec_file, fit, train, dtype, input, arg, optimizer, reserve, blocks), format)
            return
        if train or reserve is not None:
            from .budget import budget_output

            emit(budget_output(spec_file, batch, train, dtype, input, arg, optimizer, reserve, blocks), format)
            return
        report = load_report(spec_file, input, batch, dtype, strict, depth, quiet=quiet, style=style, args=arg)
        columns = [Columns.NAME, Columns.TYPE, Columns.SHAPE, Columns.ACTIVATIONS, Columns.ACTIVATION_BYTES]
        emit(
            report_output(
                "memory",
                report,
                columns,
                layout,
                notes=[predicted_line(report)],
                graph=drawn(format, spec_file, input, strict, depth, arg),
                fmt=format,
            ),
            format,
        )


# Every convention of conventions.py, and "all" of them side by side.
ConventionOpt = Enum("ConventionOpt", {**{c.name: c.value for c in Convention}, "ALL": "all"}, type=str)  # type: ignore[misc]
ALL = "all"


@app.command()
def flops(
    spec_file: SpecArg,
    format: GraphFormatOpt = Format.TEXT,
    input: InputOpt = None,
    layout: LayoutOpt = ShapeOrder.HWC,
    depth: DepthOpt = None,
    strict: StrictOpt = False,
    explain: ExplainOpt = False,
    quiet: QuietOpt = False,
    style: StyleOpt = Style.FULL,
    convention: Annotated[
        ConventionOpt,
        typer.Option(
            "--convention",
            help="Also count as another tool does (fvcore, torchinfo, torch's flop counter, thop, ptflops), or all of them side by side.",
        ),
    ] = ConventionOpt(Convention.CNNCALC.value),
    arg: ArgOpt = None,
) -> None:
    """Multiply-accumulates (conv, transposed conv, linear) and FLOPs = 2 x MACs, per sample."""
    with reported_errors():
        if convention.value == Convention.CNNCALC.value:
            report = load_report(
                spec_file, input, strict=strict, depth=depth, explain=explain, quiet=quiet, style=style, args=arg
            )
            columns = [Columns.NAME, Columns.TYPE, Columns.SHAPE, Columns.MACS, Columns.FLOPS]
            emit(
                report_output(
                    "flops",
                    report,
                    columns,
                    layout,
                    explain,
                    graph=drawn(format, spec_file, input, strict, depth, arg),
                    fmt=format,
                ),
                format,
            )
        elif style is Style.LECTURE:
            raise CnncalcError(
                "--style lecture folds rows that other tools count (ptflops counts ReLU)",
                hint="drop --style with --convention, or --convention with --style",
            )
        else:
            emit(_conventions_output(spec_file, input, strict, depth, convention, layout, quiet, arg), format)


def _conventions_output(
    source: str,
    input: str | None,
    strict: bool,
    depth: int | None,
    convention: Any,
    layout: ShapeOrder,
    quiet: bool = False,
    args: list[str] | None = None,
) -> Output:
    """The per-row table with one column per convention, and a line per convention on what it counts."""
    graph = load_graph(source, input, args)
    report = analyze(graph, input_shape=parse_input(input, graph.input_shape), strict=strict)
    print_warnings(report, quiet)
    chosen = list(Convention)[1:] if convention.value == ALL else [Convention(convention.value)]
    counted = [count(graph, report, c) for c in [Convention.CNNCALC, *chosen]]
    names = [row.name for row in report.rows]
    merged = groups(names, depth) if depth else [(name, [i]) for i, name in enumerate(names)]
    if depth:
        report = collapse(report, depth)
    position = {id(row): i for i, row in enumerate(report.rows)}
    columns: list[Columns | Column] = [Columns.NAME, Columns.TYPE, Columns.SHAPE]
    per_row = {}
    for c in counted:
        header = "MACs (cnncalc)" if c.convention is Convention.CNNCALC else c.convention.value
        values = per_row[c.convention] = [sum(c.rows.get(names[i], 0) for i in members) for _, members in merged]
        columns.append(_given_column(header, values, position, c.total))
    notes = [f"{c.convention.value}: {c.total:,} ({human(c.total)}) - {c.convention.summary}" for c in counted]
    returned = outputs_line(report)
    table = report_table(
        report,
        columns,
        layout,
        footer=[*notes, "(per sample; see docs/conventions.md)", *([returned] if returned else [])],
    )
    data = {
        "name": report.name,
        "input": list(report.input_shape),
        "conventions": {
            c.convention.value: {
                "total": c.total,
                "counts": c.convention.summary,
                "rows": {row.name: v for row, v in zip(report.rows, per_row[c.convention])},
            }
            for c in counted
        },
    }
    return Output("flops", (table,), data=data)


def _given_column(header: str, values: Sequence[int | float], position: dict[int, int], total: int) -> Column:
    """A column of numbers computed beforehand, one per row of the report (`position` by row id)."""
    return Column(header, lambda row, report: values[position[id(row)]], lambda totals, report: total)


@app.command()
def summary(
    spec_file: SpecArg,
    batch: BatchOpt = 1,
    dtype: DTypeOpt = DType.FP32,
    format: GraphFormatOpt = Format.TEXT,
    input: InputOpt = None,
    layout: LayoutOpt = ShapeOrder.HWC,
    depth: DepthOpt = None,
    strict: StrictOpt = False,
    explain: ExplainOpt = False,
    rf: RfOpt = False,
    quiet: QuietOpt = False,
    style: StyleOpt = Style.FULL,
    arg: ArgOpt = None,
) -> None:
    """The whole VGG-style table: shape, activations ("memory"), weights, biases and MACs."""
    with reported_errors():
        report = load_report(spec_file, input, batch, dtype, strict, depth, explain, rf, quiet, style, args=arg)
        columns = list(SUMMARY_COLUMNS)
        emit(
            report_output(
                "summary",
                report,
                columns,
                layout,
                explain,
                rf,
                graph=drawn(format, spec_file, input, strict, depth, arg),
                fmt=format,
            ),
            format,
        )
