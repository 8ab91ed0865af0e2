"""Attention as PyTorch's fused op: F.scaled_dot_product_attention of three inputs, and a mask (issue 18).

timm's attention blocks (PVT-v2, Twins, NesT, DaViT, MaxViT, ...) call it on q, k, v of shape
[N, heads, n, d] after `q, k, v = qkv.unbind(0)`; the spec reads the three rows by name, and a
fourth, the additive mask (`attn_mask`, a relative position bias), where there is one. Multi-query
attention (MobileNetV4/V5: k and v of one head, [N, 1, m, d]) broadcasts k and v over q's heads;
grouped-query attention (`enable_gqa=True`) shares each of k and v's heads with a group of q's.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import LayerError
from ..records import record
from .base import ArgKind, FieldStep, Layer, Saved, Shape, TorchModule, arg, prod, register
from .counting import nothing, rules
from .layout import MemoryFormat, Strides, contiguous, view


def _dims(shape: Shape) -> str:
    return ", ".join(map(str, shape))


@register("attention", "scaled_dot_product_attention")
@record
class Attention(Layer):
    summary = (
        "softmax(q @ k^T * scale + mask) @ v of three inputs q [..., n, d], k [..., m, d], v [..., m, dv] "
        "and an optional fourth, the additive mask [..., n, m] (broadcast to the scores), as "
        "F.scaled_dot_product_attention; k and v may have one head where q has several (multi-query, "
        "broadcast), or fewer heads that divide q's with enable_gqa; is_causal: the upper triangle "
        "masked; no parameters"
    )
    layout = MemoryFormat.CONTIGUOUS
    min_inputs = 3
    max_inputs = 4
    # FlopCounterMode's sdpa formula (and thop's F.scaled_dot_product_attention counter): the two
    # products, causal or not, masked or not; fvcore has no handle for
    # aten::scaled_dot_product_attention, ptflops does not patch it, torchinfo counts modules with parameters
    counts = rules(fvcore=nothing, ptflops=nothing, torchinfo=nothing)

    scale: float | None = arg(None, kind=ArgKind.OPTIONAL_NUMBER, doc="the factor of q @ k^T; null: 1 / sqrt(d)")
    is_causal: bool = arg(False, kind=ArgKind.BOOL, doc="mask the scores above the diagonal (position i sees j <= i)")
    enable_gqa: bool = arg(
        False,
        kind=ArgKind.BOOL,
        doc="grouped heads: k and v have fewer heads (axis -3) than q, a number that divides q's; each "
        "of their heads serves q's heads in turn (repeat_interleave), as enable_gqa=True",
    )

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        q, k, v = inputs[:3]
        written = f"q {list(q)}, k {list(k)}, v {list(v)}"
        if not 2 <= len(q) == len(k) == len(v):
            # whole tensors of different ranks: PyTorch would align the batch axis with another
            raise LayerError(
                "attention needs q, k and v of one rank, at least [positions, features]",
                received=written,
                expected="[..., n, d], [..., m, d], [..., m, dv]",
            )
        if q[-1] != k[-1] or k[-2] != v[-2]:
            raise LayerError(
                "attention needs q and k of one feature size and k and v of one length",
                received=written,
                expected=f"k [..., m, {q[-1]}] and v [..., m, dv]",
            )
        grouped = self.enable_gqa and len(q) >= 3  # on 2-D samples axis -3 is the batch: nothing to group
        if grouped and (k[-3] != v[-3] or q[-3] % k[-3]):
            raise LayerError(
                "attention with enable_gqa needs k and v of one number of heads (axis -3) that divides q's",
                received=written,
                expected=f"k and v [..., h, m, d] with {q[-3]} % h == 0",
            )
        for name, other in (("k", k), ("v", v)):
            lead = [*other[:-3], 1, *other[-2:]] if grouped else list(other)  # the grouped axis checked above
            if any(a != b and a != 1 for a, b in zip(lead[:-2], q[:-2])):
                raise LayerError(
                    f"attention needs {name}'s leading axes (heads) to be q's, or 1 (broadcast: multi-query)",
                    received=written,
                    expected=f"{name} [{_dims(q[:-2])}, ...], or 1 on the axes it shares"
                    + ("" if grouped or len(q) < 3 else "; fewer heads that divide q's with enable_gqa: true"),
                )
        if len(inputs) == 4:
            mask, scores = inputs[3], (*q[:-1], k[-2])
            if self.is_causal:
                raise LayerError(
                    "attention takes a mask or is_causal, not both (PyTorch: 'Explicit attn_mask should not be "
                    "set when is_causal=True')",
                    received="a fourth input and is_causal: true",
                    expected="one of them",
                )
            if len(mask) != len(scores) or any(a != b and a != 1 for a, b in zip(mask, scores)):
                raise LayerError(
                    "attention's mask must broadcast to the scores q @ k^T (each axis theirs or 1, one rank)",
                    received=f"mask [N, {_dims(mask)}] with scores [N, {_dims(scores)}]",
                    expected=f"[N, {_dims(scores)}], or 1 on any axis",
                )
        # [..., n, dv] = softmax([..., n, d] @ [..., d, m] + mask) @ [..., m, dv], q's heads
        return (*q[:-1], v[-1])

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        q, k, v = inputs[:3]
        # q @ k^T: lead*n*m outputs of d MACs; attn @ v: lead*n*dv outputs of m MACs, lead q's heads
        # (k and v broadcast or repeated to them), causal or not, masked or not (the mask's add is
        # not counted), as FlopCounterMode's sdpa_flop_count and its count of the unfused bmm
        return prod(q[:-2]) * q[-2] * k[-2] * (q[-1] + v[-1])

    def saved(self, inputs: Sequence[Shape], output: Shape) -> Saved:
        return self.saved_for(inputs, output, [contiguous((1, *s)) for s in inputs])

    def fused(self, inputs: Sequence[Shape], strides: Sequence[Strides]) -> bool:
        """Whether PyTorch runs CPU's fused kernel in a training step (its sdp_utils_cpp checks): 4-D
        tensors, one feature size, the last axis contiguous, k and v with q's heads (or grouped),
        and no mask (a mask that needs a gradient, as any row after a layer with parameters does,
        sends it to the unfused path)."""
        q, k, v = inputs[:3]
        heads = q[:-3] == k[:-3] == v[:-3] and (q[-3] == k[-3] == v[-3] or self.enable_gqa)
        return len(inputs) == 3 and len(q) == 3 and heads and q[-1] == v[-1] and all(s[-1] == 1 for s in strides)

    def saved_for(self, inputs: Sequence[Shape], output: Shape, strides: Sequence[Strides], batch: int = 1) -> Saved:
        q, k, v = inputs[:3]
        lead, n, m, d = prod(q[:-2]), q[-2], k[-2], q[-1]
        if self.fused(inputs, strides):
            # CPU's fused kernel: it keeps q, k, v as given, its output and the log-sum-exp of the
            # softmax [h, n] (fp32)
            return Saved(input=True, output=True, elements=lead * n)
        # the unfused path (aten._scaled_dot_product_attention_math): q and k^T scaled (new
        # tensors, q's heads), the softmax [.., n, m], and v, as bmm reads it: a copy where it was
        # broadcast or repeated to q's heads, or where its leading axes do not fold into one
        # without (matmul's reshape: the batch's own stride counts, but for one sample); the mask's
        # add keeps nothing
        own = lead * (n * d + m * d + n * m)
        if v[:-2] != q[:-2] or view((batch, *v), strides[2], (batch * prod(v[:-2]), m, v[-1])) is None:
            return Saved(elements=own + lead * m * v[-1])
        return Saved(input=True, kept_inputs=(2,), elements=own)

    def field_window(self, inputs: Sequence[Shape]) -> list[FieldStep] | None:
        return []  # every output reads every position of k and v

    def torch_module(self, inputs: Sequence[Shape]) -> TorchModule:
        return TorchModule(
            "ScaledDotProductAttention",
            {"scale": self.scale, "is_causal": self.is_causal, "enable_gqa": self.enable_gqa},
            defaults={"scale": None, "is_causal": False, "enable_gqa": False},
        )

    def torch_expression(self, args: Sequence[str], inputs: Sequence[Shape]) -> str | None:
        extra = (
            (f", attn_mask={args[3]}" if len(args) == 4 else "")
            + (f", scale={self.scale}" if self.scale is not None else "")
            + (", is_causal=True" if self.is_causal else "")
            + (", enable_gqa=True" if self.enable_gqa else "")
        )
        return f"torch.nn.functional.scaled_dot_product_attention({', '.join(args[:3])}{extra})"

    def working(self, inputs: Sequence[Shape], output: Shape) -> list[str]:
        q, k, v = inputs[:3]
        h = prod(q[:-2])
        masked = f", mask {list(inputs[3])} added to the scores" if len(inputs) == 4 else ""
        shared = "" if k[:-2] == q[:-2] else f" (k and v's heads {list(k[:-2])} serve q's {list(q[:-2])})"
        return [
            f"softmax(q @ k^T{' + mask' if masked else ''}) @ v: q {list(q)}, k {list(k)}, v {list(v)}{masked} -> "
            f"{list(output)} (heads h = {h}, n = {q[-2]}, m = {k[-2]}, d = {q[-1]}, dv = {v[-1]}){shared}",
            f"MACs = h x n x m x (d + dv) = {h} x {q[-2]} x {k[-2]} x ({q[-1]} + {v[-1]}) = "
            f"{self.macs(inputs, output):,}; no parameters (the mask's add is not counted)",
        ]
