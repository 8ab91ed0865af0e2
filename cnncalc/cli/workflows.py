"""The questions after the first table: `diff` (two networks side by side), `sweep` (sizes,
batches and dtypes) and `plot` (bars in the terminal, or a picture with the plot extra).
`memory --fit`'s output is in budget.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer

from ..analysis import DType, Report, collapse
from ..analysis.compare import ROW_QUANTITIES, diff
from ..analysis.sweep import check_combinations, parse_batches, parse_dtypes, parse_shapes, sweep, sweep_each
from ..errors import CnncalcError
from ..quantities import Quantity
from ..render import Abbreviated, Bar, Bytes, Format, Output, ShapeOrder, Table, shape_text
from ..render.diff import diff_output
from ..render.sweep import sweep_output
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
