"""How PyTorch lays a tensor out in memory: its strides, as far as they decide what a training
step keeps. A view with gaps (a crop, a channel piece) or in another axis order (a permute,
channels-last) makes some layers copy their input, and the copy is new memory that autograd may
keep: flatten copies what does not read as one axis, group and instance norm keep a contiguous
copy, and element-wise layers write their output in their input's order.

Shapes and strides here are whole tensors, the batch axis first; strides count elements. The rules
follow ATen's own: `is_contiguous`, `suggest_memory_format` (channels-last for 4-D and 5-D
tensors), `is_non_overlapping_and_dense`, and TensorIterator's choice of an output's strides.
Each is checked against real tensors in tests/test_memory.py.
"""

from __future__ import annotations

from enum import Enum
from functools import lru_cache
from typing import Sequence

Shape = tuple[int, ...]
Strides = tuple[int, ...]


class MemoryFormat(Enum):
    """How a layer type's new output tensor is laid out (a view keeps its input's storage instead)."""

    CONTIGUOUS = "contiguous"  # the standard row-major order, whatever the input
    INPUT_FORMAT = "input_format"  # channels-last where the input suggests it (4-D, 5-D), else contiguous
    NORM_FORMAT = "norm_format"  # contiguous where the input is, else INPUT_FORMAT (batch norm)
    POOL_FORMAT = "pool_format"  # 2-D: INPUT_FORMAT; 1-D pooled as 2-D with a height of 1; 3-D contiguous
    MAX_POOL_FORMAT = "max_pool_format"  # POOL_FORMAT, but 3-D as INPUT_FORMAT, and 1-D at inference contiguous
    CONV_FORMAT = "conv_format"  # POOL_FORMAT, a 1-D input made contiguous first
    INPUTS_FORMAT = "inputs_format"  # channels-last where every input suggests it (torch.cat), else contiguous
    INPUT_ORDER = "input_order"  # element-wise: TensorIterator's output, in its inputs' axis order
    CHANNELS_LAST = "channels_last"  # computed with channels last and moved back (a channel LayerNorm)


@lru_cache(maxsize=4096)
def contiguous(shape: Shape) -> Strides:
    """Row-major strides: (C*H*W, H*W, W, 1) for (N, C, H, W)."""
    strides = [1] * len(shape)
    for k in range(len(shape) - 1, 0, -1):
        strides[k - 1] = strides[k] * shape[k]
    return tuple(strides)


def channels_last(shape: Shape) -> Strides:
    """Channels innermost, then the spatial axes row-major, the batch axis outermost: the strides
    of `torch.empty(..., memory_format=torch.channels_last)` for (N, C, H, W), and of a tensor
    made as (N, ..., C) and moved back for any rank."""
    order = (0, *range(2, len(shape)), 1) if len(shape) > 2 else tuple(range(len(shape)))
    inner = contiguous(tuple(shape[k] for k in order))
    strides = [0] * len(shape)
    for position, axis in enumerate(order):
        strides[axis] = inner[position]
    return tuple(strides)


def is_contiguous(shape: Shape, strides: Strides) -> bool:
    """`Tensor.is_contiguous()`: axes of size 1 may have any stride."""
    expected = 1
    for n, s in zip(reversed(shape), reversed(strides)):
        if n != 1:
            if s != expected:
                return False
            expected *= n
    return True


def _channels_last_order(shape: Shape) -> tuple[int, ...] | None:
    """ATen's axis order for channels-last checks: C, then the spatial axes from the last, then N."""
    if len(shape) == 4:
        return (1, 3, 2, 0)
    if len(shape) == 5:
        return (1, 4, 3, 2, 0)
    return None


def is_channels_last_contiguous(shape: Shape, strides: Strides) -> bool:
    """`Tensor.is_contiguous(memory_format=torch.channels_last)` (4-D; and channels_last_3d, 5-D)."""
    order = _channels_last_order(shape)
    if order is None:
        return False
    expected = 1
    for d in order:
        if shape[d] != 1:
            if strides[d] != expected:
                return False
            expected *= shape[d]
    return True


def suggests_channels_last(shape: Shape, strides: Strides) -> bool:
    """`suggest_memory_format()` is channels-last (ATen's is_channels_last_strides_2d/3d): the
    strides grow from channels through the spatial axes to the batch axis; ambiguous ties read as
    contiguous."""
    order = _channels_last_order(shape)
    if order is None or strides[1] == 0:
        return False
    low = 0
    for d in order:
        if shape[d] == 0 or strides[d] < low:
            return False
        if d == 0 and low == strides[1]:
            return False
        low = strides[d] * shape[d] if shape[d] > 1 else strides[d]
    return True


def format_strides(shape: Shape, channels_last_format: bool) -> Strides:
    return channels_last(shape) if channels_last_format else contiguous(shape)


def non_overlapping_and_dense(shape: Shape, strides: Strides) -> bool:
    """`is_non_overlapping_and_dense`: a permutation of a contiguous tensor (size-1 axes aside)."""
    if len(shape) == 1:
        return shape[0] < 2 or strides[0] == 1
    order = sorted(range(len(shape)), key=lambda k: (shape[k] < 2, strides[k] if shape[k] >= 2 else 0))
    expected = 1
    for k in order:
        if shape[k] < 2:
            return True
        if strides[k] != expected:
            return False
        expected *= shape[k]
    return True


def elementwise(shape: Shape, operands: Sequence[tuple[Shape, Strides]]) -> Strides:
    """The strides TensorIterator gives the output of an element-wise operation on `operands`
    (broadcast to `shape`), ATen's fast set-up and `reorder_dimensions` rules."""
    if all(s == shape for s, _ in operands):
        if all(is_contiguous(s, t) for s, t in operands):
            return contiguous(shape)
        if all(is_channels_last_contiguous(s, t) for s, t in operands) and len(shape) == 4:
            return channels_last(shape)
        if all(non_overlapping_and_dense(s, t) for s, t in operands) and len({t for _, t in operands}) == 1:
            return operands[0][1]
    ndim = len(shape)
    steps = []  # each operand's strides broadcast to `shape`: 0 along a broadcast axis
    for s, t in operands:
        offset = ndim - len(s)
        full = [0] * offset + [0 if n == 1 and shape[offset + k] != 1 else st for k, (n, st) in enumerate(zip(s, t))]
        steps.append(full)
    if ndim == 1:
        return (1,)

    def should_swap(d0: int, d1: int) -> int:
        for full in steps:
            s0, s1 = full[d0], full[d1]
            if s0 == 0 or s1 == 0:
                continue
            if s0 < s1:
                return -1
            if s0 > s1:
                return 1
            if shape[d0] > shape[d1]:
                return 1
        return 0

    perm = list(range(ndim - 1, -1, -1))  # innermost first
    for i in range(1, ndim):
        d1 = i
        for d0 in range(i - 1, -1, -1):
            comparison = should_swap(perm[d0], perm[d1])
            if comparison > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif comparison < 0:
                break
    strides = [0] * ndim
    step = 1
    for axis in perm:
        strides[axis] = step
        step *= shape[axis]
    return tuple(strides)


def view(shape: Shape, strides: Strides, new_shape: Shape) -> Strides | None:
    """The strides of `tensor.view(new_shape)` (ATen's computeStride), or None where no view
    exists and `reshape` (flatten) copies: each run of axes merged into one must step evenly."""
    new = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    base = strides[-1]  # the step of the current run's innermost axis
    tensor_numel = view_numel = 1
    for d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[d]
        if d == 0 or (shape[d - 1] != 1 and strides[d - 1] != tensor_numel * base):  # a run ends at d
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new[view_d] = view_numel * base
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                base, tensor_numel, view_numel = strides[d - 1], 1, 1
    return tuple(new) if view_d == -1 else None


def broadcast(a: Shape, b: Shape) -> Shape:
    """The shape two tensors broadcast to (they are known to be compatible)."""
    a, b = (1,) * (len(b) - len(a)) + a, (1,) * (len(a) - len(b)) + b
    return tuple(max(m, n) if min(m, n) != 0 else 0 for m, n in zip(a, b))


def _as_2d(shape: Shape, strides: Strides, out: Shape) -> Strides:
    """A 1-D convolution or pooling runs as 2-D on `unsqueeze(2)` of its input (a height of 1):
    the output's strides, that axis squeezed out again."""
    n, c, length = shape
    wide = (n, c, 1, length), (strides[0], strides[1], length * strides[2], strides[2])
    full = format_strides((out[0], out[1], 1, out[2]), suggests_channels_last(*wide))
    return full[0], full[1], full[3]


@lru_cache(maxsize=4096)  # a network repeats its shapes: most answers are asked again
def new_strides(
    layout: MemoryFormat, shape: Shape, inputs: tuple[tuple[Shape, Strides], ...], recorded: bool = False
) -> Strides:
    """The strides of a new output of `shape` laid out as `layout`, from its inputs' shapes and
    strides (and, for a max pool, whether autograd records it: F.max_pool1d of an input that
    needs no gradient takes a path that writes contiguous, even in training)."""
    if layout is MemoryFormat.CHANNELS_LAST:
        return channels_last(shape)
    if layout in (MemoryFormat.POOL_FORMAT, MemoryFormat.MAX_POOL_FORMAT, MemoryFormat.CONV_FORMAT) and len(shape) == 3:
        if layout is MemoryFormat.MAX_POOL_FORMAT and not recorded:
            return contiguous(shape)
        (x, steps) = inputs[0]
        if layout is MemoryFormat.CONV_FORMAT and not is_contiguous(x, steps):
            steps = contiguous(x)
        return _as_2d(x, steps, shape)
    if layout is MemoryFormat.NORM_FORMAT and is_contiguous(*inputs[0]):
        return contiguous(shape)
    if layout is MemoryFormat.POOL_FORMAT and len(shape) == 5:  # avg_pool3d and the adaptive 3-D pools
        return contiguous(shape)
    if layout in (
        MemoryFormat.INPUT_FORMAT,
        MemoryFormat.NORM_FORMAT,
        MemoryFormat.POOL_FORMAT,
        MemoryFormat.MAX_POOL_FORMAT,
        MemoryFormat.CONV_FORMAT,
    ):
        return format_strides(shape, suggests_channels_last(*inputs[0]))
    if layout is MemoryFormat.INPUTS_FORMAT:
        return format_strides(shape, all(suggests_channels_last(*x) for x in inputs))
    if layout is MemoryFormat.INPUT_ORDER:
        out = inputs[0]
        for other in inputs[1:]:  # a + b + c runs as (a + b) + c
            joined = broadcast(out[0], other[0])
            out = (joined, elementwise(joined, [out, other]))
        return out[1] if len(inputs) > 1 else elementwise(shape, inputs)
    return contiguous(shape)


def kept_as_is(layout: MemoryFormat, shape: Shape, strides: Strides) -> bool:
    """Whether `input.contiguous(memory_format)`, in the format a `layout` layer writes, returns
    the input itself (True) or a copy: group norm calls it in the input's suggested format,
    instance norm in the standard one."""
    if layout is MemoryFormat.INPUT_FORMAT and suggests_channels_last(shape, strides):
        return is_channels_last_contiguous(shape, strides)
    return is_contiguous(shape, strides)
