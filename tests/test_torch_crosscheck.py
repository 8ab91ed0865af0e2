"""Every architecture and random layer settings, built in PyTorch: shapes, parameters, buffers
and MACs must equal cnncalc's, row by row. Skipped where torch is not installed."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnncalc
from cnncalc.analysis import analyze
from cnncalc.errors import CnncalcError
from cnncalc.spec import parse_text

torch = pytest.importorskip("torch")
from helpers.builtins import builtin_meta_cases  # noqa: E402
from helpers.strategies import small_graph  # noqa: E402

from cnncalc.torch_bridge import build, leaf_modules, parameter_counts, shapes_and_flops  # noqa: E402


def check_against_torch(graph, input_shape=None, device="cpu"):
    """Row by row against the real modules; on the `meta` device the same modules, parameters,
    hooks and FlopCounterMode, from shapes alone (no memory, no arithmetic)."""
    report = analyze(graph, input_shape=input_shape)
    with torch.device(device):
        model = build(graph, input_shape).eval()
    x = torch.randn(1, *report.input_shape, device=device)
    shapes, flops = shapes_and_flops(model, x)
    leaves = leaf_modules(model)
    assert [n for n in leaves] == [r.name for r in report.rows[1:]]  # named_modules() match the rows
    for row in report.rows[1:]:
        assert shapes[row.name] == row.output_shape, row.name
        assert parameter_counts(leaves[row.name]) == (row.weights, row.biases, row.buffers), row.name
        assert flops.get(row.name, 0) == 2 * row.macs, row.name
    total_params = sum(p.numel() for p in model.parameters())
    assert total_params == report.totals.params
    assert sum(b.numel() for b in model.buffers()) == report.totals.buffers


@pytest.mark.parametrize("name, input_shape, device", builtin_meta_cases())
def test_architecture_against_torch(name, input_shape, device):
    check_against_torch(cnncalc.load(name), input_shape, device)


KERNEL = st.integers(1, 4)


@st.composite
def window_layer(draw):
    """A random convolution or pooling layer on a random 1-D, 2-D or 3-D input."""
    rank = draw(st.integers(1, 3))
    size = [draw(st.integers(1, 12)) for _ in range(rank)]
    channels = draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["conv", "conv_transpose", "maxpool", "avgpool"]))
    kernel = [draw(KERNEL) for _ in range(rank)]
    stride = draw(st.integers(1, 3))
    if kind in ("conv", "conv_transpose"):
        groups = draw(st.sampled_from([g for g in (1, 2, 3) if channels % g == 0]))
        out = groups * draw(st.integers(1, 3))
        dilation = draw(st.integers(1, 2))
        padding = draw(st.integers(0, 2))
        extra = (
            f", output_padding: {draw(st.integers(0, max(stride, dilation) - 1))}" if kind == "conv_transpose" else ""
        )
        item = (
            f"{kind}: {{out: {out}, kernel: {kernel}, stride: {stride}, padding: {padding}, dilation: {dilation}, "
            f"groups: {groups}, bias: {str(draw(st.booleans())).lower()}{extra}}}"
        )
    else:
        padding = draw(st.integers(0, max(kernel)))  # beyond half the kernel: both must refuse
        ceil = str(draw(st.booleans())).lower()
        extra = (
            f", dilation: {draw(st.integers(1, 2))}"
            if kind == "maxpool"
            else f", count_include_pad: {str(draw(st.booleans())).lower()}"
        )
        item = f"{kind}: {{kernel: {kernel}, stride: {stride}, padding: {padding}, ceil_mode: {ceil}{extra}}}"
    return [channels, *size], item


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(window_layer())
def test_random_window_layers_against_torch(case):
    """Random kernel/stride/padding/dilation/groups/ceil_mode in 1-3 D: cnncalc either rejects
    the layer with a message, or agrees with PyTorch exactly."""
    input_shape, item = case
    graph = parse_text(f"input: {input_shape}\nlayers:\n  - {item}\n")
    try:
        analyze(graph)
    except CnncalcError:
        # cnncalc refused it: PyTorch must refuse it too (an error, or an empty output)
        spec = graph.nodes[1].layer.torch_module([tuple(input_shape)])
        try:
            y = getattr(torch.nn, spec.name)(**spec.kwargs)(torch.randn(1, *input_shape))
            accepted = all(s > 0 for s in y.shape)
        except (RuntimeError, ValueError):
            accepted = False
        assert not accepted, f"cnncalc rejected {item} on {input_shape}, PyTorch accepts it"
        return
    check_against_torch(graph)


@settings(max_examples=30, deadline=None)
@given(small_graph())
def test_random_small_graphs_against_torch(text):
    check_against_torch(parse_text(text))
