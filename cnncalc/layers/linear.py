"""The fully connected layer."""

from __future__ import annotations

from typing import Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, FieldStep, Layer, Shape, TorchModule, arg, prod, register, times
from .counting import macs_and_bias, parameters, rules
from .layout import Strides, view


@register("linear", "fc", "dense")
@record
class Linear(Layer):
    summary = "fully connected layer on a flat input (channels_last: true: on the last axis, at every position)"
    keeps = "input"  # for the weight gradient
    autocast = True
    shorthand = "out"
    counts = rules(torchinfo=parameters, ptflops=macs_and_bias)

    out: int = arg(kind=ArgKind.POSITIVE, aliases=("out_features", "units"))
    bias: bool = arg(True, kind=ArgKind.BOOL)
    # nn.Linear acts on the last axis at every position of the others: ConvNeXt's pointwise layers
    # between two permutes. Asked for, so that a forgotten flatten is still an error.
    channels_last: bool = arg(
        False, kind=ArgKind.BOOL, doc="act on the last axis of a multi-axis input (after a permute)"
    )

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if len(inputs[0]) != 1 and not (self.channels_last and inputs[0]):  # a number per sample: no axis
            raise LayerError(
                "linear needs a flat input",
                received=f"input of shape {list(inputs[0])}",
                expected="[features]",
                hint="add '- flatten' before it (or a global_avgpool and a flatten); "
                "channels_last: true makes it act on the last axis (after a permute)",
            )
        return (*inputs[0][:-1], self.out)

    def features(self, inputs: Sequence[Shape]) -> int:
        return inputs[0][-1]

    def weights(self, inputs: Sequence[Shape]) -> int:
        # [out, in]
        return self.features(inputs) * self.out

    def biases(self, inputs: Sequence[Shape]) -> int:
        return self.out if self.bias else 0

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # [..., out] = [..., in] @ [in, out]: every position of the leading axes
        return prod(inputs[0][:-1]) * self.features(inputs) * self.out

    def keeps_a_copy(self, shape: Shape, strides: Strides) -> bool:
        # F.linear runs matmul on an input of three or more axes that is not contiguous, and in
        # training matmul folds it to [-1, in] with reshape: a copy where no view exists (a permute
        # not undone), and the weight gradient's mm keeps that copy.
        return len(shape) > 2 and view(shape, strides, (prod(shape[:-1]), shape[-1])) is None

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        kwargs = {"in_features": self.features(inputs), "out_features": self.out, "bias": self.bias}
        return TorchModule("Linear", kwargs, defaults={"bias": True}, positional=2)

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        if len(inputs[0]) > 1:
            return None  # channels-last: each position on its own, as a 1x1 convolution
        return []  # every output reads the whole input

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        n = self.features(inputs)
        positions = prod(inputs[0][:-1])
        at = f" at each of {positions:,} positions" if len(inputs[0]) > 1 else ""
        return [
            f"output: {self.out} features{at}",
            f"weights: {n}*{self.out} = {self.weights(inputs):,}",
            f"biases: {self.out}" if self.bias else "biases: 0 (bias: false)",
            f"MACs: {times((*inputs[0][:-1], n, self.out))} = {self.macs(inputs, output):,}",
        ]
