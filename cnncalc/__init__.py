"""cnncalc: shapes, parameters, memory and MACs of convolutional networks from a YAML spec.

The core (this package minus `torch_bridge`) never imports torch.
"""

from __future__ import annotations

from pathlib import Path

from .analysis import DType, Report, analyze, collapse
from .errors import CnncalcError, SpecError
from .graph import Graph

__version__ = "0.1.0"


def load(source: str | Path | dict) -> Graph:
    """A network's graph from a spec file, a built-in name (`"vgg16"`), YAML text or a dict
    (the spec as `yaml.safe_load` reads it): text is YAML when it is not an existing file and
    has a newline, starts with `{` or holds a `:`."""
    from . import library, spec

    if isinstance(source, dict):
        return spec.parse(_lined(source), file="<dict>")
    text = str(source)
    if isinstance(source, str) and ("\n" in text or text.lstrip().startswith("{") or ":" in text) and not library.is_file(Path(text)):
        return spec.parse_text(text, file="<text>")
    return spec.load(library.resolve(text))


def _lined(value: object) -> object:
    """A dict's mappings and lists as the spec reader's types (without line numbers)."""
    from .yaml_lines import LineDict, LineList

    if isinstance(value, dict):
        mapping = LineDict()
        mapping.line = None  # type: ignore[assignment]
        mapping.update((k, _lined(v)) for k, v in value.items())
        return mapping
    if isinstance(value, (list, tuple)):
        items = LineList()
        items.line = None  # type: ignore[assignment]
        items.extend(_lined(v) for v in value)
        return items
    return value


def __getattr__(name: str):
    # `cnncalc.from_torch` imports torch, so only when it is asked for: `import cnncalc` stays torch-free.
    if name == "from_torch":
        from .torch_bridge.importer import from_torch

        return from_torch
    raise AttributeError(f"module 'cnncalc' has no attribute {name!r}")


__all__ = ["CnncalcError", "DType", "Graph", "Report", "SpecError", "__version__", "analyze", "collapse", "load"]
