"""The `cnncalc` command line. It renders what the library returns and chooses exit codes.

`common` holds the app, the shared options, exit codes and error handling; each group of
commands is one module that registers on that app: `tables` (shapes, params, memory, flops,
summary), `catalog` (list, layers, validate), `learn` (conv, solve), `numeric` (pool, convolve,
convolve-transpose), `quiz` (check), `pytorch` (profile, export, import: they import the torch
bridge inside the command), `workflows` (diff, sweep, plot), `page` (report), `starter` (new)
and `editors` (schema); `budget` writes `memory --train` and `--fit`'s output. Nothing imported
here loads torch: the static commands must start instantly, so `main` imports only the group of
the command it runs (all of them for help, completion or a name it does not know), and `app`
(the whole app, for tests and tools) registers every group.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from typing import Any

from . import common
from .common import ExitCode

# the command groups, in the order of `cnncalc --help`, and the commands each registers
GROUPS = {
    "tables": ("shapes", "params", "memory", "flops", "summary"),
    "catalog": ("list", "layers", "validate"),
    "learn": ("conv", "solve"),
    "numeric": ("pool", "convolve", "convolve-transpose"),
    "quiz": ("check",),
    "pytorch": ("profile", "export", "import"),
    "workflows": ("diff", "sweep", "plot"),
    "page": ("report",),
    "starter": ("new",),
    "editors": ("schema",),
}

__all__ = ["ExitCode", "app", "main"]


def _register(groups: Any = GROUPS) -> None:
    for group in groups:
        importlib.import_module(f"{__name__}.{group}")


def _registered() -> set[str]:
    return {_command_name(info) for info in common.app.registered_commands if info.callback}


def _command_name(info: Any) -> str:
    return info.name or (info.callback.__name__.replace("_", "-") if info.callback else "")


def __getattr__(name: str) -> Any:
    if name == "app":  # `from cnncalc.cli import app`: every command registered
        _register()
        return common.app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """The `cnncalc` console script: the process exits when it returns."""
    # Everything imported so far (modules, classes, functions) lives until the process exits:
    # frozen (gc.freeze), no collection during the command walks it, nor the full one at exit
    # (~15 ms of `summary resnet152`'s ~0.15 s, benchmarks/bench_cli.py). The cost: a cycle
    # already garbage now is never collected, which does not matter to a process about to end.
    gc.freeze()
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    group = next((g for g, names in GROUPS.items() if command in names), None)
    if group in ("tables", "catalog"):
        # The static table commands make no cyclic garbage (a graph and its report are trees of
        # records, alive to the end): the collector would only walk them again and again, a fifth
        # of summary's CPU time on a 100,000-layer spec for no byte freed (benchmarks/bench_cli.py).
        # The torch commands keep it: hooks and autograd leave cycles that hold tensors.
        gc.disable()
    if group is None or any(key.endswith("_COMPLETE") for key in os.environ):
        _register()
    else:
        _register([group])
        if command not in _registered():  # a command that moved to another group: register them all
            _register()
        else:
            # typer builds every registered command (reading each parameter's type hints) before it
            # runs one: hand it only the one asked for (start-up time), and put the others back after
            registered = common.app.registered_commands
            common.app.registered_commands = [info for info in registered if _command_name(info) == command]
            try:
                common.app()
            finally:
                common.app.registered_commands = registered
            return
    common.app()
