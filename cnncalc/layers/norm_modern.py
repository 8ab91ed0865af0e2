"""Normalisation over each sample (group A of issue 10): layer norm, group norm, instance norm.

Each normalises with statistics of one sample, so inference and training compute the same thing
(instance norm with running statistics aside). For the receptive field they count as element-wise,
as batch norm does: their statistics are not a window.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, ElementWise, Saved, Shape, TorchModule, arg, prod, register, spatial_rank, times
from .counting import parameters, per_element, rules
from .layout import MemoryFormat


def _affine_lines(size: int, affine: bool, bias: bool, what: str) -> list[str]:
    if not affine:
        return ["no weights (affine: false)"]
    count = f"{size:,}" if what in (str(size), f"{size:,}") else f"{what} = {size:,}"
    return [f"weights (gamma): {count}; biases (beta): " + (f"{size:,}" if bias else "0 (bias: false)")]


def _per_sample_stats(per_sample: int) -> Saved:
    # the input, and a mean and 1/std per normalised group (fp32 for fp32 activations)
    return Saved(input=True, elements=2 * per_sample)


# fvcore: aten::layer_norm / group_norm / instance_norm are its norm_flop_counter, "5 per element
# with affine, 4 without"; thop: count_normalization, 2 per element, doubled with affine.
def _fvcore_norm(layer: Any, inputs: Sequence[Shape], output: Shape) -> int:
    return prod(inputs[0]) * (5 if layer.affine else 4)


def _ptflops_layernorm(layer: LayerNorm, inputs: Sequence[Shape], output: Shape) -> int:
    # its bn hook for nn.LayerNorm, by exact type: 1 per element (nn.LayerNorm has no `affine`
    # attribute to double it); the channels form's own class is not in its table
    return 0 if layer.over == "channels" else prod(inputs[0])


@register("layernorm", "layer_norm", "layernorm2d")
@record
class LayerNorm(ElementWise):
    summary = (
        "layer normalisation of each sample: over the channels at every position ('channels', ConvNeXt's "
        "LayerNorm2d), or over the last N axes (nn.LayerNorm); gamma and beta over the normalised shape"
    )
    shorthand = "over"
    counts = rules(
        fvcore=_fvcore_norm, torchinfo=parameters, thop=per_element(2, affine_times=2), ptflops=_ptflops_layernorm
    )

    over: Any = arg("channels", kind=ArgKind.NORM_AXES, doc="'channels', or N: the last N axes")
    eps: float = arg(1e-5, kind=ArgKind.NUMBER)
    affine: bool = arg(True, kind=ArgKind.BOOL, aliases=("elementwise_affine",))
    bias: bool = arg(True, kind=ArgKind.BOOL)

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if self.over != "channels" and self.over > len(inputs[0]):
            raise LayerError(
                f"layernorm over the last {self.over} axes, but the input has {len(inputs[0])}",
                received=f"input of shape {list(inputs[0])}",
                expected=f"over: 1 to {len(inputs[0])}, or 'channels'",
            )
        return inputs[0]

    @property
    def layout(self) -> MemoryFormat:  # type: ignore[override]
        # over channels: computed on the input moved channels-last, and moved back (a view of that)
        return MemoryFormat.CHANNELS_LAST if self.over == "channels" else MemoryFormat.CONTIGUOUS

    def normalized(self, shape: Shape) -> Shape:
        return (shape[0],) if self.over == "channels" else shape[len(shape) - self.over :]

    def weights(self, inputs: Sequence[Shape]) -> int:
        return prod(self.normalized(inputs[0])) if self.affine else 0

    def biases(self, inputs: Sequence[Shape]) -> int:
        return prod(self.normalized(inputs[0])) if self.affine and self.bias else 0

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        shape = self.normalized(inputs[0])
        axes = "axis" if self.over == 1 else f"{self.over} axes"
        over = "the channels at each position" if self.over == "channels" else f"the last {axes} {list(shape)}"
        groups = prod(inputs[0]) // prod(shape)
        return [
            f"output = input, normalised over {over}: {groups:,} mean/variance pairs",
            *_affine_lines(prod(shape), self.affine, self.bias, times(shape)),
        ]

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        return _per_sample_stats(prod(inputs[0]) // prod(self.normalized(inputs[0])))

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        defaults = {"eps": 1e-5, "elementwise_affine": True, "bias": True}
        shape: Any = inputs[0][0] if self.over == "channels" else list(self.normalized(inputs[0]))
        kwargs = {"normalized_shape": shape, "eps": self.eps, "elementwise_affine": self.affine, "bias": self.bias}
        return TorchModule(
            "ChannelLayerNorm" if self.over == "channels" else "LayerNorm", kwargs, defaults=defaults, positional=1
        )


@register("groupnorm", "group_norm")
@record
class GroupNorm(ElementWise):
    summary = "group normalisation: each sample's channels in groups, normalised per group; gamma and beta per channel"
    layout = MemoryFormat.INPUT_FORMAT  # channels-last in, channels-last out
    keeps_dense_input = True
    shorthand = "groups"
    # ptflops: its bn hook, 1 per element, 2 with affine
    counts = rules(
        fvcore=_fvcore_norm,
        torchinfo=parameters,
        thop=per_element(2, affine_times=2),
        ptflops=per_element(1, affine_times=2),
    )

    groups: int = arg(kind=ArgKind.POSITIVE, aliases=("num_groups",), doc="number of channel groups")
    eps: float = arg(1e-5, kind=ArgKind.NUMBER)
    affine: bool = arg(True, kind=ArgKind.BOOL)
    bias: bool = arg(True, kind=ArgKind.BOOL)

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        channels = inputs[0][0]
        if channels % self.groups:
            raise LayerError(
                "groupnorm's channels are not divisible by its groups",
                received=f"{channels} channels, groups={self.groups}",
                expected="groups dividing the channel count",
            )
        if prod(inputs[0]) // self.groups == 1:
            raise LayerError(
                "groupnorm with one value per group: every output would be 0 (PyTorch refuses it)",
                received=f"input of shape {list(inputs[0])}, groups={self.groups}",
                expected="more than one value in each group",
            )
        return inputs[0]

    def weights(self, inputs: Sequence[Shape]) -> int:
        return inputs[0][0] if self.affine else 0

    def biases(self, inputs: Sequence[Shape]) -> int:
        return inputs[0][0] if self.affine and self.bias else 0

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        c = inputs[0][0]
        return [
            f"output = input, normalised in {self.groups} groups of {c // self.groups} channels",
            *_affine_lines(c, self.affine, self.bias, str(c)),
        ]

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        return _per_sample_stats(self.groups)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        kwargs = {
            "num_groups": self.groups,
            "num_channels": inputs[0][0],
            "eps": self.eps,
            "affine": self.affine,
            "bias": self.bias,
        }
        return TorchModule("GroupNorm", kwargs, defaults={"eps": 1e-5, "affine": True, "bias": True}, positional=2)


@register("instancenorm", "instance_norm", "instancenorm1d", "instancenorm2d", "instancenorm3d")
@record
class InstanceNorm(ElementWise):
    summary = "instance normalisation: each channel of each sample over its positions; no parameters by default"
    layout = MemoryFormat.CONTIGUOUS  # computed on input.contiguous(), reshaped to one batch of N*C channels
    keeps_dense_input = True
    # thop: its norm base (_NormBase); ptflops: its bn hook; fvcore: aten::instance_norm
    counts = rules(
        fvcore=_fvcore_norm,
        torchinfo=parameters,
        thop=per_element(2, affine_times=2),
        ptflops=per_element(1, affine_times=2),
    )

    eps: float = arg(1e-5, kind=ArgKind.NUMBER)
    momentum: float | None = arg(0.1, kind=ArgKind.OPTIONAL_NUMBER)
    affine: bool = arg(False, kind=ArgKind.BOOL)
    track_running_stats: bool = arg(False, kind=ArgKind.BOOL)
    bias: bool = arg(True, kind=ArgKind.BOOL)

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        spatial_rank(inputs[0], self.kind)
        # one position normalised by its own statistics is 0: PyTorch refuses it in training, and in
        # eval too unless running statistics replace the instance's own
        if prod(inputs[0][1:]) == 1 and not self.track_running_stats:
            raise LayerError(
                "instancenorm over a single position: every output would be 0, and PyTorch refuses it "
                "(in eval mode too, without running statistics)",
                received=f"input of shape {list(inputs[0])}",
                expected="more than one spatial position",
                hint="track_running_stats: true normalises by running statistics in eval mode, which PyTorch runs",
            )
        return inputs[0]

    def weights(self, inputs: Sequence[Shape]) -> int:
        return inputs[0][0] if self.affine else 0

    def biases(self, inputs: Sequence[Shape]) -> int:
        return inputs[0][0] if self.affine and self.bias else 0

    def buffers(self, inputs: Sequence[Shape]) -> int:
        return 2 * inputs[0][0] + 1 if self.track_running_stats else 0  # running mean, var, num_batches_tracked

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        c = inputs[0][0]
        lines = [
            f"output = input, each of {c} channels normalised over its {prod(inputs[0][1:]):,} positions",
            *_affine_lines(c, self.affine, self.bias, str(c)),
        ]
        if self.track_running_stats:
            lines.append(f"buffers: running mean {c} + running var {c} + num_batches_tracked 1 = {2 * c + 1}")
            if prod(inputs[0][1:]) == 1:
                lines.append(
                    "a single position: eval mode only (normalised by the running statistics); "
                    "PyTorch refuses it in training"
                )
        return lines

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        # F.instance_norm runs batch norm on a [1, N*C, ...] view: per sample a mean and 1/std per
        # channel, and its own copies (repeat) of gamma and of the running statistics
        c = inputs[0][0]
        copies = (c if self.affine else 0) + (2 * c if self.track_running_stats else 0)
        return Saved(input=True, elements=2 * c + copies)

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        rank = spatial_rank(inputs[0], self.kind)
        kwargs = {
            "num_features": inputs[0][0],
            "eps": self.eps,
            "momentum": self.momentum,
            "affine": self.affine,
            "track_running_stats": self.track_running_stats,
            "bias": self.bias,
        }
        defaults = {"eps": 1e-5, "momentum": 0.1, "affine": False, "track_running_stats": False, "bias": True}
        return TorchModule(f"InstanceNorm{rank}d", kwargs, defaults=defaults, positional=1)
