"""Layers that return their input at inference: dropout and identity."""

from __future__ import annotations

from typing import ClassVar, Sequence

from ..records import record
from .base import ArgKind, ElementWise, Saved, Shape, TorchModule, arg, prod, register
from .counting import rules


@register("dropout")
@record
class Dropout(ElementWise):
    summary = "dropout; at inference it returns its input (no new memory)"
    shorthand = "p"
    aliases_input = True
    counts = rules()

    p: float = arg(0.5, kind=ArgKind.PROBABILITY)
    copies_in_training: ClassVar[bool] = True  # training makes a new output

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Dropout", {"p": self.p}, defaults={"p": 0.5})

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        # the scaled noise tensor on CPU (a 1-byte mask on CUDA, which this over-counts)
        return Saved(elements=prod(output))


@register("identity")
@record
class Identity(ElementWise):
    summary = "returns its input unchanged"
    aliases_input = True
    counts = rules()

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Identity", {})
