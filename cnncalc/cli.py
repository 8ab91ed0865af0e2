"""The `cnncalc` command line. It renders what the library returns and chooses exit codes.

Nothing here imports torch: the static commands must start instantly.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from enum import Enum, IntEnum
from typing import Annotated, Iterator, List, Optional, Sequence

import typer

from . import __version__, library, spec
from .analysis import DType, Report, analyze, collapse, groups
from .conventions import Convention, count
from .errors import CnncalcError, MissingExtraError, StrictError
from .render import Columns, Format, Layout, csv_text, human, json_text, markdown, predicted_line, shape_text, text_table, totals_lines


class ExitCode(IntEnum):
    """Exit codes of every command (also listed in the README)."""

    OK = 0
    INVALID = 1  # the spec, a file or an option value is invalid; the message says why
    USAGE = 2  # the command line itself is malformed (unknown option, missing argument)
    STRICT = 3  # --strict and a layer whose stride does not tile its input
    WRONG = 4  # `check`: an answer is wrong (or a multiple-choice question has no right choice)
    MISSING_EXTRA = 5  # `profile`/`export` need PyTorch (the torch extra), which is not installed
    MISMATCH = 6  # `profile`: a number cnncalc computed disagrees with PyTorch


CONVENTIONS = """\
Counting conventions (docs/conventions.md):
output size floor((W - F + 2P)/S) + 1 per axis, F the dilated kernel D(F-1)+1; pooling in ceil_mode
drops a last window that would start in the right padding (PyTorch's rule); transposed convolution
(W-1)S - 2P + D(F-1) + output_padding + 1.
Weights and biases are separate: `params` counts weights only unless --biases, like the lecture's
VGG table; totals always show both. Batch norm: gamma is a weight, beta a bias, running mean/var
(and PyTorch's num_batches_tracked) are buffers.
Activations are the elements of each layer's output for one sample; bytes = activations x dtype
size x batch. MACs count convolution, transposed convolution and linear layers (bias adds not
included); FLOPs = 2 x MACs.
"""

app = typer.Typer(
    name="cnncalc",
    help="Shapes, parameters, memory and MACs of convolutional networks, layer by layer, from a YAML spec.\n\n"
    + CONVENTIONS,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

SpecArg = Annotated[str, typer.Argument(help="A spec file, or a built-in architecture name (see `cnncalc list`).", show_default=False)]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
InputOpt = Annotated[Optional[str], typer.Option("--input", help="Override the spec's input, channels first: 3x227x227.", show_default=False)]
BatchOpt = Annotated[int, typer.Option("--batch", "-b", min=1, help="Batch size for byte counts.")]
LayoutOpt = Annotated[Layout, typer.Option("--layout", help="How shapes print: hwc (224x224x64, the lecture tables) or chw.")]
DepthOpt = Annotated[Optional[int], typer.Option("--depth", "-d", min=1, help="Collapse blocks nested deeper than N names into one row each.", show_default=False)]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Treat a stride that does not tile its input as an error.")]
DTypeOpt = Annotated[DType, typer.Option("--dtype", help="Element type for byte counts.")]
ExplainOpt = Annotated[bool, typer.Option("--explain", "-e", help="Show each row's working: the formulas with its numbers filled in.")]
RfOpt = Annotated[bool, typer.Option("--rf", help="Add receptive field, jump (effective stride) and start per row.")]

def _label(text: str, color: str) -> str:
    """`error:` / `warning:` in colour on a terminal, plain otherwise (rich is not imported for it)."""
    codes = {"red": "1;31", "yellow": "33"}
    return f"\033[{codes[color]}m{text}\033[0m" if sys.stderr.isatty() else text


@contextmanager
def _reported_errors() -> Iterator[None]:
    """Turn the library's exceptions into one message on stderr and an exit code."""
    try:
        yield
    except StrictError as err:
        _print_error(err)
        raise typer.Exit(ExitCode.STRICT) from None
    except MissingExtraError as err:
        _print_error(err)
        raise typer.Exit(ExitCode.MISSING_EXTRA) from None
    except CnncalcError as err:
        _print_error(err)
        raise typer.Exit(ExitCode.INVALID) from None


def _print_error(err: CnncalcError) -> None:
    first, *rest = err.lines()
    sys.stderr.write(f"{_label('error:', 'red')} {first}\n" + "".join(f"  {line}\n" for line in rest))


def _parse_input(text: str) -> tuple[int, ...]:
    """A spec's --input override: channels first (3x227x227), or a flat [features] vector."""
    from .calculator import read_sizes

    shape = read_sizes(text, "--input")
    if len(shape) > 4:
        raise CnncalcError("malformed --input", received=text, expected="1 to 4 positive sizes, channels first: 3x227x227")
    return shape


def _report(source: str, input: str | None = None, batch: int = 1, dtype: DType = DType.FP32,
            strict: bool = False, depth: int | None = None, explain: bool = False, rf: bool = False) -> Report:  # fmt: skip
    graph = spec.load(library.resolve(source))
    shape = _parse_input(input) if input else None
    report = analyze(graph, input_shape=shape, batch=batch, dtype=dtype, strict=strict, explain=explain, fields=rf)
    _print_warnings(report)
    return collapse(report, depth) if depth else report


def _print_warnings(report: Report) -> None:
    for warning in report.warnings:
        sys.stderr.write(f"{_label('warning:', 'yellow')} {warning}\n")


def _emit(report: Report, columns: Sequence[Columns], fmt: Format, layout: Layout, explain: bool = False,
          rf: bool = False, notes: Sequence[str] = ()) -> None:  # fmt: skip
    if rf:
        columns = [*columns, Columns.RF, Columns.JUMP, Columns.START]
    if fmt is Format.JSON:
        sys.stdout.write(json_text(report))
    elif fmt is Format.CSV:
        sys.stdout.write(csv_text(report, columns, layout, explain))
    elif fmt is Format.MARKDOWN:
        sys.stdout.write(markdown(report, columns, layout, explain))
    else:
        notes = [*notes, RF_NOTE] if rf else notes
        sys.stdout.write(text_table(report, columns, layout, explain) + "\n" + "\n".join([*totals_lines(report), *notes]) + "\n")


RF_NOTE = ("RF: input pixels one output position can see; Jump: input distance between neighbouring outputs; "
           "Start: centre of the first output's field (0 = first pixel's centre). See docs/conventions.md.")  # fmt: skip


def _print_table(table: object, footer: Sequence[str], wide: bool = True) -> None:
    from rich.console import Console

    # Never crop numbers: a table wider than the terminal prints wide (the terminal wraps it).
    width = max(Console().width, 400) if wide else None
    console = Console(highlight=False, width=width)
    console.print(table)
    for line in footer:
        console.print(line, soft_wrap=True)


@app.command()
def shapes(spec_file: SpecArg, format: FormatOpt = Format.TABLE, input: InputOpt = None, layout: LayoutOpt = Layout.HWC,
           depth: DepthOpt = None, strict: StrictOpt = False, explain: ExplainOpt = False, rf: RfOpt = False) -> None:  # fmt: skip
    """Output shape of every layer: floor((W - F + 2P)/S) + 1 per axis."""
    with _reported_errors():
        report = _report(spec_file, input, strict=strict, depth=depth, explain=explain, rf=rf)
        _emit(report, [Columns.NAME, Columns.TYPE, Columns.SHAPE], format, layout, explain, rf)


@app.command()
def params(spec_file: SpecArg, biases: Annotated[bool, typer.Option("--biases", help="Add biases (and weights + biases) to the columns.")] = False,
           format: FormatOpt = Format.TABLE, input: InputOpt = None, layout: LayoutOpt = Layout.HWC,
           depth: DepthOpt = None, strict: StrictOpt = False, explain: ExplainOpt = False) -> None:  # fmt: skip
    """Learned parameters per layer: weights only, like the lecture's VGG table, or with --biases."""
    with _reported_errors():
        report = _report(spec_file, input, strict=strict, depth=depth, explain=explain)
        columns = [Columns.NAME, Columns.TYPE, Columns.SHAPE, Columns.WEIGHTS]
        if biases:
            columns += [Columns.BIASES, Columns.PARAMS]
        _emit(report, columns, format, layout, explain)


@app.command()
def memory(spec_file: SpecArg, batch: BatchOpt = 1, dtype: DTypeOpt = DType.FP32, format: FormatOpt = Format.TABLE,
           input: InputOpt = None, layout: LayoutOpt = Layout.HWC, depth: DepthOpt = None,
           strict: StrictOpt = False) -> None:  # fmt: skip
    """Activations per layer (elements of its output) and their bytes at --batch and --dtype."""
    with _reported_errors():
        report = _report(spec_file, input, batch, dtype, strict, depth)
        _emit(report, [Columns.NAME, Columns.TYPE, Columns.SHAPE, Columns.ACTIVATIONS, Columns.BYTES], format, layout,
              notes=[predicted_line(report)])


# Every convention of conventions.py, and "all" of them side by side.
ConventionOpt = Enum("ConventionOpt", {**{c.name: c.value for c in Convention}, "ALL": "all"}, type=str)  # type: ignore[misc]


@app.command()
def flops(spec_file: SpecArg, format: FormatOpt = Format.TABLE, input: InputOpt = None, layout: LayoutOpt = Layout.HWC,
          depth: DepthOpt = None, strict: StrictOpt = False, explain: ExplainOpt = False,
          convention: Annotated[ConventionOpt, typer.Option("--convention", help="Also count as another tool does (fvcore, torchinfo, torch's flop counter, thop, ptflops), or all of them side by side.")] = ConventionOpt.CNNCALC) -> None:  # fmt: skip
    """Multiply-accumulates (conv, transposed conv, linear) and FLOPs = 2 x MACs, per sample."""
    with _reported_errors():
        if convention is ConventionOpt.CNNCALC:
            report = _report(spec_file, input, strict=strict, depth=depth, explain=explain)
            _emit(report, [Columns.NAME, Columns.TYPE, Columns.SHAPE, Columns.MACS, Columns.FLOPS], format, layout, explain)
            return
        _flops_conventions(spec_file, input, strict, depth, convention, format, layout)


def _flops_conventions(source: str, input: str | None, strict: bool, depth: int | None, convention: "ConventionOpt",
                       fmt: Format, layout: Layout) -> None:  # fmt: skip
    """The per-row table with one column per convention, and a line per convention on what it counts."""
    from .render import Column

    graph = spec.load(library.resolve(source))
    report = analyze(graph, input_shape=_parse_input(input) if input else None, strict=strict)
    _print_warnings(report)
    chosen = list(Convention)[1:] if convention is ConventionOpt.ALL else [Convention(convention.value)]
    counted = [count(graph, report, c) for c in [Convention.CNNCALC, *chosen]]
    names = [row.name for row in report.rows]
    merged = groups(names, depth) if depth else [(name, [i]) for i, name in enumerate(names)]
    if depth:
        report = collapse(report, depth)
    position = {id(row): i for i, row in enumerate(report.rows)}
    columns: list = [Columns.NAME, Columns.TYPE, Columns.SHAPE]
    per_row = {}
    for c in counted:
        header = "MACs (cnncalc)" if c.convention is Convention.CNNCALC else c.convention.value
        values = per_row[c.convention] = [sum(c.rows.get(names[i], 0) for i in members) for _, members in merged]
        columns.append(Column(header, lambda r, rep, values=values: values[position[id(r)]], lambda t, rep, total=c.total: total))
    if fmt is Format.JSON:
        data = {"name": report.name, "input": list(report.input_shape),
                "conventions": {c.convention.value: {"total": c.total, "counts": c.convention.summary, "rows": {row.name: v for row, v in zip(report.rows, per_row[c.convention])}} for c in counted}}  # fmt: skip
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    if fmt is Format.CSV:
        sys.stdout.write(csv_text(report, columns, layout))
        return
    notes = [f"{c.convention.value}: {c.total:,} ({human(c.total)}) - {c.convention.summary}" for c in counted]
    if fmt is Format.MARKDOWN:
        sys.stdout.write(markdown(report, columns, layout) + "\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    else:
        sys.stdout.write(text_table(report, columns, layout) + "\n" + "\n".join(notes) + "\n(per sample; see docs/conventions.md)\n")


@app.command()
def summary(spec_file: SpecArg, batch: BatchOpt = 1, dtype: DTypeOpt = DType.FP32, format: FormatOpt = Format.TABLE,
            input: InputOpt = None, layout: LayoutOpt = Layout.HWC, depth: DepthOpt = None,
            strict: StrictOpt = False, explain: ExplainOpt = False, rf: RfOpt = False) -> None:  # fmt: skip
    """The whole VGG-style table: shape, activations ("memory"), weights, biases and MACs."""
    with _reported_errors():
        report = _report(spec_file, input, batch, dtype, strict, depth, explain, rf)
        columns = [Columns.NAME, Columns.TYPE, Columns.SHAPE, Columns.ACTIVATIONS, Columns.WEIGHTS, Columns.BIASES, Columns.MACS]
        _emit(report, columns, format, layout, explain, rf)


@app.command("list")
def list_architectures(format: Annotated[Format, typer.Option("--format", "-f", help="table, markdown, csv or json.")] = Format.TABLE) -> None:
    """The built-in architectures with their input, parameters and MACs."""
    with _reported_errors():
        rows = []
        for name in library.builtin_names():
            graph = spec.load(library.builtin_path(name))
            t = analyze(graph).totals
            rows.append({"name": name, "title": graph.name, "input": list(graph.input_shape), "layers": len(graph.nodes) - 1,
                         "params": t.params, "macs": t.macs})  # fmt: skip
    if format is Format.JSON:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    headers = ["name", "network", "input", "layers", "params", "MACs"]
    cells = [[r["name"], r["title"], shape_text(r["input"], Layout.CHW), f"{r['layers']:,}",
              f"{r['params']:,} ({human(r['params'])})", f"{r['macs']:,} ({human(r['macs'])})"] for r in rows]  # fmt: skip
    if format is Format.CSV:
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["name", "network", "input", "layers", "params", "macs"])
        writer.writerows([r["name"], r["title"], shape_text(r["input"], Layout.CHW), r["layers"], r["params"], r["macs"]] for r in rows)
    elif format is Format.MARKDOWN:
        lines = ["| " + " | ".join(headers) + " |", "|---|---|---|---:|---:|---:|"]
        lines += ["| " + " | ".join(c) + " |" for c in cells]
        sys.stdout.write("\n".join(lines) + "\n")
    else:
        from rich.table import Table

        table = Table(title="built-in architectures (input channels first)", title_justify="left", header_style="bold")
        for i, h in enumerate(headers):
            table.add_column(h, justify="right" if i >= 3 else "left", no_wrap=True)
        for c in cells:
            table.add_row(*c)
        _print_table(table, ["use any name with every command: cnncalc summary vgg16"])


@app.command()
def layers() -> None:
    """The layer types a spec can use, their other spellings and arguments."""
    from dataclasses import MISSING, fields

    from rich.table import Table

    from .layers import ALIASES, REGISTRY

    table = Table(title="layer types", title_justify="left", header_style="bold", show_lines=False)
    for h in ("type", "also written", "arguments (default)", "what it is"):
        table.add_column(h)
    for kind, cls in sorted(REGISTRY.items()):
        aliases = ", ".join(a for a, k in sorted(ALIASES.items()) if k == kind)
        args = ", ".join(f.name if f.default is MISSING else f"{f.name} ({f.default})" for f in fields(cls))
        table.add_row(kind, aliases, args or "-", cls.summary)
    table.add_row("sequential", "", "layers", "a named group of layers")
    table.add_row("residual", "", "body, shortcut, after", "body + shortcut (identity if none), added; then `after`")
    table.add_row("parallel", "", "branches, merge (concat)", "branches from one input, concatenated on channels or added")
    _print_table(table, ["every item also takes name, repeat and from; see docs/spec.md"], wide=False)


@app.command()
def validate(spec_files: Annotated[List[str], typer.Argument(help="Spec files or built-in names.", show_default=False)],
             strict: StrictOpt = False) -> None:  # fmt: skip
    """Check specs; print nothing but problems. Exit code 0 when every spec is valid."""
    worst = ExitCode.OK
    for source in spec_files:
        try:
            with _reported_errors():
                _report(source, strict=strict)
        except typer.Exit as stop:
            worst = max(worst, ExitCode(stop.exit_code))
    if worst:
        raise typer.Exit(worst)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"cnncalc {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False) -> None:
    pass


from . import cli_learn, cli_torch  # noqa: E402,F401  (register the quiz tools, profile and export)


def main() -> None:
    app()
