"""`cnncalc export --to torch`'s block classes: every use of a spec's block definition found in the
graph, one class written per definition (the arguments that differ between uses as its parameters,
an optional part behind a flag), and each use as an instance of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..graph import Graph
from ..layers import Shape, TorchModule, layer_type
from ..records import record
from ..spec import STRUCTURES
from .export_spelling import (
    _attribute_ok,
    _class_name,
    _compact,
    _constructor,
    _indent,
    _open_containers,
    _path,
    _strip_leading_blank,
    _variable,
    own_module_sources,
)

# the kinds `Graph.containers` records that are not a block's name: the spec language's structures,
# a `repeat:`, a parallel's branch, and analysis's name for a collapsed row with no container
CONTAINER_KINDS = frozenset({*STRUCTURES, "repeat", "branch", "group"})
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


# -- block uses ---------------------------------------------------------------------------


def _block_uses(graph: Graph, users: list[set[int]], shapes: list[Shape]) -> list[_Use]:
    """Each outermost use of a block definition that reads one tensor and whose rows only its
    last row's output leaves."""
    nodes = graph.nodes
    # a block's uses; not the structures, nor a multi-output layer's pieces (chunk, split: a layer type)
    prefixes = sorted(
        (p for p, what in graph.containers.items() if what not in CONTAINER_KINDS and layer_type(what) is None),
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
