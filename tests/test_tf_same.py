"""Issue 19, section 3: TensorFlow/Keras's padding='same' at any stride (`padding: tf_same`).

The oracle is TensorFlow's rule, written here on its own (tensorflow/python/ops/nn_ops.py,
`padding='SAME'`): out = ceil(W/S), total = max((out - 1)*S + D(F - 1) + 1 - W, 0), the smaller
half at the start and the odd position at the end (bottom/right); and PyTorch itself, a
convolution after an explicit asymmetric `nn.ZeroPad2d` built in this file, not by the bridge.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnncalc import to_torch
from cnncalc.errors import CnncalcError
from cnncalc.learn.calculator import answer


def tf_same(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int, int]:
    """(out, pad at the start, pad at the end), TensorFlow's 'SAME'."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return out, total // 2, total - total // 2


@pytest.mark.parametrize(
    "size, kernel, stride, out, before, after",
    [
        (227, 11, 4, 57, 4, 4),  # ceil(227/4) = 57; (57-1)*4 + 11 - 227 = 8
        (224, 3, 2, 112, 0, 1),  # ceil(224/2) = 112; (112-1)*2 + 3 - 224 = 1: the odd one at the end
        (224, 7, 2, 112, 2, 3),  # EfficientNet-TF's stem: (112-1)*2 + 7 - 224 = 5
        (5, 1, 4, 2, 0, 0),  # (2-1)*4 + 1 - 5 = 0: no padding
        (7, 3, 1, 7, 1, 1),  # stride 1: PyTorch's 'same'
    ],
)
def test_known_sizes(size, kernel, stride, out, before, after):
    assert tf_same(size, kernel, stride) == (out, before, after)
    a = answer("conv", (3, size, size), {"out": 8, "kernel": kernel, "stride": stride, "padding": "tf_same"})
    assert a.output_shape == (8, out, out)
    assert a.macs == out * out * 8 * (kernel * kernel * 3)
    assert f"= {before + after}:" in a.working[0]


def test_pytorch_same_at_a_stride_points_at_tf_same():
    with pytest.raises(CnncalcError) as caught:
        answer("conv", (3, 224, 224), {"out": 8, "kernel": 3, "stride": 2, "padding": "same"})
    assert "padding 'same' needs stride 1 (as in PyTorch)" in str(caught.value)
    assert "padding: tf_same" in str(caught.value)


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(1, 30),
    width=st.integers(1, 30),
    kernel=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    stride=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
)
def test_against_pytorch_with_an_explicit_asymmetric_pad(height, width, kernel, stride, dilation):
    torch = pytest.importorskip("torch")
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    from cnncalc.spec import parse as parse_data
    from cnncalc.torch_bridge import build

    (out_h, top, bottom), (out_w, left, right) = (
        tf_same(height, kernel[0], stride[0], dilation[0]),
        tf_same(width, kernel[1], stride[1], dilation[1]),
    )
    a = answer(
        "conv",
        (2, height, width),
        {"out": 3, "kernel": list(kernel), "stride": list(stride), "dilation": list(dilation), "padding": "tf_same"},
    )
    assert a.output_shape == (3, out_h, out_w)
    reference = nn.Sequential(
        nn.ZeroPad2d((left, right, top, bottom)),
        nn.Conv2d(2, 3, kernel, stride=stride, dilation=dilation),
    )
    graph = parse_data(
        {
            "input": [2, height, width],
            "layers": [
                {
                    "conv": {
                        "out": 3,
                        "kernel": list(kernel),
                        "stride": list(stride),
                        "dilation": list(dilation),
                        "padding": "tf_same",
                        "name": "conv",
                    }
                }
            ],
        }
    )
    net = build(graph)
    net.conv.load_state_dict(reference[1].state_dict())
    x = torch.randn(2, 2, height, width)
    with torch.no_grad():
        expected = reference(x)
        with FlopCounterMode(display=False) as counter:
            got = net(x)
    assert tuple(expected.shape[1:]) == a.output_shape
    torch.testing.assert_close(got, expected)
    assert sum(p.numel() for p in net.parameters()) == a.params
    assert counter.get_total_flops() == 2 * a.macs * 2  # batch 2, FLOPs = 2 x MACs


def test_even_padding_builds_a_plain_conv():
    pytest.importorskip("torch")
    from torch import nn

    from cnncalc.spec import parse as parse_data
    from cnncalc.torch_bridge import build

    graph = parse_data(
        {
            "input": [3, 227, 227],
            "layers": [{"conv": {"out": 96, "kernel": 11, "stride": 4, "padding": "tf_same", "name": "conv1"}}],
        }
    )
    conv = build(graph).conv1
    assert type(conv) is nn.Conv2d and conv.padding == (4, 4)  # 8 = 4 + 4: PyTorch's own padding


def test_tf_same_in_a_quiz(tmp_path):
    from cnncalc.learn import quiz_file

    path = tmp_path / "quiz.yaml"
    path.write_text(
        "questions:\n"
        "  - conv: {input: 224x224x3, kernel: 3, stride: 2, padding: tf_same, out: 32}\n"
        "    shape: 112x112x32\n"  # ceil(224/2) = 112
        "    params: 896\n"  # (3*3*3)*32 + 32
        "  - conv: {input: 224x224x3, kernel: 3, stride: 2, padding: tf_same, out: 32}\n"
        "    shape: 111x111x32\n"  # floor((224 - 3)/2) + 1 = 111, the answer without padding: wrong
    )
    graded = quiz_file.grade_file(path).questions
    assert [g.correct for g in graded] == [True, False]
    assert "112x112x32" in graded[1].verdicts[0].right


@pytest.mark.parametrize("stride, uneven", [(2, True), (4, False)])
def test_training_memory_counts_the_padded_copy_as_autograd_does(stride, uneven):
    pytest.importorskip("torch")
    from test_memory import autograd_saved_bytes

    from cnncalc.analysis import analyze
    from cnncalc.spec import parse as parse_data

    # 224 at stride 2 pads 0 + 1 (a padded copy of 3x225x225 is kept); 227/11 at stride 4 pads 4 + 4 (the input)
    size, kernel = (224, 3) if uneven else (227, 11)
    graph = parse_data(
        {
            "input": [3, size, size],
            "layers": ["relu", {"conv": {"out": 4, "kernel": kernel, "stride": stride, "padding": "tf_same"}}],
        }
    )
    report = analyze(graph, batch=2)
    import torch

    model = to_torch(graph).train()
    assert report.saved_bytes == autograd_saved_bytes(model, torch.randn(2, 3, size, size))
