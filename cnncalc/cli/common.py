"""What every command shares: the typer app, exit codes, the option types (Annotated aliases),
turning the library's errors into a message and an exit code, printing warnings and outputs.

The command modules (`tables`, `learn`, `pytorch`) import this one, never the reverse. Nothing
here imports torch: the static commands must start instantly.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from enum import IntEnum
from typing import Annotated, Any, Iterator, Optional

import typer

from .. import library, spec
from ..analysis import DType, Report, analyze, collapse
from ..errors import CnncalcError, MissingExtraError, StrictError
from ..render import Format, Layout, Output, write


class ExitCode(IntEnum):
    """Exit codes of every command (also listed in the README)."""

    OK = 0
    INVALID = 1  # the spec, a file or an option value is invalid; the message says why
    USAGE = 2  # the command line itself is malformed (unknown option, missing argument)
    STRICT = 3  # --strict and a layer whose stride does not tile its input
    WRONG = 4  # `check`: an answer is wrong (or a multiple-choice question has no right choice)
    MISSING_EXTRA = 5  # `profile`/`export` need PyTorch (the torch extra), which is not installed
    MISMATCH = 6  # `profile`: a number cnncalc computed disagrees with PyTorch
    CHANGED = 7  # `diff --fail-on-change`: the two networks differ


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


def _format(value: Any) -> Format:
    if isinstance(value, Format):
        return value
    try:
        return Format(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(f.value for f in Format)}") from None


def format_option(help: str) -> Any:
    """`--format/-f` (use as `Annotated[Format, format_option(help)]`): one `Format` for every
    command; `table` is still read as `text`. A command whose output has no form in the chosen
    format says so and names those it has."""
    metavar = "[" + "|".join(f.value for f in Format) + "]"
    return typer.Option("--format", "-f", parser=_format, metavar=metavar, help=help)


SpecArg = Annotated[str, typer.Argument(help="A spec file, or a built-in architecture name (see `cnncalc list`).", show_default=False)]
FormatOpt = Annotated[Format, format_option("Output format: text (also called table), markdown, csv or json.")]
InputOpt = Annotated[Optional[str], typer.Option("--input", help="Override the spec's input, channels first: 3x227x227.", show_default=False)]
BatchOpt = Annotated[int, typer.Option("--batch", "-b", min=1, help="Batch size for byte counts.")]
LayoutOpt = Annotated[Layout, typer.Option("--layout", help="How shapes print: hwc (224x224x64, the lecture tables) or chw.")]
DepthOpt = Annotated[Optional[int], typer.Option("--depth", "-d", min=1, help="Collapse blocks nested deeper than N names into one row each.", show_default=False)]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Treat a stride that does not tile its input as an error.")]
DTypeOpt = Annotated[DType, typer.Option("--dtype", help="Element type for byte counts.")]
ExplainOpt = Annotated[bool, typer.Option("--explain", "-e", help="Show each row's working: the formulas with its numbers filled in.")]
RfOpt = Annotated[bool, typer.Option("--rf", help="Add receptive field, jump (effective stride) and start per row.")]


def label(text: str, color: str) -> str:
    """`error:` / `warning:` in colour on a terminal, plain otherwise (rich is not imported for it)."""
    codes = {"red": "1;31", "yellow": "33"}
    return f"\033[{codes[color]}m{text}\033[0m" if sys.stderr.isatty() else text


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn the library's exceptions into one message on stderr and an exit code."""
    try:
        yield
    except StrictError as err:
        print_error(err)
        raise typer.Exit(ExitCode.STRICT) from None
    except MissingExtraError as err:
        print_error(err)
        raise typer.Exit(ExitCode.MISSING_EXTRA) from None
    except CnncalcError as err:
        print_error(err)
        raise typer.Exit(ExitCode.INVALID) from None


def print_error(err: CnncalcError) -> None:
    first, *rest = err.lines()
    sys.stderr.write(f"{label('error:', 'red')} {first}\n" + "".join(f"  {line}\n" for line in rest))


def print_warning(text: str) -> None:
    sys.stderr.write(f"{label('warning:', 'yellow')} {text}\n")


def print_warnings(report: Report) -> None:
    for warning in report.warnings:
        print_warning(str(warning))


def emit(output: Output, fmt: Format) -> None:
    """Write `output` to stdout in `fmt` (a CnncalcError when the command has no such form)."""
    sys.stdout.write(write(output, fmt))


def parse_input(text: str | None) -> tuple[int, ...] | None:
    """A spec's --input override: channels first (3x227x227), or a flat [features] vector."""
    if not text:
        return None
    from ..calculator import read_sizes

    shape = read_sizes(text, "--input")
    if len(shape) > 4:
        raise CnncalcError("malformed --input", received=text, expected="1 to 4 positive sizes, channels first: 3x227x227")
    return shape


def load_report(source: str, input: str | None = None, batch: int = 1, dtype: DType = DType.FP32,
                strict: bool = False, depth: int | None = None, explain: bool = False, rf: bool = False) -> Report:  # fmt: skip
    """Load a spec (file or built-in), analyse it once, print its warnings, collapse to `depth`."""
    graph = spec.load(library.resolve(source))
    report = analyze(graph, input_shape=parse_input(input), batch=batch, dtype=dtype, strict=strict, explain=explain, fields=rf)
    print_warnings(report)
    return collapse(report, depth) if depth else report


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        sys.stdout.write(f"cnncalc {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False) -> None:
    pass
