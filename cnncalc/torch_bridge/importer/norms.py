"""Mapping rules for vector norms written by hand: `F.normalize(x, dim=-1)` and
`x.norm(p=2, dim=(1, 2), keepdim=True)`, and timm's `torch.addcmul` scale and shift. Each is a
`rule_*` of the mapper (mapping.py binds them). `x @ self.w` with a learned matrix (SwiftFormer's
`query @ self.w_g`) is a `parameter` row with op matmul or linear (attention.py's matrix_product)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import fx

from . import elementwise
from .elementwise import attribute_read

if TYPE_CHECKING:
    from .mapping import _Mapper


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
