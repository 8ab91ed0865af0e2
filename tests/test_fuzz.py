"""Robustness as a property: mutated specs and quiz options end in a message, never a traceback or a hang.

The engine is fuzz/engine.py (fuzz/run.py runs thousands of inputs); CI runs a bounded, seeded budget.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fuzz.engine import Case, cases, fuzz  # noqa: E402


def test_fuzz_budget_has_no_traceback_hang_or_long_message():
    figures = fuzz(seed=20261123, count=200, seconds=10, memory_mb=2048)
    assert figures.inputs == 200
    problems = "\n\n".join(
        f"{f.what}: {f.case.args}\n{(f.case.text or '')[:800]}\n{f.detail}" for f in figures.findings
    )
    assert not figures.findings, problems
    assert figures.tracebacks == figures.hangs == figures.crashes == 0
    assert figures.longest_message <= 2000


def test_inputs_are_seeded_and_varied():
    first, again = cases(7, 200), cases(7, 200)
    assert first == again
    notes = {c.note for c in first}
    assert {"spec", "quiz conv", "quiz pool", "quiz convolve"} <= notes


def test_the_engine_sees_a_traceback(monkeypatch):
    # a test that cannot fail is a defect: the engine must report an exception reaching the runner
    import cnncalc.numeric as numeric

    def broken(*args, **kwargs):
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(numeric, "pool", broken)
    from typer.testing import CliRunner

    from cnncalc.cli import app
    from fuzz.engine import run_one

    kind, detail, _ = run_one(Case(("pool", "--values", "1 2; 3 4", "--kernel", "2")), CliRunner(), app, Path("."))
    assert kind == "traceback" and "planted" in detail
