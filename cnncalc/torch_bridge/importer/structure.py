"""Structure: rows folded into sequential, residual and parallel items and repeated blocks, then rendered as spec data."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Mapping

from torch import nn

from ...layers import ALIASES, REGISTRY
from ...spec import BLOCK_KEYS, ITEM_KEYS, STRUCTURES
from .nodes import _Row, _yaml_value
from .result import TorchImportError
from .table import GENERIC_CONTAINERS, _registered

# ----- structure: sequential, residual, blocks ---------------------------------------------


@dataclass
class _Item:
    """One item of a spec list: a leaf row, a container (sequential or residual) or a block use."""

    rel: str  # name relative to the list's namespace
    written: str  # layer kind, "sequential", "residual", or a block's name
    args: dict[str, Any] = field(default_factory=dict)
    frm: Any = None  # the `from:` as written
    row: int | None = None  # leaf rows
    path: str = ""  # containers: the full dotted prefix
    sections: dict[str, list[_Item]] | None = None
    cls: type | None = None  # containers: the module class


CALL = "call"  # the spec's row that runs an earlier row's module again (docs/spec.md)


class _Shadowed(TorchImportError):
    """A row that cannot be named from where it is read: a nearer row has its last name (a model's
    top-level `concat` read inside `blocks.0`, which has a `concat` of its own)."""

    def __init__(self, message: str, target: int) -> None:
        super().__init__(message)
        self.target = target


class _Structurer:
    def __init__(self, root: nn.Module, rows: list[_Row], nest: bool) -> None:
        self.root = root
        self.rows = rows
        self.nest = nest
        self.names = {r.name for r in rows}
        self.containers: list[_Item] = []

    def ref(self, target: int, prefix: str) -> str:
        """The shortest name for row `target` that resolves to it from the namespace `prefix`."""
        full = self.rows[target].name
        parts = prefix.rstrip(".").split(".") if prefix else []
        for i in range(len(parts), -1, -1):
            ns = ".".join(parts[:i])
            if ns and not full.startswith(ns + "."):
                continue
            short = full[len(ns) + 1 :] if ns else full
            for j in range(len(parts), -1, -1):
                candidate = ".".join(parts[:j] + [short])
                if candidate in self.names:
                    break
            if candidate == full:
                return short
        raise _Shadowed(f"cannot write a reference to '{full}' from '{prefix}' (a name shadows it)", target)

    def frm(self, inputs: list[int], prev: int, prefix: str, many: bool) -> Any:
        if not many:
            return None if inputs[0] == prev else self.ref(inputs[0], prefix)
        if inputs[0] == prev and len(inputs) == 2:
            return self.ref(inputs[1], prefix)
        return [self.ref(i, prefix) for i in inputs]

    def items(self, indices: list[int], prefix: str, prev: int) -> tuple[list[_Item], int]:
        """The items for consecutive rows under `prefix`, the first reading `prev`; and the last row."""
        runs: list[tuple[str | None, list[int]]] = []
        for i in indices:
            rel = self.rows[i].name[len(prefix) :]
            if self.rows[i].piece is not None:  # `chunk.1`: a piece of the item `chunk`
                rel = rel.rpartition(".")[0]
            head = rel.split(".")[0] if "." in rel and self.nest else None
            if head is not None and runs and runs[-1][0] == head:
                runs[-1][1].append(i)
            else:
                runs.append((head, [i]))
        heads = Counter(h for h, _ in runs if h is not None)
        out: list[_Item] = []
        for head, run in runs:
            if head is None or heads[head] > 1 or len(run) < 3:
                for i in run:
                    row = self.rows[i]
                    if row.piece:  # the pieces after the first are rows of the same item
                        prev = i
                        continue
                    rel = row.name[len(prefix) :] if row.piece is None else row.name[len(prefix) :].rpartition(".")[0]
                    many = REGISTRY[ALIASES.get(row.kind, row.kind)].min_inputs > 1
                    written, args = row.kind, dict(row.args)
                    if row.calls is not None:  # `- call: relu`, looked up like `from:`
                        written, args = CALL, {"layer": self.ref(row.calls, prefix)}
                    frm = (
                        self.frm(row.inputs, prev, prefix, many)
                        if many or len(row.inputs) == 1
                        else [self.ref(j, prefix) for j in row.inputs]  # (a traced row: every input named)
                    )
                    out.append(_Item(rel, written, args, frm, row=i))
                    prev = i
                continue
            entry = self.rows[run[0]].inputs[0] if self.rows[run[0]].inputs else prev
            item = self.container(prefix + head, run, entry)
            item.rel = head
            assert item.sections is not None  # a container has its sections
            if (
                item.written == "sequential"
                and len(item.sections["layers"]) == 1
                and item.sections["layers"][0].frm is None
            ):
                self.containers.remove(item)  # a container of one item: that item, under a dotted name
                inner = item.sections["layers"][0]
                inner.rel = f"{head}.{inner.rel}"
                item = inner
            item.frm = None if entry == prev else self.ref(entry, prefix)
            out.append(item)
            prev = run[-1]
        return out, prev

    def container(self, path: str, run: list[int], entry: int) -> _Item:
        try:
            cls: type | None = type(self.root.get_submodule(path))
        except AttributeError:
            cls = None
        prefix = path + "."
        item = (
            self.residual(path, run, entry)
            or self.parallel(path, run, entry)
            or _Item(path, "sequential", sections={"layers": self.items(run, prefix, entry)[0]})
        )
        item.path, item.cls = path, cls
        self.containers.append(item)
        return item

    def residual(self, path: str, run: list[int], entry: int) -> _Item | None:
        """body (a chain from the entry), an optional shortcut chain, `add`, then an `after` chain."""
        adds = [p for p, i in enumerate(run) if self.rows[i].name == f"{path}.add" and self.rows[i].kind == "add"]
        if not adds or adds[0] == 0:
            return None
        at = adds[0]
        add = self.rows[run[at]]
        if len(add.inputs) != 2 or add.inputs[0] not in run[:at]:
            return None
        split = run.index(add.inputs[0]) + 1
        body, shortcut, after = run[:split], run[split:at], run[at + 1 :]
        if (add.inputs[1] != run[at - 1]) if shortcut else (add.inputs[1] != entry or split != at):
            return None
        prefix = path + "."
        sections = {
            "body": self.items(body, prefix, entry)[0],
            "shortcut": self.items(shortcut, prefix, entry)[0],
            "after": self.items(after, prefix, run[at])[0],
        }
        if any(it.frm is not None for items in sections.values() for it in items):
            return None
        return _Item(path, "residual", sections=sections)

    def parallel(self, path: str, run: list[int], entry: int) -> _Item | None:
        """Branches (one child each, every one a chain from the entry), then `concat` or `add` of their ends."""
        merge = self.rows[run[-1]]
        if merge.kind not in ("concat", "add") or merge.name != f"{path}.{merge.kind}":
            return None
        branches: list[tuple[str, list[int]]] = []
        for i in run[:-1]:
            rel = self.rows[i].name[len(path) + 1 :]
            if "." not in rel:
                return None
            head = rel.split(".")[0]
            if branches and branches[-1][0] == head:
                branches[-1][1].append(i)
            else:
                branches.append((head, [i]))
        heads = [head for head, _ in branches]
        if len(heads) < 2 or len(set(heads)) != len(heads) or merge.inputs != [rows[-1] for _, rows in branches]:
            return None
        sections = {}
        for head, rows in branches:
            items = self.items(rows, f"{path}.{head}.", entry)[0]
            if any(it.frm is not None for it in items):
                return None
            sections[head] = items
        return _Item(path, "parallel", args={"merge": merge.kind}, sections=sections)


# ----- blocks ------------------------------------------------------------------------------

_ABSENT = object()


@dataclass
class _Param:
    name: str
    values: list[Any]  # per instance; _ABSENT where no item of this instance uses it


class _Blocks:
    """Containers of one class with the same structure, made one block with arguments."""

    def __init__(self) -> None:
        self.defs: dict[str, dict] = {}

    def name_for(self, cls: type | None, form: str) -> str:
        if cls is None or cls in GENERIC_CONTAINERS:
            base = f"{form}_block" if form != "sequential" else "block"
        else:
            base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls.__name__).lower()
            base = re.sub(r"\W", "_", base)
        name, k = base, 1
        while name in self.defs or name in STRUCTURES or _registered(name) or not name.isidentifier():
            k += 1
            name = f"{base}{k}" if name.isidentifier() else f"block{k}"
        return name

    def make(self, containers: list[_Item]) -> None:
        groups: dict[Any, list[_Item]] = {}
        for item in containers:
            generic = item.cls is None or item.cls in GENERIC_CONTAINERS
            first = next(iter(item.sections.values())) if item.sections else []
            key = (item.written, tuple(it.rel for it in first)) if generic else (item.written, item.cls)
            groups.setdefault(key, []).append(item)
        for group in sorted(groups.values(), key=lambda g: -max(it.path.count(".") for it in g)):
            if len(group) < 2:
                continue
            if not self.try_block(group):
                exact: dict[Any, list[_Item]] = {}
                for it in group:
                    exact.setdefault(_signature(it), []).append(it)
                for sub in exact.values():
                    if len(sub) >= 2:
                        self.try_block(sub)

    def try_block(self, group: list[_Item]) -> bool:
        form, first_sections = group[0].written, group[0].sections
        if first_sections is None:
            return False
        instances: list[dict[str, list[_Item]]] = []  # each use's sections
        for it in group:
            if (
                it.written != form
                or it.sections is None
                or list(it.sections) != list(first_sections)
                or it.args != group[0].args
            ):
                return False
            instances.append(it.sections)
        sections: dict[str, list[str]] = {}
        for sec in first_sections:
            order: list[str] = []
            for inst in instances:
                pos = -1
                for it in inst[sec]:
                    if it.rel in order:
                        at = order.index(it.rel)
                        if at <= pos:
                            return False
                        pos = at
                    else:
                        order.insert(pos + 1, it.rel)
                        pos += 1
            sections[sec] = order
        if not any(it.row is not None for inst in instances for its in inst.values() for it in its):
            return False  # a container of containers: its repeats are the blocks inside
        params: list[_Param] = []
        flags: list[tuple[tuple[bool, ...], str]] = []
        template: dict[str, list[dict]] = {}
        for sec, order in sections.items():
            out = []
            for rel in order:
                present = [next((it for it in inst[sec] if it.rel == rel), None) for inst in instances]
                items = [it for it in present if it is not None]
                first = items[0]
                if first.sections is not None or any(it.sections is not None for it in items):
                    return False  # a nested structure inside a repeated block: written out instead
                if any(
                    it.written != first.written or it.frm != first.frm or set(it.args) != set(first.args)
                    for it in items
                ) or (first.written == CALL and any(it.args != first.args for it in items)):
                    return False
                rendered_args: dict[str, Any] = {}
                for key in first.args:
                    values = [it.args[key] if it is not None else _ABSENT for it in present]
                    real = [v for v in values if v is not _ABSENT]
                    if all(v == real[0] for v in real):
                        if not _is_default(first, key, real[0], self.defs):
                            rendered_args[key] = real[0]
                        continue
                    rendered_args[key] = _param_for(params, values, key, rel)
                entry: dict[str, Any] = dict(rendered_args)
                if first.written != CALL:  # a call row is named after the module it runs: relu@2
                    entry["name"] = _yaml_name(rel)
                if first.frm is not None:
                    entry["from"] = first.frm
                pattern = tuple(it is not None for it in present)
                if not all(pattern):
                    flag = next((f for p, f in flags if p == pattern), None)
                    if flag is None:
                        taken = {p.name for p in params} | {f for _, f in flags}
                        flag = _arg_name(rel.split(".")[0], taken, flag=True)
                        flags.append((pattern, flag))
                    entry["when"] = f"${flag}"
                out.append(
                    _shorten({first.written: entry}, self.defs) if first.written == CALL else {first.written: entry}
                )
            template[sec] = out
        name = self.name_for(group[0].cls, form)
        args: dict[str, Any] = {}
        for p in params:
            real = [v for v in p.values if v is not _ABSENT]
            counts = Counter(map(_hashable, real))
            common = max(counts, key=lambda v: counts[v])
            # a default where one value is the rule (stride 1) or where some uses have no value
            usual = len(real) >= 3 and len(counts) <= 2 and counts[common] * 2 > len(real)
            args[p.name] = _unhashable(common) if usual or len(real) < len(p.values) else None
        for pattern, flag in flags:
            args[flag] = sum(pattern) * 2 > len(pattern)
        body: dict[str, Any] = {"args": args}
        if form == "residual":
            body.update({k: v for k, v in template.items() if v or k == "body"})
        elif form == "parallel":
            body["branches"] = [{"name": _yaml_name(head), "layers": layers} for head, layers in template.items()]
            if group[0].args["merge"] != "concat":
                body["merge"] = group[0].args["merge"]
        else:
            body["layers"] = template["layers"]
        self.defs[name] = body
        for i, it in enumerate(group):
            use: dict[str, Any] = {}
            for p in params:
                use[p.name] = args[p.name] if p.values[i] is _ABSENT else p.values[i]
            for pattern, flag in flags:
                use[flag] = pattern[i]
            it.written, it.args, it.sections = name, use, None
        return True


def _signature(item: _Item) -> Any:
    return tuple((sec, tuple((it.rel, it.written) for it in items)) for sec, items in (item.sections or {}).items())


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def _unhashable(value: Any) -> Any:
    return [_unhashable(v) for v in value] if isinstance(value, tuple) else value


# what a block argument may not be called: the keys of every item, and $in (the input's channels);
# nor, to read well, the keys of a block definition (`args: {shortcut: true}` beside a `shortcut:` section)
_RESERVED_ARGS = frozenset((*ITEM_KEYS, *BLOCK_KEYS, "in"))


def _arg_name(base: str, taken: set[str], flag: bool = False) -> str:
    """A block argument's name from a layer argument (`stride`) or, for a `flag` (whether a use has
    an item), from the item's module name (`downsample`; `shortcut` becomes `has_shortcut`)."""
    base = re.sub(r"\W", "_", base)
    if not base or not (base[0].isalpha() or base[0] == "_"):
        base = f"has_{base}"
    if base in _RESERVED_ARGS:
        base = f"has_{base}" if flag else f"{base}_"
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}{k}"
    return name


def _param_for(params: list[_Param], values: list[Any], key: str, rel: str) -> str:
    """`$p` for an argument that varies, reusing a parameter that always has the same value (or a multiple)."""
    for p in params:
        common = [(a, b) for a, b in zip(p.values, values) if a is not _ABSENT and b is not _ABSENT]
        if not common:
            continue
        if all(a == b for a, b in common):
            p.values = [b if a is _ABSENT else a for a, b in zip(p.values, values)]
            return f"${p.name}"
        if all(type(a) is int and type(b) is int and a > 0 for a, b in common):
            factor = common[0][1] // common[0][0]
            if (
                factor >= 2
                and all(b == a * factor for a, b in common)
                and all(v is _ABSENT or a is not _ABSENT for a, v in zip(p.values, values))
            ):
                return f"${p.name} * {factor}"
    taken = {p.name for p in params}
    name = _arg_name(key, taken)
    params.append(_Param(name, list(values)))
    return f"${name}"


def _is_default(item: _Item, key: str, value: Any, blocks: Mapping[str, dict]) -> bool:
    if item.written in blocks:
        return blocks[item.written]["args"].get(key) == value
    cls = REGISTRY.get(ALIASES.get(item.written, item.written))
    if cls is None:
        return False
    for f in fields(cls):
        if f.name == key and f.default is not MISSING:
            return _yaml_value(f.default) == value and type(_yaml_value(f.default)) is type(value)
    return False


def _yaml_name(name: str) -> Any:
    return int(name) if name.isdigit() and str(int(name)) == name else name


# ----- rendering ---------------------------------------------------------------------------


def _render_items(items: list[_Item], blocks: Mapping[str, dict], positional: bool) -> list[Any]:
    """A list of items as spec data; names that equal the position are left out, and equal
    neighbours so named become one item with `repeat`."""
    entries: list[list[Any]] = []  # [with name, without name, positional, count]
    position = -1
    for item in items:
        named, free = _render_item(item, blocks)
        if item.written == CALL:  # takes no list position, and is named by the spec (relu@2)
            entries.append([free, free, False, 1])
            continue
        position += 1
        by_position = positional and item.rel == str(position)
        last = entries[-1] if entries else None
        if by_position and item.sections is None and last is not None and last[2] and last[1] == free:
            last[3] += 1
        else:
            entries.append([named, free, by_position and item.sections is None or by_position, 1])
    out: list[Any] = []
    for named, free, by_position, count in entries:
        if count > 1:
            ((written, args),) = free.items()
            out.append({written: {**args, "repeat": count}})
        else:
            out.append(_shorten(free if by_position else named, blocks))
    return out


def _render_item(item: _Item, blocks: Mapping[str, dict]) -> tuple[dict, dict]:
    """(the item with its name, the item without it)."""
    if item.sections is not None:
        body: dict[str, Any] = {"name": _yaml_name(item.rel)}
        if item.frm is not None:
            body["from"] = item.frm
        if item.written == "parallel":
            body["branches"] = [
                {"name": _yaml_name(head), "layers": _render_items(items, blocks, positional=True)}
                for head, items in item.sections.items()
            ]
            if item.args["merge"] != "concat":
                body["merge"] = item.args["merge"]
        else:
            for sec, items in item.sections.items():
                if items or sec in ("layers", "body"):
                    body[sec] = _render_items(items, blocks, positional=sec == "layers")
        free = {k: v for k, v in body.items() if k != "name"}
        return {item.written: body}, {item.written: free}
    args = {k: v for k, v in item.args.items() if not _is_default(item, k, v, blocks)}
    if item.frm is not None:
        args["from"] = item.frm
    return {item.written: {**args, "name": _yaml_name(item.rel)}}, {item.written: args}


def _shorten(value: dict, blocks: Mapping[str, dict]) -> Any:
    """`- relu` for no arguments, `- linear: 4096` for the type's shorthand alone."""
    ((written, args),) = value.items()
    if not isinstance(args, dict) or written in STRUCTURES:
        return value
    if not args:
        return written
    if written == CALL and list(args) == ["layer"]:
        return {CALL: args["layer"]}
    cls = REGISTRY.get(ALIASES.get(written, written))
    if (
        cls is not None
        and cls.shorthand
        and list(args) == [cls.shorthand]
        and not isinstance(args[cls.shorthand], (list, dict))
    ):
        return {written: args[cls.shorthand]}
    return value
