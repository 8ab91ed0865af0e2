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

The package is that pipeline, one module a step: `trace` (the fx graph), `table` (what maps to
what), `mapping` (fx nodes -> rows), `structure` (rows -> sequential / residual / blocks),
`pipeline` (`from_torch`: write the YAML with the torch-free `cnncalc.spec.yaml_writer`, read it back,
check every row), `targets` (what `cnncalc import` is given).
"""

from ...spec.yaml_writer import to_yaml
from .pipeline import from_torch
from .result import ImportedSpec, TorchImportError
from .table import FUNCTIONS, METHODS, MODULE_KINDS, module_kind, table_kinds
from .targets import (
    Target,
    import_command,
    is_target,
    load_target,
    load_target_at,
    parse_args,
    parse_shape,
    resolve_target,
)

__all__ = [
    "FUNCTIONS",
    "METHODS",
    "MODULE_KINDS",
    "ImportedSpec",
    "Target",
    "TorchImportError",
    "from_torch",
    "module_kind",
    "import_command",
    "is_target",
    "load_target",
    "load_target_at",
    "parse_args",
    "parse_shape",
    "resolve_target",
    "table_kinds",
    "to_yaml",
]
