"""The torchvision CNN zoo (issue 10 §3) against reference figures measured on torchvision itself.

torchvision 0.29.1 needs torch 2.14.1, too heavy for CI, so `scripts/torchvision_reference.py`
(run in its own environment) writes what torchvision says into `tests/fixtures/torchvision/`:
per model the totals and FlopCounterMode's FLOPs, per module of named_modules() its class,
parameters and output shape per call, and the state_dict's keys and shapes. Here every listed
model is compared with the cnncalc built-in of the same name; a model without one is skipped
per model ("no built-in spec yet"), so the count of exact models shows in the test summary.
The live test at the end runs only where torchvision imports, and checks the fixture is still
what torchvision builds.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
from pathlib import Path

import pytest

import cnncalc
from cnncalc import to_torch
from cnncalc.spec.library import builtin_names

FIXTURE = Path(__file__).parent / "fixtures" / "torchvision"
SCRIPT = Path(__file__).parent.parent / "scripts" / "torchvision_reference.py"

# issue 10 §3, as the issue spells it: every classification CNN of torchvision 0.29 and six
# segmentation models (regnet_y_128gf and the transformers left out)
ZOO = [
    "alexnet",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
    "googlenet",
    "inception_v3",
    "densenet121",
    "densenet161",
    "densenet169",
    "densenet201",
    "squeezenet1_0",
    "squeezenet1_1",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "mnasnet0_5",
    "mnasnet0_75",
    "mnasnet1_0",
    "mnasnet1_3",
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5",
    "shufflenet_v2_x2_0",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
    "efficientnet_v2_s",
    "efficientnet_v2_m",
    "efficientnet_v2_l",
    "regnet_x_400mf",
    "regnet_x_800mf",
    "regnet_x_1_6gf",
    "regnet_x_3_2gf",
    "regnet_x_8gf",
    "regnet_x_16gf",
    "regnet_x_32gf",
    "regnet_y_400mf",
    "regnet_y_800mf",
    "regnet_y_1_6gf",
    "regnet_y_3_2gf",
    "regnet_y_8gf",
    "regnet_y_16gf",
    "regnet_y_32gf",
    "convnext_tiny",
    "convnext_small",
    "convnext_base",
    "convnext_large",
    "fcn_resnet50",
    "fcn_resnet101",
    "deeplabv3_resnet50",
    "deeplabv3_resnet101",
    "deeplabv3_mobilenet_v3_large",
    "lraspp_mobilenet_v3_large",
]

# torchvision name -> built-in name, where they differ (the built-in `alexnet` is the notes'
# simplified one; the built-in `googlenet` is the paper's, with 5x5 convolutions and LRN)
BUILTIN_NAME = {"alexnet": "alexnet_torchvision", "googlenet": "googlenet_torchvision"}

# (test, model) -> why a built-in does not match yet; strict, so the mark must go once it does
KNOWN: dict[tuple[str, str], str] = {}


def zoo(test: str) -> list:
    """The zoo as parameters of one test, the known mismatches marked."""
    return [
        pytest.param(m, marks=pytest.mark.xfail(reason=KNOWN[test, m], strict=True)) if (test, m) in KNOWN else m
        for m in ZOO
    ]


def builtin(model: str) -> str:
    """The built-in spec standing for a torchvision model; skips the test when there is none."""
    name = BUILTIN_NAME.get(model, model)
    if name not in builtin_names():
        pytest.skip("no built-in spec yet")
    return name


@functools.cache
def index() -> dict:
    return json.loads((FIXTURE / "index.json").read_text())


@functools.cache
def reference(model: str) -> dict:
    with gzip.open(FIXTURE / f"{model}.json.gz", "rb") as f:
        return json.loads(f.read())


@functools.cache
def report(name: str, shape: tuple[int, ...]) -> cnncalc.Report:
    return cnncalc.analyze(cnncalc.load(name), input_shape=shape)


def analysed(model: str) -> tuple[cnncalc.Report, dict]:
    """cnncalc's report of the built-in at the fixture's input size, and the fixture record."""
    ref = reference(model)
    return report(builtin(model), tuple(ref["input_shape"][1:])), ref


def test_fixture_covers_the_issue_list():
    assert len(ZOO) == len(set(ZOO)) == 8 + 1 + 5 + 5 + 2 + 4 + 2 + 3 + 4 + 4 + 8 + 3 + 7 + 7 + 4 + 6
    assert list(index()["models"]) == ZOO
    assert index()["failed"] == {}
    assert sorted(p.name.removesuffix(".json.gz") for p in FIXTURE.glob("*.json.gz")) == sorted(ZOO)
    # torchvision has no classification model that is neither listed nor deliberately left out
    assert index()["unlisted"] == [] and index()["missing"] == []


@pytest.mark.parametrize("model", ZOO)
def test_fixture_is_consistent(model):
    """The fixture agrees with itself: totals are the sum of the modules' own counts, the index
    repeats the file, and the state_dict holds every parameter and buffer."""
    ref = reference(model)
    modules = ref["modules"]
    root = modules[0]
    assert root["name"] == "" and root["params_total"] == ref["params"] == ref["weights"] + ref["biases"]
    assert sum(m["params"] for m in modules) == ref["params"]
    assert sum(m["biases"] for m in modules) == ref["biases"]
    assert sum(m["buffers"] for m in modules) == ref["buffers"]
    assert root["flops"] == ref["flops"] == sum(ref["flops_by_op"].values())
    assert len(root["calls"]) == 1 and root["calls"][0][0] == [ref["input_shape"]]
    assert sum(_numel(shape) for _, shape in ref["state_dict"]) == ref["params"] + ref["buffers"]
    assert index()["models"][model] == {
        key: ref[key] for key in ("input_shape", "output_shape", "params", "weights", "biases", "buffers", "flops")
    } | {"macs": ref["flops"] // 2}


def _numel(shape: list[int]) -> int:
    n = 1
    for size in shape:
        n *= size
    return n


@pytest.mark.parametrize("model", zoo("totals"))
def test_totals(model):
    """Parameters, parameters without biases, buffers and MACs (= FlopCounterMode's FLOPs / 2)."""
    rep, ref = analysed(model)
    t = rep.totals
    assert (t.params, t.weights, t.biases, t.buffers, t.macs) == (
        ref["params"],
        ref["weights"],
        ref["biases"],
        ref["buffers"],
        ref["flops"] // 2,
    )
    assert 2 * t.macs == ref["flops"]


@pytest.mark.parametrize("model", zoo("rows"))
def test_rows(model):
    """Every module torchvision calls that has no children is a row of the same name, with the same
    output shape, parameters, buffers and MACs; cnncalc may add rows for the functional operations
    torchvision writes in forward (`+`, `torch.cat`, `torch.flatten`) and for a module it reuses."""
    rep, ref = analysed(model)
    rows = {row.name: row for row in rep.rows[1:]}
    parents = {m["name"].rpartition(".")[0] for m in ref["modules"][1:]}
    leaves = [m for m in ref["modules"] if m["calls"] and m["name"] not in parents]
    missing = [m["name"] for m in leaves if m["name"] not in rows]
    assert not missing, f"torchvision modules without a row: {missing[:10]} ({len(missing)})"
    by_name = {m["name"]: m for m in ref["modules"]}
    for name, row in rows.items():
        module = by_name.get(name)
        if module is None:
            continue
        assert (row.params, row.biases, row.buffers) == (module["params"], module["biases"], module["buffers"]), name
        outputs = [tuple(out[1:]) for _, out in module["calls"]]
        assert row.output_shape in outputs, f"{name}: {row.output_shape} not among torchvision's {outputs}"
        if len(module["calls"]) == 1:
            assert 2 * row.macs == module["flops"], name


@pytest.mark.parametrize("model", zoo("state_dict"))
def test_state_dict(model):
    """`to_torch()` has torchvision's state_dict keys and shapes, so its weights load with strict=True."""
    ref = analysed(model)[1]
    pytest.importorskip("torch")
    net = to_torch(cnncalc.load(builtin(model)), tuple(ref["input_shape"][1:]))
    assert sorted([k, list(v.shape)] for k, v in net.state_dict().items()) == ref["state_dict"]


# cheap models the live test rebuilds: one per kind of block (plain, residual, concatenation,
# inverted residual with squeeze-excitation, channel shuffle, grouped bottleneck with squeeze-excitation,
# dilated segmentation, ConvNeXt's channels-last block with layer scale, MBConv with stochastic depth)
LIVE = [
    "alexnet",
    "resnet18",
    "squeezenet1_1",
    "mobilenet_v3_small",
    "shufflenet_v2_x0_5",
    "regnet_y_400mf",
    "mnasnet0_5",
    "fcn_resnet50",
    "convnext_tiny",
    "efficientnet_b0",
]


@functools.cache
def script():
    spec = importlib.util.spec_from_file_location("torchvision_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_lists_the_zoo():
    assert script().MODELS == ZOO


@pytest.mark.parametrize("model", LIVE)
def test_fixture_matches_live_torchvision(model):
    """Where torchvision imports, the fixture is still what it builds; and a built-in loaded with
    torchvision's weights (strict=True) gives torchvision's output."""
    pytest.importorskip("torchvision")
    import torch
    from torchvision.models import get_model

    ref = reference(model)
    live = script().reference(model, ref["input_shape"])
    assert live == ref
    if BUILTIN_NAME.get(model, model) not in builtin_names():  # the fixture check was all there is
        return
    tv = get_model(model, weights=None, **script().KWARGS.get(model, {})).eval()
    net = to_torch(cnncalc.load(builtin(model)), tuple(ref["input_shape"][1:])).eval()
    net.load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(*ref["input_shape"])
    with torch.no_grad():
        expected = tv(x)
        if isinstance(expected, dict):  # the segmentation models return {"out": ...}
            expected = expected["out"]
        torch.testing.assert_close(net(x), expected)
