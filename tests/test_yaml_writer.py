"""cnncalc.spec.yaml_writer: spec data as YAML that reads back as the same data.

Sections (layers, body, shortcut, after, branches) are block style only where the spec has them:
the top level, a block definition and a structure item. A layer's or a block use's argument that is
named like a section stays a flow-style argument (the CIFAR ResNet crash of issue 18).
"""

import yaml

from cnncalc.analysis import analyze
from cnncalc.spec import parse_text
from cnncalc.spec.yaml_writer import to_yaml

BLOCK = {
    "args": {"out": None, "shortcut": False, "layers": 1, "body": 0},
    "body": [{"conv": {"out": "$out", "kernel": 3, "padding": 1}}, "relu"],
    "shortcut": [{"conv": {"out": "$out", "kernel": 1, "when": "$shortcut"}}],
}
DATA = {
    "name": "sections",
    "input": [3, 8, 8],
    "blocks": {"unit": BLOCK},
    "layers": [
        {"unit": {"out": 4, "shortcut": True, "layers": 2, "body": 5}},  # arguments named like sections
        {"unit": {"out": 4}},
        {"sequential": {"name": "seq", "layers": [{"unit": {"out": 8, "shortcut": True}}]}},
        {"residual": {"name": "res", "body": ["relu"], "shortcut": [], "after": ["relu"]}},
    ],
}


def test_arguments_named_like_sections_stay_arguments():
    text = to_yaml(DATA, ["a header"])
    assert text.startswith("# a header\n")
    assert "  - unit: {out: 4, shortcut: true, layers: 2, body: 5}\n" in text
    assert yaml.safe_load(text) == DATA  # the same data back, whatever the layout


def test_what_it_writes_is_a_spec():
    graph = parse_text(to_yaml(DATA))
    convs = [n for n in graph.nodes if n.kind == "conv"]
    # with the shortcut: unit 1 (body conv + shortcut conv), unit 2 (body conv only), seq's unit (both)
    assert len(convs) == 2 + 1 + 2
    report = analyze(graph)
    unit1 = (3 * 3 * 3 * 4 + 4) + (3 * 4 + 4)  # 3x3 conv 3->4, 1x1 shortcut conv 3->4
    unit2 = 3 * 3 * 4 * 4 + 4  # no shortcut
    seq0 = (3 * 3 * 4 * 8 + 8) + (4 * 8 + 8)  # 3x3 conv 4->8, 1x1 shortcut conv 4->8
    assert report.totals.params == unit1 + unit2 + seq0
