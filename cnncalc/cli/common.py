"""What every command shares: the typer app, exit codes, the option types (Annotated aliases),
turning the library's errors into a message and an exit code, printing warnings and outputs.

The command modules (`tables`, `learn`, `pytorch`) import this one, never the reverse. Nothing
here imports torch: the static commands must start instantly.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from enum import Enum, IntEnum
from typing import Annotated, Any, Iterator, Optional, Sequence

import typer

from .. import spec
from ..analysis import DType, Report, Style, analyze, collapse, lecture, read_input_override
from ..errors import CnncalcError, MissingExtraError, StrictError
from ..graph import Graph
from ..render import Format, Output, ShapeOrder
from ..render.writers import write_to
from ..spec import library


class ExitCode(IntEnum):
    """Exit codes of every command (also listed in the README)."""

    OK = 0
    INVALID = 1  # the spec, a file or an option value is invalid; the message says why
    USAGE = 2  # the command line itself is malformed (unknown option, missing argument)
    STRICT = 3  # --strict and a layer whose stride does not tile its input and leaves input positions unread
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
size x batch. MACs count convolution, transposed convolution, linear, matmul and attention layers
(bias adds not included), as torch.utils.flop_counter does; FLOPs = 2 x MACs.
"""

app = typer.Typer(
    name="cnncalc",
    help="Shapes, parameters, memory and MACs of convolutional networks, layer by layer, from a YAML spec.\n\n"
    + CONVENTIONS,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish and PowerShell
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _format(value: Any) -> Format:
    try:
        return Format(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(f.value for f in Format)}") from None


def format_option(help: str, formats: tuple[Format, ...]) -> Any:
    """`--format/-f` (use as `Annotated[Format, format_option(help, formats)]`): one `Format` for
    every command, its help listing `formats`, those the command writes; `table` is still read as
    `text`. An output with no form in the chosen format (`memory --fit -f dot`) says so and names
    those it has."""
    metavar = "[" + "|".join(f.value for f in formats) + "]"
    return typer.Option("--format", "-f", parser=_format, metavar=metavar, help=help)


def choice_option(*decls: str, help: str, members: Sequence[Enum]) -> Any:
    """An option that takes some members of one vocabulary enum (`Quantity`, `DType`): typer would
    offer every member of the enum it is given, so the choices are listed, completed and checked
    here, with the message click gives for an enum (`'fp64' is not one of 'fp32', 'fp16', 'bf16'.`)."""
    by_value = {m.value: m for m in members}

    def parse(value: Any) -> Enum:
        if isinstance(value, Enum):  # the default, already a member
            return value
        if value not in by_value:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(repr(v) for v in by_value)}.")
        return by_value[value]

    return typer.Option(
        *decls,
        parser=parse,
        metavar="<" + "|".join(by_value) + ">",
        autocompletion=lambda: list(by_value),
        help=help,
    )


SpecArg = Annotated[
    str,
    typer.Argument(
        help="A spec file, a built-in architecture name (see `cnncalc list`), or a PyTorch model: "
        "torchvision:NAME, file.py:Class or pkg.module:factory (these import torch, and run that "
        "file's or module's code and the model's forward: give only code you would run).",
        show_default=False,
    ),
]
TABLE_FORMATS = (Format.TEXT, Format.MARKDOWN, Format.CSV, Format.JSON)
FormatOpt = Annotated[
    Format, format_option("Output format: text (also called table), markdown, csv or json.", TABLE_FORMATS)
]
GraphFormatOpt = Annotated[
    Format,
    format_option(
        "Output format: text (also called table), markdown, csv, json, or the layer graph as dot (Graphviz) or mermaid.",
        (*TABLE_FORMATS, Format.DOT, Format.MERMAID),
    ),
]
InputOpt = Annotated[
    Optional[str],
    typer.Option(
        "--input",
        help="Override the spec's input: 3x224x224 (channels first) or 224x224x3 (channels last); the end that equals the spec's channels says which, and an ambiguous one is refused (write chw:1x28x28 or hwc:28x28x1 to say the order, or to change the channels). The spatial sizes alone (224x224) take the spec's channels; a number of sizes that would change the dimensionality is refused unless the order is written.",
        show_default=False,
    ),
]


def check_arg_pairs(values: Optional[list[str]]) -> Optional[list[str]]:
    """A malformed --arg is a usage error (exit 2), told before anything loads."""
    try:
        library.read_args(values or [])
    except CnncalcError as err:
        raise typer.BadParameter("; ".join(err.lines())) from None
    return values


ArgOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--arg",
        help="name=value, repeatable: a built-in family's or spec's argument (--arg layers=[2,2,2,2]), or the "
        "class's or factory's keyword for a model target (--arg width=2). Values are YAML: 2, 0.5, true, text, [3, 1].",
        callback=check_arg_pairs,
        show_default=False,
    ),
]
BatchOpt = Annotated[int, typer.Option("--batch", "-b", min=1, help="Batch size for byte counts.")]
LayoutOpt = Annotated[
    ShapeOrder, typer.Option("--layout", help="How shapes print: hwc (224x224x64, the lecture tables) or chw.")
]
DepthOpt = Annotated[
    Optional[int],
    typer.Option(
        "--depth", "-d", min=1, help="Collapse blocks nested deeper than N names into one row each.", show_default=False
    ),
]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Treat a stride that does not tile its input and leaves input positions unread as an error (exit code 3).",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print no warnings (errors still print).")]
StyleOpt = Annotated[
    Style,
    typer.Option(
        "--style",
        help="Rows to show: full (every layer, as PyTorch runs them) or lecture (activations, views and identity rows folded into the row that made their input, as the lecture tables and Keras show them).",
    ),
]
DTypeOpt = Annotated[DType, typer.Option("--dtype", help="Element type for byte counts.")]
ExplainOpt = Annotated[
    bool, typer.Option("--explain", "-e", help="Show each row's working: the formulas with its numbers filled in.")
]
RfOpt = Annotated[bool, typer.Option("--rf", help="Add receptive field, jump (effective stride) and start per row.")]


def colour_on(stream: Any = None) -> bool:
    """Colour on `stream` (stderr): never with NO_COLOR set (no-color.org), always with
    FORCE_COLOR set (as rich and most tools read them), else only on a terminal."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return (stream or sys.stderr).isatty()


_COLOUR_CODES = {"red": "1;31", "yellow": "33", "cyan": "36", "green": "32"}


def paint(text: str, color: str, on: bool) -> str:
    """`text` in an ANSI colour where `on`, plain otherwise (rich is not imported for it)."""
    return f"\033[{_COLOUR_CODES[color]}m{text}\033[0m" if on else text


def label(text: str, color: str) -> str:
    """`error:` / `warning:` in colour when `colour_on()` (stderr), plain otherwise."""
    return paint(text, color, colour_on())


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


def print_warnings(report: Report, quiet: bool = False) -> None:
    """Each warning once: layers with the same message are named on its line, not repeated; then
    a note naming the traced rows (measured from PyTorch at import, not derived), if any."""
    if quiet:
        return
    traced = [row.name for row in report.rows if row.type == "traced"]
    if traced:
        named = ", ".join(traced[:5]) + (", ..." if len(traced) > 5 else "")
        sys.stderr.write(
            f"{label('note:', 'cyan')} {len(traced)} row{'s' if len(traced) > 1 else ''} traced ({named}): shape, "
            "parameters and MACs measured from PyTorch at this input, not derived (docs/import.md, Traced rows)\n"
        )
    by_message: dict[str, list[str]] = {}
    first: dict[str, str] = {}
    for warning in report.warnings:
        by_message.setdefault(warning.message, []).append(warning.layer)
        first.setdefault(warning.message, str(warning))
    for message, layers in by_message.items():
        more = layers[1:]
        if not more:
            print_warning(first[message])
            continue
        named = ", ".join(more[:5]) + (", ..." if len(more) > 5 else "")
        print_warning(f"{first[message]} (and {len(more)} more layer{'s' if len(more) > 1 else ''} like it: {named})")


def emit(output: Output, fmt: Format) -> None:
    """Write `output` to stdout in `fmt` (a CnncalcError when the command has no such form)."""
    write_to(sys.stdout.write, output, fmt)


def parse_input(text: str | None, spec_input: tuple[int, ...]) -> tuple[int, ...] | None:
    """A spec's --input override, channels first: read by `read_input_override`'s rule (the end
    that equals the spec's channel count says the order; ambiguous text is refused)."""
    if not text:
        return None
    return read_input_override(spec_input, text)


def load_graph(source: str, input: str | None = None, args: Optional[list[str]] = None) -> Graph:
    """A spec file or built-in name; or a PyTorch model target, imported (this imports torch);
    `args` are the --arg pairs: the spec's arguments, or the model's class or factory's."""
    if library.is_model_target(source):
        from ..torch_bridge.importer import load_target

        return load_target(source, input, args or []).graph
    return spec.load(library.resolve(source), args=library.read_args(args) if args else None)


def load_report(
    source: str,
    input: str | None = None,
    batch: int = 1,
    dtype: DType = DType.FP32,
    strict: bool = False,
    depth: int | None = None,
    explain: bool = False,
    rf: bool = False,
    quiet: bool = False,
    style: Style = Style.FULL,
    args: Optional[list[str]] = None,
) -> Report:
    """Load a spec (file or built-in), analyse it once, print its warnings (unless `quiet`), fold
    it to the lecture's rows (`style`), collapse to `depth`."""
    graph = load_graph(source, input, args)
    report = analyze(
        graph,
        input_shape=parse_input(input, graph.input_shape),
        batch=batch,
        dtype=dtype,
        strict=strict,
        explain=explain,
        fields=rf,
    )
    print_warnings(report, quiet)
    if style is Style.LECTURE:
        report = lecture(report)
    return collapse(report, depth) if depth else report


def _version(value: bool) -> None:
    if value:
        from ..version import __version__

        sys.stdout.write(f"cnncalc {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    pass
