"""A report in a notebook: its JSON payload as a dict, its table as text, Markdown and HTML, and a
pandas DataFrame; and what Jupyter shows for a `Report`.

These are functions of a report rather than methods of `Report`, so that the analysis never
imports the presentation layer above it. Jupyter shows a report as its table because `import
cnncalc` inside IPython registers `to_html`, `to_markdown` and `to_text` as IPython's display
formatters for `Report` (`show_reports_in`); `%load_ext cnncalc.render.notebook` does the same.
"""

from __future__ import annotations

import html
from typing import Any

from ..analysis import Report
from ..errors import MissingExtraError
from .cells import ShapeOrder
from .document import Output
from .report import SUMMARY_COLUMNS as COLUMNS
from .report import json_data, report_table
from .writers import Format, cell_text, write

SCHEMA_VERSION = Output("summary").schema_version
# the per-layer numbers of the JSON payload that make a DataFrame's columns
FRAME_COLUMNS = (
    "type",
    "output_shape",
    "inputs",
    "activations",
    "activation_bytes",
    "weights",
    "biases",
    "params",
    "buffers",
    "macs",
    "flops",
)


# a Report has no graph (the memory timeline needs it): the line under its table says where the page is
PAGE_NOTE = (
    "the interactive page (graph, memory over time): cnncalc.render.page.page(graph) in a notebook, "
    "or cnncalc report NAME -o net.html"
)


def to_dict(report: Report) -> dict[str, Any]:
    """What `cnncalc summary --format json` writes for this report."""
    return {"schema_version": SCHEMA_VERSION, **json_data(report)}


def to_text(report: Report, layout: ShapeOrder = ShapeOrder.HWC) -> str:
    """The `cnncalc summary` table as text (what IPython shows for a report outside HTML)."""
    return write(Output("summary", (report_table(report, COLUMNS, layout),)), Format.TEXT)


def to_markdown(report: Report, layout: ShapeOrder = ShapeOrder.HWC) -> str:
    """The `cnncalc summary --format markdown` table."""
    return write(Output("summary", (report_table(report, COLUMNS, layout),)), Format.MARKDOWN)


def to_html(report: Report, layout: ShapeOrder = ShapeOrder.HWC) -> str:
    """The summary table as HTML (numbers right-aligned, the totals row in bold, the totals lines under it)."""
    table = report_table(report, COLUMNS, layout)

    def row(cells: Any, tag: str) -> str:
        return (
            "<tr>"
            + "".join(
                f'<{tag} style="text-align:{"right" if n else "left"}">{html.escape(cell_text(c, layout))}</{tag}>'
                for c, n in zip(cells, table.numeric)
            )
            + "</tr>"
        )

    head = row(table.header, "th")
    body = "".join(row(r, "td") for r in table.rows)
    total = row(table.total, "th") if table.total else ""
    footer = "".join(f"<li>{html.escape(line)}</li>" for line in (*table.footer, PAGE_NOTE))
    return (
        f"<div><strong>{html.escape(table.title or '')}</strong><table><thead>{head}</thead><tbody>{body}</tbody>"
        f"<tfoot>{total}</tfoot></table><ul>{footer}</ul></div>"
    )


def to_pandas(report: Report) -> Any:
    """One row per layer (indexed by name), the per-layer numbers of the JSON payload as columns."""
    try:
        import pandas
    except ImportError:
        raise MissingExtraError(
            "to_pandas needs pandas, which is not installed", expected="pandas", hint="pip install pandas"
        ) from None
    rows = json_data(report)["layers"]
    frame = pandas.DataFrame(
        {key: [tuple(r[key]) if isinstance(r[key], list) else r[key] for r in rows] for key in FRAME_COLUMNS},
        index=pandas.Index([r["name"] for r in rows], name="name"),
    )
    return frame


def show_reports_in(ipython: Any) -> None:
    """Have an IPython shell (Jupyter's kernel) show every `Report` as its summary table: HTML in
    the notebook, Markdown where that is what the front end renders, the text table in a terminal."""
    formatters = ipython.display_formatter.formatters
    formatters["text/html"].for_type(Report, to_html)
    formatters["text/markdown"].for_type(Report, to_markdown)
    formatters["text/plain"].for_type(Report, lambda report, printer, cycle: printer.text(to_text(report)))


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext cnncalc.render.notebook` (`import cnncalc` in IPython already does this)."""
    show_reports_in(ipython)
