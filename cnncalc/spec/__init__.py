"""From a YAML spec to a layer graph.

The spec language (documented in docs/spec.md):

- `input: [C, ...spatial]`, `layers: [...]`, optional `name`, `description` and `blocks`;
- a layer is a type name (`- relu`), or a one-key mapping whose value is its arguments
  (`- conv: {out: 64, kernel: 3}`) or a scalar for the type's obvious argument (`- linear: 4096`);
- every item may carry `name`, `repeat` and `from` (the earlier layer(s) it reads);
- structures: `sequential` (a named group), `residual` (body + shortcut, added) and
  `parallel` (branches, concatenated or added);
- `blocks:` defines reusable, parameterised blocks, used like a layer type; `$arg` and
  integer arithmetic (`$out * 4`) in their arguments go through a whitelisted evaluator;
- top-level `args:` (defaults, `null` = required) are usable as `$name` in `input`, `layers` and
  blocks, and `variants:` names sets of their values (a family file: `resnet.yaml` holds
  resnet18..152); `load(source, args={...})` overrides them (the CLI's `--arg key=value`);
- `include:` names other spec files whose blocks and top-level args this one uses (a segmentation
  family builds on `resnet.yaml`'s blocks instead of copying them).

An unnamed item is named by its position in its list, as in `torch.nn.Sequential`, so that
names follow PyTorch's `named_modules()` for the same structure.

The modules: `reader` (the top level: load, parse), `definitions` (blocks, argument defaults,
includes), `expander` and `structures` (items to rows), `language` (keys, limits, shared records);
this package re-exports what others use.
"""

from __future__ import annotations

from .language import (
    BLOCK_BODIES,
    BLOCK_KEYS,
    CALL,
    ITEM_KEYS,
    MAX_INCLUDES,
    MAX_NESTING,
    MAX_NODES,
    MERGES,
    OWN_INPUT,
    REQUIRED,
    STRUCTURES,
    TOP_LEVEL_KEYS,
)
from .reader import load, parse, parse_arg, parse_text

__all__ = [
    "BLOCK_BODIES",
    "BLOCK_KEYS",
    "CALL",
    "ITEM_KEYS",
    "MAX_INCLUDES",
    "MAX_NESTING",
    "MAX_NODES",
    "MERGES",
    "OWN_INPUT",
    "REQUIRED",
    "STRUCTURES",
    "TOP_LEVEL_KEYS",
    "load",
    "parse",
    "parse_arg",
    "parse_text",
]
