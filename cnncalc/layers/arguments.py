"""How a YAML value becomes a layer argument: each kind of argument is one record of its text
(what the messages, `cnncalc layers` and the schema's descriptions say it accepts), its converter
(the value read, or a refusal) and its JSON Schema (what editors check as you type).

A converter takes the YAML value and the field's choices (for CHOICE) and returns the argument, or
raises `Refused`; `build_layer` words the message. The three stay side by side, so a new kind is one
member here, and tests/test_schema.py holds each schema to its converter.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Any, Callable, Mapping

Converter = Callable[[Any, tuple[str, ...]], Any]


_VALUE = object()  # Refused's `received` when it is the value given


class Refused(Exception):
    """A value its kind does not accept. `expected` overrides the kind's text in the message and
    `received` the value it shows: a list of shapes names the shape it refused, and what a shape
    should be."""

    def __init__(self, expected: str | None = None, received: Any = _VALUE) -> None:
        super().__init__(expected)
        self.expected = expected
        self.received = received

    def received_in(self, value: Any) -> Any:
        """What the message shows as received, for the `value` given."""
        return value if self.received is _VALUE else self.received


# ----- converters ----------------------------------------------------------------------------


def _integer(v: Any, low: int) -> int:
    if type(v) is not int or v < low:
        raise Refused
    return v


def _axes(v: Any, low: int) -> int | tuple[int, ...]:
    if isinstance(v, list):
        if not 1 <= len(v) <= 3:
            raise Refused
        return tuple(_integer(x, low) for x in v)
    return _integer(v, low)


def _bool(v: Any, choices: tuple[str, ...]) -> bool:
    if type(v) is not bool:
        raise Refused
    return v


def _number(v: Any, choices: tuple[str, ...]) -> float:
    if type(v) not in (int, float) or math.isnan(v) or math.isinf(v):
        raise Refused
    return float(v)


def _probability(v: Any, choices: tuple[str, ...]) -> float:
    value = _number(v, choices)
    if not 0 <= value <= 1:
        raise Refused
    return value


def _optional_number(v: Any, choices: tuple[str, ...]) -> float | None:
    try:
        return None if v is None else _number(v, choices)
    except Refused:
        raise Refused(NUMBER_TEXT) from None


def _one_of(*allowed: Any) -> Converter:
    def convert(v: Any, choices: tuple[str, ...]) -> Any:
        if v not in allowed:
            raise Refused
        return v

    return convert


# A convolution's padding in words: PyTorch's 'same' (stride 1) and 'valid', and TensorFlow/Keras's
# 'same' at any stride ('tf_same': output ceil(W/S), the odd padding position at the bottom/right).
PADDING_WORDS = ("same", "valid", "tf_same")


def _padding(v: Any, choices: tuple[str, ...]) -> Any:
    return v if v in PADDING_WORDS else _axes(v, 0)


def _norm_axes(v: Any, choices: tuple[str, ...]) -> int | str:
    if v == "channels":
        return "channels"
    if type(v) is not int or not 1 <= v <= 4:
        raise Refused
    return v


def _axes_order(v: Any, choices: tuple[str, ...]) -> tuple[int, ...]:
    if (
        not isinstance(v, list)
        or not all(type(x) is int for x in v)
        or len(v) < 2
        or sorted(v) != list(range(len(v)))
        or v[0] != 0
    ):
        raise Refused
    return tuple(v)


def _torch_axes(one_only: bool, optional: bool) -> Converter:
    """An axis as PyTorch counts it; a list of them (up to 8) unless `one_only`; null if `optional`."""

    def convert(v: Any, choices: tuple[str, ...]) -> Any:
        if v is None and optional:
            return None
        if isinstance(v, list) and not one_only:
            if not 1 <= len(v) <= 8 or any(type(x) is not int for x in v):
                raise Refused
            return tuple(v)
        if type(v) is not int:
            raise Refused
        return v

    return convert


def _indices(v: Any, choices: tuple[str, ...]) -> Any:
    if isinstance(v, list):
        if not 1 <= len(v) <= 8 or any(x is not None and type(x) is not int for x in v):
            raise Refused
        return tuple(v)
    if v is not None and type(v) is not int:
        raise Refused
    return v


def _sizes(v: Any, choices: tuple[str, ...]) -> int | tuple[int, ...]:
    if isinstance(v, list):
        if not v:
            raise Refused
        return tuple(_integer(x, 1) for x in v)
    return _integer(v, 1)


def _shape(v: Any, choices: tuple[str, ...]) -> tuple[int, ...]:
    if (
        not isinstance(v, list)
        or not 1 <= len(v) <= 8
        or any(type(x) is not int or (x < 1 and x != -1) for x in v)
        or v.count(-1) > 1
    ):
        raise Refused
    return tuple(v)


def _choice(v: Any, choices: tuple[str, ...]) -> Any:
    if v not in choices:
        raise Refused
    return v


def _optional_bool(v: Any, choices: tuple[str, ...]) -> bool | None:
    if v is not None and type(v) is not bool:
        raise Refused
    return v


def _optional_scales(v: Any, choices: tuple[str, ...]) -> Any:
    if v is None:
        return None
    scales = v if isinstance(v, list) else [v]
    if not 1 <= len(scales) <= 3 or any(type(x) not in (int, float) or not 0 < x < math.inf for x in scales):
        raise Refused
    return tuple(float(x) for x in scales) if isinstance(v, list) else float(v)


def _pad_amounts(v: Any, choices: tuple[str, ...], low: int = 0) -> int | tuple[int, ...]:
    if isinstance(v, list):
        if len(v) not in (2, 4, 6, 8):
            raise Refused
        return tuple(_integer(x, low) for x in v)
    return _integer(v, low)


def _signed_pad_amounts(v: Any, choices: tuple[str, ...]) -> int | tuple[int, ...]:
    return _pad_amounts(v, choices, low=-(2**62))  # negative amounts crop (constant mode, as F.pad)


def _fill(v: Any, choices: tuple[str, ...]) -> float:
    if type(v) not in (int, float) or math.isnan(v):
        raise Refused
    return float(v)


def _layer_name(v: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(v, (str, int)) or isinstance(v, bool) or not str(v):
        raise Refused
    return str(v)


def _text(v: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(v, str) or not v:
        raise Refused
    return v


def _traced_shape(v: Any, choices: tuple[str, ...]) -> tuple[int, ...]:
    if not isinstance(v, list) or not v or any(type(x) is not int or x < 1 for x in v):
        raise Refused
    return tuple(v)


def _traced_shapes(v: Any, choices: tuple[str, ...]) -> tuple[tuple[int, ...], ...]:
    if not isinstance(v, list) or not v:
        raise Refused
    shapes = []
    for x in v:
        try:
            shapes.append(_traced_shape(x, choices))
        except Refused:
            raise Refused(TRACED_SHAPE_TEXT, received=x) from None
    return tuple(shapes)


# ----- schemas -------------------------------------------------------------------------------


def _axes_schema(low: int) -> dict[str, Any]:
    one = {"type": "integer", "minimum": low}
    return {"anyOf": [one, {"type": "array", "items": one, "minItems": 1, "maxItems": 3}]}


def _pad_amounts_schema(signed: bool = False) -> dict[str, Any]:
    one: dict[str, Any] = {"type": "integer"} if signed else {"type": "integer", "minimum": 0}
    lists = [{"type": "array", "items": one, "minItems": n, "maxItems": n} for n in (2, 4, 6, 8)]
    return {"anyOf": [one, *lists]}


def _scales_schema() -> dict[str, Any]:
    one = {"type": "number", "exclusiveMinimum": 0}
    return {"anyOf": [{"type": "null"}, one, {"type": "array", "items": one, "minItems": 1, "maxItems": 3}]}


_TORCH_AXES_LIST = {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 8}
_TRACED_SHAPE_SCHEMA = {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1}
NUMBER_TEXT = "a number"
TRACED_SHAPE_TEXT = "a list of positive integers, channels first, without the batch (e.g. [64, 56, 56])"


# ----- the kinds -------------------------------------------------------------------------------


class ArgKind(Enum):
    """How a YAML value is read into a layer argument: its `value` is the text saying what it
    accepts, `convert` reads a value (or raises Refused), `schema` is the same as JSON Schema."""

    convert: Converter
    schema: Mapping[str, Any]

    def __new__(cls, text: str, convert: Converter, schema: Mapping[str, Any]) -> ArgKind:
        member = object.__new__(cls)
        member._value_ = text
        member.convert = convert
        member.schema = schema
        return member

    POSITIVE = (
        "a positive integer",
        lambda v, choices: _integer(v, 1),
        {"type": "integer", "minimum": 1},
    )
    NON_NEGATIVE = (
        "a non-negative integer",
        lambda v, choices: _integer(v, 0),
        {"type": "integer", "minimum": 0},
    )
    POSITIVE_AXES = (
        "a positive integer or a list of them, one per spatial axis",
        lambda v, choices: _axes(v, 1),
        _axes_schema(1),
    )
    NON_NEGATIVE_AXES = (
        "a non-negative integer or a list of them, one per spatial axis",
        lambda v, choices: _axes(v, 0),
        _axes_schema(0),
    )
    PADDING = (
        "a non-negative integer, a list of them (one per spatial axis), 'same', 'valid' or 'tf_same'",
        _padding,
        {"anyOf": [*_axes_schema(0)["anyOf"], {"enum": list(PADDING_WORDS)}]},
    )
    BOOL = ("true or false", _bool, {"type": "boolean"})
    NUMBER = (NUMBER_TEXT, _number, {"type": "number"})
    PROBABILITY = ("a number from 0 to 1", _probability, {"type": "number", "minimum": 0, "maximum": 1})
    APPROXIMATE = ("'none' or 'tanh'", _one_of("none", "tanh"), {"enum": ["none", "tanh"]})
    OPTIONAL_POSITIVE_AXES = (
        "a positive integer, a list of them, or null",
        lambda v, choices: None if v is None else _axes(v, 1),
        {"anyOf": [{"type": "null"}, *_axes_schema(1)["anyOf"]]},
    )
    # resampling, padding and cropping
    CHOICE = ("one of the listed values", _choice, {"type": "string"})  # the schema narrows it to the field's choices
    OPTIONAL_BOOL = ("true, false or null", _optional_bool, {"type": ["boolean", "null"]})
    OPTIONAL_SCALES = (
        "a positive number, a list of them (one per spatial axis), or null",
        _optional_scales,
        _scales_schema(),
    )
    PAD_AMOUNTS = (
        "a non-negative integer, or two per spatial axis, last axis first (PyTorch's order: left, right, top, "
        "bottom, ...; pad's constant mode: then the channels)",
        _pad_amounts,
        _pad_amounts_schema(),
    )
    SIGNED_PAD_AMOUNTS = (
        "an integer, or two per spatial axis, last axis first (PyTorch's order: left, right, top, bottom, ...; "
        "pad's constant mode: then the channels); negative amounts crop (constant mode, as F.pad)",
        _signed_pad_amounts,
        _pad_amounts_schema(signed=True),
    )
    FILL = (
        "a number, or .inf or -.inf (YAML's infinities: timm's 'same' max pooling pads with -.inf)",
        _fill,
        {"type": "number"},
    )
    LAYER_NAME = ("the name of an earlier layer (read as one more input)", _layer_name, {"type": ["string", "integer"]})
    OPTIONAL_NUMBER = ("a number, or null", _optional_number, {"type": ["number", "null"]})
    NORM_AXES = (
        "'channels', or how many trailing axes to normalise over (1 to 4)",
        _norm_axes,
        {"anyOf": [{"const": "channels"}, {"type": "integer", "minimum": 1, "maximum": 4}]},
    )
    DEPTH_MODE = ("'row' (per sample) or 'batch'", _one_of("row", "batch"), {"enum": ["row", "batch"]})
    AXES_ORDER = (
        "a list of axes, the batch axis 0 first (e.g. [0, 2, 3, 1])",
        _axes_order,
        {
            "type": "array",
            "items": {"type": "integer", "minimum": 0},
            "minItems": 2,
            "prefixItems": [{"const": 0}],
            "uniqueItems": True,
        },
    )
    TEXT = ("a text", _text, {"type": "string", "minLength": 1})
    TRACED_SHAPE = (TRACED_SHAPE_TEXT, _traced_shape, _TRACED_SHAPE_SCHEMA)
    TENSOR_SHAPE = (
        "a list of positive integers: a tensor's shape as PyTorch holds it (e.g. [64, 1, 1])",
        _traced_shape,
        _TRACED_SHAPE_SCHEMA,
    )
    TRACED_SHAPES = (
        "a list of shapes, one per input (e.g. [[64, 56, 56]])",
        _traced_shapes,
        {"type": "array", "items": _TRACED_SHAPE_SCHEMA, "minItems": 1},
    )
    # the vocabulary real models use (axes counted as PyTorch counts them, batch axis 0)
    AXIS = (
        "an axis as PyTorch counts it: 1 the channels, 2 the first spatial axis, negative from the end",
        _torch_axes(one_only=True, optional=False),
        {"type": "integer"},
    )
    AXES = (
        "an axis as PyTorch counts it (1 the channels, negative from the end), or a list of them",
        _torch_axes(one_only=False, optional=False),
        {"anyOf": [{"type": "integer"}, _TORCH_AXES_LIST]},
    )
    OPTIONAL_AXES = (
        "an axis as PyTorch counts it, a list of them, or null",
        _torch_axes(one_only=False, optional=True),
        {"anyOf": [{"type": "null"}, {"type": "integer"}, _TORCH_AXES_LIST]},
    )
    INDICES = (
        "an integer (negative from the end), null, or a list of them (one per axis in 'dim')",
        _indices,
        {
            "anyOf": [
                {"type": ["integer", "null"]},
                {"type": "array", "items": {"type": ["integer", "null"]}, "minItems": 1, "maxItems": 8},
            ]
        },
    )
    SIZES = (
        "a positive integer (the size of every piece, the last smaller) or a list of them (any number)",
        _sizes,
        {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
            ]
        },
    )
    SHAPE = (
        "a list of sizes without the batch axis, one of them may be -1 (e.g. [2, 32, -1])",
        _shape,
        {
            "type": "array",
            "items": {"anyOf": [{"type": "integer", "minimum": 1}, {"const": -1}]},
            "minItems": 1,
            "maxItems": 8,
        },
    )
