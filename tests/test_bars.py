import pytest

from cnncalc.render.bars import bar


@pytest.mark.parametrize(
    "value, maximum, width, expected",
    [
        (10, 10, 4, "████"),
        (5, 10, 4, "██  "),
        (1, 8, 1, "▏"),  # one eighth of one cell
        (3, 8, 1, "▍"),
        (9, 16, 2, "█▏"),  # 9/16 of 16 eighths = 9 eighths
        (0, 10, 3, "   "),
        (1, 10**9, 3, "▏  "),  # too small for an eighth: still visible
        (5, 0, 2, "  "),
        (20, 10, 2, "██"),  # clipped to the width
    ],
)
def test_bar(value, maximum, width, expected):
    assert bar(value, maximum, width) == expected
    assert len(bar(value, maximum, width)) == width


def test_bar_rejects_nonsense():
    with pytest.raises(ValueError):
        bar(1, 2, 0)
    with pytest.raises(ValueError):
        bar(-1, 2, 3)
