"""Memory budgets: the peak a run should reach, by part, for the optimizer, precision, reserve and
activation checkpointing an engineer trains with (docs/conventions.md, "Memory budgets").

A training step peaks in one of two phases. Forward: the optimizer's states (made by the first
step, alive ever after; no gradients yet, `zero_grad(set_to_none=True)`) and the most bytes alive
at once while the layers run. Backward: gradients, states, the input and everything the layers
keep for backward. Parameters and buffers (fp32 as autocast keeps them; fp64 in an fp64 model) are held throughout.
Every figure is checked against PyTorch in tests/test_budget.py.
"""

from __future__ import annotations

from enum import Enum
from typing import Sequence

from ..errors import CnncalcError, did_you_mean
from ..graph import Graph
from ..records import record
from .memory import Saving, _autocast, _peak, _walk
from .report import DType, Report


class Optimizer(str, Enum):
    """The torch.optim optimizer a training step runs; the value is how users spell it."""

    SGD = "sgd"  # torch.optim.SGD(momentum=0): no state
    MOMENTUM = "momentum"  # SGD(momentum=0.9): one momentum buffer per parameter
    ADAM = "adam"  # exp_avg and exp_avg_sq per parameter, and a 0-d fp32 `step` per parameter tensor
    ADAMW = "adamw"  # as Adam (its decoupled weight decay is in place)

    @property
    def states(self) -> int:
        """Values kept per parameter after the first step (each as wide as the parameter)."""
        return {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}[self.value]

    @property
    def counts_steps(self) -> bool:
        """Whether it keeps a step counter per parameter tensor (a 0-d fp32 tensor, 4 bytes)."""
        return self in (Optimizer.ADAM, Optimizer.ADAMW)

    @property
    def text(self) -> str:
        return {"sgd": "SGD", "momentum": "SGD with momentum", "adam": "Adam", "adamw": "AdamW"}[self.value]


class Phase(str, Enum):
    """Where the predicted peak falls."""

    INFERENCE = "inference"
    FORWARD = "forward"  # of a training step: what the layers keep so far and what is still read
    BACKWARD = "backward"  # gradients beside everything kept for backward


def parameter_tensors(report: Report) -> int:
    """Parameter tensors of the model: each row's weight tensor and bias tensor, where it has one."""
    return sum((row.weights > 0) + (row.biases > 0) for row in report.rows[1:])


def optimizer_state_bytes(report: Report, optimizer: Optimizer) -> int:
    """Bytes of `optimizer.state` after one step: the states per parameter (fp32, or fp64 for an fp64 model), and Adam's step
    counters (one 0-d fp32 tensor per parameter tensor; on the host even where the model is on CUDA,
    unless capturable or fused)."""
    steps = 4 * parameter_tensors(report) if optimizer.counts_steps else 0  # fp32 for an fp64 model too
    return optimizer.states * report.dtype.weight_bytes * report.totals.params + steps


@record
class Recompute:
    """Activation checkpointing (torch.utils.checkpoint, non-reentrant) of named blocks: each runs
    without keeping anything but its inputs, and runs again in backward, where it keeps what it
    would have kept, until its backward is done."""

    blocks: tuple[str, ...]
    segments: tuple[tuple[int, int], ...]  # the blocks' nodes, [start, stop) each, in graph order
    saved_bytes: int  # kept for backward: the layers outside the blocks, and the blocks' inputs
    forward_peak_bytes: int  # the forward pass's most bytes alive at once (Totals.training_forward_peak_bytes)
    recompute_bytes: int  # the most one block keeps again while it is recomputed in backward
    input_copies: int = 0  # Totals.autocast_input_copies outside the blocks (inside, the recomputation makes them)


def segments(graph: Graph, blocks: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """Each named block as the consecutive nodes it holds (its name, or names under it), in graph order."""
    found: list[tuple[int, int]] = []
    names = [node.name for node in graph.nodes]
    for block in blocks:
        members = [i for i, name in enumerate(names) if i > 0 and (name == block or name.startswith(block + "."))]
        if not members:
            prefixes = {".".join(name.split(".")[:k]) for name in names[1:] for k in range(1, name.count(".") + 2)}
            raise CnncalcError(
                "--checkpoint names no block of the network",
                received=block,
                expected="a row or block name as the table shows it (layer1, layer1.0, features)",
                hint=did_you_mean(block, prefixes) or "cnncalc summary SPEC --depth 1 lists the top-level blocks",
            )
        start, stop = members[0], members[-1] + 1
        if len(members) != stop - start:
            raise CnncalcError(
                f"--checkpoint '{block}': its rows are not consecutive, so it is not one piece of the forward pass",
                received=f"rows {members[0]}..{members[-1]} with others between them",
                hint="name a block whose rows run one after the other",
            )
        for other in found:
            if start < other[1] and other[0] < stop:
                raise CnncalcError(
                    f"--checkpoint '{block}' overlaps another block named",
                    received=list(blocks),
                    hint="name each block once, and no block inside another",
                )
        found.append((start, stop))
    return tuple(sorted(found))


def recompute(graph: Graph, report: Report, blocks: Sequence[str]) -> Recompute:
    """What a training step keeps and peaks at when `blocks` are checkpointed. `report` is the
    graph's uncollapsed analysis, at the batch and dtype of the run."""
    spans = segments(graph, blocks)
    inside = [False] * len(graph.nodes)
    for start, stop in spans:
        for i in range(start, stop):
            inside[i] = True
    rows, batch, dtype = report.rows, report.batch, report.dtype
    walk = _walk(graph, rows, batch, training=True, only=lambda i: not inside[i])
    outside, storage, sizes = walk.saving, walk.storage, walk.sizes
    assert outside is not None  # (a training walk's)
    kept = set(outside.kept)
    for start, stop in spans:  # the checkpoint holds each block's inputs for its recomputation
        kept.update(storage[j] for i in range(start, stop) for j in graph.nodes[i].inputs if j < start)
    kept.discard(0)
    saving = Saving(frozenset(kept), outside.own)
    again = 0
    for start, stop in spans:
        block = _walk(graph, rows, batch, training=True, only=range(start, stop).__contains__).saving
        assert block is not None
        again = max(again, _bytes(Saving(block.kept - kept, block.own), sizes, batch, dtype))
    held = None
    cast = _autocast(graph, rows)
    if dtype in (DType.FP16, DType.BF16):  # as in analyze: the cached weight copies, the kept input copies
        held = {
            i: 2 * (w + b) + (0 if inside[i] else 2 * batch * rows[0].activations * reads)
            for i, (w, b, reads) in cast.items()
        }
    peak = _peak(graph, walk, saving, batch, dtype, held)
    copies = sum(reads for i, (_, _, reads) in cast.items() if not inside[i])
    return Recompute(tuple(blocks), spans, _bytes(saving, sizes, batch, dtype), peak, again, copies)


def _bytes(saving: Saving, sizes: Sequence[int], batch: int, dtype: DType) -> int:
    elements = sum(e for e, _, _ in saving.own.values()) + sum(sizes[s] for s in saving.kept)
    return (
        elements * batch * dtype.bytes
        + 8 * batch * sum(n for _, n, _ in saving.own.values())
        + dtype.weight_bytes * sum(n for _, _, n in saving.own.values())
    )


@record
class MemoryBudget:
    """The predicted peak of one run, by part (bytes). Parts that do not apply are 0."""

    train: bool
    optimizer: Optimizer
    dtype: DType
    batch: int
    phase: Phase
    parameter_bytes: int  # fp32 master weights (fp64 for an fp64 model: DType.weight_bytes)
    buffer_bytes: int
    gradient_bytes: int  # one per parameter, as wide as it; 0 where the forward pass is the peak
    optimizer_bytes: int  # optimizer.state after the first step
    input_bytes: int  # the batch as the data loader hands it (fp32 under autocast)
    # the layers' tensors alive at the peak: kept for backward, or still to be read; in the forward
    # pass under fp16/bf16 autocast, with the 16-bit weight copies its cache holds so far
    activation_bytes: int
    reserve_bytes: int  # what the runtime holds (CUDA context, cuDNN workspace), as given
    recompute: Recompute | None = None

    @property
    def total_bytes(self) -> int:
        return (
            self.parameter_bytes
            + self.buffer_bytes
            + self.gradient_bytes
            + self.optimizer_bytes
            + self.input_bytes
            + self.activation_bytes
            + self.reserve_bytes
        )


def memory_budget(
    report: Report,
    train: bool,
    optimizer: Optimizer = Optimizer.MOMENTUM,
    reserve_bytes: int = 0,
    checkpoint: Recompute | None = None,
) -> MemoryBudget:
    """The peak a run of `report`'s network should reach at its batch and dtype, by part: inference,
    or a training step with `optimizer` (and `checkpoint`'s blocks recomputed), plus `reserve_bytes`.
    fp16/bf16 are autocast: activations in 16 bits, parameters, gradients and states in fp32; fp64 is
    the model and its input cast to fp64."""
    if reserve_bytes < 0:
        raise CnncalcError("the reserve cannot be negative", received=reserve_bytes)
    t, dtype = report.totals, report.dtype
    autocast, w = dtype.autocast, dtype.weight_bytes
    inputs = report.rows[0].activations * report.batch
    input_bytes = inputs * w
    extra_input = input_bytes - inputs * dtype.bytes  # the peaks counted the input at the activation dtype
    states = optimizer_state_bytes(report, optimizer) if train else 0
    saved, forward_peak, again, input_copies = (
        report.saved_bytes,
        t.training_forward_peak_bytes,
        0,
        t.autocast_input_copies,
    )
    if checkpoint is not None:
        saved, forward_peak = checkpoint.saved_bytes, checkpoint.forward_peak_bytes
        again, input_copies = checkpoint.recompute_bytes, checkpoint.input_copies
    copies = 2 * inputs * input_copies if autocast else 0  # the kept 16-bit copies of the input
    backward = w * t.params + states + input_bytes + saved + again + copies
    forward = states + forward_peak + extra_input
    if not train:  # under inference_mode autocast caches no weight copy: one at a time, not counted
        phase, gradients, activations = (
            Phase.INFERENCE,
            0,
            report.bytes_of(t.peak_activations - report.rows[0].activations),
        )
    elif forward > backward:
        phase, gradients, activations = Phase.FORWARD, 0, forward_peak - inputs * dtype.bytes
    else:
        phase, gradients, activations = Phase.BACKWARD, w * t.params, saved + again + copies
    return MemoryBudget(
        train,
        optimizer,
        dtype,
        report.batch,
        phase,
        w * t.params,
        w * t.buffers,
        gradients,
        states,
        input_bytes,
        activations,
        reserve_bytes,
        checkpoint,
    )
