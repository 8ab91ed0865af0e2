"""Mapping: the traced fx graph as rows, one per layer of the future spec, each checked against its module.

`_Mapper` walks the graph and holds what the rules share; the rules live by job in modules of their
own, as functions the mapper binds under its name: module_calls (a module's call), shaping (views,
pieces, cat), functional (F.* calls and arithmetic), attention, elementwise, norms, bias, tokens,
casts, conv_calls, maxima, constants, token_norm, traced_rows (what has no rule) and returns (what
the model returns); nodes holds the records and helpers they all read."""

from __future__ import annotations

import operator
import re
from collections import Counter
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import TensorMetadata

from ...errors import CnncalcError, Where
from ...graph import INPUT, OutputKind
from ...layers import ALIASES, REGISTRY, build_layer
from ...module_names import RESERVED
from . import (
    bias,
    casts,
    constants,
    conv_calls,
    elementwise,
    functional,
    maxima,
    module_calls,
    norms,
    returns,
    shaping,
    token_norm,
    tokens,
    traced_rows,
)
from .attention import AttentionRules, FoldedRules, held_read, transposed_matrix
from .nodes import (
    _TENSOR_PARAMS,
    _function_name,
    _has_node,
    _nodes,
    _Row,
    _substitute,
    _Unmapped,
)
from .result import Shape, TorchImportError
from .table import (
    FUNCTIONS,
    METHODS,
    Equivalent,
    Special,
    _optional_class,
    _registered,
    module_kind,
)
from .trace import _user_frame


class _Mapper(AttentionRules, FoldedRules):
    """Turns the traced fx graph into rows, naming each and checking it against the user's module."""

    def __init__(self, root: nn.Module, gm: fx.GraphModule, forced: set[str] | frozenset[str] = frozenset()) -> None:
        self.root = root
        self.gm = gm
        self.rows: list[_Row] = []
        self.taken = {name for name, _ in root.named_modules() if name} | {INPUT}
        self.of_node: dict[fx.Node, int] = {}
        self.called: dict[str, int] = {}  # module path -> the row of its first call
        self.again: Counter[str] = Counter()  # module path -> how many times it ran
        self.constants: dict[fx.Node, Any] = {}  # shape arithmetic, evaluated at the traced input
        self.pieces: dict[fx.Node, list[int | None]] = {}  # chunk/split nodes -> the rows of their pieces
        self.absorbed: set[fx.Node] = set()  # nodes already written as part of one row
        self.scope_of: dict[str, str] = {}  # a functional row's name -> the module path it was called in
        self.counted: set[int] = set()  # parameters and buffers a traced row holds (each counted once)
        self.forced = forced  # fx node names to trace rather than map (their mapping did not write back)
        # nodes whose tensors are not per sample (batch axis changed): (row inputs, MACs, counts) so far
        self.region: dict[fx.Node, tuple[list[int], int, tuple[int, int, int]]] = {}
        self.returns: tuple[OutputKind, tuple[str, ...], tuple[int, ...]] | None = None  # several outputs
        self.typename: str | None = None  # a NamedTuple's class name, where the model returns one
        self.folded: set[int] = set()  # rows with windows or heads folded into the batch axis (attention.py)
        # constants computed from shapes that a layer type rebuilds, by the node where they meet the
        # model's tensors: (features, temperature, the tensors whose size they read) (constants.py)
        self.sines: dict[fx.Node, tuple[int, float, list[fx.Node]]] = {}

    # -- errors ---------------------------------------------------------------------------

    def unmapped(self, node: fx.Node, message: str, **extra: Any) -> _Unmapped:
        """No mapping expresses this node exactly: it becomes a traced row (`message` says why)."""
        error = self.fail(node, message, **extra)
        return _Unmapped(error.message, where=error.where, received=error.received)

    def fail(self, node: fx.Node, message: str, **extra: Any) -> TorchImportError:
        file, line, source, function = _user_frame(node)
        path = (
            node.target
            if node.op == "call_module"
            else self.scope(node) or ".".join(filter(None, [type(self.root).__name__, function]))
        )
        received = extra.pop("received", None)
        if source:
            received = f"{source}" if received is None else f"{received} (in `{source}`)"
        return TorchImportError(message, where=Where(file=file, line=line, path=str(path)), received=received, **extra)

    # -- names ----------------------------------------------------------------------------

    @staticmethod
    def scope(node: fx.Node) -> str:
        stack = node.meta.get("nn_module_stack") or {}
        if not stack:
            return ""
        path = list(stack.values())[-1][0]
        return "" if path in ("", None) else str(path)

    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def functional_name(self, node: fx.Node, base: str) -> str:
        scope = self.scope(node)
        if base in RESERVED:  # `.to()`, `.type()`: an nn.Module attribute cannot name a module
            base = f"{base}_op"
        name = self.fresh(f"{scope}.{base}" if scope else base)
        if scope:
            self.scope_of[name] = scope
        return name

    def name_after_modules(self) -> None:
        """A functional call that is all a parameter-free module without children does (cnncalc's
        Mul, a wrapper of F.interpolate) is named after that module, as named_modules() has it."""
        rows_in: dict[str, list[int]] = {}
        for i, row in enumerate(self.rows):
            scope = self.scope_of.get(row.name)
            if scope is not None and row.piece is None:
                rows_in.setdefault(scope, []).append(i)
        names = {row.name for row in self.rows}
        for scope, rows in rows_in.items():
            try:
                module = self.root.get_submodule(scope)
            except AttributeError:
                continue
            if len(rows) != 1 or scope in names or any(True for _ in module.children()):
                continue
            if any(True for _ in module.parameters()) or any(True for _ in module.buffers()):
                continue
            self.rows[rows[0]].name = scope

    # -- the walk -------------------------------------------------------------------------

    def run(self) -> list[_Row]:
        placeholders = [n for n in self.gm.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise TorchImportError(
                "cnncalc imports models with one input tensor",
                received=f"forward({', '.join(n.name for n in placeholders)})",
            )
        constants.find_constants(self)
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                meta = node.meta["tensor_meta"]
                self.rows.append(_Row(INPUT, INPUT, {}, [], tuple(meta.shape[1:])))
                self.of_node[node] = 0
            elif node.op == "output":
                self.output(node)
            elif node.op == "get_attr":
                continue  # a parameter read in forward: followed only as a layer scale (rule_merge)
            elif node in self.absorbed:
                continue  # part of a pattern already written as one row (channel shuffle)
            elif elementwise.is_attribute_view(node) or transposed_matrix(node) is not None:
                continue  # a parameter viewed (gamma.view(-1, 1, 1)) or transposed: the row that uses it holds it
            elif bias.is_gathered(node):
                continue  # a table gathered by an index buffer (attention biases): the add that reads it holds it
            elif token_norm.is_folded(node, self.gm):
                continue  # bn(x.flatten(0, 1)) of LeViT's LinearNorm: its reshape_as(x) writes the row
            elif not isinstance(node.meta.get("tensor_meta"), (TensorMetadata, tuple, list)):
                self.shape_value(node)  # shape arithmetic (x.size(0), x.shape[-2:]): a constant at this input
                continue
            else:
                self.map_or_trace(node)
        self.name_after_modules()
        return self.rows

    def map_or_trace(self, node: fx.Node) -> None:
        """The node as cnncalc's own rows where a mapping expresses it exactly, else as a traced row."""
        meta = node.meta.get("tensor_meta")
        outputs = [meta] if isinstance(meta, TensorMetadata) else list(meta or ())
        if any(isinstance(out, TensorMetadata) and (not out.shape or out.shape[0] != 1) for out in outputs):
            if self.unbind_after_permute(node):  # attention's qkv.permute(2, 0, 3, 1, 4).unbind(0)
                return
            if not all(
                n in self.of_node
                or n in self.pieces
                or held_read(n) is not None
                or "value" in n.meta
                or bias.is_gathered(n)
                for n in _nodes(node.args, node.kwargs)
            ):
                self.traced(node, "its output is not per sample (the batch axis changed)")
                return
        rows, taken, counted, called = len(self.rows), set(self.taken), set(self.counted), dict(self.called)
        try:
            if node.name in self.forced:
                raise self.unmapped(node, "the spec written with its mapping did not read back exactly")
            if node.op == "call_module":
                self.check_folded(node, self.gm.get_submodule(str(node.target)))
            self.call_module(node) if node.op == "call_module" else self.call(node)
            for row in self.rows[rows:]:
                row.node = node.name
            if self.outputs_folded(node):
                self.folded.update(range(rows, len(self.rows)))
        except _Unmapped as err:
            del self.rows[rows:]
            self.taken, self.counted, self.called = taken, counted, called
            for done in [n for n, i in self.of_node.items() if i >= rows]:
                del self.of_node[done]
            self.traced(node, err.message)

    traced = traced_rows.traced
    shape_value = traced_rows.shape_value

    output = returns.output
    several = returns.several
    returned_error = returns.returned_error

    def tensor_input(self, node: fx.Node, value: Any, what: str) -> int:
        if isinstance(value, fx.Node) and value in self.of_node:
            return self.of_node[value]
        if isinstance(value, fx.Node) and bias.is_gathered(value) and self.of_node:
            # a gathered bias read whole (attention's attn_mask): a row of its own, after the latest row
            first = node.args[0] if node.args else None  # attention's q: the row before the mask
            anchor = self.of_node[first] if isinstance(first, fx.Node) and first in self.of_node else None
            return bias.mask_row(self, node, value, max(self.of_node.values()) if anchor is None else anchor, what)
        if isinstance(value, fx.Node) and value.op == "get_attr":
            raise self.unmapped(
                node,
                f"the forward pass reads the tensor '{value.target}' directly (a parameter or buffer "
                "outside a layer); cnncalc has no layer type for that",
            )
        raise self.unmapped(
            node, f"{what} takes a value cnncalc cannot follow (a constant or a non-layer result)", received=repr(value)
        )

    def shape(self, node: fx.Node) -> Shape:
        meta = node.meta.get("tensor_meta")
        if not isinstance(meta, TensorMetadata):
            raise self.unmapped(
                node, "this call returns several tensors; cnncalc layers return one", received=node.name
            )
        return tuple(meta.shape[1:]) if meta.shape[0] == 1 else tuple(meta.shape)  # folded: attention.py

    def add_row(
        self,
        node: fx.Node | None,
        name: str,
        kind: str,
        args: dict[str, Any],
        inputs: list[int],
        shape: Shape,
        module: nn.Module | None = None,
        calls: int | None = None,
        counts: tuple[int, int, int] | None = None,
    ) -> int:
        self.rows.append(_Row(name, kind, args, inputs, shape, module, calls, counts))
        if module is not None:  # its tensors are this row's: a traced row that reads them again counts none
            self.counted.update(id(t) for t in (*module.parameters(recurse=False), *module.buffers(recurse=False)))
        if node is not None:
            self.of_node[node] = len(self.rows) - 1
        return len(self.rows) - 1

    call_module = module_calls.call_module
    module_args = module_calls.module_args

    def call(self, node: fx.Node) -> None:
        if node in self.sines:  # a constant computed from sizes: one row (constants.py)
            constants.sine_row(self, node)
            return
        if token_norm.pattern(node, self.gm) is not None:
            token_norm.rule_token_norm(self, node)  # LeViT's bn(x.flatten(0, 1)).reshape_as(x)
            return
        whole = node.args[0] if node.args else None
        if (
            node.op == "call_function"
            and node.target is operator.getitem
            and isinstance(whole, fx.Node)
            and whole in self.pieces
        ):
            rows, index = self.pieces[whole], node.args[1]  # x1, x2 = x.chunk(2, dim=1)
            if not isinstance(index, int) or not -len(rows) <= index < len(rows) or rows[index] is None:
                raise self.fail(
                    node,
                    "a piece of a chunk or split is read with an index cnncalc cannot follow",
                    received=repr(index),
                )
            self.of_node[node] = rows[index]  # type: ignore[assignment]
            return
        if node.op == "call_function" and node.target is operator.getitem and isinstance(whole, fx.Node):
            self.check_folded(node, "indexing")
            self.slicing(node, whole)
            return
        rule = METHODS.get(str(node.target)) if node.op == "call_method" else FUNCTIONS.get(node.target)
        what = (
            f"the method .{node.target}()"
            if node.op == "call_method"
            else f"the function {_function_name(node.target)}"
        )
        if rule is None:
            raise self.unmapped(
                node, f"cnncalc has no layer type for {what}", expected="modules and functions listed in docs/import.md"
            )
        self.check_folded(node, rule)
        bound = self.folded_axes(node, self.bind(node, rule.params, what))
        if isinstance(rule, Equivalent):
            self.equivalent(node, rule, bound, what)
            return
        missing = [k for k in rule.kinds if not _registered(k)]
        if missing:
            raise self.unmapped(
                node,
                f"cnncalc has no layer type for {what} (it would need '{missing[0]}')",
                expected="modules and functions listed in docs/import.md",
            )
        getattr(self, f"rule_{rule.rule}")(node, bound, what)

    def bind(self, node: fx.Node, params: tuple[str, ...], what: str) -> dict[str, Any]:
        if node.op == "call_method" and str(node.target) in ("view", "reshape", "expand"):
            return {"input": node.args[0]}  # the sizes are read by the rule
        if node.op == "call_method" and str(node.target) == "repeat" and not node.kwargs:
            return {"input": node.args[0], "sizes": _substitute(tuple(node.args[1:]), self.constants)}
        if node.op == "call_method" and str(node.target) == "permute" and not node.kwargs:
            dims = node.args[1] if len(node.args) == 2 else tuple(node.args[1:])  # x.permute(0, 2, 3, 1)
            return {"input": node.args[0], "dims": _substitute(dims, self.constants)}
        if len(node.args) > len(params):
            raise self.unmapped(
                node, f"{what} is called with more arguments than cnncalc knows", received=len(node.args)
            )
        bound = dict(zip(params, node.args))
        for key, value in node.kwargs.items():
            if key not in params:
                raise self.unmapped(
                    node, f"{what} is called with the argument '{key}', which cnncalc cannot follow", received=key
                )
            bound[key] = value
        for key, value in bound.items():
            if key not in _TENSOR_PARAMS:
                bound[key] = value = _substitute(value, self.constants)
            if key not in _TENSOR_PARAMS and _has_node(value):
                raise self.unmapped(
                    node,
                    f"the argument '{key}' of {what} is computed from a tensor; cnncalc needs a constant",
                    received=repr(value),
                )
        return bound

    def equivalent(self, node: fx.Node, rule: Equivalent, bound: dict[str, Any], what: str) -> None:
        cls = _optional_class(rule.module) if isinstance(rule.module, str) else rule.module
        for key, value in rule.required.items():
            if key in bound and bound[key] != value:
                raise self.unmapped(
                    node, f"cnncalc follows {what} only with {key}={value!r}", received=f"{key}={bound[key]!r}"
                )
        kwargs = {k: v for k, v in bound.items() if k != "input" and k not in rule.required and k not in rule.ignored}
        if cls is None:
            raise self.unmapped(
                node, f"cnncalc has no layer type for {what}", expected="modules and functions listed in docs/import.md"
            )
        try:
            module = cls(**kwargs)
        except (TypeError, ValueError) as err:
            raise self.unmapped(
                node, f"cnncalc cannot follow {what} with these arguments: {err}", received=repr(kwargs)
            ) from None
        kind = module_kind(module)
        if kind is None:
            raise self.unmapped(
                node, f"cnncalc has no layer type for {what}", expected="modules and functions listed in docs/import.md"
            )
        source = self.tensor_input(node, bound.get("input"), what)
        base = re.sub(
            r"_$", "", str(node.target) if node.op == "call_method" else _function_name(node.target).split(".")[-1]
        )
        args = self.module_args(node, module, kind, [source])
        self.add_row(node, self.functional_name(node, base), kind, args, [source], self.shape(node))

    # -- rules for the calls that are not a module's forward ------------------------------

    rule_arith = elementwise.rule_arith
    rule_unary = elementwise.rule_unary
    rule_reduce = elementwise.rule_reduce
    rule_cast = casts.rule_cast
    rule_conv_call = conv_calls.rule_conv_call
    rule_batch_norm_call = conv_calls.rule_batch_norm_call
    rule_cat_tokens = tokens.rule_cat_tokens
    rule_max = maxima.rule_max
    rule_normalize = norms.rule_normalize
    rule_addcmul = norms.rule_addcmul
    rule_repeat = constants.rule_repeat
    rule_vector_norm = norms.rule_vector_norm

    scalar = functional.scalar
    rule_matmul = functional.rule_matmul
    layer_scale = functional.layer_scale
    rule_sum = functional.rule_sum
    rule_functional = functional.rule_functional
    rule_mean = functional.rule_mean

    def checked_row(self, node: fx.Node, kind: str, args: dict[str, Any], inputs: list[int], base: str) -> None:
        """A row of `kind` for the node, after checking that cnncalc's layer gives the traced shape."""
        try:
            layer = build_layer(REGISTRY[ALIASES.get(kind, kind)], args)
            shape = layer.output_shape([self.rows[i].shape for i in inputs])
        except CnncalcError as err:
            raise self.unmapped(node, f"cnncalc's {kind} cannot express this call: {err.message}") from None
        if shape != self.shape(node):
            raise self.unmapped(node, f"cnncalc's {kind} gives {list(shape)}, PyTorch {list(self.shape(node))}")
        self.add_row(node, self.functional_name(node, base), kind, args, inputs, shape)

    rule_view_like = shaping.rule_view_like
    rule_pad = shaping.rule_pad
    rule_stack = shaping.rule_stack
    rule_permute = shaping.rule_permute
    rule_pieces = shaping.rule_pieces
    channel_shuffle = shaping.channel_shuffle
    slicing = shaping.slicing
    sliced = shaping.sliced
    rule_transpose = shaping.rule_transpose
    rule_cat = shaping.rule_cat
    rule_flatten = shaping.rule_flatten
    rule_reshape = shaping.rule_reshape

    def claim(self, held: list[tuple[str, torch.Tensor]]) -> tuple[int, int, int]:
        """(weights, biases, buffers) of the tensors not yet held by a row, which a traced row now holds."""
        counts = [0, 0, 0]
        for name, tensor in held:
            if id(tensor) in self.counted:
                continue
            self.counted.add(id(tensor))
            kind = 2 if not isinstance(tensor, nn.Parameter) else 1 if name.rsplit(".", 1)[-1] == "bias" else 0
            counts[kind] += tensor.numel()
        return counts[0], counts[1], counts[2]

    def owner(self, path: str) -> nn.Module:
        """The user's module at `path` (the GraphModule keeps only the tensors the graph reads; a
        batch norm's num_batches_tracked is not), or the GraphModule for fx's own constants."""
        try:
            return self.root.get_submodule(path)
        except AttributeError:
            return self.gm.get_submodule(path) if path else self.gm

    def rule_kind(self, node: fx.Node) -> str:
        rule = METHODS.get(str(node.target)) if node.op == "call_method" else FUNCTIONS[node.target]
        assert isinstance(rule, Special), "called for the merge rules only"
        return rule.kinds[0]
