"""One writer per output format, in one registry: a new format is one function registered here.

Every command builds an `Output` and calls `write`; a format the output cannot take is an error
that names the formats it can (never a silent fall-back to the text table).
"""

from __future__ import annotations

import io
import json
from enum import Enum
from itertools import islice
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, Callable, Sequence

from ..errors import CnncalcError
from ..records import record
from .bars import bar
from .cells import Abbreviated, Bar, Bytes, Delta, Ratio, ShapeOrder, human, human_bytes, shape_text
from .document import Block, Code, Output, RowStream, Table, Worked


class Format(str, Enum):
    """Every output format of every command (each command writes those its output can take)."""

    TEXT = "text"
    MARKDOWN = "markdown"
    CSV = "csv"
    JSON = "json"
    DOT = "dot"  # the layer graph for Graphviz
    MERMAID = "mermaid"  # the layer graph as a Mermaid flowchart

    def __str__(self) -> str:  # the value, as StrEnum: typer < 0.29 maps a parsed option back by str()
        return self.value

    @classmethod
    def _missing_(cls, value: object) -> Format | None:
        return cls.TEXT if value == "table" else None  # `table`, the table commands' first name for text


Sink = Callable[[str], Any]  # where a streaming writer sends its text, piece by piece (sys.stdout.write)


@record
class Writer:
    write: Callable[[Output], str]
    accepts: Callable[[Output], bool]  # whether this output has a form in this format
    stream: Callable[[Output, Sink], None] | None = None  # the same text, sent in pieces (large outputs)


WRITERS: dict[Format, Writer] = {}


def writer(
    fmt: Format, accepts: Callable[[Output], bool], stream: Callable[[Output, Sink], None] | None = None
) -> Callable[[Callable[[Output], str]], Callable[[Output], str]]:
    """Register the writer of `fmt` (and `stream`, its text sent in pieces); registering one
    format twice is a mistake and raises."""

    def register(write: Callable[[Output], str]) -> Callable[[Output], str]:
        if fmt in WRITERS:
            raise ValueError(f"two writers for {fmt.value}")
        WRITERS[fmt] = Writer(write, accepts, stream)
        return write

    return register


def formats_of(output: Output) -> list[Format]:
    return [fmt for fmt, w in WRITERS.items() if w.accepts(output)]


def write(output: Output, fmt: Format) -> str:
    """`output` in `fmt`, or a CnncalcError naming the formats the command writes."""
    return _chosen(output, fmt).write(output)


def write_to(sink: Sink, output: Output, fmt: Format) -> None:
    """`write`'s text sent to `sink`, in pieces where the format streams (JSON)."""
    chosen = _chosen(output, fmt)
    if chosen.stream is None:
        sink(chosen.write(output))
    else:
        chosen.stream(output, sink)


def _chosen(output: Output, fmt: Format) -> Writer:
    chosen = WRITERS.get(fmt)
    if chosen is None or not chosen.accepts(output):
        can = ", ".join(f.value for f in formats_of(output))
        raise CnncalcError(f"cnncalc {output.command} cannot write {fmt.value}; it writes: {can}")
    return chosen


def cell_text(value: Any, layout: ShapeOrder) -> str:
    if isinstance(value, tuple):
        return shape_text(value, layout)
    if value is None:
        return ""
    if isinstance(value, Bar):
        return bar(value.value, value.maximum, value.width)
    if isinstance(value, Delta):
        return f"{value:+,}" if value else "0"
    if isinstance(value, Ratio):
        return f"x{value:.2f}"
    if isinstance(value, Bytes):
        return human_bytes(value)
    if isinstance(value, Abbreviated):
        return f"{value:,} ({human(value)})" if value >= 1000 else f"{value:,}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def aligned(
    header: Sequence[str],
    body: Sequence[Sequence[str]],
    numeric: Sequence[bool],
    total: Sequence[str] | None = None,
    notes: Sequence[Sequence[str]] | None = None,
) -> list[str]:
    """Lines of an aligned plain-text table: numbers right-aligned, text left; `notes` go under rows.

    Written by hand rather than with rich.Table: it is never cropped to the terminal, and it
    renders 10,000 rows in milliseconds instead of seconds.
    """
    widths = [max(len(cell) for cell in cells) for cells in zip(header, *([total] if total else []), *body)]

    def line(cells: Sequence[str]) -> str:
        parts = (c.rjust(w) if right else c.ljust(w) for c, w, right in zip(cells, widths, numeric))
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [line(header), rule]
    for i, cells in enumerate(body):
        lines.append(line(cells))
        if notes:
            lines.extend(f"      {text}" for text in notes[i])
    if total:
        lines += [rule, line(total)]
    return lines


# ----- text ------------------------------------------------------------------------------------


def _text_block(block: Block) -> list[str]:
    if isinstance(block, Table):
        body = [[cell_text(v, block.layout) for v in row] for row in block.rows]
        total = [cell_text(v, block.layout) for v in block.total] if block.total else None
        lines = aligned(block.header, body, block.numeric, total, block.notes)
        head = [block.title, ""] if block.title else []
        return [*head, *lines, *(["", *block.footer] if block.footer else [])]
    if isinstance(block, Worked):
        return [block.head, *(f"  {step}" for step in block.steps), block.result]
    if isinstance(block, Code):
        return [block.text]
    return list(block.lines)


@writer(Format.TEXT, accepts=lambda output: bool(output.blocks))
def text(output: Output) -> str:
    return "".join("\n".join(_text_block(block)) + "\n" for block in output.blocks)


# ----- Markdown --------------------------------------------------------------------------------


def _markdown_escape(text: str) -> str:
    return text.replace("*", "\\*").replace("|", "\\|")


def _markdown_block(block: Block) -> list[str]:
    if isinstance(block, Table):
        working = block.notes is not None
        lines = [f"### {block.title}", ""] if block.title else []
        lines.append("| " + " | ".join(block.header) + (" | Working |" if working else " |"))
        lines.append("|" + "|".join("---:" if n else "---" for n in block.numeric) + ("|---|" if working else "|"))
        for i, row in enumerate(block.rows):
            cells = [cell_text(v, block.layout) for v in row]
            if block.notes is not None:
                cells.append("<br>".join(_markdown_escape(note) for note in block.notes[i]))
            lines.append("| " + " | ".join(cells) + " |")
        if block.total:
            total = [cell_text(v, block.layout) for v in block.total] + ([""] if working else [])
            lines.append("| " + " | ".join(f"**{v}**" if v else "" for v in total) + " |")
        if block.footer:
            lines += ["", *(f"- {line}" for line in block.footer)]
        return lines
    if isinstance(block, Worked):
        return [f"**{block.head}**", "", *(f"- `{step}`" for step in block.steps), f"- {block.result}"]
    if isinstance(block, Code):
        return ["```", block.text, "```"]
    return list(block.lines)


@writer(Format.MARKDOWN, accepts=lambda output: bool(output.blocks) and output.markdown)
def markdown(output: Output) -> str:
    return "".join("\n".join(_markdown_block(block)) + "\n" for block in output.blocks)


# ----- CSV -------------------------------------------------------------------------------------


def _plain(value: Any, layout: ShapeOrder) -> Any:
    """Plain integers (no separators) so spreadsheets read them as numbers."""
    if isinstance(value, tuple):
        return shape_text(value, layout)
    if isinstance(value, Bar):
        return round(value.share, 4)
    if isinstance(value, Ratio):
        return round(float(value), 6)
    return int(value) if isinstance(value, (Abbreviated, Delta, Bytes)) else value


@writer(Format.CSV, accepts=lambda output: len(output.tables) == 1)
def csv_text(output: Output) -> str:
    """The output's one table: header, rows (with their working, if any) and the totals row."""
    import csv  # only this writer needs it (start-up time)

    (table,) = output.tables
    out = io.StringIO()
    rows = csv.writer(out, lineterminator="\n")
    rows.writerow([*table.header, *(["Working"] if table.notes is not None else [])])
    for i, row in enumerate(table.rows):
        working = ["; ".join(table.notes[i])] if table.notes is not None else []
        rows.writerow([*(_plain(v, table.layout) for v in row), *working])
    if table.total:
        rows.writerow(_plain(v, table.layout) for v in table.total)
    return out.getvalue()


# ----- JSON ------------------------------------------------------------------------------------


def json_stream(output: Output, sink: Sink) -> None:
    assert output.data is not None
    write_json({"schema_version": output.schema_version, **output.data}, sink)
    sink("\n")


@writer(Format.JSON, accepts=lambda output: output.data is not None, stream=json_stream)
def json_text(output: Output) -> str:
    parts: list[str] = []
    json_stream(output, parts.append)
    return "".join(parts)


def indented_json(value: Any) -> str:
    """`json.dumps(value, indent=2)`, except that an object in a list (a table's row, a warning)
    and a list of plain values (a shape) are written on one line, as `json.dumps(item)` writes
    them: the same data, one line per row to read or grep, and 3x faster (start-up time: summary
    resnet152 writes 517 rows). With an indent, Python's json encodes in pure Python, one
    generator step per element; each such row here is one call of the C encoder."""
    parts: list[str] = []
    write_json(value, parts.append)
    return "".join(parts)


def write_json(value: Any, sink: Sink) -> None:
    """`indented_json(value)` sent to `sink`; a `RowStream`'s rows in pieces of FLUSH_ROWS."""
    out: list[str] = []
    _indented(value, 1, out, sink)
    sink("".join(out))


# `json.dumps(value)` without its per-call set-up (json.dumps makes a new C encoder on every call:
# a third of its time on a row): the encoder `json.dumps` makes with its default arguments, made
# once (no circular check: rows are trees of plain values).
_C_ENCODER = c_make_encoder and c_make_encoder(
    None, json.JSONEncoder().default, encode_basestring_ascii, None, ": ", ", ", False, False, True
)


def _one_line(value: Any) -> str:
    """`json.dumps(value)`: the C encoder, one call per row."""
    if _C_ENCODER is None or not isinstance(value, dict):  # (a Python without json's C speed-ups)
        return json.dumps(value)
    return "".join(_C_ENCODER(value, 0))


FLUSH_ROWS = 1024  # a RowStream's rows are sent to the sink this many at a time


def _indented(value: Any, depth: int, out: list[str], sink: Sink) -> None:
    """Append `value` as `indented_json` writes it, its items at nesting `depth`."""
    if isinstance(value, RowStream):  # a list of objects, one line each, sent in pieces
        if not len(value):
            out.append("[]")
            return
        inner = "\n" + "  " * depth
        between = "," + inner
        out.append("[" + inner)
        rows = iter(value)
        # FLUSH_ROWS lines at a time, joined in C (a str row is its line already)
        while lines := [row if type(row) is str else _one_line(row) for row in islice(rows, FLUSH_ROWS)]:
            out.append(between.join(lines))
            if len(lines) == FLUSH_ROWS:  # (the last piece goes with what follows)
                sink("".join(out))
                out.clear()
                out.append(between)
        if out and out[-1] is between:
            out.pop()
        out += (inner[:-2], "]")
        return
    if isinstance(value, dict):
        items: Any = value.items()
        opening, closing = "{", "}"
    elif isinstance(value, (list, tuple)):
        if not any(isinstance(item, (dict, list, tuple)) for item in value):  # plain values: one line
            out.append(_one_line(value))
            return
        items = value
        opening, closing = "[", "]"
    else:
        out.append(_one_line(value))
        return
    if not value:
        out.append(opening + closing)
        return
    inner = "\n" + "  " * depth
    out.append(opening)
    for i, item in enumerate(items):
        out.append("," + inner if i else inner)
        if opening == "{":
            key, item = item
            out.append(_one_line({key: 0})[1:-2])  # `"key": `, as json writes a key
        elif isinstance(item, dict):
            out.append(_one_line(item))  # a row: one line
            continue
        _indented(item, depth + 1, out, sink)
    out += (inner[:-2], closing)


# ----- the layer graph: Graphviz DOT and Mermaid ---------------------------------------------


@writer(Format.DOT, accepts=lambda output: output.graph is not None)
def dot(output: Output) -> str:
    assert output.graph is not None
    from .graph_text import dot_text  # only the graph formats need it (start-up time)

    return dot_text(output.graph)


@writer(Format.MERMAID, accepts=lambda output: output.graph is not None)
def mermaid(output: Output) -> str:
    assert output.graph is not None
    from .graph_text import mermaid_text

    return mermaid_text(output.graph)
