"""A run's memory row by row, and the peak a run should reach (both built on `budget`)."""

from __future__ import annotations

from typing import Sequence

from ..errors import CnncalcError
from ..graph import Graph
from ..records import record
from .budget import memory_budget
from .memory import _autocast_held, _live, _walk
from .report import Report


def predicted_memory(report: Report, train: bool) -> int:
    """Bytes a run of the model should peak at, per docs/conventions.md: a training step with SGD
    and momentum, nothing reserved, nothing recomputed. `cnncalc.analysis.budget.memory_budget` gives the
    same prediction by part, for any optimizer, with a reserve and activation checkpointing."""
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
    t = report.totals
    w = report.dtype.weight_bytes  # parameters, buffers, gradients and momentum
    fixed = (t.params + t.buffers) * w
    n = len(rows)
    # under autocast the input is fp32 (the peaks count it at the activation dtype), as memory_budget says
    extra = memory_budget(report, False).input_bytes - report.bytes_of(rows[0].activations)
    live, spans = _live(graph, _walk(graph, rows, report.batch, training=False))
    inference = [fixed + report.bytes_of(e) + extra for e in live[:n]]
    walk = _walk(graph, rows, report.batch, training=True)
    held = _autocast_held(graph, rows, report.batch, report.dtype)
    train_live, train_spans = _live(graph, walk, walk.saving, report.batch, report.dtype, held)
    training = [fixed + t.params * w + b + extra for b in train_live[:n]]  # momentum; no gradients yet
    copies = 2 * report.batch * rows[0].activations * t.autocast_input_copies if held is not None else 0
    backward = fixed + 2 * t.params * w + report.bytes_of(rows[0].activations) + extra + report.saved_bytes + copies

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
        fixed + t.params * w,
    )
