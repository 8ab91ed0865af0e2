"""Modules torch.nn lacks that hold tensors of their own or make one: a parameter used in arithmetic, a
class token, an attention bias table, weight standardisation, blur pooling, TF-'same' padded
convolutions, a batch norm of tokens, and the sine position encoding (a constant of its input's
size). The bridge builds them by class name as it does modules.py's; export copies their source.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


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
