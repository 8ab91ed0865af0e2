"""The workflow commands: diff, sweep, memory --fit, plot (terminal bars and pictures), profile
--plot, and --format dot|mermaid of the table commands. Expected numbers come from the single
network commands (`summary -f json`), so each workflow is held to the analysis it wraps."""

import builtins
import csv
import importlib.util
import io
import json
import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

import cnncalc
from cnncalc.analysis import DType, analyze, predicted_memory
from cnncalc.cli import ExitCode, app
from cnncalc.render import Bar, Bytes, Delta, Format, Output, Ratio, Table, write
from cnncalc.render.bars import FULL

needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="the plot extra")
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="the torch extra")
FORMATS = ["text", "markdown", "csv", "json"]


def run(*args):
    return CliRunner().invoke(app, list(args), terminal_width=200)


def totals(*args):
    result = run("summary", *args, "-f", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["totals"]


# ----- diff ------------------------------------------------------------------------------------


def test_diff_resnet50_resnet101_totals_and_rows():
    result = run("diff", "resnet50", "resnet101", "-f", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    a, b = totals("resnet50"), totals("resnet101")
    for key in ("params", "macs", "activations", "weights", "biases", "buffers", "flops"):
        change = data["totals"][key]
        assert (change["a"], change["b"], change["delta"]) == (a[key], b[key], b[key] - a[key])
        assert change["ratio"] == pytest.approx(b[key] / a[key])
    assert data["totals"]["training_bytes"]["b"] == b["predicted_peak_bytes"]["training"]
    # ResNet-101 has 17 more bottlenecks in layer3 (23 vs 6), 10 rows each; nothing is only in A
    statuses = [row["status"] for row in data["rows"]]
    assert statuses.count("only_b") == (23 - 6) * 10 and statuses.count("only_a") == 0
    # the rows' deltas add up to the totals' deltas (a missing side counts as zero)
    for key in ("params", "macs", "activations"):
        assert sum(row["changes"][key]["delta"] for row in data["rows"]) == data["totals"][key]["delta"]
    assert data["changed"] is True


def test_diff_one_spec_at_two_inputs():
    data = json.loads(run("diff", "resnet18", "--input-b", "3x256x256", "-f", "json").stdout)
    assert data["a"]["input"] == [3, 224, 224] and data["b"]["input"] == [3, 256, 256]
    assert data["totals"]["params"]["delta"] == 0
    assert data["totals"]["macs"]["b"] == totals("resnet18", "--input", "3x256x256")["macs"]
    assert {row["status"] for row in data["rows"]} <= {"same", "changed"}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("a", "b"), [("vgg11", "vgg16"), ("alexnet", "alexnet_grouped"), ("resnet18", "resnet34")])
def test_diff_writes_every_format(a, b, fmt):
    result = run("diff", a, b, "-f", fmt)
    assert result.exit_code == 0, result.stderr
    ta, tb = totals(a), totals(b)
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(result.stdout)))
        header, total = rows[0], rows[-1]
        assert total[0] == "total"
        assert (
            int(total[header.index("Params A")]) == ta["params"]
            and int(total[header.index("Params B")]) == tb["params"]
        )
        assert int(total[header.index("MACs +/-")]) == tb["macs"] - ta["macs"]
        assert float(total[header.index("MACs x")]) == pytest.approx(tb["macs"] / ta["macs"], abs=1e-6)
    elif fmt != "json":
        assert f"params: {ta['params']:,} -> {tb['params']:,}" in result.stdout
        assert f"x{tb['macs'] / ta['macs']:.2f}" in result.stdout


def test_diff_shows_changed_rows_unless_all():
    short = run("diff", "vgg11", "vgg13").stdout
    full = run("diff", "vgg11", "vgg13", "--all").stdout
    assert "unchanged rows not shown" in short and "unchanged rows not shown" not in full
    assert len(full.splitlines()) > len(short.splitlines())
    assert re.search(r"^features\.2 +(changed|renamed|only)", full, re.M)  # vgg13 inserts a conv after conv1


def test_diff_quantities_choose_columns():
    header = run("diff", "lenet5", "lenet5", "-q", "activations", "-q", "weights", "-f", "csv").stdout.splitlines()[0]
    assert (
        header
        == "Layer,Change,Output A,Output B,Act. A,Act. B,Act. +/-,Act. x,Weights A,Weights B,Weights +/-,Weights x"
    )
    # one Quantity for every command, but -q offers only the per-row ones: a whole-network
    # quantity is refused as typer refuses any value not listed (usage error, exit 2)
    refused = run("diff", "lenet5", "-q", "flops")
    assert refused.exit_code == ExitCode.USAGE
    assert "'flops' is not one of 'weights', 'biases', 'params', 'buffers', 'activations', 'macs'." in refused.stderr
    assert "<weights|biases|params|buffers|activations|macs>" in run("diff", "--help").stdout


def test_profile_dtype_offers_what_pytorch_runs():
    # the one DType, of which profile takes all but int8, a size only (refused before torch is imported)
    refused = run("profile", "lenet5", "--dtype", "int8")
    assert refused.exit_code == ExitCode.USAGE
    assert "'int8' is not one of 'fp32', 'fp16', 'bf16', 'fp64'." in refused.stderr
    assert "--dtype <fp32|fp16|bf16|fp64>" in run("profile", "--help").stdout


def test_diff_fail_on_change():
    assert run("diff", "resnet18", "resnet18", "--fail-on-change").exit_code == ExitCode.OK
    assert run("diff", "resnet18", "resnet34").exit_code == ExitCode.OK  # a difference alone is not a failure
    assert run("diff", "resnet18", "resnet34", "--fail-on-change").exit_code == ExitCode.CHANGED == 7
    assert run("diff", "lenet5", "--input-b", "1x36x36", "--fail-on-change").exit_code == ExitCode.CHANGED


def test_diff_renamed_row_is_matched_by_position(tmp_path):
    base = "name: t\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, name: %s}\n  - relu\n"
    (tmp_path / "a.yaml").write_text(base % "first")
    (tmp_path / "b.yaml").write_text(base % "renamed")
    out = run("diff", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))
    assert out.exit_code == 0
    assert re.search(r"^renamed +renamed from first", out.stdout, re.M)


# ----- sweep -----------------------------------------------------------------------------------


def test_sweep_one_row_per_combination_held_to_summary():
    result = run(
        "sweep",
        "resnet50",
        "--input",
        "3x{128,160,192,224,256}",
        "--batch",
        "1,8,64",
        "--dtype",
        "fp32,bf16",
        "-f",
        "json",
    )
    assert result.exit_code == 0
    rows = json.loads(result.stdout)["rows"]
    assert len(rows) == 5 * 3 * 2
    assert [(r["input"][1], r["batch"], r["dtype"]) for r in rows[:3]] == [
        (128, 1, "fp32"),
        (128, 1, "bf16"),
        (128, 8, "fp32"),
    ]
    g = cnncalc.load("resnet50")
    for r in rows[::7]:
        report = analyze(g, input_shape=tuple(r["input"]), batch=r["batch"], dtype=DType(r["dtype"]))
        assert r["macs"] == report.totals.macs and r["params"] == 25_557_032
        assert r["activation_bytes"] == report.totals.activations * r["batch"] * (4 if r["dtype"] == "fp32" else 2)
        assert r["inference_bytes"] == predicted_memory(report, train=False)
        assert r["training_bytes"] == predicted_memory(report, train=True)
        assert r["output_shape"] == [1000]


def test_sweep_sizes_that_do_not_fit_are_rows_with_the_reason():
    result = run("sweep", "lenet5", "--input", "1x{4,32}", "--batch", "1,2")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    small = [line for line in lines if line.startswith("1x4x4")]
    assert len(small) == 2 and all(
        "does not fit:" in line and "kernel is larger than the padded input" in line for line in small
    )
    assert "2 of 4 combinations do not fit" in result.stdout
    data = json.loads(run("sweep", "lenet5", "--input", "1x{4,32}", "-f", "json").stdout)
    assert [r["fits"] for r in data["rows"]] == [False, True] and data["rows"][0]["macs"] is None
    assert "conv1" in data["rows"][0]["error"]


def test_sweep_strict_turns_an_untiled_stride_into_a_row():
    data = json.loads(run("sweep", "alexnet", "--input", "3x{227,228}", "--strict", "-f", "json").stdout)
    assert [r["fits"] for r in data["rows"]] == [True, False]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["vgg16", "googlenet", "examples/mnist_cnn"])
def test_sweep_every_format(name, fmt):
    result = run("sweep", name, "--batch", "1,32", "-f", fmt)
    assert result.exit_code == 0, result.stderr
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert len(rows) == 2 and int(rows[0]["MACs"]) == totals(name)["macs"]
        assert int(rows[1]["Sum of outputs"]) == 32 * int(rows[0]["Sum of outputs"])


def test_sweep_bad_lists_are_errors():
    for args in (["--input", "3x{128,"], ["--batch", "0"], ["--dtype", "fp8"]):
        result = run("sweep", "resnet18", *args)
        assert result.exit_code == ExitCode.INVALID and result.stderr.startswith("error:"), args


# ----- memory --fit ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "budget", "extra"),
    [
        ("resnet50", "16GiB", ["--train", "--dtype", "bf16"]),
        ("vgg16", "8GB", []),
        ("googlenet", "1.5GiB", ["--train"]),
        ("resnet18", "512MiB", ["--input", "3x160x160"]),
    ],
)
def test_fit_is_the_largest_batch_whose_predicted_peak_fits(name, budget, extra):
    budgets = {"16GiB": 16 * 2**30, "8GB": 8 * 10**9, "1.5GiB": 3 * 2**29, "512MiB": 512 * 2**20}
    result = run("memory", name, "--fit", budget, *extra, "-f", "json")
    assert result.exit_code == 0, result.stderr
    fit = json.loads(result.stdout)
    assert fit["budget_bytes"] == budgets[budget] and fit["fits"]
    kind = "training" if "--train" in extra else "inference"
    others = [a for a in extra if a != "--train"]
    at = totals(name, "--batch", str(fit["batch"]), *others)["predicted_peak_bytes"][kind]
    after = totals(name, "--batch", str(fit["batch"] + 1), *others)["predicted_peak_bytes"][kind]
    assert (at, after) == (fit["bytes_at_batch"], fit["bytes_at_next"])
    assert at <= budgets[budget] < after
    text = run("memory", name, "--fit", budget, *extra).stdout
    assert f"largest batch that fits: {fit['batch']}" in text
    assert f"{fit['batch']:>5}" in text and f"{at:,}" in text and f"{after:,}" in text


def test_fit_when_even_batch_one_does_not_fit():
    result = run("memory", "vgg16", "--fit", "100MiB")
    assert result.exit_code == 0 and "even batch 1 does not fit" in result.stdout
    data = json.loads(run("memory", "vgg16", "--fit", "100MiB", "-f", "json").stdout)
    assert data["batch"] is None and data["bytes_at_next"] == totals("vgg16")["predicted_peak_bytes"]["inference"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_fit_every_format(fmt):
    result = run("memory", "alexnet", "--fit", "4GiB", "-f", fmt)
    assert result.exit_code == 0
    if fmt == "csv":
        (first, second) = list(csv.DictReader(io.StringIO(result.stdout)))
        assert int(second["Batch"]) == int(first["Batch"]) + 1 and (first["Fits"], second["Fits"]) == ("yes", "no")
        assert int(first["Bytes"]) <= 4 * 2**30 < int(second["Bytes"])


def test_fit_bad_budget():
    result = run("memory", "resnet18", "--fit", "16 potatoes")
    assert result.exit_code == ExitCode.INVALID and "memory size" in result.stderr


# issue 19, section 4: budgets by optimizer, precision, reserve and checkpointing

# LeNet-5: conv1 5x5x1x6 + 6, conv2 5x5x6x16 + 16, fc 400x120 + 120, 120x84 + 84, 84x10 + 10
LENET5_PARAMS = (
    (5 * 5 * 1 * 6 + 6) + (5 * 5 * 6 * 16 + 16) + (16 * 5 * 5 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
)


@pytest.mark.parametrize(
    "optimizer, state",
    [
        ("sgd", 0),
        ("momentum", 4 * LENET5_PARAMS),
        ("adam", 2 * 4 * LENET5_PARAMS + 4 * 10),
        ("adamw", 2 * 4 * LENET5_PARAMS + 4 * 10),  # + a step counter per tensor
    ],
)
def test_memory_train_prints_the_peak_by_part(optimizer, state):
    result = run("memory", "lenet5", "--train", "--optimizer", optimizer, "--batch", "8", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["parameter_bytes"] == 4 * LENET5_PARAMS and data["optimizer_bytes"] == state
    assert data["phase"] == "backward" and data["gradient_bytes"] == 4 * LENET5_PARAMS
    assert data["input_bytes"] == 8 * 1 * 32 * 32 * 4
    parts = ("parameter_bytes", "buffer_bytes", "gradient_bytes", "optimizer_bytes", "input_bytes", "activation_bytes")
    assert data["total_bytes"] == sum(data[k] for k in parts) + data["reserve_bytes"]
    text = run("memory", "lenet5", "--train", "--optimizer", optimizer, "--batch", "8").stdout
    assert f"{data['total_bytes']:,}" in text and f"{state:,}" in text
    assert "not included: the CUDA context and cuDNN's workspace (give them with --reserve)" in text
    assert ("CUDA's foreach" in text) == optimizer.startswith("adam")


def test_a_reserve_is_taken_from_the_budget():
    reserve = 3 * 2**30
    with_reserve = json.loads(
        run("memory", "resnet18", "--fit", "16GiB", "--train", "--reserve", "3GiB", "-f", "json").stdout
    )
    without = json.loads(run("memory", "resnet18", "--fit", str(16 * 2**30 - reserve), "--train", "-f", "json").stdout)
    assert with_reserve["batch"] == without["batch"] and with_reserve["reserve_bytes"] == reserve
    assert with_reserve["bytes_at_batch"] == without["bytes_at_batch"] + reserve
    text = run("memory", "resnet18", "--fit", "16GiB", "--train", "--reserve", "3GiB").stdout
    assert "the CUDA context" not in text and "reserve (--reserve) 3.0 GiB" in text


def test_each_optimizer_and_checkpointing_change_the_batch_that_fits():
    def batch(*extra):
        return json.loads(run("memory", "resnet18", "--fit", "8GiB", "--train", *extra, "-f", "json").stdout)["batch"]

    sgd, momentum, adam = batch("--optimizer", "sgd"), batch(), batch("--optimizer", "adam")
    assert sgd >= momentum >= adam
    assert batch("--checkpoint", "layer1,layer2", "--checkpoint", "layer3") > momentum
    assert batch("--dtype", "bf16") > momentum


@pytest.mark.parametrize(
    "args, message",
    [
        (["--checkpoint", "layer1"], "--checkpoint recomputes blocks in a training step's backward pass"),
        (["--optimizer", "adam"], "--optimizer is the optimizer of a training step"),
        (["--train", "--checkpoint", "layer9"], "--checkpoint names no block of the network"),
        (["--train", "--reserve", "lots"], "cannot read a memory size"),
    ],
)
def test_bad_budget_options_are_one_message(args, message):
    result = run("memory", "resnet18", "--fit", "8GiB", *args)
    assert result.exit_code == ExitCode.INVALID and message in result.stderr and "Traceback" not in result.stderr


# ----- plot ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lenet5", "vgg16", "resnet18", "googlenet"])
def test_terminal_bars_without_any_extra(name):
    result = run("plot", name)
    assert result.exit_code == 0
    g = cnncalc.load(name)
    report = analyze(g)
    top = max(report.rows[1:], key=lambda r: r.macs)
    table = result.stdout.splitlines()[2:]  # under the title and the blank line
    body = table[2 : 2 + len(report.rows) - 1]
    assert [line.split()[0] for line in body] == [r.name for r in report.rows[1:]]
    biggest = next(line for line in body if line.split()[0] == top.name)
    assert FULL * 16 in biggest  # the largest row fills its bar
    assert re.search(r"^fc3? ", "\n".join(body), re.M) or name != "lenet5"


def test_terminal_bars_follow_depth_and_json():
    data = json.loads(run("plot", "resnet50", "--depth", "1", "-f", "json").stdout)
    names = [r["name"] for r in data["rows"]]
    assert names[4:8] == ["layer1", "layer2", "layer3", "layer4"]
    assert sum(r["macs"] for r in data["rows"]) == totals("resnet50")["macs"]


@needs_matplotlib
@pytest.mark.parametrize(
    ("name", "suffix", "depth"), [("vgg16", "png", None), ("resnet152", "svg", None), ("googlenet", "png", "1")]
)
def test_plot_writes_a_picture(tmp_path, name, suffix, depth):
    path = tmp_path / f"net.{suffix}"
    result = run("plot", name, "-o", str(path), *(["--depth", depth] if depth else []))
    assert result.exit_code == 0, result.stderr
    last = result.stderr.splitlines()[-1]  # under any warnings
    assert result.stdout == "" and last.startswith(f"wrote {path} (")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == "png" else b"<svg" in data
    if name == "resnet152":  # 500+ rows collapse on their own
        assert "collapsed to depth" in last


def test_plot_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = run("plot", "lenet5", "-o", str(tmp_path / "x.png"))
    assert result.exit_code == ExitCode.MISSING_EXTRA == 5
    assert "cnncalc[plot]" in result.stderr and not (tmp_path / "x.png").exists()
    assert run("plot", "lenet5").exit_code == 0  # the terminal bars need nothing


def test_plot_unknown_picture_format(tmp_path):
    result = run("plot", "lenet5", "-o", str(tmp_path / "x.gif"))
    assert result.exit_code == ExitCode.INVALID and "picture format" in result.stderr


@needs_torch
@needs_matplotlib
def test_profile_plot_adds_time_and_tflops_panels(tmp_path):
    path = tmp_path / "prof.png"
    result = run("profile", "lenet5", "--no-check", "--warmup", "0", "--iters", "2", "--plot", str(path))
    assert result.exit_code == 0, result.stderr
    assert "per layer" in result.stdout  # --plot implies --per-layer
    assert "panels: macs, params, activation_bytes, time, tflops" in result.stderr and path.read_bytes().startswith(
        b"\x89PNG"
    )


def test_profile_plot_checks_the_target_first(tmp_path):
    result = run("profile", "lenet5", "--plot", str(tmp_path / "x.gif"))
    assert result.exit_code == ExitCode.INVALID and "picture format" in result.stderr


# ----- --format dot / mermaid ------------------------------------------------------------------


def _edges(graph):
    return {(f"n{j}", f"n{i}") for i, node in enumerate(graph.nodes) for j in node.inputs}


@pytest.mark.parametrize("command", ["shapes", "params", "memory", "flops", "summary"])
@pytest.mark.parametrize("name", ["resnet18", "googlenet", "alexnet_grouped"])
def test_table_commands_write_the_layer_graph(command, name):
    g = cnncalc.load(name)
    dot = run(command, name, "-f", "dot")
    assert dot.exit_code == 0, dot.stderr
    assert set(re.findall(r"^  (n\d+) -> (n\d+);$", dot.stdout, re.M)) == _edges(g)
    assert len(re.findall(r"^  n\d+ \[label=", dot.stdout, re.M)) == len(g.nodes)
    mermaid = run(command, name, "-f", "mermaid")
    assert mermaid.exit_code == 0 and mermaid.stdout.startswith("flowchart TD\n")
    assert set(re.findall(r"^  (n\d+) --> (n\d+)$", mermaid.stdout, re.M)) == _edges(g)


def test_dot_follows_input_and_depth():
    out = run("summary", "resnet18", "--input", "3x256x256", "--depth", "1", "-f", "dot").stdout
    assert 'label="conv1\\nconv\\n64x128x128\\n9,408 params"' in out
    assert "layer1\\nsequential (14 layers)" in out
    assert len(re.findall(r"^  n\d+ \[label=", out, re.M)) == 1 + 4 + 4 + 3  # input, stem, 4 stages, pool/flatten/fc


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_graphviz_draws_the_cli_output(tmp_path):
    source = tmp_path / "g.dot"
    source.write_text(run("shapes", "googlenet", "-f", "dot").stdout)
    plain = subprocess.run(["dot", "-Tplain", str(source)], capture_output=True, text=True, check=True).stdout
    g = cnncalc.load("googlenet")
    assert sum(line.startswith("node ") for line in plain.splitlines()) == len(g.nodes)
    assert sum(line.startswith("edge ") for line in plain.splitlines()) == len(_edges(g))


@pytest.mark.parametrize(
    ("args", "writes"),
    [
        (["list"], "text, markdown, csv, json"),
        (["layers"], "text, markdown, csv, json"),
        (["diff", "lenet5", "lenet5"], "text, markdown, csv, json"),
        (["sweep", "lenet5"], "text, markdown, csv, json"),
        (["plot", "lenet5"], "text, markdown, csv, json"),
        (["memory", "lenet5", "--fit", "1GiB"], "text, markdown, csv, json"),
        (["conv", "--input", "7x7", "--kernel", "3"], "text, markdown, json"),
    ],
)
@pytest.mark.parametrize("fmt", ["dot", "mermaid"])
def test_a_command_without_a_graph_says_so(args, writes, fmt):
    result = run(*args, "-f", fmt)
    assert result.exit_code == ExitCode.INVALID and result.stdout == ""
    assert f"cnncalc {args[0]} cannot write {fmt}; it writes: {writes}" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["shapes", "lenet5"],
        ["params", "lenet5"],
        ["memory", "lenet5"],
        ["flops", "lenet5"],
        ["summary", "lenet5"],
        ["list"],
        ["layers"],
        ["diff", "lenet5", "lenet5"],
        ["sweep", "lenet5"],
        ["plot", "lenet5"],
        ["conv", "--input", "7x7", "--kernel", "3"],
        ["pool", "--input", "7x7", "--kernel", "3"],
        ["convolve", "--input", "1 2; 3 4", "--kernel", "1"],
        ["convolve-transpose", "--input", "1 2; 3 4", "--kernel", "1"],
        ["check", "alexnet", "--layer", "conv1", "--shape", "55x55x96"],
    ],
)
def test_format_help_lists_what_the_command_writes(args):
    """The formats `-h` shows for --format are exactly those the command then writes: a format
    listed is written, one left out is refused with the list."""
    usage = run(args[0], "-h").stdout
    listed = re.search(r"-f, --format \[([a-z|]+)\]", usage)
    assert listed, usage
    written = [fmt.value for fmt in Format if run(*args, "-f", fmt.value).exit_code == 0]
    assert listed.group(1).split("|") == written


# ----- the cells the workflows print -----------------------------------------------------------


def test_delta_ratio_bytes_and_bar_cells():
    table = Table(
        ("d", "r", "b", "bar"),
        ((Delta(1234), Ratio(1.5), Bytes(3 * 2**20), Bar(1, 2, 4)), (Delta(-5), None, Bytes(10), Bar(0, 2, 4))),
        (True, True, True, False),
    )
    out = Output("demo", (table,))
    assert write(out, Format.TEXT) == (
        "     d      r        b  bar\n"
        "------  -----  -------  ----\n"
        "+1,234  x1.50  3.0 MiB  ██\n"
        "    -5            10 B\n"
    )
    assert write(out, Format.CSV) == f"d,r,b,bar\n1234,1.5,{3 * 2**20},0.5\n-5,,10,0.0\n"


def test_diff_never_pairs_rows_of_different_types():
    # torchvision-style names are positions: features.2 is a relu in VGG11 and a conv in VGG13
    rows = json.loads(run("diff", "vgg11", "vgg13", "-f", "json").stdout)["rows"]
    paired = [r for r in rows if r["type_a"] and r["type_b"]]
    assert paired and all(r["type_a"] == r["type_b"] for r in paired)


def test_sweeps_sum_of_outputs_is_named_for_what_it_sums():
    """Issue 19: sweep's "Act. bytes" exceeded its "Training peak" with nothing to say why. The
    column sums every row's output (VGG16: 28,701,160 activations, tests/test_check.py's
    arithmetic; 4 bytes each in fp32), which is more than is ever held at once."""
    from test_check import VGG16_FULL_MEMORY

    result = run("sweep", "vgg16", "--batch", "1,128", "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [int(r["Sum of outputs"]) for r in rows] == [VGG16_FULL_MEMORY * 4, VGG16_FULL_MEMORY * 4 * 128]
    assert int(rows[1]["Sum of outputs"]) > int(rows[1]["Training peak"])  # the comparison the footer explains
    text = run("sweep", "vgg16", "--batch", "1,128").stdout
    assert (
        "the sum of every row's output (in-place activations and views included: more than is ever held at once, "
        "so it can exceed the peaks)" in text
    )
