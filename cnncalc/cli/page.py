"""`cnncalc report`: one network as one self-contained, interactive HTML page (cnncalc/render/page.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..analysis import DType, Style, analyze
from ..analysis.conventions import Convention, count
from ..errors import CnncalcError
from .common import (
    ArgOpt,
    BatchOpt,
    DTypeOpt,
    InputOpt,
    QuietOpt,
    SpecArg,
    StrictOpt,
    StyleOpt,
    app,
    load_graph,
    parse_input,
    print_warnings,
    reported_errors,
)
from .tables import ALL, ConventionOpt


@app.command("report")
def report_command(
    spec_file: SpecArg,
    output: Annotated[
        Optional[Path],
        typer.Option(
            "--output",
            "-o",
            help="The page to write (net.html); without it, the page goes to stdout.",
            show_default=False,
        ),
    ] = None,
    batch: BatchOpt = 1,
    dtype: DTypeOpt = DType.FP32,
    input: InputOpt = None,
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
    style: StyleOpt = Style.FULL,
    convention: Annotated[
        ConventionOpt,
        typer.Option(
            "--convention",
            help="Also show how another tool counts (fvcore, torchinfo, torch's flop counter, thop, ptflops), or all of them: its total and each row's count.",
        ),
    ] = ConventionOpt(Convention.CNNCALC.value),
    arg: ArgOpt = None,
) -> None:
    """One self-contained HTML page: the graph (blocks collapse and expand), each layer's row and
    working, the table with --depth and sorting, memory over a forward pass and a training step,
    and the totals. Opens offline in any browser."""
    with reported_errors():
        graph = load_graph(spec_file, input, arg)
        report = analyze(
            graph,
            input_shape=parse_input(input, graph.input_shape),
            batch=batch,
            dtype=dtype,
            strict=strict,
            explain=True,
            fields=True,
        )
        print_warnings(report, quiet)
        chosen = list(Convention)[1:] if convention.value == ALL else [Convention(convention.value)]
        counted = [count(graph, report, c) for c in dict.fromkeys([Convention.CNNCALC, *chosen])]
        from ..render.page import page_data, page_html  # (here: its html tables are no part of `cnncalc --help`)

        text = page_html(page_data(graph, report, style, counted))
        if output is None:
            sys.stdout.write(text)
            return
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as err:
            raise CnncalcError(
                f"cannot write {output}", received=err.strerror, hint="check the folder exists and is writable"
            ) from None
        sys.stderr.write(
            f"wrote {output} ({len(text.encode()) / 2**20:.1f} MiB, {len(report.rows)} rows); open it in a browser\n"
        )
