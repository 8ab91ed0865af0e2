"""Naming a row of a network's table: by its own name, or by the lecture tables' name for it
(`conv1_1` .. `conv5_3`, `pool1` .. `pool5`, `fc6` .. `fc8` in the CS231n VGG tables)."""

from __future__ import annotations

import difflib
import re

from .analysis import Report, Row, Style, lecture
from .errors import CnncalcError

LECTURE_NAME = re.compile(r"(conv\d+_\d+|pool\d+|fc\d+)")
_POOLS = ("maxpool", "avgpool")
_UNNAMED = ("batchnorm",)  # rows of a VGG-BN between the named ones; they take no lecture name


def lecture_aliases(report: Report) -> dict[str, str]:
    """The lecture tables' names of the rows of a plain chain of convolutions, pools that shrink
    their input, and linear layers (VGG): `conv{stage}_{i}` for the i-th convolution of a stage,
    `pool{stage}` for the pool that ends it, `fc{n}` for the linear layers, numbered on after the
    last stage (VGG16: fc6, fc7, fc8). Empty for any other network (a block, a branch, a
    normalisation between stages: the tables' scheme does not say which row is which), or where
    an alias would be the own name of another row (LeNet-5's `fc3` is its last layer)."""
    rows = report.rows if report.style is Style.LECTURE else lecture(report).rows
    shapes = {row.name: row.output_shape for row in report.rows}
    aliases: dict[str, str] = {}
    stage, index = 1, 0
    for row in rows[1:]:
        if row.type == "conv":
            index += 1
            aliases[f"conv{stage}_{index}"] = row.name
        elif row.type in _POOLS and len(row.inputs) == 1 and _shrinks(shapes[row.inputs[0]], row.output_shape):
            aliases[f"pool{stage}"] = row.name
            stage, index = stage + 1, 0
        elif row.type == "linear":
            aliases[f"fc{stage}"] = row.name
            stage += 1
        elif row.type not in _UNNAMED:
            return {}
    if not any(alias.startswith("pool") for alias in aliases):
        return {}
    own = {row.name for row in report.rows}
    if any(alias in own and name != alias for alias, name in aliases.items()):
        return {}
    return aliases


def _shrinks(before: tuple[int, ...], after: tuple[int, ...]) -> bool:
    return (
        len(before) == len(after) > 1 and after[1:] != before[1:] and all(a <= b for a, b in zip(after[1:], before[1:]))
    )


def find_row(report: Report, name: str, network: str) -> tuple[Row, str | None]:
    """The row `name` names, and the lecture name it was found by (None: its own name). A name
    that names nothing is a CnncalcError whose hint is a close spelling of a row's name or alias,
    never a different layer that merely looks alike (`pool5` is not VGG's `avgpool`)."""
    by_name = {row.name: row for row in report.rows}
    if name in by_name:
        return by_name[name], None
    aliases = lecture_aliases(report)
    if name in aliases:
        return by_name[aliases[name]], name
    names = [row.name for row in report.rows[1:]]
    if LECTURE_NAME.fullmatch(name):
        hint = (
            f"{network} has no row of that lecture name: {', '.join(list(aliases)[:3])}, ... name its rows"
            if aliases
            else "lecture names (conv1_1, pool1, fc6) name the rows of plain conv/pool/linear chains (the VGG tables); "
            f"this network's rows are {', '.join(names[:5])}, ... (`cnncalc shapes` lists them)"
        )
    else:
        close = difflib.get_close_matches(name, [*names, *aliases], n=3, cutoff=0.8)  # a typo, not a look-alike
        hint = (
            "did you mean " + " or ".join(repr(c) for c in close) + "?"
            if close
            else f"the layers are {', '.join(names[:5])}, ... (`cnncalc shapes` lists them)"
        )
    raise CnncalcError(
        f"{network} has no layer '{name}'",
        received=name,
        expected="a row name from `cnncalc shapes`" + (" or a lecture name (conv1_1, pool1, fc6)" if aliases else ""),
        hint=hint,
    )
