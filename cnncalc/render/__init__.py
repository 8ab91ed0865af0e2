"""The presentation layer: values commands build (`Output` of tables, lines, worked answers) and
one writer per `Format` that prints them. Free of torch; nothing here prints or exits.

- `cells`: how single values print (shapes, counts, receptive fields);
- `document`: the values (`Table`, `Lines`, `Worked`, `Code`, `Output`);
- `writers`: `Format` and the registry of writers (text, Markdown, CSV, JSON, dot, Mermaid);
- `report`: an analysis `Report` as a table, its totals lines and its JSON contract.
"""

from .cells import Abbreviated, Bar, Bytes, Delta, Ratio, ShapeOrder, field_text, human, human_bytes, shape_text
from .document import Code, Lines, Output, Table, Worked
from .writers import WRITERS, Format, aligned, formats_of, write

__all__ = [
    "WRITERS",
    "Abbreviated",
    "Bar",
    "Bytes",
    "Code",
    "Delta",
    "Ratio",
    "Format",
    "ShapeOrder",
    "Lines",
    "Output",
    "Table",
    "Worked",
    "aligned",
    "field_text",
    "formats_of",
    "human",
    "human_bytes",
    "shape_text",
    "write",
]
