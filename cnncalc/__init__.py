"""cnncalc: shapes, parameters, memory and MACs of convolutional networks from a YAML spec.

The core (this package minus `torch_bridge`) never imports torch.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .analysis import DType, Report, analyze, collapse
from .errors import CnncalcError, SpecError
from .graph import Graph
from .quantities import Quantity
from .version import __version__

if TYPE_CHECKING:
    from .torch_bridge import GraphModule


def load(source: str | Path | Mapping[str, Any], args: Mapping[str, Any] | None = None) -> Graph:
    """A network's graph from a spec file, a built-in name (`"vgg16"`, `"resnet50"`), YAML text or
    a dict (the spec as `yaml.safe_load` reads it), with `args` overriding the spec's top-level
    arguments (`{"layers": [3, 4, 6, 3]}`). Text is YAML when it is not an existing file and has a
    newline, starts with `{` or holds `: ` (so `resnet.yaml:resnet50` and `torchvision:resnet50`
    stay names)."""
    from . import spec
    from .spec import library

    if isinstance(source, Mapping):
        return spec.parse(source, file="<dict>", args=args)
    text = str(source)
    if (
        isinstance(source, str)
        and ("\n" in text or text.lstrip().startswith("{") or ": " in text)
        and not library.is_file(Path(text))
    ):
        return spec.parse_text(text, file="<text>", args=args)
    return spec.load(library.resolve(text), args=args)


def to_torch(graph: Graph, input_shape: tuple[int, ...] | None = None) -> GraphModule:
    """The graph as a real `torch.nn.Module` whose `named_modules()` match the rows (randomly
    initialised, CPU, float32); imports torch (the `torch` extra). A function here, not a method of
    `Graph`, so that the graph never imports the bridge above it."""
    from .torch_bridge import build

    return build(graph, input_shape)


def _show_reports_in_ipython() -> None:
    # Inside IPython (Jupyter's kernel), a report shows itself as its table: the renderer registers
    # itself as IPython's display formatter for `Report`. Only there, so that elsewhere `import
    # cnncalc` loads no presentation code (the analysis never imports it: it sits above).
    get_ipython = getattr(sys.modules.get("IPython"), "get_ipython", None)
    shell = get_ipython() if get_ipython is not None else None
    if shell is not None:
        from .render.notebook import show_reports_in

        show_reports_in(shell)


_show_reports_in_ipython()


def __getattr__(name: str) -> Any:
    # `cnncalc.from_torch` imports torch, so only when it is asked for: `import cnncalc` stays torch-free.
    if name == "from_torch":
        from .torch_bridge.importer import from_torch

        return from_torch
    raise AttributeError(f"module 'cnncalc' has no attribute {name!r}")


__all__ = [
    "CnncalcError",
    "DType",
    "Graph",
    "Quantity",
    "Report",
    "SpecError",
    "__version__",
    "analyze",
    "collapse",
    "load",
    "to_torch",
]
