"""Mapping: the traced fx graph as rows, one per layer of the future spec, each checked against its module."""

from __future__ import annotations

import inspect
import math
import operator
import re
from collections import Counter
from dataclasses import fields
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import TensorMetadata

from ...errors import NOTHING, CnncalcError, Where
from ...graph import INPUT, OutputKind
from ...layers import ALIASES, REGISTRY, build_layer
from ...module_names import RESERVED
from .. import _OWN_MODULES, Piece, modules, parameter_counts
from . import bias, casts, constants, conv_calls, elementwise, maxima, norms, token_norm, tokens
from .attention import AttentionRules, FoldedRules, held_read, transposed_matrix
from .nodes import (
    _SHAPE_ARITHMETIC,
    _TENSOR_PARAMS,
    _class_name,
    _described_value,
    _equivalent_module,
    _full_shape,
    _function_name,
    _has_node,
    _makes_namedtuple,
    _nodes,
    _Piece,
    _rebuilt,
    _Row,
    _same,
    _substitute,
    _Unmapped,
    _yaml_value,
)
from .result import Shape, TorchImportError
from .table import (
    FOREIGN_MODULE_KINDS,
    FUNCTIONS,
    METHODS,
    SAME_AT_INFERENCE,
    Equivalent,
    Special,
    _optional_class,
    _qualified,
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

    def traced(self, node: fx.Node, reason: str) -> None:
        """A row measured from PyTorch: the traced output shape, the parameters and buffers the op
        reads (each counted once), and the MACs torch.utils.flop_counter counted for it."""
        inputs: list[int] = []
        weights = biases = buffers = region_macs = 0
        for arg in _nodes(node.args, node.kwargs):
            if arg in self.of_node and self.of_node[arg] not in inputs:
                inputs.append(self.of_node[arg])
            elif arg in self.pieces:  # a tuple of pieces passed on whole
                inputs.extend(i for i in self.pieces[arg] if i is not None and i not in inputs)
            elif arg in self.region:  # a tensor that is not per sample: its ops join this row
                before, macs_before, held_before = self.region[arg]
                inputs.extend(i for i in before if i not in inputs)
                region_macs += macs_before
                weights, biases, buffers = (a + c for a, c in zip((weights, biases, buffers), held_before))
                self.region[arg] = (before, 0, (0, 0, 0))  # its MACs and tensors are counted once
            elif token_norm.is_folded(arg, self.gm) and arg.op == "call_module":  # bn(x.flatten(0, 1)): its module
                source, held, macs = token_norm.folded(self.gm, arg)
                if source in self.of_node and self.of_node[source] not in inputs:
                    inputs.append(self.of_node[source])
                weights, biases, buffers = (a + c for a, c in zip((weights, biases, buffers), self.claim(held)))
                region_macs += macs
            elif bias.reads(arg) is not None:  # a gathered attention bias: its table and index are the row's
                weights, biases, buffers = (
                    a + c for a, c in zip((weights, biases, buffers), self.claim(bias.tensors(self.gm, arg)))
                )
            elif held_read(arg) is not None:  # a parameter or buffer read in forward (or a view of one, or a
                # matrix transposed): its module's tensors are the row's
                path, _, attr = str(held_read(arg).target).rpartition(".")  # type: ignore[union-attr]
                owner = self.owner(path)
                read = getattr(owner, attr, None)
                held = [*owner.named_parameters(recurse=False), *owner.named_buffers(recurse=False)]
                if not any(t is read for _, t in held):
                    held = []  # a constant fx made of a tensor the code computed: no parameter, no buffer
                weights, biases, buffers = (a + c for a, c in zip((weights, biases, buffers), self.claim(held)))
        module = self.gm.get_submodule(str(node.target)) if node.op == "call_module" else None
        if module is not None:
            held = [*module.named_parameters(), *module.named_buffers()]
            weights, biases, buffers = (a + c for a, c in zip((weights, biases, buffers), self.claim(held)))
            op = _class_name(module)
            name = (
                str(node.target)
                if str(node.target) not in {r.name for r in self.rows}
                else self.fresh(str(node.target))
            )
            self.taken.add(name)
        else:
            op = f".{node.target}()" if node.op == "call_method" else _function_name(node.target)
            base = str(node.target) if node.op == "call_method" else _function_name(node.target).split(".")[-1]
            name = self.functional_name(node, re.sub(r"\W", "_", base.strip("_")) or "op")
        meta = node.meta.get("tensor_meta")
        if any(
            isinstance(out, TensorMetadata) and (not out.shape or out.shape[0] != 1)
            for out in ([meta] if isinstance(meta, TensorMetadata) else list(meta or ()))
        ):
            # not per sample (attention folds heads into the batch axis): no row of its own; its
            # inputs, parameters and MACs join the traced row that brings the batch axis back
            self.region[node] = (inputs, region_macs + int(node.meta.get("flops", 0)) // 2, (weights, biases, buffers))
            return
        if not inputs:
            inputs = [0]  # an op that reads no tensor (a constant it makes): placed after the input
        shapes = [list(self.rows[i].shape) for i in inputs]
        meta = node.meta.get("tensor_meta")
        outputs = (
            [meta] if isinstance(meta, TensorMetadata) else [m for m in meta or () if isinstance(m, TensorMetadata)]
        )
        macs = region_macs + int(node.meta.get("flops", 0)) // 2
        # a tuple of tensors: a row for each piece that is read (all, where the tuple is passed on whole)
        indices = [u.args[1] for u in node.users if u.op == "call_function" and u.target is operator.getitem]
        read = [k for k in indices if isinstance(k, int)]
        if len(read) != len(node.users):
            read = list(range(len(outputs)))
        used = sorted({k % len(outputs) for k in read}) if outputs else []
        rows: list[int | None] = [None] * len(outputs)
        for k in used:
            out = outputs[k]
            args: dict[str, Any] = {"op": op, "shape": list(out.shape[1:]), "inputs": shapes}
            if k == used[0]:  # the op's parameters and MACs are its first row's
                args.update(
                    weights_measured=weights, biases_measured=biases, buffers_measured=buffers, macs_measured=macs
                )
            args = {key: value for key, value in args.items() if value != 0}
            row_name = name if isinstance(meta, TensorMetadata) else f"{name}.{k}"
            self.taken.add(row_name)
            rows[k] = self.add_row(
                None,
                row_name,
                "traced",
                args,
                inputs,
                tuple(out.shape[1:]),
                counts=(weights, biases, buffers) if k == used[0] else (0, 0, 0),
            )
            self.rows[-1].module = module if k == used[0] else None
            self.rows[-1].reason = reason
        if isinstance(meta, TensorMetadata):
            self.of_node[node] = rows[0]  # type: ignore[assignment]
        else:
            self.pieces[node] = rows

    def shape_value(self, node: fx.Node) -> None:
        """The value of a node computed from shapes only, where it can be followed (else left unknown)."""
        if "value" in node.meta:  # the tracer ran it: the number (or sizes) at this input
            value = node.meta["value"]
            self.constants[node] = tuple(value) if isinstance(value, torch.Size) else value
            return
        args: list[Any] = [self.constants.get(a, a) if isinstance(a, fx.Node) else a for a in node.args]
        try:
            shape = _full_shape(node.args[0]) if node.args else None
            if node.op == "call_method" and node.target == "size" and shape is not None:
                value = shape if len(args) == 1 else shape[args[1]]
            elif node.op == "call_method" and node.target == "dim" and shape is not None:
                value = len(shape)
            elif node.op == "call_function" and node.target is getattr and args[1] == "shape" and shape is not None:
                value = shape
            elif (
                node.op == "call_function"
                and callable(node.target)
                and node.target in _SHAPE_ARITHMETIC
                and not _has_node(args)
            ):
                value = node.target(*args)
            else:
                return
        except Exception:  # noqa: BLE001 - not shape arithmetic after all: left unknown
            return
        self.constants[node] = value

    def output(self, node: fx.Node) -> None:
        value: Any
        (value,) = node.args
        if _makes_namedtuple(value):  # `return Features(c3, p4)`: fx records the class's call as a node
            value = value.target(*value.args, **value.kwargs)
        if isinstance(value, dict) and len(value) == 1:  # {"out": x}, as torchvision's segmentation models
            (value,) = value.values()
        if isinstance(value, (tuple, list)) and len(value) == 1 and not hasattr(type(value), "_fields"):
            (value,) = value  # `return (x,)`: one tensor (a NamedTuple of one field stays one)
        if isinstance(value, fx.Node) and value in self.pieces:  # `return torch.split(x, 2)`: its pieces
            value = tuple(_Piece(value, k) for k in range(len(self.pieces[value])))
        if isinstance(value, (tuple, list, dict)):  # several tensors: the spec's `outputs:`
            self.returns = self.several(node, value)
            return
        if isinstance(value, fx.Node) and value in self.region:
            raise self.fail(
                node,
                "the output changes the batch axis (traced at batch 1, it is not one sample's); "
                "cnncalc's rows are per sample",
                received=value.name,
            )
        if not isinstance(value, fx.Node) or value not in self.of_node or self.of_node[value] == 0:
            raise self.returned_error(value)  # not a tensor, or the input itself (as `several` refuses it)
        if self.of_node[value] != len(self.rows) - 1:
            # rows computed after the output (the other pieces of a split, a branch that goes
            # nowhere): an identity row at the end reads the output, as the spec's last row must
            source = self.of_node[value]
            self.add_row(None, self.fresh("output"), "identity", {}, [source], self.rows[source].shape)

    def several(self, node: fx.Node, value: tuple | list | dict) -> tuple[OutputKind, tuple[str, ...], tuple[int, ...]]:
        """A model that returns a tuple, list or dict of tensors (a backbone's feature maps): the
        row of each, in order, and how they are returned."""
        kind = (
            OutputKind.DICT
            if isinstance(value, dict)
            else OutputKind.LIST
            if isinstance(value, list)
            else OutputKind.NAMEDTUPLE
            if isinstance(getattr(type(value), "_fields", None), tuple)
            else OutputKind.TUPLE
        )
        returned = value
        if kind is OutputKind.NAMEDTUPLE:  # its name and fields; the class itself stays the model's
            self.typename = type(value).__name__
            value = dict(zip(type(value)._fields, value))  # type: ignore[union-attr]
        pairs = list(value.items()) if isinstance(value, dict) else [(str(k), v) for k, v in enumerate(value)]
        rows: list[int] = []
        for key, item in pairs:
            piece = self.pieces[item.of][item.index] if isinstance(item, _Piece) else None
            if piece is not None:
                rows.append(piece)
            elif isinstance(item, fx.Node) and item in self.region:
                raise self.fail(
                    node,
                    f"output {key!r} changes the batch axis (traced at batch 1, it is not one sample's); "
                    "cnncalc's rows are per sample",
                    received=item.name,
                )
            elif isinstance(item, fx.Node) and item in self.of_node and self.of_node[item] != 0:
                rows.append(self.of_node[item])
            else:
                raise self.returned_error(returned)
        if kind in (OutputKind.DICT, OutputKind.NAMEDTUPLE) and not all(isinstance(k, str) and k for k in value):
            raise self.returned_error(returned)
        return kind, tuple(str(k) for k, _ in pairs), tuple(rows)

    def returned_error(self, value: Any) -> TorchImportError:
        """What the model returns is not a tensor or a flat tuple, list or dict (with text keys) of them."""
        forward = type(self.root).forward
        try:
            file: str | None = inspect.getsourcefile(forward)
            line: int | None = inspect.getsourcelines(forward)[1]
        except (TypeError, OSError):
            file, line = None, None
        return TorchImportError(
            f"forward returns {_described_value(value)}; cnncalc imports models that "
            "return a tensor, or a tuple, list or dict of tensors computed from the input",
            where=Where(file=file, line=line, path=f"{type(self.root).__name__}.forward"),
            received=repr(value) if value is None or isinstance(value, (bool, int, float, str)) else NOTHING,
            expected="return x, return (c3, c4, c5), return [c3, c4, c5] or return {'p3': c3, 'p4': c4}",
        )

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

    def call_module(self, node: fx.Node) -> None:
        path = str(node.target)
        module = self.gm.get_submodule(path)
        if isinstance(module, Piece):  # cnncalc's own chunk/split piece: rows name.0, name.1
            inputs = [self.tensor_input(node, a, path) for a in node.args]
            self.add_row(node, path, "split", {"sizes": list(module.sizes)}, inputs, self.shape(node))
            self.rows[-1].piece = int(module.index)
            return
        kind = module_kind(module)
        if kind is None:
            raise self.unmapped(
                node,
                f"cnncalc has no layer type for the module {_class_name(module)} at '{path}'",
                expected="modules and functions listed in docs/import.md",
            )
        inputs = [self.tensor_input(node, a, path) for a in node.args]
        if node.kwargs:
            raise self.unmapped(
                node,
                f"'{path}' is called with keyword arguments, which cnncalc cannot follow",
                received=", ".join(node.kwargs),
            )
        args = self.module_args(node, module, kind, inputs)
        if path in self.called:
            if any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False)):
                raise self.unmapped(
                    node,
                    f"'{path}' is called more than once and has parameters (shared weights); "
                    "cnncalc gives every layer its own",
                )
            # the spec's `- call: relu` row, named as the spec names it: relu@2, relu@3, ...
            self.again[path] += 1
            name = self.fresh(f"{path}@{self.again[path] + 1}")
            self.add_row(node, name, kind, args, inputs, self.shape(node), calls=self.called[path])
            return
        self.called[path] = self.add_row(node, path, kind, args, inputs, self.shape(node), module)

    def module_args(self, node: fx.Node, module: nn.Module, kind: str, inputs: list[int]) -> dict[str, Any]:
        """The layer's YAML arguments read from the module, checked by rebuilding the module from them."""
        cls = REGISTRY[ALIASES.get(kind, kind)]
        args: dict[str, Any] = {}
        for f in fields(cls):
            for attr in (f.name, *f.metadata.get("aliases", ())):
                if hasattr(module, attr):
                    value = getattr(module, attr)
                    if f.name in ("bias", "gain") and not isinstance(value, (bool, float)):  # a tensor or None
                        value = value is not None
                    args[f.name] = _yaml_value(value)
                    break
        if kind == "layernorm" and isinstance(module, nn.LayerNorm):
            # nn.LayerNorm normalises the last len(normalized_shape) axes; LayerNorm2d the channels
            channels = _qualified(type(module)) in FOREIGN_MODULE_KINDS
            args["over"] = "channels" if channels else len(module.normalized_shape)
        shapes = [self.rows[i].shape for i in inputs]
        if kind == "linear" and shapes and len(shapes[0]) > 1:
            args["channels_last"] = True  # nn.Linear on the last axis at every position (ConvNeXt)
        try:
            layer = build_layer(cls, args)
            if shapes:  # its arguments hold for this input (a softmax over the batch axis does not)
                layer.output_shape(shapes)
            spec = layer.torch_module(shapes)
            factory = _OWN_MODULES.get(spec.name) or getattr(modules, spec.name, None) or getattr(nn, spec.name)
            rebuilt = _rebuilt(factory, spec.kwargs)
        except CnncalcError as err:
            raise self.unmapped(
                node,
                f"cnncalc's {kind} cannot express this {_class_name(module)}: {err.message}",
                received=err.received if err.received is not None else repr(module),
            ) from err
        if (
            type(rebuilt) is not type(module)
            and type(module) not in SAME_AT_INFERENCE
            and not isinstance(module, type(rebuilt))
            and _qualified(type(module)) not in FOREIGN_MODULE_KINDS
        ):
            raise self.unmapped(
                node,
                f"cnncalc's {kind} builds {type(rebuilt).__name__}, not {_class_name(module)}",
                received=repr(module),
            )
        rank = len(shapes[0]) + 1 if shapes else 0
        for attr in getattr(type(module), "__constants__", ()):
            if attr == "inplace" or not hasattr(module, attr):
                continue
            mine, theirs = getattr(rebuilt, attr, None), getattr(module, attr)
            if not _same(mine, theirs, attr, rank):
                raise self.unmapped(
                    node,
                    f"cnncalc's {kind} cannot express {_class_name(module)} with {attr}={theirs!r}",
                    received=repr(module),
                    expected=f"{attr}={mine!r}",
                )
        return args

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

    def scalar(self, node: fx.Node, a: Any, b: Any, what: str) -> None:
        """`x * 0.2`, `x + 3`, `1 - x`, `x / 2`: a tensor and a Python number (Inception-ResNet's scale)."""
        name = str(node.target) if node.op == "call_method" else getattr(node.target, "__name__", "")
        op = {"iadd": "add", "imul": "mul", "isub": "sub", "itruediv": "div", "truediv": "div", "ipow": "pow"}.get(
            name.rstrip("_"), name.rstrip("_")
        )
        number = (int, float)
        if isinstance(a, fx.Node) and type(b) in number:
            tensor, value = a, b
        elif isinstance(b, fx.Node) and type(a) in number and op in ("add", "mul", "sub"):
            tensor, value, op = b, a, "rsub" if op == "sub" else op
        else:
            raise self.unmapped(
                node, f"{what} of these operands: cnncalc has no layer type for it", received=f"{a!r}, {b!r}"
            )
        source = self.tensor_input(node, tensor, what)
        self.checked_row(node, "scalar", {"op": op, "value": float(value)}, [source], "scalar")

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

    def rule_view_like(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        """`x.unsqueeze(d)`, `x.squeeze(d)`, `x.contiguous()`: the type of the same name."""
        kind = self.rule_kind(node)
        source = self.tensor_input(node, bound.get("input"), what)
        args: dict[str, Any] = {}
        if kind in ("unsqueeze", "squeeze") and bound.get("dim") is not None:
            args["dim"] = _yaml_value(bound["dim"])
        if kind == "contiguous" and bound.get("memory_format") not in (None, torch.contiguous_format):
            raise self.unmapped(node, f"{what} with memory_format={bound['memory_format']}")
        self.checked_row(node, kind, args, [source], kind)

    def rule_pad(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        """`F.pad(x, (l, r, t, b, ...), mode, value)`: amounts last axis first, as `pad` writes them."""
        source = self.tensor_input(node, bound.get("input"), what)
        mode = bound.get("mode") or "constant"
        padding = list(bound.get("pad") or ())
        axes = len(self.rows[source].shape) - 1
        if mode == "constant" and len(padding) % 2 == 0 and len(padding) < 2 * axes:
            # F.pad(v, (0, 1)) pads the last axis only: the axes before it by 0 (EfficientViT's attention)
            padding += [0] * (2 * axes - len(padding))
        args = {"padding": padding, "mode": mode, "value": float(bound.get("value") or 0.0)}
        self.checked_row(node, "pad", args, [source], "pad")

    def rule_stack(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        tensors = bound.get("tensors")
        if not isinstance(tensors, (list, tuple)) or len(tensors) < 2:
            raise self.unmapped(node, f"{what} needs a list of tensors", received=repr(tensors))
        inputs = [self.tensor_input(node, t, what) for t in tensors]
        self.checked_row(node, "stack", {"dim": bound.get("dim", 0)}, inputs, "stack")

    def rule_matmul(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        """`q @ k.transpose(-2, -1)`, `torch.matmul(attn, v)`, `torch.bmm(a, b)`: a matmul of two
        rows, each per sample (a parameter or a tensor without the batch axis is not)."""
        a, b = bound.get("input"), bound.get("other", bound.get("mat2"))
        if self.matrix_product(node, a, b, what):  # x @ self.w.T: a learned matrix (attention.py)
            return
        inputs = [self.tensor_input(node, a, what), self.tensor_input(node, b, what)]
        self.checked_row(node, "matmul", {}, inputs, "matmul")

    def layer_scale(self, node: fx.Node, a: Any, b: Any, what: str) -> None:
        """`self.gamma * x` with a parameter of shape [C, 1, ...]: ConvNeXt's layer scale, a row
        named after the parameter (torchvision's CNBlock holds it as `layer_scale`)."""
        attr, value = (a, b) if isinstance(a, fx.Node) and a.op == "get_attr" else (b, a)
        source = self.tensor_input(node, value, what)
        before = self.rows[source].shape
        try:
            param = self.gm.get_parameter(str(attr.target))
        except AttributeError:
            param = None
        scale = (before[0], *(1,) * (len(before) - 1))
        if param is None or tuple(param.shape) != scale or self.shape(node) != before:
            got = list(param.shape) if param is not None else "a buffer or constant"
            raise self.unmapped(
                node,
                f"{what} by the tensor '{attr.target}': cnncalc follows it only as a layer scale, "
                f"a parameter of shape {list(scale)} for this input",
                received=got,
            )
        init = 1e-6
        values = param.detach()
        if values.device.type != "meta" and values.numel() and bool((values == values.flatten()[0]).all()):
            init = float(values.flatten()[0])  # the value it still holds (its initial value, untrained)
        name = str(attr.target) if str(attr.target) not in self.taken else self.fresh(str(attr.target))
        self.taken.add(name)
        self.add_row(node, name, "layer_scale", {"init": init}, [source], before, counts=(param.numel(), 0, 0))
        self.counted.add(id(param))

    def rule_permute(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        source = self.tensor_input(node, bound.get("input"), what)
        rank = len(self.rows[source].shape) + 1
        dims = bound.get("dims")
        dims = [dims] if isinstance(dims, int) else list(dims or ())
        dims = [d % rank if isinstance(d, int) else d for d in dims]
        if sorted(dims) != list(range(rank)) or dims[0] != 0:
            raise self.unmapped(
                node,
                f"cnncalc follows {what} only when the batch axis stays first",
                received=f"dims={bound.get('dims')!r}",
            )
        self.add_row(node, self.functional_name(node, "permute"), "permute", {"dims": dims}, [source], self.shape(node))

    def rule_pieces(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        """`x.chunk(2, dim=1)`, `torch.split(x, [a, b], 1)`: one row per piece, as the spec expands them."""
        source = self.tensor_input(node, bound.get("input", bound.get("tensor")), what)
        before = self.rows[source].shape
        rank = len(before) + 1
        dim = bound.get("dim", 0)
        meta = node.meta.get("tensor_meta")
        if not isinstance(dim, int) or dim % rank == 0:
            raise self.unmapped(
                node,
                f"cnncalc's chunk and split keep the batch axis; this {what} cuts dim={dim}",
                received=f"dim={dim}",
            )
        shapes = (
            [tuple(m.shape[1:] if m.shape[0] == 1 else m.shape) for m in meta]
            if isinstance(meta, (tuple, list))
            else []
        )
        kind = self.rule_kind(node)
        if kind == "chunk":
            args: dict[str, Any] = {"chunks": bound.get("chunks")}
        else:
            args = {"sizes": [shape[dim % rank - 1] for shape in shapes]}
        if dim % rank != 1:
            args["dim"] = dim % rank
        base = self.functional_name(node, kind)
        rows = []
        for k, shape in enumerate(shapes):
            self.taken.add(f"{base}.{k}")
            rows.append(self.add_row(None, f"{base}.{k}", kind, args, [source], shape))
            self.rows[-1].piece = k
        if not rows:
            raise self.unmapped(node, f"{what} gives no pieces cnncalc can follow", received=repr(meta))
        self.pieces[node] = list[int | None](rows)

    def channel_shuffle(self, node: fx.Node, source: int) -> bool:
        """ShuffleNet's shuffle: view [N, C, ...] as [N, g, C/g, ...], transpose(1, 2), (contiguous),
        view back to [N, C, ...]: one `channel_shuffle` row, written at the last view."""
        before, split = self.rows[source].shape, self.shape(node)
        if len(split) != len(before) + 1 or split[0] * split[1] != before[0] or split[2:] != before[1:]:
            return False
        chain, current = [node], node
        for step in ("transpose", "contiguous", "view"):
            users = list(current.users)
            if len(users) != 1:
                return False
            (user,) = users
            name = str(user.target) if user.op == "call_method" else getattr(user.target, "__name__", "")
            if step == "contiguous" and name != "contiguous":
                step = "view"  # contiguous() is optional
            if step == "transpose":
                ends = [d for d in user.args[1:3] if isinstance(d, int)]
                dims = sorted(d % (len(split) + 1) for d in ends) if len(user.args) == 3 else []
                if name not in ("transpose", "swapaxes") or user.kwargs or dims != [1, 2]:
                    return False
            elif step == "view":
                flat = name == "flatten" and user.args[1:] in ((1, 2),) and not user.kwargs
                if not (name in ("view", "reshape") or flat) or self.shape(user) != before:
                    return False
            chain.append(user)
            current = user
            if step == "view":
                break
        self.absorbed.update(chain[:-1])
        self.add_row(
            chain[-1],
            self.functional_name(node, "channel_shuffle"),
            "channel_shuffle",
            {"groups": split[0]},
            [source],
            before,
        )
        self.absorbed.add(chain[-1])
        return True

    def slicing(self, node: fx.Node, whole: fx.Node) -> None:
        """`x[:, :, a:b, c:d]`: a crop of the spatial axes (U-Net's skip crops), amounts last axis first."""
        source = self.tensor_input(node, whole, "indexing x[...]")
        before = self.rows[source].shape
        index = _substitute(node.args[1], self.constants)
        index = index if isinstance(index, tuple) else (index,)
        if source in self.folded:  # PyTorch's axis 0 (checked whole) is the row's 0 and 1: attention.py
            index = (slice(None), *index)
        if index.count(Ellipsis) == 1:  # o[..., :H, :W]: the axes the ellipsis stands for, whole
            at = index.index(Ellipsis)
            named = len(index) - 1 - sum(cut is None for cut in index)  # the axes the others index
            index = (*index[:at], *[slice(None)] * (len(before) + 1 - named), *index[at + 1 :])
        full = slice(None)
        spatial = list(index[2:]) + [full] * (len(before) - 1 - len(index[2:]))
        sides: list[int] = []
        ok = len(index) >= 2 and index[0] == full and index[1] == full and len(spatial) == len(before) - 1
        for size, cut in zip(before[1:], spatial):
            if not (isinstance(cut, slice) and cut.step in (None, 1)) or _has_node([cut.start, cut.stop]):
                ok = False
                break
            start, stop, _ = cut.indices(size)
            if stop <= start:
                ok = False
                break
            sides = [start, size - stop, *sides]  # the last axis first, as pad and crop write them
        if not ok:
            self.sliced(node, source, index)
            return
        self.add_row(
            node,
            self.functional_name(node, "crop"),
            "crop",
            {"amounts": _yaml_value(sides)},
            [source],
            self.shape(node),
        )

    def sliced(self, node: fx.Node, source: int, index: tuple) -> None:
        """`x[:, :k]`, `x[:, :, ::2, ::2]`: a `slice` of the axes cut (the batch axis whole)."""
        full = slice(None)
        if tokens.select(self, node, source, index):  # x[:, 0]: ViT's class token read back
            return
        if None in index and all(cut is None or cut == full for cut in index):  # y[:, :, None, None]
            self.checked_row(
                node, "unsqueeze", {"dim": [i for i, cut in enumerate(index) if cut is None]}, [source], "unsqueeze"
            )
            return
        cuts = [(axis, cut) for axis, cut in enumerate(index) if cut != full]
        if (
            not cuts
            or cuts[0][0] == 0
            or not all(isinstance(cut, slice) and not _has_node([cut.start, cut.stop, cut.step]) for _, cut in cuts)
        ):
            raise self.unmapped(
                node,
                "cnncalc follows indexing as a crop or a slice of whole axes (x[:, :k], x[:, :, ::2])",
                received=repr(node.args[1]),
            )
        args = {
            "dim": [a for a, _ in cuts],
            "begin": [c.start for _, c in cuts],
            "end": [c.stop for _, c in cuts],
            "step": [c.step for _, c in cuts],
        }
        self.checked_row(node, "slice", args, [source], "slice")

    def rule_sum(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        """`x.sum(1)` (ResNeSt's and SKNet's sum of branches), `x.mean(1, keepdim=True)`: over given axes."""
        name = str(node.target) if node.op == "call_method" else getattr(node.target, "__name__", "")
        kind = "mean" if name == "mean" else "sum"
        source = self.tensor_input(node, bound.get("input"), what)
        if bound.get("dim") is None or bound.get("dtype") is not None:
            raise self.unmapped(node, f"cnncalc follows {what} over given axes only", received=repr(bound.get("dim")))
        args = {"dim": _yaml_value(bound["dim"]), "keepdim": bool(bound.get("keepdim", False))}
        self.checked_row(node, kind, args, [source], kind)

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

    def rule_functional(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        """`F.batch_norm(x, self.running_mean, ..., self.weight, self.bias)`, `F.linear(x, self.weight,
        self.bias)`, `F.layer_norm`, `F.group_norm`, `F.conv2d`: a module's forward written with
        functions on its own parameters. The row is that module's (named by its path, so its
        state_dict loads), checked as the equivalent torch.nn module would be."""
        kind = self.rule_kind(node)
        source = self.tensor_input(node, bound.get("input"), what)
        shape = self.rows[source].shape
        targets: dict[str, str] = {}
        for key in ("weight", "bias", "running_mean", "running_var"):
            value = bound.get(key)
            if value is None:
                continue
            if not (isinstance(value, fx.Node) and value.op == "get_attr"):
                raise self.unmapped(node, f"{what} is given a {key} computed in forward (not a parameter as it is)")
            targets[key] = str(value.target)
        if "weight" not in targets and kind in ("linear", "conv"):
            raise self.unmapped(node, f"{what} without a weight parameter")
        owners = {t.rpartition(".")[0] for t in targets.values()}
        if len(owners) != 1 or any(t.rpartition(".")[2] != key for key, t in targets.items()):
            raise self.unmapped(
                node,
                f"{what} reads parameters that are not one module's weight, bias and running statistics",
                received=", ".join(targets.values()),
            )
        (path,) = owners
        owner = self.owner(path)
        tensor = {key: getattr(owner, t.rpartition(".")[2]) for key, t in targets.items()}
        rank = len(shape) - 1
        equivalent = _equivalent_module(kind, bound, tensor, shape, rank)
        if equivalent is None:
            raise self.unmapped(node, f"{what} with these arguments has no torch.nn equivalent cnncalc maps")
        args = self.module_args(node, equivalent, kind, [source])
        layer = build_layer(REGISTRY[kind], args)
        shapes = [shape]
        counts = (layer.weights(shapes), layer.biases(shapes), layer.buffers(shapes))
        if not path or path in {r.name for r in self.rows} or parameter_counts(owner) != counts:
            raise self.unmapped(
                node,
                f"{what}: its module '{path}' holds other tensors than cnncalc's {kind}",
                received=repr(parameter_counts(owner)),
                expected=repr(counts),
            )
        if layer.output_shape(shapes) != self.shape(node):
            raise self.unmapped(node, f"cnncalc's {kind} gives another shape than {what}")
        self.taken.add(path)
        self.add_row(node, path, kind, args, [source], self.shape(node), owner)

    def rule_transpose(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        """`x.transpose(1, 2)`, `x.mT`-like swaps of two axes (the batch kept): a permute."""
        source = self.tensor_input(node, bound.get("input"), what)
        rank = len(self.rows[source].shape) + 1
        a, b = bound.get("dim0"), bound.get("dim1")
        if not (isinstance(a, int) and isinstance(b, int)) or 0 in (a % rank, b % rank):
            raise self.unmapped(node, f"cnncalc follows {what} only when the batch axis stays first")
        dims = list(range(rank))
        dims[a % rank], dims[b % rank] = dims[b % rank], dims[a % rank]
        self.checked_row(node, "permute", {"dims": dims}, [source], "transpose")

    def rule_kind(self, node: fx.Node) -> str:
        rule = METHODS.get(str(node.target)) if node.op == "call_method" else FUNCTIONS[node.target]
        assert isinstance(rule, Special), "called for the merge rules only"
        return rule.kinds[0]

    def rule_cat(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        tensors = bound.get("tensors")
        rank = len(self.shape(node)) + 1
        dim = bound.get("dim", 0)
        if not isinstance(dim, int) or dim % rank == 0:
            raise self.unmapped(
                node, f"cnncalc's concat keeps the batch axis; this {what} joins dim={dim}", received=f"dim={dim}"
            )
        if not isinstance(tensors, (list, tuple)) or not tensors:
            raise self.unmapped(node, f"{what} needs a list of tensors", received=repr(tensors))
        inputs = [self.tensor_input(node, t, what) for t in tensors]
        if dim % rank != 1 and len(inputs) > 1:  # another axis than the channels (channels-last tokens)
            self.checked_row(node, "concat", {"dim": dim}, inputs, "concat")
            return
        if len(inputs) == 1:  # DenseNet's first layer: torch.cat([x], 1) is x (as a copy)
            self.add_row(node, self.functional_name(node, "concat"), "identity", {}, inputs, self.shape(node))
            return
        self.add_row(node, self.functional_name(node, "concat"), "concat", {}, inputs, self.shape(node))

    def rule_flatten(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        source = self.tensor_input(node, bound.get("input"), what)
        rank = len(self.rows[source].shape) + 1
        start, end = bound.get("start_dim", 0), bound.get("end_dim", -1)
        if start % rank == 0:
            raise self.unmapped(node, "cnncalc's flatten keeps the batch axis", received=f"start_dim={start}")
        if start % rank == 1 and end % rank == rank - 1:
            self.add_row(node, self.functional_name(node, "flatten"), "flatten", {}, [source], self.shape(node))
            return
        self.checked_row(node, "flatten", {"start_dim": start, "end_dim": end}, [source], "flatten")

    def rule_reshape(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        source = self.tensor_input(node, bound.get("input"), what)
        before, after = self.rows[source].shape, self.shape(node)
        if after != (math.prod(before),) and self.channel_shuffle(node, source):
            return
        if after != (math.prod(before),):  # any other shape, the batch kept: reshape (a view where strides allow)
            self.checked_row(
                node,
                "reshape",
                {"shape": list(after)},
                [source],
                str(node.target) if node.op == "call_method" else "reshape",
            )
            return
        base = str(node.target) if node.op == "call_method" else "reshape"
        self.add_row(node, self.functional_name(node, base), "flatten", {}, [source], after)

    def rule_mean(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        source = self.tensor_input(node, bound.get("input"), what)
        before = self.rows[source].shape
        rank = len(before) + 1
        dims = bound.get("dim")
        dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
        if bound.get("dtype") is None and dims and sorted(d % rank for d in dims) != list(range(2, rank)):
            self.rule_sum(node, bound, what)  # over other axes: cnncalc's mean
            return
        if bound.get("dtype") is not None or sorted(d % rank for d in dims) != list(range(2, rank)):
            raise self.unmapped(
                node,
                f"cnncalc follows {what} only over every spatial axis (global average pooling)",
                received=f"dim={bound.get('dim')!r} of [N, {', '.join(map(str, before))}]",
            )
        name = self.functional_name(node, "mean")
        pooled = (before[0], *(1,) * (len(before) - 1))
        if bound.get("keepdim", False):
            self.add_row(node, name, "global_avgpool", {}, [source], self.shape(node))
        else:
            index = self.add_row(None, name, "global_avgpool", {}, [source], pooled)
            self.add_row(node, self.fresh(f"{name}_flatten"), "flatten", {}, [index], self.shape(node))
