"""Attention as PyTorch's fused op: F.scaled_dot_product_attention of three inputs (issue 18).

timm's attention blocks (PVT-v2, Twins, NesT, DaViT, MaxViT, ...) call it on q, k, v of shape
[N, heads, n, d] after `q, k, v = qkv.unbind(0)`; the spec reads the three rows by name.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import LayerError
from ..layout import Layout
from ..records import record
from .base import ArgKind, FieldStep, Layer, Saved, Shape, TorchModule, arg, register
from .counting import nothing, rules


@register("attention", "scaled_dot_product_attention")
@record
class Attention(Layer):
    summary = ("softmax(q @ k^T * scale) @ v of three inputs q [heads, n, d], k [heads, m, d], v [heads, m, d], as "
               "F.scaled_dot_product_attention (is_causal: the upper triangle masked); no parameters")  # fmt: skip
    layout = Layout.CONTIGUOUS
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
        if not len(q) == len(k) == len(v) == 3:
            # the rank CPU's fused kernel takes (whole tensors [N, heads, n, d]); other ranks run
            # PyTorch's unfused path, whose saved tensors differ
            raise LayerError("attention needs q, k and v of three axes each, [heads, positions, features]",
                             received=written, expected="[h, n, d], [h, m, d], [h, m, d]")  # fmt: skip
        if q[0] != k[0] or k[0] != v[0]:
            raise LayerError("attention needs the same heads on q, k and v (grouped heads are not followed)",
                             received=written, expected=f"[{q[0]}, n, d] for each")  # fmt: skip
        if q[2] != k[2] or k[1] != v[1]:
            raise LayerError("attention needs q and k of one feature size and k and v of one length",
                             received=written, expected=f"k [{q[0]}, m, {q[2]}] and v [{q[0]}, m, dv]")  # fmt: skip
        if v[2] != q[2]:
            raise LayerError("attention needs v of q's feature size (PyTorch's fused CPU kernel; another runs otherwise)",
                             received=written, expected=f"v [{v[0]}, {v[1]}, {q[2]}]")  # fmt: skip
        if self.scale is not None and self.scale <= 0:
            raise LayerError("attention's scale must be positive", received=self.scale)
        # [h, n, dv] = softmax([h, n, d] @ [h, d, m]) @ [h, m, dv]
        return (q[0], q[1], v[2])

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        q, k, v = inputs
        # q @ k^T: h*n*m outputs of d MACs; attn @ v: h*n*dv outputs of m MACs (causal or not, as
        # FlopCounterMode's sdpa_flop_count counts them)
        return q[0] * q[1] * k[1] * (q[2] + v[2])

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        # CPU's fused kernel (inputs whose last axis is contiguous, as timm's q, k, v are) keeps q, k, v, its
        # output and the log-sum-exp of the softmax [h, n] (fp32); the unfused path (another last
        # stride) keeps q and k scaled, the softmax and v instead, which this does not follow
        q = inputs[0]
        return Saved(input=True, output=True, elements=q[0] * q[1])

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return []  # every output reads every position of k and v

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule("ScaledDotProductAttention", {"scale": self.scale, "is_causal": self.is_causal},
                           defaults={"scale": None, "is_causal": False})  # fmt: skip

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        extra = (f", scale={self.scale}" if self.scale is not None else "") + (
            ", is_causal=True" if self.is_causal else ""
        )
        return f"torch.nn.functional.scaled_dot_product_attention({', '.join(args)}{extra})"

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        q, k, v = inputs
        return [
            f"softmax(q @ k^T) @ v: q {list(q)}, k {list(k)}, v {list(v)} -> {list(output)} "
            f"(h = {q[0]}, n = {q[1]}, m = {k[1]}, d = {q[2]})",
            f"MACs = h x n x m x (d + dv) = {q[0]} x {q[1]} x {k[1]} x ({q[2]} + {v[2]}) = {self.macs(inputs, output):,}; "
            "no parameters",
        ]
