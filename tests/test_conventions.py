"""`flops --convention`: each tool's count reproduced from the spec, checked against the tool
itself on every built-in architecture and on random small networks."""

import pytest
from hypothesis import given, settings

import cnncalc
from cnncalc.analysis import analyze
from cnncalc.conventions import Convention, count
from cnncalc.library import builtin_names
from cnncalc.spec import parse_text

torch = pytest.importorskip("torch")
pytest.importorskip("fvcore.nn")
torchinfo = pytest.importorskip("torchinfo")

from cnncalc.torch_bridge import fvcore_counts  # noqa: E402
from test_torch_crosscheck import SMALL_INPUT, small_graph  # noqa: E402

def check(graph, input_shape=None):
    report = analyze(graph, input_shape=input_shape)
    model = graph.to_torch(input_shape).eval()
    x = torch.randn(1, *report.input_shape)
    by_module = fvcore_counts(model, x)
    ours = count(graph, report, Convention.FVCORE)
    assert ours.total == by_module[""]
    for name, value in ours.rows.items():
        assert value == by_module[name], name
    assert count(graph, report, Convention.TORCHINFO).total == torchinfo.summary(model, input_data=x, verbose=0).total_mult_adds
    assert count(graph, report, Convention.FLOPCOUNTER).total == 2 * report.totals.macs
    assert count(graph, report, Convention.CNNCALC).total == report.totals.macs


@pytest.mark.parametrize("name", builtin_names())
def test_architecture_conventions(name):
    check(cnncalc.load(name), SMALL_INPUT.get(name))


MIXED = """
input: [3, 32, 32]
layers:
  - conv: {out: 16, kernel: 3, padding: 1}
  - batchnorm
  - relu
  - maxpool: 2
  - residual:
      body:
        - conv: {out: 16, kernel: 3, padding: 1, groups: 16, bias: false}
        - batchnorm: {affine: false}
        - conv: {out: 16, kernel: 1}
  - avgpool: 2
  - conv_transpose: {out: 8, kernel: 2, stride: 2}
  - global_avgpool
  - flatten
  - linear: 10
"""


def test_small_mixed_network():
    """The issue's example: conv, batch norm, ReLU, pooling, a residual add, a depthwise conv, linear."""
    check(parse_text(MIXED))


@settings(max_examples=25, deadline=None)
@given(small_graph())
def test_random_small_graphs(text):
    check(parse_text(text))
