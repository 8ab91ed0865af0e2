"""Every broken spec in tests/bad_specs ends in one clear message and exit code 1, never a traceback.

Each fixture's first line says what the message must contain: `# expect: part | part | line: N`.
"""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnncalc import spec
from cnncalc.analysis import analyze
from cnncalc.cli import ExitCode, app
from cnncalc.errors import CnncalcError

FIXTURES = sorted((Path(__file__).parent / "bad_specs").glob("*.yaml"))
runner = CliRunner()


def expectations(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: ...'"
    parts = [p.strip() for p in first[len("# expect: ") :].split(" | ")]
    line = next((int(p.split(":")[1]) for p in parts if p.startswith("line:")), None)
    return [p for p in parts if not p.startswith("line:")], line


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_bad_spec_message(path):
    parts, line = expectations(path)
    with pytest.raises(CnncalcError) as caught:
        analyze(spec.load(path))
    err = caught.value
    text = str(err)
    for part in parts:
        assert part in text, f"{part!r} not in:\n{text}"
    assert err.where.file == str(path)
    if line is not None:
        assert err.where.line == line, text


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_bad_spec_cli(path):
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == ExitCode.INVALID
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert path.name in result.stderr


def test_missing_path_and_directory(tmp_path):
    result = runner.invoke(app, ["shapes", str(tmp_path / "nope" / "net.yaml")])
    assert result.exit_code == ExitCode.INVALID and "no such file, and no built-in architecture named" in result.stderr
    result = runner.invoke(app, ["shapes", str(tmp_path)])
    assert result.exit_code == ExitCode.INVALID and "is a directory" in result.stderr


def test_unknown_builtin_suggests():
    result = runner.invoke(app, ["shapes", "resnet35"])
    assert result.exit_code == ExitCode.INVALID
    assert "hint: did you mean" in result.stderr and "'resnet34'" in result.stderr


def test_not_utf8(tmp_path):
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00\x01")
    result = runner.invoke(app, ["shapes", str(path)])
    assert result.exit_code == ExitCode.INVALID and "not UTF-8" in result.stderr


@pytest.mark.parametrize("value", ["3x0x4", "abc", "1x2x3x4x5"])
def test_bad_input_option(value):
    result = runner.invoke(app, ["shapes", "lenet5", "--input", value])
    assert result.exit_code == ExitCode.INVALID and "--input" in result.stderr


def test_bad_option_value_is_a_usage_error():
    result = runner.invoke(app, ["memory", "lenet5", "--dtype", "fp12"])
    assert result.exit_code == ExitCode.USAGE


# ----- inputs that used to end in a traceback, a hang or a memory blow-up (issue 9) ----------


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_device_is_refused_unread(device):
    result = runner.invoke(app, ["validate", device])
    assert result.exit_code == ExitCode.INVALID
    assert "not a regular file" in result.stderr and "Traceback" not in result.stderr


def test_random_bytes_one_message(tmp_path):
    path = tmp_path / "noise.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == ExitCode.INVALID
    assert "not UTF-8" in result.stderr and "received: byte 0x80 at offset 128" in result.stderr


def test_oversized_file_read_no_further(tmp_path):
    from cnncalc.spec.yaml_lines import MAX_SPEC_BYTES

    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (MAX_SPEC_BYTES + 10))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == ExitCode.INVALID and "too large" in result.stderr


def test_hundred_thousand_brackets(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("input: [3, 8, 8]\nlayers: " + "[" * 100_000 + "relu" + "]" * 100_000 + "\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == ExitCode.INVALID
    assert "nested more than 200 levels deep" in result.stderr and "deep.yaml:2" in result.stderr


def test_aliases_nesting_through_each_other(tmp_path):
    # each anchor wraps the previous one: shallow as written, 300 deep when written out
    lines = ["input: [3, 8, 8]", "x0: &a0 [relu]"] + [
        f"x{i}: &a{i} [sequential: {{layers: *a{i - 1}}}]" for i in range(1, 300)
    ]
    path = tmp_path / "chain.yaml"
    path.write_text("\n".join([*lines, "layers: *a299", ""]))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == ExitCode.INVALID and "Traceback" not in result.stderr
    assert "levels deep" in result.stderr


def test_long_received_value_is_an_excerpt():
    from cnncalc.errors import SpecError

    bomb = ["relu"] * 10
    for _ in range(9):
        bomb = [bomb] * 10  # 10^10 values, shared: showing it must not write it out
    text = str(SpecError("x", received=bomb))
    assert len(text) < 400 and "(11,111,111,110 items)" in text
    text = str(SpecError("x", received="y" * 10**6))
    assert len(text) < 400 and "(1,000,000 characters)" in text
    assert str(SpecError("x", received=None)).endswith("received: null")
    assert "received" not in str(SpecError("x"))


@pytest.mark.parametrize(
    "spec_text",
    [
        "input: [3, 8, 8]\nlayers:\n  - adaptive_avgpool: 1000000000\n",
        "input: [3, 100000000, 100000000]\nlayers:\n  - avgpool: {kernel: 3, stride: 1, padding: 1, count_include_pad: false}\n",
    ],
)
@pytest.mark.parametrize("command", [["flops", "--convention", "all"], ["shapes", "--rf"]])
def test_absurd_but_valid_sizes_are_counted_in_closed_form(tmp_path, spec_text, command):
    # these built a list per output position (MemoryError) or looped per window (a hang)
    path = tmp_path / "absurd.yaml"
    path.write_text(spec_text)
    result = runner.invoke(app, [command[0], str(path), *command[1:]])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["pool", "--values", "1 2; 3 4", "--kernel", "2", "--stride", "0"], "--stride is out of range"),
        (["pool", "--values", "1 2; 3 4", "--kernel", "0", "--mode", "avg"], "--kernel is out of range"),
        (["convolve", "--input", "1 2; 3 4", "--kernel", "1", "--stride", "0"], "--stride is out of range"),
        (
            ["convolve-transpose", "--input", "1 2; 3 4", "--kernel", "1", "--dilation", "1000000000000"],
            "--dilation is out of range",
        ),
        (
            ["convolve", "--input", "1 2; 3 4", "--kernel", "1", "--padding", "1000000000000"],
            "--padding is out of range",
        ),
        (["convolve", "--input", "1 2; 3 4", "--kernel", "1", "--padding", "999"], "too large to work by hand"),
    ],
)
def test_quiz_tools_refuse_sizes_out_of_hand(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == ExitCode.INVALID, result.output
    assert message in result.stderr and "Traceback" not in result.stderr


def test_name_too_long_for_the_file_system():
    result = runner.invoke(app, ["shapes", "x" * 5000])
    assert result.exit_code == ExitCode.INVALID and "no built-in architecture named" in result.stderr
    assert len(result.stderr) < 2000


def test_check_target_too_long_for_the_file_system():
    # `check` first asks whether its target is a quiz file: a name the system refuses is not one
    result = runner.invoke(app, ["check", "x" * 5000, "--shape", "3x3"])
    assert result.exit_code == ExitCode.INVALID and "no built-in architecture named" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr) < 2000


@pytest.mark.parametrize("command", ["convolve", "convolve-transpose"])
def test_numeric_tools_refuse_values_out_of_range(command):
    # found by the fuzzer: 1e309 is a valid decimal, exact as a fraction, and overflowed the float it printed as
    for values in ("1e309", "2e999999999", "1e-999999999"):
        result = runner.invoke(app, [command, "--input", values, "--kernel", "7"])
        assert result.exit_code == ExitCode.INVALID and "out of range for a worked example" in result.stderr, values
        assert "Traceback" not in result.stderr
    assert runner.invoke(app, [command, "--input", "1e-5 2e3", "--kernel", "7"]).exit_code == ExitCode.OK
