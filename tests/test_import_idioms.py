"""`cnncalc import` on models as the internet writes them (tests/fixtures/idioms/), end to end.

Each model's figures are the model's own, counted by torch here: parameters and buffers as the sum
of their numel, MACs as FlopCounterMode's FLOPs // 2. Nothing is typed from cnncalc's output.
Skipped where torch is not installed.
"""

import json
from pathlib import Path

import pytest

from cnncalc.analysis import analyze
from cnncalc.spec import parse_text

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

IDIOMS = Path(__file__).parent / "fixtures" / "idioms"
CIFAR = IDIOMS / "cifar_resnet.py"


def cli(*args):
    typer_testing = pytest.importorskip("typer.testing")
    from cnncalc.cli import app

    return typer_testing.CliRunner().invoke(app, [str(a) for a in args], terminal_width=200)


def load_factory(path, name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"idiom_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def torch_figures(model, shape):
    """(params, buffers, MACs) of one sample, as torch counts them."""
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *shape))
    return params, buffers, counter.get_total_flops() // 2


@pytest.mark.parametrize("factory", ["ResNet18", "resnet20", "resnet56"])
def test_cifar_resnet_imports_end_to_end(factory, tmp_path):
    # `self.shortcut = nn.Sequential()` unless the shape changes: the block argument that says which
    # uses have a shortcut convolution used to crash the YAML writer (it read `shortcut` as a section)
    out = tmp_path / "net.yaml"
    result = cli("import", f"{CIFAR}:{factory}", "--input", "3x32x32", "-o", out)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    totals = analyze(parse_text(out.read_text())).totals
    expected = torch_figures(load_factory(CIFAR, factory)(), (3, 32, 32))
    assert (totals.params, totals.buffers, totals.macs) == expected


def test_kuangliu_resnet18_is_the_published_size():
    # 11.17M parameters, as pytorch-cifar's README and every reimplementation say; counted by torch
    params, _, _ = torch_figures(load_factory(CIFAR, "ResNet18")(), (3, 32, 32))
    assert params == 11_173_962


def test_the_shortcut_flag_reads_as_an_argument():
    result = cli("import", f"{CIFAR}:resnet20", "--input", "3x32x32")
    assert result.exit_code == 0, result.output
    # a block argument is never named like a section of its block: `has_shortcut`, not `shortcut`
    assert "args: {out: null, stride: 1, has_shortcut: false}" in result.stdout
    assert "basic_block: {out: 32, stride: 2, has_shortcut: true}" in result.stdout
    summary = cli("summary", f"{CIFAR}:resnet20", "--input", "3x32x32", "-f", "json")
    assert summary.exit_code == 0, summary.output
    assert json.loads(summary.stdout)["totals"]["params"] == sum(
        p.numel() for p in load_factory(CIFAR, "resnet20")().parameters()
    )


def test_sweep_traces_a_model_target_at_each_size():
    # akamaster's ResNet-20 pools with a kernel of its last feature map's size: each size is traced again
    result = cli("sweep", f"{CIFAR}:resnet20", "--input", "3x16x16,3x32x32,3x16x32", "--batch", "1,4", "-f", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert [(r["input"], r["batch"]) for r in rows] == [
        ([3, 16, 16], 1), ([3, 16, 16], 4), ([3, 32, 32], 1), ([3, 32, 32], 4), ([3, 16, 32], 1), ([3, 16, 32], 4),
    ]  # fmt: skip
    model = load_factory(CIFAR, "resnet20")()
    for size in ((3, 16, 16), (3, 32, 32)):
        params, _, macs = torch_figures(model, size)
        assert [(r["params"], r["macs"]) for r in rows if tuple(r["input"]) == size] == [(params, macs)] * 2
    # 16x32 leaves a 4x8 map, pooled 8x8: torch refuses it, and so does that row, with torch's reason
    with pytest.raises(RuntimeError, match="Output size is too small"):
        model(torch.zeros(1, 3, 16, 32))
    assert all("does not run on an input of shape [3, 16, 32]" in r["error"] for r in rows[4:])


def test_sweep_of_a_model_target_without_sizes_says_what_it_needs():
    result = cli("sweep", f"{CIFAR}:resnet20")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "cnncalc does not know the input shape of" in result.stderr and "expected: --input" in result.stderr


def test_analyze_and_the_notebook_take_an_imported_model():
    import cnncalc

    model = load_factory(CIFAR, "resnet20")()
    imported = cnncalc.from_torch(model, (3, 32, 32))
    report = cnncalc.analyze(imported)  # was AttributeError: ImportedSpec has no input_shape
    assert report == cnncalc.analyze(imported.graph)
    params, buffers, macs = torch_figures(model, (3, 32, 32))
    assert (report.totals.params, report.totals.buffers, report.totals.macs) == (params, buffers, macs)
    assert cnncalc.analyze(imported, batch=8).batch == 8  # the options still apply
    # in a notebook: the analysed summary, as a Report shows itself
    assert imported._repr_html_() == report._repr_html_()
    assert imported._repr_markdown_() == report.to_markdown()
    assert f"{params:,}" in imported._repr_html_()
    # repr: one short line that says what it is and what it holds; str: the spec's YAML
    shown = repr(imported)
    assert "\n" not in shown and len(shown) < 200
    assert shown.startswith("<ImportedSpec CifarResNet: input 3x32x32, ") and ".yaml (" in shown
    assert str(imported) == imported.yaml


BLOCKS = IDIOMS / "blocks.py"


@pytest.mark.parametrize("factory, kwargs, shape", [
    ("SE", {"spelling": 0}, (16, 8, 8)),  # x * s[:, :, None, None]
    ("SE", {"spelling": 1}, (16, 8, 8)),  # s.view(b, c, 1, 1)
    ("SE", {"spelling": 2}, (16, 8, 8)),  # s.reshape(-1, c, 1, 1)
    ("SE", {"spelling": 3}, (16, 8, 8)),  # s.unsqueeze(-1).unsqueeze(-1)
    ("OptionA", {}, (16, 8, 8)),  # F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p))
    ("Scaled", {}, (16, 8, 8)),  # x + 0.17 * branch
    ("StackSplit", {}, (16, 8, 8)),  # torch.split into 4, torch.stack, .sum(1), x[:, :k], .contiguous()
    ("TFSame", {}, (3, 11, 11)),  # math.ceil(ih / s) on x.size(), and `if x.shape[-2] < 7`
    ("FunctionalNorms", {}, (3, 8, 8)),  # timm's BatchNormAct2d and LayerNorm2d: F.batch_norm, F.layer_norm
])  # fmt: skip
def test_idioms_import_exactly_with_no_traced_row(factory, kwargs, shape):
    import cnncalc

    model = load_factory(BLOCKS, factory)(**kwargs)
    imported = cnncalc.from_torch(model, shape)
    report = analyze(imported.graph)
    assert [r.name for r in report.rows if r.type == "traced"] == []
    with torch.no_grad():
        out = model.eval()(torch.zeros(1, *shape))
    assert (report.totals.params, report.totals.buffers, report.totals.macs) == torch_figures(model, shape)
    assert report.rows[-1].output_shape == tuple(out.shape[1:])
    # and the spec builds the same network: the model's weights load, the output is the same
    rebuilt = imported.graph.to_torch().eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))


ELEMENTWISE = IDIOMS / "elementwise.py"


@pytest.mark.parametrize("factory, shape, params", [
    # conv 3x3 3 -> 8 with bias, then four parameters of one number each
    ("AffineAct", (3, 8, 8), (3 * 3 * 3 * 8 + 8) + 1 + 1 + 1 + 1),
    # conv 1x1 3 -> 8 with bias; the norm's weight (no bias); res_scale and gamma, 8 each
    ("PoolMixer", (3, 8, 8), (3 * 8 + 8) + 8 + 8 + 8),
    # conv 1x1 3 -> 8 with bias; the two norms' weights, 8 each
    ("HandNorms", (3, 8, 8), (3 * 8 + 8) + 8 + 8),
    # conv 3x3 and conv 1x1, 3 -> 8, with biases
    ("Quotients", (3, 8, 8), (3 * 3 * 3 * 8 + 8) + (3 * 8 + 8)),
])  # fmt: skip
def test_elementwise_idioms_import_exactly_with_no_traced_row(factory, shape, params):
    import cnncalc

    model = load_factory(ELEMENTWISE, factory)()
    assert sum(p.numel() for p in model.parameters()) == params
    imported = cnncalc.from_torch(model, shape)
    report = analyze(imported.graph)
    assert [r.name for r in report.rows if r.type == "traced"] == []
    with torch.no_grad():
        out = model.eval()(torch.zeros(1, *shape))
    assert (report.totals.params, report.totals.buffers, report.totals.macs) == torch_figures(model, shape)
    assert report.rows[-1].output_shape == tuple(out.shape[1:])
    rebuilt = imported.graph.to_torch().eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))
    # and cnncalc's own module imports back row for row (a viewed parameter is read as the model reads it)
    again = analyze(cnncalc.from_torch(rebuilt, shape).graph)
    assert [(r.name, r.type) for r in again.rows] == [(r.name, r.type) for r in report.rows]
