"""Every architecture and random layer settings, built in PyTorch: shapes, parameters, buffers
and MACs must equal cnncalc's, row by row. Skipped where torch is not installed."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnncalc
from cnncalc.analysis import analyze
from cnncalc.errors import CnncalcError
from cnncalc.library import builtin_names
from cnncalc.spec import parse_text

torch = pytest.importorskip("torch")
from cnncalc.torch_bridge import build, flop_counts, leaf_modules, parameter_counts, traced_shapes  # noqa: E402

# Small inputs where the architecture allows, to keep CI fast; 224x224 where the classifier needs it.
SMALL_INPUT = {
    "googlenet": [3, 224, 224],
    # segmentation: 64x64 keeps every size valid (the dilated backbone's output is 8x8); the valid
    # U-Net's smallest input is 188x188 (4x4 out), the padded one's sides multiples of 16
    "fcn_resnet50": [3, 64, 64],
    "fcn_resnet101": [3, 64, 64],
    "deeplabv3_resnet50": [3, 64, 64],
    "deeplabv3_resnet101": [3, 64, 64],
    "unet": [1, 188, 188],
    "unet_padded": [1, 64, 64],
    # ConvNeXt: 4x4/4 stem and three 2x2/2 downsamplings, so 64x64 leaves 2x2 in the last stage
    "convnext_tiny": [3, 64, 64],
    "convnext_small": [3, 64, 64],
    "convnext_base": [3, 64, 64],
    "convnext_large": [3, 64, 64],
}
# RegNet at 64x64: the trunk strides 32 in all, so its last stage still gets 2x2 (the zoo test checks 224x224)
REGNET_SIZES = ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf")
SMALL_INPUT |= {f"regnet_{xy}_{size}": [3, 64, 64] for xy in "xy" for size in REGNET_SIZES}
# MNASNet and ShuffleNetV2 halve the size five times: 64x64 ends their last stage at 2x2
SMALL_INPUT.update(dict.fromkeys(["mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3", "shufflenet_v2_x0_5",
                                  "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0"], [3, 64, 64]))  # fmt: skip
# the MobileNetV3 segmentation models at 64x64 (trunk 4x4 at output stride 16, ASPP's dilation 36 padded to fit)
SMALL_INPUT |= {name: [3, 64, 64] for name in ("deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large")}
# the EfficientNets at their own sizes (224 to 600) make the CPU tests slow; at 64x64 every layer
# still has a valid size (the last stages run at 2x2)
SMALL_INPUT |= {
    f"efficientnet_{size}": [3, 64, 64]
    for size in ("b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "v2_s", "v2_m", "v2_l")
}


def check_against_torch(graph, input_shape=None):
    report = analyze(graph, input_shape=input_shape)
    model = build(graph, input_shape).eval()
    x = torch.randn(1, *report.input_shape)
    shapes = traced_shapes(model, x)
    flops = flop_counts(model, x)
    leaves = leaf_modules(model)
    assert [n for n in leaves] == [r.name for r in report.rows[1:]]  # named_modules() match the rows
    for row in report.rows[1:]:
        assert shapes[row.name] == row.output_shape, row.name
        assert parameter_counts(leaves[row.name]) == (row.weights, row.biases, row.buffers), row.name
        assert flops.get(row.name, 0) == 2 * row.macs, row.name
    total_params = sum(p.numel() for p in model.parameters())
    assert total_params == report.totals.params
    assert sum(b.numel() for b in model.buffers()) == report.totals.buffers


@pytest.mark.parametrize("name", builtin_names())
def test_architecture_against_torch(name):
    check_against_torch(cnncalc.load(name), SMALL_INPUT.get(name))


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
        item = (f"{kind}: {{out: {out}, kernel: {kernel}, stride: {stride}, padding: {padding}, dilation: {dilation}, "
                f"groups: {groups}, bias: {str(draw(st.booleans())).lower()}{extra}}}")  # fmt: skip
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


@settings(max_examples=30, deadline=None)
@given(small_graph())
def test_random_small_graphs_against_torch(text):
    check_against_torch(parse_text(text))
