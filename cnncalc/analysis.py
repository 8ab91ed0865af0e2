"""Per-layer numbers of a graph: output shape, weights, biases, buffers, activations, MACs.

Layer types answer what varies by type; everything else (activation counts, bytes, totals,
the peak of live activations, collapsing blocks into one row) is derived here, generically.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from enum import Enum
from fractions import Fraction
from typing import Mapping, Sequence

from .errors import CnncalcError, LayerError, StrictError, Where
from .graph import INPUT, Graph
from .layers import FieldStep, Shape


class DType(str, Enum):
    """Element types for byte counts; the value is how users spell it."""

    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    FP64 = "fp64"
    INT8 = "int8"

    @property
    def bytes(self) -> int:
        return {"fp32": 4, "fp16": 2, "bf16": 2, "fp64": 8, "int8": 1}[self.value]


@dataclass(frozen=True)
class Field:
    """Receptive field of one row, per spatial axis, in input pixels (the standard recurrences).

    `size`: input pixels that can reach one output position; `jump`: the input distance between
    neighbouring outputs (the effective stride); `start`: where the first output's field is
    centred, in input coordinates (0 = the centre of the first pixel; negative reaches into padding).
    `whole` marks rows that see the whole input (after flatten or linear).
    """

    size: tuple[Fraction, ...] = ()
    jump: tuple[Fraction, ...] = ()
    start: tuple[Fraction, ...] = ()
    whole: bool = False

    def step(self, steps: Sequence[FieldStep]) -> "Field":
        if self.whole or not steps:
            return Field(whole=True)
        # r' = r + (k - 1) j;  j' = j s;  start' = start + ((k - 1)/2 - p) j
        return Field(
            tuple(r + (st.kernel - 1) * j for r, j, st in zip(self.size, self.jump, steps)),
            tuple(j * st.stride for j, st in zip(self.jump, steps)),
            tuple(c + ((st.kernel - 1) / 2 - st.pad) * j for c, j, st in zip(self.start, self.jump, steps)),
        )


@dataclass(frozen=True)
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

    @property
    def params(self) -> int:
        return self.weights + self.biases

    @property
    def flops(self) -> int:
        return 2 * self.macs


@dataclass(frozen=True)
class FitWarning:
    """A layer whose stride does not tile its input: legal, but part of the input is never read."""

    layer: str
    where: Where
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class Totals:
    weights: int
    biases: int
    params: int
    buffers: int
    activations: int  # sum over layers, input excluded
    activations_with_input: int
    macs: int
    flops: int
    peak_activations: int  # most elements alive at once during inference, the input included
    saved_activations: int = 0  # elements a training step keeps for backward (input excluded)
    saved_int64: int = 0  # int64 elements kept for backward (max pooling's indices)
    saved_fp32_per_batch: int = 0  # fp32 elements kept per batch, whatever its size (batch norm's statistics)


@dataclass(frozen=True)
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
        from .render import notebook

        return notebook.to_dict(self)

    def to_markdown(self) -> str:
        """The `cnncalc summary` table in Markdown, with its totals lines."""
        from .render import notebook

        return notebook.to_markdown(self)

    def to_pandas(self) -> object:  # a pandas.DataFrame
        """A pandas DataFrame, one row per layer; MissingExtraError without pandas."""
        from .render import notebook

        return notebook.to_pandas(self)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        from .render import notebook

        return notebook.to_html(self)


_RANK_SUFFIX = re.compile(r"([123])d$")


def analyze(
    graph: Graph,
    *,
    input_shape: Shape | None = None,
    batch: int = 1,
    dtype: DType = DType.FP32,
    strict: bool = False,
    explain: bool = False,
    fields: bool = False,
) -> Report:
    """Compute every row of `graph`; raises CnncalcError located at the failing layer.

    `explain` adds each row's working (the formulas with its numbers); `fields` its receptive field.
    """
    if batch < 1:
        raise CnncalcError("batch must be a positive integer", received=batch)
    shape_in = tuple(input_shape) if input_shape is not None else graph.input_shape
    shapes: list[Shape] = []
    rows: list[Row] = []
    warnings: list[FitWarning] = []
    for node in graph.nodes:
        if node.layer is None:
            shapes.append(shape_in)
            field = Field((Fraction(1),) * (len(shape_in) - 1), (Fraction(1),) * (len(shape_in) - 1),
                          (Fraction(0),) * (len(shape_in) - 1)) if fields else None  # fmt: skip
            rows.append(Row(INPUT, INPUT, shape_in, math.prod(shape_in), 0, 0, 0, 0, field=field))
            continue
        ins = [shapes[i] for i in node.inputs]
        try:
            _check_rank(node.written, ins[0])
            layer = node.layer
            out = layer.output_shape(ins)
            if any(size < 1 for size in out):
                raise LayerError("output size is zero or less", received=f"output {list(out)} from input {list(ins[0])}",
                                 expected="positive sizes on every axis", hint="check kernel, stride and padding")  # fmt: skip
            row = Row(
                node.name,
                node.kind,
                out,
                math.prod(out),
                layer.weights(ins),
                layer.biases(ins),
                layer.buffers(ins),
                layer.macs(ins, out),
                tuple(graph.nodes[i].name for i in node.inputs),
                working=tuple(layer.working(ins, out)) if explain else (),
                field=_field(layer.field_window(ins), [rows[i].field for i in node.inputs]) if fields else None,
            )
            warnings.extend(FitWarning(node.name, node.where, message) for message in layer.fit_warnings(ins))
        except CnncalcError as err:
            raise err.located(node.where) from None
        shapes.append(out)
        rows.append(row)
    if strict and warnings:
        raise StrictError(
            f"{len(warnings)} layer(s) do not tile their input exactly (--strict)",
            where=warnings[0].where,
            received=warnings[0].message,
            hint="fix the padding or stride, or drop --strict to allow it",
        )
    report_rows = tuple(rows)
    return Report(graph.name, shape_in, report_rows, _totals(graph, report_rows), tuple(warnings), batch, dtype,
                  graph.containers)  # fmt: skip


def _field(steps: list[FieldStep] | None, inputs: Sequence[Field | None]) -> Field:
    """The receptive field after a layer; a merge continues from its input with the largest field."""
    if steps is not None:  # windows over the first input (center_crop's `like` input gives only a size)
        return inputs[0].step(steps)  # type: ignore[union-attr]
    known = [f for f in inputs if f is not None]
    return max(known, key=lambda f: (f.whole, math.prod(f.size)))


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


def _storage(graph: Graph, rows: Sequence[Row], training: bool) -> list[int]:
    """For each node, the node whose tensor holds its output: its own, or its input's for a view
    (flatten, identity, crops, and dropout at inference). A flatten of a view whose channels and
    positions do not read as one axis with one step (most crops) cannot be a view: PyTorch copies."""
    storage = list(range(len(graph.nodes)))
    strides: list[tuple[int, ...]] = []  # of each output's axes, in elements of its storage
    for i, node in enumerate(graph.nodes):
        shape = rows[i].output_shape
        strides.append(tuple(math.prod(shape[k + 1 :]) for k in range(len(shape))))
        layer = node.layer
        if layer is None or not layer.aliases_input or (training and layer.copies_in_training):
            continue
        j = node.inputs[0]
        if layer.needs_dense_input:
            if not _one_axis(rows[j].output_shape, strides[j]):
                continue  # a copy
        else:
            strides[i] = strides[j]  # a slice or the same tensor: the input's steps
        storage[i] = storage[j]
    return storage


def _one_axis(shape: Shape, strides: Sequence[int]) -> bool:
    """Whether a view's axes read as one: each axis longer than 1 steps over the next such one."""
    axes = [k for k, n in enumerate(shape) if n > 1]
    return all(strides[k] == strides[m] * shape[m] for k, m in zip(axes, axes[1:]))


def _peak(graph: Graph, rows: Sequence[Row]) -> int:
    """Most activation elements alive at once when the graph runs in order (inference).

    A tensor lives from the layer that makes it to the last layer that reads it; the input (which
    the caller holds) and the final output live to the end. Views share their input's storage.
    While a layer runs, its `scratch` temporaries live too.
    """
    n = len(graph.nodes)
    storage = _storage(graph, rows, training=False)
    last_use = list(range(n))
    last_use[storage[n - 1]] = last_use[0] = n
    for i, node in enumerate(graph.nodes):
        for j in node.inputs:
            last_use[storage[j]] = max(last_use[storage[j]], i)
    change = [0] * (n + 2)
    for s in set(storage):
        change[s] += rows[s].activations
        change[last_use[s] + 1] -= rows[s].activations
    scratch = [0] * (n + 2)
    for i, node in enumerate(graph.nodes):
        if node.layer is not None:
            scratch[i] = node.layer.scratch([rows[j].output_shape for j in node.inputs], rows[i].output_shape)
    peak = live = 0
    for delta, extra in zip(change, scratch):
        live += delta
        peak = max(peak, live + extra)
    return peak


def _saved(graph: Graph, rows: Sequence[Row]) -> tuple[int, int, int]:
    """(activation elements, int64 elements, fp32 elements per batch) a training step keeps for
    backward: every tensor some layer keeps, once, plus the layers' own saved tensors. The input
    is left out (the caller holds it anyway). Layers before the first one with parameters keep
    nothing: no gradient flows there, so autograd does not record them."""
    storage = _storage(graph, rows, training=True)
    kept: set[int] = set()
    elements = int64 = fp32 = 0
    needs_grad = [False] * len(graph.nodes)
    for i, node in enumerate(graph.nodes):
        if node.layer is None:
            continue
        needs_grad[i] = rows[i].weights + rows[i].biases > 0 or any(needs_grad[j] for j in node.inputs)
        if not needs_grad[i]:
            continue
        saved = node.layer.saved([rows[j].output_shape for j in node.inputs], rows[i].output_shape)
        if saved.input:
            kept.update(storage[j] for j in node.inputs)
        if saved.inputs_for_partners:
            kept.update(storage[j] for n, j in enumerate(node.inputs) if any(needs_grad[k] for m, k in enumerate(node.inputs) if m != n))
        if saved.output:
            kept.add(storage[i])
        elements += saved.elements
        int64 += saved.int64
        fp32 += saved.fp32_per_batch
    kept.discard(0)
    return elements + sum(rows[s].activations for s in kept), int64, fp32


def _totals(graph: Graph, rows: Sequence[Row]) -> Totals:
    layers = rows[1:]
    weights = sum(r.weights for r in layers)
    biases = sum(r.biases for r in layers)
    macs = sum(r.macs for r in layers)
    activations = sum(r.activations for r in layers)
    saved, int64, fp32 = _saved(graph, rows)
    return Totals(
        weights=weights,
        biases=biases,
        params=weights + biases,
        buffers=sum(r.buffers for r in layers),
        activations=activations,
        activations_with_input=activations + rows[0].activations,
        macs=macs,
        flops=2 * macs,
        peak_activations=_peak(graph, rows),
        saved_activations=saved,
        saved_int64=int64,
        saved_fp32_per_batch=fp32,
    )


def predicted_memory(report: Report, train: bool) -> int:
    """Bytes a run of the model should peak at, per docs/conventions.md: parameters and buffers
    (fp32), plus for inference the peak of live activations (the input included); for a training
    step (SGD with momentum) also the gradients and momentum (2 x parameters), the input and
    everything the layers keep for backward. Activations are counted at the report's dtype (under
    fp16/bf16 autocast, 2 bytes), weights at fp32."""
    t = report.totals
    memory = (t.params + t.buffers) * 4
    if not train:
        return memory + report.bytes_of(t.peak_activations)
    return memory + 2 * t.params * 4 + report.bytes_of(report.rows[0].activations) + report.saved_bytes


def collapse(report: Report, depth: int) -> Report:
    """Rows for blocks at most `depth` names deep: deeper layers are summed into their block's row.

    A block row's shape is that of its last layer; its activations, parameters and MACs are the
    sums of its layers, so rows still add up to the totals.
    """
    containers = report.containers or {}
    rows: list[Row] = []
    for name, members in groups([row.name for row in report.rows], depth):
        first = report.rows[members[0]]
        if name == first.name:  # a row no deeper than `depth` stands alone
            rows.append(first)
            continue
        inner = [report.rows[i] for i in members]
        rows.append(replace(
            first, name=name, type=containers.get(name, "group"), leaves=len(inner), working=(),
            output_shape=inner[-1].output_shape, field=inner[-1].field,
            activations=sum(r.activations for r in inner), weights=sum(r.weights for r in inner),
            biases=sum(r.biases for r in inner), buffers=sum(r.buffers for r in inner), macs=sum(r.macs for r in inner),
        ))  # fmt: skip
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
