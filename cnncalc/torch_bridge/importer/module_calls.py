"""Mapping a call of a module: its layer type from the class (a subclass with its own forward maps
through what the forward does) and its arguments read from the module's attributes, each checked.
Functions of the mapper (mapping._Mapper binds each under its name)."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

from torch import fx, nn

from ...errors import CnncalcError
from ...layers import ALIASES, REGISTRY, build_layer
from .. import _OWN_MODULES, Piece, modules
from .nodes import _class_name, _rebuilt, _same, _yaml_value
from .table import FOREIGN_MODULE_KINDS, SAME_AT_INFERENCE, _qualified, module_kind

if TYPE_CHECKING:
    from .mapping import _Mapper


def call_module(self: _Mapper, node: fx.Node) -> None:
    path = str(node.target)
    module = self.gm.get_submodule(path)
    if isinstance(module, Piece):  # cnncalc's own chunk/split piece: rows name.0, name.1
        inputs = [self.tensor_input(node, a, path) for a in node.args]
        self.add_row(node, path, "split", {"sizes": list(module.sizes)}, inputs, self.shape(node))
        self.rows[-1].piece = int(module.index)
        return
    kind = module_kind(module)
    if kind is None:
        raise self.unmapped(
            node,
            f"cnncalc has no layer type for the module {_class_name(module)} at '{path}'",
            expected="modules and functions listed in docs/import.md",
        )
    inputs = [self.tensor_input(node, a, path) for a in node.args]
    if node.kwargs:
        raise self.unmapped(
            node,
            f"'{path}' is called with keyword arguments, which cnncalc cannot follow",
            received=", ".join(node.kwargs),
        )
    args = self.module_args(node, module, kind, inputs)
    if path in self.called:
        if any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False)):
            raise self.unmapped(
                node,
                f"'{path}' is called more than once and has parameters (shared weights); "
                "cnncalc gives every layer its own",
            )
        # the spec's `- call: relu` row, named as the spec names it: relu@2, relu@3, ...
        self.again[path] += 1
        name = self.fresh(f"{path}@{self.again[path] + 1}")
        self.add_row(node, name, kind, args, inputs, self.shape(node), calls=self.called[path])
        return
    self.called[path] = self.add_row(node, path, kind, args, inputs, self.shape(node), module)


def module_args(self: _Mapper, node: fx.Node, module: nn.Module, kind: str, inputs: list[int]) -> dict[str, Any]:
    """The layer's YAML arguments read from the module, checked by rebuilding the module from them."""
    cls = REGISTRY[ALIASES.get(kind, kind)]
    args: dict[str, Any] = {}
    for f in fields(cls):
        for attr in (f.name, *f.metadata.get("aliases", ())):
            if hasattr(module, attr):
                value = getattr(module, attr)
                if f.name in ("bias", "gain") and not isinstance(value, (bool, float)):  # a tensor or None
                    value = value is not None
                args[f.name] = _yaml_value(value)
                break
    if kind == "layernorm" and isinstance(module, nn.LayerNorm):
        # nn.LayerNorm normalises the last len(normalized_shape) axes; LayerNorm2d the channels
        channels = _qualified(type(module)) in FOREIGN_MODULE_KINDS
        args["over"] = "channels" if channels else len(module.normalized_shape)
    shapes = [self.rows[i].shape for i in inputs]
    if kind == "linear" and shapes and len(shapes[0]) > 1:
        args["channels_last"] = True  # nn.Linear on the last axis at every position (ConvNeXt)
    try:
        layer = build_layer(cls, args)
        if shapes:  # its arguments hold for this input (a softmax over the batch axis does not)
            layer.output_shape(shapes)
        spec = layer.torch_module(shapes)
        factory = _OWN_MODULES.get(spec.name) or getattr(modules, spec.name, None) or getattr(nn, spec.name)
        rebuilt = _rebuilt(factory, spec.kwargs)
    except CnncalcError as err:
        raise self.unmapped(
            node,
            f"cnncalc's {kind} cannot express this {_class_name(module)}: {err.message}",
            received=err.received if err.received is not None else repr(module),
        ) from err
    if (
        type(rebuilt) is not type(module)
        and type(module) not in SAME_AT_INFERENCE
        and not isinstance(module, type(rebuilt))
        and _qualified(type(module)) not in FOREIGN_MODULE_KINDS
    ):
        raise self.unmapped(
            node,
            f"cnncalc's {kind} builds {type(rebuilt).__name__}, not {_class_name(module)}",
            received=repr(module),
        )
    rank = len(shapes[0]) + 1 if shapes else 0
    for attr in getattr(type(module), "__constants__", ()):
        if attr == "inplace" or not hasattr(module, attr):
            continue
        mine, theirs = getattr(rebuilt, attr, None), getattr(module, attr)
        if not _same(mine, theirs, attr, rank):
            raise self.unmapped(
                node,
                f"cnncalc's {kind} cannot express {_class_name(module)} with {attr}={theirs!r}",
                received=repr(module),
                expected=f"{attr}={mine!r}",
            )
    return args
