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
        ([3, 16, 16], 1),
        ([3, 16, 16], 4),
        ([3, 32, 32], 1),
        ([3, 32, 32], 4),
        ([3, 16, 32], 1),
        ([3, 16, 32], 4),
    ]
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


@pytest.mark.parametrize(
    "factory, kwargs, shape",
    [
        ("SE", {"spelling": 0}, (16, 8, 8)),  # x * s[:, :, None, None]
        ("SE", {"spelling": 1}, (16, 8, 8)),  # s.view(b, c, 1, 1)
        ("SE", {"spelling": 2}, (16, 8, 8)),  # s.reshape(-1, c, 1, 1)
        ("SE", {"spelling": 3}, (16, 8, 8)),  # s.unsqueeze(-1).unsqueeze(-1)
        ("OptionA", {}, (16, 8, 8)),  # F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p))
        ("Scaled", {}, (16, 8, 8)),  # x + 0.17 * branch
        ("StackSplit", {}, (16, 8, 8)),  # torch.split into 4, torch.stack, .sum(1), x[:, :k], .contiguous()
        ("TFSame", {}, (3, 11, 11)),  # math.ceil(ih / s) on x.size(), and `if x.shape[-2] < 7`
        ("FunctionalNorms", {}, (3, 8, 8)),  # timm's BatchNormAct2d and LayerNorm2d: F.batch_norm, F.layer_norm
    ],
)
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


BACKBONE = IDIOMS / "backbone.py"
# Backbone at 3x64x64, worked out by hand: stride-2 stages stem 3->8 (32x32), stage1 8->16
# (16x16), stage2 16->32 (8x8), stage3 32->64 (4x4), each a bias-free 3x3 conv, batch norm, ReLU;
# laterals lat5 (1x1, 64->32 at 4x4), lat4 (1x1, 32->32 at 8x8), p4 = lat4(c4) + up(p5)
BACKBONE_PARAMS = (
    (8 * 3 * 9 + 2 * 8)
    + (16 * 8 * 9 + 2 * 16)
    + (32 * 16 * 9 + 2 * 32)
    + (64 * 32 * 9 + 2 * 64)  # convs, BN
    + (32 * 64 + 32)
    + (32 * 32 + 32)  # laterals, with biases
)
BACKBONE_BUFFERS = (8 + 8 + 1) + (16 + 16 + 1) + (32 + 32 + 1) + (64 + 64 + 1)  # running mean, var, count
BACKBONE_MACS = (
    8 * 32 * 32 * (3 * 9)
    + 16 * 16 * 16 * (8 * 9)
    + 32 * 8 * 8 * (16 * 9)
    + 64 * 4 * 4 * (32 * 9)
    + 32 * 4 * 4 * 64
    + 32 * 8 * 8 * 32
)
BACKBONE_OUTPUTS = [(16, 16, 16), (32, 8, 8), (32, 4, 4)]  # c3, p4, p5


@pytest.mark.parametrize("returns", ["tuple", "list", "dict"])
def test_a_backbone_returning_several_feature_maps_imports_and_round_trips(returns):
    import cnncalc

    model = load_factory(BACKBONE, "Backbone")(returns)
    shape = (3, 64, 64)
    assert torch_figures(model, shape) == (BACKBONE_PARAMS, BACKBONE_BUFFERS, BACKBONE_MACS)
    imported = cnncalc.from_torch(model, shape)
    report = analyze(imported.graph)
    assert [r.name for r in report.rows if r.type == "traced"] == []
    assert (report.totals.params, report.totals.buffers, report.totals.macs) == (
        BACKBONE_PARAMS,
        BACKBONE_BUFFERS,
        BACKBONE_MACS,
    )
    keys = ["c3", "p4", "p5"] if returns == "dict" else ["0", "1", "2"]
    assert report.returns.value == returns
    assert [(o.key, o.layer, o.output_shape) for o in report.outputs] == list(
        zip(keys, ["stage1.2", "add", "lat5"], BACKBONE_OUTPUTS)
    )
    # the spec names them, and reads back to the same
    assert "outputs: " in imported.yaml
    assert analyze(parse_text(imported.yaml)).outputs == report.outputs
    # to_torch returns the same structure; the model's weights load strictly; the same outputs
    rebuilt = imported.graph.to_torch().eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        got, expected = rebuilt(x), model.eval()(x)
    assert type(got) is type(expected)
    torch.testing.assert_close(got, expected)


def test_a_backbone_returning_a_namedtuple_comes_back_as_a_namedtuple_of_its_name_and_fields():
    """A NamedTuple's class is the model's code: the spec keeps its name and fields
    (outputs: {namedtuple: Features, fields: {...}}), and to_torch returns a collections.namedtuple
    of that name and those fields, equal to the model's output field by field; not the model's own
    class (a spec never imports the model's code), so isinstance against it is False."""
    import cnncalc

    model = load_factory(BACKBONE, "NamedBackbone")()
    shape = (3, 64, 64)
    imported = cnncalc.from_torch(model, shape)
    report = analyze(imported.graph)
    assert [r.name for r in report.rows if r.type == "traced"] == []
    assert (report.totals.params, report.totals.buffers, report.totals.macs) == (
        BACKBONE_PARAMS,
        BACKBONE_BUFFERS,
        BACKBONE_MACS,
    )
    assert report.returns.value == "namedtuple"
    assert [(o.key, o.layer, o.output_shape) for o in report.outputs] == list(
        zip(["c3", "p4", "p5"], ["stage1.2", "add", "lat5"], BACKBONE_OUTPUTS)
    )
    assert "outputs: {namedtuple: Features, fields: {c3: stage1.2, p4: add, p5: lat5}}" in imported.yaml
    assert analyze(parse_text(imported.yaml)).outputs == report.outputs
    rebuilt = imported.graph.to_torch().eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        got, expected = rebuilt(x), model.eval()(x)
    assert type(got).__name__ == type(expected).__name__ == "Features"
    assert got._fields == expected._fields == ("c3", "p4", "p5")
    assert isinstance(got, tuple) and not isinstance(got, type(expected))  # the same structure, not the class
    for field in got._fields:
        torch.testing.assert_close(getattr(got, field), getattr(expected, field))
    torch.testing.assert_close(tuple(got), tuple(expected))


def test_a_tuple_that_one_op_returns_is_its_pieces():
    import cnncalc

    model = load_factory(BACKBONE, "Halves")()
    imported = cnncalc.from_torch(model, (3, 8, 8))
    report = analyze(imported.graph)
    assert [(o.key, o.layer, o.output_shape) for o in report.outputs] == [
        ("0", "split.0", (8, 8, 8)),
        ("1", "split.1", (8, 8, 8)),
    ]
    assert report.totals.params == 16 * 3 * 9 + 16  # the conv
    rebuilt = imported.graph.to_torch().eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))


def test_a_model_returning_what_is_not_tensors_is_one_message_at_its_forward():
    import inspect

    import cnncalc
    from cnncalc.torch_bridge.importer import TorchImportError

    model = load_factory(BACKBONE, "ReturnsNone")()
    with pytest.raises(TorchImportError) as caught:
        cnncalc.from_torch(model, (3, 8, 8))
    err = caught.value
    assert err.message.startswith("forward returns a tuple of (a tensor, None); cnncalc imports models")
    assert err.where.path == "ReturnsNone.forward"
    assert err.where.file == str(BACKBONE)
    assert err.where.line == inspect.getsourcelines(type(model).forward)[1]
    result = cli("import", f"{BACKBONE}:ReturnsNone", "--input", "3x8x8")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert f"{BACKBONE}:{err.where.line}" in result.output


def test_summary_of_a_backbone_target_shows_its_outputs():
    result = cli("summary", f"{BACKBONE}:Backbone", "--input", "3x64x64")
    assert result.exit_code == 0, result.output
    assert "stage1.2 (output 0)" in result.output and "lat5 (output 2)" in result.output
    assert "outputs (tuple of 3): 0 = stage1.2 [16, 16, 16], 1 = add [32, 8, 8], 2 = lat5 [32, 4, 4]" in result.output


ATTENTION = IDIOMS / "attention.py"


@pytest.mark.parametrize(
    "kind",
    [
        "fused",  # qkv.permute(2, 0, 3, 1, 4).unbind(0), F.scaled_dot_product_attention
        "index",  # q, k, v = qkv[0], qkv[1], qkv[2]
        "by_hand",  # q * scale @ k.transpose(-2, -1), softmax, @ v
        "causal",  # is_causal=True
        "pvt",  # PVT-v2: k and v from a strided conv, kv.unbind(0), scale=0.3
        "windows",  # Swin's windows folded into the batch axis, view(-1, ws * ws, C), and put back
        "windows_by_hand",  # the same, softmax(q @ k^T) @ v written out
        "crops",  # o[..., :H, :W] and x[:, :H, :W, :] with H, W read from x.shape
    ],
)
def test_attention_imports_exactly_with_no_traced_row(kind):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    import cnncalc

    model = load_factory(ATTENTION, "Hybrid")(kind).eval()
    shape = (3, 16, 16)
    imported = cnncalc.from_torch(model, shape)
    report = analyze(imported.graph)
    assert [r.name for r in report.rows if r.type == "traced"] == []
    params = sum(p.numel() for p in model.parameters())
    # FlopCounterMode counts the unfused attention's two bmm (it has no formula for CPU's fused kernel)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        out = model(torch.zeros(1, *shape))
    assert (report.totals.params, report.totals.macs) == (params, counter.get_total_flops() // 2)
    assert report.rows[-1].output_shape == tuple(out.shape[1:])
    rebuilt = imported.graph.to_torch().eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))


def test_attention_macs_are_the_two_products():
    """The fused attention of the hybrid above, worked out by hand: 8x8 = 64 tokens, 4 heads of 8."""
    import cnncalc

    model = load_factory(ATTENTION, "Hybrid")("fused").eval()
    rows = analyze(cnncalc.from_torch(model, (3, 16, 16)).graph).rows
    (attention,) = [r for r in rows if r.type == "attention"]
    # q @ k^T: 4 heads x 64 x 64 outputs of 8 MACs; attn @ v: 4 x 64 x 8 outputs of 64 MACs
    assert attention.macs == 4 * 64 * 64 * 8 + 4 * 64 * 8 * 64
    assert [r.type for r in rows].count("unbind") == 3  # one item: q, k, v


def test_a_reshape_that_mixes_the_samples_is_not_taken_for_windows():
    """x.reshape(x.shape[1], -1) looks like windows folded into the batch at batch 1 (its first axis
    is 64, not 1), but its first size does not grow with the batch: traced, never mapped, and the
    figures still exact."""
    import cnncalc

    model = load_factory(ATTENTION, "Hybrid")("mixes_batch").eval()
    report = analyze(cnncalc.from_torch(model, (3, 16, 16)).graph)
    assert [r.type for r in report.rows if r.type == "traced"] == ["traced"]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 16, 16))
    assert (report.totals.params, report.totals.macs) == (
        sum(p.numel() for p in model.parameters()),
        counter.get_total_flops() // 2,
    )


def test_the_bridge_counts_cpus_fused_attention_as_flopcountermode_counts_the_unfused_one():
    """FlopCounterMode counts 0 for aten._scaled_dot_product_flash_attention_for_cpu; the bridge's
    counter gives it FlopCounterMode's own formula, which equals its count of the unfused path."""
    from torch.nn import functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from cnncalc.torch_bridge import flop_counter

    q, k, v = torch.randn(2, 3, 10, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 8)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as unfused:
        F.scaled_dot_product_attention(q, k, v)
    with torch.no_grad(), flop_counter() as fused:
        F.scaled_dot_product_attention(q, k, v)
    assert fused.get_total_flops() == unfused.get_total_flops() == 2 * (2 * 3 * 10 * 7 * (8 + 8))


ELEMENTWISE = IDIOMS / "elementwise.py"


@pytest.mark.parametrize(
    "factory, shape, params",
    [
        # conv 3x3 3 -> 8 with bias, then four parameters of one number each
        ("AffineAct", (3, 8, 8), (3 * 3 * 3 * 8 + 8) + 1 + 1 + 1 + 1),
        # conv 1x1 3 -> 8 with bias; the norm's weight (no bias); res_scale and gamma, 8 each
        ("PoolMixer", (3, 8, 8), (3 * 8 + 8) + 8 + 8 + 8),
        # conv 1x1 3 -> 8 with bias; the two norms' weights, 8 each
        ("HandNorms", (3, 8, 8), (3 * 8 + 8) + 8 + 8),
        # conv 3x3 and conv 1x1, 3 -> 8, with biases
        ("Quotients", (3, 8, 8), (3 * 3 * 3 * 8 + 8) + (3 * 8 + 8)),
    ],
)
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
