"""Issue 19, section 2: the spec language for the blocks everyone writes.

A block reads its own input (`from: in`), a parallel merges with `mul` (squeeze-excitation), an
argument chooses with `a if condition else b`, a residual adds its shortcut only where `add:`
says (an inverted residual), and the documented rules for per-axis lists, `merge:` in a block and
rows under opposite `when:`. The squeeze-excitation block is checked against torch.nn, written out
here from torchvision's definition (torchvision.ops.SqueezeExcitation), not from cnncalc's bridge.
"""

from __future__ import annotations

import pytest

from cnncalc.analysis import analyze
from cnncalc.errors import SpecError
from cnncalc.spec import parse_text

SE_SPEC = """
name: se_demo
input: [16, 8, 8]
blocks:
  se:
    args: {squeeze: null}
    layers:
      - adaptive_avgpool: {output: 1, name: avgpool}
      - conv: {out: $squeeze, kernel: 1, name: fc1}
      - relu: {name: activation}
      - conv: {out: $in, kernel: 1, name: fc2}
      - sigmoid: {name: scale_activation}
      - mul: {from: [scale_activation, in], name: scale}
  se_parallel:
    args: {squeeze: null}
    branches:
      - []
      - [adaptive_avgpool: 1, conv: {out: $squeeze, kernel: 1}, relu, conv: {out: $in, kernel: 1}, sigmoid]
    merge: mul
layers:
  - conv: {out: 32, kernel: 3, padding: 1, name: stem}
  - se: {squeeze: 8, name: se}
  - se_parallel: {squeeze: 8, name: sep}
"""
SE_ONLY = SE_SPEC.replace("  - se_parallel: {squeeze: 8, name: sep}\n", "")
SE_PARALLEL_ONLY = SE_SPEC.replace("  - se: {squeeze: 8, name: se}\n", "")


def _rows(text: str) -> dict[str, object]:
    return {row.name: row for row in analyze(parse_text(text)).rows}


def test_se_block_reads_its_own_input_and_counts_like_the_paper():
    rows = _rows(SE_SPEC)
    assert rows["se.fc1"].weights == 32 * 8 and rows["se.fc1"].biases == 8  # 1x1 conv, C=32 -> C/r=8
    assert rows["se.fc2"].weights == 8 * 32 and rows["se.fc2"].biases == 32
    assert rows["se.scale"].output_shape == (32, 8, 8)  # [32, 1, 1] * [32, 8, 8]: the block's input
    assert rows["se.scale"].macs == 0
    # the parallel form (an empty branch is the identity) is the same arithmetic
    assert rows["sep.mul"].output_shape == (32, 8, 8)
    assert sum(r.params for n, r in rows.items() if n.startswith("sep.")) == (32 * 8 + 8) + (8 * 32 + 32)


def test_se_block_is_exact_against_torch_nn():
    torch = pytest.importorskip("torch")
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    from cnncalc.torch_bridge import build

    class SqueezeExcitation(nn.Module):  # torchvision.ops.SqueezeExcitation, written out
        def __init__(self, channels: int, squeeze: int) -> None:
            super().__init__()
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc1 = nn.Conv2d(channels, squeeze, 1)
            self.fc2 = nn.Conv2d(squeeze, channels, 1)
            self.activation = nn.ReLU()
            self.scale_activation = nn.Sigmoid()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
            return scale * x

    reference = nn.Sequential()
    reference.add_module("stem", nn.Conv2d(16, 32, 3, padding=1))
    reference.add_module("se", SqueezeExcitation(32, 8))
    reference.eval()
    x = torch.randn(2, 16, 8, 8)
    # the block: the same state_dict keys as torchvision's module, and its output
    graph = parse_text(SE_ONLY)
    net = build(graph).eval()
    assert sorted((k, tuple(v.shape)) for k, v in net.state_dict().items()) == sorted(
        (k, tuple(v.shape)) for k, v in reference.state_dict().items()
    )
    net.load_state_dict(reference.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference(x))
        features = reference.stem(x[:1])
        with FlopCounterMode(display=False) as counter:
            reference.se(features)
    se_rows = [r for r in analyze(graph).rows if r.name.startswith("se.")]
    assert sum(r.params for r in se_rows) == sum(p.numel() for p in reference.se.parameters())
    assert sum(r.macs for r in se_rows) * 2 == counter.get_total_flops()
    # the parallel form computes the same function with the same weights
    parallel = build(parse_text(SE_PARALLEL_ONLY)).eval()
    weights = reference.state_dict()
    renamed = {"se.fc1.": "sep.branch2.1.", "se.fc2.": "sep.branch2.3."}
    parallel.load_state_dict(
        {next((k.replace(a, b) for a, b in renamed.items() if k.startswith(a)), k): v for k, v in weights.items()},
        strict=True,
    )
    with torch.no_grad():
        torch.testing.assert_close(parallel(x), reference(x))


def test_from_in_outside_a_block_is_an_unknown_reference():
    with pytest.raises(SpecError, match=r"unknown reference 'from: in'"):
        parse_text("input: [3, 8, 8]\nlayers:\n  - relu\n  - mul: {from: [0, in]}\n")


def test_mul_of_shapes_that_do_not_broadcast_points_at_from_in():
    text = "input: [3, 8, 8]\nlayers:\n  - conv: {out: 6, kernel: 1}\n  - sigmoid\n  - mul: {from: [1, input]}\n"
    with pytest.raises(Exception) as caught:
        analyze(parse_text(text))
    message = str(caught.value)
    assert "mul needs shapes that broadcast (channel: 6 vs 3)" in message
    assert "`from: in` reads the block's own input" in message and "projection" not in message


def test_parallel_merge_is_concat_add_or_mul():
    text = "input: [3, 8, 8]\nlayers:\n  - parallel: {branches: [[relu], [tanh]], merge: max}\n"
    with pytest.raises(SpecError) as caught:
        parse_text(text)
    assert "'merge' of parallel must be concat, add or mul" in str(caught.value)
    assert "line 3" in str(caught.value)


# ----- a conditional value -----------------------------------------------------------------


DOWN = """
input: [8, 16, 16]
blocks:
  down_block:
    args: {down: false}
    layers:
      - conv: {out: "$in * (2 if $down else 1)", kernel: 3, padding: 1, stride: "2 if $down else 1"}
layers:
  - down_block: {down: true}
  - down_block
"""


def test_a_conditional_expression_chooses_a_value():
    rows = _rows(DOWN)
    assert rows["0.0"].output_shape == (8 * 2, (16 + 2 * 1 - 3) // 2 + 1, (16 + 2 * 1 - 3) // 2 + 1)  # 16x8x8
    assert rows["1.0"].output_shape == (16, 8, 8)  # down: false, stride 1, width kept


def test_a_conditional_needs_a_true_or_false_condition():
    text = "input: [3, 8, 8]\nargs: {s: 2}\nlayers:\n  - conv: {out: 4, kernel: 3, stride: 2 if $s else 1}\n"
    with pytest.raises(SpecError) as caught:
        parse_text(text)
    assert "`a if condition else b` takes conditions (true/false)" in str(caught.value)
    assert "line 4" in str(caught.value)


# ----- an inverted residual: one block, the shortcut added where the shapes allow ------------


INVERTED = """
input: [16, 16, 16]
blocks:
  inverted_residual:
    args: {out: null, stride: 1, t: 6}
    body:
      - conv: {out: $in * $t, kernel: 1, bias: false}
      - batchnorm
      - relu6
      - conv: {out: $in * $t, kernel: 3, stride: $stride, padding: 1, groups: $in * $t, bias: false}
      - batchnorm
      - relu6
      - conv: {out: $out, kernel: 1, bias: false}
      - batchnorm
    add: $stride == 1 and $in == $out
layers:
  - inverted_residual: {out: 16}
  - inverted_residual: {out: 24, stride: 2}
  - inverted_residual: {out: 24}
"""


def test_inverted_residual_adds_its_shortcut_only_at_stride_1_and_equal_width():
    graph = parse_text(INVERTED)
    names = [n.name for n in graph.nodes]
    assert "0.add" in names and "2.add" in names  # 16 -> 16 and 24 -> 24 at stride 1
    assert "1.add" not in names and "1.7" in names  # 16 -> 24 at stride 2: the body alone
    rows = {r.name: r for r in analyze(graph).rows}
    assert rows["1.7"].output_shape == (24, 8, 8)
    assert graph.containers["1"] == "inverted_residual"


def test_residual_add_false_refuses_a_shortcut():
    text = "input: [3, 8, 8]\nlayers:\n  - residual: {add: false, body: [relu], shortcut: [tanh]}\n"
    with pytest.raises(SpecError, match="with 'add: false' is its body alone"):
        parse_text(text)
    text = "input: [3, 8, 8]\nlayers:\n  - residual: {add: 1, body: [relu]}\n"
    with pytest.raises(SpecError, match="'add' of a residual is true or false"):
        parse_text(text)


# ----- rules docs/spec.md states ------------------------------------------------------------


def test_per_axis_kernel_is_height_then_width():
    rows = _rows("input: [1, 10, 20]\nlayers:\n  - conv: {out: 1, kernel: [1, 7]}\n")
    assert rows["0"].output_shape == (1, 10 - 1 + 1, 20 - 7 + 1)  # H keeps 10, W 20 -> 14


def test_pad_amounts_are_last_axis_first():
    rows = _rows("input: [1, 10, 20]\nlayers:\n  - pad: [1, 2, 3, 4]\n")
    assert rows["0"].output_shape == (1, 10 + 3 + 4, 20 + 1 + 2)  # (left, right, top, bottom) as F.pad


def test_merge_goes_beside_branches_in_a_block():
    text = "input: [4, 8, 8]\nblocks:\n  both:\n    branches: [[relu], [tanh]]\n    merge: add\nlayers:\n  - both\n"
    rows = _rows(text)
    assert rows["0.add"].output_shape == (4, 8, 8)  # added, not concatenated (8 channels)


def test_two_rows_may_share_a_name_under_opposite_when():
    text = """
input: [4, 8, 8]
blocks:
  head:
    args: {pool: true}
    layers:
      - maxpool: {kernel: 2, name: reduce, when: $pool}
      - conv: {out: 4, kernel: 2, stride: 2, name: reduce, when: not $pool}
layers:
  - head: {pool: true, name: a}
  - head: {pool: false, name: b}
"""
    rows = _rows(text)
    assert rows["a.reduce"].params == 0 and rows["b.reduce"].params == 4 * 2 * 2 * 4 + 4


# ----- one naming rule ----------------------------------------------------------------------


def test_a_named_item_takes_one_position_whatever_its_repeat():
    # Darknet-53's stages: before, a named repeat of 2 used two positions (the next row read `3`)
    text = "input: [3]\nlayers:\n  - linear: 4\n  - linear: {out: 4, name: stage, repeat: 2}\n  - relu\n"
    assert [n.name for n in parse_text(text).nodes] == ["input", "0", "stage.0", "stage.1", "2"]


def test_a_named_item_with_repeat_is_a_group_even_of_one():
    once = "input: [3]\nargs: {n: 1}\nlayers:\n  - linear: {out: 4, name: stage, repeat: $n}\n  - relu\n"
    graph = parse_text(once)
    assert [n.name for n in graph.nodes] == ["input", "stage.0", "1"]
    assert graph.containers["stage"] == "repeat"
    assert [n.name for n in parse_text(once, args={"n": 2}).nodes] == ["input", "stage.0", "stage.1", "1"]
    # without `repeat:` a named item is its name alone
    assert [n.name for n in parse_text("input: [3]\nlayers:\n  - linear: {out: 4, name: fc}\n").nodes] == [
        "input",
        "fc",
    ]


def test_the_docs_example_builds_in_torch_with_the_counted_parameters():
    pytest.importorskip("torch")
    from pathlib import Path

    from cnncalc.spec import load
    from cnncalc.torch_bridge import build

    graph = load(Path(__file__).parent.parent / "docs" / "examples" / "se_block.yaml")
    net = build(graph)
    totals = analyze(graph).totals
    assert sum(p.numel() for p in net.parameters()) == totals.params
    names = {n.name for n in graph.nodes}
    assert "1.add" in names and "2.add" not in names and "2.6.scale" in names


TF_SAME = "input: [3, 30, 30]\nlayers:\n  - conv: {out: 4, kernel: 3, stride: 2, padding: tf_same}\n  - conv: {out: 4, kernel: 5, stride: 4, padding: tf_same}\n"


@pytest.mark.parametrize("text", [SE_SPEC, INVERTED, DOWN, TF_SAME])
def test_the_new_forms_export_the_same_network(text):
    pytest.importorskip("torch")
    from test_export import same_network

    same_network(parse_text(text))
