"""What the traced model returns, as the spec's outputs: one tensor, or a tuple, list, dict or
namedtuple of rows; and the one message for a return cnncalc cannot write. Functions of the mapper
(mapping._Mapper binds each under its name)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import fx

from ...errors import NOTHING
from ...graph import OutputKind
from .nodes import _described_value, _makes_namedtuple, _Piece
from .result import TorchImportError
from .trace import RETURNS, forward_where

if TYPE_CHECKING:
    from .mapping import _Mapper


def output(self: _Mapper, node: fx.Node) -> None:
    value: Any
    (value,) = node.args
    if _makes_namedtuple(value):  # `return Features(c3, p4)`: fx records the class's call as a node
        value = value.target(*value.args, **value.kwargs)
    if isinstance(value, dict) and len(value) == 1:  # {"out": x}, as torchvision's segmentation models
        (value,) = value.values()
    if isinstance(value, (tuple, list)) and len(value) == 1 and not hasattr(type(value), "_fields"):
        (value,) = value  # `return (x,)`: one tensor (a NamedTuple of one field stays one)
    if isinstance(value, fx.Node) and value in self.pieces:  # `return torch.split(x, 2)`: its pieces
        value = tuple(_Piece(value, k) for k in range(len(self.pieces[value])))
    if isinstance(value, (tuple, list, dict)):  # several tensors: the spec's `outputs:`
        self.returns = self.several(node, value)
        return
    if isinstance(value, fx.Node) and value in self.region:
        raise self.fail(
            node,
            "the output changes the batch axis (traced at batch 1, it is not one sample's); "
            "cnncalc's rows are per sample",
            received=value.name,
        )
    if not isinstance(value, fx.Node) or value not in self.of_node or self.of_node[value] == 0:
        raise self.returned_error(value)  # not a tensor, or the input itself (as `several` refuses it)
    if self.of_node[value] != len(self.rows) - 1:
        # rows computed after the output (the other pieces of a split, a branch that goes
        # nowhere): an identity row at the end reads the output, as the spec's last row must
        source = self.of_node[value]
        self.add_row(None, self.fresh("output"), "identity", {}, [source], self.rows[source].shape)


def several(
    self: _Mapper, node: fx.Node, value: tuple | list | dict
) -> tuple[OutputKind, tuple[str, ...], tuple[int, ...]]:
    """A model that returns a tuple, list or dict of tensors (a backbone's feature maps): the
    row of each, in order, and how they are returned."""
    kind = (
        OutputKind.DICT
        if isinstance(value, dict)
        else OutputKind.LIST
        if isinstance(value, list)
        else OutputKind.NAMEDTUPLE
        if isinstance(getattr(type(value), "_fields", None), tuple)
        else OutputKind.TUPLE
    )
    returned = value
    if kind is OutputKind.NAMEDTUPLE:  # its name and fields; the class itself stays the model's
        self.typename = type(value).__name__
        value = dict(zip(type(value)._fields, value))  # type: ignore[union-attr]
    pairs = list(value.items()) if isinstance(value, dict) else [(str(k), v) for k, v in enumerate(value)]
    rows: list[int] = []
    for key, item in pairs:
        piece = self.pieces[item.of][item.index] if isinstance(item, _Piece) else None
        if piece is not None:
            rows.append(piece)
        elif isinstance(item, fx.Node) and item in self.region:
            raise self.fail(
                node,
                f"output {key!r} changes the batch axis (traced at batch 1, it is not one sample's); "
                "cnncalc's rows are per sample",
                received=item.name,
            )
        elif isinstance(item, fx.Node) and item in self.of_node and self.of_node[item] != 0:
            rows.append(self.of_node[item])
        else:
            raise self.returned_error(returned)
    if kind in (OutputKind.DICT, OutputKind.NAMEDTUPLE) and not all(isinstance(k, str) and k for k in value):
        raise self.returned_error(returned)
    return kind, tuple(str(k) for k, _ in pairs), tuple(rows)


def returned_error(self: _Mapper, value: Any) -> TorchImportError:
    """What the model returns is not a tensor or a flat tuple, list or dict (with text keys) of them."""
    return TorchImportError(
        f"forward returns {_described_value(value)}; cnncalc imports models that "
        "return a tensor, or a tuple, list or dict of tensors computed from the input",
        where=forward_where(self.root),
        received=repr(value) if value is None or isinstance(value, (bool, int, float, str)) else NOTHING,
        expected=RETURNS,
    )
