"""The base of every layer type, its registry, and how YAML arguments are read (each kind of
argument, its text, converter and schema, in `arguments`).

A layer type is one frozen dataclass (a `record`) registered under its YAML name (see the modules beside this
one, one per family). It answers everything that varies by type: output shape, weights, biases,
buffers, MACs, its `--explain` working, how it moves the receptive field, what each counting
convention makes of it, and the PyTorch module that computes the same thing. `register` refuses
a type that leaves one of these to a silent default: element-wise types say so by deriving from
`ElementWise`.

Shapes are tuples `(C, *spatial)` for one sample: the batch axis is never part of a shape.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, Field, field, fields
from fractions import Fraction
from typing import Any, Callable, ClassVar, Mapping, Sequence

from ..errors import LayerError, did_you_mean
from ..records import record
from .arguments import ArgKind as ArgKind  # re-exported: each layer module imports it from here
from .arguments import Refused
from .counting import Convention, Rule
from .layout import MemoryFormat, Strides, kept_as_is

Shape = tuple[int, ...]


def arg(
    default: Any = MISSING,
    *,
    kind: ArgKind,
    aliases: tuple[str, ...] = (),
    doc: str = "",
    choices: tuple[str, ...] = (),
) -> Any:
    """Declare a layer argument: its kind, the other spellings accepted (PyTorch's), a doc line,
    and for ArgKind.CHOICE the values accepted."""
    return field(default=default, metadata={"kind": kind, "aliases": aliases, "doc": doc, "choices": choices})


@record
class TorchModule:
    """What the PyTorch bridge must build: a `torch.nn` class name (or a bridge class) and its kwargs."""

    name: str
    kwargs: Mapping[str, Any]
    # For `cnncalc export`: PyTorch's defaults among `kwargs` (an argument equal to its default is
    # left out of the source), and how many leading arguments are written positionally.
    defaults: Mapping[str, Any] = field(default_factory=dict)
    positional: int = 0


@record
class Saved:
    """What a training step keeps of one layer for its backward pass, after PyTorch's autograd
    formulas (checked against `torch.autograd.graph.saved_tensors_hooks` in the tests)."""

    input: bool = False  # its input tensor (one copy, however many layers keep it)
    # each input, where another of its inputs needs a gradient (a product: d(ab)/da = b)
    inputs_for_partners: bool = False
    output: bool = False  # its output tensor
    elements: int = 0  # tensors of its own, per sample, in the activation dtype
    int64: int = 0  # int64 elements per sample (max pooling's indices)
    fp32_per_batch: int = 0  # fp32 elements for the whole batch (batch norm's mean and 1/std)
    kept_inputs: tuple[int, ...] | None = None  # with `input`: which inputs, by position (None: all)


@record
class FieldStep:
    """One axis of a layer, as the receptive-field recurrences see it (in the layer's input units).

    r_out = r_in + (kernel - 1) * j_in;  j_out = j_in * stride;  start_out = start_in + ((kernel - 1)/2 - pad) * j_in
    """

    kernel: Fraction
    stride: Fraction
    pad: Fraction
    # A transposed convolution: output o reads input i where i * stride = o + pad - j * dilation,
    # 0 <= j < kernel (kernel, stride and pad are then its own integers, not a window's).
    transposed: bool = False
    dilation: int = 1


@record
class Layer:
    """Base of every layer type. A registered type must define `output_shape`, `working`,
    `field_window` and `counts` itself or inherit them from a base other than this one (such
    as `ElementWise`): `register` refuses it otherwise. Weights, biases, buffers, MACs, saved
    tensors and scratch default to none, which is what most types have."""

    kind: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    shorthand: ClassVar[str | None] = None  # the argument a scalar value sets (`linear: 4096`)
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    # True where PyTorch returns a view of (or the very) input tensor: no new activation storage
    # (`view_strides` says which view, or that PyTorch copies instead).
    aliases_input: ClassVar[bool] = False
    copies_in_training: ClassVar[bool] = False  # an alias at inference that is a new tensor in training
    # How PyTorch lays out a new output (cnncalc/layers/layout.py): its strides decide where a later
    # flatten or norm copies, and so what a training step keeps.
    layout: ClassVar[MemoryFormat] = MemoryFormat.CONTIGUOUS
    # Keeps for backward its input made contiguous in its own output's layout (group and instance
    # norm call .contiguous() first): where the input is not, the copy is new memory.
    keeps_dense_input: ClassVar[bool] = False
    # True for an element-wise activation, which PyTorch can compute in its input's storage
    # (torchvision's ReLU(inplace=True)): the lecture tables and Keras show it as part of the row
    # that made its input, and `--style lecture` folds it there (as it folds views).
    in_place: ClassVar[bool] = False
    # Runs in 16 bits under fp16/bf16 autocast on 16-bit copies of its weights, which autocast's
    # cache holds to the end of the forward pass (conv, linear: CUDA's and the CPU's autocast lists).
    autocast: ClassVar[bool] = False
    # The tensor its backward formula reads ("input", "output" or None); `saved` adds any others.
    keeps: ClassVar[str | None] = None
    # What each counting convention (`cnncalc flops --convention`) makes of this type: `rules(...)`.
    counts: ClassVar[Mapping[Convention, Rule]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A type without a docstring gets its summary as one (help and `cnncalc layers` read it).
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("__doc__") is None:
            cls.__doc__ = cls.summary or cls.__name__

    # ----- what every type must answer (register checks) -----

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        raise NotImplementedError(f"{self.kind} does not define output_shape")

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        """The arithmetic behind this layer's numbers, filled in (`--explain`, `cnncalc conv`)."""
        raise NotImplementedError(f"{self.kind} does not define working")

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        """How this layer moves the receptive field, one step per spatial axis of its output.

        None: the layer keeps positions as they are (element-wise layers, merges). An empty list:
        every output reads the whole input (flatten, linear).
        """
        raise NotImplementedError(f"{self.kind} does not define field_window")

    # ----- defaults that hold for most types -----

    def weights(self, inputs: Sequence[Shape]) -> int:
        return 0

    def biases(self, inputs: Sequence[Shape]) -> int:
        return 0

    def buffers(self, inputs: Sequence[Shape]) -> int:
        return 0

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        return 0

    def count(self, convention: Convention, inputs: Sequence[Shape], output: Shape) -> int | float:
        """What `convention`'s tool counts for this layer, per sample (before the tool's own scale)."""
        return self.counts[convention](self, inputs, output)

    def fit_warnings(self, inputs: Sequence[Shape]) -> list[str]:
        """Axes where the stride does not tile the (padded) input: the notes' "doesn't fit"."""
        return []

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        """What a training step keeps of this layer for backward: by default the tensor `keeps` names."""
        return Saved(input=self.keeps == "input", output=self.keeps == "output")

    def saved_for(
        self,
        inputs: Sequence[Shape],
        output: Shape,
        strides: Sequence[Strides],
        batch: int = 1,
        grads: Sequence[bool] | None = None,
    ) -> Saved:
        """`saved` for inputs laid out with `strides` (whole tensors of `batch` samples, batch axis
        first), each needing a gradient or not (`grads`; None: all do), for a type whose kernel, and
        so what it keeps, PyTorch picks by layout (attention)."""
        return self.saved(inputs, output)

    def output_strides(
        self, output: Shape, inputs: Sequence[tuple[Shape, Strides]], grads: Sequence[bool]
    ) -> Strides | None:
        """The strides of a new output of `output` (the whole tensor, batch axis first) for inputs
        of these shapes and strides, each needing a gradient or not, where the kernel PyTorch picks
        lays it out otherwise than `layout` says (attention's fused CPU kernel: like q); else None."""
        return None

    def scratch(self, inputs: Sequence[Shape], output: Shape) -> int:
        """Activation elements per sample that PyTorch holds while running this layer at inference,
        beyond its inputs and its output (temporaries of composite operations)."""
        return 0

    def layout_for(self, shape: Shape) -> MemoryFormat:
        """The layout of this layer's output for an input of `shape` (the whole tensor, batch axis
        first): its `layout`, unless the kernel PyTorch picks, and so the layout, depends on sizes."""
        return self.layout

    def allocated(self, shape: Shape, output: Shape) -> int:
        """Elements per sample of the storage PyTorch allocates for this layer's new output, for an
        input of `shape` (the whole tensor, batch axis first): the output's own, unless its kernel
        allocates more."""
        return prod(output)

    def keeps_a_copy(self, shape: Shape, strides: Strides) -> bool:
        """For a type that keeps its input for backward: whether what it keeps is a copy of its
        own (new memory) rather than the input's storage, for an input with `strides` (whole
        tensors, batch axis first). By default the copy `keeps_dense_input` describes."""
        return self.keeps_dense_input and not kept_as_is(self.layout, shape, strides)

    def view_strides(self, shape: Shape, strides: Strides, output: Shape) -> Strides | None:
        """For a type that `aliases_input`: the strides of the view it returns of an input with
        `strides` (whole tensors, batch axis first), or None where PyTorch copies instead. A slice
        or the very tensor (crops, pieces, identity) keeps its input's strides."""
        return strides

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        raise NotImplementedError(f"{self.kind} has no PyTorch module")

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        """For `cnncalc export`: a plain expression over the input variables (`args`, of shapes
        `inputs`) that stands for this row instead of a module (`a + b`, `x[:, :, 2:6]`), or None
        to write its module."""
        return None

    def parent_parameter(self, inputs: Sequence[Shape]) -> tuple[tuple[int, ...], float] | None:
        """For a row that PyTorch models hold as a bare parameter of the enclosing module, not as a
        module (ConvNeXt's layer scale): the parameter's shape and initial value. The bridge and
        export register it on the parent under the row's last name; the bridge runs the row's
        module on it, export writes `parent_expression`."""
        return None

    def held_buffers(self, inputs: Sequence[Shape]) -> list[tuple[str, str, bool]]:
        """For a row with a `parent_parameter`: the buffers the parent holds beside it, for `cnncalc export`:
        (name, PyTorch source of its value, persistent)."""
        return []

    def parent_expression(self, arg: str, parameter: str, buffers: Sequence[str] = ()) -> str:
        """For a row with a `parent_parameter`, for `cnncalc export`: the expression over the input
        variable `arg` and the parameter (`parameter`, as the source reads it), and the `held_buffers`
        (`buffers`, their references in order)."""
        return f"{arg} * {parameter}"


@record
class ElementWise(Layer):
    """A layer whose output has its input's shape, position for position: the receptive field
    passes through unchanged. Its working is this sentence unless the type says more."""

    layout = MemoryFormat.INPUT_ORDER  # TensorIterator writes it in its input's axis order

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        return inputs[0]

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        return ["output shape = input shape; no parameters"]

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return None


# What a registered type must define itself (or inherit from a base other than Layer).
REQUIRED = ("output_shape", "working", "field_window", "counts")


def missing_declarations(cls: type[Layer]) -> list[str]:
    """The members of REQUIRED that `cls` leaves to Layer (or, for `counts`, that miss a convention)."""
    missing = [name for name in REQUIRED if not any(name in base.__dict__ for base in cls.__mro__ if base is not Layer)]
    if "counts" not in missing and set(cls.counts) != set(Convention):
        missing.append("counts for " + ", ".join(sorted(c.value for c in set(Convention) - set(cls.counts))))
    return missing


REGISTRY: dict[str, type[Layer]] = {}
ALIASES: dict[str, str] = {}  # other spellings (PyTorch's class names) -> registered kind


def register(kind: str, *aliases: str) -> Callable[[type[Layer]], type[Layer]]:
    """Register a layer type under its YAML name (and other spellings); a name taken twice, or a
    type that leaves a REQUIRED member to the base, raises."""

    def decorate(cls: type[Layer]) -> type[Layer]:
        missing = missing_declarations(cls)
        if missing:
            raise TypeError(
                f"layer type {kind!r} ({cls.__name__}) leaves {', '.join(missing)} to the base Layer: "
                "define them, or derive from ElementWise if its output has its input's shape"
            )
        for name in (kind, *aliases):
            if name in REGISTRY or name in ALIASES:
                raise ValueError(f"layer type name {name!r} is registered twice")
        cls.kind = kind
        REGISTRY[kind] = cls
        for alias in aliases:
            ALIASES[alias] = kind
        return cls

    return decorate


def layer_type(name: str) -> type[Layer] | None:
    """The registered layer class for a YAML type name or alias, or None."""
    name = ALIASES.get(name, name)
    return REGISTRY.get(name)


# ----- reading arguments -------------------------------------------------------------------


def argument_names(cls: type[Layer]) -> dict[str, str]:
    """Every accepted key (canonical and alias) mapped to its canonical argument name."""
    return dict(_arguments(cls)[1])


_ARGUMENTS: dict[type, tuple[dict[str, Field[Any]], dict[str, str]]] = {}


def _arguments(cls: type[Layer]) -> tuple[dict[str, Field[Any]], dict[str, str]]:
    """`cls`'s arguments by name, and every accepted key mapped to its canonical name: worked out
    once per type (a spec builds hundreds of layers, and `fields` is not cheap)."""
    if cls in _ARGUMENTS:
        return _ARGUMENTS[cls]
    by_name: dict[str, Field[Any]] = {}
    names: dict[str, str] = {}
    for f in fields(cls):
        by_name[f.name] = f
        names[f.name] = f.name
        for alias in f.metadata.get("aliases", ()):
            names[alias] = f.name
    _ARGUMENTS[cls] = by_name, names
    return by_name, names


def build_layer(cls: type[Layer], args: Mapping[str, Any]) -> Layer:
    """Make a layer from its YAML arguments, checking each key and value; raises LayerError."""
    by_name, names = _arguments(cls)
    values: dict[str, Any] = {}
    for key, value in args.items():
        canonical = names.get(str(key))
        if canonical is None:
            raise LayerError(
                f"unknown argument '{key}' for {cls.kind}",
                received=key,
                expected="one of " + (", ".join(by_name) or "no arguments"),
                hint=did_you_mean(str(key), names),
            )
        if canonical in values:
            raise LayerError(f"argument '{canonical}' is given twice (as '{key}' and another spelling)", received=key)
        f = by_name[canonical]
        kind: ArgKind = f.metadata["kind"]
        choices: tuple[str, ...] = f.metadata.get("choices", ())
        try:
            values[canonical] = kind.convert(value, choices)
        except Refused as refused:
            expected = refused.expected or ("one of " + ", ".join(choices) if kind is ArgKind.CHOICE else kind.value)
            raise LayerError(
                f"bad value for '{canonical}' of {cls.kind}", received=refused.received_in(value), expected=expected
            ) from None
    if len(values) < len(by_name):
        for f in by_name.values():
            if f.name not in values and f.default is MISSING:
                example = _EXAMPLES.get(f.metadata["kind"], "")
                raise LayerError(
                    f"{cls.kind} needs '{f.name}'",
                    expected=f"{f.name}: {f.metadata['kind'].value}{example}",
                    hint=f.metadata.get("doc") or None,
                )
    return cls(**values)


_EXAMPLES = {ArgKind.POSITIVE: " (e.g. 64)", ArgKind.POSITIVE_AXES: " (e.g. 3 or [3, 3])"}


# ----- shared helpers ----------------------------------------------------------------------


def per_axis(value: int | tuple[int, ...], rank: int, name: str) -> tuple[int, ...]:
    """An int for every spatial axis, or a list with exactly one value per axis."""
    if isinstance(value, int):
        return (value,) * rank
    if len(value) != rank:
        raise LayerError(
            f"'{name}' has {len(value)} values but the input has {rank} spatial axes",
            received=list(value),
            expected=f"one value, or {rank} values",
        )
    return tuple(value)


def spatial_rank(shape: Shape, layer: str, at_least: int = 1) -> int:
    rank = len(shape) - 1
    if rank < at_least:
        raise LayerError(
            f"{layer} needs an input with spatial axes",
            received=f"input of shape {list(shape)}",
            expected=f"[C, ...] with at least {at_least} spatial axis",
            hint="is there a flatten or linear layer before it?",
        )
    if rank > 3:
        raise LayerError(f"{layer} supports 1 to 3 spatial axes", received=f"input of shape {list(shape)}")
    return rank


def axis_index(dim: int, shape: Shape, layer: str, new: int = 0) -> int:
    """A `dim` counted as PyTorch counts it on the whole tensor (the batch axis 0, channels 1,
    negative from the end), as a position in a per-sample `shape` (channels 0). `new`: axes the
    call adds (unsqueeze counts positions in its output). The batch axis is refused: a shape here
    is one sample's."""
    ndim = len(shape) + 1 + new
    if not -ndim <= dim < ndim:
        raise LayerError(
            f"{layer}'s dim {dim} is out of range for an input [N, {', '.join(map(str, shape))}]",
            received=dim,
            expected=f"-{ndim} to {ndim - 1} (PyTorch's numbering: 0 the batch, 1 the channels)",
        )
    index = dim % ndim
    if index == 0:
        raise LayerError(
            f"{layer} over the batch axis (dim {dim}) is not a per-sample layer",
            received=dim,
            expected="1 (the channels) or a later axis; axes are counted as PyTorch counts them, the batch axis 0",
        )
    return index - 1


def axis_list(dims: int | tuple[int, ...], shape: Shape, layer: str) -> list[int]:
    """`axis_index` of one axis or a list of them, each once."""
    found = [axis_index(d, shape, layer) for d in (dims if isinstance(dims, tuple) else (dims,))]
    if len(set(found)) != len(found):
        raise LayerError(f"{layer} names an axis twice", received=list(dims) if isinstance(dims, tuple) else dims)
    return found


def prod(values: Sequence[int]) -> int:
    return math.prod(values)


AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def group_axes(texts: Sequence[str]) -> list[str]:
    """One line per distinct text, prefixed by the axes it holds for: `H, W: ...`."""
    by_text: dict[str, list[str]] = {}
    for axis, text in zip(AXIS_NAMES[len(texts)], texts):
        by_text.setdefault(text, []).append(axis)
    return [f"{', '.join(axes)}: {text}" for text, axes in by_text.items()]


def times(values: Sequence[int]) -> str:
    return "*".join(str(v) for v in values)
