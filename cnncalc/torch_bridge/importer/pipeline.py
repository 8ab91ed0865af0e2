"""from_torch: trace, map, structure, write, then read the spec back and check every row."""

from __future__ import annotations

import re
from typing import Any, Sequence

import torch
from torch import nn

from ...analysis import analyze
from ...errors import CnncalcError, Where
from ...graph import OutputKind
from ...spec import parse_text
from ...spec.yaml_writer import to_yaml
from .. import parameter_counts
from .mapping import _Mapper
from .nodes import _Row
from .result import ImportedSpec, Shape, TorchImportError
from .structure import _Blocks, _render_items, _Shadowed, _Structurer
from .table import module_kind
from .trace import _trace

# ----- the import --------------------------------------------------------------------------


def from_torch(module: nn.Module, input_shape: Sequence[int], name: str | None = None) -> ImportedSpec:
    """The spec of a PyTorch model: traced with torch.fx on a zero input of `input_shape` (no batch axis).

    Every row of the result is checked against the traced module (output shape; weights, biases and
    buffers); an op cnncalc has no type for raises TorchImportError naming it, its module path and
    the line of the model's code.
    """
    shape = tuple(int(s) for s in input_shape)
    if not 1 <= len(shape) <= 4 or any(s < 1 for s in shape):
        raise TorchImportError(
            "the input shape must be 1 to 4 positive sizes, channels first, without the batch",
            received=list(input_shape),
            expected="e.g. (3, 224, 224)",
        )
    if not isinstance(module, nn.Module):
        raise TorchImportError("from_torch needs a torch.nn.Module", received=type(module).__name__)
    title = name or type(module).__name__
    if module_kind(module) is not None:  # a single layer: named after its class, as it has no path of its own
        from collections import OrderedDict

        module = nn.Sequential(
            OrderedDict([(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type(module).__name__).lower(), module)])
        )
    was_training = module.training
    module.eval()
    try:
        # a module built on the meta device (no memory, no arithmetic) is traced with a meta input
        device = next((p.device for p in module.parameters()), torch.device("cpu"))
        gm = _trace(module, torch.zeros(1, *shape, device=device), title)
        unread = False
        for node in gm.graph.nodes:
            if node.op == "call_method" and str(node.target).endswith("_") and not node.users:
                raise _Mapper(module, gm).fail(
                    node,
                    f"the in-place .{node.target}() changes a tensor that is read "
                    "afterwards under its old name; cnncalc follows results, not mutations",
                    hint=f"write x = x.{node.target}() (or x = x.{str(node.target)[:-1]}())",
                )
            unread = unread or (not node.users and node.op != "output")
        if unread:  # only a node nothing reads can be dead (fx's pass looks at every node: a tenth of a trace)
            gm.graph.eliminate_dead_code()
        forced: set[str] = set()  # nodes whose mapping the written spec did not hold to: traced instead
        while True:
            mapper = _Mapper(module, gm, forced)
            rows = mapper.run()
            held = mapper.counted
            unused = tuple(
                path
                for path, m in module.named_modules()
                if not list(m.children())
                and any(True for _ in m.parameters(recurse=False))
                and not any(id(p) in held for p in m.parameters(recurse=False))
            )
            failure: _Mismatch | None = None
            for nest, blocks in ((True, True), (True, False), (False, False)):
                for _ in range(len(rows)):
                    try:
                        return _write(module, rows, title, shape, nest, blocks, unused, mapper.returns, mapper.typename)
                    except _Shadowed as err:  # renamed where its name is cnncalc's own, then written again
                        if not _rename(module, rows, err.target):
                            failure = failure or _Mismatch(err.message)
                            break
                    except _Mismatch as err:
                        failure = failure or err
                        break
            assert failure is not None
            # a row cnncalc mapped but could not write back exactly: measured instead, never wrong
            culprit = next(
                (r for r in rows if r.node is not None and r.kind != "traced" and failure.names(r.name)), None
            )
            if culprit is None or culprit.node is None or culprit.node in forced:
                raise failure
            forced.add(culprit.node)
    finally:
        module.train(was_training)


def _rename(module: nn.Module, rows: list[_Row], target: int) -> bool:
    """Give row `target` a last name no other row has (`concat` -> `concat_1`), so that it can be
    read from anywhere; only a name cnncalc chose (a functional row's), never a module's."""
    row = rows[target]
    taken = {r.name for r in rows}
    if row.module is not None or row.piece is not None or any(r.name.startswith(row.name + ".") for r in rows):
        return False
    paths = {path for path, _ in module.named_modules()}
    if row.name in paths:
        return False
    scope, dot, base = row.name.rpartition(".")
    last = {name.rpartition(".")[2] for name in taken | paths}
    k = 1
    while f"{base}_{k}" in last:
        k += 1
    row.name = f"{scope}{dot}{base}_{k}"
    return True


class _Mismatch(TorchImportError):
    """The written spec does not compute what the traced model does (tried again with less structure)."""

    def names(self, row: str) -> bool:
        """Whether this failure is located at the row named `row`."""
        path = self.where.path if self.where is not None else None
        return bool(path) and (path == row or str(path).endswith(f" {row}"))


def _write(
    module: nn.Module,
    rows: list[_Row],
    title: str,
    shape: Shape,
    nest: bool,
    use_blocks: bool,
    unused: tuple[str, ...],
    returns: tuple[OutputKind, tuple[str, ...], tuple[int, ...]] | None = None,
    typename: str | None = None,
) -> ImportedSpec:
    structurer = _Structurer(module, rows, nest)
    items, _ = structurer.items(list(range(1, len(rows))), "", 0)
    blocks = _Blocks()
    if use_blocks:
        blocks.make(structurer.containers)
    data: dict[str, Any] = {"name": title, "input": list(shape)}
    if blocks.defs:
        data["blocks"] = blocks.defs
    data["layers"] = _render_items(items, blocks.defs, positional=True)
    if returns is not None:  # several tensors: the rows, by their full names, as the model returns them
        kind, keys, returned = returns
        names = [rows[i].name for i in returned]
        data["outputs"] = (
            dict(zip(keys, names))
            if kind is OutputKind.DICT
            else {"list": names}
            if kind is OutputKind.LIST
            else {"namedtuple": typename, "fields": dict(zip(keys, names))}
            if kind is OutputKind.NAMEDTUPLE
            else names
        )
    header = [
        f"{title}: imported by cnncalc from PyTorch (torch {torch.__version__.split('+')[0]}) at input {list(shape)};",
        "every row's output shape, weights, biases and buffers were checked against the traced model.",
    ]
    text = to_yaml(data, header)
    shown = f"<imported {title}>"
    try:
        graph = parse_text(text, file=shown)
        report = analyze(graph)
    except CnncalcError as err:
        raise _Mismatch(
            f"the spec written for {title} does not read back: {err.message}",
            where=err.where,
            received=err.received,
            expected=err.expected,
        ) from None
    by_name = {r.name: r for r in report.rows}
    expected_names = [r.name for r in rows]
    if [r.name for r in report.rows] != expected_names:
        raise _Mismatch(
            f"the spec written for {title} reorders or renames layers", received=[r.name for r in report.rows][:10]
        )
    wanted = (
        (returns[0], [(k, rows[i].name) for k, i in zip(returns[1], returns[2])])
        if returns is not None
        else (OutputKind.TENSOR, [(None, rows[-1].name)])
    )
    if (report.returns, [(o.key, o.layer) for o in report.outputs]) != wanted:
        raise _Mismatch(
            f"the spec written for {title} returns other rows than the model",
            received=[o.layer for o in report.outputs],
            expected=str([name for _, name in wanted[1]]),
        )
    for row in rows[1:]:
        got = by_name[row.name]
        if got.output_shape != row.shape:
            raise _Mismatch(
                f"cnncalc computes {list(got.output_shape)} for '{row.name}' but PyTorch gives {list(row.shape)}",
                where=Where(path=row.name),
            )
        theirs = row.counts or (parameter_counts(row.module) if row.module is not None else (0, 0, 0))
        if (got.weights, got.biases, got.buffers) != theirs:
            raise _Mismatch(
                f"cnncalc counts (weights, biases, buffers) = {(got.weights, got.biases, got.buffers)} for "
                f"'{row.name}' but PyTorch has {theirs}",
                where=Where(path=row.name),
            )
    return ImportedSpec(data=_plain(data), yaml=text, graph=graph, unused=unused)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
