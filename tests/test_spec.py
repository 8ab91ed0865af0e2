"""The spec language: names, repeat, blocks, residual and parallel structures, references."""

import pytest

import cnncalc
from cnncalc.analysis import analyze, collapse
from cnncalc.errors import SpecError
from cnncalc.spec import MAX_NESTING, parse_text


def names(text):
    return [n.name for n in parse_text(text).nodes]


def test_unnamed_items_are_named_by_position_like_nn_sequential():
    text = "input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3}\n  - relu: {repeat: 2}\n  - sequential: {name: head, layers: [flatten, linear: 2]}\n"
    assert names(text) == ["input", "0", "1", "2", "head.0", "head.1"]


def test_named_repeat_gets_indices():
    assert names("input: [3]\nlayers:\n  - linear: {out: 3, name: fc, repeat: 3}\n") == ["input", "fc.0", "fc.1", "fc.2"]


def test_resnet_names_follow_torchvision():
    graph = cnncalc.load("resnet18")
    found = {n.name for n in graph.nodes}
    assert {"conv1", "bn1", "layer1.0.conv1", "layer1.1.bn2", "layer2.0.downsample.0", "layer2.0.downsample.1", "fc"} <= found
    assert "layer1.0.downsample.0" not in found  # no projection where shapes already match
    assert graph.containers["layer2.0"] == "basic"


def test_block_arguments_and_arithmetic():
    text = """
input: [16, 8, 8]
blocks:
  expand:
    args: {c: null, factor: 4}
    layers:
      - conv: {out: $c * $factor, kernel: 1, name: up}
      - conv: {out: $c, kernel: 1, name: down}
layers:
  - expand: {c: 8, name: e1}
  - expand: {c: 4, factor: 2, name: e2}
"""
    rows = {r.name: r for r in analyze(parse_text(text)).rows}
    assert rows["e1.up"].output_shape == (32, 8, 8) and rows["e1.down"].output_shape == (8, 8, 8)
    assert rows["e2.up"].output_shape == (8, 8, 8)


def test_residual_add_reads_body_and_shortcut():
    text = """
input: [4, 8, 8]
layers:
  - residual:
      name: res
      body: [conv: {out: 8, kernel: 3, padding: 1, name: c}]
      shortcut: [conv: {out: 8, kernel: 1}]
      after: [relu]
"""
    graph = parse_text(text)
    assert [n.name for n in graph.nodes] == ["input", "res.c", "res.shortcut.0", "res.add", "res.after.0"]
    add = graph.nodes[3]
    assert [graph.nodes[i].name for i in add.inputs] == ["res.c", "res.shortcut.0"]


def test_identity_shortcut_reads_the_block_input():
    graph = parse_text("input: [4, 8, 8]\nlayers:\n  - relu: {name: r}\n  - residual: {name: res, body: [conv: {out: 4, kernel: 1}]}\n")
    add = graph.nodes[-1]
    assert [graph.nodes[i].name for i in add.inputs] == ["res.0", "r"]


def test_references_resolve_innermost_first_and_from_one_name_adds_previous():
    text = """
input: [4, 8, 8]
layers:
  - conv: {out: 4, kernel: 1, name: skip}
  - sequential:
      name: s
      layers:
        - conv: {out: 4, kernel: 1, name: skip}
        - conv: {out: 4, kernel: 1, name: x}
        - add: {from: skip}
  - concat: {from: [skip, s.x]}
"""
    graph = parse_text(text)
    by_name = {n.name: n for n in graph.nodes}
    assert [graph.nodes[i].name for i in by_name["s.2"].inputs] == ["s.x", "s.skip"]
    assert [graph.nodes[i].name for i in by_name["2"].inputs] == ["skip", "s.x"]
    assert analyze(graph).rows[-1].output_shape == (8, 8, 8)


def test_when_skips_items():
    text = "input: [3]\nblocks:\n  b:\n    args: {extra: false}\n    layers: [linear: 4, {relu: {when: $extra}}]\nlayers:\n  - b: {name: x}\n  - b: {name: y, extra: true}\n"
    assert names(text) == ["input", "x.0", "y.0", "y.1"]


def test_nesting_limit():
    depth = MAX_NESTING + 1
    text = "input: [3]\nlayers: [" + "{sequential: {layers: [" * depth + "relu" + "]}}" * depth + "]\n"
    with pytest.raises(SpecError, match="nested more than"):
        parse_text(text)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_collapsed_rows_still_sum_to_totals(depth):
    report = analyze(cnncalc.load("resnet50"))
    collapsed = collapse(report, depth)
    assert len(collapsed.rows) < len(report.rows)
    for field in ("weights", "biases", "macs", "buffers", "activations"):
        assert sum(getattr(r, field) for r in collapsed.rows[1:]) == getattr(report.totals, field)
    assert collapsed.rows[-1].output_shape == report.rows[-1].output_shape


def test_peak_activations_of_a_chain_is_the_largest_neighbouring_pair():
    # in a chain, a layer's input and output are alive together, and the caller holds the network's
    # input throughout; flatten is a view (no new memory)
    report = analyze(parse_text("input: [1, 4, 4]\nlayers:\n  - conv: {out: 8, kernel: 1}\n  - flatten\n  - linear: 2\n"))
    assert report.totals.peak_activations == 1 * 4 * 4 + 8 * 4 * 4 + 2  # during the linear: the input, the conv's output (flattened), 2
    text = "input: [2, 4, 4]\nlayers:\n  - conv: {out: 1, kernel: 1}\n  - relu\n  - flatten\n  - linear: 64\n"
    report = analyze(parse_text(text))
    assert report.totals.peak_activations == 2 * 4 * 4 + 1 * 4 * 4 + 64  # during the linear: flatten shares the ReLU's storage


def test_peak_holds_the_shortcut_while_the_body_runs():
    text = "input: [4, 8, 8]\nlayers:\n  - residual: {body: [conv: {out: 4, kernel: 1}, conv: {out: 4, kernel: 1}]}\n"
    # while the second conv runs: the input (kept for the add), the first conv's output, its own output
    assert analyze(parse_text(text)).totals.peak_activations == 3 * 4 * 8 * 8
