"""No traceback from `cnncalc import` ever: whatever goes wrong is one `error:` message naming the
target, with the model's file and line where known, and exit code 1; the original exception is
kept as the message's __cause__. Skipped where torch is not installed.
"""

import textwrap

import pytest

from cnncalc.errors import CnncalcError

pytest.importorskip("torch")
from typer.testing import CliRunner  # noqa: E402

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
