"""Per-layer bar charts of a report (the `plot` extra: matplotlib, imported only when called).

One panel per quantity, rows top to bottom in execution order, sharing the layer labels. Past
`max_rows` rows the report is collapsed by depth (the deepest depth that fits), so a 500-row
network stays legible; if even depth 1 is too long, the figure grows instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from ..analysis import Report, collapse, groups
from ..errors import CnncalcError, MissingExtraError
from ..quantities import Quantity
from ..records import record

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

MAX_ROWS = 80  # rows that stay legible at the label size used
SUFFIXES = (".png", ".svg", ".pdf")


# the quantities a panel can show, with its heading; time and TFLOP/s need a profile's timings
HEADINGS = {
    Quantity.MACS: "MACs (per sample)",
    Quantity.PARAMS: "parameters",
    Quantity.ACTIVATION_BYTES: "activation memory (bytes)",  # at the report's batch and dtype
    Quantity.TIME_MS: "time (ms)",
    Quantity.TFLOPS: "achieved TFLOP/s",
}
DEFAULT = (Quantity.MACS, Quantity.PARAMS, Quantity.ACTIVATION_BYTES)


@record
class Plotted:
    """What was drawn: the figure, the rows (after any automatic collapse) and each panel's values."""

    figure: Figure
    depth: int | None
    names: tuple[str, ...]
    values: Mapping[Quantity, tuple[float, ...]]


def _matplotlib() -> tuple[type[Figure], type[EngFormatter]]:
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure
        from matplotlib.ticker import EngFormatter
    except ImportError:
        raise MissingExtraError(
            "plotting needs matplotlib, which is not installed",
            expected="the plot extra",
            hint="pip install 'cnncalc[plot]'",
        ) from None
    return Figure, EngFormatter


def fitting_depth(report: Report, max_rows: int = MAX_ROWS) -> int | None:
    """None if the report's layer rows fit in `max_rows`, else the deepest depth that does (at
    least 1, even if depth 1 is still too long)."""
    names = [row.name for row in report.rows[1:]]
    if len(names) <= max_rows:
        return None
    deepest = max(name.count(".") + 1 for name in names)
    for depth in range(deepest - 1, 0, -1):
        if len(groups(names, depth)) <= max_rows:
            return depth
    return 1


def _values(
    report: Report, quantity: Quantity, timings: Mapping[str, float] | None, full: Report, depth: int | None
) -> tuple[float, ...]:
    rows = report.rows[1:]
    if quantity not in HEADINGS:
        raise CnncalcError(
            f"no panel for {quantity.value}", received=quantity.value, expected=", ".join(q.value for q in HEADINGS)
        )
    if quantity is Quantity.MACS:
        return tuple(float(r.macs) for r in rows)
    if quantity is Quantity.PARAMS:
        return tuple(float(r.params) for r in rows)
    if quantity is Quantity.ACTIVATION_BYTES:
        return tuple(float(report.bytes_of(r.activations)) for r in rows)
    if timings is None:
        raise CnncalcError(f"the {quantity.value} panel needs per-layer timings (profile --per-layer)")
    times = _grouped_times(full, timings, depth)
    if quantity is Quantity.TIME_MS:
        return tuple(times.get(r.name, 0.0) for r in rows)
    # FLOP / s = 2 MACs * batch / (ms / 1000); in TFLOP/s: / 1e12
    return tuple(2 * r.macs * report.batch / (times[r.name] / 1e3) / 1e12 if times.get(r.name) else 0.0 for r in rows)


def _grouped_times(full: Report, timings: Mapping[str, float], depth: int | None) -> dict[str, float]:
    names = [row.name for row in full.rows]
    if depth is None:
        return {name: float(timings.get(name, 0.0)) for name in names}
    return {group: sum(float(timings.get(names[i], 0.0)) for i in members) for group, members in groups(names, depth)}


def plot(
    report: Report,
    path: str | Path | None = None,
    quantities: Sequence[Quantity] | None = None,
    timings: Mapping[str, float] | None = None,
    depth: int | None = None,
    max_rows: int = MAX_ROWS,
) -> Plotted:
    """Draw `report` (uncollapsed; `depth` collapses it, else it collapses itself past `max_rows`)
    and write it to `path` if given (PNG, SVG or PDF by suffix). The input row is left out.

    `timings` (layer name -> ms, as `profile --per-layer` measures) adds the time and achieved
    TFLOP/s panels when `quantities` is not given.
    """
    if path is not None and Path(path).suffix.lower() not in SUFFIXES:
        raise CnncalcError(
            "unknown picture format", received=str(path), expected="a file ending in " + ", ".join(SUFFIXES)
        )
    if quantities is None:
        quantities = DEFAULT + ((Quantity.TIME_MS, Quantity.TFLOPS) if timings is not None else ())
    if not quantities:
        raise CnncalcError("nothing to plot", expected="at least one quantity")
    Figure, EngFormatter = _matplotlib()
    if depth is None:
        depth = fitting_depth(report, max_rows)
    shown = collapse(report, depth) if depth else report
    names = tuple(r.name for r in shown.rows[1:])
    values = {q: _values(shown, q, timings, report, depth) for q in quantities}

    n = len(names)
    labels = tuple(f"{r.name}  {r.type}" for r in shown.rows[1:])
    label_inches = 0.3 + 0.065 * max((len(s) for s in labels), default=4)
    height = 1.2 + 0.16 * max(n, 8)
    fig = Figure(figsize=(label_inches + 3.0 * len(quantities), height), dpi=100, layout="constrained")
    axes = fig.subplots(1, len(quantities), sharey=True, squeeze=False)[0]
    positions = list(range(n))
    for ax, q in zip(axes, quantities):
        ax.barh(positions, values[q], height=0.75, color="#4c72b0")
        ax.set_title(HEADINGS[q], fontsize=9)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.margins(y=0.5 / max(n, 1))
    axes[0].set_yticks(positions, labels, fontsize=7)
    axes[0].invert_yaxis()  # execution order reads top to bottom
    shape = "x".join(str(s) for s in report.input_shape)
    collapsed = f", collapsed to depth {depth}" if depth else ""
    fig.suptitle(f"{report.name}: input {shape}, batch {report.batch}, {report.dtype.value}{collapsed}", fontsize=10)
    if path is not None:
        fig.savefig(path)
    return Plotted(fig, depth, names, values)
