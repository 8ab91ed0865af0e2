"""`cnncalc export --to torch`: the graph as readable PyTorch source, written without importing torch.

Each row's module comes from the same place as the bridge's (`Layer.torch_module`), so the
exported model and `Graph.to_torch()` are the same network: the same modules under the same
dotted names, hence the same `state_dict` keys. Residual adds and concatenations have no
parameters and are written as plain expressions (`x + shortcut`, `torch.cat`). A row's output
that only the next row reads stays in `x`; any other gets a variable named after its row.
"""

from __future__ import annotations

import keyword
import re
from typing import Any, Mapping, Sequence

from . import __version__
from .analysis import analyze
from .graph import Graph
from .layers import Shape, TorchModule
from .module_names import RESERVED, check_module_name  # noqa: F401  (RESERVED: tests/test_export.py)
from .render import human

# PyTorch's defaults for the keyword arguments the layer types pass, by class family; an argument
# equal to its default is left out of the source. tests/test_export.py checks every entry against
# the real signatures.
TORCH_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "Conv": {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True},
    "ConvTranspose": {"stride": 1, "padding": 0, "output_padding": 0, "dilation": 1, "groups": 1, "bias": True},
    "MaxPool": {"padding": 0, "dilation": 1, "ceil_mode": False},
    "AvgPool": {"padding": 0, "ceil_mode": False, "count_include_pad": True},
    "BatchNorm": {"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True},
    "Linear": {"bias": True},
    "LocalResponseNorm": {"alpha": 1e-4, "beta": 0.75, "k": 1.0},
    "Dropout": {"p": 0.5},
    "LeakyReLU": {"negative_slope": 0.01},
    "ELU": {"alpha": 1.0},
    "GELU": {"approximate": "none"},
}
# How many leading arguments are written positionally (`nn.Conv2d(3, 64, ...)`), by family.
POSITIONAL: Mapping[str, int] = {"Conv": 2, "ConvTranspose": 2, "Linear": 2, "BatchNorm": 1, "LocalResponseNorm": 1,
                                 "AdaptiveAvgPool": 1, "AdaptiveMaxPool": 1, "MaxPool": 1, "AvgPool": 1}  # fmt: skip


_FAMILY = re.compile(r"^(.*?)(\d+d)?$")


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
    for i, node in enumerate(nodes[1:], start=1):
        assert node.layer is not None
        spec = node.layer.torch_module([shapes[j] for j in node.inputs])
        args = [names[j] for j in node.inputs]
        if spec.name in ("Add", "Concat"):
            expr = " + ".join(args) if spec.name == "Add" else f"torch.cat([{', '.join(args)}], dim=1)"
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
        "from torch import nn",
        "",
        "",
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
    family = _FAMILY.match(spec.name).group(1)  # type: ignore[union-attr]
    defaults = TORCH_DEFAULTS.get(family, {})
    kwargs = {k: _compact(v) for k, v in spec.kwargs.items()}
    if family in ("MaxPool", "AvgPool") and kwargs.get("stride") == kwargs.get("kernel_size"):
        del kwargs["stride"]  # PyTorch's default stride is the kernel
    items = list(kwargs.items())
    positional = POSITIONAL.get(family, 0)
    texts = [repr(v) for _, v in items[:positional]]
    texts += [f"{k}={v!r}" for k, v in items[positional:] if not (k in defaults and v == defaults[k] and type(v) is type(defaults[k]))]
    return f"nn.{spec.name}({', '.join(texts)})"


def _compact(value: Any) -> Any:
    """(3, 3) -> 3: PyTorch expands an int to every axis."""
    if isinstance(value, tuple) and value and all(v == value[0] for v in value) and isinstance(value[0], int):
        return value[0]
    return value


def _indent(lines: Sequence[str], levels: int) -> list[str]:
    return [("    " * levels + line) if line else "" for line in lines]


def _strip_leading_blank(lines: list[str]) -> list[str]:
    return lines[1:] if lines and lines[0] == "" else lines
