"""The spec language's keys and limits, and the records the reader and the expander share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from ..errors import SpecError, Where
from ..layers import Layer
from ..records import record
from .yaml_lines import LineDict

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


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, list) else value


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
