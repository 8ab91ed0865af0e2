"""What a command hands the writers: blocks for people (tables, lines, worked answers, code) and
a payload for JSON. Commands build these values; `writers` prints them in every format."""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence, Union

from ..records import record
from .cells import ShapeOrder

if TYPE_CHECKING:
    from .graph_text import Drawing

# A table cell: text, a count (int, `Abbreviated` for `1,234 (1.2K)`) or a shape (printed in the table's layout).
Cell = Any


@record
class Table:
    """A table: numbers right-aligned (`numeric`), an optional totals row, the working of each row
    (`notes`, from --explain), a title above and footer lines below."""

    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    numeric: tuple[bool, ...]
    total: tuple[Cell, ...] | None = None
    notes: tuple[tuple[str, ...], ...] | None = None
    title: str | None = None
    footer: tuple[str, ...] = ()
    layout: ShapeOrder = ShapeOrder.HWC


@record
class Lines:
    """Plain lines: the same in text and Markdown."""

    lines: tuple[str, ...]


@record
class Worked:
    """A worked answer: what was asked, each step of the working, and the result."""

    head: str
    steps: tuple[str, ...]
    result: str


@record
class Code:
    """Preformatted text (a matrix): as it is in text, fenced in Markdown."""

    text: str


Block = Union[Table, Lines, Worked, Code]


class RowStream:
    """A JSON list of `count` objects (a table's rows) made one at a time by `make` as the JSON
    writer writes them, so that a 100,000-row output never holds every row's dict at once. An
    object may come as its line of JSON already (a str, as `json.dumps` writes the object)."""

    def __init__(self, count: int, make: Callable[[], Iterator[dict[str, Any] | str]]) -> None:
        self.count, self.make = count, make

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[dict[str, Any] | str]:
        return self.make()


@record
class Output:
    """Everything one command prints. `blocks` are for people (text, Markdown; CSV takes the one
    table), `data` is the JSON payload (the writer adds `schema_version`). `graph` is the layer
    graph the output is about (nodes and edges, collapsed as the table is), for the dot and
    mermaid writers. `markdown=False` where the blocks have no
    Markdown form worth writing."""

    command: str
    blocks: tuple[Block, ...] = ()
    data: Mapping[str, Any] | None = None
    schema_version: int = 1
    markdown: bool = True
    graph: Drawing | None = field(default=None, compare=False)

    @property
    def tables(self) -> Sequence[Table]:
        return [block for block in self.blocks if isinstance(block, Table)]
