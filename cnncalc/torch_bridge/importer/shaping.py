"""Mapping rules for code that moves, cuts and joins tensors without arithmetic: views and reshapes,
permutes and transposes, flatten, pads, slices and channel shuffles, split, chunk and unbind pieces,
cat and stack. Functions of the mapper (mapping._Mapper binds each under its name)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import fx

from . import tokens
from .nodes import _has_node, _substitute, _yaml_value

if TYPE_CHECKING:
    from .mapping import _Mapper


def rule_view_like(self: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    """`x.unsqueeze(d)`, `x.squeeze(d)`, `x.contiguous()`: the type of the same name."""
    kind = self.rule_kind(node)
    source = self.tensor_input(node, bound.get("input"), what)
    args: dict[str, Any] = {}
    if kind in ("unsqueeze", "squeeze") and bound.get("dim") is not None:
        args["dim"] = _yaml_value(bound["dim"])
    if kind == "contiguous" and bound.get("memory_format") not in (None, torch.contiguous_format):
        raise self.unmapped(node, f"{what} with memory_format={bound['memory_format']}")
    self.checked_row(node, kind, args, [source], kind)


def rule_pad(self: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    """`F.pad(x, (l, r, t, b, ...), mode, value)`: amounts last axis first, as `pad` writes them."""
    source = self.tensor_input(node, bound.get("input"), what)
    mode = bound.get("mode") or "constant"
    padding = list(bound.get("pad") or ())
    axes = len(self.rows[source].shape) - 1
    if mode == "constant" and len(padding) % 2 == 0 and len(padding) < 2 * axes:
        # F.pad(v, (0, 1)) pads the last axis only: the axes before it by 0 (EfficientViT's attention)
        padding += [0] * (2 * axes - len(padding))
    args = {"padding": padding, "mode": mode, "value": float(bound.get("value") or 0.0)}
    self.checked_row(node, "pad", args, [source], "pad")


def rule_stack(self: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    tensors = bound.get("tensors")
    if not isinstance(tensors, (list, tuple)) or len(tensors) < 2:
        raise self.unmapped(node, f"{what} needs a list of tensors", received=repr(tensors))
    inputs = [self.tensor_input(node, t, what) for t in tensors]
    self.checked_row(node, "stack", {"dim": bound.get("dim", 0)}, inputs, "stack")


def rule_permute(self: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    source = self.tensor_input(node, bound.get("input"), what)
    rank = len(self.rows[source].shape) + 1
    dims = bound.get("dims")
    dims = [dims] if isinstance(dims, int) else list(dims or ())
    dims = [d % rank if isinstance(d, int) else d for d in dims]
    if sorted(dims) != list(range(rank)) or dims[0] != 0:
        raise self.unmapped(
            node,
            f"cnncalc follows {what} only when the batch axis stays first",
            received=f"dims={bound.get('dims')!r}",
        )
    self.add_row(node, self.functional_name(node, "permute"), "permute", {"dims": dims}, [source], self.shape(node))


def rule_pieces(self: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    """`x.chunk(2, dim=1)`, `torch.split(x, [a, b], 1)`: one row per piece, as the spec expands them."""
    source = self.tensor_input(node, bound.get("input", bound.get("tensor")), what)
    before = self.rows[source].shape
    rank = len(before) + 1
    dim = bound.get("dim", 0)
    meta = node.meta.get("tensor_meta")
    if not isinstance(dim, int) or dim % rank == 0:
        raise self.unmapped(
            node,
            f"cnncalc's chunk and split keep the batch axis; this {what} cuts dim={dim}",
            received=f"dim={dim}",
        )
    shapes = (
        [tuple(m.shape[1:] if m.shape[0] == 1 else m.shape) for m in meta] if isinstance(meta, (tuple, list)) else []
    )
    kind = self.rule_kind(node)
    if kind == "chunk":
        args: dict[str, Any] = {"chunks": bound.get("chunks")}
    else:
        args = {"sizes": [shape[dim % rank - 1] for shape in shapes]}
    if dim % rank != 1:
        args["dim"] = dim % rank
    base = self.functional_name(node, kind)
    rows = []
    for k, shape in enumerate(shapes):
        self.taken.add(f"{base}.{k}")
        rows.append(self.add_row(None, f"{base}.{k}", kind, args, [source], shape))
        self.rows[-1].piece = k
    if not rows:
        raise self.unmapped(node, f"{what} gives no pieces cnncalc can follow", received=repr(meta))
    self.pieces[node] = list[int | None](rows)


def channel_shuffle(self: _Mapper, node: fx.Node, source: int) -> bool:
    """ShuffleNet's shuffle: view [N, C, ...] as [N, g, C/g, ...], transpose(1, 2), (contiguous),
    view back to [N, C, ...]: one `channel_shuffle` row, written at the last view."""
    before, split = self.rows[source].shape, self.shape(node)
    if len(split) != len(before) + 1 or split[0] * split[1] != before[0] or split[2:] != before[1:]:
        return False
    chain, current = [node], node
    for step in ("transpose", "contiguous", "view"):
        users = list(current.users)
        if len(users) != 1:
            return False
        (user,) = users
        name = str(user.target) if user.op == "call_method" else getattr(user.target, "__name__", "")
        if step == "contiguous" and name != "contiguous":
            step = "view"  # contiguous() is optional
        if step == "transpose":
            ends = [d for d in user.args[1:3] if isinstance(d, int)]
            dims = sorted(d % (len(split) + 1) for d in ends) if len(user.args) == 3 else []
            if name not in ("transpose", "swapaxes") or user.kwargs or dims != [1, 2]:
                return False
        elif step == "view":
            flat = name == "flatten" and user.args[1:] in ((1, 2),) and not user.kwargs
            if not (name in ("view", "reshape") or flat) or self.shape(user) != before:
                return False
        chain.append(user)
        current = user
        if step == "view":
            break
    self.absorbed.update(chain[:-1])
    self.add_row(
        chain[-1],
        self.functional_name(node, "channel_shuffle"),
        "channel_shuffle",
        {"groups": split[0]},
        [source],
        before,
    )
    self.absorbed.add(chain[-1])
    return True


def slicing(self: _Mapper, node: fx.Node, whole: fx.Node) -> None:
    """`x[:, :, a:b, c:d]`: a crop of the spatial axes (U-Net's skip crops), amounts last axis first."""
    source = self.tensor_input(node, whole, "indexing x[...]")
    before = self.rows[source].shape
    index = _substitute(node.args[1], self.constants)
    index = index if isinstance(index, tuple) else (index,)
    if source in self.folded:  # PyTorch's axis 0 (checked whole) is the row's 0 and 1: attention.py
        index = (slice(None), *index)
    if index.count(Ellipsis) == 1:  # o[..., :H, :W]: the axes the ellipsis stands for, whole
        at = index.index(Ellipsis)
        named = len(index) - 1 - sum(cut is None for cut in index)  # the axes the others index
        index = (*index[:at], *[slice(None)] * (len(before) + 1 - named), *index[at + 1 :])
    full = slice(None)
    spatial = list(index[2:]) + [full] * (len(before) - 1 - len(index[2:]))
    sides: list[int] = []
    ok = len(index) >= 2 and index[0] == full and index[1] == full and len(spatial) == len(before) - 1
    for size, cut in zip(before[1:], spatial):
        if not (isinstance(cut, slice) and cut.step in (None, 1)) or _has_node([cut.start, cut.stop]):
            ok = False
            break
        start, stop, _ = cut.indices(size)
        if stop <= start:
            ok = False
            break
        sides = [start, size - stop, *sides]  # the last axis first, as pad and crop write them
    if not ok:
        self.sliced(node, source, index)
        return
    self.add_row(
        node,
        self.functional_name(node, "crop"),
        "crop",
        {"amounts": _yaml_value(sides)},
        [source],
        self.shape(node),
    )


def sliced(self: _Mapper, node: fx.Node, source: int, index: tuple) -> None:
    """`x[:, :k]`, `x[:, :, ::2, ::2]`: a `slice` of the axes cut (the batch axis whole)."""
    full = slice(None)
    if tokens.select(self, node, source, index):  # x[:, 0]: ViT's class token read back
        return
    if None in index and all(cut is None or cut == full for cut in index):  # y[:, :, None, None]
        self.checked_row(
            node, "unsqueeze", {"dim": [i for i, cut in enumerate(index) if cut is None]}, [source], "unsqueeze"
        )
        return
    cuts = [(axis, cut) for axis, cut in enumerate(index) if cut != full]
    if (
        not cuts
        or cuts[0][0] == 0
        or not all(isinstance(cut, slice) and not _has_node([cut.start, cut.stop, cut.step]) for _, cut in cuts)
    ):
        raise self.unmapped(
            node,
            "cnncalc follows indexing as a crop or a slice of whole axes (x[:, :k], x[:, :, ::2])",
            received=repr(node.args[1]),
        )
    args = {
        "dim": [a for a, _ in cuts],
        "begin": [c.start for _, c in cuts],
        "end": [c.stop for _, c in cuts],
        "step": [c.step for _, c in cuts],
    }
    self.checked_row(node, "slice", args, [source], "slice")


def rule_transpose(self: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    """`x.transpose(1, 2)`, `x.mT`-like swaps of two axes (the batch kept): a permute."""
    source = self.tensor_input(node, bound.get("input"), what)
    rank = len(self.rows[source].shape) + 1
    a, b = bound.get("dim0"), bound.get("dim1")
    if not (isinstance(a, int) and isinstance(b, int)) or 0 in (a % rank, b % rank):
        raise self.unmapped(node, f"cnncalc follows {what} only when the batch axis stays first")
    dims = list(range(rank))
    dims[a % rank], dims[b % rank] = dims[b % rank], dims[a % rank]
    self.checked_row(node, "permute", {"dims": dims}, [source], "transpose")


def rule_cat(self: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    tensors = bound.get("tensors")
    rank = len(self.shape(node)) + 1
    dim = bound.get("dim", 0)
    if not isinstance(dim, int) or dim % rank == 0:
        raise self.unmapped(
            node, f"cnncalc's concat keeps the batch axis; this {what} joins dim={dim}", received=f"dim={dim}"
        )
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise self.unmapped(node, f"{what} needs a list of tensors", received=repr(tensors))
    inputs = [self.tensor_input(node, t, what) for t in tensors]
    if dim % rank != 1 and len(inputs) > 1:  # another axis than the channels (channels-last tokens)
        self.checked_row(node, "concat", {"dim": dim}, inputs, "concat")
        return
    if len(inputs) == 1:  # DenseNet's first layer: torch.cat([x], 1) is x (as a copy)
        self.add_row(node, self.functional_name(node, "concat"), "identity", {}, inputs, self.shape(node))
        return
    self.add_row(node, self.functional_name(node, "concat"), "concat", {}, inputs, self.shape(node))


def rule_flatten(self: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    source = self.tensor_input(node, bound.get("input"), what)
    rank = len(self.rows[source].shape) + 1
    start, end = bound.get("start_dim", 0), bound.get("end_dim", -1)
    if start % rank == 0:
        raise self.unmapped(node, "cnncalc's flatten keeps the batch axis", received=f"start_dim={start}")
    if start % rank == 1 and end % rank == rank - 1:
        self.add_row(node, self.functional_name(node, "flatten"), "flatten", {}, [source], self.shape(node))
        return
    self.checked_row(node, "flatten", {"start_dim": start, "end_dim": end}, [source], "flatten")


def rule_reshape(self: _Mapper, node: fx.Node, bound: dict[str, Any], what: str) -> None:
    source = self.tensor_input(node, bound.get("input"), what)
    before, after = self.rows[source].shape, self.shape(node)
    if after != (math.prod(before),) and self.channel_shuffle(node, source):
        return
    if after != (math.prod(before),):  # any other shape, the batch kept: reshape (a view where strides allow)
        self.checked_row(
            node,
            "reshape",
            {"shape": list(after)},
            [source],
            str(node.target) if node.op == "call_method" else "reshape",
        )
        return
    base = str(node.target) if node.op == "call_method" else "reshape"
    self.add_row(node, self.functional_name(node, base), "flatten", {}, [source], after)
