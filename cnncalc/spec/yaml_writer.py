"""Spec data as readable YAML: flow style for a layer's arguments, block style for structures.

Torch-free: the importer writes with it, and so can anything that builds a spec as plain data.
What is a section is known from where it stands, never from a key's name alone: the spec's top
level, a block definition and a structure item (sequential, residual, parallel) hold sections; a
layer's or a block use's arguments never do, so a block argument named `shortcut` stays an argument.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, Sequence

from .language import STRUCTURES

SECTIONS = ("layers", "body", "shortcut", "after")  # the keys of a structure that hold lists of items


def _flow(value: Any) -> str:
    return _flow_text(_frozen(value))


def _frozen(value: Any) -> Any:
    """A hashable stand-in that keeps what the YAML depends on (True and 1 stay apart)."""
    if isinstance(value, dict):
        return (dict, tuple((key, _frozen(item)) for key, item in value.items()))
    if isinstance(value, list):
        return (list, tuple(_frozen(item) for item in value))
    return (type(value), value)


def _thawed(frozen: Any) -> Any:
    kind, content = frozen
    if kind is dict:
        return {key: _thawed(item) for key, item in content}
    if kind is list:
        return [_thawed(item) for item in content]
    return content


@functools.lru_cache(maxsize=4096)
def _flow_text(frozen: Any) -> str:
    """One flow-style YAML value; remembered, as a network repeats its layers' arguments many times."""
    import yaml

    text = yaml.safe_dump(_thawed(frozen), default_flow_style=True, sort_keys=False, width=10**9)
    return text.removesuffix("\n...\n").strip()


def _emit_items(items: list[Any], indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    for item in items:
        if isinstance(item, str):
            lines.append(f"{pad}- {item}")
            continue
        ((written, value),) = item.items()
        if written in STRUCTURES and isinstance(value, dict):  # a structure's sections in block style
            lines.append(f"{pad}- {written}:")
            lines.extend(_emit_mapping(value, indent + 4))
        else:
            lines.append(f"{pad}- {written}: {_flow(value)}")
    return lines


def _emit_mapping(mapping: Mapping[str, Any], indent: int) -> list[str]:
    """The keys of the spec, of a block definition or of a structure item: sections in block style."""
    pad = " " * indent
    lines = []
    for key, value in mapping.items():
        if key in SECTIONS and isinstance(value, list) and value:
            lines.append(f"{pad}{key}:")
            lines.extend(_emit_items(value, indent + 2))
        elif key == "branches" and isinstance(value, list) and value:
            lines.append(f"{pad}branches:")
            for branch in value:
                lines.append(f"{pad}  - name: {_flow(branch['name'])}")
                lines.append(f"{pad}    layers:" if branch["layers"] else f"{pad}    layers: []")
                lines.extend(_emit_items(branch["layers"], indent + 6))
        elif key == "blocks" and isinstance(value, dict) and value:
            lines.append(f"{pad}blocks:")
            for name, body in value.items():
                lines.append(f"{pad}  {name}:")
                lines.extend(_emit_mapping(body, indent + 4))
        else:
            lines.append(f"{pad}{key}: {_flow(value)}")
    return lines


def to_yaml(data: Mapping[str, Any], header: Sequence[str] = ()) -> str:
    """A spec's plain data as readable YAML: flow style for a layer's arguments, block style for structures."""
    return "\n".join([*(f"# {line}" for line in header), *_emit_mapping(data, 0)]) + "\n"
