"""Mapping rule for `x.max(dim)` and `torch.max(x, dim)` read for their values only (issue 18):
VOLO's `aux.max(1)[0]`. The call returns (values, indices); the values are cnncalc's `max` row,
the piece `[0]` reads. A model that reads the indices stays a traced row."""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

from torch import fx

from ...errors import CnncalcError
from ...layers import REGISTRY, build_layer

if TYPE_CHECKING:
    from .mapping import _Mapper


def rule_max(m: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    dim = bound.get("dim")
    if not isinstance(dim, int):
        raise m.unmapped(
            node, f"cnncalc follows {what} over one given axis (values and indices)", received=f"dim={dim!r}"
        )
    meta = node.meta.get("tensor_meta")
    if not isinstance(meta, (tuple, list)) or len(meta) != 2:
        raise m.unmapped(node, f"{what} returns no (values, indices) pair here")
    if not all(u.op == "call_function" and u.target is operator.getitem and u.args[1] in (0, -2) for u in node.users):
        raise m.unmapped(node, f"{what}: the model reads its indices; cnncalc's max gives the values only")
    source = m.tensor_input(node, bound.get("input"), what)
    args = {"dim": dim, "keepdim": bool(bound.get("keepdim", False))}
    try:
        shape = build_layer(REGISTRY["max"], args).output_shape([m.rows[source].shape])
    except CnncalcError as err:
        raise m.unmapped(node, f"cnncalc's max cannot express this call: {err.message}") from None
    if shape != tuple(meta[0].shape[1:]):
        raise m.unmapped(node, f"cnncalc's max gives {list(shape)}, PyTorch {list(meta[0].shape[1:])}")
    row = m.add_row(None, m.functional_name(node, "max"), "max", args, [source], shape)
    m.pieces[node] = [row, None]
