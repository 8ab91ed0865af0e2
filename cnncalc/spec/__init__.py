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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Union

from ..errors import CnncalcError, LayerError, SpecError, Where, did_you_mean, excerpt
from ..graph import INPUT, Graph, Node, OutputKind, Outputs
from ..layers import ALIASES, REGISTRY, ArgKind, Layer, build_layer, layer_type
from ..records import record
from . import expr
from .library import ARCHITECTURES, STDIN, Source, read_stdin
from .yaml_lines import LineDict, LineList, load_file, load_text, with_lines

MAX_NODES = 100_000  # an expanded graph larger than this is refused, not built
MAX_NESTING = 64  # structures inside structures; deeper means a self-referencing YAML alias
MAX_INCLUDES = 16  # files one spec may include, directly or through others
TOP_LEVEL_KEYS = ("name", "description", "include", "args", "variants", "input", "blocks", "layers", "outputs")
ITEM_KEYS = ("name", "repeat", "from", "when", "inline", "start")  # allowed on every item besides its own arguments
BLOCK_KEYS = ("args", "layers", "body", "shortcut", "after", "add", "branches", "merge", "description")
BLOCK_BODIES = ("layers", "body", "branches")  # a block is a chain, a residual or a parallel
STRUCTURES = ("sequential", "residual", "parallel")
MERGES = ("concat", "add", "mul")  # how a parallel's branches meet (mul: squeeze-excitation's x * scale)
OWN_INPUT = "in"  # `from: in`: the input of the enclosing structure or block use (as `$in` is its channels)
CALL = "call"  # `- call: relu`: run an earlier parameter-free row's module again (torchvision's shared `relu`)
REQUIRED = object()


@record
class _Ref:
    """A `from:` reference, resolved once every name is known."""

    name: str
    namespace: str
    where: Where


_Input = Union[int, _Ref]


@dataclass
class _Draft:
    name: str
    kind: str
    written: str
    layer: Layer | None
    inputs: list[_Input]
    where: Where
    calls: str | None = None


@record
class _BlockDef:
    name: str
    args: Mapping[str, Any]
    raw: LineDict
    line: int
    reads_in: bool = False  # uses `$in`, the channels of its input (worked out only then)
    file: str | None = None  # the file it is written in (another one for an included block)


@record
class _Context:
    """Where the expander is: name prefix, block arguments in scope, path for messages, blocks in use."""

    prefix: str = ""
    scope: Mapping[str, Any] = field(default_factory=dict)
    path: str = "layers"
    blocks_in_use: tuple[str, ...] = ()
    depth: int = 0
    file: str | None = None  # the file the items are written in, for messages (None: the spec's own)

    def inner(self, prefix: str, path: str, **changes: Any) -> _Context:
        if self.depth + 1 > MAX_NESTING:
            raise SpecError(
                f"structures are nested more than {MAX_NESTING} deep",
                expected="a reasonably shallow spec",
                hint="a YAML alias that contains itself nests forever",
            )
        return _Context(
            prefix=prefix,
            scope=changes.get("scope", self.scope),
            path=path,
            blocks_in_use=changes.get("blocks_in_use", self.blocks_in_use),
            depth=self.depth + 1,
            file=changes.get("file", self.file),
        )


def load(source: str | Path | Source, args: Mapping[str, Any] | None = None) -> Graph:
    """Read a spec file (or a family file's variant, a `library.Source`; `-` reads standard input)
    and build its graph, with `args` overriding its top-level arguments; built-ins are named
    `<built-in>/vgg16.yaml` in messages."""
    variant = source.variant if isinstance(source, Source) else None
    path = source.path if isinstance(source, Source) else Path(source)
    if str(path) == STDIN:
        return parse(
            load_text(read_stdin(), "<stdin>"), file="<stdin>", default_name="stdin", variant=variant, args=args
        )  # its `include:` paths are read from the working directory
    shown = str(path)
    if path.resolve().is_relative_to(ARCHITECTURES.resolve()):
        shown = f"<built-in>/{path.resolve().relative_to(ARCHITECTURES.resolve()).as_posix()}"
    return parse(
        load_file(path, shown),
        file=shown,
        default_name=variant or path.stem,
        variant=variant,
        args=args,
        folder=path.parent,
    )


def parse_text(
    text: str, file: str | None = None, variant: str | None = None, args: Mapping[str, Any] | None = None
) -> Graph:
    """Build a graph from YAML text (used by tests and by `python -c`)."""
    return parse(load_text(text, file), file=file, variant=variant, args=args)


def parse_arg(text: str) -> tuple[str, Any]:
    """`key=value` (the CLI's `--arg`) as (key, value), the value read as YAML: `depth=50`,
    `layers=[3,4,6,3]`, `block=bottleneck`, `down=true`."""
    key, eq, value = text.partition("=")
    key = key.strip()
    if not eq or not key.isidentifier():
        raise SpecError(
            "malformed --arg", received=text, expected="key=value, e.g. --arg width=64 or --arg layers=[3,4,6,3]"
        )
    try:
        parsed = load_text(value) if value.strip() else None
    except CnncalcError:
        parsed = value
    if isinstance(parsed, (dict, LineDict)) or parsed is None:
        raise SpecError(
            f"malformed value for --arg {key}", received=value, expected="a number, a word, true/false or a list"
        )
    return key, _plain(parsed)


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, list) else value


def parse(
    data: object,
    file: str | None = None,
    default_name: str = "network",
    variant: str | None = None,
    args: Mapping[str, Any] | None = None,
    folder: Path | None = None,
) -> Graph:
    """Build a graph from already-loaded YAML data (LineDict/LineList keep the lines), for one
    of its `variants` (None: none) with `args` overriding its top-level arguments; `include:`
    paths are read relative to `folder` (None: the working directory)."""
    where = Where(file=file, line=getattr(data, "line", None))
    if data is None:
        raise SpecError(
            "the spec is empty",
            where=where,
            expected="a mapping with 'input' and 'layers'",
            hint="see docs/spec.md, or start from a built-in: cnncalc list",
        )
    if not isinstance(data, dict):
        raise SpecError(
            "a spec must be a mapping",
            where=where,
            received=f"{_yaml_kind(data)}: {excerpt(data)}",
            expected="keys: " + ", ".join(TOP_LEVEL_KEYS),
        )
    data = with_lines(data)  # a spec built in Python: the reader's types, without line numbers
    assert isinstance(data, LineDict)
    for key in data:
        if key not in TOP_LEVEL_KEYS and not str(key).startswith("x-"):  # x-...: free keys for YAML anchors
            raise SpecError(
                f"unknown top-level key '{key}'",
                where=_at(data, key, file),
                received=key,
                expected="one of " + ", ".join(TOP_LEVEL_KEYS),
                hint=did_you_mean(str(key), TOP_LEVEL_KEYS),
            )
    blocks, included_args = _read_includes(data, file, Path.cwd() if folder is None else folder)
    scope, variant_name = _read_args(data, file, variant, dict(args or {}), included_args)
    name = variant_name if variant_name is not None else data.get("name", default_name)
    _check_name(name, _at(data, "name", file))
    input_shape = _read_input(data, file, scope)
    if "layers" not in data:
        raise SpecError("the spec has no 'layers'", where=where, expected="layers: a list of layers")
    layers = data["layers"]
    if not isinstance(layers, list) or not layers:
        raise SpecError("'layers' must be a non-empty list", where=_at(data, "layers", file), received=layers)
    own = _read_blocks(data, file)
    for block_name in own.keys() & blocks.keys():
        raise SpecError(
            f"block '{block_name}' is defined here and in an included file ({blocks[block_name].file})",
            where=_at(data["blocks"], block_name, file, f"blocks.{block_name}"),
            expected="one definition per block name",
            hint="use the included block, or give yours another name",
        )
    expander = _Expander(file, {**blocks, **own}, scope)
    expander.input_shape = input_shape
    expander.drafts.append(
        _Draft(INPUT, INPUT, INPUT, None, [], Where(file=file, line=data.line_of("input"), path="input"))
    )
    expander.names[INPUT] = 0
    try:
        expander.chain(layers, _Context(scope=scope), prev=0)
        nodes = expander.finish()
    except RecursionError:
        raise SpecError(
            "the spec nests too deeply to expand", where=where, hint="a YAML alias that contains itself?"
        ) from None
    outputs = _read_outputs(data, file, expander) if "outputs" in data else None
    return Graph(str(name), input_shape, nodes, dict(expander.containers), file, outputs)


_OUTPUTS_EXPECTED = (
    "a list of row names (a tuple: outputs: [layer2, layer3]), a mapping of keys to row names "
    "(a dict: outputs: {p3: layer2, p4: layer3}), outputs: {list: [layer2, layer3]} or "
    "outputs: {namedtuple: Features, fields: {p3: layer2, p4: layer3}}"
)


def _python_name(text: object) -> bool:
    """A name collections.namedtuple takes for a class or a field: an identifier, no keyword, no
    leading underscore."""
    import keyword

    return isinstance(text, str) and text.isidentifier() and not keyword.iskeyword(text) and not text.startswith("_")


def _read_outputs(data: LineDict, file: str | None, expander: _Expander) -> Outputs:
    """The rows the network returns (top-level `outputs:`), each named as `from:` names a row (a
    structure's name is its last row), and how PyTorch returns them: a tuple, a list or a dict."""
    raw = data["outputs"]
    where = _at(data, "outputs", file, "outputs")
    kind, typename = OutputKind.DICT, None
    if isinstance(raw, dict) and set(raw) == {"namedtuple", "fields"} and isinstance(raw["fields"], dict):
        typename = raw["namedtuple"]
        bad = next((k for k in [typename, *raw["fields"]] if not _python_name(k)), None)
        if bad is not None:
            raise SpecError(
                f"{'the namedtuple' if bad is typename else 'a field'} of 'outputs' needs a Python name",
                where=where,
                received=bad,
                expected="an identifier that is not a keyword and does not start with _, as collections.namedtuple takes",
            )
        kind, pairs = OutputKind.NAMEDTUPLE, list(raw["fields"].items())
    elif isinstance(raw, list):
        kind, pairs = OutputKind.TUPLE, [(str(k), v) for k, v in enumerate(raw)]
    elif (
        isinstance(raw, dict)
        and len(raw) == 1
        and next(iter(raw)) in ("list", "tuple")
        and isinstance(next(iter(raw.values())), list)
    ):
        kind = OutputKind(next(iter(raw)))
        pairs = [(str(k), v) for k, v in enumerate(next(iter(raw.values())))]
    elif isinstance(raw, dict):
        pairs = [(k, v) for k, v in raw.items()]
    else:
        raise SpecError("malformed 'outputs'", where=where, received=raw, expected=_OUTPUTS_EXPECTED)
    if not pairs:
        raise SpecError(
            "'outputs' is empty",
            where=where,
            received=raw,
            expected=_OUTPUTS_EXPECTED,
            hint="leave 'outputs' out: the last row is then the network's output",
        )
    items = (
        raw["fields"]
        if kind is OutputKind.NAMEDTUPLE
        else next(iter(raw.values()))
        if kind in (OutputKind.TUPLE, OutputKind.LIST) and isinstance(raw, dict)
        else raw
    )
    nodes = []
    for index, (key, name) in enumerate(pairs):
        line = (
            items.line_of(key)
            if isinstance(items, LineDict)
            else items.line_of(index)
            if isinstance(items, LineList)
            else None
        )
        at = Where(file=file, line=line if line is not None else where.line, path="outputs")
        if isinstance(key, bool) or not isinstance(key, (str, int)) or not str(key).strip():
            raise SpecError("an output's key must be text", where=at, received=key, expected=_OUTPUTS_EXPECTED)
        if not isinstance(name, (str, int)) or isinstance(name, bool) or str(name) == INPUT:
            raise SpecError(
                f"output '{key}' must name a row",
                where=at,
                received=name,
                expected="the name of a layer or structure (not the input)",
            )
        if str(name) not in expander.names and str(name) not in expander.outputs:
            raise SpecError(
                f"output '{key}' names no row '{name}'",
                where=at,
                received=name,
                expected="the full name of a layer or structure, as the summary table shows it",
                hint=did_you_mean(str(name), [*expander.names, *expander.outputs]),
            )
        nodes.append(expander.resolve(_Ref(str(name), "", at), len(expander.drafts)))
    return Outputs(kind, tuple(str(k) for k, _ in pairs), tuple(nodes), typename)


def _yaml_kind(data: object) -> str:
    """What a value is, in YAML's words (not Python's class names)."""
    if isinstance(data, list):
        return "a list (YAML sequence)"
    if isinstance(data, dict):
        return "a mapping"
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, (int, float)):
        return "a number"
    if isinstance(data, str):
        return "text (a YAML scalar)"
    return "a YAML " + type(data).__name__


_GOOD_NAMES: set[str] = set()  # names `_check_name` passed: a block's names recur in every use of it


def _check_name(name: object, where: Where) -> None:
    """A name is text (or a number), not empty, and printable: it ends up in tables and exported Python."""
    if type(name) is str and name in _GOOD_NAMES:
        return
    if not isinstance(name, (str, int)) or isinstance(name, bool):
        raise SpecError("'name' must be text", where=where, received=name)
    text = str(name)
    if not text.strip():
        raise SpecError("'name' is empty", where=where, received=name, expected="a name such as conv1")
    bad = next((ch for ch in text if not ch.isprintable()), None)
    if bad is not None:
        raise SpecError(
            "'name' contains a control or non-printable character",
            where=where,
            received=name,
            expected="printable text such as conv1",
            hint=f"character {bad!r} (U+{ord(bad):04X})",
        )
    if type(name) is str and len(_GOOD_NAMES) < 10_000 and len(name) <= 200:
        _GOOD_NAMES.add(name)


def _at(mapping: object, key: object, file: str | None, path: str | None = None) -> Where:
    line = mapping.line_of(key) if isinstance(mapping, LineDict) else None
    return Where(file=file, line=line, path=path)


def _read_args(
    data: LineDict,
    file: str | None,
    variant: str | None,
    overrides: dict[str, Any],
    included: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], str | None]:
    """The top-level arguments' values (defaults, the included files' first, then the variant's,
    then `overrides`) and the variant's `name`, if it gives one."""
    defaults = {**(included or {}), **_arg_defaults(data, file)}
    variants = data.get("variants") or {}
    if not isinstance(variants, dict):
        raise SpecError(
            "'variants' must map variant names to argument values",
            where=_at(data, "variants", file),
            received=variants,
            expected="e.g. variants: {resnet18: {block: basic, layers: [2, 2, 2, 2]}}",
        )
    values: dict[str, Any] = {}
    variant_name = None
    if variant is not None:
        if variant not in variants:
            raise SpecError(
                f"no variant '{variant}' in this spec",
                where=_at(data, "variants", file),
                received=variant,
                expected="one of " + (", ".join(map(str, variants)) or "(it has no variants)"),
                hint=did_you_mean(variant, list(map(str, variants))),
            )
        chosen = variants[variant] or {}
        where = _at(variants, variant, file, f"variants.{variant}")
        if not isinstance(chosen, dict):
            raise SpecError(f"variant '{variant}' must be a mapping of argument values", where=where, received=chosen)
        values = {str(k): _plain(v) for k, v in chosen.items()}
        variant_name = values.pop("name", None)
        _check_known(values, defaults, where, f"variant '{variant}'")
    where = Where(file=file, line=data.line_of("args") if "args" in data else data.line, path="args")
    _check_known(overrides, defaults, where, "--arg")
    scope = {**defaults, **values, **overrides}
    missing = [k for k, v in scope.items() if v is REQUIRED]
    if missing:
        raise SpecError(
            f"argument{'s' if len(missing) > 1 else ''} {', '.join(missing)} of this spec "
            f"need{'' if len(missing) > 1 else 's'} a value",
            where=where,
            expected=("a variant: " + ", ".join(map(str, variants))) if variants else f"--arg {missing[0]}=...",
            hint="a family file's variants are built-ins: cnncalc summary " + str(next(iter(variants)))
            if variants
            else None,
        )
    return scope, variant_name


def _arg_defaults(data: LineDict, file: str | None) -> dict[str, Any]:
    """A spec's own top-level `args:`, `null` (required) as REQUIRED."""
    raw = data.get("args") or {}
    if not isinstance(raw, dict):
        raise SpecError(
            "'args' must be a mapping of argument names to defaults",
            where=_at(data, "args", file),
            received=raw,
            expected="e.g. args: {width: 64, layers: null}",
        )
    defaults = {str(k): (REQUIRED if v is None else _plain(v)) for k, v in raw.items()}
    for key in defaults:
        if not key.isidentifier() or key in ("name", "in"):
            raise SpecError(
                f"'{key}' cannot be an argument name",
                where=_at(raw, key, file, "args"),
                expected="an identifier other than name and in",
            )
    return defaults


def _read_includes(
    data: LineDict,
    file: str | None,
    folder: Path,
    chain: tuple[Path, ...] = (),
    read: dict[Path, tuple[dict[str, _BlockDef], dict[str, Any]]] | None = None,
) -> tuple[dict[str, _BlockDef], dict[str, Any]]:
    """The blocks and top-level argument defaults of the files `include:` names (and of the files
    they include), read relative to `folder`; their `input`, `layers` and `variants` are not used.
    Each file is read once (`read`, by resolved path), and at most MAX_INCLUDES files in all; a
    block defined in two files, a file that includes itself (`chain`: the files being read) and an
    absolute path are errors. The including file's own `args:` override what it includes."""
    if "include" not in data:
        return {}, {}
    read = {} if read is None else read
    raw = data["include"]
    where = _at(data, "include", file, "include")
    paths = raw if isinstance(raw, list) else [raw]
    if not paths or any(not isinstance(p, str) or not p.strip() for p in paths):
        raise SpecError(
            "'include' names spec files whose blocks this spec uses",
            where=where,
            received=raw,
            expected="a relative path or a list of them, e.g. include: resnet.yaml",
        )
    blocks: dict[str, _BlockDef] = {}
    args: dict[str, Any] = {}
    for written in paths:
        if Path(written).is_absolute():
            raise SpecError(
                "an included file is named relative to the including one",
                where=where,
                received=written,
                expected="a relative path, e.g. include: resnet.yaml",
            )
        path = folder / written
        try:
            resolved = path.resolve()
        except (OSError, ValueError) as err:  # a NUL byte, a name the system refuses
            raise SpecError(
                f"cannot include '{excerpt(written)}'",
                where=where,
                received=written,
                expected="a spec file, named relative to this one",
                hint=str(err),
            ) from None
        if resolved in chain:
            raise SpecError(
                "a spec includes itself",
                where=where,
                received=" -> ".join([*(p.name for p in chain), written]),
                expected="includes that do not loop",
            )
        if resolved not in read:
            if len(read) + len(chain) >= MAX_INCLUDES:  # read, and being read
                raise SpecError(
                    f"more than {MAX_INCLUDES} included files",
                    where=where,
                    received=written,
                    expected=f"at most {MAX_INCLUDES} files, those included by included files counted",
                )
            read[resolved] = _read_included(path, written, where, (*chain, resolved), read)
        inner_blocks, inner_args = read[resolved]
        for name, block in inner_blocks.items():
            if name in blocks and blocks[name].file != block.file:
                raise SpecError(
                    f"block '{name}' is defined in two included files ({blocks[name].file}, {block.file})",
                    where=where,
                    expected="one definition per block name",
                )
            blocks[name] = block
        args.update(inner_args)
    return blocks, args


def _read_included(
    path: Path,
    written: str,
    where: Where,
    chain: tuple[Path, ...],
    read: dict[Path, tuple[dict[str, _BlockDef], dict[str, Any]]],
) -> tuple[dict[str, _BlockDef], dict[str, Any]]:
    """One included file's blocks and argument defaults, those of the files it includes first."""
    resolved = chain[-1]
    shown = str(path)
    if resolved.is_relative_to(ARCHITECTURES.resolve()):
        shown = f"<built-in>/{resolved.relative_to(ARCHITECTURES.resolve()).as_posix()}"
    try:
        included = with_lines(load_file(path, shown))
    except SpecError as err:
        if err.where.line is not None:  # a problem inside the included file: its own place
            raise
        raise SpecError(
            f"cannot include '{written}': {err.message}",
            where=where,
            received=shown,
            expected="a spec file, named relative to this one",
            hint=err.hint,
        ) from None
    if not isinstance(included, LineDict):
        raise SpecError(f"included file '{written}' is not a spec (a mapping)", where=where, received=written)
    blocks, args = _read_includes(included, shown, path.parent, chain, read)
    for name, block in _read_blocks(included, shown).items():
        if name in blocks:
            raise SpecError(
                f"block '{name}' is defined in two included files ({blocks[name].file}, {block.file})",
                where=where,
                expected="one definition per block name",
            )
        blocks[name] = block
    return blocks, {**args, **_arg_defaults(included, shown)}


def _check_known(values: Mapping[str, Any], defaults: Mapping[str, Any], where: Where, what: str) -> None:
    for key in values:
        if key not in defaults:
            raise SpecError(
                f"unknown argument '{key}' in {what}",
                where=where,
                received=key,
                expected="one of " + (", ".join(defaults) or "(the spec declares no args)"),
                hint=did_you_mean(key, defaults),
            )


def _read_input(data: LineDict, file: str | None, scope: Mapping[str, Any]) -> tuple[int, ...]:
    expected = "a list [C, ...spatial] of 1 to 4 positive integers, e.g. input: [3, 224, 224]"
    if "input" not in data:
        raise SpecError("the spec has no 'input'", where=Where(file=file, line=data.line), expected=expected)
    value = data["input"]
    where = _at(data, "input", file, "input")
    if isinstance(value, list) and scope:
        try:
            value = [expr.evaluate(v, scope) if expr.is_expression(v) else v for v in value]
        except CnncalcError as err:
            raise err.located(where) from None
    if not isinstance(value, list) or not 1 <= len(value) <= 4 or any(type(v) is not int or v < 1 for v in value):
        raise SpecError("malformed 'input'", where=where, received=value, expected=expected)
    return tuple(value)


def _read_blocks(data: LineDict, file: str | None) -> dict[str, _BlockDef]:
    raw = data.get("blocks") or {}
    if not isinstance(raw, dict):
        raise SpecError(
            "'blocks' must be a mapping of block names to definitions", where=_at(data, "blocks", file), received=raw
        )
    blocks = {}
    for name, body in raw.items():
        where = _at(raw, name, file, f"blocks.{name}")
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError("a block name must be an identifier", where=where, received=name)
        if name in STRUCTURES or name == CALL or layer_type(name) is not None:
            raise SpecError(f"block name '{name}' is already a layer type", where=where, hint="choose another name")
        if not isinstance(body, dict):
            raise SpecError(
                f"block '{name}' must be a mapping",
                where=where,
                received=body,
                expected="keys: " + ", ".join(BLOCK_KEYS),
            )
        for key in body:
            if key not in BLOCK_KEYS:
                raise SpecError(
                    f"unknown key '{key}' in block '{name}'",
                    where=_at(body, key, file, f"blocks.{name}"),
                    received=key,
                    expected="one of " + ", ".join(BLOCK_KEYS),
                    hint=did_you_mean(str(key), BLOCK_KEYS),
                )
        if sum(key in body for key in BLOCK_BODIES) != 1:
            raise SpecError(
                f"block '{name}' needs exactly one of 'layers' (a chain), 'body' (a residual block) "
                "or 'branches' (parallel branches)",
                where=where,
                received="keys " + ", ".join(map(str, body)),
            )
        args = body.get("args") or {}
        if not isinstance(args, dict):
            raise SpecError(
                f"'args' of block '{name}' must be a mapping of argument names to defaults",
                where=_at(body, "args", file),
                received=args,
                expected="e.g. args: {out: null, stride: 1}",
            )
        defaults = {str(k): (REQUIRED if v is None else v) for k, v in args.items()}
        for reserved in ITEM_KEYS:
            if reserved in defaults:
                raise SpecError(f"'{reserved}' cannot be a block argument: every item takes it already", where=where)
        if "in" in defaults:
            raise SpecError("'in' cannot be a block argument: $in is the channels of the block's input", where=where)
        assert isinstance(body, LineDict)  # YAML, or a Python spec through with_lines
        blocks[name] = _BlockDef(name, defaults, body, body.line, _reads_in(body), file)
    return blocks


def _reads_in(value: object) -> bool:
    if isinstance(value, dict):
        return any(_reads_in(k) or _reads_in(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_reads_in(v) for v in value)
    return isinstance(value, str) and re.search(r"\$in\b", value) is not None


_NOWHERE = Where()  # the place of what cannot fail
_LAYER_NAME_ARGS: dict[type, tuple[str, ...]] = {}


def _layer_name_args(cls: type[Layer]) -> tuple[str, ...]:
    """The arguments of a layer type that name another layer (center_crop's `like`), worked out
    once per type (`fields` is not cheap, and a spec builds hundreds of layers)."""
    names = _LAYER_NAME_ARGS.get(cls)
    if names is None:
        names = _LAYER_NAME_ARGS[cls] = tuple(f.name for f in fields(cls) if f.metadata["kind"] is ArgKind.LAYER_NAME)
    return names


class _Expander:
    def __init__(
        self, file: str | None, blocks: dict[str, _BlockDef], top_scope: Mapping[str, Any] | None = None
    ) -> None:
        self.file = file
        self.blocks = blocks
        self.top_scope = dict(top_scope or {})  # the spec's top-level args, visible in every block
        self.drafts: list[_Draft] = []
        self.names: dict[str, int] = {}
        self.containers: dict[str, str] = {}
        self.input_shape: tuple[int, ...] = ()
        self.shapes: list[tuple[int, ...]] = []  # output shapes of the first drafts, for `$in`
        self.calls: dict[str, int] = {}  # row name -> how many times `call:` ran its module again
        self.outputs: dict[str, _Input] = {}  # structure / block use / repeat name -> its output (last row)
        self.layers: dict[tuple[Any, ...], Layer] = {}  # built layers by type and arguments (`layer`)

    # -- errors ---------------------------------------------------------------------------

    def where(self, line: int | None, path: str, ctx: _Context) -> Where:
        """The place of an item: its line in the file it is written in (an included block's own)."""
        return Where(file=ctx.file or self.file, line=line, path=path)

    # -- chains and items -----------------------------------------------------------------

    def chain(self, items: object, ctx: _Context, prev: _Input, default_prefix: str = "") -> _Input:
        """Expand a list of items one after the other; returns what the last one produced."""
        if not isinstance(items, list):
            raise SpecError(
                "expected a list of layers",
                where=self.where(getattr(items, "line", None), ctx.path, ctx),
                received=items,
            )
        position = 0
        for index, raw in enumerate(items):
            line = items.line_of(index) if isinstance(items, LineList) else None
            prev, position = self.item(raw, line, f"{ctx.path}[{index}]", ctx, prev, position, default_prefix)
        return prev

    def item(
        self, raw: object, line: int | None, path: str, ctx: _Context, prev: _Input, position: int, default_prefix: str
    ) -> tuple[_Input, int]:
        written, args, args_line = self.split_item(raw, line, path, ctx)
        where = self.where(args_line or line, path, ctx)
        name = args.pop("name", None)
        repeated = "repeat" in args  # a named item with `repeat:` names its copies name.0, name.1, ... (even one)
        repeat = args.pop("repeat", 1)
        source = args.pop("from", None)
        when = args.pop("when", True)
        if type(when) is not bool:
            raise SpecError(
                "'when' must be true or false (usually a block argument: when: $down)", where=where, received=when
            )
        if not when:
            return prev, position
        if name is not None:
            _check_name(name, where)
        if type(repeat) is not int or repeat < 1:
            raise SpecError("'repeat' must be a positive integer", where=where, received=repeat)
        if repeat > MAX_NODES:
            raise SpecError(
                "repeat count is too large to be sensible",
                where=where,
                received=repeat,
                expected=f"at most {MAX_NODES:,} layers in the expanded graph",
            )
        if written == CALL:
            if repeat != 1:
                raise SpecError("'call' runs a module once more: it takes no 'repeat'", where=where, received=repeat)
            return self.call(args, name, source, prev, ctx, where), position  # a call takes no position
        inline = args.pop("inline", False)
        start = args.pop("start", 0)
        if type(inline) is not bool or (inline and written not in self.blocks):
            raise SpecError(
                "'inline: true' goes on a use of a block (its items join this list)", where=where, received=inline
            )
        if type(start) is not int or start < 0:
            raise SpecError(
                "'start' (the first copy's number) must be a non-negative integer", where=where, received=start
            )
        if inline:
            if name is not None or source is not None:
                raise SpecError(
                    "an inline block use has no name or from of its own",
                    where=where,
                    hint="its items join the enclosing list; name them in the block",
                )
            for _ in range(repeat):
                prev, position = self.inline_block(
                    self.blocks[written], dict(args), prev, where, ctx, position, default_prefix
                )
            return prev, position
        # The naming rule (docs/spec.md, "Names"): an unnamed copy takes the next position of its list,
        # as nn.Sequential numbers its modules; a named item takes one position, whatever its repeat,
        # and a named item with `repeat:` is a group `name` of copies `name.0`, `name.1`, ...
        template = name is not None and "{i}" in str(name)  # `name: denselayer{i}`: the copy's number, from `start`
        group = name is not None and repeated and not template
        if group:
            self.containers[ctx.prefix + str(name)] = "repeat"
        for k in range(repeat):
            if name is None:
                local = f"{default_prefix}{position}"
                position += 1
            elif template:
                local = str(name).replace("{i}", str(start + k))
            else:
                local = f"{name}.{k + start}" if group else str(name)
            inputs = self.sources(source, prev, ctx, where, written)
            prev = self.one(written, dict(args), ctx.prefix + local, inputs, where, ctx, line)
        if name is not None:
            position += 1
        if group:
            self.outputs[ctx.prefix + str(name)] = prev  # `from: stage` reads the last copy's output
        return prev, position

    def split_item(
        self, raw: object, line: int | None, path: str, ctx: _Context
    ) -> tuple[str, dict[str, Any], int | None]:
        """(type as written, arguments with $expressions evaluated, line of the arguments); errors
        are placed at the item's `line` and `path` (made only then: most items have none)."""
        if isinstance(raw, str):
            return raw, {}, None
        if not isinstance(raw, dict) or len(raw) != 1:
            keys = list(raw) if isinstance(raw, dict) else None
            raise SpecError(
                "a layer is a type name or a mapping with exactly one key, its type",
                where=self.where(line, path, ctx),
                received=f"keys {keys}" if keys is not None else raw,
                expected="e.g. '- relu' or '- conv: {out: 64, kernel: 3, name: conv1}'",
                hint="put name, repeat and from inside the arguments" if keys else None,
            )
        written, value = next(iter(raw.items()))
        written = str(written)
        try:
            if expr.is_expression(written):  # `- $block: {...}`: the type (usually a block) chosen by an argument
                chosen = self.evaluated(written, ctx.scope)
                if not isinstance(chosen, str):
                    raise SpecError(f"'{written}' as a layer type must give a type or block name", received=chosen)
                written = chosen
            args_line = value.line if isinstance(value, LineDict) else None
            if value is None:
                return written, {}, args_line
            if isinstance(value, dict):
                return written, {str(k): self.evaluated(v, ctx.scope) for k, v in value.items()}, args_line
            if written == CALL:
                return written, {"layer": self.evaluated(value, ctx.scope)}, args_line
            cls = layer_type(written)
            shorthand = cls.shorthand if cls is not None else None
            if shorthand is None:
                self.check_type(written, Where())
                raise SpecError(
                    f"{written} takes a mapping of arguments, not a single value",
                    received=value,
                    expected=f"- {written}: {{...}}"
                    + (f", keys: {', '.join(self.argument_list(written))}" if self.argument_list(written) else ""),
                )
            return written, {shorthand: self.evaluated(value, ctx.scope)}, args_line
        except CnncalcError as err:
            raise err.located(self.where(line, path, ctx)) from None

    def argument_list(self, written: str) -> list[str]:
        cls = layer_type(written)
        if cls is not None:
            return [f.name for f in fields(cls)]
        if written in self.blocks:
            return list(self.blocks[written].args)
        return []

    def evaluated(self, value: Any, scope: Mapping[str, Any]) -> Any:
        """`value` with its $expressions evaluated (a list item by item); errors are not placed."""
        if isinstance(value, str):
            return value if "$" not in value else expr.evaluate(value, scope)  # "$": expr.is_expression
        if isinstance(value, list):
            return [self.evaluated(v, scope) for v in value]
        return value

    def sources(self, source: object, prev: _Input, ctx: _Context, where: Where, written: str) -> list[_Input]:
        """The inputs of an item: the previous output, or what `from:` names."""
        cls = layer_type(written)
        many = cls is not None and cls.min_inputs > 1
        if source is None:
            if many:
                raise SpecError(
                    f"{written} needs its inputs named with 'from'",
                    where=where,
                    expected=f"- {written}: {{from: [a, b]}} (with one name, the previous layer is the first input)",
                )
            return [prev]
        names = source if isinstance(source, list) else [source]
        if not names or any(not isinstance(n, (str, int)) or isinstance(n, bool) for n in names):
            raise SpecError(
                "'from' must name earlier layers", where=where, received=source, expected="a name or a list of names"
            )
        refs: list[_Input] = [_Ref(str(n), ctx.prefix, where) for n in names]
        if many and len(refs) == 1:
            refs.insert(0, prev)
        variadic = cls is not None and cls.min_inputs == 1 and cls.max_inputs is None  # a traced row: any number
        if not many and not variadic and len(refs) != 1:
            raise SpecError(f"{written} takes one input", where=where, received=source, expected="from: one name")
        return refs

    def check_type(self, written: str, where: Where) -> None:
        if written in STRUCTURES or written == CALL or written in self.blocks or layer_type(written) is not None:
            return
        choices = [*REGISTRY, *ALIASES, *STRUCTURES, *self.blocks]
        raise SpecError(
            f"unknown layer type '{written}'",
            where=where,
            received=written,
            expected="a layer type (`cnncalc layers` lists them), a structure (sequential, residual, parallel) or a block defined under 'blocks'",
            hint=did_you_mean(written, choices),
        )

    def one(
        self,
        written: str,
        args: dict[str, Any],
        name: str,
        inputs: list[_Input],
        where: Where,
        ctx: _Context,
        line: int | None,
    ) -> _Input:
        """Expand one item (after repeat) whose full name and inputs are known."""
        self.check_type(written, where)
        if written in STRUCTURES or written in self.blocks:
            # `from: in` inside a structure or block use reads its input (squeeze-excitation's `x * scale`)
            self.outputs[name + "." + OWN_INPUT] = inputs[0]
        if written in STRUCTURES:
            self.outputs[name] = getattr(self, written)(args, name, inputs[0], where, ctx)
            return self.outputs[name]
        if written in self.blocks:
            self.outputs[name] = self.block(self.blocks[written], args, name, inputs[0], where, ctx)
            return self.outputs[name]
        cls = layer_type(written)
        assert cls is not None  # check_type above
        layer = self.layer(cls, args, name, where)
        # an argument naming another layer (center_crop's `like`) is read as one more input
        inputs = inputs + [_Ref(args[arg], ctx.prefix, where) for arg in _layer_name_args(cls) if arg in args]
        pieces = getattr(layer, "pieces", None)
        if pieces is not None:  # several outputs (chunk, split): one row per piece, `name.0`, `name.1`, ...
            self.containers[name] = cls.kind
            piece = partial(replace, layer)  # `piece` is a field of the multi-output types only
            try:  # how many: from the input's shape (torch.split(x, 26) of 104 channels makes 4)
                count = pieces(partial(self.shape_of, inputs[0]))
            except LayerError as err:
                raise err.located(Where(where.file, where.line, f"{where.path} {name}")) from None
            rows = [self.add(f"{name}.{k}", cls.kind, written, piece(piece=k), inputs, where) for k in range(count)]
            self.outputs[name] = rows[-1]
            return rows[-1]
        return self.add(name, cls.kind, written, layer, inputs, where)

    def layer(self, cls: type[Layer], args: dict[str, Any], name: str, where: Where) -> Layer:
        """`build_layer(cls, args)`, made once per distinct arguments in a spec: layers are frozen,
        and a block used fifty times builds the same few layers again and again. The key holds
        each value's type (1, 1.0 and true are equal in Python, not as arguments); arguments that
        are not hashable (lists) are built every time."""
        try:
            key = (cls, tuple(args.items()), tuple(map(type, args.values())))  # built in C: once per row
            layer = self.layers.get(key)
        except TypeError:  # a list argument
            key, layer = None, None
        if layer is None:
            try:
                layer = build_layer(cls, args)
            except LayerError as err:
                raise err.located(Where(where.file, where.line, f"{where.path} {name}")) from None
            if key is not None:
                self.layers[key] = layer
        return layer

    def merge(self, kind: str) -> Layer:
        """The layer that merges a residual's or a parallel's outputs (`add`, `concat`): it has no
        arguments, so one per spec (as `layer` keeps them)."""
        return self.layer(REGISTRY[kind], {}, kind, _NOWHERE)

    def call(
        self, args: dict[str, Any], name: object, source: object, prev: _Input, ctx: _Context, where: Where
    ) -> int:
        """A row that runs an earlier row's module again: named `<row>@2`, `<row>@3`, ... unless named."""
        for key in args:
            if key != "layer":
                raise SpecError(
                    f"unknown key '{key}' for call",
                    where=where,
                    received=key,
                    expected="- call: relu, or - call: {layer: relu, name: ..., from: ...}",
                )
        target = args.get("layer")
        if not isinstance(target, str) or not target:
            raise SpecError("'call' names an earlier row", where=where, received=target, expected="- call: relu")
        parts = ctx.prefix.rstrip(".").split(".") if ctx.prefix else []
        found = next(
            (c for c in (".".join(parts[:i] + [target]) for i in range(len(parts), -1, -1)) if c in self.names), None
        )
        if found is None or found == INPUT:
            raise SpecError(
                f"'call: {target}' names no earlier row",
                where=where,
                received=target,
                expected="the name of an earlier layer (not a structure)",
                hint=did_you_mean(target, self.names),
            )
        original = self.drafts[self.names[found]]
        if original.calls is not None:
            original = self.drafts[self.names[original.calls]]
        self.calls[original.name] = self.calls.get(original.name, 1) + 1
        full = ctx.prefix + str(name) if name is not None else f"{original.name}@{self.calls[original.name]}"
        inputs = self.sources(source, prev, ctx, where, original.written)
        return self.add(full, original.kind, original.written, original.layer, inputs, where, calls=original.name)

    def add(
        self,
        name: str,
        kind: str,
        written: str,
        layer: Layer | None,
        inputs: list[_Input],
        where: Where,
        calls: str | None = None,
    ) -> int:
        where = Where(where.file, where.line, f"{where.path} {name}")
        if name in self.names:
            first = self.drafts[self.names[name]].where
            raise SpecError(
                f"duplicate layer name '{name}'",
                where=where,
                received=f"'{name}' again (first at {first})",
                expected="a unique name per layer",
            )
        if len(self.drafts) >= MAX_NODES:
            raise SpecError(
                f"the expanded graph has more than {MAX_NODES:,} layers",
                where=where,
                expected="a spec of sensible size",
                hint="check repeat counts and YAML aliases",
            )
        self.names[name] = len(self.drafts)
        self.drafts.append(_Draft(name, kind, written, layer, inputs, where, calls))
        return len(self.drafts) - 1

    # -- structures -----------------------------------------------------------------------

    def structure_args(
        self, args: dict[str, Any], allowed: tuple[str, ...], required: tuple[str, ...], what: str, where: Where
    ) -> None:
        for key in args:
            if key not in allowed:
                raise SpecError(
                    f"unknown key '{key}' for {what}",
                    where=where,
                    received=key,
                    expected="one of " + ", ".join((*allowed, *ITEM_KEYS)),
                    hint=did_you_mean(key, allowed),
                )
        for key in required:
            if key not in args:
                raise SpecError(f"{what} needs '{key}'", where=where, expected=f"{key}: a list of layers")

    def sequential(self, args: dict[str, Any], name: str, prev: _Input, where: Where, ctx: _Context) -> _Input:
        self.structure_args(args, ("layers",), ("layers",), "sequential", where)
        self.containers[name] = "sequential"
        return self.chain(args["layers"], ctx.inner(name + ".", f"{where.path}.layers"), prev)

    def residual(
        self, args: dict[str, Any], name: str, prev: _Input, where: Where, ctx: _Context, kind: str = "residual"
    ) -> _Input:
        self.structure_args(args, ("body", "shortcut", "after", "add"), ("body",), kind, where)
        self.containers[name] = kind
        add = args.get("add", True)  # `add: $stride == 1 and $in == $out`: an inverted residual's own rule
        if expr.is_expression(add):  # a block's keys are read here, in the use's scope
            try:
                add = expr.evaluate(add, ctx.scope)
            except CnncalcError as err:
                raise err.located(where) from None
        if type(add) is not bool:
            raise SpecError(
                "'add' of a residual is true or false (whether the shortcut is added)",
                where=where,
                received=add,
                expected="e.g. add: $stride == 1 and $in == $out",
            )
        if not add and args.get("shortcut"):
            raise SpecError(
                "a residual with 'add: false' is its body alone: it has no shortcut",
                where=where,
                hint="give the shortcut's items a 'when:' of the same condition",
            )
        inner = ctx.inner(name + ".", f"{where.path}.body")
        body = self.chain(args["body"], inner, prev)
        if not add:  # no shortcut and no `.add` row: the body, then `after`
            return self.chain(
                args.get("after") or [],
                ctx.inner(name + ".", f"{where.path}.after", scope=inner.scope, blocks_in_use=inner.blocks_in_use),
                body,
                default_prefix="after.",
            )
        shortcut = prev
        if args.get("shortcut"):
            shortcut_ctx = ctx.inner(
                name + ".", f"{where.path}.shortcut", scope=inner.scope, blocks_in_use=inner.blocks_in_use
            )
            shortcut = self.chain(args["shortcut"], shortcut_ctx, prev, default_prefix="shortcut.")
        merged: _Input = self.add(f"{name}.add", "add", "add", self.merge("add"), [body, shortcut], where)
        if args.get("after"):
            after_ctx = ctx.inner(
                name + ".", f"{where.path}.after", scope=inner.scope, blocks_in_use=inner.blocks_in_use
            )
            merged = self.chain(args["after"], after_ctx, merged, default_prefix="after.")
        return merged

    def parallel(
        self, args: dict[str, Any], name: str, prev: _Input, where: Where, ctx: _Context, kind: str = "parallel"
    ) -> _Input:
        self.structure_args(args, ("branches", "merge"), ("branches",), kind, where)
        merge = args.get("merge", "concat")
        if expr.is_expression(merge):  # a block's keys are read here, in the use's scope
            try:
                merge = expr.evaluate(merge, ctx.scope)
            except CnncalcError as err:
                raise err.located(where) from None
        if merge not in MERGES:
            raise SpecError(
                "'merge' of parallel must be " + ", ".join(MERGES[:-1]) + " or " + MERGES[-1],
                where=where,
                received=merge,
                hint=did_you_mean(str(merge), MERGES),
            )
        branches = args["branches"]
        if not isinstance(branches, list) or len(branches) < 2:
            raise SpecError(
                "parallel needs a list of at least two branches",
                where=where,
                received=branches,
                expected="branches: [[...layers...], [...layers...]]",
            )
        self.containers[name] = kind
        outputs: list[_Input] = []
        for i, branch in enumerate(branches):
            branch_name, items = f"branch{i + 1}", branch
            if isinstance(branch, dict) and set(branch) <= {"name", "layers"} and "layers" in branch:
                branch_name, items = branch.get("name", branch_name), branch["layers"]
                _check_name(branch_name, where)
                branch_name = str(branch_name)
            self.containers[f"{name}.{branch_name}"] = "branch"
            outputs.append(self.chain(items, ctx.inner(f"{name}.{branch_name}.", f"{where.path}.branches[{i}]"), prev))
        return self.add(f"{name}.{merge}", merge, merge, self.merge(merge), outputs, where)

    def block(
        self, block: _BlockDef, args: dict[str, Any], name: str, prev: _Input, where: Where, ctx: _Context
    ) -> _Input:
        if block.name in ctx.blocks_in_use:
            cycle = " -> ".join((*ctx.blocks_in_use, block.name))
            raise SpecError(
                f"block '{block.name}' uses itself ({cycle})", where=where, expected="blocks that do not recurse"
            )
        scope = self.block_scope(block, args, where, prev)
        path = f"blocks.{block.name}"
        inner = ctx.inner(
            name + ".", path, scope=scope, blocks_in_use=(*ctx.blocks_in_use, block.name), file=block.file
        )
        block_where = Where(block.file or self.file, block.line, f"{where.path} -> {path}")
        if "layers" in block.raw:
            self.containers[name] = block.name
            return self.chain(
                block.raw["layers"],
                _Context(inner.prefix, inner.scope, f"{path}.layers", inner.blocks_in_use, inner.depth, inner.file),
                prev,
            )
        structure = self.residual if "body" in block.raw else self.parallel
        keys = ("body", "shortcut", "after", "add") if "body" in block.raw else ("branches", "merge")
        return structure(
            {k: block.raw[k] for k in keys if k in block.raw}, name, prev, block_where, inner, kind=block.name
        )

    def inline_block(
        self,
        block: _BlockDef,
        args: dict[str, Any],
        prev: _Input,
        where: Where,
        ctx: _Context,
        position: int,
        default_prefix: str,
    ) -> tuple[_Input, int]:
        """A block use with `inline: true`: its items join the enclosing list, numbered on from its
        positions (VGG-BN's features.0, .1, .2 from a conv-bn-relu block), no name level of its own."""
        if block.name in ctx.blocks_in_use:
            raise SpecError(f"block '{block.name}' uses itself", where=where, expected="blocks that do not recurse")
        if "layers" not in block.raw:
            raise SpecError(
                f"'inline' needs a chain block ('layers:'); '{block.name}' is a residual or parallel block",
                where=where,
                hint="name the use instead",
            )
        items = block.raw["layers"]
        path = f"blocks.{block.name}.layers"
        inner = ctx.inner(
            ctx.prefix,
            path,
            scope=self.block_scope(block, args, where, prev),
            blocks_in_use=(*ctx.blocks_in_use, block.name),
            file=block.file,
        )
        if not isinstance(items, list):
            raise SpecError("expected a list of layers", where=where, received=items)
        for index, raw in enumerate(items):
            line = items.line_of(index) if isinstance(items, LineList) else None
            prev, position = self.item(raw, line, f"{path}[{index}]", inner, prev, position, default_prefix)
        return prev, position

    def block_scope(self, block: _BlockDef, args: dict[str, Any], where: Where, prev: _Input) -> dict[str, Any]:
        """The block's arguments: the spec's top-level args, shadowed by the block's own (given or
        defaults), and `$in`, the channels of the use's input, where the block reads it."""
        scope: dict[str, Any] = dict(self.top_scope)
        if block.reads_in:
            scope["in"] = self.shape_of(prev)[0]
        for key, value in args.items():
            if key not in block.args:
                raise SpecError(
                    f"unknown argument '{key}' for block '{block.name}'",
                    where=where,
                    received=key,
                    expected="one of " + (", ".join(block.args) or "(no arguments)"),
                    hint=did_you_mean(key, block.args),
                )
            scope[key] = value
        for key, default in block.args.items():
            if key not in args:  # a top-level arg of the same name does not stand in for the block's own
                if default is REQUIRED:
                    raise SpecError(
                        f"block '{block.name}' needs argument '{key}'",
                        where=where,
                        expected=f"- {block.name}: {{{key}: ...}}",
                    )
                scope[key] = default
        return scope

    def shape_of(self, at: _Input) -> tuple[int, ...]:
        """The output shape of an already-expanded node (for `$in`), computed on demand and kept."""
        index = self.resolve(at, len(self.drafts)) if isinstance(at, _Ref) else at
        while len(self.shapes) <= index:
            d = self.drafts[len(self.shapes)]
            if d.layer is None:
                self.shapes.append(self.input_shape)
                continue
            ins = [self.shapes[self.resolve(x, len(self.shapes)) if isinstance(x, _Ref) else x] for x in d.inputs]
            try:
                self.shapes.append(d.layer.output_shape(ins))
            except CnncalcError as err:
                raise err.located(d.where) from None
        return self.shapes[index]

    # -- references -----------------------------------------------------------------------

    def resolve(self, ref: _Ref, at: int) -> int:
        """The node a reference names: a row, or a structure's (block use's, repeat's) output, its last row."""
        parts = ref.namespace.rstrip(".").split(".") if ref.namespace else []
        candidates = [".".join(parts[:i] + [ref.name]) for i in range(len(parts), -1, -1)]
        for candidate in candidates:
            if candidate in self.names or candidate in self.outputs:
                index = self.names.get(candidate)
                if index is None:
                    output = self.outputs[candidate]
                    index = self.resolve(output, at) if isinstance(output, _Ref) else output
                if index >= at:
                    raise SpecError(
                        f"'from: {ref.name}' refers to a layer that runs at or after this one (a cycle)",
                        where=self.drafts[at].where,
                        received=f"{candidate} (layer {index}) feeding layer {at}",
                        expected="a layer defined earlier in the spec",
                    )
                return index
        raise SpecError(
            f"unknown reference 'from: {ref.name}'",
            where=ref.where,
            received=ref.name,
            expected="the name of an earlier layer or structure",
            hint=did_you_mean(ref.name, [*self.names, *(o for o in self.outputs if not o.endswith("." + OWN_INPUT))]),
        )

    def finish(self) -> tuple[Node, ...]:
        nodes = []
        for i, d in enumerate(self.drafts):
            inputs = tuple(self.resolve(x, i) if isinstance(x, _Ref) else x for x in d.inputs)
            nodes.append(Node(d.name, d.kind, d.written, d.layer, inputs, d.where, d.calls))
        return tuple(nodes)
