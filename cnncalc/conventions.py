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
from .graph import Graph
from .layers import Layer, Shape


class Convention(str, Enum):
    CNNCALC = "cnncalc"
    FLOPCOUNTER = "flopcounter"
    FVCORE = "fvcore"
    TORCHINFO = "torchinfo"

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
}

Rule = Callable[[Layer, Sequence[Shape], Shape], int]


def _macs(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    return layer.macs(inputs, output)


def _fvcore_batchnorm(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    # fvcore's batchnorm_flop_jit at inference: numel x (2 if affine else 1)
    return math.prod(inputs[0]) * (2 if getattr(layer, "affine", True) else 1)


def _fvcore_adaptive_avg(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    # elementwise_flop_counter(1, 0) is registered for aten::adaptive_avg_pool2d only
    return math.prod(inputs[0]) if len(inputs[0]) == 3 else 0


def _torchinfo(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    params = layer.weights(inputs) + layer.biases(inputs)
    if layer.kind in ("conv", "conv_transpose"):
        # "Conv" in the class name: every parameter is used at every output position
        return params * math.prod(output[1:])
    return params


_RULES: Mapping[Convention, Mapping[str, Rule]] = {
    Convention.CNNCALC: {},
    Convention.FLOPCOUNTER: {},
    Convention.FVCORE: {"batchnorm": _fvcore_batchnorm, "adaptive_avgpool": _fvcore_adaptive_avg, "global_avgpool": _fvcore_adaptive_avg},
    Convention.TORCHINFO: {kind: _torchinfo for kind in ("conv", "conv_transpose", "linear", "batchnorm")},
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
