"""One network as one self-contained, offline, interactive HTML page (`cnncalc report SPEC -o net.html`).

The page is built from the report's JSON (`summary --format json`, docs/json.md) and nothing else:
the rows and totals of `json_data`, the same rows collapsed to each depth (`collapse`, as
`--depth` makes them), the memory timeline (`memory_timeline`) and, with a convention, that
tool's counts. Its script (assets/page.js) lays the graph out with dagre (vendored, MIT, its
licence beside it in assets/) and draws; it computes no number of its own. Free of torch.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Sequence

from ..analysis import Report, Style, collapse, lecture, memory_timeline
from ..conventions import Convention, Counted
from ..graph import Graph
from .report import json_data, predicted_line, totals_lines

SCHEMA_VERSION = 1  # of the `summary` JSON the page carries (docs/json.md)
ASSETS = ("page.css", "dagre.min.js", "page.js")


def page_data(
    graph: Graph, report: Report, style: Style = Style.FULL, counted: Sequence[Counted] = ()
) -> dict[str, Any]:
    """What the page shows, as JSON: `summary -f json`'s object for `report` (the whole graph's,
    analysed with `explain` and `fields`), plus `depths` (the rows at each `--depth`), `memory`
    (the timeline) and `conventions` (each of `counted`)."""
    shown = lecture(report) if style is Style.LECTURE else report
    data: dict[str, Any] = {"schema_version": SCHEMA_VERSION, **json_data(shown)}
    deepest = max(row.name.count(".") + 1 for row in shown.rows)
    depths = {}
    for depth in range(1, deepest):
        rows = json_data(collapse(shown, depth))["layers"]
        depths[str(depth)] = [{k: v for k, v in row.items() if k not in ("working", "receptive_field")} for row in rows]
    data["depths"] = depths
    data["containers"] = dict(shown.containers or {})
    timeline = memory_timeline(graph, report)
    data["memory"] = {
        "rows": list(timeline.rows),
        "inference": list(timeline.inference),
        "training": list(timeline.training),
        "backward": timeline.backward,
        "inference_holders": list(timeline.inference_holders),
        "training_holders": list(timeline.training_holders),
        "inference_base": timeline.inference_base,
        "training_base": timeline.training_base,
    }
    data["totals_lines"] = [*totals_lines(shown), predicted_line(shown)]
    data["counts"] = Convention.CNNCALC.summary
    data["conventions"] = {
        c.convention.value: {"total": c.total, "counts": c.convention.summary, "rows": dict(c.rows)} for c in counted
    }
    return data


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets").joinpath(name).read_text(encoding="utf-8")


def _script_safe(text: str) -> str:
    """Text that cannot end the <script> element it is written into."""
    return text.replace("</", "<\\/")


def page_html(data: dict[str, Any]) -> str:
    """The whole page: its data, style, layout library and script inline (no request leaves it)."""
    css, dagre, script = (_asset(name) for name in ASSETS)
    payload = _script_safe(json.dumps(data, separators=(",", ":")))
    title = f"{data['name']} - cnncalc".replace("&", "&amp;").replace("<", "&lt;")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<div id="app"></div>
<script id="cnncalc-data" type="application/json">{payload}</script>
<script>{_script_safe(dagre)}</script>
<script>{_script_safe(script)}</script>
</body>
</html>
"""
