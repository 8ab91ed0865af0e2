"""x.expand(...): axes of size 1 repeated without a copy (a view whose repeated axes step 0), as
HaloNet's relative logits tile one row of logits over a block (`x.reshape(B, H, 1, W, w).expand(-1,
-1, w, -1, -1)`, timm's halo_attn.py) (issue 18)."""

from __future__ import annotations

from typing import Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, FieldStep, Layer, Shape, TorchModule, arg, register
from .counting import rules
from .layout import Strides


@register("expand")
@record
class Expand(Layer):
    summary = (
        "repeats axes of size 1 without copying, as x.expand(-1, ...): the sizes after the batch axis, -1 "
        "keeping an axis; a view (the repeated axes step 0), no parameters"
    )
    shorthand = "sizes"
    aliases_input = True
    counts = rules()

    sizes: tuple[int, ...] = arg(
        kind=ArgKind.EXPAND_SIZES, doc="one per axis after the batch axis: the new size of an axis of size 1, or -1"
    )

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = inputs[0]
        if len(self.sizes) != len(shape):
            # torch's expand may add leading axes, which would go before the batch axis here
            raise LayerError(
                "expand needs one size per axis of its input (after the batch axis)",
                received=f"sizes {list(self.sizes)} for an input [N, {', '.join(map(str, shape))}]",
                expected=f"{len(shape)} sizes, -1 where an axis stays",
            )
        out = []
        for axis, (n, size) in enumerate(zip(shape, self.sizes), start=1):
            if size != -1 and n not in (1, size):
                raise LayerError(
                    f"expand repeats only axes of size 1 (axis {axis} has {n}, asked {size})",
                    received=f"sizes {list(self.sizes)} for an input [N, {', '.join(map(str, shape))}]",
                    expected=f"{n} or -1 on axis {axis}",
                    hint="x.repeat copies; expand only views an axis of size 1 many times",
                )
            out.append(n if size == -1 else size)
        return tuple(out)

    def view_strides(self, shape: Shape, strides: Strides, output: Shape) -> Strides:
        # ATen's inferExpandGeometry: a repeated axis steps 0, the others keep theirs
        return (strides[0], *(0 if n != m else s for n, m, s in zip(shape[1:], output[1:], strides[1:])))

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return []  # the positions of a repeated axis all read one

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return [
            f"[N, {', '.join(map(str, inputs[0]))}] -> [N, {', '.join(map(str, output))}] (axes of size 1 "
            "repeated: a view, nothing copied); no parameters"
        ]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("Expand", {"sizes": list(self.sizes)})

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        return f"{args[0]}.expand(-1, {', '.join(map(str, self.sizes))})"
