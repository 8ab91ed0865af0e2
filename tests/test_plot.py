import builtins
import importlib.util

import pytest

import cnncalc
from cnncalc.analysis import DType, analyze, collapse
from cnncalc.errors import CnncalcError, MissingExtraError
from cnncalc.quantities import Quantity
from cnncalc.render.plot import fitting_depth, plot

# per test, so the test of the missing extra still runs where matplotlib is absent
needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="the plot extra")


@pytest.fixture(scope="module")
def resnet50():
    return analyze(cnncalc.load("resnet50"), batch=2, dtype=DType.BF16)


@needs_matplotlib
def test_png_one_panel_per_quantity_values_from_report(tmp_path):
    report = analyze(cnncalc.load("vgg16"))
    path = tmp_path / "vgg16.png"
    drawn = plot(report, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert drawn.depth is None and len(drawn.names) == len(report.rows) - 1  # the input row is left out
    axes = drawn.figure.axes
    assert [ax.get_title() for ax in axes] == ["MACs (per sample)", "parameters", "activation memory (bytes)"]
    rows = report.rows[1:]
    expected = [[r.macs for r in rows], [r.params for r in rows], [r.activations * 4 for r in rows]]
    for ax, values in zip(axes, expected):
        assert [patch.get_width() for patch in ax.patches] == values
    assert (
        axes[1].patches[rows.index(next(r for r in rows if r.name == "classifier.0"))].get_width()
        == 25088 * 4096 + 4096
    )


@needs_matplotlib
def test_svg_and_auto_collapse(tmp_path, resnet50):
    path = tmp_path / "resnet50.svg"
    drawn = plot(resnet50, path, quantities=[Quantity.MACS])
    assert "<svg" in path.read_text(encoding="utf-8")[:500]
    assert len(drawn.figure.axes) == 1
    # 175 layer rows are more than MAX_ROWS: depth 3 keeps every leaf, depth 2 makes 23 rows
    assert drawn.depth == fitting_depth(resnet50) == 2
    shown = collapse(resnet50, 2).rows[1:]
    assert drawn.names == tuple(r.name for r in shown)
    assert [p.get_width() for p in drawn.figure.axes[0].patches] == [r.macs for r in shown]
    assert sum(p.get_width() for p in drawn.figure.axes[0].patches) == resnet50.totals.macs


@needs_matplotlib
def test_full_resnet50_grows_instead(tmp_path, resnet50):
    drawn = plot(resnet50, tmp_path / "full.png", max_rows=1000)
    assert drawn.depth is None and len(drawn.names) == 175
    assert drawn.figure.get_figheight() > 0.16 * 175  # a row keeps its height: the figure grows


@needs_matplotlib
def test_timings_panels(tmp_path, resnet50):
    timings = {r.name: 0.5 for r in resnet50.rows[1:]}
    drawn = plot(resnet50, None, timings=timings, depth=1)
    assert [q for q in drawn.values] == [
        Quantity.MACS,
        Quantity.PARAMS,
        Quantity.ACTIVATION_BYTES,
        Quantity.TIME_MS,
        Quantity.TFLOPS,
    ]
    assert len(drawn.figure.axes) == 5
    layer1 = drawn.names.index("layer1")
    members = [r for r in resnet50.rows if r.name.startswith("layer1.")]
    assert drawn.values[Quantity.TIME_MS][layer1] == 0.5 * len(members)
    # TFLOP/s = 2 * MACs * batch / seconds / 1e12
    macs = sum(r.macs for r in members)
    assert drawn.values[Quantity.TFLOPS][layer1] == pytest.approx(2 * macs * 2 / (0.5 * len(members) / 1e3) / 1e12)


@needs_matplotlib
def test_bad_requests(tmp_path, resnet50):
    with pytest.raises(CnncalcError, match="picture format"):
        plot(resnet50, tmp_path / "x.gif")
    with pytest.raises(CnncalcError, match="timings"):
        plot(resnet50, None, quantities=[Quantity.TIME_MS])
    # a quantity with no panel is refused, not drawn as another (the panels it has are named)
    with pytest.raises(CnncalcError, match="no panel for weights") as refused:
        plot(resnet50, None, quantities=[Quantity.WEIGHTS])
    assert refused.value.expected == "macs, params, activation_bytes, time, tflops"


def test_missing_matplotlib_names_the_extra(monkeypatch, resnet50):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(MissingExtraError, match="matplotlib") as caught:
        plot(resnet50, None)
    assert "cnncalc[plot]" in caught.value.hint
