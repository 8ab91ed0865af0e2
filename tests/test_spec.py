"""The spec language: names, repeat, blocks, residual and parallel structures, references."""

import re

import pytest

import cnncalc
from cnncalc import to_torch
from cnncalc.analysis import analyze, collapse
from cnncalc.errors import CnncalcError, SpecError
from cnncalc.spec import MAX_NESTING, parse_text


def names(text):
    return [n.name for n in parse_text(text).nodes]


def test_unnamed_items_are_named_by_position_like_nn_sequential():
    text = "input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3}\n  - relu: {repeat: 2}\n  - sequential: {name: head, layers: [flatten, linear: 2]}\n"
    assert names(text) == ["input", "0", "1", "2", "head.0", "head.1"]


def test_named_repeat_gets_indices():
    assert names("input: [3]\nlayers:\n  - linear: {out: 3, name: fc, repeat: 3}\n") == [
        "input",
        "fc.0",
        "fc.1",
        "fc.2",
    ]


@pytest.mark.parametrize("kernel", ["3", "[3, 3]"])  # hashable arguments, and a list (built per copy before)
def test_a_repeat_makes_the_rows_its_copies_written_out_make(kernel):
    """The copies of a repeated layer share its first copy's work (issue 20, speed): the graph is
    the one the copies written out one by one make, but for the places (one item's, not three)."""
    conv = f'conv: {{out: 4, kernel: {kernel}, padding: 1, name: "c{{i}}"'
    repeated = parse_text(f"input: [4, 8, 8]\nlayers:\n  - {conv}, repeat: 3}}\n  - relu: {{name: act}}\n")
    written = parse_text(
        "input: [4, 8, 8]\nlayers:\n"
        + "".join(f"  - {conv.replace('{i}', str(k))}}}\n" for k in range(3))
        + "  - relu: {name: act}\n"
    )
    fields = ("name", "kind", "written", "layer", "inputs", "calls")
    assert [[getattr(n, f) for f in fields] for n in repeated.nodes] == [
        [getattr(n, f) for f in fields] for n in written.nodes
    ]
    assert [(n.where.line, n.where.path) for n in repeated.nodes[1:]] == [
        (3, "layers[0] c0"),
        (3, "layers[0] c1"),
        (3, "layers[0] c2"),
        (4, "layers[1] act"),
    ]
    assert analyze(repeated).rows == analyze(written).rows


@pytest.mark.parametrize(
    "items, message",
    [
        # a copy's name taken by an earlier row: refused at that copy, as if written out
        ("  - relu: {name: r.2}\n  - relu: {name: r, repeat: 4}\n", "layers[1] r.2: duplicate layer name 'r.2'"),
        # copies past the node limit: refused at the first one past it
        (
            "  - relu: {repeat: 99998}\n  - relu: {repeat: 5}\n",
            "layers[1] 99999: the expanded graph has more than 100,000",
        ),
    ],
    ids=["name taken", "node limit"],
)
def test_a_repeats_copies_are_refused_at_the_copy_that_breaks_a_rule(items, message):
    """A repeat's copies are added in one go (Expander.copies) unless one would break a rule:
    then one at a time, so that the message names the copy, as for copies written out."""
    with pytest.raises(SpecError, match=re.escape(message)):
        parse_text("input: [3, 8, 8]\nlayers:\n" + items)


def test_resnet_names_follow_torchvision():
    graph = cnncalc.load("resnet18")
    found = {n.name for n in graph.nodes}
    assert {
        "conv1",
        "bn1",
        "layer1.0.conv1",
        "layer1.1.bn2",
        "layer2.0.downsample.0",
        "layer2.0.downsample.1",
        "fc",
    } <= found
    assert "layer1.0.downsample.0" not in found  # no projection where shapes already match
    assert graph.containers["layer2.0"] == "basic"


def test_block_arguments_and_arithmetic():
    text = """
input: [16, 8, 8]
blocks:
  widen:
    args: {c: null, factor: 4}
    layers:
      - conv: {out: $c * $factor, kernel: 1, name: up}
      - conv: {out: $c, kernel: 1, name: down}
layers:
  - widen: {c: 8, name: e1}
  - widen: {c: 4, factor: 2, name: e2}
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
    graph = parse_text(
        "input: [4, 8, 8]\nlayers:\n  - relu: {name: r}\n  - residual: {name: res, body: [conv: {out: 4, kernel: 1}]}\n"
    )
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
    report = analyze(
        parse_text("input: [1, 4, 4]\nlayers:\n  - conv: {out: 8, kernel: 1}\n  - flatten\n  - linear: 2\n")
    )
    assert (
        report.totals.peak_activations == 1 * 4 * 4 + 8 * 4 * 4 + 2
    )  # during the linear: the input, the conv's output (flattened), 2
    text = "input: [2, 4, 4]\nlayers:\n  - conv: {out: 1, kernel: 1}\n  - relu\n  - flatten\n  - linear: 64\n"
    report = analyze(parse_text(text))
    assert (
        report.totals.peak_activations == 2 * 4 * 4 + 1 * 4 * 4 + 64
    )  # during the linear: flatten shares the ReLU's storage


def test_peak_holds_the_shortcut_while_the_body_runs():
    text = "input: [4, 8, 8]\nlayers:\n  - residual: {body: [conv: {out: 4, kernel: 1}, conv: {out: 4, kernel: 1}]}\n"
    # while the second conv runs: the input (kept for the add), the first conv's output, its own output
    assert analyze(parse_text(text)).totals.peak_activations == 3 * 4 * 8 * 8


# -- families: top-level args, variants, overrides (issue 10 §3) -----------------------------

FAMILY = """
name: Net
args: {width: 8, depth: null, kind: plain}
variants:
  small: {name: Net-S, depth: 1}
  large: {depth: 3, width: 16, kind: wide}
input: [3, $width, $width]
blocks:
  plain:
    args: {out: null}
    layers: [conv: {out: $out, kernel: 1, name: c}]
  wide:
    args: {out: null}
    layers: [conv: {out: $out * 2, kernel: 1, name: c}]
layers:
  - $kind: {out: $width, repeat: $depth}
  - conv: {out: 1, kernel: 1, name: last, when: $kind == 'wide' and $depth > 2}
"""


def test_variant_gives_argument_values_and_name():
    small = parse_text(FAMILY, variant="small")
    assert small.name == "Net-S" and small.input_shape == (3, 8, 8)
    assert [n.name for n in small.nodes] == ["input", "0.c"]
    large = parse_text(FAMILY, variant="large")
    assert large.name == "Net" and large.input_shape == (3, 16, 16)
    assert [n.name for n in large.nodes] == ["input", "0.c", "1.c", "2.c", "last"]
    assert analyze(large).rows[1].output_shape == (16 * 2, 16, 16)  # `wide` doubles $out
    assert large.containers["0"] == "wide"


def test_args_override_variant_and_defaults():
    graph = parse_text(FAMILY, variant="small", args={"width": 4, "depth": 2})
    assert graph.input_shape == (3, 4, 4) and [n.name for n in graph.nodes] == ["input", "0.c", "1.c"]
    assert parse_text(FAMILY, args={"depth": 1}).name == "Net"  # no variant: the defaults and the file's name


@pytest.mark.parametrize(
    "variant, args, message",
    [
        (None, {}, "argument depth of this spec needs a value"),
        ("medium", {}, "no variant 'medium' in this spec"),
        ("small", {"depht": 2}, "unknown argument 'depht' in --arg"),
        ("small", {"kind": "deep"}, "unknown layer type 'deep'"),
    ],
)
def test_family_errors(variant, args, message):
    with pytest.raises(SpecError) as err:
        parse_text(FAMILY, variant=variant, args=args)
    assert message in str(err.value)


def test_a_block_argument_shadows_a_top_level_one_also_by_its_default():
    # a block's own argument left to its default, or required, is not taken from the spec's
    # top-level argument of the same name (MobileNetV3's `dilation` of the trunk vs a conv block's)
    text = """
args: {dilation: 2}
input: [3, 16, 16]
blocks:
  conv_block:
    args: {out: null, dilation: 1}
    layers: [conv: {out: $out, kernel: 3, dilation: $dilation, name: c}]
  needs_out:
    args: {out: null}
    layers: [conv: {out: $out, kernel: 1, name: c}]
layers:
  - conv_block: {out: 4, name: plain}
  - conv_block: {out: 4, dilation: $dilation, name: dilated}
"""
    shapes = {row.name: row.output_shape for row in analyze(parse_text(text)).rows}
    assert shapes["plain.c"] == (4, 16 - 1 * (3 - 1), 16 - 1 * (3 - 1))
    assert shapes["dilated.c"] == (4, 14 - 2 * (3 - 1), 14 - 2 * (3 - 1))
    with pytest.raises(SpecError, match="block 'needs_out' needs argument 'out'"):
        parse_text(
            "args: {out: 4}\ninput: [3, 8, 8]\nblocks:\n  needs_out:\n    args: {out: null}\n"
            "    layers: [conv: {out: $out, kernel: 1}]\nlayers:\n  - needs_out: {}\n"
        )


def test_parse_arg_reads_yaml_values():
    from cnncalc.spec import parse_arg

    assert parse_arg("layers=[3, 4, 6, 3]") == ("layers", [3, 4, 6, 3])
    assert parse_arg("block=bottleneck") == ("block", "bottleneck")
    assert parse_arg("down=true") == ("down", True)
    for bad in ("nokey", "=3", "x={a: 1}", "x="):
        with pytest.raises(SpecError):
            parse_arg(bad)


def test_resnet_family_variants_are_builtins():
    from cnncalc.spec import library

    assert library.families()["resnet"] == [
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "resnext50_32x4d",
        "resnext101_32x8d",
        "resnext101_64x4d",
        "wide_resnet50_2",
        "wide_resnet101_2",
    ]
    names = library.builtin_names()
    assert "resnet50" in names and "resnet" not in names
    source = library.resolve("resnet50")
    assert source == library.Source(library.ARCHITECTURES / "resnet.yaml", "resnet50")
    assert library.resolve(str(source)) == source  # `path:variant` reads back
    graph = cnncalc.load("resnet152")
    assert graph.name == "ResNet-152"
    assert sum(n.name.endswith(".conv3") for n in graph.nodes) == 3 + 8 + 36 + 3  # torchvision's layers=[3, 8, 36, 3]
    overridden = cnncalc.load("resnet50", args={"layers": [3, 8, 36, 3]})
    assert [n.name for n in overridden.nodes] == [n.name for n in graph.nodes]


def test_a_stage_of_one_block_is_a_size_away():
    """`--arg layers=[1, 1, 1, 1]` (a ResNet-10) drops the repeated blocks rather than refusing a
    repeat of 0: one BasicBlock fewer per stage than resnet18, each two 3x3 convolutions w -> w
    without bias and two batch norms (weight and bias, w each)."""
    full = cnncalc.analyze(cnncalc.load("resnet18")).totals
    small = cnncalc.analyze(cnncalc.load("resnet18", args={"layers": [1, 1, 1, 1]})).totals
    assert full.params - small.params == sum(2 * 3 * 3 * w * w + 2 * 2 * w for w in (64, 128, 256, 512))


def test_family_index_equals_the_parsed_variants():
    """The cheap text scan of `variants:` (library.family_variants) reads what the parser reads."""
    from cnncalc.spec import library
    from cnncalc.spec.yaml_lines import load_file

    for path in library.ARCHITECTURES.rglob("*.yaml"):
        data = load_file(path, str(path))
        assert library.family_variants(path) == [str(v) for v in (data.get("variants") or {})], path
    names = library.builtin_names()
    assert len(names) == len(set(names))
    for family, variants in library.families().items():
        assert family not in names
        for variant in variants:
            assert cnncalc.load(variant).file == f"<built-in>/{family}.yaml"


def test_resolving_one_name_agrees_with_the_full_variant_index():
    """`resolve` finds a variant by scanning only the family files whose text holds its name
    (library._variant_of): the same family and variant as the index of every family file, for
    every built-in name, and nothing for a plain spec file's name or a name that is no built-in."""
    from cnncalc.spec import library

    names, index = library.builtin_names(), library._variant_index()
    assert len([n for n in names if n in index]) == len(index) > 50
    others = ["alexnet", "resnet15", "resnet1520", "examples/resnet152", "nosuch/resnet152", "variants", ""]
    assert "alexnet" in names and not any(name in index for name in others)  # alexnet: its own file
    for name in [*names, *others]:
        library.families.cache_clear()  # the scan, not the index (which answers once it is built)
        library._variant_of.cache_clear()
        assert library._variant_of(name) == index.get(name), name
    assert library.families() and library._variant_of("resnet152") == index["resnet152"]  # and by the index


# -- a structure's name refers to its output (issue 9 item 4) --------------------------------

UNET = """
input: [3, 16, 16]
blocks:
  double:
    args: {out: null}
    layers:
      - conv: {out: $out, kernel: 3, padding: 1, name: conv1}
      - relu: {name: relu1}
      - conv: {out: $out, kernel: 3, padding: 1, name: conv2}
      - relu: {name: relu2}
layers:
  - double: {out: 8, name: enc1}
  - maxpool: {kernel: 2, name: pool1}
  - double: {out: 16, name: enc2}
  - conv_transpose: {out: 8, kernel: 2, stride: 2, name: up1}
  - concat: {from: [enc1, up1], name: cat1}
  - sequential: {name: dec1, layers: [double: {out: 8}]}
  - conv: {out: 2, kernel: 1, from: dec1, name: head}
"""


def test_from_a_block_use_reads_its_last_row():
    graph = parse_text(UNET)
    cat = graph.nodes[graph.index("cat1")]
    assert [graph.nodes[i].name for i in cat.inputs] == ["enc1.relu2", "up1"]
    head = graph.nodes[graph.index("head")]
    assert [graph.nodes[i].name for i in head.inputs] == ["dec1.0.relu2"]
    rows = {r.name: r for r in analyze(graph).rows}
    assert rows["cat1"].output_shape == (8 + 8, 16, 16) and rows["head"].output_shape == (2, 16, 16)


def test_from_a_block_use_builds_the_hand_written_unet():
    torch = pytest.importorskip("torch")
    from torch import nn

    class Double(nn.Sequential):
        def __init__(self, c_in, c_out):
            super().__init__()
            self.conv1, self.relu1 = nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()
            self.conv2, self.relu2 = nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU()

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc1, self.pool1, self.enc2 = Double(3, 8), nn.MaxPool2d(2), Double(8, 16)
            self.up1 = nn.ConvTranspose2d(16, 8, 2, stride=2)
            self.dec1 = nn.Sequential(Double(16, 8))
            self.head = nn.Conv2d(8, 2, 1)

        def forward(self, x):
            e1 = self.enc1(x)
            return self.head(self.dec1(torch.cat([e1, self.up1(self.enc2(self.pool1(e1)))], dim=1)))

    ours, theirs = to_torch(parse_text(UNET)), UNet()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


def test_from_a_repeat_and_a_structure_inside_itself():
    text = """
input: [4, 8, 8]
layers:
  - conv: {out: 4, kernel: 1, name: stage, repeat: 2}
  - add: {from: [stage, stage.0], name: sum}
"""
    graph = parse_text(text)
    assert [graph.nodes[i].name for i in graph.nodes[graph.index("sum")].inputs] == ["stage.1", "stage.0"]
    cyclic = "input: [4]\nlayers:\n  - sequential: {name: s, layers: [linear: 4, add: {from: [s]}]}\n"
    with pytest.raises(SpecError, match="a cycle"):
        parse_text(cyclic)


# -- call: an earlier parameter-free module run again (torchvision's shared `relu`) ----------

CALLS = """
input: [4, 8, 8]
layers:
  - residual:
      name: block
      body:
        - conv: {out: 4, kernel: 3, padding: 1, name: conv1}
        - relu: {name: relu}
        - conv: {out: 4, kernel: 3, padding: 1, name: conv2}
        - call: relu
      after: [call: relu, call: {layer: relu, name: last}]
"""


def test_call_rows_are_named_after_the_module_they_run():
    graph = parse_text(CALLS)
    assert [n.name for n in graph.nodes] == [
        "input",
        "block.conv1",
        "block.relu",
        "block.conv2",
        "block.relu@2",
        "block.add",
        "block.relu@3",
        "block.last",
    ]
    assert [n.calls for n in graph.nodes if n.calls] == ["block.relu"] * 3
    assert graph.nodes[graph.index("block.relu@2")].kind == "relu"


def test_call_runs_the_same_module_in_torch():
    torch = pytest.importorskip("torch")
    from cnncalc.torch_bridge import leaf_modules, traced_shapes

    model = to_torch(parse_text(CALLS))
    assert [n for n, m in model.named_modules() if not list(m.children())] == [
        "block.conv1",
        "block.relu",
        "block.conv2",
        "block.add",
    ]
    leaves = leaf_modules(model)
    assert leaves["block.relu@2"] is leaves["block.relu"] is leaves["block.last"]
    x = torch.randn(1, 4, 8, 8)
    assert set(traced_shapes(model, x)) == set(leaves)
    with torch.no_grad():
        c1, c2 = model.get_submodule("block.conv1"), model.get_submodule("block.conv2")
        assert torch.equal(model(x), torch.relu(torch.relu(c2(torch.relu(c1(x)))) + x))


def test_call_of_a_module_with_parameters_is_refused():
    pytest.importorskip("torch")
    graph = parse_text("input: [4]\nlayers:\n  - linear: {out: 4, name: fc}\n  - call: fc\n")
    with pytest.raises(cnncalc.CnncalcError, match="parameter-free modules"):
        to_torch(graph)


# -- a layer whose output nothing reads (issue 9 item 3) -------------------------------------

DEAD_END = """
input: [3, 64, 64]
layers:
  - conv: {out: 8, kernel: 3, padding: 1, name: a}
  - conv: {out: 64, kernel: 3, padding: 1, name: dead}
  - conv: {out: 64, kernel: 3, padding: 1, from: a, name: b}
  - conv: {out: 64, kernel: 3, padding: 1, name: c}
"""


def test_an_unread_layer_is_a_warning_with_file_and_line_and_strict_refuses_it():
    graph = parse_text(DEAD_END, file="net.yaml")
    assert graph.unread() == (graph.index("dead"),)
    (warning,) = analyze(graph).warnings
    assert warning.layer == "dead" and "nothing reads this layer's output" in warning.message
    assert (warning.where.file, warning.where.line) == ("net.yaml", 5)
    with pytest.raises(cnncalc.CnncalcError, match="whose output nothing reads"):
        analyze(graph, strict=True)


def test_an_unread_layer_lives_only_while_it_runs_in_the_prediction_and_the_bridge():
    """The bridge drops a dead end's output right after making it, as the prediction assumes; kept
    alive to the end it would add 64*64*64 elements to the peak (b + c), half as much again."""
    pytest.importorskip("torch")
    from cnncalc.torch_bridge.profile import profile

    graph = parse_text(DEAD_END)
    report = analyze(graph)
    assert report.totals.peak_activations == 3 * 64 * 64 + 2 * 64 * 64 * 64  # input (held by the caller), b, c
    p = profile(graph, batch=2, warmup=1, iters=1, train=False, check=False)
    assert 0.85 <= p.memory_measured / p.memory_predicted <= 1.15


# -- several outputs: chunk and split (ShuffleNetV2) -----------------------------------------

SHUFFLE_UNIT = """
input: [116, 14, 14]
layers:
  - chunk: {chunks: 2, name: halves}
  - sequential:
      name: branch2
      from: halves.1
      layers:
        - conv: {out: 58, kernel: 1, bias: false}
        - batchnorm
        - relu
  - concat: {from: [halves.0, branch2], name: cat}
  - split: {sizes: [16, 100], name: parts}
  - conv: {out: 8, kernel: 1, from: parts.0, name: head}
  - concat: {from: [head, parts.1], name: out}
"""


def test_chunk_and_split_pieces_are_rows_read_by_name():
    graph = parse_text(SHUFFLE_UNIT)
    rows = {r.name: r for r in analyze(graph).rows}
    assert rows["halves.0"].output_shape == rows["halves.1"].output_shape == (116 // 2, 14, 14)
    assert (rows["parts.0"].output_shape, rows["parts.1"].output_shape) == ((16, 14, 14), (100, 14, 14))
    assert rows["cat"].inputs == ("halves.0", "branch2.2") and rows["out"].output_shape == (8 + 100, 14, 14)
    assert all(rows[n].params == rows[n].macs == 0 for n in ("halves.0", "halves.1", "parts.0", "parts.1"))
    assert analyze(graph).warnings == ()  # every piece is read


def test_chunk_and_split_in_torch_are_torch_chunk_and_split():
    torch = pytest.importorskip("torch")
    model = to_torch(parse_text(SHUFFLE_UNIT)).eval()
    x = torch.randn(2, 116, 14, 14)
    with torch.no_grad():
        x1, x2 = x.chunk(2, dim=1)
        conv, bn, relu = (model.get_submodule(f"branch2.{i}") for i in range(3))
        y = torch.cat([x1, relu(bn(conv(x2)))], dim=1)
        p0, p1 = torch.split(y, [16, 100], dim=1)
        assert torch.equal(model(x), torch.cat([model.get_submodule("head")(p0), p1], dim=1))


@pytest.mark.parametrize(
    "item, message",
    [
        ("chunk: 4", "6 channels do not make 4 chunks"),
        ("split: {sizes: [2, 3]}", "split sizes must add up to the input's channels"),
    ],
)
def test_pieces_that_do_not_fit_the_channels(item, message):
    with pytest.raises(cnncalc.CnncalcError, match=message):
        analyze(parse_text(f"input: [6, 4, 4]\nlayers:\n  - {item}\n  - concat: {{from: [input, input]}}\n"))


RES2NET_SPLIT = """
input: [104, 8, 8]
layers:
  - split: {sizes: 26, name: spx}
  - conv: {out: 26, kernel: 3, padding: 1, from: spx.0, name: conv1}
  - add: {from: [conv1, spx.1], name: sp}
  - concat: {from: [sp, spx.2, spx.3], name: concat}
"""


def test_split_by_an_integer_makes_as_many_pieces_as_torch_split():
    """Res2Net's torch.split(x, width, 1): 104 channels in pieces of 26 are four rows (issue 18)."""
    rows = {r.name: r for r in analyze(parse_text(RES2NET_SPLIT)).rows}
    assert [n for n in rows if n.startswith("spx.")] == [f"spx.{k}" for k in range(104 // 26)]
    assert rows["concat"].output_shape == (26 * 3, 8, 8)
    torch = pytest.importorskip("torch")
    model = to_torch(parse_text(RES2NET_SPLIT)).eval()
    x = torch.randn(2, 104, 8, 8)
    with torch.no_grad():
        s = torch.split(x, 26, 1)
        assert torch.equal(model(x), torch.cat([model.get_submodule("conv1")(s[0]) + s[1], s[2], s[3]], 1))


def test_split_by_an_integer_leaves_a_smaller_last_piece():
    text = "input: [10, 4]\nlayers:\n  - split: {sizes: 4, name: p}\n  - concat: {from: [p.0, p.1, p.2]}\n"
    rows = {r.name: r for r in analyze(parse_text(text)).rows}
    assert [rows[f"p.{k}"].output_shape for k in range(3)] == [(4, 4), (4, 4), (10 - 4 - 4, 4)]


# -- $in, inline block uses and copy numbering (issue 10 §2) ---------------------------------


def test_in_is_the_channels_of_the_block_uses_input():
    text = """
input: [16, 8, 8]
blocks:
  separable:
    args: {}
    layers:
      - conv: {out: $in, groups: $in, kernel: 3, padding: 1, name: dw}
      - conv: {out: $in * 2, kernel: 1, name: pw}
layers:
  - separable: {name: a}
  - separable: {name: b}
"""
    rows = {r.name: r for r in analyze(parse_text(text)).rows}
    assert rows["a.dw"].weights == 3 * 3 * 1 * 16 and rows["a.pw"].output_shape == (16 * 2, 8, 8)
    assert rows["b.dw"].weights == 3 * 3 * 1 * 32 and rows["b.pw"].output_shape == (32 * 2, 8, 8)  # b reads a's 32


def test_inline_block_uses_number_on_in_the_enclosing_list_like_vgg_bn():
    """torchvision's vgg11_bn: features.0 conv, .1 bn, .2 relu, .3 maxpool, .4 conv, ..."""
    text = """
input: [3, 32, 32]
blocks:
  conv_bn:
    args: {out: null}
    layers: [conv: {out: $out, kernel: 3, padding: 1}, batchnorm, relu]
layers:
  - sequential:
      name: features
      layers:
        - conv_bn: {out: 64, inline: true}
        - maxpool: {kernel: 2}
        - conv_bn: {out: 128, inline: true, repeat: 2}
"""
    graph = parse_text(text)
    assert [n.name for n in graph.nodes][1:] == [f"features.{i}" for i in range(3 + 1 + 3 * 2)]
    assert [n.kind for n in graph.nodes][1:5] == ["conv", "batchnorm", "relu", "maxpool"]


def test_name_template_numbers_copies_like_densenet():
    text = """
input: [8, 4, 4]
blocks:
  dense_layer:
    args: {}
    layers: [batchnorm: {name: norm1}, conv: {out: 8, kernel: 1, name: conv1}]
layers:
  - sequential:
      name: features.denseblock1
      layers:
        - dense_layer: {name: "denselayer{i}", start: 1, repeat: 2}
  - linear: {out: 2, name: fc, repeat: 2, start: 1}
"""
    assert names(text)[1:] == [
        "features.denseblock1.denselayer1.norm1",
        "features.denseblock1.denselayer1.conv1",
        "features.denseblock1.denselayer2.norm1",
        "features.denseblock1.denselayer2.conv1",
        "fc.1",
        "fc.2",
    ]


@pytest.mark.parametrize(
    "item, message",
    [
        ("conv: {out: 4, kernel: 1, inline: true}", "'inline: true' goes on a use of a block"),
        ("linear: {out: 4, repeat: 2, start: -1}", "'start' (the first copy's number) must be a non-negative integer"),
    ],
)
def test_inline_and_start_errors(item, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        parse_text(f"input: [4]\nlayers:\n  - {item}\n")


# `include:` (docs/spec.md): another file's blocks and top-level args
LIBRARY = """\
name: a block library
args: {width: 8}
input: [1]
blocks:
  unit:
    args: {scale: 1}
    layers:
      - conv: {out: $width * $scale, kernel: 3, padding: 1, name: conv}
      - relu: {name: relu}
  broken:
    layers:
      - conv: {out: 4, kernel: 5}
layers: [relu]
"""


def _write(folder, **files):
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text)
    return folder


def test_include_uses_another_files_blocks_and_args(tmp_path):
    (tmp_path / "lib").mkdir()
    _write(tmp_path / "lib", library=LIBRARY)
    main = (
        _write(
            tmp_path,
            main="include: lib/library.yaml\ninput: [3, 6, 6]\nlayers:\n  - unit: {name: a}\n"
            "  - unit: {name: b, scale: 2}\n",
        )
        / "main.yaml"
    )
    rows = analyze(cnncalc.load(main)).rows
    assert [(r.name, r.output_shape) for r in rows[1:]] == [
        ("a.conv", (8, 6, 6)),
        ("a.relu", (8, 6, 6)),
        ("b.conv", (16, 6, 6)),
        ("b.relu", (16, 6, 6)),
    ]
    assert rows[1].params == 3 * 3 * 3 * 8 + 8  # the library's default width, 8
    # the included file's args are this spec's: --arg sets them, and its own `args:` override their defaults
    assert analyze(cnncalc.load(main, args={"width": 2})).rows[1].output_shape == (2, 6, 6)
    (tmp_path / "own.yaml").write_text(
        "include: lib/library.yaml\nargs: {width: 5}\ninput: [3, 6, 6]\nlayers: [unit]\n"
    )
    assert analyze(cnncalc.load(tmp_path / "own.yaml")).rows[1].output_shape == (5, 6, 6)


def test_an_included_blocks_error_names_its_own_file_and_line(tmp_path):
    _write(tmp_path, library=LIBRARY, main="include: library.yaml\ninput: [3, 4, 4]\nlayers: [broken]\n")
    with pytest.raises(CnncalcError) as err:
        analyze(cnncalc.load(tmp_path / "main.yaml"))
    line = LIBRARY.splitlines().index("      - conv: {out: 4, kernel: 5}") + 1
    assert f"library.yaml:{line}" in str(err.value)


@pytest.mark.parametrize(
    "main, message",
    [
        ("include: missing.yaml", "cannot include 'missing.yaml': no such file"),
        ("include: /etc/library.yaml", "an included file is named relative to the including one"),
        ("include: [library.yaml, loop.yaml]", "a spec includes itself"),
        ("include: []", "'include' names spec files whose blocks this spec uses"),
        ('include: "a\\0b.yaml"', "cannot include 'a"),
        ("include: .", "cannot include '.': this path is a directory"),
        (
            "include: library.yaml\nblocks: {unit: {layers: [relu]}}",
            "block 'unit' is defined here and in an included file",
        ),
        ("include: library.yaml\nargs: {depth: 1}\nvariants: {v: {widht: 2}}", "unknown argument 'widht'"),
    ],
)
def test_include_errors(tmp_path, main, message):
    _write(
        tmp_path,
        library=LIBRARY,
        loop="include: main.yaml\ninput: [1]\nlayers: [relu]\n",
        main=main + "\ninput: [3, 4, 4]\nlayers: [relu]\n",
    )
    source = f"{tmp_path / 'main.yaml'}:v" if "variants" in main else tmp_path / "main.yaml"
    with pytest.raises(SpecError, match=re.escape(message)):
        cnncalc.load(source)


def test_segmentation_backbone_is_the_resnet_trunk_dilated():
    """segmentation_resnet.yaml includes resnet.yaml: its backbone is resnet50's conv1 .. layer4
    under `backbone.`, the same modules, with layer3 and layer4 dilated 2 and 4 instead of strided
    (output stride 8, as replace_stride_with_dilation=[False, True, True])."""
    resnet = {r.name: r for r in analyze(cnncalc.load("resnet50"), input_shape=(3, 64, 64)).rows}
    graph = cnncalc.load("fcn_resnet50")
    fcn = analyze(graph, input_shape=(3, 64, 64)).rows
    backbone = [r for r in fcn if r.name.startswith("backbone.")]
    assert [r.name.removeprefix("backbone.") for r in backbone] == list(resnet)[1 : list(resnet).index("avgpool")]
    assert all(r.params == resnet[r.name.removeprefix("backbone.")].params for r in backbone)
    assert backbone[-1].output_shape == (2048, 64 // 8, 64 // 8)  # resnet50's is 64 // 32
    convs = {n.name: n.layer for n in graph.nodes}
    assert [convs[f"backbone.layer{i}.0.conv2"].dilation for i in (3, 4)] == [1, 2]  # as the stage before
    assert [convs[f"backbone.layer{i}.1.conv2"].dilation for i in (3, 4)] == [2, 4]
    assert [convs[f"backbone.layer{i}.0.conv2"].stride for i in (2, 3, 4)] == [2, 1, 1]


def test_a_file_included_twice_is_read_once_and_includes_are_bounded(tmp_path):
    """Two files that include the same library (a diamond) share its blocks; a chain of files each
    including the next twice (2^n reads if each were read anew) stops at MAX_INCLUDES files."""
    from cnncalc.spec import MAX_INCLUDES

    spec = "include: library.yaml\ninput: [1]\nlayers: [relu]\n"
    _write(
        tmp_path, library=LIBRARY, a=spec, b=spec, main="include: [a.yaml, b.yaml]\ninput: [3, 4, 4]\nlayers: [unit]\n"
    )
    assert names_of(cnncalc.load(tmp_path / "main.yaml")) == ["input", "0.conv", "0.relu"]
    for k in range(MAX_INCLUDES + 2):
        (tmp_path / f"f{k}.yaml").write_text(f"include: [f{k + 1}.yaml, f{k + 1}.yaml]\ninput: [1]\nlayers: [relu]\n")
    (tmp_path / f"f{MAX_INCLUDES + 2}.yaml").write_text("input: [1]\nlayers: [relu]\n")
    with pytest.raises(SpecError, match=f"more than {MAX_INCLUDES} included files"):
        cnncalc.load(tmp_path / "f0.yaml")


def names_of(graph):
    return [n.name for n in graph.nodes]


def test_a_layer_built_once_per_spec_is_still_checked_for_each_spelling():
    """The expander builds each distinct layer once (start-up time); `true` and `1` are equal in
    Python, yet only the first is a boolean, so a second conv with `bias: 1` is still refused."""
    spec = "input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, bias: true}\n  - conv: {out: 4, kernel: 3, bias: %s}\n"
    graph = parse_text(spec % "true")
    assert graph.nodes[1].layer is graph.nodes[2].layer  # one layer object for both rows
    assert [n.name for n in graph.nodes] == ["input", "0", "1"]
    with pytest.raises(CnncalcError, match="bad value for 'bias'") as err:
        parse_text(spec % "1")
    assert err.value.where.line == 4
