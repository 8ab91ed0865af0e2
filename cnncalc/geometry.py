"""Shared window arithmetic: the output-size formula of convolution and pooling, once.

Each function works on one spatial axis; layers map them over as many axes as their input has
(1-D, 2-D and 3-D alike). The rules follow PyTorch's (aten/src/ATen/native/Pool.h and
ConvUtils.h) so that our shapes agree with the framework to the last element.
"""

from __future__ import annotations

import heapq
import math
from typing import Iterator, Sequence

from .errors import LayerError
from .records import record


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: D(F - 1) + 1."""
    return dilation * (kernel - 1) + 1


@record
class Window:
    """One axis of a sliding window: size in, and kernel, stride, padding (left, right), dilation."""

    size: int
    kernel: int
    stride: int = 1
    pad_left: int = 0
    pad_right: int = 0
    dilation: int = 1
    ceil_mode: bool = False

    @property
    def span(self) -> int:
        """Numerator of the formula: W + P_l + P_r - D(F - 1) - 1."""
        return self.size + self.pad_left + self.pad_right - effective_kernel(self.kernel, self.dilation)

    @property
    def remainder(self) -> int:
        """What the stride leaves over: (W - F + 2P) mod S; non-zero means the windows do not tile the input."""
        return self.span % self.stride if self.span >= 0 else 0

    def fraction(self) -> str:
        """The unfloored result, written as the lecture notes do: (7 - 3)/3 + 1 = 2.33."""
        return f"{self.span / self.stride + 1:.2f}".rstrip("0").rstrip(".")

    def formula(self) -> str:
        """The output size with the numbers filled in: `(227 - 11 + 2*0)/4 + 1 = 55`.

        A stride that does not tile the input shows the unfloored value, as the notes'
        "doesn't fit" example does; ceil_mode shows the ceiling and any dropped last window.
        """
        kernel = str(self.kernel) if self.dilation == 1 else f"({self.dilation}*({self.kernel} - 1) + 1)"
        pad = f"2*{self.pad_left}" if self.pad_left == self.pad_right else f"({self.pad_left} + {self.pad_right})"
        inner = f"({self.size} - {kernel} + {pad})"
        out = window_output_size(self)
        if self.ceil_mode:
            text = f"ceil({inner}/{self.stride}) + 1 = {out}"
            if (self.span + self.stride - 1) // self.stride + 1 != out:
                text += " (the last window would start in the right padding, so it is dropped)"
        elif self.remainder:
            return f"floor({inner}/{self.stride}) + 1 = {out}   (unfloored {self.fraction()}: doesn't fit; {loss_text(self)})"
        else:
            text = f"{inner}/{self.stride} + 1 = {out}"
        return text + (f"   ({loss_text(self)})" if lost_positions(self, 1) else "")


def window_output_size(w: Window) -> int:
    """floor((W + 2P - D(F-1) - 1)/S) + 1, or with ceil in ceil_mode.

    In ceil_mode a last, partial window counts (even when no full window fits, as in PyTorch),
    but it must start inside the input or the left padding, otherwise it is dropped.
    """
    if w.ceil_mode:
        # [out] = ceil([W + P_l + P_r - D(F-1) - 1] / S) + 1
        out = (w.span + w.stride - 1) // w.stride + 1
        if (out - 1) * w.stride >= w.size + w.pad_left:
            out -= 1
    else:
        # [out] = floor([W + P_l + P_r - D(F-1) - 1] / S) + 1
        out = w.span // w.stride + 1
    if out < 1:
        raise LayerError(
            "kernel is larger than the padded input",
            received=f"input {w.size} + padding {w.pad_left + w.pad_right} < kernel span {effective_kernel(w.kernel, w.dilation)}",
            expected="a kernel span D(F-1)+1 no larger than W + 2P",
            hint="reduce the kernel or dilation, add padding, or check the layers before this one",
        )
    return out


def covered(w: Window, include_pad: bool) -> int:
    """Input positions read by all the windows of one axis together: each window clipped to the
    input (or, with `include_pad`, to the padded input), as average pooling sums them.

    In closed form (time independent of the size): the windows that overlap [low, high) are a
    contiguous run of i; over it, sum the clipped ends min(i*S - P + span, high) minus the
    clipped starts max(i*S - P, low), each an arithmetic series up to its clipping point.
    """
    low, high = (-w.pad_left, w.size + w.pad_right) if include_pad else (0, w.size)
    span = effective_kernel(w.kernel, w.dilation)
    n, s, p = window_output_size(w), w.stride, w.pad_left
    # window i is [i*S - P, i*S - P + span); it overlaps [low, high) when its end > low and its start < high
    first = max(0, (low + p - span) // s + 1)
    last = min(n, -(-(high + p) // s))  # exclusive
    if first >= last:
        return 0
    unclipped_end = min(max((high + p - span) // s + 1, first), last)  # ends at or before `high` below this
    ends = _series(span - p, s, first, unclipped_end) + (last - unclipped_end) * high
    clipped_start = min(max(-(-(low + p) // s), first), last)  # starts at or after `low` from this on
    starts = (clipped_start - first) * low + _series(-p, s, clipped_start, last)
    return ends - starts


def _series(a: int, d: int, lo: int, hi: int) -> int:
    """sum(a + d*i for i in range(lo, hi)), in closed form."""
    count = max(hi - lo, 0)
    return count * a + d * (lo + hi - 1) * count // 2


def adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """Adaptive pooling's windows on one axis, as PyTorch cuts them: [floor(i*W/O), ceil((i+1)*W/O)).

    One pair per output position: for showing a few, never for totals (see the two below)."""
    return [((i * size) // out, -(-(i + 1) * size // out)) for i in range(out)]


def adaptive_covered(size: int, out: int) -> int:
    """Sum of the lengths of adaptive pooling's windows on one axis: W + O - gcd(W, O).

    sum ceil((i+1)W/O) - floor(iW/O) telescopes to W, plus one for each i+1 with O not dividing
    (i+1)W, which is all but gcd(W, O) of them."""
    return size + out - math.gcd(size, out)


def adaptive_largest(size: int, out: int) -> int:
    """The longest of adaptive pooling's windows on one axis, in closed form.

    With W = qO + r a window is q + ceil(f + r/O) long, f the fractional part of i*r/O, a multiple
    of g/O with g = gcd(r, O), at most 1 - g/O: so q when r is 0, else q + 1, or q + 2 when r > g."""
    q, r = divmod(size, out)
    if r == 0:
        return q
    return q + (2 if r > math.gcd(r, out) else 1)


def transposed_output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1, output_padding: int = 0
) -> int:
    """(W - 1)S - 2P + D(F - 1) + output_padding + 1, PyTorch's ConvTranspose rule."""
    if output_padding >= max(stride, dilation):
        raise LayerError(
            "output_padding must be smaller than either stride or dilation (as in PyTorch)",
            received=f"output_padding {output_padding}, stride {stride}, dilation {dilation}",
        )
    # [out] = (W - 1) * S - 2P + D(F-1) + output_padding + 1
    out = (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    if out < 1:
        raise LayerError(
            "transposed convolution gives no output: the padding crops more than it makes",
            received=f"({size} - 1)*{stride} - 2*{padding} + {dilation}*({kernel} - 1) + {output_padding} + 1 = {out}",
            expected="a positive size",
            hint="reduce the padding",
        )
    return out


def transposed_formula(
    size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1, output_padding: int = 0
) -> str:
    """`(4 - 1)*2 - 2*1 + 1*(3 - 1) + 0 + 1 = 7`: the transposed rule with the numbers filled in."""
    out = transposed_output_size(size, kernel, stride, padding, dilation, output_padding)
    return f"({size} - 1)*{stride} - 2*{padding} + {dilation}*({kernel} - 1) + {output_padding} + 1 = {out}"


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """Left and right padding for padding='same' at stride 1: D(F-1) split, the extra on the right."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def tf_same_padding(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's padding='SAME' on one axis: out = ceil(W/S), total = max((out - 1)S + D(F-1) + 1 - W, 0),
    split with the odd one at the end (bottom/right); at stride 1 it is PyTorch's 'same'."""
    out = -(-size // stride)  # ceil(W/S)
    total = max((out - 1) * stride + effective_kernel(kernel, dilation) - size, 0)
    return total // 2, total - total // 2


def tf_same_working(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> str:
    """`tf_same: out ceil(227/4) = 57; padding max((57 - 1)*4 + 11 - 227, 0) = 8: 4 on each side`, one axis."""
    out = -(-size // stride)
    left, right = tf_same_padding(size, kernel, stride, dilation)
    span = str(kernel) if dilation == 1 else f"({dilation}*({kernel} - 1) + 1)"
    split = f"{left} on each side" if left == right else f"{left} at the start, {right} at the end (bottom/right)"
    return f"tf_same: out ceil({size}/{stride}) = {out}; padding max(({out} - 1)*{stride} + {span} - {size}, 0) = {left + right}: {split}"


def reads(w: Window, position: int, windows: int | None = None) -> bool:
    """Whether one of the first `windows` windows (any window when None) reads `position`, in
    padded coordinates (0 is the first padding position); dilation gaps are not read."""
    for tap in range(w.kernel):
        start = position - tap * w.dilation
        if start >= 0 and start % w.stride == 0 and (windows is None or start // w.stride < windows):
            return True
    return False


def lost_positions(w: Window, limit: int | None = None) -> list[tuple[int, int]]:
    """Real input positions (0 = the first one) that the floor leaves unread, as sorted runs
    (first, last), the first `limit` runs of them (all when None): no window reads them, though
    the windows past the last one, had the input gone on, would have. That is the floor's "doesn't
    fit", or (rarely, when the stride tiles) what a dilated last window reaching into the padding
    steps over. Positions only the padding covers, and positions no window would ever read (a
    stride larger than the kernel skips them by design, as a strided 1x1 convolution does), are
    not lost. Time independent of W (see `_lost_classes`)."""
    runs: list[tuple[int, int]] = []
    for p in heapq.merge(*(_class_positions(c) for c in _lost_classes(w))):
        if runs and p == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], p)
        elif limit is not None and len(runs) == limit:
            break
        else:
            runs.append((p, p))
    return runs


def lost_count(w: Window) -> int:
    """How many real input positions `lost_positions` names, counted without listing them."""
    return sum(_class_count(c) for c in _lost_classes(w))


@record
class _LostClass:
    """The lost positions of one residue class of taps: `base + stride * u` for u in the gaps
    [i*every + count, (i+1)*every - 1] (i < last) and [last*every + count, ...), within [low, high]
    (real positions, padded coordinates), shifted back by `shift` (the left padding)."""

    base: int
    stride: int
    every: int
    count: int
    last: int
    low: int
    high: int
    shift: int

    def u_range(self) -> tuple[int, int]:
        return -(-(self.low - self.base) // self.stride), (self.high - self.base) // self.stride

    def gap(self, i: int) -> tuple[int, int | None]:
        return i * self.every + self.count, (None if i == self.last else (i + 1) * self.every - 1)


def _lost_classes(w: Window) -> list[_LostClass]:
    """Tap t of window n reads n*S + t*D (padded coordinates). With g = gcd(S, D), taps t and
    t + S/g read positions of one residue class mod S, D/g windows apart: tap t0 + i*S/g of
    window n reads t0*D + S*(n + i*D/g). Of a class, windows 0..count-1 read u in the unions of
    [i*D/g, i*D/g + count - 1]; every u >= 0 would be read by some window: the lost u are the gaps
    between those intervals and what lies past the last one. One class per tap t0 < S/g."""
    count = window_output_size(w)
    low, high = max(w.pad_left, count * w.stride), w.pad_left + w.size - 1  # below count*S no later window reads
    if low > high:
        return []
    g = math.gcd(w.stride, w.dilation)
    period, every = w.stride // g, w.dilation // g
    classes = []
    for t0 in range(min(period, w.kernel)):  # min(S/g, F) classes: F taps at most
        last = (w.kernel - 1 - t0) // period  # index of the class's last tap
        classes.append(_LostClass(t0 * w.dilation, w.stride, every, count, last, low, high, w.pad_left))
    return classes


def _gap_indices(c: _LostClass) -> range:
    """The gaps of `c` that can meet its u range: only the last when windows overlap (every <= count)."""
    u_low, u_high = c.u_range()
    if c.every <= c.count:
        return range(c.last, c.last + 1)
    first = max(0, min(c.last, (u_low - c.count) // c.every))
    end = min(c.last, max(0, (u_high - c.count) // c.every))
    return range(first, end + 1)


def _class_count(c: _LostClass) -> int:
    """The first and last gaps in range clipped, those between whole: O(1) however many."""
    u_low, u_high = c.u_range()
    gaps = _gap_indices(c)
    total = 0
    for i in {gaps[0], gaps[-1]}:
        start, stop = c.gap(i)
        total += max(0, (u_high if stop is None else min(stop, u_high)) - max(start, u_low) + 1)
    return total + max(0, len(gaps) - 2) * (c.every - c.count)  # whole gaps: every - count positions each


def _class_positions(c: _LostClass) -> Iterator[int]:
    u_low, u_high = c.u_range()
    for i in _gap_indices(c):
        start, stop = c.gap(i)
        for u in range(max(start, u_low), (u_high if stop is None else min(stop, u_high)) + 1):
            yield c.base + c.stride * u - c.shift


def position_runs(runs: Sequence[tuple[int, int]], limit: int = 6, total: int | None = None) -> str:
    """`6`, `221-223`, `3, 7, 11, ... (56 positions)`: runs of positions, long lists cut (`total`:
    the number of positions when `runs` holds only the first runs)."""
    texts = [str(a) if a == b else f"{a}-{b}" for a, b in runs]
    if len(texts) > limit:
        total = sum(b - a + 1 for a, b in runs) if total is None else total
        return ", ".join(texts[:limit]) + f", ... ({total:,} positions)"
    return ", ".join(texts)


def lost_text(w: Window) -> str:
    """The lost positions of `w` as `position_runs` writes them, without listing them all."""
    return position_runs(lost_positions(w, POSITION_RUNS + 1), POSITION_RUNS, lost_count(w))


POSITION_RUNS = 6  # runs of lost positions a message names before it counts the rest


def loss_text(w: Window, noun: str = "position") -> str:
    """What a stride that does not tile the padded input costs, said plainly: which real input
    positions are never read (`input position 6 of 0..6 is never read`; `noun` names them per
    axis: rows, columns), or that only padding is."""
    lost = lost_positions(w, 2)
    if not lost:
        return "only padding is left unread, every input position is read"
    plural = len(lost) > 1 or lost[0][0] != lost[0][1] or noun.endswith("s")
    noun = noun if noun.endswith("s") or not plural else noun + "s"
    return f"input {noun} {lost_text(w)} of 0..{w.size - 1} {'are' if plural else 'is'} never read"
