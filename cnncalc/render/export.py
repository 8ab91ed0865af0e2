"""`cnncalc export --to torch`: the graph as readable PyTorch source, written without importing torch.

Each row's module comes from the same place as the bridge's (`Layer.torch_module`, which also
says which of its arguments are PyTorch's defaults and how many are positional), so the
exported model and `Graph.to_torch()` are the same network: the same modules under the same
dotted names, hence the same `state_dict` keys. A type with a `torch_expression` (residual
adds, concatenations, products, crops) is written as that plain expression (`x + shortcut`, `torch.cat`,
`x * scale`, `x[:, :, 4:68, 4:68]`). A row's output
that only the next row reads stays in `x`; any other gets a variable named after its row. A row
with a `parent_parameter` (ConvNeXt's layer scale) is a bare `nn.Parameter` of its parent,
multiplied in; a module `torch.nn` lacks is defined in the file, copied from the bridge's
cnncalc/torch_bridge/modules.py.

Every use of a spec's block definition becomes an instance of one class per definition, as
torchvision's source writes `Bottleneck` once: the arguments that differ between the uses
(channels, strides) are the class's parameters, and a part that only some uses have (a
projection shortcut, `when: $down`) is built when its flag is true and skipped in `forward`
otherwise. A use that cannot share its definition's class (one that reads more than one
outside tensor, say, or one holding a parent's parameter) gets a class of its own, or is
written row by row.
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Sequence

from ..analysis import analyze
from ..errors import CnncalcError
from ..graph import Graph, OutputKind
from ..layers import Shape, TorchModule, layer_type
from ..module_names import check_module_name
from ..records import record
from ..version import __version__
from . import human

# what `Graph.containers` calls the structures of the spec language; any other name is a block's
STRUCTURES = frozenset({"sequential", "residual", "parallel", "repeat", "branch", "group"})
IN = -1  # a block row's reference to the block's one input


@record
class _Row:
    """One row of a block use, relative to the block: `rel` its name inside the block, `inputs`
    indices of rows of the same use (or IN), `form` the module class or the expression."""

    rel: str
    inputs: tuple[int, ...]
    form: str
    module: TorchModule | None


@dataclass
class _Use:
    prefix: str
    block: str
    first: int  # graph index of its first row
    last: int
    source: int  # graph index of the one tensor it reads
    rows: list[_Row]

    def by_rel(self) -> dict[str, _Row]:
        return {row.rel: row for row in self.rows}


@dataclass
class _Class:
    """One class written for a block definition: the fullest use, and every use it builds."""

    name: str
    full: _Use
    uses: list[_Use] = field(default_factory=list)
    missing: list[frozenset[str]] = field(default_factory=list)  # per use, its absent parts
    params: list[tuple[str, list[Any]]] = field(default_factory=list)  # name, value per use
    slots: dict[tuple[str, str], str] = field(default_factory=dict)  # (row, kwarg) -> source text
    flags: dict[str, str] = field(default_factory=dict)  # optional part -> its parameter's name


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
        if held is not None:  # a bare parameter of the parent (layer scale), multiplied in
            shape, value = held
            parameter = f"nn.Parameter(torch.full({shape!r}, {value!r}))"
            if _attribute_ok(parts[-1]):
                init.append(f"{_path(parts)} = {parameter}")
                reference = _path(parts)
            else:
                init.append(f"{_path(parts[:-1])}.register_parameter({parts[-1]!r}, {parameter})")
                reference = f"{_path(parts[:-1])}.get_parameter({parts[-1]!r})"
            forward.append(f"{names[out]} = {args[0]} * {reference}")
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
        "`cnncalc.load(...).to_torch()`; weights are PyTorch's default initialisation.",
        '"""',
        "",
        *([f"from typing import {', '.join(typing)}", ""] if typing else []),
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


# -- block uses ---------------------------------------------------------------------------


def _block_uses(graph: Graph, users: list[set[int]], shapes: list[Shape]) -> list[_Use]:
    """Each outermost use of a block definition that reads one tensor and whose rows only its
    last row's output leaves."""
    nodes = graph.nodes
    # a block's uses; not the structures, nor a multi-output layer's pieces (chunk, split: a layer type)
    prefixes = sorted(
        (p for p, what in graph.containers.items() if what not in STRUCTURES and layer_type(what) is None),
        key=lambda p: p.count("."),
    )
    uses: list[_Use] = []
    claimed: set[int] = set()
    for prefix in prefixes:
        inside = [i for i, node in enumerate(nodes) if node.name.startswith(prefix + ".")]
        if not inside or claimed & set(inside) or inside != list(range(inside[0], inside[-1] + 1)):
            continue
        first, last = inside[0], inside[-1]
        sources = {j for i in inside for j in nodes[i].inputs if j < first}
        leaks = any(u > last for i in inside[:-1] for u in users[i])
        held = any(nodes[i].layer.parent_parameter([shapes[j] for j in nodes[i].inputs]) is not None for i in inside)  # type: ignore[union-attr]
        # a call of a module outside the block cannot be written inside the block's class
        calls_out = any(nodes[i].calls is not None and not nodes[i].calls.startswith(prefix + ".") for i in inside)  # type: ignore[union-attr]
        if len(sources) != 1 or leaks or held or calls_out:  # a parent's parameter: written row by row
            continue
        rows = []
        for i in inside:
            node = nodes[i]
            assert node.layer is not None
            inputs = tuple(IN if j < first else j - first for j in node.inputs)
            expr = node.layer.torch_expression(
                [f"\0{k}\0" for k in range(len(node.inputs))], [shapes[j] for j in node.inputs]
            )
            if node.calls is not None:  # runs the block's own module again: `self.relu(x)`
                expr = f"{_path(node.calls[len(prefix) + 1 :].split('.'))}(\0{0}\0)"
            module = None if expr is not None else node.layer.torch_module([shapes[j] for j in node.inputs])
            rows.append(_Row(node.name[len(prefix) + 1 :], inputs, expr if expr is not None else module.name, module))  # type: ignore[union-attr]
        uses.append(_Use(prefix, graph.containers[prefix], first, last, sources.pop(), rows))
        claimed |= set(inside)
    return sorted(uses, key=lambda use: use.first)


def _classes(uses: list[_Use], network: str) -> dict[str, _Class]:
    """The class of each use (keyed by prefix): one per block definition where its uses agree
    up to arguments and optional parts, a numbered one for each use that does not."""
    by_block: dict[str, list[_Class]] = {}
    taken = {network, *own_module_sources()}  # the file defines the bridge's own classes too
    result: dict[str, _Class] = {}
    for use in sorted(uses, key=lambda use: -len(use.rows)):  # the fullest use first
        variants = by_block.setdefault(use.block, [])
        for variant in variants:
            missing = _missing(variant.full, use)
            if missing is not None:
                break
        else:
            base = _class_name(use.block)
            name, n = base, 2
            while name in taken:
                name, n = f"{base}{n}", n + 1
            taken.add(name)
            variant, missing = _Class(name, use), frozenset()
            variants.append(variant)
        variant.uses.append(use)
        variant.missing.append(missing)
        result[use.prefix] = variant
    for variants in by_block.values():
        for variant in variants:
            _parameters(variant)
    return result


def _missing(full: _Use, use: _Use) -> frozenset[str] | None:
    """The parts of `full` (by first name) that `use` lacks, when `use` is `full` without them;
    else None. A part may be left out when it reads one tensor and only its last row is read
    outside it: then a use without it reads that tensor instead."""
    rows = full.rows
    have = use.by_rel()
    missing = frozenset(row.rel.split(".")[0] for row in rows if row.rel not in have)
    if any(row.rel.split(".")[0] in missing for row in use.rows):
        return None
    if missing and not all(_attribute_ok(part) for part in missing):
        return None
    replaced: dict[int, int] = {}  # a left-out row's index -> what a use without it reads instead
    for part in missing:
        inside = [k for k, row in enumerate(rows) if row.rel.split(".")[0] == part]
        if inside != list(range(inside[0], inside[-1] + 1)):
            return None
        sources = {j for k in inside for j in rows[k].inputs if j == IN or j < inside[0]}
        read_outside = {j for k, row in enumerate(rows) if k not in inside for j in row.inputs if j in inside}
        if len(sources) != 1 or read_outside - {inside[-1]} or inside[-1] == len(rows) - 1:
            return None
        replaced.update(dict.fromkeys(inside, sources.pop()))
    kept = [k for k in range(len(rows)) if k not in replaced]
    if len(kept) != len(use.rows):
        return None
    position = {k: n for n, k in enumerate(kept)}

    def resolve(j: int) -> int:
        while j in replaced:
            j = replaced[j]
        return j if j == IN else position[j]

    for k, mine in zip(kept, use.rows):
        theirs = rows[k]
        if (theirs.rel, theirs.form, tuple(resolve(j) for j in theirs.inputs)) != (mine.rel, mine.form, mine.inputs):
            return None
        if (
            theirs.module
            and mine.module
            and (
                list(theirs.module.kwargs) != list(mine.module.kwargs)
                or theirs.module.positional != mine.module.positional
            )
        ):
            return None
    return missing


def _parameters(written: _Class) -> None:
    """The class's parameters: a setting that differs between its uses, named after its first
    argument (`in_channels`, then `branch2_2_out_channels` for a second), shared by settings equal in every use, or written as a multiple of
    one (`4 * out_channels`); and a flag per optional part."""
    taken = {"self", "x", "torch", "nn"}
    for part in sorted(set().union(*written.missing)):
        written.flags[part] = _variable(part, taken)
        written.params.append((written.flags[part], [part not in missing for missing in written.missing]))
    flags = len(written.params)
    for row in written.full.rows:
        if row.module is None:
            continue
        for key in row.module.kwargs:
            values = []
            for use in written.uses:
                mine = use.by_rel().get(row.rel)
                values.append(_compact(mine.module.kwargs[key]) if mine and mine.module else None)
            present = [v for v in values if v is not None]
            if all(v == present[0] and type(v) is type(present[0]) for v in present):
                continue  # the same in every use: written as a literal
            written.slots[(row.rel, key)] = _parameter(written, row.rel, key, values, flags, taken)
    written.params = written.params[flags:] + written.params[:flags]  # the settings, then the flags


def _parameter(written: _Class, rel: str, key: str, values: list[Any], flags: int, taken: set[str]) -> str:
    for n, (name, known) in enumerate(written.params[flags:], start=flags):
        pairs = [(a, b) for a, b in zip(values, known) if a is not None and b is not None]
        if all(a == b and type(a) is type(b) for a, b in pairs):
            written.params[n] = (name, [b if b is not None else a for a, b in zip(values, known)])
            return name
    for name, known in written.params[flags:]:
        pairs = [(a, b) for a, b in zip(values, known) if a is not None]
        if pairs and all(type(a) is int and type(b) is int and b > 0 and a % b == 0 for a, b in pairs):
            ratios = {a // b for a, b in pairs}
            if len(ratios) == 1 and ratios != {1}:
                return f"{ratios.pop()} * {name}"
    name = _variable(key if key not in taken else f"{rel}_{key}", taken)  # a second one says whose it is
    written.params.append((name, values))
    return name


def _instance(classes: dict[str, _Class], use: _Use) -> str:
    written = classes[use.prefix]
    n = written.uses.index(use)
    args = ", ".join(f"{name}={values[n]!r}" for name, values in written.params)
    return f"{written.name}({args})"


def _class_source(written: _Class, graph: Graph) -> list[str]:
    full = written.full
    rows = full.rows
    users: list[set[int]] = [set() for _ in rows]
    for k, row in enumerate(rows):
        for j in row.inputs:
            if j != IN:
                users[j].add(k)
    block_users = {k for k, row in enumerate(rows) if IN in row.inputs}
    taken = {"self", "torch", "nn", *(name for name, _ in written.params)}
    source_name = "x" if block_users == {0} else _variable("x0", taken)
    taken.add("x")
    names = [
        "x" if k == len(rows) - 1 or users[k] == {k + 1} else _variable(row.rel, taken) for k, row in enumerate(rows)
    ]

    def var(j: int) -> str:
        return source_name if j == IN else names[j]

    part_of = {k: row.rel.split(".")[0] for k, row in enumerate(rows)}
    init: list[str] = []
    forward: list[str] = []
    made: set[str] = set()
    opened: str | None = None
    for k, row in enumerate(rows):
        part = part_of[k] if part_of[k] in written.flags else None
        if part != opened:
            if part is not None:
                first_input = var(rows[k].inputs[0])
                end = max(m for m in range(len(rows)) if part_of[m] == part)
                if names[end] != first_input:
                    forward.append(f"{names[end]} = {first_input}  # without {part}")
                forward.append(f"if {_path([part])} is not None:")
                init += ["", f"{_path([part])} = None", f"if {written.flags[part]}:"]
            opened = part
        pad = "    " if part is not None else ""
        args = [var(j) for j in row.inputs]
        if row.module is None:
            expr = row.form
            for n, arg in enumerate(args):
                expr = expr.replace(f"\0{n}\0", arg)
            forward.append(pad + f"{names[k]} = {expr}")
            continue
        parts = row.rel.split(".")
        opening: list[str] = []
        _open_containers(parts, made, None, opening)
        init += [pad + line for line in opening]
        init.append(
            pad
            + f"{_path(parts)} = {_constructor(row.module, {key: text for (rel, key), text in written.slots.items() if rel == row.rel})}"
        )
        forward.append(pad + f"{names[k]} = {_path(parts)}({', '.join(args)})")
    signature = ", ".join(["self", *(name + _annotation(values) for name, values in written.params)])
    # a child named by position (`self["0"] = ...`: MNASNet's stack, DeepLabHead's ASPP) needs item
    # assignment, so the class is a ModuleDict, as the network's is where a top-level name is numbered
    base = "nn.ModuleDict" if any(line.lstrip().startswith("self[") for line in init) else "nn.Module"
    uses = len(written.uses)
    first_line = f"`{full.block}` of the spec ({uses} use{'s' if uses != 1 else ''}, the first {full.prefix})."
    return [
        f"class {written.name}({base}):",
        f'    """{first_line}"""',
        "",
        f"    def __init__({signature}) -> None:",
        "        super().__init__()",
        *_indent(_strip_leading_blank(init), 2),
        "",
        f"    def forward(self, {source_name}: torch.Tensor) -> torch.Tensor:",
        *_indent(forward, 2),
        "        return x",
    ]


def _annotation(values: list[Any]) -> str:
    kinds = {type(v).__name__ for v in values if v is not None}
    return f": {kinds.pop()}" if len(kinds) == 1 else ""


def _unique(classes: Any) -> list[_Class]:
    seen: dict[str, _Class] = {}
    for written in classes:
        seen.setdefault(written.name, written)
    return sorted(seen.values(), key=lambda written: written.full.first)


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
    """The source of each class in cnncalc/torch_bridge/modules.py (the modules `torch.nn` lacks),
    read as text, so that exporting stays torch-free; the exported file defines those it uses."""
    path = Path(__file__).parents[1] / "torch_bridge" / "modules.py"
    text = path.read_text()
    return {
        node.name: ast.get_source_segment(text, node) or ""
        for node in ast.parse(text).body
        if isinstance(node, ast.ClassDef)
    }


def _compact(value: Any) -> Any:
    """(3, 3) -> 3: PyTorch expands an int to every axis."""
    if isinstance(value, tuple) and value and all(v == value[0] for v in value) and isinstance(value[0], int):
        return value[0]
    return value


def _indent(lines: Sequence[str], levels: int) -> list[str]:
    return [("    " * levels + line) if line else "" for line in lines]


def _strip_leading_blank(lines: list[str]) -> list[str]:
    return lines[1:] if lines and lines[0] == "" else lines
