"""`cnncalc import` on models as the internet writes them (tests/fixtures/idioms/), end to end.

Each model's figures are the model's own, counted by torch here: parameters and buffers as the sum
of their numel, MACs as FlopCounterMode's FLOPs // 2. Nothing is typed from cnncalc's output.
Skipped where torch is not installed.
"""

import json
from pathlib import Path

import pytest

from cnncalc.analysis import analyze
from cnncalc.render import notebook
from cnncalc.spec import parse_text

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from cnncalc import to_torch  # noqa: E402

IDIOMS = Path(__file__).parent / "fixtures" / "idioms"
CIFAR = IDIOMS / "cifar_resnet.py"


def assert_round_trips(imported, model, shape):
    """The spec built back as PyTorch takes the model's state_dict strictly and gives its output on
    a batch of 2; returns that rebuilt module."""
    rebuilt = to_torch(imported.graph).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))
    return rebuilt


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
    assert imported._repr_html_() == notebook.to_html(report)
    assert imported._repr_markdown_() == notebook.to_markdown(report)
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
    assert_round_trips(imported, model, shape)


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
    rebuilt = to_torch(imported.graph).eval()
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
    rebuilt = to_torch(imported.graph).eval()
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
    rebuilt = to_torch(imported.graph).eval()
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
    assert_round_trips(imported, model, shape)


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


SDPA = IDIOMS / "sdpa.py"


@pytest.mark.parametrize(
    "kind, attention_macs",
    [
        # 4 heads, 64 tokens (an 8x8 map) of 8 features: q @ k^T 4*64*64 outputs of 8 MACs, attn @ v
        # 4*64*8 outputs of 64; the mask's add is not counted
        ("masked", 4 * 64 * 64 * 8 + 4 * 64 * 8 * 64),
        # k and v of one head from a stride-2 conv (4x4 = 16 positions), broadcast over q's 4 heads
        ("multi_query", 4 * 64 * 16 * 8 + 4 * 64 * 8 * 16),
        # k and v of 2 heads, each serving two of q's 4: counted over q's heads
        ("grouped", 4 * 64 * 64 * 8 + 4 * 64 * 8 * 64),
    ],
)
def test_sdpa_with_a_mask_one_kv_head_or_grouped_heads_imports_exactly(kind, attention_macs):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    import cnncalc

    model = load_factory(SDPA, "Net")(kind).eval()
    shape = (3, 16, 16)
    imported = cnncalc.from_torch(model, shape)
    report = analyze(imported.graph)
    assert [r.name for r in report.rows if r.type == "traced"] == []
    (attention,) = [r for r in report.rows if r.type == "attention"]
    assert attention.macs == attention_macs
    assert len(attention.inputs) == (4 if kind == "masked" else 3)
    # the unfused path's two bmm, as FlopCounterMode counts them (the fused CPU kernel counts 0)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        out = model(torch.zeros(1, *shape))
    params = sum(p.numel() for p in model.parameters())
    assert (report.totals.params, report.totals.macs) == (params, counter.get_total_flops() // 2)
    assert report.rows[-1].output_shape == tuple(out.shape[1:])
    assert_round_trips(imported, model, shape)


def test_the_masked_sdpa_model_by_hand():
    """Every figure of the masked model worked out from its definition, not from a tool."""
    import cnncalc

    report = analyze(cnncalc.from_torch(load_factory(SDPA, "Net")("masked").eval(), (3, 16, 16)).graph)
    stem = (3 * 3 * 3 * 32 + 32, 8 * 8 * 32 * (3 * 3 * 3))  # 3x3 conv, stride 2: 16x16 -> 8x8
    qkv = (32 * 96 + 96, 64 * 32 * 96)  # Linear(32, 96) on 64 tokens
    bias = (32 * 64 + 64, 64 * 32 * 64)  # Linear(32, 64): the mask [64, 64] of each sample
    attention = (0, 4 * 64 * 64 * (8 + 8))
    proj = (32 * 32 + 32, 64 * 32 * 32)
    head = (32 * 10 + 10, 32 * 10)
    parts = (stem, qkv, bias, attention, proj, head)
    assert report.totals.params == sum(p for p, _ in parts)
    assert report.totals.macs == sum(m for _, m in parts)


@pytest.mark.parametrize(
    "path, factory, kind",
    [
        (ATTENTION, "Hybrid", "fused"),  # q, k, v pieces of qkv.permute(2, 0, 3, 1, 4): the output like q
        (ATTENTION, "Hybrid", "pvt"),  # q.reshape(B, N, h, d).permute(0, 2, 1, 3): [N, n, h, d] transposed
        (ATTENTION, "Hybrid", "windows"),
        # softmax(q @ k^T) @ v written out: matmul's reshape copies k^T and v (pieces of the permuted
        # qkv), and bmm keeps the copies, not qkv's storage
        (ATTENTION, "Hybrid", "by_hand"),
        (ATTENTION, "Hybrid", "windows_by_hand"),
        (SDPA, "Net", "masked"),  # a mask that needs a gradient: the unfused path
        (SDPA, "Net", "multi_query"),  # k and v broadcast: the unfused path, v copied to q's heads
        (SDPA, "Net", "grouped"),  # the fused kernel, k and v kept as given
    ],
)
def test_what_a_training_step_keeps_of_imported_attention_is_what_autograd_keeps(path, factory, kind):
    """The fused CPU kernel writes its output as empty_like(q) (q's axis order), so timm's
    `o.transpose(1, 2).reshape(B, N, C)` after it is a view, not a copy; matmul keeps the copies its
    reshape makes: saved bytes to the byte (each was 16,384 bytes over before)."""
    from test_memory import check_saved

    import cnncalc

    check_saved(cnncalc.from_torch(load_factory(path, factory)(kind).eval(), (3, 16, 16)).graph, batch=2)


HALO = IDIOMS / "halo.py"


def test_halo_attention_with_relative_logits_imports_exactly_by_hand():
    """timm's HaloAttn (HaloNet), reduced: 2 heads of 8, blocks of 4x4 with a halo of 1 (windows of
    6x6) on an 8x8 map. Every figure worked out from its definition, then against PyTorch: no
    traced row, the same output, and what a training step keeps as autograd keeps it."""
    from test_memory import check_saved

    import cnncalc

    model = load_factory(HALO, "Net")().eval()
    imported = cnncalc.from_torch(model, (3, 8, 8))
    report = analyze(imported.graph)
    assert [r.name for r in report.rows if r.type == "traced"] == []
    stem = (3 * 3 * 3 * 16 + 16, 8 * 8 * 16 * (3 * 3 * 3))
    q = (16 * 16, 8 * 8 * 16 * 16)  # 1x1 conv, no bias
    kv = (16 * 32, 8 * 8 * 16 * 32)
    # rel_k [2 * 6 - 1, 8] for each of width and height; q @ rel_k^T on 2 heads x 4 blocks x 4x4
    # positions, 8 -> 11 each
    rel = (2 * 11 * 8, 2 * (2 * 4 * 4 * 4) * 8 * 11)
    # q @ k^T and attn @ v: 2 heads x 4 blocks x 16 positions x 36 window positions x 8
    attention = (0, 2 * (2 * 4 * 16 * 36 * 8))
    head = (16 * 10 + 10, 16 * 10)
    parts = (stem, q, kv, rel, attention, head)
    assert report.totals.params == sum(p for p, _ in parts) == sum(p.numel() for p in model.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(torch.zeros(1, 3, 8, 8))
    assert report.totals.macs == sum(m for _, m in parts) == counter.get_total_flops() // 2
    assert [r.type for r in report.rows].count("expand") == 2  # the logits tiled over the block
    assert report.rows[-1].output_shape == tuple(out.shape[1:])
    rebuilt = to_torch(imported.graph).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)  # pos_embed.width_rel, height_rel as the model's
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))
    check_saved(imported.graph, batch=2)


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
    rebuilt = assert_round_trips(imported, model, shape)
    # and cnncalc's own module imports back row for row (a viewed parameter is read as the model reads it)
    again = analyze(cnncalc.from_torch(rebuilt, shape).graph)
    assert [(r.name, r.type) for r in again.rows] == [(r.name, r.type) for r in report.rows]


BIAS_TABLE = IDIOMS / "bias_table.py"


@pytest.mark.parametrize(
    "kind, table, index",
    [
        # 2 heads over the 4x4 map's 16 positions; the index [16 queries, 16 keys]
        ("levit", 2 * 16, 16 * 16),
        # queries every 2nd position: ceil(4/2) * ceil(4/2) = 4 of them, each against the 16 keys
        ("downsample", 2 * 16, 4 * 16),
        ("persistent", 2 * 16, 16 * 16),  # EfficientFormer v1: the index in the state_dict
        # signed offsets on a 4x4 window: (2*4-1) * (2*4-1) = 49 per head; index [16 * 16] flat
        ("relpos", 49 * 2, 16 * 16),
        # the same two biases as F.scaled_dot_product_attention's attn_mask (TinyViT, MaxViT)
        ("levit_mask", 2 * 16, 16 * 16),
        ("relpos_mask", 49 * 2, 16 * 16),
        # TinyViT: 2x2 windows folded into the batch, the mask [2 heads, 4, 4] for each: table [2, 2*2]
        ("windows_mask", 2 * 4, 4 * 4),
        # MaxViT: the same windows, RelPosBias's signed offsets on 2x2: (2*2-1)^2 = 9 per head; and
        # x.reshape(x.shape[:-1] + (-1,)) after the attention
        ("windows_relpos", 9 * 2, 4 * 4),
        # EfficientViT: the bias of both heads one row, each head's slice added to its logits
        ("cascaded", 2 * 16, 16 * 16),
    ],
)
def test_gathered_attention_biases_import_exactly_and_round_trip(kind, table, index):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    import cnncalc

    model = load_factory(BIAS_TABLE, "Biased")(kind).eval()
    shape = (3, 8, 8)
    imported = cnncalc.from_torch(model, shape)
    report = analyze(imported.graph)
    assert [r.name for r in report.rows if r.type == "traced"] == []
    (row,) = [r for r in report.rows if r.type == "bias_table"]
    assert (row.weights, row.biases, row.buffers, row.macs) == (table, 0, index, 0)
    with sdpa_kernel(SDPBackend.MATH):  # FlopCounterMode counts the unfused attention's two bmm
        assert (report.totals.params, report.totals.buffers, report.totals.macs) == torch_figures(model, shape)
    # the model's own weights (a random table) load strictly, and the index rebuilt gives the same output
    assert_round_trips(imported, model, shape)


GAPS = IDIOMS / "gaps.py"


@pytest.mark.parametrize(
    "factory, kwargs, shape, counts",
    [
        # LiteAttention at 8x4x4: qkv 1x1 conv 8 -> 24 (no bias), proj 1x1 conv 8 -> 8 with bias; q, k, v
        # [2 heads, 16 tokens, 4]; MACs: qkv (24*16)*8, k^T @ v [2, 4, 16] @ [2, 16, 5] (v padded by a
        # column of ones), q @ kv [2, 16, 4] @ [2, 4, 5], proj (8*16)*8
        (
            "LiteAttention",
            {},
            (8, 4, 4),
            (8 * 24 + (8 * 8 + 8), 0, (24 * 16) * 8 + 2 * 4 * 5 * 16 + 2 * 16 * 5 * 4 + (8 * 16) * 8),
        ),
        # AntiAliased at 3x16x16: conv 3x3 3 -> 8 (no bias) at 16x16; blur [8, 1, 3, 3] at stride 2 on the
        # reflect-padded 18x18: 8x8 outputs of 3*3 taps each; the filter a buffer of 8*3*3
        ("AntiAliased", {}, (3, 16, 16), (3 * 3 * 3 * 8, 8 * 3 * 3, 16 * 16 * 8 * (3 * 3 * 3) + 8 * 8 * 8 * (3 * 3))),
        (
            "AntiAliased",
            {"persistent": True},
            (3, 16, 16),
            (3 * 3 * 3 * 8, 8 * 3 * 3, 16 * 16 * 8 * 27 + 8 * 8 * 8 * 9),
        ),
        # HybridViT at 3x8x8: stem 3x3/2 'same' 3 -> 8 (no bias; 8 + 1 padded to 9, so 4x4), group norm 8 + 8,
        # class token 8, position embedding (1 + 16)*8, mlp 8 -> 8 and head 8 -> 5 with biases; MACs: the stem
        # (4*4*8)*(3*3*3), the mlp on 17 tokens 17*8*8, the head 8*5 (the standardisation is no MAC)
        (
            "HybridViT",
            {},
            (3, 8, 8),
            (3 * 3 * 3 * 8 + (8 + 8) + 8 + 17 * 8 + (8 * 8 + 8) + (8 * 5 + 5), 0, 4 * 4 * 8 * 27 + 17 * 8 * 8 + 8 * 5),
        ),
        # Outlook at [4, 4, 4] (H, W, C): v 4 -> 4 (no bias), attn 4 -> 3**4 and proj 4 -> 4 with biases; MACs on
        # 16 positions: v 16*4*4, attn 16*4*81, each position's [9, 9] @ [9, 4] 16*(9*4*9), proj 16*4*4
        (
            "Outlook",
            {},
            (4, 4, 4),
            (4 * 4 + (4 * 81 + 81) + (4 * 4 + 4), 0, 16 * 4 * 4 + 16 * 4 * 81 + 16 * (9 * 4 * 9) + 16 * 4 * 4),
        ),
        # AuxHead at [5, 4] (5 tokens of 4): head and aux_head 4 -> 3 with biases; MACs: the class token's 4*3,
        # the other 4 tokens' 4*(4*3)
        ("AuxHead", {}, (5, 4), (2 * (4 * 3 + 3), 0, 4 * 3 + 4 * (4 * 3))),
        # Rescaled at 3x5x5: a 1x1 conv 3 -> 4 with bias at 5x5, then 10x10 and back (interpolation: no MACs)
        ("Rescaled", {}, (3, 5, 5), (3 * 4 + 4, 0, 5 * 5 * 4 * 3)),
        # RegisterTokens at [5, 4]: class token 4, two registers 2*4, head 4 -> 3 with bias; MACs: the head's 4*3
        ("RegisterTokens", {}, (5, 4), (4 + 2 * 4 + (4 * 3 + 3), 0, 4 * 3)),
    ],
)
def test_small_gaps_import_exactly_with_no_traced_row(factory, kwargs, shape, counts):
    import cnncalc

    model = load_factory(GAPS, factory)(**kwargs).eval()
    assert torch_figures(model, shape) == counts
    imported = cnncalc.from_torch(model, shape)
    report = analyze(imported.graph)
    assert [r.name for r in report.rows if r.type == "traced"] == []
    assert (report.totals.params, report.totals.buffers, report.totals.macs) == counts
    with torch.no_grad():
        out = model(torch.zeros(1, *shape))
    assert report.rows[-1].output_shape == tuple(out.shape[1:])
    assert_round_trips(imported, model, shape)


def test_levits_batch_norm_of_tokens_folded_into_the_batch_is_one_row():
    """bn(x.flatten(0, 1)).reshape_as(x): a batchnorm over the channels of the 16 tokens, named after the module."""
    import cnncalc

    model = load_factory(BIAS_TABLE, "Biased")("linear_norm").eval()
    shape = (3, 8, 8)
    imported = cnncalc.from_torch(model, shape)
    report = analyze(imported.graph)
    assert [r.type for r in report.rows if r.name.startswith("attn.")] == ["linear", "batchnorm"]
    (norm,) = [r for r in report.rows if r.type == "batchnorm"]
    # 24 channels: gamma and beta; running mean, running var and num_batches_tracked
    assert (norm.name, norm.weights, norm.biases, norm.buffers) == ("attn.bn", 24, 24, 24 + 24 + 1)
    assert (report.totals.params, report.totals.buffers, report.totals.macs) == torch_figures(model, shape)
    assert_round_trips(imported, model, shape)


def test_a_table_gathered_in_another_order_stays_a_traced_row():
    """An index that no grid gives (the LeViT index reversed): measured, never a wrong bias_table."""
    import cnncalc

    model = load_factory(BIAS_TABLE, "Biased")("levit").eval()
    idx = model.attn.attention_bias_idxs
    idx.copy_(idx.flip(-1))
    rows = analyze(cnncalc.from_torch(model, (3, 8, 8)).graph).rows
    assert [r.type for r in rows].count("bias_table") == 0
    (traced,) = [r for r in rows if r.type == "traced"]
    assert (traced.weights, traced.buffers) == (2 * 16, 16 * 16)


def test_a_cast_to_the_same_dtype_is_the_very_tensor_and_to_another_a_traced_row():
    import cnncalc

    report = analyze(cnncalc.from_torch(load_factory(GAPS, "LiteAttention")(), (8, 4, 4)).graph)
    casts = [r for r in report.rows if r.name.rsplit(".", 1)[-1].startswith(("float", "to"))]
    assert len(casts) == 4 and {r.type for r in casts} == {"identity"}  # q, k, v .float() and .to(dtype)
    from cnncalc.layers import REGISTRY

    assert REGISTRY["identity"].aliases_input  # no new tensor: PyTorch returns its input
    model = load_factory(GAPS, "ToDouble")()
    report = analyze(cnncalc.from_torch(model, (3, 4, 4)).graph)
    assert [r.type for r in report.rows[1:]] == ["conv", "traced", "traced"]  # fp32 -> fp64 -> fp32: new tensors
    assert (report.totals.params, report.totals.macs) == (3 * 4 + 4, 4 * 4 * 4 * 3)
    report = analyze(cnncalc.from_torch(load_factory(GAPS, "Moves")(), (3, 4, 4)).graph)
    assert [r.type for r in report.rows[1:]] == ["conv", "identity", "identity", "traced"]  # copy=True: a new tensor


def test_max_read_for_its_indices_is_a_traced_row():
    import cnncalc

    report = analyze(cnncalc.from_torch(load_factory(GAPS, "ArgMax")(), (5, 4)).graph)
    assert "max" not in {r.type for r in report.rows} and "traced" in {r.type for r in report.rows}


NORMS = IDIOMS / "norms.py"


@pytest.mark.parametrize(
    "factory, shape, params, macs",
    [
        # 20 tokens (4x5) of 8 channels: to_query, to_key 8 -> 6 with biases, w_g [6, 1], proj 6 -> 6, final 6 -> 8
        (
            "AdditiveAttention",
            (8, 4, 5),
            2 * (8 * 6 + 6) + 6 * 1 + (6 * 6 + 6) + (6 * 8 + 8),
            20 * (8 * 6 + 8 * 6 + 6 * 1 + 6 * 6 + 6 * 8),
        ),
        # conv 3x3 3 -> 8 with bias on 6x6; the norms count nothing
        ("ResponseNorm", (3, 6, 6), 3 * 3 * 3 * 8 + 8, 8 * 6 * 6 * (3 * 3 * 3)),
        # the same conv; GRN's weight and bias, 8 each (torch.addcmul: a parameter product and sum, not counted)
        ("GlobalResponseNorm", (3, 6, 6), 3 * 3 * 3 * 8 + 8 + 8 + 8, 8 * 6 * 6 * (3 * 3 * 3)),
        # conv 3x3 3 -> 4 with bias on 6x6 (4x4 out); weight [10, 64] and bias 10; proj [5, 10]
        (
            "FunctionalLinear",
            (3, 6, 6),
            (3 * 3 * 3 * 4 + 4) + 10 * 64 + 10 + 5 * 10,
            4 * 4 * 4 * (3 * 3 * 3) + 64 * 10 + 10 * 5,
        ),
    ],
)
def test_norm_and_matrix_idioms_import_exactly_with_no_traced_row(factory, shape, params, macs):
    """F.normalize, x.norm / torch.norm and `x @ self.w_g` (issue 18): mapped, counted, round-tripped."""
    check_idiom(load_factory(NORMS, factory)(), shape, params, macs)


TOKENS = IDIOMS / "tokens.py"
# both at 3x8x8: the stem, 3x3 stride 2 3 -> 8 with bias, gives 8x4x4; the encoding (4 features per
# axis: 8 channels) projected by a 1x1 conv 8 -> 8 with bias at 4x4; a head 8 -> 5 with bias
STEM = (3 * 3 * 3 * 8 + 8, 8 * 4 * 4 * (3 * 3 * 3))
PROJECTION = (8 * 8 + 8, 8 * 4 * 4 * 8)
HEAD = (8 * 5 + 5, 8 * 5)


@pytest.mark.parametrize(
    "factory, params, macs",
    [
        # and the class token [1, 1, 8]
        ("XcitTokens", STEM[0] + PROJECTION[0] + 1 * 1 * 8 + HEAD[0], STEM[1] + PROJECTION[1] + HEAD[1]),
        ("EdgeNextPosition", STEM[0] + PROJECTION[0] + HEAD[0], STEM[1] + PROJECTION[1] + HEAD[1]),
    ],
)
def test_token_idioms_import_exactly_with_no_traced_row(factory, params, macs):
    """A sine position encoding computed from sizes (a `sine_position` row), a class token, `x[:, 0]`,
    `pos.repeat(B, 1, 1, 1)` (issue 18)."""
    imported = check_idiom(load_factory(TOKENS, factory)(), (3, 8, 8), params, macs)
    types = {r.type for r in analyze(imported.graph).rows}
    assert "sine_position" in types
    assert factory != "XcitTokens" or {"class_token", "repeat", "squeeze"} <= types
    # the encoding follows the input's size: another input gives the model's own output there too
    model = load_factory(TOKENS, factory)().eval()
    import cnncalc

    again = cnncalc.from_torch(model, (3, 12, 10))
    rebuilt = to_torch(again.graph).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(3, 3, 12, 10)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))


def check_idiom(model, shape, params, macs):
    """The model imports with no traced row, exactly (figures also counted by torch), and round-trips."""
    import cnncalc

    assert torch_figures(model, shape) == (params, 0, macs)
    imported = cnncalc.from_torch(model, shape)
    report = analyze(imported.graph)
    assert [r.name for r in report.rows if r.type == "traced"] == []
    assert (report.totals.params, report.totals.buffers, report.totals.macs) == (params, 0, macs)
    with torch.no_grad():
        out = model.eval()(torch.zeros(1, *shape))
    assert report.rows[-1].output_shape == tuple(out.shape[1:])
    rebuilt = assert_round_trips(imported, model, shape)
    again = analyze(cnncalc.from_torch(rebuilt, shape).graph)
    assert [(r.name, r.type) for r in again.rows] == [(r.name, r.type) for r in report.rows]
    return imported
