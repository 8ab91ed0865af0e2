"""Several outputs (issue 18): a spec's top-level `outputs:` names the rows the network returns (a
YOLO/FPN backbone's feature maps), as a tuple, a list or a dict; every table and the JSON say
which rows they are; the memory model keeps each alive to the end; to_torch and export return the
same structure. The expected numbers are worked out by hand next to each test."""

import json
from importlib import util as importlib_util

import pytest
from typer.testing import CliRunner

import cnncalc
from cnncalc import to_torch
from cnncalc.analysis import analyze
from cnncalc.cli import app
from cnncalc.errors import SpecError
from cnncalc.graph import OutputKind
from cnncalc.spec import parse_text

runner = CliRunner()

# a stem, two stride-2 stages and a head; the stages are the feature maps a detector reads
BACKBONE = """\
name: tiny_backbone
input: [3, 32, 32]
layers:
  - conv: {out: 8, kernel: 3, padding: 1}
  - sequential: {name: s1, layers: [{conv: {out: 16, kernel: 3, stride: 2, padding: 1}}, relu]}
  - sequential: {name: s2, layers: [{conv: {out: 32, kernel: 3, stride: 2, padding: 1}}, relu]}
"""
S1, S2 = (16, 16, 16), (32, 8, 8)  # stride 2 each: 32 -> 16 -> 8


@pytest.mark.parametrize(
    "written, kind, keys",
    [
        ("outputs: [s1, s2]", OutputKind.TUPLE, ("0", "1")),
        ("outputs: {list: [s1, s2]}", OutputKind.LIST, ("0", "1")),
        ("outputs: {tuple: [s1, s2]}", OutputKind.TUPLE, ("0", "1")),
        ("outputs: {p1: s1, p2: s2}", OutputKind.DICT, ("p1", "p2")),
        ("outputs: {p1: s1.1, p2: s2.1}", OutputKind.DICT, ("p1", "p2")),  # the rows themselves
        ("outputs: {namedtuple: Features, fields: {p1: s1, p2: s2}}", OutputKind.NAMEDTUPLE, ("p1", "p2")),
    ],
)
def test_outputs_name_rows_as_a_tuple_a_list_or_a_dict(written, kind, keys):
    graph = parse_text(BACKBONE + written)
    report = analyze(graph)
    assert graph.outputs.kind is kind and graph.outputs.keys == keys
    # a structure's name is its last row, as in `from:`
    assert [(o.key, o.layer, o.output_shape) for o in report.outputs] == list(zip(keys, ["s1.1", "s2.1"], [S1, S2]))
    assert report.returns is kind


def test_without_outputs_the_last_row_is_the_one_output():
    report = analyze(parse_text(BACKBONE))
    assert report.returns is OutputKind.TENSOR
    assert [(o.key, o.layer, o.output_shape) for o in report.outputs] == [(None, "s2.1", S2)]


@pytest.mark.parametrize(
    "written, message, line, hint",
    [
        ("outputs: [s1, s22]", "output '1' names no row 's22'", 7, "did you mean 's2'"),
        ("outputs:\n  p1: s1\n  p2: nope", "output 'p2' names no row 'nope'", 9, None),  # p2's own line
        ("outputs: []", "'outputs' is empty", 7, "leave 'outputs' out"),
        ("outputs: s1", "malformed 'outputs'", 7, None),
        ("outputs: [input]", "output '0' must name a row", 7, None),
        ("outputs: {p1: [s1]}", "output 'p1' must name a row", 7, None),
        ("outputs: {namedtuple: 2x, fields: {p1: s1}}", "the namedtuple of 'outputs' needs a Python name", 7, None),
        ("outputs: {namedtuple: F, fields: {_p: s1}}", "a field of 'outputs' needs a Python name", 7, None),
        ("outputs: {namedtuple: F, fields: {class: s1}}", "a field of 'outputs' needs a Python name", 7, None),
        ("outputs: {namedtuple: F, fields: {p1: s9}}", "output 'p1' names no row 's9'", 7, None),
        ("outputs: {namedtuple: F, fields: {}}", "'outputs' is empty", 7, None),
    ],
)
def test_a_wrong_output_is_one_message_at_its_line(written, message, line, hint):
    with pytest.raises(SpecError) as caught:
        parse_text(BACKBONE + written, file="net.yaml")
    err = caught.value
    assert err.message == message
    assert (err.where.file, err.where.line, err.where.path) == ("net.yaml", line, "outputs")
    if hint:
        assert hint in err.hint


def test_an_output_that_no_row_reads_is_not_a_dead_end():
    # a head conv on s1 that only `outputs:` reads, and s2
    text = BACKBONE + "  - conv: {out: 4, kernel: 1, from: s1, name: head}\noutputs: [head, s2]\n"
    report = analyze(parse_text(text))
    assert report.warnings == ()
    # the same spec without `outputs:` returns `head` only: s2 is then a dead end
    report = analyze(parse_text(BACKBONE + "  - conv: {out: 4, kernel: 1, from: s1, name: head}\n"))
    assert [w.layer for w in report.warnings] == ["s2.1"]


# `a` is returned and read by `b`; `c` comes last. Elements alive at once, the input (3 * 64 * 64)
# included: after `c` ran, with `a` returned, input + a + b + c (b is freed once c has read it);
# without `outputs:` (c alone is returned), `a` is freed after `b` and the peak is input + a + b
PEAKS = """\
input: [3, 64, 64]
layers:
  - conv: {out: 64, kernel: 3, padding: 1, name: a}
  - conv: {out: 4, kernel: 1, name: b}
  - conv: {out: 64, kernel: 1, name: c}
"""
INPUT, A, B, C = 3 * 64 * 64, 64 * 64 * 64, 4 * 64 * 64, 64 * 64 * 64


def test_every_output_stays_alive_to_the_end():
    assert analyze(parse_text(PEAKS + "outputs: [a, c]\n")).totals.peak_activations == INPUT + A + B + C
    assert analyze(parse_text(PEAKS)).totals.peak_activations == INPUT + A + B


def test_the_peak_with_outputs_kept_matches_the_cpu_measurement():
    pytest.importorskip("torch")
    from cnncalc.torch_bridge.profile import profile

    measured = {}
    for name, text in (("kept", PEAKS + "outputs: [a, c]\n"), ("last", PEAKS)):
        p = profile(parse_text(text), batch=2, warmup=1, iters=1, train=False, check=False)
        assert 0.85 <= p.memory_measured / p.memory_predicted <= 1.15, name
        measured[name] = p.memory_measured
    # with `a` kept, the peak gains `c` (made while `a` still lives), 2 samples in fp32: PyTorch's
    # allocator sees the same difference, so the outputs are really alive
    assert 0.85 <= (measured["kept"] - measured["last"]) / (2 * 4 * C) <= 1.15


@pytest.mark.parametrize(
    "written, kind",
    [
        ("outputs: [s1, s2]", tuple),
        ("outputs: {list: [s1, s2]}", list),
        ("outputs: {p1: s1, p2: s2}", dict),
    ],
)
def test_to_torch_and_export_return_the_same_structure(written, kind):
    torch = pytest.importorskip("torch")
    from test_export import exported

    graph = parse_text(BACKBONE + written)
    model = to_torch(graph).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        got = model(x)
        # the rows' outputs, run by hand from the model's own modules
        first = model.get_submodule("s1.1")(model.get_submodule("s1.0")(model.get_submodule("0")(x)))
        second = model.get_submodule("s2.1")(model.get_submodule("s2.0")(first))
    assert type(got) is kind
    values = list(got.values()) if kind is dict else list(got)
    assert [tuple(v.shape[1:]) for v in values] == [S1, S2]
    assert torch.equal(values[0], first) and torch.equal(values[1], second)
    if kind is dict:
        assert list(got) == ["p1", "p2"]
    theirs = exported(graph).eval()
    theirs.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        written_out = theirs(x)
    assert type(written_out) is kind
    torch.testing.assert_close(written_out, got, rtol=0, atol=0)


def test_to_torch_and_export_return_a_namedtuple_of_the_specs_name_and_fields():
    torch = pytest.importorskip("torch")
    from test_export import exported

    graph = parse_text(BACKBONE + "outputs: {namedtuple: Features, fields: {p1: s1, p2: s2}}\n")
    model = to_torch(graph).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        got = model(x)
        first = model.get_submodule("s1.1")(model.get_submodule("s1.0")(model.get_submodule("0")(x)))
        second = model.get_submodule("s2.1")(model.get_submodule("s2.0")(first))
    assert isinstance(got, tuple) and type(got).__name__ == "Features" and got._fields == ("p1", "p2")
    assert torch.equal(got.p1, first) and torch.equal(got.p2, second) and torch.equal(got[1], second)
    theirs = exported(graph).eval()
    theirs.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        written_out = theirs(x)
    assert type(written_out).__name__ == "Features" and written_out._fields == ("p1", "p2")
    torch.testing.assert_close(tuple(written_out), tuple(got), rtol=0, atol=0)


def test_export_refuses_an_output_inside_a_block_use():
    text = """\
input: [3, 8, 8]
blocks:
  pair: {layers: [{conv: {out: 4, kernel: 1}}, relu]}
layers:
  - pair: {name: p}
  - pair: {name: q}
outputs: [p.0, q]
"""
    from cnncalc.errors import CnncalcError
    from cnncalc.render.export import to_torch_source

    with pytest.raises(CnncalcError, match="the output row 'p.0' is inside the block 'p'"):
        to_torch_source(parse_text(text))


@pytest.mark.parametrize("command", ["summary", "shapes", "params", "memory", "flops"])
def test_every_table_says_which_rows_are_outputs(command, tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(BACKBONE + "outputs: {p1: s1, p2: s2}\n")
    result = runner.invoke(app, [command, str(path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "s1.1 (output p1)" in result.output and "s2.1 (output p2)" in result.output
    assert (
        "outputs (dict of 2): p1 = s1.1 [16, 16, 16], p2 = s2.1 [32, 8, 8]; each kept alive to the end" in result.output
    )
    collapsed = runner.invoke(app, [command, str(path), "--depth", "1"], terminal_width=200)
    assert "s1 (output p1)" in collapsed.output and "s2 (output p2)" in collapsed.output


def test_the_fvcore_convention_table_says_so_too(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(BACKBONE + "outputs: [s1, s2]\n")
    result = runner.invoke(app, ["flops", str(path), "--convention", "fvcore"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "s1.1 (output 0)" in result.output and "outputs (tuple of 2): 0 = s1.1" in result.output


def test_json_names_the_outputs(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(BACKBONE + "outputs: {p1: s1, p2: s2}\n")
    data = json.loads(runner.invoke(app, ["summary", str(path), "-f", "json"]).stdout)
    assert data["returns"] == "dict"
    assert data["outputs"] == [
        {"key": "p1", "layer": "s1.1", "output_shape": list(S1)},
        {"key": "p2", "layer": "s2.1", "output_shape": list(S2)},
    ]
    one = path.with_name("one.yaml")
    one.write_text(BACKBONE)
    single = json.loads(runner.invoke(app, ["summary", str(one), "-f", "json"]).stdout)
    assert "returns" not in single and "outputs" not in single  # one tensor, the last row: as before `outputs:`
    jsonschema = pytest.importorskip("jsonschema")
    from cnncalc import schema

    validator = jsonschema.Draft202012Validator(json.loads(schema.REPORT_SCHEMA_PATH.read_text()))
    validator.validate(data)
    validator.validate(single)


def test_the_spec_docs_example_is_real_output(monkeypatch):
    from test_docs import ROOT, actual, blocks

    text = (ROOT / "docs" / "spec.md").read_text()
    runs = [run for _, _, found in blocks(text) for run in found]
    backbone = [(c, out) for c, out in runs if c == "cnncalc summary docs/examples/backbone.yaml --depth 1"]
    assert len(backbone) == 1  # spec.md shows it (beside its other examples)
    for command, output in backbone:
        assert actual(command, monkeypatch) == output


def test_the_docs_backbone_counts_by_hand():
    # stride-2 stages of a bias-free 3x3 conv, batch norm and ReLU: stem 3->16 (32x32), c3 16->32
    # (16x16), c4 32->64 (8x8), c5 64->128 (4x4); lat5 1x1 128->64 at 4x4, lat4 1x1 64->64 at 8x8
    from test_docs import ROOT

    report = analyze(cnncalc.load(ROOT / "docs" / "examples" / "backbone.yaml"))
    convs = [(16, 3, 32), (32, 16, 16), (64, 32, 8), (128, 64, 4)]  # (out, in, output side)
    assert report.totals.params == sum(o * i * 9 + 2 * o for o, i, _ in convs) + (64 * 128 + 64) + (64 * 64 + 64)
    assert report.totals.buffers == sum(2 * o + 1 for o, _, _ in convs)
    assert report.totals.macs == sum(o * s * s * i * 9 for o, i, s in convs) + 64 * 4 * 4 * 128 + 64 * 8 * 8 * 64
    assert [(o.key, o.layer, o.output_shape) for o in report.outputs] == [
        ("c3", "c3.2", (32, 16, 16)),
        ("p4", "p4", (64, 8, 8)),
        ("p5", "lat5", (64, 4, 4)),
    ]


def test_the_lecture_view_marks_the_row_an_output_folds_into(tmp_path):
    # the lecture tables fold an activation into the row before it: s1.1 (relu) shows as s1.0
    path = tmp_path / "net.yaml"
    path.write_text(BACKBONE + "outputs: {p1: s1, p2: s2}\n")
    result = runner.invoke(app, ["summary", str(path), "--style", "lecture"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "s1.0 (output p1)" in result.output and "s2.0 (output p2)" in result.output
    assert "s1.1" not in result.output.split("outputs (dict")[0]  # the folded rows are not shown


# ----- sweep and diff: every returned tensor, not the last row ------------------------------------


def _backbone_file(tmp_path, outputs):
    path = tmp_path / "net.yaml"
    path.write_text(BACKBONE + outputs + "\n")
    return path


@pytest.mark.parametrize(
    "written, cell_32, cell_64",
    [
        # stride 2 twice: side 32 -> 16 -> 8, side 64 -> 32 -> 16; chw as --input is written
        ("outputs: {p1: s1, p2: s2}", "{p1: 16x16x16, p2: 32x8x8}", "{p1: 16x32x32, p2: 32x16x16}"),
        ("outputs: [s1, s2]", "(16x16x16, 32x8x8)", "(16x32x32, 32x16x16)"),
        ("outputs: {list: [s2, s1]}", "[32x8x8, 16x16x16]", "[32x16x16, 16x32x32]"),
        (
            "outputs: {namedtuple: F, fields: {p1: s1, p2: s2}}",
            "(p1=16x16x16, p2=32x8x8)",
            "(p1=16x32x32, p2=32x16x16)",
        ),
    ],
)
def test_sweep_shows_every_output_in_its_structure(written, cell_32, cell_64, tmp_path):
    path = _backbone_file(tmp_path, written)
    result = runner.invoke(app, ["sweep", str(path), "--input", "3x{32,64}"], terminal_width=200)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[4].startswith("3x32x32") and lines[4].rstrip().endswith(cell_32)
    assert lines[5].startswith("3x64x64") and lines[5].rstrip().endswith(cell_64)
    assert "Output: the 2 tensors the network returns" in result.output
    data = json.loads(runner.invoke(app, ["sweep", str(path), "--input", "3x{32,64}", "-f", "json"]).stdout)
    kind = parse_text(BACKBONE + written).outputs.kind
    for row, side in zip(data["rows"], (32, 64)):
        by_layer = {"s1.1": [16, side // 2, side // 2], "s2.1": [32, side // 4, side // 4]}
        assert row["returns"] == kind.value and row["output_shape"] is None
        assert [o["output_shape"] for o in row["outputs"]] == [by_layer[o["layer"]] for o in row["outputs"]]


def test_sweep_of_one_tensor_is_as_before(tmp_path):
    path = _backbone_file(tmp_path, "")
    data = json.loads(runner.invoke(app, ["sweep", str(path), "--input", "3x32x32", "-f", "json"]).stdout)
    (row,) = data["rows"]
    assert row["output_shape"] == list(S2) and "outputs" not in row and "returns" not in row


def test_sweep_of_a_model_target_shows_what_pytorch_returns():
    torch = pytest.importorskip("torch")
    from pathlib import Path

    from cnncalc.analysis.sweep import sweep_each
    from cnncalc.torch_bridge.importer import load_target_at

    fixture = Path(__file__).parent / "fixtures" / "idioms" / "backbone.py"
    spec = importlib_util.spec_from_file_location("backbone_for_sweep", fixture)
    module = importlib_util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sizes = [(3, 64, 64), (3, 96, 128)]
    imported = load_target_at(f"{fixture}:Backbone", sizes, ["returns=dict"])
    rows = sweep_each([(s, i.graph) for s, i in imported], [1], [cnncalc.DType.FP32])
    model = module.Backbone(returns="dict").eval()
    for row, size in zip(rows, sizes):
        with torch.no_grad():
            theirs = model(torch.zeros(1, *size))
        assert row.returns is OutputKind.DICT and row.output_shape is None
        assert [(o.key, o.output_shape) for o in row.outputs] == [(k, tuple(v.shape[1:])) for k, v in theirs.items()]


def test_diff_names_the_outputs_and_their_shapes_at_both_inputs(tmp_path):
    path = _backbone_file(tmp_path, "outputs: {p1: s1, p2: s2}")
    result = runner.invoke(
        app, ["diff", str(path), "--input-a", "3x32x32", "--input-b", "3x64x64", "--layout", "chw"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    # side 32: s1 16x16, s2 8x8; side 64: s1 32x32, s2 16x16
    assert (
        "outputs (dict of 2): p1 = s1.1 [16, 16, 16] -> [16, 32, 32], p2 = s2.1 [32, 8, 8] -> [32, 16, 16]"
        in result.output
    )
    assert "s1.1 (output p1)" in result.output and "s2.1 (output p2)" in result.output


def test_diff_of_other_outputs_is_a_change(tmp_path):
    a = _backbone_file(tmp_path, "outputs: {p1: s1, p2: s2}")
    b = tmp_path / "b.yaml"
    b.write_text(BACKBONE + "outputs: [s2]\n")  # a tuple of one: s2 under key 0, s1 no longer returned
    result = runner.invoke(app, ["diff", str(a), str(b), "--fail-on-change"], terminal_width=200)
    assert result.exit_code == 7, result.output
    assert "s1.1 (output: A p1, B none)" in result.output and "s2.1 (output: A p2, B 0)" in result.output
    assert (
        "outputs of A (dict of 2: p1 = s1.1 [16, 16, 16], p2 = s2.1 [32, 8, 8]); of B (tuple of 1: 0 = s2.1 [32, 8, 8])"
        in result.output
    )
    data = json.loads(runner.invoke(app, ["diff", str(a), str(b), "-f", "json"]).stdout)
    assert data["changed"] is True
    assert (data["a"]["returns"], data["b"]["returns"]) == ("dict", "tuple")
    rows = {r["name"]: r for r in data["rows"]}
    assert (rows["s1.1"]["outputs_a"], rows["s1.1"]["outputs_b"]) == (["p1"], [])
    assert (rows["s1.1"]["status"], rows["s1.0"]["status"]) == ("changed", "same")
    same = runner.invoke(app, ["diff", str(a), str(a), "--fail-on-change"], terminal_width=200)
    assert same.exit_code == 0, same.output


def test_diff_of_one_tensor_against_outputs(tmp_path):
    a = _backbone_file(tmp_path, "")
    b = tmp_path / "b.yaml"
    b.write_text(BACKBONE + "outputs: [s1, s2]\n")
    result = runner.invoke(app, ["diff", str(a), str(b), "--fail-on-change"], terminal_width=200)
    assert result.exit_code == 7, result.output
    assert (
        "outputs of A (one tensor, s2.1 [32, 8, 8]); of B (tuple of 2: 0 = s1.1 [16, 16, 16], 1 = s2.1 [32, 8, 8])"
        in result.output
    )
