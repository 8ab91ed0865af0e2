"""What other tools count: the conventions, and the counting rules layer types are made of.

Every layer type carries `counts`, one rule per `Convention` (see `rules`): what a row of that
type is worth to that tool, the way the tools key their handlers by operator. This module knows
no layer type; the rules that only one type uses live with that type. Torch-free, and below
`layers.base`, so both the layer types and `cnncalc.analysis.conventions` can import it.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

if TYPE_CHECKING:
    from .base import Layer, Shape


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
    Convention.CNNCALC: "MACs of conv, transposed conv, linear and matmul layers; bias adds, norms, activations, pooling and adds not counted",
    Convention.FLOPCOUNTER: "torch.utils.flop_counter: FLOPs = 2 x MACs of conv, transposed conv and matrix products; nothing else",
    Convention.FVCORE: "fvcore FlopCountAnalysis (eval): 1 per MAC of conv/linear/matmul, batch norm 2 per element (1 without affine; "
    "5 and 4 with batch statistics), layer, group and instance norm 5 per element (4 without affine), "
    "adaptive_avg_pool2d 1 per input element; activations, max/avg pooling, adds, 1-D/3-D adaptive pooling and convolutions "
    "with padding 'same' or 'valid' (aten::_convolution_mode) skipped",
    Convention.TORCHINFO: "torchinfo 'mult-adds': for Conv modules (transposed too) (weights + biases) x output positions, "
    "for every other module with parameters (linear, batch norm) its weights + biases; nothing without parameters",
    Convention.THOP: "thop (ultralytics-thop 2.2) profile: MACs of conv, transposed conv, linear and matmul; batch norm 4 per element "
    "(2 without affine); average pooling (adaptive too) 1 per input each window sums + 1 per output; softmax 3n - 1 per "
    "row along its dim; activations, max pooling and LRN 0",
    Convention.PTFLOPS: "ptflops 0.7.5 (pytorch backend): MACs (torch.matmul too) plus one per bias and output; ReLU, ELU and GELU 2 per element, "
    "every pooling 2 per input element (its module hook and its patched functional call both count), LeakyReLU, SiLU "
    "and softmax 1, batch norm 2 per element (1 without affine), LRN 3 per element + its padded window sum; sigmoid, tanh 0",
}

# A rule: (layer, input shapes, output shape) -> what the tool counts for it, per sample. The layer is
# `Any`: a rule is declared on one type's `counts` and reads that type's fields (a Callable taking
# `Layer` would refuse a rule written for `Conv`, as parameters are contravariant). The count is an
# integer but for ptflops' interpolate hook, which can make a fraction (see conventions.Counted).
Rule = Callable[[Any, Sequence["Shape"], "Shape"], "int | float"]


def macs(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    """The layer's own MACs (0 for a layer without any)."""
    return layer.macs(inputs, output)


def nothing(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    return 0


def per_element(n: int, affine_times: int = 1) -> Rule:
    """`n` per input element (times `affine_times` for a norm with gamma and beta)."""

    def rule(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
        return n * math.prod(inputs[0]) * (affine_times if getattr(layer, "affine", False) else 1)

    return rule


def parameters(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    """torchinfo for a module with parameters that is not a Conv: its weights + biases."""
    return layer.weights(inputs) + layer.biases(inputs)


def parameters_per_position(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    """torchinfo for "Conv" in the class name: every parameter is used at every output position."""
    return parameters(layer, inputs, output) * math.prod(output[1:])


def macs_and_bias(layer: Layer, inputs: Sequence[Shape], output: Shape) -> int:
    """ptflops' conv and linear hooks: the MACs, plus one per output for the bias add."""
    return layer.macs(inputs, output) + (math.prod(output) if getattr(layer, "bias", False) else 0)


# What a tool counts for a layer type that does not name it: its MACs (0 for a layer without
# any), except torchinfo, which counts parameters, so nothing for a type without them.
# What each convention counts for a layer type that does not say: written out one by one, never
# derived, so that a new convention must decide it (and then each type whose count differs says so
# in its `counts`). A convention missing here makes every type definition raise (see `rules`).
DEFAULT_RULES: Mapping[Convention, Rule] = {
    Convention.CNNCALC: macs,
    Convention.FLOPCOUNTER: macs,
    Convention.FVCORE: macs,
    Convention.TORCHINFO: nothing,
    Convention.THOP: macs,
    Convention.PTFLOPS: macs,
}


def rules(**by_convention: Rule) -> Mapping[Convention, Rule]:
    """A layer type's `counts`: the rules given by convention name (`ptflops=per_element(2)`),
    `DEFAULT_RULES` for the others. An unknown convention name, or a convention that neither the
    type nor DEFAULT_RULES answers, raises when the type is defined: no type counts 0 by omission."""
    named = {Convention(name): rule for name, rule in by_convention.items()}
    unanswered = [c.value for c in Convention if c not in named and c not in DEFAULT_RULES]
    if unanswered:
        raise TypeError(
            f"no counting rule for {', '.join(unanswered)}: give the type one, or the convention a default in DEFAULT_RULES"
        )
    return {c: named[c] if c in named else DEFAULT_RULES[c] for c in Convention}
