"""A small, whitelisted evaluator for the integer arithmetic allowed in block arguments.

`$out * 4`, `$width // 2 + 1`, `($c + 7) // 8 * 8`: integers, block arguments written `$name`,
+ - * // % and exact /, unary minus, parentheses; an element of a list argument (`$layers[0]`);
and conditions for `when:` (`$stride > 1 or $in != $width * 4`, `$block == 'bottleneck'`):
comparisons of integers or of quoted text, `and`, `or`, `not`; and a choice between two values,
`2 if $down else 1` (`'basic' if $depth < 50 else 'bottleneck'`), whose condition must be true or
false. Nothing else is accepted: no calls, no attributes, no `eval`.

Literals are integers. An argument that holds a decimal number (a rate, such as torchvision's
`stochastic_depth_prob: 0.1`) may take part in `+ - * /`: the result is then a decimal number,
computed as Python computes it, so `$rate * $k / ($blocks - 1)` gives torchvision's own
per-block probability to the last bit. `//`, `%` and list indices stay integer-only.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from typing import Any, Callable, Mapping, Union

from ..errors import SpecError, did_you_mean

_NAME = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_PREFIX = "_arg_"
_MAX_DIGITS = 30  # refuse absurd intermediate values rather than burn memory on them

_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}


def is_expression(value: object) -> bool:
    """True for a string that refers to a block argument (`$name`)."""
    return isinstance(value, str) and "$" in value


def evaluate(text: str, scope: Mapping[str, object]) -> object:
    """The value of `text` with `$name` taken from `scope`.

    A bare reference (`$kernel`) returns the argument as it is (an int, a list, a bool);
    anything else must be integer arithmetic.
    """
    read = _READ.get(text)
    if read is None:
        read = _read(text)
        if len(_READ) < _MAX_READ and len(text) <= _MAX_KEPT_TEXT:
            _READ[text] = read
    if isinstance(read, str):
        return _lookup(read, scope, text)
    names, tree = read
    # the value depends only on the text and the arguments it names: kept for each such combination
    # of integers, booleans and texts (the type is part of the key: 1 == 1.0 == True in Python)
    typed = tuple((type(v), v) for v in map(scope.get, names))
    if all(t in _KEYED for t, _ in typed):
        key = (text, *typed)
        value = _VALUES.get(key)
        if value is None:
            value = _eval(tree, scope, text)
            if len(_VALUES) < _MAX_READ and len(text) <= _MAX_KEPT_TEXT and all(map(_small, typed)):
                _VALUES[key] = value
        return value
    return _eval(tree, scope, text)


def _small(typed: tuple[type, Any]) -> bool:
    """Whether an argument's value is small enough to be part of a kept key."""
    kind, value = typed
    return len(value) <= _MAX_KEPT_TEXT if kind is str else kind is bool or value.bit_length() <= 64


_Read = Union[str, tuple[tuple[str, ...], ast.AST]]  # what `_read` makes of a text
_READ: dict[str, _Read] = {}  # text -> `_read(text)`: a block reads each text many times
_VALUES: dict[tuple[Any, ...], Any] = {}  # (text, the named arguments' types and values) -> its value
_KEYED = (int, bool, str)
_MAX_READ = 10_000  # entries in each: a bound on memory for a long-lived process (or a fuzzer)
_MAX_KEPT_TEXT = 200  # longer texts (and their values) are not kept


def _read(text: str) -> _Read:
    """A bare reference's name (`$kernel` -> `kernel`), or the names an expression reads and its
    syntax tree; raises SpecError for text that is neither. It does not read the scope, so
    `evaluate` keeps it."""
    bare = _NAME.fullmatch(text.strip())
    if bare:
        return bare.group(1)
    source = _NAME.sub(lambda m: _PREFIX + m.group(1), text)  # `$in` -> `_arg_in`: never a Python keyword
    if "$" in source:
        raise SpecError("a '$' must be followed by an argument name", received=text, expected="$name, e.g. $out * 4")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError:
        raise SpecError(
            "cannot read this expression", received=text, expected="integer arithmetic such as `$out * 4`"
        ) from None
    names = tuple(dict.fromkeys(node.id.removeprefix(_PREFIX) for node in ast.walk(tree) if isinstance(node, ast.Name)))
    return names, tree.body


def _lookup(name: str, scope: Mapping[str, object], text: str) -> object:
    name = name.removeprefix(_PREFIX)
    if name not in scope:
        raise SpecError(
            f"unknown argument '${name}'",
            received=text,
            expected="one of " + (", ".join(f"${k}" for k in scope) or "(this block takes no arguments)"),
            hint=did_you_mean(name, scope),
        )
    return scope[name]


def _eval(node: ast.AST, scope: Mapping[str, object], text: str) -> object:
    """An int, or a bool for a condition (or what a chosen branch of `a if c else b` is)."""
    if isinstance(node, ast.IfExp):
        # [value] = [a] if [condition] else [b]: only the chosen branch is evaluated
        return _branch(node.body if _condition(node.test, scope, text, _CHOICE) else node.orelse, scope, text)
    if isinstance(node, ast.Compare):
        return _compare(node, scope, text)
    if isinstance(node, ast.BoolOp):
        values = [_condition(v, scope, text) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _condition(node.operand, scope, text)
    return _integer(node, scope, text)


def _branch(node: ast.AST, scope: Mapping[str, object], text: str) -> object:
    """A branch of `a if c else b`: quoted text, an argument as it is (a list, a text), or an expression."""
    if isinstance(node, ast.Constant) and type(node.value) is str:
        return node.value
    if isinstance(node, ast.Name):
        return _lookup(node.id, scope, text)
    return _eval(node, scope, text)


def _condition(node: ast.AST, scope: Mapping[str, object], text: str, what: str = "'and', 'or' and 'not' take") -> bool:
    value = _eval(node, scope, text) if not isinstance(node, ast.Name) else _lookup(node.id, scope, text)
    if type(value) is not bool:
        raise SpecError(f"{what} conditions (true/false)", received=text, expected="e.g. `$stride > 1 or $down`")
    return value


_CHOICE = "`a if condition else b` takes"


def _compare(node: ast.Compare, scope: Mapping[str, object], text: str) -> bool:
    values: list[Any] = [_operand(v, scope, text) for v in (node.left, *node.comparators)]  # types checked below
    for (left, right), op in zip(zip(values, values[1:]), node.ops):
        compare = _COMPARE.get(type(op))
        if (
            compare is None
            or type(left) is not type(right)
            or (type(left) is str and compare not in (operator.eq, operator.ne))
        ):
            raise SpecError(
                "a comparison takes two integers, or two texts with == or !=",
                received=text,
                expected="e.g. `$stride > 1`, `$block == 'bottleneck'`",
            )
        if not compare(left, right):
            return False
    return True


def _operand(node: ast.AST, scope: Mapping[str, object], text: str) -> object:
    """A side of a comparison: quoted text, a text argument, or integer arithmetic."""
    if isinstance(node, ast.Constant) and type(node.value) is str:
        return node.value
    if isinstance(node, ast.Name) and type(scope.get(node.id.removeprefix(_PREFIX))) is str:
        return scope[node.id.removeprefix(_PREFIX)]
    return _integer(node, scope, text)


def _decimal(op: ast.operator, left: float, right: float, text: str) -> float:
    """`+ - * /` with a decimal argument on one side, as Python computes it (a rate, not a count)."""
    compute: dict[type[ast.operator], Callable[[float, float], float]]
    compute = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
    if type(op) not in compute:
        raise SpecError("'//' and '%' take integers; a decimal argument goes with + - * / only", received=text)
    result = compute[type(op)](left, right)
    if not math.isfinite(result):
        raise SpecError("expression value is too large", received=text)
    return result


def _integer(node: ast.AST, scope: Mapping[str, object], text: str) -> int | float:
    """An int; a float only where a decimal argument took part (see the module's docstring)."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.Name):
        value = _lookup(node.id, scope, text)
        if type(value) is float and math.isfinite(value):  # a rate argument: decimal arithmetic from here
            return value
        if type(value) is not int:
            raise SpecError(
                f"argument '${node.id.removeprefix(_PREFIX)}' is used in arithmetic but is not an integer",
                received=value,
                expected="an integer",
            )
        return value
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        # `$layers[0]`: an element of a list argument, by a constant or computed integer index
        items = _lookup(node.value.id, scope, text)
        shown = node.value.id.removeprefix(_PREFIX)
        index = _integer(node.slice, scope, text)
        if type(index) is not int:
            raise SpecError(f"an index of '${shown}' must be an integer", received=text, expected="an integer")
        if not isinstance(items, list):
            raise SpecError(f"argument '${shown}' is indexed but is not a list", received=items, expected="a list")
        if not -len(items) <= index < len(items):
            raise SpecError(
                f"index {index} is out of range for '${shown}'", received=text, expected=f"an index below {len(items)}"
            )
        if type(items[index]) is not int:
            raise SpecError(f"'${shown}[{index}]' is not an integer", received=items[index], expected="an integer")
        item: int = items[index]
        return item
    if isinstance(node, ast.IfExp):  # `$out * (2 if $wide else 1)`: a choice inside arithmetic
        return _integer(node.body if _condition(node.test, scope, text, _CHOICE) else node.orelse, scope, text)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _integer(node.operand, scope, text)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _integer(node.left, scope, text), _integer(node.right, scope, text)
        if isinstance(node.op, (ast.FloorDiv, ast.Mod, ast.Div)) and right == 0:
            raise SpecError("division by zero", received=text)
        if type(left) is float or type(right) is float:
            return _decimal(node.op, left, right, text)
        if isinstance(node.op, ast.Div):
            if left % right:
                raise SpecError(
                    "'/' must divide exactly", received=f"{text} = {left}/{right}", hint="use // for floor division"
                )
            return left // right
        op = _BINARY.get(type(node.op))
        if op is not None:
            result: int = op(left, right)
            if len(str(abs(result))) > _MAX_DIGITS:
                raise SpecError("expression value is too large", received=text)
            return result
    raise SpecError(
        "only integer arithmetic is allowed here",
        received=text,
        expected="integers, $arguments, + - * // % / and parentheses, or `a if condition else b`",
    )
