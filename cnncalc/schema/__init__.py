"""JSON Schemas: one for spec files (generated from the layer registry, for editors) and one for
the JSON that commands write (`report.schema.json`, written by hand: it is a contract).

`spec.schema.json` beside this module is a committed copy of `spec_schema()`, so that editors can
point at a stable file (`# yaml-language-server: $schema=...`); a test proves the two are equal
(`pytest tests/test_schema.py --regen-golden` rewrites the copy after a new layer type).

The schema catches what can be seen without expanding the spec (unknown keys, types and arguments,
values of the wrong kind); what needs the graph (shapes, references, block arguments) is left to
`cnncalc validate`.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from ..layers import ALIASES, REGISTRY, ArgKind, Layer

SPEC_SCHEMA_PATH = Path(__file__).parent / "spec.schema.json"
REPORT_SCHEMA_PATH = Path(__file__).parent / "report.schema.json"
SPEC_SCHEMA_ID = "https://cnncalc.dev/schema/spec.schema.json"

IDENTIFIER = "^[A-Za-z_][A-Za-z0-9_]*$"
# `$out * 4`: block arguments in a block's layers (checked when the block is used, not here)
EXPRESSION: dict[str, Any] = {"$ref": "#/$defs/expression"}
EXPRESSION_DEF: dict[str, Any] = {
    "type": "string",
    "pattern": "\\$",
    "description": "an expression over block arguments ($name)",
}


# not empty, no control characters (spec._check_name)
NAME: dict[str, Any] = {
    "type": ["string", "integer"],
    "pattern": "^[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*$",
    "description": "a name (printable text)",
}
# the keys every item takes besides its own arguments (spec.ITEM_KEYS)
ITEM_SCHEMAS: dict[str, dict[str, Any]] = {
    "inline": {
        "anyOf": [{"type": "boolean"}, EXPRESSION],
        "description": "a block use whose items join the enclosing list's numbering (no name level)",
    },
    "start": {
        "anyOf": [{"type": "integer", "minimum": 0}, EXPRESSION],
        "description": "the number of the first copy of a repeat (torchvision numbers some from 1)",
    },
    "name": {**NAME, "description": "the layer's name (default: its position in its list)"},
    "repeat": {
        "anyOf": [{"type": "integer", "minimum": 1, "maximum": 100_000}, EXPRESSION],
        "description": "how many copies, one after the other",
    },
    "from": {
        "anyOf": [
            {"type": ["string", "integer"]},
            {"type": "array", "items": {"type": ["string", "integer"]}, "minItems": 1},
        ],
        "description": "the earlier layer(s) this one reads (default: the previous one)",
    },
    "when": {
        "anyOf": [{"type": "boolean"}, EXPRESSION],
        "description": "false leaves the item out (usually when: $arg in a block)",
    },
}


def _argument(f: Any) -> dict[str, Any]:
    kind: ArgKind = f.metadata["kind"]
    accepted = dict(kind.schema)
    if kind is ArgKind.CHOICE and f.metadata.get("choices"):
        accepted = {"enum": list(f.metadata["choices"])}
    described = f.metadata.get("doc") or kind.value
    if f.default is not MISSING:
        described += f" (default: {json.dumps(f.default)})"
    return {"anyOf": [accepted, EXPRESSION], "description": described}


def _layer_value(cls: type[Layer]) -> dict[str, Any]:
    """What may follow `- type:`: its arguments, a scalar for its shorthand argument, or nothing."""
    properties: dict[str, Any] = {}
    required = []
    for f in fields(cls):
        schema = _argument(f)
        properties[f.name] = schema
        for alias in f.metadata.get("aliases", ()):
            properties[alias] = {**schema, "description": f"same as {f.name}"}
        if f.default is MISSING:
            required.append(f.name)  # (an alias satisfies it too: see `anyOf` below)
    properties.update(ITEM_SCHEMAS)
    arguments: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        names = {f.name: (f.name, *f.metadata.get("aliases", ())) for f in fields(cls)}
        arguments["allOf"] = [{"anyOf": [{"required": [n]} for n in names[r]]} for r in required]
    choices: list[dict[str, Any]] = [arguments]
    if not required:
        choices.append({"type": "null"})
    if cls.shorthand is not None:
        shorthand = next(f for f in fields(cls) if f.name == cls.shorthand)
        choices.append({**_argument(shorthand), "not": {"type": "object"}})
    return {"anyOf": choices, "description": cls.summary}


def _structures(layers_def: str = "layers") -> dict[str, Any]:
    from ..spec import MERGES

    layers = {"$ref": f"#/$defs/{layers_def}"}
    branch = {
        "anyOf": [
            layers,
            {
                "type": "object",
                "properties": {"name": NAME, "layers": layers},
                "required": ["layers"],
                "additionalProperties": False,
            },
        ]
    }
    body = {
        "body": layers,
        "shortcut": layers,
        "after": layers,
        "add": {
            "anyOf": [{"type": "boolean"}, EXPRESSION],
            "description": "whether the shortcut is added (default true)",
        },
    }
    parallel = {"branches": {"type": "array", "items": branch, "minItems": 2}, "merge": {"enum": list(MERGES)}}

    def structure(own: dict[str, Any], required: str, summary: str) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {**own, **ITEM_SCHEMAS},
            "required": [required],
            "additionalProperties": False,
            "description": summary,
        }

    return {
        "sequential": structure({"layers": layers}, "layers", "a named group of layers, one after the other"),
        "residual": structure(body, "body", "body + shortcut (identity by default), added; then `after`"),
        "parallel": structure(
            parallel, "branches", "branches read the same input; merged by concat (default), add or mul"
        ),
    }


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file, from the layer registry (every type, alias and argument)."""
    from .. import spec  # the keys spec.py reads; imported here: spec imports the layer package too

    definitions = {f"layer.{kind}": _layer_value(cls) for kind, cls in sorted(REGISTRY.items())}
    types = {kind: {"$ref": f"#/$defs/layer.{kind}"} for kind in sorted(REGISTRY)}
    aliases = {
        alias: {"$ref": f"#/$defs/layer.{kind}", "description": f"same as {kind}"}
        for alias, kind in sorted(ALIASES.items())
    }
    names = [*types, *aliases, *spec.STRUCTURES]
    block_use = {
        "type": ["object", "null"],
        "description": "a block defined under `blocks`: its arguments and item keys",
    }

    def item_schema(strict: bool) -> dict[str, Any]:
        """An item; `strict`: in a spec with no `blocks:` and no `include:`, where a key can only be a
        layer type, a structure or `call` (or `$arg`, a type chosen by an argument), so a typo fails."""
        keys = {
            **types,
            **aliases,
            **_structures("strict_layers" if strict else "layers"),
            spec.CALL: {
                "anyOf": [{"type": "string"}, {"type": "object", "required": ["layer"]}],
                "description": "runs an earlier parameter-free row's module again (a shared relu)",
            },
        }
        mapping: dict[str, Any] = {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "propertyNames": {"anyOf": [{"pattern": IDENTIFIER}, EXPRESSION]},
            "properties": keys,
        }
        if strict:
            mapping.update(patternProperties={"\\$": block_use}, additionalProperties=False)
        else:
            mapping["additionalProperties"] = block_use
        word = {"enum": names} if strict else {"anyOf": [{"enum": names}, {"pattern": IDENTIFIER}]}
        return {
            "anyOf": [
                {
                    "type": "string",
                    **word,
                    "description": "a layer type without arguments" + ("" if strict else ", or a block"),
                },
                mapping,
            ]
        }

    item = item_schema(strict=False)
    layers = {"$ref": "#/$defs/layers"}
    block_keys: dict[str, Any] = {
        "args": {
            "type": ["object", "null"],
            "propertyNames": {"pattern": IDENTIFIER, "not": {"enum": list(spec.ITEM_KEYS)}},
            "description": "argument names and their defaults (null: required)",
        },
        "layers": layers,
        **_structures()["residual"]["properties"],
        **_structures()["parallel"]["properties"],
        "description": {"type": "string"},
    }
    block_keys = {key: block_keys.get(key, {}) for key in spec.BLOCK_KEYS}  # keys added to spec.py pass unchecked
    block = {
        "type": "object",
        "properties": block_keys,
        "additionalProperties": False,
        "oneOf": [{"required": [key]} for key in spec.BLOCK_BODIES],
    }
    top: dict[str, Any] = {
        "name": NAME,
        "description": {"type": "string"},
        "input": {
            "type": "array",
            "items": {"anyOf": [{"type": "integer", "minimum": 1}, EXPRESSION]},
            "minItems": 1,
            "maxItems": 4,
            "description": "[C, ...spatial] for one sample, e.g. [3, 224, 224] (or [3, $size, $size] with a top-level arg)",
        },
        "blocks": {
            "type": "object",
            "propertyNames": {"pattern": IDENTIFIER, "not": {"enum": names}},
            "additionalProperties": block,
        },
        "layers": {**layers, "minItems": 1},
        "args": {
            "type": "object",
            "propertyNames": {"pattern": IDENTIFIER},
            "description": "the spec's own arguments and their defaults (null: required), usable as $name anywhere",
        },
        "include": {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
            ],
            "description": "spec files (relative to this one) whose blocks and args this spec uses",
        },
        "variants": {
            "type": "object",
            "additionalProperties": {"type": ["object", "null"]},
            "description": "built-in names this file stands for, each with its argument values (docs/spec.md)",
        },
        "outputs": {
            "oneOf": [
                {"type": "array", "items": {"type": ["string", "integer"]}, "minItems": 1},
                {
                    "type": "object",
                    "properties": {
                        "list": {"type": "array", "items": {"type": ["string", "integer"]}, "minItems": 1},
                        "tuple": {"type": "array", "items": {"type": ["string", "integer"]}, "minItems": 1},
                        "namedtuple": {"type": ["string", "integer"]},
                        "fields": {
                            "type": "object",
                            "minProperties": 1,
                            "additionalProperties": {"type": ["string", "integer"]},
                        },
                    },
                    "minProperties": 1,
                    "additionalProperties": {"type": ["string", "integer"]},
                },
            ],
            "description": "the rows the network returns: a list (a tuple), {key: row} (a dict), {list: [rows]} or {namedtuple: Name, fields: {field: row}} (docs/spec.md)",
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SPEC_SCHEMA_ID,
        "title": "cnncalc spec",
        "description": "A network for cnncalc (docs/spec.md). Generated from the layer registry by `cnncalc schema`.",
        "type": "object",
        "properties": {key: top.get(key, {}) for key in spec.TOP_LEVEL_KEYS},
        "patternProperties": {"^x-": {"description": "free keys, e.g. for YAML anchors"}},
        "additionalProperties": False,
        "required": ["input", "layers"],
        # no blocks and no include: every key of an item is a known type (an editor underlines `convv`)
        "if": {"not": {"anyOf": [{"required": ["blocks"]}, {"required": ["include"]}]}},
        "then": {"properties": {"layers": {"$ref": "#/$defs/strict_layers"}}},
        "$defs": {
            "layers": {"type": "array", "items": {"$ref": "#/$defs/item"}},
            "item": item,
            "strict_layers": {"type": "array", "items": {"$ref": "#/$defs/strict_item"}},
            "strict_item": item_schema(strict=True),
            "expression": EXPRESSION_DEF,
            **definitions,
        },
    }


def schema_text(schema: dict[str, Any]) -> str:
    """A schema as the committed files hold it."""
    return json.dumps(schema, indent=2) + "\n"


def report_schema() -> dict[str, Any]:
    """The JSON Schema of every command's JSON output (docs/json.md)."""
    schema: dict[str, Any] = json.loads(REPORT_SCHEMA_PATH.read_text())
    return schema
