"""The mapper's records and helpers: a row of the future spec, a piece of a split, the refusal that
turns a node into a traced row, and what reads fx nodes, module classes and argument values.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import TensorMetadata

from .result import Shape, TorchImportError

# ----- rows: one per layer of the future spec ----------------------------------------------


@dataclass
class _Row:
    name: str
    kind: str
    args: dict[str, Any]  # every argument of the layer type, normalised for YAML
    inputs: list[int]
    shape: Shape  # traced output shape, without the batch axis
    module: nn.Module | None = None  # the user's module whose parameters this row holds
    calls: int | None = None  # a module run again: the row of its first call (written `- call: <that row>`)
    counts: tuple[int, int, int] | None = None  # (weights, biases, buffers) held outside a module (layer scale)
    piece: int | None = None  # chunk/split: which piece (the spec writes the pieces as one item)
    reason: str | None = None  # a traced row: why no mapping took the op
    node: str | None = None  # the fx node the row was made from


@dataclass(frozen=True)
class _Piece:
    """One tensor of a tuple-valued node that the model returns whole (`return torch.split(x, 2)`)."""

    of: fx.Node
    index: int


def _makes_namedtuple(value: Any) -> bool:
    """An fx node that calls a NamedTuple class (what a model's `return Features(c3, p4)` traces to)."""
    target = value.target if isinstance(value, fx.Node) and value.op == "call_function" else None
    return isinstance(target, type) and issubclass(target, tuple) and hasattr(target, "_fields")


def _described_value(value: Any) -> str:
    """What a model returns, in words: `a tuple of (a tensor, the input, a number)`."""
    if isinstance(value, _Piece):
        return "a tensor"
    if isinstance(value, fx.Node):
        meta = value.meta.get("tensor_meta")
        if value.op == "placeholder":
            return "the input"
        return (
            "a tensor"
            if isinstance(meta, TensorMetadata)
            else "a value computed from shapes"
            if "value" in value.meta
            else "a tensor-valued result"
        )
    if isinstance(value, dict):
        return "a dict of (" + ", ".join(f"{k!r}: {_described_value(v)}" for k, v in value.items()) + ")"
    if isinstance(value, (tuple, list)):
        kind = "a list" if isinstance(value, list) else "a tuple"
        return f"{kind} of (" + ", ".join(_described_value(v) for v in value) + ")"
    return "None" if value is None else f"the {type(value).__name__} {value!r}"


def _equivalent_module(
    kind: str, bound: Mapping[str, Any], tensor: Mapping[str, Any], shape: Shape, rank: int
) -> nn.Module | None:
    """The torch.nn module whose forward is this functional call, or None."""
    with torch.device("meta"):
        if kind == "batchnorm":
            if bound.get("training", False) or rank > 3:
                return None
            norm: Any = {0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[rank]
            return norm(
                shape[0],
                eps=bound.get("eps", 1e-5),
                momentum=bound.get("momentum", 0.1),
                affine="weight" in tensor,
                track_running_stats="running_mean" in tensor,
            )
        if kind == "linear":
            out, features = tensor["weight"].shape
            return nn.Linear(features, out, bias="bias" in tensor)
        if kind == "layernorm":
            normalized = bound.get("normalized_shape")
            if normalized is None or "bias" in tensor and "weight" not in tensor:
                return None
            return nn.LayerNorm(
                normalized, eps=bound.get("eps", 1e-5), elementwise_affine="weight" in tensor, bias="bias" in tensor
            )
        if kind == "groupnorm":
            if "bias" in tensor and "weight" not in tensor:
                return None
            return nn.GroupNorm(
                int(bound["num_groups"]),
                shape[0],
                eps=bound.get("eps", 1e-5),
                affine="weight" in tensor,
                bias="bias" in tensor,
            )
        if kind == "conv" and 1 <= rank <= 3:
            weight = tensor["weight"]
            groups = bound.get("groups", 1)
            conv: Any = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[rank]
            return conv(
                weight.shape[1] * groups,
                weight.shape[0],
                tuple(weight.shape[2:]),
                stride=bound.get("stride", 1),
                padding=bound.get("padding", 0),
                dilation=bound.get("dilation", 1),
                groups=groups,
                bias="bias" in tensor,
            )
    return None


class _Unmapped(TorchImportError):
    """A node no mapping expresses exactly (caught: the node becomes a traced row)."""


def _nodes(*values: Any) -> list[fx.Node]:
    """Every fx node in a node's arguments, in order."""
    found: list[fx.Node] = []

    def note(n: fx.Node) -> fx.Node:
        found.append(n)
        return n

    fx.node.map_arg(values, note)
    return found


def _is_param(gm: fx.GraphModule, target: fx.Node) -> bool:
    try:
        gm.get_parameter(str(target.target))
    except AttributeError:
        return False
    return True


def _buffer(gm: fx.GraphModule, target: str) -> Any:
    try:
        return gm.get_buffer(target)
    except AttributeError:
        return None


def _full_shape(value: Any) -> torch.Size | None:
    """The traced shape (batch axis included) of a tensor node, else None."""
    meta = value.meta.get("tensor_meta") if isinstance(value, fx.Node) else None
    return torch.Size(meta.shape) if isinstance(meta, TensorMetadata) else None


_TENSOR_PARAMS = (
    "input",
    "other",
    "tensors",
    "tensor",
    "mat2",
    "tensor1",
    "tensor2",
    "shape",
    "weight",
    "bias",
    "running_mean",
    "running_var",
    "query",
    "key",
    "value",
    "attn_mask",
)  # the arguments that are tensors
_SHAPE_ARITHMETIC = {
    operator.getitem,
    operator.add,
    operator.sub,
    operator.mul,
    operator.floordiv,
    operator.truediv,
    operator.neg,
    int,
    float,
    tuple,
    list,
    math.prod,
}


def _substitute(value: Any, constants: Mapping[fx.Node, Any]) -> Any:
    if isinstance(value, fx.Node):
        value = constants.get(value, value)
        return tuple(value) if isinstance(value, torch.Size) else value
    if isinstance(value, (list, tuple)):
        return type(value)(_substitute(v, constants) for v in value)
    if isinstance(value, slice):  # x[:, :H, :W] with H, W read from a shape
        return slice(*(_substitute(v, constants) for v in (value.start, value.stop, value.step)))
    return value


def _has_node(value: Any) -> bool:
    if isinstance(value, fx.Node):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_node(v) for v in value)
    return False


def _class_name(module: nn.Module) -> str:
    cls = type(module)
    return f"nn.{cls.__name__}" if cls.__module__.startswith("torch.nn") else f"{cls.__module__}.{cls.__qualname__}"


def _function_name(target: Any) -> str:
    name = getattr(target, "__name__", repr(target))
    module = getattr(target, "__module__", None) or ""
    if module in ("_operator", "operator"):
        return f"operator.{name}"
    if module.startswith("torch.nn.functional"):
        return f"F.{name}"
    if module in ("torch", "") or module.startswith(("torch.", "torch._")):
        return f"torch.{name}"
    return f"{module}.{name}"


_REBUILT: dict[tuple, nn.Module] = {}  # (factory, its arguments) -> the module they build, on meta


def _rebuilt(factory: Any, kwargs: Mapping[str, Any]) -> nn.Module:
    """The module cnncalc's row builds, to compare with the model's attribute by attribute: on the
    meta device (no memory), and built once per set of arguments (a network repeats its layers, and
    initialising a convolution's weight, even on meta, is most of the mapping's time)."""
    try:
        key = (factory, _frozen(kwargs))
    except TypeError:  # an argument that is not plain data: built each time
        key = None
    found = _REBUILT.get(key) if key is not None else None
    if found is None:
        with torch.device("meta"):
            found = factory(**kwargs)
        if key is not None:
            if len(_REBUILT) > 4096:
                _REBUILT.clear()
            _REBUILT[key] = found
    return found


def _frozen(value: Any) -> Any:
    """Plain data as a hashable key that tells 1, 1.0 and True apart; TypeError for anything else."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return (type(value).__name__, value)
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(_frozen(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((k, _frozen(v)) for k, v in value.items()))
    raise TypeError(type(value).__name__)


def _yaml_value(value: Any) -> Any:
    """A module attribute as YAML writes it: tuples as lists, a list of one repeated int as that int."""
    if isinstance(value, torch.Size):
        value = tuple(value)
    if isinstance(value, (tuple, list)):
        items = [_yaml_value(v) for v in value]
        if items and all(type(v) is int for v in items) and len(set(items)) == 1:
            return items[0]
        return items
    return value


def _same(mine: Any, theirs: Any, attr: str, rank: int) -> bool:
    if attr == "dim" and isinstance(mine, int) and isinstance(theirs, int) and rank:
        return mine % rank == theirs % rank
    if attr == "recompute_scale_factor":  # F.interpolate reads False as None: the scale factor as given
        return bool(mine) == bool(theirs)
    a, b = _yaml_value(mine), _yaml_value(theirs)
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-12)
    return a == b
