"""Blur pooling: anti-aliased downsampling by a fixed binomial filter (issue 18)."""

from __future__ import annotations

from math import comb
from typing import Any, Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, Shape, TorchModule, arg, prod, register, times
from .counting import nothing, rules
from .windowed import Windowed


def binomial(size: int) -> list[float]:
    """The filter's taps along one axis: C(size - 1, k) / 2^(size - 1), k = 0 .. size - 1 (they sum to 1)."""
    return [comb(size - 1, k) / 2 ** (size - 1) for k in range(size)]


@register("blur_pool", "blurpool", "blurpool2d")
@record
class BlurPool(Windowed):
    summary = (
        "blur pooling (Zhang 2019, timm's BlurPool2d, TResNet's and antialiased-cnns' anti-aliasing): each "
        "channel convolved with a fixed binomial filter at a stride; the filter [C, 1, F, F] is a buffer, not learned"
    )
    keeps = "input"
    shorthand = "kernel"
    # the bridge's module runs F.conv2d on its buffer: torch.utils.flop_counter and fvcore count that
    # convolution; torchinfo counts modules with parameters, thop and ptflops hook module classes
    counts = rules(thop=nothing, ptflops=nothing)

    kernel: int = arg(3, kind=ArgKind.POSITIVE, aliases=("filt_size",), doc="filter size F (binomial taps)")
    stride: Any = arg(2, kind=ArgKind.POSITIVE_AXES)
    padding: Any = arg(0, kind=ArgKind.NON_NEGATIVE_AXES, doc="zeros; timm pads by reflection first (a pad row)")
    persistent: bool = arg(True, kind=ArgKind.BOOL, doc="the filter is in the state_dict (false: timm's BlurPool2d)")

    def window_args(self) -> tuple[Any, Any, Any, Any, bool]:
        return self.kernel, self.stride, self.padding, 1, False

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if len(inputs[0]) != 3:
            raise LayerError("blur_pool takes [C, H, W] inputs (2 spatial axes)", received=f"input {list(inputs[0])}")
        if self.kernel < 2:
            raise LayerError("blur_pool needs a filter of at least 2 taps", received=f"kernel {self.kernel}")
        return (inputs[0][0], *self.spatial_out(inputs[0]))

    def buffers(self, inputs: Sequence[Shape]) -> int:
        # the filter [C, 1, F, F], one copy per channel (a depthwise convolution's weight)
        return inputs[0][0] * self.kernel**2

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # each output element: F*F taps of its own channel
        return prod(output) * self.kernel**2

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        taps = ", ".join(f"{t:g}" for t in binomial(self.kernel))
        return [
            *self.axis_working(inputs[0]),
            f"C: {inputs[0][0]} (one filter per channel)",
            f"filter: [{taps}] outer itself, a buffer of {inputs[0][0]}*{self.kernel}*{self.kernel} = "
            f"{self.buffers(inputs):,}; params: 0",
            f"MACs: ({times((*output[1:], output[0]))} outputs)*({self.kernel}*{self.kernel}) = "
            f"{self.macs(inputs, output):,}",
        ]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        kwargs = {"channels": inputs[0][0], **self.torch_window_kwargs(inputs[0]), "persistent": self.persistent}
        kwargs["kernel_size"] = self.kernel
        defaults = {"stride": (2, 2), "padding": (0, 0), "persistent": True}
        return TorchModule("BlurPool2d", kwargs, defaults=defaults, positional=2)
