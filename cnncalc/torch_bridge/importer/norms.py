"""Mapping rules for vector norms and products written by hand: `F.normalize(x, dim=-1)`,
`x.norm(p=2, dim=(1, 2), keepdim=True)`, and `x @ self.w` with a learned matrix (SwiftFormer's
`query @ self.w_g`). Each is a `rule_*` of the mapper (mapping.py binds them)."""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

import torch
from torch import fx

from . import elementwise
from .elementwise import attribute_read

if TYPE_CHECKING:
    from .mapping import _Mapper

_MATMULS = (operator.matmul, torch.matmul)


def _number(m: _Mapper, node: fx.Node, value: Any, what: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise m.unmapped(node, f"cnncalc follows {what} with a numeric {name} only", received=f"{name}={value!r}")
    return float(value)


def rule_normalize(m: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    """`F.normalize(x, p=2.0, dim=1, eps=1e-12)`: a `normalize` row."""
    if bound.get("out") is not None:
        raise m.unmapped(node, f"{what} with out=", received="out")
    source = m.tensor_input(node, bound.get("input"), what)
    dim = bound.get("dim", 1)
    if not isinstance(dim, int):
        raise m.unmapped(node, f"cnncalc follows {what} over one axis", received=f"dim={dim!r}")
    args = {
        "dim": dim,
        "p": _number(m, node, bound.get("p", 2.0), what, "p"),
        "eps": _number(m, node, bound.get("eps", 1e-12), what, "eps"),
    }
    m.checked_row(node, "normalize", args, [source], "normalize")


def rule_vector_norm(m: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    """`x.norm(p=2, dim=(1, 2), keepdim=True)`, `torch.norm(x, 2, 1)`: a `vector_norm` row over given axes."""
    source = m.tensor_input(node, bound.get("input"), what)
    dim = bound.get("dim")
    if dim is None or bound.get("dtype") is not None or bound.get("out") is not None:
        raise m.unmapped(node, f"cnncalc follows {what} over given axes only", received=f"dim={dim!r}")
    args = {
        "dim": list(dim) if isinstance(dim, (tuple, list)) else dim,
        "p": _number(m, node, bound.get("p", 2.0) if bound.get("p") is not None else 2.0, what, "p"),
        "keepdim": bool(bound.get("keepdim", False)),
    }
    m.checked_row(node, "vector_norm", args, [source], "norm")


def transposed_parameter(node: fx.Node) -> fx.Node | None:
    """The get_attr node of `self.w.T`, `self.w.mT`, `self.w.t()`, `self.w.transpose(0, 1)`, else None."""
    if node.op == "call_function" and node.target is getattr and len(node.args) == 2 and node.args[1] in ("T", "mT"):
        held = node.args[0]
    elif node.op == "call_method" and node.target == "t" and len(node.args) == 1 and not node.kwargs:
        held = node.args[0]
    elif node.op == "call_method" and node.target == "transpose" and not node.kwargs and len(node.args) == 3:
        held = node.args[0] if sorted(d % 2 for d in node.args[1:] if isinstance(d, int)) == [0, 1] else None
    else:
        return None
    if not isinstance(held, fx.Node) or held.op != "get_attr":
        return None
    meta = held.meta.get("tensor_meta")
    return held if meta is None or len(meta.shape) == 2 else None


def is_transposed_parameter(node: fx.Node) -> bool:
    """`self.w.T` read only by matmuls: the param_matmul row that uses it holds it (not a row of its own)."""
    return (
        transposed_parameter(node) is not None
        and bool(node.users)
        and all(
            (u.op == "call_function" and u.target in _MATMULS or u.op == "call_method" and u.target == "matmul")
            and len(u.args) == 2
            and u.args[1] is node
            for u in node.users
        )
    )


def param_matmul(m: _Mapper, node: fx.Node, a: Any, b: Any, what: str) -> bool:
    """`x @ self.w` with a learned matrix `w` [k, m] read as the model holds it (`x @ self.w.T` with
    w [m, k], a functional linear without bias): one `param_matmul` row named after the parameter
    (so its state_dict key loads). False where `b` is no such read."""
    transposed = isinstance(b, fx.Node) and transposed_parameter(b) is not None
    if transposed:
        b = transposed_parameter(b)
    if not (isinstance(b, fx.Node) and b.op == "get_attr") or attribute_read(a) is not None:
        return False
    target = str(b.target)
    try:
        param = m.gm.get_parameter(target)
    except AttributeError:
        raise m.unmapped(
            node, f"{what} with the buffer or constant '{target}': cnncalc holds a learned matrix only", received=target
        ) from None
    if param.dim() != 2:
        raise m.unmapped(node, f"{what} with the {param.dim()}-axis parameter '{target}'", received=list(param.shape))
    if id(param) in m.counted or target in m.taken:
        raise m.unmapped(
            node, f"{what} reads the parameter '{target}' a second time; cnncalc's row holds it once", received=target
        )
    source = m.tensor_input(node, a, what)
    values = param.detach()
    init = 1.0
    if values.device.type != "meta" and bool((values == values.flatten()[0]).all()):
        init = float(values.flatten()[0])  # the value it still holds (its initial value, untrained)
    args: dict[str, Any] = {"shape": list(param.shape), "init": init}
    if transposed:
        args["transposed"] = True
    m.checked_row(node, "param_matmul", args, [source], "param_matmul")
    # named after the parameter: the bridge holds it there, under the model's state_dict key
    row = m.rows[-1]
    m.taken.discard(row.name)
    row.name = target
    row.counts = (param.numel(), 0, 0)
    m.taken.add(target)
    m.counted.add(id(param))
    return True


def rule_addcmul(m: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    """`torch.addcmul(self.bias.view(s), self.weight.view(s), x)`: bias + weight * x (timm's
    GlobalResponseNorm, ConvNeXt-V2's GRN) as the two `parameter` rows it is, `x * weight` then
    `+ bias`, each named after its parameter."""
    value = bound.get("value", 1)
    if value != 1:
        raise m.unmapped(node, f"cnncalc follows {what} with value=1 only", received=f"value={value!r}")
    bias, a, b = bound.get("input"), bound.get("tensor1"), bound.get("tensor2")
    weight, tensor = (a, b) if attribute_read(a) is not None else (b, a)
    if attribute_read(bias) is None or attribute_read(weight) is None or attribute_read(tensor) is not None:
        raise m.unmapped(node, f"cnncalc follows {what} as a learned scale and shift of a tensor (p + q * x) only")
    elementwise.parameter_row(m, node, "mul", tensor, weight, what)
    elementwise.parameter_row(m, node, "add", node, bias, what)
