"""Quiz tools: the one-layer calculators, --explain, --rf and `check`, against the notes, the core
and PyTorch."""

import json
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import cnncalc
from cnncalc.analysis import analyze
from cnncalc.cli import ExitCode, app
from cnncalc.errors import CnncalcError
from cnncalc.learn.calculator import answer, read_input
from cnncalc.spec import parse_text
from cnncalc.spec.library import builtin_names

try:
    import torch
except ImportError:  # the tests that need it skip themselves, one by one (requires_torch)
    torch = None
requires_torch = pytest.mark.skipif(torch is None, reason="needs PyTorch (the torch extra)")

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args), terminal_width=200)


# ----- one-layer calculators ---------------------------------------------------------------


def test_conv_alexnet_conv1_with_working():
    # 001: CONV1, 96 11x11 filters at stride 4 on 227x227x3: (227-11)/4+1 = 55, (11*11*3)*96 params
    result = run("conv", "--input", "227x227x3", "--kernel", "11", "--out", "96", "--stride", "4")
    assert result.exit_code == 0
    assert "227x227x3 -> 55x55x96" in result.stdout
    assert "(227 - 11 + 2*0)/4 + 1 = 55" in result.stdout
    assert f"weights: (11*11*3)*96 = {(11 * 11 * 3) * 96:,}" in result.stdout
    assert "biases: 96" in result.stdout


def test_conv_that_does_not_fit():
    # 001: 7x7 input, 3x3 filter, stride 3: (7 - 3)/3 + 1 = 2.33, "doesn't fit"
    result = run("conv", "--input", "7", "--kernel", "3", "--stride", "3")
    assert result.exit_code == 0
    assert "unfloored 2.33" in result.stdout and "7x7x1 -> 2x2x1" in result.stdout
    assert "doesn't fit" in result.stderr
    strict = run("conv", "--input", "7", "--kernel", "3", "--stride", "3", "--strict")
    assert strict.exit_code == ExitCode.STRICT


def test_pool_alexnet_pool1():
    # 001: POOL1, 3x3 filters at stride 2 on 55x55x96: (55-3)/2+1 = 27, 0 params
    result = run("pool", "--input", "55x55x96", "--kernel", "3", "--stride", "2")
    assert result.exit_code == 0
    assert "55x55x96 -> 27x27x96" in result.stdout and "(55 - 3 + 2*0)/2 + 1 = 27" in result.stdout
    assert "params: 0" in result.stdout


def test_padding_preserves_size():
    # 001: stride 1 with zero padding (F-1)/2 preserves the size: F = 3, 5, 7 -> pad 1, 2, 3
    for f in (3, 5, 7):
        assert answer("conv", (3, 7, 7), {"out": 1, "kernel": f, "padding": (f - 1) // 2}).output_shape == (1, 7, 7)


def test_transposed_calculator():
    data = json.loads(
        run(
            "conv",
            "--input",
            "4x4x8",
            "--kernel",
            "3",
            "--out",
            "4",
            "--stride",
            "2",
            "--padding",
            "1",
            "--output-padding",
            "1",
            "--transposed",
            "-f",
            "json",
        ).stdout
    )
    assert data["output"] == [4, (4 - 1) * 2 - 2 * 1 + (3 - 1) + 1 + 1, (4 - 1) * 2 - 2 * 1 + (3 - 1) + 1 + 1]
    assert data["weights"] == 8 * 4 * 3 * 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["conv", "--input", "5x5x1", "--kernel", "7"], "kernel is larger than the padded input"),
        (["conv", "--input", "5x5x3", "--kernel", "3", "--out", "4", "--groups", "2"], "not divisible by groups"),
        (["conv", "--input", "axb", "--kernel", "3"], "cannot read --input"),
        (["conv", "--input", "5x5", "--kernel", "three"], "cannot read --kernel"),
        (["pool", "--kernel", "2"], "either --input"),
        (["convolve", "--input", "1 2 3; 4 5", "--kernel", "1"], "ragged"),
        (["convolve", "--input", "1 2; 3 q", "--kernel", "1"], "non-numeric"),
        (
            ["convolve", "--input", "1 2; 3 4", "--kernel", "1 1 1; 1 1 1; 1 1 1"],
            "kernel is larger than the padded input",
        ),
        (["convolve", "--input", "1 2; 3 4 | 1 1; 1 1", "--kernel", "1"], "as many channels"),
        (["convolve-transpose", "--input", "1 2", "--kernel", "1 1", "--padding", "3"], "no output"),
    ],
)
def test_bad_calculator_input(args, message):
    result = run(*args)
    assert result.exit_code == ExitCode.INVALID, result.stdout
    assert message in result.stderr and "Traceback" not in result.stderr


@st.composite
def one_layer(draw):
    rank = draw(st.integers(1, 3))
    channels = draw(st.integers(1, 4))
    size = [draw(st.integers(1, 16)) for _ in range(rank)]
    kind = draw(st.sampled_from(["conv", "conv_transpose", "maxpool", "avgpool"]))
    kernel = draw(st.integers(1, 5))
    args = {"kernel": kernel, "stride": draw(st.integers(1, 4))}
    if kind.startswith("conv"):
        args.update(out=draw(st.integers(1, 4)), padding=draw(st.integers(0, 3)), dilation=draw(st.integers(1, 2)))
    else:
        args.update(padding=draw(st.integers(0, kernel // 2)), ceil_mode=draw(st.booleans()))
    return kind, (channels, *size), args


@settings(max_examples=150, deadline=None)
@given(one_layer())
def test_calculator_equals_core_table_and_torch(case):
    """One implementation: `cnncalc conv`/`pool` give the core table's row, and PyTorch's shape."""
    kind, shape, args = case
    items = ", ".join(f"{k}: {str(v).lower()}" for k, v in args.items())
    graph = parse_text(f"input: {list(shape)}\nlayers:\n  - {kind}: {{{items}}}\n")
    try:
        a = answer(kind, shape, args)
    except CnncalcError:
        with pytest.raises(CnncalcError):
            analyze(graph)
        return
    row = analyze(graph).rows[1]
    assert (a.output_shape, a.weights, a.biases, a.macs) == (row.output_shape, row.weights, row.biases, row.macs)
    if torch is None:
        return  # the torch-free half above still ran
    spec = graph.nodes[1].layer.torch_module([shape])
    module = getattr(torch.nn, spec.name)(**spec.kwargs)
    assert tuple(module(torch.zeros(1, *shape)).shape[1:]) == a.output_shape
    assert sum(p.numel() for p in module.parameters()) == a.params


def test_read_input_orders():
    assert read_input("227x227x3") == (3, 227, 227)
    assert read_input("3x227x227", hwc=False) == (3, 227, 227)
    assert read_input("7") == (1, 7, 7)
    assert read_input("32x32", channels=3) == (3, 32, 32)


# ----- numeric commands --------------------------------------------------------------------


def test_convolve_command_prints_the_seed_matrix_and_steps():
    result = run(
        "convolve",
        "--input",
        "1 3 2 3 3; 3 1 2 1 1; 3 3 3 1 2; 2 2 1 2 1; 2 3 2 1 2",
        "--kernel",
        "1 3 2; 1 3 3; 3 1 1",
        "--padding",
        "1",
        "--stride",
        "2",
        "--steps",
    )
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[-3:] == ["16  24  16", "33  33  18", "25  21  12"]  # 000, padding 1 stride 2
    assert "out[0,0] = 0*1 + 0*3 + 0*2 + 0*1 + 1*3 + 3*3 + 0*3 + 3*1 + 1*1 = 16" in lines
    assert "output size (rows, columns): (5 - 3 + 2*1)/2 + 1 = 3" in lines


def test_pool_values_command():
    result = run(
        "pool",
        "--values",
        "1 3 2 3 3; 3 1 2 1 1; 3 3 3 1 2; 2 2 1 2 1; 2 3 2 1 2",
        "--kernel",
        "3",
        "--stride",
        "2",
        "--padding",
        "1",
        "--mode",
        "max",
    )
    assert result.exit_code == 0 and result.stdout.splitlines()[3] == "3  3  3"


def test_convolve_json():
    data = json.loads(
        run("convolve", "--input", "1 2 3 4", "--kernel", "5 6 7", "--padding", "2", "--flip", "-f", "json").stdout
    )
    assert data["output"] == [[5, 16, 34, 52, 45, 28]]


# ----- --explain and --rf ------------------------------------------------------------------


@pytest.mark.parametrize("name", builtin_names())
def test_every_row_has_working(name):
    report = analyze(cnncalc.load(name), explain=True, fields=True)
    for row in report.rows[1:]:
        assert row.working, row.name
        assert row.field is not None


def test_explain_markdown_for_a_solution_sheet():
    result = run("shapes", "alexnet", "--explain", "-f", "markdown")
    assert result.exit_code == 0
    assert "| Working |" in result.stdout
    assert "(227 - 11 + 2\\*0)/4 + 1 = 55" in result.stdout


def test_rf_columns():
    result = run("shapes", "vgg16", "--rf", "-f", "json")
    rows = {r["name"]: r for r in json.loads(result.stdout)["layers"]}
    # VGG16: two 3x3 convolutions see 5x5 (3 + 2); the first 2x2/2 pool makes it 6 with jump 2
    assert rows["features.2"]["receptive_field"]["size"] == [3 + 2, 3 + 2]
    assert rows["features.4"]["receptive_field"] == {"size": [6, 6], "jump": [2, 2], "start": [0.5, 0.5]}
    assert rows["classifier.0"]["receptive_field"] == "all"


def measured_field(graph, row_name, input_shape):
    """The receptive field of one output position, measured: the input pixels that get a gradient.

    All weights are 1 and the input is positive, so every path contributes; max pooling (which
    routes the gradient to one pixel only) is measured as average pooling of the same window.
    """
    from cnncalc.graph import Graph
    from cnncalc.torch_bridge import build, leaf_modules

    graph = Graph(graph.name, input_shape, graph.nodes[: graph.index(row_name) + 1], graph.containers)
    model = build(graph, input_shape).eval()
    for name, leaf in leaf_modules(model).items():
        if isinstance(leaf, (torch.nn.MaxPool1d, torch.nn.MaxPool2d, torch.nn.MaxPool3d)):
            avg = getattr(torch.nn, type(leaf).__name__.replace("Max", "Avg"))
            model.swap(name, avg(leaf.kernel_size, leaf.stride, leaf.padding, leaf.ceil_mode))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    captured = {}
    leaf = leaf_modules(model)[row_name]
    handle = leaf.register_forward_hook(lambda m, i, o: captured.setdefault("y", o))
    x = torch.ones(1, *input_shape, dtype=torch.float64, requires_grad=True)
    model.double()(x)
    handle.remove()
    y = captured["y"]
    centre = tuple(s // 2 for s in y.shape[2:])
    y[(0, slice(None), *centre)].sum().backward()  # every channel: a concat's branches differ
    touched = x.grad[0].abs().sum(0).nonzero()
    lo, hi = touched.min(0).values.tolist(), touched.max(0).values.tolist()
    assert min(lo) > 0 and all(h < s - 1 for h, s in zip(hi, input_shape[1:])), (
        "clipped by the border: use a larger input"
    )
    return [h - low + 1 for low, h in zip(lo, hi)], centre, [(low + h) / 2 for low, h in zip(lo, hi)]


@requires_torch
@pytest.mark.parametrize(
    "name, row, size",
    [
        ("alexnet", "pool3", 451),
        ("vgg16", "features.28", 256),
        ("resnet18", "layer3.1.add", 320),
        ("zfnet", "conv5", 320),
        ("googlenet", "inception3a.concat", 160),
        ("lenet5", "pool2", 48),
    ],
)
def test_receptive_field_equals_measured_gradient(name, row, size):
    graph = cnncalc.load(name)
    shape = (graph.input_shape[0], size, size)
    graph = type(graph)(graph.name, shape, graph.nodes[: graph.index(row) + 1], graph.containers)
    field = next(r.field for r in analyze(graph, fields=True).rows if r.name == row)
    measured, centre, middle = measured_field(graph, row, shape)
    assert measured == [int(s) for s in field.size]
    # the field of output i is centred at start + i * jump
    assert middle == [float(st + c * j) for st, c, j in zip(field.start, centre, field.jump)]


def measured_span(graph, row_name, position):
    """The input pixels (first, last per axis) whose gradient reaches the output at `position`
    of `row_name` (every channel), all weights 1 and a positive input; None where none does."""
    from cnncalc.graph import Graph
    from cnncalc.torch_bridge import build, leaf_modules

    shape = graph.input_shape
    graph = Graph(graph.name, shape, graph.nodes[: graph.index(row_name) + 1], graph.containers)
    model = build(graph, shape).eval()
    for name, leaf in leaf_modules(model).items():  # max pooling routes the gradient to one pixel
        if isinstance(leaf, torch.nn.MaxPool2d):
            model.swap(name, torch.nn.AvgPool2d(leaf.kernel_size, leaf.stride, leaf.padding, leaf.ceil_mode))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    captured = {}
    handle = leaf_modules(model)[row_name].register_forward_hook(lambda m, i, o: captured.setdefault("y", o))
    x = torch.ones(1, *shape, dtype=torch.float64, requires_grad=True)
    model.double()(x)
    handle.remove()
    captured["y"][(0, slice(None), *position)].sum().backward()
    touched = x.grad[0].abs().sum(0).nonzero()
    if not len(touched):
        return None
    return list(zip(touched.min(0).values.tolist(), touched.max(0).values.tolist()))


# A U-Net-like spec: transposed convolutions (with and without overlap), a skip concatenation.
UNET = """
name: unet-like
input: [1, 72, 72]
layers:
  - conv: {out: 2, kernel: 3, padding: 1, name: enc1}
  - relu: {name: act1}
  - maxpool: {kernel: 2, stride: 2, name: pool1}
  - conv: {out: 2, kernel: 3, padding: 1, name: enc2}
  - maxpool: {kernel: 2, stride: 2, name: pool2}
  - conv: {out: 2, kernel: 3, padding: 1, name: mid}
  - conv_transpose: {out: 2, kernel: 2, stride: 2, name: up2}
  - conv: {out: 2, kernel: 3, padding: 1, name: dec2}
  - conv_transpose: {out: 2, kernel: 3, stride: 2, padding: 1, output_padding: 1, name: up1}
  - concat: {name: skip, from: [act1, up1]}
  - conv: {out: 2, kernel: 3, padding: 1, name: dec1}
  - conv_transpose: {out: 2, kernel: 1, stride: 2, name: sparse}
  - conv_transpose: {out: 2, kernel: 3, stride: 3, dilation: 2, name: dilated}
"""


@requires_torch
@pytest.mark.parametrize("row", ["up2", "dec2", "up1", "skip", "dec1", "sparse", "dilated"])
def test_receptive_field_through_transposed_convolutions_equals_measured_gradient(row):
    # issue 9: the field after a transposed convolution depends on the output's position (its
    # phase mod the stride), so every phase of a middle stretch is measured, not one position
    graph = parse_text(UNET)
    field = next(r.field for r in analyze(graph, fields=True).rows if r.name == row)
    size = next(r.output_shape for r in analyze(graph).rows if r.name == row)[1]
    for o in range(size // 2 - 6, size // 2 + 6):
        measured = measured_span(graph, row, (o, o))
        if measured is None:  # no input reaches it: a transposed convolution's stride above its kernel
            assert field.at((o, o)) == [None, None], o
            continue
        (lo, hi), _ = measured
        assert 0 < lo and hi < 71, "clipped by the border"
        assert field.at((o, o))[0] == (lo, hi), (o, field.at((o, o))[0], (lo, hi))


def test_receptive_field_varies_by_position_after_a_transposed_convolution():
    rows = {r.name: r for r in analyze(parse_text(UNET), fields=True).rows}
    assert not rows["mid"].field.varies and rows["mid"].field.size == (
        18,
        18,
    )  # 3, +1 (pool1), +2*2 (enc2), +1*2 (pool2), +2*4 (mid)
    # up2 (2x2, stride 2, no overlap): each output reads one mid position, so the field is mid's
    assert rows["up2"].field.size == rows["up2"].field.size_min == (18, 18) and rows["up2"].field.jump == (2, 2)
    # up1 (3x3, stride 2): even outputs read one input, odd ones two (2 apart by dec2's jump of 2)
    assert (rows["up1"].field.size_min, rows["up1"].field.size) == ((22, 22), (22 + 2 * 2, 22 + 2 * 2))
    assert rows["up1"].field.varies


# ----- check -------------------------------------------------------------------------------


def test_check_layer_from_the_command_line():
    result = run("check", "alexnet", "--layer", "pool1", "--shape", "27x27x96", "--params", "0")
    assert result.exit_code == 0 and result.stdout.count("✓") == 3


@pytest.mark.parametrize("spelling", ["12x12x10", "12 × 12 × 10", "(10, 12, 12)", "10x12x12", "[10, 12, 12]"])
def test_shape_spellings(spelling, tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text("input: [10, 12, 12]\nlayers:\n  - relu\n")
    assert run("check", str(spec), "--layer", "0", "--shape", spelling).exit_code == 0


def test_check_params_with_and_without_biases():
    conv1 = ["check", "alexnet", "--layer", "conv1"]
    assert run(*conv1, "--params", "34848", "--no-biases").exit_code == 0
    assert run(*conv1, "--params", "34,944", "--biases").exit_code == 0
    assert run(*conv1, "--params", "34848", "--biases").exit_code == ExitCode.WRONG
    assert run(*conv1, "--params", "35K").exit_code == 0  # the notes' rounded "35K"
    assert run(*conv1, "--params", "36K").exit_code == ExitCode.WRONG


QUIZ = """\
title: AlexNet
questions:
  - name: conv1 output
    spec: alexnet
    layer: conv1
    shape: 55x55x96
  - name: pool1 output
    pool: {input: 55x55x96, kernel: 3, stride: 2}
    shape: 26x26x96
  - name: two convolutions
    text: How many parameters, ignoring biases?
    spec: {input: [3, 32, 32], layers: [conv: {out: 5, kernel: 10}, conv: {out: 10, kernel: 3}]}
    ask: params
    biases: false
    choices: {A: 1500, B: 1990, C: 1950, D: 1954}
    answer: C
"""


def test_quiz_with_a_wrong_answer(tmp_path):
    path = tmp_path / "quiz.yaml"
    path.write_text(QUIZ)
    result = run("check", str(path))
    assert result.exit_code == ExitCode.WRONG
    assert "✗ pool1 output" in result.stdout
    assert "the right answer: 27x27x96" in result.stdout
    assert "✓ two convolutions" in result.stdout and "2 of 3 right" in result.stdout


def test_quiz_right_answers_pass(tmp_path):
    path = tmp_path / "quiz.yaml"
    path.write_text(QUIZ.replace("shape: 26x26x96", "shape: 27x27x96"))
    assert run("check", str(path)).exit_code == 0


@pytest.mark.parametrize(
    "body, message",
    [
        ("questions: []\n", "needs a list of questions"),
        ("questions:\n  - spec: alexnet\n    layer: conv1\n    shap: 1x1\n", "unknown key 'shap'"),
        ("questions:\n  - spec: alexnet\n    layer: conv1\n", "needs an answer"),
        ("questions:\n  - spec: alexnet\n    layer: conv9\n    shape: 1\n", "has no layer 'conv9'"),
        ("questions:\n  - spec: alexnet\n    ask: shape\n    choices: {A: 1}\n    answer: A\n", "maps letters"),
        ("questions:\n  - spec: alexnet\n    shape: 1x1x1000\n    params: lots\n", "cannot read a number"),
        ("questions:\n  - conv: {kernel: 3}\n    shape: 1\n", "needs its input"),
    ],
)
def test_malformed_quiz(tmp_path, body, message):
    path = tmp_path / "quiz.yaml"
    path.write_text(body)
    result = run("check", str(path))
    assert result.exit_code == ExitCode.INVALID, result.stdout
    assert message in result.stderr and "Traceback" not in result.stderr
    assert str(path) in result.stderr


def test_multiple_choice_without_a_right_choice(tmp_path):
    path = tmp_path / "quiz.yaml"
    path.write_text(
        textwrap.dedent("""\
        questions:
          - pool: {input: 55x55x96, kernel: 3, stride: 2}
            ask: shape
            choices: {A: 26x26x96, B: 28x28x96}
            answer: A
        """)
    )
    result = run("check", str(path))
    assert result.exit_code == ExitCode.WRONG and "none of the choices is right" in result.stdout


def test_one_size_is_square_and_says_so_and_1d_is_channels_then_length():
    """Issue 19: `conv --input 100 --channels 16 --kernel 5 --out 32` silently meant 100x100. It
    still does (the notes write N for N x N), with a note saying how a 1-D input is written."""
    square = run("conv", "--input", "100", "--channels", "16", "--kernel", "5", "--out", "32", "-f", "json")
    assert square.exit_code == 0
    assert json.loads(square.stdout)["input"] == [16, 100, 100]
    assert square.stderr == (
        "note: --input 100 is read as 100x100 (the notes write N for an N x N input); "
        "a 1-D input of length 100 is --layout chw --input 16x100\n"
    )
    line = run("conv", "--input", "16x100", "--layout", "chw", "--kernel", "5", "--out", "32", "-f", "json")
    data = json.loads(line.stdout)
    assert data["output"] == [32, (100 - 5) // 1 + 1] and line.stderr == ""
    assert (data["weights"], data["biases"]) == (5 * 16 * 32, 32)  # nn.Conv1d(16, 32, 5): 2,592 parameters
    assert run("conv", "--input", "100x100x16", "--kernel", "5").stderr == ""  # written in full: no note
