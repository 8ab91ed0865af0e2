"""`cnncalc export --to torch`: the graph as readable PyTorch source, written without importing torch.

Each row's module comes from the same place as the bridge's (`Layer.torch_module`, which also
says which of its arguments are PyTorch's defaults and how many are positional), so the
exported model and `Graph.to_torch()` are the same network: the same modules under the same
dotted names, hence the same `state_dict` keys. A type with a `torch_expression` (residual
adds, concatenations, products, crops) is written as that plain expression (`x + shortcut`, `torch.cat`,
`x * scale`, `x[:, :, 4:68, 4:68]`). A row's output
that only the next row reads stays in `x`; any other gets a variable named after its row.
"""

from __future__ import annotations

import ast
import keyword
import re
from functools import cache
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .analysis import analyze
from .graph import Graph
from .layers import Shape, TorchModule
from .module_names import check_module_name
from .render import human


def to_torch_source(graph: Graph, input_shape: Shape | None = None) -> str:
    """Python source defining an `nn.Module` class for `graph`, with a `__main__` smoke run."""
    report = analyze(graph, input_shape=input_shape)
    shapes = [row.output_shape for row in report.rows]
    nodes = graph.nodes
    users: list[set[int]] = [set() for _ in nodes]
    for i, node in enumerate(nodes):
        for j in node.inputs:
            users[j].add(i)
    for node in nodes[1:]:
        check_module_name(node.name, node.where)

    last = len(nodes) - 1
    taken = {"x", "self", "torch", "nn"}
    names: list[str] = []
    for i, node in enumerate(nodes):
        if i == last or users[i] == {i + 1}:
            names.append("x")
        else:
            names.append(_variable(node.name if i else "x0", taken))

    top_level_ok = all(_attribute_ok(node.name.split(".")[0]) for node in nodes[1:])
    init: list[str] = []
    forward: list[str] = []
    made: set[str] = set()
    own: dict[str, str] = {}  # the bridge's own module classes this model uses, by name: their source
    for i, node in enumerate(nodes[1:], start=1):
        assert node.layer is not None
        args = [names[j] for j in node.inputs]
        expr = node.layer.torch_expression(args, [shapes[j] for j in node.inputs])
        if expr is not None:  # a merge: a plain expression, no module
            forward.append(f"{names[i]} = {expr}" + ("" if names[i] != "x" else f"  # {node.name}"))
            continue
        parts = node.name.split(".")
        new = [depth for depth in range(1, len(parts)) if ".".join(parts[:depth]) not in made]
        if new:  # one comment for the containers this row opens, naming the innermost
            innermost = ".".join(parts[: new[-1]])
            what = graph.containers.get(innermost)
            init += ["", f"# {innermost}" + (f" ({what})" if what else "")]
        for depth in new:
            made.add(".".join(parts[:depth]))
            init.append(f"{_path(parts[:depth])} = nn.ModuleDict()")
        held = node.layer.parent_parameter([shapes[j] for j in node.inputs])
        if held is not None:  # a bare parameter of the parent (layer scale), multiplied in
            shape, value = held
            parameter = f"nn.Parameter(torch.full({shape!r}, {value!r}))"
            if _attribute_ok(parts[-1]):
                init.append(f"{_path(parts)} = {parameter}")
                reference = _path(parts)
            else:
                init.append(f"{_path(parts[:-1])}.register_parameter({parts[-1]!r}, {parameter})")
                reference = f"{_path(parts[:-1])}.get_parameter({parts[-1]!r})"
            forward.append(f"{names[i]} = {args[0]} * {reference}")
            continue
        spec = node.layer.torch_module([shapes[j] for j in node.inputs])
        if spec.name in own_module_sources():
            own.setdefault(spec.name, own_module_sources()[spec.name])
        init.append(f"{_path(parts)} = {_constructor(spec)}")
        forward.append(f"{names[i]} = {_path(parts)}({', '.join(args)})")

    class_name = _class_name(graph.name)
    base = "nn.Module" if top_level_ok else "nn.ModuleDict"
    out = report.rows[-1].output_shape
    lines = [
        f'"""{graph.name} as PyTorch modules, written by cnncalc {__version__} (cnncalc export --to torch).',
        "",
        f"Input {list(report.input_shape)} (channels first, no batch axis), output {list(out)}; "
        f"{report.totals.params:,} parameters, {human(report.totals.macs)} MACs per sample.",
        "Module names match the rows of `cnncalc summary`, so the state_dict keys match",
        "`cnncalc.load(...).to_torch()`; weights are PyTorch's default initialisation.",
        '"""',
        "",
        "import torch",
        *(["import torch.nn.functional as F"] if any("F." in source for source in own.values()) else []),
        "from torch import nn",
        "",
        "",
        *[line for source in own.values() for line in (*source.split("\n"), "", "")],
        f"class {class_name}({base}):",
        "    def __init__(self) -> None:",
        "        super().__init__()",
        *_indent(_strip_leading_blank(init), 2),
        "",
        f"    def forward(self, {names[0]}: torch.Tensor) -> torch.Tensor:",
        *_indent(forward, 2),
        "        return x",
        "",
        "",
        'if __name__ == "__main__":',
        f"    model = {class_name}().eval()",
        "    with torch.no_grad():",
        f"        y = model(torch.randn(1, {', '.join(map(str, report.input_shape))}))",
        '    print(f"output {list(y.shape)}, {sum(p.numel() for p in model.parameters()):,} parameters")',
    ]
    return "\n".join(lines) + "\n"


def _attribute_ok(part: str) -> bool:
    return part.isidentifier() and not keyword.iskeyword(part)


def _path(parts: Sequence[str]) -> str:
    """`self.layer1["0"].conv1`: attribute access where the part allows it, item access otherwise."""
    text = "self"
    for part in parts:
        text += f".{part}" if _attribute_ok(part) else f'["{part}"]'
    return text


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


def _constructor(spec: TorchModule) -> str:
    """`nn.Conv2d(3, 64, kernel_size=3)`: the layer's leading arguments positionally, then every
    keyword argument that differs from PyTorch's default (both as the layer type declares them)."""
    kwargs = {k: _compact(v) for k, v in spec.kwargs.items()}
    defaults = {k: _compact(v) for k, v in spec.defaults.items()}
    items = list(kwargs.items())
    texts = [repr(v) for _, v in items[: spec.positional]]
    texts += [f"{k}={v!r}" for k, v in items[spec.positional :] if not (k in defaults and v == defaults[k] and type(v) is type(defaults[k]))]
    prefix = "" if spec.name in own_module_sources() else "nn."
    return f"{prefix}{spec.name}({', '.join(texts)})"


@cache
def own_module_sources() -> dict[str, str]:
    """The source of each class in cnncalc/torch_bridge/modules.py (the modules `torch.nn` lacks),
    read as text, so that exporting stays torch-free; the exported file defines those it uses."""
    path = Path(__file__).parent / "torch_bridge" / "modules.py"
    text = path.read_text()
    return {node.name: ast.get_source_segment(text, node) or "" for node in ast.parse(text).body if isinstance(node, ast.ClassDef)}


def _compact(value: Any) -> Any:
    """(3, 3) -> 3: PyTorch expands an int to every axis."""
    if isinstance(value, tuple) and value and all(v == value[0] for v in value) and isinstance(value[0], int):
        return value[0]
    return value


def _indent(lines: Sequence[str], levels: int) -> list[str]:
    return [("    " * levels + line) if line else "" for line in lines]


def _strip_leading_blank(lines: list[str]) -> list[str]:
    return lines[1:] if lines and lines[0] == "" else lines
