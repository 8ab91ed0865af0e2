"""Mapping rules for functional calls and arithmetic written in forward: F.* calls with a module's
parameters, a tensor times a number, x @ W, layer scale, sum and mean. Functions of the mapper
(mapping._Mapper binds each under its name)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import fx

from ...layers import REGISTRY, build_layer
from .. import parameter_counts
from .nodes import _equivalent_module, _yaml_value

if TYPE_CHECKING:
    from .mapping import _Mapper


def scalar(self: _Mapper, node: fx.Node, a: Any, b: Any, what: str) -> None:
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


def rule_matmul(self: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    """`q @ k.transpose(-2, -1)`, `torch.matmul(attn, v)`, `torch.bmm(a, b)`: a matmul of two
    rows, each per sample (a parameter or a tensor without the batch axis is not)."""
    a, b = bound.get("input"), bound.get("other", bound.get("mat2"))
    if self.matrix_product(node, a, b, what):  # x @ self.w.T: a learned matrix (attention.py)
        return
    inputs = [self.tensor_input(node, a, what), self.tensor_input(node, b, what)]
    self.checked_row(node, "matmul", {}, inputs, "matmul")


def layer_scale(self: _Mapper, node: fx.Node, a: Any, b: Any, what: str) -> None:
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


def rule_sum(self: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    """`x.sum(1)` (ResNeSt's and SKNet's sum of branches), `x.mean(1, keepdim=True)`: over given axes."""
    name = str(node.target) if node.op == "call_method" else getattr(node.target, "__name__", "")
    kind = "mean" if name == "mean" else "sum"
    source = self.tensor_input(node, bound.get("input"), what)
    if bound.get("dim") is None or bound.get("dtype") is not None:
        raise self.unmapped(node, f"cnncalc follows {what} over given axes only", received=repr(bound.get("dim")))
    args = {"dim": _yaml_value(bound["dim"]), "keepdim": bool(bound.get("keepdim", False))}
    self.checked_row(node, kind, args, [source], kind)


def rule_functional(self: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
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


def rule_mean(self: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
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
