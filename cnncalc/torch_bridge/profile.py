"""`cnncalc profile`: check every row against PyTorch, then time the real model on CPU or CUDA.

Part of the bridge (the one door to torch). Returns frozen results; the CLI prints them. Timing
follows the usual care: warm-up iterations first, CUDA events and a synchronize on the GPU, no
hooks attached while timing, inference under `torch.inference_mode()`, cudnn.benchmark on by
default; reduced precision is autocast (weights stay fp32), as in mixed-precision training.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys
import time
from dataclasses import replace
from typing import Any, Callable, Iterator, Sequence

import torch

from ..analysis import DType, Report, analyze
from ..analysis.budget import Optimizer, memory_budget, recompute, segments
from ..analysis.conventions import Convention, count
from ..errors import CnncalcError
from ..graph import Graph
from ..layers import Shape
from ..records import record
from ..render.cells import human_bytes
from . import (
    build,
    flop_counts,
    fvcore_counts,
    leaf_modules,
    out_of_memory,
    parameter_counts,
    refusal_hint,
    traced_shapes,
)

# Dense peak TFLOP/s by device name fragment and dtype (vendor data sheets). fp32 is the TF32
# tensor-core figure: cuDNN runs fp32 convolutions in TF32 by default.
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"fp32": 494.7, "bf16": 989.4, "fp16": 989.4},
    "H100": {"fp32": 494.7, "bf16": 989.4, "fp16": 989.4},  # SXM; the PCIe card is lower
    "A100": {"fp32": 156.0, "bf16": 312.0, "fp16": 312.0},
    "L4": {"fp32": 60.0, "bf16": 121.0, "fp16": 121.0},
    "V100": {"fp32": 15.7, "fp16": 125.0},
}

Progress = Callable[..., None]  # (phase, done, total, note=""): note, the running median while timing


class TimingInterrupted(CnncalcError):
    """Ctrl-C while timing: the statistics of the iterations done (`timing`, None when none was)."""

    def __init__(self, timing: Timing | None, total: int) -> None:
        done = f"{timing.iters} of {total}" if timing else f"0 of {total}"
        super().__init__(f"interrupted after {done} timed iterations")
        self.timing = timing
        self.total = total


@record
class Check:
    row: str
    quantity: str  # shape, weights, biases, buffers, MACs (FlopCounterMode), fvcore
    ours: Any
    theirs: Any

    @property
    def ok(self) -> bool:
        return self.ours == self.theirs


# torch.utils.benchmark warns when the interquartile range passes 10% of the median; p10..p90
# spans about twice the quartiles, so a 20% spread between them is the same alarm
NOISY_SPREAD = 1.2


@record
class Timing:
    median_ms: float
    p10_ms: float
    p90_ms: float
    warmup: int
    iters: int

    @property
    def spread(self) -> float:
        """p90 / p10 of the timed iterations: 1.0 for a quiet machine."""
        return self.p90_ms / self.p10_ms if self.p10_ms > 0 else float("inf")

    @property
    def noisy(self) -> bool:
        return self.spread > NOISY_SPREAD


@record
class LayerTime:
    """One leaf layer's forward time from the separate `--per-layer` pass."""

    row: str
    kind: str
    median_ms: float
    flops: int  # 2 x MACs x batch, forward only

    @property
    def tflops(self) -> float | None:
        return self.flops / (self.median_ms / 1e3) / 1e12 if self.flops and self.median_ms > 0 else None


@record
class Profile:
    name: str
    device: str
    device_name: str
    torch_version: str
    batch: int
    dtype: DType
    precision: str  # how the dtype was applied
    channels_last: bool
    compiled: bool
    train: bool
    cudnn_benchmark: bool
    checks: tuple[Check, ...]
    timing: Timing
    flops_per_step: int  # from cnncalc's MACs: 2 x MACs x batch (x3 for a training step)
    peak_tflops: float | None
    memory_predicted: int | None  # bytes
    memory_measured: int | None  # bytes
    layers: tuple[LayerTime, ...] = ()  # with per_layer, in execution order

    @property
    def samples_per_s(self) -> float:
        return self.batch / (self.timing.median_ms / 1e3)

    @property
    def tflops(self) -> float:
        return self.flops_per_step / (self.timing.median_ms / 1e3) / 1e12

    @property
    def mismatches(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def layers_ms(self) -> float:
        """The per-layer medians summed (what the end-to-end time spends outside layers is the rest)."""
        return sum(layer.median_ms for layer in self.layers)

    def share(self, layer: LayerTime) -> float:
        """`layer`'s fraction of the summed per-layer time."""
        return layer.median_ms / self.layers_ms if self.layers_ms else 0.0


def verify(graph: Graph, report: Report | None = None, input_shape: Shape | None = None) -> list[Check]:
    """Every row against PyTorch (CPU, batch 1, fp32): shapes from forward hooks, parameter and
    buffer counts from the real tensors, MACs from FlopCounterMode and fvcore's convention.
    `report` is the graph's analysis (any batch and dtype: the checks are per sample), made here
    from `input_shape` when not given."""
    report = _analysis(graph, report, input_shape)
    model = build(graph, report=report).eval()
    x = torch.randn(1, *report.input_shape)
    shapes = traced_shapes(model, x)
    flops = flop_counts(model, x)
    fvcore = fvcore_counts(model, x)
    ours_fvcore = count(graph, report, Convention.FVCORE).rows
    leaves = leaf_modules(model)
    checks: list[Check] = []
    for row in report.rows[1:]:
        weights, biases, buffers = parameter_counts(leaves[row.name])
        checks += [
            Check(row.name, "shape", row.output_shape, shapes.get(row.name)),
            Check(row.name, "weights", row.weights, weights),
            Check(row.name, "biases", row.biases, biases),
            Check(row.name, "buffers", row.buffers, buffers),
            Check(row.name, "MACs (FlopCounterMode / 2)", row.macs, flops.get(row.name, 0) // 2),
        ]
        if fvcore is not None:
            checks.append(Check(row.name, "fvcore", ours_fvcore[row.name], fvcore.get(row.name, 0)))
    return checks


def _analysis(graph: Graph, report: Report | None, input_shape: Shape | None, **settings: Any) -> Report:
    """The caller's report, or the graph analysed here; never both a report and its settings."""
    if report is None:
        return analyze(graph, input_shape=input_shape, **{k: v for k, v in settings.items() if v is not None})
    if input_shape is not None or any(v is not None for v in settings.values()):
        raise ValueError("pass either a report or the input shape, batch and dtype to analyse with, not both")
    return report


def profile(
    graph: Graph,
    report: Report | None = None,
    *,
    input_shape: Shape | None = None,
    device: str = "cpu",
    batch: int | None = None,
    dtype: DType | None = None,
    channels_last: bool = False,
    compile: bool = False,
    warmup: int = 10,
    iters: int = 50,
    train: bool = False,
    cudnn_benchmark: bool = True,
    peak_tflops: float | None = None,
    check: bool = True,
    per_layer: bool = False,
    progress: Progress | None = None,
    optimizer: Optimizer = Optimizer.MOMENTUM,
    checkpoint: Sequence[str] = (),
) -> Profile:
    """Check `graph` against PyTorch and time it. `report` is its one analysis at the run's input,
    batch and dtype (the CLI passes the one it made); without it, the graph is analysed here from
    `input_shape`, `batch` (1) and `dtype` (fp32). The checks, the model and the prediction all
    read that one report. A training step runs `optimizer`, with the `checkpoint` blocks under
    torch.utils.checkpoint."""
    report = _analysis(graph, report, input_shape, batch=batch, dtype=dtype)
    batch, dtype = report.batch, report.dtype
    try:
        dev = torch.device(device)
    except RuntimeError:  # before the checks, which take seconds
        raise CnncalcError(
            "--device names no device PyTorch knows", received=device, expected="cpu, cuda or cuda:N"
        ) from None
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise CnncalcError(
            "--device cuda, but PyTorch sees no CUDA GPU here",
            received=f"torch {torch.__version__} (cuda build: {torch.version.cuda or 'no'})",
            hint="use --device cpu, or install a CUDA build of torch on a machine with a GPU",
        )
    if dtype not in (DType.FP32, DType.FP16, DType.BF16):
        raise CnncalcError("profile runs fp32, fp16 or bf16", received=dtype.value)
    try:
        if progress and check:
            progress("checking every row against PyTorch", 0, None)
        checks = tuple(verify(graph, report)) if check else ()
        if progress and check:
            progress("checking every row against PyTorch", 1, 1)
    except (RuntimeError, MemoryError) as err:
        if not out_of_memory(err):
            raise
        one = memory_budget(replace(report, batch=1, dtype=DType.FP32), train=False).total_bytes  # the checks' run
        raise _ran_out("the CPU", 1, one, _cpu_total(), "checking every row (one sample, fp32, inference)") from None
    if cuda:
        torch.backends.cudnn.benchmark = cudnn_benchmark
    recomputed = recompute(graph, report, checkpoint) if train and checkpoint else None
    predicted = memory_budget(report, train, optimizer, checkpoint=recomputed).total_bytes
    try:
        model = build(graph, report=report).checkpoint(segments(graph, checkpoint) if train else ()).to(dev)
        x = torch.randn(batch, *report.input_shape, device=dev)
        if channels_last and x.dim() == 4:
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            x = x.contiguous(memory_format=torch.channels_last)
        model.train(train)
        runner = torch.compile(model) if compile else model
        autocast = (
            torch.autocast(dev.type, dtype=getattr(torch, {"fp16": "float16", "bf16": "bfloat16"}[dtype.value]))
            if dtype is not DType.FP32
            else None
        )
        step = _training_step(runner, model, x, autocast, optimizer) if train else _inference_step(runner, x, autocast)
        _repeat(step, warmup, "warm-up", progress)
        if cuda:
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        try:
            times = _time(step, iters, cuda, dev, progress)
        except TimingInterrupted as err:  # the warm-up's count belongs to the statistics too
            err.timing = replace(err.timing, warmup=warmup) if err.timing else None
            raise
        measured = torch.cuda.max_memory_allocated(dev) if cuda else _cpu_memory(model, x, step)
        layers: tuple[LayerTime, ...] = ()
        if per_layer:  # a separate pass, after the end-to-end figures: its hooks never touch those
            eager = (
                _training_step(model, model, x, autocast, optimizer) if train else _inference_step(model, x, autocast)
            )
            layers = time_layers(graph, report, model, eager, iters, cuda, dev, progress)
    except (RuntimeError, ValueError, MemoryError) as err:
        if out_of_memory(err):
            total = torch.cuda.get_device_properties(dev).total_memory if cuda else _cpu_total()
            raise _ran_out(
                "CUDA" if cuda else "the CPU", batch, predicted, total, "a training step" if train else "inference"
            ) from None
        raise CnncalcError(
            "PyTorch failed while running the model", received=str(err).splitlines()[0], hint=refusal_hint(err)
        ) from None
    name = torch.cuda.get_device_name(dev) if cuda else _cpu_name()
    steps = 3 if train else 1  # a backward pass costs about twice the forward
    peak = peak_tflops if peak_tflops is not None else (_peak(name, dtype) if cuda else None)
    return Profile(
        graph.name,
        str(dev),
        name,
        torch.__version__,
        batch,
        dtype,
        "fp32" if dtype is DType.FP32 else f"autocast to {dtype.value} (weights stay fp32)",
        channels_last,
        compile,
        train,
        cudnn_benchmark if cuda else False,
        checks,
        _timing(times, warmup) or Timing(0.0, 0.0, 0.0, warmup, 0),  # iters >= 1: never the fallback
        2 * report.totals.macs * batch * steps,
        peak,
        predicted,
        measured,
        layers,
    )


def _ran_out(where: str, batch: int, predicted: int, total: int | None, run: str) -> CnncalcError:
    has = f"; {'the GPU' if where == 'CUDA' else 'this machine'} has {human_bytes(total)}" if total else ""
    hint = (
        "lower --batch (memory grows about linearly with it), or use --dtype bf16"
        if batch > 1
        else "one sample does not fit: the static commands give every figure without running the network "
        "(cnncalc summary, cnncalc memory)"
    )
    return CnncalcError(
        f"{where} ran out of memory at batch {batch} ({run})",
        received=f"cnncalc predicts {human_bytes(predicted)} for this run{has}",
        hint=hint,
    )


def _cpu_total() -> int | None:
    """This machine's physical memory in bytes, where the OS says (Linux, macOS)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _cpu_memory(model: torch.nn.Module, x: torch.Tensor, step: Callable[[], None]) -> int:
    """Peak bytes of one more step on the CPU, measured in a pass of its own (the profiler's
    bookkeeping would perturb the timing): what is held before it, plus what it allocates."""
    held = _bytes([*model.parameters(), *model.buffers(), x])
    if isinstance(step, _TrainingStep):
        model.zero_grad(set_to_none=True)  # so that every free in the measured step has its allocation
        held += optimizer_state_bytes(step.optimizer)  # made by the first step
    return held + cpu_peak(step)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of the tensors in `optimizer.state` (momentum buffers, Adam's moments and step counters)."""
    return sum(t.nbytes for state in optimizer.state.values() for t in state.values() if isinstance(t, torch.Tensor))


def make_optimizer(optimizer: Optimizer, parameters: Any) -> torch.optim.Optimizer:
    """The torch.optim optimizer `optimizer` names, at its defaults (SGD's momentum: 0.9)."""
    if optimizer is Optimizer.ADAM:
        return torch.optim.Adam(parameters, lr=1e-3)
    if optimizer is Optimizer.ADAMW:
        return torch.optim.AdamW(parameters, lr=1e-3)
    return torch.optim.SGD(parameters, lr=1e-3, momentum=0.9 if optimizer is Optimizer.MOMENTUM else 0.0)


def cpu_peak(step: Callable[[], None]) -> int:
    """Most bytes allocated at once while `step` runs on the CPU, above what was allocated before:
    the profiler's memory records (each operator's own allocations, and the frees between
    operators) replayed in time order."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with _native_stderr_silenced(), torch_profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    changes = []
    for event in prof.events():
        delta = event.cpu_memory_usage if event.name == "[memory]" else event.self_cpu_memory_usage
        if delta:
            changes.append((event.time_range.start, delta))
    live = peak = 0
    for _, delta in sorted(changes):
        live += delta
        peak = max(peak, live)
    return peak


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """The profiler's C++ side prints start/stop lines straight to file descriptor 2; hide them."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _bytes(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _inference_step(runner: Any, x: torch.Tensor, autocast: Any) -> Callable[[], None]:
    def step() -> None:
        with torch.inference_mode():
            if autocast is not None:
                with autocast:
                    runner(x)
            else:
                runner(x)

    return step


def _loss(out: Any) -> torch.Tensor:
    """A scalar that reads every output (a network with `outputs:` returns a tuple, list or dict)."""
    tensors = list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, (tuple, list)) else [out]
    return sum((t.float().mean() for t in tensors[1:]), tensors[0].float().mean())


class _TrainingStep:
    """One training step: zero the gradients, forward (under autocast where given), backward, and
    the optimizer's step; `optimizer` keeps its state between calls."""

    def __init__(self, runner: Any, model: torch.nn.Module, x: torch.Tensor, autocast: Any, kind: Optimizer) -> None:
        self.runner, self.x, self.autocast = runner, x, autocast
        self.optimizer = make_optimizer(kind, model.parameters())

    def __call__(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if self.autocast is not None:
            with self.autocast:
                loss = _loss(self.runner(self.x))
        else:
            loss = _loss(self.runner(self.x))
        loss.backward()
        self.optimizer.step()


def _training_step(
    runner: Any, model: torch.nn.Module, x: torch.Tensor, autocast: Any, kind: Optimizer = Optimizer.MOMENTUM
) -> _TrainingStep:
    return _TrainingStep(runner, model, x, autocast, kind)


def _time(
    step: Callable[[], None], iters: int, cuda: bool, dev: torch.device, progress: Progress | None
) -> list[float]:
    """Milliseconds per iteration: CUDA events around each step on the GPU, perf_counter on CPU."""
    times: list[float] = []
    if cuda:
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(iters)]
        done = 0
        try:
            for i, (start, end) in enumerate(events):
                start.record()
                step()
                end.record()
                done = i + 1
                if progress:
                    progress("timing", i + 1, iters)
        except KeyboardInterrupt:
            torch.cuda.synchronize(dev)
            raise TimingInterrupted(_timing([s.elapsed_time(e) for s, e in events[:done]], 0), iters) from None
        torch.cuda.synchronize(dev)
        return [start.elapsed_time(end) for start, end in events]
    try:
        for i in range(iters):
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1e3)
            if progress:  # the running median: a noisy machine shows while it runs
                progress("timing", i + 1, iters, note=f"median {statistics.median(times):.3f} ms")
    except KeyboardInterrupt:
        raise TimingInterrupted(_timing(times, 0), iters) from None
    return times


def _timing(times: Sequence[float], warmup: int) -> Timing | None:
    """The statistics of `times` (None when empty)."""
    if not times:
        return None
    return Timing(statistics.median(times), _percentile(times, 10), _percentile(times, 90), warmup, len(times))


def time_layers(
    graph: Graph,
    report: Report,
    model: torch.nn.Module,
    step: Callable[[], None],
    iters: int,
    cuda: bool,
    dev: torch.device,
    progress: Progress | None,
) -> tuple[LayerTime, ...]:
    """Each leaf layer's forward time: a pre-hook and a hook around every leaf record CUDA events
    (perf_counter on CPU) for `iters` steps of the eager model; the hooks are removed before return."""
    leaves = leaf_modules(model)  # type: ignore[arg-type]
    marks: dict[str, list[list[Any]]] = {name: [] for name in leaves}
    clock = _cuda_event if cuda else time.perf_counter
    handles = []
    for name, module in leaves.items():

        def before(_module: Any, _inputs: Any, name: str = name) -> None:
            marks[name].append([clock(), None])

        def after(_module: Any, _inputs: Any, _output: Any, name: str = name) -> None:
            marks[name][-1][1] = clock()

        handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    try:
        _repeat(step, iters, "per-layer", progress)
        if cuda:
            torch.cuda.synchronize(dev)
    finally:
        for handle in handles:
            handle.remove()
    kinds = {node.name: node.kind for node in graph.nodes}
    result = []
    for row in report.rows[1:]:
        spans = [start.elapsed_time(end) if cuda else (end - start) * 1e3 for start, end in marks[row.name]]
        result.append(LayerTime(row.name, kinds[row.name], statistics.median(spans), 2 * row.macs * report.batch))
    return tuple(result)


def _cuda_event() -> Any:
    event = torch.cuda.Event(enable_timing=True)
    event.record()
    return event


def _repeat(step: Callable[[], None], count: int, phase: str, progress: Progress | None) -> None:
    for i in range(count):
        step()
        if progress:
            progress(phase, i + 1, count)


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _peak(name: str, dtype: DType) -> float | None:
    for key, table in PEAK_TFLOPS.items():
        if key in name:
            return table.get(dtype.value)
    return None


def _cpu_name() -> str:
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
