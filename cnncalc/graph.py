"""The layer graph: leaf layers in execution order, each naming the nodes it reads from."""

from __future__ import annotations

from dataclasses import field
from enum import Enum
from typing import Mapping

from .errors import Where
from .layers import Layer, Shape
from .records import record

INPUT = "input"


@record
class Node:
    """One leaf layer (or the input) of the graph.

    `name` is the unique dotted path (`layer1.0.conv1`), `written` the type as the spec spelt it
    (`conv2d`), `inputs` the indices of the nodes it reads, all earlier than its own. `calls` names
    the earlier row whose (parameter-free) module this row runs again (`- call: relu`, as
    torchvision's ResNet blocks call their one `relu` several times); None for a module of its own.
    `site` is the place of the spec item that made it, shared by the copies of a `repeat:` (one
    place per row was a sixth of a 100,000-layer spec's memory); `where` is the row's own.
    """

    name: str
    kind: str
    written: str
    layer: Layer | None
    inputs: tuple[int, ...]
    site: Where
    calls: str | None = None

    @property
    def where(self) -> Where:
        """The row's place in the spec: its item's, the row's name after the path (`layers[3] conv1.2`);
        the input's is its own (`input`)."""
        return row_place(self.site, self.name) if self.layer is not None else self.site


def row_place(site: Where, name: str) -> Where:
    """The place of row `name`, made by the item at `site`."""
    return Where(site.file, site.line, f"{site.path} {name}")


class OutputKind(str, Enum):
    """What the network returns: one tensor (its last row), or its `outputs:` as PyTorch structures them."""

    TENSOR = "tensor"
    TUPLE = "tuple"
    LIST = "list"
    DICT = "dict"
    NAMEDTUPLE = "namedtuple"  # a tuple whose fields are also attributes (typing.NamedTuple)


@record
class Outputs:
    """A spec's `outputs:`: the rows the network returns, in order, and how (a tuple, a list, a
    dict under `keys`; for a tuple or list the keys are the positions, "0", "1", ...; a namedtuple
    called `typename` with the keys as its fields)."""

    kind: OutputKind
    keys: tuple[str, ...]
    nodes: tuple[int, ...]
    typename: str | None = None  # NAMEDTUPLE: the class's name


@record
class Graph:
    """A network: its input shape and its nodes in execution order (`nodes[0]` is the input)."""

    name: str
    input_shape: Shape
    nodes: tuple[Node, ...]
    # dotted prefix -> what made it (`sequential`, `residual`, `parallel` or a block's name)
    containers: Mapping[str, str] = field(default_factory=dict)
    file: str | None = None
    outputs: Outputs | None = None  # the spec's `outputs:`; None: the last row is the one output

    def output_nodes(self) -> tuple[int, ...]:
        """The nodes the network returns: its `outputs:`, else its last row."""
        return self.outputs.nodes if self.outputs is not None else (len(self.nodes) - 1,)

    def unread(self) -> tuple[int, ...]:
        """The layers whose output no later layer reads and the network does not return: dead
        ends, usually a `from:` that skipped them by mistake. They still run (PyTorch runs every
        layer of the forward), live only while they run, and cost their MACs."""
        read = {j for node in self.nodes for j in node.inputs} | set(self.output_nodes())
        return tuple(i for i in range(1, len(self.nodes)) if i not in read)

    def index(self, name: str) -> int:
        for i, node in enumerate(self.nodes):
            if node.name == name:
                return i
        raise KeyError(name)
