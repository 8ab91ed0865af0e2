"""`analyze`: the rows of a graph, each layer counted once per layer and input shapes."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Protocol, Sequence

from ..errors import CnncalcError, LayerError, StrictError
from ..graph import INPUT, Graph, OutputKind
from ..layers import FieldStep, Layer, Shape
from .field import Field, _field
from .memory import _totals
from .report import DType, FitWarning, NetworkOutput, Report, Row
from .views import collapse

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
    known: dict[tuple[object, ...], _Counted] = {}  # `_count` by (type as written, id of the layer, input shapes)
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


# what `_count` returns: output shape, activations, weights, biases, buffers, MACs, folds, warnings
_Counted = tuple[Shape, int, int, int, int, int, bool, tuple[str, ...]]


def _count(written: str, layer: Layer, ins: list[Shape]) -> _Counted:
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
