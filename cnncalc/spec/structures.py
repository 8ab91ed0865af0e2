"""The expander's structures: sequential, residual, parallel, and block uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import CnncalcError, SpecError, Where, did_you_mean
from ..layers import Layer
from . import expr
from .language import (
    ITEM_KEYS,
    MERGES,
    REQUIRED,
    _BlockDef,
    _check_name,
    _Context,
    _Input,
)
from .yaml_lines import LineList


class _Structures:
    """The structure methods of `_Expander` (expander.py), which inherits them."""

    if TYPE_CHECKING:  # what they use of the expander
        file: str | None
        top_scope: dict[str, Any]
        containers: dict[str, str]

        def chain(self, items: object, ctx: _Context, prev: _Input, default_prefix: str = "") -> _Input: ...
        def item(
            self,
            raw: object,
            line: int | None,
            path: str,
            ctx: _Context,
            prev: _Input,
            position: int,
            default_prefix: str,
        ) -> tuple[_Input, int]: ...
        def add(
            self,
            name: str,
            kind: str,
            written: str,
            layer: Layer | None,
            inputs: list[_Input],
            where: Where,
            calls: str | None = None,
        ) -> int: ...
        def merge(self, kind: str) -> Layer: ...
        def shape_of(self, at: _Input) -> tuple[int, ...]: ...

    # -- structures -----------------------------------------------------------------------

    def structure_args(
        self, args: dict[str, Any], allowed: tuple[str, ...], required: tuple[str, ...], what: str, where: Where
    ) -> None:
        for key in args:
            if key not in allowed:
                raise SpecError(
                    f"unknown key '{key}' for {what}",
                    where=where,
                    received=key,
                    expected="one of " + ", ".join((*allowed, *ITEM_KEYS)),
                    hint=did_you_mean(key, allowed),
                )
        for key in required:
            if key not in args:
                raise SpecError(f"{what} needs '{key}'", where=where, expected=f"{key}: a list of layers")

    def sequential(self, args: dict[str, Any], name: str, prev: _Input, where: Where, ctx: _Context) -> _Input:
        self.structure_args(args, ("layers",), ("layers",), "sequential", where)
        self.containers[name] = "sequential"
        return self.chain(args["layers"], ctx.inner(name + ".", f"{where.path}.layers"), prev)

    def residual(
        self, args: dict[str, Any], name: str, prev: _Input, where: Where, ctx: _Context, kind: str = "residual"
    ) -> _Input:
        self.structure_args(args, ("body", "shortcut", "after", "add"), ("body",), kind, where)
        self.containers[name] = kind
        add = args.get("add", True)  # `add: $stride == 1 and $in == $out`: an inverted residual's own rule
        if expr.is_expression(add):  # a block's keys are read here, in the use's scope
            try:
                add = expr.evaluate(add, ctx.scope)
            except CnncalcError as err:
                raise err.located(where) from None
        if type(add) is not bool:
            raise SpecError(
                "'add' of a residual is true or false (whether the shortcut is added)",
                where=where,
                received=add,
                expected="e.g. add: $stride == 1 and $in == $out",
            )
        if not add and args.get("shortcut"):
            raise SpecError(
                "a residual with 'add: false' is its body alone: it has no shortcut",
                where=where,
                hint="give the shortcut's items a 'when:' of the same condition",
            )
        inner = ctx.inner(name + ".", f"{where.path}.body")
        body = self.chain(args["body"], inner, prev)
        if not add:  # no shortcut and no `.add` row: the body, then `after`
            return self.chain(
                args.get("after") or [],
                ctx.inner(name + ".", f"{where.path}.after", scope=inner.scope, blocks_in_use=inner.blocks_in_use),
                body,
                default_prefix="after.",
            )
        shortcut = prev
        if args.get("shortcut"):
            shortcut_ctx = ctx.inner(
                name + ".", f"{where.path}.shortcut", scope=inner.scope, blocks_in_use=inner.blocks_in_use
            )
            shortcut = self.chain(args["shortcut"], shortcut_ctx, prev, default_prefix="shortcut.")
        merged: _Input = self.add(f"{name}.add", "add", "add", self.merge("add"), [body, shortcut], where)
        if args.get("after"):
            after_ctx = ctx.inner(
                name + ".", f"{where.path}.after", scope=inner.scope, blocks_in_use=inner.blocks_in_use
            )
            merged = self.chain(args["after"], after_ctx, merged, default_prefix="after.")
        return merged

    def parallel(
        self, args: dict[str, Any], name: str, prev: _Input, where: Where, ctx: _Context, kind: str = "parallel"
    ) -> _Input:
        self.structure_args(args, ("branches", "merge"), ("branches",), kind, where)
        merge = args.get("merge", "concat")
        if expr.is_expression(merge):  # a block's keys are read here, in the use's scope
            try:
                merge = expr.evaluate(merge, ctx.scope)
            except CnncalcError as err:
                raise err.located(where) from None
        if merge not in MERGES:
            raise SpecError(
                "'merge' of parallel must be " + ", ".join(MERGES[:-1]) + " or " + MERGES[-1],
                where=where,
                received=merge,
                hint=did_you_mean(str(merge), MERGES),
            )
        branches = args["branches"]
        if not isinstance(branches, list) or len(branches) < 2:
            raise SpecError(
                "parallel needs a list of at least two branches",
                where=where,
                received=branches,
                expected="branches: [[...layers...], [...layers...]]",
            )
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
        return self.add(f"{name}.{merge}", merge, merge, self.merge(merge), outputs, where)

    def block(
        self, block: _BlockDef, args: dict[str, Any], name: str, prev: _Input, where: Where, ctx: _Context
    ) -> _Input:
        if block.name in ctx.blocks_in_use:
            cycle = " -> ".join((*ctx.blocks_in_use, block.name))
            raise SpecError(
                f"block '{block.name}' uses itself ({cycle})", where=where, expected="blocks that do not recurse"
            )
        scope = self.block_scope(block, args, where, prev)
        path = f"blocks.{block.name}"
        inner = ctx.inner(
            name + ".", path, scope=scope, blocks_in_use=(*ctx.blocks_in_use, block.name), file=block.file
        )
        block_where = Where(block.file or self.file, block.line, f"{where.path} -> {path}")
        if "layers" in block.raw:
            self.containers[name] = block.name
            return self.chain(
                block.raw["layers"],
                _Context(inner.prefix, inner.scope, f"{path}.layers", inner.blocks_in_use, inner.depth, inner.file),
                prev,
            )
        structure = self.residual if "body" in block.raw else self.parallel
        keys = ("body", "shortcut", "after", "add") if "body" in block.raw else ("branches", "merge")
        return structure(
            {k: block.raw[k] for k in keys if k in block.raw}, name, prev, block_where, inner, kind=block.name
        )

    def inline_block(
        self,
        block: _BlockDef,
        args: dict[str, Any],
        prev: _Input,
        where: Where,
        ctx: _Context,
        position: int,
        default_prefix: str,
    ) -> tuple[_Input, int]:
        """A block use with `inline: true`: its items join the enclosing list, numbered on from its
        positions (VGG-BN's features.0, .1, .2 from a conv-bn-relu block), no name level of its own."""
        if block.name in ctx.blocks_in_use:
            raise SpecError(f"block '{block.name}' uses itself", where=where, expected="blocks that do not recurse")
        if "layers" not in block.raw:
            raise SpecError(
                f"'inline' needs a chain block ('layers:'); '{block.name}' is a residual or parallel block",
                where=where,
                hint="name the use instead",
            )
        items = block.raw["layers"]
        path = f"blocks.{block.name}.layers"
        inner = ctx.inner(
            ctx.prefix,
            path,
            scope=self.block_scope(block, args, where, prev),
            blocks_in_use=(*ctx.blocks_in_use, block.name),
            file=block.file,
        )
        if not isinstance(items, list):
            raise SpecError("expected a list of layers", where=where, received=items)
        for index, raw in enumerate(items):
            line = items.line_of(index) if isinstance(items, LineList) else None
            prev, position = self.item(raw, line, f"{path}[{index}]", inner, prev, position, default_prefix)
        return prev, position

    def block_scope(self, block: _BlockDef, args: dict[str, Any], where: Where, prev: _Input) -> dict[str, Any]:
        """The block's arguments: the spec's top-level args, shadowed by the block's own (given or
        defaults), and `$in`, the channels of the use's input, where the block reads it."""
        scope: dict[str, Any] = dict(self.top_scope)
        if block.reads_in:
            scope["in"] = self.shape_of(prev)[0]
        for key, value in args.items():
            if key not in block.args:
                raise SpecError(
                    f"unknown argument '{key}' for block '{block.name}'",
                    where=where,
                    received=key,
                    expected="one of " + (", ".join(block.args) or "(no arguments)"),
                    hint=did_you_mean(key, block.args),
                )
            scope[key] = value
        for key, default in block.args.items():
            if key not in args:  # a top-level arg of the same name does not stand in for the block's own
                if default is REQUIRED:
                    raise SpecError(
                        f"block '{block.name}' needs argument '{key}'",
                        where=where,
                        expected=f"- {block.name}: {{{key}: ...}}",
                    )
                scope[key] = default
        return scope
