"""Shared window arithmetic: the output-size formula of convolution and pooling, once.

Each function works on one spatial axis; layers map them over as many axes as their input has
(1-D, 2-D and 3-D alike). The rules follow PyTorch's (aten/src/ATen/native/Pool.h and
ConvUtils.h) so that our shapes agree with the framework to the last element.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import LayerError


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: D(F - 1) + 1."""
    return dilation * (kernel - 1) + 1


@dataclass(frozen=True)
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
            return text
        if self.remainder:
            return (f"floor({inner}/{self.stride}) + 1 = {out}   (unfloored {self.fraction()}: the stride does not "
                    f"tile the input, the last {self.remainder} position(s) are never read)")  # fmt: skip
        return f"{inner}/{self.stride} + 1 = {out}"


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


def transposed_formula(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                       output_padding: int = 0) -> str:  # fmt: skip
    """`(4 - 1)*2 - 2*1 + 1*(3 - 1) + 0 + 1 = 7`: the transposed rule with the numbers filled in."""
    out = transposed_output_size(size, kernel, stride, padding, dilation, output_padding)
    return f"({size} - 1)*{stride} - 2*{padding} + {dilation}*({kernel} - 1) + {output_padding} + 1 = {out}"


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """Left and right padding for padding='same' at stride 1: D(F-1) split, the extra on the right."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2
