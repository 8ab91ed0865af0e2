"""The fully connected layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..errors import LayerError
from .base import ArgKind, FieldStep, Layer, Shape, TorchModule, arg, register
from .counting import macs_and_bias, parameters, rules


@register("linear", "fc", "dense")
@dataclass(frozen=True)
class Linear(Layer):
    summary = "fully connected layer on a flat input"
    keeps = "input"  # for the weight gradient
    shorthand = "out"
    counts = rules(torchinfo=parameters, ptflops=macs_and_bias)

    out: int = arg(kind=ArgKind.POSITIVE, aliases=("out_features", "units"))
    bias: bool = arg(True, kind=ArgKind.BOOL)

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if len(inputs[0]) != 1:
            raise LayerError(
                "linear needs a flat input",
                received=f"input of shape {list(inputs[0])}",
                expected="[features]",
                hint="add '- flatten' before it (or a global_avgpool and a flatten)",
            )
        return (self.out,)

    def weights(self, inputs: Sequence[Shape]) -> int:
        # [out, in]
        return inputs[0][0] * self.out

    def biases(self, inputs: Sequence[Shape]) -> int:
        return self.out if self.bias else 0

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        return inputs[0][0] * self.out

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        kwargs = {"in_features": inputs[0][0], "out_features": self.out, "bias": self.bias}
        return TorchModule("Linear", kwargs, defaults={"bias": True}, positional=2)

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return []  # every output reads the whole input

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        n = inputs[0][0]
        return [
            f"output: {self.out} features",
            f"weights: {n}*{self.out} = {self.weights(inputs):,}",
            f"biases: {self.out}" if self.bias else "biases: 0 (bias: false)",
            f"MACs: {n}*{self.out} = {self.macs(inputs, output):,}",
        ]
