"""The one exception family of cnncalc.

The library raises these and never prints; the CLI turns them into a message and an exit code.
Each error says where (file, line, layer path), what was received, what was expected, and
a suggestion when one exists.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
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


class CnncalcError(Exception):
    """Base of every error cnncalc raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        where: Where | None = None,
        received: object = None,
        expected: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.where = where or Where()
        self.received = received
        self.expected = expected
        self.hint = hint

    def located(self, where: Where) -> "CnncalcError":
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
        where = str(self.where)
        out = [f"{where}: {self.message}" if where else self.message]
        if self.received is not None:
            shown = self.received if isinstance(self.received, str) else repr(self.received)
            out.append(f"received: {shown}")
        if self.expected:
            out.append(f"expected: {self.expected}")
        if self.hint:
            out.append(f"hint: {self.hint}")
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
]
