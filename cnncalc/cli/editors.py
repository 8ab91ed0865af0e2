"""Commands for editors and tools: `schema` prints the JSON Schema of spec files (for the YAML
language server: `# yaml-language-server: $schema=...`) or of the commands' JSON output."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated

import typer

from .common import app


class SchemaOf(str, Enum):
    SPEC = "spec"
    REPORT = "report"


@app.command()
def schema(
    of: Annotated[
        SchemaOf,
        typer.Argument(help="spec (spec files, from the layer registry) or report (the JSON of every command)."),
    ] = SchemaOf.SPEC,
) -> None:
    """Print a JSON Schema: of spec files (default) or of the commands' JSON output.

    cnncalc schema > spec.schema.json   (then, first line of a spec: # yaml-language-server: $schema=spec.schema.json)
    """
    from .. import schema as schemas

    chosen = schemas.spec_schema() if of is SchemaOf.SPEC else schemas.report_schema()
    sys.stdout.write(schemas.schema_text(chosen))
