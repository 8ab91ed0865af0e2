"""Memory of a run: storages and views, what training keeps, the peaks and the timeline."""

from __future__ import annotations

from array import array
from itertools import accumulate, compress, repeat
from operator import add, and_, attrgetter, eq, methodcaller, mul
from typing import Callable, Iterator, Mapping, MutableSequence, NamedTuple, Sequence

from ..graph import Graph
from ..layers import Layer, Shape, layout
from ..layers.layout import Strides
from ..records import record
from .report import DType, Row, Totals


def _recorded(graph: Graph, rows: Sequence[Row]) -> list[bool]:
    """For each node, whether autograd records it in a training step: a layer with parameters, or
    one that reads a recorded one (before the first layer with parameters no gradient flows)."""
    recorded = [False] * len(graph.nodes)
    weighted = list(map(attrgetter("weights"), rows))
    for i, node in enumerate(graph.nodes):
        if node.layer is None:
            continue
        inputs = node.inputs
        if weighted[i] or rows[i].biases:
            recorded[i] = True
        elif len(inputs) == 1:  # most rows
            recorded[i] = recorded[inputs[0]]
        else:
            recorded[i] = any(recorded[j] for j in inputs)
    return recorded


@record
class Saving:
    """What a training step keeps for backward: the storages some layer keeps (by the node that
    holds each), and by node, the tensors a layer saves of its own (activation elements,
    int64 elements, fp32 elements per batch)."""

    kept: frozenset[int]
    own: Mapping[int, tuple[int, int, int]]


@record
class Walk:
    """One pass over the graph in one mode (training or inference), for each node (the input's
    entries are its own): `storage`, the node whose tensor holds its output (its own, or its
    input's for a view: flatten, permute, identity, crops, pieces, and dropout at inference);
    `strides`, the output's (the whole tensor, batch axis first) as PyTorch lays it out
    (cnncalc/layers/layout.py); `sizes`, the elements per sample of the storage PyTorch allocates
    for it (its activations, but for a layer whose kernel allocates more: `Layer.allocated`);
    `last_use`, by storage, the last node that reads it (itself if none does); `scratch`, the
    temporary elements per sample while it runs (`Layer.scratch`; None if no node has any; two
    more entries, 0, for `_live`'s end of the pass). In training, `saving`: what the step keeps for
    backward (`_walk`'s `only`)."""

    storage: MutableSequence[int]
    strides: list[Strides]
    sizes: list[int]
    last_use: MutableSequence[int]
    scratch: list[int] | None
    saving: Saving | None


class _Facts(NamedTuple):
    """What a layer gives on given inputs (shapes, strides, whether each needs a gradient), the
    same wherever it runs on them: whether its output is a view, the output's strides, the
    elements its kernel allocates, its temporaries; in training, whether autograd records it and
    what it keeps for backward: the inputs whose tensors it keeps (by position), whether it keeps
    its output, and the tensors it saves of its own (`Saving.own`'s entry, copies of inputs
    included; None if none). (A tuple, unpacked once a node: `_walk` reads it for every row.)"""

    view: bool
    strides: Strides
    allocated: int
    scratch: int
    saves: bool
    keeps_inputs: tuple[int, ...]
    keeps_output: bool
    own: tuple[int, int, int] | None


def _walk(
    graph: Graph, rows: Sequence[Row], batch: int, training: bool, only: Callable[[int], bool] | None = None
) -> Walk:
    """The graph's layouts, last uses and temporaries in one mode, and in training what the step
    keeps (`Walk`): every tensor some layer keeps, once, plus the layers' own saved tensors. The
    input is left out of what is kept (the caller holds it anyway). Layers autograd does not
    record keep nothing (`_recorded`), nor do the nodes `only` leaves out (activation
    checkpointing). A view PyTorch cannot make (flatten of a crop or of a permute) is a copy: a
    new tensor, laid out as the type's `layout` says."""
    nodes = graph.nodes
    n = len(nodes)
    storage = array("l", range(n))  # node indices (MAX_NODES): no int object per node
    last_use = array("l", range(n))
    strides: list[Strides] = []
    sizes = list(map(attrgetter("activations"), rows))
    scratch: list[int] | None = None
    recorded = _recorded(graph, rows) if training else [False] * n
    kept = bytearray(n)  # the storages kept: one flag per node (a set grown node by node was a large spec's peak)
    saved_own: dict[int, tuple[int, int, int]] = {}  # `Saving.own`
    outs = list(map(attrgetter("output_shape"), rows))
    # `_Facts` by (id of the layer, whether it is recorded, id of the output, of the inputs and
    # their strides, whether each input needs a gradient): layers are frozen and a block's recur,
    # as in analyze. The shapes (one object per value, as analyze makes them) and strides are
    # keyed by identity (the rows and `strides` hold them to the end): a chain's repeat the same
    # few objects, and a tuple's hash is not kept, but worked out again on every look-up
    known: dict[tuple[object, ...], _Facts] = {}
    canonical: dict[Strides, Strides] = {}  # one object per value of strides, for `known`'s keys
    # by layer: the objects it last ran on, and what it gave (a chain's repeat: no key to build)
    seen: dict[int, tuple[Shape, Shape, Strides, bool, bool, _Facts]] = {}
    for i, node in enumerate(nodes):
        layer = node.layer
        if layer is None:
            contiguous = layout.contiguous((batch, *outs[i]))
            strides.append(canonical.setdefault(contiguous, contiguous))
            continue
        inputs = node.inputs
        facts: _Facts | None
        if len(inputs) == 1:  # most rows
            j = inputs[0]
            last_use[storage[j]] = i  # a storage's readers come in order: the last one written stays
            last = seen.get(id(layer))
            if (
                last is not None
                and last[0] is outs[i]
                and last[1] is outs[j]
                and last[2] is strides[j]
                and last[3] is recorded[i]
                and last[4] is recorded[j]
            ):
                facts = last[5]
            else:
                key: tuple[object, ...] = (
                    id(layer),
                    recorded[i],
                    id(outs[i]),
                    id(outs[j]),
                    id(strides[j]),
                    recorded[j],
                )
                facts = known.get(key)
                if facts is None:
                    facts = known[key] = _facts(layer, rows, i, inputs, strides, recorded, batch, training, canonical)
                seen[id(layer)] = (outs[i], outs[j], strides[j], recorded[i], recorded[j], facts)
        else:
            for j in inputs:
                last_use[storage[j]] = i
            key = (id(layer), recorded[i], id(outs[i]), *[id(x) for j in inputs for x in (outs[j], strides[j])])
            key += tuple([recorded[j] for j in inputs])  # whether each input needs a gradient (attention)
            facts = known.get(key)
            if facts is None:
                facts = known[key] = _facts(layer, rows, i, inputs, strides, recorded, batch, training, canonical)
        view, out_strides, allocated, scratch_elements, saves, keeps_inputs, keeps_output, own = facts
        strides.append(out_strides)
        if view:
            storage[i] = storage[inputs[0]]
        else:
            sizes[i] = allocated
        if scratch_elements:
            if scratch is None:
                scratch = [0] * (n + 2)
            scratch[i] = scratch_elements
        if saves and (only is None or only(i)):
            for m in keeps_inputs:
                kept[storage[inputs[m]]] = 1
            if keeps_output:
                kept[storage[i]] = 1
            if own is not None:
                saved_own[i] = own
    saving = None
    if training:
        kept[0] = 0  # the input: the caller holds it anyway
        saving = Saving(frozenset(compress(range(n), kept)), saved_own)
    return Walk(storage, strides, sizes, last_use, scratch, saving)


def _facts(
    layer: Layer,
    rows: Sequence[Row],
    i: int,
    inputs: Sequence[int],
    strides: Sequence[Strides],
    recorded: Sequence[bool],
    batch: int,
    training: bool,
    canonical: dict[Strides, Strides],
) -> _Facts:
    """`_Facts` of node `i` (`_walk`'s, worked out once per layer and inputs)."""
    whole = (batch, *rows[i].output_shape)
    ins = tuple(((batch, *rows[j].output_shape), strides[j]) for j in inputs)
    grads = tuple(recorded[j] for j in inputs)
    view = None
    if layer.aliases_input and not (training and layer.copies_in_training):
        view = layer.view_strides(*ins[0], whole)
    if view is not None:
        out, allocated = view, 0
    else:
        out = layer.output_strides(whole, ins, grads) or layout.new_strides(
            layer.layout_for(ins[0][0]), whole, ins, recorded[i]
        )
        allocated = layer.allocated(ins[0][0], rows[i].output_shape)
    out = canonical.setdefault(out, out)  # one object per value of strides, for `_walk`'s keys
    temporaries = layer.scratch([rows[j].output_shape for j in inputs], rows[i].output_shape)
    if not (training and recorded[i]):
        return _Facts(view is not None, out, allocated, temporaries, False, (), False, None)
    saved = layer.saved_for(
        [rows[j].output_shape for j in inputs], rows[i].output_shape, [s for _, s in ins], batch, list(grads)
    )
    keeps: list[int] = []
    elements = saved.elements
    for m, (shape, step) in enumerate(ins):
        # kept as the input itself, and for a partner's gradient (a product: d(ab)/da = b)
        kept = int(saved.input and (saved.kept_inputs is None or m in saved.kept_inputs))
        kept += int(saved.inputs_for_partners and any(g for k, g in enumerate(grads) if k != m))
        if kept:
            if layer.keeps_a_copy(shape, step):  # its own contiguous copy (matmul's reshape), each time
                elements += kept * rows[inputs[m]].activations
            else:
                keeps += [m] * kept
    own = (elements, saved.int64, saved.fp32_per_batch) if elements or saved.int64 or saved.fp32_per_batch else None
    return _Facts(view is not None, out, allocated, temporaries, True, tuple(keeps), saved.output, own)


def _peak(
    graph: Graph,
    walk: Walk,
    saving: Saving | None = None,
    batch: int = 1,
    dtype: DType = DType.FP32,
    held: Mapping[int, int] | None = None,
) -> int:
    """Most activation elements alive at once when the graph runs in order (inference); with the
    `saving` of a training step, most bytes alive at once in its forward pass, at `batch` and
    `dtype`, what the layers keep staying alive to its end (their own saved tensors from the layer
    that makes them). The most of `_live`."""
    return max(_live(graph, walk, saving, batch, dtype, held, per_node=False)[0])


def _live(
    graph: Graph,
    walk: Walk,
    saving: Saving | None = None,
    batch: int = 1,
    dtype: DType = DType.FP32,
    held: Mapping[int, int] | None = None,
    per_node: bool = True,
) -> tuple[list[int], list[tuple[int, int]]]:
    """What is alive while each node runs (as `_peak` counts it): elements (inference) or bytes
    (with `saving`), one number per node (two more, after the last, for the end of the pass); and
    the spans of what holds it, (node that made a tensor, last node it is alive at).

    A tensor (of `walk.sizes` elements per sample) lives from the layer that makes it to the last
    layer that reads it; the input (which the caller holds) and every output the network returns
    live to the end. Views share their input's storage.
    While a layer runs, its `scratch` temporaries live too; `held` adds bytes made by a node that
    live to the end (autocast's cached weight copies, cnncalc/analysis/budget.py).
    `per_node=False` (for `_peak`): no spans, and the one number that is the most (a 100,000-layer
    spec's summary would otherwise hold a span and a total per node at its memory peak).
    `saving` is the caller's to give (a training walk's, or one checkpointing changed): the walk's
    own is not read, and without one the count is of elements, as at inference.
    """
    storage, sizes = walk.storage, walk.sizes
    n = len(storage)
    size = 1 if saving is None else batch * dtype.bytes  # elements, or bytes
    last_use = array("l", walk.last_use)  # (the walk's own stays as it is, for another call)
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
    if walk.scratch is not None:
        live = map(add, live, walk.scratch if size == 1 else map(mul, walk.scratch, repeat(size)))
    return (list(live), spans) if per_node else ([max(live)], spans)


def _totals(graph: Graph, rows: Sequence[Row], batch: int, dtype: DType) -> Totals:
    # every row but the input (rows[0]), summed in C: no copy of a large spec's rows
    weights = sum(map(attrgetter("weights"), rows)) - rows[0].weights
    biases = sum(map(attrgetter("biases"), rows)) - rows[0].biases
    macs = sum(map(attrgetter("macs"), rows)) - rows[0].macs
    activations = sum(map(attrgetter("activations"), rows)) - rows[0].activations
    training = _walk(graph, rows, batch, training=True)
    saving = training.saving
    assert saving is not None  # (a training walk's)
    saved = sum(e for e, _, _ in saving.own.values()) + sum(training.sizes[s] for s in saving.kept)
    saved_int64 = sum(n for _, n, _ in saving.own.values())
    saved_fp32_per_batch = sum(n for _, _, n in saving.own.values())
    held = _autocast_held(graph, rows, batch, dtype)
    training_peak = _peak(graph, training, saving, batch, dtype, held)
    # the training walk dropped before the inference one is made (a large spec's memory peak):
    # nothing of it is alive at once with it
    del training, saving, held
    inference = _walk(graph, rows, batch, training=False)
    storage, sizes = inference.storage, inference.sizes
    # `_autocast`'s sums, without its one entry per conv or linear row: summed in C
    # (the input, the one node without a layer, is not cast)
    cast = [False, *map(bool, map(attrgetter("layer.autocast"), graph.nodes[1:]))]
    cast = list(map(and_, cast, map(bool, map(attrgetter("weights"), rows))))
    autocast_weights = sum(compress(map(add, map(attrgetter("weights"), rows), map(attrgetter("biases"), rows)), cast))
    autocast_input_copies = sum(map(methodcaller("count", 0), compress(map(attrgetter("inputs"), graph.nodes), cast)))
    return Totals(
        weights=weights,
        biases=biases,
        params=weights + biases,
        buffers=sum(map(attrgetter("buffers"), rows)) - rows[0].buffers,
        activations=activations,
        activations_with_input=activations + rows[0].activations,
        macs=macs,
        flops=2 * macs,
        peak_activations=_peak(graph, inference),
        saved_activations=saved,
        saved_int64=saved_int64,
        saved_fp32_per_batch=saved_fp32_per_batch,
        training_forward_peak_bytes=training_peak,
        # each storage once (the input's, the first, left out)
        stored_activations=sum(compress(sizes, map(eq, storage, range(len(storage))))) - sizes[0],
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
