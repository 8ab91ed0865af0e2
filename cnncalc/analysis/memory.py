"""Memory of a run: storages and views, what training keeps, the peaks and the timeline."""

from __future__ import annotations

from array import array
from itertools import compress
from typing import Callable, Mapping, MutableSequence, Sequence

from ..graph import Graph
from ..layers import Layer, Saved, Shape, layout
from ..layers.layout import Strides
from ..records import record
from .report import DType, Row, Totals


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
            change[i] += elements * size + 8 * batch * int64 + dtype.weight_bytes * fp32
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
            saved = known[key] = node.layer.saved_for(ins, rows[i].output_shape, steps, batch)
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
