"""How single values print: shapes in either layout, counts short and exact, receptive fields."""

from __future__ import annotations

from fractions import Fraction
from typing import Sequence

from ..analysis import Field
from ..records import record
from ..units import ShapeOrder as ShapeOrder  # re-exported: shape text lives in units


class Abbreviated(int):
    """A count people read as `138,357,544 (138.4M)`; CSV and JSON still see the plain integer."""


class Delta(int):
    """A change B - A, printed with its sign (`+1,234`, `-56`, `0`); CSV and JSON see the integer."""


class Ratio(float):
    """B / A, printed as `x1.74`; CSV and JSON see the number."""


class Bytes(int):
    """A byte count printed short (`11.8 MiB`); CSV and JSON see the exact integer."""


@record
class Bar:
    """`value` drawn as a bar of `width` cells, `maximum` filling them (text and Markdown);
    CSV writes the share of the maximum."""

    value: float
    maximum: float
    width: int = 12

    @property
    def share(self) -> float:
        return self.value / self.maximum if self.maximum else 0.0


def shape_text(shape: Sequence[int], layout: ShapeOrder) -> str:
    """`224x224x64` for hwc, `64x224x224` for chw; a flat vector prints as its length."""
    if len(shape) == 1:
        return str(shape[0])
    ordered = (*shape[1:], shape[0]) if layout is ShapeOrder.HWC else tuple(shape)
    return "x".join(str(s) for s in ordered)


def human(value: int) -> str:
    """138357544 -> 138.4M; small numbers as they are (SI prefixes up to E, 10**18)."""
    for unit, size in (("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return str(value)


def human_bytes(value: int) -> str:
    """Binary units up to EiB (2**60): 3 * 2**29 -> 1.5 GiB."""
    for unit, size in (("EiB", 2**60), ("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def number_text(value: Fraction) -> str:
    """A field quantity: an integer as such, a fraction as a short decimal."""
    return str(value.numerator) if value.denominator == 1 else f"{float(value):.2f}".rstrip("0").rstrip(".")


def field_text(field: Field | None, part: str) -> str:
    """`11` when every spatial axis agrees, `11x7` (H x W) when not; `all` after flatten or linear."""
    if field is None:
        return ""
    if field.whole:
        return "all"
    values = [number_text(v) for v in getattr(field, part)]
    return values[0] if len(set(values)) == 1 else "x".join(values)
