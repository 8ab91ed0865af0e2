"""From a YAML spec to a layer graph.

The spec language (documented in docs/spec.md):

- `input: [C, ...spatial]`, `layers: [...]`, optional `name`, `description` and `blocks`;
- a layer is a type name (`- relu`), or a one-key mapping whose value is its arguments
  (`- conv: {out: 64, kernel: 3}`) or a scalar for the type's obvious argument (`- linear: 4096`);
- every item may carry `name`, `repeat` and `from` (the earlier layer(s) it reads);
- structures: `sequential` (a named group), `residual` (body + shortcut, added) and
  `parallel` (branches, concatenated or added);
- `blocks:` defines reusable, parameterised blocks, used like a layer type; `$arg` and
  integer arithmetic (`$out * 4`) in their arguments go through a whitelisted evaluator.

An unnamed item is named by its position in its list, as in `torch.nn.Sequential`, so that
names follow PyTorch's `named_modules()` for the same structure.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Union

from . import expr
from .errors import CnncalcError, LayerError, SpecError, Where, did_you_mean, excerpt
from .graph import INPUT, Graph, Node
from .layers import ALIASES, REGISTRY, ArgKind, Layer, build_layer, layer_type
from .library import ARCHITECTURES, STDIN, read_stdin
from .yaml_lines import LineDict, LineList, load_file, load_text

MAX_NODES = 100_000  # an expanded graph larger than this is refused, not built
MAX_NESTING = 64  # structures inside structures; deeper means a self-referencing YAML alias
TOP_LEVEL_KEYS = ("name", "description", "input", "blocks", "layers")
ITEM_KEYS = ("name", "repeat", "from", "when")  # allowed on every item besides its own arguments
BLOCK_KEYS = ("args", "layers", "body", "shortcut", "after", "branches", "merge", "description")
BLOCK_BODIES = ("layers", "body", "branches")  # a block is a chain, a residual or a parallel
STRUCTURES = ("sequential", "residual", "parallel")
REQUIRED = object()


@dataclass(frozen=True)
class _Ref:
    """A `from:` reference, resolved once every name is known."""

    name: str
    namespace: str
    where: Where


_Input = Union[int, _Ref]


@dataclass
class _Draft:
    name: str
    kind: str
    written: str
    layer: Layer | None
    inputs: list[_Input]
    where: Where


@dataclass(frozen=True)
class _BlockDef:
    name: str
    args: Mapping[str, Any]
    raw: LineDict
    line: int


@dataclass(frozen=True)
class _Context:
    """Where the expander is: name prefix, block arguments in scope, path for messages, blocks in use."""

    prefix: str = ""
    scope: Mapping[str, Any] = field(default_factory=dict)
    path: str = "layers"
    blocks_in_use: tuple[str, ...] = ()
    depth: int = 0

    def inner(self, prefix: str, path: str, **changes: Any) -> "_Context":
        if self.depth + 1 > MAX_NESTING:
            raise SpecError(
                f"structures are nested more than {MAX_NESTING} deep",
                expected="a reasonably shallow spec",
                hint="a YAML alias that contains itself nests forever",
            )
        return _Context(
            prefix=prefix,
            scope=changes.get("scope", self.scope),
            path=path,
            blocks_in_use=changes.get("blocks_in_use", self.blocks_in_use),
            depth=self.depth + 1,
        )


def load(source: str | Path) -> Graph:
    """Read a spec file and build its graph; built-ins are named `<built-in>/vgg16.yaml` in messages."""
    if str(source) == STDIN:
        return parse(load_text(read_stdin(), "<stdin>"), file="<stdin>", default_name="stdin")
    path = Path(source)
    shown = str(path)
    if path.resolve().is_relative_to(ARCHITECTURES.resolve()):
        shown = f"<built-in>/{path.resolve().relative_to(ARCHITECTURES.resolve()).as_posix()}"
    return parse(load_file(path, shown), file=shown, default_name=path.stem)


def parse_text(text: str, file: str | None = None) -> Graph:
    """Build a graph from YAML text (used by tests and by `python -c`)."""
    return parse(load_text(text, file), file=file)


def parse(data: object, file: str | None = None, default_name: str = "network") -> Graph:
    """Build a graph from already-loaded YAML data (LineDict/LineList keep the lines)."""
    where = Where(file=file, line=getattr(data, "line", None))
    if data is None:
        raise SpecError("the spec is empty", where=where, expected="a mapping with 'input' and 'layers'",
                        hint="see docs/spec.md, or start from a built-in: cnncalc list")  # fmt: skip
    if not isinstance(data, dict):
        raise SpecError("a spec must be a mapping", where=where, received=f"{_yaml_kind(data)}: {excerpt(data)}",
                        expected="keys: " + ", ".join(TOP_LEVEL_KEYS))  # fmt: skip
    for key in data:
        if key not in TOP_LEVEL_KEYS and not str(key).startswith("x-"):  # x-...: free keys for YAML anchors
            raise SpecError(f"unknown top-level key '{key}'", where=_at(data, key, file), received=key,
                            expected="one of " + ", ".join(TOP_LEVEL_KEYS), hint=did_you_mean(str(key), TOP_LEVEL_KEYS))  # fmt: skip
    name = data.get("name", default_name)
    _check_name(name, _at(data, "name", file))
    input_shape = _read_input(data, file)
    if "layers" not in data:
        raise SpecError("the spec has no 'layers'", where=where, expected="layers: a list of layers")
    layers = data["layers"]
    if not isinstance(layers, list) or not layers:
        raise SpecError("'layers' must be a non-empty list", where=_at(data, "layers", file), received=layers)
    expander = _Expander(file, _read_blocks(data, file))
    expander.drafts.append(_Draft(INPUT, INPUT, INPUT, None, [], Where(file=file, line=data.line_of("input"), path="input")))
    expander.names[INPUT] = 0
    try:
        expander.chain(layers, _Context(), prev=0)
        nodes = expander.finish()
    except RecursionError:
        raise SpecError("the spec nests too deeply to expand", where=where, hint="a YAML alias that contains itself?") from None
    return Graph(str(name), input_shape, nodes, dict(expander.containers), file)


def _yaml_kind(data: object) -> str:
    """What a value is, in YAML's words (not Python's class names)."""
    if isinstance(data, list):
        return "a list (YAML sequence)"
    if isinstance(data, dict):
        return "a mapping"
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, (int, float)):
        return "a number"
    if isinstance(data, str):
        return "text (a YAML scalar)"
    return "a YAML " + type(data).__name__


def _check_name(name: object, where: Where) -> None:
    """A name is text (or a number), not empty, and printable: it ends up in tables and exported Python."""
    if not isinstance(name, (str, int)) or isinstance(name, bool):
        raise SpecError("'name' must be text", where=where, received=name)
    text = str(name)
    if not text.strip():
        raise SpecError("'name' is empty", where=where, received=name, expected="a name such as conv1")
    bad = next((ch for ch in text if not ch.isprintable()), None)
    if bad is not None:
        raise SpecError("'name' contains a control or non-printable character", where=where, received=name,
                        expected="printable text such as conv1", hint=f"character {bad!r} (U+{ord(bad):04X})")  # fmt: skip


def _at(mapping: object, key: object, file: str | None, path: str | None = None) -> Where:
    line = mapping.line_of(key) if isinstance(mapping, LineDict) else None
    return Where(file=file, line=line, path=path)


def _read_input(data: LineDict, file: str | None) -> tuple[int, ...]:
    expected = "a list [C, ...spatial] of 1 to 4 positive integers, e.g. input: [3, 224, 224]"
    if "input" not in data:
        raise SpecError("the spec has no 'input'", where=Where(file=file, line=data.line), expected=expected)
    value = data["input"]
    where = _at(data, "input", file, "input")
    if not isinstance(value, list) or not 1 <= len(value) <= 4 or any(type(v) is not int or v < 1 for v in value):
        raise SpecError("malformed 'input'", where=where, received=value, expected=expected)
    return tuple(value)


def _read_blocks(data: LineDict, file: str | None) -> dict[str, _BlockDef]:
    raw = data.get("blocks") or {}
    if not isinstance(raw, dict):
        raise SpecError("'blocks' must be a mapping of block names to definitions", where=_at(data, "blocks", file), received=raw)
    blocks = {}
    for name, body in raw.items():
        where = _at(raw, name, file, f"blocks.{name}")
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError("a block name must be an identifier", where=where, received=name)
        if name in STRUCTURES or layer_type(name) is not None:
            raise SpecError(f"block name '{name}' is already a layer type", where=where, hint="choose another name")
        if not isinstance(body, dict):
            raise SpecError(f"block '{name}' must be a mapping", where=where, received=body, expected="keys: " + ", ".join(BLOCK_KEYS))
        for key in body:
            if key not in BLOCK_KEYS:
                raise SpecError(f"unknown key '{key}' in block '{name}'", where=_at(body, key, file, f"blocks.{name}"),
                                received=key, expected="one of " + ", ".join(BLOCK_KEYS), hint=did_you_mean(str(key), BLOCK_KEYS))  # fmt: skip
        if sum(key in body for key in BLOCK_BODIES) != 1:
            raise SpecError(f"block '{name}' needs exactly one of 'layers' (a chain), 'body' (a residual block) "
                            "or 'branches' (parallel branches)", where=where, received="keys " + ", ".join(map(str, body)))  # fmt: skip
        args = body.get("args") or {}
        if not isinstance(args, dict):
            raise SpecError(f"'args' of block '{name}' must be a mapping of argument names to defaults",
                            where=_at(body, "args", file), received=args, expected="e.g. args: {out: null, stride: 1}")  # fmt: skip
        defaults = {str(k): (REQUIRED if v is None else v) for k, v in args.items()}
        for reserved in ITEM_KEYS:
            if reserved in defaults:
                raise SpecError(f"'{reserved}' cannot be a block argument: every item takes it already", where=where)
        blocks[name] = _BlockDef(name, defaults, body, body.line)
    return blocks


class _Expander:
    def __init__(self, file: str | None, blocks: dict[str, _BlockDef]) -> None:
        self.file = file
        self.blocks = blocks
        self.drafts: list[_Draft] = []
        self.names: dict[str, int] = {}
        self.containers: dict[str, str] = {}

    # -- errors ---------------------------------------------------------------------------

    def where(self, line: int | None, path: str, name: str | None = None) -> Where:
        return Where(file=self.file, line=line, path=f"{path} {name}" if name else path)

    # -- chains and items -----------------------------------------------------------------

    def chain(self, items: object, ctx: _Context, prev: _Input, default_prefix: str = "") -> _Input:
        """Expand a list of items one after the other; returns what the last one produced."""
        if not isinstance(items, list):
            raise SpecError("expected a list of layers", where=self.where(getattr(items, "line", None), ctx.path), received=items)
        position = 0
        for index, raw in enumerate(items):
            line = items.line_of(index) if isinstance(items, LineList) else None
            prev, position = self.item(raw, line, f"{ctx.path}[{index}]", ctx, prev, position, default_prefix)
        return prev

    def item(self, raw: object, line: int | None, path: str, ctx: _Context, prev: _Input, position: int,
             default_prefix: str) -> tuple[_Input, int]:  # fmt: skip
        where = self.where(line, path)
        written, args, args_line = self.split_item(raw, where, ctx)
        where = self.where(args_line or line, path)
        name = args.pop("name", None)
        repeat = args.pop("repeat", 1)
        source = args.pop("from", None)
        when = args.pop("when", True)
        if type(when) is not bool:
            raise SpecError("'when' must be true or false (usually a block argument: when: $down)", where=where, received=when)
        if not when:
            return prev, position
        if name is not None:
            _check_name(name, where)
        if type(repeat) is not int or repeat < 1:
            raise SpecError("'repeat' must be a positive integer", where=where, received=repeat)
        if repeat > MAX_NODES:
            raise SpecError("repeat count is too large to be sensible", where=where, received=repeat,
                            expected=f"at most {MAX_NODES:,} layers in the expanded graph")  # fmt: skip
        if name is not None and repeat > 1:
            self.containers[ctx.prefix + str(name)] = "repeat"
        for k in range(repeat):
            if name is None:
                local = f"{default_prefix}{position}"
            else:
                local = f"{name}.{k}" if repeat > 1 else str(name)
            position += 1
            inputs = self.sources(source, prev, ctx, where, written)
            prev = self.one(written, dict(args), ctx.prefix + local, inputs, where, ctx, line)
        return prev, position

    def split_item(self, raw: object, where: Where, ctx: _Context) -> tuple[str, dict[str, Any], int | None]:
        """(type as written, arguments with $expressions evaluated, line of the arguments)."""
        if isinstance(raw, str):
            return raw, {}, None
        if not isinstance(raw, dict) or len(raw) != 1:
            keys = list(raw) if isinstance(raw, dict) else None
            raise SpecError(
                "a layer is a type name or a mapping with exactly one key, its type",
                where=where,
                received=f"keys {keys}" if keys is not None else raw,
                expected="e.g. '- relu' or '- conv: {out: 64, kernel: 3, name: conv1}'",
                hint="put name, repeat and from inside the arguments" if keys else None,
            )
        written, value = next(iter(raw.items()))
        written = str(written)
        args_line = value.line if isinstance(value, LineDict) else None
        if value is None:
            return written, {}, args_line
        if isinstance(value, dict):
            return written, {str(k): self.evaluate(v, ctx, where) for k, v in value.items()}, args_line
        cls = layer_type(written)
        shorthand = cls.shorthand if cls is not None else None
        if shorthand is None:
            self.check_type(written, where)
            raise SpecError(
                f"{written} takes a mapping of arguments, not a single value",
                where=where,
                received=value,
                expected=f"- {written}: {{...}}" + (f", keys: {', '.join(self.argument_list(written))}" if self.argument_list(written) else ""),
            )
        return written, {shorthand: self.evaluate(value, ctx, where)}, args_line

    def argument_list(self, written: str) -> list[str]:
        cls = layer_type(written)
        if cls is not None:
            return [f.name for f in fields(cls)]
        if written in self.blocks:
            return list(self.blocks[written].args)
        return []

    def evaluate(self, value: Any, ctx: _Context, where: Where) -> Any:
        if isinstance(value, list):
            return [self.evaluate(v, ctx, where) for v in value]
        if expr.is_expression(value):
            try:
                return expr.evaluate(value, ctx.scope)
            except CnncalcError as err:
                raise err.located(where) from None
        return value

    def sources(self, source: object, prev: _Input, ctx: _Context, where: Where, written: str) -> list[_Input]:
        """The inputs of an item: the previous output, or what `from:` names."""
        cls = layer_type(written)
        many = cls is not None and cls.min_inputs > 1
        if source is None:
            if many:
                raise SpecError(f"{written} needs its inputs named with 'from'", where=where,
                                expected=f"- {written}: {{from: [a, b]}} (with one name, the previous layer is the first input)")  # fmt: skip
            return [prev]
        names = source if isinstance(source, list) else [source]
        if not names or any(not isinstance(n, (str, int)) or isinstance(n, bool) for n in names):
            raise SpecError("'from' must name earlier layers", where=where, received=source, expected="a name or a list of names")
        refs: list[_Input] = [_Ref(str(n), ctx.prefix, where) for n in names]
        if many and len(refs) == 1:
            refs.insert(0, prev)
        if not many and len(refs) != 1:
            raise SpecError(f"{written} takes one input", where=where, received=source, expected="from: one name")
        return refs

    def check_type(self, written: str, where: Where) -> None:
        if written in STRUCTURES or written in self.blocks or layer_type(written) is not None:
            return
        choices = [*REGISTRY, *ALIASES, *STRUCTURES, *self.blocks]
        raise SpecError(
            f"unknown layer type '{written}'",
            where=where,
            received=written,
            expected="a layer type (`cnncalc layers` lists them), a structure (sequential, residual, parallel) or a block defined under 'blocks'",
            hint=did_you_mean(written, choices),
        )

    def one(self, written: str, args: dict[str, Any], name: str, inputs: list[_Input], where: Where,
            ctx: _Context, line: int | None) -> _Input:  # fmt: skip
        """Expand one item (after repeat) whose full name and inputs are known."""
        self.check_type(written, where)
        if written in STRUCTURES:
            return getattr(self, written)(args, name, inputs[0], where, ctx)
        if written in self.blocks:
            return self.block(self.blocks[written], args, name, inputs[0], where, ctx)
        cls = layer_type(written)
        assert cls is not None  # check_type above
        try:
            layer = build_layer(cls, args)
        except LayerError as err:
            raise err.located(Where(where.file, where.line, f"{where.path} {name}")) from None
        # an argument naming another layer (center_crop's `like`) is read as one more input
        inputs = inputs + [_Ref(args[f.name], ctx.prefix, where) for f in fields(cls) if f.metadata["kind"] is ArgKind.LAYER_NAME and f.name in args]
        return self.add(name, cls.kind, written, layer, inputs, where)

    def add(self, name: str, kind: str, written: str, layer: Layer | None, inputs: list[_Input], where: Where) -> int:
        where = Where(where.file, where.line, f"{where.path} {name}")
        if name in self.names:
            first = self.drafts[self.names[name]].where
            raise SpecError(f"duplicate layer name '{name}'", where=where,
                            received=f"'{name}' again (first at {first})", expected="a unique name per layer")  # fmt: skip
        if len(self.drafts) >= MAX_NODES:
            raise SpecError(f"the expanded graph has more than {MAX_NODES:,} layers", where=where,
                            expected="a spec of sensible size", hint="check repeat counts and YAML aliases")  # fmt: skip
        self.names[name] = len(self.drafts)
        self.drafts.append(_Draft(name, kind, written, layer, inputs, where))
        return len(self.drafts) - 1

    # -- structures -----------------------------------------------------------------------

    def structure_args(self, args: dict[str, Any], allowed: tuple[str, ...], required: tuple[str, ...], what: str,
                       where: Where) -> None:  # fmt: skip
        for key in args:
            if key not in allowed:
                raise SpecError(f"unknown key '{key}' for {what}", where=where, received=key,
                                expected="one of " + ", ".join((*allowed, *ITEM_KEYS)), hint=did_you_mean(key, allowed))  # fmt: skip
        for key in required:
            if key not in args:
                raise SpecError(f"{what} needs '{key}'", where=where, expected=f"{key}: a list of layers")

    def sequential(self, args: dict[str, Any], name: str, prev: _Input, where: Where, ctx: _Context) -> _Input:
        self.structure_args(args, ("layers",), ("layers",), "sequential", where)
        self.containers[name] = "sequential"
        return self.chain(args["layers"], ctx.inner(name + ".", f"{where.path}.layers"), prev)

    def residual(self, args: dict[str, Any], name: str, prev: _Input, where: Where, ctx: _Context,
                 kind: str = "residual") -> _Input:  # fmt: skip
        self.structure_args(args, ("body", "shortcut", "after"), ("body",), kind, where)
        self.containers[name] = kind
        inner = ctx.inner(name + ".", f"{where.path}.body")
        body = self.chain(args["body"], inner, prev)
        shortcut = prev
        if args.get("shortcut"):
            shortcut_ctx = ctx.inner(name + ".", f"{where.path}.shortcut", scope=inner.scope, blocks_in_use=inner.blocks_in_use)
            shortcut = self.chain(args["shortcut"], shortcut_ctx, prev, default_prefix="shortcut.")
        merged: _Input = self.add(f"{name}.add", "add", "add", REGISTRY["add"](), [body, shortcut], where)
        if args.get("after"):
            after_ctx = ctx.inner(name + ".", f"{where.path}.after", scope=inner.scope, blocks_in_use=inner.blocks_in_use)
            merged = self.chain(args["after"], after_ctx, merged, default_prefix="after.")
        return merged

    def parallel(self, args: dict[str, Any], name: str, prev: _Input, where: Where, ctx: _Context,
                 kind: str = "parallel") -> _Input:  # fmt: skip
        self.structure_args(args, ("branches", "merge"), ("branches",), kind, where)
        merge = args.get("merge", "concat")
        if merge not in ("concat", "add"):
            raise SpecError("'merge' of parallel must be concat or add", where=where, received=merge)
        branches = args["branches"]
        if not isinstance(branches, list) or len(branches) < 2:
            raise SpecError("parallel needs a list of at least two branches", where=where, received=branches,
                            expected="branches: [[...layers...], [...layers...]]")  # fmt: skip
        self.containers[name] = kind
        outputs: list[_Input] = []
        for i, branch in enumerate(branches):
            branch_name, items = f"branch{i + 1}", branch
            if isinstance(branch, dict) and set(branch) <= {"name", "layers"} and "layers" in branch:
                branch_name, items = branch.get("name", branch_name), branch["layers"]
                _check_name(branch_name, where)
                branch_name = str(branch_name)
            self.containers[f"{name}.{branch_name}"] = "branch"
            outputs.append(self.chain(items, ctx.inner(f"{name}.{branch_name}.", f"{where.path}.branches[{i}]"), prev))
        return self.add(f"{name}.{merge}", merge, merge, REGISTRY[merge](), outputs, where)

    def block(self, block: _BlockDef, args: dict[str, Any], name: str, prev: _Input, where: Where, ctx: _Context) -> _Input:
        if block.name in ctx.blocks_in_use:
            cycle = " -> ".join((*ctx.blocks_in_use, block.name))
            raise SpecError(f"block '{block.name}' uses itself ({cycle})", where=where, expected="blocks that do not recurse")
        scope: dict[str, Any] = {}
        for key, value in args.items():
            if key not in block.args:
                raise SpecError(f"unknown argument '{key}' for block '{block.name}'", where=where, received=key,
                                expected="one of " + (", ".join(block.args) or "(no arguments)"),
                                hint=did_you_mean(key, block.args))  # fmt: skip
            scope[key] = value
        for key, default in block.args.items():
            if key not in scope:
                if default is REQUIRED:
                    raise SpecError(f"block '{block.name}' needs argument '{key}'", where=where,
                                    expected=f"- {block.name}: {{{key}: ...}}")  # fmt: skip
                scope[key] = default
        path = f"blocks.{block.name}"
        inner = ctx.inner(name + ".", path, scope=scope, blocks_in_use=(*ctx.blocks_in_use, block.name))
        block_where = Where(self.file, block.line, f"{where.path} -> {path}")
        if "layers" in block.raw:
            self.containers[name] = block.name
            return self.chain(block.raw["layers"], _Context(inner.prefix, inner.scope, f"{path}.layers",
                                                            inner.blocks_in_use, inner.depth), prev)  # fmt: skip
        structure = self.residual if "body" in block.raw else self.parallel
        keys = ("body", "shortcut", "after") if "body" in block.raw else ("branches", "merge")
        return structure({k: block.raw[k] for k in keys if k in block.raw}, name, prev, block_where, inner, kind=block.name)

    # -- references -----------------------------------------------------------------------

    def resolve(self, ref: _Ref, at: int) -> int:
        parts = ref.namespace.rstrip(".").split(".") if ref.namespace else []
        candidates = [".".join(parts[:i] + [ref.name]) for i in range(len(parts), -1, -1)]
        for candidate in candidates:
            if candidate in self.names:
                index = self.names[candidate]
                if index >= at:
                    raise SpecError(
                        f"'from: {ref.name}' refers to a layer that runs at or after this one (a cycle)",
                        where=self.drafts[at].where,
                        received=f"{candidate} (layer {index}) feeding layer {at}",
                        expected="a layer defined earlier in the spec",
                    )
                return index
        raise SpecError(f"unknown reference 'from: {ref.name}'", where=ref.where, received=ref.name,
                        expected="the name of an earlier layer", hint=did_you_mean(ref.name, self.names))  # fmt: skip

    def finish(self) -> tuple[Node, ...]:
        nodes = []
        for i, d in enumerate(self.drafts):
            inputs = tuple(self.resolve(x, i) if isinstance(x, _Ref) else x for x in d.inputs)
            nodes.append(Node(d.name, d.kind, d.written, d.layer, inputs, d.where))
        return tuple(nodes)
