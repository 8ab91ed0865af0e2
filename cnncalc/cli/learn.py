"""Commands for students and teachers: `conv` (one layer's output size, weights, biases and
MACs, with the working) and `solve` (inverse questions: every kernel, stride, padding or input size
that gives an output size), and the options they share with `pool` and `convolve` (numeric.py).
`check` is in quiz.py. No torch.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from typing import Annotated, Any, Optional

import typer

from ..errors import CnncalcError, StrictError
from ..layers.arguments import PADDING_WORDS
from ..learn import calculator
from ..learn.calculator import DEFAULT_FILTERS, LayerAnswer, answer, read_axes, read_input
from ..render import Format, Lines, Output, ShapeOrder, Table, Worked, shape_text
from ..units import read_sizes
from .common import (
    LayoutOpt,
    StrictOpt,
    app,
    emit,
    format_option,
    label,
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
