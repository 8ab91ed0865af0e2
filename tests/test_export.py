"""`cnncalc export --to torch`: the written source, run by Python, is the same network as the
bridge's model: same module names and types, same state_dict keys and shapes, same output."""

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

import cnncalc
from cnncalc.cli import ExitCode, app
from cnncalc.module_names import RESERVED
from cnncalc.render.export import to_torch_source
from cnncalc.render.export_spelling import own_module_sources
from cnncalc.spec import parse_text

torch = pytest.importorskip("torch")
from helpers.builtins import builtin_cases  # noqa: E402
from helpers.strategies import analysable, every_kind_chain, group_b_chain, small_graph  # noqa: E402
from test_layers import MERGE_ROWS, MERGE_TABLE, ROWS  # noqa: E402
from torch import nn  # noqa: E402

from cnncalc import to_torch  # noqa: E402

runner = CliRunner()


def exported(graph, input_shape=None):
    source = to_torch_source(graph, input_shape)
    namespace: dict = {"__name__": "exported"}
    exec(compile(source, f"<export of {graph.name}>", "exec"), namespace)
    classes = [
        v
        for v in namespace.values()
        if isinstance(v, type)
        and issubclass(v, nn.Module)
        and v.__module__ == "exported"
        and v.__name__ not in own_module_sources()
    ]  # the bridge's own classes the file copies
    return classes[-1]()  # the network's class comes after its blocks' classes


def same_network(graph, input_shape=None):
    ours = to_torch(graph, input_shape).eval()
    theirs = exported(graph, input_shape).eval()
    # by class name: the file's copy of a bridge class is another class of the same name and source
    leaves = {n: type(m).__name__ for n, m in theirs.named_modules() if not list(m.children())}
    shapes = [row.output_shape for row in cnncalc.analyze(graph, input_shape=input_shape).rows]
    rows = {
        node.name
        for node in graph.nodes[1:]
        if node.layer.torch_expression(["a"] * len(node.inputs), [shapes[j] for j in node.inputs]) is None
        and node.layer.parent_parameter([shapes[j] for j in node.inputs]) is None
        and node.calls is None
    }  # an expression, a parent's parameter: no module
    assert set(leaves) == rows
    assert leaves == {n: type(m).__name__ for n, m in ours.named_modules() if n in rows}
    for name in rows:  # every module built with the same settings (repr lists them)
        assert _settings(theirs.get_submodule(name)) == _settings(ours.get_submodule(name)), name
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, *cnncalc.analyze(graph, input_shape=input_shape).input_shape)
    with torch.no_grad():
        # bit for bit; a NaN (rsqrt, log or a power of a negative input: the op's domain) where both have one
        torch.testing.assert_close(theirs(x), ours(x), rtol=0, atol=0, equal_nan=True)


def _settings(module):
    """A module's constructor settings; (3, 3) and 3 are the same setting to PyTorch."""

    def plain(value):
        return value[0] if isinstance(value, tuple) and value and all(v == value[0] for v in value) else value

    return {k: plain(v) for k, v in vars(module).items() if not k.startswith("_") and k != "training"}


@pytest.mark.parametrize("name, input_shape", builtin_cases())
def test_every_architecture_exports_the_same_network(name, input_shape):
    same_network(cnncalc.load(name), input_shape)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_graph())
def test_random_graphs_export_the_same_network(text):
    same_network(parse_text(text))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(every_kind_chain())
def test_every_layer_type_exports_the_same_network(text):
    """Random settings of every layer type, 1-D to 3-D: the defaults left out must be PyTorch's."""
    graph = analysable(text)
    same_network(graph)


@pytest.mark.parametrize("kind, item, shape_in", [(kind, item, shape_in) for kind, item, shape_in, *_ in ROWS])
def test_defaults_left_out_are_pytorchs_defaults(kind, item, shape_in):
    """Every default a layer type declares for the exporter to drop, and every argument it has
    written positionally, against the real signature of the class it builds (every row of the
    layer table)."""
    graph = parse_text(f"input: {list(shape_in)}\nlayers:\n  - {item}\n")
    spec = graph.nodes[1].layer.torch_module([tuple(shape_in)])
    if graph.nodes[1].layer.torch_expression(["a"], [tuple(shape_in)]) is not None or graph.nodes[
        1
    ].layer.parent_parameter([tuple(shape_in)]):
        return  # written as an expression or a parameter, not a module
    from cnncalc.torch_bridge import module_class

    params = inspect.signature(module_class(spec.name)).parameters
    for arg, default in spec.defaults.items():
        assert arg in spec.kwargs, (spec.name, arg)
        if arg == "stride" and params[arg].default is None:
            assert default == spec.kwargs["kernel_size"]  # PyTorch's pools read stride=None as the kernel
        else:
            assert params[arg].default == default and type(params[arg].default) is type(default), (spec.name, arg)
    names = list(params)[: spec.positional]
    assert names == list(spec.kwargs)[: spec.positional]
    assert all(params[n].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for n in names)


@pytest.mark.parametrize(
    "name, block, uses", [("resnet152", "Bottleneck", 3 + 8 + 36 + 3), ("resnet18", "Basic", 2 * 4)]
)
def test_a_block_is_one_class(name, block, uses):
    """torchvision's source writes Bottleneck once: so does the export, its uses one line each."""
    source = to_torch_source(cnncalc.load(name))
    assert source.count(f"class {block}(nn.Module):") == 1
    assert source.count(f"= {block}(") == uses
    rows = len(cnncalc.load(name).nodes)  # written row by row, each row took a line in __init__ and one in forward
    assert source.count("\n") < 2 * rows


def test_reserved_names_are_the_attributes_of_module_dict():
    assert RESERVED == {name for name in dir(nn.ModuleDict()) if not name.startswith("_")}


def test_awkward_names_still_export():
    graph = parse_text("""
input: [3, 16, 16]
layers:
  - conv: {out: 4, kernel: 3, name: class}
  - relu
  - residual:
      name: "2"
      body:
        - conv: {out: 4, kernel: 3, padding: 1, name: x}
  - flatten: {name: lambda}
  - linear: 10
""")
    same_network(graph)
    source = to_torch_source(graph)
    assert 'self["class"]' in source and "class Network(nn.ModuleDict)" in source


@pytest.mark.parametrize("name", ['a"b', "x\\bn", "it's", """both'"quotes""", "tab\\t\\\\", "naïve-ü", "a b"])
def test_a_name_with_quotes_or_backslashes_is_written_as_the_spec_spells_it(name):
    """Issue 19 (fuzzing): `"` wrote Python that did not parse and `x\\bn` became a backspace.
    The module's name in the written file must be the spec's row, character for character."""
    text = "input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, name: NAME}\n  - relu\n"
    graph = parse_text(text.replace("NAME", json.dumps(name)))  # JSON is YAML: the name exactly
    assert graph.nodes[1].name == name
    same_network(graph)  # the written module names are exactly the rows
    assert name in dict(exported(graph).named_modules())


def test_a_block_with_numbered_items_is_a_module_dict():
    """A block whose items take their positions (MNASNet's stack: `layers.8.0`, `layers.8.1`) is
    written as an nn.ModuleDict class, as the network is where a top-level name is numbered."""
    graph = parse_text("""
input: [3, 8, 8]
blocks:
  pair:
    args: {out: null}
    layers:
      - conv: {out: $out, kernel: 1, bias: false}
      - relu
      - batchnorm
layers:
  - pair: {out: 4, name: a}
  - pair: {out: 8, name: b}
""")
    same_network(graph)
    source = to_torch_source(graph)
    assert source.count("class Pair(nn.ModuleDict):") == 1 and source.count("= Pair(") == 2
    assert 'self["0"] = nn.Conv2d(' in source


def test_a_reserved_name_is_refused_with_a_message(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, name: eval}\n")
    result = runner.invoke(app, ["export", str(spec)])
    assert result.exit_code == ExitCode.INVALID
    assert "'eval' cannot be a PyTorch module name" in result.stderr and "Traceback" not in result.stderr


def test_written_file_runs(tmp_path):
    target = tmp_path / "lenet.py"
    result = runner.invoke(app, ["export", "lenet5", "--to", "torch", "-o", str(target)])
    assert result.exit_code == 0, result.stderr
    out = subprocess.run([sys.executable, str(target)], capture_output=True, text=True, check=True).stdout
    totals = cnncalc.analyze(cnncalc.load("lenet5")).totals
    assert out.strip() == f"output [1, 10], {totals.params:,} parameters"


def test_export_does_not_import_torch():
    code = (
        "import sys; from typer.testing import CliRunner; from cnncalc.cli import app\n"
        "r = CliRunner().invoke(app, ['export', 'resnet50']); assert r.exit_code == 0; print('torch' in sys.modules)"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


def test_the_bridge_refuses_the_same_names_with_the_same_message():
    graph = parse_text("input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, name: keys}\n", file="net.yaml")
    with pytest.raises(cnncalc.CnncalcError) as caught:
        to_torch(graph)
    assert "'keys' cannot be a PyTorch module name" in str(caught.value) and caught.value.where.line == 3


# group B (issue 10)
@pytest.mark.parametrize("kind, layers, shape_in", [row[:3] for row in MERGE_ROWS])
def test_every_merge_row_exports_the_same_network(kind, layers, shape_in):
    """Merges and crops are written inline (`a * b`, `a[:, :, 2:6, 2:6]`): no cnncalc module in the file."""
    graph = parse_text(f"input: {shape_in}\nlayers:\n" + "\n".join("  " + line for line in layers.split("\n")))
    same_network(graph)
    assert "cnncalc" not in to_torch_source(graph).split('"""')[2]  # past the docstring


def test_squeeze_excitation_and_a_skip_crop_export_as_plain_expressions():
    graph = parse_text(
        "input: [3, 11, 10]\nlayers:\n" + "\n".join("  " + line for line in MERGE_TABLE["center_crop"][0].split("\n"))
    )
    assert "x = a[:, :, 2:6, 2:6]" in to_torch_source(graph)
    graph = parse_text(
        "input: [3, 6, 6]\nlayers:\n" + "\n".join("  " + line for line in MERGE_TABLE["mul"][0].split("\n"))
    )
    assert "x = a * x" in to_torch_source(graph)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(group_b_chain())
def test_random_group_b_chains_export_the_same_network(text):
    graph = analysable(text)
    same_network(graph)


def test_convnext_block_exports_the_same_network():  # group A (issue 10): own modules, a parent's parameter
    from test_layers import CNBLOCK

    same_network(parse_text(CNBLOCK))


# a block class meets main's features: the bridge's own modules, expressions that read shapes, a parent's parameter
BLOCK_FEATURES = """
input: [3, 12, 12]
blocks:
  se:
    args: {out: null}
    body:
      - conv: {out: $out, kernel: 3, padding: 1, name: conv}
      - permute: {dims: [0, 2, 3, 1], name: p1}
      - permute: {dims: [0, 3, 1, 2], name: p2}
      - global_avgpool: {name: pool}
      - conv: {out: $out, kernel: 1, name: fc}
      - sigmoid: {name: gate}
      - mul: {from: [p2, gate], name: scale}
      - stochastic_depth: {p: 0.1, name: drop}
    shortcut:
      - conv: {out: $out, kernel: 1, name: proj}
  cropped:
    args: {out: null}
    layers:
      - conv: {out: $out, kernel: 3, name: a}
      - maxpool: {kernel: 2, name: b}
      - center_crop: {from: a, like: b}
  scaled:
    args: {}
    layers:
      - conv: {out: 8, kernel: 3, padding: 1, name: conv}
      - layer_scale: {init: 0.5, name: layer_scale}
layers:
  - se: {out: 4}
  - se: {out: 8}
  - se: {out: 8}
  - scaled
  - scaled
  - cropped: {out: 8}
  - cropped: {out: 8}
"""


def test_a_block_class_holds_own_modules_and_expressions_and_a_parameter_falls_back_to_rows():
    """`se` (own modules Permute and StochasticDepth, a product) is one class used three times;
    `cropped` (a crop, whose slice depends on the input size: 12 -> conv 10 -> pool 5, crop from
    (10-5)//2 = 2; then 5 -> 3 -> 1, from (3-1)//2 = 1) gets a class per size; `scaled` holds a bare
    parameter of its parent, so its uses are written row by row."""
    graph = parse_text(BLOCK_FEATURES)
    same_network(graph)
    source = to_torch_source(graph)
    assert source.count("class Se(nn.Module):") == 1 and source.count("= Se(") == 3
    assert source.count("class Permute(nn.Module):") == 1 and "self.p1 = Permute([0, 2, 3, 1])" in source
    assert "x = p2 * x" in source
    assert "class Cropped(nn.Module):" in source and "class Cropped2(nn.Module):" in source
    assert "[:, :, 2:7, 2:7]" in source and "[:, :, 1:2, 1:2]" in source
    assert "class Scaled" not in source
    assert 'self["3"].layer_scale = nn.Parameter(torch.full((8, 1, 1), 0.5))' in source


def test_export_refuses_to_write_over_its_own_spec_or_an_included_file(tmp_path, monkeypatch):
    """Issue 19 (fuzzing): `export s.yaml -o s.yaml` replaced the spec with Python."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocks.yaml").write_text("blocks:\n  unit:\n    layers:\n      - conv: {out: 4, kernel: 3}\n")
    spec = tmp_path / "s.yaml"
    spec.write_text("include: [blocks.yaml]\ninput: [3, 8, 8]\nlayers:\n  - unit\n")
    for target in ("s.yaml", "./s.yaml", str(spec), "blocks.yaml"):
        before = (tmp_path / target).read_bytes()
        result = runner.invoke(app, ["export", "s.yaml", "-o", target])
        assert result.exit_code == ExitCode.INVALID, target
        assert "will not write over" in result.stderr and "Traceback" not in result.stderr
        assert f"received: -o {Path(target)}" in result.stderr  # as typer reads it: ./s.yaml is s.yaml
        assert (tmp_path / target).read_bytes() == before  # untouched
    (tmp_path / "link.yaml").symlink_to(spec)  # through a link it is still the input
    result = runner.invoke(app, ["export", "s.yaml", "-o", "link.yaml"])
    assert result.exit_code == ExitCode.INVALID and spec.read_text().startswith("include:")
    result = runner.invoke(app, ["export", "s.yaml", "-o", "s.py"])
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocks.yaml", "link.yaml", "s.py", "s.yaml"]  # no temporary


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    """Written atomically: text that cannot be encoded fails after the temporary file is open,
    and the file it would have replaced is as it was, its permissions kept on success."""
    from cnncalc.files import write_text

    target = tmp_path / "net.py"
    target.write_text("old\n")
    target.chmod(0o640)
    with pytest.raises(UnicodeEncodeError):
        write_text(target, "new \ud800\n")  # a lone surrogate: UTF-8 has no bytes for it
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["net.py"]
    write_text(target, "new\n")
    assert target.read_text() == "new\n" and target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["net.py"]


BIASES = """name: biases
input: [2, 16, 8]
layers:
  - bias_table: {heads: 2, grid: [4, 4], add: false, name: a.attention_biases}
  - bias_table: {heads: 2, grid: [4, 4], offsets: signed, flat: true, index_name: relative_position_index, name: r.table}
  - bias_table: {heads: 2, grid: [4, 4], persistent: true, name: b.attention_biases}
  - parameter: {op: sub, shape: [8, 2], view: [16, 1], name: p}
  - reshape: {shape: [8, 4, 16], from: b.attention_biases}
  - bias_table: {heads: 8, grid: [4, 4], stride: 2, name: c.attention_biases}
  - reshape: {shape: [2, 16, 16], name: back}
  - add: {from: [p, back]}
"""


def test_parent_held_rows_export_their_own_arithmetic_and_index():
    """A parent's parameter is written with its own operation (a `parameter` row's sub and view, not a
    product) and a bias_table's index rebuilt in plain torch: random weights give the same output, and
    every index (not in the state_dict where the model keeps it out) equals the bridge's."""
    graph = parse_text(BIASES)
    ours = to_torch(graph).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.copy_(torch.randn_like(p))
    theirs = exported(graph).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    assert {n: b.tolist() for n, b in theirs.named_buffers()} == {n: b.tolist() for n, b in ours.named_buffers()}
    x = torch.randn(2, 2, 16, 8)
    with torch.no_grad():
        torch.testing.assert_close(theirs(x), ours(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    "row",
    [
        *(
            f"parameter: {{op: {op}, shape: [4, 1, 1], init: 0.5, name: p}}"
            for op in ("add", "sub", "rsub", "div", "rdiv")
        ),
        "parameter: {op: add, shape: [4], view: [4, 1, 1], init: 0.5, name: p}",
        "reshape: [4, -1]\n  - class_token: {tokens: 2, init: 0.5, name: cls_token}",
        "parameter: {op: matmul, shape: [3, 2], init: 0.5, name: p}",  # x @ p
        "parameter: {op: linear, shape: [2, 3], init: 0.5, name: p}",  # x @ p.T
    ],
)
def test_a_parents_parameter_exports_as_its_own_expression(row):
    # a parameter row's op, a class token and x @ p were once written as a product, as a layer scale is
    same_network(parse_text(f"input: [3, 5, 5]\nlayers:\n  - conv: {{out: 4, kernel: 3}}\n  - {row}\n"))


@pytest.mark.parametrize(
    "item",
    [
        "parameter: {op: add, shape: [5], bias: true}",
        "parameter: {op: rsub, shape: [5]}",
        "parameter: {op: div, shape: [5], view: [5, 1, 1]}",
        "parameter: {op: rdiv, shape: [1]}",
        "parameter: {op: linear, shape: [3, 5]}",  # x @ p^T
        "parameter: {op: matmul, shape: [5, 2]}",  # x @ p
    ],
)
def test_a_parameter_row_exports_its_own_operation(item):
    """A parameter row is written inline with the parent's parameter: each op as itself (every op
    was written `x * p` before; the random chains draw the layer table's first row, a mul)."""
    same_network(parse_text(f"input: [3, 4, 5]\nlayers:\n  - conv: {{out: 5, kernel: 1}}\n  - {item}\n"))
