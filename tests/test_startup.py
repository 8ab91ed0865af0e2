"""What the start-up shortcuts must not change (their timings are in benchmarks/bench_cli.py).

`main` hands typer only the command it runs (typer builds every registered command before it
runs one); what it prints must be what the whole app prints, and the app keeps every command.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

RUN_MAIN = "import sys; sys.argv = ['cnncalc', *sys.argv[1:]]; from cnncalc.cli import main; main()"
RUN_APP = "import sys; sys.argv = ['cnncalc', *sys.argv[1:]]; from cnncalc.cli import app; app(prog_name='cnncalc')"


def _run(code: str, *args: str) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("params", "lenet5", "-f", "json"),
        ("summary", "--help"),
        ("summary",),  # a missing argument: typer's usage message
        ("summary", "lenet5", "--no-such-option"),
        ("conv", "--input", "5x5x3", "--kernel", "3"),
        ("--help",),  # no command: typer lists stand-ins of the commands (their names and help)
        (),
        ("--version",),
        ("--no-such-option",),
    ],
    ids=lambda args: " ".join(args) or "(none)",
)
def test_main_prints_what_the_whole_app_prints(args):
    assert _run(RUN_MAIN, *args) == _run(RUN_APP, *args)


def _after_main(imports: str, args: list[str], expression: str) -> str:
    """What `expression` prints in a fresh process once `main` has run `cnncalc *args` (exit 0)."""
    code = (
        f"import sys, io, contextlib; from cnncalc.cli import main{imports}; sys.argv = ['cnncalc', *{args!r}]\n"
        "try:\n    with contextlib.redirect_stdout(io.StringIO()): main()\nexcept SystemExit as exit: assert not exit.code\n"
        f"print({expression})"
    )
    return _run(code)[1].strip()


def test_main_leaves_every_command_registered():
    from cnncalc.cli import GROUPS

    assert _after_main(", _registered", ["params", "lenet5"], "sorted(_registered())") == str(sorted(GROUPS["tables"]))


def test_main_puts_the_commands_back_after_listing_them():
    listed = "any(info.callback is tables.summary for info in common.app.registered_commands)"
    assert _after_main(", common, tables", ["--help"], listed) == "True"


def test_help_loads_no_module_only_a_command_needs():
    """`cnncalc --help` imports every command group, but not what only runs a command: the HTML
    page's renderer, OpenSSL's hashlib (`list`'s digest), torch."""
    loaded = "sorted({'cnncalc.render.page', 'hashlib', 'torch'} & set(sys.modules))"
    assert _after_main("", ["--help"], loaded) == "[]"


def test_counting_flops_leaves_torch_dynamo_unloaded_and_counts_the_same():
    # the first op under a stock FlopCounterMode imports torch._dynamo (as long as torch's own import):
    # `cnncalc import` of any model paid it. The count must still be the convolution's
    pytest.importorskip("torch")
    code = (
        "import sys, torch\n"
        "from cnncalc.torch_bridge import flop_counter\n"
        "conv, x = torch.nn.Conv2d(3, 8, 3), torch.randn(2, 3, 10, 10)\n"
        "counter = flop_counter()\n"
        "with torch.no_grad(), counter: conv(x)\n"
        "print('torch._dynamo' in sys.modules, counter.get_total_flops())\n"
    )
    code_, out, err = _run(code)
    assert code_ == 0, err
    # conv: 2 FLOPs a MAC, 8 x 8 x 8 outputs a sample, 3 x 3 x 3 MACs each, batch 2
    assert out.strip() == f"False {2 * 2 * 8 * 8 * 8 * 27}"
