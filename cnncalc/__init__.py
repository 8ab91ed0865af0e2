"""cnncalc: shapes, parameters, memory and MACs of convolutional networks from a YAML spec.

The core (this package minus `torch_bridge`) never imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .analysis import DType, Report, analyze, collapse
from .errors import CnncalcError, SpecError
from .graph import Graph

__version__ = "0.1.0"


def load(source: str | Path, args: Mapping[str, Any] | None = None) -> Graph:
    """A network's graph from a spec file or a built-in name (`"vgg16"`, `"resnet50"`), with
    `args` overriding the spec's top-level arguments (`{"layers": [3, 4, 6, 3]}`)."""
    from . import library, spec

    return spec.load(library.resolve(str(source)), args=args)


__all__ = ["CnncalcError", "DType", "Graph", "Report", "SpecError", "__version__", "analyze", "collapse", "load"]
