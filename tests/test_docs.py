"""The docs' console examples are real: each `$ cnncalc ...` line is run and its output must be
the text under it (`pytest --regen-golden` rewrites the blocks from the program)."""

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnncalc.cli import app

ROOT = Path(__file__).parent.parent
DOCS = [ROOT / "docs" / "learn.md", ROOT / "docs" / "workflows.md", ROOT / "docs" / "spec.md"]
MINIMUM = {"learn.md": 11, "workflows.md": 11, "spec.md": 2}  # console examples each must hold
BLOCK = re.compile(r"```console\n(.*?)```", re.DOTALL)


def blocks(text):
    """(start, end, [(command, output)]) for every console block."""
    for match in BLOCK.finditer(text):
        runs, command, output = [], None, []
        for line in match.group(1).splitlines():
            if line.startswith("$ cnncalc "):
                if command:
                    runs.append((command, "\n".join(output)))
                command, output = line[2:], []
            else:
                output.append(line)
        if command:
            runs.append((command, "\n".join(output)))
        yield match.start(1), match.end(1), runs


def actual(command, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, shlex.split(command)[1:], terminal_width=200)
    return result.stdout.rstrip("\n")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_console_examples(doc, monkeypatch, regen_golden):
    text = doc.read_text()
    if regen_golden:
        pieces, last = [], 0
        for start, end, runs in blocks(text):
            body = "".join(f"$ {command}\n{actual(command, monkeypatch)}\n" for command, _ in runs)
            pieces += [text[last:start], body]
            last = end
        doc.write_text("".join(pieces) + text[last:])
        text = doc.read_text()
    count = 0
    for _, _, runs in blocks(text):
        for command, output in runs:
            assert actual(command, monkeypatch) == output, command
            count += 1
    assert count >= MINIMUM[doc.name]


README_BLOCK = re.compile(r"```\n(\$ cnncalc .*?)```", re.DOTALL)


def test_readme_tour_is_real_output(monkeypatch):
    """The README's tour elides rows with '...'; every line it does show must be in the real
    output, in order."""
    text = (ROOT / "README.md").read_text()
    blocks_seen = 0
    for match in README_BLOCK.finditer(text):
        command, *shown = match.group(1).rstrip("\n").splitlines()
        real = actual(command[2:], monkeypatch).splitlines()
        position = 0
        for line in shown:
            if line == "...":
                continue
            assert line in real[position:], f"{command}: {line!r}"
            position = real.index(line, position) + 1
        blocks_seen += 1
    assert blocks_seen >= 1
