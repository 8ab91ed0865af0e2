"""The one exception family of cnncalc.

The library raises these and never prints; the CLI turns them into a message and an exit code.
Each error says where (file, line, layer path), what was received, what was expected, and
a suggestion when one exists.
"""

from __future__ import annotations

import difflib
from typing import Iterable

from .records import record


@record
class Where:
    """A place in a spec: the file, the 1-based line and the layer's path (`layers[7] conv3_1`)."""

    file: str | None = None
    line: int | None = None
    path: str | None = None

    def __str__(self) -> str:
        head = ""
        if self.file:
            head = self.file if self.line is None else f"{self.file}:{self.line}"
        elif self.line is not None:
            head = f"line {self.line}"
        return ": ".join(part for part in (head, self.path) if part)


NOTHING = object()  # no received value to show (None is one: YAML's null)


class CnncalcError(Exception):
    """Base of every error cnncalc raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        where: Where | None = None,
        received: object = NOTHING,
        expected: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.where = where or Where()
        self.received = received
        self.expected = expected
        self.hint = hint

    def located(self, where: Where) -> CnncalcError:
        """The same error with the missing parts of its location filled from `where`."""
        merged = Where(
            file=self.where.file or where.file,
            line=self.where.line if self.where.line is not None else where.line,
            path=self.where.path or where.path,
        )
        self.where = merged
        return self

    def lines(self) -> list[str]:
        """The message as lines: where and what first, then received / expected / hint."""
        where = _cut(str(self.where))
        message = _cut(self.message)
        out = [f"{where}: {message}" if where else message]
        if self.received is not NOTHING:  # None is a value here: YAML's null, shown `received: null`
            out.append(f"received: {excerpt(self.received)}")
        if self.expected:
            out.append(f"expected: {_cut(self.expected)}")
        if self.hint:
            out.append(f"hint: {_cut(self.hint)}")
        return out

    def __str__(self) -> str:
        return "\n  ".join(self.lines())


class SpecError(CnncalcError):
    """A spec that cannot be read or does not describe a valid network."""


class LayerError(CnncalcError):
    """A layer whose arguments or inputs are invalid; located by the caller that knows the node."""


class StrictError(CnncalcError):
    """A warning promoted to an error by `strict=True`."""


class MissingExtraError(CnncalcError):
    """An optional dependency (the `torch` extra) is not installed."""


EXCERPT_CHARS = 200  # an echoed value longer than this is cut, with its size


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """A received value as the message shows it: text as it is, other values as YAML-ish repr,
    cut to `limit` characters with the full size said. Never builds more than about `limit`
    characters, so a value shared many times over (a YAML alias bomb) costs nothing to show."""
    if isinstance(value, str):
        shown = value
        if not shown.strip():
            return repr(shown)  # an empty or blank text, visibly
        if len(shown) <= limit:
            return _printable(shown)
        return f"{_printable(shown[:limit])}... ({len(shown):,} characters)"
    parts: list[str] = []
    budget = [limit + 1]

    def emit(text: str) -> bool:
        parts.append(text[: budget[0]])
        budget[0] -= len(text)
        return budget[0] > 0

    def walk(v: object, depth: int) -> bool:
        if depth > 20:
            return emit("...")
        if isinstance(v, dict):
            if not emit("{"):
                return False
            for i, (k, item) in enumerate(v.items()):
                if (i and not emit(", ")) or not walk(k, depth + 1) or not emit(": ") or not walk(item, depth + 1):
                    return False
            return emit("}")
        if isinstance(v, (list, tuple)):
            if not emit("["):
                return False
            for i, item in enumerate(v):
                if (i and not emit(", ")) or not walk(item, depth + 1):
                    return False
            return emit("]")
        if v is None:
            return emit("null")
        if isinstance(v, bool):
            return emit("true" if v else "false")
        if isinstance(v, int) and v.bit_length() > 4 * limit:
            return emit(f"<an integer of {v.bit_length():,} bits>")
        text = v if isinstance(v, str) else repr(v)
        return emit(repr(text) if isinstance(v, str) else text)

    if walk(value, 0):
        return _printable("".join(parts))
    size = f"{_count(value):,} items" if isinstance(value, (list, tuple, dict)) else "long"
    return f"{_printable(''.join(parts)[:limit])}... ({size})"


def _count(value: object, limit: int = 10**12) -> int:
    """Items in a nested value, counting shared parts each time they appear (memoised by identity)."""
    memo: dict[int, int] = {}

    def count(v: object, depth: int) -> int:
        if not isinstance(v, (list, tuple, dict)) or depth > 200:
            return 1
        key = id(v)
        if key not in memo:
            items = list(v.values()) if isinstance(v, dict) else v
            memo[key] = min(limit, 1 + sum(count(item, depth + 1) for item in items))
        return memo[key]

    return count(value, 0) - 1


def _cut(text: str, limit: int = 3 * EXCERPT_CHARS) -> str:
    """A message part that embeds a value (a key, a name) kept short: long ones lose their middle."""
    if len(text) <= limit:
        return text
    return f"{text[: limit // 2]}...({len(text) - limit:,} characters cut)...{text[-limit // 2 :]}"


def _printable(text: str) -> str:
    """Control characters (a newline in a value) shown escaped, so a message stays one line each."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def did_you_mean(received: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean' suggestion for a misspelt name, or None."""
    close = difflib.get_close_matches(received, list(choices), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"


__all__ = [
    "CnncalcError",
    "LayerError",
    "MissingExtraError",
    "SpecError",
    "StrictError",
    "Where",
    "did_you_mean",
    "excerpt",
]
