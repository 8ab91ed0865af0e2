"""Mapping rules for token code (issue 18): ViT's class token and reading it back.

- `torch.cat([self.cls_token.expand(N, -1, -1), x], dim=1)`: learned tokens put before the
  sequence, a `class_token` row named after the parameter (so the bridge holds it there and the
  model's state_dict loads); register tokens too (`cat([cls, reg, x])`: a row each, the last
  token's first).
- `x[:, 0]`: an index on one axis, as PyTorch's select (a view): a `slice` of that one position,
  then a `squeeze` of its axis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import fx
from torch.fx.passes.shape_prop import TensorMetadata

from ...errors import CnncalcError
from ...layers import REGISTRY, build_layer
from .elementwise import attribute_read

if TYPE_CHECKING:
    from .mapping import _Mapper


def rule_cat_tokens(m: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    """`torch.cat([tokens..., x], dim=1)` with parameters of shape [1, n, D] first: `class_token` rows."""
    tensors = bound.get("tensors")
    if not isinstance(tensors, (list, tuple)):
        m.rule_cat(node, bound, what)
        return
    held = [attribute_read(t) for t in tensors]
    if not held or held[-1] is not None or not any(h is not None for h in held):
        m.rule_cat(node, bound, what)
        return
    *tokens, x = tensors
    if any(h is None for h in held[:-1]):
        raise m.unmapped(node, f"{what} of learned tokens between tensors: cnncalc puts tokens first only")
    source = m.tensor_input(node, x, what)
    rank = len(m.rows[source].shape) + 1
    if rank != 3 or bound.get("dim", 0) % rank != 1:
        raise m.unmapped(
            node,
            f"{what} of learned tokens: cnncalc's class_token puts them before a sequence [N, L, D] (dim=1)",
            received=f"dim={bound.get('dim', 0)} of [N, {', '.join(map(str, m.rows[source].shape))}]",
        )
    for token in reversed(tokens):  # cat([cls, reg, x]): reg's row first, then cls's before it
        target = str(attribute_read(token).target)  # type: ignore[union-attr]
        try:
            param = m.gm.get_parameter(target)
        except AttributeError:
            raise m.unmapped(
                node, f"{what} with the buffer '{target}' as tokens: not learned", received=target
            ) from None
        if id(param) in m.counted or target in {r.name for r in m.rows}:
            raise m.unmapped(node, f"{what} reads the tokens '{target}' a second time", received=target)
        if param.dim() != 3 or param.shape[0] != 1 or param.shape[2] != m.rows[source].shape[1]:
            raise m.unmapped(
                node,
                f"{what} with the tokens '{target}': cnncalc's class_token holds [1, n, D]",
                received=str(list(param.shape)),
                expected=f"[1, n, {m.rows[source].shape[1]}]",
            )
        values = param.detach()
        init = 0.0
        if values.device.type != "meta" and bool((values == values.flatten()[0]).all()):
            init = float(values.flatten()[0])  # the value it still holds (its initial value, untrained)
        args = {"tokens": int(param.shape[1]), "init": init}
        shape = (int(param.shape[1]) + m.rows[source].shape[0], m.rows[source].shape[1])
        m.taken.add(target)
        source = m.add_row(None, target, "class_token", args, [source], shape, counts=(param.numel(), 0, 0))
        m.counted.add(id(param))
    if m.rows[-1].shape != m.shape(node):  # (map_or_trace takes the rows back)
        raise m.unmapped(node, f"cnncalc's class_token gives {list(m.rows[-1].shape)}, PyTorch {list(m.shape(node))}")
    m.of_node[node] = source


def select(m: _Mapper, node: fx.Node, source: int, index: tuple) -> bool:
    """`x[:, 0]`, `x[:, :, -1]`: whole axes but integer indices, each a `slice` of one position and
    then a `squeeze` of those axes (PyTorch's select, a view). False where the index is another."""
    full = slice(None)
    picked = [(axis, cut) for axis, cut in enumerate(index) if type(cut) is int]
    if not picked or picked[0][0] == 0 or any(cut != full and type(cut) is not int for cut in index):
        return False
    meta = node.meta.get("tensor_meta")
    if not isinstance(meta, TensorMetadata):
        return False
    args = {
        "dim": [a for a, _ in picked],
        "begin": [c for _, c in picked],
        "end": [c + 1 if c != -1 else None for _, c in picked],
    }
    try:
        shape = build_layer(REGISTRY["slice"], args).output_shape([m.rows[source].shape])
    except CnncalcError as err:
        raise m.unmapped(node, f"cnncalc's slice cannot express this index: {err.message}") from None
    cut = m.add_row(None, m.functional_name(node, "select"), "slice", args, [source], shape)
    m.checked_row(node, "squeeze", {"dim": [a for a, _ in picked]}, [cut], "select")
    return True
