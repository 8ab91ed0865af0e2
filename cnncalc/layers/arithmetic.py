"""Arithmetic with a Python number (Inception-ResNet's `x * 0.17`, `x + 3`) and sums and means
over axes (ResNeSt's radix sum `x.sum(dim=1)`, ECA's `x.mean((2, 3))`). No parameters; like the
other element-wise operations and the pooling-free reductions, nothing that the tools count."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, ElementWise, FieldStep, Layer, Saved, Shape, TorchModule, arg, axis_list, prod, register
from .counting import rules
from .layout import MemoryFormat, Strides, view

# op -> the Python expression it stands for, over the input `x` and the number `v`
SCALAR_OPS = {
    "add": "{x} + {v}",
    "sub": "{x} - {v}",
    "mul": "{x} * {v}",
    "div": "{x} / {v}",
    "rsub": "{v} - {x}",
    "pow": "{x} ** {v}",
}


@register("scalar")
@record
class Scalar(ElementWise):
    summary = (
        "arithmetic with a number: x + v, x - v, x * v, x / v, v - x or x ** v (op add, sub, mul, div, rsub, "
        "pow; Inception-ResNet's x * 0.17, an RMS norm's x.pow(2)); no parameters, not counted"
    )
    # every tool skips it: a module of our own, and `*` is not torch.mul for ptflops (as `mul`)
    counts = rules()

    op: str = arg(
        kind=ArgKind.CHOICE, choices=tuple(SCALAR_OPS), doc="add, sub, mul, div, rsub (v - x) or pow (x ** v)"
    )
    value: float = arg(kind=ArgKind.NUMBER, doc="the number")

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [f"output = {SCALAR_OPS[self.op].format(x='x', v=f'{self.value:g}')} element by element; no parameters"]

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        return Saved(input=self.op == "pow")  # pow's backward reads x; the others read nothing

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("ScalarOp", {"op": self.op, "value": self.value})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"({SCALAR_OPS[self.op].format(x=args[0], v=repr(self.value))})"


@record
class Reduction(Layer):
    """A sum or a mean over the axes `dim` (PyTorch's numbering), keeping them as 1 or not."""

    counts = rules()
    torch_name = ""

    if TYPE_CHECKING:  # fields of each subclass (here they would come first in every subclass)

        @property
        def dim(self) -> Any: ...

        @property
        def keepdim(self) -> bool: ...

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        axes = axis_list(self.dim, inputs[0], self.kind)
        if self.keepdim:
            return tuple(1 if k in axes else n for k, n in enumerate(inputs[0]))
        return tuple(n for k, n in enumerate(inputs[0]) if k not in axes)

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        # over channels only (keepdim or not a spatial axis lost): positions kept; else they end
        axes = axis_list(self.dim, inputs[0], self.kind)
        return None if axes == [0] else []

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        axes = [k + 1 for k in axis_list(self.dim, inputs[0], self.kind)]
        return [
            f"{self.torch_name} over axes {axes} of [N, {', '.join(map(str, inputs[0]))}] -> "
            f"[N, {', '.join(map(str, output))}]; no parameters, not counted"
        ]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        dims = list(self.dim) if isinstance(self.dim, tuple) else self.dim
        return TorchModule("Reduce", {"op": self.torch_name, "dim": dims, "keepdim": self.keepdim})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        dims = tuple(self.dim) if isinstance(self.dim, tuple) else self.dim
        keep = ", keepdim=True" if self.keepdim else ""
        return f"{args[0]}.{self.torch_name}(dim={dims}{keep})"


@register("sum")
@record
class Sum(Reduction):
    summary = "the sum over axes dim, as x.sum(dim, keepdim) (ResNeSt's radix sum); no parameters"
    shorthand = "dim"
    torch_name = "sum"

    dim: Any = arg(kind=ArgKind.AXES, doc="the axis or axes summed (PyTorch's numbering: 1 the channels)")
    keepdim: bool = arg(False, kind=ArgKind.BOOL)


@register("mean")
@record
class Mean(Reduction):
    summary = "the mean over axes dim, as x.mean(dim, keepdim) (ECA's x.mean((2, 3))); no parameters"
    shorthand = "dim"
    torch_name = "mean"

    dim: Any = arg(kind=ArgKind.AXES, doc="the axis or axes averaged (PyTorch's numbering: 1 the channels)")
    keepdim: bool = arg(False, kind=ArgKind.BOOL)


@register("var")
@record
class Var(Reduction):
    summary = (
        "the variance over axes dim, as torch.var(x, dim, correction, keepdim) (a hand-written norm's "
        "statistics); no parameters"
    )
    shorthand = "dim"
    torch_name = "var"
    keeps = "input"  # var_backward reads x (and its mean, recomputed)

    dim: Any = arg(kind=ArgKind.AXES, doc="the axis or axes over which (PyTorch's numbering: 1 the channels)")
    keepdim: bool = arg(False, kind=ArgKind.BOOL)
    correction: int = arg(1, kind=ArgKind.NON_NEGATIVE, doc="divide by n - correction (1: unbiased, PyTorch's default)")

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        dims = list(self.dim) if isinstance(self.dim, tuple) else self.dim
        return TorchModule("Variance", {"dim": dims, "keepdim": self.keepdim, "correction": self.correction})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        dims = tuple(self.dim) if isinstance(self.dim, tuple) else self.dim
        return f"torch.var({args[0]}, dim={dims}, correction={self.correction}, keepdim={self.keepdim})"


@register("amax")
@record
class Amax(Reduction):
    summary = "the largest value over axes dim, as x.amax(dim, keepdim) (a max over channels); no parameters"
    shorthand = "dim"
    torch_name = "amax"

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        return Saved(input=True, output=True)  # amax's backward finds the maxima: x == result

    dim: Any = arg(kind=ArgKind.AXES, doc="the axis or axes over which (PyTorch's numbering: 1 the channels)")
    keepdim: bool = arg(False, kind=ArgKind.BOOL)


# op -> the torch function of one tensor it stands for (none of them counted by any tool)
UNARY_OPS = ("rsqrt", "sqrt", "exp", "log", "sin", "cos", "abs", "neg", "reciprocal", "square")


_READS_INPUT = ("log", "sin", "cos", "abs", "square")
_READS_OUTPUT = ("rsqrt", "sqrt", "exp", "reciprocal")


@register("unary")
@record
class Unary(ElementWise):
    summary = (
        "an element-wise function of one input: torch.rsqrt, sqrt, exp, log, sin, cos, abs, neg, reciprocal "
        "or square (a hand-written norm's rsqrt, a sine position encoding); no parameters, not counted"
    )
    shorthand = "op"
    counts = rules()  # FlopCounterMode and fvcore count none of these aten ops; thop and ptflops see no module

    op: str = arg(kind=ArgKind.CHOICE, choices=UNARY_OPS, doc="the torch function: " + ", ".join(UNARY_OPS))

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [f"output = torch.{self.op}(x) element by element; no parameters"]

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        # PyTorch's derivatives.yaml: rsqrt, sqrt, exp and reciprocal read their result; log, sin, cos,
        # abs and square (pow) their input; neg nothing
        return Saved(input=self.op in _READS_INPUT, output=self.op in _READS_OUTPUT)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("UnaryOp", {"op": self.op})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"torch.{self.op}({args[0]})"


# op -> the expression over the input `x` and the parameter `p`; `p` is a weight where it scales
PARAMETER_OPS = {
    "mul": "x * p",
    "div": "x / p",
    "rdiv": "p / x",
    "add": "x + p",
    "sub": "x - p",
    "rsub": "p - x",
    "matmul": "x @ p",
    "linear": "x @ p^T",
}
# what `cnncalc export` writes for each (the bridge's ParameterOp computes the same)
_PARAMETER_EXPRESSIONS = {
    "mul": "{x} * {p}",
    "div": "{x} / {p}",
    "rdiv": "{p} / {x}",
    "add": "{x} + {p}",
    "sub": "{x} - {p}",
    "rsub": "{p} - {x}",
    "matmul": "torch.matmul({x}, {p})",
    "linear": "torch.matmul({x}, {p}.transpose(-1, -2))",
}
# the matrix products: p of two axes, [in, out] for matmul, [out, in] (F.linear's weight) for linear
MATRIX_OPS = ("matmul", "linear")


@register("parameter", "param")
@record
class Parameter(Layer):
    summary = (
        "arithmetic with a learned tensor of any shape that broadcasts: x * p, x + p, x - p, p - x, x / p, "
        "p / x (timm's LearnableAffineBlock and StarReLU, a layer scale [C] on channels-last tokens), or a "
        "matrix product with a learned [in, out] or [out, in] matrix on the last axis, x @ p or x @ p^T "
        "(HaloNet's relative logits `q @ rel_k.transpose(-1, -2)`); held, as the model holds it, as a bare "
        "parameter of the enclosing module under the row's name"
    )
    shorthand = "op"
    # a bare parameter: no module hook sees it, and FlopCounterMode and fvcore count no aten.mul/add;
    # the matrix products are torch.matmul, which FlopCounterMode (mm), fvcore (aten::matmul), thop and
    # ptflops (their patched torch.matmul) count: the MACs
    counts = rules()

    op: str = arg(
        kind=ArgKind.CHOICE,
        choices=tuple(PARAMETER_OPS),
        doc="mul, div, rdiv (p / x), add, sub, rsub (p - x), matmul (x @ p) or linear (x @ p^T)",
    )
    shape: tuple[int, ...] = arg(kind=ArgKind.TENSOR_SHAPE, doc="the parameter's shape as the model holds it")
    view: tuple[int, ...] | None = arg(
        None,
        kind=ArgKind.TENSOR_SHAPE,
        doc="the shape it is viewed as in the "
        "operation, aligned with the input's last axes, as PyTorch broadcasts (default: shape)",
    )
    init: float = arg(1.0, kind=ArgKind.NUMBER, doc="the initial value of every element")
    bias: bool = arg(
        False,
        kind=ArgKind.BOOL,
        doc="counted as biases (a parameter named `bias`, as PyTorch's tools count by name), else as weights",
    )

    def used(self, inputs: Sequence[Shape]) -> tuple[int, ...]:
        """The parameter as used, aligned with one sample's axes (its batch axis of 1 dropped)."""
        view = self.view if self.view is not None else self.shape
        if prod(view) != prod(self.shape):
            raise LayerError(
                f"parameter of shape {list(self.shape)} cannot be viewed as {list(view)}",
                received=list(view),
                expected=f"a shape of {prod(self.shape)} elements",
            )
        rank = len(inputs[0])
        if len(view) > rank + 1 or (len(view) == rank + 1 and view[0] != 1):
            raise LayerError(
                "parameter would change the batch axis",
                received=f"{list(view)} with an input [N, {', '.join(map(str, inputs[0]))}]",
                expected=f"at most {rank} axes, or {rank + 1} with the first 1 (the batch axis)",
            )
        view = view[1:] if len(view) == rank + 1 else view
        return (1,) * (rank - len(view)) + tuple(view)

    def matrix(self, inputs: Sequence[Shape]) -> tuple[int, int]:
        """(in, out) of a matrix product: p's two axes as x @ p or x @ p^T reads them."""
        x = inputs[0]
        if self.view is not None or len(self.shape) != 2:
            raise LayerError(
                f"parameter {self.op} needs a matrix p of two axes, not viewed",
                received=f"shape {list(self.shape)}" + (f", view {list(self.view)}" if self.view is not None else ""),
                expected="shape [in, out] (matmul) or [out, in] (linear)",
            )
        features, out = self.shape if self.op == "matmul" else self.shape[::-1]
        if x[-1] != features:
            raise LayerError(
                f"parameter {self.op} of shape {list(self.shape)} needs {features} features on the input's last axis",
                received=f"input [N, {', '.join(map(str, x))}]",
                expected=f"[N, ..., {features}]",
            )
        return features, out

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if self.op in MATRIX_OPS:
            # [..., out] = [..., in] @ [in, out]
            return (*inputs[0][:-1], self.matrix(inputs)[1])
        used, out = self.used(inputs), []
        for axis, (n, m) in enumerate(zip(inputs[0], used)):
            if n != m and 1 not in (n, m):
                raise LayerError(
                    f"parameter {list(self.view or self.shape)} does not broadcast with the input (axis {axis + 1}: "
                    f"{n} vs {m})",
                    received=f"input [N, {', '.join(map(str, inputs[0]))}]",
                    expected="on every axis the same size, or 1 (PyTorch's broadcasting, last axes aligned)",
                )
            out.append(max(n, m))
        return tuple(out)

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return None  # position for position (a matrix product: on the last axis, at each position)

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        if self.op not in MATRIX_OPS:
            return 0
        # every position of the leading axes: in x out multiply-adds
        return prod(inputs[0][:-1]) * prod(self.shape)

    def keeps_a_copy(self, shape: Shape, strides: Strides) -> bool:
        # as F.linear: matmul folds an input of three or more axes to [-1, in] with reshape, a copy
        # where no view exists, and the gradient of p (mm) keeps that
        return self.op in MATRIX_OPS and len(shape) > 2 and view(shape, strides, (prod(shape[:-1]), shape[-1])) is None

    def layout_for(self, shape: Shape) -> MemoryFormat:
        # TensorIterator orders the output's axes by its operands' strides, the first operand first,
        # passing to the next where one is 0 (broadcast): x decides for x * p, x + p, x - p, x / p,
        # and for p - x and p / x where p broadcasts on all axes but one (no pair of p's own axes
        # to order); a p of two axes or more orders them row-major itself, as does an output that
        # the broadcast grew
        if self.op in MATRIX_OPS:
            return MemoryFormat.CONTIGUOUS  # torch.matmul's product is a new row-major tensor
        sample = tuple(shape[1:])
        used = self.used([sample])
        if self.output_shape([sample]) != sample:
            return MemoryFormat.CONTIGUOUS
        if self.op in ("rsub", "rdiv") and sum(n > 1 for n in used) > 1:
            return MemoryFormat.CONTIGUOUS
        return MemoryFormat.INPUT_ORDER

    def weights(self, inputs: Sequence[Shape]) -> int:
        return 0 if self.bias else prod(self.shape)

    def biases(self, inputs: Sequence[Shape]) -> int:
        return prod(self.shape) if self.bias else 0

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        # the parameter's gradient of x * p (x / p, p / x, x @ p) reads x; of a sum it reads nothing
        return Saved(input=self.op in ("mul", "div", "rdiv", *MATRIX_OPS))

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        what = "biases" if self.bias else "weights"
        shape = list(self.shape) if self.view is None else f"{list(self.shape)} viewed as {list(self.view)}"
        if self.op in MATRIX_OPS:
            features, out = self.matrix(inputs)
            return [
                f"output = {PARAMETER_OPS[self.op]}, p of shape {shape}: {features} -> {out} features at each of "
                f"{prod(inputs[0][:-1]):,} positions; {what}: {features}*{out} = {prod(self.shape)}",
                f"MACs: {prod(inputs[0][:-1]):,} x {features} x {out} = {self.macs(inputs, output):,}",
            ]
        return [
            f"output = {PARAMETER_OPS[self.op]} element by element, p of shape {shape}; "
            f"{what}: {'*'.join(map(str, self.shape))} = {prod(self.shape)}"
        ]

    def parent_parameter(self, inputs: Sequence[Shape]) -> tuple[tuple[int, ...], float] | None:
        return self.shape, self.init

    def parent_expression(self, arg: str, parameter: str, buffers: Sequence[str] = ()) -> str:
        # as the bridge's ParameterOp computes it, so that the exported file gives the same bits
        p = parameter if self.view is None else f"{parameter}.view({list(self.view)})"
        return _PARAMETER_EXPRESSIONS[self.op].format(x=arg, p=p)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        view = list(self.view) if self.view is not None else None
        return TorchModule(
            "ParameterOp",
            {"op": self.op, "shape": list(self.shape), "view": view, "init": self.init, "bias": self.bias},
        )
