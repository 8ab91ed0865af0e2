"""Mapping of a batch norm run on tokens folded into the batch: LeViT's `bn(x.flatten(0, 1)).reshape_as(x)`
(timm's LinearNorm, issue 18).

The flatten folds the batch into the rows of a BatchNorm1d over the channels, and reshape_as brings it
back: one sample's tokens [n, C] normalised per channel, a `batchnorm {channels_last: true}` row named
after the module. The walk skips the flatten and the norm (`is_folded`); the reshape_as writes the row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import fx, nn

from ...errors import CnncalcError
from ...layers import REGISTRY, build_layer

if TYPE_CHECKING:
    from .mapping import _Mapper


def _is_flatten_0_1(node: fx.Node) -> fx.Node | None:
    """`x.flatten(0, 1)` or `torch.flatten(x, 0, 1)`: x, else None."""
    flatten = (node.op == "call_method" and node.target == "flatten") or (
        node.op == "call_function" and node.target is torch.flatten
    )
    if not flatten or not node.args or not isinstance(node.args[0], fx.Node):
        return None
    start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
    end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
    return node.args[0] if (start, end) == (0, 1) else None


def pattern(node: fx.Node, gm: fx.GraphModule) -> tuple[fx.Node, fx.Node, fx.Node] | None:
    """For `norm(x.flatten(0, 1)).reshape_as(x)` at its reshape_as node: (x, flatten, norm), else None."""
    if node.op != "call_method" or node.target != "reshape_as" or len(node.args) != 2:
        return None
    norm, x = node.args
    if not isinstance(norm, fx.Node) or norm.op != "call_module" or len(norm.args) != 1 or norm.kwargs:
        return None
    if not isinstance(gm.get_submodule(str(norm.target)), nn.BatchNorm1d):
        return None
    flat = norm.args[0]
    if not isinstance(flat, fx.Node) or _is_flatten_0_1(flat) is not x or len(flat.users) != 1 or len(norm.users) != 1:
        return None
    return x, flat, norm  # type: ignore[return-value]


def is_folded(node: fx.Node, gm: fx.GraphModule) -> bool:
    """The flatten or the norm of such a pattern: written by its reshape_as."""
    users = list(node.users)
    if len(users) != 1:
        return False
    if node.op == "call_module":
        return pattern(users[0], gm) is not None
    user = users[0]
    return len(user.users) == 1 and pattern(next(iter(user.users)), gm) is not None


def folded(gm: fx.GraphModule, norm: fx.Node) -> tuple[fx.Node, list[tuple[str, torch.Tensor]], int]:
    """For a traced row that reads the norm of the pattern (its mapping failed): the tensor x it reads,
    the module's tensors and the MACs FlopCounterMode counted for it."""
    module = gm.get_submodule(str(norm.target))
    held: list[tuple[str, torch.Tensor]] = [*module.named_parameters(), *module.named_buffers()]
    flat = norm.args[0]
    assert isinstance(flat, fx.Node) and isinstance(flat.args[0], fx.Node)
    return flat.args[0], held, int(norm.meta.get("flops", 0)) // 2


def rule_token_norm(m: _Mapper, node: fx.Node) -> None:
    """`bn(x.flatten(0, 1)).reshape_as(x)`: a batchnorm row over x's last axis, named after the module."""
    found = pattern(node, m.gm)
    assert found is not None, "called for the pattern only"
    x, _, norm = found
    path = str(norm.target)
    module = m.gm.get_submodule(path)
    assert isinstance(module, nn.BatchNorm1d)
    what = f"{path}(x.flatten(0, 1)).reshape_as(x)"
    source = m.tensor_input(node, x, what)
    shape = m.rows[source].shape
    args = {
        "eps": module.eps,
        "momentum": module.momentum,
        "affine": module.affine,
        "track_running_stats": module.track_running_stats,
        "channels_last": True,
    }
    try:
        layer = build_layer(REGISTRY["batchnorm"], args)
        out = layer.output_shape([shape])
    except CnncalcError as err:
        raise m.unmapped(node, f"cnncalc's batchnorm cannot express {what}: {err.message}") from None
    if module.num_features != shape[-1] or len(shape) < 2 or out != m.shape(node) or path in m.called:
        raise m.unmapped(
            node, f"{what} over {module.num_features} channels of tokens {list(shape)}", received=repr(module)
        )
    m.called[path] = m.add_row(node, path, "batchnorm", args, [source], out, module)
