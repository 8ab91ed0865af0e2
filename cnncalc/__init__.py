"""cnncalc: shapes, parameters, memory and MACs of convolutional networks from a YAML spec.

The core (this package minus `torch_bridge`) never imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .analysis import DType, Report, analyze, collapse
from .errors import CnncalcError, SpecError
from .graph import Graph
from .quantities import Quantity
from .version import __version__

# the public names, which strict type checkers take as re-exported; `cnncalc.from_torch` is one too,
# left out here as it imports torch (see __getattr__)
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
]


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


def __getattr__(name: str) -> Any:
    # `cnncalc.from_torch` imports torch, so only when it is asked for: `import cnncalc` stays torch-free.
    if name == "from_torch":
        from .torch_bridge.importer import from_torch

        return from_torch
    raise AttributeError(f"module 'cnncalc' has no attribute {name!r}")


__all__ = ["CnncalcError", "DType", "Graph", "Report", "SpecError", "__version__", "analyze", "collapse", "load"]
