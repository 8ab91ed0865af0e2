"""`memory --train` (with --reserve, --checkpoint, --optimizer) and `memory --fit`: the predicted peak
by part, and the largest batch that fits a budget. The `memory` command itself is in `tables`.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..analysis import DType, analyze
from ..analysis.budget import MemoryBudget, Optimizer, Phase, memory_budget, recompute
from ..analysis.sweep import Fit, fit_batch, parse_bytes
from ..render import Bytes, Output, ShapeOrder, Table, human_bytes, shape_text
from .common import load_graph, parse_input

# ----- memory --fit ----------------------------------------------------------------------------


def fit_output(
    source: str,
    budget: str,
    train: bool,
    dtype: DType,
    input: str | None,
    args: list[str] | None = None,
    optimizer: Optimizer = Optimizer.MOMENTUM,
    reserve: str | None = None,
    checkpoint: Sequence[str] = (),
) -> Output:
    """`memory --fit`: the largest batch whose predicted peak fits `budget`, with the prediction at
    that batch and the next, and what the prediction holds by part."""
    graph = load_graph(source, input, args)
    reserve_bytes = parse_bytes(reserve) if reserve is not None else 0
    fit = fit_batch(
        graph,
        parse_bytes(budget),
        train,
        dtype,
        parse_input(input, graph.input_shape),
        optimizer,
        reserve_bytes,
        checkpoint,
    )
    rows = [] if fit.batch is None else [(fit.batch, Bytes(fit.bytes_at_batch), fit.bytes_at_batch, "yes")]
    nxt = 1 if fit.batch is None else fit.batch + 1
    rows.append(
        (
            nxt,
            Bytes(fit.bytes_at_next if fit.batch is not None else fit.bytes_at_batch),
            fit.bytes_at_next if fit.batch is not None else fit.bytes_at_batch,
            "no",
        )
    )
    answer = f"largest batch that fits: {fit.batch}" if fit.batch is not None else "even batch 1 does not fit"
    assert fit.parts is not None
    table = Table(
        header=("Batch", "Predicted peak", "Bytes", "Fits"),
        rows=tuple(rows),
        numeric=(True, True, True, False),
        title=f"{graph.name}  (input {shape_text(fit.input_shape, ShapeOrder.CHW)}, {_mode(fit.parts)}, "
        f"budget {human_bytes(fit.budget_bytes)} = {fit.budget_bytes:,} bytes)",
        footer=(
            answer,
            _fit_rule(fit),
            _parts_line(fit.parts),
            "not included: " + "; ".join(_left_out(fit.parts)),
            "predicted as in docs/conventions.md; cnncalc profile measures it",
        ),
        layout=ShapeOrder.CHW,
    )
    data = {
        "name": graph.name,
        "input": list(fit.input_shape),
        "dtype": dtype.value,
        "train": train,
        "budget_bytes": fit.budget_bytes,
        "fits": fit.fits,
        "batch": fit.batch,
        "bytes_at_batch": fit.bytes_at_batch if fit.fits else None,
        "next_batch": nxt,
        "bytes_at_next": fit.bytes_at_next if fit.fits else fit.bytes_at_batch,
        "fixed_bytes": fit.fixed_bytes,
        "bytes_per_sample": fit.bytes_per_sample,
        "optimizer": optimizer.value if train else None,
        "reserve_bytes": reserve_bytes,
        "checkpoint": list(fit.checkpoint),
        "parts": _parts_data(fit.parts),
    }
    return Output("memory", (table,), data=data)


def budget_output(
    source: str,
    batch: int,
    train: bool,
    dtype: DType,
    input: str | None,
    args: list[str] | None = None,
    optimizer: Optimizer = Optimizer.MOMENTUM,
    reserve: str | None = None,
    checkpoint: Sequence[str] = (),
) -> Output:
    """`memory --train` (or --reserve, --checkpoint) without --fit: the predicted peak at `batch`, by part."""
    graph = load_graph(source, input, args)
    shape = parse_input(input, graph.input_shape)
    report = analyze(graph, input_shape=shape, batch=batch, dtype=dtype)
    recomputed = recompute(graph, report, checkpoint) if train and checkpoint else None
    parts = memory_budget(report, train, optimizer, parse_bytes(reserve) if reserve is not None else 0, recomputed)
    title = f"{graph.name}  (input {shape_text(report.input_shape, ShapeOrder.CHW)}, batch {batch}, {_mode(parts)})"
    data = {"name": graph.name, "input": list(report.input_shape), "batch": batch, **_parts_data(parts)}
    return Output("memory", (_parts_table(parts, title),), data=data)


def _mode(parts: MemoryBudget) -> str:
    """What runs: inference or a training step with its optimizer, at what precision."""
    precision = (
        f"{parts.dtype.value} autocast (fp32 master weights)"
        if parts.dtype in (DType.FP16, DType.BF16)
        else parts.dtype.value
    )
    mode = f"training step ({parts.optimizer.text})" if parts.train else "inference"
    if parts.recompute is not None:
        mode += f", checkpointing {', '.join(parts.recompute.blocks)}"
    return f"{mode}, {precision}"


def _parts(parts: MemoryBudget) -> list[tuple[str, int]]:
    """(what, bytes) of each part the prediction holds, in the order a step makes them."""
    opt = parts.optimizer
    state = f"{opt.text}: {opt.states} fp32 per parameter" + (
        ", a 4-byte step counter per tensor" if opt.counts_steps else ""
    )
    where = {
        Phase.INFERENCE: "the most alive at once",
        Phase.FORWARD: "the most alive at once in the forward pass",
        Phase.BACKWARD: "kept for backward",
    }[parts.phase]
    if parts.recompute is not None and parts.phase is Phase.BACKWARD:
        where += f", and {human_bytes(parts.recompute.recompute_bytes)} kept again by the largest recomputed block"
    rows = [("parameters (fp32)", parts.parameter_bytes), ("buffers (fp32)", parts.buffer_bytes)]
    if parts.train:
        rows += [
            ("gradients (fp32)" + ("" if parts.gradient_bytes else ": none yet at this peak"), parts.gradient_bytes),
            (f"optimizer state ({state})", parts.optimizer_bytes),
        ]
    autocast = parts.dtype in (DType.FP16, DType.BF16)
    rows += [
        (f"input ({'fp32' if autocast else parts.dtype.value})", parts.input_bytes),
        (f"activations ({where})", parts.activation_bytes),
        ("reserve (--reserve)", parts.reserve_bytes),
    ]
    return rows


def _parts_line(parts: MemoryBudget) -> str:
    peak = {Phase.INFERENCE: "", Phase.FORWARD: ", in the forward pass", Phase.BACKWARD: ", in the backward pass"}
    return f"at batch {parts.batch}{peak[parts.phase]}: " + ", ".join(
        f"{what} {human_bytes(n)}" for what, n in _parts(parts) if n
    )


def _left_out(parts: MemoryBudget) -> list[str]:
    """What the prediction does not count, for the run it predicts."""
    out = []
    if not parts.reserve_bytes:
        out.append("the CUDA context and cuDNN's workspace (give them with --reserve)")
    out.append("the allocator's cache and rounding, and the gradients of activations while backward runs")
    if parts.train and parts.optimizer.counts_steps:
        out.append(
            f"CUDA's foreach {parts.optimizer.text} step: one more fp32 copy of the parameters "
            f"({human_bytes(parts.parameter_bytes)}; the CPU's step makes none)"
        )
    if parts.dtype in (DType.FP16, DType.BF16) and parts.phase is Phase.BACKWARD:
        out.append("autocast's 16-bit weight copies kept for backward (freed before the last gradients are made)")
    return out


def _parts_table(parts: MemoryBudget, title: str) -> Table:
    peak = {Phase.INFERENCE: "inference", Phase.FORWARD: "the forward pass", Phase.BACKWARD: "the backward pass"}
    return Table(
        header=("Part", "Predicted", "Bytes"),
        rows=tuple((what, Bytes(n), n) for what, n in _parts(parts)),
        numeric=(False, True, True),
        total=("predicted peak", Bytes(parts.total_bytes), parts.total_bytes),
        title=title,
        footer=(f"the peak falls in {peak[parts.phase]}", "not included: " + "; ".join(_left_out(parts))),
        layout=ShapeOrder.CHW,
    )


def _parts_data(parts: MemoryBudget) -> dict[str, Any]:
    return {
        "train": parts.train,
        "optimizer": parts.optimizer.value if parts.train else None,
        "dtype": parts.dtype.value,
        "phase": parts.phase.value,
        "parameter_bytes": parts.parameter_bytes,
        "buffer_bytes": parts.buffer_bytes,
        "gradient_bytes": parts.gradient_bytes,
        "optimizer_bytes": parts.optimizer_bytes,
        "input_bytes": parts.input_bytes,
        "activation_bytes": parts.activation_bytes,
        "reserve_bytes": parts.reserve_bytes,
        "total_bytes": parts.total_bytes,
        "checkpoint": list(parts.recompute.blocks) if parts.recompute else [],
        "recompute_bytes": parts.recompute.recompute_bytes if parts.recompute else 0,
        "not_included": _left_out(parts),
    }


def _fit_rule(fit: Fit) -> str:
    assert fit.parts is not None
    what = "parameters and buffers"
    if fit.train:
        what = (
            "parameters, buffers, gradients and the optimizer's state"
            if fit.parts.phase is Phase.BACKWARD
            else "parameters, buffers and the optimizer's state"
        )
    if fit.train and fit.parts.phase is Phase.FORWARD and fit.dtype in (DType.FP16, DType.BF16):
        what += ", autocast's 16-bit weight copies"
    if fit.reserve_bytes:
        what += ", the reserve"
    return (
        f"predicted peak = {human_bytes(fit.fixed_bytes)} ({what}) + batch x {human_bytes(fit.bytes_per_sample)} "
        f"({fit.fixed_bytes:,} + batch x {fit.bytes_per_sample:,} bytes)"
    )
