"""Golden JSON for every built-in architecture, with invariants checked on each.

Regenerate after an intended change with `pytest tests/test_golden.py --regen-golden`, then
review the diff: the goldens are a record of change, the invariants and the seed and torch
tests are what make the numbers right.
"""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnncalc.cli import app
from cnncalc.spec.library import builtin_names

GOLDEN = Path(__file__).parent / "golden"
runner = CliRunner()


@pytest.mark.parametrize("name", builtin_names())
def test_golden(name, regen_golden):
    result = runner.invoke(app, ["summary", name, "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    path = GOLDEN / f"{name.replace('/', '__')}.json"
    if regen_golden:
        path.write_text(result.stdout)
    assert data == json.loads(path.read_text()), f"{name} changed: review, then --regen-golden"

    rows, totals = data["layers"], data["totals"]
    assert all(size > 0 for row in rows for size in row["output_shape"])
    for key in ("weights", "biases", "params", "buffers", "macs", "flops", "activations"):
        assert sum(row[key] for row in rows[1:]) == totals[key], key
    assert totals["activations_with_input"] == totals["activations"] + rows[0]["activations"]
    assert max(r["activations"] for r in rows) <= totals["peak_activations"] <= totals["activations_with_input"]
    names = [row["name"] for row in rows]
    assert len(names) == len(set(names))
