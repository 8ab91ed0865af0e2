"""The layer graph as text that draws: Graphviz DOT and Mermaid flowcharts.

Each node is labelled with its name, type, output shape (channels first) and parameters; edges
follow `Node.inputs`, so branches, residual adds and concatenations show as they are wired.
With `depth`, the nodes of one block `depth` names deep become one node (as `collapse` makes one
row), and the edges between blocks remain. Node ids are generated (`n0`, `n1`, ...); names only
ever appear inside quoted, escaped labels, so dots, quotes and unicode are safe.
"""

from __future__ import annotations

from ..analysis import Report, collapse, groups
from ..graph import Graph
from ..records import record


@record
class DrawnNode:
    id: str
    name: str
    type: str
    shape: tuple[int, ...]
    params: int
    leaves: int  # leaf layers this node stands for


@record
class Drawing:
    """The nodes and edges (pairs of ids, in order, without repeats) that `to_dot`/`to_mermaid` write."""

    name: str
    nodes: tuple[DrawnNode, ...]
    edges: tuple[tuple[str, str], ...]


def drawing(graph: Graph, report: Report, depth: int | None = None) -> Drawing:
    """Nodes and edges of `graph` (whose analysis is `report`, uncollapsed), optionally collapsed."""
    names = [node.name for node in graph.nodes]
    if len(report.rows) != len(names) or any(r.name != n for r, n in zip(report.rows, names)):
        raise ValueError("report must be the uncollapsed analysis of graph")
    parts = groups(names, depth) if depth else [(name, [i]) for i, name in enumerate(names)]
    rows = collapse(report, depth).rows if depth else report.rows
    owner = [0] * len(names)
    for g, (_, members) in enumerate(parts):
        for i in members:
            owner[i] = g
    nodes = tuple(
        DrawnNode(f"n{g}", row.name, row.type, tuple(row.output_shape), row.params, row.leaves)
        for g, row in enumerate(rows)
    )
    edges: dict[tuple[str, str], None] = {}
    for i, node in enumerate(graph.nodes):
        for j in node.inputs:
            if owner[j] != owner[i]:
                edges[(f"n{owner[j]}", f"n{owner[i]}")] = None
    return Drawing(report.name, nodes, tuple(edges))


def _params_text(params: int) -> str:
    return f"{params:,} params" if params else "no params"


def _label_lines(node: DrawnNode) -> list[str]:
    shape = "x".join(str(s) for s in node.shape)
    kind = node.type if node.leaves == 1 else f"{node.type} ({node.leaves} layers)"
    return [node.name, kind, shape, _params_text(node.params)]


def _dot_quote(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, newlines as \\n."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def to_dot(graph: Graph, report: Report, depth: int | None = None) -> str:
    """A Graphviz digraph, top to bottom; render with `dot -Tsvg`."""
    return dot_text(drawing(graph, report, depth))


def dot_text(d: Drawing) -> str:
    """`to_dot` of a drawing already made (the `--format dot` writer's input)."""
    out = [
        f"digraph {_dot_quote_id(d.name)} {{",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fillcolor="#f4f4f4", fontname="Helvetica", fontsize=10];',
    ]
    for node in d.nodes:
        label = "\\n".join(_dot_quote(line) for line in _label_lines(node))
        out.append(f'  {node.id} [label="{label}"];')
    out.extend(f"  {a} -> {b};" for a, b in d.edges)
    out.append("}")
    return "\n".join(out) + "\n"


def _dot_quote_id(text: str) -> str:
    return f'"{_dot_quote(text)}"'


def _mermaid_quote(text: str) -> str:
    """Text inside a Mermaid `["..."]` label: quotes and markup characters as entity codes."""
    codes = {"&": "#amp;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "#": "#35;", "\n": " "}
    return "".join(codes.get(c, c) for c in text)  # one pass, so an inserted `#` is not escaped again


def to_mermaid(graph: Graph, report: Report, depth: int | None = None) -> str:
    """A Mermaid flowchart (```mermaid in Markdown renders it on GitHub)."""
    return mermaid_text(drawing(graph, report, depth))


def mermaid_text(d: Drawing) -> str:
    """`to_mermaid` of a drawing already made (the `--format mermaid` writer's input)."""
    out = ["flowchart TD"]
    for node in d.nodes:
        label = "<br/>".join(_mermaid_quote(line) for line in _label_lines(node))
        out.append(f'  {node.id}["{label}"]')
    out.extend(f"  {a} --> {b}" for a, b in d.edges)
    return "\n".join(out) + "\n"
