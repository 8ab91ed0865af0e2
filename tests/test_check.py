"""`cnncalc check` for autograders: the answer keys flops, bytes, receptive_field and "does not
fit", JSON output (one object per question) and a directory of quiz files in one call."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnncalc import quiz
from cnncalc.analysis import DType
from cnncalc.cli import ExitCode, app

runner = CliRunner()
ROOT = Path(__file__).parent.parent
QUIZZES = ROOT / "docs" / "examples" / "quizzes"
Q = quiz.Quantity


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
    assert quiz.judge(Q.BYTES, str(exact), truth, batch=128, dtype=DType.FP16).correct
    assert quiz.judge(Q.BYTES, "70.9 MiB", truth, batch=128, dtype=DType.FP16).correct  # 74,342,400 / 2**20 = 70.90
    assert quiz.judge(Q.BYTES, "74.3 MB", truth, batch=128, dtype=DType.FP16).correct
    assert not quiz.judge(Q.BYTES, "70.9 MiB", truth, batch=128, dtype=DType.FP32).correct
    assert quiz.judge(Q.BYTES, f"{55 * 55 * 96 * 4}", truth).correct  # batch 1, fp32


def test_receptive_field():
    three = {"input": [3, 32, 32], "layers": [{"conv": {"out": 8, "kernel": 3, "padding": 1, "repeat": 3}}]}
    from cnncalc.yaml_lines import load_text

    spec = load_text(json.dumps(three))
    assert quiz.judge(Q.RECEPTIVE_FIELD, "7", quiz.network_truth(spec)).correct  # 1 + 3*(3 - 1)
    assert quiz.judge(Q.RECEPTIVE_FIELD, "7x7", quiz.network_truth(spec, "2")).correct
    assert quiz.judge(Q.RECEPTIVE_FIELD, "5", quiz.network_truth(spec, "1")).correct  # 1 + 2*(3 - 1)
    assert not quiz.judge(Q.RECEPTIVE_FIELD, "9", quiz.network_truth(spec)).correct
    assert quiz.judge(Q.RECEPTIVE_FIELD, "all", quiz.network_truth("lenet5")).correct  # ends in linear layers
    with pytest.raises(quiz.CnncalcError, match="receptive_field is asked of a layer in a spec"):
        quiz.judge(Q.RECEPTIVE_FIELD, "3", conv(1))


def test_cli_one_layer_new_keys():
    result = runner.invoke(app, ["check", "alexnet", "--layer", "conv1", "--flops", "211M", "--bytes", "70.9 MiB",
                                 "--batch", "128", "--dtype", "fp16", "--receptive-field", "11"])  # fmt: skip
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
