"""`cnncalc export --to torch`: the graph as readable PyTorch source, written without importing torch.

Each row's module comes from the same place as the bridge's (`Layer.torch_module`, which also
says which of its arguments are PyTorch's defaults and how many are positional), so the
exported model and `cnncalc.to_torch(graph)` are the same network: the same modules under the same
dotted names, hence the same `state_dict` keys. A type with a `torch_expression` (residual
adds, concatenations, products, crops) is written as that plain expression (`x + shortcut`, `torch.cat`,
`x * scale`, `x[:, :, 4:68, 4:68]`). A row's output
that only the next row reads stays in `x`; any other gets a variable named after its row. A row
with a `parent_parameter` (ConvNeXt's layer scale) is a bare `nn.Parameter` of its parent,
multiplied in; a module `torch.nn` lacks is defined in the file, copied from the bridge's
cnncalc/torch_bridge/modules.py and held_modules.py.

Every use of a spec's block definition becomes an instance of one class per definition, as
torchvision's source writes `Bottleneck` once: the arguments that differ between the uses
(channels, strides) are the class's parameters, and a part that only some uses have (a
projection shortcut, `when: $down`) is built when its flag is true and skipped in `forward`
otherwise. A use that cannot share its definition's class (one that reads more than one
outside tensor, say, or one holding a parent's parameter) gets a class of its own, or is
written row by row.
"""

from __future__ import annotations

import re

from ..analysis import analyze
from ..errors import CnncalcError
from ..graph import Graph, OutputKind
from ..layers import Shape
from ..module_names import check_module_name
from ..version import __version__
from . import human
from .export_classes import _block_uses, _class_source, _classes, _instance, _unique, _Use
from .export_spelling import (
    _attribute_ok,
    _class_name,
    _constructor,
    _indent,
    _open_containers,
    _path,
    _strip_leading_blank,
    _variable,
    own_module_sources,
)


def to_torch_source(graph: Graph, input_shape: Shape | None = None) -> str:
    """Python source defining an `nn.Module` class for `graph` (and one per block definition),
    with a `__main__` smoke run."""
    report = analyze(graph, input_shape=input_shape)
    shapes = [row.output_shape for row in report.rows]
    nodes = graph.nodes
    users: list[set[int]] = [set() for _ in nodes]
    for i, node in enumerate(nodes):
        for j in node.inputs:
            users[j].add(i)
    for node in nodes[1:]:
        if node.calls is None:
            check_module_name(node.name, node.where)

    uses = _block_uses(graph, users, shapes)
    classes = _classes(uses, _class_name(graph.name))
    use_at = {use.first: use for use in uses}

    # the top level: rows outside the block uses, and one item per use
    items: list[tuple[int, _Use | None]] = []  # (graph index of the item's output, use)
    i = 1
    while i < len(nodes):
        if i in use_at:
            items.append((use_at[i].last, use_at[i]))
            i = use_at[i].last + 1
        else:
            items.append((i, None))
            i += 1
    items.insert(0, (0, None))
    item_of = {i: k for k, (out, use) in enumerate(items) for i in (range(use.first, use.last + 1) if use else [out])}
    last = len(nodes) - 1
    taken = {"x", "self", "torch", "nn"}
    names: dict[int, str] = {}
    kept = set(graph.output_nodes()) if graph.outputs is not None else set()
    for k, (out, _) in enumerate(items):
        readers = {item_of[u] for u in users[out]} - {k}
        plain = (out == last or readers == {k + 1}) and out not in kept  # an output keeps its own variable
        names[out] = "x" if plain else _variable(nodes[out].name if out else "x0", taken)
    for i in sorted(kept - set(names)):  # inside a block use's class: not a variable of forward
        use = items[item_of[i]][1]
        raise CnncalcError(
            f"cannot export: the output row '{nodes[i].name}' is inside the block '{use.prefix if use else ''}', "
            "whose exported class returns only its last row",
            where=nodes[i].where,
            hint="name the block's last row (or a row outside blocks) in 'outputs:'",
        )
    items.pop(0)

    top_level_ok = all(_attribute_ok(node.name.split(".")[0]) for node in nodes[1:])
    init: list[str] = []
    forward: list[str] = []
    made: set[str] = set()
    own: dict[str, str] = {}  # the bridge's own module classes this model uses, by name: their source
    for node in nodes[1:]:
        assert node.layer is not None
        ins = [shapes[j] for j in node.inputs]
        if node.layer.torch_expression(["a"] * len(ins), ins) is None and node.layer.parent_parameter(ins) is None:
            name = node.layer.torch_module(ins).name
            if name in own_module_sources():
                own.setdefault(name, own_module_sources()[name])
    for out, use in items:
        node = nodes[out]
        if use is None:
            assert node.layer is not None
            args = [names[j] for j in node.inputs]
            expr = node.layer.torch_expression(args, [shapes[j] for j in node.inputs])
            if expr is not None:  # a merge: a plain expression, no module
                forward.append(f"{names[out]} = {expr}" + ("" if names[out] != "x" else f"  # {node.name}"))
                continue
            if node.calls is not None:  # runs an earlier row's module again
                forward.append(f"{names[out]} = {_path(node.calls.split('.'))}({', '.join(args)})")
                continue
            parts = node.name.split(".")
        else:
            args = [names[use.source]]
            parts = use.prefix.split(".")
        _open_containers(parts, made, graph.containers, init)
        held = node.layer.parent_parameter([shapes[j] for j in node.inputs]) if use is None and node.layer else None
        if held is not None:  # a bare parameter of the parent (layer scale, class token), its expression
            shape, value = held
            parameter = f"nn.Parameter(torch.full({shape!r}, {value!r}))"
            if _attribute_ok(parts[-1]):
                init.append(f"{_path(parts)} = {parameter}")
                reference = _path(parts)
            else:
                init.append(f"{_path(parts[:-1])}.register_parameter({parts[-1]!r}, {parameter})")
                reference = f"{_path(parts[:-1])}.get_parameter({parts[-1]!r})"
            ins = [shapes[j] for j in node.inputs]
            buffers = []
            for buffer, source, persistent in node.layer.held_buffers(ins):  # type: ignore[union-attr]
                init.append(f"{_path(parts[:-1])}.register_buffer({buffer!r}, {source}, persistent={persistent})")
                buffers.append(f"{_path(parts[:-1])}.get_buffer({buffer!r})")
            expression = node.layer.parent_expression(args[0], reference, buffers)  # type: ignore[union-attr]
            forward.append(f"{names[out]} = {expression}")
            continue
        if use is None:
            assert node.layer is not None
            init.append(f"{_path(parts)} = {_constructor(node.layer.torch_module([shapes[j] for j in node.inputs]))}")
        else:
            init.append(f"{_path(parts)} = {_instance(classes, use)}")
        forward.append(f"{names[out]} = {_path(parts)}({', '.join(args)})")

    class_name = _class_name(graph.name)
    base = "nn.Module" if top_level_ok else "nn.ModuleDict"
    out_shape = report.rows[-1].output_shape
    annotation, returns, shapes_of = _returned(graph, names)
    returned = (
        f"output {list(out_shape)}"
        if graph.outputs is None
        else f"outputs ({report.returns.value}) "
        + ", ".join(f"{o.key}: {list(o.output_shape)}" for o in report.outputs)
    )
    named = graph.outputs if graph.outputs is not None and graph.outputs.kind is OutputKind.NAMEDTUPLE else None
    typing = [
        *(["Any"] if any(re.search(r"\bAny\b", source) for source in own.values()) else []),
        *(["NamedTuple"] if named is not None else []),
    ]
    lines = [
        f'"""{graph.name} as PyTorch modules, written by cnncalc {__version__} (cnncalc export --to torch).',
        "",
        f"Input {list(report.input_shape)} (channels first, no batch axis), {returned}; "
        f"{report.totals.params:,} parameters, {human(report.totals.macs)} MACs per sample.",
        "Module names match the rows of `cnncalc summary`, so the state_dict keys match",
        "`cnncalc.to_torch(cnncalc.load(...))`; weights are PyTorch's default initialisation.",
        '"""',
        "",
        *([f"from typing import {', '.join(typing)}", ""] if typing else []),
        *(["import math", ""] if any(re.search(r"\bmath\.", source) for source in own.values()) else []),
        "import torch",
        *(["import torch.nn.functional as F"] if any("F." in source for source in own.values()) else []),
        "from torch import nn",
        "",
        "",
        *(
            [
                f"class {named.typename}(NamedTuple):",
                *(f"    {key}: torch.Tensor" for key in named.keys),
                "",
                "",
            ]
            if named is not None
            else []
        ),
        *[line for source in own.values() for line in (*source.split("\n"), "", "")],
    ]
    for written in _unique(classes.values()):
        lines += [*_class_source(written, graph), "", ""]
    lines += [
        f"class {class_name}({base}):",
        "    def __init__(self) -> None:",
        "        super().__init__()",
        *_indent(_strip_leading_blank(init), 2),
        "",
        f"    def forward(self, {names[0]}: torch.Tensor) -> {annotation}:",
        *_indent(forward, 2),
        f"        return {returns}",
        "",
        "",
        'if __name__ == "__main__":',
        f"    model = {class_name}().eval()",
        "    with torch.no_grad():",
        f"        y = model(torch.randn(1, {', '.join(map(str, report.input_shape))}))",
        *(
            ['    print(f"output {list(y.shape)}, {sum(p.numel() for p in model.parameters()):,} parameters")']
            if graph.outputs is None
            else [
                f"    shapes = {shapes_of}",
                '    print(f"outputs {shapes}, {sum(p.numel() for p in model.parameters()):,} parameters")',
            ]
        ),
    ]
    return "\n".join(lines) + "\n"


def _returned(graph: Graph, names: dict[int, str]) -> tuple[str, str, str]:
    """forward's return annotation and expression, and the smoke run's expression for the shapes of `y`."""
    outputs = graph.outputs
    if outputs is None:
        return "torch.Tensor", "x", "list(y.shape)"
    variables = [names[i] for i in outputs.nodes]
    if outputs.kind is OutputKind.DICT:
        pairs = ", ".join(f"{key!r}: {v}" for key, v in zip(outputs.keys, variables))
        return "dict[str, torch.Tensor]", f"{{{pairs}}}", "{k: list(v.shape) for k, v in y.items()}"
    if outputs.kind is OutputKind.LIST:
        return "list[torch.Tensor]", f"[{', '.join(variables)}]", "[list(v.shape) for v in y]"
    if outputs.kind is OutputKind.NAMEDTUPLE:
        pairs = ", ".join(f"{key}={v}" for key, v in zip(outputs.keys, variables))
        return (
            str(outputs.typename),
            f"{outputs.typename}({pairs})",
            "{k: list(v.shape) for k, v in y._asdict().items()}",
        )
    return (
        "tuple[torch.Tensor, ...]",
        f"({', '.join(variables)},)" if len(variables) == 1 else f"({', '.join(variables)})",
        "[list(v.shape) for v in y]",
    )
