"""cnncalc/layers/layout.py's stride rules against PyTorch's own, on random shapes and strides (views of a
large enough storage), and the memory predictions they fixed against autograd."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnncalc.layers import layout

torch = pytest.importorskip("torch")

from test_memory import check_saved, check_strides  # noqa: E402

from cnncalc.spec import parse_text  # noqa: E402

pytestmark = pytest.mark.usefixtures("several_threads")


@st.composite
def strided(draw):
    """A shape of rank 2 to 5 (sizes 1 to 4) with strides that are a random axis order of a dense
    layout, or random steps 1 to 40 (gaps and overlaps)."""
    rank = draw(st.integers(2, 5))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    if draw(st.booleans()):
        order = draw(st.permutations(range(rank)))
        strides, step = [0] * rank, 1
        for axis in reversed(order):
            strides[axis] = step
            step *= shape[axis] * draw(st.sampled_from([1, 1, 2]))
        return shape, tuple(strides)
    return shape, tuple(draw(st.lists(st.integers(1, 40), min_size=rank, max_size=rank)))


def tensor(shape, strides):
    span = 1 + sum((n - 1) * s for n, s in zip(shape, strides))
    return torch.arange(span, dtype=torch.float32).as_strided(shape, strides)


@settings(max_examples=400, deadline=None)
@given(strided())
def test_the_checks_are_pytorchs(case):
    shape, strides = case
    t = tensor(shape, strides)
    assert layout.is_contiguous(shape, strides) == t.is_contiguous()
    if len(shape) in (4, 5):
        fmt = torch.channels_last if len(shape) == 4 else torch.channels_last_3d
        assert layout.is_channels_last_contiguous(shape, strides) == t.is_contiguous(memory_format=fmt)
    # empty_like keeps the strides of exactly the non-overlapping and dense tensors
    assert layout.non_overlapping_and_dense(shape, strides) == (torch.empty_like(t).stride() == strides)


@settings(max_examples=400, deadline=None)
@given(strided())
def test_channels_last_suggestion_is_what_a_channels_last_op_follows(case):
    """A 2-D convolution (4-D) and a 3-D max pool (5-D) write channels-last exactly where the
    input suggests it."""
    shape, strides = case
    if len(shape) not in (4, 5):
        return
    t = tensor(shape, strides)
    op = torch.nn.Conv2d(shape[1], 2, 1) if len(shape) == 4 else torch.nn.MaxPool3d(1)
    with torch.no_grad():
        out = op(t)
    expected = layout.format_strides(tuple(out.shape), layout.suggests_channels_last(shape, strides))
    long = [k for k, n in enumerate(out.shape) if n > 1]
    assert [out.stride()[k] for k in long] == [expected[k] for k in long]


@settings(max_examples=400, deadline=None)
@given(strided())
def test_flatten_is_a_view_exactly_where_pytorch_makes_one(case):
    shape, strides = case
    t = tensor(shape, strides)
    new_shape = (shape[0], t[0].numel())
    predicted = layout.view(shape, strides, new_shape)
    try:
        real = t.view(new_shape).stride()
    except RuntimeError:
        real = None
    assert predicted == real


@settings(max_examples=400, deadline=None)
@given(strided())
def test_element_wise_outputs_are_laid_out_as_tensoriterator_does(case):
    shape, strides = case
    out = torch.sigmoid(tensor(shape, strides))
    assert layout.elementwise(shape, [(shape, strides)]) == out.stride()


FOUND = [
    # a channel layer norm's output is channels-last: the ReLU after it keeps that order, and
    # the flatten copies it (the linear keeps the copy): was 240 bytes predicted, 360 kept
    (
        "[4, 3, 3]",
        "conv: {out: 4, kernel: 1}\n  - layernorm: {over: channels}\n  - relu\n  - flatten\n  - linear: 5",
        2,
    ),
    # batch norm keeps a channels-last input channels-last
    ("[4, 5, 5]", "batchnorm\n  - layernorm: {over: channels}\n  - batchnorm\n  - relu\n  - flatten\n  - linear: 5", 3),
    # a channel piece of a batch is not contiguous: instance norm keeps its own copy
    (
        "[4, 5, 5]",
        "conv: {out: 4, kernel: 1}\n  - chunk: {chunks: 2, name: c}\n  - instancenorm: {affine: true, from: c.1}\n  - flatten\n  - linear: 2",
        2,
    ),
    # group norm on a channels-last input keeps it as it is
    (
        "[4, 5, 5]",
        "conv: {out: 4, kernel: 1}\n  - layernorm: {over: channels}\n  - groupnorm: 2\n  - flatten\n  - linear: 2",
        2,
    ),
    # a 1-D convolution of a permuted sequence, as text and audio models do
    (
        "[6, 5]",
        "conv: {out: 4, kernel: 1}\n  - permute: [0, 2, 1]\n  - conv: {out: 3, kernel: 2}\n  - relu\n  - flatten\n  - linear: 2",
        2,
    ),
    # a linear on the last axis of a permuted input: matmul folds the leading axes with a copy
    # (no view exists at batch 2), which it keeps beside the ReLU's output: was 720 bytes, 1440 kept
    (
        "[4, 3, 5]",
        "conv: {out: 6, kernel: 1}\n  - relu\n  - permute: [0, 2, 3, 1]\n  - linear: {out: 2, channels_last: true}",
        2,
    ),
    # the same at batch 1 is a view: the batch axis of size 1 folds away (360 bytes kept)
    (
        "[4, 3, 5]",
        "conv: {out: 6, kernel: 1}\n  - relu\n  - permute: [0, 2, 3, 1]\n  - linear: {out: 2, channels_last: true}",
        1,
    ),
    # a small 3-D convolution of one sample runs on ATen's slow kernel, which writes contiguous
    # though its input is channels-last: the flatten is a view (was 3072 bytes predicted, 2560 kept)
    (
        "[2, 4, 4, 4]",
        "conv: {out: 3, kernel: 1}\n  - layernorm: {over: channels}\n  - conv: {out: 2, kernel: 3, padding: 1}\n  - relu\n  - flatten\n  - linear: 2",
        1,
    ),
    # ATen's slow 3-D transposed kernel (one small sample) writes into a buffer the size of its
    # input when that is larger: the linear keeps all of it (was 500 bytes predicted, 1500 kept)
    (
        "[3, 5, 5, 5]",
        "conv_transpose: {out: 1, kernel: 1, bias: false}\n  - flatten\n  - linear: {out: 1, bias: false}",
        1,
    ),
    # a 1-D max pool before the first layer with parameters is not recorded, and writes
    # contiguous even in training (was 400 bytes predicted, 272 kept)
    (
        "[5, 4]",
        "permute: [0, 2, 1]\n  - maxpool: {kernel: 2, stride: 1}\n  - relu: {name: r}\n  - groupnorm: {groups: 1, affine: true, name: g}\n  - conv: {out: 4, kernel: 1, from: r, name: c}\n  - add: {from: [g, c]}\n  - flatten\n  - linear: 2",
        2,
    ),
]


@pytest.mark.parametrize("shape, layers, batch", FOUND)
def test_what_the_layouts_fixed(shape, layers, batch):
    graph = parse_text(f"input: {shape}\nlayers:\n  - {layers}\n")
    check_strides(graph, batch)
    check_saved(graph, batch=batch)


@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "transposed"])
@pytest.mark.parametrize(
    "batch, groups, kernel, sizes",
    [
        (1, 1, 3, "4, 4, 4"),
        (1, 1, 1, "4, 4, 4"),
        (2, 1, 1, "4, 4, 4"),
        (2, 1, 3, "4, 4, 4"),
        (1, 2, 3, "4, 4, 4"),
        (1, 1, 5, "5, 5, 5"),
        (1, 1, "[5, 5, 3]", "5, 5, 5"),
        (1, 1, "[3, 5, 5]", "5, 5, 5"),
        (1, 1, "[5, 3, 5]", "5, 5, 5"),
        (1, 1, 1, "80, 64, 2"),
        (1, 1, 1, "80, 65, 2"),  # n*c*d*h = 20,480 exactly, then just over (c = 4)
    ],
)
def test_a_3d_convolution_of_a_channels_last_input(transposed, batch, groups, kernel, sizes):
    """Which kernel ATen picks (oneDNN keeps channels-last, its slow 3-D kernels write contiguous)
    decides whether the flatten after it copies, and so what training keeps."""
    kind = "conv_transpose" if transposed else "conv"
    graph = parse_text(
        f"input: [4, {sizes}]\nlayers:\n  - layernorm: {{over: channels}}\n"
        f"  - {kind}: {{out: 2, kernel: {kernel}, groups: {groups}}}\n  - relu\n  - flatten\n  - linear: 2\n"
    )
    check_strides(graph, batch)
    check_saved(graph, batch=batch)
