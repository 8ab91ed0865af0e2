"""The libyaml-based loader reads every text as the pure-Python reference loader does: the same
data, the same lines, and nothing accepted that the reference refuses (a text libyaml refuses is
read again by the reference, so that its message is the one reported)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnncalc.errors import SpecError
from cnncalc.spec import yaml_lines
from cnncalc.spec.library import ARCHITECTURES

BUILT_INS = sorted(ARCHITECTURES.rglob("*.yaml"))
FAST = getattr(yaml_lines, "_FastLineLoader", None)
needs_libyaml = pytest.mark.skipif(FAST is None, reason="PyYAML without libyaml: only the reference loader")


def marked(value: object) -> object:
    """The data with every container's lines, so that two loads compare line for line."""
    if isinstance(value, yaml_lines.LineDict):
        return (
            "map",
            value.line,
            sorted(value.key_lines.items(), key=repr),
            [(k, marked(v)) for k, v in value.items()],
        )
    if isinstance(value, yaml_lines.LineList):
        return ("seq", value.line, list(value.item_lines), [marked(v) for v in value])
    return (type(value).__name__, value)


def outcome(text: str, loader: type) -> object:
    try:
        return marked(yaml_lines.load_text(text, loader=loader))
    except SpecError as err:
        return ("refused", str(err))


@needs_libyaml
@pytest.mark.parametrize("path", BUILT_INS, ids=lambda p: p.stem)
def test_built_ins_read_the_same(path):
    text = path.read_text()
    assert outcome(text, FAST) == outcome(text, yaml_lines._LineLoader)


# edits that reach YAML's corners: brackets, indentation, anchors, tags, quotes, line breaks
PIECES = st.sampled_from(
    [
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        ": ",
        "- ",
        "\n",
        "\n  ",
        "  ",
        "\t",
        "&a ",
        "*a",
        "!!str ",
        "'",
        '"',
        "#",
        "|",
        ">",
        "?",
        "%",
        "@",
        "`",
        "\x85",
        "\u2028",
        "\ufeff",
        "\x00",
        "\r",
        "\r\n",
        "é",
        "1e3",
        "null",
        "~",
        "---",
        "...",
        "!",
        "|-",
        ">+",
        "<<: *a\n",
    ]
)


@needs_libyaml
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from(BUILT_INS),
    edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 3), PIECES), min_size=1, max_size=4),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_mutated_texts_read_the_same(source, edits, cut):
    text = source.read_text()[:1500]
    for at, drop, piece in edits:
        i = int(at * len(text))
        text = text[:i] + piece + text[i + drop :]
    if cut is not None:
        text = text[: int(cut * len(text))]
    reference = outcome(text, yaml_lines._LineLoader)
    fast = outcome(text, FAST)
    # what libyaml refuses, load_text reads again with the reference: only acceptance must agree
    # (texts with the characters where libyaml is known to differ never reach it)
    if fast[0] != "refused" and not yaml_lines._LIBYAML_DIFFERS.search(text):
        assert fast == reference
    assert outcome(text, None) == reference


def test_deep_nesting_is_refused_before_any_recursion():
    text = "input: [3, 8, 8]\nlayers: " + "[" * 100_000 + "relu" + "]" * 100_000 + "\n"
    with pytest.raises(SpecError, match="nested more than"):
        yaml_lines.load_text(text)
    if FAST is not None:  # the C parser does not recurse; the composer above it refuses at the bound
        with pytest.raises(SpecError, match="nested more than"):
            yaml_lines.load_text(text, loader=FAST)


@pytest.mark.parametrize("loader", [None, yaml_lines._LineLoader])
def test_a_large_text_without_aliases_is_still_measured(monkeypatch, loader):
    """The expansion measure is skipped without aliases only while the nodes as written fit."""
    monkeypatch.setattr(yaml_lines, "MAX_EXPANDED_NODES", 50)
    yaml_lines.load_text("input: [3]\nlayers: [" + "1, " * 40 + "1]\n", loader=loader)  # 45 nodes
    with pytest.raises(SpecError, match="more than 50 values"):
        yaml_lines.load_text("input: [3]\nlayers: [" + "1, " * 60 + "1]\n", loader=loader)


@pytest.mark.parametrize("loader", yaml_lines._LOADERS)
def test_a_number_with_an_exponent_and_no_dot_is_a_number(loader):
    # PyYAML (YAML 1.1) reads 1e-6 as text, so `batchnorm: {eps: 1e-6}` was refused as "not a number";
    # YAML 1.2 and Python read it as float("1e-6"); quoted, it stays text
    data = yaml_lines.load_text('a: 1e-6\nb: -2E+3\nc: 1e5\nd: "1e-6"\ne: 1.5\nf: 10\n', loader=loader)
    assert data == {"a": 1e-6, "b": -2000.0, "c": 100000.0, "d": "1e-6", "e": 1.5, "f": 10}
    assert type(data["c"]) is float and type(data["f"]) is int


def test_a_norms_eps_written_as_pytorch_prints_it():
    from cnncalc.analysis import analyze
    from cnncalc.spec import parse_text

    report = analyze(parse_text("input: [4, 8, 8]\nlayers:\n  - batchnorm: {eps: 1e-5}\n  - layernorm: {eps: 1e-6}\n"))
    assert [r.type for r in report.rows[1:]] == ["batchnorm", "layernorm"]
