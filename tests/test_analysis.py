"""The analysis' semantics that must not mislead (issue 9): the --input order rule, which input
positions a stride leaves unread, and the lecture view's fold."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cnncalc
from cnncalc.analysis import DType, Style, analyze, lecture, read_input_override
from cnncalc.errors import CnncalcError
from cnncalc.geometry import Window, lost_count, lost_positions, window_output_size
from cnncalc.layers import REGISTRY
from cnncalc.spec import parse_text

try:
    import torch
except ImportError:
    torch = None
requires_torch = pytest.mark.skipif(torch is None, reason="needs PyTorch (the torch extra)")


# ----- --input: the order is read from the spec's channels, never guessed --------------------


@pytest.mark.parametrize(
    "spec_shape, text, expected",
    [
        ((3, 224, 224), "224x224x3", (3, 224, 224)),  # issue 9: summary resnet18 --input 224x224x3
        ((3, 224, 224), "3x224x224", (3, 224, 224)),
        ((3, 224, 224), "3x32x32", (3, 32, 32)),
        ((3, 224, 224), "3x3x3", (3, 3, 3)),  # both readings are the same shape
        ((64, 8, 8), "64x64x64", (64, 64, 64)),
        ((3, 224, 224), "chw:1x28x28", (1, 28, 28)),  # the order said: channels may change
        ((3, 224, 224), "hwc:28x28x1", (1, 28, 28)),
        ((4096,), "1000", (1000,)),  # a flat vector has one reading
    ],
)
def test_input_override_accepts_what_is_certain(spec_shape, text, expected):
    assert read_input_override(spec_shape, text) == expected


@pytest.mark.parametrize(
    "spec_shape, text, word",
    [
        ((64, 8, 8), "64x32x64", "ambiguous"),
        ((3, 224, 224), "1x28x28", "inconsistent"),
        ((3, 224, 224), "224x224x1", "inconsistent"),
    ],
)
def test_input_override_refuses_naming_both_readings(spec_shape, text, word):
    with pytest.raises(CnncalcError) as err:
        read_input_override(spec_shape, text)
    message = "\n".join(err.value.lines())
    assert word in message and "channels first" in message and "channels last" in message and "chw:" in message


sizes = st.integers(1, 300)


@settings(max_examples=300, deadline=None)
@given(channels=sizes, spatial=st.lists(sizes, min_size=0, max_size=3), written=sizes)
def test_input_override_never_misleads(channels, spatial, written):
    """Whatever the text, the shape read is one of its two readings, and one that has the spec's
    channels unless both readings are the same; it is refused exactly when the ends cannot tell."""
    text_sizes = (written, *spatial) if spatial else (written,)
    text = "x".join(map(str, text_sizes))
    chw, hwc = text_sizes, (text_sizes[-1], *text_sizes[:-1])
    if len(text_sizes) == 3:  # the spec's number of sizes: the order read from its ends
        certain = chw == hwc or (chw[0] == channels) != (hwc[0] == channels)
        readings = (chw, hwc)
    else:  # issue 19: the spatial sizes alone, where no end could be the channels; else refused
        certain = len(text_sizes) == 2 and channels not in text_sizes
        readings = ((channels, *text_sizes),)
    try:
        shape = read_input_override((channels, 8, 8), text)
    except CnncalcError:
        assert not certain
        # saying the order always settles it
        assert read_input_override((channels, 8, 8), "chw:" + text) == chw
        assert read_input_override((channels, 8, 8), "hwc:" + text) == hwc
        return
    assert certain and shape in readings and len(shape) == 3  # never another dimensionality
    assert chw == hwc or shape[0] == channels


@pytest.mark.parametrize(
    "text, message",
    [
        ("3x224", "--input 3x224 is ambiguous: 2 sizes, and the spec's input 3x224x224 has 3"),
        ("224", "--input 224 has 1 size; the spec's input 3x224x224 has 3 (3 channels and 2 spatial axes)"),
        ("1x3x224x224", "--input 1x3x224x224 has 4 sizes; the spec's input 3x224x224 has 3"),
    ],
)
def test_an_input_of_another_dimensionality_is_refused(text, message):
    """Issue 19: `summary vgg16 --input 224x224` printed a 1-D VGG with 224 input channels and
    40,512,616 params, `--input 3x224` another 1-D VGG. The spatial sizes alone take the spec's
    channels; what could change the dimensionality is refused (exit 1), unless the order is said."""
    from typer.testing import CliRunner

    from cnncalc.cli import ExitCode, app

    runner = CliRunner()
    spatial = runner.invoke(app, ["summary", "vgg16", "--input", "224x224", "-f", "json"])
    assert spatial.exit_code == 0
    assert json.loads(spatial.stdout)["totals"]["params"] == 138_357_544  # torchvision vgg16, the paper's 138M
    assert json.loads(spatial.stdout)["input"] == [3, 224, 224]
    result = runner.invoke(app, ["summary", "vgg16", "--input", text])
    assert result.exit_code == ExitCode.INVALID and message in result.stderr
    assert "expected: 3 sizes, as in the spec's own 3x224x224" in result.stderr
    assert f"hint: to change the dimensionality on purpose, write the order: chw:{text} or hwc:{text}" in result.stderr
    assert read_input_override((3, 224, 224), "chw:3x224") == (3, 224)  # said on purpose: taken as written


def test_the_order_trap_is_gone_from_the_tables():
    from typer.testing import CliRunner

    from cnncalc.cli import ExitCode, app

    runner = CliRunner()
    last = runner.invoke(app, ["summary", "resnet18", "--input", "224x224x3", "-f", "json"])
    first = runner.invoke(app, ["summary", "resnet18", "--input", "3x224x224", "-f", "json"])
    assert last.exit_code == first.exit_code == 0 and last.stdout == first.stdout
    refused = runner.invoke(app, ["summary", "resnet18", "--input", "224x224x1"])
    assert refused.exit_code == ExitCode.INVALID and "channels last 1 channel of 224x224" in refused.stderr
    assert "channels first" in runner.invoke(app, ["summary", "--help"], terminal_width=200).stdout


# ----- a stride that does not tile: only real input left unread is lost -----------------------


def expand(runs):
    return [p for first, last in runs for p in range(first, last + 1)]


def brute_force_lost(w):
    """Real positions no window reads that the windows past the last one (had the input gone on)
    would have: the rule docs/conventions.md states."""
    n = window_output_size(w)
    taps = lambda windows: {i * w.stride + j * w.dilation - w.pad_left for i in windows for j in range(w.kernel)}  # noqa: E731
    read = taps(range(n))
    pattern = taps(range(n + w.kernel * w.dilation + 2))
    return sorted(p for p in range(w.size) if p in pattern and p not in read)


@settings(max_examples=400, deadline=None)
@given(
    size=st.integers(1, 40),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 9),
    pad=st.integers(0, 3),
    dilation=st.integers(1, 3),
)
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_lost_positions_equal_brute_force(size, kernel, stride, pad, dilation, ceil_mode):
    w = Window(size, kernel, stride, pad, pad, dilation, ceil_mode)
    if w.span < 0 or (ceil_mode and pad * 2 > kernel):
        return
    assert expand(lost_positions(w)) == brute_force_lost(w)


@pytest.mark.parametrize(
    "window, lost",
    [
        (Window(7, 3, 3), [6]),  # the notes' "doesn't fit": (7 - 3)/3 + 1 = 2.33
        (Window(224, 7, 2, 3, 3), []),  # ResNet conv1: (224 - 7 + 6)/2 + 1 = 112.5, only padding unread
        (Window(112, 3, 2, 1, 1), []),  # ResNet maxpool
        (Window(56, 1, 2), []),  # a 1x1 stride-2 shortcut skips odd positions by design; none is lost to the floor
        (Window(10, 3, 4), [8, 9]),  # windows at 0 and 4; the next (8..10) would read 8 and 9
        (Window(224, 11, 4), [223]),  # the AlexNet paper's 224: (224 - 11)/4 + 1 = 54.25
    ],
)
def test_lost_positions(window, lost):
    assert expand(lost_positions(window)) == lost


@requires_torch
@pytest.mark.parametrize(
    "window",
    [
        Window(7, 3, 3),
        Window(224, 7, 2, 3, 3),
        Window(56, 1, 2),
        Window(10, 3, 4),
        Window(29, 3, 4, 1, 1, 2),
        Window(20, 2, 3, 1, 1),
        Window(15, 2, 1, 0, 0, 10),
        Window(1, 2, 1, 2, 1, 3),
    ],
)
def test_lost_positions_get_no_gradient_in_pytorch(window):
    """A lost position gets no gradient through the real convolution; every other position does,
    unless one more window would not read it either (a stride past the kernel skips it by design)."""
    w = window
    conv = torch.nn.Conv1d(1, 1, w.kernel, w.stride, w.pad_left, w.dilation, bias=False)
    torch.nn.init.ones_(conv.weight)
    x = torch.ones(1, 1, w.size, requires_grad=True)
    conv(x).sum().backward()
    unread = [p for p in range(w.size) if x.grad[0, 0, p] == 0]
    lost = expand(lost_positions(w))
    assert set(lost) <= set(unread)
    bigger = Window(
        w.size + w.stride * (w.kernel * w.dilation + 1), w.kernel, w.stride, w.pad_left, w.pad_left, w.dilation
    )
    conv_more = torch.nn.Conv1d(1, 1, w.kernel, w.stride, w.pad_left, w.dilation, bias=False)
    torch.nn.init.ones_(conv_more.weight)
    x_more = torch.ones(1, 1, bigger.size, requires_grad=True)
    conv_more(x_more).sum().backward()
    skipped = {p for p in range(w.size) if x_more.grad[0, 0, p] == 0}  # unread even with more windows
    assert set(unread) - set(lost) == skipped & set(unread)


def spec(layer):
    return parse_text(f"input: [1, 7, 7]\nlayers:\n  - {layer}\n")


def test_no_standard_network_warns():
    # issue 9: every ResNet printed 8 warnings where only padding goes unused
    for name in ("resnet18", "resnet50", "googlenet", "zfnet", "alexnet", "vgg16"):
        assert analyze(cnncalc.load(name)).warnings == (), name


def test_the_warning_says_which_input_is_never_read():
    (warning,) = analyze(spec("conv: {out: 1, kernel: 3, stride: 3, name: c}")).warnings
    assert warning.message == (
        "stride does not tile the input (H and W): (7 - 3 + 0)/3 + 1 = 2.33, floored to 2: "
        "input rows and columns 6 of 0..6 are never read"
    )
    graph = parse_text("input: [1, 7, 8]\nlayers:\n  - conv: {out: 1, kernel: 3, stride: 3}\n")
    assert [w.message.split(": ")[-1] for w in analyze(graph).warnings] == [
        "input row 6 of 0..6 is never read",
        "input columns 6-7 of 0..7 are never read",
    ]


def test_explain_states_whether_input_is_lost():
    lost = analyze(spec("conv: {out: 1, kernel: 3, stride: 3}"), explain=True).rows[1].working[0]
    assert "unfloored 2.33: doesn't fit; input position 6 of 0..6 is never read" in lost
    kept = analyze(cnncalc.load("resnet18"), explain=True).rows[1].working[0]
    assert kept == (
        "H, W: floor((224 - 7 + 2*3)/2) + 1 = 112   (unfloored 112.5: doesn't fit; "
        "only padding is left unread, every input position is read)"
    )


def test_strict_applies_only_to_a_real_loss():
    analyze(cnncalc.load("resnet18"), strict=True)  # padding unread: not an error
    with pytest.raises(cnncalc.errors.StrictError):
        analyze(spec("maxpool: {kernel: 2, stride: 3}"), strict=True)
    analyze(spec("maxpool: {kernel: 2, stride: 3, ceil_mode: true}"), strict=True)  # ceil_mode covers the rest


# ----- the lecture view ---------------------------------------------------------------------


def test_lecture_view_is_the_vgg16_table():
    from test_seed_tables import VGG16_TABLE

    report = lecture(analyze(cnncalc.load("vgg16")))
    assert report.style is Style.LECTURE and len(report.rows) == len(VGG16_TABLE) == 22
    assert [r.type for r in report.rows] == [kind for kind, *_ in VGG16_TABLE]
    assert [r.activations for r in report.rows] == [memory for *_, memory, _ in VGG16_TABLE]
    assert report.totals.activations_with_input == 15_237_608  # the table's memory column, the input included
    assert report.totals.weights == 138_344_128


def test_lecture_view_is_the_vgg19_table():
    report = lecture(analyze(cnncalc.load("vgg19")))
    assert report.totals.activations == 16_391_656  # "Total: 16,391,656" neurons (the input row has none)
    assert report.totals.params == 143_667_240


def test_the_fold_is_a_property_of_layer_types():
    """Activations (in place), views (aliases_input) and windows that change nothing fold; a
    layer with parameters, a merge, or a window that moves positions never does."""
    folded = {r.name for r in analyze(cnncalc.load("vgg16")).rows if r.folds}
    assert folded == {f"features.{i}" for i in (1, 3, 6, 8, 11, 13, 15, 18, 20, 22, 25, 27, 29)} | {
        "avgpool",
        "flatten",
        "classifier.1",
        "classifier.2",
        "classifier.4",
        "classifier.5",
    }
    assert analyze(parse_text("input: [3, 14, 14]\nlayers:\n  - adaptive_avgpool: 7\n")).rows[1].folds is False
    kept = [r.folds for r in analyze(cnncalc.load("resnet18")).rows if r.type in ("add", "batchnorm", "conv")]
    assert kept == [False] * (20 + 20 + 8)  # 20 convolutions (3 of them shortcuts), 20 batch norms, 8 adds
    for kind, cls in REGISTRY.items():  # only element-wise activations claim to run in place (not the softmaxes)
        from cnncalc.layers.activation import Activation

        assert cls.in_place == (issubclass(cls, Activation) and kind not in ("softmax", "log_softmax")), kind


def test_default_totals_say_what_pytorch_allocates():
    t = analyze(cnncalc.load("vgg16")).totals
    # views of their input (flatten, two dropouts at inference) are rows but not new tensors
    assert t.activations - t.stored_activations == 25_088 + 4_096 + 4_096


def test_lost_positions_take_no_time_on_huge_axes():
    # one run, in closed form: (10^12 + 1 - 10^9)/3 leaves 1, so the last position (10^12) is lost
    assert lost_positions(Window(10**12 + 1, 10**9, 3)) == [(10**12, 10**12)]
    # dilated: only the windows past the last one are looked at (none reaches the input here)
    assert lost_positions(Window(10**6, 3, 10**5 + 7, 0, 0, 2)) == []


def test_dilated_windows_follow_the_stated_rule_in_both_directions():
    """Issue 19 (fuzzing). The docs said "one more window"; a dilated window's positions can be
    read only by the second or a later window past the last: 2 taps 10 apart on 15 positions, at
    stride 1, give (15 - 11)/1 + 1 = 5 windows reading 0-4 and 10-14; windows 5..9 (had the input
    gone on) would read 5-9, and PyTorch gives them no gradient (test above). The other way, a
    work limit answered "nothing lost" on long axes: 2 taps 300,000 apart on 500,000 positions give
    500,000 - 300,000 = 200,000 windows reading 0-199,999 and 300,000-499,999; 200,000-299,999
    were never read and were not named."""
    assert lost_positions(Window(15, 2, 1, 0, 0, 10)) == [(5, 9)]
    long_axis = Window(500_000, 2, 1, 0, 0, 300_000)
    assert lost_positions(long_axis) == [(200_000, 299_999)] and lost_count(long_axis) == 300_000 - 200_000
    conv = REGISTRY["conv"](out=1, kernel=2, dilation=300_000)
    assert conv.fit_warnings([(1, 500_000)]) == [
        "the last window's dilated taps skip input (L): (500000 - 300001 + 0)/1 + 1 = 200000: "
        "input positions 200000-299999 of 0..499999 are never read"
    ]


def test_a_warning_counts_lost_positions_it_does_not_list():
    """3 taps 1,000 apart at stride 7 on 10**12 positions: (10**12 - 2,001)//7 + 1 windows; the
    positions from the next window's start on that no tap reads are named by their first runs and
    counted, in time independent of the axis (the brute force looks only at that tail)."""
    w = Window(10**12, 3, 7, 0, 0, 1_000)
    assert window_output_size(w) == (10**12 - 2 * 1_000 - 1) // 7 + 1
    assert lost_count(w) == len(brute_force_tail(w))
    assert lost_positions(w, 3) == [(p, p) for p in brute_force_tail(w)[:3]]


def brute_force_tail(w):
    """brute_force_lost on the positions past the last window's start, where loss can happen."""
    n = window_output_size(w)
    low = n * w.stride - w.pad_left
    lost = []
    for p in range(max(low, 0), w.size):
        q = p + w.pad_left
        by = [
            (q - t * w.dilation) // w.stride
            for t in range(w.kernel)
            if q >= t * w.dilation and (q - t * w.dilation) % w.stride == 0
        ]
        if by and min(by) >= n:
            lost.append(p)
    return lost


def test_a_dilated_last_window_that_skips_input_is_named_too():
    # the stride tiles ((1 - 3 + 2)/1 + 1 = 1), but the one window reads the two pads only
    graph = parse_text("input: [1, 1]\nlayers:\n  - conv: {out: 1, kernel: 2, dilation: 2, padding: 1}\n")
    (warning,) = analyze(graph).warnings
    assert (
        warning.message
        == "the last window's dilated taps skip input (L): (1 - 3 + 2)/1 + 1 = 1: input position 0 of 0..0 is never read"
    )


def test_a_field_too_fine_to_tabulate_says_so():
    # a stride of 5,000 makes 5,000 phases: past PERIOD_LIMIT, the field is not tabulated (`?`)
    graph = parse_text("input: [1, 4, 4]\nlayers:\n  - conv_transpose: {out: 1, kernel: 2, stride: 5000}\n  - relu\n")
    rows = analyze(graph, fields=True).rows
    assert not rows[1].field.known and not rows[2].field.known
    from typer.testing import CliRunner

    from cnncalc.cli import app

    path_text = "input: [1, 4, 4]\nlayers:\n  - conv_transpose: {out: 1, kernel: 2, stride: 5000}\n"
    import json
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(path_text)
    data = json.loads(CliRunner().invoke(app, ["shapes", f.name, "--rf", "-f", "json"]).stdout)
    assert data["layers"][1]["receptive_field"] == "unknown"


def test_analyze_takes_what_carries_a_graph_and_refuses_the_rest():
    import types

    graph = cnncalc.load("lenet5")
    assert analyze(types.SimpleNamespace(graph=graph)) == analyze(graph)  # duck-typed, as ImportedSpec
    with pytest.raises(CnncalcError, match="cnncalc analyses a network") as caught:
        analyze("lenet5")
    assert caught.value.received == "str"


@pytest.mark.parametrize("dtype", list(DType))
@pytest.mark.parametrize("name", ["alexnet", "resnet18"])
def test_the_parameter_bytes_printed_are_those_the_predicted_peak_holds(name, dtype):
    """`memory` prints the parameters' bytes and a predicted peak that holds them: the two agree at
    every dtype. They did not: under fp16/bf16 autocast the line gave 2 bytes a parameter while the
    peak held the fp32 master weights, and at fp64 the peak held them at 4 bytes, below the
    parameters' own 8 (tests/test_memory.py and test_budget.py measure both peaks in PyTorch)."""
    from cnncalc.analysis import predicted_memory
    from cnncalc.analysis.budget import memory_budget

    report = analyze(cnncalc.load(name), dtype=dtype)
    for train in (False, True):
        budget = memory_budget(report, train)
        assert budget.parameter_bytes == report.param_bytes and budget.buffer_bytes == report.buffer_bytes
        assert predicted_memory(report, train) >= report.param_bytes + report.buffer_bytes
