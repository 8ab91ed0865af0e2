"""`flops --convention`: each tool's count reproduced from the spec, checked against the tool
itself on every built-in architecture and on random small networks."""

import contextlib
import io
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import cnncalc
from cnncalc.analysis import Report, analyze
from cnncalc.analysis.conventions import Convention, count
from cnncalc.layers import REGISTRY
from cnncalc.spec import parse_text

torch = pytest.importorskip("torch")

from helpers.builtins import builtin_cases  # noqa: E402
from helpers.strategies import KINDS, _written, analysable, every_kind_chain, group_b_chain, small_graph  # noqa: E402
from helpers.tools import needs, optional  # noqa: E402
from test_layers import MERGE_ROWS, MERGE_TABLE, ROWS, one_layer  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from cnncalc import to_torch  # noqa: E402
from cnncalc.records import record  # noqa: E402
from cnncalc.torch_bridge import fvcore_counts  # noqa: E402

torchinfo, thop, ptflops = optional("torchinfo"), optional("thop"), optional("ptflops")
# the tests that run the tools skip without them; the one that checks the strategies runs anyway
needs_the_tools = needs("fvcore", "torchinfo", "thop", "ptflops")


def thop_total(model, x):
    with contextlib.redirect_stdout(io.StringIO()):
        total, _ = thop.profile(model, inputs=(x,), verbose=False)
    assert total == int(total)
    return int(total)


def ptflops_total(model, input_shape):
    """ptflops' default (pytorch) backend; it prints and returns None on any failure."""
    with contextlib.redirect_stdout(io.StringIO()):
        total, _ = ptflops.get_model_complexity_info(
            model, tuple(input_shape), as_strings=False, print_per_layer_stat=False, verbose=False
        )
    assert total is not None
    return total


def flop_counter_total(model, x):
    """torch.utils.flop_counter's FLOPs of one forward pass (it counts on the meta device too), with
    attention unfused: FlopCounterMode has no formula for the CPU's fused kernel, and counts the
    math path's two matrix products (as tests/test_differential.py runs it)."""
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


@record
class Run:
    """One network run by the tools: the model and input on the CPU, and where `check` says so
    the same on the meta device for the tools that count from shapes alone."""

    report: Report
    model: Any
    x: Any
    shapes_model: Any
    shapes_x: Any
    by_module: dict  # fvcore's count per module name ("" the whole model)
    flop_counter: int  # FlopCounterMode's FLOPs of the shapes model, read by two conventions


# Each convention's total as its own tool measures it. cnncalc's is the MACs, which are
# FlopCounterMode's FLOPs halved (tests/test_differential.py checks that layer by layer), so both
# read FlopCounterMode. A convention without an entry here fails
# test_every_convention_is_checked_against_its_tool: no convention goes unchecked.
TOOL_TOTALS = {
    Convention.CNNCALC: lambda run: run.flop_counter // 2,
    Convention.FLOPCOUNTER: lambda run: run.flop_counter,
    Convention.FVCORE: lambda run: run.by_module[""],
    Convention.TORCHINFO: lambda run: (
        torchinfo.summary(run.shapes_model, input_data=run.shapes_x, verbose=0).total_mult_adds
    ),
    Convention.THOP: lambda run: thop_total(run.shapes_model, run.shapes_x),
    Convention.PTFLOPS: lambda run: ptflops_total(run.model, run.report.input_shape),
}


def test_every_convention_is_checked_against_its_tool():
    """A new convention must say how its tool measures a network before `check` can pass: with
    every layer type's test row run through `check`, no type's rule for it goes untested."""
    assert set(TOOL_TOTALS) == set(Convention)


def check(graph, input_shape=None, shapes_on="cpu"):
    """Every convention against its tool. fvcore (its jit trace) and ptflops (its patched
    functions) run only on real tensors; torchinfo, thop and FlopCounterMode count from shapes, so
    `shapes_on="meta"` runs them on the meta device (no memory, no arithmetic: the full-size
    built-ins)."""
    report = analyze(graph, input_shape=input_shape)
    model = to_torch(graph, input_shape).eval()
    x = torch.randn(1, *report.input_shape)
    if shapes_on == "cpu":
        shapes_model, shapes_x = model, x
    else:
        with torch.device(shapes_on):
            shapes_model = to_torch(graph, input_shape).eval()
        shapes_x = torch.randn(1, *report.input_shape, device=shapes_on)
    flops = flop_counter_total(shapes_model, shapes_x)
    run = Run(report, model, x, shapes_model, shapes_x, fvcore_counts(model, x), flops)
    ours = count(graph, report, Convention.FVCORE)
    per_module: dict[str, int] = {}  # a `call:` row counts toward the module it runs again
    calls = {node.name: node.calls for node in graph.nodes if node.calls}
    for name, value in ours.rows.items():
        per_module[calls.get(name, name)] = per_module.get(calls.get(name, name), 0) + value
    modules = dict(model.named_modules())
    for name, value in per_module.items():
        if name in modules:
            assert value == run.by_module[name], name
        else:  # a row held as a parent's parameter (layer scale, x @ p) is no module of fvcore's: what it
            # counts is its parent's, in the totals checked below
            assert run.by_module.get(name, 0) == 0, name
    for convention, measure in TOOL_TOTALS.items():
        assert count(graph, report, convention).total == measure(run), convention.value


@needs_the_tools
@pytest.mark.parametrize("name, input_shape", builtin_cases())
def test_architecture_conventions(name, input_shape, request):
    # the full-size run counts torchinfo's and thop's on the meta device; the quick one all on the CPU
    full = request.node.get_closest_marker("full") is not None
    check(cnncalc.load(name), input_shape, shapes_on="meta" if full else "cpu")


# a traced row credits every tool with the FLOPs torch.utils.flop_counter measured for the user's op
# (docs/import.md); its bridge module is a stand-in that runs no such op for the tools to count
MEASURED = {"traced"}


@needs_the_tools
@pytest.mark.parametrize(
    "kind, item, shape_in", [(kind, item, shape_in) for kind, item, shape_in, *_ in ROWS if kind not in MEASURED]
)
def test_every_layer_row_against_every_tool(kind, item, shape_in):
    """Each row of the layer table, alone, counted by every convention's rule and by its tool:
    a new layer type's test row checks its counting rules."""
    if "track_running_stats: false" in item and len(shape_in) == 1:
        pytest.skip("batch statistics of one flat sample: PyTorch refuses them, and the tools run batch 1")
    check(one_layer(item, shape_in))


@needs_the_tools
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


@needs_the_tools
def test_small_mixed_network():
    """The issue's example: conv, batch norm, ReLU, pooling, a residual add, a depthwise conv, linear."""
    check(parse_text(MIXED))


@needs_the_tools
@settings(max_examples=25, deadline=None)
@given(small_graph())
def test_random_small_graphs(text):
    check(parse_text(text))


@needs_the_tools
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


@needs_the_tools
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(group_b_chain())
def test_random_chains_of_group_b_types(text):
    graph = analysable(text)
    check(graph)


# group A (issue 10)
@needs_the_tools
def test_convnext_block_against_every_tool():
    """ConvNeXt's block (layer scale a bare parameter of the block, linears channels-last)."""
    from test_layers import CNBLOCK

    check(parse_text(CNBLOCK))


# end of group A
