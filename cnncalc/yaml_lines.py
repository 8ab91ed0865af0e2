"""Safe YAML loading that remembers where each mapping, key and list item was written.

Built on `yaml.SafeLoader` (never `yaml.load`): mappings become `LineDict` and sequences
`LineList`, which carry 1-based line numbers so that errors can point at the spec's text.
Aliases stay shared references (as in PyYAML), so an alias bomb costs nothing to load;
the spec expander bounds what it builds from it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import SpecError, Where

MAX_SPEC_BYTES = 5_000_000


class LineDict(dict):
    """A dict with `line` (where the mapping starts) and `key_lines` (where each key is)."""

    line: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.key_lines: dict[object, int] = {}

    def line_of(self, key: object) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list):
    """A list with `line` (where the sequence starts) and `item_lines` (where each item is)."""

    line: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose containers remember their lines; duplicate keys are errors."""


def _construct_map(loader: _LineLoader, node: yaml.MappingNode):
    data = LineDict()
    data.line = node.start_mark.line + 1
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            raise SpecError("a mapping key must be a plain value", where=Where(line=line), received=key) from None
        if key in data:
            raise SpecError(
                f"duplicate key '{key}'",
                where=Where(line=line),
                received=f"'{key}' again (first on line {data.key_lines[key]})",
                expected="each key once per mapping",
            )
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = line


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode):
    data = LineList()
    data.line = node.start_mark.line + 1
    yield data
    for item in node.value:
        data.append(loader.construct_object(item, deep=True))
        data.item_lines.append(item.start_mark.line + 1)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def load_text(text: str, file: str | None = None) -> object:
    """Parse YAML text safely, with line numbers; syntax errors become SpecError."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - _LineLoader is a SafeLoader subclass
    except SpecError as err:
        raise err.located(Where(file=file)) from None
    except yaml.constructor.ConstructorError as err:
        mark = err.problem_mark or err.context_mark
        recursive = " (an alias that contains itself)" if "recursive" in str(err.problem) else ""
        raise SpecError(
            f"YAML structure error: {err.problem}{recursive}",
            where=Where(file=file, line=mark.line + 1 if mark else None),
        ) from None
    except yaml.MarkedYAMLError as err:
        # the context mark (where the unclosed bracket or key began) is the more useful line
        mark = err.context_mark or err.problem_mark
        problem = err.problem or "invalid YAML"
        context = f" ({err.context})" if err.context else ""
        raise SpecError(
            f"YAML syntax error: {problem}{context}",
            where=Where(file=file, line=mark.line + 1 if mark else None),
            expected="valid YAML (check indentation, colons and brackets near this line)",
        ) from None
    except yaml.YAMLError as err:
        raise SpecError(f"YAML error: {err}", where=Where(file=file)) from None


def load_file(path: Path, shown: str | None = None) -> object:
    """Read and parse a spec file; a missing path, a directory or a huge file is a SpecError."""
    shown = shown or str(path)
    if not path.exists():
        raise SpecError("no such file", where=Where(file=shown), hint="check the path, or give a built-in name (cnncalc list)")
    if path.is_dir():
        raise SpecError("this path is a directory, not a spec file", where=Where(file=shown), expected="a .yaml file")
    size = path.stat().st_size
    if size > MAX_SPEC_BYTES:
        raise SpecError("spec file is too large", where=Where(file=shown), received=f"{size:,} bytes", expected=f"at most {MAX_SPEC_BYTES:,} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError("spec file is not UTF-8 text", where=Where(file=shown), expected="a YAML text file") from None
    except OSError as err:
        raise SpecError(f"cannot read the file: {err.strerror}", where=Where(file=shown)) from None
    return load_text(text, shown)
