"""`pool` (sizes, or the numbers of a small matrix with --values), `convolve` and `convolve-transpose`:
windows over small matrices, step by step. No torch.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated, Any, Optional

import typer

from ..errors import CnncalcError
from ..learn import PoolMode
from ..learn.calculator import answer
from ..render import Code, Format, Lines, Output, ShapeOrder
from .common import LayoutOpt, StrictOpt, app, emit, reported_errors
from .learn import (
    SHAPE_HELP,
    ChannelsOpt,
    DilationOpt,
    FormatOpt,
    KernelOpt,
    PaddingOpt,
    StrideOpt,
    _axes,
    _layer_arg,
    _print_answer,
    _read_layer_input,
)

StepsOpt = Annotated[bool, typer.Option("--steps", help="Print every window: its numbers, products and result.")]
BiasValueOpt = Annotated[str, typer.Option("--bias", help="A bias added to every output value.")]


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
