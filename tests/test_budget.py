"""Memory budgets (cnncalc/analysis/budget.py): the optimizer's state against a real torch.optim optimizer's
after one step, and the predicted peak of a training step with each optimizer, under bf16 autocast
and with activation checkpointing, against the peak measured on the CPU (as tests/test_memory.py
measures the plain training step)."""

import re

import pytest

import cnncalc
from cnncalc.analysis import DType, analyze, predicted_memory
from cnncalc.analysis.budget import Optimizer, Phase, memory_budget, optimizer_state_bytes, recompute, segments
from cnncalc.errors import CnncalcError
from cnncalc.spec import parse_text

torch = pytest.importorskip("torch")

from helpers.builtins import SMALL_INPUT  # noqa: E402

from cnncalc import to_torch  # noqa: E402
from cnncalc.torch_bridge.measure import make_optimizer  # noqa: E402
from cnncalc.torch_bridge.measure import optimizer_state_bytes as real_state_bytes  # noqa: E402
from cnncalc.torch_bridge.profile import profile  # noqa: E402

# LeNet-5: conv1 5x5x1x6 + 6, conv2 5x5x6x16 + 16, fc 400x120 + 120, 120x84 + 84, 84x10 + 10
LENET5_PARAMS = (
    (5 * 5 * 1 * 6 + 6) + (5 * 5 * 6 * 16 + 16) + (16 * 5 * 5 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
)
LENET5_TENSORS = 5 * 2  # a weight and a bias per layer


def test_lenet5_state_bytes_by_hand():
    report = analyze(cnncalc.load("lenet5"))
    assert LENET5_PARAMS == 61_706
    assert optimizer_state_bytes(report, Optimizer.SGD) == 0
    assert optimizer_state_bytes(report, Optimizer.MOMENTUM) == 4 * LENET5_PARAMS  # one fp32 momentum buffer
    # exp_avg and exp_avg_sq in fp32, and one 0-d fp32 step counter per parameter tensor
    assert optimizer_state_bytes(report, Optimizer.ADAM) == 2 * 4 * LENET5_PARAMS + 4 * LENET5_TENSORS
    assert optimizer_state_bytes(report, Optimizer.ADAMW) == 2 * 4 * LENET5_PARAMS + 4 * LENET5_TENSORS


@pytest.mark.parametrize("name", ["lenet5", "resnet18", "convnext_tiny", "googlenet", "mobilenet_v2"])
def test_optimizer_state_is_torch_optims_after_one_step(name):
    """The sum of the tensors' nbytes in a real optimizer's `state` after one step (layer scale's
    parameters held by the parent module, batch norm's, every bias), for each optimizer."""
    shape = SMALL_INPUT.get(name)
    graph = cnncalc.load(name)
    report = analyze(graph, input_shape=shape)
    model = to_torch(graph, shape).train()
    model(torch.randn(2, *report.input_shape)).float().mean().backward()
    for optimizer in Optimizer:
        opt = make_optimizer(optimizer, model.parameters())
        opt.step()
        assert optimizer_state_bytes(report, optimizer) == real_state_bytes(opt), optimizer


MEASURED = ["lenet5", "alexnet", "resnet18", "googlenet"]


@pytest.mark.parametrize(
    "optimizer, dtype",
    [
        (Optimizer.SGD, DType.FP32),
        (Optimizer.ADAM, DType.BF16),
        (Optimizer.ADAMW, DType.FP32),
    ],
)
@pytest.mark.parametrize("name", MEASURED)
def test_training_peak_with_each_optimizer_and_bf16_autocast_within_15_percent(name, optimizer, dtype):
    """A real step (torch.optim, bf16 autocast on the CPU) against the prediction, as
    test_memory's test_predicted_peak_memory_within_15_percent_of_the_cpu_measurement does for
    SGD with momentum; measured 0.96 to 1.03."""
    p = profile(
        cnncalc.load(name),
        input_shape=SMALL_INPUT.get(name),
        batch=2,
        dtype=dtype,
        warmup=1,
        iters=1,
        train=True,
        check=False,
        optimizer=optimizer,
    )
    assert 0.85 <= p.memory_measured / p.memory_predicted <= 1.15


@pytest.mark.parametrize("name", ["alexnet", "resnet18"])
def test_bf16_inference_peak_to_the_byte(name):
    """Under inference_mode autocast caches no weight copy; the input stays fp32 (measured: alexnet
    to the byte, resnet18 80 bytes below the prediction, of 54 MB)."""
    p = profile(cnncalc.load(name), batch=2, dtype=DType.BF16, warmup=1, iters=1, train=False, check=False)
    assert p.memory_measured == pytest.approx(p.memory_predicted, abs=1024)


FORWARD_PEAK = (
    "input: [1, 32, 32]\nlayers:\n  - conv: {out: 64, kernel: 1}\n  - global_avgpool\n  - flatten\n  - linear: 2\n"
)


@pytest.mark.usefixtures("several_threads")
@pytest.mark.parametrize("optimizer", list(Optimizer))
@pytest.mark.parametrize("dtype", [DType.FP32, DType.BF16])
def test_forward_phase_with_optimizer_state_and_autocast_weight_copies(optimizer, dtype):
    """A step that peaks in its forward pass: the optimizer's state made by the first step is held
    beside the live activations; under bf16 the fp32 input, its kept bf16 copy and the cached bf16
    weight copies too (to 0.5%: 16 bytes of 413,336 off at batch 3)."""
    graph = parse_text(FORWARD_PEAK)
    p = profile(graph, batch=3, dtype=dtype, warmup=1, iters=1, train=True, check=False, optimizer=optimizer)
    assert memory_budget(analyze(graph, batch=3, dtype=dtype), True, optimizer).phase is Phase.FORWARD
    assert p.memory_measured == pytest.approx(p.memory_predicted, rel=0.005)


def test_parts_add_up_and_say_where_the_peak_is():
    report = analyze(cnncalc.load("resnet18"), batch=32)
    b = memory_budget(report, True, Optimizer.ADAM, reserve_bytes=10**9)
    assert b.phase is Phase.BACKWARD
    assert b.parameter_bytes == b.gradient_bytes == 4 * 11_689_512  # torchvision's resnet18: 11,689,512 parameters
    assert b.optimizer_bytes == 2 * 4 * 11_689_512 + 4 * 62  # 62 parameter tensors
    assert b.input_bytes == 32 * 3 * 224 * 224 * 4
    assert b.total_bytes == (
        b.parameter_bytes
        + b.buffer_bytes
        + b.gradient_bytes
        + b.optimizer_bytes
        + b.input_bytes
        + b.activation_bytes
        + 10**9
    )
    assert b.total_bytes - 10**9 == predicted_memory(report, True) + 4 * 11_689_512 + 4 * 62  # Adam's second moment
    assert memory_budget(report, True, Optimizer.SGD).total_bytes == predicted_memory(report, True) - 4 * 11_689_512


# ----- activation checkpointing, against torch.utils.checkpoint -----

RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")


def _live_after(fn):
    """Bytes allocated by `fn` and still alive when it returns (the profiler's records summed)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    return sum(e.cpu_memory_usage if e.name == "[memory]" else e.self_cpu_memory_usage for e in prof.events())


@pytest.mark.parametrize("blocks", [(), RESNET_STAGES, ("layer2.0",), ("layer1.1", "layer3")])
def test_what_a_checkpointed_forward_keeps_is_what_torch_keeps(blocks):
    """After the forward pass, what is still allocated is what backward needs: the layers' saved
    tensors outside the blocks and each block's inputs (the checkpoint holds them), to the byte,
    beside the output and the CPU generator's state that preserve_rng_state keeps per block."""
    graph, shape = cnncalc.load("resnet18"), (3, 64, 64)
    report = analyze(graph, input_shape=shape, batch=2)
    model = to_torch(graph, shape).train().checkpoint(segments(graph, blocks))
    x, out = torch.randn(2, *shape), []
    live = _live_after(lambda: out.append(model(x)))
    kept = recompute(graph, report, blocks).saved_bytes if blocks else report.saved_bytes
    assert live == kept + out[0].nbytes + len(blocks) * torch.get_rng_state().nbytes


GOOGLENET_INCEPTIONS = tuple(f"inception{k}" for k in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"))


@pytest.mark.usefixtures("several_threads")
@pytest.mark.parametrize(
    "name, blocks, dtype",
    [
        ("resnet18", RESNET_STAGES, DType.FP32),
        ("resnet18", RESNET_STAGES, DType.BF16),
        ("resnet18", ("layer1",), DType.FP32),
        ("googlenet", GOOGLENET_INCEPTIONS, DType.BF16),
    ],
)
def test_checkpointed_training_peak_within_15_percent_of_the_cpu_measurement(name, blocks, dtype):
    """torch.utils.checkpoint (non-reentrant) on the named blocks, a real SGD step (measured 0.90
    to 0.99 at batch 2; the recomputation's own live tensors aside), and no more than without."""
    kwargs = dict(input_shape=SMALL_INPUT.get(name), batch=2, dtype=dtype, warmup=1, iters=1, train=True, check=False)
    p = profile(cnncalc.load(name), checkpoint=blocks, optimizer=Optimizer.SGD, **kwargs)
    assert 0.85 <= p.memory_measured / p.memory_predicted <= 1.15
    plain = profile(cnncalc.load(name), optimizer=Optimizer.SGD, **kwargs)
    assert p.memory_predicted <= plain.memory_predicted and p.memory_measured < plain.memory_measured


def test_checkpointing_every_resnet_stage_keeps_only_their_inputs_and_the_stem():
    """With the four stages recomputed, what a step keeps is the stem's saved tensors, the stages'
    inputs (the max pool's output, then each stage's output) and the head's; the stage that keeps
    most again is layer1 (its 56x56 maps)."""
    graph = cnncalc.load("resnet18")
    report = analyze(graph, batch=1)
    r = recompute(graph, report, RESNET_STAGES)
    # stage inputs, fp32: maxpool 64x56x56, layer1 out 64x56x56, layer2 out 128x28x28, layer3 out 256x14x14
    inputs = 4 * (64 * 56 * 56 + 64 * 56 * 56 + 128 * 28 * 28 + 256 * 14 * 14)
    stem = r.saved_bytes - inputs  # bn1 keeps conv1's output and 2x64 statistics; maxpool keeps relu's output, indices
    conv1_out = 64 * 112 * 112
    # bn1: its input + 2 x 64 fp32 statistics; relu: its output; maxpool: int64 indices (its input is relu's output);
    # layer4 out kept by avgpool (1x1: a mean keeps nothing), fc keeps the flattened 512
    assert stem == 4 * conv1_out + 4 * 2 * 64 + 4 * conv1_out + 8 * 64 * 56 * 56 + 4 * 512
    assert r.recompute_bytes > 0 and r.saved_bytes < report.saved_bytes


@pytest.mark.parametrize(
    "blocks, message",
    [
        (("layer9",), "--checkpoint names no block of the network"),
        (("layer1", "layer1.0"), "--checkpoint 'layer1.0' overlaps another block named"),
    ],
)
def test_bad_checkpoint_blocks_are_one_clear_error(blocks, message):
    with pytest.raises(CnncalcError) as err:
        segments(cnncalc.load("resnet18"), blocks)
    assert err.value.message == message
    if blocks == ("layer9",):  # the suggestions are resnet18's stages (difflib picks up to three)
        suggested = re.findall(r"'([^']+)'", err.value.hint)
        assert err.value.hint.startswith("did you mean ") and suggested
        assert set(suggested) <= {"layer1", "layer2", "layer3", "layer4"}


def test_a_block_whose_rows_are_not_consecutive_is_refused():
    text = "input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 1, name: a.x}\n  - relu: {name: b}\n  - relu: {name: a.y}\n"
    with pytest.raises(CnncalcError, match="its rows are not consecutive"):
        segments(parse_text(text), ["a"])
