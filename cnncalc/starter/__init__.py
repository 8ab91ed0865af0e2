"""`cnncalc new NAME`: a starter spec to edit, written where the user asks."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import CnncalcError

STARTER = Path(__file__).parent / "starter.yaml"


def starter_text(name: str) -> str:
    """The starter spec with its network called `name`."""
    text = STARTER.read_text(encoding="utf-8")
    return text.replace("name: NAME", f"name: {json.dumps(name)}").replace(
        "NAME", name
    )  # quoted: any name is valid YAML


def write_starter(target: Path) -> Path:
    """Write the starter spec to `target` (`.yaml` added when it has no suffix); never overwrites."""
    if not target.suffix:
        target = target.with_suffix(".yaml")
    try:
        with target.open("x", encoding="utf-8") as file:  # "x": fails if the file exists
            file.write(starter_text(target.stem))
    except FileExistsError:
        raise CnncalcError(
            f"{target} exists; cnncalc new does not overwrite", hint="choose another name, or delete the file first"
        ) from None
    except OSError as err:
        raise CnncalcError(
            f"cannot write {target}", received=err.strerror, hint="check the folder exists and is writable"
        ) from None
    return target
