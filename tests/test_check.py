"""`cnncalc check` for autograders: the answer keys flops, bytes, receptive_field and "does not
fit", JSON output (one object per question) and a directory of quiz files in one call."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnncalc.analysis import DType
from cnncalc.cli import ExitCode, app
from cnncalc.learn import quiz, quiz_file
from cnncalc.quantities import Quantity

runner = CliRunner()
ROOT = Path(__file__).parent.parent
QUIZZES = ROOT / "docs" / "examples" / "quizzes"
Q = Quantity


def conv(stride, input="7x7x1"):
    return quiz.layer_truth("conv", {"input": input, "kernel": 3, "out": 1, "stride": stride})


@pytest.mark.parametrize("answer", ["does not fit", "Doesn't fit.", "doesn\u2019t fit"])
def test_does_not_fit(answer):
    assert quiz.judge(Q.SHAPE, answer, conv(3)).correct  # (7 - 3)/3 + 1 = 2.33
    assert not quiz.judge(Q.SHAPE, answer, conv(2)).correct  # (7 - 3)/2 + 1 = 3
    assert quiz.judge(Q.SHAPE, "2x2x1", conv(3)).correct  # PyTorch's floor is right too


def test_flops_and_bytes():
    truth = quiz.network_truth("alexnet", "conv1")
    macs = (55 * 55 * 96) * (11 * 11 * 3)
    assert quiz.judge(Q.FLOPS, f"{2 * macs}", truth).correct
    assert not quiz.judge(Q.FLOPS, f"{macs}", truth).correct
    exact = 55 * 55 * 96 * 128 * 2  # activations x batch x fp16
    assert quiz.judge(Q.ACTIVATION_BYTES, str(exact), truth, batch=128, dtype=DType.FP16).correct
    assert quiz.judge(
        Q.ACTIVATION_BYTES, "70.9 MiB", truth, batch=128, dtype=DType.FP16
    ).correct  # 74,342,400 / 2**20 = 70.90
    assert quiz.judge(Q.ACTIVATION_BYTES, "74.3 MB", truth, batch=128, dtype=DType.FP16).correct
    assert not quiz.judge(Q.ACTIVATION_BYTES, "70.9 MiB", truth, batch=128, dtype=DType.FP32).correct
    assert quiz.judge(Q.ACTIVATION_BYTES, f"{55 * 55 * 96 * 4}", truth).correct  # batch 1, fp32


def test_receptive_field():
    three = {"input": [3, 32, 32], "layers": [{"conv": {"out": 8, "kernel": 3, "padding": 1, "repeat": 3}}]}
    from cnncalc.spec.yaml_lines import load_text

    spec = load_text(json.dumps(three))
    assert quiz.judge(Q.RECEPTIVE_FIELD, "7", quiz.network_truth(spec)).correct  # 1 + 3*(3 - 1)
    assert quiz.judge(Q.RECEPTIVE_FIELD, "7x7", quiz.network_truth(spec, "2")).correct
    assert quiz.judge(Q.RECEPTIVE_FIELD, "5", quiz.network_truth(spec, "1")).correct  # 1 + 2*(3 - 1)
    assert not quiz.judge(Q.RECEPTIVE_FIELD, "9", quiz.network_truth(spec)).correct
    assert quiz.judge(Q.RECEPTIVE_FIELD, "all", quiz.network_truth("lenet5")).correct  # ends in linear layers
    with pytest.raises(quiz.CnncalcError, match="receptive_field is asked of a layer in a spec"):
        quiz.judge(Q.RECEPTIVE_FIELD, "3", conv(1))


def test_cli_one_layer_new_keys():
    result = runner.invoke(
        app,
        [
            "check",
            "alexnet",
            "--layer",
            "conv1",
            "--flops",
            "211M",
            "--bytes",
            "70.9 MiB",
            "--batch",
            "128",
            "--dtype",
            "fp16",
            "--receptive-field",
            "11",
        ],
    )
    assert result.exit_code == 0, result.stdout
    assert "✓ flops 211M" in result.stdout and "✓ receptive_field 11" in result.stdout


def test_json_one_object_per_question():
    result = runner.invoke(app, ["check", "docs/examples/quiz.yaml", "--format", "json"], catch_exceptions=False)
    assert result.exit_code == ExitCode.WRONG
    data = json.loads(result.stdout)
    assert data["schema_version"] == 1
    assert data["summary"] == {"right": 5, "wrong": 1, "total": 6, "files": 1}
    wrong = [q for q in data["questions"] if not q["right"]]
    assert [q["name"] for q in wrong] == ["stride 3 on 7x7"]
    (answer,) = wrong[0]["answers"]
    assert answer["quantity"] == "shape" and answer["received"] == "3x3x1" and answer["right"] is False
    assert answer["expected"].startswith("2x2x1 (H x W x C)")
    assert wrong[0]["working"][0].startswith("H, W: floor((7 - 3 + 2*0)/3) + 1 = 2")
    assert wrong[0]["file"] == "docs/examples/quiz.yaml" and wrong[0]["line"] is not None


def test_json_one_layer():
    result = runner.invoke(app, ["check", "alexnet", "--layer", "pool1", "--shape", "27x27x96", "-f", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["summary"]["total"] == 1 and data["questions"][0]["answers"][0]["right"] is True


def test_directory_in_one_call(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, ["check", "docs/examples/quizzes"])
    assert result.exit_code == ExitCode.WRONG
    files = sorted(QUIZZES.glob("*.yaml"))
    assert result.stdout.count("\n== ") + result.stdout.startswith("== ") == len(files)
    assert result.stdout.rstrip().endswith(f"4 of 5 right in {len(files)} quiz files")
    data = json.loads(runner.invoke(app, ["check", "docs/examples/quizzes", "-f", "json"]).stdout)
    assert {q["file"] for q in data["questions"]} == {str(Path("docs/examples/quizzes") / f.name) for f in files}


def test_directory_without_quizzes(tmp_path):
    (tmp_path / "net.yaml").write_text("input: [3, 8, 8]\nlayers: [relu]\n")
    result = runner.invoke(app, ["check", str(tmp_path)])
    assert result.exit_code == ExitCode.INVALID and "no quiz files in" in result.stderr


@pytest.mark.parametrize(
    "extra, message", [("batch: 0", "'batch' is a positive integer"), ("dtype: fp12", "unknown 'dtype'")]
)
def test_bad_batch_and_dtype(tmp_path, extra, message):
    path = tmp_path / "q.yaml"
    path.write_text(f"questions:\n  - spec: lenet5\n    bytes: 1\n    {extra}\n")
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == ExitCode.INVALID and message in result.stderr


# ----- issue 19: what the network's memory counts, and the lecture names of the VGG rows -----

# CS231n's VGG16 table (seed 000): INPUT, CONV3-64 x2, POOL2, CONV3-128 x2, POOL2, CONV3-256 x3,
# POOL2, CONV3-512 x3, POOL2, CONV3-512 x3, POOL2, FC 4096, FC 4096, FC 1000; its rows sum to 15.2M
VGG16_LECTURE_MEMORY = (
    224 * 224 * 3
    + 2 * 224 * 224 * 64
    + 112 * 112 * 64
    + 2 * 112 * 112 * 128
    + 56 * 56 * 128
    + 3 * 56 * 56 * 256
    + 28 * 28 * 256
    + 3 * 28 * 28 * 512
    + 14 * 14 * 512
    + 3 * 14 * 14 * 512
    + 7 * 7 * 512
    + 4096
    + 4096
    + 1000
)
# torchvision's vgg16 runs more rows: a ReLU after each of the 13 convolutions, the adaptive
# avgpool and flatten (7*7*512 each), and ReLU, dropout, ReLU, dropout in the classifier
VGG16_CONVS = 2 * 224 * 224 * 64 + 2 * 112 * 112 * 128 + 3 * 56 * 56 * 256 + 3 * 28 * 28 * 512 + 3 * 14 * 14 * 512
VGG16_FULL_MEMORY = VGG16_LECTURE_MEMORY - 224 * 224 * 3 + VGG16_CONVS + 2 * 7 * 7 * 512 + 4 * 4096


def test_the_lecture_tables_memory_is_right_with_style_lecture_and_explained_without():
    """Issue 19: `check vgg16 --memory 15.2M` marked the lecture table's own figure wrong with an
    unexplained 28,701,160."""
    assert VGG16_LECTURE_MEMORY == 15_237_608 and VGG16_FULL_MEMORY == 28_701_160
    full = runner.invoke(app, ["check", "vgg16", "--memory", "15.2M"], terminal_width=200)
    assert full.exit_code == ExitCode.WRONG
    assert (
        f"the right answer: {VGG16_FULL_MEMORY:,} (the sum of every row's output, 40 rows with in-place activations "
        f"and views, the input not; the lecture table's rows, the input included (--style lecture): "
        f"{VGG16_LECTURE_MEMORY:,})" in full.stdout
    )
    lecture = runner.invoke(app, ["check", "vgg16", "--memory", "15.2M", "--style", "lecture"])
    assert lecture.exit_code == 0 and "✓ memory 15.2M" in lecture.stdout
    exact = runner.invoke(
        app, ["check", "vgg16", "--memory", str(VGG16_LECTURE_MEMORY), "--style", "lecture", "-f", "json"]
    )
    (question,) = json.loads(exact.stdout)["questions"]
    assert question["right"] and question["answers"][0]["expected"].startswith(
        f"{VGG16_LECTURE_MEMORY:,} (the lecture table's 22 rows, the input included"
    )


@pytest.mark.parametrize(
    "alias, row, params",
    [
        ("conv1_1", "features.0", (3 * 3 * 3) * 64 + 64),
        ("conv1_2", "features.2", (3 * 3 * 64) * 64 + 64),
        ("pool1", "features.4", 0),
        ("conv3_3", "features.14", (3 * 3 * 256) * 256 + 256),
        ("conv5_3", "features.28", (3 * 3 * 512) * 512 + 512),
        ("pool5", "features.30", 0),  # was refused with "did you mean 'avgpool'", the adaptive pool after it
        ("fc6", "classifier.0", 7 * 7 * 512 * 4096 + 4096),
        ("fc8", "classifier.6", 4096 * 1000 + 1000),
    ],
)
def test_lecture_names_of_the_vgg16_table_name_its_rows(alias, row, params):
    truth = quiz.network_truth("vgg16", alias)
    assert truth.subject == f"VGG16: {alias} ({row})"
    assert truth.weights + truth.biases == params
    by_row = quiz.network_truth("vgg16", row)
    assert (truth.shape, truth.weights, truth.biases, truth.macs, truth.activations, truth.working) == (
        by_row.shape,
        by_row.weights,
        by_row.biases,
        by_row.macs,
        by_row.activations,
        by_row.working,
    )


def test_vgg19_lecture_names_count_four_convolutions_per_late_stage():
    import cnncalc
    from cnncalc.analysis import analyze
    from cnncalc.analysis.row_names import lecture_aliases

    aliases = lecture_aliases(analyze(cnncalc.load("vgg19")))
    assert [a for a in aliases if a.startswith("conv5")] == ["conv5_1", "conv5_2", "conv5_3", "conv5_4"]
    assert list(aliases)[-4:] == ["pool5", "fc6", "fc7", "fc8"] and len(aliases) == 16 + 5 + 3
    assert lecture_aliases(analyze(cnncalc.load("vgg16_bn")))["conv5_3"] == "features.40"  # conv, bn, relu units
    assert lecture_aliases(analyze(cnncalc.load("resnet18"))) == {}  # blocks: the scheme does not say
    assert lecture_aliases(analyze(cnncalc.load("lenet5"))) == {}  # `fc3` is its own last layer's name


@pytest.mark.parametrize(
    "network, name, hint",
    [
        (
            "resnet18",
            "pool5",
            "hint: lecture names (conv1_1, pool1, fc6) name the rows of plain conv/pool/linear chains",
        ),
        ("vgg16", "conv6_1", "hint: VGG16 has no row of that lecture name: conv1_1, conv1_2, pool1, ..."),
        ("vgg16", "featres.0", "hint: did you mean 'features.0'"),
        ("vgg16", "avgpol", "hint: did you mean 'avgpool'?"),  # a typo of the row itself
    ],
)
def test_a_missing_row_is_never_hinted_as_a_different_layer(network, name, hint):
    result = runner.invoke(app, ["check", network, "--layer", name, "--shape", "1"], terminal_width=300)
    assert result.exit_code == ExitCode.INVALID and hint in result.stderr, result.stderr
    assert "'avgpool'" not in result.stderr or name == "avgpol"


def test_a_quiz_names_a_vgg_row_by_its_lecture_name(tmp_path):
    path = tmp_path / "vgg.yaml"
    path.write_text(
        "title: VGG16\nquestions:\n"
        "  - {name: a, spec: vgg16, layer: pool5, shape: 7x7x512, params: 0}\n"
        "  - {name: b, spec: vgg16, layer: fc6, params: 102764544}\n"
    )
    graded = quiz_file.grade_file(path).questions
    assert [g.correct for g in graded] == [True, True]  # 7*7*512*4096 + 4096 = 102,764,544
    assert graded[1].subject == "VGG16: fc6 (classifier.0)"
