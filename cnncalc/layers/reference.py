"""The layer types as a Markdown table, written from the registry (docs/spec.md holds a copy that
tests/test_layers.py checks, and rewrites with `pytest --regen-golden`)."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from .base import ALIASES, REGISTRY, Layer


def markdown_table() -> str:
    """One row per registered type: its name (other spellings), arguments (defaults), summary."""
    lines = ["| type (other spellings) | arguments (default) | what it is |", "| --- | --- | --- |"]
    for kind, cls in REGISTRY.items():
        aliases = [a for a, k in ALIASES.items() if k == kind]
        name = f"`{kind}`" + (f" ({', '.join(f'`{a}`' for a in aliases)})" if aliases else "")
        lines.append(f"| {name} | {_arguments(cls)} | {_cell(cls.summary)} |")
    return "\n".join(lines) + "\n"


def _arguments(cls: type[Layer]) -> str:
    texts = []
    for f in fields(cls):
        notes = [f"`{alias}`" for alias in f.metadata.get("aliases", ())]
        if f.default is not MISSING:
            # a null default means something the doc line says (a pool's stride: the kernel)
            notes.append(f.metadata.get("doc") or "null" if f.default is None else _value(f.default))
        texts.append(f"`{f.name}`" + (f" ({', '.join(notes)})" if notes else ""))
    return ", ".join(texts) or "none"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f"`{value}`"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
