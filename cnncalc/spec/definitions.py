"""What a spec defines for others to use: blocks, top-level argument defaults, and the files it includes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import SpecError, Where, did_you_mean, excerpt
from ..layers import layer_type
from .language import (
    BLOCK_BODIES,
    BLOCK_KEYS,
    CALL,
    ITEM_KEYS,
    MAX_INCLUDES,
    REQUIRED,
    STRUCTURES,
    _at,
    _BlockDef,
    _plain,
)
from .library import ARCHITECTURES
from .yaml_lines import LineDict, load_file, with_lines


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
