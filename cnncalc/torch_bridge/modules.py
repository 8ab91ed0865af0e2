"""PyTorch modules the bridge builds for layer types that `torch.nn` has no class for.

Each class is self-contained (it uses only `torch`, `nn` and `F`), because `cnncalc export` copies
its source, read from this file as text without importing torch, into the exported model
(`cnncalc.render.export_spelling.own_module_sources`). They follow torchvision's classes of the same purpose, so
that the tools count them as they count torchvision's models and state_dict keys match.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class ChannelLayerNorm(nn.LayerNorm):
    """Layer norm over the channel axis of a channels-first tensor, at every position: ConvNeXt's
    LayerNorm2d (torchvision.models.convnext), for any number of spatial axes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.movedim(1, -1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.movedim(-1, 1)


class StochasticDepth(nn.Module):
    """Drops the whole input of a residual branch at random in training, per sample ('row') or for
    the batch ('batch'); the identity at inference (torchvision.ops.StochasticDepth)."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise


class Permute(nn.Module):
    """Reorders the axes (a view): torchvision.ops.Permute, dims counted with the batch axis."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.permute(x, self.dims)


class Scale(nn.Module):
    """Multiplies by a learned tensor (`weight`). The bridge registers that parameter on the parent
    module under the row's name, as torchvision's CNBlock holds `layer_scale`, and keeps this module
    out of the module tree, so state_dict keys match torchvision's."""

    def __init__(self, shape: tuple[int, ...], init: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full(shape, init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


class Interpolate(nn.Module):
    """F.interpolate to the spatial size of a second tensor, as torchvision's segmentation models
    end (`F.interpolate(x, size=input.shape[-2:], mode="bilinear", align_corners=False)`) and as its
    ASPP pooling branch returns to its input's size; the second tensor is read for its shape only."""

    def __init__(self, mode: str, align_corners: bool | None = None) -> None:
        super().__init__()
        self.mode = mode
        self.align_corners = align_corners

    def forward(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=like.shape[2:], mode=self.mode, align_corners=self.align_corners)


class Traced(nn.Module):
    """A stand-in for an op cnncalc measured at import rather than mapped (a `traced` row): it
    holds as many parameter and buffer elements as the op's module did and returns zeros of the
    traced shape, so that a graph with traced rows builds, counts and runs; it does not compute
    what the op computes (its timing and memory are the stand-in's, not the op's)."""

    def __init__(self, op: str, shape: list[int], weights: int, biases: int, buffers: int) -> None:
        super().__init__()
        self.op, self.shape = op, tuple(shape)
        self.weight = nn.Parameter(torch.zeros(weights)) if weights else None
        self.bias = nn.Parameter(torch.zeros(biases)) if biases else None
        self.register_buffer("state", torch.zeros(buffers) if buffers else None)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        x = inputs[0]
        return x.new_zeros((x.shape[0], *self.shape))


class Reshape(nn.Module):
    """x.reshape(N, *shape): the batch axis kept, the rest as given (one size may be -1); a view
    where the strides allow one, as x.view would be."""

    def __init__(self, shape: list[int]) -> None:
        super().__init__()
        self.shape = list(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Expand(nn.Module):
    """x.expand(-1, *sizes): axes of size 1 repeated, the batch axis kept (a view)."""

    def __init__(self, sizes: list[int]) -> None:
        super().__init__()
        self.sizes = list(sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, *self.sizes)


class Unsqueeze(nn.Module):
    """x.unsqueeze(d) for each d in `dims`, one call after the other (a view)."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = list(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for d in self.dims:
            x = x.unsqueeze(d)
        return x


class Squeeze(nn.Module):
    """x.squeeze(dims) for the axes given by number (a view); no axes: the input itself."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = list(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(tuple(self.dims)) if self.dims else x


class Contiguous(nn.Module):
    """x.contiguous(): the input itself where it is contiguous, else a contiguous copy."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous()


class FunctionalPad(nn.Module):
    """F.pad in constant mode with PyTorch's pairs, last axis first, where they reach the channels
    (ResNet-20's option-A shortcut pads F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p)))."""

    def __init__(self, padding: tuple[int, ...], value: float = 0.0) -> None:
        super().__init__()
        self.padding = tuple(padding)
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.padding, value=self.value)


class Slice(nn.Module):
    """x[:, a:b:c, ...]: one (start, stop, step) per axis after the batch, None for all of it (a view)."""

    def __init__(self, index: list[tuple[int, int, int] | None]) -> None:
        super().__init__()
        self.index = list(index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = (slice(None), *(slice(None) if cut is None else slice(*cut) for cut in self.index))
        return x[index]


class ScalarOp(nn.Module):
    """Arithmetic with a number: x + v, x - v, x * v, x / v, or v - x (op 'rsub')."""

    def __init__(self, op: str, value: float) -> None:
        super().__init__()
        self.op = op
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.op == "add":
            return x + self.value
        if self.op == "sub":
            return x - self.value
        if self.op == "mul":
            return x * self.value
        if self.op == "div":
            return x / self.value
        if self.op == "pow":
            return x**self.value
        return self.value - x


class Reduce(nn.Module):
    """x.sum(dim, keepdim), x.mean(dim, keepdim) or x.amax(dim, keepdim) (`op`)."""

    def __init__(self, op: str, dim: int | list[int], keepdim: bool = False) -> None:
        super().__init__()
        self.op = op
        self.dim = dim
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dim = tuple(self.dim) if isinstance(self.dim, list) else self.dim
        return getattr(x, self.op)(dim, keepdim=self.keepdim)


class MaxValues(nn.Module):
    """x.max(dim, keepdim)[0]: the largest values over one axis (the indices dropped)."""

    def __init__(self, dim: int, keepdim: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.max(self.dim, keepdim=self.keepdim)[0]


class Stack(nn.Module):
    """torch.stack of the inputs on a new axis `dim`."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.stack(inputs, dim=self.dim)


class Unbind(nn.Module):
    """Slice `index` of the input along `dim`, that axis dropped, as torch.unbind gives it (a view)."""

    def __init__(self, dim: int, index: int) -> None:
        super().__init__()
        self.dim = dim
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.unbind(x, dim=self.dim)[self.index]


class ScaledDotProductAttention(nn.Module):
    """F.scaled_dot_product_attention(q, k, v, mask) with a fixed scale, causal flag and grouping,
    no dropout; the mask, where given, is a fourth input (added to the scores)."""

    def __init__(self, scale: float | None = None, is_causal: bool = False, enable_gqa: bool = False) -> None:
        super().__init__()
        self.scale = scale
        self.is_causal = is_causal
        self.enable_gqa = enable_gqa

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.enable_gqa:  # only where set: the keyword is new in torch 2.5
            return F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=self.is_causal, scale=self.scale, enable_gqa=True
            )
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.is_causal, scale=self.scale)


class TensorUnfold(nn.Module):
    """x.unfold(dim, size, step): windows of `size` every `step` along `dim` (a view; not nn.Unfold)."""

    def __init__(self, dim: int, size: int, step: int) -> None:
        super().__init__()
        self.dim = dim
        self.size = size
        self.step = step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unfold(self.dim, self.size, self.step)


class Sub(nn.Module):
    """Element-wise difference of two inputs, broadcasting: a - b."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a - b


class Div(nn.Module):
    """Element-wise quotient of two inputs, broadcasting: a / b."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a / b


class Variance(nn.Module):
    """torch.var over `dim`, dividing by n - `correction`."""

    def __init__(self, dim: int | list[int], keepdim: bool = False, correction: int = 1) -> None:
        super().__init__()
        self.dim = dim
        self.keepdim = keepdim
        self.correction = correction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dim = tuple(self.dim) if isinstance(self.dim, list) else self.dim
        return torch.var(x, dim=dim, correction=self.correction, keepdim=self.keepdim)


class UnaryOp(nn.Module):
    """An element-wise torch function of one tensor (`op`: rsqrt, sqrt, exp, log, sin, cos, ...)."""

    def __init__(self, op: str) -> None:
        super().__init__()
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(torch, self.op)(x)


class ParameterOp(nn.Module):
    """Arithmetic with a learned tensor (`weight`, or `bias` where it is counted as one; of `shape`,
    viewed as `view`): x * p, x / p, p / x, x + p, x - p, p - x, x @ p or x @ p^T. As for Scale, the bridge registers
    the parameter on the parent module under the row's name and keeps this module out of the tree,
    so state_dict keys match the model's."""

    def __init__(
        self, op: str, shape: list[int], view: list[int] | None = None, init: float = 1.0, bias: bool = False
    ) -> None:
        super().__init__()
        self.op = op
        self.view = view
        self.held = "bias" if bias else "weight"
        self.register_parameter(self.held, nn.Parameter(torch.full(shape, init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = getattr(self, self.held)  # an attribute read: torch.fx sees the parameter (cnncalc imports it back)
        p = p if self.view is None else p.view(self.view)
        if self.op == "mul":
            return x * p
        if self.op == "div":
            return x / p
        if self.op == "rdiv":
            return p / x
        if self.op == "add":
            return x + p
        if self.op == "sub":
            return x - p
        if self.op == "matmul":
            return torch.matmul(x, p)
        if self.op == "linear":
            return torch.matmul(x, p.transpose(-1, -2))
        return p - x


class Normalize(nn.Module):
    """F.normalize(x, p, dim, eps): each vector along `dim` divided by its p-norm (at least eps)."""

    def __init__(self, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> None:
        super().__init__()
        self.p, self.dim, self.eps = p, dim, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, p=self.p, dim=self.dim, eps=self.eps)


class VectorNorm(nn.Module):
    """x.norm(p, dim, keepdim): the p-norm of the vectors along `dim`."""

    def __init__(self, dim: int | list[int], p: float = 2.0, keepdim: bool = False) -> None:
        super().__init__()
        self.p, self.dim, self.keepdim = p, dim, keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dim = tuple(self.dim) if isinstance(self.dim, list) else self.dim
        return x.norm(p=self.p, dim=dim, keepdim=self.keepdim)


class Repeat(nn.Module):
    """x.repeat(1, *repeats): the input tiled along each axis after the batch."""

    def __init__(self, repeats: list[int]) -> None:
        super().__init__()
        self.repeats = repeats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat(1, *self.repeats)


class SinePosition(nn.Module):
    """The sine position encoding of the input's H x W positions, [N, 2 * features, H, W], computed
    as timm's PositionalEncodingFourier computes it (XCiT, EdgeNeXt; DETR's normalised sine): the
    input is read for its size only."""

    def __init__(self, features: int, temperature: float = 10000.0) -> None:
        super().__init__()
        self.features, self.temperature = features, temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        scale, eps = 2 * math.pi, 1e-6
        y_embed = torch.arange(1, h + 1, device=x.device).to(torch.float32).unsqueeze(1).repeat(1, 1, w)
        x_embed = torch.arange(1, w + 1, device=x.device).to(torch.float32).repeat(1, h, 1)
        y_embed = y_embed / (y_embed[:, -1:, :] + eps) * scale
        x_embed = x_embed / (x_embed[:, :, -1:] + eps) * scale
        dim_t = torch.arange(self.features, device=x.device).to(torch.float32)
        dim_t = self.temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / self.features)
        pos_x = x_embed[:, :, :, None] / dim_t
        pos_y = y_embed[:, :, :, None] / dim_t
        pos_x = torch.stack([pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()], dim=4).flatten(3)
        pos_y = torch.stack([pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()], dim=4).flatten(3)
        pos = torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)
        return pos.to(x.dtype).repeat(n, 1, 1, 1)  # a contiguous copy per sample


class BiasTable(nn.Module):
    """Attention logits plus a learned table gathered by relative position (cnncalc/layers/bias_table.py):
    `table[:, index]` for absolute offsets (LeViT's attention_biases [heads, H*W]), `table[index]`
    viewed and permuted to [heads, n, m] for signed ones (timm's RelPosBias [(2H-1)*(2W-1), heads]).
    As for ParameterOp, the bridge registers the table on the parent under the row's name and the
    index buffer beside it under `index_name`, so state_dict keys match the model's."""

    def __init__(
        self,
        heads: int,
        grid: list[int],
        stride: int = 1,
        offsets: str = "absolute",
        index_name: str = "attention_bias_idxs",
        flat: bool = False,
        persistent: bool = False,
        add: bool = True,
    ) -> None:
        from ..layers.bias_table import BiasTable as Layer
        from ..layers.bias_table import index

        super().__init__()
        layer = Layer(heads=heads, grid=tuple(grid), stride=stride, offsets=offsets)
        self.offsets = offsets
        self.index_name = index_name
        self.add = add
        self.shape = (heads, layer.queries(), grid[0] * grid[1])
        self.weight = nn.Parameter(torch.zeros(layer.table()))
        idx = torch.tensor(index(grid, stride, offsets), dtype=torch.long)
        self.register_buffer(index_name, idx.flatten() if flat else idx, persistent=persistent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = getattr(self, self.index_name)
        if self.offsets == "absolute":
            bias = self.weight[:, idx]  # [heads, n, m] = [heads, T][:, [n, m]]
        else:  # [n * m, heads] -> [heads, n, m]
            bias = self.weight[idx.flatten()].view(self.shape[1], self.shape[2], -1).permute(2, 0, 1)
        # the bias alone: one [heads, n, m] for every sample (a view, as the model's broadcast mask)
        if self.add:
            return x + bias
        bias = bias.view((1,) * (x.dim() - 4) + tuple(bias.shape))  # of the input's rank, as a mask
        return bias.expand(x.shape[0], *bias.shape)


class TokenBatchNorm(nn.BatchNorm1d):
    """Batch norm of channels on the last axis, every other position a sample: LeViT's
    `bn(x.flatten(0, 1)).reshape_as(x)` on tokens [N, n, C]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(0, -2)).reshape_as(x)


class ClassToken(nn.Module):
    """Learned tokens [1, n, D] put before the sequence [N, L, D]: ViT's class token. As for Scale,
    the bridge registers the parameter on the parent module under the row's name (timm's
    `cls_token`) and keeps this module out of the tree, so state_dict keys match the model's."""

    def __init__(self, shape: list[int], init: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full(tuple(shape), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.weight.expand(x.shape[0], -1, -1), x], dim=1)


class StdConv2d(nn.Conv2d):
    """A Conv2d whose weight is standardised in forward, each filter to mean 0 and variance 1
    (biased, plus `eps`), then times its `gain` and `scale` where given: timm's StdConv2d and
    ScaledStdConv2d, computed as they compute it (one batch norm over the filters)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        eps: float = 1e-6,
        gain: bool = False,
        scale: float | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        self.eps = eps
        self.scale = scale
        self.gain = nn.Parameter(torch.ones(self.out_channels, 1, 1, 1)) if gain else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = None
        if self.gain is not None:
            factor = (self.gain * self.scale if self.scale is not None else self.gain).view(-1)
        weight = F.batch_norm(
            self.weight.reshape(1, self.out_channels, -1),
            None,
            None,
            weight=factor,
            training=True,
            momentum=0.0,
            eps=self.eps,
        ).reshape_as(self.weight)
        return self._conv_forward(x, weight, self.bias)


class BlurPool2d(nn.Module):
    """Blur pooling: each channel convolved with a fixed binomial filter at a stride, the filter a
    buffer `filt` [C, 1, F, F] (timm's BlurPool2d, antialiased-cnns' Downsample; `persistent=False`
    as timm registers it, out of the state_dict)."""

    filt: torch.Tensor

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        stride: Any = (2, 2),
        padding: Any = (0, 0),
        persistent: bool = True,
    ) -> None:
        super().__init__()
        self.channels, self.kernel_size, self.stride, self.padding = channels, kernel_size, stride, padding
        taps = [1.0]  # a row of Pascal's triangle: C(F - 1, k)
        for _ in range(kernel_size - 1):
            taps = [a + b for a, b in zip([0.0, *taps], [*taps, 0.0])]
        row = torch.tensor(taps) / 2 ** (kernel_size - 1)
        filt = (row[:, None] * row[None, :]).expand(channels, 1, -1, -1).contiguous()
        self.register_buffer("filt", filt, persistent=persistent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.filt, stride=self.stride, padding=self.padding, groups=self.channels)


class PaddedConv1d(nn.Conv1d):
    """nn.Conv1d after an explicit zero padding that may differ at the two ends (F.pad's pairs):
    TensorFlow/Keras's padding='same' at a stride, which nn.Conv1d's `padding` cannot express."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        pad: tuple[int, ...] = (),
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        self.pad = tuple(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pad={self.pad}"


class PaddedConv2d(nn.Conv2d):
    """nn.Conv2d after an explicit zero padding that may differ at the two ends of an axis (F.pad's
    pairs: left, right, top, bottom): TensorFlow/Keras's padding='same' at a stride, as timm's
    Conv2dSame pads before its convolution."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        pad: tuple[int, ...] = (),
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        self.pad = tuple(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pad={self.pad}"


class PaddedConv3d(nn.Conv3d):
    """nn.Conv3d after an explicit zero padding that may differ at the two ends of an axis (F.pad's
    pairs, last axis first): TensorFlow/Keras's padding='same' at a stride."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        pad: tuple[int, ...] = (),
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        self.pad = tuple(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pad={self.pad}"
