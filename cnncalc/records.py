"""`record`: a frozen dataclass whose methods are shared, not generated, for start-up time.

`@dataclass(frozen=True)` compiles five or six methods per class with `exec` (`__init__`,
`__repr__`, `__eq__`, `__hash__`, `__setattr__`, `__delattr__`): about half a millisecond a class,
which across cnncalc's ~90 classes was a fifth of `cnncalc summary`'s start-up. A `record` is the
same dataclass (`dataclasses.fields`, `replace`, `asdict` and `field(...)` work as before) whose
methods are these few functions, shared by every record, reading a plan worked out once per
class on its first instance. They behave as the generated ones do: positional or keyword
arguments in field order, defaults and default factories, `field(init=False)`, `__post_init__`,
equality and hash over the compared fields, the dataclass repr, and FrozenInstanceError on
assignment. A method the class defines itself is kept, as dataclass keeps it. Not supported (no
cnncalc type needs them): `InitVar`, `kw_only`, `order`, slots. Its `__dataclass_params__` says
what `dataclass` itself generated (nothing): derive from a record with `@record`, not with
`@dataclass(frozen=True)`, which refuses a base it does not know to be frozen. A class that has
made COMPILE_AFTER instances (a large spec's rows) gets a compiled `__init__` of its own after all.
"""

from __future__ import annotations

from dataclasses import MISSING, Field, FrozenInstanceError, dataclass, field, fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:  # typing's own is 3.11+; at run time the decorator only marks the function for type checkers

    def dataclass_transform(**kwargs: Any) -> Callable[[Any], Any]:
        return lambda function: function


__all__ = ["record"]

T = TypeVar("T", bound=type)


class _Plan(NamedTuple):
    """What a record class's shared methods need, worked out once per class."""

    init: tuple[str, ...]  # `__init__`'s parameters, in order
    names: frozenset[str]  # the same, as a set
    defaults: dict[str, Any]  # parameter -> default value
    factories: dict[str, Callable[[], Any]]  # parameter -> default factory
    later: dict[str, Any]  # init=False field -> its default
    late_factories: dict[str, Callable[[], Any]]  # init=False field -> its default factory
    compared: Callable[[Any], tuple[Any, ...]]  # the values that `==` compares, as a tuple
    hashed: Callable[[Any], tuple[Any, ...]]  # the values that `hash` reads, as a tuple
    shown: tuple[str, ...]  # fields that repr shows
    post_init: bool


_PLANS: dict[type, _Plan] = {}


def _plan(cls: type) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        every = fields(cls)
        init = [f for f in every if f.init]
        plan = _PLANS[cls] = _Plan(
            init=tuple(f.name for f in init),
            names=frozenset(f.name for f in init),
            defaults={f.name: f.default for f in init if f.default is not MISSING},
            factories={f.name: f.default_factory for f in init if f.default_factory is not MISSING},
            later={f.name: f.default for f in every if not f.init and f.default is not MISSING},
            late_factories={
                f.name: f.default_factory for f in every if not f.init and f.default_factory is not MISSING
            },
            compared=_values([f.name for f in every if f.compare]),
            hashed=_values([f.name for f in every if (f.compare if f.hash is None else f.hash)]),
            shown=tuple(f.name for f in every if f.repr),
            post_init=hasattr(cls, "__post_init__"),
        )
    return plan


def _values(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """A function from an instance to the tuple of these fields' values (what dataclass's
    generated `__eq__` and `__hash__` compare and hash)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        (name,) = names
        return lambda instance: (getattr(instance, name),)
    return lambda instance: ()


# A class made this many instances gets an `__init__` of its own, compiled as dataclass compiles
# one: a 100,000-layer spec makes hundreds of thousands of rows, nodes and places, and the shared
# `_init` below (generic, for start-up) costs three times as much per instance. Start-up pays
# for no compilation: a small spec's classes stay under the count.
COMPILE_AFTER = 256
_MADE: dict[type, int] = {}


def _compiled_init(cls: type, plan: _Plan) -> Callable[..., None]:
    """`cls`'s own `__init__`: the parameters of `plan.init` with their defaults (a factory's
    default is a marker the body replaces), each value stored into `__dict__` by its key
    (`__setattr__` refuses), then `__post_init__`. Key by key, not `__dict__.update({...})`:
    CPython (3.11+) keeps an instance's dict filled that way as values beside its class's
    shared keys, where update() copies a whole table of its own into each instance: 256 against
    529 bytes for a 13-field row (a 100,000-layer spec makes 300,000 records), and faster."""
    scope: dict[str, Any] = {"_UNSET": _UNSET}
    params, body, values = [], [], []
    for i, name in enumerate(plan.init):
        if name in plan.defaults:
            scope[f"_d{i}"] = plan.defaults[name]
            params.append(f"{name}=_d{i}")
        elif name in plan.factories:
            scope[f"_f{i}"] = plan.factories[name]
            params.append(f"{name}=_UNSET")
            body.append(f"    if {name} is _UNSET:\n        {name} = _f{i}()\n")
        else:
            params.append(name)
        values.append(f"{name!r}] = {name}")
    for i, (name, default) in enumerate(plan.later.items()):
        scope[f"_l{i}"] = default
        values.append(f"{name!r}] = _l{i}")
    for i, (name, factory) in enumerate(plan.late_factories.items()):
        scope[f"_lf{i}"] = factory
        values.append(f"{name!r}] = _lf{i}()")
    me, own = "__record_self__", "__record_dict__"  # no field's names
    source = (
        f"def __init__({', '.join([me, *params])}):\n{''.join(body)}"
        f"    {own} = {me}.__dict__\n"
        + "".join(f"    {own}[{value}\n" for value in values)
        + (f"    {me}.__post_init__()\n" if plan.post_init else "")
    )
    exec(source, scope)  # noqa: S102 - our own field names, as dataclasses does
    init: Callable[..., None] = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


class _Unset:
    def __repr__(self) -> str:
        return "<factory default>"


_UNSET = _Unset()


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    # Every value worked out in one dict (dict operations in C), then stored into the instance's
    # __dict__ (a frozen class's __setattr__ refuses).
    cls = type(self)
    plan = _PLANS.get(cls) or _plan(cls)
    made = _MADE[cls] = _MADE.get(cls, 0) + 1
    if made == COMPILE_AFTER and cls.__dict__.get("__init__") is _init:
        type.__setattr__(cls, "__init__", _compiled_init(cls, plan))
    if args:
        if len(args) > len(plan.init):
            raise TypeError(
                f"{cls.__qualname__}() takes {len(plan.init)} positional arguments but {len(args)} were given"
            )
        given = dict(zip(plan.init, args))
        if kwargs:
            if not given.keys().isdisjoint(kwargs):
                twice = next(name for name in given if name in kwargs)
                raise TypeError(f"{cls.__qualname__}() got multiple values for argument '{twice}'")
            given.update(kwargs)
    else:
        given = kwargs
    if not given.keys() <= plan.names:
        unknown = next(key for key in given if key not in plan.names)
        raise TypeError(f"{cls.__qualname__}() got an unexpected keyword argument '{unknown}'")
    values = {**plan.defaults, **given} if plan.defaults else given
    if len(values) < len(plan.init):
        for name, factory in plan.factories.items():
            if name not in values:
                values[name] = factory()
        if len(values) < len(plan.init):
            missing = next(name for name in plan.init if name not in values)
            raise TypeError(f"{cls.__qualname__}() missing required argument: '{missing}'")
    # key by key, in the compiled `__init__`'s order: see `_compiled_init` (one instance given a
    # table of its own by update() would cost every later instance of its class its shared keys)
    own = self.__dict__
    for name in plan.init:
        own[name] = values[name]
    if plan.later:
        for name, default in plan.later.items():
            own[name] = default
        for name, factory in plan.late_factories.items():
            own[name] = factory()
    if plan.post_init:
        self.__post_init__()


def _repr(self: Any) -> str:
    cls = type(self)
    plan = _PLANS.get(cls) or _plan(cls)
    return f"{cls.__qualname__}({', '.join(f'{name}={getattr(self, name)!r}' for name in plan.shown)})"


def _eq(self: Any, other: object) -> object:  # a bool, or NotImplemented (typed Any)
    cls = type(self)
    if other.__class__ is not cls:
        return NotImplemented
    compared = (_PLANS.get(cls) or _plan(cls)).compared
    return compared(self) == compared(other)


def _hash(self: Any) -> int:
    cls = type(self)
    return hash((_PLANS.get(cls) or _plan(cls)).hashed(self))


def _setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


_METHODS = {"__init__": _init, "__repr__": _repr, "__eq__": _eq, "__setattr__": _setattr, "__delattr__": _delattr}


@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def record(cls: T) -> T:
    """Make `cls` a frozen dataclass with shared methods (see the module's docstring)."""
    if cls.__dict__.get("__doc__") is None:  # dataclass would build one with inspect.signature
        cls.__doc__ = cls.__name__
    defines_eq = "__eq__" in cls.__dict__  # (which also sets the class's own __hash__ to None)
    dataclass(init=False, repr=False, eq=False)(cls)
    for name, method in _METHODS.items():
        if name not in cls.__dict__:
            setattr(cls, name, method)
    own_hash = cls.__dict__.get("__hash__", MISSING)
    if own_hash is MISSING or (own_hash is None and defines_eq):  # dataclass's rule for eq and frozen
        setattr(cls, "__hash__", _hash)  # noqa: B010 - mypy refuses a plain assignment of a method
    return cls
