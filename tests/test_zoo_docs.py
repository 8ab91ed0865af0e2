"""docs/zoo.md's table of exact models is the fixture's figures, one row per model with a built-in.

The figures come from tests/fixtures/torchvision (measured on torchvision itself, see test_zoo.py),
so a row cannot drift from torchvision, and a model without a built-in cannot be claimed.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from test_zoo import BUILTIN_NAME, ZOO, builtin_names, index

ROOT = Path(__file__).parent.parent
DOC = ROOT / "docs" / "zoo.md"


def _script():
    spec = importlib.util.spec_from_file_location("zoo_table", ROOT / "scripts" / "zoo_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _documented() -> str:
    text = DOC.read_text()
    found = re.search(r"<!-- zoo-table[^\n]*-->\n(.*?)<!-- /zoo-table -->", text, re.DOTALL)
    assert found, "docs/zoo.md lost its zoo-table markers"
    return found.group(1).strip()


def test_zoo_table_is_the_fixture():
    assert _documented() == _script().table(BUILTIN_NAME), "run: python scripts/zoo_table.py"


def test_zoo_table_counts_what_it_claims():
    """The sentence giving the count of exact models agrees with the table and the built-ins."""
    built = [m for m in ZOO if BUILTIN_NAME.get(m, m) in builtin_names()]
    rows = _documented().splitlines()[2:]
    assert len(rows) == len(built)
    claim = re.search(r"(\d+) of the (\d+) models", DOC.read_text())
    assert claim, "docs/zoo.md should say how many of the listed models are built-ins"
    assert (int(claim.group(1)), int(claim.group(2))) == (len(built), len(index()["models"]))
