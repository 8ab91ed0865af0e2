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


def __getattr__(name: str):
    # `cnncalc.from_torch` imports torch, so only when it is asked for: `import cnncalc` stays torch-free.
    if name == "from_torch":
        from .torch_bridge.importer import from_torch

        return from_torch
    raise AttributeError(f"module 'cnncalc' has no attribute {name!r}")


__all__ = ["CnncalcError", "DType", "Graph", "Report", "SpecError", "__version__", "analyze", "collapse", "load"]
