"""Per-layer numbers of a graph: output shape, weights, biases, buffers, activations, MACs.

Layer types answer what varies by type; everything else (activation counts, bytes, totals,
the peak of live activations, collapsing blocks into one row) is derived here, generically.
"""

from __future__ import annotations

import math
import re
from array import array
from dataclasses import replace
from enum import Enum
from fractions import Fraction
from itertools import compress
from typing import Callable, Mapping, MutableSequence, Protocol, Sequence

from ..errors import CnncalcError, LayerError, StrictError, Where
from ..graph import INPUT, Graph, OutputKind
from ..layers import FieldStep, Layer, Saved, Shape, layout
from ..layers.layout import Strides
from ..records import record


class DType(str, Enum):
    """Element types for byte counts; the value is how users spell it."""

    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    FP64 = "fp64"
    INT8 = "int8"

    @property
    def bytes(self) -> int:
        return _DTYPE_BYTES[self]


_DTYPE_BYTES = {DType.FP32: 4, DType.FP16: 2, DType.BF16: 2, DType.FP64: 8, DType.INT8: 1}  # once, not per row


class Style(str, Enum):
    """Which rows a table shows: every layer of the graph, or the lecture tables' rows."""

    FULL = "full"  # one row per layer, as PyTorch runs them
    LECTURE = "lecture"  # activations, views and identity rows folded into the row that made their input


PERIOD_LIMIT = 4096  # output positions per period past which a receptive field is not tabulated
FIELD_WORK_LIMIT = 1_000_000  # taps (phases x kernel) a periodic field step may look at


@record
class AxisField:
    """The receptive field along one spatial axis, for every output position o: the input pixels
    lo(o)..hi(o) (0 = the first pixel; negative reaches into padding) that can reach it.

    The field repeats every `period` outputs, moved by `shift` input pixels: lo(o) = lows[o mod
    period] + (o // period) * shift. Convolution and pooling keep the period at one (the
    standard recurrences, exact for fractional strides too); a transposed convolution of stride
    S multiplies it by S, as its outputs read different numbers of inputs by phase. None: no
    input reaches that phase (a transposed convolution whose stride exceeds its kernel).
    """

    lows: tuple[Fraction | None, ...]
    highs: tuple[Fraction | None, ...]
    shift: Fraction

    @property
    def period(self) -> int:
        return len(self.lows)

    def lo(self, o: int) -> Fraction | None:
        low = self.lows[o % self.period]
        return None if low is None else low + (o // self.period) * self.shift

    def hi(self, o: int) -> Fraction | None:
        high = self.highs[o % self.period]
        return None if high is None else high + (o // self.period) * self.shift

    def sizes(self) -> list[Fraction]:
        return [h - lo + 1 for lo, h in zip(self.lows, self.highs) if lo is not None and h is not None]

    def step(self, st: FieldStep) -> AxisField | None:
        """After a layer's step on this axis; None when the period would pass PERIOD_LIMIT (or the
        taps to look at FIELD_WORK_LIMIT): the field is then not tabulated."""
        if st.transposed:
            # output o reads input i where i*S = o + P - j*D, 0 <= j < F: S phases per input period
            k, s, p, d = int(st.kernel), int(st.stride), int(st.pad), st.dilation
            if self.period * s > PERIOD_LIMIT or self.period * s * k > FIELD_WORK_LIMIT:
                return None
            reads = [
                [(o + p - j * d) // s for j in range(k) if (o + p - j * d) % s == 0] for o in range(self.period * s)
            ]
            return self._gather(reads, self.shift)
        if self.period == 1:
            # r' = r + (k - 1) j;  j' = j s;  start' = start + ((k - 1)/2 - p) j, as lo' = lo - p j, hi' = hi + (k - 1 - p) j
            low, high = self.lows[0], self.highs[0]
            return AxisField(
                (None if low is None else low - st.pad * self.shift,),
                (None if high is None else high + (st.kernel - 1 - st.pad) * self.shift,),
                self.shift * st.stride,
            )
        if any(v.denominator != 1 for v in (st.kernel, st.stride, st.pad)):
            return None
        k, s, p = int(st.kernel), int(st.stride), int(st.pad)
        lcm = math.lcm(self.period, s)
        if lcm // s * k > FIELD_WORK_LIMIT:
            return None
        reads = [[o * s - p + t for t in range(k)] for o in range(lcm // s)]
        return self._gather(reads, self.shift * (lcm // self.period))

    def _gather(self, reads: list[list[int]], shift: Fraction) -> AxisField:
        """The field of outputs each reading the positions `reads[o]` of this one."""
        lows = [min((v for v in map(self.lo, r) if v is not None), default=None) for r in reads]
        highs = [max((v for v in map(self.hi, r) if v is not None), default=None) for r in reads]
        return AxisField(tuple(lows), tuple(highs), shift)

    @staticmethod
    def union(axes: Sequence[AxisField]) -> AxisField | None:
        """Position for position, the pixels any of `axes` reaches (a merge); None when their
        periods and shifts do not line up."""
        period = math.lcm(*(a.period for a in axes))
        shifts = {a.shift * (period // a.period) for a in axes}
        if len(shifts) != 1 or period > PERIOD_LIMIT:
            return None
        lows = [min((v for v in (a.lo(o) for a in axes) if v is not None), default=None) for o in range(period)]
        highs = [max((v for v in (a.hi(o) for a in axes) if v is not None), default=None) for o in range(period)]
        return AxisField(tuple(lows), tuple(highs), shifts.pop())


@record
class Field:
    """Receptive field of one row, per spatial axis, in input pixels (the standard recurrences,
    and their periodic form through transposed convolutions: `AxisField`).

    `size`: the most input pixels that can reach one output position, `size_min` the fewest (they
    differ where the field varies by position, after a transposed convolution); `jump`: the
    input distance between neighbouring outputs, on average (the effective stride); `start`: where
    the first output's field is centred, in input coordinates (0 = the centre of the first pixel;
    negative reaches into padding). `whole` marks rows that see the whole input (after flatten or
    linear); `known` is False where the field was not tabulated (its period passed PERIOD_LIMIT).
    """

    axes: tuple[AxisField, ...] = ()
    whole: bool = False
    known: bool = True

    @staticmethod
    def of_input(rank: int) -> Field:
        return Field(tuple(AxisField((Fraction(0),), (Fraction(0),), Fraction(1)) for _ in range(rank)))

    @property
    def size(self) -> tuple[Fraction, ...]:
        return tuple(max(a.sizes(), default=Fraction(0)) for a in self.axes)

    @property
    def size_min(self) -> tuple[Fraction, ...]:
        return tuple(min(a.sizes(), default=Fraction(0)) for a in self.axes)

    @property
    def varies(self) -> bool:
        return self.size != self.size_min

    @property
    def jump(self) -> tuple[Fraction, ...]:
        return tuple(a.shift / a.period for a in self.axes)

    @property
    def start(self) -> tuple[Fraction, ...]:
        """Centre of output 0's field (of the first output any input reaches, moved back by the jump)."""
        starts = []
        for a in self.axes:
            o = next((i for i, lo in enumerate(a.lows) if lo is not None), 0)
            lo, hi = a.lo(o), a.hi(o)
            starts.append(Fraction(0) if lo is None or hi is None else (lo + hi) / 2 - o * a.shift / a.period)
        return tuple(starts)

    def at(self, position: Sequence[int]) -> list[tuple[Fraction, Fraction] | None]:
        """The input pixels (first, last) per axis that reach the output at `position`."""
        result: list[tuple[Fraction, Fraction] | None] = []
        for a, o in zip(self.axes, position):
            lo, hi = a.lo(o), a.hi(o)
            result.append(None if lo is None or hi is None else (lo, hi))
        return result

    def step(self, steps: Sequence[FieldStep]) -> Field:
        if self.whole or not steps:
            return Field(whole=True)
        if not self.known:
            return self
        axes = [a.step(st) for a, st in zip(self.axes, steps)]
        return Field(known=False) if any(a is None for a in axes) else Field(tuple(a for a in axes if a is not None))


@record
class Row:
    """One row of the table: a leaf layer, the input, or a block collapsed by `depth`."""

    name: str
    type: str
    output_shape: Shape
    activations: int  # elements of the output, for one sample
    weights: int
    biases: int
    buffers: int
    macs: int  # multiply-accumulates, one sample
    inputs: tuple[str, ...] = ()
    leaves: int = 1  # leaf layers this row stands for
    working: tuple[str, ...] = ()  # the arithmetic, filled in (analyze(explain=True))
    field: Field | None = None  # receptive field (analyze(fields=True))
    folds: bool = False  # the lecture view shows it as part of the row that made its input (`lecture`)

    @property
    def params(self) -> int:
        return self.weights + self.biases

    @property
    def flops(self) -> int:
        return 2 * self.macs


@record
class FitWarning:
    """A layer whose stride does not tile its input and leaves real input positions unread
    (legal, as PyTorch's floor allows it; `--strict` makes it an error)."""

    layer: str
    where: Where
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@record
class Totals:
    weights: int
    biases: int
    params: int
    buffers: int
    activations: int  # sum over layers, input excluded: one output per row, views included
    activations_with_input: int
    macs: int
    flops: int
    peak_activations: int  # most elements alive at once during inference, the input included
    saved_activations: int = 0  # elements a training step keeps for backward (input excluded)
    saved_int64: int = 0  # int64 elements kept for backward (max pooling's indices)
    saved_fp32_per_batch: int = 0  # fp32 elements kept per batch, whatever its size (batch norm's statistics)
    # most bytes alive at once in a training step's forward pass, at the report's batch and dtype:
    # what the layers keep so far, what later layers still read, the input included
    training_forward_peak_bytes: int = 0
    stored_activations: int = 0  # the rows' outputs that are new tensors at inference (views are not), input excluded
    # under fp16/bf16 autocast (cnncalc/analysis/budget.py): the weights and biases cast to 16 bits (conv,
    # linear), and how many 16-bit copies of the fp32 input layers keep for backward
    autocast_weights: int = 0
    autocast_input_copies: int = 0


@record
class NetworkOutput:
    """One tensor the network returns: under which key (None for a network that returns one tensor,
    the position "0", "1", ... in a tuple or list, the key in a dict), which row makes it, its shape."""

    key: str | None
    layer: str
    output_shape: Shape
    shown: str | None = None  # the lecture view's row that stands for `layer` where it folds it (`lecture`)


@record
class Report:
    """Everything `cnncalc` prints for one network; rows[0] is the input."""

    name: str
    input_shape: Shape
    rows: tuple[Row, ...]
    totals: Totals
    warnings: tuple[FitWarning, ...] = ()
    batch: int = 1
    dtype: DType = DType.FP32
    containers: Mapping[str, str] | None = None
    style: Style = Style.FULL  # LECTURE after `lecture`: folded rows left out, activation totals of the rows shown
    outputs: tuple[NetworkOutput, ...] = ()  # what the network returns (the spec's `outputs:`, else its last row)
    returns: OutputKind = OutputKind.TENSOR  # how: one tensor, a tuple, a list or a dict of `outputs`

    def output_keys(self, row: Row) -> tuple[str, ...]:
        """The keys of the outputs `row` makes, in order (a collapsed block: those of its layers; the
        lecture view: those folded into it); () where it makes none or the network returns one tensor."""
        if self.returns is OutputKind.TENSOR:
            return ()
        return tuple(
            str(o.key)
            for o in self.outputs
            if (o.shown or o.layer) == row.name or (row.leaves > 1 and (o.shown or o.layer).startswith(row.name + "."))
        )

    def bytes_of(self, activations: int) -> int:
        """Bytes of that many activations for the whole batch."""
        return activations * self.batch * self.dtype.bytes

    @property
    def saved_bytes(self) -> int:
        """Bytes a training step keeps for backward (the input left out), for the whole batch."""
        t = self.totals
        return self.bytes_of(t.saved_activations) + 8 * self.batch * t.saved_int64 + 4 * t.saved_fp32_per_batch

    @property
    def param_bytes(self) -> int:
        return self.totals.params * self.dtype.bytes

    @property
    def buffer_bytes(self) -> int:
        return self.totals.buffers * self.dtype.bytes

    # ----- for notebooks: the presentation layer, imported when asked (the core never imports it) -----

    def to_dict(self) -> dict[str, object]:
        """The JSON payload, as `cnncalc summary --format json` writes it (docs/json.md)."""
        from ..render import notebook

        return notebook.to_dict(self)

    def to_markdown(self) -> str:
        """The `cnncalc summary` table in Markdown, with its totals lines."""
        from ..render import notebook

        return notebook.to_markdown(self)

    def to_pandas(self) -> object:  # a pandas.DataFrame
        """A pandas DataFrame, one row per layer; MissingExtraError without pandas."""
        from ..render import notebook

        return notebook.to_pandas(self)

    def __str__(self) -> str:
        """The `cnncalc summary` table as text, with its totals lines (`print(report)`)."""
        from ..render import notebook

        return notebook.to_text(self)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        from ..render import notebook

        return notebook.to_html(self)


class InputOrder(str, Enum):
    """How an `--input` override is read: channels first, channels last, or by the spec's channels."""

    CHW = "chw"
    HWC = "hwc"


def read_input_override(spec_shape: Shape, text: str) -> Shape:
    """An `--input` override for a spec whose input is `spec_shape` ([C, *spatial]), returned
    channels first. The order is read from the spec's channel count C, never guessed:

    - `3x224x224` and `224x224x3` for a 3-channel spec are both [3, 224, 224]: only one end is C;
    - when both ends are equal (`3x3x3`, `64x64x64`) both readings are the same shape;
    - when the ends differ and both, or neither, equal C (`64x32x64` on a 64-channel spec is
      ambiguous: 64 channels of 32x64 or of 64x32; `1x28x28` on a 3-channel spec is inconsistent),
      it is refused with both readings named, unless the text says its order: `chw:1x28x28`;
    - one size is a flat vector of features.
    """
    from ..units import read_sizes

    order: InputOrder | None = None
    body = str(text).strip()
    prefix, colon, rest = body.partition(":")
    if colon:
        try:
            order = InputOrder(prefix.strip().lower())
        except ValueError:
            raise CnncalcError(
                "malformed --input", received=text, expected="sizes such as 3x224x224, optionally after chw: or hwc:"
            ) from None
        body = rest
    sizes = read_sizes(body, "--input")
    if len(sizes) > 4:
        raise CnncalcError("malformed --input", received=text, expected="1 to 4 positive sizes: 3x224x224 or 224x224x3")
    chw, hwc = sizes, (sizes[-1], *sizes[:-1])
    if order is not None:  # the order written out: taken as written, a new dimensionality too
        return hwc if order is InputOrder.HWC else chw
    channels = spec_shape[0]
    if len(sizes) != len(spec_shape):
        return _other_rank(spec_shape, sizes, text, body.strip())
    if chw == hwc:
        return chw
    if (sizes[0] == channels) != (sizes[-1] == channels):
        return chw if sizes[0] == channels else hwc
    ambiguous = sizes[0] == channels
    readings = f"channels first {_shape_text(chw)}, or channels last {_shape_text(hwc)}"
    order_hint = f"write the order: chw:{body.strip()} (C first) or hwc:{body.strip()} (C last)"
    if ambiguous:
        raise CnncalcError(
            f"--input {text} is ambiguous: both ends are the spec's {channels} channels",
            received=readings,
            hint=order_hint,
        )
    raise CnncalcError(
        f"--input {text} is inconsistent: neither end is the spec's {channels} channels",
        received=readings,
        expected=f"{channels} at one end, as in {_example(spec_shape, sizes)}",
        hint=order_hint + " to change the channel count",
    )


def _other_rank(spec_shape: Shape, sizes: Shape, text: str, body: str) -> Shape:
    """An --input whose number of sizes is not the spec's: the spatial sizes alone (`224x224` for
    a [3, 224, 224] spec) take the spec's channels where no end could be them; anything else is
    refused, so that the dimensionality never changes unannounced."""
    channels, spatial = spec_shape[0], len(spec_shape) - 1
    if len(sizes) == spatial and channels not in (sizes[0], sizes[-1]):
        return (channels, *sizes)
    axes = (
        "a flat vector"
        if spatial == 0
        else f"{channels} channel{'s' if channels != 1 else ''} and {spatial} spatial ax{'es' if spatial > 1 else 'is'}"
    )
    given = f"{len(sizes)} size{'s' if len(sizes) > 1 else ''}"
    own = "x".join(map(str, spec_shape))
    if len(sizes) == spatial:  # spatial sizes only, but one end could be the channels
        message = f"--input {text} is ambiguous: {given}, and the spec's input {own} has {len(spec_shape)}"
        received: str = (
            f"the spatial size {'x'.join(map(str, sizes))} with the spec's {channels} channels, or {_shape_text(sizes)}"
        )
    else:
        message = f"--input {text} has {given}; the spec's input {own} has {len(spec_shape)} ({axes})"
        received = text
    raise CnncalcError(
        message,
        received=received,
        expected=f"{len(spec_shape)} sizes, as in the spec's own {own}",
        hint=f"to change the dimensionality on purpose, write the order: chw:{body} or hwc:{body}",
    )


def _shape_text(shape: Shape) -> str:
    return f"{shape[0]} channel{'s' if shape[0] != 1 else ''} of {'x'.join(map(str, shape[1:]))}"


def _example(spec_shape: Shape, sizes: Shape) -> str:
    spatial = "x".join(map(str, sizes[1:] if len(sizes) > 1 else spec_shape[1:]))
    return f"{spec_shape[0]}x{spatial}" if spatial else str(spec_shape[0])


_RANK_SUFFIX = re.compile(r"([123])d$")


class HasGraph(Protocol):
    """What carries a network without being one: `cnncalc.from_torch`'s ImportedSpec (its `.graph`)."""

    @property
    def graph(self) -> Graph: ...


def network_graph(network: Graph | HasGraph) -> Graph:
    """The Graph itself, or the `.graph` of what carries one (duck-typed: analysis never imports torch)."""
    if isinstance(network, Graph):
        return network
    inner = getattr(network, "graph", None)
    if isinstance(inner, Graph):
        return inner
    raise CnncalcError(
        "cnncalc analyses a network",
        received=type(network).__name__,
        expected="a Graph (cnncalc.load(...)) or an imported model (cnncalc.from_torch(...))",
    )


def analyze(
    graph: Graph | HasGraph,
    *,
    input_shape: Shape | None = None,
    batch: int = 1,
    dtype: DType = DType.FP32,
    strict: bool = False,
    explain: bool = False,
    fields: bool = False,
    depth: int | None = None,
) -> Report:
    """Compute every row of `graph`; raises CnncalcError located at the failing layer.

    `explain` adds each row's working (the formulas with its numbers); `fields` its receptive field;
    `depth` collapses blocks nested deeper than that many names into one row each, as `--depth`
    does (`collapse(report, depth)`), and so does the notebook's display of the result.
    `graph` may be what carries one: `analyze(cnncalc.from_torch(model, (3, 32, 32)))`.
    """
    graph = network_graph(graph)
    if batch < 1:
        raise CnncalcError("batch must be a positive integer", received=batch)
    shape_in = tuple(input_shape) if input_shape is not None else graph.input_shape
    shapes: list[Shape] = []
    rows: list[Row] = []
    warnings: list[FitWarning] = []
    known: dict[tuple[object, ...], tuple] = {}  # `_count` by (type as written, id of the layer, input shapes)
    for node in graph.nodes:
        if node.layer is None:
            shapes.append(shape_in)
            field = Field.of_input(len(shape_in) - 1) if fields else None
            rows.append(Row(INPUT, INPUT, shape_in, math.prod(shape_in), 0, 0, 0, 0, field=field))
            continue
        ins = [shapes[i] for i in node.inputs]
        layer = node.layer
        try:
            # the same layer object on the same input shapes (a spec builds a block's layers once,
            # and uses the block many times) is counted once; the graph keeps every layer alive
            key = (node.written, id(layer), *ins)
            counted = known.get(key)
            if counted is None:
                counted = known[key] = _count(node.written, layer, ins)
            out, activations, weights, biases, buffers, macs, folds, messages = counted
            row = Row(
                node.name,
                node.kind,
                out,
                activations,
                weights,
                biases,
                buffers,
                macs,
                tuple(graph.nodes[i].name for i in node.inputs),
                working=tuple(layer.working(ins, out)) if explain else (),
                field=_field(layer.field_window(ins), [rows[i].field for i in node.inputs]) if fields else None,
                folds=folds,
            )
            warnings.extend(FitWarning(node.name, node.where, message) for message in messages)
        except CnncalcError as err:
            raise err.located(node.where) from None
        shapes.append(out)
        rows.append(row)
    for i in graph.unread():
        node = graph.nodes[i]
        warnings.append(
            FitWarning(
                node.name,
                node.where,
                "nothing reads this layer's output: it runs, but is a dead end (a 'from:' that skipped it?)",
            )
        )
    if strict and warnings:
        raise StrictError(
            f"{len(warnings)} warning(s) (--strict): layers that leave input positions unread (the stride does not "
            "tile the input) or whose output nothing reads",
            where=warnings[0].where,
            received=warnings[0].message,
            hint="fix the padding or stride, or drop --strict to allow it",
        )
    report_rows = tuple(rows)
    del rows, shapes, known  # (a large spec's memory peak is in _totals, below)
    returned = graph.outputs
    keys: tuple[str | None, ...] = returned.keys if returned is not None else (None,)
    outputs = tuple(
        NetworkOutput(key, report_rows[i].name, report_rows[i].output_shape)
        for key, i in zip(keys, graph.output_nodes())
    )
    report = Report(
        graph.name,
        shape_in,
        report_rows,
        _totals(graph, report_rows, batch, dtype),
        tuple(warnings),
        batch,
        dtype,
        graph.containers,
        outputs=outputs,
        returns=returned.kind if returned is not None else OutputKind.TENSOR,
    )
    return report if depth is None else collapse(report, depth)


def _count(written: str, layer: Layer, ins: list[Shape]) -> tuple:
    """What a row of `layer` on inputs of shapes `ins` counts, checked: (output shape, activations,
    weights, biases, buffers, MACs, whether the lecture view folds it, its warnings' messages).
    Layers are frozen, so this depends on nothing else (`analyze` keeps it per layer and shapes)."""
    _check_rank(written, ins[0])
    out = layer.output_shape(ins)
    if out and min(out) < 1:
        raise LayerError(
            "output size is zero or less",
            received=f"output {list(out)} from input {list(ins[0])}",
            expected="positive sizes on every axis",
            hint="check kernel, stride and padding",
        )
    weights, biases, buffers = layer.weights(ins), layer.biases(ins), layer.buffers(ins)
    macs = layer.macs(ins, out)
    folds = _folds(layer, ins, out, bool(weights + biases or buffers or macs))
    return out, math.prod(out), weights, biases, buffers, macs, folds, tuple(layer.fit_warnings(ins))


def _folds(layer: Layer, inputs: Sequence[Shape], output: Shape, counted: bool) -> bool:
    """Whether the lecture view folds this row into the row that made its input: a layer with one
    input and nothing to count (no parameters, buffers or MACs) that is a view of its input
    (flatten, dropout, identity), an element-wise activation, or a window that changes nothing
    (every step a 1-wide window at stride 1 without padding, such as VGG's 7x7 adaptive pooling at 224)."""
    if len(inputs) != 1 or counted:  # `counted`: it has parameters, buffers or MACs
        return False
    if layer.aliases_input or layer.in_place:
        return True
    if output != inputs[0]:
        return False
    steps = layer.field_window(inputs)
    return (
        steps is not None
        and len(steps) > 0
        and all(step == FieldStep(Fraction(1), Fraction(1), Fraction(0)) for step in steps)
    )


def lecture(report: Report) -> Report:
    """The lecture tables' view: rows that `folds` marks are left out (their output is the row
    before them, computed in place or seen through), and the activation totals count the rows
    shown. Parameters and MACs do not change: folded rows have none."""
    rows = tuple(row for i, row in enumerate(report.rows) if i == 0 or not row.folds)
    activations = sum(row.activations for row in rows[1:])
    totals = replace(report.totals, activations=activations, activations_with_input=activations + rows[0].activations)
    shown: dict[str, str] = {}  # each row -> the row shown for it (itself, or the one it folds into)
    for i, row in enumerate(report.rows):
        shown[row.name] = row.name if i == 0 or not row.folds else shown[report.rows[i - 1].name]
    outputs = tuple(replace(o, shown=shown.get(o.layer)) for o in report.outputs)
    return replace(report, rows=rows, totals=totals, style=Style.LECTURE, outputs=outputs)


def _field(steps: list[FieldStep] | None, inputs: Sequence[Field | None]) -> Field:
    """The receptive field after a layer; a merge reads, position for position, every input's
    field (falling back to the widest one where their periods do not line up). A layer with windows
    continues its first input's field (center_crop's `like` input gives only a size)."""
    known = [f for f in (inputs[:1] if steps is not None else inputs) if f is not None]
    if any(f.whole for f in known):
        merged = Field(whole=True)
    elif not all(f.known for f in known):
        merged = Field(known=False)
    elif len(known) == 1:
        merged = known[0]
    else:
        axes = [AxisField.union(group) for group in zip(*(f.axes for f in known))]
        if all(a is not None for a in axes):
            merged = Field(tuple(a for a in axes if a is not None))
        else:
            merged = max(known, key=lambda f: math.prod(f.size))
    return merged if steps is None else merged.step(steps)


def _check_rank(written: str, shape: Shape) -> None:
    """`conv2d` and friends must meet an input with that many spatial axes (`1d` also takes [C])."""
    match = _RANK_SUFFIX.search(written)
    if match is None:
        return
    wanted, rank = int(match.group(1)), len(shape) - 1
    if rank != wanted and not (wanted == 1 and rank == 0):
        raise LayerError(
            f"{written} expects {wanted} spatial axis(es), but its input has {rank}",
            received=f"input of shape {list(shape)}",
            hint=f"write the type without the suffix ({written[:-2]}) to follow the input's rank",
        )


def _recorded(graph: Graph, rows: Sequence[Row]) -> list[bool]:
    """For each node, whether autograd records it in a training step: a layer with parameters, or
    one that reads a recorded one (before the first layer with parameters no gradient flows)."""
    recorded = [False] * len(graph.nodes)
    for i, node in enumerate(graph.nodes):
        if node.layer is not None:
            recorded[i] = rows[i].weights + rows[i].biases > 0 or any(recorded[j] for j in node.inputs)
    return recorded


def _layouts(
    graph: Graph, rows: Sequence[Row], training: bool, batch: int
) -> tuple[MutableSequence[int], list[Strides], list[int]]:
    """For each node: the node whose tensor holds its output (its own, or its input's for a view:
    flatten, permute, identity, crops, pieces, and dropout at inference); the output's strides
    (the whole tensor, batch axis first) as PyTorch lays it out (cnncalc/layers/layout.py); and the
    elements per sample of the storage PyTorch allocates for it (its activations, but for a layer
    whose kernel allocates more: `Layer.allocated`). A view PyTorch cannot make (flatten of a crop
    or of a permute) is a copy: a new tensor, laid out as the type's `layout` says."""
    storage = array("l", range(len(graph.nodes)))  # node indices (MAX_NODES): no int object per node
    strides: list[Strides] = []
    sizes = [row.activations for row in rows]
    recorded = _recorded(graph, rows) if training else [False] * len(graph.nodes)
    by_shape: dict[Shape, Shape] = {}  # one tuple per distinct shape (a long chain repeats a few)
    whole = [
        by_shape.get(row.output_shape) or by_shape.setdefault(row.output_shape, (batch, *row.output_shape))
        for row in rows
    ]
    # (is it a view, its strides, elements allocated) by (id of the layer, recorded, output, inputs
    # with their strides): layers are frozen and a block's recur, as in analyze
    known: dict[tuple[object, ...], tuple[bool, Strides, int]] = {}
    for i, node in enumerate(graph.nodes):
        layer = node.layer
        if layer is None:
            strides.append(layout.contiguous(whole[i]))
            continue
        ins = tuple((whole[j], strides[j]) for j in node.inputs)
        key = (id(layer), recorded[i], whole[i], ins)
        found = known.get(key)
        if found is None:
            view = None
            if layer.aliases_input and not (training and layer.copies_in_training):
                view = layer.view_strides(*ins[0], whole[i])
            if view is not None:
                found = (True, view, 0)
            else:
                new = layout.new_strides(layer.layout_for(ins[0][0]), whole[i], ins, recorded[i])
                found = (False, new, layer.allocated(ins[0][0], rows[i].output_shape))
            known[key] = found
        is_view, out_strides, allocated = found
        strides.append(out_strides)
        if is_view:
            storage[i] = storage[node.inputs[0]]
        else:
            sizes[i] = allocated
    return storage, strides, sizes


def _peak(
    graph: Graph,
    rows: Sequence[Row],
    storage: Sequence[int],
    sizes: Sequence[int],
    saving: Saving | None = None,
    batch: int = 1,
    dtype: DType = DType.FP32,
    held: Mapping[int, int] | None = None,
) -> int:
    """Most activation elements alive at once when the graph runs in order (inference); with the
    `saving` of a training step, most bytes alive at once in its forward pass, at `batch` and
    `dtype`, what the layers keep staying alive to its end (their own saved tensors from the layer
    that makes them). The most of `_live`."""
    return max(_live(graph, rows, storage, sizes, saving, batch, dtype, held, per_node=False)[0])


def _live(
    graph: Graph,
    rows: Sequence[Row],
    storage: Sequence[int],
    sizes: Sequence[int],
    saving: Saving | None = None,
    batch: int = 1,
    dtype: DType = DType.FP32,
    held: Mapping[int, int] | None = None,
    per_node: bool = True,
) -> tuple[list[int], list[tuple[int, int]]]:
    """What is alive while each node runs (as `_peak` counts it): elements (inference) or bytes
    (with `saving`), one number per node (two more, after the last, for the end of the pass); and
    the spans of what holds it, (node that made a tensor, last node it is alive at).

    A tensor (of `sizes` elements per sample) lives from the layer that makes it to the last layer
    that reads it; the input (which the caller holds) and every output the network returns live to
    the end. Views share their input's storage.
    While a layer runs, its `scratch` temporaries live too; `held` adds bytes made by a node that
    live to the end (autocast's cached weight copies, cnncalc/analysis/budget.py).
    `per_node=False` (for `_peak`): no spans, and the one number that is the most (a 100,000-layer
    spec's summary would otherwise hold a span and a total per node at its memory peak).
    """
    n = len(graph.nodes)
    last_use = array("l", range(n))  # node indices (MAX_NODES): no int object per node
    last_use[0] = n
    for i in graph.output_nodes():
        last_use[storage[i]] = n
    for i, node in enumerate(graph.nodes):
        for j in node.inputs:
            if last_use[storage[j]] < i:
                last_use[storage[j]] = i
    size = 1 if saving is None else batch * dtype.bytes  # elements, or bytes
    change = [0] * (n + 2)
    spans: list[tuple[int, int]] = []
    # the storages: each node that holds its own output (a view's storage is an earlier node's)
    for s in set(storage) if per_node else (s for s in range(n) if storage[s] == s):
        end = n if saving is not None and s in saving.kept else last_use[s]
        if per_node:
            spans.append((s, end))
        change[s] += sizes[s] * size
        change[end + 1] -= sizes[s] * size
    if saving is not None:
        for i, (elements, int64, fp32) in saving.own.items():
            change[i] += elements * size + 8 * batch * int64 + 4 * fp32
            if per_node:
                spans.append((i, n))  # a layer's own saved tensors stay to the end
    for i, extra in (held or {}).items():
        change[i] += extra
        if per_node:
            spans.append((i, n))
    scratch = [0] * (n + 2)
    known: dict[tuple[object, ...], int] = {}  # by (id of the layer, output and input shapes), as in analyze
    for i, node in enumerate(graph.nodes):
        if node.layer is not None and type(node.layer).scratch is not Layer.scratch:  # most have none
            ins = [rows[j].output_shape for j in node.inputs]
            key = (id(node.layer), rows[i].output_shape, *ins)
            temporaries = known.get(key)
            if temporaries is None:
                temporaries = known[key] = node.layer.scratch(ins, rows[i].output_shape)
            scratch[i] = temporaries * size
    totals: list[int] = []
    live = most = 0
    for delta, extra in zip(change, scratch):
        live += delta
        if per_node:
            totals.append(live + extra)
        elif live + extra > most:
            most = live + extra
    return (totals, spans) if per_node else ([most], spans)


@record
class Saving:
    """What a training step keeps for backward: the storages some layer keeps (by the node that
    holds each), and by node, the tensors a layer saves of its own (activation elements,
    int64 elements, fp32 elements per batch)."""

    kept: frozenset[int]
    own: Mapping[int, tuple[int, int, int]]


def _saving(
    graph: Graph, rows: Sequence[Row], batch: int, only: Callable[[int], bool] | None = None
) -> tuple[Saving, MutableSequence[int], list[int]]:
    """What a training step keeps for backward, and the storage of each output in training and its
    size (as `_layouts`): every tensor some layer keeps, once, plus the layers' own saved tensors.
    The input is left out (the caller holds it anyway). Layers autograd does not record keep
    nothing (`_recorded`), nor do the nodes `only` leaves out (activation checkpointing)."""
    storage, strides, sizes = _layouts(graph, rows, training=True, batch=batch)
    # the storages kept: one flag per node, then their set (a set grown node by node, then its
    # frozen copy, was a large spec's memory peak)
    kept = bytearray(len(graph.nodes))
    own: dict[int, tuple[int, int, int]] = {}
    needs_grad = _recorded(graph, rows)
    known: dict[tuple[object, ...], Saved] = {}  # `saved` by (id of the layer, output and input shapes)
    for i, node in enumerate(graph.nodes):
        if node.layer is None or not needs_grad[i] or (only is not None and not only(i)):
            continue
        ins = [rows[j].output_shape for j in node.inputs]
        steps = [strides[j] for j in node.inputs]
        key = (id(node.layer), rows[i].output_shape, *ins, *steps)  # as in analyze: a block's layers recur
        saved = known.get(key)
        if saved is None:
            saved = known[key] = node.layer.saved_for(ins, rows[i].output_shape, steps)
        elements = saved.elements
        if saved.input:
            for n, j in enumerate(node.inputs):
                if saved.kept_inputs is not None and n not in saved.kept_inputs:
                    continue
                if node.layer.keeps_a_copy((batch, *rows[j].output_shape), strides[j]):
                    elements += rows[j].activations  # its own contiguous copy
                else:
                    kept[storage[j]] = 1
        if saved.inputs_for_partners:
            for n, j in enumerate(node.inputs):
                if any(needs_grad[k] for m, k in enumerate(node.inputs) if m != n):
                    kept[storage[j]] = 1
        if saved.output:
            kept[storage[i]] = 1
        if elements or saved.int64 or saved.fp32_per_batch:
            own[i] = (elements, saved.int64, saved.fp32_per_batch)
    kept[0] = 0  # the input: the caller holds it anyway
    return Saving(frozenset(compress(range(len(kept)), kept)), own), storage, sizes


def _totals(graph: Graph, rows: Sequence[Row], batch: int, dtype: DType) -> Totals:
    layers = range(1, len(rows))  # every row but the input (indices: no copy of a large spec's rows)
    weights = sum(rows[i].weights for i in layers)
    biases = sum(rows[i].biases for i in layers)
    macs = sum(rows[i].macs for i in layers)
    activations = sum(rows[i].activations for i in layers)
    saving, training_storage, training_sizes = _saving(graph, rows, batch)
    saved = sum(e for e, _, _ in saving.own.values()) + sum(training_sizes[s] for s in saving.kept)
    held = _autocast_held(graph, rows, batch, dtype)
    # the training lists dropped before the inference ones are made (a large spec's memory peak)
    training_peak = _peak(graph, rows, training_storage, training_sizes, saving, batch, dtype, held)
    del training_storage, training_sizes
    storage, _, sizes = _layouts(graph, rows, training=False, batch=batch)
    cast = _autocast(graph, rows)
    return Totals(
        weights=weights,
        biases=biases,
        params=weights + biases,
        buffers=sum(rows[i].buffers for i in layers),
        activations=activations,
        activations_with_input=activations + rows[0].activations,
        macs=macs,
        flops=2 * macs,
        peak_activations=_peak(graph, rows, storage, sizes),
        saved_activations=saved,
        saved_int64=sum(n for _, n, _ in saving.own.values()),
        saved_fp32_per_batch=sum(n for _, _, n in saving.own.values()),
        training_forward_peak_bytes=training_peak,
        stored_activations=sum(sizes[s] for s in range(1, len(storage)) if storage[s] == s),  # each storage once
        autocast_weights=sum(w + b for w, b, _ in cast.values()),
        autocast_input_copies=sum(reads_input for _, _, reads_input in cast.values()),
    )


def _autocast_held(graph: Graph, rows: Sequence[Row], batch: int, dtype: DType) -> dict[int, int] | None:
    """Under fp16/bf16 autocast, the bytes each node adds that live to the end of a training step's
    forward pass: the cache's 16-bit copies of its weights, and a conv's kept 16-bit copy of the input."""
    if dtype not in (DType.FP16, DType.BF16):
        return None
    return {
        i: 2 * (w + b) + 2 * batch * rows[0].activations * reads for i, (w, b, reads) in _autocast(graph, rows).items()
    }


def _autocast(graph: Graph, rows: Sequence[Row]) -> dict[int, tuple[int, int, int]]:
    """The nodes autocast runs in 16 bits with 16-bit copies of their weights (`Layer.autocast`),
    by node: (weights, biases, how many times it reads the network's fp32 input, whose 16-bit copy
    it keeps for its weight gradient)."""
    return {
        i: (rows[i].weights, rows[i].biases, node.inputs.count(0))
        for i, node in enumerate(graph.nodes)
        if node.layer is not None and node.layer.autocast and rows[i].weights
    }


def predicted_memory(report: Report, train: bool) -> int:
    """Bytes a run of the model should peak at, per docs/conventions.md: a training step with SGD
    and momentum, nothing reserved, nothing recomputed. `cnncalc.analysis.budget.memory_budget` gives the
    same prediction by part, for any optimizer, with a reserve and activation checkpointing."""
    from .budget import memory_budget  # the budget module builds on this one

    return memory_budget(report, train).total_bytes


@record
class MemoryTimeline:
    """The bytes a run holds while each row runs (`rows`, the graph's nodes in order), as
    `predicted_memory` counts them: parameters and buffers (fp32) plus the live activations at the
    report's batch and dtype. `inference` per row; `training` per row of a training step's forward
    pass (momentum too), then `backward`, its backward pass. Each peak is `predicted_memory`'s;
    `*_holders` name the rows whose tensors are alive at it."""

    rows: tuple[str, ...]
    inference: tuple[int, ...]
    training: tuple[int, ...]
    backward: int
    inference_holders: tuple[str, ...]
    training_holders: tuple[str, ...]
    inference_base: int
    training_base: int


def memory_timeline(graph: Graph, report: Report) -> MemoryTimeline:
    """`report`'s (`analyze(graph)`, not folded or collapsed) memory row by row."""
    rows = report.rows
    if len(rows) != len(graph.nodes):
        raise CnncalcError(
            "memory_timeline needs the report of the whole graph (not collapsed or folded)",
            received=f"{len(rows)} rows for {len(graph.nodes)} nodes",
        )
    from .budget import memory_budget  # the budget module builds on this one

    t = report.totals
    fixed = (t.params + t.buffers) * 4
    n = len(rows)
    # under autocast the input is fp32 (the peaks count it at the activation dtype), as memory_budget says
    extra = memory_budget(report, False).input_bytes - report.bytes_of(rows[0].activations)
    storage, _, sizes = _layouts(graph, rows, training=False, batch=report.batch)
    live, spans = _live(graph, rows, storage, sizes)
    inference = [fixed + report.bytes_of(e) + extra for e in live[:n]]
    saving, train_storage, train_sizes = _saving(graph, rows, report.batch)
    held = _autocast_held(graph, rows, report.batch, report.dtype)
    train_live, train_spans = _live(graph, rows, train_storage, train_sizes, saving, report.batch, report.dtype, held)
    training = [fixed + t.params * 4 + b + extra for b in train_live[:n]]  # momentum; no gradients yet
    copies = 2 * report.batch * rows[0].activations * t.autocast_input_copies if held is not None else 0
    backward = fixed + 2 * t.params * 4 + report.bytes_of(rows[0].activations) + extra + report.saved_bytes + copies

    def holders(series: Sequence[int], held: Sequence[tuple[int, int]]) -> tuple[str, ...]:
        at = max(range(n), key=lambda i: series[i])
        return tuple(rows[s].name for s, end in sorted(set(held)) if s <= at <= end)

    return MemoryTimeline(
        tuple(r.name for r in rows),
        tuple(inference),
        tuple(training),
        backward,
        holders(inference, spans),
        holders(training, train_spans),
        fixed,
        fixed + t.params * 4,
    )


def collapse(report: Report, depth: int) -> Report:
    """Rows for blocks at most `depth` names deep: deeper layers are summed into their block's row.

    A block row's shape is that of its last layer; its activations, parameters and MACs are the
    sums of its layers, so rows still add up to the totals.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise CnncalcError("depth must be a positive integer", received=depth, expected="1, 2, ... (names deep)")
    containers = report.containers or {}
    rows: list[Row] = []
    for name, members in groups([row.name for row in report.rows], depth):
        first = report.rows[members[0]]
        if name == first.name:  # a row no deeper than `depth` stands alone
            rows.append(first)
            continue
        inner = [report.rows[i] for i in members]
        rows.append(
            replace(
                first,
                name=name,
                type=containers.get(name, "group"),
                leaves=len(inner),
                working=(),
                output_shape=inner[-1].output_shape,
                field=inner[-1].field,
                activations=sum(r.activations for r in inner),
                weights=sum(r.weights for r in inner),
                biases=sum(r.biases for r in inner),
                buffers=sum(r.buffers for r in inner),
                macs=sum(r.macs for r in inner),
            )
        )
    return replace(report, rows=tuple(rows))


def groups(names: Sequence[str], depth: int) -> list[tuple[str, list[int]]]:
    """The rows `collapse` makes, as (name, indices of the rows it sums): a run of consecutive rows
    under one block `depth` names deep is one group; shallower rows stand alone."""
    if depth < 1:
        raise CnncalcError("depth must be at least 1", received=depth)
    result: list[tuple[str, list[int]]] = []
    open_group: str | None = None  # the block of result[-1], while its layers keep coming
    for i, name in enumerate(names):
        parts = name.split(".")
        if len(parts) <= depth:
            result.append((name, [i]))
            open_group = None
        elif open_group == ".".join(parts[:depth]):
            result[-1][1].append(i)
        else:
            open_group = ".".join(parts[:depth])
            result.append((open_group, [i]))
    return result
