"""Bars drawn with text, for a column in the terminal: no extra needed, no torch."""

from __future__ import annotations

EIGHTHS = " ▏▎▍▌▋▊▉"  # index k: a cell k/8 full
FULL = "█"


def bar(value: float, maximum: float, width: int) -> str:
    """`value` as a bar of `width` cells where `maximum` fills them all, in eighths of a cell.

    Always exactly `width` characters (padded with spaces) so columns stay aligned; a positive
    value too small for one eighth still shows one eighth, so it does not read as zero.
    """
    if width < 1:
        raise ValueError("width must be at least 1")
    if value < 0 or maximum < 0:
        raise ValueError("bars are for non-negative values")
    if maximum == 0 or value == 0:
        return " " * width
    eighths = round(min(value, maximum) / maximum * width * 8)
    eighths = max(eighths, 1)
    full, part = divmod(eighths, 8)
    text = FULL * full + (EIGHTHS[part] if part else "")
    return text.ljust(width)
