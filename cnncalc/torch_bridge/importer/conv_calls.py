"""Mapping rule for `F.conv2d` calls whose weight is not a module's own `weight` parameter as it is
(issue 18); the calls that are take mapping's `rule_functional`.

- A fixed filter held in a buffer: timm's BlurPool2d (TResNet's anti-aliasing, `aa_layer='blur'`),
  antialiased-cnns' Downsample: `F.conv2d(x, self.filt, stride=2, groups=C)`, the filter the
  outer product of a binomial row, one per channel. That is cnncalc's `blur_pool` (no parameter,
  the filter a buffer), named after the module, with the buffer's persistence, so that the
  model's state_dict loads (timm's is left out of it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import fx

from ...layers import REGISTRY, build_layer
from ...layers.blur import binomial
from .. import parameter_counts

if TYPE_CHECKING:
    from .mapping import _Mapper


def rule_conv_call(m: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    weight = bound.get("weight")
    if isinstance(weight, fx.Node) and weight.op == "get_attr" and not _is_parameter(m, str(weight.target)):
        blur_pool(m, node, bound, what)
        return
    m.rule_functional(node, bound, what)


def _is_parameter(m: _Mapper, target: str) -> bool:
    try:
        m.gm.get_parameter(target)
    except AttributeError:
        return False
    return True


def blur_pool(m: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    """`F.conv2d(x, self.filt, stride=s, groups=C)` with a buffer of C binomial filters: a `blur_pool` row."""
    source = m.tensor_input(node, bound.get("input"), what)
    shape = m.rows[source].shape
    path, _, attr = str(bound["weight"].target).rpartition(".")
    owner = m.owner(path)
    filt = getattr(owner, attr, None)
    if not isinstance(filt, torch.Tensor) or filt.dim() != 4 or len(shape) != 3:
        raise m.unmapped(node, f"{what} with the buffer '{bound['weight'].target}' as its weight, not a 2-D filter")
    channels, one, size, width = filt.shape
    groups = bound.get("groups", 1)
    if bound.get("bias") is not None or one != 1 or size != width or groups != channels or channels != shape[0]:
        raise m.unmapped(
            node,
            f"{what} with a fixed filter in a buffer: cnncalc maps it only as blur pooling (one filter per "
            "channel, groups = channels, no bias)",
            received=f"filter {list(filt.shape)}, groups {groups}, input {list(shape)}",
        )
    row = torch.tensor(binomial(size), dtype=filt.dtype, device=filt.device)
    if filt.device.type == "meta" or not bool((filt == (row[:, None] * row[None, :])).all()):
        raise m.unmapped(
            node,
            f"{what} with the fixed filter '{bound['weight'].target}': cnncalc maps only binomial filters "
            "(blur pooling)",
            expected=f"each channel [{', '.join(f'{t:g}' for t in binomial(size))}] outer itself",
        )
    if bound.get("dilation", 1) not in (1, (1, 1), [1, 1]):
        raise m.unmapped(node, f"{what}: blur pooling with a dilation", received=repr(bound.get("dilation")))
    padding = bound.get("padding", 0)
    if isinstance(padding, str):
        raise m.unmapped(node, f"{what}: blur pooling with padding {padding!r}", received=repr(padding))
    from .mapping import _yaml_value

    args = {
        "kernel": size,
        "stride": _yaml_value(bound.get("stride", 1)),
        "padding": _yaml_value(padding),
        "persistent": attr not in owner._non_persistent_buffers_set,
    }
    layer = build_layer(REGISTRY["blur_pool"], args)
    if layer.output_shape([shape]) != m.shape(node):
        raise m.unmapped(node, f"cnncalc's blur_pool gives another shape than {what}")
    if not path or path in {r.name for r in m.rows} or parameter_counts(owner) != (0, 0, filt.numel()):
        raise m.unmapped(
            node,
            f"{what} with a fixed filter: its module '{path}' holds other tensors than the filter",
            received=repr(parameter_counts(owner)),
        )
    if attr != "filt" and args["persistent"]:
        # the state_dict key is `<module>.filt`: a saved filter of another name would not load
        raise m.unmapped(node, f"{what}: a saved filter named '{bound['weight'].target}', not '<module>.filt'")
    m.taken.add(path)
    m.add_row(node, path, "blur_pool", args, [source], m.shape(node), owner)
