"""Random spec texts the property tests share: hypothesis strategies that draw small networks
and layers of every registered type (tests/test_conventions.py, test_export.py, test_memory.py,
test_torch_crosscheck.py). Free of torch, so that importing them skips nothing."""

from dataclasses import MISSING, fields

from hypothesis import assume
from hypothesis import strategies as st
from test_layers import LAYER_TABLE

import cnncalc
from cnncalc.analysis import analyze
from cnncalc.layers import REGISTRY
from cnncalc.spec import parse_text


@st.composite
def small_graph(draw):
    """A random chain with a residual and a parallel block in it."""
    c = draw(st.integers(1, 4))
    width = draw(st.integers(2, 6))
    mid = draw(st.integers(1, 5))
    return f"""
input: [{c}, {draw(st.integers(6, 12))}, {draw(st.integers(6, 12))}]
layers:
  - conv: {{out: {width}, kernel: 3, padding: 1}}
  - residual:
      body:
        - conv: {{out: {mid}, kernel: 1}}
        - batchnorm
        - relu
        - conv: {{out: {width}, kernel: 3, padding: 1}}
  - parallel:
      branches:
        - [conv: {{out: {draw(st.integers(1, 4))}, kernel: 1}}]
        - [maxpool: {{kernel: 3, stride: 1, padding: 1}}, conv: {{out: {draw(st.integers(1, 4))}, kernel: 1}}]
  - maxpool: {{kernel: 2, ceil_mode: {str(draw(st.booleans())).lower()}}}
  - global_avgpool
  - flatten
  - linear: {draw(st.integers(1, 10))}
"""


def _layer(draw, kind, channels, rank=2):
    """One random layer of `kind` as spec text, and its output channel count."""
    ints = lambda lo, hi: draw(st.integers(lo, hi))  # noqa: E731
    flag = lambda: str(draw(st.booleans())).lower()  # noqa: E731
    if kind == "conv":
        groups = draw(st.sampled_from([g for g in (1, 2, 3) if channels % g == 0]))
        out = groups * ints(1, 3)
        return (
            f"conv: {{out: {out}, kernel: {ints(1, 3)}, stride: {ints(1, 2)}, padding: {ints(0, 1)}, dilation: {ints(1, 2)}, groups: {groups}, bias: {flag()}}}",
            out,
        )
    if kind == "conv_transpose":
        groups = draw(st.sampled_from([g for g in (1, 2) if channels % g == 0]))
        out = groups * ints(1, 3)
        return (
            f"conv_transpose: {{out: {out}, kernel: {ints(1, 3)}, stride: {ints(1, 2)}, groups: {groups}, bias: {flag()}}}",
            out,
        )
    if kind in ("maxpool", "avgpool"):
        kernel = ints(1, 3)
        extra = f", count_include_pad: {flag()}" if kind == "avgpool" else ""
        return (
            f"{kind}: {{kernel: {kernel}, stride: {ints(1, 2)}, padding: {ints(0, kernel // 2)}, ceil_mode: {flag()}{extra}}}",
            channels,
        )
    if kind in ("adaptive_avgpool", "adaptive_maxpool"):
        return f"{kind}: {ints(1, 5)}", channels
    if kind == "batchnorm":
        return f"batchnorm: {{affine: {flag()}}}", channels
    if kind == "lrn":
        return f"lrn: {ints(1, 5)}", channels
    # group B (issue 10)
    if kind == "upsample":
        mode = draw(st.sampled_from(["nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear"]))
        corners = (
            f", align_corners: {flag()}" if mode not in ("nearest", "nearest-exact") and draw(st.booleans()) else ""
        )
        how = draw(
            st.sampled_from([f"scale_factor: {draw(st.sampled_from([1, 2, 1.5, 0.5, 2.25]))}", f"size: {ints(1, 7)}"])
        )
        return f"upsample: {{{how}, mode: {mode}{corners}}}", channels
    if kind in ("pixel_shuffle", "pixel_unshuffle"):
        factor = ints(1, 2)
        return f"{kind}: {factor}", channels // factor**2 if kind == "pixel_shuffle" else channels * factor**2
    if kind == "channel_shuffle":
        return f"channel_shuffle: {draw(st.sampled_from([g for g in (1, 2, 3) if channels % g == 0]))}", channels
    if kind in ("pad", "zero_pad"):
        amounts = draw(
            st.one_of(
                st.integers(0, 2), st.lists(st.integers(0, 2), min_size=2, max_size=6).filter(lambda v: len(v) % 2 == 0)
            )
        )
        if kind == "zero_pad":
            return f"zero_pad: {amounts}", channels
        mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
        value = f", value: {draw(st.sampled_from([0, 1.5]))}" if mode == "constant" else ""
        return f"pad: {{padding: {amounts}, mode: {mode}{value}}}", channels
    if kind == "center_crop":
        return f"center_crop: {ints(1, 5)}", channels
    if kind == "crop":
        return (
            f"crop: {draw(st.one_of(st.integers(0, 2), st.lists(st.integers(0, 2), min_size=2, max_size=6).filter(lambda v: len(v) % 2 == 0)))}",
            channels,
        )
    # group A (issue 10)
    if kind == "prelu":
        return f"prelu: {{num_parameters: {draw(st.sampled_from([1, channels]))}}}", channels
    if kind == "softplus":
        return f"softplus: {{beta: {draw(st.sampled_from([0.5, 1, 2]))}, threshold: {ints(1, 20)}}}", channels
    if kind == "layernorm":
        over = draw(st.sampled_from(["channels", 1, 2]))
        return f"layernorm: {{over: {over}, affine: {flag()}, bias: {flag()}}}", channels
    if kind == "groupnorm":
        return (
            f"groupnorm: {{groups: {draw(st.sampled_from([g for g in (1, 2, 3) if channels % g == 0]))}, affine: {flag()}}}",
            channels,
        )
    if kind == "instancenorm":
        return f"instancenorm: {{affine: {flag()}, track_running_stats: {flag()}, bias: {flag()}}}", channels
    if kind == "stochastic_depth":
        return (
            f"stochastic_depth: {{p: {draw(st.sampled_from([0, 0.2, 0.5, 1]))}, mode: {draw(st.sampled_from(['row', 'batch']))}}}",
            channels,
        )
    if kind == "layer_scale":
        return f"layer_scale: {draw(st.sampled_from([1e-6, 0.5]))}", channels
    if kind == "permute":
        # a permutation and its inverse, so that the channel counts drawn after it still hold (a
        # permute of its own: tests/test_memory.py's layout chains); CNBLOCK tests the faithful use
        dims = [0, *draw(st.permutations(range(1, rank + 2)))]
        inverse = [dims.index(axis) for axis in range(rank + 2)]
        return f"permute: {dims}\n  - permute: {inverse}", channels
    # end of group A
    # issue 18: views, reshapes and slices, which the random chains put after permutes and crops
    if kind == "reshape":  # the positions as one axis: a view or a copy, as the strides say
        return f"reshape: [{channels}, -1]", channels
    if kind == "slice":
        dim = ints(1, rank + 1)
        step, begin = ints(1, 2), ints(0, 1)
        return f"slice: {{dim: {dim}, begin: {begin}, step: {step}}}", (
            len(range(begin, channels, step)) if dim == 1 else channels
        )
    if kind in ("squeeze", "unsqueeze"):  # an axis in and out again, so later layers see the rank drawn
        dim = ints(2, rank + 1)
        return f"unsqueeze: {dim}\n  - squeeze: {dim}", channels
    if kind == "scalar":
        op = draw(st.sampled_from(["add", "sub", "mul", "div", "rsub"]))
        return f"scalar: {{op: {op}, value: {draw(st.sampled_from([0.17, 3, -2]))}}}", channels
    if kind == "expand":  # one channel repeated (a stride-0 view), else every axis kept
        out = draw(st.integers(1, 4)) if channels == 1 else -1
        return f"expand: [{', '.join([str(out)] + ['-1'] * rank)}]", channels if out == -1 else out
    if kind in ("sum", "mean", "max"):  # over a spatial axis, kept as 1: the rank stays
        return f"{kind}: {{dim: {ints(2, rank + 1)}, keepdim: true}}", channels
    if kind == "normalize":
        return f"normalize: {{dim: {ints(1, rank + 1)}, p: {draw(st.sampled_from([1, 2, 3]))}}}", channels
    if kind == "vector_norm":  # over a spatial axis, kept as 1: the rank stays
        return f"vector_norm: {{dim: {ints(2, rank + 1)}, p: {draw(st.sampled_from([1, 2]))}, keepdim: true}}", channels
    if kind == "repeat":  # the channels tiled
        times = ints(1, 2)
        return f"repeat: {[times] + [1] * rank}", channels * times
    if kind == "sine_position" and rank == 2:
        features = 2 * ints(1, 3)
        return (
            f"sine_position: {{features: {features}, temperature: {draw(st.sampled_from([10000, 20]))}}}",
            2 * features,
        )
    if kind == "class_token":  # on the positions as one axis: the channels are its tokens, one more
        return f"reshape: [{channels}, -1]\n  - class_token: {{init: 0.5}}", channels + 1
    return _written(kind), channels


def _written(kind):
    """A type without random settings above: bare (its defaults), or, where it has required
    arguments, as its first row in the layer table."""
    if not any(f.default is MISSING for f in fields(REGISTRY[kind])):
        return kind
    return LAYER_TABLE[kind][0][0]


# Every type that can take one input (center_crop's `like` is a second, optional one) but the two
# that end each chain; `_layer` draws random settings for the
# types it knows, and writes any other type bare (with its defaults).
KINDS = [kind for kind, cls in REGISTRY.items() if cls.min_inputs == 1 and kind not in ("flatten", "linear")]


def analysable(text):
    """The graph of a drawn spec, or the draw discarded where cnncalc refuses it (a window larger
    than what is left of the input, say): the random tests compare only what cnncalc accepts."""
    try:
        graph = parse_text(text)
        analyze(graph)
    except cnncalc.CnncalcError:
        assume(False)
    return graph


@st.composite
def every_kind_chain(draw):
    """A chain of 1-4 random layers of any type on a 1-D, 2-D or 3-D input, then flatten and linear."""
    rank = draw(st.integers(1, 3))
    channels = first = draw(st.integers(1, 4))
    sizes = [draw(st.integers(5, 9 if rank < 3 else 6)) for _ in range(rank)]
    lines, viewed = [], False
    for kind in draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4)):
        if kind == "lrn" and viewed:
            # F.local_response_norm views its input, which the layout an unfold or permute left may
            # refuse (PyTorch's error), also through the element-wise layers after it that keep it
            continue
        text, channels = _layer(draw, kind, channels or 1, rank)
        lines.append(f"  - {text}")
        viewed = viewed or kind in ("unfold", "permute")
    lines += [
        "  - flatten",
        f"  - linear: {{out: {draw(st.integers(1, 5))}, bias: {str(draw(st.booleans())).lower()}}}",
    ]
    return f"input: [{first}, {', '.join(map(str, sizes))}]\nlayers:\n" + "\n".join(lines) + "\n"


# group B (issue 10): the random chains above draw each new type a few times among the others;
# these draw only them, on 2-D inputs whose channels the shuffles can divide.
GROUP_B = ["upsample", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "pad", "zero_pad", "center_crop", "crop"]


@st.composite
def group_b_chain(draw):
    channels = first = draw(st.sampled_from([4, 8, 12, 16]))
    sizes = [draw(st.integers(4, 9)) for _ in range(2)]
    lines = []
    for kind in draw(st.lists(st.sampled_from(GROUP_B), min_size=1, max_size=3)):
        text, channels = _layer(draw, kind, channels)
        lines.append(f"  - {text}")
    lines += ["  - flatten", f"  - linear: {draw(st.integers(1, 3))}"]
    return f"input: [{first}, {', '.join(map(str, sizes))}]\nlayers:\n" + "\n".join(lines) + "\n"
