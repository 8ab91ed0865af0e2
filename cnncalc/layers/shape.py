"""Layers that only reshape: no arithmetic; a view of the input where PyTorch makes one.

Axes are counted as PyTorch counts them on the whole tensor (the batch axis 0, the channels 1,
negative from the end), so that arguments copy from PyTorch code; a target `shape` leaves the
batch axis out, as `input:` does. None of them may touch the batch axis.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, FieldStep, Layer, Shape, TorchModule, arg, axis_index, axis_list, prod, register, times
from .counting import rules
from .layout import Strides, is_contiguous, view


def _text(shape: Shape) -> str:
    return f"[N, {', '.join(map(str, shape))}]" if shape else "[N]"


@record
class Reshaping(Layer):
    """A new shape for the same elements, in the same order: a view where the input's strides
    allow one (ATen's computeStride), else a contiguous copy (what `reshape` and `flatten` do)."""

    aliases_input = True

    def view_strides(self, shape: Shape, strides: Strides, output: Shape) -> Strides | None:
        return view(shape, strides, output)

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        # positions keep their meaning only where the spatial axes are untouched
        return None if self.output_shape(inputs)[1:] == inputs[0][1:] else []

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [
            f"{_text(inputs[0])} -> {_text(output)}: {prod(output):,} elements, a view where the input's strides "
            "allow one, else a copy; no parameters"
        ]


@register("flatten")
@record
class Flatten(Reshaping):
    summary = "flattens axes start_dim to end_dim into one, as nn.Flatten / torch.flatten (a view where it can be)"
    counts = rules()

    start_dim: int = arg(1, kind=ArgKind.AXIS, doc="the first axis merged, PyTorch's numbering (1: the channels)")
    end_dim: int = arg(-1, kind=ArgKind.AXIS, doc="the last axis merged")

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = inputs[0]
        start = axis_index(self.start_dim, shape, self.kind)
        end = axis_index(self.end_dim, shape, self.kind)
        if start > end:
            raise LayerError(
                "flatten's start_dim comes after its end_dim", received=f"{self.start_dim} > {self.end_dim}"
            )
        # [..., a, ..., b, ...] -> [..., a*...*b, ...]
        return (*shape[:start], prod(shape[start : end + 1]), *shape[end + 1 :])

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule(
            "Flatten",
            {"start_dim": self.start_dim, "end_dim": self.end_dim},
            defaults={"start_dim": 1, "end_dim": -1},
            positional=2,
        )

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return None if self.output_shape(inputs)[1:] == inputs[0][1:] else []  # positions end where axes merge

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        if len(output) == 1:
            return [
                f"{times((*inputs[0][1:], inputs[0][0]))} = {output[0]:,} features (a view of its input); no parameters"
            ]
        return super().working(inputs, output)


@register("reshape", "view")
@record
class Reshape(Reshaping):
    summary = (
        "a new shape (without the batch axis; one size may be -1), as x.view(N, ...) and x.reshape(N, ...): "
        "a view where the strides allow one, else a copy (reshape's)"
    )
    shorthand = "shape"
    counts = rules()

    shape: Any = arg(kind=ArgKind.SHAPE, doc="the sizes after the batch axis, one of them may be -1")

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        total = prod(inputs[0])
        known = prod([n for n in self.shape if n != -1])
        if -1 in self.shape:
            if total % known:
                raise LayerError(
                    f"reshape cannot make {list(self.shape)} of {total:,} elements",
                    received=f"input {list(inputs[0])}",
                    expected=f"sizes whose product divides {total:,}",
                )
            return tuple(total // known if n == -1 else n for n in self.shape)
        if known != total:
            raise LayerError(
                f"reshape to {list(self.shape)} ({known:,} elements) of {total:,} elements",
                received=f"input {list(inputs[0])}",
                expected=f"sizes whose product is {total:,}",
            )
        return tuple(self.shape)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Reshape", {"shape": list(self.shape)})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"{args[0]}.reshape({args[0]}.shape[0], {', '.join(map(str, self.shape))})"


@register("unsqueeze")
@record
class Unsqueeze(Layer):
    summary = (
        "inserts axes of size 1, as x.unsqueeze(dim) (a list: one call after the other; x[:, :, None, None] is "
        "dim [2, 3]); a view"
    )
    shorthand = "dim"
    aliases_input = True
    counts = rules()

    dim: Any = arg(kind=ArgKind.AXES, doc="where the new axis goes in the output (PyTorch's numbering)")

    def _dims(self) -> tuple[int, ...]:
        return self.dim if isinstance(self.dim, tuple) else (self.dim,)

    def _positions(self, shape: Shape) -> list[int]:
        """Where each call inserts its axis, in the per-sample shape it makes."""
        positions, made = [], list(shape)
        for d in self._dims():
            positions.append(axis_index(d, tuple(made), self.kind, new=1))
            made.insert(positions[-1], 1)
        return positions

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = list(inputs[0])
        for k in self._positions(inputs[0]):
            shape.insert(k, 1)
        return tuple(shape)

    def view_strides(self, shape: Shape, strides: Strides, output: Shape) -> Strides | None:
        sizes, steps = list(shape), list(strides)
        for k in self._positions(shape[1:]):
            d = k + 1  # the batch axis first
            # ATen's inferUnsqueezeGeometry: the new axis steps over the axis it is put before
            steps.insert(d, 1 if d >= len(sizes) else sizes[d] * steps[d])
            sizes.insert(d, 1)
        return tuple(steps)

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return []  # the spatial axes are counted anew

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [f"{_text(inputs[0])} -> {_text(output)} (axes of size 1 inserted: a view); no parameters"]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Unsqueeze", {"dims": list(self._dims())})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return args[0] + "".join(f".unsqueeze({d})" for d in self._dims())


@register("squeeze")
@record
class Squeeze(Layer):
    summary = (
        "removes axes of size 1, as x.squeeze(dim) (a list: several; null: every size-1 axis but the batch); "
        "an axis that is not 1 stays, as in PyTorch; a view"
    )
    shorthand = "dim"
    aliases_input = True
    counts = rules()

    dim: Any = arg(
        None, kind=ArgKind.OPTIONAL_AXES, doc="the axes (PyTorch's numbering); null: every size-1 axis after the batch"
    )

    def _removed(self, shape: Shape) -> list[int]:
        """The per-sample axes that go: those named (or all) that have size 1."""
        named = range(len(shape)) if self.dim is None else axis_list(self.dim, shape, self.kind)
        return [k for k in named if shape[k] == 1]

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        gone = self._removed(inputs[0])
        return tuple(n for k, n in enumerate(inputs[0]) if k not in gone)

    def view_strides(self, shape: Shape, strides: Strides, output: Shape) -> Strides | None:
        gone = {k + 1 for k in self._removed(shape[1:])}
        return tuple(s for d, s in enumerate(strides) if d not in gone)

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return None if self.output_shape(inputs)[1:] == inputs[0][1:] else []

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [f"{_text(inputs[0])} -> {_text(output)} (axes of size 1 removed: a view); no parameters"]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        # the axes by number, never x.squeeze(): at batch 1 that would drop the batch axis too
        return TorchModule("Squeeze", {"dims": [k + 1 for k in self._removed(inputs[0])]})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        gone = [k + 1 for k in self._removed(inputs[0])]
        return f"{args[0]}.squeeze({gone[0] if len(gone) == 1 else tuple(gone)})" if gone else args[0]


@register("contiguous")
@record
class Contiguous(Layer):
    summary = (
        "x.contiguous(): the input itself where it is already contiguous, else a contiguous copy (new "
        "memory, as counted)"
    )
    aliases_input = True
    counts = rules()

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        return inputs[0]

    def view_strides(self, shape: Shape, strides: Strides, output: Shape) -> Strides | None:
        return strides if is_contiguous(shape, strides) else None  # else a copy, laid out contiguous

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return None

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return ["output = input: the same tensor where it is contiguous, else a contiguous copy; no parameters"]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Contiguous", {})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"{args[0]}.contiguous()"
