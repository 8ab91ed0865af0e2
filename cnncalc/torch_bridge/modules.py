"""PyTorch modules the bridge builds for layer types that `torch.nn` has no class for.

Each class is self-contained (it uses only `torch`, `nn` and `F`), because `cnncalc export` copies
its source, read from this file as text without importing torch, into the exported model
(`cnncalc.render.export_spelling.own_module_sources`). They follow torchvision's classes of the same purpose, so
that the tools count them as they count torchvision's models and state_dict keys match.
"""

from __future__ import annotations

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
