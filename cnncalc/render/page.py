"""One network as one self-contained, offline, interactive HTML page (`cnncalc report SPEC -o net.html`).

The page is built from the report's JSON (`summary --format json`, docs/json.md) and nothing else:
the rows and totals of `json_data`, the same rows collapsed to each depth (`collapse`, as
`--depth` makes them), the memory timeline (`memory_timeline`) and, with a convention, that
tool's counts. Its script (assets/page.js) lays the graph out with dagre (vendored, MIT, its
licence beside it in assets/) and draws; it computes no number of its own. Free of torch.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Sequence

from ..analysis import DType, HasGraph, Report, Style, analyze, collapse, lecture, memory_timeline, network_graph
from ..analysis.conventions import Convention, Counted
from ..graph import Graph
from ..records import record
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
    from importlib import resources  # here: importing it is a tenth of `cnncalc --help` (every command's module)

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


@record
class Page:
    """The page as a value: `save` it, or let a notebook show it (`_repr_html_`, in a sandboxed iframe)."""

    html: str
    name: str

    def save(self, path: str | Path) -> Path:
        Path(path).write_text(self.html, encoding="utf-8")
        return Path(path)

    def _repr_html_(self) -> str:
        return (
            f'<iframe title="{html.escape(self.name)}" srcdoc="{html.escape(self.html)}" sandbox="allow-scripts" '
            'style="width:100%;height:760px;border:1px solid #8c959f"></iframe>'
        )


def page(
    network: Graph | HasGraph,
    *,
    input_shape: tuple[int, ...] | None = None,
    batch: int = 1,
    dtype: DType = DType.FP32,
    style: Style = Style.FULL,
) -> Page:
    """The page of `network` (what `cnncalc report` writes; the graph is needed, not only its Report,
    for the memory timeline): `cnncalc.render.page.page(cnncalc.load("vgg16"))` in a notebook."""
    graph = network_graph(network)
    report = analyze(graph, input_shape=input_shape, batch=batch, dtype=dtype, explain=True, fields=True)
    return Page(page_html(page_data(graph, report, style)), report.name)
