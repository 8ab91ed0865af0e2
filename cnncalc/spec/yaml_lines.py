"""Safe YAML loading that remembers where each mapping, key and list item was written.

Built on `yaml.SafeLoader` (never `yaml.load`): mappings become `LineDict` and sequences
`LineList`, which carry 1-based line numbers so that errors can point at the spec's text. Where
PyYAML has libyaml, its C parser reads plain ASCII text (4x faster: start-up time) under the
same composer, bounds and constructor; anything it refuses is read again by the pure-Python
loader, so that messages and lines never depend on which parser is installed.
Aliases stay shared references (as in PyYAML), so an alias bomb costs nothing to load. Before
anything is constructed, the composed node graph is measured as if every alias were written out
(memoised, so in time linear in the text): nesting deeper than MAX_YAML_DEPTH or more than
MAX_EXPANDED_NODES values is refused, so nothing downstream can recurse or expand past them.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import yaml

from ..errors import SpecError, Where

MAX_SPEC_BYTES = 5_000_000
MAX_STRUCTURE_NESTING = 64  # structures inside structures (spec.MAX_NESTING), as docs/spec.md promises
# A structure costs three YAML levels (list item, `sequential:` mapping, its arguments); a little spare.
MAX_YAML_DEPTH = 3 * MAX_STRUCTURE_NESTING + 8
MAX_EXPANDED_NODES = 1_000_000  # YAML values with every alias written out


class LineDict(dict[Any, Any]):
    """A dict with `line` (where the mapping starts) and `key_lines` (where each key is)."""

    line: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.key_lines: dict[object, int] = {}

    def line_of(self, key: object) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A list with `line` (where the sequence starts) and `item_lines` (where each item is)."""

    line: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


if TYPE_CHECKING:  # a mixin of the loaders below: their methods are its methods
    _LoaderBase = yaml.SafeLoader
else:
    _LoaderBase = object


class _Bounded(_LoaderBase):
    """What both loaders share: containers that remember their lines, duplicate keys refused, and
    nesting and alias expansion bounded before the (recursive) composer and constructor run."""

    _depth = 0
    _nodes = 0  # compose_node calls: nodes as written, each alias once
    _aliased = False

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        # PyYAML composes recursively: refuse depth here, before Python's recursion limit is reached
        self._depth += 1
        self._nodes += 1
        if not self._aliased and self.check_event(yaml.AliasEvent):
            self._aliased = True
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _too_deep(self.peek_event().start_mark.line + 1)  # type: ignore[no-untyped-call]  # untyped in the PyYAML stubs
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        # Without aliases the nodes are as written: as deep as the composer allowed and as many as
        # it composed; only aliases (or a huge text) need the full measure.
        if self._aliased or self._nodes > MAX_EXPANDED_NODES:
            check_expansion(node)
        return self.construct_document(node)


class _LineLoader(_Bounded, yaml.SafeLoader):
    """The pure-Python SafeLoader: the reference, whose error messages every spec test reads."""


# YAML 1.1 (PyYAML) reads a float only with a dot: `eps: 1e-6` would be the text "1e-6", and the
# number PyTorch's own defaults write (`1e-05`) refused. YAML 1.2 and Python read it as a number.
_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$")

_LOADERS: tuple[Any, ...]
if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _FastLineLoader(
        _Bounded, yaml.composer.Composer, CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver
    ):
        """libyaml's scanner and parser (C) under PyYAML's own composer (Python, so that the depth
        bound above holds before anything recurses) and the same safe constructor: the same data
        and lines as `_LineLoader`, several times faster. A text it refuses is read again by
        `_LineLoader`, so that messages never depend on which parser is installed."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    _LOADERS = (_FastLineLoader, _LineLoader)
else:  # pragma: no cover - PyYAML built without libyaml
    _LOADERS = (_LineLoader,)
for _loader in _LOADERS:
    _loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789"))


def check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph that, with every alias written out, is too deep or too large.

    Iterative and memoised by node: an alias bomb of ten levels of ten is measured in 100 steps.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()  # expanded, not finished: the ancestors of what is on top
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in size and not done:
            continue
        if key in open_nodes and not done:
            raise SpecError(
                "YAML structure error: a recursive alias (an alias that contains itself)",
                where=Where(line=node.start_mark.line + 1),
                expected="aliases to finished values",
            )
        children = _children(node)
        if not done:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in size)
            continue
        open_nodes.discard(key)
        size[key] = min(1 + sum(size[id(c)] for c in children), MAX_EXPANDED_NODES + 1)
        depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
        line = node.start_mark.line + 1
        if depth[key] > MAX_YAML_DEPTH:
            raise SpecError(
                f"YAML aliases nest the spec more than {MAX_YAML_DEPTH} levels deep",
                where=Where(line=line),
                expected=f"structures nested at most {MAX_STRUCTURE_NESTING} deep",
                hint="an alias inside an alias inside an alias ...",
            )
        if size[key] > MAX_EXPANDED_NODES:
            raise SpecError(
                f"YAML aliases expand to more than {MAX_EXPANDED_NODES:,} values",
                where=Where(line=line),
                expected="a spec of sensible size when every alias is written out",
                hint="an alias bomb? each level of aliases multiplies the size",
            )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[LineDict]:
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


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[LineList]:
    data = LineList()
    data.line = node.start_mark.line + 1
    yield data
    for item in node.value:
        data.append(loader.construct_object(item, deep=True))
        data.item_lines.append(item.start_mark.line + 1)


for _loader in _LOADERS:
    _loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
    _loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def _too_deep(line: int | None, file: str | None = None) -> SpecError:
    return SpecError(
        f"the YAML is nested more than {MAX_YAML_DEPTH} levels deep",
        where=Where(file=file, line=line),
        expected=f"layer structures (sequentials, blocks, branches) nested at most {MAX_STRUCTURE_NESTING} deep, "
        f"which {MAX_YAML_DEPTH} YAML levels leave room for",
        hint="check for unclosed or repeated brackets",
    )


def load_text(text: str, file: str | None = None, loader: type | None = None) -> object:
    """Parse YAML text safely, with line numbers; syntax errors become SpecError. libyaml reads
    it where PyYAML has it; a YAML error is then read again by the pure-Python loader, whose
    message (and line) is the one reported. `loader` picks one (the tests compare them)."""
    if loader is None and len(_LOADERS) > 1 and not _LIBYAML_DIFFERS.search(text):
        try:
            return _load(text, _LOADERS[0])
        except (SpecError, yaml.YAMLError):
            pass  # read again below, for PyYAML's own message and line
    return _load_reporting(text, file, loader or _LineLoader)


# libyaml reads printable ASCII text as PyYAML does, but differs elsewhere (it accepts a tab in
# indentation, '?' keys in flow mappings and `|#`; it counts lines differently around a byte-order
# mark or a Unicode line break: found by tests/test_yaml_lines.py); such texts go to the reference
# loader alone.
_LIBYAML_DIFFERS = re.compile(r"[^\n\r\x20-\x7e]|\?|[|>][0-9+-]*[^ \n\r0-9+-]")


def _load(text: str, loader: type) -> object:
    parser = loader(text)
    try:
        return parser.get_single_data()
    finally:
        parser.dispose()


def _load_reporting(text: str, file: str | None, loader: type) -> object:
    try:
        return _load(text, loader)
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
        if "maximum nesting depth" in problem:  # libyaml 0.2.5+ refuses depth itself, deeper than we do
            raise _too_deep(mark.line + 1 if mark else None, file) from None
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
    return load_text(read_text(path, shown), shown)


def read_text(path: Path, shown: str | None = None) -> str:
    """A spec file's text: a regular file of at most MAX_SPEC_BYTES, UTF-8; anything else a SpecError.

    A device (/dev/zero), a pipe or a socket is refused before it is opened, and at most the limit
    plus one byte is ever read, whatever the file system says the size is.
    """
    where = Where(file=shown or str(path))
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise SpecError(
            "no such file", where=where, hint="check the path, or give a built-in name (cnncalc list)"
        ) from None
    except (OSError, ValueError) as err:
        raise SpecError(f"cannot read the file: {getattr(err, 'strerror', None) or err}", where=where) from None
    if stat.S_ISDIR(mode):
        raise SpecError("this path is a directory, not a spec file", where=where, expected="a .yaml file")
    if not stat.S_ISREG(mode):
        raise SpecError(
            "this path is not a regular file (a device, a pipe or a socket)", where=where, expected="a .yaml file"
        )
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SPEC_BYTES + 1)
    except OSError as err:
        raise SpecError(f"cannot read the file: {err.strerror}", where=where) from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(
            "spec file is too large",
            where=where,
            received=f"more than {MAX_SPEC_BYTES:,} bytes",
            expected=f"at most {MAX_SPEC_BYTES:,} bytes",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(
            "spec file is not UTF-8 text",
            where=where,
            received=f"byte {data[err.start]:#04x} at offset {err.start:,}",
            expected="a YAML text file",
        ) from None


def with_lines(value: object) -> object:
    """Plain dicts and lists (a spec built in Python) as the reader's LineDict/LineList, without
    line numbers, so that the parser reads them as it reads YAML."""
    if isinstance(value, dict) and not isinstance(value, LineDict):
        mapping = LineDict()
        mapping.line = None  # type: ignore[assignment]
        mapping.update((k, with_lines(v)) for k, v in value.items())
        return mapping
    if isinstance(value, (list, tuple)) and not isinstance(value, LineList):
        items = LineList()
        items.line = None  # type: ignore[assignment]
        items.extend(with_lines(v) for v in value)
        return items
    return value
