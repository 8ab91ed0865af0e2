"""`cnncalc export --to torch`'s spelling: Python names, attribute paths and string literals for any
name a spec allows, a module's constructor call, nn.Module containers opened on the way to a row,
and the source of the modules `torch.nn` lacks (read as text: no torch).
"""

from __future__ import annotations

import ast
import keyword
import re
from functools import cache
from pathlib import Path
from typing import Any, Sequence

from ..layers import TorchModule


def _open_containers(parts: Sequence[str], made: set[str], containers: Any, init: list[str]) -> None:
    """`nn.ModuleDict()` for each container of `parts` not made yet, after one comment naming
    the innermost (no comment inside a block's class: `containers` None)."""
    new = [depth for depth in range(1, len(parts)) if ".".join(parts[:depth]) not in made]
    if new and containers is not None:
        innermost = ".".join(parts[: new[-1]])
        what = containers.get(innermost) if containers is not None else None
        init += ["", f"# {innermost}" + (f" ({what})" if what else "")]
    for depth in new:
        made.add(".".join(parts[:depth]))
        init.append(f"{_path(parts[:depth])} = nn.ModuleDict()")


# -- spelling -----------------------------------------------------------------------------


def _attribute_ok(part: str) -> bool:
    return part.isidentifier() and not keyword.iskeyword(part)


def _path(parts: Sequence[str]) -> str:
    """`self.layer1["0"].conv1`: attribute access where the part allows it, item access otherwise."""
    text = "self"
    for part in parts:
        text += f".{part}" if _attribute_ok(part) else f"[{_literal(part)}]"
    return text


def _literal(text: str) -> str:
    """A Python string literal for any name a spec allows (quotes and backslashes escaped),
    double-quoted as the formatter writes them unless the name holds a double quote."""
    written = repr(text)
    if written.startswith("'") and '"' not in text:
        written = '"' + written[1:-1].replace("\\'", "'") + '"'
    return written


def _variable(name: str, taken: set[str]) -> str:
    base = re.sub(r"\W", "_", name)
    if not base.isidentifier() or keyword.iskeyword(base):
        base = "_" + base
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _class_name(name: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", re.sub(r"\(.*?\)", "", name))
    text = "".join(w[0].upper() + w[1:] for w in words)
    return text if text.isidentifier() else "Network" + text


def _constructor(spec: TorchModule, slots: dict[str, str] | None = None) -> str:
    """`nn.Conv2d(3, 64, kernel_size=3)`: the layer's leading arguments positionally, then every
    keyword argument that differs from PyTorch's default (both as the layer type declares them);
    `slots` writes an argument as a class parameter's name instead of its value."""
    slots = slots or {}
    kwargs = {k: _compact(v) for k, v in spec.kwargs.items()}
    defaults = {k: _compact(v) for k, v in spec.defaults.items()}
    items = list(kwargs.items())
    texts = [slots.get(k, repr(v)) for k, v in items[: spec.positional]]
    texts += [
        f"{k}={slots.get(k, repr(v))}"
        for k, v in items[spec.positional :]
        if k in slots or not (k in defaults and v == defaults[k] and type(v) is type(defaults[k]))
    ]
    prefix = "" if spec.name in own_module_sources() else "nn."
    return f"{prefix}{spec.name}({', '.join(texts)})"


@cache
def own_module_sources() -> dict[str, str]:
    """The source of each class in cnncalc/torch_bridge/modules.py and held_modules.py (the modules
    `torch.nn` lacks), read as text, so that exporting stays torch-free; the exported file defines
    those it uses."""
    sources = {}
    for name in ("modules.py", "held_modules.py"):
        text = (Path(__file__).parents[1] / "torch_bridge" / name).read_text()
        for node in ast.parse(text).body:
            if isinstance(node, ast.ClassDef):
                sources[node.name] = ast.get_source_segment(text, node) or ""
    return sources


def _compact(value: Any) -> Any:
    """(3, 3) -> 3: PyTorch expands an int to every axis."""
    if isinstance(value, tuple) and value and all(v == value[0] for v in value) and isinstance(value[0], int):
        return value[0]
    return value


def _indent(lines: Sequence[str], levels: int) -> list[str]:
    return [("    " * levels + line) if line else "" for line in lines]


def _strip_leading_blank(lines: list[str]) -> list[str]:
    return lines[1:] if lines and lines[0] == "" else lines
