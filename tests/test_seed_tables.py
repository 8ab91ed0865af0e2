"""The lecture notes' tables (../shared/seeds), row by row. Sources are quoted beside each value."""

import pytest

import cnncalc
from cnncalc.analysis import analyze, collapse

# CS231n VGG16 table (seed 000 and 001): shape HxWxC, "memory", params "not counting biases".
VGG16_TABLE = [
    ("input", (224, 224, 3), 224 * 224 * 3, 0),
    ("conv", (224, 224, 64), 224 * 224 * 64, (3 * 3 * 3) * 64),
    ("conv", (224, 224, 64), 224 * 224 * 64, (3 * 3 * 64) * 64),
    ("maxpool", (112, 112, 64), 112 * 112 * 64, 0),
    ("conv", (112, 112, 128), 112 * 112 * 128, (3 * 3 * 64) * 128),
    ("conv", (112, 112, 128), 112 * 112 * 128, (3 * 3 * 128) * 128),
    ("maxpool", (56, 56, 128), 56 * 56 * 128, 0),
    ("conv", (56, 56, 256), 56 * 56 * 256, (3 * 3 * 128) * 256),
    ("conv", (56, 56, 256), 56 * 56 * 256, (3 * 3 * 256) * 256),
    ("conv", (56, 56, 256), 56 * 56 * 256, (3 * 3 * 256) * 256),
    ("maxpool", (28, 28, 256), 28 * 28 * 256, 0),
    ("conv", (28, 28, 512), 28 * 28 * 512, (3 * 3 * 256) * 512),
    ("conv", (28, 28, 512), 28 * 28 * 512, (3 * 3 * 512) * 512),
    ("conv", (28, 28, 512), 28 * 28 * 512, (3 * 3 * 512) * 512),
    ("maxpool", (14, 14, 512), 14 * 14 * 512, 0),
    ("conv", (14, 14, 512), 14 * 14 * 512, (3 * 3 * 512) * 512),
    ("conv", (14, 14, 512), 14 * 14 * 512, (3 * 3 * 512) * 512),
    ("conv", (14, 14, 512), 14 * 14 * 512, (3 * 3 * 512) * 512),
    ("maxpool", (7, 7, 512), 7 * 7 * 512, 0),
    ("linear", (1, 1, 4096), 4096, 7 * 7 * 512 * 4096),
    ("linear", (1, 1, 4096), 4096, 4096 * 4096),
    ("linear", (1, 1, 1000), 1000, 4096 * 1000),
]

TABLE_TYPES = {"input", "conv", "maxpool", "linear"}  # the rows the lecture tables list


def table_rows(report):
    return [r for r in report.rows if r.type in TABLE_TYPES]


def hwc(shape):
    return (1, 1, shape[0]) if len(shape) == 1 else (*shape[1:], shape[0])


def test_vgg16_table_row_by_row():
    rows = table_rows(analyze(cnncalc.load("vgg16")))
    assert len(rows) == len(VGG16_TABLE)
    for row, (kind, shape, memory, weights) in zip(rows, VGG16_TABLE):
        assert (row.type, hwc(row.output_shape), row.activations, row.weights) == (kind, shape, memory, weights), (
            row.name
        )


def test_vgg16_totals():
    report = analyze(cnncalc.load("vgg16"))
    assert report.totals.weights == 138_344_128  # issue 2: sum of the table's params column
    assert report.totals.params == 138_357_544  # with biases (torchvision)
    # the table's memory column sums to 15,237,608 with the input, not the "24M" it states
    assert sum(r.activations for r in table_rows(report)) == sum(m for _, _, m, _ in VGG16_TABLE) == 15_237_608


# VGG19 table with biases (seed 004): output C x H x W, "No. of Neurons", "No. of Learned Parameters".
VGG19_TABLE = [
    ((64, 224, 224), 3_211_264, 1_792),
    ((64, 224, 224), 3_211_264, 36_928),
    ((64, 112, 112), 802_816, 0),
    ((128, 112, 112), 1_605_632, 73_856),
    ((128, 112, 112), 1_605_632, 147_584),
    ((128, 56, 56), 401_408, 0),
    ((256, 56, 56), 802_816, 295_168),
    ((256, 56, 56), 802_816, 590_080),
    ((256, 56, 56), 802_816, 590_080),
    ((256, 56, 56), 802_816, 590_080),
    ((256, 28, 28), 200_704, 0),
    ((512, 28, 28), 401_408, 1_180_160),
    ((512, 28, 28), 401_408, 2_359_808),
    ((512, 28, 28), 401_408, 2_359_808),
    ((512, 28, 28), 401_408, 2_359_808),
    ((512, 14, 14), 100_352, 0),
    ((512, 14, 14), 100_352, 2_359_808),
    ((512, 14, 14), 100_352, 2_359_808),
    ((512, 14, 14), 100_352, 2_359_808),
    ((512, 14, 14), 100_352, 2_359_808),
    ((512, 7, 7), 25_088, 0),
    ((4096,), 4_096, 102_764_544),
    ((4096,), 4_096, 16_781_312),
    ((1000,), 1_000, 4_097_000),
]


def test_vgg19_table_row_by_row():
    report = analyze(cnncalc.load("vgg19"))
    rows = table_rows(report)[1:]  # the table's input row has no figures
    assert len(rows) == len(VGG19_TABLE)
    for row, (shape, neurons, params) in zip(rows, VGG19_TABLE):
        assert (row.output_shape, row.activations, row.params) == (shape, neurons, params), row.name
    assert sum(r.activations for r in rows) == 16_391_656  # "Total: 16,391,656"
    assert report.totals.params == 143_667_240  # "Total: 143,667,240"


# Full (simplified) AlexNet (seed 001), shapes HxWxC, and the quiz answers on CONV1 and POOL1.
ALEXNET = [
    ("conv1", (55, 55, 96)),
    ("pool1", (27, 27, 96)),
    ("norm1", (27, 27, 96)),
    ("conv2", (27, 27, 256)),
    ("pool2", (13, 13, 256)),
    ("norm2", (13, 13, 256)),
    ("conv3", (13, 13, 384)),
    ("conv4", (13, 13, 384)),
    ("conv5", (13, 13, 256)),
    ("pool3", (6, 6, 256)),
    ("fc6", (1, 1, 4096)),
    ("fc7", (1, 1, 4096)),
    ("fc8", (1, 1, 1000)),
]


def test_alexnet_rows():
    report = analyze(cnncalc.load("alexnet"))
    by_name = {r.name: r for r in report.rows}
    for name, shape in ALEXNET:
        assert hwc(by_name[name].output_shape) == shape, name
    assert by_name["conv1"].weights == (11 * 11 * 3) * 96 == 34_848  # "(11*11*3)*96 = 35K"
    assert by_name["pool1"].params == 0  # "Parameters: 0!"
    assert report.totals.params == 62_378_344


# GoogLeNet table (seed 001): output size HxWxC and "ops" (millions of MACs) per table row.
GOOGLENET = [
    ("conv1", (112, 112, 64), 34),
    ("pool1", (56, 56, 64), None),
    ("conv2", (56, 56, 192), 360),
    ("pool2", (28, 28, 192), None),
    ("inception3a", (28, 28, 256), 128),
    ("inception3b", (28, 28, 480), 304),
    ("pool3", (14, 14, 480), None),
    ("inception4a", (14, 14, 512), 73),
    ("inception4b", (14, 14, 512), 88),
    ("inception4c", (14, 14, 512), 100),
    ("inception4d", (14, 14, 528), 119),
    ("inception4e", (14, 14, 832), 170),
    ("pool4", (7, 7, 832), None),
    ("inception5a", (7, 7, 832), 54),
    ("inception5b", (7, 7, 1024), 71),
    ("pool5", (1, 1, 1024), None),
    ("dropout", (1, 1, 1024), None),
    ("fc", (1, 1, 1000), 1),
    ("softmax", (1, 1, 1000), None),
]
# Rows whose stated ops do not follow from their own shapes (docs/classic-tables.md):
GOOGLENET_MISPRINTS = {
    "conv1": 7 * 7 * 3 * 64 * 112 * 112,  # 118.0M computed, "34M" stated
    "inception5a": 51_079_168,  # 51.1M computed, "54M" stated; its params (1,042,432) miss "1072K" too
}


@pytest.mark.parametrize("name, shape, ops", GOOGLENET, ids=[g[0] for g in GOOGLENET])
def test_googlenet_table_row(name, shape, ops):
    report = collapse(analyze(cnncalc.load("googlenet")), depth=1)
    row = next(r for r in report.rows if r.name == name)
    assert hwc(row.output_shape) == shape
    if ops is None:
        assert row.macs == 0
    elif name in GOOGLENET_MISPRINTS:
        assert row.macs == GOOGLENET_MISPRINTS[name]
        assert abs(row.macs / 1e6 - ops) > 1  # still a misprint: update the docs if this fails
    else:
        assert abs(row.macs / 1e6 - ops) < 1, f"{row.macs / 1e6:.2f}M vs {ops}M"  # the table rounds (and truncates 4a)


def test_doesnt_fit_is_a_warning_and_strict_makes_it_an_error():
    # seed 001: "7x7 input, 3x3 filter, stride 3: doesn't fit", (7 - 3)/3 + 1 = 2.33
    graph = cnncalc.spec.parse_text("input: [1, 7, 7]\nlayers:\n  - conv: {out: 1, kernel: 3, stride: 3, name: c}\n")
    report = analyze(graph)
    assert report.rows[1].output_shape == (1, 2, 2)
    (warning,) = report.warnings
    assert warning.layer == "c" and "(7 - 3 + 0)/3 + 1 = 2.33" in warning.message and "(H and W)" in warning.message
    with pytest.raises(cnncalc.errors.StrictError):
        analyze(graph, strict=True)


def test_notes_small_networks():
    # seed 004, MNIST CNN: Linear(32 * 7 * 7, 10) after two conv(5, pad 2) + maxpool(2) stages
    mnist = {r.name: r for r in analyze(cnncalc.load("examples/mnist_cnn")).rows}
    assert mnist["flatten"].output_shape == (32 * 7 * 7,)
    assert mnist["out"].weights == 32 * 7 * 7 * 10
    # seed 004, CIFAR-10 CNN: fc1 = Linear(16 * 5 * 5, 120)
    cifar = {r.name: r for r in analyze(cnncalc.load("examples/cifar10_cnn")).rows}
    assert cifar["flatten"].output_shape == (16 * 5 * 5,)
    assert cifar["fc1"].params == 16 * 5 * 5 * 120 + 120
