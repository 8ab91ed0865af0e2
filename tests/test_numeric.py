"""Numeric convolution, pooling and transposed convolution: the notes' worked examples exactly,
and random small matrices against torch.nn.functional."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnncalc.errors import CnncalcError
from cnncalc.learn.numeric import PoolMode, as_lists, convolve, convolve_transpose, pool, read_values

try:
    import torch
except ImportError:  # the tests that need it skip themselves, one by one (requires_torch)
    torch = None
requires_torch = pytest.mark.skipif(torch is None, reason="needs PyTorch (the torch extra)")
F = torch.nn.functional if torch is not None else None

# 000_f0af063750d614fc.txt: the 5x5 input and 3x3 filter of "2D Convolution"
SEED_INPUT = "1 3 2 3 3; 3 1 2 1 1; 3 3 3 1 2; 2 2 1 2 1; 2 3 2 1 2"
SEED_FILTER = "1 3 2; 1 3 3; 3 1 1"


def matrix(text):
    return [[float(v) for v in row.split()] for row in text.strip().split(";")]


@pytest.mark.parametrize(
    "padding, stride, expected",
    [
        # 000: "Input_channel=1, output_channel=1, padding=1, stride=1" -> Output
        (1, 1, "16 28 24 28 16; 27 41 38 37 21; 33 40 33 25 18; 32 40 37 29 17; 25 27 21 20 12"),
        # 000: "padding=1, stride=2" -> Output
        (1, 2, "16 24 16; 33 33 18; 25 21 12"),
        # 000: "padding=2, stride=1" -> the 7x7 output
        (
            2,
            1,
            "1 4 8 14 12 12 9; 6 16 28 24 28 16 6; 14 27 41 38 37 21 10; 17 33 40 33 25 18 6; "
            "14 32 40 37 29 17 9; 10 25 27 21 20 12 3; 4 12 15 11 9 7 2",
        ),
    ],
)
def test_seed_000_convolutions(padding, stride, expected):
    result = convolve(
        read_values(SEED_INPUT, "input"), read_values(SEED_FILTER, "kernel"), stride=(stride,), padding=(padding,)
    )
    assert as_lists(result.output) == [matrix(expected)]


def test_seed_000_max_pooling_first_row():
    # 000: "Max Pooling ... Example) stride=2, padding=1": the windows are 3x3, the first row 3 3 3
    result = pool(read_values(SEED_INPUT, "input"), (3,), stride=(2,), padding=(1,))
    assert as_lists(result.output)[0][0] == [3, 3, 3]


def test_seed_004_one_d_convolution():
    # 004: x = 1 2 3 4, w = 5 6 7, standard (flipped) convolution: z = 5, 16, 34, 52, 45, 28
    result = convolve(read_values("1 2 3 4", "x"), read_values("5 6 7", "w"), padding=(2,), flip=True)
    assert as_lists(result.output) == [[5, 16, 34, 52, 45, 28]]
    assert result.steps[1].text == "0*7 + 1*6 + 2*5 = 16"  # z1 = x0 w1 + x1 w0


def test_seed_004_two_d_cross_correlation():
    # 004: input 0..8 (3x3), kernel 0..3 (2x2) -> 19 25; 37 43
    result = convolve(read_values("0 1 2; 3 4 5; 6 7 8", "x"), read_values("0 1; 2 3", "w"))
    assert as_lists(result.output) == [[[19, 25], [37, 43]]]


@pytest.mark.parametrize(
    "row, expected",
    [
        # 002 "Transposed Convolution": the first two input values stamp the kernel (1 and 2)
        ("1 2", "1 2 1 2; 1 3 2 0; 0 1 4 4"),
        # ... and the third (1), before the next row begins
        ("1 2 1", "1 2 2 2 1; 1 3 3 1 0; 0 1 4 5 2"),
    ],
)
def test_seed_002_transposed_convolution(row, expected):
    result = convolve_transpose(read_values(row, "x"), read_values("1 0 1; 1 1 0; 0 1 2", "w"))
    assert as_lists(result.output) == [matrix(expected)]


def test_decimals_are_exact():
    result = pool(read_values("0.1 0.2; 0.3 0.4", "x"), (2,), mode=PoolMode.AVG)
    assert result.output.channels[0][0][0] == Fraction(1, 4)


@pytest.mark.parametrize(
    "text, message",
    [
        ("1 2 3; 4 5", "ragged: row 2 has 2 numbers"),
        ("1 2; x 4", "non-numeric entry in row 2"),
        ("1 2; 3 4 | 5 6", "channel 2 is 1x2"),
        ("", "empty channel"),
    ],
)
def test_bad_matrices(text, message):
    with pytest.raises(CnncalcError, match=message):
        read_values(text, "--input")


def test_kernel_larger_than_padded_input():
    with pytest.raises(CnncalcError, match="kernel is larger than the padded input"):
        convolve(read_values("1 2; 3 4", "x"), read_values("1 1 1; 1 1 1; 1 1 1", "w"))


def test_values_from_a_csv_file(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("1,2,3\n4,5,6\n")
    assert as_lists(read_values(str(path), "--input")) == [[[1, 2, 3], [4, 5, 6]]]


# ----- against torch.nn.functional --------------------------------------------------------

INTS = st.integers(-4, 4)


def text_of(channels):
    return " | ".join("; ".join(" ".join(str(v) for v in row) for row in grid) for grid in channels)


def tensor(channels, rank):
    t = torch.tensor(channels, dtype=torch.float64)
    return t[:, 0, :] if rank == 1 else t  # [C, L] or [C, H, W]


@st.composite
def case(draw, max_kernel=3):
    rank = draw(st.integers(1, 2))
    c = draw(st.integers(1, 3))
    h = 1 if rank == 1 else draw(st.integers(2, 6))
    w = draw(st.integers(2, 7))
    kh = 1 if rank == 1 else draw(st.integers(1, max_kernel))
    kw = draw(st.integers(1, max_kernel))
    x = [[[draw(INTS) for _ in range(w)] for _ in range(h)] for _ in range(c)]
    k = [[[draw(INTS) for _ in range(kw)] for _ in range(kh)] for _ in range(c)]
    return rank, x, k, draw(st.integers(1, 3)), draw(st.integers(0, 2)), draw(st.integers(1, 2))


def refuses(fn):
    try:
        fn()
    except (RuntimeError, ValueError):
        return True
    return False


@requires_torch
@settings(max_examples=150, deadline=None)
@given(case(), st.booleans(), INTS)
def test_convolve_equals_torch(c, flip, bias):
    rank, x, k, stride, padding, dilation = c
    xv, kv = read_values(text_of(x), "x"), read_values(text_of(k), "k")
    weight = tensor(k, rank).unsqueeze(0)
    if flip:
        weight = torch.flip(weight, dims=list(range(2, weight.dim())))
    conv = F.conv1d if rank == 1 else F.conv2d

    def theirs():
        return conv(
            tensor(x, rank).unsqueeze(0),
            weight,
            torch.tensor([float(bias)], dtype=torch.float64),
            stride=stride,
            padding=padding,
            dilation=dilation,
        )[0]

    try:
        ours = convolve(
            xv, kv, stride=(stride,), padding=(padding,), dilation=(dilation,), bias=Fraction(bias), flip=flip
        )
    except CnncalcError:
        assert refuses(theirs)
        return
    assert as_lists(ours.output) == theirs().tolist()


def test_flip_is_numpy_convolve():
    np = pytest.importorskip("numpy")
    x, w = [3, -1, 4, 1, -5, 9], [2, 6, -5]
    result = convolve(
        read_values(" ".join(map(str, x)), "x"), read_values(" ".join(map(str, w)), "w"), padding=(2,), flip=True
    )
    assert as_lists(result.output) == [np.convolve(x, w).astype(float).tolist()]


@requires_torch
@settings(max_examples=150, deadline=None)
@given(case(), st.sampled_from(list(PoolMode)), st.booleans(), st.booleans(), st.booleans())
def test_pool_equals_torch(c, mode, ceil_mode, include_pad, default_stride):
    rank, x, k, stride, padding, dilation = c
    kernel = len(k[0][0])
    kernel_hw = kernel if rank == 1 else (len(k[0]), kernel)
    if mode is PoolMode.AVG:
        dilation = 1
    xv = read_values(text_of(x), "x")
    stride_arg = None if default_stride else (stride,)
    kernels = (kernel,) if rank == 1 else (len(k[0]), kernel)

    def theirs():
        t = tensor(x, rank).unsqueeze(0)
        s = kernel_hw if default_stride else stride
        if mode is PoolMode.MAX:
            fn = F.max_pool1d if rank == 1 else F.max_pool2d
            return fn(t, kernel_hw, s, padding, dilation, ceil_mode=ceil_mode)[0]
        fn = F.avg_pool1d if rank == 1 else F.avg_pool2d
        return fn(t, kernel_hw, s, padding, ceil_mode=ceil_mode, count_include_pad=include_pad)[0]

    try:
        ours = pool(
            xv,
            kernels,
            mode=mode,
            stride=stride_arg,
            padding=(padding,),
            dilation=(dilation,),
            ceil_mode=ceil_mode,
            count_include_pad=include_pad,
        )
    except CnncalcError:
        assert refuses(theirs)
        return
    expected = theirs()
    assert torch.allclose(torch.tensor(as_lists(ours.output), dtype=torch.float64), expected, rtol=1e-12, atol=0)


@requires_torch
@settings(max_examples=150, deadline=None)
@given(case(), st.integers(0, 2), INTS)
def test_convolve_transpose_equals_torch(c, output_padding, bias):
    rank, x, k, stride, padding, dilation = c
    xv, kv = read_values(text_of(x), "x"), read_values(text_of(k), "k")
    conv_t = F.conv_transpose1d if rank == 1 else F.conv_transpose2d

    def theirs():
        return conv_t(
            tensor(x, rank).unsqueeze(0),
            tensor(k, rank).unsqueeze(1),
            torch.tensor([float(bias)], dtype=torch.float64),
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
        )[0]

    try:
        ours = convolve_transpose(
            xv,
            kv,
            stride=(stride,),
            padding=(padding,),
            output_padding=(output_padding,),
            dilation=(dilation,),
            bias=Fraction(bias),
        )
    except CnncalcError:
        assert refuses(theirs)
        return
    assert as_lists(ours.output) == theirs().tolist()
