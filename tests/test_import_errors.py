"""No traceback from `cnncalc import` ever: whatever goes wrong is one `error:` message naming the
target, with the model's file and line where known, and exit code 1; the original exception is
kept as the message's __cause__. Skipped where torch is not installed.

tests/bad_models/ holds one broken model file a case, each saying on its first lines the target to
import and what the message must contain: `# target: Net`, `# expect: part | part | line: N`
(`line: A,B`: either). The two that never finish run in a subprocess, interrupted (Ctrl-C) once
their code runs, with a bound on the wait; fuzz/engine.py mutates them all.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cnncalc.errors import CnncalcError

pytest.importorskip("torch")
from typer.testing import CliRunner  # noqa: E402

import cnncalc  # noqa: E402
from cnncalc.cli import ExitCode, app  # noqa: E402
from cnncalc.torch_bridge.importer import load_target, pipeline  # noqa: E402

NET = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)
        if width % 2:
            raise ValueError("width must be even")

    def forward(self, x):
        return self.conv(x)
"""


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args], terminal_width=200)


def one_message(result):
    """The CLI said one error and nothing else, with no traceback."""
    assert result.exit_code == ExitCode.INVALID, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("error:") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_an_internal_error_is_one_message_naming_the_target(tmp_path, monkeypatch):
    path = tmp_path / "net.py"
    path.write_text(NET)
    planted = TypeError("planted")

    def broken(*args, **kwargs):
        raise planted

    monkeypatch.setattr(pipeline, "to_yaml", broken)  # a bug inside cnncalc, after the model ran
    text = one_message(cli("import", f"{path}:Net", "--input", "3x8x8"))
    # where the model's class is defined (line 4), the target, whose error it is, and where in cnncalc
    assert text.startswith(f"error: {path}:4: cnncalc failed on {path}:Net: an internal error, not the model's")
    assert "received: TypeError: planted (at cnncalc/torch_bridge/importer/pipeline.py:" in text
    assert "a bug in cnncalc: please report it" in text
    with pytest.raises(CnncalcError) as caught:
        load_target(f"{path}:Net", "3x8x8")
    assert caught.value.__cause__ is planted


def test_the_models_own_error_names_its_line(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(NET)
    text = one_message(cli("import", f"{path}:Net", "--input", "3x8x8", "--arg", "width=3"))
    line = NET.splitlines().index('            raise ValueError("width must be even")') + 1
    assert text.startswith(f"error: {path}:{line}: the model's code fails while cnncalc imports {path}:Net")
    assert """received: ValueError: width must be even (in `raise ValueError("width must be even")`)""" in text
    with pytest.raises(CnncalcError) as caught:
        load_target(f"{path}:Net", "3x8x8", ["width=3"])
    assert isinstance(caught.value.__cause__, ValueError)
    # the same model with an even width imports: the error was the model's, not the importer's
    assert cli("import", f"{path}:Net", "--input", "3x8x8", "--arg", "width=2").exit_code == 0


LOOPS = """
import torch.nn as nn


class Net(nn.Module):
    def forward(self, x):
        while True:
            try:
                x = x + 1
            except Exception:  # cannot catch the tracer's limit: it would loop on
                pass
"""


def test_a_forward_that_never_ends_is_stopped_at_the_operation_limit(tmp_path, monkeypatch):
    """A forward that loops forever ends in one message at the line it loops on, once the trace
    passes its limit (100,000 operations; here 300), instead of growing until memory runs out."""
    from cnncalc.torch_bridge.importer import trace

    monkeypatch.setattr(trace, "MAX_OPERATIONS", 300)
    path = tmp_path / "loops.py"
    path.write_text(LOOPS)
    text = one_message(cli("import", f"{path}:Net", "--input", "3x8x8"))
    line = LOOPS.splitlines().index("                x = x + 1") + 1
    assert text.startswith(f"error: {path}:{line}: Net.forward: Net runs more than 300 operations on one input: "), text
    assert "a loop in forward that never ends?" in text


def test_a_model_in_a_package_is_blamed_on_its_own_file(tmp_path, monkeypatch):
    pkg = tmp_path / "zoo_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(
        textwrap.dedent("""\
        import torch.nn as nn

        def make():
            return nn.Conv2d(3, 4, 3, padding="bogus")
        """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    text = one_message(cli("import", "zoo_pkg.nets:make", "--input", "3x8x8"))
    assert text.startswith(
        f"error: {pkg / 'nets.py'}:4: the model's code fails while cnncalc imports zoo_pkg.nets:make"
    )


# ----- tests/bad_models: one message each --------------------------------------------------------

BAD_MODELS = sorted((Path(__file__).parent / "bad_models").glob("*.py"))
NEVER_FINISH = {"loops_at_import", "loops_in_forward"}


def expectations(path):
    """(target, message parts, allowed lines or None) from the fixture's first two lines."""
    target, expect = path.read_text().splitlines()[:2]
    assert target.startswith("# target: ") and expect.startswith("# expect: "), path.name
    parts = [p.strip() for p in expect[len("# expect: ") :].split(" | ")]
    lines = next(({int(n) for n in p[len("line: ") :].split(",")} for p in parts if p.startswith("line: ")), None)
    return target[len("# target: ") :], [p for p in parts if not p.startswith("line: ")], lines


def check_message(text, path, parts, lines):
    for part in parts:
        assert part in text, f"{part!r} not in:\n{text}"
    if lines is not None:
        assert any(text.startswith(f"error: {path}:{n}: ") for n in lines), text


@pytest.mark.parametrize("path", [p for p in BAD_MODELS if p.stem not in NEVER_FINISH], ids=lambda p: p.stem)
def test_a_broken_model_is_one_message(path):
    target, parts, lines = expectations(path)
    check_message(one_message(cli("import", f"{path}:{target}", "--input", "3x8x8")), path, parts, lines)
    # the table commands read the same targets through the same door
    check_message(one_message(cli("summary", f"{path}:{target}", "--input", "3x8x8")), path, parts, lines)


@pytest.mark.parametrize("path", [p for p in BAD_MODELS if p.stem in NEVER_FINISH], ids=lambda p: p.stem)
def test_a_model_that_never_finishes_says_where_it_was_when_interrupted(path, tmp_path):
    """cnncalc cannot tell a loop that never ends from a slow model, so it sets no time limit of its
    own; Ctrl-C (SIGINT) while the model's code runs says where that code was, as one message."""
    target, parts, lines = expectations(path)
    ready = tmp_path / "ready"  # the fixture touches it once its loop is about to start
    env = {**os.environ, "CNNCALC_TEST_READY": str(ready), "PYTHONPATH": str(Path(cnncalc.__file__).parent.parent)}
    command = [sys.executable, "-m", "cnncalc", "import", f"{path}:{target}", "--input", "3x8x8"]
    out, err = tmp_path / "stdout", tmp_path / "stderr"

    def as_from_a_shell():
        # Ctrl-C reaches a command a shell starts: SIGINT neither ignored nor blocked, whatever this
        # test process inherited from the test runner (both pass on through fork and exec)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    # files, not pipes: the end of the command is its exit, not the end of pipes that any other
    # process forked meanwhile from this one would hold open too
    with out.open("w") as stdout_file, err.open("w") as stderr_file:
        process = subprocess.Popen(
            command, env=env, stdout=stdout_file, stderr=stderr_file, text=True, preexec_fn=as_from_a_shell
        )
        try:
            deadline = time.monotonic() + 120  # starting Python and torch on a busy machine
            while not ready.exists():
                assert process.poll() is None, err.read_text()
                assert time.monotonic() < deadline, "the model's loop never started"
                time.sleep(0.05)
            time.sleep(0.2)  # into the loop
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                status = Path(f"/proc/{process.pid}/status")
                masks = [line for line in status.read_text().splitlines() if line.startswith("Sig")]
                raise AssertionError(f"still running 60 s after SIGINT: {masks}\n{err.read_text()[-2000:]}") from None
        finally:
            process.kill()
            process.wait()
    stdout, stderr = out.read_text(), err.read_text()
    assert process.returncode == ExitCode.INVALID, stderr
    assert stdout == "" and stderr.startswith("error: ") and stderr.count("error:") == 1, stderr
    assert "Traceback" not in stderr
    check_message(stderr, path, parts, lines)


@pytest.mark.parametrize(
    "target, parts",
    [
        ("{dir}/absent.py:Net", ["no such Python file", "absent.py"]),
        ("{dir}/net.txt:Net", ["not a Python source file"]),
        ("{dir}/net.py:Absent", ["has no 'Absent'", "hint: it defines Net"]),
        ("{dir}/net.py:Nett", ["has no 'Nett'", "did you mean 'Net'?"]),
        ("{dir}/net.py::Net", ["malformed model target", "one colon"]),
        ("{dir}/net.py:Net.forward", ["malformed model target"]),
        ("{dir}/net.py:", ["malformed model target"]),
        ("not a module:Net", ["malformed model target"]),
        (
            "a_package_nobody_installed.models:Net",
            ["cannot import the module 'a_package_nobody_installed.models'", "expected: a module importable from here"],
        ),
    ],
)
def test_a_bad_target_is_one_message(target, parts, tmp_path):
    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "net.txt").write_text(NET)
    text = one_message(cli("import", target.format(dir=tmp_path), "--input", "3x8x8"))
    for part in parts:
        assert part in text, f"{part!r} not in:\n{text}"
