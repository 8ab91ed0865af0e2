"""`cnncalc profile`: check every row against PyTorch, then time the real model on CPU or CUDA.

Part of the bridge (the one door to torch). Returns frozen results; the CLI prints them. Timing
follows the usual care: warm-up iterations first, CUDA events and a synchronize on the GPU, no
hooks attached while timing, inference under `torch.inference_mode()`, cudnn.benchmark on by
default; reduced precision is autocast (weights stay fp32), as in mixed-precision training.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

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
    fvcore_counts,
    leaf_modules,
    out_of_memory,
    parameter_counts,
    refusal_hint,
    shapes_and_flops,
)
from .measure import (
    LayerTime,
    Progress,
    Timing,
    TimingInterrupted,
    _cpu_memory,
    _cpu_total,
    _inference_step,
    _repeat,
    _time,
    _timing,
    _training_step,
    time_layers,
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


@record
class Check:
    row: str
    quantity: str  # shape, weights, biases, buffers, MACs (FlopCounterMode), fvcore
    ours: Any
    theirs: Any

    @property
    def ok(self) -> bool:
        return self.ours == self.theirs


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
    shapes, flops = shapes_and_flops(model, x)
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
    if not dtype.profiled:
        raise CnncalcError(
            "profile runs fp32, fp64, or fp16/bf16 under autocast",
            received=dtype.value,
            hint="int8 sizes bytes only: PyTorch's quantized models pack their weights their own way",
        )
    recomputed = recompute(graph, report, checkpoint) if train and checkpoint else None
    predicted = memory_budget(report, train, optimizer, checkpoint=recomputed).total_bytes
    # on the CPU, a run cnncalc predicts past the machine's memory is refused before it starts: its
    # allocations, each one small enough, would push the machine into swap until the kernel ends
    # the process (the allocator refuses only a single allocation too large to map)
    machine = None if cuda else _cpu_total()
    if machine and check and (one := _checks_bytes(report)) > machine:
        raise _ran_out("the CPU", 1, one, machine, _CHECKS_RUN, ran=False)
    if machine and predicted > machine:
        run = f"{'a training step' if train else 'inference'} at batch {batch}"
        raise _ran_out("the CPU", batch, predicted, machine, run, ran=False)
    try:
        if progress and check:
            progress("checking every row against PyTorch", 0, None)
        checks = tuple(verify(graph, report)) if check else ()
        if progress and check:
            progress("checking every row against PyTorch", 1, 1)
    except (RuntimeError, MemoryError) as err:
        if not out_of_memory(err):
            raise
        one = _checks_bytes(report)
        raise _ran_out("the CPU", 1, one, _cpu_total(), _CHECKS_RUN) from None
    if cuda:
        torch.backends.cudnn.benchmark = cudnn_benchmark
    try:
        model = build(graph, report=report).checkpoint(segments(graph, checkpoint) if train else ()).to(dev)
        x = torch.randn(batch, *report.input_shape, device=dev)
        if dtype is DType.FP64:  # the model cast, not autocast: weights, buffers and input in fp64
            model, x = model.double(), x.double()
        if channels_last and x.dim() == 4:
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            x = x.contiguous(memory_format=torch.channels_last)
        model.train(train)
        runner = torch.compile(model) if compile else model
        autocast = (
            torch.autocast(dev.type, dtype=getattr(torch, {"fp16": "float16", "bf16": "bfloat16"}[dtype.value]))
            if dtype.autocast
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
        f"autocast to {dtype.value} (weights stay fp32)" if dtype.autocast else f"{dtype.value} (the model cast)",
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


_CHECKS_RUN = "checking every row (one sample, fp32, inference)"


def _checks_bytes(report: Report) -> int:
    """What the checks' run needs: one sample, fp32, inference."""
    return memory_budget(replace(report, batch=1, dtype=DType.FP32), train=False).total_bytes


def _ran_out(where: str, batch: int, predicted: int, total: int | None, run: str, ran: bool = True) -> CnncalcError:
    """The message for a run that ran out of memory, or (`ran=False`) that cnncalc refused before
    it started, its prediction being more than the machine has."""
    has = f"; {'the GPU' if where == 'CUDA' else 'this machine'} has {human_bytes(total)}" if total else ""
    hint = (
        "lower --batch (memory grows about linearly with it), or use --dtype bf16"
        if batch > 1 and (not total or predicted // batch < total)
        else "one sample does not fit: the static commands give every figure without running the network "
        "(cnncalc summary, cnncalc memory)"
    )
    return CnncalcError(
        f"{where} ran out of memory at batch {batch} ({run})"
        if ran
        else f"not started: {run} needs more memory than this machine has",
        received=f"cnncalc predicts {human_bytes(predicted)} for this run{has}",
        hint=hint,
    )


def _peak(name: str, dtype: DType) -> float | None:
    for key, table in PEAK_TFLOPS.items():
        if key in name:
            return table.get(dtype.value)
    return None


def _cpu_name() -> str:
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
