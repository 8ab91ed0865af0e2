"""Issue 19, section 3: quiz questions cnncalc could not answer. Inverse questions (`cnncalc solve`,
`solve:` in a quiz), a depthwise-separable convolution beside the standard one (`cnncalc conv
--separable`, `separable:` in a quiz), one default for `out` in `conv` and in a quiz, and check's
marks in colour on a terminal. Expected values are worked out here by hand or by brute force.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cnncalc.cli import ExitCode, app
from cnncalc.learn import quiz, quiz_file, solver
from cnncalc.learn.calculator import separable

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env, terminal_width=200)


# ----- inverse questions -------------------------------------------------------------------


def test_which_padding_keeps_a_7x7_kernels_size():
    result = run("solve", "--input", "32", "--output", "32", "--kernel", "7")
    assert result.exit_code == 0
    assert "  S = 1, P = 3: (32 - 7 + 2*3)/1 + 1 = 32" in result.stdout  # (W - F + 2P)/S + 1 = W at S=1: P = (F-1)/2
    assert "1 solution" in result.stdout


def test_which_stride_and_padding_turn_227_into_55():
    result = run("solve", "--input", "227", "--output", "55", "--kernel", "11", "--format", "json")
    data = json.loads(result.stdout)
    # (227 - 11 + 2P)/S + 1 = 55: S = 4 and P = 0 exactly (216/4 = 54); P = 1 gives 218/4 = 54.5, floored to 54
    assert [(s["stride"], s["padding"], s["exact"]) for s in data["solutions"]] == [(4, 0, True), (4, 1, False)]
    exact = run("solve", "--input", "227", "--output", "55", "--kernel", "11", "--exact")
    assert "S = 4, P = 0" in exact.stdout and "P = 1" not in exact.stdout


def test_which_kernel_gives_a_receptive_field_of_15_with_three_layers():
    # 1 + (F - 1)(1 + S + S^2) = 15: S = 1 needs F - 1 = 14/3 (no integer), S = 2 gives F = 3 (1 + 2*7)
    result = run("solve", "--receptive-field", "15", "--layers", "3")
    assert result.exit_code == 0
    assert "  F = 3, S = 2: 1 + (3 - 1)*(1 + 2 + 2^2) = 15" in result.stdout
    assert "1 solution" in result.stdout
    assert "no integer solution" in run("solve", "--receptive-field", "15", "--layers", "3", "--stride", "1").stdout


def _brute_field(layers: int, kernel: int, stride: int) -> int:
    """The input positions one output position of `layers` stacked windows reads, by expanding them."""
    positions = {0}
    for _ in range(layers):
        positions = {p * stride + t for p in positions for t in range(kernel)}
    return max(positions) - min(positions) + 1


@settings(max_examples=40, deadline=None)
@given(layers=st.integers(1, 4), kernel=st.integers(1, 5), stride=st.integers(1, 3))
def test_field_solutions_are_every_pair_brute_force_finds(layers, kernel, stride):
    field = _brute_field(layers, kernel, stride)
    found = {(x.kernel, x.stride) for x in solver.solve_field(field, layers).solutions}
    any_stride = kernel == 1 or layers == 1  # the strides change nothing: reported as any (None)
    assert (kernel, None if any_stride else stride) in found
    assert all(_brute_field(layers, f, s or 1) == field for f, s in found)


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 40), kernel=st.integers(1, 7), stride=st.integers(1, 4), padding=st.integers(0, 3))
def test_window_solutions_hold_and_include_the_question(size, kernel, stride, padding):
    if padding >= kernel or size + 2 * padding < kernel:
        return
    output = (size + 2 * padding - kernel) // stride + 1  # the notes' formula, floored as PyTorch floors it
    solved = solver.solve_window(output, size, kernel)
    assert any(
        x.values["padding"] == padding
        and (x.values["stride"] == stride or x.larger_strides and stride > x.values["stride"])
        for x in solved.solutions
    )
    for x in solved.solutions:
        s, p = x.values["stride"], x.values["padding"]
        assert (size + 2 * p - kernel) // s + 1 == output
        assert x.exact == ((size + 2 * p - kernel) % s == 0)
        if x.larger_strides:  # every larger stride gives the same single window
            assert output == 1 and (size + 2 * p - kernel) // (s + 7) + 1 == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (("--input", "32", "--kernel", "3"), "solve needs --output"),
        (("--input", "32", "--output", "32", "--kernel", "3", "--stride", "1", "--padding", "1"), "nothing to solve"),
        (("--output", "5", "--kernel", "3"), "an unknown input size needs the kernel and the stride"),
        (("--receptive-field", "7"), "needs --receptive-field and --layers"),
        (("--receptive-field", "7", "--layers", "2", "--output", "3"), "takes --kernel or --stride"),
    ],
)
def test_malformed_solve_is_one_message(args, message):
    result = run("solve", *args)
    assert result.exit_code != 0 and message in result.stderr and "Traceback" not in result.stderr


# ----- depthwise-separable against standard --------------------------------------------------


def test_separable_side_by_side():
    # MobileNet's 3x3 from 32 to 64 channels at 112x112: standard (3*3*32)*64, depthwise 3*3*32, pointwise 32*64
    s = separable((32, 112, 112), {"out": 64, "kernel": 3, "padding": 1})
    assert s.standard.weights == (3 * 3 * 32) * 64
    assert (s.depthwise.weights, s.pointwise.weights) == (3 * 3 * 32, 32 * 64)
    assert s.params == (3 * 3 * 32 + 32) + (32 * 64 + 64)
    assert s.macs == 112 * 112 * 32 * (3 * 3) + 112 * 112 * 64 * 32
    assert s.macs_ratio() == Fraction(1, 64) + Fraction(1, 3 * 3)  # MobileNet's 1/N + 1/Dk^2
    result = run("conv", "--input", "112x112x32", "--kernel", "3", "--out", "64", "--padding", "1", "--separable")
    assert result.exit_code == 0
    assert "separable  depthwise + pointwise  112x112x64    2,336      96   2,432   29,302,784" in result.stdout
    assert "= 1/K + 1/F^2 = 1/64 + 1/9 (MobileNet's ratio: exact for MACs)" in result.stdout
    data = json.loads(
        run(
            "conv",
            "--input",
            "112x112x32",
            "--kernel",
            "3",
            "--out",
            "64",
            "--padding",
            "1",
            "--separable",
            "--format",
            "json",
        ).stdout
    )
    assert data["separable"] == {"params": s.params, "macs": s.macs}


def test_separable_refuses_groups_and_transposed():
    result = run("conv", "--input", "8x8x4", "--kernel", "3", "--groups", "2", "--separable")
    assert result.exit_code != 0 and "starts from a standard convolution" in result.stderr
    result = run("conv", "--input", "8x8x4", "--kernel", "3", "--transposed", "--separable")
    assert result.exit_code != 0 and "not a transposed one" in result.stderr


# ----- quiz files: the new kinds, and one default for `out` ----------------------------------


QUIZ = """
title: new kinds
questions:
  - name: keep the size
    solve: {input: 32, output: 32, kernel: 7}
    values: {stride: 1, padding: 3}
  - name: alexnet conv1
    solve: {input: 227, output: 55, kernel: 11}
    values: {stride: 4, padding: 2}
  - name: field
    solve: {receptive_field: 15, layers: 3}
    values: {kernel: 3, stride: 2}
  - name: mobilenet
    separable: {input: 112x112x32, kernel: 3, out: 64, padding: 1}
    params: 2,432
    macs: 29,302,784
  - name: one filter
    conv: {input: 227x227x3, kernel: 11, stride: 4}
    shape: 55x55x1
    params: 364
"""


def test_quiz_new_kinds(tmp_path):
    path = tmp_path / "quiz.yaml"
    path.write_text(QUIZ)
    graded = {g.name: g for g in quiz_file.grade_file(path).questions}
    assert graded["keep the size"].correct
    assert not graded["alexnet conv1"].correct  # P = 2: (227 - 11 + 4)/4 + 1 = 56
    assert graded["alexnet conv1"].verdicts[0].right == "stride 4, padding 0; stride 4, padding 1 (floored)"
    assert graded["field"].correct
    assert graded["mobilenet"].correct  # (3*3*32 + 32) + (32*64 + 64) = 2,432
    assert graded["one filter"].correct  # `out` defaults to 1 as in `cnncalc conv`: 11*11*3 + 1 = 364


@pytest.mark.parametrize(
    "question, message",
    [
        ("solve: {input: 32, output: 32}\n    values: {stride: 1}", "'values' must give each unknown"),
        ("solve: {input: 32, kernel: 3}\n    values: {stride: 1}", "needs 'output'"),
        ("solve: {receptive_field: 7}\n    values: {kernel: 3}", "needs 'layers'"),
        ("solve: {output: 3, inptu: 7, kernel: 3}\n    values: {stride: 1}", "unknown key 'inptu' in solve"),
        ("solve: {output: three, input: 7, kernel: 3}\n    values: {stride: 1}", "--output must be a positive integer"),
        ("solve: {output: 3, input: 7, kernel: 3}", "needs 'values'"),
        ("separable: {input: 8x8x4, kernel: 3, groups: 2}\n    params: 1", "starts from a standard convolution"),
    ],
)
def test_malformed_new_questions_are_one_message_with_the_line(tmp_path, question, message):
    path = tmp_path / "quiz.yaml"
    path.write_text(f"questions:\n  - {question}\n")
    result = run("check", str(path))
    assert result.exit_code == ExitCode.INVALID, result.stderr
    assert message in result.stderr and ":2:" in result.stderr and "Traceback" not in result.stderr


def test_conv_default_filters_is_one_rule():
    command = run("conv", "--input", "227x227x3", "--kernel", "11", "--stride", "4", "--format", "json")
    truth = quiz.layer_truth("conv", {"input": "227x227x3", "kernel": 11, "stride": 4})
    assert json.loads(command.stdout)["output"] == list(truth.shape) == [1, 55, 55]
    assert quiz.layer_truth("conv", {"input": "8x8x3", "kernel": 3, "filters": 5}).shape == (5, 6, 6)


# ----- check's marks in colour ---------------------------------------------------------------


@pytest.mark.parametrize(
    "env, coloured", [({"FORCE_COLOR": "1"}, True), ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False), ({}, False)]
)
def test_check_marks_in_colour_on_a_terminal(env, coloured, monkeypatch):
    for name in ("NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    result = run("check", "alexnet", "--layer", "conv1", "--shape", "55x55x96", "--params", "1", env=env)
    assert ("\033[32m✓\033[0m" in result.stdout) is coloured  # the right shape
    assert ("\033[1;31m✗\033[0m" in result.stdout) is coloured  # the wrong params
    assert ("✓" in result.stdout) and ("✗" in result.stdout)
    as_json = run("check", "alexnet", "--layer", "conv1", "--shape", "55x55x96", "--format", "json", env=env)
    assert "\033[" not in as_json.stdout


def test_separable_totals_match_math():
    s = separable((3, 9, 9), {"out": 4, "kernel": 3, "bias": False})
    assert s.params == 3 * 3 * 3 + 3 * 4 and s.macs == math.prod((3, 7, 7)) * 9 + math.prod((4, 7, 7)) * 3
