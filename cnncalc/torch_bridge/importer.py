"""`cnncalc import`: a spec from a PyTorch model.

The model is traced with `torch.fx.symbolic_trace` (a Tracer that keeps every module cnncalc can
map as a leaf) and run once through `ShapeProp` on a zero tensor of the given input shape at
batch 1, so that every node knows its output shape. fx rather than `torch.export`: fx keeps the
module paths (`call_module` nodes named `layer1.0.conv1`, and each functional call's enclosing
module in `nn_module_stack`), which is what lets the spec keep `named_modules()` names; it runs on
a CPU torch without compiling or decomposing anything into aten ops; and when it fails on
data-dependent control flow it says so (`TraceError`), from the user's own frame.

Each node becomes one row (two for `x.mean((2, 3))`: global average pooling, then flatten) through
one table, keyed by module class (`MODULE_KINDS`) or by function / method (`FUNCTIONS`, `METHODS`).
A module's YAML arguments are read generically from its attributes (a layer argument or one of its
aliases, PyTorch's spellings, names the attribute), then the layer's own `torch_module` is built
and compared with the user's module attribute by attribute (`__constants__`): anything cnncalc
cannot express (`padding_mode='reflect'`, `divisor_override`) is an error, never a wrong spec. A
functional call is first turned into its module (`F.max_pool2d(x, 3, 2)` -> `nn.MaxPool2d(3, 2)`)
and takes the same road. Finally the written spec is parsed and analysed, and every row's output
shape and weights, biases and buffers are compared with the traced module's.

The spec is written to read like the built-ins: containers whose children run in order become
nested `sequential` structures (names relative), a container that adds a body and a shortcut
becomes a `residual`, and containers of one class repeated with the same structure (torchvision's
Bottleneck) become one `blocks:` definition whose varying values are block arguments.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import io
import math
import operator
import os
import re
import sys
import traceback
from collections import Counter
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

from ..analysis import analyze
from ..errors import CnncalcError, MissingExtraError, Where, did_you_mean
from ..graph import INPUT, Graph
from ..layers import ALIASES, REGISTRY, build_layer
from ..library import is_model_target, read_args
from ..records import record
from ..spec import ITEM_KEYS, STRUCTURES, parse_text
from . import _OWN_MODULES, Piece, modules, parameter_counts

Shape = tuple[int, ...]


class TorchImportError(CnncalcError):
    """A PyTorch model that cannot be imported exactly: an unsupported op, or untraceable control flow."""


@record
class ImportedSpec:
    """A model imported from PyTorch: the spec as plain data, its YAML text, and its parsed graph.

    `unused` names the modules with parameters that the forward pass never calls (not in the spec).
    """

    data: dict
    yaml: str
    graph: Graph
    unused: tuple[str, ...] = ()


# ----- the mapping table -------------------------------------------------------------------

# Module class -> cnncalc layer type (a REGISTRY name). tests/test_import.py checks every kind is registered.
MODULE_KINDS: dict[type[nn.Module], str] = {
    nn.Conv1d: "conv", nn.Conv2d: "conv", nn.Conv3d: "conv",
    nn.ConvTranspose1d: "conv_transpose", nn.ConvTranspose2d: "conv_transpose", nn.ConvTranspose3d: "conv_transpose",
    nn.MaxPool1d: "maxpool", nn.MaxPool2d: "maxpool", nn.MaxPool3d: "maxpool",
    nn.AvgPool1d: "avgpool", nn.AvgPool2d: "avgpool", nn.AvgPool3d: "avgpool",
    nn.AdaptiveAvgPool1d: "adaptive_avgpool", nn.AdaptiveAvgPool2d: "adaptive_avgpool", nn.AdaptiveAvgPool3d: "adaptive_avgpool",
    nn.AdaptiveMaxPool1d: "adaptive_maxpool", nn.AdaptiveMaxPool2d: "adaptive_maxpool", nn.AdaptiveMaxPool3d: "adaptive_maxpool",
    nn.Linear: "linear",
    nn.BatchNorm1d: "batchnorm", nn.BatchNorm2d: "batchnorm", nn.BatchNorm3d: "batchnorm",
    nn.LocalResponseNorm: "lrn",
    nn.Dropout: "dropout", nn.Dropout1d: "dropout", nn.Dropout2d: "dropout", nn.Dropout3d: "dropout",
    nn.Identity: "identity", nn.Flatten: "flatten",
    nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", nn.ELU: "elu", nn.GELU: "gelu", nn.SiLU: "silu",
    nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Softmax: "softmax",
    _OWN_MODULES["Add"]: "add", _OWN_MODULES["Concat"]: "concat", _OWN_MODULES["Mul"]: "mul",
}  # fmt: skip
# Types issue 10 announces (by torch class name): used only once a layer type of that name is registered.
OPTIONAL_MODULE_KINDS: dict[str, str] = {
    "ReLU6": "relu6", "Hardswish": "hardswish", "Hardsigmoid": "hardsigmoid", "Mish": "mish", "Softplus": "softplus",
    "LogSoftmax": "log_softmax", "PReLU": "prelu", "Upsample": "upsample", "PixelShuffle": "pixel_shuffle",
    "PixelUnshuffle": "pixel_unshuffle", "ChannelShuffle": "channel_shuffle", "LayerNorm": "layernorm",
    "GroupNorm": "groupnorm", "InstanceNorm2d": "instancenorm", "ZeroPad2d": "zero_pad",
}  # fmt: skip
# Classes outside torch.nn (by module and qualified name) that compute what a cnncalc type's own
# module computes: torchvision's building blocks. Each is a leaf; its arguments are read from its
# attributes and checked as any module's are.
FOREIGN_MODULE_KINDS: dict[str, str] = {
    "torchvision.ops.stochastic_depth.StochasticDepth": "stochastic_depth",
    "torchvision.ops.misc.Permute": "permute",
    "torchvision.models.convnext.LayerNorm2d": "layernorm",  # over the channels, as cnncalc's ChannelLayerNorm
    # cnncalc's own (a built-in's to_torch() imported back)
    "cnncalc.torch_bridge.modules.StochasticDepth": "stochastic_depth",
    "cnncalc.torch_bridge.modules.Permute": "permute",
    "cnncalc.torch_bridge.modules.ChannelLayerNorm": "layernorm",
}
# Modules that compute the same as cnncalc's module at inference although their class differs.
SAME_AT_INFERENCE = {nn.Dropout1d, nn.Dropout2d, nn.Dropout3d}
# Containers: module classes that only hold others, so a repeated one is recognised by its structure.
GENERIC_CONTAINERS = (nn.Module, nn.Sequential, nn.ModuleList, nn.ModuleDict)


@record
class Equivalent:
    """A functional call that is a module's forward: `F.max_pool2d(x, 3, 2)` is `nn.MaxPool2d(3, 2)(x)`.

    `params` names the call's arguments in order (the tensor first); `required` pins arguments
    that cnncalc can only follow at one value; `ignored` are dropped (F.dropout's `training`).
    """

    module: type[nn.Module] | str  # a class, or an nn class name for an optional row
    params: tuple[str, ...]
    required: Mapping[str, Any] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()


@record
class Special:
    """A call mapped by shape rules: merges, flatten-like reshapes, a mean over the spatial axes."""

    kinds: tuple[str, ...]
    rule: str  # "merge", "cat", "flatten", "reshape", "mean"
    params: tuple[str, ...] = ()
    optional: bool = False


def _pool_params(extra: tuple[str, ...]) -> tuple[str, ...]:
    return ("input", "kernel_size", "stride", "padding", *extra)


_ACT = ("input", "inplace")
FUNCTIONS: dict[Any, Equivalent | Special] = {
    operator.add: Special(("add",), "merge", ("input", "other")),
    operator.iadd: Special(("add",), "merge", ("input", "other")),
    torch.add: Special(("add",), "merge", ("input", "other", "alpha")),
    operator.mul: Special(("mul",), "merge", ("input", "other"), optional=True),
    operator.imul: Special(("mul",), "merge", ("input", "other"), optional=True),
    torch.mul: Special(("mul",), "merge", ("input", "other"), optional=True),
    torch.cat: Special(("concat",), "cat", ("tensors", "dim")),
    torch.concat: Special(("concat",), "cat", ("tensors", "dim")),
    torch.flatten: Special(("flatten",), "flatten", ("input", "start_dim", "end_dim")),
    torch.reshape: Special(("flatten",), "reshape", ("input", "shape")),
    torch.mean: Special(("global_avgpool", "flatten"), "mean", ("input", "dim", "keepdim", "dtype")),
    torch.permute: Special(("permute",), "permute", ("input", "dims")),
    torch.chunk: Special(("chunk",), "pieces", ("input", "chunks", "dim")),
    torch.split: Special(("split",), "pieces", ("tensor", "split_size_or_sections", "dim")),
    F.relu: Equivalent(nn.ReLU, _ACT), F.relu_: Equivalent(nn.ReLU, ("input",)),
    torch.relu: Equivalent(nn.ReLU, ("input",)), torch.relu_: Equivalent(nn.ReLU, ("input",)),
    F.leaky_relu: Equivalent(nn.LeakyReLU, ("input", "negative_slope", "inplace")),
    F.elu: Equivalent(nn.ELU, ("input", "alpha", "inplace")),
    F.gelu: Equivalent(nn.GELU, ("input", "approximate")),
    F.silu: Equivalent(nn.SiLU, _ACT),
    torch.sigmoid: Equivalent(nn.Sigmoid, ("input",)), F.sigmoid: Equivalent(nn.Sigmoid, ("input",)),
    torch.tanh: Equivalent(nn.Tanh, ("input",)), F.tanh: Equivalent(nn.Tanh, ("input",)),
    F.softmax: Equivalent(nn.Softmax, ("input", "dim", "_stacklevel", "dtype"), {"dtype": None}, ("_stacklevel",)),
    torch.softmax: Equivalent(nn.Softmax, ("input", "dim", "dtype"), {"dtype": None}),
    F.dropout: Equivalent(nn.Dropout, ("input", "p", "training", "inplace"), ignored=("training",)),
    F.max_pool1d: Equivalent(nn.MaxPool1d, _pool_params(("dilation", "ceil_mode", "return_indices"))),
    F.max_pool2d: Equivalent(nn.MaxPool2d, _pool_params(("dilation", "ceil_mode", "return_indices"))),
    F.max_pool3d: Equivalent(nn.MaxPool3d, _pool_params(("dilation", "ceil_mode", "return_indices"))),
    F.avg_pool1d: Equivalent(nn.AvgPool1d, _pool_params(("ceil_mode", "count_include_pad"))),
    F.avg_pool2d: Equivalent(nn.AvgPool2d, _pool_params(("ceil_mode", "count_include_pad", "divisor_override"))),
    F.avg_pool3d: Equivalent(nn.AvgPool3d, _pool_params(("ceil_mode", "count_include_pad", "divisor_override"))),
    F.adaptive_avg_pool1d: Equivalent(nn.AdaptiveAvgPool1d, ("input", "output_size")),
    F.adaptive_avg_pool2d: Equivalent(nn.AdaptiveAvgPool2d, ("input", "output_size")),
    F.adaptive_avg_pool3d: Equivalent(nn.AdaptiveAvgPool3d, ("input", "output_size")),
    F.adaptive_max_pool1d: Equivalent(nn.AdaptiveMaxPool1d, ("input", "output_size", "return_indices")),
    F.adaptive_max_pool2d: Equivalent(nn.AdaptiveMaxPool2d, ("input", "output_size", "return_indices")),
    F.adaptive_max_pool3d: Equivalent(nn.AdaptiveMaxPool3d, ("input", "output_size", "return_indices")),
    F.relu6: Equivalent("ReLU6", _ACT),
    F.hardswish: Equivalent("Hardswish", _ACT),
    F.hardsigmoid: Equivalent("Hardsigmoid", _ACT),
    F.interpolate: Equivalent("Upsample", ("input", "size", "scale_factor", "mode", "align_corners",
                                           "recompute_scale_factor", "antialias"), {"antialias": False}),
}  # fmt: skip
_SELF = ("input",)
METHODS: dict[str, Equivalent | Special] = {
    "add": Special(("add",), "merge", ("input", "other", "alpha")),
    "add_": Special(("add",), "merge", ("input", "other", "alpha")),
    "mul": Special(("mul",), "merge", ("input", "other"), optional=True),
    "mul_": Special(("mul",), "merge", ("input", "other"), optional=True),
    "flatten": Special(("flatten",), "flatten", ("input", "start_dim", "end_dim")),
    "view": Special(("flatten",), "reshape", ("input",)),
    "reshape": Special(("flatten",), "reshape", ("input",)),
    "mean": Special(("global_avgpool", "flatten"), "mean", ("input", "dim", "keepdim", "dtype")),
    "permute": Special(("permute",), "permute", ("input", "dims")),
    "chunk": Special(("chunk",), "pieces", ("input", "chunks", "dim")),
    "split": Special(("split",), "pieces", ("input", "split_size", "dim")),
    "relu": Equivalent(nn.ReLU, _SELF), "relu_": Equivalent(nn.ReLU, _SELF),
    "sigmoid": Equivalent(nn.Sigmoid, _SELF), "sigmoid_": Equivalent(nn.Sigmoid, _SELF),
    "tanh": Equivalent(nn.Tanh, _SELF), "tanh_": Equivalent(nn.Tanh, _SELF),
    "softmax": Equivalent(nn.Softmax, ("input", "dim", "dtype"), {"dtype": None}),
}  # fmt: skip


def _registered(kind: str) -> bool:
    return kind in REGISTRY or kind in ALIASES


def _optional_class(name: str) -> type[nn.Module] | None:
    return getattr(nn, name, None)


def table_kinds() -> dict[str, tuple[str, bool]]:
    """Every row of the table: its key (as text) -> (the cnncalc kind it maps to, optional?)."""
    rows: dict[str, tuple[str, bool]] = {}
    for cls, kind in MODULE_KINDS.items():
        rows[f"module {cls.__name__}"] = (kind, False)
    for name, kind in OPTIONAL_MODULE_KINDS.items():
        rows[f"module {name}"] = (kind, True)
    for name, kind in FOREIGN_MODULE_KINDS.items():
        rows[f"module {name}"] = (kind, False)
    for table, label in ((FUNCTIONS, "function"), (METHODS, "method")):
        for key, rule in table.items():
            text = f"{label} {getattr(key, '__name__', key)}"
            if isinstance(rule, Special):
                for i, kind in enumerate(rule.kinds):
                    rows[f"{text}#{i}"] = (kind, rule.optional)
            elif isinstance(rule.module, str):
                rows[text] = (OPTIONAL_MODULE_KINDS[rule.module], True)
            else:
                rows[text] = (MODULE_KINDS[rule.module], False)
    return rows


def module_kind(module: nn.Module) -> str | None:
    """The registered cnncalc type for a module, or None when cnncalc has none."""
    cls = type(module)
    foreign = FOREIGN_MODULE_KINDS.get(_qualified(cls))
    if foreign is not None:
        return foreign if _registered(foreign) else None
    for base in cls.__mro__:
        if not issubclass(base, nn.Module):  # object, a mixin: no kind
            continue
        kind = MODULE_KINDS.get(base)
        if kind is None and base.__module__.startswith("torch.nn"):
            kind = OPTIONAL_MODULE_KINDS.get(base.__name__)
        if kind is None:
            continue
        # a subclass with its own forward computes something else
        if base is not cls and cls.forward is not base.forward:
            return None
        return kind if _registered(kind) else None
    return _discovered().get(cls.__name__) if cls.__module__.startswith("torch.nn") else None


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _discovered() -> dict[str, str]:
    """torch class name -> kind for registered types that build with their defaults (new activations)."""
    found: dict[str, set[str]] = {}
    for kind, cls in REGISTRY.items():
        try:
            layer = build_layer(cls, {})
        except CnncalcError:
            continue
        for shape in ((4,), (4, 8), (4, 8, 8), (4, 8, 8, 8)):
            try:
                name = layer.torch_module([shape] * max(1, cls.min_inputs)).name
            except Exception:  # noqa: BLE001 - a type that refuses this rank
                continue
            found.setdefault(name, set()).add(kind)
    return {name: next(iter(kinds)) for name, kinds in found.items() if len(kinds) == 1}


# ----- tracing -----------------------------------------------------------------------------


class _Tracer(fx.Tracer):
    """Keeps every module cnncalc maps (and every other torch.nn leaf, so that an unsupported one is named)."""

    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if module_kind(m) is not None or isinstance(m, Piece):
            return True
        return super().is_leaf_module(m, module_qualified_name)

    def path_of_module(self, mod: nn.Module) -> str:
        try:
            return super().path_of_module(mod)
        except NameError:
            # cnncalc's own model keeps a layer scale's module out of the tree (its parameter is the
            # parent's): traced through, under the row's name
            detached = getattr(self.root, "_detached", {})
            for name, module in detached.items():
                if module is mod:
                    return str(name)
            raise


_TORCH_DIR = os.path.dirname(torch.__file__)
_HERE = os.path.dirname(os.path.dirname(__file__))


def _user_frame(stack: str | None) -> tuple[str | None, int | None, str | None]:
    """(file, line, source) of the innermost frame outside torch in an fx stack trace."""
    if not stack:
        return None, None, None
    found: tuple[str | None, int | None, str | None] = (None, None, None)
    lines = stack.splitlines()
    for i, text in enumerate(lines):
        m = re.match(r'\s*File "(.+)", line (\d+), in (.+)', text)
        if m and not m.group(1).startswith(_TORCH_DIR) and not m.group(1).startswith(_HERE):
            source = (
                lines[i + 1].strip() if i + 1 < len(lines) and not lines[i + 1].lstrip().startswith("File ") else None
            )
            found = (m.group(1), int(m.group(2)), source)
    return found


def _trace(module: nn.Module) -> fx.GraphModule:
    tracer = _Tracer()
    try:
        graph = tracer.trace(module)
    except (fx.proxy.TraceError, TypeError, RuntimeError, NotImplementedError) as err:
        file, line, cls_name = None, None, type(module).__name__
        for frame, lineno in traceback.walk_tb(err.__traceback__):
            path = frame.f_code.co_filename
            if not path.startswith(_TORCH_DIR) and not path.startswith(_HERE):
                file, line = path, lineno
                owner = frame.f_locals.get("self")
                if isinstance(owner, nn.Module):
                    cls_name = type(owner).__name__
        control = isinstance(err, fx.proxy.TraceError) or "control flow" in str(err) or "Proxy" in str(err)
        message = (
            f"torch.fx cannot trace {cls_name}.forward: its control flow depends on the values of its tensors"
            if control
            else f"torch.fx cannot trace {cls_name}.forward"
        )
        raise TorchImportError(
            message,
            where=Where(file=file, line=line, path=cls_name),
            received=f"{type(err).__name__}: {err}",
            hint="cnncalc imports models whose layers do not depend on the data (a fixed graph); "
            "move the data-dependent part out of forward, or write that part of the spec by hand",
        ) from None
    return fx.GraphModule(tracer.root, graph, type(module).__name__)


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


class _Mapper:
    """Turns the traced fx graph into rows, naming each and checking it against the user's module."""

    def __init__(self, root: nn.Module, gm: fx.GraphModule) -> None:
        self.root = root
        self.gm = gm
        self.rows: list[_Row] = []
        self.taken = {name for name, _ in root.named_modules() if name} | {INPUT}
        self.of_node: dict[fx.Node, int] = {}
        self.called: dict[str, int] = {}  # module path -> the row of its first call
        self.again: Counter[str] = Counter()  # module path -> how many times it ran
        self.constants: dict[fx.Node, Any] = {}  # shape arithmetic, evaluated at the traced input
        self.pieces: dict[fx.Node, list[int]] = {}  # chunk/split nodes -> the rows of their pieces
        self.absorbed: set[fx.Node] = set()  # nodes already written as part of one row
        self.scope_of: dict[str, str] = {}  # a functional row's name -> the module path it was called in

    # -- errors ---------------------------------------------------------------------------

    def fail(self, node: fx.Node, message: str, **extra: Any) -> TorchImportError:
        file, line, source = _user_frame(node.meta.get("stack_trace"))
        path = node.target if node.op == "call_module" else self.scope(node) or "(top level)"
        received = extra.pop("received", None)
        if source:
            received = f"{source}" if received is None else f"{received} (in `{source}`)"
        return TorchImportError(message, where=Where(file=file, line=line, path=str(path)), received=received, **extra)

    # -- names ----------------------------------------------------------------------------

    @staticmethod
    def scope(node: fx.Node) -> str:
        stack = node.meta.get("nn_module_stack") or {}
        if not stack:
            return ""
        path = list(stack.values())[-1][0]
        return "" if path in ("", None) else str(path)

    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def functional_name(self, node: fx.Node, base: str) -> str:
        scope = self.scope(node)
        name = self.fresh(f"{scope}.{base}" if scope else base)
        if scope:
            self.scope_of[name] = scope
        return name

    def name_after_modules(self) -> None:
        """A functional call that is all a parameter-free module without children does (cnncalc's
        Mul, a wrapper of F.interpolate) is named after that module, as named_modules() has it."""
        rows_in: dict[str, list[int]] = {}
        for i, row in enumerate(self.rows):
            scope = self.scope_of.get(row.name)
            if scope is not None and row.piece is None:
                rows_in.setdefault(scope, []).append(i)
        names = {row.name for row in self.rows}
        for scope, rows in rows_in.items():
            try:
                module = self.root.get_submodule(scope)
            except AttributeError:
                continue
            if len(rows) != 1 or scope in names or any(True for _ in module.children()):
                continue
            if any(True for _ in module.parameters()) or any(True for _ in module.buffers()):
                continue
            self.rows[rows[0]].name = scope

    # -- the walk -------------------------------------------------------------------------

    def run(self) -> list[_Row]:
        placeholders = [n for n in self.gm.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise TorchImportError(
                "cnncalc imports models with one input tensor",
                received=f"forward({', '.join(n.name for n in placeholders)})",
            )
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                meta = node.meta["tensor_meta"]
                self.rows.append(_Row(INPUT, INPUT, {}, [], tuple(meta.shape[1:])))
                self.of_node[node] = 0
            elif node.op == "output":
                self.output(node)
            elif node.op == "get_attr":
                continue  # a parameter read in forward: followed only as a layer scale (rule_merge)
            elif node in self.absorbed:
                continue  # part of a pattern already written as one row (channel shuffle)
            elif not isinstance(node.meta.get("tensor_meta"), (TensorMetadata, tuple, list)):
                self.shape_value(node)  # shape arithmetic (x.size(0), x.shape[-2:]): a constant at this input
                continue
            elif node.op == "call_module":
                self.call_module(node)
            else:
                self.call(node)
        self.name_after_modules()
        return self.rows

    def shape_value(self, node: fx.Node) -> None:
        """The value of a node computed from shapes only, where it can be followed (else left unknown)."""
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

    def output(self, node: fx.Node) -> None:
        (value,) = node.args
        if isinstance(value, dict) and len(value) == 1:  # {"out": x}, as torchvision's segmentation models
            (value,) = value.values()
        if isinstance(value, (tuple, list)) and len(value) == 1:
            (value,) = value
        if not isinstance(value, fx.Node) or value not in self.of_node:
            raise self.fail(node, "cnncalc imports models with one output tensor", received=str(value))
        if self.of_node[value] != len(self.rows) - 1:
            raise self.fail(node, "the output is not the last layer computed", received=value.name)

    def tensor_input(self, node: fx.Node, value: Any, what: str) -> int:
        if isinstance(value, fx.Node) and value in self.of_node:
            return self.of_node[value]
        if isinstance(value, fx.Node) and value.op == "get_attr":
            raise self.fail(node, f"the forward pass reads the tensor '{value.target}' directly (a parameter or buffer "
                                  "outside a layer); cnncalc has no layer type for that")  # fmt: skip
        raise self.fail(node, f"{what} takes a value cnncalc cannot follow (a constant or a non-layer result)",
                        received=repr(value))  # fmt: skip

    def shape(self, node: fx.Node) -> Shape:
        meta = node.meta.get("tensor_meta")
        if not isinstance(meta, TensorMetadata):
            raise self.fail(node, "this call returns several tensors; cnncalc layers return one", received=node.name)
        return tuple(meta.shape[1:])

    def add_row(self, node: fx.Node | None, name: str, kind: str, args: dict[str, Any], inputs: list[int],
                shape: Shape, module: nn.Module | None = None, calls: int | None = None,
                counts: tuple[int, int, int] | None = None) -> int:  # fmt: skip
        self.rows.append(_Row(name, kind, args, inputs, shape, module, calls, counts))
        if node is not None:
            self.of_node[node] = len(self.rows) - 1
        return len(self.rows) - 1

    def call_module(self, node: fx.Node) -> None:
        path = str(node.target)
        module = self.gm.get_submodule(path)
        if isinstance(module, Piece):  # cnncalc's own chunk/split piece: rows name.0, name.1
            inputs = [self.tensor_input(node, a, path) for a in node.args]
            self.add_row(node, path, "split", {"sizes": list(module.sizes)}, inputs, self.shape(node))
            self.rows[-1].piece = int(module.index)
            return
        kind = module_kind(module)
        if kind is None:
            raise self.fail(node, f"cnncalc has no layer type for the module {_class_name(module)} at '{path}'",
                            expected="modules and functions listed in docs/import.md")  # fmt: skip
        inputs = [self.tensor_input(node, a, path) for a in node.args]
        if node.kwargs:
            raise self.fail(node, f"'{path}' is called with keyword arguments, which cnncalc cannot follow",
                            received=", ".join(node.kwargs))  # fmt: skip
        args = self.module_args(node, module, kind, inputs)
        if path in self.called:
            if any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False)):
                raise self.fail(node, f"'{path}' is called more than once and has parameters (shared weights); "
                                      "cnncalc gives every layer its own")  # fmt: skip
            # the spec's `- call: relu` row, named as the spec names it: relu@2, relu@3, ...
            self.again[path] += 1
            name = self.fresh(f"{path}@{self.again[path] + 1}")
            self.add_row(node, name, kind, args, inputs, self.shape(node), calls=self.called[path])
            return
        self.called[path] = self.add_row(node, path, kind, args, inputs, self.shape(node), module)

    def module_args(self, node: fx.Node, module: nn.Module, kind: str, inputs: list[int]) -> dict[str, Any]:
        """The layer's YAML arguments read from the module, checked by rebuilding the module from them."""
        cls = REGISTRY[ALIASES.get(kind, kind)]
        args: dict[str, Any] = {}
        for f in fields(cls):
            for attr in (f.name, *f.metadata.get("aliases", ())):
                if hasattr(module, attr):
                    value = getattr(module, attr)
                    if f.name == "bias" and not isinstance(value, bool):
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
            spec = layer.torch_module(shapes)
            factory = _OWN_MODULES.get(spec.name) or getattr(modules, spec.name, None) or getattr(nn, spec.name)
            rebuilt = factory(**spec.kwargs)
        except CnncalcError as err:
            raise self.fail(node, f"cnncalc's {kind} cannot express this {_class_name(module)}: {err.message}",
                            received=err.received if err.received is not None else repr(module)) from err  # fmt: skip
        if (
            type(rebuilt) is not type(module)
            and type(module) not in SAME_AT_INFERENCE
            and not isinstance(module, type(rebuilt))
            and _qualified(type(module)) not in FOREIGN_MODULE_KINDS
        ):
            raise self.fail(
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
                raise self.fail(node, f"cnncalc's {kind} cannot express {_class_name(module)} with {attr}={theirs!r}",
                                received=repr(module), expected=f"{attr}={mine!r}")  # fmt: skip
        return args

    def call(self, node: fx.Node) -> None:
        whole = node.args[0] if node.args else None
        if (
            node.op == "call_function"
            and node.target is operator.getitem
            and isinstance(whole, fx.Node)
            and whole in self.pieces
        ):
            rows, index = self.pieces[whole], node.args[1]  # x1, x2 = x.chunk(2, dim=1)
            if not isinstance(index, int) or not -len(rows) <= index < len(rows):
                raise self.fail(node, "a piece of a chunk or split is read with an index cnncalc cannot follow",
                                received=repr(index))  # fmt: skip
            self.of_node[node] = rows[index]
            return
        if node.op == "call_function" and node.target is operator.getitem and isinstance(whole, fx.Node):
            self.slicing(node, whole)
            return
        rule = METHODS.get(str(node.target)) if node.op == "call_method" else FUNCTIONS.get(node.target)
        what = (
            f"the method .{node.target}()"
            if node.op == "call_method"
            else f"the function {_function_name(node.target)}"
        )
        if rule is None:
            raise self.fail(
                node, f"cnncalc has no layer type for {what}", expected="modules and functions listed in docs/import.md"
            )
        bound = self.bind(node, rule.params, what)
        if isinstance(rule, Equivalent):
            self.equivalent(node, rule, bound, what)
            return
        missing = [k for k in rule.kinds if not _registered(k)]
        if missing:
            raise self.fail(node, f"cnncalc has no layer type for {what} (it would need '{missing[0]}')",
                            expected="modules and functions listed in docs/import.md")  # fmt: skip
        getattr(self, f"rule_{rule.rule}")(node, bound, what)

    def bind(self, node: fx.Node, params: tuple[str, ...], what: str) -> dict[str, Any]:
        if node.op == "call_method" and str(node.target) in ("view", "reshape"):
            return {"input": node.args[0]}
        if node.op == "call_method" and str(node.target) == "permute" and not node.kwargs:
            dims = node.args[1] if len(node.args) == 2 else tuple(node.args[1:])  # x.permute(0, 2, 3, 1)
            return {"input": node.args[0], "dims": _substitute(dims, self.constants)}
        if len(node.args) > len(params):
            raise self.fail(node, f"{what} is called with more arguments than cnncalc knows", received=len(node.args))
        bound = dict(zip(params, node.args))
        for key, value in node.kwargs.items():
            if key not in params:
                raise self.fail(
                    node, f"{what} is called with the argument '{key}', which cnncalc cannot follow", received=key
                )
            bound[key] = value
        for key, value in bound.items():
            if key not in _TENSOR_PARAMS:
                bound[key] = value = _substitute(value, self.constants)
            if key not in _TENSOR_PARAMS and _has_node(value):
                raise self.fail(node, f"the argument '{key}' of {what} is computed from a tensor; cnncalc needs a constant",
                                received=repr(value))  # fmt: skip
        return bound

    def equivalent(self, node: fx.Node, rule: Equivalent, bound: dict[str, Any], what: str) -> None:
        cls = _optional_class(rule.module) if isinstance(rule.module, str) else rule.module
        for key, value in rule.required.items():
            if key in bound and bound[key] != value:
                raise self.fail(
                    node, f"cnncalc follows {what} only with {key}={value!r}", received=f"{key}={bound[key]!r}"
                )
        kwargs = {k: v for k, v in bound.items() if k != "input" and k not in rule.required and k not in rule.ignored}
        if cls is None:
            raise self.fail(
                node, f"cnncalc has no layer type for {what}", expected="modules and functions listed in docs/import.md"
            )
        try:
            module = cls(**kwargs)
        except (TypeError, ValueError) as err:
            raise self.fail(
                node, f"cnncalc cannot follow {what} with these arguments: {err}", received=repr(kwargs)
            ) from None
        kind = module_kind(module)
        if kind is None:
            raise self.fail(
                node, f"cnncalc has no layer type for {what}", expected="modules and functions listed in docs/import.md"
            )
        source = self.tensor_input(node, bound.get("input"), what)
        base = re.sub(
            r"_$", "", str(node.target) if node.op == "call_method" else _function_name(node.target).split(".")[-1]
        )
        args = self.module_args(node, module, kind, [source])
        self.add_row(node, self.functional_name(node, base), kind, args, [source], self.shape(node))

    # -- rules for the calls that are not a module's forward ------------------------------

    def rule_merge(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        if bound.get("alpha", 1) != 1:
            raise self.fail(node, f"cnncalc follows {what} only with alpha=1", received=f"alpha={bound['alpha']!r}")
        a, b = bound.get("input"), bound.get("other")
        if self.rule_kind(node) == "mul" and any(isinstance(v, fx.Node) and v.op == "get_attr" for v in (a, b)):
            self.layer_scale(node, a, b, what)
            return
        if not (isinstance(a, fx.Node) and isinstance(b, fx.Node)):
            raise self.fail(node, f"{what} of a tensor and a constant: cnncalc has no layer type for it",
                            received=f"{a!r}, {b!r}")  # fmt: skip
        inputs = [self.tensor_input(node, a, what), self.tensor_input(node, b, what)]
        kind = self.rule_kind(node)
        base = "mul" if kind == "mul" else "add"
        self.add_row(node, self.functional_name(node, base), kind, {}, inputs, self.shape(node))

    def layer_scale(self, node: fx.Node, a: Any, b: Any, what: str) -> None:
        """`self.gamma * x` with a parameter of shape [C, 1, ...]: ConvNeXt's layer scale, a row
        named after the parameter (torchvision's CNBlock holds it as `layer_scale`)."""
        attr, value = (a, b) if isinstance(a, fx.Node) and a.op == "get_attr" else (b, a)
        source = self.tensor_input(node, value, what)
        before = self.rows[source].shape
        try:
            param = self.gm.get_parameter(str(attr.target))
        except AttributeError:
            param = None
        scale = (before[0], *(1,) * (len(before) - 1))
        if param is None or tuple(param.shape) != scale or self.shape(node) != before:
            got = list(param.shape) if param is not None else "a buffer or constant"
            raise self.fail(node, f"{what} by the tensor '{attr.target}': cnncalc follows it only as a layer scale, "
                                  f"a parameter of shape {list(scale)} for this input", received=got)  # fmt: skip
        init = 1e-6
        values = param.detach()
        if values.device.type != "meta" and values.numel() and bool((values == values.flatten()[0]).all()):
            init = float(values.flatten()[0])  # the value it still holds (its initial value, untrained)
        name = str(attr.target) if str(attr.target) not in self.taken else self.fresh(str(attr.target))
        self.taken.add(name)
        self.add_row(node, name, "layer_scale", {"init": init}, [source], before, counts=(param.numel(), 0, 0))

    def rule_permute(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        source = self.tensor_input(node, bound.get("input"), what)
        rank = len(self.rows[source].shape) + 1
        dims = bound.get("dims")
        dims = [dims] if isinstance(dims, int) else list(dims or ())
        dims = [d % rank if isinstance(d, int) else d for d in dims]
        if sorted(dims) != list(range(rank)) or dims[0] != 0:
            raise self.fail(node, f"cnncalc follows {what} only when the batch axis stays first",
                            received=f"dims={bound.get('dims')!r}")  # fmt: skip
        self.add_row(node, self.functional_name(node, "permute"), "permute", {"dims": dims}, [source], self.shape(node))

    def rule_pieces(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        """`x.chunk(2, dim=1)`, `torch.split(x, [a, b], 1)`: one row per piece, as the spec expands them."""
        source = self.tensor_input(node, bound.get("input", bound.get("tensor")), what)
        before = self.rows[source].shape
        rank = len(before) + 1
        dim = bound.get("dim", 0)
        meta = node.meta.get("tensor_meta")
        if not isinstance(dim, int) or dim % rank != 1:
            raise self.fail(node, f"cnncalc's chunk and split cut the channels (dim=1); this {what} cuts dim={dim}",
                            received=f"dim={dim}")  # fmt: skip
        shapes = [tuple(m.shape[1:]) for m in meta] if isinstance(meta, (tuple, list)) else []
        kind = self.rule_kind(node)
        if kind == "chunk":
            args: dict[str, Any] = {"chunks": bound.get("chunks")}
        else:
            args = {"sizes": [shape[0] for shape in shapes]}
        base = self.functional_name(node, kind)
        rows = []
        for k, shape in enumerate(shapes):
            self.taken.add(f"{base}.{k}")
            rows.append(self.add_row(None, f"{base}.{k}", kind, args, [source], shape))
            self.rows[-1].piece = k
        if not rows:
            raise self.fail(node, f"{what} gives no pieces cnncalc can follow", received=repr(meta))
        self.pieces[node] = rows

    def channel_shuffle(self, node: fx.Node, source: int) -> bool:
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
        self.add_row(chain[-1], self.functional_name(node, "channel_shuffle"), "channel_shuffle",
                     {"groups": split[0]}, [source], before)  # fmt: skip
        self.absorbed.add(chain[-1])
        return True

    def slicing(self, node: fx.Node, whole: fx.Node) -> None:
        """`x[:, :, a:b, c:d]`: a crop of the spatial axes (U-Net's skip crops), amounts last axis first."""
        source = self.tensor_input(node, whole, "indexing x[...]")
        before = self.rows[source].shape
        index = _substitute(node.args[1], self.constants)
        index = index if isinstance(index, tuple) else (index,)
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
            raise self.fail(node, "cnncalc follows indexing only as a crop of the spatial axes (x[:, :, a:b, c:d])",
                            received=repr(node.args[1]))  # fmt: skip
        self.add_row(node, self.functional_name(node, "crop"), "crop", {"amounts": _yaml_value(sides)}, [source],
                     self.shape(node))  # fmt: skip

    def rule_kind(self, node: fx.Node) -> str:
        rule = METHODS.get(str(node.target)) if node.op == "call_method" else FUNCTIONS[node.target]
        assert isinstance(rule, Special), "called for the merge rules only"
        return rule.kinds[0]

    def rule_cat(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        tensors = bound.get("tensors")
        rank = len(self.shape(node)) + 1
        dim = bound.get("dim", 0)
        if not isinstance(dim, int) or dim % rank != 1:
            raise self.fail(
                node, f"cnncalc's concat joins channels (dim=1); this {what} joins dim={dim}", received=f"dim={dim}"
            )
        if not isinstance(tensors, (list, tuple)) or not tensors:
            raise self.fail(node, f"{what} needs a list of tensors", received=repr(tensors))
        inputs = [self.tensor_input(node, t, what) for t in tensors]
        if len(inputs) == 1:  # DenseNet's first layer: torch.cat([x], 1) is x (as a copy)
            self.add_row(node, self.functional_name(node, "concat"), "identity", {}, inputs, self.shape(node))
            return
        self.add_row(node, self.functional_name(node, "concat"), "concat", {}, inputs, self.shape(node))

    def rule_flatten(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        source = self.tensor_input(node, bound.get("input"), what)
        rank = len(self.rows[source].shape) + 1
        start, end = bound.get("start_dim", 0), bound.get("end_dim", -1)
        if start % rank != 1 or end % rank != rank - 1:
            raise self.fail(node, "cnncalc's flatten keeps the batch axis and flattens the rest (start_dim=1, end_dim=-1)",
                            received=f"start_dim={start}, end_dim={end}")  # fmt: skip
        self.add_row(node, self.functional_name(node, "flatten"), "flatten", {}, [source], self.shape(node))

    def rule_reshape(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        source = self.tensor_input(node, bound.get("input"), what)
        before, after = self.rows[source].shape, self.shape(node)
        if after != (math.prod(before),) and self.channel_shuffle(node, source):
            return
        if after != (math.prod(before),):
            raise self.fail(node, f"cnncalc follows {what} only as a flatten to [N, C*H*W]",
                            received=f"[N, {', '.join(map(str, before))}] -> [N, {', '.join(map(str, after))}]")  # fmt: skip
        base = str(node.target) if node.op == "call_method" else "reshape"
        self.add_row(node, self.functional_name(node, base), "flatten", {}, [source], after)

    def rule_mean(self, node: fx.Node, bound: dict[str, Any], what: str) -> None:
        source = self.tensor_input(node, bound.get("input"), what)
        before = self.rows[source].shape
        rank = len(before) + 1
        dims = bound.get("dim")
        dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
        if bound.get("dtype") is not None or sorted(d % rank for d in dims) != list(range(2, rank)):
            raise self.fail(node, f"cnncalc follows {what} only over every spatial axis (global average pooling)",
                            received=f"dim={bound.get('dim')!r} of [N, {', '.join(map(str, before))}]")  # fmt: skip
        name = self.functional_name(node, "mean")
        pooled = (before[0], *(1,) * (len(before) - 1))
        if bound.get("keepdim", False):
            self.add_row(node, name, "global_avgpool", {}, [source], self.shape(node))
        else:
            index = self.add_row(None, name, "global_avgpool", {}, [source], pooled)
            self.add_row(node, self.fresh(f"{name}_flatten"), "flatten", {}, [index], self.shape(node))


def _full_shape(value: Any) -> torch.Size | None:
    """The traced shape (batch axis included) of a tensor node, else None."""
    meta = value.meta.get("tensor_meta") if isinstance(value, fx.Node) else None
    return torch.Size(meta.shape) if isinstance(meta, TensorMetadata) else None


_TENSOR_PARAMS = ("input", "other", "tensors", "tensor", "shape")  # the arguments that are tensors
_SHAPE_ARITHMETIC = {operator.getitem, operator.add, operator.sub, operator.mul, operator.floordiv, operator.truediv,
                     operator.neg, int, float, tuple, list, math.prod}  # fmt: skip


def _substitute(value: Any, constants: Mapping[fx.Node, Any]) -> Any:
    if isinstance(value, fx.Node):
        value = constants.get(value, value)
        return tuple(value) if isinstance(value, torch.Size) else value
    if isinstance(value, (list, tuple)):
        return type(value)(_substitute(v, constants) for v in value)
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
    a, b = _yaml_value(mine), _yaml_value(theirs)
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-12)
    return a == b


# ----- structure: sequential, residual, blocks ---------------------------------------------


@dataclass
class _Item:
    """One item of a spec list: a leaf row, a container (sequential or residual) or a block use."""

    rel: str  # name relative to the list's namespace
    written: str  # layer kind, "sequential", "residual", or a block's name
    args: dict[str, Any] = field(default_factory=dict)
    frm: Any = None  # the `from:` as written
    row: int | None = None  # leaf rows
    path: str = ""  # containers: the full dotted prefix
    sections: dict[str, list[_Item]] | None = None
    cls: type | None = None  # containers: the module class


_SECTIONS = ("layers", "body", "shortcut", "after")
CALL = "call"  # the spec's row that runs an earlier row's module again (docs/spec.md)


class _Structurer:
    def __init__(self, root: nn.Module, rows: list[_Row], nest: bool) -> None:
        self.root = root
        self.rows = rows
        self.nest = nest
        self.names = {r.name for r in rows}
        self.containers: list[_Item] = []

    def ref(self, target: int, prefix: str) -> str:
        """The shortest name for row `target` that resolves to it from the namespace `prefix`."""
        full = self.rows[target].name
        parts = prefix.rstrip(".").split(".") if prefix else []
        for i in range(len(parts), -1, -1):
            ns = ".".join(parts[:i])
            if ns and not full.startswith(ns + "."):
                continue
            short = full[len(ns) + 1 :] if ns else full
            for j in range(len(parts), -1, -1):
                candidate = ".".join(parts[:j] + [short])
                if candidate in self.names:
                    break
            if candidate == full:
                return short
        raise TorchImportError(f"cannot write a reference to '{full}' from '{prefix}' (a name shadows it)")

    def frm(self, inputs: list[int], prev: int, prefix: str, many: bool) -> Any:
        if not many:
            return None if inputs[0] == prev else self.ref(inputs[0], prefix)
        if inputs[0] == prev and len(inputs) == 2:
            return self.ref(inputs[1], prefix)
        return [self.ref(i, prefix) for i in inputs]

    def items(self, indices: list[int], prefix: str, prev: int) -> tuple[list[_Item], int]:
        """The items for consecutive rows under `prefix`, the first reading `prev`; and the last row."""
        runs: list[tuple[str | None, list[int]]] = []
        for i in indices:
            rel = self.rows[i].name[len(prefix) :]
            if self.rows[i].piece is not None:  # `chunk.1`: a piece of the item `chunk`
                rel = rel.rpartition(".")[0]
            head = rel.split(".")[0] if "." in rel and self.nest else None
            if head is not None and runs and runs[-1][0] == head:
                runs[-1][1].append(i)
            else:
                runs.append((head, [i]))
        heads = Counter(h for h, _ in runs if h is not None)
        out: list[_Item] = []
        for head, run in runs:
            if head is None or heads[head] > 1 or len(run) < 3:
                for i in run:
                    row = self.rows[i]
                    if row.piece:  # the pieces after the first are rows of the same item
                        prev = i
                        continue
                    rel = row.name[len(prefix) :] if row.piece is None else row.name[len(prefix) :].rpartition(".")[0]
                    many = REGISTRY[ALIASES.get(row.kind, row.kind)].min_inputs > 1
                    written, args = row.kind, dict(row.args)
                    if row.calls is not None:  # `- call: relu`, looked up like `from:`
                        written, args = CALL, {"layer": self.ref(row.calls, prefix)}
                    out.append(_Item(rel, written, args, self.frm(row.inputs, prev, prefix, many), row=i))
                    prev = i
                continue
            entry = self.rows[run[0]].inputs[0] if self.rows[run[0]].inputs else prev
            item = self.container(prefix + head, run, entry)
            item.rel = head
            assert item.sections is not None  # a container has its sections
            if (
                item.written == "sequential"
                and len(item.sections["layers"]) == 1
                and item.sections["layers"][0].frm is None
            ):
                self.containers.remove(item)  # a container of one item: that item, under a dotted name
                inner = item.sections["layers"][0]
                inner.rel = f"{head}.{inner.rel}"
                item = inner
            item.frm = None if entry == prev else self.ref(entry, prefix)
            out.append(item)
            prev = run[-1]
        return out, prev

    def container(self, path: str, run: list[int], entry: int) -> _Item:
        try:
            cls: type | None = type(self.root.get_submodule(path))
        except AttributeError:
            cls = None
        prefix = path + "."
        item = (
            self.residual(path, run, entry)
            or self.parallel(path, run, entry)
            or _Item(path, "sequential", sections={"layers": self.items(run, prefix, entry)[0]})
        )
        item.path, item.cls = path, cls
        self.containers.append(item)
        return item

    def residual(self, path: str, run: list[int], entry: int) -> _Item | None:
        """body (a chain from the entry), an optional shortcut chain, `add`, then an `after` chain."""
        adds = [p for p, i in enumerate(run) if self.rows[i].name == f"{path}.add" and self.rows[i].kind == "add"]
        if not adds or adds[0] == 0:
            return None
        at = adds[0]
        add = self.rows[run[at]]
        if len(add.inputs) != 2 or add.inputs[0] not in run[:at]:
            return None
        split = run.index(add.inputs[0]) + 1
        body, shortcut, after = run[:split], run[split:at], run[at + 1 :]
        if (add.inputs[1] != run[at - 1]) if shortcut else (add.inputs[1] != entry or split != at):
            return None
        prefix = path + "."
        sections = {"body": self.items(body, prefix, entry)[0], "shortcut": self.items(shortcut, prefix, entry)[0],
                    "after": self.items(after, prefix, run[at])[0]}  # fmt: skip
        if any(it.frm is not None for items in sections.values() for it in items):
            return None
        return _Item(path, "residual", sections=sections)

    def parallel(self, path: str, run: list[int], entry: int) -> _Item | None:
        """Branches (one child each, every one a chain from the entry), then `concat` or `add` of their ends."""
        merge = self.rows[run[-1]]
        if merge.kind not in ("concat", "add") or merge.name != f"{path}.{merge.kind}":
            return None
        branches: list[tuple[str, list[int]]] = []
        for i in run[:-1]:
            rel = self.rows[i].name[len(path) + 1 :]
            if "." not in rel:
                return None
            head = rel.split(".")[0]
            if branches and branches[-1][0] == head:
                branches[-1][1].append(i)
            else:
                branches.append((head, [i]))
        heads = [head for head, _ in branches]
        if len(heads) < 2 or len(set(heads)) != len(heads) or merge.inputs != [rows[-1] for _, rows in branches]:
            return None
        sections = {}
        for head, rows in branches:
            items = self.items(rows, f"{path}.{head}.", entry)[0]
            if any(it.frm is not None for it in items):
                return None
            sections[head] = items
        return _Item(path, "parallel", args={"merge": merge.kind}, sections=sections)


# ----- blocks ------------------------------------------------------------------------------

_ABSENT = object()


@dataclass
class _Param:
    name: str
    values: list[Any]  # per instance; _ABSENT where no item of this instance uses it


class _Blocks:
    """Containers of one class with the same structure, made one block with arguments."""

    def __init__(self) -> None:
        self.defs: dict[str, dict] = {}

    def name_for(self, cls: type | None, form: str) -> str:
        if cls is None or cls in GENERIC_CONTAINERS:
            base = f"{form}_block" if form != "sequential" else "block"
        else:
            base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls.__name__).lower()
            base = re.sub(r"\W", "_", base)
        name, k = base, 1
        while name in self.defs or name in STRUCTURES or _registered(name) or not name.isidentifier():
            k += 1
            name = f"{base}{k}" if name.isidentifier() else f"block{k}"
        return name

    def make(self, containers: list[_Item]) -> None:
        groups: dict[Any, list[_Item]] = {}
        for item in containers:
            generic = item.cls is None or item.cls in GENERIC_CONTAINERS
            first = next(iter(item.sections.values())) if item.sections else []
            key = (item.written, tuple(it.rel for it in first)) if generic else (item.written, item.cls)
            groups.setdefault(key, []).append(item)
        for group in sorted(groups.values(), key=lambda g: -max(it.path.count(".") for it in g)):
            if len(group) < 2:
                continue
            if not self.try_block(group):
                exact: dict[Any, list[_Item]] = {}
                for it in group:
                    exact.setdefault(_signature(it), []).append(it)
                for sub in exact.values():
                    if len(sub) >= 2:
                        self.try_block(sub)

    def try_block(self, group: list[_Item]) -> bool:
        form, first_sections = group[0].written, group[0].sections
        if first_sections is None:
            return False
        instances: list[dict[str, list[_Item]]] = []  # each use's sections
        for it in group:
            if (
                it.written != form
                or it.sections is None
                or list(it.sections) != list(first_sections)
                or it.args != group[0].args
            ):
                return False
            instances.append(it.sections)
        sections: dict[str, list[str]] = {}
        for sec in first_sections:
            order: list[str] = []
            for inst in instances:
                pos = -1
                for it in inst[sec]:
                    if it.rel in order:
                        at = order.index(it.rel)
                        if at <= pos:
                            return False
                        pos = at
                    else:
                        order.insert(pos + 1, it.rel)
                        pos += 1
            sections[sec] = order
        if not any(it.row is not None for inst in instances for its in inst.values() for it in its):
            return False  # a container of containers: its repeats are the blocks inside
        params: list[_Param] = []
        flags: list[tuple[tuple[bool, ...], str]] = []
        template: dict[str, list[dict]] = {}
        for sec, order in sections.items():
            out = []
            for rel in order:
                present = [next((it for it in inst[sec] if it.rel == rel), None) for inst in instances]
                items = [it for it in present if it is not None]
                first = items[0]
                if first.sections is not None or any(it.sections is not None for it in items):
                    return False  # a nested structure inside a repeated block: written out instead
                if any(
                    it.written != first.written or it.frm != first.frm or set(it.args) != set(first.args)
                    for it in items
                ) or (first.written == CALL and any(it.args != first.args for it in items)):
                    return False
                rendered_args: dict[str, Any] = {}
                for key in first.args:
                    values = [it.args[key] if it is not None else _ABSENT for it in present]
                    real = [v for v in values if v is not _ABSENT]
                    if all(v == real[0] for v in real):
                        if not _is_default(first, key, real[0], self.defs):
                            rendered_args[key] = real[0]
                        continue
                    rendered_args[key] = _param_for(params, values, key, rel)
                entry: dict[str, Any] = dict(rendered_args)
                if first.written != CALL:  # a call row is named after the module it runs: relu@2
                    entry["name"] = _yaml_name(rel)
                if first.frm is not None:
                    entry["from"] = first.frm
                pattern = tuple(it is not None for it in present)
                if not all(pattern):
                    flag = next((f for p, f in flags if p == pattern), None)
                    if flag is None:
                        flag = _arg_name(rel.split(".")[0], {p.name for p in params} | {f for _, f in flags})
                        flags.append((pattern, flag))
                    entry["when"] = f"${flag}"
                out.append(
                    _shorten({first.written: entry}, self.defs) if first.written == CALL else {first.written: entry}
                )
            template[sec] = out
        name = self.name_for(group[0].cls, form)
        args: dict[str, Any] = {}
        for p in params:
            real = [v for v in p.values if v is not _ABSENT]
            counts = Counter(map(_hashable, real))
            common = max(counts, key=lambda v: counts[v])
            # a default where one value is the rule (stride 1) or where some uses have no value
            usual = len(real) >= 3 and len(counts) <= 2 and counts[common] * 2 > len(real)
            args[p.name] = _unhashable(common) if usual or len(real) < len(p.values) else None
        for pattern, flag in flags:
            args[flag] = sum(pattern) * 2 > len(pattern)
        body: dict[str, Any] = {"args": args}
        if form == "residual":
            body.update({k: v for k, v in template.items() if v or k == "body"})
        elif form == "parallel":
            body["branches"] = [{"name": _yaml_name(head), "layers": layers} for head, layers in template.items()]
            if group[0].args["merge"] != "concat":
                body["merge"] = group[0].args["merge"]
        else:
            body["layers"] = template["layers"]
        self.defs[name] = body
        for i, it in enumerate(group):
            use: dict[str, Any] = {}
            for p in params:
                use[p.name] = args[p.name] if p.values[i] is _ABSENT else p.values[i]
            for pattern, flag in flags:
                use[flag] = pattern[i]
            it.written, it.args, it.sections = name, use, None
        return True


def _signature(item: _Item) -> Any:
    return tuple((sec, tuple((it.rel, it.written) for it in items)) for sec, items in (item.sections or {}).items())


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _unhashable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _arg_name(base: str, taken: set[str]) -> str:
    base = re.sub(r"\W", "_", base)
    if not base or not (base[0].isalpha() or base[0] == "_"):
        base = f"has_{base}"
    if base in ITEM_KEYS:
        base += "_"
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}{k}"
    return name


def _param_for(params: list[_Param], values: list[Any], key: str, rel: str) -> str:
    """`$p` for an argument that varies, reusing a parameter that always has the same value (or a multiple)."""
    for p in params:
        common = [(a, b) for a, b in zip(p.values, values) if a is not _ABSENT and b is not _ABSENT]
        if not common:
            continue
        if all(a == b for a, b in common):
            p.values = [b if a is _ABSENT else a for a, b in zip(p.values, values)]
            return f"${p.name}"
        if all(type(a) is int and type(b) is int and a > 0 for a, b in common):
            factor = common[0][1] // common[0][0]
            if (
                factor >= 2
                and all(b == a * factor for a, b in common)
                and all(v is _ABSENT or a is not _ABSENT for a, v in zip(p.values, values))
            ):
                return f"${p.name} * {factor}"
    taken = {p.name for p in params}
    name = _arg_name(key, taken)
    params.append(_Param(name, list(values)))
    return f"${name}"


def _is_default(item: _Item, key: str, value: Any, blocks: Mapping[str, dict]) -> bool:
    if item.written in blocks:
        return blocks[item.written]["args"].get(key) == value
    cls = REGISTRY.get(ALIASES.get(item.written, item.written))
    if cls is None:
        return False
    for f in fields(cls):
        if f.name == key and f.default is not MISSING:
            return _yaml_value(f.default) == value and type(_yaml_value(f.default)) is type(value)
    return False


def _yaml_name(name: str) -> Any:
    return int(name) if name.isdigit() and str(int(name)) == name else name


# ----- rendering ---------------------------------------------------------------------------


def _render_items(items: list[_Item], blocks: Mapping[str, dict], positional: bool) -> list[Any]:
    """A list of items as spec data; names that equal the position are left out, and equal
    neighbours so named become one item with `repeat`."""
    entries: list[list[Any]] = []  # [with name, without name, positional, count]
    position = -1
    for item in items:
        named, free = _render_item(item, blocks)
        if item.written == CALL:  # takes no list position, and is named by the spec (relu@2)
            entries.append([free, free, False, 1])
            continue
        position += 1
        by_position = positional and item.rel == str(position)
        last = entries[-1] if entries else None
        if by_position and item.sections is None and last is not None and last[2] and last[1] == free:
            last[3] += 1
        else:
            entries.append([named, free, by_position and item.sections is None or by_position, 1])
    out: list[Any] = []
    for named, free, by_position, count in entries:
        if count > 1:
            ((written, args),) = free.items()
            out.append({written: {**args, "repeat": count}})
        else:
            out.append(_shorten(free if by_position else named, blocks))
    return out


def _render_item(item: _Item, blocks: Mapping[str, dict]) -> tuple[dict, dict]:
    """(the item with its name, the item without it)."""
    if item.sections is not None:
        body: dict[str, Any] = {"name": _yaml_name(item.rel)}
        if item.frm is not None:
            body["from"] = item.frm
        if item.written == "parallel":
            body["branches"] = [{"name": _yaml_name(head), "layers": _render_items(items, blocks, positional=True)}
                                for head, items in item.sections.items()]  # fmt: skip
            if item.args["merge"] != "concat":
                body["merge"] = item.args["merge"]
        else:
            for sec, items in item.sections.items():
                if items or sec in ("layers", "body"):
                    body[sec] = _render_items(items, blocks, positional=sec == "layers")
        free = {k: v for k, v in body.items() if k != "name"}
        return {item.written: body}, {item.written: free}
    args = {k: v for k, v in item.args.items() if not _is_default(item, k, v, blocks)}
    if item.frm is not None:
        args["from"] = item.frm
    return {item.written: {**args, "name": _yaml_name(item.rel)}}, {item.written: args}


def _shorten(value: dict, blocks: Mapping[str, dict]) -> Any:
    """`- relu` for no arguments, `- linear: 4096` for the type's shorthand alone."""
    ((written, args),) = value.items()
    if not isinstance(args, dict) or any(k in args for k in _SECTIONS):
        return value
    if not args:
        return written
    if written == CALL and list(args) == ["layer"]:
        return {CALL: args["layer"]}
    cls = REGISTRY.get(ALIASES.get(written, written))
    if (
        cls is not None
        and cls.shorthand
        and list(args) == [cls.shorthand]
        and not isinstance(args[cls.shorthand], (list, dict))
    ):
        return {written: args[cls.shorthand]}
    return value


def _flow(value: Any) -> str:
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**9)
    return text.removesuffix("\n...\n").strip()


def _emit_items(items: list[Any], indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    for item in items:
        if isinstance(item, str):
            lines.append(f"{pad}- {item}")
            continue
        ((written, value),) = item.items()
        if isinstance(value, dict) and any(k in value for k in (*_SECTIONS, "branches")):
            lines.append(f"{pad}- {written}:")
            lines.extend(_emit_mapping(value, indent + 4))
        else:
            lines.append(f"{pad}- {written}: {_flow(value)}")
    return lines


def _emit_mapping(mapping: Mapping[str, Any], indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    for key, value in mapping.items():
        if key in _SECTIONS:
            lines.append(f"{pad}{key}:")
            lines.extend(_emit_items(value, indent + 2))
        elif key == "branches":
            lines.append(f"{pad}branches:")
            for branch in value:
                lines.append(f"{pad}  - name: {_flow(branch['name'])}")
                lines.append(f"{pad}    layers:")
                lines.extend(_emit_items(branch["layers"], indent + 6))
        elif key == "blocks":
            lines.append(f"{pad}blocks:")
            for name, body in value.items():
                lines.append(f"{pad}  {name}:")
                lines.extend(_emit_mapping(body, indent + 4))
        else:
            lines.append(f"{pad}{key}: {_flow(value)}")
    return lines


def to_yaml(data: Mapping[str, Any], header: Sequence[str] = ()) -> str:
    """A spec's plain data as readable YAML: flow style for a layer's arguments, block style for structures."""
    return "\n".join([*(f"# {line}" for line in header), *_emit_mapping(data, 0)]) + "\n"


# ----- the import --------------------------------------------------------------------------


def from_torch(module: nn.Module, input_shape: Sequence[int], name: str | None = None) -> ImportedSpec:
    """The spec of a PyTorch model: traced with torch.fx on a zero input of `input_shape` (no batch axis).

    Every row of the result is checked against the traced module (output shape; weights, biases and
    buffers); an op cnncalc has no type for raises TorchImportError naming it, its module path and
    the line of the model's code.
    """
    shape = tuple(int(s) for s in input_shape)
    if not 1 <= len(shape) <= 4 or any(s < 1 for s in shape):
        raise TorchImportError("the input shape must be 1 to 4 positive sizes, channels first, without the batch",
                               received=list(input_shape), expected="e.g. (3, 224, 224)")  # fmt: skip
    if not isinstance(module, nn.Module):
        raise TorchImportError("from_torch needs a torch.nn.Module", received=type(module).__name__)
    title = name or type(module).__name__
    if module_kind(module) is not None:  # a single layer: named after its class, as it has no path of its own
        from collections import OrderedDict

        module = nn.Sequential(
            OrderedDict([(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type(module).__name__).lower(), module)])
        )
    was_training = module.training
    module.eval()
    try:
        gm = _trace(module)
        try:
            # a module built on the meta device (no memory, no arithmetic) is traced with a meta input
            device = next((p.device for p in module.parameters()), torch.device("cpu"))
            # ShapeProp prints the model's traceback itself; the library never prints
            with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
                ShapeProp(gm).propagate(torch.zeros(1, *shape, device=device))
        except Exception as err:  # noqa: BLE001 - the user's model refused the input
            cause = err.__cause__ or err  # ShapeProp wraps the model's own error
            raise TorchImportError(
                f"{title} does not run on an input of shape {list(shape)}",
                received=f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}",
                hint="give the input shape the model expects (--input 3x224x224)",
            ) from None
        for node in gm.graph.nodes:
            if node.op == "call_method" and str(node.target).endswith("_") and not node.users:
                raise _Mapper(module, gm).fail(node, f"the in-place .{node.target}() changes a tensor that is read "
                                                     "afterwards under its old name; cnncalc follows results, not mutations",
                                               hint=f"write x = x.{node.target}() (or x = x.{str(node.target)[:-1]}())")  # fmt: skip
        gm.graph.eliminate_dead_code()
        rows = _Mapper(module, gm).run()
    finally:
        module.train(was_training)
    called = {r.module for r in rows if r.module is not None}
    unused = tuple(
        path for path, m in module.named_modules()
        if not list(m.children()) and any(True for _ in m.parameters(recurse=False)) and m not in called
    )  # fmt: skip
    failure: CnncalcError | None = None
    for nest, blocks in ((True, True), (True, False), (False, False)):
        try:
            return _write(module, rows, title, shape, nest, blocks, unused)
        except _Mismatch as err:
            failure = failure or err
    assert failure is not None
    raise failure


class _Mismatch(TorchImportError):
    """The written spec does not compute what the traced model does (tried again with less structure)."""


def _write(module: nn.Module, rows: list[_Row], title: str, shape: Shape, nest: bool, use_blocks: bool,
           unused: tuple[str, ...]) -> ImportedSpec:  # fmt: skip
    structurer = _Structurer(module, rows, nest)
    items, _ = structurer.items(list(range(1, len(rows))), "", 0)
    blocks = _Blocks()
    if use_blocks:
        blocks.make(structurer.containers)
    data: dict[str, Any] = {"name": title, "input": list(shape)}
    if blocks.defs:
        data["blocks"] = blocks.defs
    data["layers"] = _render_items(items, blocks.defs, positional=True)
    header = [f"{title}: imported by cnncalc from PyTorch (torch {torch.__version__.split('+')[0]}) at input {list(shape)};",
              "every row's output shape, weights, biases and buffers were checked against the traced model."]  # fmt: skip
    text = to_yaml(data, header)
    shown = f"<imported {title}>"
    try:
        graph = parse_text(text, file=shown)
        report = analyze(graph)
    except CnncalcError as err:
        raise _Mismatch(f"the spec written for {title} does not read back: {err.message}", where=err.where,
                        received=err.received, expected=err.expected) from None  # fmt: skip
    by_name = {r.name: r for r in report.rows}
    expected_names = [r.name for r in rows]
    if [r.name for r in report.rows] != expected_names:
        raise _Mismatch(
            f"the spec written for {title} reorders or renames layers", received=[r.name for r in report.rows][:10]
        )
    for row in rows[1:]:
        got = by_name[row.name]
        if got.output_shape != row.shape:
            raise _Mismatch(f"cnncalc computes {list(got.output_shape)} for '{row.name}' but PyTorch gives {list(row.shape)}",
                            where=Where(path=row.name))  # fmt: skip
        theirs = row.counts or (parameter_counts(row.module) if row.module is not None else (0, 0, 0))
        if (got.weights, got.biases, got.buffers) != theirs:
            raise _Mismatch(f"cnncalc counts (weights, biases, buffers) = {(got.weights, got.biases, got.buffers)} for "
                            f"'{row.name}' but PyTorch has {theirs}", where=Where(path=row.name))  # fmt: skip
    return ImportedSpec(data=_plain(data), yaml=text, graph=graph, unused=unused)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# ----- targets: what `cnncalc import` is given ---------------------------------------------

TORCHVISION_INPUT: dict[str, Shape] = {"inception_v3": (3, 299, 299)}


def parse_shape(text: str) -> Shape:
    """`3x224x224` (or `3,224,224`) as a shape; raises CnncalcError."""
    parts = [p for p in re.split(r"[x,\s]+", text.strip().strip("[]()")) if p]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not 1 <= len(shape) <= 4 or any(s < 1 for s in shape):
        raise CnncalcError(
            "malformed input shape", received=text, expected="channels first, without the batch: 3x224x224"
        )
    return shape


def parse_args(pairs: Sequence[str] | Mapping[str, Any]) -> dict[str, Any]:
    """`--arg k=v` pairs: each value a YAML scalar (`2`, `0.5`, `true`, `fast`) or a flow list of
    them (`[3, 1]`), as `cnncalc.library.read_args` reads them; a mapping passes through."""
    if isinstance(pairs, Mapping):
        return dict(pairs)
    return read_args(pairs)


@record
class Target:
    """A model to import: the module, a title, and its usual input shape when known."""

    module: nn.Module
    title: str
    input_shape: Shape | None


def resolve_target(target: str, args: Mapping[str, Any] | None = None, meta: bool = False) -> Target:
    """`torchvision:resnet50`, `path/to/file.py:Net` or `pkg.module:factory`, built with `args`;
    torchvision's models on the meta device with `meta` (shapes only: what an import needs)."""
    args = dict(args or {})
    source, sep, attr = target.rpartition(":")
    if not sep or not source or not attr:
        raise CnncalcError("malformed model target", received=target,
                           expected="torchvision:NAME, path/to/file.py:Class or package.module:factory")  # fmt: skip
    if source == "torchvision":
        return _torchvision(attr, args, meta)
    if source.endswith(".py") or os.sep in source or "/" in source:
        path = Path(source)
        if not path.is_file():
            raise CnncalcError("no such Python file", received=source, expected="path/to/file.py:Class")
        module_name = "cnncalc_import_" + re.sub(r"\W", "_", path.stem)
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = loaded
        try:
            spec.loader.exec_module(loaded)
        except Exception as err:  # noqa: BLE001 - the user's file failed
            raise CnncalcError(f"{source} fails on import", received=f"{type(err).__name__}: {err}") from None
    else:
        try:
            loaded = importlib.import_module(source)
        except ImportError as err:
            raise CnncalcError(f"cannot import the module '{source}'", received=str(err)) from None
    factory = getattr(loaded, attr, None)
    if factory is None:
        names = [n for n in dir(loaded) if not n.startswith("_")]
        raise CnncalcError(f"'{source}' has no '{attr}'", received=attr, hint=did_you_mean(attr, names))
    try:
        module = factory(**args)
    except TypeError as err:
        raise CnncalcError(f"cannot build {attr}" + (f" with {args}" if args else " with no arguments"),
                           received=str(err), hint="pass its arguments with --arg name=value") from err  # fmt: skip
    if not isinstance(module, nn.Module):
        raise CnncalcError(f"{target} did not give a torch.nn.Module", received=type(module).__name__)
    return Target(module, attr, None)


def _torchvision(name: str, args: dict[str, Any], meta: bool = False) -> Target:
    try:
        import torchvision
    except Exception as err:  # noqa: BLE001 - absent, or built for another torch
        raise MissingExtraError(
            "torchvision is not importable here",
            received=f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
            hint="install the torchvision that matches your torch (pip install torchvision)",
        ) from None
    names = torchvision.models.list_models()
    if name not in names:
        raise CnncalcError(f"torchvision has no model '{name}'", received=name, hint=did_you_mean(name, names))
    # no weights at all: segmentation models would otherwise fetch their backbone's
    if "weights_backbone" in inspect.signature(torchvision.models.get_model_builder(name)).parameters:
        args.setdefault("weights_backbone", None)
    try:
        module = _build(lambda: torchvision.models.get_model(name, weights=None, **args), meta)
    except (TypeError, ValueError) as err:
        raise CnncalcError(f"cannot build torchvision's {name}" + (f" with {args}" if args else ""),
                           received=f"{type(err).__name__}: {err}", hint="check the --arg names and values") from None  # fmt: skip
    image_models = set(torchvision.models.list_models(module=torchvision.models)) | set(
        torchvision.models.list_models(module=torchvision.models.segmentation)
    )
    return Target(module, name, _torchvision_input(name) if name in image_models else None)


def _build(make: Any, meta: bool) -> nn.Module:
    """The model built on the meta device where it builds there (shapes only: no memory, no
    initialisation), else on the CPU (RegNet computes its widths with tensors while it builds)."""
    if meta:
        try:
            with torch.device("meta"):
                return make()
        except (NotImplementedError, RuntimeError):
            pass
    return make()


def _torchvision_input(name: str) -> Shape:
    """The crop size of the model's DEFAULT weights' transforms (efficientnet_b7: 600), as the
    weights were trained; 520 for segmentation (its resize size); 224 where nothing says."""
    import torchvision

    if name in TORCHVISION_INPUT:
        return TORCHVISION_INPUT[name]
    try:
        keywords = torchvision.models.get_model_weights(name).DEFAULT.transforms.keywords
    except (AttributeError, ValueError, KeyError):
        return (3, 224, 224)
    size = keywords.get("crop_size") or keywords.get("resize_size") or 224
    size = size[0] if isinstance(size, (list, tuple)) else size
    return (3, int(size), int(size))


def load_target(target: str, input_shape: str | Sequence[int] | None = None,
                args: Sequence[str] | Mapping[str, Any] = ()) -> ImportedSpec:  # fmt: skip
    """A model target (`torchvision:resnet50`, `file.py:Net`, `pkg.module:factory`) imported: what
    `summary`, `flops`, `memory` and `profile` need to accept one in place of a spec (`.graph`)."""
    resolved = resolve_target(target, parse_args(args), meta=True)
    if isinstance(input_shape, str):
        shape: Shape | None = parse_shape(input_shape)
    elif input_shape is not None:
        shape = tuple(input_shape)
    else:
        shape = resolved.input_shape
    if shape is None:
        raise CnncalcError(
            f"cnncalc does not know the input shape of {target}", expected="--input, e.g. --input 3x224x224"
        )
    return from_torch(resolved.module, shape, name=resolved.title)


is_target = is_model_target  # the syntax lives torch-free in the library, for the CLI


def import_command(target: str, output: str | None, input_shape: str | Sequence[int] | None,
                   args: Sequence[str] | Mapping[str, Any] = ()) -> str:  # fmt: skip
    """What `cnncalc import TARGET [-o FILE] [--input 3x224x224] [--arg k=v ...]` does: the YAML text
    (also written to `output` when given)."""
    imported = load_target(target, input_shape, args)
    if output:
        Path(output).write_text(imported.yaml)
    return imported.yaml


__all__ = ["FUNCTIONS", "METHODS", "MODULE_KINDS", "ImportedSpec", "Target", "TorchImportError", "from_torch",
           "import_command", "is_target", "load_target", "parse_args", "parse_shape", "resolve_target", "table_kinds", "to_yaml"]  # fmt: skip
