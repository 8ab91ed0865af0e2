"""`cnncalc profile`: the checks, the timing and its failure modes, on CPU in CI and on CUDA where
a GPU is present (those skip cleanly without one)."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import cnncalc
from cnncalc import to_torch
from cnncalc.cli import ExitCode, app
from cnncalc.spec import parse_text

runner = CliRunner()
try:
    import torch

    from cnncalc.torch_bridge.measure import time_layers
    from cnncalc.torch_bridge.profile import Check, profile, verify
except ImportError:  # the tests that need it skip themselves, one by one (requires_torch)
    torch = None
requires_torch = pytest.mark.skipif(torch is None, reason="needs PyTorch (the torch extra)")


def run(*args):
    return runner.invoke(app, list(args), terminal_width=200)


@requires_torch
def test_profile_cpu_json():
    result = run("profile", "lenet5", "--iters", "3", "--warmup", "1", "--batch", "2", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["checks"] and all(c["ok"] for c in data["checks"])
    assert {c["quantity"] for c in data["checks"]} >= {"shape", "weights", "biases", "buffers", "fvcore"}
    lat = data["latency_ms"]
    assert 0 < lat["p10"] <= lat["median"] <= lat["p90"]
    assert data["flops_per_step"] == 2 * cnncalc.analyze(cnncalc.load("lenet5")).totals.macs * 2


@requires_torch
def test_profile_training_step_text():
    result = run(
        "profile",
        "resnet18",
        "--input",
        "3x32x32",
        "--train",
        "--batch",
        "2",
        "--dtype",
        "bf16",
        "--iters",
        "2",
        "--warmup",
        "1",
    )
    assert result.exit_code == 0, result.stderr
    assert "training step" in result.stdout and "autocast to bf16" in result.stdout and "all ✓" in result.stdout


HEAVY_AND_LIGHT = """
name: heavy-and-light
input: [32, 64, 64]
layers:
  - identity: {name: light}
  - conv: {out: 64, kernel: 5, padding: 2, name: heavy}
  - relu: {name: cheap}
"""


@requires_torch
def test_per_layer_times_every_row():
    """Every leaf row is timed (in the model's order), every time is positive, the conv's FLOPs are
    cnncalc's MACs x 2, and the hooks are gone afterwards. Which layer is slowest is a timing, not
    a fact: benchmarks/bench_profile.py shows the heavy conv standing out."""
    graph = parse_text(HEAVY_AND_LIGHT)
    p = profile(graph, iters=5, warmup=1, check=False, per_layer=True)
    model = to_torch(graph)
    assert [layer.row for layer in p.layers] == [
        name for name, m in model.named_modules() if not list(m.children()) and name
    ]
    assert [layer.row for layer in p.layers] == ["light", "heavy", "cheap"]
    assert all(layer.median_ms > 0 for layer in p.layers)
    heavy = p.layers[1]
    assert (
        heavy.flops == 2 * cnncalc.analyze(graph).rows[2].macs == 2 * (64 * 64 * 64) * (32 * 5 * 5)
    )  # output elements x (in channels x 5 x 5)
    assert heavy.tflops == pytest.approx(heavy.flops / heavy.median_ms / 1e9)
    assert sum(p.share(layer) for layer in p.layers) == pytest.approx(1.0)


@requires_torch
def test_noisy_timings_are_flagged():
    """p90/p10 above the threshold reads as noisy (the CLI warns), at or below it does not."""
    from cnncalc.torch_bridge.measure import NOISY_SPREAD, Timing

    assert Timing(1.0, 1.0, NOISY_SPREAD + 0.01, 1, 10).noisy
    assert not Timing(1.0, 1.0, NOISY_SPREAD, 1, 10).noisy
    assert Timing(1.0, 1.0, 2.0, 1, 10).spread == 2.0


@requires_torch
def test_noisy_timings_warn(monkeypatch):
    import cnncalc.torch_bridge.measure as bridge

    monkeypatch.setattr(bridge, "NOISY_SPREAD", 0.5)  # p90/p10 is at least 1: always noisy
    result = run("profile", "lenet5", "--iters", "3", "--warmup", "1", "--no-check")
    assert result.exit_code == 0 and "warning: timings are noisy: p90/p10" in result.stderr


@requires_torch
def test_per_layer_pass_leaves_no_hooks():
    graph = cnncalc.load("resnet18")
    report = cnncalc.analyze(graph, input_shape=(3, 32, 32))
    model = to_torch(graph, (3, 32, 32)).eval()
    x = torch.randn(1, 3, 32, 32)
    layers = time_layers(graph, report, model, lambda: model(x), 2, False, torch.device("cpu"), None)
    assert len(layers) == len(report.rows) - 1
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@requires_torch
def test_per_layer_text_and_json():
    result = run("profile", "lenet5", "--iters", "3", "--warmup", "1", "--per-layer", "--no-check")
    assert result.exit_code == 0, result.stderr
    assert "per layer (inference" in result.stdout and "slowest: " in result.stdout
    assert "end-to-end median" in result.stdout and "sum of layers" in result.stdout
    result = run("profile", "lenet5", "--iters", "3", "--warmup", "1", "--per-layer", "--no-check", "-f", "json")
    rows = json.loads(result.stdout)["layers"]
    assert [r["row"] for r in rows] == [n.name for n in cnncalc.load("lenet5").nodes[1:]]
    train = run(
        "profile", "lenet5", "--iters", "2", "--warmup", "1", "--per-layer", "--no-check", "--train", "--batch", "2"
    )
    assert train.exit_code == 0 and "forward only" in train.stdout


@requires_torch
def test_checks_cover_every_row():
    graph = cnncalc.load("googlenet")
    checks = verify(graph)
    assert {c.row for c in checks} == {n.name for n in graph.nodes[1:]}
    assert all(c.ok for c in checks)


@requires_torch
def test_a_mismatch_fails_the_command(monkeypatch):
    import cnncalc.torch_bridge.profile as prof

    real = prof.verify
    monkeypatch.setattr(prof, "verify", lambda g, s=None: [*real(g, s), Check("conv1", "weights", 1, 2)])
    result = run("profile", "lenet5", "--iters", "1", "--warmup", "0")
    assert result.exit_code == ExitCode.MISMATCH
    assert "✗ conv1: weights: cnncalc 1, PyTorch 2" in result.stdout


@requires_torch
def test_a_row_pytorch_refuses_to_run_is_a_message(tmp_path):
    """cnncalc counts an LRN of a permuted 3-D input, but F.local_response_norm cannot view it
    (PyTorch's own RuntimeError): the row and PyTorch's reason, exit 1, no traceback."""
    spec = tmp_path / "lrn.yaml"
    spec.write_text(
        "input: [1, 4, 4, 4]\nlayers:\n  - conv: {out: 1, kernel: 1}\n  - permute: [0, 1, 2, 4, 3]\n"
        "  - lrn: {size: 1, name: norm}\n  - flatten\n  - linear: 1\n"
    )
    result = run("profile", str(spec), "--iters", "1", "--warmup", "0")
    assert result.exit_code == ExitCode.INVALID and "Traceback" not in result.stderr
    assert (
        "lrn.yaml:5" in result.stderr
        and "PyTorch cannot run row 'norm' as built (RuntimeError: view size" in result.stderr
    )
    graph = cnncalc.load(str(spec))
    with pytest.raises(cnncalc.CnncalcError, match="row 'norm'") as raised:
        to_torch(graph)(torch.randn(2, 1, 4, 4, 4))
    assert isinstance(raised.value.__cause__, RuntimeError)  # PyTorch's own error stays attached


@requires_torch
def test_cuda_without_a_gpu_says_so():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = run("profile", "lenet5", "--device", "cuda")
    assert result.exit_code == ExitCode.INVALID and "no CUDA GPU" in result.stderr and "Traceback" not in result.stderr


def test_without_torch_names_the_extra():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from typer.testing import CliRunner; from cnncalc.cli import app\n"
        "r = CliRunner().invoke(app, ['profile', 'lenet5']); print(r.exit_code); print(r.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == str(int(ExitCode.MISSING_EXTRA))
    assert "cnncalc[torch]" in out and "Traceback" not in out


cuda = pytest.mark.skipif(torch is None or not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_cuda_profile_measures_memory():
    p = profile(cnncalc.load("resnet18"), device="cuda", batch=64, iters=5, warmup=2)
    assert p.memory_measured and p.memory_predicted
    assert 0.85 <= p.memory_measured / p.memory_predicted <= 1.15


@cuda
def test_cuda_per_layer_sums_below_end_to_end():
    """CUDA events around each layer: every layer timed, and together no longer than the whole
    forward plus a margin for the events themselves."""
    p = profile(cnncalc.load("resnet50"), device="cuda", batch=64, iters=10, warmup=3, check=False, per_layer=True)
    assert len(p.layers) == len(cnncalc.load("resnet50").nodes) - 1
    assert all(layer.median_ms > 0 for layer in p.layers)
    assert p.layers_ms <= 1.2 * p.timing.median_ms


@cuda
def test_cuda_out_of_memory_is_a_message():
    result = run(
        "profile", "vgg16", "--device", "cuda", "--batch", "100000", "--no-check", "--iters", "1", "--warmup", "0"
    )
    assert result.exit_code == ExitCode.INVALID and "ran out of memory" in result.stderr and "predicts" in result.stderr


# an upsampling of 2**16 channels to 2**16 x 2**16 positions: 2**50 bytes a sample, more than any
# machine holds, so the CPU allocator refuses it at once (peak 0.3 GB). Not one channel to 2**28 x
# 2**28 positions: that ran to a 6.5 GB peak before the refusal (work per output row and column,
# 2**28 of each), and a pytest worker that ran it held 4.8 GB to its end (in CI the next test there
# passed the 8 GiB data limit, and the worker's report of it failed: the run's one failure)
HUGE = "input: [65536, 4, 4]\nlayers:\n  - upsample: {scale: 16384}\n  - global_avgpool\n  - flatten\n  - linear: 2\n"


@requires_torch
@pytest.mark.parametrize(
    "options, run_name, hint",
    [
        ([], "checking every row (one sample, fp32, inference)", "one sample does not fit"),
        (["--no-check", "--batch", "2", "--train"], "at batch 2 (a training step)", "lower --batch"),
    ],
)
def test_cpu_out_of_memory_is_a_message(tmp_path, monkeypatch, options, run_name, hint):
    """The CPU allocator's refusal (a RuntimeError, not CUDA's OutOfMemoryError) is running out of
    memory, with the prediction beside it, not 'PyTorch cannot run row ... as built'. (A machine
    said to hold 4 EiB: on this one cnncalc refuses the run before it starts, the test below.)"""
    import cnncalc.torch_bridge.profile as bridge

    monkeypatch.setattr(bridge, "_cpu_total", lambda: 2**62)
    spec = tmp_path / "huge.yaml"
    spec.write_text(HUGE)
    result = run("profile", str(spec), "--iters", "1", "--warmup", "0", *options)
    assert result.exit_code == ExitCode.INVALID and "Traceback" not in result.stderr
    assert "the CPU ran out of memory" in result.stderr and run_name in result.stderr
    assert "cnncalc predicts" in result.stderr and hint in result.stderr and "as built" not in result.stderr


@requires_torch
@pytest.mark.parametrize(
    "spec, machine, options, title, hint",
    [
        (HUGE, None, [], "checking every row (one sample, fp32, inference)", "one sample does not fit"),
        (
            HUGE,
            None,
            ["--no-check", "--batch", "2", "--train"],
            "a training step at batch 2",
            "one sample does not fit",
        ),
        ("lenet5", 500_000, ["--no-check", "--batch", "2", "--train"], "a training step at batch 2", "lower --batch"),
        ("lenet5", 400_000, ["--batch", "4"], "inference at batch 4", "lower --batch"),
    ],
)
def test_a_run_predicted_past_the_machines_memory_is_not_started(
    tmp_path, monkeypatch, spec, machine, options, title, hint
):
    """Each allocation of such a run is small enough to be granted: the machine swaps until the
    kernel ends the process. cnncalc refuses it before building the model, from its prediction.
    lenet5 on machines said to hold 500 and 400 KB: its checks' one sample needs 289 KB, its
    training step at batch 2 839 KB (419 KB a sample), inference at batch 4 414 KB (`cnncalc memory`)."""
    import cnncalc.torch_bridge.profile as bridge

    if machine is not None:
        monkeypatch.setattr(bridge, "_cpu_total", lambda: machine)
    monkeypatch.setattr(bridge, "build", lambda *a, **k: pytest.fail("the model was built"))
    monkeypatch.setattr(bridge, "verify", lambda *a, **k: pytest.fail("the checks ran"))
    if spec == HUGE:
        (tmp_path / "huge.yaml").write_text(HUGE)
        spec = str(tmp_path / "huge.yaml")
    result = run("profile", spec, "--iters", "1", "--warmup", "0", *options)
    assert result.exit_code == ExitCode.INVALID and "Traceback" not in result.stderr
    assert f"not started: {title} needs more memory than this machine has" in result.stderr
    assert "cnncalc predicts" in result.stderr and hint in result.stderr


@requires_torch
def test_pytorch_failure_is_a_message():
    result = run("profile", "resnet18", "--input", "3x32x32", "--train", "--iters", "1", "--warmup", "0", "--no-check")
    assert (
        result.exit_code == ExitCode.INVALID and "raise --batch" in result.stderr and "Traceback" not in result.stderr
    )
    assert "layer4.0.bn1" in result.stderr  # the first row whose batch statistics have one value per channel


@requires_torch
def test_profile_analyses_the_graph_once(monkeypatch):
    """The CLI analyses once, at the run's batch and dtype; the checks, the model and the
    prediction all read that report."""
    import cnncalc.cli.pytorch
    import cnncalc.torch_bridge
    import cnncalc.torch_bridge.profile

    calls = []
    real = cnncalc.analysis.analyze

    def counted(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    for module in (cnncalc.cli.pytorch, cnncalc.torch_bridge, cnncalc.torch_bridge.profile):
        monkeypatch.setattr(module, "analyze", counted)
    result = run("profile", "lenet5", "--iters", "1", "--warmup", "0", "--batch", "3")
    assert result.exit_code == 0, result.stderr
    assert len(calls) == 1 and calls[0]["batch"] == 3


@requires_torch
def test_profile_takes_a_report_or_its_settings_not_both():
    graph = cnncalc.load("lenet5")
    with pytest.raises(ValueError, match="not both"):
        profile(graph, cnncalc.analyze(graph), batch=2)


# ----- issue 19: the terminal while profiling ---------------------------------------------------


@requires_torch
@pytest.mark.parametrize("how", [["--check-only"], ["--iters", "0"]])
def test_the_checks_run_alone(how):
    result = run("profile", "lenet5", *how)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "LeNet-5: every row checked against PyTorch, no timing (--check-only)"
    assert lines[2].endswith("all ✓") and "latency" not in result.stdout
    data = json.loads(run("profile", "lenet5", *how, "-f", "json").stdout)
    rows = len(cnncalc.analyze(cnncalc.load("lenet5")).rows) - 1
    assert set(data) == {"schema_version", "name", "checks"} and len({c["row"] for c in data["checks"]}) == rows
    assert all(c["ok"] for c in data["checks"])
    refused = run("profile", "lenet5", *how, "--no-check")
    assert refused.exit_code == ExitCode.INVALID and "leaves nothing to do" in refused.stderr


@requires_torch
def test_a_mismatch_fails_the_checks_alone(monkeypatch):
    from cnncalc.torch_bridge import profile as bridge

    monkeypatch.setattr(bridge, "verify", lambda graph, report: [Check("conv1", "weights", 150, 151)])
    result = run("profile", "lenet5", "--check-only")
    assert result.exit_code == ExitCode.MISMATCH and "  ✗ conv1: weights: cnncalc 150, PyTorch 151" in result.stdout


@requires_torch
def test_ctrl_c_while_timing_keeps_the_iterations_done():
    from cnncalc.torch_bridge.measure import TimingInterrupted, _time

    calls, seen = [], []

    def step():
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt

    with pytest.raises(TimingInterrupted) as caught:
        _time(step, 10, False, torch.device("cpu"), lambda *a, **k: seen.append((a, k)))
    t = caught.value.timing
    assert (t.iters, caught.value.total) == (3, 10) and t.p10_ms <= t.median_ms <= t.p90_ms
    assert [a for a, _ in seen] == [("timing", 1, 10), ("timing", 2, 10), ("timing", 3, 10)]
    assert all(k["note"].startswith("median ") and k["note"].endswith(" ms") for _, k in seen)  # the running median


@requires_torch
def test_ctrl_c_prints_the_statistics_so_far_and_exits_130(monkeypatch):
    from cnncalc.torch_bridge import profile as bridge

    def interrupted(step, iters, cuda, dev, progress):
        raise bridge.TimingInterrupted(bridge.Timing(1.5, 1.25, 2.0, 0, 3), iters)

    monkeypatch.setattr(bridge, "_time", interrupted)
    result = run("profile", "lenet5", "--iters", "50", "--warmup", "2", "--no-check")
    assert result.exit_code == 130
    assert result.stdout.splitlines() == [
        "interrupted after 3 of 50 timed iterations (2 warm-up before them):",
        "latency: median 1.500 ms, p10 1.250, p90 2.000 (3 timed iterations)",
    ]


def test_throughput_is_written_in_the_unit_that_reads():
    from cnncalc.cli.pytorch import rate

    assert rate(48.3e9) == "48.3 GFLOP/s"  # a CPU: 0.05 TFLOP/s printed "0.00 TFLOP/s"
    assert rate(1.2345e12) == "1.23 TFLOP/s"
    assert rate(512e6) == "512 MFLOP/s"
    assert rate(999.4e9) == "999 GFLOP/s"
