"""The built-in U-Nets (`unet`, the 2015 paper's; `unet_padded`) against a U-Net written directly in
torch.nn here, independent of cnncalc's PyTorch bridge: parameters per module, each module's output
shape and MACs per module (FlopCounterMode), at the built-ins' own input sizes (on the meta device:
shapes only, no arithmetic), and the feature-map sizes of the paper's Fig. 1.

Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation",
MICCAI 2015 (arXiv:1505.04597). U-Net is not in torchvision, so this file is its reference.
"""

from __future__ import annotations

import pytest

import cnncalc
from cnncalc.analysis import analyze

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from cnncalc import to_torch  # noqa: E402

WIDTHS = [64, 128, 256, 512, 1024]  # Fig. 1: the channels of each step of the contracting path


class DoubleConv(nn.Module):
    """Two 3x3 convolutions, each with a ReLU (one step of either path)."""

    def __init__(self, c_in: int, c_out: int, padding: int) -> None:
        super().__init__()
        self.conv1, self.relu1 = nn.Conv2d(c_in, c_out, 3, padding=padding), nn.ReLU()
        self.conv2, self.relu2 = nn.Conv2d(c_out, c_out, 3, padding=padding), nn.ReLU()

    def forward(self, x):
        return self.relu2(self.conv2(self.relu1(self.conv1(x))))


class UpStep(nn.Module):
    """A 2x2 up-convolution halving the channels, the skip map's centre cropped to its size, cat, two 3x3."""

    def __init__(self, c_in: int, c_out: int, padding: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_out, 2, stride=2)
        self.conv = DoubleConv(2 * c_out, c_out, padding)

    def forward(self, x, skip):
        up = self.up(x)
        h, w = up.shape[2:]
        top, left = (skip.shape[2] - h) // 2, (skip.shape[3] - w) // 2
        return self.conv(torch.cat([skip[:, :, top : top + h, left : left + w], up], dim=1))


class UNet(nn.Module):
    def __init__(self, padding: int, channels: int = 1, classes: int = 2) -> None:
        super().__init__()
        self.enc1 = DoubleConv(channels, WIDTHS[0], padding)
        self.pool1 = nn.MaxPool2d(2)
        self.enc2 = DoubleConv(WIDTHS[0], WIDTHS[1], padding)
        self.pool2 = nn.MaxPool2d(2)
        self.enc3 = DoubleConv(WIDTHS[1], WIDTHS[2], padding)
        self.pool3 = nn.MaxPool2d(2)
        self.enc4 = DoubleConv(WIDTHS[2], WIDTHS[3], padding)
        self.pool4 = nn.MaxPool2d(2)
        self.center = DoubleConv(WIDTHS[3], WIDTHS[4], padding)
        self.dec4 = UpStep(WIDTHS[4], WIDTHS[3], padding)
        self.dec3 = UpStep(WIDTHS[3], WIDTHS[2], padding)
        self.dec2 = UpStep(WIDTHS[2], WIDTHS[1], padding)
        self.dec1 = UpStep(WIDTHS[1], WIDTHS[0], padding)
        self.head = nn.Conv2d(WIDTHS[0], classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool1(e1))
        e3 = self.enc3(self.pool2(e2))
        e4 = self.enc4(self.pool3(e3))
        x = self.center(self.pool4(e4))
        return self.head(self.dec1(self.dec2(self.dec3(self.dec4(x, e4), e3), e2), e1))


PADDING = {"unet": 0, "unet_padded": 1}


def measured(name: str, shape: tuple[int, ...]) -> tuple[nn.Module, dict, dict, dict]:
    """The torch.nn U-Net at `shape` on the meta device: the model, each leaf module's output shape
    (forward hooks), its parameters, and its FLOPs (FlopCounterMode), by module name."""
    model = UNet(PADDING[name]).to("meta").eval()
    leaves = {n: m for n, m in model.named_modules() if n and not any(True for _ in m.children())}
    shapes: dict[str, tuple[int, ...]] = {}

    def keep(name: str):
        def hook(module, args, out) -> None:  # returns None: the output stays as it is
            shapes[name] = tuple(out.shape[1:])

        return hook

    for n, m in leaves.items():
        m.register_forward_hook(keep(n))
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, *shape, device="meta"))
    flops = {key.removeprefix("UNet."): sum(ops.values()) for key, ops in counter.get_flop_counts().items()}
    params = {n: sum(p.numel() for p in m.parameters()) for n, m in leaves.items()}
    return model, shapes, params, flops


@pytest.mark.parametrize(
    "name, shape",
    [("unet", (1, 572, 572)), ("unet_padded", (1, 512, 512)), ("unet", (1, 188, 188)), ("unet_padded", (1, 64, 48))],
)
def test_unet_against_torch_nn(name, shape):
    """Every module of the torch.nn U-Net is a row of the same name, with the same output shape,
    parameters and MACs (= FlopCounterMode's FLOPs / 2); the totals agree."""
    model, shapes, params, flops = measured(name, shape)
    report = analyze(cnncalc.load(name), input_shape=shape)
    rows = {row.name: row for row in report.rows[1:]}
    assert set(shapes) <= set(rows), sorted(set(shapes) - set(rows))
    for module, out in shapes.items():
        row = rows[module]
        assert (row.output_shape, row.params, 2 * row.macs) == (out, params[module], flops.get(module, 0)), module
    # cnncalc's extra rows are the crops and concatenations U-Net's forward writes as slicing and torch.cat
    assert {rows[r].type for r in set(rows) - set(shapes)} <= {"center_crop", "concat"}
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert 2 * report.totals.macs == flops["Global"]


def test_unet_has_the_papers_sizes():
    """Fig. 1 of the paper: 572x572 in, 388x388 out, and every feature map's side along the way."""
    report = analyze(cnncalc.load("unet"))
    assert report.input_shape == (1, 572, 572) and report.rows[-1].output_shape == (2, 388, 388)
    sides = {row.name: row.output_shape[1] for row in report.rows[1:]}
    contracting = [sides[f"{step}.relu{k}"] for step in ("enc1", "enc2", "enc3", "enc4", "center") for k in (1, 2)]
    assert contracting == [570, 568, 282, 280, 138, 136, 66, 64, 30, 28]
    assert [sides[f"pool{k}"] for k in (1, 2, 3, 4)] == [284, 140, 68, 32]
    assert [sides[f"dec{k}.up"] for k in (4, 3, 2, 1)] == [56, 104, 200, 392]  # the crops' sizes
    assert [sides[f"dec{k}.crop"] for k in (4, 3, 2, 1)] == [56, 104, 200, 392]
    expanding = [sides[f"dec{step}.conv.relu{k}"] for step in (4, 3, 2, 1) for k in (1, 2)]
    assert expanding == [54, 52, 102, 100, 198, 196, 390, 388]
    channels = {row.name: row.output_shape[0] for row in report.rows[1:]}
    assert [channels[f"dec{k}.cat"] for k in (4, 3, 2, 1)] == [1024, 512, 256, 128]  # cropped skip + up-conv


def test_padded_unet_keeps_the_input_size_and_the_same_parameters():
    valid, padded = analyze(cnncalc.load("unet")), analyze(cnncalc.load("unet_padded"), input_shape=(1, 96, 80))
    assert padded.rows[-1].output_shape == (2, 96, 80)
    assert padded.totals.params == valid.totals.params  # padding adds no parameters
    assert not any(row.type == "center_crop" for row in padded.rows)


def test_unet_built_by_cnncalc_computes_what_torch_nn_computes():
    """The built-in's names match the torch.nn U-Net's, so its weights load (strict) into
    `to_torch()`, which then gives the same output on the same input."""
    for name, shape in (("unet", (1, 188, 188)), ("unet_padded", (1, 32, 48))):
        theirs = UNet(PADDING[name]).eval()
        ours = to_torch(cnncalc.load(name), shape).eval()
        ours.load_state_dict(theirs.state_dict(), strict=True)
        x = torch.randn(1, *shape)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), theirs(x))
