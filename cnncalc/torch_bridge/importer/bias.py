"""Mapping of attention biases gathered from a table by an index buffer (a `bias_table` row, issue 18).

LeViT, EfficientFormer, EfficientViT (MSRA) and TinyViT add `self.attention_biases[:, self.attention_bias_idxs]`
to their attention logits; timm's RelPosBias (GCViT, MaxViT) adds `table[index].view(n, m, -1).permute(2, 0, 1)
.unsqueeze(0)`. In the traced graph that is a chain of nodes that reads one parameter and one integer buffer
and no tensor of the input. The mapper skips the chain (`is_gathered`) and the add that reads it becomes one
`bias_table` row, named after the table. Which entry each bias element reads is found by running the chain on
a table numbered 0, 1, 2, ... and must equal what cnncalc's own index formula gives for some grid, else the
add stays a traced row: never a wrong number.
"""

from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING, Any

import torch
from torch import fx

from ...errors import CnncalcError
from ...layers import REGISTRY, build_layer
from ...layers.bias_table import OFFSETS, index

if TYPE_CHECKING:
    from .mapping import _Mapper


def reads(value: Any) -> list[fx.Node] | None:
    """The get_attr nodes a chain of constant ops reads (no input tensor), or None where `value` is no such
    chain ending in a gather of one parameter by one integer buffer."""
    if not isinstance(value, fx.Node) or value.op == "get_attr" or not _constant(value):
        return None
    seen: set[fx.Node] = set()
    attrs: list[fx.Node] = []
    todo = [value]
    gathers = False
    while todo:  # only constant nodes from here: a short chain back to its get_attr nodes
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        if node.op == "get_attr":
            attrs.append(node)
            continue
        if node.op == "call_function" and getattr(node.target, "__name__", "") == "getitem":
            gathers = gathers or any(a.op == "get_attr" for a in _nodes(node.args[1:]))
        todo.extend(_nodes((node.args, node.kwargs)))
    return attrs if gathers and len(attrs) == 2 else None


_CONSTANT: weakref.WeakKeyDictionary[fx.Graph, set[fx.Node]] = weakref.WeakKeyDictionary()


def _constant(node: fx.Node) -> bool:
    """Whether `node` computes from parameters, buffers and constants only (no input tensor, no module
    call): found for the whole graph in one pass, once (the walk asks of every node)."""
    graph = node.graph
    if graph not in _CONSTANT:
        found: set[fx.Node] = set()
        for n in graph.nodes:
            if n.op == "get_attr" or (
                n.op in ("call_function", "call_method") and all(a in found for a in _nodes((n.args, n.kwargs)))
            ):
                found.add(n)
        _CONSTANT[graph] = found
    return node in _CONSTANT[graph]


def tensors(gm: fx.GraphModule, value: fx.Node) -> list[tuple[str, torch.Tensor]]:
    """The table and index a gathered chain reads, by name (for a traced row that holds them)."""
    return [
        (str(a.target), gm.get_parameter(str(a.target)) if is_parameter(gm, a) else gm.get_buffer(str(a.target)))
        for a in reads(value) or ()
    ]


def is_gathered(node: fx.Node) -> bool:
    """A node of a gathered-bias chain: written by the row that adds it."""
    return reads(node) is not None


def _nodes(value: Any) -> list[fx.Node]:
    found: list[fx.Node] = []
    fx.node.map_arg(value, lambda n: found.append(n) or n)  # type: ignore[func-returns-value]
    return found


def _evaluate(value: fx.Node, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """The chain's result with the get_attr nodes read from `tensors` (by target)."""
    done: dict[fx.Node, Any] = {}

    def run(node: fx.Node) -> Any:
        if node in done:
            return done[node]
        if node.op == "get_attr":
            result = tensors[str(node.target)]
        else:
            args = fx.node.map_arg(node.args, run)
            kwargs = fx.node.map_arg(node.kwargs, run)
            if node.op == "call_method":
                result = getattr(args[0], str(node.target))(*args[1:], **kwargs)
            else:
                result = node.target(*args, **kwargs)  # type: ignore[operator]
        done[node] = result
        return result

    return run(value)


def _layouts(table: tuple[int, ...], bias: tuple[int, ...]) -> list[dict[str, Any]]:
    """Every bias_table setting whose table and bias have these shapes (grid split, stride)."""
    heads, queries, keys = bias
    found: list[dict[str, Any]] = []
    for height in (h for h in range(1, keys + 1) if keys % h == 0):
        width = keys // height
        if table == (heads, keys):
            for stride in range(1, max(height, width) + 1):
                if math.ceil(height / stride) * math.ceil(width / stride) == queries:
                    found.append({"offsets": "absolute", "grid": [height, width], "stride": stride})
        if table == ((2 * height - 1) * (2 * width - 1), heads) and queries == keys:
            found.append({"offsets": "signed", "grid": [height, width], "stride": 1})
    return found


def _numbered(setting: dict[str, Any], heads: int) -> torch.Tensor:
    """The flat table entry each bias element [heads, n, m] reads under `setting`."""
    idx = torch.tensor(index(setting["grid"], setting["stride"], setting["offsets"]), dtype=torch.float64)
    h = torch.arange(heads, dtype=torch.float64).view(-1, 1, 1)
    if setting["offsets"] == "absolute":  # table [heads, T]: entry h * T + idx
        return h * (setting["grid"][0] * setting["grid"][1]) + idx
    return idx * heads + h  # table [T, heads]: entry idx * heads + h


def rule_bias(m: _Mapper, node: fx.Node, tensor: Any, chain: fx.Node, what: str) -> None:
    """`logits + table[:, idx]` (and RelPosBias's view, permute, unsqueeze of `table[idx]`): a bias_table row."""
    source = m.tensor_input(node, tensor, what)
    inner, head = chain.args[:2] if _is_head(chain) else (None, None)
    if isinstance(inner, fx.Node) and isinstance(head, int):
        # EfficientViT's cascaded heads: logits [n, m] + attn_bias[head], attn_bias the gathered [heads, n, m]:
        # the bias a row of its own (once), its head a slice and a squeeze of axis 1 (PyTorch's axis 0:
        # the bias has no batch axis), then an add of the two
        if inner not in m.of_node:
            m.of_node[inner] = _row(m, node, inner, source, what, add=False)
        heads = m.rows[m.of_node[inner]].shape[-3]
        k = head % heads
        cut = _plain_row(m, node, "slice", {"dim": [1], "begin": [k], "end": [k + 1]}, m.of_node[inner], "slice")
        one = _plain_row(m, node, "squeeze", {"dim": 1}, cut, "squeeze")
        m.checked_row(node, "add", {}, [source, one], "add")
        return
    _row(m, node, chain, source, what, add=True)


def _is_head(chain: fx.Node) -> bool:
    """`attn_bias[k]`: one head of a gathered bias that is itself a row's (read by several heads)."""
    return (
        chain.op == "call_function"
        and getattr(chain.target, "__name__", "") == "getitem"
        and isinstance(chain.args[1], int)
        and isinstance(chain.args[0], fx.Node)
        and is_gathered(chain.args[0])
    )


def _plain_row(m: _Mapper, node: fx.Node, kind: str, args: dict[str, Any], source: int, base: str) -> int:
    """A row of `kind` on row `source`, its shape cnncalc's (a step inside a mapping, not the node's output)."""
    try:
        shape = build_layer(REGISTRY[kind], args).output_shape([m.rows[source].shape])
    except CnncalcError as err:
        raise m.unmapped(node, f"cnncalc's {kind} cannot express this step: {err.message}") from None
    return m.add_row(None, m.functional_name(node, base), kind, args, [source], shape)


def mask_row(m: _Mapper, node: fx.Node, chain: fx.Node, anchor: int, what: str) -> int:
    """The gathered bias alone, as a row (`add: false`, placed after the row `anchor`): the attn_mask of
    F.scaled_dot_product_attention (TinyViT, MaxViT), read by the attention row as its fourth input."""
    return _row(m, node, chain, anchor, what, add=False)


def _row(m: _Mapper, node: fx.Node, chain: fx.Node, source: int, what: str, add: bool) -> int:
    attrs = reads(chain)
    assert attrs is not None, "called for a gathered chain only"
    params = [a for a in attrs if _parameter(m, a) is not None]
    buffers = [a for a in attrs if a not in params]
    if len(params) != 1 or len(buffers) != 1:
        raise m.unmapped(node, f"{what} of a gathered tensor that is not one parameter indexed by one buffer")
    table_at, index_at = str(params[0].target), str(buffers[0].target)
    table = _parameter(m, params[0])
    assert table is not None
    idx = m.gm.get_buffer(index_at)
    path, _, index_name = index_at.rpartition(".")
    if path != table_at.rpartition(".")[0] or idx.dtype not in (torch.int64, torch.int32):
        raise m.unmapped(node, f"{what} of a table indexed by a buffer of another module or type", received=index_at)
    if id(table) in m.counted or id(idx) in m.counted or table_at in m.taken:
        raise m.unmapped(node, f"{what} reads the table '{table_at}' a second time; a bias_table row holds it once")
    if table.device.type == "meta" or idx.device.type == "meta":
        raise m.unmapped(node, f"{what}: a table on the meta device has no index to check")
    numbered = torch.arange(table.numel(), dtype=torch.float64).view(table.shape)
    try:
        read = _evaluate(chain, {table_at: numbered, index_at: idx})
    except Exception as err:  # noqa: BLE001 - a chain cnncalc cannot re-run: traced
        raise m.unmapped(node, f"{what}: the gathered bias does not run again ({err})") from None
    while read.dim() > 3 and read.shape[0] == 1:
        read = read[0]
    if read.dim() != 3:
        raise m.unmapped(node, f"{what} of a gathered bias of shape {list(read.shape)}, not [heads, n, m]")
    bias = tuple(read.shape)
    for setting in _layouts(tuple(table.shape), bias):
        if torch.equal(_numbered(setting, bias[0]), read):
            break
    else:
        raise m.unmapped(
            node,
            f"{what} of a table gathered in an order cnncalc's bias_table does not know "
            f"(offsets {', '.join(OFFSETS)} on a grid)",
            received=f"table {list(table.shape)} -> bias {list(bias)}",
        )
    owner = m.owner(path)
    args: dict[str, Any] = {"heads": bias[0], **setting}
    if index_name != "attention_bias_idxs":
        args["index_name"] = index_name
    if idx.dim() == 1:
        args["flat"] = True
    if not add:
        args["add"] = False
    if index_name not in owner._non_persistent_buffers_set:
        args["persistent"] = True
    args = {
        k: v for k, v in args.items() if not (k == "stride" and v == 1) and not (k == "offsets" and v == OFFSETS[0])
    }
    try:
        layer = build_layer(REGISTRY["bias_table"], args)
        shapes = [m.rows[source].shape]
        shape = layer.output_shape(shapes)
        counts = (layer.weights(shapes), layer.biases(shapes), layer.buffers(shapes))
    except CnncalcError as err:
        raise m.unmapped(node, f"cnncalc's bias_table row cannot express this {what}: {err.message}") from None
    if shape != (m.shape(node) if add else (1,) * (len(m.rows[source].shape) - 3) + bias) or counts != (
        table.numel(),
        0,
        idx.numel(),
    ):
        raise m.unmapped(node, f"cnncalc's bias_table row gives {list(shape)} and {counts}, PyTorch otherwise")
    m.taken.add(table_at)
    row = m.add_row(node if add else None, table_at, "bias_table", args, [source], shape, counts=counts)
    m.counted.update((id(table), id(idx)))
    return row


def _parameter(m: _Mapper, attr: fx.Node) -> torch.nn.Parameter | None:
    return m.gm.get_parameter(str(attr.target)) if is_parameter(m.gm, attr) else None


def is_parameter(gm: fx.GraphModule, attr: fx.Node) -> bool:
    """Whether the get_attr node `attr` reads a parameter (else a buffer or a constant)."""
    try:
        gm.get_parameter(str(attr.target))
    except AttributeError:
        return False
    return True
