"""Every registered layer type against torch.nn, with an oracle that owes nothing to cnncalc.

Each type has a direct builder here, written from PyTorch's definition of the layer (the
`torch.nn` module or the functional call a PyTorch model uses), not from the bridge's
`torch_module` (cnncalc/torch_bridge): a mistake shared by a layer type and its bridge entry
cannot hide. Hypothesis draws arguments and input sizes; cnncalc's output shape, weights,
biases, buffers and MACs must equal what torch says: the tensor it returns, the numel of its
parameters (those named `bias` are biases) and buffers, and FlopCounterMode's FLOPs / 2 (zero
where FlopCounterMode does not count the op, which cnncalc's MACs must then not count either).

Whatever torch refuses to build or run, cnncalc must refuse too (it never answers for a layer
that PyTorch cannot run). Where cnncalc refuses what torch runs, the case is dropped: those
refusals are deliberate and tested with their messages elsewhere (tests/test_layers.py).

Skipped where torch is not installed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from cnncalc.errors import CnncalcError
from cnncalc.layers import REGISTRY, build_layer

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

BATCH = 2  # more than one sample: per-sample numbers must not depend on the batch


@dataclass
class Case:
    """One drawn layer: cnncalc's arguments, the per-sample input shapes, and the same layer in
    torch: `run` maps the input tensors to the output; `module` holds its parameters and buffers."""

    args: dict[str, Any]
    inputs: list[tuple[int, ...]]
    make: Callable[[], tuple[Callable[..., Any], nn.Module | None]]
    note: str = field(default="")


BUILDERS: dict[str, Callable[[], st.SearchStrategy[Case]]] = {}


def builder(*kinds: str):
    def register(fn):
        for kind in kinds:
            BUILDERS[kind] = lambda fn=fn, kind=kind: fn(kind)
        return fn

    return register


def module(m: nn.Module) -> tuple[Callable[..., Any], nn.Module]:
    return m, m


def function(f: Callable[..., Any]) -> tuple[Callable[..., Any], None]:
    return f, None


# ----- drawing shapes and arguments ------------------------------------------------------------

RANK = st.integers(1, 3)


def spatial(draw, rank: int, low: int = 1, high: int = 9) -> tuple[int, ...]:
    return tuple(draw(st.integers(low, high)) for _ in range(rank))


def per_axis(draw, rank: int, values: st.SearchStrategy[int]) -> tuple[Any, tuple[int, ...]]:
    """A cnncalc argument (one int, or a list of one per axis) and what it means on every axis."""
    if draw(st.booleans()):
        v = draw(values)
        return v, (v,) * rank
    vs = tuple(draw(values) for _ in range(rank))
    return list(vs), vs


def expand(value: Any, rank: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * rank


NUMBER = st.floats(0.05, 3.0).map(lambda v: round(v, 3))
EPS = st.sampled_from([1e-5, 1e-3, 0.1])


# ----- convolution and pooling -------------------------------------------------------------------


@builder("conv")
@st.composite
def conv(draw, kind):
    rank = draw(RANK)
    size = spatial(draw, rank)
    groups = draw(st.integers(1, 3))
    c, out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel, k = per_axis(draw, rank, st.integers(1, 4))
    stride, s = per_axis(draw, rank, st.integers(1, 3))
    dilation, d = per_axis(draw, rank, st.integers(1, 2))
    padding = draw(
        st.one_of(
            st.sampled_from(["same", "valid", "tf_same"]),
            st.integers(0, 2),
            st.lists(st.integers(0, 2), min_size=rank, max_size=rank),
        )
    )
    if padding == "tf_same":  # TensorFlow's 'SAME': out = ceil(W/S), the padding split, the odd one at the end
        pads = []
        for w, kk, ss, dd in zip(size, k, s, d):
            total = max((-(-w // ss) - 1) * ss + dd * (kk - 1) + 1 - w, 0)
            pads = [total // 2, total - total // 2, *pads]  # F.pad's pairs, last axis first
        bias = draw(st.booleans())
        args = {
            "out": out,
            "kernel": kernel,
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "groups": groups,
            "bias": bias,
        }
        conv_cls = getattr(nn, f"Conv{rank}d")

        def padded():
            conv = conv_cls(c, out, k, s, 0, d, groups, bias)
            return (lambda x: conv(F.pad(x, pads))), conv

        return Case(args, [(c, *size)], padded)
    bias = draw(st.booleans())
    args = {
        "out": out,
        "kernel": kernel,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "bias": bias,
    }
    conv_cls = getattr(nn, f"Conv{rank}d")
    torch_padding = tuple(padding) if isinstance(padding, list) else padding
    return Case(args, [(c, *size)], lambda: module(conv_cls(c, out, k, s, torch_padding, d, groups, bias)))


class _ScaledStdConv2d(nn.Conv2d):
    """timm's ScaledStdConv2d (timm/layers/std_conv.py), written out: the weight standardised per
    filter by a batch norm over the filters, times gain * scale (without a gain: StdConv2d)."""

    def __init__(self, *args, eps, gain, scale, **kwargs):
        super().__init__(*args, **kwargs)
        self.eps, self.scale = eps, scale
        self.gain = nn.Parameter(torch.rand(self.out_channels, 1, 1, 1) + 0.5) if gain else None

    def forward(self, x):
        factor = None if self.gain is None else (self.gain * self.scale).view(-1)
        weight = F.batch_norm(
            self.weight.reshape(1, self.out_channels, -1),
            None,
            None,
            weight=factor,
            training=True,
            momentum=0.0,
            eps=self.eps,
        ).reshape_as(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


@builder("std_conv")
@st.composite
def std_conv(draw, kind):
    groups = draw(st.integers(1, 3))
    c, out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel, k = per_axis(draw, 2, st.integers(1, 4))
    stride, s = per_axis(draw, 2, st.integers(1, 3))
    padding = draw(st.integers(0, 2))
    bias, gain, eps = draw(st.booleans()), draw(st.booleans()), draw(EPS)
    scale = draw(NUMBER) if gain else None
    shape = (c, *spatial(draw, draw(st.sampled_from([2, 2, 2, 1]))))  # at times one spatial axis: refused
    args = {
        "out": out,
        "kernel": kernel,
        "stride": stride,
        "padding": padding,
        "groups": groups,
        "bias": bias,
        "eps": eps,
        "gain": gain,
        "scale": scale,
    }
    return Case(
        args,
        [shape],
        lambda: module(_ScaledStdConv2d(c, out, k, s, padding, 1, groups, bias, eps=eps, gain=gain, scale=scale)),
    )


class _BlurPool2d(nn.Module):
    """timm's BlurPool2d (timm/layers/blur_pool.py), written out: the binomial coefficients
    C(F - 1, k) / 2^(F - 1) outer themselves, one filter per channel in a buffer, F.conv2d at a stride
    with groups = channels (timm pads by reflection before it, a row of its own in cnncalc)."""

    def __init__(self, channels, filt_size, stride, padding):
        super().__init__()
        coeffs = torch.tensor([math.comb(filt_size - 1, k) for k in range(filt_size)], dtype=torch.float32)
        coeffs = coeffs / 2 ** (filt_size - 1)
        filt = (coeffs[:, None] * coeffs[None, :])[None, None].repeat(channels, 1, 1, 1)
        self.register_buffer("filt", filt, persistent=False)
        self.channels, self.stride, self.padding = channels, stride, padding

    def forward(self, x):
        return F.conv2d(x, self.filt, stride=self.stride, padding=self.padding, groups=self.channels)


@builder("blur_pool")
@st.composite
def blur_pool(draw, kind):
    c, k = draw(st.integers(1, 4)), draw(st.integers(1, 5))  # a filter of 1 tap: refused by both
    stride, s = per_axis(draw, 2, st.integers(1, 3))
    padding, p = per_axis(draw, 2, st.integers(0, 2))
    shape = (c, *spatial(draw, draw(st.sampled_from([2, 2, 2, 1]))))  # at times one spatial axis: refused
    args = {"kernel": k, "stride": stride, "padding": padding, "persistent": draw(st.booleans())}
    return Case(args, [shape], lambda: module(_BlurPool2d(c, k, s, p)))


class _ClassToken(nn.Module):
    """timm's VisionTransformer._pos_embed, its class token: a parameter [1, n, D] expanded over the
    batch and put before the tokens."""

    def __init__(self, tokens, width):
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, tokens, width))

    def forward(self, x):
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)


@builder("class_token")
@st.composite
def class_token(draw, kind):
    tokens, width = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    shape = (
        draw(st.integers(1, 9)),
        width,
        *spatial(draw, draw(st.sampled_from([0, 0, 0, 1]))),
    )  # at times 3-D: refused
    return Case({"tokens": tokens}, [shape], lambda: module(_ClassToken(tokens, width)))


@builder("im2col")
@st.composite
def im2col(draw, kind):
    kernel, k = per_axis(draw, 2, st.integers(1, 3))
    stride, s = per_axis(draw, 2, st.integers(1, 3))
    padding, p = per_axis(draw, 2, st.integers(0, 2))
    dilation, d = per_axis(draw, 2, st.integers(1, 2))
    shape = (draw(st.integers(1, 3)), *spatial(draw, draw(st.sampled_from([2, 2, 2, 1]))))  # at times 1-D: refused
    args = {"kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation}
    return Case(args, [shape], lambda: module(nn.Unfold(k, d, p, s)))


@builder("col2im")
@st.composite
def col2im(draw, kind):
    kernel, k = per_axis(draw, 2, st.integers(1, 3))
    stride, s = per_axis(draw, 2, st.integers(1, 3))
    padding, p = per_axis(draw, 2, st.integers(0, 2))
    dilation, d = per_axis(draw, 2, st.integers(1, 2))
    size, out = per_axis(draw, 2, st.integers(1, 8))
    windows = [(n + 2 * pp - dd * (kk - 1) - 1) // ss + 1 for n, kk, ss, pp, dd in zip(out, k, s, p, d)]
    # the columns of that image's windows, at times one too many (refused by both)
    columns = max(1, math.prod(windows)) + draw(st.sampled_from([0, 0, 0, 1]))
    shape = (draw(st.integers(1, 3)) * k[0] * k[1], columns)
    args = {"output_size": size, "kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation}
    return Case(args, [shape], lambda: module(nn.Fold(out, k, d, p, s)))


@builder("max")
@st.composite
def max_values(draw, kind):
    shape = (draw(st.integers(1, 4)), *spatial(draw, draw(st.integers(0, 2))))
    dim, keepdim = draw(st.integers(-len(shape) - 1, len(shape))), draw(st.booleans())  # the batch axis: refused
    return Case({"dim": dim, "keepdim": keepdim}, [shape], lambda: function(lambda x: x.max(dim, keepdim=keepdim)[0]))


@builder("conv_transpose")
@st.composite
def conv_transpose(draw, kind):
    rank = draw(RANK)
    size = spatial(draw, rank, high=6)
    groups = draw(st.integers(1, 3))
    c, out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel, k = per_axis(draw, rank, st.integers(1, 4))
    stride, s = per_axis(draw, rank, st.integers(1, 3))
    dilation, d = per_axis(draw, rank, st.integers(1, 2))
    padding, p = per_axis(draw, rank, st.integers(0, 2))
    output_padding, op = per_axis(draw, rank, st.integers(0, 2))
    bias = draw(st.booleans())
    args = {
        "out": out,
        "kernel": kernel,
        "stride": stride,
        "padding": padding,
        "output_padding": output_padding,
        "dilation": dilation,
        "groups": groups,
        "bias": bias,
    }
    cls = getattr(nn, f"ConvTranspose{rank}d")
    return Case(args, [(c, *size)], lambda: module(cls(c, out, k, s, p, op, groups, bias, d)))


@builder("maxpool", "avgpool")
@st.composite
def pool(draw, kind):
    rank = draw(RANK)
    size = spatial(draw, rank)
    c = draw(st.integers(1, 4))
    kernel, k = per_axis(draw, rank, st.integers(1, 4))
    stride = draw(st.one_of(st.none(), st.integers(1, 3), st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    s = expand(stride, rank) if stride is not None else None
    padding, p = per_axis(draw, rank, st.integers(0, 2))
    ceil_mode = draw(st.booleans())
    args = {"kernel": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil_mode}
    if kind == "maxpool":
        dilation, d = per_axis(draw, rank, st.integers(1, 2))
        args["dilation"] = dilation
        cls = getattr(nn, f"MaxPool{rank}d")
        return Case(args, [(c, *size)], lambda: module(cls(k, s, p, d, ceil_mode=ceil_mode)))
    count_include_pad = draw(st.booleans())
    args["count_include_pad"] = count_include_pad
    cls = getattr(nn, f"AvgPool{rank}d")
    return Case(args, [(c, *size)], lambda: module(cls(k, s, p, ceil_mode, count_include_pad)))


@builder("adaptive_avgpool", "adaptive_maxpool")
@st.composite
def adaptive_pool(draw, kind):
    rank = draw(RANK)
    size = spatial(draw, rank)
    output, o = per_axis(draw, rank, st.integers(1, 10))
    name = {"adaptive_avgpool": "AdaptiveAvgPool", "adaptive_maxpool": "AdaptiveMaxPool"}[kind]
    cls = getattr(nn, f"{name}{rank}d")
    return Case({"output": output}, [(draw(st.integers(1, 4)), *size)], lambda: module(cls(o)))


@builder("global_avgpool")
@st.composite
def global_avgpool(draw, kind):
    rank = draw(RANK)
    shape = (draw(st.integers(1, 4)), *spatial(draw, rank))
    # torchvision's classifiers: the mean over every spatial axis, kept as axes of size 1
    return Case({}, [shape], lambda: function(lambda x: x.mean(dim=tuple(range(2, 2 + rank)), keepdim=True)))


# ----- dense, shape and order ---------------------------------------------------------------------


@builder("linear")
@st.composite
def linear(draw, kind):
    out, bias = draw(st.integers(1, 6)), draw(st.booleans())
    channels_last = draw(st.booleans())
    shape = (draw(st.integers(1, 8)), *(spatial(draw, draw(st.integers(1, 3)), high=5) if channels_last else ()))
    args = {"out": out, "bias": bias, "channels_last": channels_last}
    return Case(args, [shape], lambda: module(nn.Linear(shape[-1], out, bias)))


@builder("flatten")
@st.composite
def flatten(draw, kind):
    shape = (draw(st.integers(1, 4)), *spatial(draw, draw(st.integers(0, 3)), high=5))
    if draw(st.booleans()):
        return Case({}, [shape], lambda: module(nn.Flatten()))
    start, end = draw(axis(len(shape))), draw(axis(len(shape)))
    return Case({"start_dim": start, "end_dim": end}, [shape], lambda: function(lambda x: torch.flatten(x, start, end)))


def axis(rank: int, extra: int = 0) -> st.SearchStrategy[int]:
    """An axis as PyTorch counts it on a tensor of `rank` + 1 axes (+ `extra`), out of range at times."""
    ndim = rank + 1 + extra
    return st.integers(-ndim - 1, ndim)


@builder("reshape")
@st.composite
def reshape(draw, kind):
    shape = any_shape(draw)
    total = math.prod(shape)
    sizes, left = [], total
    for _ in range(draw(st.integers(0, 4))):
        n = draw(st.sampled_from([d for d in range(1, left + 1) if left % d == 0]))
        sizes.append(n)
        left //= n
    sizes.append(left if draw(st.booleans()) else draw(st.integers(1, total)))  # at times a wrong size
    if draw(st.booleans()):
        sizes[draw(st.integers(0, len(sizes) - 1))] = -1
    view = draw(st.booleans())  # x.view(N, ...) or torch.reshape: the same numbers, view or copy
    return Case(
        {"shape": sizes},
        [shape],
        lambda: function(lambda x: x.view(x.shape[0], *sizes) if view else torch.reshape(x, (x.shape[0], *sizes))),
    )


@builder("unsqueeze")
@st.composite
def unsqueeze(draw, kind):
    shape = any_shape(draw)
    dims = [draw(axis(len(shape), extra=k + 1)) for k in range(draw(st.integers(1, 3)))]

    def run(x):
        for d in dims:
            x = x.unsqueeze(d)
        return x

    return Case({"dim": dims if len(dims) > 1 or draw(st.booleans()) else dims[0]}, [shape], lambda: function(run))


@builder("expand")
@st.composite
def expand_view(draw, kind):
    shape = tuple(draw(st.sampled_from([1, n])) for n in any_shape(draw))
    # each axis: kept (-1), its own size, or a new size (an axis of size 1 repeated; else refused)
    sizes = [draw(st.sampled_from([-1, n, draw(st.integers(1, 6))])) for n in shape]
    if draw(st.integers(0, 5)) == 0:  # at times a leading axis more (torch adds it; it would be the batch's)
        sizes = [draw(st.integers(1, 3)), *sizes]
    return Case({"sizes": sizes}, [shape], lambda: function(lambda x: x.expand(-1, *sizes)))


@builder("squeeze")
@st.composite
def squeeze(draw, kind):
    shape = tuple(draw(st.sampled_from([1, n])) for n in any_shape(draw))
    how = draw(st.sampled_from(["all", "one", "list"]))
    if how == "all":  # every size-1 axis but the batch (which x.squeeze() would drop at batch 1)
        return Case({}, [shape], lambda: function(lambda x: x.squeeze(tuple(range(1, x.ndim)))))
    if how == "one":
        d = draw(axis(len(shape)))
        return Case({"dim": d}, [shape], lambda: function(lambda x: x.squeeze(d)))
    dims = draw(st.lists(axis(len(shape)), min_size=1, max_size=3))
    return Case({"dim": dims}, [shape], lambda: function(lambda x: x.squeeze(tuple(dims))))


@builder("contiguous")
@st.composite
def contiguous(draw, kind):
    return Case({}, [any_shape(draw)], lambda: function(lambda x: x.contiguous()))


@builder("permute")
@st.composite
def permute(draw, kind):
    shape = (draw(st.integers(1, 4)), *spatial(draw, draw(st.integers(1, 3)), high=5))
    dims = [0, *draw(st.permutations(range(1, len(shape) + 1)))]
    return Case({"dims": dims}, [shape], lambda: function(lambda x: x.permute(*dims)))


# ----- normalisation -----------------------------------------------------------------------------


@builder("batchnorm")
@st.composite
def batchnorm(draw, kind):
    rank = draw(st.integers(0, 3))
    c = draw(st.integers(1, 6))
    eps, momentum = draw(EPS), draw(st.one_of(st.none(), st.floats(0.01, 0.9)))
    affine, track = draw(st.booleans()), draw(st.booleans())
    args = {"eps": eps, "momentum": momentum, "affine": affine, "track_running_stats": track}
    if draw(st.booleans()):  # LeViT's bn(x.flatten(0, 1)).reshape_as(x): channels on the last axis
        args["channels_last"] = True
        norm = nn.BatchNorm1d(c, eps, momentum, affine, track)
        shape = (*spatial(draw, max(rank, 1), high=5), c)
        return Case(args, [shape], lambda: (lambda x: norm(x.flatten(0, -2)).reshape_as(x), norm))
    cls = getattr(nn, f"BatchNorm{max(rank, 1)}d")
    return Case(args, [(c, *spatial(draw, rank, high=5))], lambda: module(cls(c, eps, momentum, affine, track)))


@builder("lrn")
@st.composite
def lrn(draw, kind):
    rank = draw(st.integers(0, 3))
    size, alpha, beta, k = draw(st.integers(1, 6)), draw(NUMBER), draw(NUMBER), draw(NUMBER)
    shape = (draw(st.integers(1, 8)), *spatial(draw, rank, high=5))
    args = {"size": size, "alpha": alpha, "beta": beta, "k": k}
    return Case(args, [shape], lambda: module(nn.LocalResponseNorm(size, alpha, beta, k)))


class _LayerNorm2d(nn.LayerNorm):
    """ConvNeXt's LayerNorm2d (torchvision.models.convnext): over the channels at every position."""

    def forward(self, x):
        last = list(range(2, x.dim())) + [1]
        back = [0, x.dim() - 1, *range(1, x.dim() - 1)]
        return super().forward(x.permute(0, *last)).permute(*back)


@builder("layernorm")
@st.composite
def layernorm(draw, kind):
    shape = (draw(st.integers(1, 6)), *spatial(draw, draw(st.integers(0, 3)), high=5))
    over = draw(st.one_of(st.just("channels"), st.integers(1, 4)))
    eps, affine, bias = draw(EPS), draw(st.booleans()), draw(st.booleans())
    args = {"over": over, "eps": eps, "affine": affine, "bias": bias}
    if over == "channels":
        return Case(args, [shape], lambda: module(_LayerNorm2d(shape[0], eps, affine, bias)))
    return Case(args, [shape], lambda: module(nn.LayerNorm(list(shape[len(shape) - over :]), eps, affine, bias)))


@builder("groupnorm")
@st.composite
def groupnorm(draw, kind):
    groups = draw(st.integers(1, 4))
    c = groups * draw(st.integers(1, 3)) if draw(st.integers(0, 9)) else draw(st.integers(1, 8))
    shape = (c, *spatial(draw, draw(st.integers(0, 3)), high=5))
    eps, affine, bias = draw(EPS), draw(st.booleans()), draw(st.booleans())
    args = {"groups": groups, "eps": eps, "affine": affine, "bias": bias}
    return Case(args, [shape], lambda: module(nn.GroupNorm(groups, c, eps, affine, bias=bias)))


@builder("instancenorm")
@st.composite
def instancenorm(draw, kind):
    rank = draw(RANK)
    shape = (draw(st.integers(1, 6)), *spatial(draw, rank, high=5))
    eps, momentum = draw(EPS), draw(st.one_of(st.none(), st.floats(0.01, 0.9)))
    affine, track, bias = draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
    args = {"eps": eps, "momentum": momentum, "affine": affine, "track_running_stats": track, "bias": bias}
    cls = getattr(nn, f"InstanceNorm{rank}d")
    return Case(args, [shape], lambda: module(cls(shape[0], eps, momentum, affine, track, bias=bias)))


# ----- pass-through, resampling, borders -----------------------------------------------------------


def any_shape(draw, low_rank: int = 0) -> tuple[int, ...]:
    return (draw(st.integers(1, 6)), *spatial(draw, draw(st.integers(low_rank, 3)), high=5))


@builder("dropout")
@st.composite
def dropout(draw, kind):
    p = draw(st.floats(0, 1))
    return Case({"p": p}, [any_shape(draw)], lambda: module(nn.Dropout(p)))


@builder("identity")
@st.composite
def identity(draw, kind):
    return Case({}, [any_shape(draw)], lambda: module(nn.Identity()))


MODES_BY_RANK = {
    1: ["nearest", "nearest-exact", "linear"],
    2: ["nearest", "nearest-exact", "bilinear", "bicubic"],
    3: ["nearest", "nearest-exact", "trilinear"],
}


@builder("upsample")
@st.composite
def upsample(draw, kind):
    rank = draw(RANK)
    shape = (draw(st.integers(1, 3)), *spatial(draw, rank, high=6))
    mode = draw(st.sampled_from(MODES_BY_RANK[rank]))
    args: dict[str, Any] = {"mode": mode}
    if draw(st.booleans()):
        scale = draw(st.one_of(st.floats(0.3, 3.0).map(lambda v: round(v, 2)), st.integers(1, 3)))
        args["scale_factor"] = scale
        torch_args: dict[str, Any] = {"scale_factor": float(scale)}
    else:
        size, sizes = per_axis(draw, rank, st.integers(1, 10))
        args["size"] = size
        torch_args = {"size": sizes}
    if "linear" in mode or mode == "bicubic":
        align = draw(st.one_of(st.none(), st.booleans()))
        args["align_corners"] = align
        torch_args["align_corners"] = align
    return Case(args, [shape], lambda: module(nn.Upsample(mode=mode, **torch_args)))


@builder("pixel_shuffle", "pixel_unshuffle")
@st.composite
def pixel_shuffle(draw, kind):
    factor = draw(st.integers(1, 3))
    rank = draw(st.sampled_from([2, 2, 2, 1, 3]))  # PyTorch's modules read [C, H, W]; the others are refused
    if kind == "pixel_shuffle":
        shape = (factor * factor * draw(st.integers(1, 3)), *spatial(draw, rank, high=4))
        return Case({"factor": factor}, [shape], lambda: module(nn.PixelShuffle(factor)))
    shape = (draw(st.integers(1, 3)), *(factor * draw(st.integers(1, 3)) for _ in range(rank)))
    return Case({"factor": factor}, [shape], lambda: module(nn.PixelUnshuffle(factor)))


@builder("channel_shuffle")
@st.composite
def channel_shuffle(draw, kind):
    groups = draw(st.integers(1, 4))
    c = groups * draw(st.integers(1, 3))
    shape = (c, *spatial(draw, draw(st.integers(1, 3)), high=4))
    return Case({"groups": groups}, [shape], lambda: module(nn.ChannelShuffle(groups)))


def amounts(draw, rank: int, low: int = 0, high: int = 3) -> tuple[Any, list[int]]:
    """Per-side amounts as cnncalc reads them (one int, or two per spatial axis, last axis first)
    and as F.pad reads them."""
    if draw(st.booleans()):
        a = draw(st.integers(low, high))
        return a, [a] * (2 * rank)
    flat = [draw(st.integers(low, high)) for _ in range(2 * rank)]
    return flat, flat


@builder("pad", "zero_pad")
@st.composite
def pad(draw, kind):
    rank = draw(RANK)
    shape = (draw(st.integers(1, 3)), *spatial(draw, rank, high=6))
    # at times negative amounts: F.pad crops there (NASNet's nn.ZeroPad2d((-1, 1, -1, 1))), in constant mode only
    padding, flat = amounts(draw, rank, low=draw(st.sampled_from([0, 0, -3])))
    if kind == "zero_pad":
        return Case({"padding": padding}, [shape], lambda: function(lambda x: F.pad(x, flat)))
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    if isinstance(padding, list) and draw(st.booleans()):  # one more pair: F.pad reaches the channels
        padding = flat = [*flat, draw(st.integers(0, 3)), draw(st.integers(0, 3))]
    # timm's 'same' max pooling pads with -inf
    value = draw(st.one_of(NUMBER, st.just(-math.inf))) if mode == "constant" else 0.0
    args = {"padding": padding, "mode": mode, "value": value}
    if mode == "constant":
        return Case(args, [shape], lambda: function(lambda x: F.pad(x, flat, mode, value)))
    return Case(args, [shape], lambda: function(lambda x: F.pad(x, flat, mode)))


@builder("crop")
@st.composite
def crop(draw, kind):
    rank = draw(RANK)
    shape = (draw(st.integers(1, 3)), *spatial(draw, rank, high=8))
    cut, flat = amounts(draw, rank)
    # cutting is padding by negative amounts: F.pad's own definition of a crop
    return Case({"amounts": cut}, [shape], lambda: function(lambda x: F.pad(x, [-a for a in flat])))


@builder("center_crop")
@st.composite
def center_crop(draw, kind):
    rank = draw(RANK)
    shape = (draw(st.integers(1, 3)), *spatial(draw, rank, high=8))
    target = tuple(draw(st.integers(1, n)) for n in shape[1:])

    def cut(x, *like):
        # the centre of each axis: (size - want) // 2 positions before it (U-Net's skip crop)
        index = [slice(None), slice(None)] + [slice((n - t) // 2, (n - t) // 2 + t) for n, t in zip(shape[1:], target)]
        return x[tuple(index)]

    if draw(st.booleans()):
        return Case({"size": list(target)}, [shape], lambda: function(cut))
    other = (draw(st.integers(1, 3)), *target)
    return Case({"like": "other"}, [shape, other], lambda: function(cut))


# ----- activations ---------------------------------------------------------------------------------

ACTIVATIONS: dict[str, Callable[..., Any]] = {
    "relu": lambda draw: ({}, nn.ReLU()),
    "sigmoid": lambda draw: ({}, nn.Sigmoid()),
    "tanh": lambda draw: ({}, nn.Tanh()),
    "silu": lambda draw: ({}, nn.SiLU()),
    "relu6": lambda draw: ({}, nn.ReLU6()),
    "hardswish": lambda draw: ({}, nn.Hardswish()),
    "hardsigmoid": lambda draw: ({}, nn.Hardsigmoid()),
    "mish": lambda draw: ({}, nn.Mish()),
    "log_softmax": lambda draw: ({}, nn.LogSoftmax(dim=1)),
}


@builder(*ACTIVATIONS)
@st.composite
def activation(draw, kind):
    args, m = ACTIVATIONS[kind](draw)
    return Case(args, [any_shape(draw)], lambda: module(m))


@builder("softmax")
@st.composite
def softmax(draw, kind):
    shape = any_shape(draw)
    dim = draw(st.one_of(st.just(1), axis(len(shape))))  # the batch axis 0 at times: cnncalc refuses it
    return Case({"dim": dim}, [shape], lambda: module(nn.Softmax(dim=dim)))


@builder("leaky_relu", "elu", "gelu", "softplus")
@st.composite
def activation_with_arguments(draw, kind):
    if kind == "leaky_relu":
        slope = draw(NUMBER)
        args, make = {"negative_slope": slope}, lambda: nn.LeakyReLU(slope)
    elif kind == "elu":
        alpha = draw(NUMBER)
        args, make = {"alpha": alpha}, lambda: nn.ELU(alpha)
    elif kind == "gelu":
        approximate = draw(st.sampled_from(["none", "tanh"]))
        args, make = {"approximate": approximate}, lambda: nn.GELU(approximate)
    else:
        beta, threshold = draw(NUMBER), draw(st.floats(1, 30).map(lambda v: round(v, 2)))
        args, make = {"beta": beta, "threshold": threshold}, lambda: nn.Softplus(beta, threshold)
    return Case(args, [any_shape(draw)], lambda: module(make()))


@builder("prelu")
@st.composite
def prelu(draw, kind):
    shape = any_shape(draw)
    n = draw(st.sampled_from([1, shape[0], draw(st.integers(1, 6))]))
    init = draw(NUMBER)
    return Case({"num_parameters": n, "init": init}, [shape], lambda: module(nn.PReLU(n, init)))


# ----- merges, residual pieces, splits -------------------------------------------------------------


def broadcastable(draw, count: int) -> list[tuple[int, ...]]:
    """`count` shapes of one rank that broadcast together: some axes of some inputs are 1."""
    base = any_shape(draw)
    return [tuple(1 if draw(st.integers(0, 3)) == 0 else n for n in base) for _ in range(count)]


@builder("add")
@st.composite
def add(draw, kind):
    shapes = broadcastable(draw, draw(st.integers(2, 3)))

    def total(*xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out

    return Case({}, shapes, lambda: function(total))


@builder("mul")
@st.composite
def mul(draw, kind):
    return Case({}, broadcastable(draw, 2), lambda: function(lambda a, b: a * b))


@builder("matmul")
@st.composite
def matmul(draw, kind):
    lead = spatial(draw, draw(st.integers(0, 2)), high=4)
    n, k, m = (draw(st.integers(1, 5)) for _ in range(3))
    a, b = (*lead, n, k), (*lead, k, m)
    wrong = draw(st.integers(0, 5))
    if wrong == 0:  # another k
        b = (*lead, draw(st.integers(1, 5)), m)
    elif wrong == 1:  # leading axes that torch broadcasts (or refuses)
        b = (*(draw(st.sampled_from([1, s, s + 1])) for s in lead), k, m)
    elif wrong == 2:  # another rank: torch aligns the batch axis with another
        b = (*spatial(draw, draw(st.integers(0, 2)), high=4), k, m)
    # torch.bmm takes 3-D tensors only: on others torch refuses it, and so must cnncalc (a matmul of them)
    op = draw(
        st.sampled_from(
            [torch.matmul, lambda x, y: x @ y, torch.bmm]
            if len(a) == len(b) == 2
            else [torch.matmul, lambda x, y: x @ y]
        )
    )
    return Case({}, [a, b], lambda: function(op))


@builder("concat")
@st.composite
def concat(draw, kind):
    base = any_shape(draw)
    dim = draw(st.one_of(st.just(1), axis(len(base))))
    k = dim % (len(base) + 1) - 1 if -len(base) - 1 <= dim <= len(base) else 0
    # inputs that differ on the axis joined (at times on another one too)
    shapes = [
        tuple(draw(st.integers(1, 4)) if i == k or not draw(st.integers(0, 9)) else n for i, n in enumerate(base))
        for _ in range(draw(st.integers(2, 3)))
    ]
    return Case({} if dim == 1 else {"dim": dim}, shapes, lambda: function(lambda *xs: torch.cat(xs, dim=dim)))


@builder("stochastic_depth")
@st.composite
def stochastic_depth(draw, kind):
    p, mode = draw(st.floats(0, 1)), draw(st.sampled_from(["row", "batch"]))
    # torchvision.ops.stochastic_depth returns its input unchanged outside training
    return Case({"p": p, "mode": mode}, [any_shape(draw, low_rank=1)], lambda: function(lambda x: x))


class _LayerScale(nn.Module):
    """ConvNeXt's layer scale (torchvision's CNBlock): a [C, 1, ...] parameter times the input."""

    def __init__(self, shape, init):
        super().__init__()
        self.layer_scale = nn.Parameter(torch.full(shape, init))

    def forward(self, x):
        return x * self.layer_scale


@builder("layer_scale")
@st.composite
def layer_scale(draw, kind):
    shape, init = any_shape(draw, low_rank=1), draw(NUMBER)
    return Case({"init": init}, [shape], lambda: module(_LayerScale((shape[0],) + (1,) * (len(shape) - 1), init)))


@builder("chunk", "split")
@st.composite
def pieces(draw, kind):
    shape = any_shape(draw)
    dim = draw(st.one_of(st.just(1), axis(len(shape))))
    length = shape[dim % (len(shape) + 1) - 1] if -len(shape) - 1 <= dim <= len(shape) else 1
    if kind == "chunk":
        chunks = draw(st.integers(1, length + 1))
        piece = draw(st.integers(0, chunks - 1))
        return Case(
            {"chunks": chunks, "dim": dim, "piece": piece},
            [shape],
            lambda: function(lambda x: torch.chunk(x, chunks, dim=dim)[piece]),
        )
    if draw(st.booleans()):  # torch's integer: the size of every piece, the last smaller
        sizes: Any = draw(st.integers(1, length + 1))
        count = math.ceil(length / sizes)
    else:
        sizes, left = [], length
        while left:
            sizes.append(draw(st.integers(1, left)))
            left -= sizes[-1]
        count = len(sizes)
    piece = draw(st.integers(0, count + 1))  # at times one that is not there
    return Case(
        {"sizes": sizes, "dim": dim, "piece": piece},
        [shape],
        lambda: function(lambda x: torch.split(x, sizes, dim=dim)[piece]),
    )


@builder("unbind")
@st.composite
def unbind(draw, kind):
    shape = any_shape(draw)
    dim = draw(st.one_of(st.just(1), axis(len(shape))))
    piece = draw(st.integers(0, 4))  # at times one that is not there
    return Case({"dim": dim, "piece": piece}, [shape], lambda: function(lambda x: torch.unbind(x, dim=dim)[piece]))


@builder("unfold")
@st.composite
def unfold(draw, kind):
    shape = any_shape(draw)
    dim = draw(st.one_of(st.just(2), axis(len(shape))))
    size, step = draw(st.integers(1, 7)), draw(st.integers(1, 4))
    return Case(
        {"dim": dim, "size": size, "step": step}, [shape], lambda: function(lambda x: x.unfold(dim, size, step))
    )


@builder("attention")
@st.composite
def attention(draw, kind):
    h, n, m, d = (draw(st.integers(1, 5)) for _ in range(4))
    q, k, v = (h, n, d), (h, m, d), (h, m, d)
    wrong = draw(st.integers(0, 6))
    if wrong == 0:  # v of another feature size: torch runs it (unfused), cnncalc refuses it
        v = (h, m, draw(st.integers(1, 5)))
    elif wrong == 1:  # another length for v, another feature size for k, or another rank
        k, v = draw(st.sampled_from([(k, (h, m + 1, d)), ((h, m, d + 1), v), ((m, d), (m, d))]))
    gqa = draw(st.booleans())
    if draw(st.booleans()):  # k and v with fewer heads: one (multi-query, broadcast), or any (grouped)
        g = draw(st.one_of(st.just(1), st.integers(1, 5)))
        k, v = (g, *k[1:]), (g, *v[1:])
        if draw(st.integers(0, 3)) == 0:  # at times, heads only on one of them
            v = (h, *v[1:])
    inputs = [q, k, v]
    if draw(st.booleans()):  # an additive mask, broadcast to the scores [h, n, m] (at times, not)
        inputs.append(tuple(draw(st.sampled_from([size, size, 1, size + 1])) for size in (h, n, m)))
        if draw(st.integers(0, 4)) == 0:
            inputs[-1] = inputs[-1][1:]  # of a lower rank: torch aligns its batch axis with the heads
    scale = draw(st.one_of(st.none(), NUMBER))
    causal = draw(st.booleans())
    args = {"scale": scale, "is_causal": causal, "enable_gqa": gqa}

    def run(a, b, c, mask=None):
        return F.scaled_dot_product_attention(a, b, c, attn_mask=mask, scale=scale, is_causal=causal, enable_gqa=gqa)

    return Case(args, inputs, lambda: function(run))


@builder("slice")
@st.composite
def slicing(draw, kind):
    shape = any_shape(draw)
    index = st.one_of(st.none(), st.integers(-8, 8))
    dims = draw(st.lists(axis(len(shape)), min_size=1, max_size=3))
    starts, stops = [draw(index) for _ in dims], [draw(index) for _ in dims]
    steps = [draw(st.one_of(st.none(), st.integers(0, 3))) for _ in dims]

    def run(x):
        for d, start, stop, step in zip(dims, starts, stops, steps):
            if not -x.ndim <= d < x.ndim:
                raise IndexError(f"dim {d} out of range")
            x = x[(slice(None),) * (d % x.ndim) + (slice(start, stop, step),)]
        return x

    one = len(dims) == 1 and draw(st.booleans())
    args = {
        "dim": dims[0] if one else dims,
        "begin": starts if not one else starts[0],
        "end": stops if not one else stops[0],
        "step": steps if not one else steps[0],
    }
    return Case(args, [shape], lambda: function(run))


@builder("stack")
@st.composite
def stack(draw, kind):
    shape = any_shape(draw)
    count = draw(st.integers(2, 3))
    shapes = [shape] * count if draw(st.integers(0, 4)) else [shape, any_shape(draw)]  # at times two shapes
    dim = draw(st.one_of(st.just(1), axis(len(shape), extra=1)))
    return Case({"dim": dim}, shapes, lambda: function(lambda *xs: torch.stack(xs, dim=dim)))


@builder("scalar")
@st.composite
def scalar(draw, kind):
    op, value = draw(st.sampled_from(["add", "sub", "mul", "div", "rsub", "pow"])), draw(NUMBER)
    python = {
        "add": lambda x: x + value,
        "sub": lambda x: x - value,
        "mul": lambda x: x * value,
        "div": lambda x: x / value,
        "rsub": lambda x: value - x,
        "pow": lambda x: x**value,
    }[op]
    return Case({"op": op, "value": value}, [any_shape(draw)], lambda: function(python))


@builder("sub", "div")
@st.composite
def sub_div(draw, kind):
    op = (lambda a, b: a - b) if kind == "sub" else (lambda a, b: a / b)
    shapes = broadcastable(draw, 2) if draw(st.integers(0, 5)) else [any_shape(draw), any_shape(draw)]  # at times not
    return Case({}, shapes, lambda: function(op))


@builder("unary")
@st.composite
def unary(draw, kind):
    op = draw(st.sampled_from(["rsqrt", "sqrt", "exp", "log", "sin", "cos", "abs", "neg", "reciprocal", "square"]))
    return Case({"op": op}, [any_shape(draw)], lambda: function(getattr(torch, op)))


@builder("var", "amax")
@st.composite
def variance_or_max(draw, kind):
    shape = any_shape(draw)
    dims = draw(st.lists(axis(len(shape)), min_size=1, max_size=3))
    keepdim = draw(st.booleans())
    dim = dims[0] if len(dims) == 1 and draw(st.booleans()) else dims
    correction = draw(st.integers(0, 2))
    args: dict[str, Any] = {"dim": dim, "keepdim": keepdim} | ({"correction": correction} if kind == "var" else {})

    def run(x):
        d = dim if isinstance(dim, int) else tuple(dim)
        if kind == "var":
            return torch.var(x, dim=d, correction=correction, keepdim=keepdim)
        return x.amax(d, keepdim=keepdim)

    return Case(args, [shape], lambda: function(run))


class _ParameterOp(nn.Module):
    """timm's LearnableAffineBlock and LayerScale written out: a bare parameter, viewed, with the input."""

    def __init__(self, op, shape, view, name):
        super().__init__()
        self.op, self.view, self.name = op, view, name
        self.register_parameter(name, nn.Parameter(torch.rand(shape) + 0.5))

    def forward(self, x):
        p = getattr(self, self.name)
        p = p if self.view is None else p.view(self.view)
        return {
            "mul": lambda: x * p,
            "div": lambda: x / p,
            "rdiv": lambda: p / x,
            "add": lambda: x + p,
            "sub": lambda: x - p,
            "rsub": lambda: p - x,
            "matmul": lambda: x @ p,
            "linear": lambda: x @ p.transpose(-1, -2),  # HaloNet's q @ rel_k.transpose(-1, -2)
        }[self.op]()


@builder("parameter")
@st.composite
def parameter(draw, kind):
    shape = any_shape(draw)
    op = draw(st.sampled_from(["mul", "div", "rdiv", "add", "sub", "rsub", "matmul", "linear"]))
    if op in ("matmul", "linear"):  # a matrix on the last axis: its features, at times not
        features, out = draw(st.sampled_from([shape[-1], shape[-1], shape[-1] + 1])), draw(st.integers(1, 6))
        held = (features, out) if op == "matmul" else (out, features)
        if draw(st.integers(0, 4)) == 0:
            held = (*held, 2)  # three axes: torch broadcasts a batch of matrices, cnncalc refuses
        bias = draw(st.booleans())
        return Case(
            {"op": op, "shape": list(held), "bias": bias},
            [shape],
            lambda: module(_ParameterOp(op, held, None, "bias" if bias else "weight")),
        )
    full = (1, *shape)
    # the parameter's axes: the input's last ones, each its size or 1 (at times another size, or one axis too many)
    rank = draw(st.integers(1, len(full) + 1))
    used = (
        [draw(st.sampled_from([n, 1, n + 1])) for n in (full + (2,))[-rank:]]
        if rank > len(full)
        else [draw(st.sampled_from([n, n, 1, n + 1])) for n in full[len(full) - rank :]]
    )
    held = tuple(used)
    if draw(st.booleans()):  # held flat, viewed in forward (gamma.view(-1, 1, 1))
        held = (math.prod(used),)
    bias = draw(st.booleans())
    args: dict[str, Any] = {"op": op, "shape": list(held), "bias": bias}
    if held != tuple(used):
        args["view"] = used
    view = None if held == tuple(used) else tuple(used)
    return Case(args, [shape], lambda: module(_ParameterOp(op, held, view, "bias" if bias else "weight")))


@builder("normalize")
@st.composite
def normalize(draw, kind):
    shape = any_shape(draw)
    dim = draw(st.one_of(st.just(1), axis(len(shape))))  # the batch axis 0 at times: cnncalc refuses it
    p, eps = draw(st.sampled_from([1.0, 2.0, 3.0, 0.5])), draw(st.sampled_from([1e-12, 1e-6, 0.5]))
    return Case({"dim": dim, "p": p, "eps": eps}, [shape], lambda: function(lambda x: F.normalize(x, p, dim, eps)))


@builder("vector_norm")
@st.composite
def vector_norm(draw, kind):
    shape = any_shape(draw)
    dims = draw(st.lists(axis(len(shape)), min_size=1, max_size=3))
    keepdim, p = draw(st.booleans()), draw(st.sampled_from([1.0, 2.0, 3.0]))
    dim = dims[0] if len(dims) == 1 and draw(st.booleans()) else dims

    def run(x):
        return x.norm(p=p, dim=dim if isinstance(dim, int) else tuple(dim), keepdim=keepdim)

    return Case({"dim": dim, "p": p, "keepdim": keepdim}, [shape], lambda: function(run))


@builder("repeat")
@st.composite
def repeat(draw, kind):
    shape = any_shape(draw)
    rank = len(shape) if draw(st.integers(0, 7)) else len(shape) + 1  # at times one count too many
    repeats = [draw(st.integers(1, 3)) for _ in range(rank)]
    return Case({"repeats": repeats}, [shape], lambda: function(lambda x: x.repeat(1, *repeats)))


def _edgenext_position(x, features, temperature):
    """EdgeNeXt's PositionalEncodingFourier (timm), written out: the positions counted with cumsum over
    a mask of ones, where XCiT and cnncalc's bridge use arange."""
    b, _, h, w = x.shape
    mask = ~torch.zeros(b, h, w).to(dtype=torch.bool)
    y = mask.cumsum(1, dtype=torch.float32)
    xs = mask.cumsum(2, dtype=torch.float32)
    y = y / (y[:, -1:, :] + 1e-6) * (2 * math.pi)
    xs = xs / (xs[:, :, -1:] + 1e-6) * (2 * math.pi)
    dim_t = torch.arange(features, dtype=torch.int64).to(torch.float32)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / features)
    pos_x, pos_y = xs[:, :, :, None] / dim_t, y[:, :, :, None] / dim_t
    pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
    pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
    return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)


@builder("sine_position")
@st.composite
def sine_position(draw, kind):
    shape = any_shape(draw) if not draw(st.integers(0, 3)) else (draw(st.integers(1, 4)), *spatial(draw, 2))
    features, temperature = draw(st.integers(1, 8)), draw(st.sampled_from([10000, 100, 20]))
    args = {"features": features, "temperature": temperature}
    return Case(args, [shape], lambda: function(lambda x: _edgenext_position(x, features, temperature)))


class _GatheredBias(nn.Module):
    """timm's LeViT attention bias (absolute offsets, queries strided) and Swin's RelPosBias (signed
    offsets), each index built as timm builds it."""

    def __init__(self, heads, grid, stride, signed, add):
        super().__init__()
        self.add = add
        h, w = grid
        keys = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")).flatten(1)  # [2, H*W]
        if signed:
            rel = (keys[:, :, None] - keys[:, None, :]).permute(1, 2, 0)  # [H*W, H*W, 2]
            idx = (rel[..., 0] + h - 1) * (2 * w - 1) + rel[..., 1] + w - 1
            self.table = nn.Parameter(torch.rand((2 * h - 1) * (2 * w - 1), heads))
            self.register_buffer("relative_position_index", idx.flatten(), persistent=False)
        else:
            queries = torch.stack(
                torch.meshgrid(torch.arange(0, h, stride), torch.arange(0, w, stride), indexing="ij")
            ).flatten(1)
            rel = (queries[..., :, None] - keys[..., None, :]).abs()
            self.table = nn.Parameter(torch.rand(heads, h * w))
            self.register_buffer("attention_bias_idxs", rel[0] * w + rel[1])
        self.signed, self.n = signed, len(keys[0])

    def forward(self, x):
        if self.signed:
            bias = self.table[self.relative_position_index].view(self.n, self.n, -1).permute(2, 0, 1)
        else:
            bias = self.table[:, self.attention_bias_idxs]
        return x + bias if self.add else bias.expand(x.shape[0], *bias.shape)  # alone: an attn_mask


@builder("bias_table")
@st.composite
def bias_table(draw, kind):
    heads, h, w = draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    signed = draw(st.booleans())
    stride = 1 if signed else draw(st.integers(1, 3))
    n = len(range(0, h, stride)) * len(range(0, w, stride))
    # at times logits of another size: cnncalc must refuse what torch cannot add
    shape = (heads, n, h * w) if draw(st.integers(0, 4)) else (heads, n + 1, h * w)
    add = draw(st.booleans())
    if not add:  # the bias alone, whatever its input
        shape = draw(st.sampled_from([shape, (3, 2)]))
    args: dict[str, Any] = {"heads": heads, "grid": [h, w], "stride": stride, "add": add}
    if signed:
        args.update(offsets="signed", flat=True, index_name="relative_position_index")
    return Case(args, [shape], lambda: module(_GatheredBias(heads, (h, w), stride, signed, add)))


@builder("sum", "mean")
@st.composite
def reduction(draw, kind):
    shape = any_shape(draw)
    dims = draw(st.lists(axis(len(shape)), min_size=1, max_size=3))
    keepdim = draw(st.booleans())
    dim = dims[0] if len(dims) == 1 and draw(st.booleans()) else dims

    def run(x):
        d = dim if isinstance(dim, int) else tuple(dim)
        return x.sum(d, keepdim=keepdim) if kind == "sum" else x.mean(d, keepdim=keepdim)

    return Case({"dim": dim, "keepdim": keepdim}, [shape], lambda: function(run))


# ----- the tests -----------------------------------------------------------------------------------


# measured from the user's model at import, not derived (tests/test_import.py checks it against that model)
MEASURED = {"traced"}


def test_every_registered_type_has_a_direct_builder():
    """A new layer type without a row here fails: its numbers would go unchecked against torch."""
    assert sorted(BUILDERS) == sorted(set(REGISTRY) - MEASURED)


def torch_numbers(case: Case) -> tuple[tuple[int, ...], int, int, int, float]:
    """Output shape per sample, weights, biases, buffers and MACs per sample, as torch says them."""
    run, holder = case.make()
    if holder is not None:
        holder.eval()
    xs = [torch.randn(BATCH, *shape) for shape in case.inputs]
    # PyTorch's unfused attention: FlopCounterMode counts its two bmm (it has no formula for the
    # fused CPU kernel, aten._scaled_dot_product_flash_attention_for_cpu)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        out = run(*xs)
    params = dict(holder.named_parameters()) if holder is not None else {}
    biases = sum(p.numel() for name, p in params.items() if name.rsplit(".", 1)[-1] == "bias")
    weights = sum(p.numel() for p in params.values()) - biases
    buffers = sum(b.numel() for b in holder.buffers()) if holder is not None else 0
    if out.shape[0] != BATCH:  # e.g. pixel_unshuffle on one spatial axis: the batch read as channels
        raise ValueError(f"torch reads this input as another layout: output {tuple(out.shape)}")
    return tuple(out.shape[1:]), weights, biases, buffers, counter.get_total_flops() / 2 / BATCH


@pytest.mark.parametrize("kind", sorted(set(REGISTRY) - MEASURED))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_layer_against_torch_nn(kind, data):
    case = data.draw(BUILDERS[kind](), label="case")
    try:
        expected = torch_numbers(case)
    except (RuntimeError, ValueError, IndexError, TypeError) as err:
        torch_error: Exception | None = err
    else:
        torch_error = None
    try:
        layer = build_layer(REGISTRY[kind], case.args)
        output = layer.output_shape(case.inputs)
        numbers = (
            tuple(output),
            layer.weights(case.inputs),
            layer.biases(case.inputs),
            layer.buffers(case.inputs),
            layer.macs(case.inputs, output),
        )
    except CnncalcError:
        if torch_error is None:
            reject()  # a deliberate refusal of what torch runs (tested with its message elsewhere)
        return
    assert torch_error is None, f"cnncalc answers {numbers} where torch refuses: {torch_error}"
    assert numbers == expected, f"{kind} {case.args} on {case.inputs}: cnncalc {numbers}, torch {expected}"
