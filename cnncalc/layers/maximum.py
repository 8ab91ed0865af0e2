"""x.max(dim): the largest values over one axis, PyTorch's indices beside them (issue 18)."""

from __future__ import annotations

from typing import Sequence

from ..records import record
from .arithmetic import Reduction
from .base import ArgKind, Saved, Shape, TorchModule, arg, prod, register


@register("max", "max_values")
@record
class Max(Reduction):
    summary = (
        "the largest value over one axis, as x.max(dim, keepdim)[0] (VOLO's aux.max(1)[0]); PyTorch also returns "
        "the int64 indices, which backward keeps (amax keeps its input and output instead); no parameters"
    )
    shorthand = "dim"
    torch_name = "max"

    dim: int = arg(kind=ArgKind.AXIS, doc="the axis (PyTorch's numbering: 1 the channels)")
    keepdim: bool = arg(False, kind=ArgKind.BOOL)

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        # max.dim's backward scatters the gradient to the indices: one int64 per output element
        return Saved(int64=prod(output))

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("MaxValues", {"dim": self.dim, "keepdim": self.keepdim})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        keep = ", keepdim=True" if self.keepdim else ""
        return f"{args[0]}.max(dim={self.dim}{keep})[0]"
