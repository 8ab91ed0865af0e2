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
    parts = [p.strip() for p in first[len("# expect: "):].split(" | ")]
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
