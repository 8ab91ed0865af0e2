"""Inverse questions: the missing kernel, stride, padding or input size of a layer, from the
output size it must give; or the kernel and stride of N equal layers, from their receptive field.

"Which padding keeps a 7x7 kernel's output size?", "which stride and padding turn 227 into 55
with an 11x11 kernel?", "what kernel gives a receptive field of 15 with three layers?": every
integer solution within stated bounds, each with its working. The window arithmetic is the
tables' own (`geometry.window_output_size`); nothing here is solved in closed form, so a solution
is exactly what the forward formula gives.
"""

from __future__ import annotations

from enum import Enum
from typing import Mapping

from .errors import CnncalcError
from .geometry import Window, effective_kernel, window_output_size
from .records import record

MAX_SEARCH = 2_000_000  # candidate combinations tried, at most (a bound on time for absurd sizes)


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


def solve_window(output: int, input: int | None = None, kernel: int | None = None, stride: int | None = None,
                 padding: int | None = None, dilation: int = 1) -> Solved:  # fmt: skip
    """Every (input, kernel, stride, padding) with the given ones fixed that gives `output` by
    floor((W + 2P - D(F-1) - 1)/S) + 1 = O, in the bounds it returns: F up to W, P below F (more
    padding than that reads padding only), S up to W + 2P, W up to O*S + D(F-1) + 1 (with F and S
    given: a larger input gives a larger output)."""
    given = {Unknown.INPUT: input, Unknown.KERNEL: kernel, Unknown.STRIDE: stride, Unknown.PADDING: padding}
    for name, value in (("output", output), *((u.value, v) for u, v in given.items()), ("dilation", dilation)):
        if value is not None and (type(value) is not int or value < (0 if name == "padding" else 1)):
            raise CnncalcError(f"--{name} must be a {'non-negative' if name == 'padding' else 'positive'} integer",
                               received=value)  # fmt: skip
    unknowns = tuple(u.value for u, v in given.items() if v is None)
    if not unknowns:
        raise CnncalcError("nothing to solve: every quantity is given", hint="leave out the one to find")
    if input is None and (kernel is None or stride is None):
        raise CnncalcError("an unknown input size needs the kernel and the stride", received="--input missing",
                           expected="--kernel and --stride given (the padding may be unknown)")  # fmt: skip
    bounds = tuple(text for text, unknown in (
        ("F from 1 to W (a kernel no larger than the input)", kernel is None),
        ("P from 0 to F - 1 (more reads padding only)", padding is None),
        ("S from 1 to W + 2P" + (" (an output of 1: any larger stride too)" if output == 1 else ""), stride is None),
        ("W from 1 to O*S + D(F - 1) + 1", input is None)) if unknown)  # fmt: skip
    solutions = []
    tried = 0
    for f in range(1, input + 1) if kernel is None and input is not None else [kernel or 1]:
        span = effective_kernel(f, dilation)
        for p in range(0, f) if padding is None else [padding]:
            # an output of 1 has one window whatever the stride beyond W + 2P - D(F-1): the first such one stands for all
            last = max((input or 0) + 2 * p - span + 1, 1) if output == 1 else (input or 0) + 2 * p
            for s in range(1, last + 1) if stride is None else [stride]:
                for w in range(1, output * s + span + 1) if input is None else [input]:
                    tried += 1
                    if tried > MAX_SEARCH:
                        raise CnncalcError("the search is too large", received=f"more than {MAX_SEARCH:,} candidates",
                                           hint="give more of the quantities")  # fmt: skip
                    window = Window(w, f, s, p, p, dilation)
                    if window.span < 0 or window_output_size(window) != output:
                        continue
                    values = {Unknown.INPUT.value: w, Unknown.KERNEL.value: f, Unknown.STRIDE.value: s,
                              Unknown.PADDING.value: p}  # fmt: skip
                    larger = stride is None and output == 1 and s == last
                    solutions.append(Solution({u: values[u] for u in unknowns}, window.formula(), window.remainder == 0,
                                              larger))  # fmt: skip
    question = _question(output, input, kernel, stride, padding, dilation)
    return Solved(question, unknowns, bounds, tuple(solutions))


def _question(output: int, input: int | None, kernel: int | None, stride: int | None, padding: int | None,
              dilation: int) -> str:  # fmt: skip
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
    return 1 + (kernel - 1) * sum(stride**i for i in range(layers))


def solve_field(field: int, layers: int, kernel: int | None = None, stride: int | None = None) -> FieldSolved:
    """Every (kernel, stride) of `layers` equal layers whose receptive field is `field` (dilation 1):
    1 + (F - 1)(1 + S + ... + S^(N-1)) = R. Bounds: F from 1 to R, S from 1 to R."""
    for name, value in (("field", field), ("layers", layers), ("kernel", kernel), ("stride", stride)):
        if value is not None and (type(value) is not int or value < 1):
            raise CnncalcError(f"--{name if name != 'field' else 'receptive-field'} must be a positive integer",
                               received=value)  # fmt: skip
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
