"""Inverse questions: the missing kernel, stride, padding or input size of a layer, from the
output size it must give; or the kernel and stride of N equal layers, from their receptive field.

"Which padding keeps a 7x7 kernel's output size?", "which stride and padding turn 227 into 55
with an 11x11 kernel?", "what kernel gives a receptive field of 15 with three layers?": every
integer solution within stated bounds, each with its working. Nothing is solved in closed form:
candidates are tried (a quick sieve first), and the tables' own `geometry.window_output_size`
decides, so a solution is exactly what the forward formula gives. A search too large is refused
before it starts.
"""

from __future__ import annotations

from enum import Enum
from typing import Mapping

from ..errors import CnncalcError
from ..geometry import Window, effective_kernel, window_output_size
from ..records import record

MAX_SEARCH = 1_000_000  # candidates a search may try (a bound on time for absurd sizes), refused up front


class Unknown(str, Enum):
    """What a window question may leave out."""

    INPUT = "input"
    KERNEL = "kernel"
    STRIDE = "stride"
    PADDING = "padding"


@record
class Solution:
    values: Mapping[str, int]  # each unknown's value
    working: str  # the forward formula with the numbers filled in
    exact: bool  # the stride tiles the padded input (no floor)
    # an output of 1: every stride from this one up gives it (one window, whatever the stride)
    larger_strides: bool = False


@record
class Solved:
    question: str  # `(227 - F + 2P)/S + 1 = 55`
    unknowns: tuple[str, ...]
    bounds: tuple[str, ...]  # where the search looked, said
    solutions: tuple[Solution, ...]


def solve_window(
    output: int,
    input: int | None = None,
    kernel: int | None = None,
    stride: int | None = None,
    padding: int | None = None,
    dilation: int = 1,
) -> Solved:
    """Every (input, kernel, stride, padding) with the given ones fixed that gives `output` by
    floor((W + 2P - D(F-1) - 1)/S) + 1 = O, in the bounds it returns: F up to W, P below F (more
    padding than that reads padding only), S up to W + 2P, W up to O*S + D(F-1) + 1 (with F and S
    given: a larger input gives a larger output)."""
    given = {Unknown.INPUT: input, Unknown.KERNEL: kernel, Unknown.STRIDE: stride, Unknown.PADDING: padding}
    for name, value in (("output", output), *((u.value, v) for u, v in given.items()), ("dilation", dilation)):
        if value is not None and (type(value) is not int or value < (0 if name == "padding" else 1)):
            raise CnncalcError(
                f"--{name} must be a {'non-negative' if name == 'padding' else 'positive'} integer", received=value
            )
    unknowns = tuple(u.value for u, v in given.items() if v is None)
    if not unknowns:
        raise CnncalcError("nothing to solve: every quantity is given", hint="leave out the one to find")
    if input is None and (kernel is None or stride is None):
        raise CnncalcError(
            "an unknown input size needs the kernel and the stride",
            received="--input missing",
            expected="--kernel and --stride given (the padding may be unknown)",
        )
    bounds = tuple(
        text
        for text, unknown in (
            ("F from 1 to W (a kernel no larger than the input)", kernel is None),
            ("P from 0 to F - 1 (more reads padding only)", padding is None),
            (
                "S from 1 to W + 2P" + (" (an output of 1: any larger stride too)" if output == 1 else ""),
                stride is None,
            ),
            ("W from 1 to O*S + D(F - 1) + 1", input is None),
        )
        if unknown
    )
    # how many candidates the search would try, at most: refused up front where too many
    f_top = kernel or (input or 1)
    p_top = f_top - 1 if padding is None else padding
    s_top = stride or _stride_limit(input or 0, p_top, 1, output)
    w_top = input or output * s_top + effective_kernel(f_top, dilation)
    size = (
        (1 if kernel else f_top)
        * (1 if padding is not None else f_top)
        * (1 if stride else s_top)
        * (1 if input else w_top)
    )
    if size > MAX_SEARCH:
        raise CnncalcError(
            "the search is too large",
            received=f"up to {size:,} candidates" if size < 10**15 else "more than 10^15 candidates",
            expected=f"at most {MAX_SEARCH:,}",
            hint="give more of the quantities, or ask of smaller sizes",
        )
    solutions = []
    for f in range(1, input + 1) if kernel is None and input is not None else [kernel or 1]:
        span = effective_kernel(f, dilation)
        for p in range(0, f) if padding is None else [padding]:
            last = _stride_limit(input or 0, p, span, output)
            for s in range(1, last + 1) if stride is None else [stride]:
                for w in range(1, output * s + span + 1) if input is None else [input]:
                    reach = w + 2 * p - span  # a quick sieve: [out] = floor(reach / S) + 1, reach >= 0
                    if reach < 0 or reach // s + 1 != output:
                        continue
                    window = Window(w, f, s, p, p, dilation)
                    if window_output_size(window) != output:  # the tables' own rule decides
                        continue
                    values = {
                        Unknown.INPUT.value: w,
                        Unknown.KERNEL.value: f,
                        Unknown.STRIDE.value: s,
                        Unknown.PADDING.value: p,
                    }
                    larger = stride is None and output == 1 and s == last
                    solutions.append(
                        Solution({u: values[u] for u in unknowns}, window.formula(), window.remainder == 0, larger)
                    )
    question = _question(output, input, kernel, stride, padding, dilation)
    return Solved(question, unknowns, bounds, tuple(solutions))


def _stride_limit(size: int, padding: int, span: int, output: int) -> int:
    """The largest stride worth trying: (O - 1)S <= W + 2P - D(F-1) - 1 where O > 1; for an output
    of 1 the first stride past the reach (every larger one gives 1 too)."""
    reach = max(size + 2 * padding - span, 0)
    return reach // (output - 1) if output > 1 else reach + 1


def _question(
    output: int, input: int | None, kernel: int | None, stride: int | None, padding: int | None, dilation: int
) -> str:
    w = "W" if input is None else str(input)
    f = "F" if kernel is None else str(kernel)
    if dilation != 1:
        f = f"({dilation}*({f} - 1) + 1)"
    p = "2P" if padding is None else f"2*{padding}"
    s = "S" if stride is None else str(stride)
    return f"floor(({w} - {f} + {p})/{s}) + 1 = {output}"


@record
class FieldSolution:
    kernel: int
    stride: int | None  # None: any stride (one layer, or a 1x1 kernel, reads the same field whatever it is)
    working: str


@record
class FieldSolved:
    question: str
    layers: int
    field: int
    bounds: tuple[str, ...]
    solutions: tuple[FieldSolution, ...]


def receptive_field(layers: int, kernel: int, stride: int) -> int:
    """The receptive field of `layers` equal layers: 1 + (F - 1)(1 + S + S^2 + ... + S^(N-1))."""
    powers: int = sum(stride**i for i in range(layers))  # int ** int is typed Any (a negative power is a float)
    return 1 + (kernel - 1) * powers


def solve_field(field: int, layers: int, kernel: int | None = None, stride: int | None = None) -> FieldSolved:
    """Every (kernel, stride) of `layers` equal layers whose receptive field is `field` (dilation 1):
    1 + (F - 1)(1 + S + ... + S^(N-1)) = R. Bounds: F from 1 to R, S from 1 to R."""
    for name, value in (("field", field), ("layers", layers), ("kernel", kernel), ("stride", stride)):
        if value is not None and (type(value) is not int or value < 1):
            raise CnncalcError(
                f"--{name if name != 'field' else 'receptive-field'} must be a positive integer", received=value
            )
    if layers > 64:
        raise CnncalcError("at most 64 layers", received=layers)
    if kernel is not None and stride is not None:
        raise CnncalcError("nothing to solve: kernel and stride are both given", hint="leave out the one to find")
    solutions = []
    for f in [kernel] if kernel is not None else range(1, field + 1):
        if f == 1 or layers == 1:  # the strides do not matter: a 1x1 kernel reads 1, one layer reads F
            if f == field:
                solutions.append(FieldSolution(f, stride, f"{f} (one layer, or a 1x1 kernel: any stride)"))
            continue
        # with F >= 2 and two layers or more, 1 + (F - 1)(1 + S) <= R bounds S below R
        for s in [stride] if stride is not None else range(1, field + 1):
            if receptive_field(layers, f, s) == field:
                terms = " + ".join(["1"] + [str(s) if i == 1 else f"{s}^{i}" for i in range(1, layers)])
                working = f"1 + ({f} - 1)*({terms}) = {field}"
                solutions.append(FieldSolution(f, s, working))
    bounds = tuple(b for b, known in (("F from 1 to R", kernel), ("S from 1 to R", stride)) if known is None)
    question = f"1 + (F - 1)*(1 + S + ... + S^{layers - 1}) = {field} with {layers} equal layers"
    return FieldSolved(question, layers, field, bounds, tuple(solutions))
