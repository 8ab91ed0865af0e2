"""`flops --convention`: each tool's count reproduced from the spec, checked against the tool
itself on every built-in architecture and on random small networks."""

import contextlib
import io
from dataclasses import MISSING, fields

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import cnncalc
from cnncalc.analysis import analyze
from cnncalc.conventions import Convention, count
from cnncalc.layers import REGISTRY
from cnncalc.library import builtin_names
from cnncalc.spec import parse_text

torch = pytest.importorskip("torch")
pytest.importorskip("fvcore.nn")
torchinfo = pytest.importorskip("torchinfo")
thop = pytest.importorskip("thop")
ptflops = pytest.importorskip("ptflops")

from test_layers import LAYER_TABLE, MERGE_ROWS, MERGE_TABLE, ROWS, one_layer  # noqa: E402
from test_torch_crosscheck import SMALL_INPUT, small_graph  # noqa: E402

from cnncalc.torch_bridge import fvcore_counts  # noqa: E402


def thop_total(model, x):
    with contextlib.redirect_stdout(io.StringIO()):
        total, _ = thop.profile(model, inputs=(x,), verbose=False)
    assert total == int(total)
    return int(total)


def ptflops_total(model, input_shape):
    """ptflops' default (pytorch) backend; it prints and returns None on any failure."""
    with contextlib.redirect_stdout(io.StringIO()):
        total, _ = ptflops.get_model_complexity_info(model, tuple(input_shape), as_strings=False,
                                                     print_per_layer_stat=False, verbose=False)  # fmt: skip
    assert total is not None
    return total


def check(graph, input_shape=None):
    report = analyze(graph, input_shape=input_shape)
    model = graph.to_torch(input_shape).eval()
    x = torch.randn(1, *report.input_shape)
    by_module = fvcore_counts(model, x)
    ours = count(graph, report, Convention.FVCORE)
    assert ours.total == by_module[""]
    per_module: dict[str, int] = {}  # a `call:` row counts toward the module it runs again
    calls = {node.name: node.calls for node in graph.nodes if node.calls}
    for name, value in ours.rows.items():
        per_module[calls.get(name, name)] = per_module.get(calls.get(name, name), 0) + value
    modules = dict(model.named_modules())
    for name, value in per_module.items():  # a row held as a parameter (layer scale) is no module of fvcore's
        assert value == (by_module[name] if name in modules else by_module.get(name, 0)), name
    assert (
        count(graph, report, Convention.TORCHINFO).total
        == torchinfo.summary(model, input_data=x, verbose=0).total_mult_adds
    )
    assert count(graph, report, Convention.FLOPCOUNTER).total == 2 * report.totals.macs
    assert count(graph, report, Convention.THOP).total == thop_total(model, x)
    assert count(graph, report, Convention.PTFLOPS).total == ptflops_total(model, report.input_shape)
    assert count(graph, report, Convention.CNNCALC).total == report.totals.macs


@pytest.mark.parametrize("name", builtin_names())
def test_architecture_conventions(name):
    check(cnncalc.load(name), SMALL_INPUT.get(name))


# a traced row credits every tool with the FLOPs torch.utils.flop_counter measured for the user's op
# (docs/import.md); its bridge module is a stand-in that runs no such op for the tools to count
MEASURED = {"traced"}


@pytest.mark.parametrize(
    "kind, item, shape_in", [(kind, item, shape_in) for kind, item, shape_in, *_ in ROWS if kind not in MEASURED]
)
def test_every_layer_row_against_every_tool(kind, item, shape_in):
    """Each row of the layer table, alone, counted by every convention's rule and by its tool:
    a new layer type's test row checks its counting rules."""
    if "track_running_stats: false" in item and len(shape_in) == 1:
        pytest.skip("batch statistics of one flat sample: PyTorch refuses them, and the tools run batch 1")
    check(one_layer(item, shape_in))


@pytest.mark.parametrize("kind, layers, shape_in", [row[:3] for row in MERGE_ROWS])
def test_every_merge_row_against_every_tool(kind, layers, shape_in):
    check(parse_text(f"input: {shape_in}\nlayers:\n" + "\n".join("  " + line for line in layers.split("\n"))))


MIXED = """
input: [3, 32, 32]
layers:
  - conv: {out: 16, kernel: 3, padding: 1}
  - batchnorm
  - relu
  - maxpool: 2
  - residual:
      body:
        - conv: {out: 16, kernel: 3, padding: 1, groups: 16, bias: false}
        - batchnorm: {affine: false}
        - conv: {out: 16, kernel: 1}
  - avgpool: 2
  - conv_transpose: {out: 8, kernel: 2, stride: 2}
  - global_avgpool
  - flatten
  - linear: 10
"""


def test_small_mixed_network():
    """The issue's example: conv, batch norm, ReLU, pooling, a residual add, a depthwise conv, linear."""
    check(parse_text(MIXED))


@settings(max_examples=25, deadline=None)
@given(small_graph())
def test_random_small_graphs(text):
    check(parse_text(text))


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
    if kind in ("sum", "mean"):  # over a spatial axis, kept as 1: the rank stays
        return f"{kind}: {{dim: {ints(2, rank + 1)}, keepdim: true}}", channels
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
    lines = []
    for kind in draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4)):
        text, channels = _layer(draw, kind, channels or 1, rank)
        lines.append(f"  - {text}")
    lines += [
        "  - flatten",
        f"  - linear: {{out: {draw(st.integers(1, 5))}, bias: {str(draw(st.booleans())).lower()}}}",
    ]
    return f"input: [{first}, {', '.join(map(str, sizes))}]\nlayers:\n" + "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(every_kind_chain())
def test_random_chains_of_every_layer_type(text):
    """Every convention against its tool on random layers of every type (the tools' own rules
    for pooling, norms and activations are where they disagree)."""
    graph = analysable(text)
    check(graph)


def test_the_random_chains_cover_every_layer_type():
    """Every one-input type is drawn, and written so that it parses (a type with required
    arguments and no random settings in `_layer` is written as its first test row)."""
    assert (
        "conv" in KINDS
        and "relu" in KINDS
        and set(REGISTRY) - set(KINDS) == {"flatten", "linear", *MERGE_TABLE} - {"center_crop"}
    )
    for kind in KINDS:
        assert parse_text(f"input: [4, 8, 8]\nlayers:\n  - {_written(kind)}\n").nodes[1].kind == kind


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


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(group_b_chain())
def test_random_chains_of_group_b_types(text):
    graph = analysable(text)
    check(graph)


# group A (issue 10)
def test_convnext_block_against_every_tool():
    """ConvNeXt's block (layer scale a bare parameter of the block, linears channels-last)."""
    from test_layers import CNBLOCK

    check(parse_text(CNBLOCK))


# end of group A
