"""Convolution, pooling and transposed convolution on small matrices, by hand, exactly.

For checking the worked examples of the notes: the numbers are read as exact fractions, every
output position keeps its window, products and sum (`--steps`), and the output sizes come from
the same `geometry` functions as the tables. The results follow `torch.nn.functional` (which the
tests compare against): cross-correlation, max pooling that never picks the padding, average
pooling that divides by the window including padding unless told otherwise.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from typing import Sequence

from ..errors import CnncalcError
from ..geometry import Window, transposed_formula, transposed_output_size, window_output_size
from ..layers import check_pool_padding
from ..records import record
from ..spec.yaml_lines import read_text
from . import PoolMode as PoolMode  # re-exported: `pool`'s argument

Grid = tuple[tuple[Fraction, ...], ...]  # [row][column]


@record
class Values:
    """A stack of matrices, [channel][row][column]; `rank` 1 for vectors (one row each)."""

    channels: tuple[Grid, ...]
    rank: int

    @property
    def depth(self) -> int:
        return len(self.channels)

    @property
    def height(self) -> int:
        return len(self.channels[0])

    @property
    def width(self) -> int:
        return len(self.channels[0][0])

    @property
    def shape(self) -> tuple[int, ...]:
        """[C, L] or [C, H, W], like the tensors PyTorch would take (without the batch axis)."""
        return (self.depth, self.width) if self.rank == 1 else (self.depth, self.height, self.width)


MAX_VALUE = 10**12  # a typed value; sums of products of such stay exact and print as floats
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def read_values(text: str, what: str) -> Values:
    """Numbers typed on the command line or read from a file.

    Rows end at `;` or a new line, numbers are separated by spaces or commas (CSV works), and
    channels are separated by `|` or an empty line. A single row is a vector (1-D). A text that
    names an existing file (or `@path`) is read from that file.
    """
    source = text.strip()
    path = Path(source[1:] if source.startswith("@") else source)
    if source.startswith("@") or (("/" in source or "." in source) and not _looks_numeric(source) and path.is_file()):
        try:
            source = read_text(path)
        except CnncalcError as err:
            raise CnncalcError(f"cannot read {what} from {path}: {err.message}", hint="check the path") from None
        what = f"{what} ({path})"
    channel_texts = [c for c in re.split(r"\||\n\s*\n", source.strip())]
    channels: list[Grid] = []
    single_row = True
    for c, channel_text in enumerate(channel_texts):
        rows_text = [r for r in re.split(r"[;\n]", channel_text) if r.strip()]
        if not rows_text:
            raise CnncalcError(
                f"{what} has an empty channel",
                received=text,
                expected="numbers, rows separated by ';', channels by '|'",
            )
        single_row &= len(rows_text) == 1
        rows = tuple(_read_row(r, what, i, c) for i, r in enumerate(rows_text))
        width = len(rows[0])
        for i, row in enumerate(rows):
            if len(row) != width:
                raise CnncalcError(
                    f"{what} is ragged: row {i + 1} has {len(row)} numbers, row 1 has {width}",
                    received=rows_text[i].strip(),
                    expected=f"{width} numbers in every row",
                    hint="rows end at ';' or a new line; check for a missing or extra number",
                )
        channels.append(rows)
    first = (len(channels[0]), len(channels[0][0]))
    for c, grid in enumerate(channels):
        if (len(grid), len(grid[0])) != first:
            raise CnncalcError(
                f"{what}: channel {c + 1} is {len(grid)}x{len(grid[0])}, channel 1 is {first[0]}x{first[1]}",
                expected="every channel the same size",
            )
    return Values(tuple(channels), 1 if single_row else 2)


def _looks_numeric(text: str) -> bool:
    return all(_NUMBER.match(tok) for tok in re.split(r"[\s,;|]+", text.strip()) if tok)


def _read_row(text: str, what: str, row: int, channel: int) -> tuple[Fraction, ...]:
    tokens = [t for t in re.split(r"[\s,]+", text.strip()) if t]
    values = []
    for tok in tokens:
        if not _NUMBER.match(tok):
            raise CnncalcError(
                f"{what} has a non-numeric entry in row {row + 1}" + (f" of channel {channel + 1}" if channel else ""),
                received=tok,
                expected="integers or decimals such as 3, -1.5 or 0.25",
            )
        exponent = _NUMBER.match(tok).group(3)  # type: ignore[union-attr]  # matched above
        # Fraction("1e999999999") would build a billion-digit integer first: bound the exponent
        if (exponent is not None and abs(int(exponent[1:])) > 40) or abs(value := Fraction(tok)) > MAX_VALUE:
            raise CnncalcError(
                f"{what} has an entry out of range for a worked example in row {row + 1}"
                + (f" of channel {channel + 1}" if channel else ""),
                received=tok[:40],
                expected=f"numbers of at most {MAX_VALUE:,} in size, exponents of at most 40 (these tools work small examples by hand)",
            )
        values.append(value)
    return tuple(values)


# ----- results -----------------------------------------------------------------------------


@record
class Step:
    """How one output value was made: the terms that went in, and the result."""

    position: tuple[int, ...]  # (row, column) of the output, or (column,) for vectors
    text: str  # `0*1 + 0*3 + ... = 16`, or `max(0, 3, 1, ...) = 3`
    value: Fraction


@record
class Result:
    output: Values
    steps: tuple[Step, ...]
    sizes: tuple[str, str]  # the output-size working of the rows and the columns
    note: str = ""  # what was computed, in words


def _axes(values: Values, pair: Sequence[int], name: str) -> tuple[int, int]:
    """(rows, columns) of an option given once or as rows x columns; vectors take the columns' only."""
    if len(pair) == 1:
        v = pair[0]
        return (0 if name == "padding" else 1, v) if values.rank == 1 else (v, v)
    if values.rank == 1:
        raise CnncalcError(f"a vector takes one {name}", received="x".join(map(str, pair)))
    return pair[0], pair[1]


MAX_HAND_SIZE = 1_000  # stride, padding, dilation and kernel of the hand-sized tools
MAX_HAND_TERMS = 1_000_000  # products (or values) the worked answer may list


def _check_options(**options: Sequence[int]) -> None:
    """The hand-sized tools' options: positive (padding at least 0) and at most MAX_HAND_SIZE each."""
    for name, values in options.items():
        least = 0 if name in ("padding", "output_padding") else 1
        for v in values:
            if v < least or v > MAX_HAND_SIZE:
                raise CnncalcError(
                    f"--{name.replace('_', '-')} is out of range",
                    received=v,
                    expected=f"an integer from {least} to {MAX_HAND_SIZE:,} (these tools work a small example by hand)",
                    hint="use `cnncalc conv` or `cnncalc pool` with --input for sizes only"
                    if v > MAX_HAND_SIZE
                    else None,
                )


def _check_work(out_cells: int, per_cell: int) -> None:
    if out_cells * per_cell > MAX_HAND_TERMS:
        raise CnncalcError(
            "too large to work by hand",
            received=f"{out_cells:,} output values of {per_cell:,} terms each",
            expected=f"at most {MAX_HAND_TERMS:,} terms in all",
            hint="use `cnncalc conv` or `cnncalc pool` with --input for sizes only",
        )


def _windows(
    x: Values,
    kernel: tuple[int, int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    ceil_mode: bool = False,
) -> tuple[Window, Window]:
    _check_options(kernel=kernel, stride=stride, padding=padding, dilation=dilation)
    (sr, sc), (pr, pc), (dr, dc) = (
        _axes(x, stride, "stride"),
        _axes(x, padding, "padding"),
        _axes(x, dilation, "dilation"),
    )
    if x.rank == 1:
        sr = dr = 1
    rows = Window(x.height, kernel[0], sr, pr, pr, dr, ceil_mode)
    cols = Window(x.width, kernel[1], sc, pc, pc, dc, ceil_mode)
    for w in (rows, cols):
        window_output_size(w)  # raises when the kernel is larger than the padded input
    return rows, cols


def _same_rank(x: Values, kernel: Values) -> tuple[Values, Values]:
    """A one-row input with a matrix kernel is a 1xW matrix, and a one-row kernel a 1xK matrix."""
    rank = max(x.rank, kernel.rank)
    return Values(x.channels, rank), Values(kernel.channels, rank)


def _show(v: Fraction) -> str:
    """Integers as integers, other values as decimals of at most 4 places."""
    if v.denominator == 1:
        return str(v.numerator)
    text = f"{float(v):.4f}".rstrip("0").rstrip(".")
    return text


def _position(x: Values, i: int, j: int) -> tuple[int, ...]:
    return (j,) if x.rank == 1 else (i, j)


def convolve(
    x: Values,
    kernel: Values,
    *,
    stride: Sequence[int] = (1,),
    padding: Sequence[int] = (0,),
    dilation: Sequence[int] = (1,),
    bias: Fraction = Fraction(0),
    flip: bool = False,
) -> Result:
    """Cross-correlation of `x` with one filter (summed over channels, plus bias), as F.conv1d/2d.

    `flip` turns the kernel by 180 degrees first: the mathematical convolution.
    """
    if kernel.depth != x.depth:
        raise CnncalcError(
            "the kernel must have as many channels as the input (one filter)",
            received=f"input {x.depth} channel(s), kernel {kernel.depth}",
            hint="separate the kernel's channels with '|', in the input's order",
        )
    x, kernel = _same_rank(x, kernel)
    grids = (
        [tuple(tuple(reversed(row)) for row in reversed(g)) for g in kernel.channels] if flip else list(kernel.channels)
    )
    rows, cols = _windows(x, (kernel.height, kernel.width), stride, padding, dilation)
    out_h, out_w = window_output_size(rows), window_output_size(cols)
    _check_work(out_h * out_w, kernel.depth * kernel.height * kernel.width)
    steps: list[Step] = []
    out: list[list[Fraction]] = []
    for i in range(out_h):
        line = []
        for j in range(out_w):
            terms: list[str] = []
            total = bias
            for c, grid in enumerate(grids):
                for u, krow in enumerate(grid):
                    for v, w in enumerate(krow):
                        r = i * rows.stride + u * rows.dilation - rows.pad_left
                        s = j * cols.stride + v * cols.dilation - cols.pad_left
                        inside = 0 <= r < x.height and 0 <= s < x.width
                        value = x.channels[c][r][s] if inside else Fraction(0)  # zero padding
                        total += value * w
                        terms.append(f"{_show(value)}*{_show(w)}")
            bias_text = f" + {_show(bias)}" if bias else ""
            steps.append(Step(_position(x, i, j), " + ".join(terms) + bias_text + f" = {_show(total)}", total))
            line.append(total)
        out.append(line)
    what = "convolution (kernel flipped)" if flip else "cross-correlation (PyTorch's conv)"
    return Result(Values((tuple(tuple(r) for r in out),), x.rank), tuple(steps), (rows.formula(), cols.formula()), what)


def pool(
    x: Values,
    kernel: Sequence[int],
    *,
    mode: PoolMode = PoolMode.MAX,
    stride: Sequence[int] | None = None,
    padding: Sequence[int] = (0,),
    dilation: Sequence[int] = (1,),
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Result:
    """Max or average pooling of every channel, as F.max_pool / F.avg_pool.

    Max pooling never picks the padding; average pooling divides by the window size, padding
    included (count_include_pad), clipped at the padded border as PyTorch does.
    """
    kh, kw = _axes(x, kernel, "kernel")
    if x.rank == 1:
        kh = 1
    if mode is PoolMode.AVG and any(d != 1 for d in dilation):
        raise CnncalcError("average pooling has no dilation (as in PyTorch)", received=list(dilation))
    rows, cols = _windows(x, (kh, kw), stride if stride is not None else kernel, padding, dilation, ceil_mode)
    check_pool_padding([rows, cols], lambda w: w.kernel // 2, "kernel")  # PyTorch's rule, dilated or not
    out_h, out_w = window_output_size(rows), window_output_size(cols)
    _check_work(x.depth * out_h * out_w, kh * kw)
    steps: list[Step] = []
    channels = []
    for c, grid in enumerate(x.channels):
        out = []
        for i in range(out_h):
            line = []
            for j in range(out_w):
                r0, c0 = i * rows.stride - rows.pad_left, j * cols.stride - cols.pad_left
                if mode is PoolMode.MAX:
                    cells = [
                        grid[r][s]
                        for r in range(r0, r0 + rows.dilation * rows.kernel, rows.dilation)
                        if 0 <= r < x.height
                        for s in range(c0, c0 + cols.dilation * cols.kernel, cols.dilation)
                        if 0 <= s < x.width
                    ]
                    value = max(cells)
                    text = f"max({', '.join(map(_show, cells))}) = {_show(value)}"
                else:
                    # PyTorch: the window is clipped to the padded input for the divisor, to the input for the sum
                    r1, c1 = (
                        min(r0 + rows.kernel, x.height + rows.pad_left),
                        min(c0 + cols.kernel, x.width + cols.pad_left),
                    )
                    divisor = (r1 - r0) * (c1 - c0)
                    rr, cc = range(max(r0, 0), min(r1, x.height)), range(max(c0, 0), min(c1, x.width))
                    if not count_include_pad:
                        divisor = len(rr) * len(cc)
                    cells = [grid[r][s] for r in rr for s in cc]
                    value = sum(cells, Fraction(0)) / divisor
                    text = f"({' + '.join(map(_show, cells))})/{divisor} = {_show(value)}"
                prefix = f"channel {c + 1}: " if x.depth > 1 else ""
                steps.append(Step(_position(x, i, j), prefix + text, value))
                line.append(value)
            out.append(tuple(line))
        channels.append(tuple(out))
    what = (
        "max pooling"
        if mode is PoolMode.MAX
        else "average pooling" + ("" if count_include_pad else " (padding not counted)")
    )
    return Result(Values(tuple(channels), x.rank), tuple(steps), (rows.formula(), cols.formula()), what)


def convolve_transpose(
    x: Values,
    kernel: Values,
    *,
    stride: Sequence[int] = (1,),
    padding: Sequence[int] = (0,),
    output_padding: Sequence[int] = (0,),
    dilation: Sequence[int] = (1,),
    bias: Fraction = Fraction(0),
) -> Result:
    """Transposed convolution with one filter, as F.conv_transpose1d/2d: every input value scales
    the kernel, which is added into the output at (i*S, j*S); then P is cropped from each side.
    """
    if kernel.depth != x.depth:
        raise CnncalcError(
            "the kernel must have as many channels as the input (one output channel)",
            received=f"input {x.depth} channel(s), kernel {kernel.depth}",
        )
    x, kernel = _same_rank(x, kernel)
    _check_options(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation)
    (sr, sc), (pr, pc) = _axes(x, stride, "stride"), _axes(x, padding, "padding")
    (opr, opc), (dr, dc) = _axes(x, output_padding, "output_padding"), _axes(x, dilation, "dilation")
    if x.rank == 1:
        sr = dr = 1
        opr = 0
    out_h = transposed_output_size(x.height, kernel.height, sr, pr, dr, opr)
    out_w = transposed_output_size(x.width, kernel.width, sc, pc, dc, opc)
    _check_work(out_h * out_w + x.depth * x.height * x.width, kernel.height * kernel.width)
    out = [[bias] * out_w for _ in range(out_h)]
    steps: list[Step] = []
    for c in range(x.depth):
        for i in range(x.height):
            for j in range(x.width):
                a = x.channels[c][i][j]
                rows = [i * sr + u * dr - pr for u in range(kernel.height)]
                cols = [j * sc + v * dc - pc for v in range(kernel.width)]
                for u, r in enumerate(rows):
                    for v, s in enumerate(cols):
                        if 0 <= r < out_h and 0 <= s < out_w:
                            out[r][s] += a * kernel.channels[c][u][v]
                where = (
                    f"columns {cols[0]}..{cols[-1]}"
                    if x.rank == 1
                    else f"rows {rows[0]}..{rows[-1]}, columns {cols[0]}..{cols[-1]}"
                )
                prefix = f"channel {c + 1}: " if x.depth > 1 else ""
                steps.append(Step(_position(x, i, j), f"{prefix}adds {_show(a)} x kernel at {where}", a))
    sizes = (
        transposed_formula(x.height, kernel.height, sr, pr, dr, opr),
        transposed_formula(x.width, kernel.width, sc, pc, dc, opc),
    )
    return Result(Values((tuple(tuple(r) for r in out),), x.rank), tuple(steps), sizes, "transposed convolution")


def matrix_text(values: Values) -> str:
    """Right-aligned columns, channels one after another."""
    blocks = []
    for c, grid in enumerate(values.channels):
        cells = [[_show(v) for v in row] for row in grid]
        width = max(len(cell) for row in cells for cell in row)
        lines = ["  ".join(cell.rjust(width) for cell in row) for row in cells]
        blocks.append((f"channel {c + 1}:\n" if values.depth > 1 else "") + "\n".join(lines))
    return "\n\n".join(blocks)


def as_lists(values: Values) -> list[list[float]] | list[list[list[float]]]:
    """Plain nested lists of floats ([C][H][W], or [C][L] for vectors) for JSON and tests."""
    if values.rank == 1:
        return [[float(v) for v in grid[0]] for grid in values.channels]
    return [[[float(v) for v in row] for row in grid] for grid in values.channels]
