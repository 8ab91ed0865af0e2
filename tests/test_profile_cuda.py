"""`cnncalc profile --device cuda` on a machine without a GPU: a stand-in for CUDA runs every line of
the CUDA branches on the CPU, in CI.

The stand-in replaces, for one test only (pytest's monkeypatch), what profile.py calls on CUDA:
`torch.cuda.is_available`, `Event`, `synchronize`, `reset_peak_memory_stats`,
`max_memory_allocated`, `get_device_name`, `get_device_properties`, and the device move
(`nn.Module.to`, `torch.randn(device=...)` and `torch.autocast`'s device type map cuda to cpu).
profile.py itself runs unchanged: `torch.device("cuda")`, the `cuda` flags and every call into
`torch.cuda` are the ones a GPU runs. The stand-in is as strict as CUDA where a slip would break a
GPU run: the same parameter names (checked against torch's own below), a CUDA device wanted where
torch wants one, and `elapsed_time` refused on an event not yet synchronized.

What it proves is the code path, not the figures: its clock is the CPU's, its memory peak is
cnncalc's CPU measurement, its device name is made up. benchmarks/gpu_check.py measures the
figures on a real GPU (docs/gpu.md).
"""

import inspect
import json
import time
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

import cnncalc
from cnncalc.analysis import predicted_memory
from cnncalc.cli import ExitCode, app

torch = pytest.importorskip("torch", reason="needs PyTorch (the torch extra)")
import cnncalc.torch_bridge.profile as bridge  # noqa: E402  (imports torch)

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args), terminal_width=200)


def _cpu(device):
    """The device move: a CUDA device (torch.device, "cuda", "cuda:0") becomes the CPU."""
    if isinstance(device, torch.device) and device.type == "cuda":
        return torch.device("cpu")
    if isinstance(device, str) and device.startswith("cuda"):
        return "cpu"
    return device


class CudaStandIn:
    """One GPU that is the CPU. Counts what profile.py asks of it, so that a test can tell the CUDA
    branch ran (events recorded, synchronizes, peak resets) rather than the CPU one."""

    name = "cnncalc CUDA stand-in for an NVIDIA H100 (runs on the CPU)"  # "H100": PEAK_TFLOPS applies
    total_memory = 80 * 2**30

    def __init__(self, monkeypatch, *, available=True, out_of_memory=False):
        self.out_of_memory = out_of_memory
        self.events_recorded = 0
        self.synchronizes = 0
        self.peak_resets = 0
        self.cudnn_benchmark = None  # torch.backends.cudnn.benchmark while the timed steps run
        self.autocasts = []  # (device_type asked for, dtype)
        self.moved = []  # modules moved to the device
        self.inputs = []  # tensors made on the device
        self.steps = []  # the steps profile timed
        self.measured = None  # what max_memory_allocated answered

        class Event(_Event):
            standin = self

        cuda = torch.cuda
        monkeypatch.setattr(cuda, "is_available", lambda: available)
        monkeypatch.setattr(cuda, "Event", Event)
        monkeypatch.setattr(cuda, "synchronize", self.synchronize)
        monkeypatch.setattr(cuda, "reset_peak_memory_stats", self.reset_peak_memory_stats)
        monkeypatch.setattr(cuda, "max_memory_allocated", self.max_memory_allocated)
        monkeypatch.setattr(cuda, "get_device_name", self.get_device_name)
        monkeypatch.setattr(cuda, "get_device_properties", self.get_device_properties)
        # profile sets cudnn.benchmark on CUDA: put the process's value back afterwards
        monkeypatch.setattr(torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark)
        self._move(monkeypatch)

    def _move(self, monkeypatch):
        real_to, real_randn, real_autocast, real_time = torch.nn.Module.to, torch.randn, torch.autocast, bridge._time
        standin = self

        def to(module, *args, **kwargs):
            moved = [_cpu(a) for a in args], {k: _cpu(v) if k == "device" else v for k, v in kwargs.items()}
            asked = [d for d in [*args, kwargs.get("device")] if _cpu(d) is not d]
            if asked:  # a CUDA device
                _index(asked[0])
                if standin.out_of_memory:
                    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (the stand-in)")
                standin.moved.append(module)
            return real_to(module, *moved[0], **moved[1])

        def randn(*size, device=None, **kwargs):
            tensor = real_randn(*size, device=_cpu(device), **kwargs)
            if _cpu(device) is not device:
                standin.inputs.append(tensor)
            return tensor

        def autocast(device_type, *args, **kwargs):
            standin.autocasts.append((device_type, kwargs.get("dtype")))
            return real_autocast(_cpu(device_type), *args, **kwargs)

        def timed(step, *args, **kwargs):  # the real _time, with its step noted for the memory peak
            standin.steps.append(step)
            return real_time(step, *args, **kwargs)

        monkeypatch.setattr(torch.nn.Module, "to", to)
        monkeypatch.setattr(torch, "randn", randn)
        monkeypatch.setattr(torch, "autocast", autocast)
        monkeypatch.setattr(bridge, "_time", timed)

    # torch.cuda's functions, with torch's parameter names (test_the_standin_has_torchs_signatures)
    def synchronize(self, device=None):
        _index(device)
        self.synchronizes += 1

    def reset_peak_memory_stats(self, device=None):
        _index(device)
        self.peak_resets += 1
        self.cudnn_benchmark = torch.backends.cudnn.benchmark

    def max_memory_allocated(self, device=None):
        """cnncalc's CPU measurement of one more step of the model moved here (what `--device cpu`
        reports), in place of the CUDA allocator's peak."""
        _index(device)
        if not self.peak_resets:
            raise RuntimeError("the stand-in: max_memory_allocated read with no reset_peak_memory_stats")
        model = self.moved[-1]
        self.measured = bridge._cpu_memory(model, self.inputs[-1], self.steps[-1])
        return self.measured

    def get_device_name(self, device=None):
        _index(device)
        return self.name

    def get_device_properties(self, device=None):
        _index(device)
        return SimpleNamespace(
            name=self.name, total_memory=self.total_memory, major=9, minor=0, multi_processor_count=132
        )


def _index(device):
    """The device index torch.cuda reads from `device`, refusing what torch refuses."""
    if device is None or isinstance(device, int):
        index = device or 0
    else:
        device = torch.device(device)
        if device.type != "cuda":
            raise ValueError(f"Expected a cuda device, but got: {device}")
        index = device.index or 0
    if index != 0:
        raise RuntimeError("CUDA error: invalid device ordinal (the stand-in has one GPU)")
    return index


class _Event:
    """torch.cuda.Event on a monotonic clock. As on a GPU, elapsed_time needs both events created
    with enable_timing, recorded, and complete: a synchronize (the device's or the event's) after
    the record, since the GPU runs behind the CPU."""

    standin: CudaStandIn

    def __init__(self, enable_timing=False, blocking=False, interprocess=False, external=False):
        self.enable_timing = enable_timing
        self._at = self._recorded_before_sync = None
        self._synchronized = False

    def record(self, stream=None):
        self._at = time.perf_counter()
        self._recorded_before_sync = self.standin.synchronizes
        self._synchronized = False
        self.standin.events_recorded += 1

    def synchronize(self):
        self._synchronized = True

    def query(self):
        return self._at is not None and (self._synchronized or self.standin.synchronizes > self._recorded_before_sync)

    def elapsed_time(self, end_event):
        if not (self.enable_timing and end_event.enable_timing):
            raise RuntimeError("Both events must be created with argument 'enable_timing=True'.")
        if self._at is None or end_event._at is None:
            raise RuntimeError("Both events must be recorded before calculating elapsed time.")
        if not (self.query() and end_event.query()):
            raise RuntimeError("CUDA error: device not ready (the stand-in: elapsed_time before a synchronize)")
        return (end_event._at - self._at) * 1e3


@pytest.fixture
def cuda_standin(monkeypatch):
    return CudaStandIn(monkeypatch)


# --- the stand-in itself -------------------------------------------------------------------------


def test_the_standin_has_torchs_signatures():
    """Every function and Event method the stand-in replaces exists in torch with the same
    parameters, so a call profile.py makes of the stand-in is one torch accepts."""
    standin = CudaStandIn.__new__(CudaStandIn)
    for name in (
        "synchronize",
        "reset_peak_memory_stats",
        "max_memory_allocated",
        "get_device_name",
        "get_device_properties",
    ):
        ours = list(inspect.signature(getattr(standin, name)).parameters)
        assert ours == list(inspect.signature(getattr(torch.cuda, name)).parameters), name
    for name in ("record", "synchronize", "query", "elapsed_time"):
        ours = list(inspect.signature(getattr(_Event, name)).parameters)
        assert ours == list(inspect.signature(getattr(torch.cuda.Event, name)).parameters), name
    ours = list(inspect.signature(_Event.__init__).parameters)[1:]
    assert ours == list(inspect.signature(torch.cuda.Event.__new__).parameters)[1:]


def test_the_standin_is_as_strict_as_cuda(cuda_standin):
    """The slips that would break a GPU run break here too: timing before a synchronize, an event
    made without enable_timing, a CPU device handed to torch.cuda."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    end.record()
    with pytest.raises(RuntimeError, match="device not ready"):
        start.elapsed_time(end)
    torch.cuda.synchronize()
    assert start.elapsed_time(end) >= 0
    untimed = torch.cuda.Event()
    untimed.record()
    with pytest.raises(RuntimeError, match="enable_timing"):
        start.elapsed_time(untimed)
    with pytest.raises(ValueError, match="Expected a cuda device"):
        torch.cuda.synchronize(torch.device("cpu"))
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        torch.cuda.get_device_properties("cuda:1")
    with pytest.raises(RuntimeError, match="no reset_peak_memory_stats"):
        torch.cuda.max_memory_allocated()


def test_the_standin_leaves_nothing_behind(monkeypatch):
    before = (
        torch.cuda.is_available,
        torch.cuda.Event,
        torch.nn.Module.to,
        torch.randn,
        torch.autocast,
        bridge._time,
        torch.backends.cudnn.benchmark,
    )
    with monkeypatch.context() as patch:
        CudaStandIn(patch)
        torch.backends.cudnn.benchmark = not before[-1]
        assert torch.cuda.is_available() is True
    after = (
        torch.cuda.is_available,
        torch.cuda.Event,
        torch.nn.Module.to,
        torch.randn,
        torch.autocast,
        bridge._time,
        torch.backends.cudnn.benchmark,
    )
    assert after == before


# --- profile --device cuda through the stand-in --------------------------------------------------


def test_inference(cuda_standin):
    """Checks, then the CUDA event clock (two events per timed step, read after one synchronize),
    the peak reset after the warm-up and read from max_memory_allocated, the device's name and its
    peak TFLOP/s."""
    result = run("profile", "lenet5", "--device", "cuda", "--batch", "2", "--iters", "3", "--warmup", "2")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    rows = len(cnncalc.load("lenet5").nodes) - 1
    assert f"inference on cuda ({CudaStandIn.name})" in out and "cudnn.benchmark on" in out
    assert f"checks against PyTorch (batch 1, CPU, fp32): {rows} rows x " in out and "all ✓" in out
    assert "3 timed iterations after 2 warm-up" in out
    assert f"of the {bridge.PEAK_TFLOPS['H100']['fp32']:g} TFLOP/s peak" in out
    assert "torch.cuda.max_memory_allocated" in out
    assert cuda_standin.events_recorded == 2 * 3 and cuda_standin.synchronizes == 2  # before the reset, after timing
    assert cuda_standin.peak_resets == 1 and cuda_standin.cudnn_benchmark is True
    assert cuda_standin.autocasts == [] and len(cuda_standin.moved) == 1


def test_json_reports_what_the_device_answered(cuda_standin):
    result = run(
        "profile",
        "lenet5",
        "--device",
        "cuda:0",
        "--batch",
        "2",
        "--iters",
        "2",
        "--warmup",
        "1",
        "--no-check",
        "--no-cudnn-benchmark",
        "-f",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["device"] == "cuda:0" and data["device_name"] == CudaStandIn.name
    assert data["memory_measured_bytes"] == cuda_standin.measured > 0
    graph = cnncalc.load("lenet5")
    report = cnncalc.analyze(graph, batch=2)
    assert data["memory_predicted_bytes"] == predicted_memory(report, False)
    assert data["cudnn_benchmark"] is False and cuda_standin.cudnn_benchmark is False
    assert data["peak_tflops"] == bridge.PEAK_TFLOPS["H100"]["fp32"] and data["checks"] == []


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_training_step(cuda_standin, dtype):
    result = run(
        "profile",
        "lenet5",
        "--device",
        "cuda",
        "--train",
        "--dtype",
        dtype,
        "--batch",
        "2",
        "--iters",
        "2",
        "--warmup",
        "1",
        "--no-check",
        "-f",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["train"] is True and cuda_standin.moved[-1].training
    assert cuda_standin.autocasts == ([] if dtype == "fp32" else [("cuda", torch.bfloat16)])
    assert data["flops_per_step"] == 2 * cnncalc.analyze(cnncalc.load("lenet5")).totals.macs * 2 * 3
    assert data["memory_measured_bytes"] == cuda_standin.measured
    report = cnncalc.analyze(cnncalc.load("lenet5"), batch=2, dtype=cnncalc.DType(dtype))
    assert data["memory_predicted_bytes"] == predicted_memory(report, True)


@pytest.mark.parametrize("train", [False, True])
def test_per_layer(cuda_standin, train):
    """The per-layer pass: an event before and after every leaf in each of `--iters` steps, read
    after its own synchronize; every row of the table timed."""
    iters, leaves = 2, len(cnncalc.load("lenet5").nodes) - 1
    options = ["--train"] if train else []
    result = run(
        "profile",
        "lenet5",
        "--device",
        "cuda",
        "--batch",
        "2",
        "--iters",
        str(iters),
        "--warmup",
        "1",
        "--no-check",
        "--per-layer",
        *options,
    )
    assert result.exit_code == 0, result.stderr
    assert cuda_standin.events_recorded == 2 * iters + 2 * iters * leaves
    assert cuda_standin.synchronizes == 3
    assert ("forward only" if train else "per layer (inference") in result.stdout
    assert "slowest: " in result.stdout and "sum of layers" in result.stdout
    rows = [n.name for n in cnncalc.load("lenet5").nodes[1:]]
    table = [line.split()[0] for line in result.stdout.splitlines() if line.split()[:1] and line.split()[0] in rows]
    assert table == rows


def test_bf16_autocasts_on_the_device(cuda_standin):
    result = run(
        "profile",
        "lenet5",
        "--device",
        "cuda",
        "--dtype",
        "bf16",
        "--batch",
        "2",
        "--iters",
        "2",
        "--warmup",
        "1",
        "--no-check",
    )
    assert result.exit_code == 0, result.stderr
    assert cuda_standin.autocasts == [("cuda", torch.bfloat16)]
    assert "autocast to bf16 (weights stay fp32)" in result.stdout
    assert f"of the {bridge.PEAK_TFLOPS['H100']['bf16']:g} TFLOP/s peak" in result.stdout


def test_channels_last(cuda_standin):
    result = run(
        "profile",
        "lenet5",
        "--device",
        "cuda",
        "--channels-last",
        "--batch",
        "2",
        "--iters",
        "2",
        "--warmup",
        "1",
        "--no-check",
    )
    assert result.exit_code == 0, result.stderr
    assert "channels-last on" in result.stdout
    (model,) = cuda_standin.moved
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()


@pytest.mark.parametrize("train, run_name", [(False, "(inference)"), (True, "(a training step)")])
def test_out_of_memory_is_a_message(monkeypatch, train, run_name):
    """CUDA's OutOfMemoryError becomes the message with cnncalc's prediction and the GPU's size
    (get_device_properties(...).total_memory), exit 1, no traceback."""
    CudaStandIn(monkeypatch, out_of_memory=True)
    options = ["--train"] if train else []
    result = run("profile", "lenet5", "--device", "cuda", "--batch", "4", "--no-check", "--iters", "1", *options)
    assert result.exit_code == ExitCode.INVALID and "Traceback" not in result.stderr
    assert f"CUDA ran out of memory at batch 4 {run_name}" in result.stderr
    predicted = predicted_memory(cnncalc.analyze(cnncalc.load("lenet5"), batch=4), train)
    assert f"cnncalc predicts {bridge.human_bytes(predicted)} for this run; the GPU has 80.0 GiB" in result.stderr
    assert "lower --batch" in result.stderr


def test_a_cuda_build_without_a_gpu_says_so(monkeypatch):
    CudaStandIn(monkeypatch, available=False)
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    result = run("profile", "lenet5", "--device", "cuda")
    assert result.exit_code == ExitCode.INVALID and "Traceback" not in result.stderr
    assert "PyTorch sees no CUDA GPU here" in result.stderr and "(cuda build: 12.4)" in result.stderr


def test_an_unknown_device_is_a_message_before_the_checks(monkeypatch):
    monkeypatch.setattr(bridge, "verify", lambda *a: pytest.fail("the checks ran for a device torch does not know"))
    result = run("profile", "lenet5", "--device", "gpu")
    assert result.exit_code == ExitCode.INVALID and "Traceback" not in result.stderr
    assert "--device names no device PyTorch knows" in result.stderr and "cpu, cuda or cuda:N" in result.stderr


def test_progress_is_reported_from_the_cuda_loops(cuda_standin):
    """The progress callback (the CLI's bar on a terminal) hears every warm-up, timed and
    per-layer step, the timed ones from the CUDA event loop."""
    heard = []
    bridge.profile(
        cnncalc.load("lenet5"),
        device="cuda",
        batch=2,
        warmup=1,
        iters=2,
        check=False,
        per_layer=True,
        progress=lambda phase, done, total: heard.append((phase, done, total)),
    )
    assert heard == [("warm-up", 1, 1), ("timing", 1, 2), ("timing", 2, 2), ("per-layer", 1, 2), ("per-layer", 2, 2)]


@pytest.mark.parametrize(
    "name, option, peak",
    [
        ("cnncalc CUDA stand-in for an NVIDIA A100 (runs on the CPU)", [], bridge.PEAK_TFLOPS["A100"]["fp32"]),
        ("cnncalc CUDA stand-in for a GPU cnncalc has no figures for", [], None),
        ("cnncalc CUDA stand-in for a GPU cnncalc has no figures for", ["--peak-tflops", "123"], 123.0),
    ],
)
def test_peak_tflops_by_device_name(cuda_standin, name, option, peak):
    """The peak comes from the name the device gives (a fragment of it), or from --peak-tflops;
    a GPU with no figures gets no percentage."""
    cuda_standin.name = name
    result = run("profile", "lenet5", "--device", "cuda", "--iters", "1", "--warmup", "0", "--no-check", *option)
    assert result.exit_code == 0, result.stderr
    assert name in result.stdout
    assert (f"of the {peak:g} TFLOP/s peak" in result.stdout) if peak else ("TFLOP/s peak" not in result.stdout)


def test_a_gpu_that_is_not_there_is_a_message(cuda_standin):
    """--device cuda:1 on a machine of one GPU: the device move fails (CUDA's invalid device
    ordinal), and the message is PyTorch's reason, exit 1, no traceback."""
    result = run("profile", "lenet5", "--device", "cuda:1", "--iters", "1", "--warmup", "0", "--no-check")
    assert result.exit_code == ExitCode.INVALID and "Traceback" not in result.stderr
    assert "PyTorch failed while running the model" in result.stderr and "invalid device ordinal" in result.stderr
