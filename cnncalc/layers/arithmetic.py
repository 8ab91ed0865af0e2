"""Arithmetic with a Python number (Inception-ResNet's `x * 0.17`, `x + 3`) and sums and means
over axes (ResNeSt's radix sum `x.sum(dim=1)`, ECA's `x.mean((2, 3))`). No parameters; like the
other element-wise operations and the pooling-free reductions, nothing that the tools count."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ..records import record
from .base import ArgKind, ElementWise, FieldStep, Layer, Shape, TorchModule, arg, axis_list, register
from .counting import rules

# op -> the Python expression it stands for, over the input `x` and the number `v`
SCALAR_OPS = {"add": "{x} + {v}", "sub": "{x} - {v}", "mul": "{x} * {v}", "div": "{x} / {v}", "rsub": "{v} - {x}"}


@register("scalar")
@record
class Scalar(ElementWise):
    summary = ("arithmetic with a number: x + v, x - v, x * v, x / v or v - x (op add, sub, mul, div, rsub; "
               "Inception-ResNet's x * 0.17); no parameters, not counted")  # fmt: skip
    # every tool skips it: a module of our own, and `*` is not torch.mul for ptflops (as `mul`)
    counts = rules()

    op: str = arg(kind=ArgKind.CHOICE, choices=tuple(SCALAR_OPS), doc="add, sub, mul, div or rsub (v - x)")
    value: float = arg(kind=ArgKind.NUMBER, doc="the number")

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [f"output = {SCALAR_OPS[self.op].format(x='x', v=f'{self.value:g}')} element by element; no parameters"]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("ScalarOp", {"op": self.op, "value": self.value})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"({SCALAR_OPS[self.op].format(x=args[0], v=repr(self.value))})"


@record
class Reduction(Layer):
    """A sum or a mean over the axes `dim` (PyTorch's numbering), keeping them as 1 or not."""

    counts = rules()
    torch_name = ""

    if TYPE_CHECKING:  # fields of each subclass (here they would come first in every subclass)

        @property
        def dim(self) -> Any: ...

        @property
        def keepdim(self) -> bool: ...

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        axes = axis_list(self.dim, inputs[0], self.kind)
        if self.keepdim:
            return tuple(1 if k in axes else n for k, n in enumerate(inputs[0]))
        return tuple(n for k, n in enumerate(inputs[0]) if k not in axes)

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        # over channels only (keepdim or not a spatial axis lost): positions kept; else they end
        axes = axis_list(self.dim, inputs[0], self.kind)
        return None if axes == [0] else []

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        axes = [k + 1 for k in axis_list(self.dim, inputs[0], self.kind)]
        return [f"{self.torch_name} over axes {axes} of [N, {', '.join(map(str, inputs[0]))}] -> "
                f"[N, {', '.join(map(str, output))}]; no parameters, not counted"]  # fmt: skip

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        dims = list(self.dim) if isinstance(self.dim, tuple) else self.dim
        return TorchModule("Reduce", {"op": self.torch_name, "dim": dims, "keepdim": self.keepdim})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        dims = tuple(self.dim) if isinstance(self.dim, tuple) else self.dim
        keep = ", keepdim=True" if self.keepdim else ""
        return f"{args[0]}.{self.torch_name}(dim={dims}{keep})"


@register("sum")
@record
class Sum(Reduction):
    summary = "the sum over axes dim, as x.sum(dim, keepdim) (ResNeSt's radix sum); no parameters"
    shorthand = "dim"
    torch_name = "sum"

    dim: Any = arg(kind=ArgKind.AXES, doc="the axis or axes summed (PyTorch's numbering: 1 the channels)")
    keepdim: bool = arg(False, kind=ArgKind.BOOL)


@register("mean")
@record
class Mean(Reduction):
    summary = "the mean over axes dim, as x.mean(dim, keepdim) (ECA's x.mean((2, 3))); no parameters"
    shorthand = "dim"
    torch_name = "mean"

    dim: Any = arg(kind=ArgKind.AXES, doc="the axis or axes averaged (PyTorch's numbering: 1 the channels)")
    keepdim: bool = arg(False, kind=ArgKind.BOOL)
