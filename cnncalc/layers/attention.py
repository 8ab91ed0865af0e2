"""Attention as PyTorch's fused op: F.scaled_dot_product_attention of three inputs (issue 18).

timm's attention blocks (PVT-v2, Twins, NesT, DaViT, MaxViT, ...) call it on q, k, v of shape
[N, heads, n, d] after `q, k, v = qkv.unbind(0)`; the spec reads the three rows by name.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, FieldStep, Layer, Saved, Shape, TorchModule, arg, prod, register
from .counting import nothing, rules
from .layout import MemoryFormat, Strides, contiguous, view


@register("attention", "scaled_dot_product_attention")
@record
class Attention(Layer):
    summary = (
        "softmax(q @ k^T * scale) @ v of three inputs q [..., n, d], k [..., m, d], v [..., m, dv] (the "
        "leading axes, heads, the same), as F.scaled_dot_product_attention (is_causal: the upper triangle "
        "masked); no parameters"
    )
    layout = MemoryFormat.CONTIGUOUS
    min_inputs = 3
    max_inputs = 3
    # FlopCounterMode's sdpa formula (and thop's F.scaled_dot_product_attention counter): the two
    # products, causal or not; fvcore has no handle for aten::scaled_dot_product_attention, ptflops
    # does not patch it, torchinfo counts modules with parameters
    counts = rules(fvcore=nothing, ptflops=nothing, torchinfo=nothing)

    scale: float | None = arg(None, kind=ArgKind.OPTIONAL_NUMBER, doc="the factor of q @ k^T; null: 1 / sqrt(d)")
    is_causal: bool = arg(False, kind=ArgKind.BOOL, doc="mask the scores above the diagonal (position i sees j <= i)")

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        q, k, v = inputs
        written = f"q {list(q)}, k {list(k)}, v {list(v)}"
        if not 2 <= len(q) == len(k) == len(v):
            # whole tensors of different ranks: PyTorch would align the batch axis with another
            raise LayerError(
                "attention needs q, k and v of one rank, at least [positions, features]",
                received=written,
                expected="[..., n, d], [..., m, d], [..., m, dv]",
            )
        if q[:-2] != k[:-2] or k[:-2] != v[:-2]:
            raise LayerError(
                "attention needs the same leading axes (heads) on q, k and v (broadcasting them, "
                "grouped heads, is not followed)",
                received=written,
                expected=f"[{', '.join(map(str, q[:-2]))}, ...] on each",
            )
        if q[-1] != k[-1] or k[-2] != v[-2]:
            raise LayerError(
                "attention needs q and k of one feature size and k and v of one length",
                received=written,
                expected=f"k [..., m, {q[-1]}] and v [..., m, dv]",
            )
        # [..., n, dv] = softmax([..., n, d] @ [..., d, m]) @ [..., m, dv]
        return (*q[:-1], v[-1])

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        q, k, v = inputs
        # q @ k^T: lead*n*m outputs of d MACs; attn @ v: lead*n*dv outputs of m MACs (causal or not,
        # as FlopCounterMode's sdpa_flop_count counts them)
        return prod(q[:-2]) * q[-2] * k[-2] * (q[-1] + v[-1])

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        return self.saved_for(inputs, output, [contiguous((1, *s)) for s in inputs])

    def saved_for(self, inputs: Sequence[Shape], output: Shape, strides: Sequence[Strides]) -> Saved:
        q, k, v = inputs
        lead, n, m, d = prod(q[:-2]), q[-2], k[-2], q[-1]
        if len(q) == 3 and d == v[-1] and all(s[-1] == 1 for s in strides):
            # CPU's fused kernel (4-D, one feature size, the last axis contiguous): it keeps q, k,
            # v, its output and the log-sum-exp of the softmax [h, n] (fp32)
            return Saved(input=True, output=True, elements=lead * n)
        # the unfused path (aten._scaled_dot_product_attention_math): q and k^T scaled (new
        # tensors), the softmax [.., n, m], and v, as bmm reads it: a copy where its leading axes
        # do not fold into one without (matmul's reshape)
        own = lead * (n * d + m * d + n * m)
        if view((1, *v), strides[2], (prod(v[:-2]), m, v[-1])) is None:
            return Saved(elements=own + prod(v))
        return Saved(input=True, kept_inputs=(2,), elements=own)

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return []  # every output reads every position of k and v

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule(
            "ScaledDotProductAttention",
            {"scale": self.scale, "is_causal": self.is_causal},
            defaults={"scale": None, "is_causal": False},
        )

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        extra = (f", scale={self.scale}" if self.scale is not None else "") + (
            ", is_causal=True" if self.is_causal else ""
        )
        return f"torch.nn.functional.scaled_dot_product_attention({', '.join(args)}{extra})"

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        q, k, v = inputs
        h = prod(q[:-2])
        return [
            f"softmax(q @ k^T) @ v: q {list(q)}, k {list(k)}, v {list(v)} -> {list(output)} "
            f"(heads h = {h}, n = {q[-2]}, m = {k[-2]}, d = {q[-1]}, dv = {v[-1]})",
            f"MACs = h x n x m x (d + dv) = {h} x {q[-2]} x {k[-2]} x ({q[-1]} + {v[-1]}) = "
            f"{self.macs(inputs, output):,}; no parameters",
        ]
