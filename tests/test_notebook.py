"""The Python API for notebooks: `cnncalc.load` of a path, a built-in, YAML text or a dict, and a
Report as a dict (the JSON payload), text, Markdown, HTML (what Jupyter shows) and a pandas
DataFrame, through the functions of `cnncalc.render.notebook`."""

import json
import sys

import pytest
from typer.testing import CliRunner

import cnncalc
from cnncalc.cli import app
from cnncalc.errors import CnncalcError, MissingExtraError
from cnncalc.render import notebook
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
    assert notebook.to_dict(report) == json.loads(result.stdout)
    assert notebook.to_dict(report)["schema_version"] == 1


def test_markdown_is_the_summary_table(report):
    result = runner.invoke(app, ["summary", "lenet5", "--format", "markdown"])
    assert notebook.to_markdown(report) == result.stdout


def test_html_table(report):
    text = notebook.to_html(report)
    assert text.count("<tr>") == len(report.rows) + 2  # header, rows, totals
    assert f"{report.totals.weights:,}" in text and text.startswith("<div>")
    odd = cnncalc.analyze(cnncalc.load({"name": "a<b>&c", "input": [3, 8, 8], "layers": ["relu"]}))
    assert "a&lt;b&gt;&amp;c" in notebook.to_html(odd) and "<b>" not in notebook.to_html(odd)


def test_pandas_frame(report):
    pytest.importorskip("pandas")
    frame = notebook.to_pandas(report)
    assert list(frame.index) == [r.name for r in report.rows]
    assert frame["params"].sum() == report.totals.params
    assert frame["macs"].sum() == report.totals.macs
    assert frame.loc["input", "output_shape"] == report.input_shape


def test_pandas_missing_is_a_clean_error(report, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` raises ImportError
    with pytest.raises(MissingExtraError, match="needs pandas"):
        notebook.to_pandas(report)


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
    claimed = re.search(r"^(notebook\.to_dict\(report\).*?)\s+# (\d+):", block, re.MULTILINE)
    assert eval(claimed.group(1), scope) == int(claimed.group(2))


def test_the_text_of_a_report_is_the_summary_table_and_depth_collapses_like_the_option():
    """Issue 19: `analyze(..., depth=N)` is `--depth N`, in the text, the notebook's Markdown and
    HTML alike."""
    graph = cnncalc.load("resnet18")
    full, shallow = cnncalc.analyze(graph), cnncalc.analyze(graph, depth=1)
    cli = CliRunner().invoke(app, ["summary", "resnet18", "--depth", "1"], terminal_width=200).stdout
    text = notebook.to_text
    assert text(shallow) == cli and text(full) == CliRunner().invoke(app, ["summary", "resnet18"]).stdout
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
    assert notebook.to_markdown(shallow).count("\n| layer") == 4 and "layer1.0.conv1" not in notebook.to_html(shallow)
    assert "layer1.0.conv1" in notebook.to_html(full)
    with pytest.raises(cnncalc.CnncalcError, match="depth must be a positive integer"):
        cnncalc.analyze(graph, depth=0)


def test_str_of_a_report_is_one_line_that_says_where_the_table_is(report):
    """The analysis does not import the renderers above it, so `str` is a line, not the table."""
    assert str(report) == (
        f"{report.name}: {len(report.rows) - 1} rows, {report.totals.params:,} parameters, {report.totals.macs:,} MACs"
        " (the table: cnncalc.render.notebook.to_text(report))"
    )


# In IPython, `import cnncalc` registers the renderer as the display formatter for `Report`. The stand-in
# below has the one method of IPython's formatters that cnncalc calls (`for_type(cls, function)`,
# IPython.core.formatters.BaseFormatter); the test after it checks the same with IPython itself.
STAND_IN = """
import sys, types
class Formatter(dict):
    def for_type(self, cls, function): self[cls] = function
class Shell: display_formatter = types.SimpleNamespace(formatters={m: Formatter() for m in ("text/html", "text/markdown", "text/plain")})
shell = Shell()
sys.modules["IPython"] = types.SimpleNamespace(get_ipython=lambda: shell)
import cnncalc
from cnncalc.render import notebook
report = cnncalc.analyze(cnncalc.load("lenet5"))
forms = shell.display_formatter.formatters
class Printer:
    def text(self, text): self.out = text
printer = Printer(); forms["text/plain"][cnncalc.Report](report, printer, False)
print(forms["text/html"][cnncalc.Report](report) == notebook.to_html(report),
      forms["text/markdown"][cnncalc.Report](report) == notebook.to_markdown(report),
      printer.out == notebook.to_text(report))
"""


def test_import_in_ipython_registers_the_report_display():
    import subprocess

    out = subprocess.run([sys.executable, "-c", STAND_IN], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "True"]


def test_load_ext_registers_the_report_display(report):
    """`%load_ext cnncalc.render.notebook` calls load_ipython_extension with the shell."""
    import types

    class Formatter(dict):
        def for_type(self, cls, function):
            self[cls] = function

    forms = {mime: Formatter() for mime in ("text/html", "text/markdown", "text/plain")}
    notebook.load_ipython_extension(types.SimpleNamespace(display_formatter=types.SimpleNamespace(formatters=forms)))
    assert forms["text/html"][cnncalc.Report](report) == notebook.to_html(report)
    assert forms["text/markdown"][cnncalc.Report](report) == notebook.to_markdown(report)


def test_jupyter_shows_a_report_as_its_table():
    """With IPython itself: the shell's display of a report is the table, as HTML, Markdown and text."""
    pytest.importorskip("IPython")
    import subprocess

    code = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "import cnncalc\n"
        "from cnncalc.render import notebook\n"
        "report = cnncalc.analyze(cnncalc.load('lenet5'))\n"
        "data, _ = shell.display_formatter.format(report)\n"
        "print(data['text/html'] == notebook.to_html(report), data['text/markdown'] == notebook.to_markdown(report),"
        " data['text/plain'] == notebook.to_text(report))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "True"]
