"""cnncalc/layout.py's stride rules against PyTorch's own, on random shapes and strides (views of a
large enough storage), and the memory predictions they fixed against autograd."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnncalc import layout

torch = pytest.importorskip("torch")

from test_memory import check_saved, check_strides  # noqa: E402

from cnncalc.spec import parse_text  # noqa: E402


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
    ("[4, 3, 3]", "conv: {out: 4, kernel: 1}\n  - layernorm: {over: channels}\n  - relu\n  - flatten\n  - linear: 5", 2),
    # batch norm keeps a channels-last input channels-last
    ("[4, 5, 5]", "batchnorm\n  - layernorm: {over: channels}\n  - batchnorm\n  - relu\n  - flatten\n  - linear: 5", 3),
    # a channel piece of a batch is not contiguous: instance norm keeps its own copy
    ("[4, 5, 5]", "conv: {out: 4, kernel: 1}\n  - chunk: {chunks: 2, name: c}\n  - instancenorm: {affine: true, from: c.1}\n  - flatten\n  - linear: 2", 2),
    # group norm on a channels-last input keeps it as it is
    ("[4, 5, 5]", "conv: {out: 4, kernel: 1}\n  - layernorm: {over: channels}\n  - groupnorm: 2\n  - flatten\n  - linear: 2", 2),
    # a 1-D convolution of a permuted sequence, as text and audio models do
    ("[6, 5]", "conv: {out: 4, kernel: 1}\n  - permute: [0, 2, 1]\n  - conv: {out: 3, kernel: 2}\n  - relu\n  - flatten\n  - linear: 2", 2),
    # a linear on the last axis of a permuted input: matmul folds the leading axes with a copy
    # (no view exists at batch 2), which it keeps beside the ReLU's output: was 720 bytes, 1440 kept
    ("[4, 3, 5]", "conv: {out: 6, kernel: 1}\n  - relu\n  - permute: [0, 2, 3, 1]\n  - linear: {out: 2, channels_last: true}", 2),
    # the same at batch 1 is a view: the batch axis of size 1 folds away (360 bytes kept)
    ("[4, 3, 5]", "conv: {out: 6, kernel: 1}\n  - relu\n  - permute: [0, 2, 3, 1]\n  - linear: {out: 2, channels_last: true}", 1),
]  # fmt: skip


@pytest.mark.parametrize("shape, layers, batch", FOUND)
def test_what_the_layouts_fixed(shape, layers, batch):
    graph = parse_text(f"input: {shape}\nlayers:\n  - {layers}\n")
    check_strides(graph, batch)
    check_saved(graph, batch=batch)
