"""Memory of a run: storages and views, what training keeps, the peaks and the timeline."""

from __future__ import annotations

from array import array
from itertools import accumulate, compress
from operator import add, attrgetter, eq
from typing import Callable, Iterator, Mapping, MutableSequence, Sequence

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
    graph: Graph, rows: Sequence[Row], training: bool, batch: int, recorded: Sequence[bool] | None = None
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
    if recorded is None:  # (`_saving` has it already)
        recorded = _recorded(graph, rows) if training else [False] * len(graph.nodes)
    by_shape: dict[Shape, Shape] = {}  # one tuple per distinct shape (a long chain repeats a few)
    whole = [
        by_shape.get(row.output_shape) or by_shape.setdefault(row.output_shape, (batch, *row.output_shape))
        for row in rows
    ]
    # (is it a view, its strides, elements allocated) by (id of the layer, recorded, output, inputs
    # with their strides): layers are frozen and a block's recur, as in analyze. The shapes and
    # strides are keyed by identity (each list holds them to the end): a chain's repeat the same
    # few objects, and a tuple's hash is not kept, but worked out again on every look-up
    known: dict[tuple[object, ...], tuple[bool, Strides, int]] = {}
    canonical: dict[Strides, Strides] = {}  # one object per value of strides, for `known`'s keys
    # by layer: the objects it last ran on, and what it gave
    seen: dict[int, tuple[Shape, Shape, Strides, bool, bool, tuple[bool, Strides, int]]] = {}
    for i, node in enumerate(graph.nodes):
        layer = node.layer
        if layer is None:
            contiguous = layout.contiguous(whole[i])
            strides.append(canonical.setdefault(contiguous, contiguous))
            continue
        inputs = node.inputs
        found: tuple[bool, Strides, int] | None = None
        if len(inputs) == 1:
            j = inputs[0]
            # first, what this layer gave the last time it ran, where it runs on the same objects
            # again (a chain's repeat): no key to build, nor a tuple to hash
            last = seen.get(id(layer))
            if (
                last is not None
                and last[0] is whole[i]
                and last[1] is whole[j]
                and last[2] is strides[j]
                and last[3] is recorded[i]
                and last[4] is recorded[j]
            ):
                found = last[5]
            else:
                last = None
                key: tuple[object, ...] = (
                    id(layer),
                    recorded[i],
                    id(whole[i]),
                    id(whole[j]),
                    id(strides[j]),
                    recorded[j],
                )
                found = known.get(key)
        else:
            key = (id(layer), recorded[i], id(whole[i]), *[id(x) for j in inputs for x in (whole[j], strides[j])])
            key += tuple([recorded[j] for j in inputs])  # whether each input needs a gradient (attention)
            found = known.get(key)
        if found is None:
            ins = tuple((whole[j], strides[j]) for j in inputs)
            view = None
            if layer.aliases_input and not (training and layer.copies_in_training):
                view = layer.view_strides(*ins[0], whole[i])
            if view is not None:
                found = (True, canonical.setdefault(view, view), 0)
            else:
                grads = tuple(recorded[j] for j in inputs)
                new = layer.output_strides(whole[i], ins, grads) or layout.new_strides(
                    layer.layout_for(ins[0][0]), whole[i], ins, recorded[i]
                )
                found = (False, canonical.setdefault(new, new), layer.allocated(ins[0][0], rows[i].output_shape))
            known[key] = found
        if len(inputs) == 1 and last is None:  # (not found the first way)
            j = inputs[0]
            seen[id(layer)] = (whole[i], whole[j], strides[j], recorded[i], recorded[j], found)
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
    size = 1 if saving is None else batch * dtype.bytes  # elements, or bytes
    last_use = array("l", range(n))  # node indices (MAX_NODES): no int object per node
    extras: list[int] | None = None  # by node, its temporaries (elements, or bytes), where any has some
    # by layer, the shapes it last ran on (the objects, which the rows hold) and its temporaries
    # there: a block's layers recur on the same shapes, and a look-up by a tuple of the shapes (whose
    # hash is worked out again each time) was most of this pass for a chain of 100,000 convolutions
    seen: dict[int, tuple[Shape, Shape, int]] = {}
    no_scratch = Layer.scratch
    for i, node in enumerate(graph.nodes):
        # a storage's readers come in order (each reads earlier nodes): the last one written stays
        inputs = node.inputs
        for j in inputs:
            last_use[storage[j]] = i
        layer = node.layer
        if layer is not None and type(layer).scratch is not no_scratch:
            out = rows[i].output_shape
            if len(inputs) == 1:
                only = rows[inputs[0]].output_shape
                last = seen.get(id(layer))
                if last is not None and last[0] is out and last[1] is only:
                    temporaries = last[2]
                else:
                    temporaries = layer.scratch([only], out)
                    seen[id(layer)] = (out, only, temporaries)
            else:  # worked out each time: few layers of several inputs have temporaries
                temporaries = layer.scratch([rows[j].output_shape for j in inputs], out)
            if temporaries:
                if extras is None:
                    extras = [0] * (n + 2)
                extras[i] = temporaries * size
    last_use[0] = n
    for i in graph.output_nodes():
        last_use[storage[i]] = n
    change = [0] * (n + 2)
    spans: list[tuple[int, int]] = []
    # the storages: each node that holds its own output (a view's storage is an earlier node's)
    kept = saving.kept if saving is not None else frozenset()
    for s in set(storage) if per_node else compress(range(n), map(eq, storage, range(n))):
        end = n if s in kept else last_use[s]
        if per_node:
            spans.append((s, end))
        held_bytes = sizes[s] * size
        change[s] += held_bytes
        change[end + 1] -= held_bytes
    if saving is not None:
        for i, (elements, int64, fp32) in saving.own.items():
            change[i] += elements * size + 8 * batch * int64 + dtype.weight_bytes * fp32
            if per_node:
                spans.append((i, n))  # a layer's own saved tensors stay to the end
    for i, extra in (held or {}).items():
        change[i] += extra
        if per_node:
            spans.append((i, n))
    # what is alive after each change, running sums in C; a node's scratch lives while it runs
    live: Iterator[int] = accumulate(change)
    if extras is not None:
        live = map(add, live, extras)
    return (list(live), spans) if per_node else ([max(live)], spans)


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
    needs_grad = _recorded(graph, rows)
    storage, strides, sizes = _layouts(graph, rows, training=True, batch=batch, recorded=needs_grad)
    # the storages kept: one flag per node, then their set (a set grown node by node, then its
    # frozen copy, was a large spec's memory peak)
    kept = bytearray(len(graph.nodes))
    own: dict[int, tuple[int, int, int]] = {}
    # `saved`, and for each input whether the layer keeps a copy of it, by (id of the layer, of
    # the output and input shapes, of the inputs' strides): as in analyze, a block's layers recur,
    # and as in `_layouts`, by identity (the rows and `strides` hold them)
    known: dict[tuple[object, ...], tuple[Saved, tuple[bool, ...]]] = {}
    # by layer: the objects it last ran on, and what it gave
    seen: dict[int, tuple[Shape, Shape, Strides, bool, tuple[Saved, tuple[bool, ...]]]] = {}
    for i, node in enumerate(graph.nodes):
        layer = node.layer
        if layer is None or not needs_grad[i] or (only is not None and not only(i)):
            continue
        inputs = node.inputs
        found: tuple[Saved, tuple[bool, ...]] | None = None
        last = None
        if len(inputs) == 1:  # most rows
            j = inputs[0]
            out, shape, step, grad = rows[i].output_shape, rows[j].output_shape, strides[j], needs_grad[j]
            # what this layer gave the last time it ran on the same objects (as in `_layouts`)
            last = seen.get(id(layer))
            if last is not None and last[0] is out and last[1] is shape and last[2] is step and last[3] is grad:
                found = last[4]
            else:
                last = None
                key: tuple[object, ...] = (id(layer), id(out), id(shape), id(step), grad)
                found = known.get(key)
        else:
            key = (id(layer), id(rows[i].output_shape), *[id(rows[j].output_shape) for j in inputs])
            key += tuple([id(strides[j]) for j in inputs])
            key += tuple([needs_grad[j] for j in inputs])  # which inputs need a gradient (attention's mask)
            found = known.get(key)
        if found is None:
            ins = [rows[j].output_shape for j in inputs]
            steps = [strides[j] for j in inputs]
            saved = layer.saved_for(ins, rows[i].output_shape, steps, batch, [needs_grad[j] for j in inputs])
            copies = tuple(
                saved.input
                and (saved.kept_inputs is None or n in saved.kept_inputs)
                and layer.keeps_a_copy((batch, *shape), step)
                for n, (shape, step) in enumerate(zip(ins, steps))
            )
            found = known[key] = (saved, copies)
        if len(inputs) == 1 and last is None:  # (not found the first way)
            seen[id(layer)] = (out, shape, step, grad, found)
        saved, copies = found
        elements = saved.elements
        if saved.input:
            for n, j in enumerate(inputs):
                if saved.kept_inputs is not None and n not in saved.kept_inputs:
                    continue
                if copies[n]:
                    elements += rows[j].activations  # its own contiguous copy
                else:
                    kept[storage[j]] = 1
        if saved.inputs_for_partners:
            for n, j in enumerate(node.inputs):
                if any(needs_grad[k] for m, k in enumerate(node.inputs) if m != n):
                    if layer.keeps_a_copy((batch, *rows[j].output_shape), strides[j]):
                        elements += rows[j].activations  # what it keeps is a copy (matmul's reshape)
                    else:
                        kept[storage[j]] = 1
        if saved.output:
            kept[storage[i]] = 1
        if elements or saved.int64 or saved.fp32_per_batch:
            own[i] = (elements, saved.int64, saved.fp32_per_batch)
    kept[0] = 0  # the input: the caller holds it anyway
    return Saving(frozenset(compress(range(len(kept)), kept)), own), storage, sizes


def _totals(graph: Graph, rows: Sequence[Row], batch: int, dtype: DType) -> Totals:
    # every row but the input (rows[0]), summed in C: no copy of a large spec's rows
    weights = sum(map(attrgetter("weights"), rows)) - rows[0].weights
    biases = sum(map(attrgetter("biases"), rows)) - rows[0].biases
    macs = sum(map(attrgetter("macs"), rows)) - rows[0].macs
    activations = sum(map(attrgetter("activations"), rows)) - rows[0].activations
    saving, training_storage, training_sizes = _saving(graph, rows, batch)
    saved = sum(e for e, _, _ in saving.own.values()) + sum(training_sizes[s] for s in saving.kept)
    saved_int64 = sum(n for _, n, _ in saving.own.values())
    saved_fp32_per_batch = sum(n for _, _, n in saving.own.values())
    held = _autocast_held(graph, rows, batch, dtype)
    training_peak = _peak(graph, rows, training_storage, training_sizes, saving, batch, dtype, held)
    # what the training step keeps dropped before the inference lists are made (a large spec's
    # memory peak): nothing of it is alive at once with them
    del training_storage, training_sizes, saving, held
    storage, _, sizes = _layouts(graph, rows, training=False, batch=batch)
    # `_autocast`'s sums, without its one entry per conv or linear row
    autocast_weights = autocast_input_copies = 0
    for node, row in zip(graph.nodes, rows):
        if node.layer is not None and node.layer.autocast and row.weights:
            autocast_weights += row.weights + row.biases
            autocast_input_copies += node.inputs.count(0)
    return Totals(
        weights=weights,
        biases=biases,
        params=weights + biases,
        buffers=sum(map(attrgetter("buffers"), rows)) - rows[0].buffers,
        activations=activations,
        activations_with_input=activations + rows[0].activations,
        macs=macs,
        flops=2 * macs,
        peak_activations=_peak(graph, rows, storage, sizes),
        saved_activations=saved,
        saved_int64=saved_int64,
        saved_fp32_per_batch=saved_fp32_per_batch,
        training_forward_peak_bytes=training_peak,
        stored_activations=sum(sizes[s] for s in range(1, len(storage)) if storage[s] == s),  # each storage once
        autocast_weights=autocast_weights,
        autocast_input_copies=autocast_input_copies,
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
