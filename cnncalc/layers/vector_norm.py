"""Vector norms written by hand (issue 18): `F.normalize(x, p, dim, eps)`, each vector along one axis
divided by its p-norm (SwiftFormer's additive attention, XCiT's and EdgeNeXt's cross-covariance
attention), and the norm itself, `x.norm(p, dim, keepdim)` (ConvNeXt-V2's global response norm).

No parameters, and nothing any tool counts: FlopCounterMode has no formula for the aten ops they
run (linalg_vector_norm, clamp_min, div), fvcore no handle, and thop and ptflops hook neither
(F.normalize divides with `/`, which ptflops does not patch). tests/test_differential.py holds
that against FlopCounterMode.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..errors import LayerError
from ..records import record
from .arithmetic import Reduction
from .base import ArgKind, FieldStep, Layer, Saved, Shape, TorchModule, arg, axis_index, axis_list, prod, register
from .counting import rules
from .layout import MemoryFormat


def _p_text(p: float) -> str:
    return "inf" if p == float("inf") else f"{p:g}"


def _check_p(p: float, kind: str) -> None:
    if p != p:  # NaN: PyTorch runs it, every output NaN; not a norm
        raise LayerError(f"{kind}'s p is not a number", received=p, expected="a positive number, or inf")


@register("normalize")
@record
class Normalize(Layer):
    summary = (
        "F.normalize: every vector along axis dim divided by its p-norm (at least eps), as "
        "x / max(||x||_p, eps) (SwiftFormer's and XCiT's attention); no parameters, not counted"
    )
    shorthand = "dim"
    layout = MemoryFormat.INPUT_ORDER  # the division is element-wise (TensorIterator)
    counts = rules()  # no tool counts linalg_vector_norm, clamp_min or div (the module docstring)

    dim: int = arg(1, kind=ArgKind.AXIS, doc="the axis of the vectors (PyTorch's numbering: 1 the channels)")
    p: float = arg(2.0, kind=ArgKind.NUMBER, doc="the exponent of the norm (2: Euclidean)")
    eps: float = arg(1e-12, kind=ArgKind.NUMBER, doc="the smallest divisor")

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        axis_index(self.dim, inputs[0], self.kind)  # in range, and not the batch axis
        _check_p(self.p, self.kind)
        return inputs[0]

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        # over the channels: positions kept; over a spatial axis every output reads that whole axis
        return None if axis_index(self.dim, inputs[0], self.kind) == 0 else []

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        axis = axis_index(self.dim, inputs[0], self.kind)
        vectors = prod(inputs[0]) // inputs[0][axis]
        return [
            f"output = x / max(||x||_{_p_text(self.p)}, {self.eps:g}) over axis {axis + 1}: {vectors:,} vectors "
            f"of {inputs[0][axis]}; no parameters, not counted"
        ]

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        # autograd keeps x (for the norm's and the division's backward), the norm and its clamped copy
        axis = axis_index(self.dim, inputs[0], self.kind)
        return Saved(input=True, elements=2 * (prod(inputs[0]) // inputs[0][axis]))

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Normalize", {"p": self.p, "dim": self.dim, "eps": self.eps})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"torch.nn.functional.normalize({args[0]}, p={self.p!r}, dim={self.dim}, eps={self.eps!r})"


@register("vector_norm")
@record
class VectorNorm(Reduction):  # its axes, shapes and receptive field as sum's
    summary = (
        "the p-norm of the vectors along axes dim, as x.norm(p, dim, keepdim) (ConvNeXt-V2's global response "
        "norm: the 2-norm over the spatial axes); no parameters, not counted"
    )
    shorthand = "dim"
    layout = MemoryFormat.CONTIGUOUS  # a new, reduced tensor
    keeps = "input"
    counts = rules()  # no tool counts linalg_vector_norm (the module docstring)

    dim: Any = arg(kind=ArgKind.AXES, doc="the axis or axes reduced (PyTorch's numbering: 1 the channels)")
    p: float = arg(2.0, kind=ArgKind.NUMBER, doc="the exponent of the norm (2: Euclidean)")
    keepdim: bool = arg(False, kind=ArgKind.BOOL)

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        _check_p(self.p, self.kind)
        return super().output_shape(inputs)

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        axes = [k + 1 for k in axis_list(self.dim, inputs[0], self.kind)]
        return [
            f"||x||_{_p_text(self.p)} over axes {axes} of [N, {', '.join(map(str, inputs[0]))}] -> "
            f"[N, {', '.join(map(str, output))}]; no parameters, not counted"
        ]

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        return Saved(input=True, output=True)  # norm_backward reads x and the norm

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        dims = list(self.dim) if isinstance(self.dim, tuple) else self.dim
        return TorchModule("VectorNorm", {"p": self.p, "dim": dims, "keepdim": self.keepdim})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        dims = tuple(self.dim) if isinstance(self.dim, tuple) else self.dim
        return f"{args[0]}.norm(p={self.p!r}, dim={dims}, keepdim={self.keepdim})"
