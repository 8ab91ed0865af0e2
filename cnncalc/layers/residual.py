"""The parts of a modern residual branch (group A of issue 10): stochastic depth and layer scale,
as torchvision's ConvNeXt, EfficientNet and RegNet use them."""

from __future__ import annotations

from typing import Sequence

from ..records import record
from .base import ArgKind, ElementWise, Saved, Shape, TorchModule, arg, register
from .counting import nothing, rules


@register("stochastic_depth", "drop_path")
@record
class StochasticDepth(ElementWise):
    summary = (
        "drops a residual branch at random in training, per sample ('row') or for the whole batch; returns its "
        "input at inference (torchvision.ops.StochasticDepth)"
    )
    shorthand = "p"
    aliases_input = True
    counts = rules()  # the identity at inference: every tool counts nothing

    p: float = arg(kind=ArgKind.PROBABILITY, doc="the probability of dropping")
    mode: str = arg("row", kind=ArgKind.DEPTH_MODE)

    @property
    def copies_in_training(self) -> bool:  # type: ignore[override]
        return self.p > 0  # input * noise is a new tensor; p = 0 returns the input itself

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        per = "per sample" if self.mode == "row" else "for the whole batch"
        return [
            f"output = input at inference; in training input * noise, dropped with p = {self.p} {per}",
            "no parameters",
        ]

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        if self.p == 0:
            return Saved()
        # the noise the product keeps: [N, 1, ...] ('row') or [1, 1, ...] ('batch')
        return Saved(elements=1) if self.mode == "row" else Saved(fp32_per_batch=1)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("StochasticDepth", {"p": self.p, "mode": self.mode}, positional=2)


@register("layer_scale", "layerscale")
@record
class LayerScale(ElementWise):
    summary = (
        "a learned scale per channel (ConvNeXt's gamma, [C, 1, 1]); held, as torchvision holds it, as a bare "
        "parameter of the enclosing module under the row's name"
    )
    shorthand = "init"
    keeps = "input"  # for the scale's gradient
    # torchvision's CNBlock multiplies by a bare parameter: no module, so no tool's hook sees it,
    # and the product is an aten::mul that fvcore and FlopCounterMode do not count
    counts = rules(torchinfo=nothing)

    init: float = arg(1e-6, kind=ArgKind.NUMBER, aliases=("layer_scale",), doc="the initial value of every scale")

    def weights(self, inputs: Sequence[Shape]) -> int:
        return inputs[0][0]

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [f"output = input * gamma, one scale per channel: weights {inputs[0][0]}"]

    def parent_parameter(self, inputs: Sequence[Shape]) -> tuple[tuple[int, ...], float] | None:
        return (inputs[0][0], *(1,) * (len(inputs[0]) - 1)), self.init

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        shape, init = self.parent_parameter(inputs)  # type: ignore[misc]
        return TorchModule("Scale", {"shape": shape, "init": init})
