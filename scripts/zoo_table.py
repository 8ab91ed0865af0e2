"""Print docs/zoo.md's table of exact models from the torchvision fixture (tests/fixtures/torchvision).

Every figure comes from the fixture, which scripts/torchvision_reference.py measured on torchvision
itself; cnncalc contributes only which built-in stands for the model and the file it lives in.
tests/test_zoo_docs.py holds docs/zoo.md to this output, so the table cannot drift from the fixture
or list a model that has no built-in.

    python scripts/zoo_table.py          # paste between the markers in docs/zoo.md
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "torchvision"
HEADER = (
    "| built-in | torchvision | file | input | params | weights (no biases) | buffers | MACs |\n"
    "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |"
)


def rows(builtin_name: dict[str, str]) -> list[str]:
    """One row per fixture model that has a built-in, in the fixture's (the issue's) order."""
    from cnncalc.spec.library import builtin_names, builtin_path

    names = set(builtin_names())
    index = json.loads((FIXTURE / "index.json").read_text())["models"]
    out = []
    for model, ref in index.items():
        name = builtin_name.get(model, model)
        if name not in names:
            continue
        shape = "x".join(str(n) for n in ref["input_shape"][1:])
        source = builtin_path(name).path.name
        out.append(
            f"| `{name}` | `{model}` | `{source}` | {shape} | {ref['params']:,} | {ref['weights']:,} | "
            f"{ref['buffers']:,} | {ref['macs']:,} |"
        )
    return out


def table(builtin_name: dict[str, str]) -> str:
    return "\n".join([HEADER, *rows(builtin_name)])


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from test_zoo import BUILTIN_NAME

    print(table(BUILTIN_NAME))
