"""Products written by hand (issue 18): `x @ self.w` with a learned matrix held as a bare parameter
(SwiftFormer's additive attention: `query @ self.w_g`)."""

from __future__ import annotations

from typing import Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, FieldStep, Layer, Saved, Shape, TorchModule, arg, prod, register, times
from .counting import rules
from .layout import Strides, view


@register("param_matmul")
@record
class ParamMatmul(Layer):
    summary = (
        "x @ p (or x @ p.T) with a learned matrix p on the last axis of x, at every position of the others "
        "(SwiftFormer's query @ self.w_g); held, as the model holds it, as a bare parameter of the enclosing "
        "module under the row's name (a Linear would hold it transposed, as `weight`)"
    )
    shorthand = "shape"
    # FlopCounterMode and fvcore count the matmul (aten.mm once folded; aten::matmul: prod(x) * m), thop
    # and ptflops the bridge's torch.matmul (prod(out) * k; prod(x) * m): one per multiply-add. torchinfo
    # sees no module with parameters (the parameter is its parent's)
    counts = rules()

    shape: tuple[int, ...] = arg(
        kind=ArgKind.TENSOR_SHAPE, doc="the parameter's shape as the model holds it: [k, m] ([m, k] transposed)"
    )
    init: float = arg(1.0, kind=ArgKind.NUMBER, doc="the initial value of every element")
    transposed: bool = arg(
        False, kind=ArgKind.BOOL, doc="x @ p.T: p held [m, k], as a Linear's weight (a functional forward)"
    )

    def sizes(self) -> tuple[int, int]:
        """(k, m): x [..., k] @ [k, m]."""
        k, m = self.shape
        return (m, k) if self.transposed else (k, m)

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if len(self.shape) != 2:
            raise LayerError(
                "param_matmul's parameter is a matrix",
                received=list(self.shape),
                expected="[k, m]: x [..., k] @ p [k, m] -> [..., m]",
            )
        k, m = self.sizes()
        if inputs[0][-1] != k:
            raise LayerError(
                f"param_matmul needs the input's last axis to match the parameter's first ({inputs[0][-1]} vs {k})",
                received=f"[N, {', '.join(map(str, inputs[0]))}] @ {list(self.shape)}{'.T' if self.transposed else ''}",
                expected=f"an input [..., {k}]",
                hint="a permute before it moves the features last",
            )
        return (*inputs[0][:-1], m)

    def weights(self, inputs: Sequence[Shape]) -> int:
        return prod(self.shape)

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # [..., m] = [..., k] @ [k, m]: k multiply-adds per output element
        return prod(output) * self.sizes()[0]

    def keeps_a_copy(self, shape: Shape, strides: Strides) -> bool:
        # matmul folds an input of three or more axes to [-1, k] with reshape (a copy where no view
        # exists); the parameter's gradient mm keeps that, as nn.Linear's does
        return len(shape) > 2 and view(shape, strides, (prod(shape[:-1]), shape[-1])) is None

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        return Saved(input=True)  # the parameter's gradient x^T @ g reads x; x's reads p (a parameter)

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        if len(inputs[0]) > 1:
            return None  # each position on its own, as a 1x1 convolution
        return []  # every output reads the whole input

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        k, m = self.sizes()
        return [
            f"output = x @ p{'.T' if self.transposed else ''}, p of shape {list(self.shape)}: {m} features at each of {prod(inputs[0][:-1]):,} positions",
            f"weights: {k}*{m} = {prod(self.shape):,}; biases: 0",
            f"MACs: {times((*inputs[0][:-1], k, m))} = {self.macs(inputs, output):,}",
        ]

    def parent_parameter(self, inputs: Sequence[Shape]) -> tuple[tuple[int, ...], float] | None:
        return self.shape, self.init

    def parent_expression(self, x: str, p: str) -> str:
        # not `@`, which ptflops does not count (as the bridge)
        return f"torch.matmul({x}, {p}.T)" if self.transposed else f"torch.matmul({x}, {p})"

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule(
            "ParameterMatmul", {"shape": list(self.shape), "init": self.init, "transposed": self.transposed}
        )
