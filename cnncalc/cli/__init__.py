"""The `cnncalc` command line. It renders what the library returns and chooses exit codes.

`common` holds the app, the shared options, exit codes and error handling; each group of
commands is one module that registers on that app: `tables` (shapes, params, memory, flops,
summary, list, layers, validate), `learn` (conv, pool, convolve, convolve-transpose, check) and
`pytorch` (profile, export, which import the torch bridge inside the command). Nothing imported
here loads torch: the static commands must start instantly.
"""

from __future__ import annotations

from .common import ExitCode, app

# each module registers its commands on `app`, in this order (the order of `cnncalc --help`)
# isort: off
from . import tables, learn, pytorch  # noqa: F401, E402
from . import editors  # noqa: F401, E402  (schema)
# isort: on

__all__ = ["ExitCode", "app", "main"]


def main() -> None:
    app()
