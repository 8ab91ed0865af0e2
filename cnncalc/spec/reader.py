"""A spec's top level: from a file, text or loaded YAML to a graph (the items go to the expander)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..errors import CnncalcError, SpecError, Where, did_you_mean, excerpt
from ..graph import INPUT, Graph, OutputKind, Outputs
from . import expr
from .definitions import _arg_defaults, _read_blocks, _read_includes
from .expander import _Expander
from .language import (
    REQUIRED,
    TOP_LEVEL_KEYS,
    _at,
    _check_name,
    _Context,
    _Draft,
    _plain,
    _Ref,
)
from .library import ARCHITECTURES, STDIN, Source, read_stdin
from .yaml_lines import LineDict, LineList, load_file, load_text, with_lines


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
