"""What an import gives (ImportedSpec) and how it fails (TorchImportError)."""

from __future__ import annotations

from ...analysis import Report, analyze
from ...errors import CnncalcError
from ...graph import Graph
from ...records import record
from ...render import notebook

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

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.graph.input_shape))
        unused = f", {len(self.unused)} unused modules" if self.unused else ""
        return (
            f"<ImportedSpec {self.graph.name}: input {shape}, {len(self.graph.nodes) - 1} layers{unused}; "
            f".yaml ({self.yaml.count(chr(10))} lines), .data, .graph>"
        )

    def __str__(self) -> str:
        """The spec's YAML: `print(cnncalc.from_torch(...))` shows what `cnncalc import` writes."""
        return self.yaml

    def report(self) -> Report:
        """The analysed summary (`cnncalc.analyze(imported)` does the same)."""
        return analyze(self.graph)

    def _repr_markdown_(self) -> str:
        return notebook.to_markdown(self.report())

    def _repr_html_(self) -> str:
        return notebook.to_html(self.report())
