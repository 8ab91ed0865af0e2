"""Mapping rule for dtype casts: `x.float()`, `x.to(dtype)`, `x.half()`, ... (issue 18).

EfficientViT's lite attention writes `q, k, v = q.float(), k.float(), v.float()` and `out.to(dtype)`
so that its quotient runs in fp32 under autocast. Outside autocast the tensors are fp32 already,
and PyTorch returns the very tensor: no copy, no new memory, no arithmetic. That is cnncalc's
`identity` (which aliases its input), so the row is one. A cast to another dtype makes a new tensor
in that dtype, which cnncalc's rows (one activation dtype for the whole network) cannot count: it
stays a traced row, with that said.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import fx
from torch.fx.passes.shape_prop import TensorMetadata

if TYPE_CHECKING:
    from .mapping import _Mapper

# methods that return their tensor as it is when it already has the dtype (and device) asked for
CAST_METHODS = ("float", "double", "half", "bfloat16", "to", "type")
# their arguments, by name, as far as cnncalc reads them (the dtype is read from the traced output)
CAST_PARAMS = ("input", "target", "dtype", "non_blocking", "copy", "memory_format", "device")


def rule_cast(m: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    """`x.float()`, `x.to(torch.float32)`, `x.to(v.dtype)` on a tensor of that dtype: the very
    tensor, an `identity` row."""
    source = m.tensor_input(node, bound.get("input"), what)
    before = bound["input"].meta.get("tensor_meta")
    after = node.meta.get("tensor_meta")
    if not (isinstance(before, TensorMetadata) and isinstance(after, TensorMetadata)):
        raise m.unmapped(node, f"{what} of a value cnncalc cannot follow")
    if bound.get("copy") is True:
        raise m.unmapped(
            node, f"{what} with copy=True makes a new tensor; cnncalc follows casts that return their input"
        )
    if bound.get("memory_format") not in (None, torch.preserve_format):
        raise m.unmapped(node, f"{what} with memory_format={bound['memory_format']}", received=repr(bound))
    if before.dtype != after.dtype:
        raise m.unmapped(
            node,
            f"{what} casts {before.dtype} to {after.dtype}: a new tensor in another dtype, which cnncalc's rows "
            "(one activation dtype for the network) cannot count",
            received=f"{before.dtype} -> {after.dtype}",
            expected="a cast to the dtype the tensor has (the very tensor)",
        )
    m.checked_row(node, "identity", {}, [source], str(node.target))
