"""The command line: every command, every format, the JSON contract, and no torch on import."""

import csv
import io
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import cnncalc
from cnncalc.analysis import DType, analyze
from cnncalc.cli import ExitCode, app
from cnncalc.spec import library

runner = CliRunner()
COMMANDS = ["shapes", "params", "memory", "flops", "summary"]


def run(*args):
    result = runner.invoke(app, list(args), terminal_width=200)
    return result


def test_importing_the_cli_does_not_load_torch():
    code = "import sys, cnncalc.cli; print(sorted(m for m in ('torch', 'fvcore', 'torchvision') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _typer_in_range() -> bool:
    from importlib.metadata import version

    major, minor = (int(part) for part in version("typer").split(".")[:2])
    return (major, minor) < (0, 29)


@pytest.mark.skipif(
    not _typer_in_range(), reason="installed typer is outside pyproject's range (>=0.12,<0.29): 0.29+ imports pydantic"
)
def test_summary_process_does_not_load_pydantic_or_rich():
    """pyproject caps typer below 0.29, whose per-parameter pydantic adapters cost ~80 ms of start-up."""
    code = (
        "import sys, io, contextlib; from cnncalc.cli import main; sys.argv = ['cnncalc', 'summary', 'resnet152', '-f', 'json']\n"
        "try:\n    with contextlib.redirect_stdout(io.StringIO()): main()\nexcept SystemExit as exit: assert not exit.code\n"
        "print(sorted(m for m in ('pydantic', 'rich', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_static_command_does_not_load_torch():
    code = (
        "import sys; from typer.testing import CliRunner; from cnncalc.cli import app; "
        "r = CliRunner().invoke(app, ['summary', 'resnet50']); assert r.exit_code == 0; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("command", COMMANDS)
def test_json_contract(command):
    result = run(command, "resnet18", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["schema_version"] == 1
    assert data["name"] == "ResNet-18" and data["input"] == [3, 224, 224]
    assert data["layers"][0]["type"] == "input"
    for row in data["layers"]:
        assert {
            "name",
            "type",
            "output_shape",
            "activations",
            "weights",
            "biases",
            "params",
            "buffers",
            "macs",
            "flops",
        } <= set(row)
        assert row["params"] == row["weights"] + row["biases"] and row["flops"] == 2 * row["macs"]
    totals = data["totals"]
    assert {
        "weights",
        "biases",
        "params",
        "buffers",
        "activations",
        "activations_with_input",
        "macs",
        "flops",
        "peak_activations",
    } <= set(totals)
    assert totals["params"] == 11_689_512 and totals["macs"] == 1_814_073_344
    assert totals["activations"] == sum(r["activations"] for r in data["layers"][1:])


def test_vgg16_table_output():
    result = run("params", "architectures/vgg16.yaml")
    assert result.exit_code == 0
    out = result.stdout
    assert "224x224x64" in out and "1,728" in out and "102,760,448" in out
    assert "138,344,128" in out and "138,357,544" in out  # weights in the table, both in the totals


def test_params_biases_adds_columns():
    without = run("params", "alexnet").stdout
    with_biases = run("params", "alexnet.yaml", "--biases").stdout
    assert "Biases" not in without.splitlines()[1] and "Biases" in with_biases
    assert "62,378,344" in with_biases


def test_memory_batch_and_dtype_scale_bytes():
    data = json.loads(run("memory", "vgg16", "--batch", "32", "--dtype", "fp16", "-f", "json").stdout)
    conv = data["layers"][1]
    assert conv["activation_bytes"] == 224 * 224 * 64 * 32 * 2
    # fp16 is autocast: the parameters stay fp32 (the peak test_budget measures holds them so);
    # fp64 is the model cast, 8 bytes each
    assert data["totals"]["param_bytes"] == 138_357_544 * 4
    data = json.loads(run("memory", "vgg16", "--dtype", "fp64", "-f", "json").stdout)
    assert data["layers"][1]["activation_bytes"] == 224 * 224 * 64 * 8
    assert data["totals"]["param_bytes"] == 138_357_544 * 8


def test_layout_and_input_override():
    out = run("shapes", "alexnet", "--layout", "chw", "--input", "3x227x227").stdout
    assert "96x55x55" in out
    data = json.loads(run("shapes", "lenet5", "--input", "1x36x36", "-f", "json").stdout)
    assert data["input"] == [1, 36, 36] and data["layers"][1]["output_shape"] == [6, 32, 32]


def test_csv_and_markdown():
    rows = list(csv.reader(io.StringIO(run("flops", "lenet5", "-f", "csv").stdout)))
    assert rows[0] == ["Layer", "Type", "Output", "MACs", "FLOPs (2xMACs)"]
    assert rows[1][0] == "input" and rows[-1][0] == "total"
    assert int(rows[-1][3]) == sum(int(r[3]) for r in rows[1:-1])
    md = run("summary", "lenet5", "-f", "markdown").stdout
    assert md.startswith("### LeNet-5") and "| conv1 | conv | 28x28x6 |" in md


def test_depth_collapses_blocks():
    data = json.loads(run("summary", "resnet34", "--depth", "1", "-f", "json").stdout)
    assert [r["name"] for r in data["layers"]] == [
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
    assert data["layers"][5]["type"] == "sequential" and data["layers"][5]["output_shape"] == [64, 56, 56]


LOSSY = """\
input: [1, 10, 10]
layers:
  - conv: {out: 1, kernel: 2, stride: 3, name: a}
  - parallel:
      name: mix
      branches:
""" + "".join("        - [conv: {out: 1, kernel: 2, stride: 2, name: c}]\n" for _ in range(8))


def test_warning_and_strict(tmp_path):
    # a stride that leaves real input unread warns, and --strict makes it exit code 3; ResNet's
    # stride-2 layers leave only padding unread, so they no longer warn (issue 9; this test used them)
    path = tmp_path / "lossy.yaml"
    path.write_text(LOSSY)
    result = run("shapes", str(path))
    assert (
        result.exit_code == 0
        and "warning:" in result.stderr
        and "input rows and columns 9 of 0..9 are never read" in result.stderr
    )
    result = run("shapes", str(path), "--strict")
    assert result.exit_code == ExitCode.STRICT and result.stderr.startswith("error:")
    result = run("shapes", "resnet18", "--strict")
    assert result.exit_code == 0 and result.stderr == ""


@pytest.mark.parametrize("command", [*COMMANDS, "validate"])
def test_quiet_suppresses_warnings_and_a_repeated_one_prints_once(command, tmp_path):
    path = tmp_path / "lossy.yaml"
    path.write_text(LOSSY)
    loud = run(command, str(path))
    lines = loud.stderr.splitlines()
    assert loud.exit_code == 0 and len(lines) == 2 and all(line.startswith("warning:") for line in lines)
    # the eight branches' convolutions share one message: the first named, then the count and the others
    assert (
        "mix.branch1.c" in lines[1]
        and "(and 7 more layers like it: mix.branch2.c, mix.branch3.c, mix.branch4.c, mix.branch5.c, mix.branch6.c, ...)"
        in lines[1]
    )
    quiet = run(command, str(path), "-q")
    assert quiet.exit_code == 0 and quiet.stderr == "" and quiet.stdout == loud.stdout


def test_style_lecture_is_the_vgg16_table():
    out = run("summary", "vgg16", "--style", "lecture").stdout
    table = [
        line for line in out.splitlines() if line.startswith(("input", "features", "avgpool", "flatten", "classifier"))
    ]
    assert len(table) == 22 and not any("relu" in line or "dropout" in line for line in table)
    assert "15,237,608 (15.2M) with it" in out and "weights 138,344,128" in out
    out = run("params", "vgg19", "--biases", "--style", "lecture").stdout
    assert "16,391,656 (16.4M) without the input" in out and "143,667,240" in out
    data = json.loads(run("summary", "vgg16", "--style", "lecture", "-f", "json").stdout)
    assert data["style"] == "lecture" and data["totals"]["activations_with_input"] == 15_237_608
    assert run("flops", "vgg16", "--style", "lecture", "--convention", "all").exit_code == ExitCode.INVALID


def test_default_totals_say_views_are_not_new_memory():
    out = run("summary", "vgg16").stdout
    assert "one output per row; new tensors 28,667,880 (28.7M) (views such as flatten and dropout are not)" in out


def test_validate_prints_nothing_for_good_specs():
    result = run("validate", "vgg16", "lenet5")
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""


def test_list_shows_every_builtin():
    data = json.loads(run("list", "-f", "json").stdout)
    assert data["schema_version"] == 1
    by_name = {r["name"]: r for r in data["architectures"]}
    assert by_name["vgg16"]["params"] == 138_357_544 and "examples/mnist_cnn" in by_name


def test_the_list_catalog_is_what_the_specs_give(regen_golden):
    """`list` reads cnncalc/architectures/catalog.json (every built-in loaded and analysed took 2 s
    at each call); it must hold what the specs give now (`pytest --regen-golden` rewrites it)."""
    from cnncalc.cli.catalog import CATALOG, catalog_text

    if regen_golden:
        CATALOG.write_text(catalog_text(), encoding="utf-8")
    assert CATALOG.read_text(encoding="utf-8") == catalog_text()


@pytest.mark.parametrize("catalog", ["missing", "not json", "other specs"])
def test_list_computes_its_rows_where_the_catalog_does_not_fit(catalog, tmp_path, monkeypatch):
    from cnncalc.cli import catalog as module

    path = tmp_path / "catalog.json"
    wrong = [{"name": "vgg16", "family": "vgg", "title": "x", "input": [3], "layers": 1, "params": 1, "macs": 1}]
    if catalog == "not json":
        path.write_text("{")
    elif catalog == "other specs":
        path.write_text(json.dumps({"specs": "0" * 64, "architectures": wrong}))
    monkeypatch.setattr(module, "CATALOG", path)
    data = json.loads(run("list", "-f", "json").stdout)
    by_name = {r["name"]: r for r in data["architectures"]}
    assert by_name["vgg16"]["params"] == 138_357_544 and len(by_name) == len(library.builtin_names())


@pytest.mark.parametrize("command", [*COMMANDS, "list", "validate", "layers"])
def test_help(command):
    result = run(command, "--help")
    assert result.exit_code == 0 and "Usage" in result.stdout


def test_main_help_states_the_conventions():
    out = run("--help").stdout
    assert "floor((W - F + 2P)/S) + 1" in out and "FLOPs = 2 x MACs" in out


def test_layers_lists_every_type():
    from cnncalc.layers import REGISTRY

    out = run("layers").stdout
    assert all(kind in out for kind in REGISTRY)


def test_python_dash_m():
    out = subprocess.run(
        [sys.executable, "-m", "cnncalc", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("cnncalc ")


def test_the_version_is_the_packages_own():
    """cnncalc/version.py and pyproject.toml say the same version, and --version prints it."""
    import re
    from pathlib import Path

    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text()  # tomllib is 3.11+
    (declared,) = re.findall(r'^version = "([^"]+)"$', pyproject, flags=re.M)
    assert cnncalc.__version__ == declared
    assert run("--version").stdout == f"cnncalc {declared}\n"


def test_flops_conventions_follow_depth():
    """With --depth, each convention's block rows are the sums of that block's layer rows."""
    full = json.loads(run("flops", "resnet18", "--convention", "all", "-f", "json").stdout)["conventions"]
    deep = json.loads(run("flops", "resnet18", "--convention", "all", "--depth", "1", "-f", "json").stdout)[
        "conventions"
    ]
    assert set(full) == set(deep) == {"cnncalc", "flopcounter", "fvcore", "torchinfo", "thop", "ptflops"}
    for name, counted in deep.items():
        assert sum(counted["rows"].values()) == counted["total"] == full[name]["total"]
        layer1 = sum(v for row, v in full[name]["rows"].items() if row.startswith("layer1."))
        assert counted["rows"]["layer1"] == layer1 and "layer1.0.conv1" not in counted["rows"]


# ----- one presentation layer: one Format, one writer each, no silent fall-back ----------------


@pytest.mark.parametrize(
    ("args", "writes"),
    [
        (["conv", "--input", "7x7", "--kernel", "3"], "text, markdown, json"),
        (["convolve", "--input", "1 2; 3 4", "--kernel", "1"], "text, markdown, json"),
        (["layers"], "text, markdown, csv, json"),
    ],
)
def test_a_format_a_command_cannot_write_is_an_error(args, writes):
    fmt = next(f for f in ("csv", "json", "dot") if f not in writes)
    result = run(*args, "-f", fmt)
    assert result.exit_code == ExitCode.INVALID and result.stdout == ""
    assert f"cnncalc {args[0]} cannot write {fmt}; it writes: {writes}" in result.stderr
    for ok in writes.split(", "):
        assert run(*args, "-f", ok).exit_code == 0, ok


def test_table_is_another_name_for_text():
    assert run("summary", "lenet5", "-f", "table").stdout == run("summary", "lenet5", "-f", "text").stdout
    assert run("summary", "lenet5", "-f", "table").stdout == run("summary", "lenet5").stdout


def test_markdown_keeps_every_footer_line_of_the_text():
    text = run("memory", "lenet5").stdout.splitlines()
    md = run("memory", "lenet5", "-f", "markdown").stdout.splitlines()
    footer = text[text.index("") + 1 :][-5:]  # the totals lines and the predicted peak
    assert footer[-1].startswith("predicted peak") and md[-5:] == [f"- {line}" for line in footer]


def test_writers_print_one_table_in_each_format():
    from cnncalc.render import Abbreviated, Format, Output, ShapeOrder, Table, write

    table = Table(
        ("Layer", "Output", "MACs"),
        (("a", (6, 28, 28), 1234), ("b", (16,), Abbreviated(56_000))),
        (False, False, True),
        total=("total", "", 1234 + 56_000),
        notes=(("1*2",), ("3|4",)),
        title="net",
        footer=("note",),
        layout=ShapeOrder.HWC,
    )
    out = Output("demo", (table,), data={"x": 1})
    assert write(out, Format.TEXT) == (
        "net\n\n"
        "Layer  Output             MACs\n"
        "-----  -------  --------------\n"
        "a      28x28x6           1,234\n"
        "      1*2\n"
        "b      16       56,000 (56.0K)\n"
        "      3|4\n"
        "-----  -------  --------------\n"
        "total                   57,234\n"
        "\nnote\n"
    )
    assert write(out, Format.MARKDOWN) == (
        "### net\n\n| Layer | Output | MACs | Working |\n|---|---|---:|---|\n"
        "| a | 28x28x6 | 1,234 | 1\\*2 |\n| b | 16 | 56,000 (56.0K) | 3\\|4 |\n| **total** |  | **57,234** |  |\n\n- note\n"
    )
    assert write(out, Format.CSV) == "Layer,Output,MACs,Working\na,28x28x6,1234,1*2\nb,16,56000,3|4\ntotal,,57234\n"
    assert json.loads(write(out, Format.JSON)) == {"schema_version": 1, "x": 1}


def _json_key(key: object) -> str:
    """A key as JSON writes it: None is "null", True "true", 1 "1"."""
    return next(iter(json.loads(json.dumps({key: 0}))))


def _distinct_in_json(mapping: dict) -> bool:
    """Keys that stay distinct in JSON (not `{"null": 0, None: 0}`, which json.dumps writes as
    one key twice, so that no reading of the text gives the mapping back; cnncalc writes none)."""
    return len({_json_key(key) for key in mapping}) == len(mapping)


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text()),
    lambda inner: st.one_of(
        st.lists(inner),
        st.lists(inner).map(tuple),
        st.dictionaries(st.one_of(st.text(), st.integers(), st.booleans(), st.none()), inner).filter(_distinct_in_json),
    ),
    max_leaves=30,
)


def _has_list(value: object) -> bool:
    if isinstance(value, dict):
        return any(_has_list(v) for v in value.values())
    return isinstance(value, (list, tuple)) and bool(value)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_json_output_is_json_dumps_indent_2_with_each_row_on_one_line(value):
    """The JSON writer (one C-encoder call per row, for start-up time) writes the data json.dumps
    writes; its text is json.dumps(indent=2)'s except that an object in a list, and a list of
    plain values, are on one line (each as json.dumps writes it)."""
    from cnncalc.render.writers import indented_json

    text = indented_json(value)
    assert json.loads(text) == json.loads(json.dumps(value))
    if not _has_list(value):
        assert text == json.dumps(value, indent=2)
    for line in text.splitlines():  # a one-line row or list is json.dumps's own text for it
        item = (
            line.strip().rstrip(",").partition('": ')[2] if line.strip().startswith('"') else line.strip().rstrip(",")
        )
        if item.startswith(("{", "[")) and item not in ("{", "["):
            assert json.dumps(json.loads(item)) == item


def test_keys_that_json_writes_alike_are_written_as_json_dumps_writes_them():
    """Issue 19: hypothesis drew `{'null': None, None: None}`, which json.dumps writes with the key
    "null" twice; the property test now draws keys distinct in JSON, and this one pins the row:
    the writer still writes json.dumps's own text for it."""
    from cnncalc.render.writers import indented_json

    row = {"null": None, None: None}
    assert json.dumps(row) == '{"null": null, "null": null}'
    assert indented_json({"rows": [row]}).splitlines() == [
        "{",
        '  "rows": [',
        '    {"null": null, "null": null}',
        "  ]",
        "}",
    ]
    assert not _distinct_in_json(row) and not _distinct_in_json({1: 0, "1": 0}) and _distinct_in_json({1: 0, "2": 0})


def test_json_output_writes_a_row_per_line():
    from cnncalc.render.writers import indented_json

    rows = indented_json(
        {"layers": [{"name": "a", "shape": [1, 2]}, {"name": "b", "shape": []}], "n": [3], "grid": [[1, 2], [3]]}
    )
    assert rows.splitlines() == [
        "{",
        '  "layers": [',
        '    {"name": "a", "shape": [1, 2]},',
        '    {"name": "b", "shape": []}',
        "  ],",
        '  "n": [3],',
        '  "grid": [',
        "    [1, 2],",
        "    [3]",
        "  ]",
        "}",
    ]


@pytest.mark.parametrize("arch", ["lenet5", "resnet18", "inception_v3"])
@pytest.mark.parametrize("options", [{}, {"explain": True}, {"fields": True}, {"batch": 3, "dtype": DType.BF16}])
def test_a_streamed_json_row_is_json_dumps_of_its_row(arch, options):
    """summary -f json writes a plain row as its JSON line made directly (issue 20, speed): each
    line is json.dumps's own text for the row's dict, as the unstreamed contract makes it."""
    from cnncalc.render.report import json_row_lines, json_rows

    report = analyze(cnncalc.load(arch), **options)
    lines = list(json_row_lines(report))
    rows = list(json_rows(report))
    assert len(lines) == len(rows) == len(report.rows)
    for line, row in zip(lines, rows):
        assert (line if isinstance(line, dict) else json.loads(line)) == row
        if isinstance(line, str):
            assert line == json.dumps(row)
    if not options.get("explain") and not options.get("fields"):  # no working, no receptive field: every row
        assert all(isinstance(line, str) for line in lines)


def test_a_streamed_json_row_escapes_its_names_as_json_dumps_does():
    from cnncalc.render.report import json_row_lines, json_rows
    from cnncalc.spec import parse

    odd = 'caf\u00e9 "q" \\ \u2603 \U0001f600'  # quotes, a backslash, text beyond ASCII and the BMP
    layers = [{"conv": {"out": 4, "kernel": 3, "name": odd}}, {"relu": {"name": "\u00fcber", "from": odd}}]
    report = analyze(parse({"input": [3, 8, 8], "layers": layers}))
    lines = list(json_row_lines(report))
    assert odd in json.loads(lines[2])["inputs"]
    for line, row in zip(lines, json_rows(report)):
        assert line == json.dumps(row)


@pytest.mark.parametrize("count", [0, 1, 1023, 1024, 1025, 2048, 2049])
def test_a_row_stream_is_written_as_its_list_in_pieces_of_flush_rows(count):
    """The JSON writer sends a RowStream's lines FLUSH_ROWS at a time: the text is the list's,
    rows made as dicts or as their lines alike, whatever the count against FLUSH_ROWS."""
    from cnncalc.render.document import RowStream
    from cnncalc.render.writers import FLUSH_ROWS, indented_json, write_json

    assert FLUSH_ROWS == 1024  # (the counts above sit at its edges)
    rows = [{"i": i, "name": f"r{i}"} for i in range(count)]

    def made():  # every third row as its line already, as json_row_lines makes it
        return (json.dumps(row) if row["i"] % 3 == 0 else row for row in rows)

    pieces: list[str] = []
    write_json({"layers": RowStream(count, made), "after": [1, 2]}, pieces.append)
    assert "".join(pieces) == indented_json({"layers": rows, "after": [1, 2]})
    assert len(pieces) == count // FLUSH_ROWS + 1  # one piece each full FLUSH_ROWS, then the rest


def test_registering_a_second_writer_for_a_format_raises():
    from cnncalc.render import Format
    from cnncalc.render.writers import writer

    with pytest.raises(ValueError, match="two writers for text"):
        writer(Format.TEXT, accepts=lambda output: True)(lambda output: "")


def test_new_writes_a_starter_that_validates_and_never_overwrites(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("new", "my net")
    assert result.exit_code == 0, result.stderr
    written = tmp_path / "my net.yaml"
    graph = cnncalc.load(str(written))
    assert graph.name == "my net"
    assert run("validate", str(written)).exit_code == 0
    totals = cnncalc.analyze(graph).totals
    # three 3x3 conv blocks without bias (3->32->64->128), their batch norms, then linear 128->10
    assert totals.params == (3 * 9 * 32 + 32 * 9 * 64 + 64 * 9 * 128) + 2 * (32 + 64 + 128) + (128 * 10 + 10)
    written.write_text("mine")
    again = run("new", "my net.yaml")
    assert again.exit_code == ExitCode.INVALID and "does not overwrite" in again.stderr
    assert written.read_text() == "mine"


def test_dash_reads_the_spec_from_standard_input():
    spec = "input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3}\n"
    result = runner.invoke(app, ["params", "-", "-f", "json"], input=spec)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["totals"]["params"] == 3 * 3 * 3 * 4 + 4
    bad = runner.invoke(app, ["shapes", "-"], input="input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 0}\n")
    assert bad.exit_code == ExitCode.INVALID and bad.stderr.startswith("error: <stdin>:3:")


@pytest.mark.parametrize(
    "env, tty, coloured",
    [
        ({}, False, False),
        ({}, True, True),
        ({"NO_COLOR": "1"}, True, False),
        ({"FORCE_COLOR": "1"}, False, True),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, False, False),
    ],
)
def test_colour_follows_no_color_and_force_color(monkeypatch, env, tty, coloured):
    from cnncalc.cli import common

    for name in ("NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(common.sys.stderr, "isatty", lambda: tty, raising=False)
    assert (common.label("error:", "red") != "error:") is coloured


def test_short_help_and_completion():
    short, long = run("summary", "-h"), run("summary", "--help")
    assert short.exit_code == 0 and short.stdout == long.stdout
    top = run("-h").stdout
    assert "--install-completion" in top and "new" in top


def test_help_examples_stay_one_per_line():
    lines = run("pool", "-h").stdout.splitlines()
    assert "  cnncalc pool --input 55x55x96 --kernel 3 --stride 2" in lines


def test_command_groups_list_every_command():
    """`main` imports only the group of the command it runs: GROUPS must name every command."""
    from cnncalc.cli import GROUPS, _registered

    listed = [name for names in GROUPS.values() for name in names]
    assert sorted(listed) == sorted(_registered())


def test_a_command_imports_only_its_group():
    code = (
        "import sys, io, contextlib; from cnncalc.cli import main; sys.argv = ['cnncalc', 'params', 'lenet5']\n"
        "with contextlib.redirect_stdout(io.StringIO()): main()\n"
    )
    wrapped = (
        f"try:\n    exec({code!r})\nexcept SystemExit as exit:\n    assert not exit.code\n"
        "import sys; print(sorted(m for m in sys.modules if m.startswith('cnncalc.cli.')))"
    )
    out = subprocess.run([sys.executable, "-c", wrapped], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['cnncalc.cli.common', 'cnncalc.cli.tables']"


def test_spinner_writes_only_to_a_terminal(monkeypatch):
    """profile's spinner (started before torch is imported) draws a frame and clears its line
    on a terminal, and writes nothing otherwise."""
    from cnncalc.cli import pytorch

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream, drawn in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(pytorch.sys, "stderr", stream)
        with pytorch._spinner("loading PyTorch"):
            pass
        text = stream.getvalue()
        assert ("loading PyTorch..." in text and text.endswith("\r\033[K")) is drawn and (text == "") is not drawn


def test_layers_json_says_which_arguments_a_spec_must_give():
    """Every layer type `layers -f json` lists loads with only the arguments it calls required, and
    is refused without any one of them."""
    from cnncalc.layers import REGISTRY
    from cnncalc.spec import parse_text

    values = {
        "out": 2,
        "kernel": 1,
        "layers": "[relu]",
        "body": "[relu]",
        "branches": "[[relu], [relu]]",
        "groups": 2,
        "chunks": 2,
        "amounts": 1,
        "padding": 1,
        "dims": "[0, 1, 2, 3]",
        "factor": 2,
        "sizes": "[2, 2]",
        "p": 0.1,
        "shape": "[4, -1]",
        "dim": 1,
        "op": "mul",
        "value": 0.5,
        "size": 2,
        "step": 2,
        "output_size": 8,  # col2im
    }
    # a traced row holds at the input shapes it was traced at only
    by_kind = {
        "traced": {"shape": "[4, 8, 8]", "inputs": "[[4, 8, 8]]", "op": "torch.erf"},
        "parameter": {"shape": "[4, 1, 1]"},
        "unary": {"op": "exp"},
        "repeat": {"repeats": "[1, 2, 1]"},
        "sine_position": {"features": 2},
        "bias_table": {"heads": 4, "grid": "[2, 4]"},  # logits [4 heads, 8 queries, 8 keys] of a 2x4 grid
    }
    types = json.loads(run("layers", "-f", "json").stdout)["layer_types"]

    def spec(kind, names):
        merge = kind in REGISTRY and REGISTRY[kind].min_inputs > 1
        given = [f"{name}: {by_kind.get(kind, {}).get(name, values.get(name))}" for name in names] + (
            [f"from: [{', '.join(['input'] * REGISTRY[kind].min_inputs)}]"] if merge else []
        )
        return f"input: [4, 8, 8]\nlayers:\n  - {kind}: {{{', '.join(given)}}}\n"

    for entry in types:
        required = [a["name"] for a in entry["arguments"] if a["required"]]
        parse_text(spec(entry["type"], required))
        for name in required:
            with pytest.raises(cnncalc.CnncalcError, match=f"needs '{name}'|needs its {name}"):
                parse_text(spec(entry["type"], [n for n in required if n != name]))
    assert {"sequential", "residual", "parallel", "conv", "linear", "add"} <= {t["type"] for t in types}


def test_help_says_a_model_target_runs_its_code():
    from typer.testing import CliRunner

    from cnncalc.cli import app

    def help_of(*command):
        result = CliRunner().invoke(app, [*command, "--help"], terminal_width=1000)
        assert result.exit_code == 0, result.output
        return " ".join(result.stdout.split())  # unwrapped

    assert "This runs the model's code" in help_of("import")
    for command in ("summary", "shapes", "params", "memory", "flops", "profile", "sweep", "plot"):
        assert "run that file's or module's code and the model's forward" in help_of(command), command


@pytest.mark.parametrize("opening, closing", [("[", "]"), ("{a: ", "}")])
def test_an_arg_nested_500_deep_is_one_usage_error(opening, closing):
    """Issue 19 (fuzzing): `--arg x=[[[...]]]` 500 deep was a RecursionError traceback of 207 KB.
    An argument value is a scalar or a flat list, so any nesting is refused, as 2 levels are."""
    value = opening * 500 + "1" + closing * 500
    for command in (["summary", "lenet5"], ["flops", "resnet18"]):
        result = runner.invoke(app, [*command, "--arg", f"x={value}"], terminal_width=200)
        assert result.exit_code == ExitCode.USAGE
        assert "--arg x: a mapping or a nested list is not an argument value" in result.output
        assert "Traceback" not in result.output and "RecursionError" not in result.output
        assert len(result.output) < 2_000  # the value is cut, not echoed in full


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_layers_fits_the_terminal_and_one_type_shows_in_full(columns, monkeypatch):
    """Issue 19: `cnncalc layers` was a 480-column table on an 80-column terminal."""
    from cnncalc.layers import ALIASES, REGISTRY

    monkeypatch.setenv("COLUMNS", str(columns))
    out = runner.invoke(app, ["layers"]).stdout
    assert max(map(len, out.splitlines())) <= columns
    body = out.split("\n\n")[1].splitlines()[2:]  # the rows, between the rule and the footer
    assert [line.split()[0] for line in body if columns >= 80] == (
        [*sorted(REGISTRY), "sequential", "residual", "parallel"] if columns >= 80 else []
    )
    conv = runner.invoke(app, ["layers", "conv2d"]).stdout.splitlines()  # another spelling names the type
    assert conv[0] == f"conv: {REGISTRY['conv'].summary}"
    assert conv[1] == "also written: " + ", ".join(sorted(a for a, k in ALIASES.items() if k == "conv"))
    assert conv[2:5] == ["arguments (default):", "  out (required)", "  kernel (required)"]
    assert "  stride (1)" in conv and "  groups (1)" in conv and "  bias (True)" in conv  # nn.Conv2d's defaults
    data = json.loads(runner.invoke(app, ["layers", "conv", "-f", "json"]).stdout)
    assert [t["type"] for t in data["layer_types"]] == ["conv"]
    wrong = runner.invoke(app, ["layers", "convv"])
    assert wrong.exit_code == ExitCode.INVALID and "hint: did you mean 'conv'" in wrong.stderr


def test_an_unknown_builtin_is_told_in_three_short_lines():
    """Issue 19: the `expected:` line listed every built-in name and was cut mid-way."""
    result = runner.invoke(app, ["summary", "vgg17"])
    lines = result.stderr.splitlines()
    assert result.exit_code == ExitCode.INVALID and len(lines) == 3 and max(map(len, lines)) < 120
    assert lines[1].startswith("  expected: a path to a .yaml spec, or one of the ") and "`cnncalc list`" in lines[1]
    assert lines[2] == "  hint: did you mean 'vgg19' or 'vgg16' or 'vgg13'?"
