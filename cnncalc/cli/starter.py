"""`cnncalc new`: write a starter spec to edit."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import app, reported_errors


@app.command()
def new(
    name: Annotated[Path, typer.Argument(help="The spec to write: NAME or NAME.yaml.", show_default=False)],
) -> None:
    """Write a starter spec (a small CNN with a block) to edit; never overwrites a file.

    \b
    cnncalc new mynet
    cnncalc summary mynet.yaml
    """
    with reported_errors():
        from ..starter import write_starter

        target = write_starter(name)
        sys.stderr.write(f"wrote {target}; try: cnncalc summary {target}\n")
