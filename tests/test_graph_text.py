import json
import re
import shutil
import subprocess

import pytest

import cnncalc
from cnncalc import spec
from cnncalc.analysis import analyze
from cnncalc.render.graph_text import drawing, to_dot, to_mermaid


def _graph_edges(graph):
    return {(f"n{j}", f"n{i}") for i, node in enumerate(graph.nodes) for j in node.inputs}


@pytest.mark.parametrize("name", ["resnet18", "googlenet"])
def test_edges_are_the_graphs_edges(name):
    g = cnncalc.load(name)
    report = analyze(g)
    edges = _graph_edges(g)
    dot = to_dot(g, report)
    assert set(re.findall(r"^  (n\d+) -> (n\d+);$", dot, re.M)) == edges
    assert len(re.findall(r"^  n\d+ \[label=", dot, re.M)) == len(g.nodes)
    mermaid = to_mermaid(g, report)
    assert set(re.findall(r"^  (n\d+) --> (n\d+)$", mermaid, re.M)) == edges
    assert mermaid.startswith("flowchart TD\n")


def test_branches_are_drawn():
    g = cnncalc.load("resnet18")
    d = drawing(g, analyze(g))
    add = g.index("layer1.0.add")
    # a residual add reads two nodes: the body's last layer and the block's input
    assert sorted(a for a, b in d.edges if b == f"n{add}") == sorted(f"n{i}" for i in g.nodes[add].inputs)
    assert len(g.nodes[add].inputs) == 2
    gl = cnncalc.load("googlenet")
    concats = [i for i, n in enumerate(gl.nodes) if len(n.inputs) == 4]
    assert concats, "googlenet's inception blocks concatenate four branches"


def test_labels_carry_type_shape_and_params():
    g = cnncalc.load("resnet18")
    dot = to_dot(g, analyze(g))
    conv1 = g.index("conv1")
    assert f'n{conv1} [label="conv1\\nconv\\n64x112x112\\n{64 * 3 * 7 * 7:,} params"];' in dot


def test_collapsed_by_depth():
    g = cnncalc.load("resnet18")
    report = analyze(g)
    d = drawing(g, report, depth=2)
    names = [n.name for n in d.nodes]
    assert names == [
        "input",
        "conv1",
        "bn1",
        "relu",
        "maxpool",
        "layer1.0",
        "layer1.1",
        "layer2.0",
        "layer2.1",
        "layer3.0",
        "layer3.1",
        "layer4.0",
        "layer4.1",
        "avgpool",
        "flatten",
        "fc",
    ]
    assert len(d.edges) == len(d.nodes) - 1  # a chain once the residual blocks are single nodes
    assert sum(n.params for n in d.nodes) == report.totals.params
    assert next(n for n in d.nodes if n.name == "layer2.0").leaves == 9  # with its downsample conv and bn


def test_names_are_escaped():
    text = 'input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, name: "a\\"b\\\\c<é>#"}\n  - relu\n'
    g = spec.parse_text(text)
    dot = to_dot(g, analyze(g))
    assert 'label="a\\"b\\\\c<é>#\\nconv' in dot
    mermaid = to_mermaid(g, analyze(g))
    assert '["a#quot;b\\c#lt;é#gt;#35;<br/>conv' in mermaid


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_graphviz_draws_resnet18(tmp_path):
    g = cnncalc.load("resnet18")
    source = tmp_path / "resnet18.dot"
    source.write_text(to_dot(g, analyze(g)), encoding="utf-8")
    layout = json.loads(subprocess.run(["dot", "-Tjson", str(source)], check=True, capture_output=True).stdout)
    nodes = {o["_gvid"]: o for o in layout["objects"]}
    drawn = {(nodes[e["tail"]]["name"], nodes[e["head"]]["name"]) for e in layout["edges"]}
    assert {o["name"] for o in layout["objects"]} == {f"n{i}" for i in range(len(g.nodes))}
    assert drawn == _graph_edges(g)
    assert nodes[g.index("layer1.0.add")]["label"].startswith("layer1.0.add\\nadd")
    svg = tmp_path / "resnet18.svg"
    subprocess.run(["dot", "-Tsvg", str(source), "-o", str(svg)], check=True)
    assert svg.read_text(encoding="utf-8").count('class="node"') == len(g.nodes)
