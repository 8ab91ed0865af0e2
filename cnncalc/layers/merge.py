"""Merges of two or more inputs: residual adds, products (squeeze-excitation), matrix products
(attention) and channel concatenation."""

from __future__ import annotations

from typing import Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, FieldStep, Layer, Saved, Shape, TorchModule, arg, axis_index, prod, register
from .counting import rules
from .layout import MemoryFormat, Strides, view


def broadcast(kind: str, inputs: Sequence[Shape]) -> Shape:
    """PyTorch's broadcasting of inputs of one rank: on each axis the sizes agree, or some are 1.

    Shapes here leave out the batch axis that every input has, so inputs of different ranks would
    be aligned against the batch axis by PyTorch: they are refused rather than guessed at.
    """
    first = inputs[0]
    written = f" {_SYMBOLS.get(kind, '+')} ".join(str(list(s)) for s in inputs)
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
                hint=(
                    "a scale is [C, 1, 1] with the other input's C; in a block, `from: in` reads the block's own "
                    "input (`from: input` is the network's)"
                    if kind == "mul"
                    else "a projection (1x1 conv) on the shortcut makes the channels and sizes match"
                ),
            )
        out.append(wide.pop() if wide else 1)
    return tuple(out)


_SYMBOLS = {"add": "+", "mul": "*", "sub": "-", "div": "/"}


def broadcast_working(inputs: Sequence[Shape], output: Shape) -> str:
    if all(s == output for s in inputs):
        return f"of {len(inputs)} inputs of one shape"
    return f"of {' and '.join(str(list(s)) for s in inputs)}, broadcast to {list(output)}"


@register("add")
@record
class Add(Layer):
    summary = "element-wise sum of two or more inputs, with PyTorch's broadcasting (residual connections)"
    layout = MemoryFormat.INPUT_ORDER
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
    layout = MemoryFormat.INPUT_ORDER
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


@record
class _Binary(Layer):
    """`a - b` or `a / b` of two inputs with PyTorch's broadcasting (the order matters)."""

    layout = MemoryFormat.INPUT_ORDER
    min_inputs = 2
    max_inputs = 2
    counts = rules()  # an aten.sub / aten.div: FlopCounterMode and fvcore count none; our own module for the hooks
    symbol = ""
    what = ""

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        return broadcast(self.kind, inputs)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule(self.kind.capitalize(), {})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"({args[0]} {self.symbol} {args[1]})"

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return None  # position for position

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [f"element-wise {self.what} {broadcast_working(inputs, output)}; no parameters"]


@register("sub", "subtract")
@record
class Sub(_Binary):
    summary = (
        "element-wise difference of two inputs, first minus second, with PyTorch's broadcasting "
        "(PoolFormer's pool(x) - x)"
    )
    symbol = "-"
    what = "difference (first - second)"


@register("div", "divide")
@record
class Div(_Binary):
    summary = "element-wise quotient of two inputs, first over second, with PyTorch's broadcasting"
    symbol = "/"
    what = "quotient (first / second)"

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2: autograd keeps b, and a where b needs a gradient
        return Saved(inputs_for_partners=True)


@register("matmul")
@record
class Matmul(Layer):
    summary = (
        "matrix product of two inputs, as torch.matmul (a @ b): [..., n, k] @ [..., k, m] -> [..., n, m], "
        "the leading axes the same on both (attention's q @ k^T and attn @ v); no parameters"
    )
    layout = MemoryFormat.CONTIGUOUS  # a new tensor from bmm
    min_inputs = 2
    max_inputs = 2
    # the MACs for FlopCounterMode (aten.bmm), fvcore (aten::matmul: prod(a) * m), thop (its functional
    # counter: prod(out) * k) and ptflops (its patched torch.matmul: prod(a) * m), equal without broadcasting;
    # nothing for torchinfo (no parameters)
    counts = rules()

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        a, b = inputs
        written = f"{list(a)} @ {list(b)}"
        if len(a) < 2 or len(a) != len(b):
            # whole tensors of different ranks: PyTorch would align one's batch axis with the other's first axis
            raise LayerError(
                "matmul needs two inputs with the same number of axes, at least two",
                received=written,
                expected="[..., n, k] @ [..., k, m] of one rank, the batch axis left out (PyTorch's batch axis is "
                "then the batch on both)",
            )
        if a[-1] != b[-2]:
            raise LayerError(
                f"matmul needs the first input's last axis to match the second's next-to-last ({a[-1]} vs {b[-2]})",
                received=written,
                expected="[..., n, k] @ [..., k, m]",
                hint="attention's q @ k^T transposes k first: a permute of its last two axes",
            )
        if a[:-2] != b[:-2]:
            # torch.matmul would broadcast them, expanding and copying the smaller input for bmm: a
            # copy autograd keeps or not as the batch size decides, which per-sample figures cannot say
            raise LayerError(
                "matmul needs the same leading axes on both inputs (broadcasting them is not followed)",
                received=written,
                expected=f"[{', '.join(map(str, a[:-2]))}, n, k] @ [{', '.join(map(str, a[:-2]))}, k, m]",
                hint="expand the smaller input first, as matmul itself would",
            )
        return (*a[:-2], a[-2], b[-1])

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # [..., n, m] = [..., n, k] @ [..., k, m]: k multiply-adds per output element
        return prod(output) * inputs[0][-1]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Matmul", {})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"torch.matmul({args[0]}, {args[1]})"  # not `@`, which ptflops does not patch (as the bridge)

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return []  # each output reads a whole row of one input and a whole column of the other

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        # d(a@b)/da = g @ b^T and d(a@b)/db = a^T @ g: each input is kept where its partner needs a
        # gradient, as bmm reads it (keeps_a_copy)
        return Saved(inputs_for_partners=True)

    def keeps_a_copy(self, shape: Shape, strides: Strides) -> bool:
        # torch.matmul folds the leading axes of a 4-D or larger tensor into one for bmm with
        # reshape: a copy where no view exists (attention's k^T and v, pieces of a permuted qkv),
        # and bmm keeps that copy; a 3-D tensor goes to bmm as it is
        return len(shape) > 3 and view(shape, strides, (prod(shape[:-2]), shape[-2], shape[-1])) is None

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        a, b = inputs
        k = a[-1]
        return [
            f"[..., n, k] @ [..., k, m]: {list(a)} @ {list(b)} -> {list(output)} (n = {a[-2]}, k = {k}, m = {b[-1]})",
            f"MACs = {prod(output)} outputs x k = {prod(output)} x {k} = {prod(output) * k}; no parameters",
        ]


@register("concat", "cat")
@record
class Concat(Layer):
    summary = (
        "concatenation of two or more inputs on the channel axis (Inception, DenseNet, U-Net), or on the "
        "axis `dim` (MambaOut's channels-last torch.cat(..., dim=-1))"
    )
    layout = MemoryFormat.INPUTS_FORMAT
    min_inputs = 2
    max_inputs = None
    counts = rules()

    dim: int = arg(1, kind=ArgKind.AXIS, doc="the axis joined, as PyTorch counts it (1 the channels)")

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        first = inputs[0]
        k = axis_index(self.dim, first, self.kind)
        for other in inputs[1:]:
            if len(other) != len(first) or other[:k] + other[k + 1 :] != first[:k] + first[k + 1 :]:
                what = "spatial size" if k == 0 else f"sizes on every axis but {self.dim}"
                raise LayerError(
                    f"concat needs inputs with the same {what}",
                    received=" | ".join(str(list(s)) for s in inputs),
                    expected="the same [..., H, W] for every input; channels may differ"
                    if k == 0
                    else f"inputs that differ on axis {self.dim} only",
                )
        return (*first[:k], sum(s[k] for s in inputs), *first[k + 1 :])

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Concat", {} if self.dim == 1 else {"dim": self.dim})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"torch.cat([{', '.join(args)}], dim={self.dim})"

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return None  # position for position

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        k = axis_index(self.dim, inputs[0], self.kind)
        what = "concatenated channels" if k == 0 else f"concatenated on axis {self.dim}"
        return [
            f"{'C' if k == 0 else f'axis {self.dim}'}: {' + '.join(str(s[k]) for s in inputs)} = {output[k]} "
            f"({what}); no parameters"
        ]


@register("stack")
@record
class Stack(Layer):
    summary = (
        "inputs of one shape stacked on a new axis, as torch.stack(xs, dim) (SKNet's torch.stack([a, b], dim=1)); "
        "a new tensor"
    )
    shorthand = "dim"
    # torch.cat of the inputs unsqueezed: contiguous for contiguous inputs (of channels-last ones
    # PyTorch keeps an order of its own, which this does not follow)
    layout = MemoryFormat.CONTIGUOUS
    min_inputs = 2
    max_inputs = None
    counts = rules()

    dim: int = arg(1, kind=ArgKind.AXIS, doc="where the new axis goes in the output (PyTorch's numbering)")

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if any(s != inputs[0] for s in inputs):
            raise LayerError(
                "stack needs inputs of one shape",
                received=" | ".join(str(list(s)) for s in inputs),
                expected="the same [C, ...] for every input",
            )
        k = axis_index(self.dim, inputs[0], self.kind, new=1)
        return (*inputs[0][:k], len(inputs), *inputs[0][k:])

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Stack", {"dim": self.dim})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"torch.stack([{', '.join(args)}], dim={self.dim})"

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return []  # a new axis: the spatial axes are counted anew

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [
            f"{len(inputs)} inputs {list(inputs[0])} stacked on a new axis {self.dim}: [N, {', '.join(map(str, output))}]; "
            "no parameters"
        ]
