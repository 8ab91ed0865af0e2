"""Mapping rules for attention code (issue 18): `q, k, v = qkv.unbind(0)` after the permute that
moves the batch axis second, `qkv[0], qkv[1], qkv[2]` likewise, `x.unbind(d)` on a per-sample
tensor, and F.scaled_dot_product_attention. A mixin of the mapper (mapping._Mapper), kept apart
from the shared rules there.

timm's attention (PVT-v2, Twins, NesT, DaViT, CoaT, ...) writes

    qkv = self.qkv(x).reshape(B, N, 3, heads, d).permute(2, 0, 3, 1, 4)   # [3, B, heads, N, d]
    q, k, v = qkv.unbind(0)                                               # each [B, heads, N, d]

The permute's output is not per sample (the batch axis is second), but each piece is: the same
pieces are the slices of the reshaped tensor along the cut axis (`unbind: {dim: 2}`), each
permuted by what is left of the permutation ([0, 2, 1, 3]). Rows of that form keep the batch axis
first throughout, so they are cnncalc's own types and round-trip.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import TensorMetadata

from ...errors import CnncalcError
from ...layers import REGISTRY, build_layer
from . import elementwise
from .table import Equivalent, Special

if TYPE_CHECKING:
    from .nodes import _Row, _Unmapped
    from .result import Shape


def _is_permute(node: fx.Node) -> bool:
    return (node.op == "call_method" and node.target == "permute") or (
        node.op == "call_function" and node.target is torch.permute
    )


def _unbind_dim(node: fx.Node) -> Any:
    """The axis of `x.unbind(d)` / `torch.unbind(x, d)`, or None for another node."""
    if not (
        (node.op == "call_method" and node.target == "unbind")
        or (node.op == "call_function" and node.target is torch.unbind)
    ):
        return None
    return node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)


def transposed_matrix(node: Any) -> fx.Node | None:
    """The parameter read of `self.w.transpose(-1, -2)` / `self.w.t()` / `self.w.T` / `self.w.mT`
    (a matrix read in forward, transposed for `x @ w^T`: HaloNet's relative logits, a functional
    linear), else None."""
    attribute = (
        isinstance(node, fx.Node)
        and node.op == "call_function"
        and node.target is getattr
        and len(node.args) == 2
        and node.args[1] in ("T", "mT")
    )
    if not attribute and not (
        isinstance(node, fx.Node) and node.op == "call_method" and node.target in ("transpose", "t")
    ):
        return None
    held = node.args[0] if node.args else None
    if not (isinstance(held, fx.Node) and held.op == "get_attr"):
        return None
    meta = held.meta.get("tensor_meta")
    if meta is not None and len(getattr(meta, "shape", ())) != 2:
        return None
    dims = [d for d in node.args[1:] if isinstance(d, int)]
    if not attribute and node.target == "transpose" and (len(dims) != 2 or sorted(d % 2 for d in dims) != [0, 1]):
        return None
    return held


def held_read(node: Any) -> fx.Node | None:
    """The parameter or buffer that `node` reads: the tensor itself, a view of it, or a matrix
    transposed (see transposed_matrix); else None."""
    return elementwise.attribute_read(node) or transposed_matrix(node)


class AttentionRules:
    """The rules above, as methods of the mapper (which defines what is declared here)."""

    if TYPE_CHECKING:
        rows: list[_Row]
        of_node: dict[fx.Node, int]
        constants: dict[fx.Node, Any]
        pieces: dict[fx.Node, list[int | None]]
        absorbed: set[fx.Node]
        taken: set[str]
        forced: set[str] | frozenset[str]
        folded: set[int]
        counted: set[int]
        gm: fx.GraphModule

        def unmapped(self, node: fx.Node, message: str, **extra: Any) -> _Unmapped: ...

        def shape(self, node: fx.Node) -> Shape: ...

        def functional_name(self, node: fx.Node, base: str) -> str: ...

        def tensor_input(self, node: fx.Node, value: Any, what: str) -> int: ...

        def checked_row(self, node: fx.Node, kind: str, args: dict[str, Any], inputs: list[int], base: str) -> None: ...

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
        ) -> int: ...

    def unbind_after_permute(self, node: fx.Node) -> bool:
        """`qkv.permute(2, 0, 3, 1, 4)` read only by `.unbind(0)` or `[k]`: rows `unbind` (along
        the axis the permute put first) and a `permute` of each piece read. False where the node
        is not of that form (it is then traced, as any tensor that is not per sample)."""
        if not _is_permute(node) or node.name in self.forced or node.kwargs or len(node.args) < 2:
            return False
        given: Any = node.args[1] if len(node.args) == 2 else tuple(node.args[1:])
        dims: list[Any] = [given] if isinstance(given, int) else [self.constants.get(d, d) for d in given]
        rank = len(dims)
        if not all(isinstance(d, int) for d in dims) or sorted(d % rank for d in dims) != list(range(rank)):
            return False
        dims = [d % rank for d in dims]
        source = node.args[0]
        if not (isinstance(source, fx.Node) and source in self.of_node):
            return False
        if self.of_node[source] in self.folded:  # windows folded into the batch: PyTorch's 0 is the row's 0 and 1
            dims = [e for d in dims for e in ((0, 1) if d == 0 else (d + 1,))]
        if rank < 3 or dims[1] != 0 or not node.users:
            return False
        readers: list[tuple[fx.Node, int | None]] = []  # (user, index) ; None: an unbind's whole tuple
        for user in node.users:
            index = user.args[1] if len(user.args) > 1 else None
            if user.op == "call_function" and user.target is operator.getitem and isinstance(index, int):
                readers.append((user, index % self.shape_full(node)[0]))
            elif _unbind_dim(user) in (0, -rank) and not user.kwargs.keys() - {"dim"}:
                readers.append((user, None))
            else:
                return False
        source_row = self.of_node[source]
        axis = dims[0]  # the axis the pieces are cut along, in the source's numbering (batch 0)
        before = self.rows[source_row].shape
        count = before[axis - 1]
        # what is left of the permutation once that axis is gone, renumbered: batch first
        rest = [d if d < axis else d - 1 for d in dims[1:]]
        piece_shape = (*before[: axis - 1], *before[axis:])
        rows_before = len(self.rows)
        base = self.functional_name(node, "unbind")
        pieces = []
        for k in range(count):
            self.taken.add(f"{base}.{k}")
            pieces.append(self.add_row(None, f"{base}.{k}", "unbind", {"dim": axis}, [source_row], piece_shape))
            self.rows[-1].piece = k
        read: set[int] = set()
        for user, index in readers:
            if index is not None:
                read.add(index)
                continue
            indices = [u.args[1] for u in user.users if u.op == "call_function" and u.target is operator.getitem]
            ints = [i for i in indices if isinstance(i, int)]
            if len(ints) == len(user.users):
                read.update(i % count for i in ints)
            else:
                read.update(range(count))
        final: list[int | None] = [None] * count
        full = (0, *piece_shape)
        shape = tuple(full[d] for d in rest[1:])
        for k in sorted(read):
            if rest == sorted(rest):  # nothing left to reorder
                final[k] = pieces[k]
            else:
                name = self.functional_name(node, "permute")
                final[k] = self.add_row(None, name, "permute", {"dims": rest}, [pieces[k]], shape)
        for row in self.rows[rows_before:]:
            row.node = node.name
        if source_row in self.folded:
            self.folded.update(range(rows_before, len(self.rows)))
        for user, index in readers:
            self.absorbed.add(user)
            if index is None:
                self.pieces[user] = final
            else:
                piece_row = final[index]
                assert piece_row is not None, "every piece read has a row"
                self.of_node[user] = piece_row
        return True

    def shape_full(self, node: fx.Node) -> tuple[int, ...]:
        meta = node.meta.get("tensor_meta")
        return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else ()

    def rule_unbind(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        """`x.unbind(d)` of a per-sample tensor, d not the batch axis: one row per slice."""
        source = self.tensor_input(node, bound.get("input"), what)
        before = self.rows[source].shape
        rank = len(before) + 1
        dim = bound.get("dim", 0)
        if not isinstance(dim, int) or dim % rank == 0:
            raise self.unmapped(
                node, f"cnncalc's unbind keeps the batch axis; this {what} cuts dim={dim}", received=f"dim={dim}"
            )
        axis = dim % rank
        meta = node.meta.get("tensor_meta")
        if not isinstance(meta, (tuple, list)) or len(meta) != before[axis - 1]:
            raise self.unmapped(node, f"{what} gives no pieces cnncalc can follow", received=repr(meta))
        base = self.functional_name(node, "unbind")
        shape = (*before[: axis - 1], *before[axis:])
        rows: list[int | None] = []
        for k in range(len(meta)):
            self.taken.add(f"{base}.{k}")
            rows.append(self.add_row(None, f"{base}.{k}", "unbind", {"dim": axis}, [source], shape))
            self.rows[-1].piece = k
        self.pieces[node] = rows

    def rule_unfold(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        """`x.unfold(dim, size, step)`: HaloNet's blocks with their halo (a view)."""
        source = self.tensor_input(node, bound.get("input"), what)
        args = {"dim": bound.get("dimension"), "size": bound.get("size"), "step": bound.get("step")}
        self.checked_row(node, "unfold", args, [source], "unfold")

    def rule_expand(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        """`x.expand(-1, -1, w, -1, -1)`: axes of size 1 repeated (HaloNet's relative logits),
        the batch axis kept (-1, or a size that grows with the batch)."""
        source = self.tensor_input(node, bound.get("input"), what)
        given = list(node.args[1:])
        if len(given) == 1 and isinstance(given[0], (tuple, list)):
            given = list(given[0])
        sizes = [self.constants.get(d, d) if isinstance(d, fx.Node) else d for d in given]
        rank = len(self.rows[source].shape) + (0 if source in self.folded else 1)  # PyTorch's
        if node.kwargs or len(sizes) != rank or not all(type(d) is int for d in sizes):
            raise self.unmapped(
                node,
                f"cnncalc follows {what} with one size per axis, no new leading axis",
                received=repr(given),
            )
        if not (sizes[0] == -1 or _scales_with_batch(given[0])):
            raise self.unmapped(node, f"{what} of the batch axis", received=repr(given[0]))
        # a folded row keeps its windows or heads as its first axis: -1 there
        rest = [-1, *sizes[1:]] if source in self.folded else sizes[1:]
        self.checked_row(node, "expand", {"sizes": rest}, [source], "expand")

    def matrix_product(self, node: fx.Node, a: Any, b: Any, what: str) -> bool:
        """`x @ self.w.transpose(-1, -2)` (`x @ w^T`, F.linear without a bias) or `x @ self.w`, w
        a learned matrix read in forward: one `parameter` row named after it, so the bridge holds
        it under the model's state_dict key. False where b is no such matrix."""
        held, op = transposed_matrix(b), "linear"
        if held is None and isinstance(b, fx.Node) and b.op == "get_attr":
            held, op = b, "matmul"
        if held is None:
            return False
        target = str(held.target)
        try:
            param = self.gm.get_parameter(target)
        except AttributeError:
            raise self.unmapped(
                node, f"{what} with the buffer or constant '{target}': cnncalc's parameter row holds a parameter only"
            ) from None
        if id(param) in self.counted or target in self.taken:
            raise self.unmapped(node, f"{what} reads the parameter '{target}' a second time", received=target)
        source = self.tensor_input(node, a, what)
        values = param.detach()
        init = 1.0
        if values.device.type != "meta" and values.numel() and bool((values == values.flatten()[0]).all()):
            init = float(values.flatten()[0])  # the value it still holds (its initial value, untrained)
        args: dict[str, Any] = {"op": op, "shape": list(param.shape), "init": init}
        if target.rpartition(".")[2] == "bias":
            args["bias"] = True
        try:
            layer = build_layer(REGISTRY["parameter"], args)
            shapes = [self.rows[source].shape]
            shape = layer.output_shape(shapes)
            counts = (layer.weights(shapes), layer.biases(shapes), 0)
        except CnncalcError as err:
            raise self.unmapped(node, f"cnncalc's parameter row cannot express this {what}: {err.message}") from None
        if shape != self.shape(node):
            raise self.unmapped(node, f"cnncalc's parameter row gives {list(shape)}, PyTorch {list(self.shape(node))}")
        self.taken.add(target)
        self.add_row(node, target, "parameter", args, [source], shape, counts=counts)
        self.counted.add(id(param))
        return True

    def rule_attention(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        """F.scaled_dot_product_attention(q, k, v, attn_mask=..., scale=..., is_causal=...,
        enable_gqa=...), no dropout: the mask, a tensor, is the row's fourth input."""
        if bound.get("dropout_p", 0) != 0:
            raise self.unmapped(
                node, f"cnncalc follows {what} only with dropout_p=0", received=f"dropout_p={bound['dropout_p']!r}"
            )
        keys = ["query", "key", "value"] + (["attn_mask"] if bound.get("attn_mask") is not None else [])
        inputs = [self.tensor_input(node, bound.get(key), what) for key in keys]
        args: dict[str, Any] = {}
        if bound.get("scale") is not None:
            args["scale"] = float(bound["scale"])
        if bound.get("is_causal", False):
            args["is_causal"] = True
        if bound.get("enable_gqa", False):
            args["enable_gqa"] = True
        self.checked_row(node, "attention", args, inputs, "attention")


# ----- windows or heads folded into the batch axis -------------------------------------------
#
# Swin-style window attention (DaViT, GC ViT, MaxViT, TinyViT) reshapes [B, H, W, C] into windows
# [B * windows, ws, ws, C] and runs its attention on those. A tensor whose first axis is the batch
# times f (f windows per sample, batch-major: reshape keeps memory order) is written as a row of
# shape [f, ...] (its traced shape at batch 1, f kept as an axis), whose whole tensor [N, f, ...] is
# the same memory as PyTorch's [N * f, ...]. An op then computes the same on it where it treats
# PyTorch's axis 0 as a batch: the axes it names move by one (PyTorch's 0 is the row's 0 and 1).
# Only such ops are followed (below); any other stays a traced row.

_FOLDED_RULES = {
    "arith",
    "unary",
    "matmul",
    "attention",
    "unbind",
    "pieces",
    "permute",
    "transpose",
    "flatten",
    "reshape",
    "view_like",
    "sum",
    "unfold",
    "pad",
    "expand",
}
_AXIS_KEYS = ("dim", "dim0", "dim1", "start_dim", "end_dim", "dimension")
# modules (and their functional forms) that compute each position on its own, or along an axis
# they are given (softmax: its dim moved as any other)
_PER_POSITION_MODULES = {
    "ReLU",
    "LeakyReLU",
    "ELU",
    "GELU",
    "SiLU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "Dropout",
    "Identity",
    "ReLU6",
    "Hardswish",
    "Hardsigmoid",
    "Mish",
    "Softplus",
}


def _reshape_sizes(node: fx.Node) -> list[Any] | None:
    """The sizes of `x.view(a, b, ...)`, `x.reshape((a, b))`, `torch.reshape(x, ...)`, else None."""
    if node.op == "call_method" and node.target in ("view", "reshape"):
        sizes = node.args[1:]
    elif node.op == "call_function" and node.target is torch.reshape:
        sizes = node.args[1:] if len(node.args) > 1 else (node.kwargs.get("shape"),)
    else:
        return None
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    return list(sizes)


def _is_shape(whole: Any) -> bool:
    """`x.shape` or `x.size()`."""
    return isinstance(whole, fx.Node) and (
        (whole.op == "call_function" and whole.target is getattr and whole.args[1] == "shape")
        or (whole.op == "call_method" and whole.target == "size" and len(whole.args) == 1)
    )


def _scales_with_batch(value: Any) -> bool:
    """Whether a size given to a reshape grows with the batch: -1 (the rest being constants), or
    shape arithmetic on a tensor's axis 0 (`B * nW`, `x.shape[0]`, `x.size(0) // 4`)."""
    if not isinstance(value, fx.Node):
        return isinstance(value, int) and value == -1
    if value.op == "call_method" and value.target == "size" and len(value.args) > 1:
        return bool(value.args[1] == 0)
    if value.op == "call_function" and value.target is operator.getitem and value.args[1] == 0:
        return _is_shape(value.args[0])
    if value.op == "call_function" and value.target is operator.add and isinstance(value.args[1], tuple):
        # MaxViT's x.reshape(shape[:-1] + (-1,)): sizes that start with the tensor's own axis 0
        head = value.args[0]
        return (
            isinstance(head, fx.Node)
            and head.op == "call_function"
            and head.target is operator.getitem
            and isinstance(head.args[1], slice)
            and head.args[1].start in (None, 0)
            and _is_shape(head.args[0])
        )
    if value.op == "call_function" and value.target in (operator.mul, operator.floordiv):
        operands = value.args if value.target is operator.mul else value.args[:1]
        return any(_scales_with_batch(a) for a in operands)
    return False


class FoldedRules:
    """The folded-batch rules, as methods of the mapper."""

    if TYPE_CHECKING:
        rows: list[_Row]
        of_node: dict[fx.Node, int]
        folded: set[int]

        def unmapped(self, node: fx.Node, message: str, **extra: Any) -> _Unmapped: ...

    def shape_of(self, node: fx.Node) -> tuple[int, ...]:
        """The traced shape of the node's first input (PyTorch's, batch axis included)."""
        first = node.args[0] if node.args else None
        meta = first.meta.get("tensor_meta") if isinstance(first, fx.Node) else None
        return tuple(meta.shape) if isinstance(meta, TensorMetadata) else ()

    def outputs_folded(self, node: fx.Node) -> bool:
        meta = node.meta.get("tensor_meta")
        metas = [meta] if isinstance(meta, TensorMetadata) else list(meta) if isinstance(meta, (tuple, list)) else []
        return any(isinstance(m, TensorMetadata) and len(m.shape) > 0 and m.shape[0] != 1 for m in metas)

    def reads_folded(self, node: fx.Node) -> bool:
        found: list[fx.Node] = []
        fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(n) or n)  # type: ignore[func-returns-value]
        return any(n in self.of_node and self.of_node[n] in self.folded for n in found)

    def check_folded(self, node: fx.Node, rule: Any) -> None:
        """Refuses (a traced row) a node that reads or makes a folded tensor unless it treats
        PyTorch's axis 0 as a batch: `rule` is the table's rule (Special, Equivalent), the module
        called, or None (indexing). A reshape must keep the batch leading (a size that grows with it)."""
        if not (self.reads_folded(node) or self.outputs_folded(node)):
            return
        if rule == "indexing":  # x[:, :W, k:]: PyTorch's axis 0 (the batch with the windows) whole
            index = node.args[1] if len(node.args) > 1 else None
            index = index if isinstance(index, tuple) else (index,)
            allowed = index[0] == slice(None) and not any(cut is None or cut is Ellipsis for cut in index)
        elif isinstance(rule, nn.Module):
            name = type(rule).__name__
            allowed = type(rule) in (nn.Linear, nn.LayerNorm) or name in _PER_POSITION_MODULES
            if isinstance(rule, nn.Softmax):
                allowed = rule.dim is not None and rule.dim < 0
        elif isinstance(rule, Equivalent):
            allowed = (rule.module if isinstance(rule.module, str) else rule.module.__name__) in _PER_POSITION_MODULES
        else:  # F.linear and F.layer_norm (timm's Linear, LayerNorm) work on the last axes, as their modules
            allowed = isinstance(rule, Special) and (
                rule.rule in _FOLDED_RULES or (rule.rule == "functional" and rule.kinds[0] in ("linear", "layernorm"))
            )
        if allowed and isinstance(rule, Special) and rule.rule == "pad":
            # constant padding of the last axes, not of PyTorch's axis 0 (other modes: by rank)
            pad = node.args[1] if len(node.args) > 1 else node.kwargs.get("pad")
            mode = node.args[2] if len(node.args) > 2 else node.kwargs.get("mode", "constant")
            allowed = mode == "constant" and isinstance(pad, (tuple, list)) and len(pad) // 2 < len(self.shape_of(node))
        if not allowed:
            raise self.unmapped(
                node,
                "cnncalc follows a tensor with windows or heads folded into the batch axis only "
                "through ops that treat PyTorch's axis 0 as a batch",
            )
        sizes = _reshape_sizes(node)
        if sizes is not None and (not sizes or not _scales_with_batch(sizes[0])):
            raise self.unmapped(
                node,
                "a reshape of a tensor with windows or heads folded into the batch axis whose "
                "first size does not grow with the batch",
                received=repr(sizes[:1]),
            )

    def folded_axes(self, node: fx.Node, bound: dict[str, Any]) -> dict[str, Any]:
        """The axes a call names, PyTorch's numbering, as the folded row counts them (one more)."""
        if not self.reads_folded(node):
            return bound

        def moved(d: Any) -> Any:
            if isinstance(d, int) and not isinstance(d, bool):
                if d == 0:
                    raise self.unmapped(node, "this call names axis 0, the batch with windows or heads folded into it")
                return d + 1 if d > 0 else d
            if isinstance(d, (tuple, list)):
                return type(d)(moved(x) for x in d)
            return d

        bound = dict(bound)
        for key in _AXIS_KEYS:
            if key in bound and bound[key] is not None:
                bound[key] = moved(bound[key])
        if bound.get("dims") is not None:
            dims = bound["dims"]
            dims = [dims] if isinstance(dims, int) else list(dims)
            rank = len(dims)
            # PyTorch's axis 0 is the row's 0 and 1 together
            bound["dims"] = [e for d in dims for e in ((0, 1) if d % rank == 0 else (d % rank + 1,))]
        return bound
