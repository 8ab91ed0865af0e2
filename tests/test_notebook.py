"""The Python API for notebooks: `cnncalc.load` of a path, a built-in, YAML text or a dict, and a
Report as a dict (the JSON payload), Markdown, HTML (Jupyter) and a pandas DataFrame."""

import json
import sys

import pytest
from typer.testing import CliRunner

import cnncalc
from cnncalc.cli import app
from cnncalc.errors import CnncalcError, MissingExtraError
from cnncalc.spec.library import builtin_path

runner = CliRunner()
TEXT = "input: [1, 28, 28]\nlayers: [conv: {out: 4, kernel: 3}, relu, flatten, linear: 10]"
DATA = {"input": [1, 28, 28], "layers": [{"conv": {"out": 4, "kernel": 3}}, "relu", "flatten", {"linear": 10}]}


def test_load_every_form_gives_the_same_graph():
    from_text, from_dict = cnncalc.load(TEXT), cnncalc.load(DATA)
    assert [(n.name, n.kind) for n in from_text.nodes] == [(n.name, n.kind) for n in from_dict.nodes]
    report = cnncalc.analyze(from_dict)
    assert report.totals.weights == 1 * 4 * 3 * 3 + (4 * 26 * 26) * 10  # conv + linear
    assert (
        cnncalc.load("lenet5").nodes
        == cnncalc.load(builtin_path("lenet5")).nodes
        == cnncalc.load(str(builtin_path("lenet5"))).nodes
    )
    assert cnncalc.load("{input: [3, 8, 8], layers: [relu]}").input_shape == (3, 8, 8)


def test_load_errors_say_where():
    with pytest.raises(CnncalcError, match="<dict>: layers\\[0\\] 0: conv needs 'kernel'"):
        cnncalc.load({"input": [3, 8, 8], "layers": [{"conv": {"out": 2}}]})
    with pytest.raises(CnncalcError, match="<text>:2: .*unknown layer type 'relux'"):
        cnncalc.load("input: [3, 8, 8]\nlayers: [relux]")
    with pytest.raises(CnncalcError, match="no built-in architecture named 'vgg17'"):
        cnncalc.load("vgg17")


@pytest.fixture(scope="module")
def report():
    return cnncalc.analyze(cnncalc.load("lenet5"))


def test_to_dict_is_the_json_output(report):
    result = runner.invoke(app, ["summary", "lenet5", "--format", "json"])
    assert report.to_dict() == json.loads(result.stdout)
    assert report.to_dict()["schema_version"] == 1


def test_markdown_is_the_summary_table(report):
    result = runner.invoke(app, ["summary", "lenet5", "--format", "markdown"])
    assert report.to_markdown() == report._repr_markdown_() == result.stdout


def test_html_table(report):
    text = report._repr_html_()
    assert text.count("<tr>") == len(report.rows) + 2  # header, rows, totals
    assert f"{report.totals.weights:,}" in text and text.startswith("<div>")
    odd = cnncalc.analyze(cnncalc.load({"name": "a<b>&c", "input": [3, 8, 8], "layers": ["relu"]}))
    assert "a&lt;b&gt;&amp;c" in odd._repr_html_() and "<b>" not in odd._repr_html_()


def test_pandas_frame(report):
    pytest.importorskip("pandas")
    frame = report.to_pandas()
    assert list(frame.index) == [r.name for r in report.rows]
    assert frame["params"].sum() == report.totals.params
    assert frame["macs"].sum() == report.totals.macs
    assert frame.loc["input", "output_shape"] == report.input_shape


def test_pandas_missing_is_a_clean_error(report, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` raises ImportError
    with pytest.raises(MissingExtraError, match="needs pandas"):
        report.to_pandas()


def test_core_does_not_import_the_presentation_layer():
    import subprocess

    code = "import sys, cnncalc; cnncalc.analyze(cnncalc.load('lenet5')); print('cnncalc.render' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_readme_notebook_example_runs():
    """The README's notebook block runs, and the number its comment shows is the real one."""
    import re
    from pathlib import Path

    pytest.importorskip("pandas")
    text = (Path(__file__).parent.parent / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.DOTALL) if "to_pandas" in b]
    scope: dict = {}
    exec(block, scope)
    claimed = re.search(r"^(report\.to_dict\(\).*?)\s+# (\d+):", block, re.MULTILINE)
    assert eval(claimed.group(1), scope) == int(claimed.group(2))


def test_str_of_a_report_is_the_summary_table_and_depth_collapses_like_the_option():
    """Issue 19: `str(report)` was the dataclass's repr; `analyze(..., depth=N)` is `--depth N`,
    in the text, the notebook's Markdown and HTML alike."""
    graph = cnncalc.load("resnet18")
    full, shallow = cnncalc.analyze(graph), cnncalc.analyze(graph, depth=1)
    cli = CliRunner().invoke(app, ["summary", "resnet18", "--depth", "1"], terminal_width=200).stdout
    assert str(shallow) == cli and str(full) == CliRunner().invoke(app, ["summary", "resnet18"]).stdout
    assert shallow == cnncalc.collapse(full, 1)
    names = [row.name for row in shallow.rows]
    assert names == [
        "input",
        "conv1",
        "bn1",
        "relu",
        "maxpool",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
        "avgpool",
        "flatten",
        "fc",
    ]
    layer1 = shallow.rows[names.index("layer1")]
    assert layer1.macs == 4 * (56 * 56 * 64) * (3 * 3 * 64)  # two BasicBlocks, two 3x3 64->64 convs each
    assert shallow._repr_markdown_().count("\n| layer") == 4 and "layer1.0.conv1" not in shallow._repr_html_()
    assert "layer1.0.conv1" in full._repr_html_()
    with pytest.raises(cnncalc.CnncalcError, match="depth must be a positive integer"):
        cnncalc.analyze(graph, depth=0)
