"""What other tools count, reproduced from the spec alone: `cnncalc flops --convention NAME`.

No two counters agree. Each layer type carries its own rule for every convention (`Layer.counts`,
built with `layers.rules`), the way the tools key their handlers by operator: this module only
walks the graph and applies them. Each convention is tested against the real tool on every
built-in architecture and on random layers of every type (tests/test_conventions.py).
"""

from __future__ import annotations

from typing import Mapping

from ..graph import Graph
from ..layers.counting import Convention
from ..records import record
from . import Report

__all__ = ["Convention", "Counted", "count"]

# What a tool reports per counted unit: FlopCounterMode counts 2 FLOPs per MAC.
_SCALE = {Convention.FLOPCOUNTER: 2}


@record
class Counted:
    convention: Convention
    rows: Mapping[str, int | float]  # per row name, one sample (ptflops' interpolate hook can make a fraction)
    total: int


def count(graph: Graph, report: Report, convention: Convention) -> Counted:
    """Every row of `report` (uncollapsed, from `graph`) as `convention` counts it, per sample."""
    scale = _SCALE.get(convention, 1)
    shapes = [row.output_shape for row in report.rows]
    rows: dict[str, int | float] = {}
    for node, row in zip(graph.nodes[1:], report.rows[1:]):
        assert node.layer is not None and node.name == row.name
        inputs = [shapes[i] for i in node.inputs]
        rows[row.name] = scale * node.layer.count(convention, inputs, row.output_shape)
    # ptflops truncates its total once (int(flops_count)); every other total is a sum of integers
    return Counted(convention, rows, int(sum(rows.values())))
