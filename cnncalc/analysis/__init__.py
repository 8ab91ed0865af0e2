"""Per-layer numbers of a graph: output shape, weights, biases, buffers, activations, MACs.

Layer types answer what varies by type; everything else (activation counts, bytes, totals,
the peak of live activations, collapsing blocks into one row) is derived here, generically.

The modules: `counting` (analyze), `report` (the records), `memory` and `timeline`, `field` (receptive
fields), `views` (lecture, collapse), `input_override` (`--input`); this package re-exports them.
"""

from __future__ import annotations

from .counting import HasGraph, analyze, network_graph
from .field import FIELD_WORK_LIMIT, PERIOD_LIMIT, AxisField, Field
from .input_override import read_input_override
from .memory import Saving
from .report import DType, FitWarning, NetworkOutput, Report, Row, Style, Totals
from .timeline import MemoryTimeline, memory_timeline, predicted_memory
from .views import collapse, groups, lecture

__all__ = [
    "FIELD_WORK_LIMIT",
    "PERIOD_LIMIT",
    "AxisField",
    "DType",
    "Field",
    "FitWarning",
    "HasGraph",
    "MemoryTimeline",
    "NetworkOutput",
    "Report",
    "Row",
    "Saving",
    "Style",
    "Totals",
    "analyze",
    "collapse",
    "groups",
    "lecture",
    "memory_timeline",
    "network_graph",
    "predicted_memory",
    "read_input_override",
]
