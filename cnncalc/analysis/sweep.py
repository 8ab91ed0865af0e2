"""Sweeps over input sizes, batches and dtypes, and the largest batch that fits a memory budget.

Both are built on `analyze` and `predicted_memory`; neither prints. Sizes that do not fit the
network become rows carrying the reason, so one bad size does not lose the whole sweep.
"""

from __future__ import annotations

import itertools
import math
import re
from fractions import Fraction
from typing import Sequence, TypeVar

from ..errors import CnncalcError
from ..graph import Graph, OutputKind
from ..layers import Shape
from ..records import record
from . import DType, NetworkOutput, Report, analyze, predicted_memory
from .budget import MemoryBudget, Optimizer, memory_budget, recompute

_T = TypeVar("_T")

MAX_COMBINATIONS = 10_000  # a sweep larger than this is refused, not run

_BRACES = re.compile(r"\{([^{}]*)\}")


def expand(text: str, what: str = "a list") -> list[str]:
    """Brace expansion: `3x{128,160}x{128,160}` -> 3x128x128, 3x128x160, 3x160x128, 3x160x160.

    Groups expand as a cartesian product, left to right; the number of results is capped at
    MAX_COMBINATIONS. Unbalanced, nested or empty braces raise CnncalcError.
    """
    text = text.strip()
    if not text:
        raise CnncalcError(f"empty {what}", expected="a value such as 3x224x224 or 3x{128,224}")
    pieces = _BRACES.split(text)  # literal, group, literal, group, ..., literal
    literals, groups = pieces[0::2], pieces[1::2]
    if any(c in literal for literal in literals for c in "{}"):
        raise CnncalcError(
            f"unbalanced or nested braces in {what}", received=text, expected="groups such as {128,160,224}, not nested"
        )
    options: list[list[str]] = []
    for group in groups:
        items = [item.strip() for item in group.split(",")]
        if not all(items):
            raise CnncalcError(f"empty item in a brace group of {what}", received=text, expected="{128,160,224}")
        options.append(items)
    count = math.prod(len(o) for o in options)
    if count > MAX_COMBINATIONS:
        raise CnncalcError(
            f"{what} expands to {count:,} values, more than {MAX_COMBINATIONS:,}",
            received=text,
            hint="sweep fewer sizes at once",
        )
    out = []
    for chosen in itertools.product(*options):
        out.append("".join(lit + val for lit, val in zip(literals, (*chosen, ""))))
    return out


def _split_top(text: str) -> list[str]:
    """Split on commas outside braces: `3x{1,2},4x5` -> [`3x{1,2}`, `4x5`]."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += c == "{"
        depth -= c == "}"
        if c == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_shapes(text: str) -> list[Shape]:
    """`3x{128,160,192,224,256}`, `3x224x224,3x256x256` or `3x{128,224}x{128,224}`: input shapes.

    Each shape is channels first, 1 to 4 positive sizes; a plain comma separates shapes.
    """
    shapes: list[Shape] = []
    for part in _split_top(text):
        for item in expand(part, "--input"):
            sizes = item.split("x")
            if not all(s.strip().isdigit() for s in sizes):
                raise CnncalcError("cannot read an input shape", received=item, expected="sizes such as 3x224x224")
            shape = tuple(int(s) for s in sizes)
            if not 1 <= len(shape) <= 4 or min(shape) < 1:
                raise CnncalcError(
                    "malformed input shape", received=item, expected="1 to 4 positive sizes, channels first: 3x227x227"
                )
            shapes.append(shape)
    return _capped(shapes, text, "--input")


def parse_batches(text: str) -> list[int]:
    """`1,8,64` or `{1,8,64}`: positive batch sizes."""
    batches: list[int] = []
    for part in _split_top(text):
        for item in expand(part, "--batch"):
            if not item.isdigit() or int(item) < 1:
                raise CnncalcError("a batch must be a positive integer", received=item, expected="1,8,64")
            batches.append(int(item))
    return _capped(batches, text, "--batch")


def parse_dtypes(text: str) -> list[DType]:
    """`fp32,bf16`: element types, spelt as DType's values."""
    dtypes: list[DType] = []
    for part in _split_top(text):
        for item in expand(part, "--dtype"):
            try:
                dtypes.append(DType(item.lower()))
            except ValueError:
                raise CnncalcError("unknown dtype", received=item, expected=", ".join(d.value for d in DType)) from None
    return _capped(dtypes, text, "--dtype")


def _capped(values: list[_T], text: str, what: str) -> list[_T]:
    if len(values) > MAX_COMBINATIONS:
        raise CnncalcError(f"{what} gives {len(values):,} values, more than {MAX_COMBINATIONS:,}", received=text)
    return values


@record
class SweepRow:
    """One combination of a sweep. Where the size does not fit the network, `error` says why and
    the numbers are None. Params, MACs and activations are per sample; bytes are for the batch."""

    input_shape: Shape
    batch: int
    dtype: DType
    params: int | None = None
    macs: int | None = None
    activation_bytes: int | None = None  # every layer's output, the input excluded, for the batch
    inference_bytes: int | None = None  # predicted_memory(train=False)
    training_bytes: int | None = None  # predicted_memory(train=True)
    output_shape: Shape | None = None  # the one tensor the network returns (None where it returns several)
    error: str | None = None
    returns: OutputKind = OutputKind.TENSOR  # a spec with `outputs:`: a tuple, list or dict of `outputs`
    outputs: tuple[NetworkOutput, ...] = ()  # with `outputs:`, each returned tensor (key, row, shape)

    @property
    def ok(self) -> bool:
        return self.error is None


def _fit_rank(graph: Graph, shape: Shape) -> Shape:
    """`3x224` for a network with two spatial axes means a square 3x224x224."""
    wanted = len(graph.input_shape)
    if len(shape) == 2 and wanted > 2:
        return shape + (shape[1],) * (wanted - 2)
    return shape


def sweep(
    graph: Graph, inputs: Sequence[Shape], batches: Sequence[int], dtypes: Sequence[DType], strict: bool = False
) -> list[SweepRow]:
    """One row per (input, batch, dtype), in that nesting order. A shape with one spatial size
    for a network with more spatial axes is square (3x224 -> 3x224x224)."""
    check_combinations(len(inputs), batches, dtypes)
    return [row for shape in inputs for row in _rows(graph, _fit_rank(graph, tuple(shape)), batches, dtypes, strict)]


def sweep_each(
    graphs: Sequence[tuple[Shape, Graph | CnncalcError]],
    batches: Sequence[int],
    dtypes: Sequence[DType],
    strict: bool = False,
) -> list[SweepRow]:
    """`sweep` over a network made again for each input shape (a PyTorch model, traced at each size):
    (shape, its graph or the error that stopped it) pairs, one row per (input, batch, dtype)."""
    check_combinations(len(graphs), batches, dtypes)
    return [row for shape, graph in graphs for row in _rows(graph, tuple(shape), batches, dtypes, strict)]


def check_combinations(inputs: int, batches: Sequence[int], dtypes: Sequence[DType]) -> None:
    """Refuse a sweep of more than MAX_COMBINATIONS rows before anything runs."""
    count = inputs * len(batches) * len(dtypes)
    if count > MAX_COMBINATIONS:
        raise CnncalcError(
            f"the sweep has {count:,} combinations, more than {MAX_COMBINATIONS:,}",
            hint="sweep fewer sizes, batches or dtypes at once",
        )


def _rows(
    graph: Graph | CnncalcError, shape: Shape, batches: Sequence[int], dtypes: Sequence[DType], strict: bool
) -> list[SweepRow]:
    """The rows of one input shape: every (batch, dtype), or the reason the shape does not fit."""
    base: Report | None = None
    if isinstance(graph, CnncalcError):
        reason: str | None = "; ".join(graph.lines())
    else:
        try:
            base, reason = analyze(graph, input_shape=shape, strict=strict), None
        except CnncalcError as err:
            reason = "; ".join(err.lines())
    rows: list[SweepRow] = []
    for batch in batches:
        for dtype in dtypes:
            if base is None or isinstance(graph, CnncalcError):
                rows.append(SweepRow(shape, batch, dtype, error=reason))
                continue
            # analysed at the batch and dtype: a training step's forward peak is in bytes at its own
            # batch and dtype, and a batch of one lays some tensors out otherwise
            report = analyze(graph, input_shape=shape, batch=batch, dtype=dtype, strict=strict)
            several = report.outputs if report.returns is not OutputKind.TENSOR else None
            rows.append(
                SweepRow(
                    shape,
                    batch,
                    dtype,
                    params=report.totals.params,
                    macs=report.totals.macs,
                    activation_bytes=report.bytes_of(report.totals.activations),
                    inference_bytes=predicted_memory(report, train=False),
                    training_bytes=predicted_memory(report, train=True),
                    output_shape=report.outputs[0].output_shape if several is None else None,
                    returns=report.returns,
                    outputs=several or (),
                )
            )
    return rows


# --- memory budgets --------------------------------------------------------------------------

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "pb": 10**15,
    "eb": 10**18,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "pib": 2**50,
    "eib": 2**60,
    "k": 2**10,
    "m": 2**20,
    "g": 2**30,
    "t": 2**40,
    "p": 2**50,
    "e": 2**60,  # nvidia-smi's habit: G means GiB
}
_BUDGET = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")


def parse_bytes(text: str) -> int:
    """`16GiB`, `16GB`, `512MiB`, `1.5TiB` or plain bytes `12000000000` -> bytes (rounded down).

    GB/MB are powers of ten, GiB/MiB powers of two; a bare G/M/K means GiB/MiB/KiB.
    """
    match = _BUDGET.match(str(text))
    if match is None:
        raise CnncalcError(
            "cannot read a memory size", received=text, expected="a size such as 16GiB, 16GB, 512MiB or 1.5TiB"
        )
    number, unit = match.groups()
    if unit.lower() not in _UNITS:
        raise CnncalcError(
            "unknown unit in a memory size",
            received=text,
            expected="B, KB, MB, GB, TB, PB, EB (powers of 10) or KiB, MiB, GiB, TiB, PiB, EiB (powers of 2)",
        )
    value = int(Fraction(number) * _UNITS[unit.lower()])
    if value < 1:
        raise CnncalcError("a memory size must be at least one byte", received=text)
    return value


@record
class Fit:
    """`fit_batch`: the largest batch whose predicted peak fits the budget.

    `batch` is None where even batch 1 does not fit (then `fits` is False, `bytes_at_batch` is
    batch 1's prediction and `bytes_at_next` batch 2's). `bytes_at_next` is the prediction at batch + 1 (above the budget).
    The prediction is affine in the batch: `fixed_bytes + batch * bytes_per_sample`.
    """

    budget_bytes: int
    train: bool
    dtype: DType
    input_shape: Shape
    batch: int | None
    bytes_at_batch: int
    bytes_at_next: int
    fixed_bytes: int  # parameters, buffers (and in training their gradients and the optimizer's state), the reserve
    bytes_per_sample: int
    optimizer: Optimizer = Optimizer.MOMENTUM
    reserve_bytes: int = 0
    checkpoint: tuple[str, ...] = ()
    parts: MemoryBudget | None = None  # the prediction by part at `batch` (at batch 1 where none fits)

    @property
    def fits(self) -> bool:
        return self.batch is not None


def fit_batch(
    graph: Graph,
    budget_bytes: int,
    train: bool,
    dtype: DType = DType.FP32,
    input_shape: Shape | None = None,
    optimizer: Optimizer = Optimizer.MOMENTUM,
    reserve_bytes: int = 0,
    checkpoint: Sequence[str] = (),
) -> Fit:
    """The largest batch whose predicted peak (`memory_budget`: a training step with `optimizer`
    and the `checkpoint` blocks recomputed, or inference, plus `reserve_bytes`) is at most
    `budget_bytes`, the network analysed at each batch tried.

    The prediction grows with the batch, affine in each phase of a step (parameters, buffers, the
    optimizer's state and the reserve are fixed, every activation term scales with it), so the
    answer is found by doubling, then halving; `fixed_bytes` and `bytes_per_sample` are the affine
    rule through the answer and the next batch (through batches 1 and 2 where none fits).
    """
    if budget_bytes < 1:
        raise CnncalcError("the memory budget must be positive", received=budget_bytes)
    shape = _fit_rank(graph, tuple(input_shape)) if input_shape else None
    blocks = tuple(checkpoint) if train else ()
    known: dict[int, MemoryBudget] = {}
    shapes: list[Shape] = []

    def parts(batch: int) -> MemoryBudget:
        if batch not in known:
            report = analyze(graph, input_shape=shape, batch=batch, dtype=dtype)
            shapes.append(report.input_shape)
            recomputed = recompute(graph, report, blocks) if blocks else None
            known[batch] = memory_budget(report, train, optimizer, reserve_bytes, recomputed)
        return known[batch]

    def at(batch: int) -> int:
        return parts(batch).total_bytes

    more = (optimizer, reserve_bytes, blocks)
    one, two = at(1), at(2)
    if two <= one:  # cannot happen for a real network (its output alone scales)
        raise CnncalcError("the predicted memory does not grow with the batch", received=two - one)
    if one > budget_bytes:
        return Fit(budget_bytes, train, dtype, shapes[0], None, one, two, 2 * one - two, two - one, *more, parts(1))
    low, high = 1, 2  # at(low) fits; double high until it does not
    while at(high) <= budget_bytes:
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if at(middle) <= budget_bytes else (low, middle)
    per_sample = at(low + 1) - at(low)
    return Fit(
        budget_bytes,
        train,
        dtype,
        shapes[0],
        low,
        at(low),
        at(low + 1),
        at(low) - low * per_sample,
        per_sample,
        *more,
        parts(low),
    )
