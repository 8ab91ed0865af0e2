"""The output of `cnncalc sweep`: one row per input size, batch and dtype, with what each network
returns.
"""

from __future__ import annotations

from typing import Any

from ..analysis.sweep import SweepRow
from ..graph import OutputKind
from ..render import Abbreviated, Bytes, Output, ShapeOrder, Table, shape_text

# ----- sweep -----------------------------------------------------------------------------------


def sweep_output(name: str, rows: list[SweepRow], layout: ShapeOrder) -> Output:
    header = (
        "Input",
        "Batch",
        "DType",
        "Params",
        "MACs",
        "Sum of outputs",
        "Inference peak",
        "Training peak",
        "Output",
        "Note",
    )
    body: list[tuple[Any, ...]] = []
    for r in rows:
        if r.ok:
            body.append(
                (
                    r.input_shape,
                    r.batch,
                    r.dtype.value,
                    Abbreviated(r.params or 0),
                    Abbreviated(r.macs or 0),
                    Bytes(r.activation_bytes or 0),
                    Bytes(r.inference_bytes or 0),
                    Bytes(r.training_bytes or 0),
                    _returned_cell(r, layout) if r.outputs else r.output_shape,
                    "",
                )
            )
        else:
            body.append(
                (
                    r.input_shape,
                    r.batch,
                    r.dtype.value,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    "does not fit: " + "; ".join((r.error or "").split("; ")[:2]),
                )
            )
    failed = sum(not r.ok for r in rows)
    several = next((r for r in rows if r.outputs), None)
    table = Table(
        header=header,
        rows=tuple(body),
        numeric=(False, True, False, True, True, True, True, True, False, False),
        title=f"{name}: {len(rows)} combinations (input and output {layout.value})",
        footer=(
            "params and MACs per sample; bytes for the batch: the sum of every row's output (in-place activations "
            "and views included: more than is ever held at once, so it can exceed the peaks), predicted peaks "
            "(what is held at once: inference; training step with SGD and momentum) as in docs/conventions.md",
            *(
                [
                    f"{failed} of {len(rows)} combinations do not fit the network (Note says why; JSON has the whole message)"
                ]
                if failed
                else []
            ),
            *(
                [
                    f"Output: the {len(several.outputs)} tensors the network returns (its outputs:, a "
                    f"{several.returns.value}), bracketed as Python prints them: (a, b) a tuple, [a, b] a list, "
                    "{key: a} a dict, (field=a) a namedtuple"
                ]
                if several is not None
                else []
            ),
        ),
        layout=layout,
    )
    data = {
        "name": name,
        "rows": [
            {
                "input": list(r.input_shape),
                "batch": r.batch,
                "dtype": r.dtype.value,
                "fits": r.ok,
                "params": r.params,
                "macs": r.macs,
                "activation_bytes": r.activation_bytes,
                "inference_bytes": r.inference_bytes,
                "training_bytes": r.training_bytes,
                "output_shape": list(r.output_shape) if r.output_shape else None,
                "error": r.error,
                **(
                    {
                        "returns": r.returns.value,
                        "outputs": [
                            {"key": o.key, "layer": o.layer, "output_shape": list(o.output_shape)} for o in r.outputs
                        ],
                    }
                    if r.outputs
                    else {}
                ),
            }
            for r in rows
        ],
    }
    return Output("sweep", (table,), data=data)


def _returned_cell(row: SweepRow, layout: ShapeOrder) -> str:
    """Several returned tensors in one cell, bracketed as Python prints the structure:
    `(16x16x16, 32x8x8)`, `[16x16x16, 32x8x8]`, `{p1: 16x16x16, p2: 32x8x8}`, a namedtuple's
    `(p1=16x16x16, p2=32x8x8)`."""
    shapes = [shape_text(o.output_shape, layout) for o in row.outputs]
    if row.returns is OutputKind.DICT:
        return "{" + ", ".join(f"{o.key}: {shape}" for o, shape in zip(row.outputs, shapes)) + "}"
    if row.returns is OutputKind.NAMEDTUPLE:
        return "(" + ", ".join(f"{o.key}={shape}" for o, shape in zip(row.outputs, shapes)) + ")"
    inner = ", ".join(shapes)
    return f"[{inner}]" if row.returns is OutputKind.LIST else f"({inner})"
