"""Receptive fields: per axis, periodic where a transposed convolution makes them so."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

from ..layers import FieldStep
from ..records import record

PERIOD_LIMIT = 4096  # output positions per period past which a receptive field is not tabulated
FIELD_WORK_LIMIT = 1_000_000  # taps (phases x kernel) a periodic field step may look at


@record
class AxisField:
    """The receptive field along one spatial axis, for every output position o: the input pixels
    lo(o)..hi(o) (0 = the first pixel; negative reaches into padding) that can reach it.

    The field repeats every `period` outputs, moved by `shift` input pixels: lo(o) = lows[o mod
    period] + (o // period) * shift. Convolution and pooling keep the period at one (the
    standard recurrences, exact for fractional strides too); a transposed convolution of stride
    S multiplies it by S, as its outputs read different numbers of inputs by phase. None: no
    input reaches that phase (a transposed convolution whose stride exceeds its kernel).
    """

    lows: tuple[Fraction | None, ...]
    highs: tuple[Fraction | None, ...]
    shift: Fraction

    @property
    def period(self) -> int:
        return len(self.lows)

    def lo(self, o: int) -> Fraction | None:
        low = self.lows[o % self.period]
        return None if low is None else low + (o // self.period) * self.shift

    def hi(self, o: int) -> Fraction | None:
        high = self.highs[o % self.period]
        return None if high is None else high + (o // self.period) * self.shift

    def sizes(self) -> list[Fraction]:
        return [h - lo + 1 for lo, h in zip(self.lows, self.highs) if lo is not None and h is not None]

    def step(self, st: FieldStep) -> AxisField | None:
        """After a layer's step on this axis; None when the period would pass PERIOD_LIMIT (or the
        taps to look at FIELD_WORK_LIMIT): the field is then not tabulated."""
        if st.transposed:
            # output o reads input i where i*S = o + P - j*D, 0 <= j < F: S phases per input period
            k, s, p, d = int(st.kernel), int(st.stride), int(st.pad), st.dilation
            if self.period * s > PERIOD_LIMIT or self.period * s * k > FIELD_WORK_LIMIT:
                return None
            reads = [
                [(o + p - j * d) // s for j in range(k) if (o + p - j * d) % s == 0] for o in range(self.period * s)
            ]
            return self._gather(reads, self.shift)
        if self.period == 1:
            # r' = r + (k - 1) j;  j' = j s;  start' = start + ((k - 1)/2 - p) j, as lo' = lo - p j, hi' = hi + (k - 1 - p) j
            low, high = self.lows[0], self.highs[0]
            return AxisField(
                (None if low is None else low - st.pad * self.shift,),
                (None if high is None else high + (st.kernel - 1 - st.pad) * self.shift,),
                self.shift * st.stride,
            )
        if any(v.denominator != 1 for v in (st.kernel, st.stride, st.pad)):
            return None
        k, s, p = int(st.kernel), int(st.stride), int(st.pad)
        lcm = math.lcm(self.period, s)
        if lcm // s * k > FIELD_WORK_LIMIT:
            return None
        reads = [[o * s - p + t for t in range(k)] for o in range(lcm // s)]
        return self._gather(reads, self.shift * (lcm // self.period))

    def _gather(self, reads: list[list[int]], shift: Fraction) -> AxisField:
        """The field of outputs each reading the positions `reads[o]` of this one."""
        lows = [min((v for v in map(self.lo, r) if v is not None), default=None) for r in reads]
        highs = [max((v for v in map(self.hi, r) if v is not None), default=None) for r in reads]
        return AxisField(tuple(lows), tuple(highs), shift)

    @staticmethod
    def union(axes: Sequence[AxisField]) -> AxisField | None:
        """Position for position, the pixels any of `axes` reaches (a merge); None when their
        periods and shifts do not line up."""
        period = math.lcm(*(a.period for a in axes))
        shifts = {a.shift * (period // a.period) for a in axes}
        if len(shifts) != 1 or period > PERIOD_LIMIT:
            return None
        lows = [min((v for v in (a.lo(o) for a in axes) if v is not None), default=None) for o in range(period)]
        highs = [max((v for v in (a.hi(o) for a in axes) if v is not None), default=None) for o in range(period)]
        return AxisField(tuple(lows), tuple(highs), shifts.pop())


@record
class Field:
    """Receptive field of one row, per spatial axis, in input pixels (the standard recurrences,
    and their periodic form through transposed convolutions: `AxisField`).

    `size`: the most input pixels that can reach one output position, `size_min` the fewest (they
    differ where the field varies by position, after a transposed convolution); `jump`: the
    input distance between neighbouring outputs, on average (the effective stride); `start`: where
    the first output's field is centred, in input coordinates (0 = the centre of the first pixel;
    negative reaches into padding). `whole` marks rows that see the whole input (after flatten or
    linear); `known` is False where the field was not tabulated (its period passed PERIOD_LIMIT).
    """

    axes: tuple[AxisField, ...] = ()
    whole: bool = False
    known: bool = True

    @staticmethod
    def of_input(rank: int) -> Field:
        return Field(tuple(AxisField((Fraction(0),), (Fraction(0),), Fraction(1)) for _ in range(rank)))

    @property
    def size(self) -> tuple[Fraction, ...]:
        return tuple(max(a.sizes(), default=Fraction(0)) for a in self.axes)

    @property
    def size_min(self) -> tuple[Fraction, ...]:
        return tuple(min(a.sizes(), default=Fraction(0)) for a in self.axes)

    @property
    def varies(self) -> bool:
        return self.size != self.size_min

    @property
    def jump(self) -> tuple[Fraction, ...]:
        return tuple(a.shift / a.period for a in self.axes)

    @property
    def start(self) -> tuple[Fraction, ...]:
        """Centre of output 0's field (of the first output any input reaches, moved back by the jump)."""
        starts = []
        for a in self.axes:
            o = next((i for i, lo in enumerate(a.lows) if lo is not None), 0)
            lo, hi = a.lo(o), a.hi(o)
            starts.append(Fraction(0) if lo is None or hi is None else (lo + hi) / 2 - o * a.shift / a.period)
        return tuple(starts)

    def at(self, position: Sequence[int]) -> list[tuple[Fraction, Fraction] | None]:
        """The input pixels (first, last) per axis that reach the output at `position`."""
        result: list[tuple[Fraction, Fraction] | None] = []
        for a, o in zip(self.axes, position):
            lo, hi = a.lo(o), a.hi(o)
            result.append(None if lo is None or hi is None else (lo, hi))
        return result

    def step(self, steps: Sequence[FieldStep]) -> Field:
        if self.whole or not steps:
            return Field(whole=True)
        if not self.known:
            return self
        axes = [a.step(st) for a, st in zip(self.axes, steps)]
        return Field(known=False) if any(a is None for a in axes) else Field(tuple(a for a in axes if a is not None))


def _field(steps: list[FieldStep] | None, inputs: Sequence[Field | None]) -> Field:
    """The receptive field after a layer; a merge reads, position for position, every input's
    field (falling back to the widest one where their periods do not line up). A layer with windows
    continues its first input's field (center_crop's `like` input gives only a size)."""
    known = [f for f in (inputs[:1] if steps is not None else inputs) if f is not None]
    if any(f.whole for f in known):
        merged = Field(whole=True)
    elif not all(f.known for f in known):
        merged = Field(known=False)
    elif len(known) == 1:
        merged = known[0]
    else:
        axes = [AxisField.union(group) for group in zip(*(f.axes for f in known))]
        if all(a is not None for a in axes):
            merged = Field(tuple(a for a in axes if a is not None))
        else:
            merged = max(known, key=lambda f: math.prod(f.size))
    return merged if steps is None else merged.step(steps)
