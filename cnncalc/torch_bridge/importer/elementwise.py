"""Mapping rules for element-wise code: arithmetic between tensors, with a learned tensor and with a
number; one-tensor math (rsqrt, sin, ...); reductions (var, amax). Each is a `rule_*` of the mapper
(mapping.py binds them), written here so the mapper's own file stays about the walk.

A parameter read in forward and only viewed (`self.gamma.view(-1, 1, 1)`, `w.reshape(1, -1, 1, 1)`)
is no row of its own: the arithmetic that uses it is one `parameter` row named after it, which the
bridge holds as that very parameter, so the model's state_dict loads.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

import torch
from torch import fx
from torch.fx.passes.shape_prop import TensorMetadata

from ...errors import CnncalcError
from ...layers import REGISTRY, build_layer
from . import bias

if TYPE_CHECKING:
    from .mapping import _Mapper

# methods and functions that only view a tensor: a parameter read through them is still that parameter
_VIEW_METHODS = {"view", "reshape", "unsqueeze", "squeeze", "flatten", "expand"}  # expand: ViT's cls_token
_VIEW_FUNCTIONS = {torch.reshape, torch.unsqueeze, torch.squeeze, torch.flatten}
# the name of the call (operator.isub, Tensor.sub_, torch.div) -> the arithmetic it does
_OPS = {
    "add": "add",
    "iadd": "add",
    "mul": "mul",
    "imul": "mul",
    "sub": "sub",
    "isub": "sub",
    "truediv": "div",
    "itruediv": "div",
    "div": "div",
    "pow": "pow",
    "ipow": "pow",
}
# the op with the parameter on the left: p - x, p / x
_SWAPPED = {"mul": "mul", "add": "add", "sub": "rsub", "div": "rdiv"}


def attribute_read(value: Any) -> fx.Node | None:
    """The get_attr node (a parameter or buffer) that `value` is, or is a view of; else None."""
    while isinstance(value, fx.Node):
        if value.op == "get_attr":
            return value
        viewing = (value.op == "call_method" and str(value.target) in _VIEW_METHODS) or (
            value.op == "call_function" and value.target in _VIEW_FUNCTIONS
        )
        if not viewing or not value.args:
            return None
        value = value.args[0]
    return None


def is_attribute_view(node: fx.Node) -> bool:
    """A view of a parameter or buffer (not the get_attr itself): written by the row that uses it."""
    return node.op != "get_attr" and attribute_read(node) is not None


def _op_name(node: fx.Node) -> str:
    name = str(node.target) if node.op == "call_method" else getattr(node.target, "__name__", "")
    return _OPS.get(name.rstrip("_"), name.rstrip("_"))


def rule_arith(m: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    """`a + b`, `a - b`, `a * b`, `a / b` of two per-sample tensors (broadcasting: add, sub, mul,
    div); of a tensor and a learned tensor (a layer scale, else a `parameter` row); of a tensor
    and a number (`scalar`, `x ** 2` too)."""
    op = _op_name(node)
    if bound.get("alpha", 1) != 1 or bound.get("rounding_mode") is not None:
        extra = "alpha" if bound.get("alpha", 1) != 1 else "rounding_mode"
        raise m.unmapped(node, f"cnncalc follows {what} only without {extra}", received=f"{extra}={bound[extra]!r}")
    a, b = bound.get("input"), bound.get("other", bound.get("exponent"))
    for tensor, gathered in ((a, b), (b, a)):
        if op == "add" and isinstance(gathered, fx.Node) and bias.is_gathered(gathered):
            bias.rule_bias(m, node, tensor, gathered, what)  # attention logits + table[:, idx]
            return
    held = [attribute_read(v) for v in (a, b)]
    if op != "pow" and any(h is not None for h in held):
        if all(h is not None for h in held):
            raise m.unmapped(node, f"{what} of two parameters: no tensor of the model flows through it")
        if op == "mul" and any(isinstance(v, fx.Node) and v.op == "get_attr" for v in (a, b)):
            try:
                m.layer_scale(node, a, b, what)  # torchvision's CNBlock: `self.layer_scale * x`, [C, 1, 1]
                return
            except CnncalcError:
                pass  # another shape: a parameter row
        swapped = held[0] is not None
        tensor, attr = (b, a) if swapped else (a, b)
        parameter_row(m, node, _SWAPPED[op] if swapped else op, tensor, attr, what)
        return
    if op != "pow" and isinstance(a, fx.Node) and isinstance(b, fx.Node):
        inputs = [m.tensor_input(node, a, what), m.tensor_input(node, b, what)]
        m.checked_row(node, op, {}, inputs, op)
        return
    m.scalar(node, a, b, what)


def parameter_row(m: _Mapper, node: fx.Node, op: str, tensor: Any, value: Any, what: str) -> None:
    """`x * self.scale`, `x + self.bias`, `x * self.gamma.view(-1, 1, 1)`: one `parameter` row,
    named after the parameter (so the bridge holds it under the model's state_dict key)."""
    attr = attribute_read(value)
    assert attr is not None, "called for a parameter operand only"
    target = str(attr.target)
    try:
        param = m.gm.get_parameter(target)
    except AttributeError:
        raise m.unmapped(
            node,
            f"{what} with the buffer or constant '{target}': cnncalc's parameter row holds a learned parameter only",
            received=target,
        ) from None
    if id(param) in m.counted or target in m.taken:
        raise m.unmapped(
            node,
            f"{what} reads the parameter '{target}' a second time; cnncalc's parameter row holds it once",
            received=target,
        )
    if param.dim() == 0:
        raise m.unmapped(node, f"{what} with the 0-dimensional parameter '{target}'", received="shape []")
    source = m.tensor_input(node, tensor, what)
    meta = value.meta.get("tensor_meta")
    view = tuple(meta.shape) if isinstance(meta, TensorMetadata) else tuple(param.shape)
    values = param.detach()
    init = 1.0
    if values.device.type != "meta" and bool((values == values.flatten()[0]).all()):
        init = float(values.flatten()[0])  # the value it still holds (its initial value, untrained)
    args: dict[str, Any] = {"op": op, "shape": list(param.shape), "init": init}
    if view != tuple(param.shape):
        args["view"] = list(view)
    if target.rpartition(".")[2] == "bias":
        args["bias"] = True  # PyTorch's tools count a parameter named `bias` as a bias, any other as a weight
    try:
        layer = build_layer(REGISTRY["parameter"], args)
        shapes = [m.rows[source].shape]
        shape = layer.output_shape(shapes)
        counts = (layer.weights(shapes), layer.biases(shapes), 0)
    except CnncalcError as err:
        raise m.unmapped(
            node, f"cnncalc's parameter row cannot express this {what}: {err.message}", received=err.received
        ) from None
    if shape != m.shape(node):
        raise m.unmapped(node, f"cnncalc's parameter row gives {list(shape)}, PyTorch {list(m.shape(node))}")
    m.taken.add(target)
    m.add_row(node, target, "parameter", args, [source], shape, counts=counts)
    m.counted.add(id(param))


# torch functions and methods of one tensor, as cnncalc's `unary` ops
UNARY_FUNCTIONS: dict[Any, str] = {
    torch.rsqrt: "rsqrt",
    torch.sqrt: "sqrt",
    torch.exp: "exp",
    torch.log: "log",
    torch.sin: "sin",
    torch.cos: "cos",
    torch.abs: "abs",
    torch.neg: "neg",
    operator.neg: "neg",
    torch.reciprocal: "reciprocal",
    torch.square: "square",
}
UNARY_METHODS = {
    name: name for name in ("rsqrt", "sqrt", "exp", "log", "sin", "cos", "abs", "neg", "reciprocal", "square")
}


def rule_unary(m: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    """`torch.rsqrt(v + eps)`, `x.sin()`, `-x`: a `unary` row."""
    op = UNARY_METHODS.get(str(node.target)) if node.op == "call_method" else UNARY_FUNCTIONS.get(node.target)
    source = m.tensor_input(node, bound.get("input"), what)
    m.checked_row(node, "unary", {"op": op}, [source], str(op))


def rule_reduce(m: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    """`torch.var(x, dim=1, keepdim=True)`, `x.amax(dim=-1)`: over given axes."""
    kind = m.rule_kind(node)
    source = m.tensor_input(node, bound.get("input"), what)
    dim = bound.get("dim")
    if dim is None or bound.get("dtype") is not None:
        raise m.unmapped(node, f"cnncalc follows {what} over given axes only", received=repr(dim))
    args: dict[str, Any] = {
        "dim": list(dim) if isinstance(dim, (tuple, list)) else dim,
        "keepdim": bool(bound.get("keepdim", False)),
    }
    if kind == "var":
        correction = bound.get("correction")
        if correction is None:
            correction = 0 if bound.get("unbiased") is False else 1
        if not isinstance(correction, (int, float)) or correction != int(correction) or correction < 0:
            raise m.unmapped(node, f"cnncalc follows {what} with a whole correction", received=repr(correction))
        args["correction"] = int(correction)
    m.checked_row(node, kind, args, [source], kind)
