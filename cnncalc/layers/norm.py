"""Normalisation: batch norm and local response norm."""

from __future__ import annotations

import math
from typing import Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, ElementWise, Layer, Saved, Shape, TorchModule, arg, prod, register, spatial_rank
from .counting import Rule, parameters, per_element, rules
from .layout import MemoryFormat


def _fvcore_batchnorm(layer: BatchNorm, inputs: Sequence[Shape], output: Shape) -> int:
    # fvcore's aten::batch_norm handler: at inference 1 per element (2 with gamma and beta); with
    # batch statistics (track_running_stats: false, so even in eval) its norm counter, 4 (5 with affine)
    if not layer.track_running_stats:
        return math.prod(inputs[0]) * (5 if layer.affine else 4)
    return math.prod(inputs[0]) * (2 if layer.affine else 1)


def _by_exact_class(rule: Rule) -> Rule:
    """ptflops hooks modules by exact class: channels_last builds TokenBatchNorm (a BatchNorm1d subclass,
    as PaddedConv2d is a Conv2d one), which it does not count (thop's hooks take subclasses)."""

    def counted(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int | float:
        return 0 if getattr(layer, "channels_last", False) else rule(layer, inputs, output)

    return counted


@register("batchnorm", "batch_norm", "bn", "batchnorm1d", "batchnorm2d", "batchnorm3d")
@record
class BatchNorm(ElementWise):
    summary = "batch normalisation: gamma (weight) and beta (bias) per channel; running mean/var as buffers"
    layout = MemoryFormat.NORM_FORMAT  # contiguous in, contiguous out; else as the input suggests
    # gamma and beta double what fvcore, thop and ptflops count per element
    counts = rules(
        fvcore=_fvcore_batchnorm,
        torchinfo=parameters,
        thop=per_element(2, affine_times=2),
        ptflops=_by_exact_class(per_element(1, affine_times=2)),
    )

    eps: float = arg(1e-5, kind=ArgKind.NUMBER)
    momentum: float | None = arg(0.1, kind=ArgKind.OPTIONAL_NUMBER, doc="null: a cumulative average")
    affine: bool = arg(True, kind=ArgKind.BOOL)
    track_running_stats: bool = arg(True, kind=ArgKind.BOOL)
    channels_last: bool = arg(
        False,
        kind=ArgKind.BOOL,
        doc="the channels on the last axis, every other position a sample (LeViT's bn(x.flatten(0, 1)).reshape_as(x))",
    )

    def channels(self, inputs: Sequence[Shape]) -> int:
        return inputs[0][-1] if self.channels_last else inputs[0][0]

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        if not self.channels_last and len(inputs[0]) > 4:  # BatchNorm1d to 3d: [N, C] to [N, C, D, H, W]
            raise LayerError(
                f"{self.kind} supports 0 to 3 spatial axes (BatchNorm1d, 2d, 3d)",
                received=f"input of shape {list(inputs[0])}",
                expected="[C], [C, L], [C, H, W] or [C, D, H, W]",
                hint="reshape the input first, or normalise its last axis with channels_last: true",
            )
        return inputs[0]

    def weights(self, inputs: Sequence[Shape]) -> int:
        return self.channels(inputs) if self.affine else 0

    def biases(self, inputs: Sequence[Shape]) -> int:
        return self.channels(inputs) if self.affine else 0

    def buffers(self, inputs: Sequence[Shape]) -> int:
        # running_mean [C], running_var [C], num_batches_tracked [] (one int64)
        return 2 * self.channels(inputs) + 1 if self.track_running_stats else 0

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        c = self.channels(inputs)
        lines = ["output = input, normalised per channel"]
        lines.append(f"weights (gamma): {c}; biases (beta): {c}" if self.affine else "no weights (affine: false)")
        if self.track_running_stats:
            lines.append(f"buffers: running mean {c} + running var {c} + num_batches_tracked 1 = {2 * c + 1}")
        return lines

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        return Saved(input=True, fp32_per_batch=2 * self.channels(inputs))  # and save_mean, save_invstd

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        rank = max(1, len(inputs[0]) - 1)  # BatchNorm1d takes [N, C] and [N, C, L]
        kwargs = dict(
            num_features=self.channels(inputs),
            eps=self.eps,
            momentum=self.momentum,
            affine=self.affine,
            track_running_stats=self.track_running_stats,
        )
        defaults = {"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True}
        if self.channels_last:  # a BatchNorm1d over [N * positions, C]: its state_dict keys
            return TorchModule("TokenBatchNorm", kwargs, defaults=defaults, positional=1)
        return TorchModule(f"BatchNorm{rank}d", kwargs, defaults=defaults, positional=1)


def _ptflops_lrn(layer: LocalResponseNorm, inputs: Sequence[Shape], output: Shape) -> int:
    # F.local_response_norm: x*x, the window sum (avg_pool over C + size - 1 padded channels),
    # then *alpha and +k: the patched mul, avg_pool and add each count their input's elements
    channels, positions = inputs[0][0], math.prod(inputs[0][1:])
    return 3 * channels * positions + (channels + layer.size - 1) * positions


@register("lrn", "local_response_norm", "localresponsenorm", "norm")
@record
class LocalResponseNorm(ElementWise):
    summary = "local response normalisation across channels (AlexNet's NORM layers); no parameters"
    shorthand = "size"
    counts = rules(ptflops=_ptflops_lrn)

    size: int = arg(5, kind=ArgKind.POSITIVE, doc="number of neighbouring channels")
    alpha: float = arg(1e-4, kind=ArgKind.NUMBER)
    beta: float = arg(0.75, kind=ArgKind.NUMBER)
    k: float = arg(1.0, kind=ArgKind.NUMBER)

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        spatial_rank(inputs[0], self.kind)  # PyTorch's local_response_norm needs [N, C, ...] with a spatial axis
        return inputs[0]

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        kwargs = {"size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}
        return TorchModule("LocalResponseNorm", kwargs, defaults={"alpha": 1e-4, "beta": 0.75, "k": 1.0}, positional=1)

    # F.local_response_norm is composite: x*x, padded by size - 1 channels, averaged over channel
    # windows, then *alpha + k, ** beta, and x / that.
    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        channels, positions = inputs[0][0], prod(inputs[0][1:])
        padded = (channels + self.size - 1) * positions
        return Saved(input=True, elements=padded + 2 * channels * positions)  # the pool's input, pow's base and result

    def scratch(self, inputs: Sequence[Shape], output: Shape) -> int:
        return 2 * prod(inputs[0])  # at its peak three temporaries of the input's size live, the output not yet
