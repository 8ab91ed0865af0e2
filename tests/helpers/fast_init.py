"""Random weights without the cost of drawing them: torch.nn.init's random initialisers, with
every draw taken from two pools drawn once (uniform and normal), read on from where the last
tensor stopped.

Building a model spends most of its time drawing its weights (vgg19_bn: 1.5 s of CPU with
torch's generator, 0.01 s without), and the torch tests build every built-in at full size, often
twice (ours and the exported file's) or once per tool: the draws were most of the suite's time in
those tests. No test here checks a weight's value: they compare counts, shapes, memory, or two
networks given the same state_dict; what they need of the weights is what PyTorch's give them,
finite values of the same size, different from tensor to tensor and from one position to the
next (so that a swapped layer or a permuted channel changes the output). The pools give that:
each initialiser still computes its own bounds and scales as PyTorch writes them; only
`Tensor.uniform_` and `Tensor.normal_` read the pools while one runs. A pool's length is a prime,
so no layer's size is a multiple of it and no two tensors start at the same place by chance.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch.nn import init

POOL = 1_000_003  # values in each pool, a prime
INITIALISERS = (
    "uniform_",
    "normal_",
    "trunc_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "xavier_uniform_",
    "xavier_normal_",
    "orthogonal_",
    "sparse_",
)

_pools: dict[str, torch.Tensor] = {}
_position = [0]


def _pool(kind: str) -> torch.Tensor:
    if kind not in _pools:
        generator = torch.Generator().manual_seed(0)
        draw = torch.rand if kind == "uniform" else torch.randn
        _pools[kind] = draw(POOL, generator=generator)
    return _pools[kind]


def _fill(tensor: torch.Tensor, kind: str) -> None:
    """Copy the pool into `tensor` from the running position on, wrapping round."""
    flat = tensor.view(-1)
    pool = _pool(kind)
    done, at = 0, _position[0] % POOL
    while done < flat.numel():
        k = min(flat.numel() - done, POOL - at)
        flat[done : done + k].copy_(pool[at : at + k])
        done, at = done + k, 0
    _position[0] += flat.numel()


def _uniform_(tensor: torch.Tensor, a: float = 0.0, b: float = 1.0, **_: object) -> torch.Tensor:
    _fill(tensor, "uniform")
    return tensor.mul_(b - a).add_(a)


def _normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, **_: object) -> torch.Tensor:
    _fill(tensor, "normal")
    return tensor.mul_(std).add_(mean)


@contextmanager
def _pooled() -> Iterator[None]:
    real = torch.Tensor.uniform_, torch.Tensor.normal_
    torch.Tensor.uniform_, torch.Tensor.normal_ = _uniform_, _normal_  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.uniform_, torch.Tensor.normal_ = real  # type: ignore[method-assign]


def _pooled_initialiser(real: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    @functools.wraps(real)
    def initialise(tensor: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        if kwargs.get("generator") is not None or not tensor.is_contiguous() or tensor.device.type == "meta":
            return real(tensor, *args, **kwargs)  # a caller's own generator keeps its own draws
        with _pooled():
            return real(tensor, *args, **kwargs)

    initialise.pooled = True  # type: ignore[attr-defined]
    return initialise


def install() -> None:
    """Replace torch.nn.init's random initialisers, once per process."""
    for name in INITIALISERS:
        real = getattr(init, name)
        if not getattr(real, "pooled", False):
            setattr(init, name, _pooled_initialiser(real))
