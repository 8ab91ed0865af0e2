"""Mapping rules for constants computed from shapes alone (XCiT's and EdgeNeXt's sine position
encoding), and `x.repeat(...)` (XCiT's `pos.repeat(B, 1, 1, 1)` of such a constant).

A constant is a tensor whose every input is a number known at this input shape (sizes read with
`x.shape`, `torch.arange`, `torch.zeros`, fx's own constant tensors): no input value and no parameter
flows into it. Such a subgraph is one row where it meets the model's tensors, if its value is one that
a cnncalc type rebuilds (compared element by element here): a `sine_position` row reading the tensor
whose size it encodes, so that `to_torch()` computes the same value at any input size. Otherwise its
ops stay traced rows, as before.
"""

from __future__ import annotations

import functools
import numbers
from typing import TYPE_CHECKING, Any

import torch
from torch import fx
from torch.fx.passes.shape_prop import TensorMetadata

from .. import held_modules

if TYPE_CHECKING:
    from .mapping import _Mapper


def _inputs(node: fx.Node) -> list[fx.Node]:
    return list(node.all_input_nodes)


def _is_tensor(node: fx.Node) -> bool:
    return isinstance(node.meta.get("tensor_meta"), TensorMetadata)


def _held(gm: fx.GraphModule, target: str, tensors: set[int]) -> bool:
    """A parameter or buffer of the model (`tensors`: their ids), not a constant tensor fx made of a
    value the code computed."""
    try:
        value = functools.reduce(getattr, target.split("."), gm)
    except AttributeError:
        return True
    return id(value) in tensors


def _pure(m: _Mapper) -> set[fx.Node]:
    """Nodes whose value is known at this input shape: sizes and numbers the tracer ran, and tensors
    made only from them (no input value, no parameter, no module call)."""
    pure: set[fx.Node] = set()
    tensors = {id(t) for t in (*m.root.parameters(), *m.root.buffers())}
    for node in m.gm.graph.nodes:
        if node.op in ("placeholder", "output", "call_module"):
            continue
        if node.op == "get_attr":
            if not _held(m.gm, str(node.target), tensors):
                pure.add(node)
        elif not _is_tensor(node):
            if "value" in node.meta:
                pure.add(node)
        elif all(a in pure for a in _inputs(node)):
            pure.add(node)
    return pure


def _value(gm: fx.GraphModule, node: fx.Node, cache: dict[fx.Node, Any]) -> Any:
    """The value of a pure node, computed again from its inputs (the tracer keeps only shapes)."""
    if node in cache:
        return cache[node]
    if node.op == "get_attr":
        value = functools.reduce(getattr, str(node.target).split("."), gm)
    elif not _is_tensor(node):
        value = node.meta["value"]
    else:
        args = fx.node.map_arg(node.args, lambda a: _value(gm, a, cache))
        kwargs = fx.node.map_arg(node.kwargs, lambda a: _value(gm, a, cache))
        if node.op == "call_function":
            value = node.target(*args, **kwargs)  # type: ignore[operator]
        elif str(node.target).endswith("_"):  # in place: it would change fx's stored constant
            raise ValueError(f"the in-place .{node.target}() is not computed again")
        else:
            value = getattr(args[0], str(node.target))(*args[1:], **kwargs)
    cache[node] = value
    return value


def _ancestors(node: fx.Node, within: set[fx.Node]) -> set[fx.Node]:
    found: set[fx.Node] = set()
    todo = [a for a in _inputs(node) if a in within]
    while todo:
        n = todo.pop()
        if n not in found:
            found.add(n)
            todo.extend(a for a in _inputs(n) if a in within)
    return found


def find_constants(m: _Mapper) -> None:
    """Before the walk: every constant subgraph that is a sine position encoding becomes one row at the
    node where it meets the model's tensors (m.sines); the nodes before it are left out (m.absorbed)."""
    gm = m.gm
    pure = _pure(m)
    frontiers = [n for n in gm.graph.nodes if n in pure and _is_tensor(n) and any(u not in pure for u in n.users)]
    cache: dict[fx.Node, Any] = {}
    for node in frontiers:
        try:
            value = _value(gm, node, cache)
        except Exception:  # noqa: BLE001 - not computable again here (a meta model): its ops are traced
            continue
        found = _sine_arguments(m, node, value)
        if found is None:
            continue
        # the tensors whose size the encoding was computed from: read with x.shape or x.size()
        sized = [
            a
            for n in _ancestors(node, pure)
            if not _is_tensor(n)
            for a in _inputs(n)
            if a not in pure and _is_tensor(a)
        ]
        m.sines[node] = (*found, sized)
        inside = {n for n in _ancestors(node, pure) if _is_tensor(n) or n.op == "get_attr"}
        changed = True
        while changed:  # only what nothing else reads
            changed = False
            for n in list(inside):
                if any(u not in inside and u is not node for u in n.users):
                    inside.discard(n)
                    changed = True
        m.absorbed.update(inside)


def _sine_arguments(m: _Mapper, node: fx.Node, value: Any) -> tuple[int, float] | None:
    """(features, temperature) where `value` is the sine encoding SinePosition computes, else None."""
    if not isinstance(value, torch.Tensor) or value.dim() != 4 or value.shape[0] != 1 or value.shape[1] % 2:
        return None
    if value.device.type == "meta" or not value.is_floating_point():
        return None
    temperature: Any = 10000.0
    scope = m.scope(node)
    try:
        owner = m.root.get_submodule(scope) if scope else m.root
        temperature = getattr(owner, "temperature", temperature)
    except AttributeError:
        pass
    if not isinstance(temperature, numbers.Real) or isinstance(temperature, bool):
        return None
    features, (h, w) = int(value.shape[1]) // 2, value.shape[2:]
    if features % 2:
        return None  # not a sine and a cosine per pair: not this encoding
    with torch.no_grad():
        rebuilt = held_modules.SinePosition(features, float(temperature))(torch.zeros(1, 1, h, w, dtype=value.dtype))
    if rebuilt.shape != value.shape or not torch.allclose(rebuilt, value, rtol=0, atol=1e-6):
        return None
    return features, float(temperature)


def sine_row(m: _Mapper, node: fx.Node) -> None:
    """The row of a constant found by find_constants: a `sine_position` reading the tensor it measured."""
    features, temperature, sized = m.sines[node]
    size = tuple(m.shape(node)[1:])
    for tensor in reversed(sized):
        if tensor in m.of_node and len(m.rows[m.of_node[tensor]].shape) == 3:
            if tuple(m.rows[m.of_node[tensor]].shape[1:]) == size:
                source = m.of_node[tensor]
                break
    else:
        raise m.unmapped(
            node,
            "a sine position encoding computed from sizes that no 2-D feature map of the model has",
            received=f"{list(size)}",
        )
    m.checked_row(node, "sine_position", {"features": features, "temperature": temperature}, [source], "sine_position")


def rule_repeat(m: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    """`x.repeat(1, 2, 1)`; `pos.repeat(B, 1, 1, 1)` of a constant (one copy per sample): a `repeat` row."""
    sizes: tuple[Any, ...] = tuple(bound.get("sizes") or ())
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    if not sizes or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in sizes):
        raise m.unmapped(node, f"cnncalc follows {what} with whole counts", received=repr(sizes))
    value = bound.get("input")
    source = m.tensor_input(node, value, what)
    first = node.args[1] if len(node.args) > 1 else None
    batch_free = isinstance(value, fx.Node) and _batch_free(value)
    if sizes[0] != 1 or (isinstance(first, fx.Node) and not batch_free):
        # the batch repeated: another batch than the input's, unless the tensor is the same for every sample
        raise m.unmapped(node, f"{what} repeats the batch axis; cnncalc's rows are per sample", received=repr(sizes))
    m.checked_row(node, "repeat", {"repeats": list(sizes[1:])}, [source], "repeat")


def _batch_free(node: fx.Node) -> bool:
    """A tensor that no input value flows into (computed from sizes and parameters): batch 1 at any batch."""
    seen: set[fx.Node] = set()
    todo = [node]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        if n.op == "placeholder" and _is_tensor(n):
            return False
        if n.op != "placeholder":
            todo.extend(a for a in _inputs(n) if _is_tensor(a) or a.op == "placeholder")
    return True
