"""Shape text as people type it: `12x12x10`, `(10, 12, 12)`, `[3, 227, 227]`, read in one place,
and the order of its axes (`ShapeOrder`: hwc or chw), for reading and for printing.

At the bottom of the package (it reads from nothing of cnncalc but its errors): the spec's
`--input` override, the calculators and the quizzes all read sizes through it.
"""

from __future__ import annotations

import re
from enum import Enum

from .errors import CnncalcError


class ShapeOrder(str, Enum):
    """The order of a shape's axes as text: `224x224x64` (hwc, the lecture tables) or `64x224x224`
    (chw, PyTorch). How shapes print (`--layout`), and how an `--input` override says its order
    (`chw:1x28x28`)."""

    HWC = "hwc"
    CHW = "chw"


SIZE_SEPARATORS = re.compile(r"\s*[x×*,]\s*|\s+")


def read_sizes(text: str, what: str = "a shape") -> tuple[int, ...]:
    """`12x12x10`, `12 × 12 × 10`, `(10, 12, 12)`, `[3, 227, 227]`, `12*12*10`: the numbers in order."""
    inner = str(text).strip().strip("()[]").strip()
    parts = [p for p in SIZE_SEPARATORS.split(inner) if p]
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise CnncalcError(
            f"cannot read {what}", received=text, expected="sizes such as 55x55x96 or (96, 55, 55)"
        ) from None
    if not sizes or any(s < 1 for s in sizes):
        raise CnncalcError(f"cannot read {what}", received=text, expected="positive sizes such as 55x55x96")
    return sizes
