"""Traced rows: an op cnncalc has no rule for, written with its output shape as traced, its module's
parameters and buffers and its MACs as FlopCounterMode measured them (a node whose output is not per
sample joins its neighbours in one region); and a node that computes a size, kept as a value for the
rows that read it. Functions of the mapper (mapping._Mapper binds each under its name)."""

from __future__ import annotations

import operator
import re
from typing import TYPE_CHECKING, Any

import torch
from torch import fx
from torch.fx.passes.shape_prop import TensorMetadata

from . import bias, token_norm
from .attention import held_read
from .nodes import _SHAPE_ARITHMETIC, _class_name, _full_shape, _function_name, _has_node, _nodes

if TYPE_CHECKING:
    from .mapping import _Mapper


def traced(self: _Mapper, node: fx.Node, reason: str) -> None:
    """A row measured from PyTorch: the traced output shape, the parameters and buffers the op
    reads (each counted once), and the MACs torch.utils.flop_counter counted for it."""
    inputs: list[int] = []
    weights = biases = buffers = region_macs = 0
    for arg in _nodes(node.args, node.kwargs):
        if arg in self.of_node and self.of_node[arg] not in inputs:
            inputs.append(self.of_node[arg])
        elif arg in self.pieces:  # a tuple of pieces passed on whole
            inputs.extend(i for i in self.pieces[arg] if i is not None and i not in inputs)
        elif arg in self.region:  # a tensor that is not per sample: its ops join this row
            before, macs_before, held_before = self.region[arg]
            inputs.extend(i for i in before if i not in inputs)
            region_macs += macs_before
            weights, biases, buffers = (a + c for a, c in zip((weights, biases, buffers), held_before))
            self.region[arg] = (before, 0, (0, 0, 0))  # its MACs and tensors are counted once
        elif token_norm.is_folded(arg, self.gm) and arg.op == "call_module":  # bn(x.flatten(0, 1)): its module
            source, held, macs = token_norm.folded(self.gm, arg)
            if source in self.of_node and self.of_node[source] not in inputs:
                inputs.append(self.of_node[source])
            weights, biases, buffers = (a + c for a, c in zip((weights, biases, buffers), self.claim(held)))
            region_macs += macs
        elif bias.reads(arg) is not None:  # a gathered attention bias: its table and index are the row's
            weights, biases, buffers = (
                a + c for a, c in zip((weights, biases, buffers), self.claim(bias.tensors(self.gm, arg)))
            )
        elif held_read(arg) is not None:  # a parameter or buffer read in forward (or a view of one, or a
            # matrix transposed): its module's tensors are the row's
            path, _, attr = str(held_read(arg).target).rpartition(".")  # type: ignore[union-attr]
            owner = self.owner(path)
            read = getattr(owner, attr, None)
            held = [*owner.named_parameters(recurse=False), *owner.named_buffers(recurse=False)]
            if not any(t is read for _, t in held):
                held = []  # a constant fx made of a tensor the code computed: no parameter, no buffer
            weights, biases, buffers = (a + c for a, c in zip((weights, biases, buffers), self.claim(held)))
    module = self.gm.get_submodule(str(node.target)) if node.op == "call_module" else None
    if module is not None:
        held = [*module.named_parameters(), *module.named_buffers()]
        weights, biases, buffers = (a + c for a, c in zip((weights, biases, buffers), self.claim(held)))
        op = _class_name(module)
        name = str(node.target) if str(node.target) not in {r.name for r in self.rows} else self.fresh(str(node.target))
        self.taken.add(name)
    else:
        op = f".{node.target}()" if node.op == "call_method" else _function_name(node.target)
        base = str(node.target) if node.op == "call_method" else _function_name(node.target).split(".")[-1]
        name = self.functional_name(node, re.sub(r"\W", "_", base.strip("_")) or "op")
    meta = node.meta.get("tensor_meta")
    if any(
        isinstance(out, TensorMetadata) and (not out.shape or out.shape[0] != 1)
        for out in ([meta] if isinstance(meta, TensorMetadata) else list(meta or ()))
    ):
        # not per sample (attention folds heads into the batch axis): no row of its own; its
        # inputs, parameters and MACs join the traced row that brings the batch axis back
        self.region[node] = (inputs, region_macs + int(node.meta.get("flops", 0)) // 2, (weights, biases, buffers))
        return
    if not inputs:
        inputs = [0]  # an op that reads no tensor (a constant it makes): placed after the input
    shapes = [list(self.rows[i].shape) for i in inputs]
    meta = node.meta.get("tensor_meta")
    outputs = [meta] if isinstance(meta, TensorMetadata) else [m for m in meta or () if isinstance(m, TensorMetadata)]
    macs = region_macs + int(node.meta.get("flops", 0)) // 2
    # a tuple of tensors: a row for each piece that is read (all, where the tuple is passed on whole)
    indices = [u.args[1] for u in node.users if u.op == "call_function" and u.target is operator.getitem]
    read = [k for k in indices if isinstance(k, int)]
    if len(read) != len(node.users):
        read = list(range(len(outputs)))
    used = sorted({k % len(outputs) for k in read}) if outputs else []
    rows: list[int | None] = [None] * len(outputs)
    for k in used:
        out = outputs[k]
        args: dict[str, Any] = {"op": op, "shape": list(out.shape[1:]), "inputs": shapes}
        if k == used[0]:  # the op's parameters and MACs are its first row's
            args.update(weights_measured=weights, biases_measured=biases, buffers_measured=buffers, macs_measured=macs)
        args = {key: value for key, value in args.items() if value != 0}
        row_name = name if isinstance(meta, TensorMetadata) else f"{name}.{k}"
        self.taken.add(row_name)
        rows[k] = self.add_row(
            None,
            row_name,
            "traced",
            args,
            inputs,
            tuple(out.shape[1:]),
            counts=(weights, biases, buffers) if k == used[0] else (0, 0, 0),
        )
        self.rows[-1].module = module if k == used[0] else None
        self.rows[-1].reason = reason
    if isinstance(meta, TensorMetadata):
        self.of_node[node] = rows[0]  # type: ignore[assignment]
    else:
        self.pieces[node] = rows


def shape_value(self: _Mapper, node: fx.Node) -> None:
    """The value of a node computed from shapes only, where it can be followed (else left unknown)."""
    if "value" in node.meta:  # the tracer ran it: the number (or sizes) at this input
        value = node.meta["value"]
        self.constants[node] = tuple(value) if isinstance(value, torch.Size) else value
        return
    args: list[Any] = [self.constants.get(a, a) if isinstance(a, fx.Node) else a for a in node.args]
    try:
        shape = _full_shape(node.args[0]) if node.args else None
        if node.op == "call_method" and node.target == "size" and shape is not None:
            value = shape if len(args) == 1 else shape[args[1]]
        elif node.op == "call_method" and node.target == "dim" and shape is not None:
            value = len(shape)
        elif node.op == "call_function" and node.target is getattr and args[1] == "shape" and shape is not None:
            value = shape
        elif (
            node.op == "call_function"
            and callable(node.target)
            and node.target in _SHAPE_ARITHMETIC
            and not _has_node(args)
        ):
            value = node.target(*args)
        else:
            return
    except Exception:  # noqa: BLE001 - not shape arithmetic after all: left unknown
        return
    self.constants[node] = value
