"""Merges of two or more inputs: residual adds, products (squeeze-excitation) and channel concatenation."""

from __future__ import annotations

from typing import Sequence

from ..errors import LayerError
from ..layout import Layout
from ..records import record
from .base import ArgKind, FieldStep, Layer, Saved, Shape, TorchModule, arg, axis_index, register
from .counting import rules


def broadcast(kind: str, inputs: Sequence[Shape]) -> Shape:
    """PyTorch's broadcasting of inputs of one rank: on each axis the sizes agree, or some are 1.

    Shapes here leave out the batch axis that every input has, so inputs of different ranks would
    be aligned against the batch axis by PyTorch: they are refused rather than guessed at.
    """
    first = inputs[0]
    written = (" * " if kind == "mul" else " + ").join(str(list(s)) for s in inputs)
    if any(len(s) != len(first) for s in inputs):
        raise LayerError(
            f"{kind} needs inputs with the same number of axes",
            received=written,
            expected="[C, ...] of one rank; an axis of size 1 (like [C, 1, 1]) is repeated to match",
        )
    out = []
    for axis, sizes in enumerate(zip(*inputs)):
        wide = {n for n in sizes if n != 1}
        if len(wide) > 1:
            what = "channel" if axis == 0 else f"spatial axis {axis}"
            raise LayerError(
                f"{kind} needs shapes that broadcast ({what}: {' vs '.join(map(str, sizes))})",
                received=written,
                expected="on every axis the same size, or 1 (PyTorch's broadcasting)",
                hint="a projection (1x1 conv) on the shortcut makes the channels and sizes match",
            )
        out.append(wide.pop() if wide else 1)
    return tuple(out)


def broadcast_working(inputs: Sequence[Shape], output: Shape) -> str:
    if all(s == output for s in inputs):
        return f"of {len(inputs)} inputs of one shape"
    return f"of {' and '.join(str(list(s)) for s in inputs)}, broadcast to {list(output)}"


@register("add")
@record
class Add(Layer):
    summary = "element-wise sum of two or more inputs, with PyTorch's broadcasting (residual connections)"
    layout = Layout.INPUT_ORDER
    min_inputs = 2
    max_inputs = None
    counts = rules()

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        return broadcast(self.kind, inputs)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Add", {})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return " + ".join(args)

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return None  # position for position

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [f"element-wise sum {broadcast_working(inputs, output)}; no parameters"]


@register("mul", "multiply")
@record
class Mul(Layer):
    summary = "element-wise product of two inputs, with PyTorch's broadcasting (squeeze-excitation's x * scale)"
    layout = Layout.INPUT_ORDER
    min_inputs = 2
    max_inputs = 2
    counts = rules()  # every tool skips it: our own module, and `*` is not torch.mul for ptflops

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        return broadcast(self.kind, inputs)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Mul", {})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return " * ".join(args)

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return None  # position for position

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        # d(a*b)/da = b and d(a*b)/db = a: autograd keeps b where a needs a gradient, and a where b does
        return Saved(inputs_for_partners=True)

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [f"element-wise product {broadcast_working(inputs, output)}; no parameters"]


@register("concat", "cat")
@record
class Concat(Layer):
    summary = "concatenation of two or more inputs on the channel axis (Inception, DenseNet, U-Net)"
    layout = Layout.INPUTS_FORMAT
    min_inputs = 2
    max_inputs = None
    counts = rules()

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        first = inputs[0]
        for other in inputs[1:]:
            if other[1:] != first[1:]:
                raise LayerError(
                    "concat needs inputs with the same spatial size",
                    received=" | ".join(str(list(s)) for s in inputs),
                    expected="the same [..., H, W] for every input; channels may differ",
                )
        return (sum(s[0] for s in inputs), *first[1:])

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Concat", {})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"torch.cat([{', '.join(args)}], dim=1)"

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return None  # position for position

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [f"C: {' + '.join(str(s[0]) for s in inputs)} = {output[0]} (concatenated channels); no parameters"]


@register("stack")
@record
class Stack(Layer):
    summary = ("inputs of one shape stacked on a new axis, as torch.stack(xs, dim) (SKNet's torch.stack([a, b], dim=1)); "
               "a new tensor")  # fmt: skip
    shorthand = "dim"
    # torch.cat of the inputs unsqueezed: contiguous for contiguous inputs (of channels-last ones
    # PyTorch keeps an order of its own, which this does not follow)
    layout = Layout.CONTIGUOUS
    min_inputs = 2
    max_inputs = None
    counts = rules()

    dim: int = arg(1, kind=ArgKind.AXIS, doc="where the new axis goes in the output (PyTorch's numbering)")

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if any(s != inputs[0] for s in inputs):
            raise LayerError("stack needs inputs of one shape", received=" | ".join(str(list(s)) for s in inputs),
                             expected="the same [C, ...] for every input")  # fmt: skip
        k = axis_index(self.dim, inputs[0], self.kind, new=1)
        return (*inputs[0][:k], len(inputs), *inputs[0][k:])

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Stack", {"dim": self.dim})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"torch.stack([{', '.join(args)}], dim={self.dim})"

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return []  # a new axis: the spatial axes are counted anew

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [f"{len(inputs)} inputs {list(inputs[0])} stacked on a new axis {self.dim}: [N, {', '.join(map(str, output))}]; "
                "no parameters"]  # fmt: skip
