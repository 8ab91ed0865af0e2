"""Learned tokens put before a sequence: ViT's class token (issue 18)."""

from __future__ import annotations

from typing import Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, FieldStep, Layer, Shape, TorchModule, arg, register
from .counting import nothing, rules


@register("class_token", "cls_token")
@record
class ClassToken(Layer):
    summary = (
        "learned tokens put before the sequence, [L, D] -> [n + L, D] (ViT's class token: "
        "torch.cat([cls_token.expand(N, -1, -1), x], dim=1)); held, as timm holds it, as a bare parameter "
        "[1, n, D] of the enclosing module under the row's name"
    )
    shorthand = "tokens"
    # a bare parameter: no module for torchinfo, thop or ptflops to hook; torch.cat is no arithmetic
    counts = rules(torchinfo=nothing)

    tokens: int = arg(1, kind=ArgKind.POSITIVE, doc="how many tokens (a class token: 1)")
    init: float = arg(0.0, kind=ArgKind.NUMBER, doc="the initial value of every token")

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if len(inputs[0]) != 2:
            raise LayerError(
                "class_token takes a sequence [L, D] (tokens, then features)",
                received=f"input {list(inputs[0])}",
                hint="flatten the feature map into tokens first: reshape, then permute",
            )
        return (self.tokens + inputs[0][0], inputs[0][1])

    def weights(self, inputs: Sequence[Shape]) -> int:
        # the tokens [1, n, D]
        return self.tokens * inputs[0][1]

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        length, width = inputs[0]
        return [
            f"L: {self.tokens} + {length} = {output[0]} (the tokens first); D: {width}",
            f"weights: {self.tokens}*{width} = {self.weights(inputs):,} (the tokens); no arithmetic",
        ]

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return []  # the positions are counted anew

    def parent_parameter(self, inputs: Sequence[Shape]) -> tuple[tuple[int, ...], float] | None:
        return (1, self.tokens, inputs[0][1]), self.init

    def parent_expression(self, arg: str, parameter: str, buffers: Sequence[str] = ()) -> str:
        return f"torch.cat([{parameter}.expand({arg}.shape[0], -1, -1), {arg}], dim=1)"

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        shape, init = self.parent_parameter(inputs)  # type: ignore[misc]
        return TorchModule("ClassToken", {"shape": shape, "init": init})
