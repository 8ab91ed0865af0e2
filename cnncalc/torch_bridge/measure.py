"""A real run measured, for `cnncalc profile`: peak memory on the CPU (the process's, around one step)
and what an optimizer holds, one inference or training step, and timing (the whole model with
warm-up and percentiles, CUDA events on the GPU, and each leaf layer in a separate pass). Part of
the bridge: it imports torch.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys
import time
from typing import Any, Callable, Iterator, Sequence

import torch

from ..analysis import Report
from ..analysis.budget import Optimizer
from ..errors import CnncalcError
from ..graph import Graph
from ..records import record
from . import leaf_modules

Progress = Callable[..., None]  # (phase, done, total, note=""): note, the running median while timing


class TimingInterrupted(CnncalcError):
    """Ctrl-C while timing: the statistics of the iterations done (`timing`, None when none was)."""

    def __init__(self, timing: Timing | None, total: int) -> None:
        done = f"{timing.iters} of {total}" if timing else f"0 of {total}"
        super().__init__(f"interrupted after {done} timed iterations")
        self.timing = timing
        self.total = total


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
