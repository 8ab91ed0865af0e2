"""A row cnncalc measured rather than derived: an op of an imported model that no layer type maps.

`cnncalc import` never refuses a model that runs. Where an op has no mapping, the spec gets a
`traced` row: its output shape as PyTorch gave it, its parameters and buffers counted from the
module's tensors, and its MACs measured by `torch.utils.flop_counter` for that op, all at the
input shapes it was traced at. The row is exact there and nowhere else: another input is refused.
Each traced row is a mapping still to add (docs/import.md lists them).
"""

from __future__ import annotations

from typing import Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, FieldStep, Layer, Saved, Shape, TorchModule, arg, register
from .counting import Convention


def _measured(layer: Traced, inputs: Sequence[Shape], output: Shape) -> int:
    return layer.macs_measured


@register("traced")
@record
class Traced(Layer):
    summary = "an op cnncalc measured from PyTorch at import, not derived: shape, parameters and MACs as traced"
    max_inputs = None
    # every tool is credited with what torch.utils.flop_counter measured (FLOPs / 2): no other is known
    counts = {convention: _measured for convention in Convention}
    keeps = "input"  # assumed: its backward formula is not known (docs/conventions.md)

    op: str = arg(kind=ArgKind.TEXT, doc="what ran: the module class or the function, as PyTorch names it")
    shape: tuple[int, ...] = arg(kind=ArgKind.TRACED_SHAPE, doc="its output shape as traced, without the batch")
    inputs: tuple[tuple[int, ...], ...] = arg(kind=ArgKind.TRACED_SHAPES, doc="the input shapes it was traced at")
    weights_measured: int = arg(0, kind=ArgKind.NON_NEGATIVE, aliases=("weights",), doc="parameter elements")
    biases_measured: int = arg(0, kind=ArgKind.NON_NEGATIVE, aliases=("biases",), doc="parameter elements named bias")
    buffers_measured: int = arg(0, kind=ArgKind.NON_NEGATIVE, aliases=("buffers",), doc="buffer elements")
    macs_measured: int = arg(
        0, kind=ArgKind.NON_NEGATIVE, aliases=("macs",), doc="FLOPs / 2, as FlopCounterMode counts them"
    )

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if tuple(tuple(s) for s in inputs) != self.inputs:
            raise LayerError(
                f"this traced row ({self.op}) was measured at input {_text(self.inputs)} and holds only there",
                received=_text(inputs),
                expected=_text(self.inputs),
                hint="import the model again at this input (cnncalc import ... --input ...)",
            )
        return self.shape

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [
            f"traced from PyTorch ({self.op}): shape, parameters and MACs measured at import, not derived",
            f"MACs = FlopCounterMode FLOPs / 2 = {self.macs_measured}",
        ]

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        # unknown: positions kept where the spatial size is kept, else every output reads everything
        return None if inputs and inputs[0][1:] == self.shape[1:] else []

    def weights(self, inputs: Sequence[Shape]) -> int:
        return self.weights_measured

    def biases(self, inputs: Sequence[Shape]) -> int:
        return self.biases_measured

    def buffers(self, inputs: Sequence[Shape]) -> int:
        return self.buffers_measured

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        return self.macs_measured

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        return Saved(input=True)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        # a stand-in of the same shape and parameter counts: the op itself is the user's code
        return TorchModule(
            "Traced",
            {
                "op": self.op,
                "shape": list(self.shape),
                "weights": self.weights_measured,
                "biases": self.biases_measured,
                "buffers": self.buffers_measured,
            },
        )


def _text(shapes: Sequence[Sequence[int]]) -> str:
    return ", ".join("x".join(map(str, s)) for s in shapes)
