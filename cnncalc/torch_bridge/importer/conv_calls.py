"""Mapping rule for `F.conv2d` calls whose weight is not a module's own `weight` parameter as it is
(issue 18); the calls that are take mapping's `rule_functional`.

- A fixed filter held in a buffer: timm's BlurPool2d (TResNet's anti-aliasing, `aa_layer='blur'`),
  antialiased-cnns' Downsample: `F.conv2d(x, self.filt, stride=2, groups=C)`, the filter the
  outer product of a binomial row, one per channel. That is cnncalc's `blur_pool` (no parameter,
  the filter a buffer), named after the module, with the buffer's persistence, so that the
  model's state_dict loads (timm's is left out of it).
- A weight standardised in forward by the module's own code: timm's StdConv2dSame (the hybrid
  ViT's stem; StdConv2d itself is a leaf, table.FOREIGN_MODULE_KINDS):
  `w = F.batch_norm(self.weight.reshape(1, K, -1), None, None, training=True, momentum=0.,
  eps=eps).reshape_as(self.weight)`, then `F.conv2d(x, w, self.bias, ...)` (after its own F.pad,
  a row of its own). The batch norm over the filters is checked, with the convolution it feeds,
  when it is reached: it and the reshape_as become no rows, and the convolution one `std_conv`
  row named after the module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import fx
from torch.fx.passes.shape_prop import TensorMetadata

from ...errors import CnncalcError
from ...layers import REGISTRY, build_layer
from ...layers.blur import binomial
from .. import parameter_counts
from .elementwise import attribute_read
from .table import FUNCTIONS

if TYPE_CHECKING:
    from .mapping import _Mapper


_STANDARDISED = "cnncalc_std_conv"  # node.meta key on the reshape_as: the std_conv row its convolution becomes


def rule_conv_call(m: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    weight = bound.get("weight")
    if isinstance(weight, fx.Node) and _STANDARDISED in weight.meta:
        path, owner, args = weight.meta[_STANDARDISED]
        source = m.tensor_input(node, bound.get("input"), what)
        m.taken.add(path)
        m.add_row(node, path, "std_conv", args, [source], m.shape(node), owner)
        return
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
    from .nodes import _yaml_value

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


def rule_batch_norm_call(m: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    if not standardised_weight(m, node, bound):
        m.rule_functional(node, bound, what)


def standardised_weight(m: _Mapper, node: fx.Node, bound: dict[str, Any]) -> bool:
    """Whether this batch norm standardises a module's weight for the convolution it feeds, as
    timm's StdConv2dSame writes it (see above); if so, that convolution is checked as cnncalc's
    std_conv here, and will be written as one."""
    read = attribute_read(bound.get("input"))
    if read is None or bound.get("training") is not True or len(node.users) != 1:
        return False
    if any(bound.get(key) is not None for key in ("running_mean", "running_var", "weight", "bias")):
        return False  # ScaledStdConv2d's gain: not followed here
    (shaped,) = node.users
    if not (
        shaped.op == "call_method"
        and shaped.target in ("reshape_as", "view_as")
        and len(shaped.args) == 2
        and attribute_read(shaped.args[1]) is not None
        and attribute_read(shaped.args[1]).target == read.target  # type: ignore[union-attr]
        and len(shaped.users) == 1
    ):
        return False
    (conv,) = shaped.users
    path, _, attr = str(read.target).rpartition(".")
    if conv.op != "call_function" or conv.target is not F.conv2d or conv.name in m.forced or attr != "weight":
        return False
    x = conv.args[0] if conv.args else None
    if not isinstance(x, fx.Node) or x not in m.of_node or path in {r.name for r in m.rows} or not path:
        return False
    from .nodes import _equivalent_module

    rule = FUNCTIONS[F.conv2d]
    try:
        bound_conv = m.bind(conv, rule.params, "F.conv2d")
    except CnncalcError:
        return False
    if bound_conv.get("weight") is not shaped:
        return False
    owner = m.owner(path)
    tensors: dict[str, Any] = {"weight": owner.weight}
    bias = bound_conv.get("bias")
    if bias is not None:
        if not (isinstance(bias, fx.Node) and bias.op == "get_attr" and str(bias.target) == f"{path}.bias"):
            return False
        tensors["bias"] = owner.bias
    source = m.of_node[x]
    shape = m.rows[source].shape
    equivalent = _equivalent_module("conv", bound_conv, tensors, shape, len(shape) - 1)
    if equivalent is None or len(shape) != 3:
        return False
    try:
        args = m.module_args(conv, equivalent, "conv", [source])
        args.update(eps=float(bound.get("eps", 1e-5)), gain=False)
        layer = build_layer(REGISTRY["std_conv"], args)
        counts = (layer.weights([shape]), layer.biases([shape]), layer.buffers([shape]))
        out = layer.output_shape([shape])
    except CnncalcError:
        return False
    meta = conv.meta.get("tensor_meta")
    if parameter_counts(owner) != counts or not isinstance(meta, TensorMetadata) or tuple(meta.shape[1:]) != out:
        return False
    m.absorbed.add(shaped)
    shaped.meta[_STANDARDISED] = (path, owner, args)
    return True
