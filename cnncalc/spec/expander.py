"""Items to rows: chains, repeats, names, `from:` references, calls and layers."""

from __future__ import annotations

from dataclasses import fields, replace
from functools import partial
from typing import Any, Mapping

from ..errors import CnncalcError, LayerError, SpecError, Where, did_you_mean
from ..graph import INPUT, Node, row_place
from ..layers import ALIASES, REGISTRY, ArgKind, Layer, build_layer, layer_type
from . import expr
from .language import (
    CALL,
    MAX_NODES,
    OWN_INPUT,
    STRUCTURES,
    _BlockDef,
    _check_name,
    _Context,
    _Draft,
    _Input,
    _Ref,
)
from .structures import _Structures
from .yaml_lines import LineDict, LineList

_NOWHERE = Where()  # the place of what cannot fail
_LAYER_NAME_ARGS: dict[type, tuple[str, ...]] = {}


def _layer_name_args(cls: type[Layer]) -> tuple[str, ...]:
    """The arguments of a layer type that name another layer (center_crop's `like`), worked out
    once per type (`fields` is not cheap, and a spec builds hundreds of layers)."""
    names = _LAYER_NAME_ARGS.get(cls)
    if names is None:
        names = _LAYER_NAME_ARGS[cls] = tuple(f.name for f in fields(cls) if f.metadata["kind"] is ArgKind.LAYER_NAME)
    return names


class _Expander(_Structures):
    def __init__(
        self, file: str | None, blocks: dict[str, _BlockDef], top_scope: Mapping[str, Any] | None = None
    ) -> None:
        self.file = file
        self.blocks = blocks
        self.top_scope = dict(top_scope or {})  # the spec's top-level args, visible in every block
        self.drafts: list[Node | _Draft] = []  # a Node where its inputs are known
        self.names: dict[str, int] = {}
        self.containers: dict[str, str] = {}
        self.input_shape: tuple[int, ...] = ()
        self.shapes: list[tuple[int, ...]] = []  # output shapes of the first drafts, for `$in`
        self.calls: dict[str, int] = {}  # row name -> how many times `call:` ran its module again
        self.outputs: dict[str, _Input] = {}  # structure / block use / repeat name -> its output (last row)
        self.layers: dict[tuple[Any, ...], Layer] = {}  # built layers by type and arguments (`layer`)

    # -- errors ---------------------------------------------------------------------------

    def where(self, line: int | None, path: str, ctx: _Context) -> Where:
        """The place of an item: its line in the file it is written in (an included block's own)."""
        return Where(file=ctx.file or self.file, line=line, path=path)

    # -- chains and items -----------------------------------------------------------------

    def chain(self, items: object, ctx: _Context, prev: _Input, default_prefix: str = "") -> _Input:
        """Expand a list of items one after the other; returns what the last one produced."""
        if not isinstance(items, list):
            raise SpecError(
                "expected a list of layers",
                where=self.where(getattr(items, "line", None), ctx.path, ctx),
                received=items,
            )
        position = 0
        for index, raw in enumerate(items):
            line = items.line_of(index) if isinstance(items, LineList) else None
            prev, position = self.item(raw, line, f"{ctx.path}[{index}]", ctx, prev, position, default_prefix)
        return prev

    def item(
        self, raw: object, line: int | None, path: str, ctx: _Context, prev: _Input, position: int, default_prefix: str
    ) -> tuple[_Input, int]:
        written, args, args_line = self.split_item(raw, line, path, ctx)
        where = self.where(args_line or line, path, ctx)
        name = args.pop("name", None)
        repeated = "repeat" in args  # a named item with `repeat:` names its copies name.0, name.1, ... (even one)
        repeat = args.pop("repeat", 1)
        source = args.pop("from", None)
        when = args.pop("when", True)
        if type(when) is not bool:
            raise SpecError(
                "'when' must be true or false (usually a block argument: when: $down)", where=where, received=when
            )
        if not when:
            return prev, position
        if name is not None:
            _check_name(name, where)
        if type(repeat) is not int or repeat < 1:
            raise SpecError("'repeat' must be a positive integer", where=where, received=repeat)
        if repeat > MAX_NODES:
            raise SpecError(
                "repeat count is too large to be sensible",
                where=where,
                received=repeat,
                expected=f"at most {MAX_NODES:,} layers in the expanded graph",
            )
        if written == CALL:
            if repeat != 1:
                raise SpecError("'call' runs a module once more: it takes no 'repeat'", where=where, received=repeat)
            return self.call(args, name, source, prev, ctx, where), position  # a call takes no position
        inline = args.pop("inline", False)
        start = args.pop("start", 0)
        if type(inline) is not bool or (inline and written not in self.blocks):
            raise SpecError(
                "'inline: true' goes on a use of a block (its items join this list)", where=where, received=inline
            )
        if type(start) is not int or start < 0:
            raise SpecError(
                "'start' (the first copy's number) must be a non-negative integer", where=where, received=start
            )
        if inline:
            if name is not None or source is not None:
                raise SpecError(
                    "an inline block use has no name or from of its own",
                    where=where,
                    hint="its items join the enclosing list; name them in the block",
                )
            for _ in range(repeat):
                prev, position = self.inline_block(
                    self.blocks[written], dict(args), prev, where, ctx, position, default_prefix
                )
            return prev, position
        # The naming rule (docs/spec.md, "Names"): an unnamed copy takes the next position of its list,
        # as nn.Sequential numbers its modules; a named item takes one position, whatever its repeat,
        # and a named item with `repeat:` is a group `name` of copies `name.0`, `name.1`, ...
        template = name is not None and "{i}" in str(name)  # `name: denselayer{i}`: the copy's number, from `start`
        group = name is not None and repeated and not template
        if group:
            self.containers[ctx.prefix + str(name)] = "repeat"
        names: list[str] = []  # each copy's name in its list
        for k in range(repeat):
            if name is None:
                names.append(f"{default_prefix}{position}")
                position += 1
            elif template:
                names.append(str(name).replace("{i}", str(start + k)))
            else:
                names.append(f"{name}.{k + start}" if group else str(name))
        for k, local in enumerate(names):
            inputs = self.sources(source, prev, ctx, where, written)
            prev = self.one(written, dict(args), ctx.prefix + local, inputs, where, ctx, line)
            if k == 0 and repeat > 1 and source is None and self.repeats_as_is(written, prev):
                # the other copies are the first's row but for name and input: what `one` would
                # do again for each, with the same arguments, done for all at once
                first = self.drafts[prev]  # type: ignore[index]  # (an int: the row `add` made)
                prev = self.copies(prev, first.kind, written, first.layer, [ctx.prefix + n for n in names[1:]], where)  # type: ignore[arg-type]
                break
        if name is not None:
            position += 1
        if group:
            self.outputs[ctx.prefix + str(name)] = prev  # `from: stage` reads the last copy's output
        return prev, position

    def repeats_as_is(self, written: str, made: _Input) -> bool:
        """Whether the copies of a repeated item of type `written`, whose first copy made the row
        `made`, are each one row of the same layer reading the row before: a layer type (not a
        block, structure or call) of one input, naming no other layer and cut in no pieces. `one`
        would build the same layer again for each copy (layers are frozen), so the copies share it."""
        if written in self.blocks or written in STRUCTURES or type(made) is not int:
            return False
        cls = layer_type(written)
        return (
            cls is not None
            and cls.min_inputs <= 1
            and not _layer_name_args(cls)
            and getattr(self.drafts[made].layer, "pieces", None) is None
        )

    def split_item(
        self, raw: object, line: int | None, path: str, ctx: _Context
    ) -> tuple[str, dict[str, Any], int | None]:
        """(type as written, arguments with $expressions evaluated, line of the arguments); errors
        are placed at the item's `line` and `path` (made only then: most items have none)."""
        if isinstance(raw, str):
            return raw, {}, None
        if not isinstance(raw, dict) or len(raw) != 1:
            keys = list(raw) if isinstance(raw, dict) else None
            raise SpecError(
                "a layer is a type name or a mapping with exactly one key, its type",
                where=self.where(line, path, ctx),
                received=f"keys {keys}" if keys is not None else raw,
                expected="e.g. '- relu' or '- conv: {out: 64, kernel: 3, name: conv1}'",
                hint="put name, repeat and from inside the arguments" if keys else None,
            )
        written, value = next(iter(raw.items()))
        written = str(written)
        try:
            if expr.is_expression(written):  # `- $block: {...}`: the type (usually a block) chosen by an argument
                chosen = self.evaluated(written, ctx.scope)
                if not isinstance(chosen, str):
                    raise SpecError(f"'{written}' as a layer type must give a type or block name", received=chosen)
                written = chosen
            args_line = value.line if isinstance(value, LineDict) else None
            if value is None:
                return written, {}, args_line
            if isinstance(value, dict):
                return written, {str(k): self.evaluated(v, ctx.scope) for k, v in value.items()}, args_line
            if written == CALL:
                return written, {"layer": self.evaluated(value, ctx.scope)}, args_line
            cls = layer_type(written)
            shorthand = cls.shorthand if cls is not None else None
            if shorthand is None:
                self.check_type(written, Where())
                raise SpecError(
                    f"{written} takes a mapping of arguments, not a single value",
                    received=value,
                    expected=f"- {written}: {{...}}"
                    + (f", keys: {', '.join(self.argument_list(written))}" if self.argument_list(written) else ""),
                )
            return written, {shorthand: self.evaluated(value, ctx.scope)}, args_line
        except CnncalcError as err:
            raise err.located(self.where(line, path, ctx)) from None

    def argument_list(self, written: str) -> list[str]:
        cls = layer_type(written)
        if cls is not None:
            return [f.name for f in fields(cls)]
        if written in self.blocks:
            return list(self.blocks[written].args)
        return []

    def evaluated(self, value: Any, scope: Mapping[str, Any]) -> Any:
        """`value` with its $expressions evaluated (a list item by item); errors are not placed."""
        if isinstance(value, str):
            return value if "$" not in value else expr.evaluate(value, scope)  # "$": expr.is_expression
        if isinstance(value, list):
            return [self.evaluated(v, scope) for v in value]
        return value

    def sources(self, source: object, prev: _Input, ctx: _Context, where: Where, written: str) -> list[_Input]:
        """The inputs of an item: the previous output, or what `from:` names."""
        cls = layer_type(written)
        many = cls is not None and cls.min_inputs > 1
        if source is None:
            if many:
                raise SpecError(
                    f"{written} needs its inputs named with 'from'",
                    where=where,
                    expected=f"- {written}: {{from: [a, b]}} (with one name, the previous layer is the first input)",
                )
            return [prev]
        names = source if isinstance(source, list) else [source]
        if not names or any(not isinstance(n, (str, int)) or isinstance(n, bool) for n in names):
            raise SpecError(
                "'from' must name earlier layers", where=where, received=source, expected="a name or a list of names"
            )
        refs: list[_Input] = [_Ref(str(n), ctx.prefix, where) for n in names]
        if many and len(refs) == 1:
            refs.insert(0, prev)
        variadic = cls is not None and cls.min_inputs == 1 and cls.max_inputs is None  # a traced row: any number
        if not many and not variadic and len(refs) != 1:
            raise SpecError(f"{written} takes one input", where=where, received=source, expected="from: one name")
        return refs

    def check_type(self, written: str, where: Where) -> None:
        if written in STRUCTURES or written == CALL or written in self.blocks or layer_type(written) is not None:
            return
        choices = [*REGISTRY, *ALIASES, *STRUCTURES, *self.blocks]
        raise SpecError(
            f"unknown layer type '{written}'",
            where=where,
            received=written,
            expected="a layer type (`cnncalc layers` lists them), a structure (sequential, residual, parallel) or a block defined under 'blocks'",
            hint=did_you_mean(written, choices),
        )

    def one(
        self,
        written: str,
        args: dict[str, Any],
        name: str,
        inputs: list[_Input],
        where: Where,
        ctx: _Context,
        line: int | None,
    ) -> _Input:
        """Expand one item (after repeat) whose full name and inputs are known."""
        self.check_type(written, where)
        if written in STRUCTURES or written in self.blocks:
            # `from: in` inside a structure or block use reads its input (squeeze-excitation's `x * scale`)
            self.outputs[name + "." + OWN_INPUT] = inputs[0]
        if written in STRUCTURES:
            self.outputs[name] = getattr(self, written)(args, name, inputs[0], where, ctx)
            return self.outputs[name]
        if written in self.blocks:
            self.outputs[name] = self.block(self.blocks[written], args, name, inputs[0], where, ctx)
            return self.outputs[name]
        cls = layer_type(written)
        assert cls is not None  # check_type above
        layer = self.layer(cls, args, name, where)
        # an argument naming another layer (center_crop's `like`) is read as one more input
        inputs = inputs + [_Ref(args[arg], ctx.prefix, where) for arg in _layer_name_args(cls) if arg in args]
        pieces = getattr(layer, "pieces", None)
        if pieces is not None:  # several outputs (chunk, split): one row per piece, `name.0`, `name.1`, ...
            self.containers[name] = cls.kind
            piece = partial(replace, layer)  # `piece` is a field of the multi-output types only
            try:  # how many: from the input's shape (torch.split(x, 26) of 104 channels makes 4)
                count = pieces(partial(self.shape_of, inputs[0]))
            except LayerError as err:
                raise err.located(Where(where.file, where.line, f"{where.path} {name}")) from None
            rows = [self.add(f"{name}.{k}", cls.kind, written, piece(piece=k), inputs, where) for k in range(count)]
            self.outputs[name] = rows[-1]
            return rows[-1]
        return self.add(name, cls.kind, written, layer, inputs, where)

    def layer(self, cls: type[Layer], args: dict[str, Any], name: str, where: Where) -> Layer:
        """`build_layer(cls, args)`, made once per distinct arguments in a spec: layers are frozen,
        and a block used fifty times builds the same few layers again and again. The key holds
        each value's type (1, 1.0 and true are equal in Python, not as arguments); arguments that
        are not hashable (lists) are built every time."""
        try:
            key = (cls, tuple(args.items()), tuple(map(type, args.values())))  # built in C: once per row
            layer = self.layers.get(key)
        except TypeError:  # a list argument
            key, layer = None, None
        if layer is None:
            try:
                layer = build_layer(cls, args)
            except LayerError as err:
                raise err.located(Where(where.file, where.line, f"{where.path} {name}")) from None
            if key is not None:
                self.layers[key] = layer
        return layer

    def merge(self, kind: str) -> Layer:
        """The layer that merges a residual's or a parallel's outputs (`add`, `concat`): it has no
        arguments, so one per spec (as `layer` keeps them)."""
        return self.layer(REGISTRY[kind], {}, kind, _NOWHERE)

    def call(
        self, args: dict[str, Any], name: object, source: object, prev: _Input, ctx: _Context, where: Where
    ) -> int:
        """A row that runs an earlier row's module again: named `<row>@2`, `<row>@3`, ... unless named."""
        for key in args:
            if key != "layer":
                raise SpecError(
                    f"unknown key '{key}' for call",
                    where=where,
                    received=key,
                    expected="- call: relu, or - call: {layer: relu, name: ..., from: ...}",
                )
        target = args.get("layer")
        if not isinstance(target, str) or not target:
            raise SpecError("'call' names an earlier row", where=where, received=target, expected="- call: relu")
        parts = ctx.prefix.rstrip(".").split(".") if ctx.prefix else []
        found = next(
            (c for c in (".".join(parts[:i] + [target]) for i in range(len(parts), -1, -1)) if c in self.names), None
        )
        if found is None or found == INPUT:
            raise SpecError(
                f"'call: {target}' names no earlier row",
                where=where,
                received=target,
                expected="the name of an earlier layer (not a structure)",
                hint=did_you_mean(target, self.names),
            )
        original = self.drafts[self.names[found]]
        if original.calls is not None:
            original = self.drafts[self.names[original.calls]]
        self.calls[original.name] = self.calls.get(original.name, 1) + 1
        full = ctx.prefix + str(name) if name is not None else f"{original.name}@{self.calls[original.name]}"
        inputs = self.sources(source, prev, ctx, where, original.written)
        return self.add(full, original.kind, original.written, original.layer, inputs, where, calls=original.name)

    def copies(self, prev: int, kind: str, written: str, layer: Layer, names: list[str], where: Where) -> int:
        """Rows `names` of `layer` after the row `prev` (the last made), each reading the row before
        it; returns the last one's index. What `add` does for each, in one go (a long repeat's
        rows; a repeat's names differ from one another)."""
        start = len(self.drafts)
        if prev != start - 1 or start + len(names) > MAX_NODES or not self.names.keys().isdisjoint(names):
            for name in names:  # one at a time: `add` refuses the copy that breaks its rules
                prev = self.add(name, kind, written, layer, [prev], where)
            return prev
        self.names.update(zip(names, range(start, start + len(names))))
        self.drafts += [Node(name, kind, written, layer, (i,), where) for i, name in enumerate(names, prev)]
        return len(self.drafts) - 1

    def add(
        self,
        name: str,
        kind: str,
        written: str,
        layer: Layer | None,
        inputs: list[_Input],
        where: Where,
        calls: str | None = None,
    ) -> int:
        if name in self.names:
            first = self.drafts[self.names[name]].where
            raise SpecError(
                f"duplicate layer name '{name}'",
                where=row_place(where, name),
                received=f"'{name}' again (first at {first})",
                expected="a unique name per layer",
            )
        if len(self.drafts) >= MAX_NODES:
            raise SpecError(
                f"the expanded graph has more than {MAX_NODES:,} layers",
                where=row_place(where, name),
                expected="a spec of sensible size",
                hint="check repeat counts and YAML aliases",
            )
        self.names[name] = len(self.drafts)
        if _Ref in map(type, inputs):  # resolved by `finish`, once every name is known
            self.drafts.append(_Draft(name, kind, written, layer, inputs, where, calls))
        else:  # the node itself (most rows read the row before)
            self.drafts.append(Node(name, kind, written, layer, tuple(inputs), where, calls))  # type: ignore[arg-type]
        return len(self.drafts) - 1

    def shape_of(self, at: _Input) -> tuple[int, ...]:
        """The output shape of an already-expanded node (for `$in`), computed on demand and kept."""
        index = self.resolve(at, len(self.drafts)) if isinstance(at, _Ref) else at
        while len(self.shapes) <= index:
            d = self.drafts[len(self.shapes)]
            if d.layer is None:
                self.shapes.append(self.input_shape)
                continue
            ins = [self.shapes[self.resolve(x, len(self.shapes)) if isinstance(x, _Ref) else x] for x in d.inputs]
            try:
                self.shapes.append(d.layer.output_shape(ins))
            except CnncalcError as err:
                raise err.located(d.where) from None
        return self.shapes[index]

    # -- references -----------------------------------------------------------------------

    def resolve(self, ref: _Ref, at: int) -> int:
        """The node a reference names: a row, or a structure's (block use's, repeat's) output, its last row."""
        parts = ref.namespace.rstrip(".").split(".") if ref.namespace else []
        candidates = [".".join(parts[:i] + [ref.name]) for i in range(len(parts), -1, -1)]
        for candidate in candidates:
            if candidate in self.names or candidate in self.outputs:
                index = self.names.get(candidate)
                if index is None:
                    output = self.outputs[candidate]
                    index = self.resolve(output, at) if isinstance(output, _Ref) else output
                if index >= at:
                    raise SpecError(
                        f"'from: {ref.name}' refers to a layer that runs at or after this one (a cycle)",
                        where=self.drafts[at].where,
                        received=f"{candidate} (layer {index}) feeding layer {at}",
                        expected="a layer defined earlier in the spec",
                    )
                return index
        raise SpecError(
            f"unknown reference 'from: {ref.name}'",
            where=ref.where,
            received=ref.name,
            expected="the name of an earlier layer or structure",
            hint=did_you_mean(ref.name, [*self.names, *(o for o in self.outputs if not o.endswith("." + OWN_INPUT))]),
        )

    def finish(self) -> tuple[Node, ...]:
        nodes = self.drafts
        for i, d in enumerate(nodes):
            if type(d) is _Draft:
                inputs = tuple(self.resolve(x, i) if isinstance(x, _Ref) else x for x in d.inputs)
                nodes[i] = Node(d.name, d.kind, d.written, d.layer, inputs, d.site, d.calls)
        return tuple(nodes)  # type: ignore[arg-type]
