"""Checking answers: a layer's shape, parameters, MACs or memory against what a student wrote.

Answers are read the ways people write them: shapes as `12x12x10`, `12 × 12 × 10` or
`(10, 12, 12)` (H x W x C or C x H x W, whichever matches), numbers as `34,848`, `34848`, `35K`
or `3.2M` (a rounded answer is right when the true value rounds to it). A question is about a
network (built-in, a path or an inline spec) or about one layer (`conv: {input: 227x227x3,
kernel: 11, out: 96, stride: 4}`); quiz_file.py reads a YAML list of them, with expected answers
or multiple-choice options, and grades each. The library returns verdicts; the CLI prints them.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Mapping

from .. import spec
from ..analysis import DType, Field, Report, Style, analyze, lecture
from ..analysis.row_names import find_row
from ..errors import CnncalcError
from ..layers import Shape
from ..quantities import Quantity
from ..records import record
from ..render import ShapeOrder, shape_text
from ..spec import library
from ..units import read_sizes
from .calculator import answer, read_input, separable, with_default_filters

# What a question can ask for: the answer key a quiz file (and `check --KEY`) writes, and the
# quantity it names. Two keys are the lecture notes' words: `memory` (activations: elements of the
# output, one sample) and `bytes` (the same output in bytes at the question's batch and dtype).
ANSWER_KEYS = {
    "shape": Quantity.SHAPE,
    "params": Quantity.PARAMS,  # weights, or weights + biases: see `biases`
    "weights": Quantity.WEIGHTS,
    "macs": Quantity.MACS,
    "memory": Quantity.ACTIVATIONS,
    "flops": Quantity.FLOPS,  # 2 x MACs, one sample
    "bytes": Quantity.ACTIVATION_BYTES,
    "receptive_field": Quantity.RECEPTIVE_FIELD,  # input pixels one output position sees (spec questions)
    "values": Quantity.VALUES,  # the unknowns of a `solve:` question: {stride: 4, padding: 0}
}
_KEY_OF = {quantity: key for key, quantity in ANSWER_KEYS.items()}


# how a student writes "the stride does not tile the input" as a shape answer
DOES_NOT_FIT = ("does not fit", "doesn't fit", "doesnt fit")


@record
class Truth:
    """The right answers about one layer (or a whole network), with the working behind them."""

    subject: str  # `alexnet: pool1`, `conv 227x227x3`
    shape: Shape
    weights: int
    biases: int
    macs: int
    activations: int
    working: tuple[str, ...] = ()
    field: Field | None = None  # receptive field (spec questions)
    misfits: tuple[str, ...] = ()  # why the stride does not tile the input, if it does not
    memory_counts: str = ""  # which rows `activations` sums, for a whole network


@record
class Verdict:
    quantity: Quantity
    given: str
    correct: bool
    right: str  # the right answer, written out
    detail: str = ""  # how the answer was read (order of the shape, rounding, biases)

    @property
    def key(self) -> str:
        """The answer key that asked for it, as the quiz wrote it (`memory`, not `activations`)."""
        return _KEY_OF[self.quantity]


# ----- reading answers ---------------------------------------------------------------------

_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9, "t": 10**12}
_NUMBER = re.compile(r"^([0-9][0-9_,]*(?:\.[0-9]+)?|\.[0-9]+)(?:e([+-]?[0-9]+))?\s*([kmgbt]?)$", re.IGNORECASE)


def read_count(text: object) -> tuple[Decimal, Decimal]:
    """A count and how far from it a right answer may be: `34,848` exact, `35K` within 500."""
    raw = str(text).strip().replace(" ", "")
    match = _NUMBER.match(raw)
    if not match:
        raise CnncalcError("cannot read a number", received=text, expected="a count such as 34848, 34,848, 35K or 3.2M")
    digits, exponent, suffix = match.groups()
    try:
        value = Decimal(digits.replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise CnncalcError("cannot read a number", received=text) from None
    scale = Decimal(_SUFFIX[suffix.lower()]) * (Decimal(10) ** int(exponent or 0))
    rounded = bool(suffix) or "." in digits or exponent is not None
    # half a unit of the last written digit: 35K -> 500, 3.2M -> 50,000
    places = len(digits.split(".")[1]) if "." in digits else 0
    tolerance = scale * Decimal(10) ** -places / 2 if rounded else Decimal(0)
    return value * scale, tolerance


def _count_matches(given: object, truth: int) -> tuple[bool, str]:
    value, tolerance = read_count(given)
    if tolerance == 0:
        return value == truth, ""
    return abs(value - truth) <= tolerance, f"read as {value:,.0f} +/- {tolerance:,.0f} (a rounded answer)"


_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}
_BYTES = re.compile(r"^(.*?)\s*(b|kb|mb|gb|kib|mib|gib)$", re.IGNORECASE)


def _bytes_match(given: object, truth: int) -> tuple[bool, str]:
    """`602112`, `588 KiB`, `0.6 MB`, `588K`: a count of bytes, with an optional unit."""
    match = _BYTES.match(str(given).strip())
    if not match:
        return _count_matches(given, truth)
    value, tolerance = read_count(match.group(1))
    unit = _UNITS[match.group(2).lower()]
    if unit != 1 and tolerance == 0:  # `588 KiB` is rounded too: half a unit either way
        tolerance = Decimal("0.5")
    value, tolerance = value * unit, tolerance * unit
    ok = abs(value - truth) <= tolerance
    return ok, f"read as {value:,.0f} +/- {tolerance:,.0f} bytes" if tolerance else ""


def judge_field(given: object, field: Field | None) -> Verdict:
    if field is None:
        raise CnncalcError(
            "receptive_field is asked of a layer in a spec", expected="spec: NAME, layer: ROW, receptive_field: 7"
        )
    from ..render import field_text

    right = field_text(field, "size")
    text = str(given).strip()
    if not field.whole and not getattr(field, "known", True):
        raise CnncalcError(
            "this row's receptive field is not tabulated (too many distinct positions)", hint="ask of an earlier row"
        )
    if field.whole:
        return Verdict(
            Quantity.RECEPTIVE_FIELD, text, text.lower() in ("all", "whole", "the whole input"), "all (the whole input)"
        )
    sizes = read_sizes(text, "a receptive field")
    truth = tuple(field.size)
    ok = sizes == truth or (len(sizes) == 1 and len(set(truth)) == 1 and sizes[0] == truth[0])
    return Verdict(Quantity.RECEPTIVE_FIELD, text, ok, right)


def judge_shape(given: object, truth: Shape, misfits: tuple[str, ...] = ()) -> Verdict:
    right = (
        f"{shape_text(truth, ShapeOrder.HWC)} (H x W x C) = {shape_text(truth, ShapeOrder.CHW)} (C x H x W)"
        if len(truth) > 1
        else str(truth[0])
    )
    if str(given).strip().rstrip(".!").lower().replace("’", "'") in DOES_NOT_FIT:
        if misfits:
            return Verdict(
                Quantity.SHAPE, str(given), True, f"does not fit: {misfits[0]}", f"PyTorch floors it to {right}"
            )
        return Verdict(Quantity.SHAPE, str(given), False, right, "the stride tiles the input: it fits")
    sizes = read_sizes(str(given))
    hwc, chw = (*truth[1:], truth[0]), tuple(truth)
    if misfits:
        right += "; or 'does not fit' (the stride does not tile the input)"
    if len(truth) == 1:
        # a flat vector also reads as 1x1xN (the notes' FC rows) or N x 1 x 1
        ok = sizes in {(truth[0],), (1, 1, truth[0]), (truth[0], 1, 1)}
        return Verdict(Quantity.SHAPE, str(given), ok, right)
    if sizes == hwc:
        return Verdict(Quantity.SHAPE, str(given), True, right, "read as H x W x C" if hwc != chw else "")
    if sizes == chw:
        return Verdict(Quantity.SHAPE, str(given), True, right, "read as C x H x W")
    return Verdict(Quantity.SHAPE, str(given), False, right)


def judge(
    quantity: Quantity,
    given: object,
    truth: Truth,
    biases: bool | None = None,
    batch: int = 1,
    dtype: DType = DType.FP32,
) -> Verdict:
    """Is `given` the right `quantity` for `truth`? `biases`: whether params include them (None: either);
    `batch` and `dtype` for bytes."""
    if quantity not in _KEY_OF:
        raise CnncalcError(f"no question asks for {quantity.value}", expected=", ".join(ANSWER_KEYS))
    if quantity is Quantity.SHAPE:
        return judge_shape(given, truth.shape, truth.misfits)
    if quantity is Quantity.VALUES:
        raise CnncalcError("'values' answers a solve: question", expected="solve: {input: 227, output: 55, kernel: 11}")
    if quantity is Quantity.RECEPTIVE_FIELD:
        return judge_field(given, truth.field)
    if quantity is Quantity.ACTIVATION_BYTES:
        value = truth.activations * batch * dtype.bytes
        ok, how = _bytes_match(given, value)
        return Verdict(
            quantity,
            str(given),
            ok,
            f"{value:,} ({truth.activations:,} activations x batch {batch} x {dtype.bytes} bytes, {dtype.value})",
            how,
        )
    if quantity is Quantity.PARAMS:
        with_b, without = truth.weights + truth.biases, truth.weights
        right = f"{without:,} without biases, {with_b:,} with {truth.biases:,} biases"
        if biases is True:
            ok, how = _count_matches(given, with_b)
            return Verdict(quantity, str(given), ok, f"{with_b:,} (weights {without:,} + biases {truth.biases:,})", how)
        if biases is False:
            ok, how = _count_matches(given, without)
            return Verdict(quantity, str(given), ok, f"{without:,} (biases ignored; {with_b:,} with them)", how)
        ok_without, how = _count_matches(given, without)
        ok_with, how_with = _count_matches(given, with_b)
        if ok_without and not ok_with:
            return Verdict(quantity, str(given), True, right, "matches the weights alone (biases not counted)")
        if ok_with and not ok_without:
            return Verdict(quantity, str(given), True, right, "matches weights + biases")
        return Verdict(quantity, str(given), ok_with, right, how or how_with)
    value = {
        Quantity.WEIGHTS: truth.weights,
        Quantity.MACS: truth.macs,
        Quantity.ACTIVATIONS: truth.activations,
        Quantity.FLOPS: 2 * truth.macs,
    }[quantity]
    ok, how = _count_matches(given, value)
    counts = f" ({truth.memory_counts})" if quantity is Quantity.ACTIVATIONS and truth.memory_counts else ""
    return Verdict(quantity, str(given), ok, f"{value:,}{counts}", how)


# ----- what a question is about ------------------------------------------------------------


def network_truth(
    source: str | Path | library.Source | Mapping[str, Any],
    layer: str | None = None,
    input_shape: Shape | None = None,
    file: str | None = None,
    style: Style = Style.FULL,
) -> Truth:
    """The answers for one layer of a network (by its row name, or its lecture name: `conv5_3`),
    or for the whole network: its memory counted over the rows of `style` (see `_memory_counts`)."""
    if isinstance(source, Mapping):
        graph = spec.parse(source, file=file, default_name="inline spec")
    else:
        graph = spec.load(source if isinstance(source, library.Source) else library.resolve(str(source)))
    report = analyze(graph, input_shape=input_shape, explain=True, fields=True)
    if layer is None:
        t, last = report.totals, report.rows[-1]
        misfits = tuple(w.message for w in report.warnings)
        shown = lecture(report) if style is Style.LECTURE else report
        activations, counts = _memory_counts(report, shown)
        return Truth(
            graph.name,
            last.output_shape,
            t.weights,
            t.biases,
            t.macs,
            activations,
            field=last.field,
            misfits=misfits,
            memory_counts=counts,
        )
    row, alias = find_row(report, layer, graph.name)
    misfits = tuple(w.message for w in report.warnings if w.layer == row.name)
    subject = f"{graph.name}: {layer}" + (f" ({row.name})" if alias else "")
    return Truth(
        subject, row.output_shape, row.weights, row.biases, row.macs, row.activations, row.working, row.field, misfits
    )


def _memory_counts(full: Report, shown: Report) -> tuple[int, str]:
    """A network's 'memory': the lecture tables sum their rows' outputs, the input row included
    (VGG16: 15,237,608, the 15.2M the CS231n table's rows add up to); the full table's figure is
    every row's output, in-place activations and views included, the input not."""
    if shown.style is Style.LECTURE:
        value = shown.totals.activations_with_input
        return value, (
            f"the lecture table's {len(shown.rows)} rows, the input included; "
            f"every row of the full table, the input not: {full.totals.activations:,}"
        )
    return full.totals.activations, (
        f"the sum of every row's output, {len(full.rows) - 1} rows with in-place activations and views, the input not; "
        f"the lecture table's rows, the input included (--style lecture): {lecture(full).totals.activations_with_input:,}"
    )


def layer_truth(kind: str, args: Mapping[str, Any]) -> Truth:
    """The answers for one layer given as `{input: 227x227x3, kernel: 11, ...}` (input H x W x C,
    or a list channels first as in specs)."""
    args = dict(args)
    if kind == "separable":  # the depthwise-separable replacement of a conv: its totals
        return _separable_truth(args)
    if kind == "pool":  # `pool: {..., mode: avg}`, as `cnncalc pool` takes it
        kind = "avgpool" if args.pop("mode", "max") == "avg" else "maxpool"
    if "input" not in args:
        raise CnncalcError(
            f"a {kind} question needs its input", expected="input: 227x227x3 (H x W x C) or [3, 227, 227]"
        )
    given = args.pop("input")
    shape = tuple(given) if isinstance(given, list) else read_input(str(given))
    a = answer(kind, shape, with_default_filters(kind, args))  # `out` as `cnncalc conv` defaults it
    return Truth(
        f"{a.kind} on {shape_text(shape, ShapeOrder.HWC)}",
        a.output_shape,
        a.weights,
        a.biases,
        a.macs,
        math.prod(a.output_shape),
        a.working,
        misfits=a.warnings,
    )


def _separable_truth(args: dict[str, Any]) -> Truth:
    """`separable: {input: 112x112x32, kernel: 3, out: 64, padding: 1}`: the depthwise 3x3 and the
    pointwise 1x1 together (`cnncalc conv --separable`); working: both halves and the ratio."""
    if "input" not in args:
        raise CnncalcError("a separable question needs its input", expected="input: 112x112x32 (H x W x C)")
    given = args.pop("input")
    shape = tuple(given) if isinstance(given, list) else read_input(str(given))
    s = separable(shape, args)
    working = (
        *(f"depthwise: {w}" for w in s.depthwise.working),
        *(f"pointwise: {w}" for w in s.pointwise.working),
        f"MACs: separable / standard = {s.macs:,} / {s.standard.macs:,} = {float(s.macs_ratio()):.4f}",
    )
    return Truth(
        f"separable conv on {shape_text(shape, ShapeOrder.HWC)}",
        s.pointwise.output_shape,
        s.depthwise.weights + s.pointwise.weights,
        s.depthwise.biases + s.pointwise.biases,
        s.macs,
        math.prod(s.depthwise.output_shape) + math.prod(s.pointwise.output_shape),
        working,
        misfits=s.depthwise.warnings,
    )
