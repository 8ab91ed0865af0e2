"""What other tools count, reproduced from the spec alone: `cnncalc flops --convention NAME`.

No two counters agree. Each convention below is a table keyed by layer type, the way the tools
themselves key their handlers by operator: what a row of that type is worth to that tool. Layer
types a table does not name are worth their MACs (conv, transposed conv, linear) or nothing.
Each table is tested against the real tool on every built-in architecture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Mapping, Sequence

from .analysis import Report
from .geometry import adaptive_covered, covered
from .graph import Graph
from .layers import Layer, Shape


class Convention(str, Enum):
    CNNCALC = "cnncalc"
    FLOPCOUNTER = "flopcounter"
    FVCORE = "fvcore"
    TORCHINFO = "torchinfo"
    THOP = "thop"
    PTFLOPS = "ptflops"

    @property
    def summary(self) -> str:
        return _SUMMARIES[self]


_SUMMARIES = {
    Convention.CNNCALC: "MACs of conv, transposed conv and linear layers; bias adds, norms, activations, pooling and adds not counted",
    Convention.FLOPCOUNTER: "torch.utils.flop_counter: FLOPs = 2 x MACs of conv, transposed conv and matrix products; nothing else",
    Convention.FVCORE: "fvcore FlopCountAnalysis (eval): 1 per MAC of conv/linear, batch norm 2 per element (1 without affine), "
    "adaptive_avg_pool2d 1 per input element; activations, max/avg pooling, adds and 1-D/3-D adaptive pooling skipped",
    Convention.TORCHINFO: "torchinfo 'mult-adds': for Conv modules (transposed too) (weights + biases) x output positions, "
    "for every other module with parameters (linear, batch norm) its weights + biases; nothing without parameters",
    Convention.THOP: "thop (ultralytics-thop 2.2) profile: MACs of conv, transposed conv and linear; batch norm 4 per element "
    "(2 without affine); average pooling (adaptive too) 1 per input each window sums + 1 per output; softmax 3C - 1 per "
    "position; activations, max pooling and LRN 0",
    Convention.PTFLOPS: "ptflops 0.7.5 (pytorch backend): MACs plus one per bias and output; ReLU, ELU and GELU 2 per element, "
    "every pooling 2 per input element (its module hook and its patched functional call both count), LeakyReLU, SiLU "
    "and softmax 1, batch norm 2 per element (1 without affine), LRN 3 per element + its padded window sum; sigmoid, tanh 0",
}

Rule = Callable[[Layer, Sequence[Shape], Shape], int]


def _macs(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    return layer.macs(inputs, output)


def _per_element(n: int, affine_times: int = 1) -> Rule:
    """`n` per input element (times `affine_times` for a batch norm with gamma and beta)."""
    def rule(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
        return n * math.prod(inputs[0]) * (affine_times if getattr(layer, "affine", False) else 1)

    return rule


def _fvcore_adaptive_avg(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    # elementwise_flop_counter(1, 0) is registered for aten::adaptive_avg_pool2d only
    return math.prod(inputs[0]) if len(inputs[0]) == 3 else 0


def _torchinfo(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    params = layer.weights(inputs) + layer.biases(inputs)
    if layer.kind in ("conv", "conv_transpose"):
        # "Conv" in the class name: every parameter is used at every output position
        return params * math.prod(output[1:])
    return params


def _thop_avgpool(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    # count_avgpool: one add per input each window really sums (clipped to the input, or to the
    # padded input with count_include_pad), one divide per output
    windows = layer.windows(inputs[0])  # type: ignore[attr-defined]
    return inputs[0][0] * math.prod(covered(w, layer.count_include_pad) for w in windows) + math.prod(output)  # type: ignore[attr-defined]


def _thop_adaptive_avg(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    # count_adap_avgpool: the same, over PyTorch's adaptive windows
    sums = (adaptive_covered(size, out) for size, out in zip(inputs[0][1:], output[1:]))
    return inputs[0][0] * math.prod(sums) + math.prod(output)


def _thop_softmax(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    # count_softmax over dim 1: (exp + add + div) = 3C - 1 per position
    channels = inputs[0][0]
    return math.prod(inputs[0]) // channels * (3 * channels - 1)


def _ptflops_macs_and_bias(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    return layer.macs(inputs, output) + (math.prod(output) if getattr(layer, "bias", False) else 0)


def _ptflops_lrn(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    # F.local_response_norm: x*x, the window sum (avg_pool over C + size - 1 padded channels),
    # then *alpha and +k: the patched mul, avg_pool and add each count their input's elements
    channels, positions = inputs[0][0], math.prod(inputs[0][1:])
    return 3 * channels * positions + (channels + layer.size - 1) * positions  # type: ignore[attr-defined]


_POOLS = ("maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool", "global_avgpool")

_RULES: Mapping[Convention, Mapping[str, Rule]] = {
    Convention.CNNCALC: {},
    Convention.FLOPCOUNTER: {},
    Convention.FVCORE: {"batchnorm": _per_element(1, affine_times=2), "adaptive_avgpool": _fvcore_adaptive_avg, "global_avgpool": _fvcore_adaptive_avg},
    Convention.TORCHINFO: {kind: _torchinfo for kind in ("conv", "conv_transpose", "linear", "batchnorm")},
    Convention.THOP: {"batchnorm": _per_element(2, affine_times=2), "avgpool": _thop_avgpool,
                      "adaptive_avgpool": _thop_adaptive_avg, "global_avgpool": _thop_adaptive_avg, "softmax": _thop_softmax},
    Convention.PTFLOPS: {
        **{kind: _ptflops_macs_and_bias for kind in ("conv", "conv_transpose", "linear")},
        **{kind: _per_element(2) for kind in ("relu", "elu", "gelu", *_POOLS)},
        **{kind: _per_element(1) for kind in ("leaky_relu", "silu", "softmax")},
        "batchnorm": _per_element(1, affine_times=2),
        "lrn": _ptflops_lrn,
    },
}
_SCALE = {Convention.FLOPCOUNTER: 2}
_DEFAULT: Mapping[Convention, Rule] = {Convention.TORCHINFO: lambda layer, inputs, output: 0}


@dataclass(frozen=True)
class Counted:
    convention: Convention
    rows: Mapping[str, int]  # per row name, one sample
    total: int


def count(graph: Graph, report: Report, convention: Convention) -> Counted:
    """Every row of `report` (uncollapsed, from `graph`) as `convention` counts it, per sample."""
    rules = _RULES[convention]
    default = _DEFAULT.get(convention, _macs)
    scale = _SCALE.get(convention, 1)
    shapes = [row.output_shape for row in report.rows]
    rows: dict[str, int] = {}
    for node, row in zip(graph.nodes[1:], report.rows[1:]):
        assert node.layer is not None and node.name == row.name
        inputs = [shapes[i] for i in node.inputs]
        rule = rules.get(node.kind, default)
        rows[row.name] = scale * rule(node.layer, inputs, row.output_shape)
    return Counted(convention, rows, sum(rows.values()))
