"""Memory: what a training step keeps for backward, exactly as PyTorch's autograd saves it, and the
predicted peak against the peak measured on the CPU (torch.profiler's allocation records)."""

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import cnncalc
from cnncalc.analysis import DType, analyze
from cnncalc.spec import parse_text

torch = pytest.importorskip("torch")

from helpers.builtins import SMALL_INPUT, builtin_cases  # noqa: E402
from helpers.strategies import KINDS, _layer, analysable, every_kind_chain, group_b_chain  # noqa: E402
from test_layers import MEASURED as TRACED_KINDS  # noqa: E402
from test_layers import MERGE_ROWS, ROWS  # noqa: E402

from cnncalc import to_torch  # noqa: E402
from cnncalc.torch_bridge.profile import profile  # noqa: E402


def autograd_saved_bytes(model, x):
    """Bytes of the distinct tensors autograd saves for backward, parameters, buffers and the input
    left out: every saved tensor passes through saved_tensors_hooks' pack function."""
    own = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers(), x]}
    seen = {}

    kept = []  # the storages stay alive to the end of the forward, so no address is reused

    def pack(t):
        storage = t.untyped_storage()
        kept.append(storage)
        if storage.data_ptr() not in own:
            seen[storage.data_ptr()] = storage.nbytes()
        # backward never runs here, so autograd need keep nothing: handing the tensor itself
        # back makes a reference cycle through its grad_fn that Python's collector cannot see,
        # and every model's weights and activations stayed alive (the suite grew past 20 GB)

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda packed: packed):
        model(x)
    return sum(seen.values())


def check_saved(graph, input_shape=None, batch=2):
    report = analyze(graph, input_shape=input_shape, batch=batch)
    model = to_torch(graph, input_shape).train()
    x = torch.randn(batch, *report.input_shape)
    assert report.saved_bytes == autograd_saved_bytes(model, x)


@pytest.mark.parametrize("name, input_shape", builtin_cases())
def test_saved_for_backward_matches_autograd(name, input_shape):
    check_saved(cnncalc.load(name), input_shape)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(every_kind_chain())
def test_saved_for_backward_of_every_layer_type(text):
    graph = analysable(text)
    rows = analyze(graph).rows
    # instancenorm with running statistics runs on a single position in eval mode only (issue 19)
    assume(not any(row.type == "instancenorm" and math.prod(row.output_shape[1:]) == 1 for row in rows))
    check_saved(graph, batch=3)


def test_a_tensor_two_layers_keep_is_counted_once():
    """The ReLU keeps its output and the next conv keeps the same tensor as its input."""
    graph = parse_text(
        "input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, padding: 1}\n  - relu\n  - conv: {out: 4, kernel: 3}\n"
    )
    assert analyze(graph).totals.saved_activations == 4 * 8 * 8  # the ReLU's output; the conv's output is not kept
    check_saved(graph)


MEASURED = ["lenet5", "alexnet", "zfnet", "resnet18", "googlenet", "vgg11"]


@pytest.mark.parametrize("train", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("name", MEASURED)
def test_predicted_peak_memory_within_15_percent_of_the_cpu_measurement(name, train):
    p = profile(
        cnncalc.load(name), input_shape=SMALL_INPUT.get(name), batch=2, warmup=1, iters=1, train=train, check=False
    )
    assert 0.85 <= p.memory_measured / p.memory_predicted <= 1.15


@pytest.mark.parametrize("train", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("name", ["lenet5", "alexnet", "resnet18"])
def test_an_fp64_model_peaks_where_predicted(name, train):
    """`--dtype fp64` is the model and its input cast to fp64: parameters, buffers, gradients,
    momentum and norm statistics all 8 bytes wide (they were counted at fp32's 4: the predicted
    inference peak of resnet18 came out below its own parameter bytes)."""
    p = profile(
        cnncalc.load(name),
        input_shape=SMALL_INPUT.get(name),
        batch=2,
        warmup=1,
        iters=1,
        train=train,
        check=False,
        dtype=DType.FP64,
    )
    assert 0.85 <= p.memory_measured / p.memory_predicted <= 1.15


@pytest.mark.parametrize(
    "text",
    [
        # a wide convolution pooled to one position: nothing large is kept for backward, but its output
        # lives through the forward pass (a training step was predicted at 0.03 of the peak measured at batch 1)
        "input: [1, 32, 32]\nlayers:\n  - conv: {out: 64, kernel: 1}\n  - global_avgpool\n  - flatten\n  - linear: 2\n",
        # the ReLU keeps its output, and the transposed conv's output lives beside it until the ReLU
        # has run (was 0.55)
        "input: [4, 8, 8, 8]\nlayers:\n  - conv_transpose: {out: 4, kernel: 3, stride: 2}\n  - relu\n  - global_avgpool\n  - flatten\n  - linear: 2\n",
    ],
)
@pytest.mark.usefixtures("several_threads")
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("dtype", [DType.FP32, DType.FP64])
def test_a_training_step_peaks_in_its_forward_pass_where_little_is_kept(text, batch, dtype):
    """The forward pass holds what later layers still read beside what the layers keep; where that
    is more than what backward holds, it is the step's peak, to the byte on the CPU."""
    p = profile(parse_text(text), batch=batch, warmup=1, iters=1, train=True, check=False, dtype=dtype)
    assert p.memory_measured == pytest.approx(p.memory_predicted, rel=0.005)


@pytest.mark.usefixtures("several_threads")
@pytest.mark.parametrize("train", [False, True], ids=["inference", "training"])
def test_a_slow_3d_transposed_conv_allocates_its_input_size(train):
    """One small sample: ATen's own 3-D transposed kernel writes an output of 216 elements into a
    buffer of its input's 1,728 (was predicted 8,692 bytes at inference where 14,740 were measured)."""
    text = "input: [8, 6, 6, 6]\nlayers:\n  - conv_transpose: {out: 1, kernel: 1}\n  - relu\n  - global_avgpool\n  - flatten\n  - linear: 2\n"
    p = profile(parse_text(text), batch=1, warmup=1, iters=1, train=train, check=False)
    assert p.memory_measured == p.memory_predicted


def test_the_memory_command_prints_the_prediction_profile_measures():
    """`cnncalc memory` (no torch) prints the same prediction, and it is near the measured peak."""
    import json

    from typer.testing import CliRunner

    from cnncalc.cli import app

    data = json.loads(CliRunner().invoke(app, ["memory", "resnet18", "--batch", "4", "-f", "json"]).stdout)
    predicted = data["totals"]["predicted_peak_bytes"]
    for train in (False, True):
        p = profile(cnncalc.load("resnet18"), batch=4, warmup=1, iters=1, train=train, check=False)
        assert predicted["training" if train else "inference"] == p.memory_predicted
        assert 0.85 <= p.memory_measured / p.memory_predicted <= 1.15


# group B (issue 10)
@pytest.mark.parametrize("kind, layers, shape_in", [row[:3] for row in MERGE_ROWS])
def test_saved_for_backward_of_every_merge_row(kind, layers, shape_in):
    check_saved(parse_text(f"input: {shape_in}\nlayers:\n" + "\n".join("  " + line for line in layers.split("\n"))))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(group_b_chain())
def test_saved_for_backward_of_random_group_b_chains(text):
    graph = analysable(f"{text}".replace("layers:\n", "layers:\n  - conv: {out: 4, kernel: 1}\n", 1))
    check_saved(graph, batch=2)


@pytest.mark.parametrize(
    "channels, crop, flatten_copies",
    [
        (4, "[2, 2]", True),  # gaps on both axes
        (4, "[2, 4]", True),  # H cropped: channels step over 4x4, not 2x4
        (1, "[2, 4]", False),  # one channel: H then W, one step
        (4, "1", False),  # one position per channel: a single axis
    ],
)
def test_a_flatten_after_a_crop_copies_unless_the_crop_reads_as_one_axis(channels, crop, flatten_copies):
    """The linear keeps the flatten's tensor: a copy of the crop, or (a view) the conv's whole output."""
    text = f"input: [3, 4, 4]\nlayers:\n  - conv: {{out: {channels}, kernel: 1}}\n  - center_crop: {crop}\n  - flatten\n  - linear: 2\n"
    graph = parse_text(text)
    rows = analyze(graph).rows
    assert analyze(graph).totals.saved_activations == (rows[3].activations if flatten_copies else rows[1].activations)
    check_saved(graph)


@pytest.mark.parametrize(
    "a, b, kept",
    [
        ("input", "c", 0),  # b is kept only for a's gradient: the input needs none; the input itself is not counted
        ("c", "s", 4 * 6 * 6 + 4),  # both need gradients: both kept (the conv's output and the sigmoid's [4, 1, 1])
        ("r", "c", 4 * 6 * 6),  # the ReLU of the input needs no gradient: it is kept (for c), c is not
    ],
)
def test_a_product_keeps_each_input_for_its_partners_gradient(a, b, kept):
    text = (
        "input: [4, 6, 6]\nlayers:\n  - relu: {name: r}\n  - conv: {out: 4, kernel: 1, name: c, from: input}\n"
        f"  - global_avgpool\n  - sigmoid: {{name: s}}\n  - mul: {{from: [{a}, {b}]}}\n"
    )
    graph = parse_text(text)
    # the sigmoid keeps its output (4) where the product needs it; the conv keeps the input (not counted)
    assert analyze(graph).totals.saved_activations == kept + (4 if "s" not in (a, b) else 0)
    check_saved(graph)


# group A (issue 10)


# (a traced row's backward is not known: cnncalc assumes it keeps its input, docs/import.md; its
# bridge module is a stand-in that keeps nothing, so autograd has nothing to compare with. An
# instance norm over one position runs in eval mode only: PyTorch refuses to train it)
def _trains(kind: str, shape_in: tuple[int, ...]) -> bool:
    return not (kind == "instancenorm" and len(shape_in) > 1 and all(s == 1 for s in shape_in[1:]))


@pytest.mark.parametrize(
    "kind, item, shape_in",
    [
        (kind, item, shape_in)
        for kind, item, shape_in, *_ in ROWS
        if (len(shape_in) > 1 or shape_in[0] <= 1000) and kind not in TRACED_KINDS and _trains(kind, shape_in)
    ],
)
def test_saved_for_backward_of_every_layer_row(kind, item, shape_in):
    """Each row of the layer table after a layer with parameters (so that autograd records it),
    its saved tensors against autograd's, byte for byte."""
    first = f"conv: {{out: {shape_in[0]}, kernel: 1}}" if len(shape_in) > 1 else f"linear: {shape_in[0]}"
    check_saved(parse_text(f"input: {list(shape_in)}\nlayers:\n  - {first}\n  - {item}\n"), batch=3)


# end of group A


def test_saved_for_backward_of_convnext_block():  # group A (issue 10)
    from test_layers import CNBLOCK

    check_saved(parse_text(CNBLOCK), batch=3)


@pytest.mark.parametrize("norm", ["groupnorm: {groups: 1, affine: true}", "instancenorm: {affine: true}"])
@pytest.mark.parametrize("before", ["center_crop: 2", "identity"])
@pytest.mark.parametrize("first", ["", "conv: {out: 2, kernel: 1}"])
def test_group_and_instance_norm_keep_a_dense_copy_of_a_view_with_gaps(norm, before, first):
    """Behind a crop (a view with gaps) they keep a contiguous copy of it; behind a dense view, the view."""
    layers = [item for item in (first, before, norm, "flatten", "linear: {out: 1, bias: false}") if item]
    check_saved(parse_text("input: [1, 5, 5, 5]\nlayers:\n" + "".join(f"  - {item}\n" for item in layers)), batch=3)


def allocated_output_elements(graph, input_shape):
    """Elements per sample of the distinct tensors the rows' modules return at inference, the
    input's storage left out: every output is kept alive, so no storage is reused."""
    from cnncalc.torch_bridge import leaf_modules

    model = to_torch(graph, input_shape).eval()
    x = torch.randn(1, *(input_shape or graph.input_shape))
    outputs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outputs.append(o)) for m in leaf_modules(model).values()]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    storages = {o.untyped_storage().data_ptr(): o.untyped_storage().nbytes() // o.element_size() for o in outputs}
    storages.pop(x.untyped_storage().data_ptr(), None)
    return sum(storages.values())


@pytest.mark.parametrize(
    "name", ["vgg16", "alexnet", "resnet18", "googlenet", "lenet5"]
)  # every view type, merges, LRN
def test_new_tensors_in_the_totals_line_are_what_pytorch_allocates(name):
    # issue 9: the activation total counts one output per row; of those, views (flatten, dropout at
    # inference, identity) are not new memory, and the totals line says how many elements are
    graph, shape = cnncalc.load(name), SMALL_INPUT.get(name)
    report = analyze(graph, input_shape=shape)
    assert report.totals.stored_activations == allocated_output_elements(graph, shape)
    assert report.totals.stored_activations < report.totals.activations or not any(
        n.layer is not None and n.layer.aliases_input for n in graph.nodes
    )


# ----- layouts: the strides cnncalc predicts for every output, against the real tensors' -----

LAYOUT_KINDS = [*KINDS, *["layernorm", "permute", "crop", "center_crop", "chunk", "identity", "dropout"] * 4]


@st.composite
def layout_chain(draw):
    """A conv, then layers of every type among many that change how a tensor lies in memory: a
    channel layer norm (channels-last), a permute with no inverse after it, crops and channel
    pieces (views with gaps), views of views; then flatten and linear, or a linear on the last axis
    (which folds the others into one, a copy where no view exists)."""
    rank = draw(st.integers(1, 3))
    channels = draw(st.integers(1, 4))
    sizes = [draw(st.integers(4, 8 if rank < 3 else 5)) for _ in range(rank)]
    lines = [f"  - conv: {{out: {channels}, kernel: 1}}"]
    permuted = False
    for kind in draw(st.lists(st.sampled_from(LAYOUT_KINDS), min_size=1, max_size=5)):
        if kind == "permute" and draw(st.booleans()):
            lines.append(f"  - permute: {[0, *draw(st.permutations(range(1, rank + 2)))]}")
            channels, permuted = 1, True  # some other axis is second now: only groups of 1 divide it for certain
            continue
        if kind == "lrn" and permuted and rank == 3:
            continue  # F.local_response_norm views a 5-D input, which a permuted one may refuse (PyTorch's error)
        text, channels = _layer(draw, kind, channels or 1, rank)
        lines.append(f"  - {text}")
    out = draw(st.integers(1, 3))
    lines += (
        ["  - flatten", f"  - linear: {out}"]
        if draw(st.booleans())
        else [f"  - linear: {{out: {out}, channels_last: true}}"]
    )
    return f"input: [{draw(st.integers(1, 4))}, {', '.join(map(str, sizes))}]\nlayers:\n" + "\n".join(lines) + "\n"


def trainable(graph, batch):
    """The drawn graph, or the draw discarded where PyTorch cannot train it at `batch`: a batch norm
    of one value per channel (a batch of one pooled to one position), or an instance norm of one
    spatial position (its statistics need more, at any batch: `_trains`)."""
    rows = analyze(graph).rows
    for node, row in zip(graph.nodes, rows):
        if node.layer is not None and node.layer.kind == "batchnorm" and batch * math.prod(row.output_shape[1:]) == 1:
            assume(False)
        if node.layer is not None and not _trains(node.layer.kind, rows[node.inputs[0]].output_shape):
            assume(False)
    return graph


def real_strides(model, x):
    """Each row's output strides (the whole tensor) from forward hooks on one pass."""
    from cnncalc.torch_bridge import leaf_modules

    seen = {}

    def keep(name):
        def hook(module, inputs, output):
            seen[name] = output.stride()  # (a hook that returns a value replaces the output)

        return hook

    hooks = [m.register_forward_hook(keep(name)) for name, m in leaf_modules(model).items()]
    try:
        model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def check_strides(graph, batch=2):
    """Inference and training: every output's predicted strides are the real tensor's, on every
    axis longer than 1 (the steps of a size-1 axis never move through memory, and PyTorch's ops
    set them in more ways than decide anything here)."""
    from cnncalc.analysis.memory import _walk

    for training in (False, True):
        report = analyze(graph, batch=batch)
        predicted = _walk(graph, report.rows, batch, training).strides
        model = to_torch(graph).train(training)
        with torch.set_grad_enabled(training):
            real = real_strides(model, torch.randn(batch, *report.input_shape))
        for i, row in enumerate(report.rows[1:], start=1):
            long = [k for k, n in enumerate((batch, *row.output_shape)) if n > 1]
            assert [predicted[i][k] for k in long] == [real[row.name][k] for k in long], (row.name, training)


@pytest.mark.parametrize(
    "op, shape",
    [
        ("mul", [1]),  # found by hypothesis: x * p after a channel layer norm, predicted contiguous
        ("add", [4]),
        ("sub", [2, 4, 4]),
        ("rsub", [1]),
        ("rdiv", [2, 1, 1]),
        ("rsub", [2, 4, 4]),  # p - x, p with axes of its own: p orders them
    ],
)
@pytest.mark.parametrize("batch", [1, 2])
def test_a_parameter_row_lays_its_output_out_as_tensor_iterator_does(op, shape, batch):
    text = (
        "input: [1, 4, 4]\nlayers:\n  - conv: {out: 2, kernel: 1}\n"
        "  - layernorm: {over: channels, affine: false, bias: false}\n"
        f"  - parameter: {{op: {op}, shape: {shape}}}\n  - global_avgpool\n  - flatten\n  - linear: 1\n"
    )
    check_strides(parse_text(text), batch)
    # a broadcast that grows the output: [2, 1, 1] + [3, 3] is [2, 3, 3]
    grown = text.replace("  - global_avgpool\n", "").replace(
        f"  - parameter: {{op: {op}, shape: {shape}}}\n",
        f"  - global_avgpool\n  - parameter: {{op: {op}, shape: [3, 3]}}\n",
    )
    check_strides(parse_text(grown), batch)


@pytest.mark.usefixtures("several_threads")
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(layout_chain(), st.integers(1, 3))
def test_predicted_strides_are_the_real_tensors(text, batch):
    check_strides(trainable(analysable(text), batch), batch)


@pytest.mark.usefixtures("several_threads")
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(layout_chain(), st.integers(1, 3))
def test_saved_for_backward_through_layouts(text, batch):
    check_saved(trainable(analysable(text), batch), batch=batch)
