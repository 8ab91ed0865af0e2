"""What an import gives (ImportedSpec) and how it fails (TorchImportError)."""

from __future__ import annotations

from ...errors import CnncalcError
from ...graph import Graph
from ...records import record

Shape = tuple[int, ...]


class TorchImportError(CnncalcError):
    """A PyTorch model that cannot be imported exactly: an unsupported op, or untraceable control flow."""


@record
class ImportedSpec:
    """A model imported from PyTorch: the spec as plain data, its YAML text, and its parsed graph.

    `unused` names the modules with parameters that the forward pass never calls (not in the spec).
    """

    data: dict
    yaml: str
    graph: Graph
    unused: tuple[str, ...] = ()
