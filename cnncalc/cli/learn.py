"""Commands for students and teachers: one-layer calculators, numeric convolution and pooling
on small matrices, and `check` for quiz answers. No torch.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..analysis import DType, Style
from ..errors import CnncalcError, StrictError, Where
from ..layers.arguments import PADDING_WORDS
from ..learn import PoolMode, calculator
from ..learn.calculator import DEFAULT_FILTERS, LayerAnswer, answer, read_axes, read_input
from ..quantities import Quantity
from ..render import Code, Format, Lines, Output, ShapeOrder, Table, Worked, shape_text
from ..spec import library
from ..units import read_sizes
from .common import (
    ExitCode,
    LayoutOpt,
    StrictOpt,
    app,
    colour_on,
    emit,
    format_option,
    label,
    paint,
    parse_input,
    print_warning,
    reported_errors,
)

FormatOpt = Annotated[
    Format, format_option("text, markdown (for a solution sheet) or json.", (Format.TEXT, Format.MARKDOWN, Format.JSON))
]
KernelOpt = Annotated[
    str, typer.Option("--kernel", "-k", help="Filter size F: 3, or per axis 3x5.", show_default=False)
]
StrideOpt = Annotated[str, typer.Option("--stride", "-s", help="Stride S: 2, or per axis 2x1.")]
PaddingOpt = Annotated[str, typer.Option("--padding", "-p", help="Zero padding P on each side: 1, or per axis 1x2.")]
DilationOpt = Annotated[str, typer.Option("--dilation", help="Dilation D: the kernel spans D(F-1)+1.")]
ChannelsOpt = Annotated[
    Optional[int],
    typer.Option(
        "--channels", "-c", min=1, help="Input channels when --input gives spatial sizes only.", show_default=False
    ),
]
StepsOpt = Annotated[bool, typer.Option("--steps", help="Print every window: its numbers, products and result.")]
BiasValueOpt = Annotated[str, typer.Option("--bias", help="A bias added to every output value.")]

SHAPE_HELP = (
    "The layer's input: H x W x C as in the notes (227x227x3); 7x7 or 7 are spatial sizes with one channel "
    "(or --channels); with --layout chw, C first (3x227x227)."
)


def _axes(text: str, name: str) -> tuple[int, ...]:
    value = read_axes(text, name)
    assert not isinstance(value, str)  # no words were allowed
    return (value,) if isinstance(value, int) else tuple(value)


def _layer_arg(text: str, name: str, words: tuple[str, ...] = ()) -> Any:
    value = read_axes(text, name, words)
    return list(value) if isinstance(value, tuple) else value


def _read_layer_input(text: str, layout: ShapeOrder, channels: int | None) -> tuple[int, ...]:
    """`read_input`, saying on stderr when one size was read as N x N (the notes' habit), and how
    a 1-D input is written instead: the reading never changes the dimensionality unannounced."""
    shape = read_input(text, layout is ShapeOrder.HWC, channels)
    if layout is ShapeOrder.HWC and len(read_sizes(text, "--input")) == 1:
        n, c = shape[1], shape[0]
        sys.stderr.write(
            f"{label('note:', 'cyan')} --input {text.strip()} is read as {n}x{n} (the notes write N "
            f"for an N x N input); a 1-D input of length {n} is --layout chw --input {c}x{n}\n"
        )
    return shape


def _print_answer(command: str, a: LayerAnswer, layout: ShapeOrder, fmt: Format, strict: bool) -> None:
    data = {
        "type": a.kind,
        "input": list(a.input_shape),
        "output": list(a.output_shape),
        "weights": a.weights,
        "biases": a.biases,
        "params": a.params,
        "macs": a.macs,
        "working": list(a.working),
        "warnings": list(a.warnings),
    }
    head = f"{a.kind}: {shape_text(a.input_shape, layout)} -> {shape_text(a.output_shape, layout)}  ({layout.value})"
    tail = f"params: {a.params:,} = weights {a.weights:,} + biases {a.biases:,}; MACs {a.macs:,} (per sample)"
    emit(Output(command, (Worked(head, tuple(a.working), tail),), data=data), fmt)
    for warning in a.warnings:
        print_warning(f"doesn't fit: {warning}")
    if strict and a.warnings:
        raise StrictError("the stride does not tile the input (--strict)", received=a.warnings[0])


@app.command()
def conv(
    input: Annotated[str, typer.Option("--input", "-i", help=SHAPE_HELP, show_default=False)],
    kernel: KernelOpt,
    out: Annotated[
        int, typer.Option("--out", "-o", min=1, help="Number of filters K (output channels).")
    ] = DEFAULT_FILTERS,
    stride: StrideOpt = "1",
    padding: Annotated[
        str,
        typer.Option(
            "--padding",
            "-p",
            help="Zero padding P per side: 1, 1x2, same, valid or tf_same (TensorFlow/Keras's 'same' at any stride).",
        ),
    ] = "0",
    dilation: DilationOpt = "1",
    groups: Annotated[int, typer.Option("--groups", "-g", min=1, help="Groups (depthwise: = channels).")] = 1,
    bias: Annotated[bool, typer.Option("--bias/--no-bias", help="Whether each filter has a bias.")] = True,
    transposed: Annotated[
        bool,
        typer.Option("--transposed", "-t", help="A transposed convolution: (W-1)S - 2P + D(F-1) + output_padding + 1."),
    ] = False,
    output_padding: Annotated[
        str, typer.Option("--output-padding", help="Transposed only: extra size on one side.")
    ] = "0",
    separable: Annotated[
        bool,
        typer.Option(
            "--separable",
            help="Side by side: this convolution and its depthwise-separable replacement (params, MACs, ratio).",
        ),
    ] = False,
    channels: ChannelsOpt = None,
    layout: LayoutOpt = ShapeOrder.HWC,
    format: FormatOpt = Format.TEXT,
    strict: StrictOpt = False,
) -> None:
    """One convolution layer: output size, weights, biases and MACs, with the working.

    \b
    cnncalc conv --input 227x227x3 --kernel 11 --out 96 --stride 4
    cnncalc conv --input 112x112x32 --kernel 3 --out 64 --padding 1 --separable
    """
    with reported_errors():
        shape = _read_layer_input(input, layout, channels)
        args: dict[str, Any] = {
            "out": out,
            "kernel": _layer_arg(kernel, "kernel"),
            "stride": _layer_arg(stride, "stride"),
            "dilation": _layer_arg(dilation, "dilation"),
            "groups": groups,
            "bias": bias,
        }
        if separable:
            if transposed:
                raise CnncalcError("--separable compares a convolution, not a transposed one", hint="drop --transposed")
            args["padding"] = _layer_arg(padding, "padding", PADDING_WORDS)
            _print_separable(calculator.separable(shape, args), layout, format)
            return
        if transposed:
            args.update(
                padding=_layer_arg(padding, "padding"), output_padding=_layer_arg(output_padding, "output-padding")
            )
            result = answer("conv_transpose", shape, args)
        else:
            if output_padding != "0":
                raise CnncalcError("--output-padding is for transposed convolutions", hint="add --transposed")
            args["padding"] = _layer_arg(padding, "padding", PADDING_WORDS)
            result = answer("conv", shape, args)
        _print_answer("conv", result, layout, format, strict)


def _print_separable(s: calculator.Separable, layout: ShapeOrder, fmt: Format) -> None:
    """The standard convolution, its depthwise and pointwise halves and their total, then the ratios."""
    std, dw, pw = s.standard, s.depthwise, s.pointwise
    kernel = "x".join(map(str, s.kernel))
    rows = (
        (
            "standard",
            f"{kernel}, {std.output_shape[0]} filters",
            std.output_shape,
            std.weights,
            std.biases,
            std.params,
            std.macs,
        ),
        (
            "depthwise",
            f"{kernel}, groups {dw.input_shape[0]}",
            dw.output_shape,
            dw.weights,
            dw.biases,
            dw.params,
            dw.macs,
        ),
        ("pointwise", f"1x1, {pw.output_shape[0]} filters", pw.output_shape, pw.weights, pw.biases, pw.params, pw.macs),
    )
    total = (
        "separable",
        "depthwise + pointwise",
        pw.output_shape,
        dw.weights + pw.weights,
        dw.biases + pw.biases,
        s.params,
        s.macs,
    )
    macs, params = s.macs_ratio(), s.params_ratio()
    k2 = math.prod(s.kernel)
    paper = Fraction(1, std.output_shape[0]) + Fraction(1, k2)
    footer = (
        f"MACs: separable / standard = {s.macs:,} / {std.macs:,} = {float(macs):.4f} (1/{float(1 / macs):.2f})",
        f"  = 1/K + 1/F^2 = 1/{std.output_shape[0]} + 1/{k2} (MobileNet's ratio: exact for MACs)"
        if macs == paper
        else f"  1/K + 1/F^2 = 1/{std.output_shape[0]} + 1/{k2} = {float(paper):.4f} (MobileNet's ratio; here the shapes differ)",
        f"params: separable / standard = {s.params:,} / {std.params:,} = {float(params):.4f} (1/{float(1 / params):.2f})",
    )
    table = Table(
        ("Conv", "Kernel", "Output", "Weights", "Biases", "Params", "MACs"),
        rows,
        (False, False, False, True, True, True, True),
        total=total,
        title=f"conv {shape_text(std.input_shape, layout)} -> {shape_text(std.output_shape, layout)}  ({layout.value})",
        footer=footer,
        layout=layout,
    )
    data = {
        "input": list(std.input_shape),
        "output": list(std.output_shape),
        **{
            name: {
                "output": list(a.output_shape),
                "weights": a.weights,
                "biases": a.biases,
                "params": a.params,
                "macs": a.macs,
                "working": list(a.working),
            }
            for name, a in (("standard", std), ("depthwise", dw), ("pointwise", pw))
        },
        "separable": {"params": s.params, "macs": s.macs},
        "ratio": {"macs": float(macs), "params": float(params)},
    }
    emit(Output("conv", (table,), data=data), fmt)


_SYMBOL = {"input": "W", "kernel": "F", "stride": "S", "padding": "P"}
OptionalInt = Optional[int]


@app.command()
def solve(
    output: Annotated[
        OptionalInt,
        typer.Option(
            "--output", "-O", help="The output size the layer must give (one spatial axis).", show_default=False
        ),
    ] = None,
    input: Annotated[
        OptionalInt,
        typer.Option(
            "--input", "-i", help="Input size W (one spatial axis); leave out to find it.", show_default=False
        ),
    ] = None,
    kernel: Annotated[
        OptionalInt, typer.Option("--kernel", "-k", help="Kernel F; leave out to find it.", show_default=False)
    ] = None,
    stride: Annotated[
        OptionalInt, typer.Option("--stride", "-s", help="Stride S; leave out to find it.", show_default=False)
    ] = None,
    padding: Annotated[
        OptionalInt,
        typer.Option("--padding", "-p", help="Padding P per side; leave out to find it.", show_default=False),
    ] = None,
    dilation: Annotated[int, typer.Option("--dilation", help="Dilation D (given, not solved for).")] = 1,
    field: Annotated[
        OptionalInt,
        typer.Option(
            "--receptive-field",
            "-r",
            help="The receptive field of --layers equal layers (solves their kernel and stride).",
            show_default=False,
        ),
    ] = None,
    layers: Annotated[
        OptionalInt,
        typer.Option("--layers", "-n", help="How many equal layers, with --receptive-field.", show_default=False),
    ] = None,
    exact: Annotated[
        bool, typer.Option("--exact", help="Only solutions whose stride tiles the padded input (no floor).")
    ] = False,
    format: FormatOpt = Format.TEXT,
) -> None:
    """Inverse questions: every integer kernel, stride, padding or input size that gives an output size, or
    every kernel and stride of N equal layers with a receptive field; each with its working.

    \b
    cnncalc solve --input 32 --output 32 --kernel 7            (which stride and padding keep the size?)
    cnncalc solve --input 227 --output 55 --kernel 11          (which stride and padding give 55?)
    cnncalc solve --receptive-field 15 --layers 3              (which kernel and stride?)
    """
    from ..learn import solver

    with reported_errors():
        if field is not None or layers is not None:
            if field is None or layers is None:
                raise CnncalcError(
                    "a receptive-field question needs --receptive-field and --layers",
                    expected="cnncalc solve --receptive-field 15 --layers 3",
                )
            if output is not None or input is not None or padding is not None or dilation != 1:
                raise CnncalcError(
                    "a receptive-field question takes --kernel or --stride (the other is found)",
                    hint="drop --output, --input, --padding and --dilation",
                )
            solved = solver.solve_field(field, layers, kernel, stride)
            lines = [f"solve: {solved.question}", f"  searched {'; '.join(solved.bounds)}", ""]
            lines += [
                f"  F = {x.kernel}, S = {'any' if x.stride is None else x.stride}: {x.working}"
                for x in solved.solutions
            ]
            count = len(solved.solutions)
            lines += [
                "",
                f"{count} solution{'s' if count != 1 else ''}" if count else "no integer solution in these bounds",
            ]
            data = {
                "question": solved.question,
                "layers": layers,
                "receptive_field": field,
                "bounds": list(solved.bounds),
                "solutions": [{"kernel": x.kernel, "stride": x.stride, "working": x.working} for x in solved.solutions],
            }
            emit(Output("solve", (Lines(tuple(lines)),), data=data), format)
            return
        if output is None:
            raise CnncalcError(
                "solve needs --output (the size to give), or --receptive-field with --layers",
                expected="cnncalc solve --input 227 --output 55 --kernel 11",
            )
        window = solver.solve_window(output, input, kernel, stride, padding, dilation)
        found = [x for x in window.solutions if x.exact or not exact]
        unknown = ", ".join(_SYMBOL[u] for u in window.unknowns)
        lines = [f"solve: {window.question} for {unknown}", f"  searched {'; '.join(window.bounds)}", ""]
        for x in found:
            values = ", ".join(
                f"{_SYMBOL[u]} {'>=' if u == 'stride' and x.larger_strides else '='} {v}" for u, v in x.values.items()
            )
            lines.append(f"  {values}: {x.working}")
        tiles = sum(x.exact for x in found)
        if found:
            lines += [
                "",
                f"{len(found)} solution{'s' if len(found) != 1 else ''}"
                + ("" if exact else f", {tiles} where the stride tiles the input (no floor; --exact lists only those)"),
            ]
        else:
            lines += ["no integer solution in these bounds" + (" that tiles the input" if exact else "")]
        data = {
            "question": window.question,
            "unknowns": list(window.unknowns),
            "bounds": list(window.bounds),
            "solutions": [
                {**x.values, "exact": x.exact, "larger_strides": x.larger_strides, "working": x.working} for x in found
            ],
        }
        emit(Output("solve", (Lines(tuple(lines)),), data=data), format)


@app.command()
def pool(
    kernel: KernelOpt,
    input: Annotated[Optional[str], typer.Option("--input", "-i", help=SHAPE_HELP, show_default=False)] = None,
    values: Annotated[
        Optional[str],
        typer.Option(
            "--values",
            "-v",
            help="Pool these numbers instead: rows split by ';', channels by '|', or a file.",
            show_default=False,
        ),
    ] = None,
    stride: Annotated[
        Optional[str], typer.Option("--stride", "-s", help="Stride S (default: the kernel).", show_default=False)
    ] = None,
    padding: PaddingOpt = "0",
    dilation: DilationOpt = "1",
    ceil_mode: Annotated[
        bool, typer.Option("--ceil-mode", help="Round the output size up, as PyTorch's ceil_mode.")
    ] = False,
    mode: Annotated[PoolMode, typer.Option("--mode", "-m", help="max or avg.")] = PoolMode.MAX,
    exclude_pad: Annotated[
        bool,
        typer.Option("--exclude-pad", help="avg: divide by the cells inside the input only (count_include_pad=False)."),
    ] = False,
    steps: StepsOpt = False,
    channels: ChannelsOpt = None,
    layout: LayoutOpt = ShapeOrder.HWC,
    format: FormatOpt = Format.TEXT,
    strict: StrictOpt = False,
) -> None:
    """One pooling layer: output size with the working (--input), or pool actual numbers (--values).

    \b
    cnncalc pool --input 55x55x96 --kernel 3 --stride 2
    cnncalc pool --values "1 3 2; 3 1 2; 3 3 3" --kernel 2 --stride 1
    """
    with reported_errors():
        if (input is None) == (values is None):
            raise CnncalcError(
                "pool needs either --input (a shape) or --values (numbers)",
                expected='--input 55x55x96, or --values "1 3 2; 3 1 2; 3 3 3"',
            )
        if values is not None:
            from ..learn import numeric

            x = numeric.read_values(values, "--values")
            result = numeric.pool(
                x,
                _axes(kernel, "kernel"),
                mode=mode,
                stride=_axes(stride, "stride") if stride else None,
                padding=_axes(padding, "padding"),
                dilation=_axes(dilation, "dilation"),
                ceil_mode=ceil_mode,
                count_include_pad=not exclude_pad,
            )
            _print_numeric("pool", result, x, steps, format)
            return
        assert input is not None
        shape = _read_layer_input(input, layout, channels)
        args: dict[str, Any] = {
            "kernel": _layer_arg(kernel, "kernel"),
            "padding": _layer_arg(padding, "padding"),
            "ceil_mode": ceil_mode,
        }
        if stride is not None:
            args["stride"] = _layer_arg(stride, "stride")
        if mode is PoolMode.MAX:
            args["dilation"] = _layer_arg(dilation, "dilation")
        elif dilation != "1":
            raise CnncalcError("average pooling has no dilation (as in PyTorch)", received=dilation)
        else:
            args["count_include_pad"] = not exclude_pad
        _print_answer(
            "pool", answer("maxpool" if mode is PoolMode.MAX else "avgpool", shape, args), layout, format, strict
        )


def _print_numeric(command: str, result: Any, x: Any, steps: bool, fmt: Format, transposed: bool = False) -> None:
    from ..learn import numeric

    axes = [("columns", result.sizes[1])] if x.rank == 1 else [("rows", result.sizes[0]), ("columns", result.sizes[1])]
    if len(axes) == 2 and axes[0][1] == axes[1][1]:
        axes = [("rows, columns", axes[0][1])]
    size = f"length-{x.width} vector" if x.rank == 1 else f"{x.height}x{x.width} input"
    head = f"{result.note} of a {size}" + (f" with {x.depth} channels" if x.depth > 1 else "")
    label = "in" if transposed else "out"  # transposed steps follow the input values
    data = {
        "what": result.note,
        "output": numeric.as_lists(result.output),
        "output_size": [f for _, f in axes],
        "steps": [{"position": list(s.position), "working": s.text} for s in result.steps] if steps else None,
    }
    lines = [head, *(f"output size ({name}): {formula}" for name, formula in axes)]
    if steps:
        lines.append("")
        lines += [
            f"{label}[{','.join(map(str, s.position))}] {'' if transposed else '= '}{s.text}" for s in result.steps
        ]
    lines.append("")
    emit(Output(command, (Lines(tuple(lines)), Code(numeric.matrix_text(result.output))), data=data), fmt)


InputValuesOpt = Annotated[
    str,
    typer.Option(
        "--input",
        "-i",
        help="Numbers: rows split by ';' (or new lines), channels by '|'; or a CSV/text file.",
        show_default=False,
    ),
]
KernelValuesOpt = Annotated[
    str,
    typer.Option(
        "--kernel",
        "-k",
        help="The kernel's numbers, written like --input (one channel per input channel).",
        show_default=False,
    ),
]


def _bias(text: str) -> Fraction:
    from ..learn.numeric import read_values

    value = read_values(text, "--bias")
    if value.depth != 1 or value.height != 1 or value.width != 1:
        raise CnncalcError("--bias is one number", received=text)
    return value.channels[0][0][0]


@app.command()
def convolve(
    input: InputValuesOpt,
    kernel: KernelValuesOpt,
    stride: StrideOpt = "1",
    padding: PaddingOpt = "0",
    dilation: DilationOpt = "1",
    bias: BiasValueOpt = "0",
    flip: Annotated[
        bool,
        typer.Option(
            "--flip", help="Flip the kernel first: the mathematical convolution (PyTorch's conv does not flip)."
        ),
    ] = False,
    steps: StepsOpt = False,
    format: FormatOpt = Format.TEXT,
) -> None:
    """Convolve small matrices by hand: cross-correlation, as PyTorch's conv, or --flip.

    \b
    cnncalc convolve --input "1 3 2 3 3; 3 1 2 1 1; 3 3 3 1 2; 2 2 1 2 1; 2 3 2 1 2" --kernel "1 3 2; 1 3 3; 3 1 1" --padding 1 --stride 2
    """
    from ..learn import numeric

    with reported_errors():
        x, k = numeric.read_values(input, "--input"), numeric.read_values(kernel, "--kernel")
        result = numeric.convolve(
            x,
            k,
            stride=_axes(stride, "stride"),
            padding=_axes(padding, "padding"),
            dilation=_axes(dilation, "dilation"),
            bias=_bias(bias),
            flip=flip,
        )
        _print_numeric("convolve", result, x, steps, format)


@app.command("convolve-transpose")
def convolve_transpose(
    input: InputValuesOpt,
    kernel: KernelValuesOpt,
    stride: StrideOpt = "1",
    padding: PaddingOpt = "0",
    output_padding: Annotated[str, typer.Option("--output-padding", help="Extra size on the bottom/right.")] = "0",
    dilation: DilationOpt = "1",
    bias: BiasValueOpt = "0",
    steps: StepsOpt = False,
    format: FormatOpt = Format.TEXT,
) -> None:
    """Transposed convolution of small matrices: each input value stamps a scaled kernel.

    \b
    cnncalc convolve-transpose --input "1 2; 3 4" --kernel "1 0 1; 1 1 0; 0 1 2" --stride 2
    """
    from ..learn import numeric

    with reported_errors():
        x, k = numeric.read_values(input, "--input"), numeric.read_values(kernel, "--kernel")
        result = numeric.convolve_transpose(
            x,
            k,
            stride=_axes(stride, "stride"),
            padding=_axes(padding, "padding"),
            output_padding=_axes(output_padding, "output-padding"),
            dilation=_axes(dilation, "dilation"),
            bias=_bias(bias),
        )
        # the input at the result's rank: a row with a matrix kernel is a 1xW matrix
        _print_numeric(
            "convolve-transpose", result, numeric.Values(x.channels, result.output.rank), steps, format, transposed=True
        )


# ----- check -------------------------------------------------------------------------------


def _mark(ok: bool, colour: bool = False) -> str:
    """✓ in green, ✗ in red where `colour` (check's text on a terminal, NO_COLOR unset)."""
    return paint("✓", "green", colour) if ok else paint("✗", "red", colour)


def _quiz_files(path: Path) -> list[Path]:
    """The quiz files in a directory (YAML with `questions:`), sorted, at any depth."""
    from ..learn import quiz

    found = sorted(
        p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and library.is_file(p) and quiz.is_quiz(p)
    )
    if not found:
        raise CnncalcError(f"no quiz files in {path}", expected="YAML files with a `questions:` list")
    return found


def _question_data(g: Any, file: str | None) -> dict[str, Any]:
    answers = [
        {"quantity": v.key, "expected": v.right, "received": v.given, "right": v.correct, "detail": v.detail}
        for v in g.verdicts
    ]
    return {
        "file": file,
        "name": g.name,
        "text": g.text,
        "subject": g.subject,
        "line": g.where.line,
        "right": g.correct,
        "answers": answers,
        "working": list(g.working),
    }


def _question_lines(g: Any, colour: bool = False) -> list[str]:
    title = f"{g.name}: {g.subject}" if g.name not in g.subject else g.subject
    out = [f"{_mark(g.correct, colour)} {title}"]
    if g.text:
        out.append(f"    {g.text}")
    for v in g.verdicts:
        out.append(f"    {_mark(v.correct, colour)} {v.key} {v.given}" + (f"  ({v.detail})" if v.detail else ""))
        if not v.correct:
            out.append(f"        the right answer: {v.right}")
    if not g.correct:
        out += [f"        {w}" for w in g.working]
    return out


CheckFormatOpt = Annotated[
    Format, format_option("text, or json for autograders (one object per question).", (Format.TEXT, Format.JSON))
]


@app.command()
def check(
    target: Annotated[
        str,
        typer.Argument(
            help="A quiz file (YAML with `questions:`), a directory of them, or a spec / built-in name.",
            show_default=False,
        ),
    ],
    layer: Annotated[
        Optional[str],
        typer.Option("--layer", "-l", help="The row to check (default: the whole network).", show_default=False),
    ] = None,
    shape: Annotated[
        Optional[str],
        typer.Option(
            "--shape", help="Expected output shape: 27x27x96, (96, 27, 27) or 'does not fit'.", show_default=False
        ),
    ] = None,
    params: Annotated[
        Optional[str], typer.Option("--params", help="Expected parameters: 34848, 34,848 or 35K.", show_default=False)
    ] = None,
    biases: Annotated[
        Optional[bool],
        typer.Option(
            "--biases/--no-biases",
            help="Whether --params counts biases (default: either is accepted, and said).",
            show_default=False,
        ),
    ] = None,
    weights: Annotated[
        Optional[str], typer.Option("--weights", help="Expected weights (biases excluded).", show_default=False)
    ] = None,
    macs: Annotated[
        Optional[str], typer.Option("--macs", help="Expected multiply-accumulates (per sample).", show_default=False)
    ] = None,
    flops: Annotated[
        Optional[str], typer.Option("--flops", help="Expected FLOPs, 2 x MACs (per sample).", show_default=False)
    ] = None,
    memory: Annotated[
        Optional[str],
        typer.Option(
            "--memory", help="Expected activations of the output, the notes' 'memory' (per sample).", show_default=False
        ),
    ] = None,
    bytes_: Annotated[
        Optional[str],
        typer.Option(
            "--bytes",
            help="Expected bytes of the output's activations at --batch and --dtype: 602112 or 588 KiB.",
            show_default=False,
        ),
    ] = None,
    rf: Annotated[
        Optional[str],
        typer.Option(
            "--receptive-field",
            help="Expected receptive field of the row: 7 or 7x7 (input pixels).",
            show_default=False,
        ),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", "-b", min=1, help="Batch size for --bytes.")] = 1,
    dtype: Annotated[DType, typer.Option("--dtype", help="Element type for --bytes.")] = DType.FP32,
    input: Annotated[
        Optional[str],
        typer.Option(
            "--input",
            help="Override the spec's input: 3x224x224 or 224x224x3, read as --input of the table commands (the end equal to the spec's channels is C).",
            show_default=False,
        ),
    ] = None,
    style: Annotated[
        Style,
        typer.Option(
            "--style",
            help="Which rows the network's --memory sums: full (every row's output, in-place activations and views included, the input not) or lecture (the lecture table's rows, the input included: VGG16's 15.2M).",
        ),
    ] = Style.FULL,
    format: CheckFormatOpt = Format.TEXT,
) -> None:
    """Check answers: a quiz file, a directory of them, or one layer's expected numbers. Exit code 4 when one is wrong.

    \b
    cnncalc check alexnet --layer pool1 --shape 27x27x96 --params 0
    cnncalc check quiz.yaml
    cnncalc check quizzes/ --format json
    """
    from .. import spec
    from ..learn import quiz

    with reported_errors():
        Q = Quantity
        expected = {
            Q.SHAPE: shape,
            Q.PARAMS: params,
            Q.WEIGHTS: weights,
            Q.MACS: macs,
            Q.FLOPS: flops,
            Q.ACTIVATIONS: memory,
            Q.ACTIVATION_BYTES: bytes_,
            Q.RECEPTIVE_FIELD: rf,
        }
        given = {q: v for q, v in expected.items() if v is not None}
        path = Path(target)
        is_dir = _is_dir(path)
        graded: list[tuple[str | None, quiz.Graded]]
        if is_dir or (library.is_file(path) and quiz.is_quiz(path)):
            if given or layer or input:
                raise CnncalcError(
                    "a quiz file carries its own answers", hint="drop --layer, --shape, --params, ... or pass a spec"
                )
            quizzes = [(str(p), quiz.grade_file(p)) for p in (_quiz_files(path) if is_dir else [path])]
            graded = [(file, g) for file, result in quizzes for g in result.questions]
        else:
            if not given:
                raise CnncalcError(
                    "nothing to check",
                    expected="--shape, --params, --weights, --macs, --flops, --memory, --bytes or --receptive-field "
                    "(with --layer), or a quiz file",
                    hint="cnncalc check alexnet --layer pool1 --shape 27x27x96 --params 0",
                )
            truth = quiz.network_truth(
                library.resolve(target),
                layer,
                parse_input(input, spec.load(library.resolve(target)).input_shape),
                style=style,
            )
            verdicts = tuple(quiz.judge(q, v, truth, biases, batch, dtype) for q, v in given.items())
            quizzes = []
            graded = [(None, quiz.Graded(layer or "network", "", truth.subject, verdicts, truth.working, Where()))]
        wrong = sum(not g.correct for _, g in graded)
        summary = f"{len(graded) - wrong} of {len(graded)} right" + (f" in {len(quizzes)} quiz files" if is_dir else "")
        out: list[str] = []
        colour = format is Format.TEXT and colour_on(sys.stdout)  # the marks scan at a glance; never in JSON
        for file, result in quizzes:
            out += [*([""] if out else []), *([f"== {file}"] if is_dir else []), result.title, ""]
            out += [line for f, g in graded if f == file for line in _question_lines(g, colour)]
        if not quizzes:
            out += _question_lines(graded[0][1], colour)
        if len(graded) > 1:
            out += ["", summary]
        data = {
            "questions": [_question_data(g, file) for file, g in graded],
            "summary": {"right": len(graded) - wrong, "wrong": wrong, "total": len(graded), "files": len(quizzes)},
        }
        emit(Output("check", (Lines(tuple(out)),), data=data, markdown=False), format)
    if wrong:
        raise typer.Exit(ExitCode.WRONG)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False
