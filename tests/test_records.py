"""`record` against the standard library: the same class body made by `record` and by
`dataclass(frozen=True)` must construct, compare, hash, print, refuse assignment and work with
`dataclasses.fields`/`replace`/`asdict` the same way, on every call hypothesis draws."""

from __future__ import annotations

import dataclasses
import sys
import tracemalloc
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnncalc import records
from cnncalc.records import record


def _body() -> dict[str, Any]:
    """A class body with every kind of field a record supports."""

    def __post_init__(self: Any) -> None:
        object.__setattr__(self, "total", self.a + len(self.items))

    return {
        "__annotations__": {"a": "int", "b": "str", "items": "list", "note": "str", "total": "int", "hidden": "float"},
        "b": "x",
        "items": field(default_factory=list),
        "note": field(default="n", compare=False),
        "total": field(default=0, init=False),
        "hidden": field(default=0.5, repr=False, hash=False),
        "__post_init__": __post_init__,
    }


Ours = record(type("Sample", (), _body()))
Theirs = dataclass(frozen=True)(type("Sample", (), _body()))
# the same record once it has made COMPILE_AFTER instances: from then on its own compiled __init__
Compiled = record(type("Sample", (), _body()))
for _ in range(records.COMPILE_AFTER):
    Compiled(1)
assert Compiled.__dict__["__init__"] is not records._init and Ours.__dict__["__init__"] is records._init

values = st.one_of(st.integers(-3, 3), st.text("ab", max_size=2), st.lists(st.integers(0, 2), max_size=2), st.none())
names = st.sampled_from(["a", "b", "items", "note", "total", "hidden", "zzz"])


def _outcome(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Any]:
    try:
        made = cls(*args, **kwargs)
    except TypeError:
        return "TypeError", None
    return "made", made


@pytest.mark.parametrize("cls", [Ours, Compiled], ids=["shared", "compiled"])
@given(st.lists(values, max_size=6).map(tuple), st.dictionaries(names, values, max_size=4))
def test_construction_equality_hash_and_repr_match_dataclass(
    cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    ours, theirs = _outcome(cls, args, kwargs), _outcome(Theirs, args, kwargs)
    assert ours[0] == theirs[0]
    if ours[0] != "made":
        return
    a, b = ours[1], theirs[1]
    assert dataclasses.asdict(a) == dataclasses.asdict(b)
    assert repr(a) == repr(b)
    assert a == _outcome(cls, args, kwargs)[1]
    assert _hash(a) == _hash(b)  # the same tuple of values, or the same refusal (a list field)


def _hash(instance: Any) -> int | str:
    try:
        return hash(instance)
    except TypeError:
        return "TypeError"


@given(st.integers(-3, 3), st.text("ab", max_size=2), st.text("ab", max_size=2), st.floats(allow_nan=False))
def test_equality_skips_compare_false_and_hash_skips_hash_false(a: int, b: str, note: str, hidden: float) -> None:
    for cls in (Ours, Theirs):
        first, second = cls(a, b, (), note="n", hidden=0.5), cls(a, b, (), note=note, hidden=hidden)
        assert (first == second) == (hidden == 0.5)
        assert first != cls(a + 1, b, ())
        assert (first == "not a record") is False
        if hidden == 0.5:
            assert hash(first) == hash(second)


def test_frozen_fields_replace_and_pattern_matching() -> None:
    for cls in (Ours, Theirs):
        made = cls(1, items=[1, 2])
        with pytest.raises(FrozenInstanceError):
            made.a = 2
        with pytest.raises(FrozenInstanceError):
            del made.a
        assert [f.name for f in dataclasses.fields(made)] == ["a", "b", "items", "note", "total", "hidden"]
        changed = dataclasses.replace(made, b="y")
        assert (changed.a, changed.b, changed.items, changed.total) == (1, "y", [1, 2], 3)
        with pytest.raises(ValueError):
            dataclasses.replace(made, total=9)  # an init=False field
        assert cls.__match_args__ == ("a", "b", "items", "note", "hidden")
        assert cls(1).items is not cls(1).items  # a fresh default per instance


def test_a_method_the_class_defines_is_kept() -> None:
    @record
    class Custom:
        value: int

        def __repr__(self) -> str:
            return "custom"

        def __eq__(self, other: object) -> bool:
            return True

    assert repr(Custom(1)) == "custom"
    assert Custom(1) == Custom(2)
    assert hash(Custom(1)) == hash(Custom(1))  # dataclass, too, adds __hash__ beside a custom __eq__


def test_a_derived_record_has_its_bases_fields_first() -> None:
    @record
    class Base:
        first: int
        second: int = 2

    @record
    class Derived(Base):
        third: int = 3

    made = Derived(1, third=4)
    assert (made.first, made.second, made.third) == (1, 2, 4)
    assert repr(made) == "test_a_derived_record_has_its_bases_fields_first.<locals>.Derived(first=1, second=2, third=4)"
    assert made != Base(1, 2)


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="CPython's shared-key instance dicts")
def test_instances_share_their_class_keys_instead_of_a_table_each() -> None:
    """A large spec makes 300,000 records: each instance's values sit beside its class's shared
    keys (as plain attribute assignment leaves them), not in a dict table of its own, which is
    what `__dict__.update({...})` gave every instance (529 bytes for 13 fields, twice these)."""
    names = [f"f{i}" for i in range(13)]
    Wide = record(type("Wide", (), {"__annotations__": dict.fromkeys(names, "int")}))
    made = [Wide(*range(13)) for _ in range(2 * records.COMPILE_AFTER)]  # both __init__s

    def traced_bytes(make: Any) -> float:
        tracemalloc.start()
        try:
            kept = [make(n) for n in range(1_000)]
            return tracemalloc.get_traced_memory()[0] / len(kept)
        finally:
            tracemalloc.stop()

    instance = traced_bytes(lambda n: Wide(*range(13)))
    own_table = traced_bytes(lambda n: dict(zip(names, range(13))))  # what update() copied into each
    assert instance < own_table, (instance, own_table)
    assert made[0] == made[-1] and vars(made[0]) == dict(zip(names, range(13)))
