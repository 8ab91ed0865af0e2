"""`cnncalc report`: the page's data is the report's JSON, and the page, opened in a real headless
Chromium (playwright), shows what `summary -f json` says: the totals, a node's row and working,
collapsing a block, the depth switch, the memory peak. The browser tests skip cleanly where
playwright or Chromium is missing (.ci/run installs both)."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cnncalc
from cnncalc.analysis import analyze, memory_timeline, predicted_memory
from cnncalc.cli import ExitCode, app
from cnncalc.render import notebook
from cnncalc.render.page import page_data, page_html

runner = CliRunner()
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EXTRAS = {"depths", "containers", "memory", "totals_lines", "counts", "conventions"}  # the page's data beyond summary's


def run(*args: str) -> object:
    return runner.invoke(app, list(args), terminal_width=200)


def summary_json(*args: str) -> dict:
    result = run("summary", *args, "-f", "json", "-q")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ----- the page's data, without a browser -----------------------------------------------------------


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])  # bf16: autocast's fp32 input and cached weight copies too
@pytest.mark.parametrize("name", ["vgg16", "resnet50", "googlenet", "densenet121", "unet", "mobilenet_v2"])
def test_memory_timeline_peaks_are_the_predicted_peaks(name, dtype):
    graph = cnncalc.load(name)
    report = analyze(graph, batch=4, dtype=cnncalc.analysis.DType(dtype))
    timeline = memory_timeline(graph, report)
    assert len(timeline.inference) == len(timeline.training) == len(report.rows)
    assert max(timeline.inference) == predicted_memory(report, train=False)
    assert max(*timeline.training, timeline.backward) == predicted_memory(report, train=True)
    # what is held throughout: parameters and buffers at fp32, momentum too in training (docs/conventions.md)
    assert timeline.inference_base == (report.totals.params + report.totals.buffers) * 4
    assert timeline.training_base == timeline.inference_base + report.totals.params * 4
    assert min(timeline.inference) > timeline.inference_base
    assert "input" in timeline.inference_holders  # the caller holds the input throughout


def test_memory_timeline_of_a_collapsed_report_is_refused():
    graph = cnncalc.load("vgg16")
    with pytest.raises(cnncalc.CnncalcError, match="whole graph"):
        memory_timeline(graph, cnncalc.collapse(analyze(graph), 1))


def _page_payload(text: str) -> dict:
    found = re.search(r'<script id="cnncalc-data" type="application/json">(.*?)</script>', text, re.S)
    assert found
    return json.loads(found.group(1).replace("<\\/", "</"))


@pytest.mark.parametrize(
    "args", [("vgg16",), ("resnet50", "--batch", "8", "--dtype", "fp16"), ("googlenet", "--input", "3x256x256")]
)
def test_the_page_carries_summary_json_and_each_depth(tmp_path, args):
    out = tmp_path / "net.html"
    result = run("report", *args, "-o", str(out), "-q")
    assert result.exit_code == 0, result.output
    data = _page_payload(out.read_text())
    summary = summary_json(*args, "--explain", "--rf")
    assert {k: v for k, v in data.items() if k not in EXTRAS} == summary
    for depth, rows in data["depths"].items():
        expected = summary_json(*args, "--depth", depth)["layers"]
        assert rows == expected
    assert data["conventions"]["cnncalc"]["total"] == summary["totals"]["macs"]


def test_a_convention_brings_that_tools_rows(tmp_path):
    out = tmp_path / "net.html"
    assert run("report", "resnet18", "--convention", "fvcore", "-o", str(out)).exit_code == 0
    data = _page_payload(out.read_text())
    flops = json.loads(run("flops", "resnet18", "--convention", "fvcore", "-f", "json").stdout)
    assert data["conventions"]["fvcore"]["total"] == flops["conventions"]["fvcore"]["total"]
    rows = flops["conventions"]["fvcore"]["rows"]
    assert data["conventions"]["fvcore"]["rows"] == {
        k: v for k, v in rows.items() if k != "input"
    }  # flops lists the input too


def test_lecture_style_pages_show_the_lecture_rows(tmp_path):
    out = tmp_path / "net.html"
    assert run("report", "vgg16", "--style", "lecture", "-o", str(out)).exit_code == 0
    data = _page_payload(out.read_text())
    assert [r["name"] for r in data["layers"]] == [
        r["name"] for r in summary_json("vgg16", "--style", "lecture")["layers"]
    ]


def test_the_page_is_self_contained_and_small():
    graph = cnncalc.load("efficientnet_b7")
    text = page_html(page_data(graph, analyze(graph, explain=True, fields=True)))
    assert len(text.encode()) < 3 * 2**20  # the largest built-in: under a few MB
    # no element loads anything: no src or href but the empty data: icon
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=", text)
    assert re.findall(r'<link[^>]*href="([^"]*)"', text) == ["data:,"]
    assert "sourceMappingURL" not in text


def test_the_page_goes_to_stdout_without_output():
    result = run("report", "lenet5", "-q")
    assert result.exit_code == 0
    assert result.stdout.startswith("<!DOCTYPE html>")


def test_an_unwritable_output_is_one_message(tmp_path):
    result = run("report", "lenet5", "-o", str(tmp_path / "missing" / "net.html"))
    assert result.exit_code == ExitCode.INVALID
    assert "cannot write" in result.stderr and "Traceback" not in result.output


def test_a_bad_spec_is_one_message():
    result = run("report", "no_such_net")
    assert result.exit_code == ExitCode.INVALID
    assert "Traceback" not in result.output


def test_the_assets_ship_in_the_package():
    assets = Path(cnncalc.__file__).parent / "render" / "assets"
    assert {"page.js", "page.css", "dagre.min.js", "dagre.LICENSE"} <= {p.name for p in assets.iterdir()}
    assert (
        "MIT" in (assets / "dagre.LICENSE").read_text()
        or "Permission is hereby granted" in (assets / "dagre.LICENSE").read_text()
    )


# ----- in a real browser ----------------------------------------------------------------------------


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium on this machine (.ci/run installs Debian's)")
    with sync_api.sync_playwright() as p:
        try:
            launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except Exception as err:  # a browser that cannot start here is a skip, not a failure
            pytest.skip(f"Chromium does not start here: {err}")
        yield launched
        launched.close()


class Opened:
    """A page opened from a file, with what it logged and asked the network for."""

    def __init__(self, browser, path: Path, scheme: str = "light"):
        self.page = browser.new_page(color_scheme=scheme, viewport={"width": 1400, "height": 900})
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.problems.append(m.text) if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("request", lambda r: None if r.url == path.as_uri() else self.requests.append(r.url))
        self.page.goto(path.as_uri())
        self.page.wait_for_selector("body[data-ready=true]", timeout=30_000)

    def text(self, selector: str) -> str:
        return self.page.locator(selector).inner_text()


def _report(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "net.html"
    result = run("report", *args, "-o", str(out), "-q")
    assert result.exit_code == 0, result.output
    return out


def _number(text: str) -> int:
    return int(text.replace(",", "").split()[0])


def check_page(browser, tmp_path: Path, *args: str) -> None:
    """What a person would check, against `summary -f json`."""
    summary = summary_json(*args, "--explain", "--rf")
    opened = Opened(browser, _report(tmp_path, *args))
    page = opened.page
    # the totals as summary's JSON has them
    t = summary["totals"]
    for key in (
        "weights",
        "biases",
        "params",
        "buffers",
        "macs",
        "flops",
        "activations",
        "peak_activations",
        "activation_bytes",
        "param_bytes",
    ):
        assert _number(opened.text(f'#totals-table td[data-key="{key}"]')) == t[key], key
    assert (
        _number(opened.text('#totals-table td[data-key="predicted_inference"]'))
        == t["predicted_peak_bytes"]["inference"]
    )
    assert (
        _number(opened.text('#totals-table td[data-key="predicted_training"]')) == t["predicted_peak_bytes"]["training"]
    )
    # the memory charts peak at the predicted peaks
    assert int(page.get_attribute("#peak-inference", "data-bytes")) == t["predicted_peak_bytes"]["inference"]
    assert int(page.get_attribute("#peak-training", "data-bytes")) == t["predicted_peak_bytes"]["training"]
    # clicking a node shows its row and its working (the same text as --explain)
    rows = {r["name"]: r for r in summary["layers"]}
    shown = [n for n in page.locator("#graph .node:not(.group)").evaluate_all("ns => ns.map(n => n.dataset.name)")]
    with_macs = [n for n in shown if rows[n]["macs"]] or shown
    name = with_macs[-1]
    page.locator(f'#graph .node[data-name="{name}"]').click()
    assert opened.text("#details h2 >> nth=0") == f"Layer {name}"
    assert _number(opened.text('#details td[data-key="MACs"]')) == rows[name]["macs"]
    assert _number(opened.text('#details td[data-key="weights"]')) == rows[name]["weights"]
    assert _number(opened.text('#details td[data-key="activation bytes"]')) == rows[name]["activation_bytes"]
    if rows[name].get("working"):
        assert opened.text("#working").splitlines() == rows[name]["working"]
    assert page.locator(f'#table tr.selected[data-name="{name}"]').count() == 1  # and its table row is selected
    # selecting a table row selects its node
    other = summary["layers"][1]["name"]
    page.locator(f'#table tbody tr[data-name="{other}"]').click()
    assert page.locator(f'#graph .node.selected[data-name="{other}"]').count() == 1
    # the depth switch changes the table to summary --depth's rows
    assert page.locator("#table tbody tr").count() == len(summary["layers"])
    depth = page.locator("#depth option").nth(1).get_attribute("value")
    if depth is not None:
        page.select_option("#depth", depth)
        collapsed = summary_json(*args, "--depth", depth)["layers"]
        names = page.locator("#table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.name)")
        assert names == [r["name"] for r in collapsed] and len(names) < len(summary["layers"])
    # collapsing an open block hides its children
    opened_blocks = page.locator("#graph .cluster").evaluate_all("cs => cs.map(c => c.dataset.name)")
    if opened_blocks:
        block = opened_blocks[0]
        inside = f'#graph .node[data-name^="{block}."]'
        assert page.locator(inside).count() > 0
        page.locator(f'#graph .cluster-title[data-name="{block}"]').click()  # the block's title
        assert page.locator(inside).count() == 0
        assert page.locator(f'#graph .node.group[data-name="{block}"]').count() == 1
        page.locator(f'#graph .node.group[data-name="{block}"]').dblclick()  # and expanding shows them again
        assert page.locator(inside).count() > 0
    # sorting by MACs puts the largest first
    page.locator('#table th[data-key="macs"]').click()
    first = page.locator("#table tbody tr").first.get_attribute("data-name")
    table_rows = summary_json(*args, "--depth", depth)["layers"] if depth else summary["layers"]
    assert {r["name"]: r["macs"] for r in table_rows}[first] == max(r["macs"] for r in table_rows)
    assert opened.problems == [] and opened.requests == []
    page.close()


@pytest.mark.parametrize("name", ["vgg16", "resnet50", "googlenet", "densenet121", "unet"])
def test_the_page_in_a_browser(browser, tmp_path, name):
    check_page(browser, tmp_path, name)


def test_the_page_of_the_largest_builtin_opens_collapsed(browser, tmp_path):
    opened = Opened(browser, _report(tmp_path, "efficientnet_b7"), scheme="dark")
    assert 0 < opened.page.locator("#graph .node").count() <= 60  # blocks past 60 nodes start collapsed
    assert opened.page.locator("#graph .node.group").count() > 0
    assert opened.problems == [] and opened.requests == []


def test_block_titles_sit_above_their_nodes_and_edges_run_beneath_them(browser, tmp_path):
    # a block's title was drawn before the edges, and dagre gives it no room: the edge into the
    # block's first node struck it through and its arrow sat under the text
    opened = Opened(browser, _report(tmp_path, "resnet18"))
    page = opened.page
    page.click("#expand-all")
    titles = page.locator("#graph .cluster-title")
    assert titles.count() > 0
    for title in titles.all():
        block = title.get_attribute("data-name")
        box = title.bounding_box()
        tops = [n.bounding_box()["y"] for n in page.locator(f'#graph .node[data-name^="{block}."]').all()]
        assert tops and box["y"] + box["height"] <= min(tops), block  # above every node inside
    # and every title comes after every edge in the drawing order, so an edge runs beneath it
    order = page.evaluate(
        "() => [...document.querySelectorAll('#graph-svg .edge, #graph-svg .cluster-title')].map(e => e.classList[0])"
    )
    assert "edge" in order and order.index("cluster-title") > max(i for i, c in enumerate(order) if c == "edge")
    assert opened.problems == [] and opened.requests == []


def test_the_page_of_an_imported_model(browser, tmp_path):
    pytest.importorskip("torch")
    model = tmp_path / "tiny_net.py"
    model.write_text(
        textwrap.dedent("""\
        import torch
        from torch import nn


        class Block(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.conv = nn.Conv2d(c, c, 3, padding=1)
                self.bn = nn.BatchNorm2d(c)

            def forward(self, x):
                return torch.relu(self.bn(self.conv(x)) + x)


        class TinyNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
                self.blocks = nn.Sequential(Block(8), Block(8))
                self.head = nn.Linear(8, 10)

            def forward(self, x):
                x = self.blocks(self.stem(x))
                return self.head(x.mean((2, 3)))
        """)
    )
    check_page(browser, tmp_path, f"{model}:TinyNet", "--input", "3x32x32")


def test_a_notebook_shows_the_page_and_a_report_says_where_it_is(tmp_path):
    from cnncalc.render.page import page

    graph = cnncalc.load("lenet5")
    shown = page(graph, batch=2)
    data = _page_payload(shown.html)
    assert {k: v for k, v in data.items() if k not in EXTRAS} == summary_json(
        "lenet5", "--batch", "2", "--explain", "--rf"
    )
    assert shown._repr_html_().startswith("<iframe") and "&lt;!DOCTYPE html&gt;" in shown._repr_html_()
    assert shown.save(tmp_path / "lenet5.html").read_text() == shown.html
    assert "cnncalc report NAME -o net.html" in notebook.to_html(analyze(graph))
