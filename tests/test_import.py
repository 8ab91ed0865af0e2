"""`cnncalc import` / cnncalc.from_torch: a spec from a PyTorch model, checked against the model.

The strongest test: every built-in, built in PyTorch by `to_torch()` and imported back, gives the
same table row by row. Hand-written modules cover each row of the mapping table in its module and
functional forms, and each kind of refusal has its message. Skipped where torch is not installed.
"""

import inspect
import textwrap

import pytest

import cnncalc
from cnncalc.analysis import analyze
from cnncalc.errors import CnncalcError
from cnncalc.layers import ALIASES, REGISTRY
from cnncalc.spec import parse_text

torch = pytest.importorskip("torch")
from helpers.builtins import builtin_params  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from cnncalc import to_torch  # noqa: E402
from cnncalc.torch_bridge.importer import (  # noqa: E402
    MODULE_KINDS,
    TorchImportError,
    import_command,
    module_kind,
    parse_args,
    parse_shape,
    table_kinds,
)


def table(report):
    return [(r.name, r.output_shape, r.weights, r.biases, r.buffers, r.macs) for r in report.rows]


@pytest.mark.parametrize("name", builtin_params())
def test_every_builtin_round_trips(name):
    graph = cnncalc.load(name)
    with torch.device("meta"):  # shapes only: no memory, no arithmetic
        model = to_torch(graph)
    imported = cnncalc.from_torch(model, graph.input_shape, name=graph.name)
    before, after = analyze(graph), analyze(imported.graph)
    assert table(after) == table(before)
    assert after.totals == before.totals
    assert analyze(parse_text(imported.yaml)).totals == before.totals  # the YAML text says the same


def test_resnet50_reads_like_the_builtin():
    graph = cnncalc.load("resnet50")
    with torch.device("meta"):
        model = to_torch(graph)
    imported = cnncalc.from_torch(model, graph.input_shape)
    assert len(imported.yaml.splitlines()) < 60  # not 500 flat lines
    (block,) = imported.data["blocks"].values()
    assert set(block) == {"args", "body", "shortcut", "after"}
    assert block["args"] == {"out": None, "stride": 1, "downsample": False}
    layer2 = next(
        item["sequential"]
        for item in imported.data["layers"]
        if isinstance(item, dict) and "sequential" in item and item["sequential"]["name"] == "layer2"
    )
    assert layer2["layers"] == [
        {"residual_block": {"out": 128, "stride": 2, "downsample": True}},
        {"residual_block": {"out": 128, "repeat": 3}},
    ]


def test_every_row_of_the_table_maps_to_a_registered_type():
    rows = table_kinds()
    assert rows  # the table is not empty
    for key, (kind, optional) in rows.items():
        if not optional:
            assert kind in REGISTRY or kind in ALIASES, key
    for cls, kind in MODULE_KINDS.items():
        if cls.__module__.startswith("torch.nn"):
            assert module_kind(_default(cls)) == kind, cls


def _default(cls):
    needs = {
        nn.Conv1d: (1, 1, 1),
        nn.Conv2d: (1, 1, 1),
        nn.Conv3d: (1, 1, 1),
        nn.ConvTranspose1d: (1, 1, 1),
        nn.ConvTranspose2d: (1, 1, 1),
        nn.ConvTranspose3d: (1, 1, 1),
        nn.Linear: (1, 1),
        nn.LocalResponseNorm: (2,),
    }
    for base in (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d):
        needs[base] = (2,)
    for base in (
        nn.AdaptiveAvgPool1d,
        nn.AdaptiveAvgPool2d,
        nn.AdaptiveAvgPool3d,
        nn.AdaptiveMaxPool1d,
        nn.AdaptiveMaxPool2d,
        nn.AdaptiveMaxPool3d,
        nn.BatchNorm1d,
        nn.BatchNorm2d,
        nn.BatchNorm3d,
    ):
        needs[base] = (1,)
    if cls is nn.Softmax:
        return nn.Softmax(dim=1)
    return cls(*needs.get(cls, ()))


# ----- hand-written modules: each mapping, module and functional forms ----------------------


def imported_rows(model, shape):
    """(name, kind) of every row, after checking the import against the model's real output."""
    imported = cnncalc.from_torch(model, shape)
    report = analyze(imported.graph)
    with torch.no_grad():
        out = model.eval()(torch.randn(1, *shape))
    assert report.rows[-1].output_shape == tuple(out.shape[1:])
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert report.totals.buffers == sum(b.numel() for b in model.buffers())
    return [(node.name, node.kind) for node in imported.graph.nodes[1:]]


MODULE_FORMS = [
    (
        "2-d",
        (3, 16, 16),
        lambda: nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
            nn.LocalResponseNorm(3),
            nn.Dropout2d(0.1),
            nn.ConvTranspose2d(8, 4, 2, stride=2),
            nn.AdaptiveMaxPool2d(4),
            nn.AdaptiveAvgPool2d((2, 2)),
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(16, 10),
            nn.Softmax(dim=1),
        ),
        [
            "conv",
            "batchnorm",
            "relu",
            "maxpool",
            "avgpool",
            "lrn",
            "dropout",
            "conv_transpose",
            "adaptive_maxpool",
            "adaptive_avgpool",
            "flatten",
            "dropout",
            "linear",
            "softmax",
        ],
    ),
    (
        "1-d and 3-d",
        (2, 8),
        lambda: nn.Sequential(
            nn.Conv1d(2, 4, 3),
            nn.BatchNorm1d(4),
            nn.MaxPool1d(2),
            nn.AvgPool1d(1),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
            nn.Identity(),
        ),
        ["conv", "batchnorm", "maxpool", "avgpool", "adaptive_avgpool", "flatten", "identity"],
    ),
    (
        "3-d",
        (1, 4, 8, 8),
        lambda: nn.Sequential(
            nn.Conv3d(1, 2, 3, padding=1),
            nn.BatchNorm3d(2),
            nn.MaxPool3d(2),
            nn.ConvTranspose3d(2, 2, 2, stride=2),
            nn.AvgPool3d(2),
        ),
        ["conv", "batchnorm", "maxpool", "conv_transpose", "avgpool"],
    ),
    (
        "activations",
        (4, 6, 6),
        lambda: nn.Sequential(
            nn.LeakyReLU(0.2), nn.ELU(0.5), nn.GELU(approximate="tanh"), nn.SiLU(), nn.Sigmoid(), nn.Tanh(), nn.ReLU()
        ),
        ["leaky_relu", "elu", "gelu", "silu", "sigmoid", "tanh", "relu"],
    ),
]


@pytest.mark.parametrize("label, shape, make, kinds", MODULE_FORMS, ids=[m[0] for m in MODULE_FORMS])
def test_module_forms(label, shape, make, kinds):
    rows = imported_rows(make(), shape)
    assert [kind for _, kind in rows] == kinds
    assert [name for name, _ in rows] == [str(i) for i in range(len(kinds))]  # nn.Sequential's names


def test_arguments_are_read_from_the_module():
    model = nn.Sequential(
        nn.Conv2d(3, 8, (3, 5), stride=(2, 1), padding=(1, 2), dilation=1, groups=1, bias=False),
        nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        nn.LeakyReLU(0.2),
    )
    layers = cnncalc.from_torch(model, (3, 15, 15)).data["layers"]
    assert layers == [
        {"conv": {"out": 8, "kernel": [3, 5], "stride": [2, 1], "padding": [1, 2], "bias": False}},
        {"maxpool": {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True}},
        {"leaky_relu": 0.2},
    ]


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = F.relu(self.conv(x))
        x = F.max_pool2d(x, 2)
        x = F.avg_pool2d(x, 2, stride=2)
        x = torch.sigmoid(x)
        x = torch.tanh(x).relu()
        x = F.leaky_relu(F.elu(F.gelu(F.silu(x))), 0.1)
        x = F.adaptive_avg_pool2d(x, 1)
        x = torch.flatten(x, 1)
        x = F.dropout(x, 0.2, self.training)
        return F.softmax(self.fc(x), dim=1)


def test_functional_forms():
    assert imported_rows(Functional(), (3, 16, 16)) == [
        ("conv", "conv"),
        ("relu", "relu"),
        ("max_pool2d", "maxpool"),
        ("avg_pool2d", "avgpool"),
        ("sigmoid", "sigmoid"),
        ("tanh", "tanh"),
        ("relu_1", "relu"),
        ("silu", "silu"),
        ("gelu", "gelu"),
        ("elu", "elu"),
        ("leaky_relu", "leaky_relu"),
        ("adaptive_avg_pool2d", "adaptive_avgpool"),
        ("flatten", "flatten"),
        ("dropout", "dropout"),
        ("fc", "linear"),
        ("softmax", "softmax"),
    ]


class Merges(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        a = self.conv(x)
        b = a + x
        b += x
        c = torch.add(b, a)
        d = c.add(x).relu()
        e = torch.cat([d, x], dim=1)
        f = torch.cat((e, x), 1)
        return f.mean((2, 3))


def test_merges_and_mean():
    rows = imported_rows(Merges(), (4, 8, 8))
    assert rows == [
        ("conv", "conv"),
        ("add", "add"),
        ("add_1", "add"),
        ("add_2", "add"),
        ("add_3", "add"),
        ("relu", "relu"),
        ("concat", "concat"),
        ("concat_1", "concat"),
        ("mean", "global_avgpool"),
        ("mean_flatten", "flatten"),
    ]
    graph = cnncalc.from_torch(Merges(), (4, 8, 8)).graph
    inputs = {node.name: [graph.nodes[i].name for i in node.inputs] for node in graph.nodes}
    assert inputs["add"] == ["conv", "input"] and inputs["add_2"] == ["add_1", "conv"]
    assert inputs["concat_1"] == ["concat", "input"]


class Heads(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 1)

    def forward(self, x):
        x = self.conv(x)
        y = x.mean([2, 3], keepdim=True)  # [N, 6, 1, 1]
        y = y.view(y.size(0), -1)  # [N, 6]
        z = x.reshape(x.shape[0], -1)  # [N, 6*4*4]
        w = x.flatten(1)
        return torch.cat([y, z, w], 1).softmax(1)


def test_heads():
    rows = imported_rows(Heads(), (3, 4, 4))
    assert rows == [
        ("conv", "conv"),
        ("mean", "global_avgpool"),
        ("view", "flatten"),
        ("reshape", "flatten"),
        ("flatten", "flatten"),
        ("concat", "concat"),
        ("softmax", "softmax"),
    ]


def test_reshape_forms():
    class Net(nn.Module):
        def forward(self, x):
            return torch.reshape(x.reshape(x.shape[0], -1).view(1, -1).flatten(1), (1, -1))

    assert [kind for _, kind in imported_rows(Net(), (2, 3))] == ["flatten"] * 4


class Block(nn.Module):
    """A torchvision-style basic block: one ReLU module called twice, `out += identity`."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.layer1 = nn.Sequential(Block(8, 8, 1), Block(8, 8, 1))
        self.layer2 = nn.Sequential(Block(8, 16, 2), Block(16, 16, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layer2(self.layer1(self.stem(x)))), 1))


def test_repeated_blocks_become_one_block_definition():
    model = TinyResNet()
    imported = cnncalc.from_torch(model, (3, 16, 16))
    assert list(imported.data["blocks"]) == ["block"]
    block = imported.data["blocks"]["block"]
    assert block["args"] == {"out": None, "stride": 1, "downsample": False}  # 3 of 4 uses: stride 1, no downsample
    assert [next(iter(item)) for item in block["body"]] == ["conv", "batchnorm", "relu", "conv", "batchnorm"]
    assert block["after"] == [{"call": "relu"}]  # the block's one ReLU module, run again (relu@2)
    assert (
        "\n  - sequential:\n      name: layer1\n      layers:\n        - block: {out: 8, repeat: 2}\n" in imported.yaml
    )
    # the names are named_modules(): a state_dict of the model loads into the spec's own model
    rebuilt = to_torch(imported.graph)
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(rebuilt.eval()(x), model.eval()(x))
    names = [node.name for node in imported.graph.nodes]
    assert names[1:8] == [
        "stem",
        "layer1.0.conv1",
        "layer1.0.bn1",
        "layer1.0.relu",
        "layer1.0.conv2",
        "layer1.0.bn2",
        "layer1.0.add",
    ]
    assert "layer2.0.downsample.0" in names and "layer2.0.relu@2" in names
    assert imported.graph.nodes[names.index("layer2.0.relu@2")].calls == "layer2.0.relu"


class MiniConvNeXt(nn.Module):
    """ConvNeXt's block in miniature: a permute to channels last (method and function forms), a
    layer norm over the last axis, linears on the last axis, a layer scale held as a bare
    parameter, a residual add; then a channels-first layer norm by moving axes back."""

    def __init__(self, c=8):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.pw1 = nn.Linear(c, 4 * c)
        self.act = nn.GELU()
        self.pw2 = nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.full((c, 1, 1), 0.5))

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(self.act(self.pw1(self.norm(y))))
        y = torch.permute(y, [0, 3, 1, 2])
        return x + self.gamma * y


class MiniShuffle(nn.Module):
    """ShuffleNetV2's unit: chunk, a branch on the second half, cat, and torchvision's
    view-transpose-contiguous-view channel shuffle."""

    def __init__(self, c=8):
        super().__init__()
        self.branch = nn.Sequential(nn.Conv2d(c // 2, c // 2, 1), nn.ReLU())

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        out = torch.cat((a, self.branch(b)), dim=1)
        n, c, h, w = out.size()
        out = out.view(n, 2, c // 2, h, w)
        out = torch.transpose(out, 1, 2).contiguous()
        first, second = torch.split(out.view(n, -1, h, w), [3, 5], 1)
        return torch.cat([second, first], 1)


@pytest.mark.parametrize(
    "make, shape, rows",
    [
        (
            MiniConvNeXt,
            (8, 6, 6),
            [
                ("dw", "conv"),
                ("permute", "permute"),
                ("norm", "layernorm"),
                ("pw1", "linear"),
                ("act", "gelu"),
                ("pw2", "linear"),
                ("permute_1", "permute"),
                ("gamma", "layer_scale"),
                ("add", "add"),
            ],
        ),
        (
            MiniShuffle,
            (8, 4, 4),
            [
                ("chunk.0", "chunk"),
                ("chunk.1", "chunk"),
                ("branch.0", "conv"),
                ("branch.1", "relu"),
                ("concat", "concat"),
                ("channel_shuffle", "channel_shuffle"),
                ("split.0", "split"),
                ("split.1", "split"),
                ("concat_1", "concat"),
            ],
        ),
    ],
)
def test_modern_blocks_import_exactly(make, shape, rows):
    """Each mapping of the zoo's newer ops, checked where it matters: the spec's own model loads
    the original's state_dict (strict) and computes the same output."""
    model = make().eval()
    assert imported_rows(model, shape) == rows
    imported = cnncalc.from_torch(model, shape)
    rebuilt = to_torch(imported.graph).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))
    assert analyze(parse_text(imported.yaml)).totals == analyze(imported.graph).totals


class Cropped(nn.Module):
    """U-Net's skip crop written as slicing, one axis open-ended and one from the end."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3)

    def forward(self, x):
        return torch.cat([self.conv(x), x[:, :, 1:-1, 1:9]], dim=1)


def test_slicing_is_a_crop():
    model = Cropped().eval()
    assert imported_rows(model, (3, 10, 10)) == [("conv", "conv"), ("crop", "crop"), ("concat", "concat")]
    imported = cnncalc.from_torch(model, (3, 10, 10))
    assert {"crop": {"amounts": 1, "from": "input", "name": "crop"}} in imported.data["layers"]
    rebuilt = to_torch(imported.graph).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 10, 10)
    torch.testing.assert_close(rebuilt(x), model(x))


# cnncalc's own modules for the newer types, built by to_torch() and imported back
OWN_MODULES_SPEC = """
name: own
input: [8, 8, 8]
layers:
  - conv: {out: 8, kernel: 3, padding: 1, name: stem}
  - chunk: {chunks: 2, name: halves}
  - conv: {out: 4, kernel: 1, name: branch, from: halves.1}
  - concat: {from: [halves.0, branch]}
  - channel_shuffle: 2
  - layernorm: {over: channels, name: ln}
  - permute: [0, 2, 3, 1]
  - layernorm: {over: 1, name: ln_last}
  - linear: {out: 8, channels_last: true}
  - permute: [0, 3, 1, 2]
  - layer_scale: {init: 0.5, name: gamma}
  - stochastic_depth: {p: 0.1, name: drop}
  - mul: {from: [drop, stem], name: gate}
  - center_crop: {size: 6, name: crop}
  - global_avgpool
"""


def test_cnncalc_own_modules_round_trip():
    graph = parse_text(OWN_MODULES_SPEC)
    model = to_torch(graph).eval()
    imported = cnncalc.from_torch(model, graph.input_shape, name="own")
    assert table(analyze(imported.graph)) == table(analyze(graph))
    rebuilt = to_torch(imported.graph).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *graph.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))


def reference(model, shape):
    """The model's own figures at batch 1, counted by PyTorch: (params, buffers, MACs, output shape);
    MACs as torch.utils.flop_counter counts FLOPs, halved."""
    from torch.utils.flop_counter import FlopCounterMode

    model = model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = model(torch.zeros(1, *shape))
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())
    return params, buffers, counter.get_total_flops() // 2, tuple(out.shape[1:])


def imported_figures(imported):
    report = analyze(imported.graph)
    t = report.totals
    return t.params, t.buffers, t.macs, report.rows[-1].output_shape


def traced_rows(imported):
    return [(r.name, r.type) for r in analyze(imported.graph).rows if r.type == "traced"]


class Offset(nn.Module):
    def __init__(self):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(3, 8, 8))

    def forward(self, x):
        return x + self.pos


class FullScale(nn.Module):
    def __init__(self):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(3, 8, 8))

    def forward(self, x):
        return self.gamma * x


class Strided(nn.Module):
    def forward(self, x):
        return x[:, :, ::2]


class SpatialChunk(nn.Module):
    def forward(self, x):
        return x.chunk(2, dim=2)[0]


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.conv(self.conv(x))


class Scalar(nn.Module):
    def forward(self, x):
        return x + 1


class Reshape(nn.Module):
    def forward(self, x):
        return x.view(1, 3, 4, 16)


class UnsupportedModule(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.odd = nn.Sequential(nn.Hardshrink())

    def forward(self, x):
        return self.odd(self.conv(x))


class UnsupportedFunction(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Sequential(nn.Conv2d(3, 4, 3))

    def forward(self, x):
        return torch.erf(self.inner(x))


class SpaceToDepth(nn.Module):
    """TResNet's stem: a rank-6 view and permute (the permute type took 2 to 5 axes until issue 18)."""

    def forward(self, x):
        n, c, h, w = x.size()
        x = x.view(n, c, h // 4, 4, w // 4, 4).permute(0, 3, 5, 1, 2, 4).contiguous()
        return x.view(n, c * 16, h // 4, w // 4)


class Normalise(nn.Module):
    """A buffer and a plain tensor attribute (fx makes the latter a constant): only the buffer is counted."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(3, 1, 1))
        self.scale = torch.full((3, 1, 1), 2.0)

    def forward(self, x):
        return (x - self.mean) * self.scale


class Bmm(nn.Module):
    def forward(self, x):
        return torch.bmm(x.transpose(1, 2), x)


class WithAttention(nn.Module):
    """A module with children that cnncalc has no type for: one traced row holds all its parameters."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        x = self.conv(x).flatten(2).transpose(1, 2)
        return self.attn(x, x, x, need_weights=False)[0]


# what no mapping expresses: a traced row each, exact where the model was traced (and what was
# refused here before and is mapped since: exact with no traced row)
TRACED = [
    (Offset(), (3, 8, 8), []),  # now a parameter row (x + p)
    (FullScale(), (3, 8, 8), []),  # now a parameter row (p * x)
    (Strided(), (3, 8, 8), []),  # now a slice
    (SpatialChunk(), (3, 8, 8), []),  # now a chunk along axis 2
    (Shared(), (3, 8, 8), [("conv_1", "traced")]),
    (Scalar(), (3, 8, 8), []),  # now a scalar
    (Reshape(), (3, 8, 8), []),  # now a reshape
    (UnsupportedModule(), (3, 8, 8), [("odd.0", "traced")]),
    (UnsupportedFunction(), (3, 8, 8), [("erf", "traced")]),
    (nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), (3, 8, 8), [("conv2d", "traced")]),
    (nn.AvgPool2d(2, divisor_override=3), (3, 8, 8), [("avg_pool2d", "traced")]),
    (nn.Flatten(2), (3, 8, 8), []),  # now a flatten from axis 2
    (nn.Softmax(dim=2), (3, 8, 8), []),  # now a softmax over axis 2
    (nn.Softmax(dim=0), (3, 8, 8), [("softmax", "traced")]),  # over the batch axis: not per sample
    (Bmm(), (8, 6), []),  # now a matmul
    (SpaceToDepth(), (3, 8, 8), []),  # now a permute of 6 axes
    (Normalise(), (3, 8, 8), [("sub", "traced"), ("mul", "traced")]),
    (WithAttention(), (3, 6, 6), [("attn.0", "traced")]),
]


@pytest.mark.parametrize(
    "model, shape, rows", TRACED, ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else None
)
def test_what_no_mapping_expresses_is_a_traced_row_with_exact_counts(model, shape, rows):
    imported = cnncalc.from_torch(model, shape)
    assert traced_rows(imported) == rows
    assert imported_figures(imported) == reference(model, shape)
    if not rows:  # mapped since: exact, and no traced row
        return
    assert "- traced:" in imported.yaml
    # the rows hold at the traced input only, and say so
    other = (shape[0], *(s + 2 for s in shape[1:]))
    moved = imported.yaml.replace(f"input: {list(shape)}", f"input: {list(other)}")
    # (a fixed-size reshape before the traced row may be the first to say so)
    with pytest.raises(CnncalcError, match="was measured at input|reshape to"):
        analyze(parse_text(moved))


class TinyAttention(nn.Module):
    """A CNN with a self-attention block over its positions, as hybrid CNNs (LeViT, EfficientFormer)
    write it: q @ k.transpose(-2, -1), softmax(-1) (method form), torch.matmul(attn, v), then a
    classifier ending in F.softmax(logits, -1)."""

    def __init__(self, c=8, heads=2):
        super().__init__()
        self.heads, self.scale = heads, (c // heads) ** -0.5
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)
        self.head = nn.Linear(c, 10)

    def forward(self, x):
        x = self.stem(x)
        n, c, h, w = x.shape
        qkv = self.qkv(x).reshape(n, 3 * self.heads, c // self.heads, h * w).transpose(-2, -1)
        q, k, v = qkv.chunk(3, dim=1)  # [N, heads, positions, c / heads] each
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(-1)  # [N, heads, positions, positions]
        y = torch.matmul(attn, v).transpose(-2, -1).reshape(n, c, h, w)
        x = x + self.proj(y)
        return F.softmax(self.head(x.mean((2, 3))), -1)


def test_attention_maps_to_matmul_and_softmax():
    """Attention's products and its softmax over the keys are cnncalc rows, no traced row: the
    figures are the model's own (MACs as FlopCounterMode counts them), and the spec's own model
    loads the model's state_dict (strict) and computes the same output."""
    model, shape = TinyAttention().eval(), (3, 4, 6)
    imported = cnncalc.from_torch(model, shape)
    assert traced_rows(imported) == []
    kinds = [node.kind for node in imported.graph.nodes[1:]]
    assert kinds.count("matmul") == 2 and kinds.count("softmax") == 2
    assert imported_figures(imported) == reference(model, shape)
    positions, d = 4 * 6, 8 // 2
    matmuls = [r.macs for r in analyze(imported.graph).rows if r.type == "matmul"]
    assert matmuls == [2 * positions * positions * d, 2 * positions * d * positions]  # q k^T, then attn v
    rebuilt = to_torch(imported.graph).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))
    assert analyze(parse_text(imported.yaml)).totals == analyze(imported.graph).totals


def test_an_op_that_changes_the_batch_axis_is_refused():
    class Cat0(nn.Module):
        def forward(self, x):
            return torch.cat([x, x], 0)

    class BatchPermute(nn.Module):
        def forward(self, x):
            return x.permute(1, 0, 2, 3)

    for model in (Cat0(), BatchPermute()):
        with pytest.raises(TorchImportError, match="changes the batch axis"):
            cnncalc.from_torch(model, (3, 8, 8))


# ----- refusals -----------------------------------------------------------------------------


def _line_of(cls, text):
    source, first = inspect.getsourcelines(cls)
    return first + next(i for i, line in enumerate(source) if text in line)


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        x = self.conv(x)
        if x.sum() > 0:
            return x
        return -x


def test_data_dependent_control_flow_says_so():
    with pytest.raises(TorchImportError) as caught:
        cnncalc.from_torch(DataDependent(), (3, 8, 8))
    err = caught.value
    assert err.message == (
        "its control flow branches on the values of a tensor, not on its shape: the layers it runs depend on the data"
    )
    assert err.where.path == "DataDependent.forward"
    assert err.where.file == __file__ and err.where.line == _line_of(DataDependent, "if x.sum() > 0")


def test_a_wrong_input_shape_is_a_clear_error():
    with pytest.raises(TorchImportError) as caught:
        cnncalc.from_torch(nn.Conv2d(3, 4, 3), (4, 8, 8))
    err = caught.value
    assert err.message == "Conv2d does not run on an input of shape [4, 8, 8] (batch axis added: [1, 4, 8, 8])"
    assert "expected input[1, 4, 8, 8] to have 3 channels" in err.received  # PyTorch's words, batch included
    assert err.hint == "give the input shape the model expects (--input 3x224x224)"


def test_an_input_shape_given_with_its_batch_axis_is_told_which_to_give():
    """`--input 1x3x28x28` is a sample of shape [1, 3, 28, 28]: PyTorch's conv2d refuses the 5-D batch."""
    with pytest.raises(TorchImportError) as caught:
        cnncalc.from_torch(nn.Conv2d(3, 4, 3), (1, 3, 28, 28))
    assert (
        caught.value.hint == "--input is one sample's shape, without the batch axis (cnncalc adds it): --input 3x28x28?"
    )


class WithDefaults(nn.Module):
    """timm's ViT hybrids: forward(x, attn_mask=None, is_causal=False), called with x alone."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x, mask=None, doubled=False, *, scale=None):
        x = self.conv(x)
        if mask is not None:
            x = x * mask
        if doubled:
            x = torch.cat([x, x], 1)
        return x


def test_forward_arguments_with_defaults_run_at_their_defaults():
    model = WithDefaults()
    imported = cnncalc.from_torch(model, (3, 8, 8))
    assert traced_rows(imported) == []
    # the conv alone: 4 * 3 * 3 * 3 weights + 4 biases; MACs (4 * 6 * 6) * (3 * 3 * 3); output [4, 6, 6]
    assert (
        imported_figures(imported) == reference(model, (3, 8, 8)) == (4 * 3 * 3 * 3 + 4, 0, 4 * 6 * 6 * 27, (4, 6, 6))
    )


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x, y):
        return self.conv(x) + self.conv(y)


def test_a_second_input_tensor_is_one_clear_message():
    with pytest.raises(TorchImportError) as caught:
        cnncalc.from_torch(TwoInputs(), (3, 8, 8))
    err = caught.value
    assert err.message == "TwoInputs takes 2 input tensors; cnncalc imports models with one input tensor"
    assert err.received == "forward(x, y)"
    assert err.where.file == __file__ and err.where.line == _line_of(TwoInputs, "def forward(self, x, y)")


class Halves(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(8, 8, 1)
        self.conv2 = nn.Conv2d(8, 8, 1)

    def forward(self, x):
        return torch.cat([self.conv1(x), self.conv2(x)], 1)


class Shadowing(nn.Module):
    """xcit and volo: a top-level torch.cat (row `concat`) read inside a block with a `concat` of
    its own, which a reference written inside the block would find first."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1)
        self.block = Halves()

    def forward(self, x):
        x = self.stem(x)
        return self.block(torch.cat([x, x], 1))


def test_a_row_a_nearer_name_shadows_is_renamed():
    model = Shadowing()
    imported = cnncalc.from_torch(model, (3, 8, 8))
    names = [r.name for r in analyze(imported.graph).rows]
    assert names == ["input", "stem", "concat_1", "block.conv1", "block.conv2", "block.concat"]
    # stem 4 * 3 + 4, two 1x1 convs 8 * 8 + 8 each; MACs 4 * 64 * 3 + 2 * (8 * 64 * 8)
    expected = (4 * 3 + 4 + 2 * (8 * 8 + 8), 0, 4 * 64 * 3 + 2 * 8 * 64 * 8, (16, 8, 8))
    assert imported_figures(imported) == reference(model, (3, 8, 8)) == expected
    rebuilt = to_torch(imported.graph).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))


# ----- targets ------------------------------------------------------------------------------


def test_file_target_with_arguments(tmp_path):
    path = tmp_path / "my_models.py"
    path.write_text(
        textwrap.dedent("""
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self, width=4, kernel=3):
                super().__init__()
                self.conv = nn.Conv2d(3, width, kernel)
                self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 2))

            def forward(self, x):
                return self.head(torch.relu(self.conv(x)))
    """)
    )
    out = tmp_path / "net.yaml"
    text = import_command(f"{path}:Net", str(out), "3x16x16", ["width=8", "kernel=[3, 1]"])
    assert out.read_text() == text
    graph = parse_text(text)
    assert graph.input_shape == (3, 16, 16)
    assert [n.name for n in graph.nodes] == ["input", "conv", "relu", "head.0", "head.1", "head.2"]
    assert analyze(graph).totals.params == (3 * 3 * 1 * 8 + 8) + (8 * 2 + 2)


def test_import_refuses_to_write_over_the_models_source(tmp_path, monkeypatch):
    """Issue 19 (fuzzing): `import m.py:Net -o m.py` replaced the model's source with YAML. A
    file target is refused before its code runs; a package target once its module is found."""
    monkeypatch.chdir(tmp_path)
    source = (
        "from torch import nn\nprint('the model ran')\n\n\nclass Net(nn.Sequential):\n"
        "    def __init__(self):\n        super().__init__(nn.Conv2d(3, 4, 3))\n"
    )
    (tmp_path / "m.py").write_text(source)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mm.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    for target, output in [("m.py:Net", "m.py"), ("m.py:Net", "./m.py"), ("pkg.mm:Net", "pkg/mm.py")]:
        with pytest.raises(CnncalcError, match="will not write over") as caught:
            import_command(target, output, "3x8x8", [])
        assert caught.value.received == f"-o {output}" and caught.value.expected == "a file other than the input"
    assert (tmp_path / "m.py").read_text() == source and (tmp_path / "pkg" / "mm.py").read_text() == source
    text = import_command("m.py:Net", "net.yaml", "3x8x8", [])
    assert (tmp_path / "net.yaml").read_text() == text


def test_package_target_and_messages(tmp_path):
    text = import_command("torch.nn:Identity", None, (3, 8, 8), [])
    assert [n.kind for n in parse_text(text).nodes] == ["input", "identity"]
    with pytest.raises(CnncalcError, match="does not know the input shape of torch.nn:Identity"):
        import_command("torch.nn:Identity", None, None, [])
    with pytest.raises(CnncalcError, match="'torch.nn' has no 'Idenity'") as caught:
        import_command("torch.nn:Idenity", None, "3x8x8", [])
    assert "Identity" in caught.value.hint
    with pytest.raises(CnncalcError, match="no such Python file"):
        import_command(str(tmp_path / "absent.py") + ":Net", None, "3x8x8", [])


def test_targets_are_told_from_specs():
    from cnncalc.torch_bridge.importer import is_target

    assert [
        is_target(s)
        for s in (
            "torchvision:resnet50",
            "models/net.py:Net",
            "pkg.mod:make",
            "C:\\specs\\vgg.yaml",
            "vgg16",
            "architectures/vgg16.yaml",
        )
    ] == [True, True, True, False, False, False]


def test_shapes_and_arguments_are_parsed():
    assert parse_shape("3x224x224") == (3, 224, 224)
    assert parse_shape("[1, 28, 28]") == (1, 28, 28)
    with pytest.raises(CnncalcError, match="malformed input shape"):
        parse_shape("3xabc")
    # YAML scalars (and flow lists of them), as the spec reads its own arguments
    assert parse_args(["width=2", "mode=fast", "dims=[1, 2]", "flag=true", "rate=0.5", "eps=1e-6", "none=null"]) == {
        "width": 2,
        "mode": "fast",
        "dims": [1, 2],
        "flag": True,
        "rate": 0.5,
        "eps": 1e-6,
        "none": None,
    }
    for bad, message in (
        ("width", "malformed --arg"),
        ("2x=1", "malformed --arg"),
        ("a={b: 1}", "a mapping"),
        ("a=[1, [2]]", "a nested list"),
        ("a=[1,", "not a YAML value"),
    ):
        with pytest.raises(CnncalcError, match=message):
            parse_args([bad])
    with pytest.raises(CnncalcError, match="--arg a is given twice"):
        parse_args(["a=1", "a=2"])


# ----- --arg on the command line ------------------------------------------------------------

NET = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, width=4, kernel=3, bias=True):
        super().__init__()
        self.conv = nn.Conv2d(3, width, kernel, bias=bias)

    def forward(self, x):
        return torch.relu(self.conv(x))
"""


def cli(*args):
    typer_testing = pytest.importorskip("typer.testing")
    from cnncalc.cli import app

    return typer_testing.CliRunner().invoke(app, list(args), terminal_width=200)


def test_arg_reaches_a_model_target(tmp_path):
    import json

    path = tmp_path / "net.py"
    path.write_text(NET)
    args = ["--input", "3x16x16", "--arg", "width=8", "--arg", "kernel=[3, 1]", "--arg", "bias=false", "-f", "json"]
    for command in ("summary", "flops", "memory"):
        result = cli(command, f"{path}:Net", *args)
        assert result.exit_code == 0, result.output
        totals = json.loads(result.stdout)["totals"]
        assert totals["params"] == 3 * 3 * 1 * 8  # a 3x1 kernel, 8 filters, no bias
        assert totals["macs"] == (3 * 3 * 1) * 8 * (14 * 16)  # at 14 x 16 positions
    result = cli("import", f"{path}:Net", "--input", "3x16x16", "--arg", "width=2")
    assert result.exit_code == 0, result.output
    assert "conv: {out: 2, kernel: 3, name: conv}" in result.stdout


def test_arg_reaches_a_builtin_family():
    import json

    result = cli("summary", "resnet18", "--arg", "layers=[2, 3, 4, 2]", "-f", "json")
    assert result.exit_code == 0, result.output
    expected = analyze(cnncalc.load("resnet18", args={"layers": [2, 3, 4, 2]})).totals
    assert (
        json.loads(result.stdout)["totals"]["params"]
        == expected.params
        != analyze(cnncalc.load("resnet18")).totals.params
    )
    # docs/zoo.md: a size that is no variant is a set of arguments away
    result = cli("flops", "resnet50", "--arg", "groups=32", "--arg", "width_per_group=4", "-f", "json")
    resnext = analyze(cnncalc.load("resnext50_32x4d")).totals
    assert json.loads(result.stdout)["totals"]["macs"] == resnext.macs
    assert "--arg" in cli("summary", "--help").stdout


@pytest.mark.parametrize(
    "bad, message", [("width", "malformed --arg"), ("a={b: 1}", "a mapping"), ("a=[1,", "not a YAML value")]
)
def test_a_bad_arg_is_a_usage_error(bad, message):
    for command in (["summary", "resnet18"], ["import", "torch.nn:Identity", "--input", "3x8x8"]):
        result = cli(*command, "--arg", bad)
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


def test_an_unknown_arg_names_the_known_ones():
    result = cli("summary", "resnet18", "--arg", "depth=3")
    assert result.exit_code == 1
    assert "unknown argument 'depth' in --arg" in result.output and "width_per_group" in result.output


def test_import_cnncalc_does_not_load_torch():
    import subprocess
    import sys

    code = "import cnncalc, sys; assert callable(cnncalc.load); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----- live torchvision ---------------------------------------------------------------------

LIVE = [
    "resnet18",
    "resnet50",
    "resnext50_32x4d",
    "wide_resnet50_2",
    "vgg16",
    "vgg11_bn",
    "alexnet",
    "squeezenet1_0",
    "squeezenet1_1",
    "googlenet",
    "inception_v3",
    "densenet121",
    "mnasnet0_5",
    "regnet_x_400mf",
]


@pytest.mark.parametrize("name", LIVE)
def test_torchvision_round_trip(name):
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - absent, or built for another torch (as beside CI's torch)
        pytest.skip("torchvision is not importable here")
    from cnncalc.torch_bridge import flop_counts
    from cnncalc.torch_bridge.importer import resolve_target

    target = resolve_target(f"torchvision:{name}")
    original = target.module.eval()
    imported = cnncalc.from_torch(original, target.input_shape, name=name)
    report = analyze(imported.graph)
    # the spec's own model has torchvision's names: its state_dict loads (strict) and it computes the same
    model = to_torch(imported.graph).eval()
    state = {
        k: v for k, v in original.state_dict().items() if not k.startswith(tuple(f"{u}." for u in imported.unused))
    }
    model.load_state_dict(state, strict=True)
    x = torch.randn(1, *target.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(model(x), original(x))
    assert report.totals.params == sum(
        v.numel() for k, v in state.items() if "running_" not in k and "num_batches" not in k
    )
    assert flop_counts(model, x)["Global"] == 2 * report.totals.macs


def _torchvision_or_skip():
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - absent, or built for another torch (as beside CI's torch)
        pytest.skip("torchvision is not importable here")


def _zoo():
    from test_zoo import ZOO, reference

    return ZOO, reference


@pytest.mark.parametrize("name", _zoo()[0])
def test_zoo_round_trip(name):
    """Every model of the zoo imported as `torchvision:NAME` (built on the meta device: shapes only)
    has the committed fixture's totals, measured on torchvision itself; and the YAML it writes
    reads back to the same totals."""
    _torchvision_or_skip()
    from cnncalc.torch_bridge.importer import load_target

    ref = _zoo()[1](name)
    imported = load_target(f"torchvision:{name}")  # at its weights' input size, as the fixture
    assert imported.graph.input_shape == tuple(ref["input_shape"][1:])
    totals = analyze(imported.graph).totals
    expected = (ref["params"], ref["weights"], ref["biases"], ref["buffers"], ref["flops"] // 2)
    assert (totals.params, totals.weights, totals.biases, totals.buffers, totals.macs) == expected
    assert analyze(parse_text(imported.yaml)).totals == totals


def test_the_excerpts_in_docs_are_what_import_writes():
    """docs/import.md shows torchvision's resnet50 and mobilenet_v3_large as `cnncalc import`
    writes them: every line of each excerpt (but its `# ...` elisions) is a line of the real output."""
    _torchvision_or_skip()
    import re
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "import.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    for name, block in zip(("resnet50", "mobilenet_v3_large"), blocks):
        written = import_command(f"torchvision:{name}", None, None, []).splitlines()
        shown = [line for line in block.splitlines() if not line.strip().startswith("#")]
        missing = [line for line in shown if line not in written]
        assert not missing, (name, missing[:3])


# ----- rows for types announced in issue 10: used as soon as a type of that name is registered --


def test_optional_rows_follow_the_registry(monkeypatch):
    """ReLU6 and `*` map once `relu6` and `mul` are registered (stand-ins here where they are not yet)."""
    from cnncalc.layers import Layer, TorchModule
    from cnncalc.records import record

    @record
    class StandInReLU6(Layer):
        def torch_module(self, inputs):
            return TorchModule("ReLU6", {})

    @record
    class StandInMul(Layer):
        min_inputs = 2
        max_inputs = 2

        def output_shape(self, inputs):
            return tuple(torch.broadcast_shapes(*inputs))

    for kind, cls in (("relu6", StandInReLU6), ("mul", StandInMul)):
        if kind not in REGISTRY:
            monkeypatch.setitem(REGISTRY, kind, cls)
            monkeypatch.setattr(cls, "kind", kind)

    class SqueezeExcite(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.act = nn.ReLU6(inplace=True)
            self.fc = nn.Conv2d(8, 8, 1)

        def forward(self, x):
            x = self.act(self.conv(x))
            scale = torch.sigmoid(self.fc(F.adaptive_avg_pool2d(x, 1)))
            return F.relu6(x * scale)

    rows = imported_rows(SqueezeExcite(), (3, 8, 8))
    assert rows == [
        ("conv", "conv"),
        ("act", "relu6"),
        ("adaptive_avg_pool2d", "adaptive_avgpool"),
        ("fc", "conv"),
        ("sigmoid", "sigmoid"),
        ("mul", "mul"),
        ("relu6", "relu6"),
    ]


def test_the_module_a_row_builds_is_built_once_per_set_of_arguments():
    """The mapping compares each module with the one cnncalc's row builds (on meta); a network
    repeats its layers, so that one is built once per set of arguments. The key keeps apart what
    a module's constructor may tell apart (1, 1.0 and True; a tuple and a list) and takes no
    argument that is not plain data."""
    from cnncalc.torch_bridge.importer.nodes import _frozen, _rebuilt

    conv = _rebuilt(nn.Conv2d, {"in_channels": 3, "out_channels": 8, "kernel_size": 3, "bias": False})
    assert conv.weight.device.type == "meta" and conv.bias is None and conv.kernel_size == (3, 3)
    assert _rebuilt(nn.Conv2d, {"in_channels": 3, "out_channels": 8, "kernel_size": 3, "bias": False}) is conv
    assert _rebuilt(nn.Conv2d, {"in_channels": 3, "out_channels": 8, "kernel_size": 3, "bias": True}) is not conv
    assert len({_frozen(v) for v in (1, 1.0, True, (1,), [1], "1", None)}) == 7
    with pytest.raises(TypeError):
        _frozen({"module": nn.ReLU()})


@pytest.mark.parametrize("where", ["__enter__", "__exit__"])
def test_an_import_interrupted_inside_a_counter_leaves_torch_as_it_was(monkeypatch, where):
    """Ctrl-C (or the fuzzer's alarm) landing inside a per-op counter's own `__enter__` or `__exit__`
    gets no `__exit__` from Python: its dispatch mode stayed on torch's stack and its module hooks
    stayed global, and every later op of the process ran under a FlopCounterMode. A CI run caught
    it: the fuzz test's in-process alarm left one, and a layout test in the same worker read
    max_pool1d's strides off the mode's path ([16, 1, 4] where PyTorch lays out [16, 4, 1])."""
    from torch.nn.modules import module as nn_module
    from torch.utils import flop_counter as fc
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    real = getattr(fc.FlopCounterMode, where)
    calls = [0]

    def interrupted(self, *args):
        result = real(self, *args)
        calls[0] += 1
        if calls[0] == 3:  # the third op's counter: its mode pushed (or, on the way out, still not popped)
            raise KeyboardInterrupt
        return result

    hooks = (dict(nn_module._global_forward_pre_hooks), dict(nn_module._global_forward_hooks))
    monkeypatch.setattr(fc.FlopCounterMode, where, interrupted)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten(), nn.Linear(64, 2))
    with pytest.raises(KeyboardInterrupt):
        cnncalc.from_torch(model, (3, 8, 8))
    assert calls[0] == 3
    assert _get_current_dispatch_mode_stack() == []
    assert (dict(nn_module._global_forward_pre_hooks), dict(nn_module._global_forward_hooks)) == hooks
    assert torch.is_grad_enabled()
    x = torch.randn(2, 5, 4).permute(0, 2, 1)
    assert torch.nn.functional.max_pool1d(x, 2, 1).stride() == (16, 4, 1)  # no mode: PyTorch's own layout
