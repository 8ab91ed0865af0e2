"""The shared output-size formula against an independent statement of the same rule."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnncalc.errors import LayerError
from cnncalc.geometry import Window, transposed_output_size, window_output_size


def count_windows(size, kernel, stride, pad_left, pad_right, dilation, ceil_mode):
    """Enumerate window starts instead of using the formula.

    A window counts when it lies entirely inside the padded input; in ceil mode also when it
    overhangs the padded end by less than one stride. In ceil mode the last window is then
    dropped if it starts in the right padding (PyTorch's rule: a window must start inside the
    input or the left padding).
    """
    padded = size + pad_left + pad_right
    span = dilation * (kernel - 1) + 1
    overhang_allowed = stride - 1 if ceil_mode else 0
    starts = [s for s in range(0, padded + stride, stride) if s + span - padded <= overhang_allowed]
    if ceil_mode and starts and starts[-1] >= size + pad_left:
        starts.pop()
    return len(starts)


@settings(max_examples=400, deadline=None)
@given(
    size=st.integers(1, 64),
    kernel=st.integers(1, 9),
    stride=st.integers(1, 5),
    pad=st.integers(0, 4),
    dilation=st.integers(1, 3),
    ceil_mode=st.booleans(),
)
def test_output_size_matches_enumeration(size, kernel, stride, pad, dilation, ceil_mode):
    w = Window(size, kernel, stride, pad, pad, dilation, ceil_mode)
    expected = count_windows(size, kernel, stride, pad, pad, dilation, ceil_mode)
    if expected < 1:
        with pytest.raises(LayerError):
            window_output_size(w)
        return
    assert window_output_size(w) == expected


@pytest.mark.parametrize(
    "size, kernel, stride, pad, expected",
    [
        (7, 3, 1, 0, 5),  # notes 001: (7 - 3)/1 + 1 = 5
        (7, 3, 2, 0, 3),  # (7 - 3)/2 + 1 = 3
        (7, 3, 3, 0, 2),  # "doesn't fit": 2.33, floor gives 2
        (7, 3, 1, 1, 7),  # pad 1 preserves 7x7
        (227, 11, 4, 0, 55),  # AlexNet CONV1: (227 - 11)/4 + 1 = 55
        (55, 3, 2, 0, 27),  # AlexNet POOL1: (55 - 3)/2 + 1 = 27
        (5, 3, 2, 1, 3),  # notes 000: 5x5 input, 3x3 filter, pad 1, stride 2 -> 3x3
        (5, 3, 1, 2, 7),  # notes 000: pad 2, stride 1 -> 7x7
    ],
)
def test_lecture_examples(size, kernel, stride, pad, expected):
    assert window_output_size(Window(size, kernel, stride, pad, pad)) == expected


def test_doesnt_fit_remainder_and_fraction():
    w = Window(7, 3, 3)
    assert w.remainder == 1  # (7 - 3) mod 3
    assert w.fraction() == "2.33"


@pytest.mark.parametrize(
    "size, kernel, stride, padding, dilation, output_padding, expected",
    [
        (2, 3, 2, 0, 1, 0, 5),  # (2-1)*2 - 0 + 1*(3-1) + 0 + 1
        (4, 4, 2, 1, 1, 0, 8),  # the usual x2 upsampling
        (3, 3, 2, 1, 1, 1, 6),  # output_padding resolves the ambiguity of stride 2
        (5, 3, 1, 0, 2, 0, 9),  # dilation 2: (5-1) + 2*2 + 1
    ],
)
def test_transposed_output_size(size, kernel, stride, padding, dilation, output_padding, expected):
    assert transposed_output_size(size, kernel, stride, padding, dilation, output_padding) == expected


# ----- closed forms against the per-window loops they replace -------------------------------

from cnncalc.geometry import adaptive_covered, adaptive_largest, adaptive_windows, covered  # noqa: E402


def covered_by_loop(w, include_pad):
    """The per-window loop `covered` used to be: each window clipped, then summed."""
    low, high = (-w.pad_left, w.size + w.pad_right) if include_pad else (0, w.size)
    span = w.dilation * (w.kernel - 1) + 1
    starts = (i * w.stride - w.pad_left for i in range(window_output_size(w)))
    return sum(max(min(start + span, high) - max(start, low), 0) for start in starts)


@settings(max_examples=2000, deadline=None)
@given(
    size=st.integers(1, 60),
    kernel=st.integers(1, 12),
    stride=st.integers(1, 12),
    pad_left=st.integers(0, 12),
    pad_right=st.integers(0, 12),
    dilation=st.integers(1, 4),
    ceil_mode=st.booleans(),
    include_pad=st.booleans(),
)
def test_covered_closed_form_matches_the_loop(
    size, kernel, stride, pad_left, pad_right, dilation, ceil_mode, include_pad
):
    w = Window(size, kernel, stride, pad_left, pad_right, dilation, ceil_mode)
    try:
        window_output_size(w)
    except LayerError:
        return
    assert covered(w, include_pad) == covered_by_loop(w, include_pad)


def test_covered_is_closed_form_on_a_huge_axis():
    # 10^8 positions, 3/1 pad 1: every window reads 3 positions but the first and last (2 each)
    w = Window(10**8, 3, 1, 1, 1)
    assert covered(w, include_pad=False) == 3 * 10**8 - 2
    assert covered(w, include_pad=True) == 3 * 10**8


@settings(max_examples=2000, deadline=None)
@given(size=st.integers(1, 300), out=st.integers(1, 300))
def test_adaptive_closed_forms_match_the_windows(size, out):
    windows = adaptive_windows(size, out)
    assert adaptive_covered(size, out) == sum(end - start for start, end in windows)
    assert adaptive_largest(size, out) == max(end - start for start, end in windows)


@pytest.mark.parametrize(
    "size, out, total, largest",
    [
        (8, 10**9, 8 + 10**9 - 8, 1),  # every window one position long
        (7, 3, 7 + 3 - 1, 3),  # [0,3) [2,5) [4,7)
        (5, 3, 5 + 3 - 1, 3),  # [0,2) [1,4) [3,5)
        (224, 7, 224, 32),  # tiles exactly
    ],
)
def test_adaptive_closed_forms_examples(size, out, total, largest):
    assert adaptive_covered(size, out) == total
    assert adaptive_largest(size, out) == largest
