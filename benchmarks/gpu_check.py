"""Everything `cnncalc profile --device cuda` should be checked on, the day a GPU is lent, in one command.

    python benchmarks/gpu_check.py                  # on the GPU machine, from the repository root
    python benchmarks/gpu_check.py --device cpu     # here: a dry run of this script's own logic

1. Runs the CUDA tests (tests/test_profile_cuda.py, and tests/test_profile.py's cuda tests, which
   run for real on a GPU and skip elsewhere).
2. Checks every row of resnet34, resnet50 and vgg16 against PyTorch (on the CPU at batch 1, as
   `cnncalc profile` does; this is the run's CPU share).
3. For resnet34, resnet50 and vgg16 at batch 64 and 256, in fp32, bf16 and bf16 channels-last, and a
   training step of resnet50 at batch 64: cnncalc's median latency (profile(), checks off) over
   the mean of an independent loop written here (CUDA events around all its steps at once), and
   cnncalc's predicted peak memory against torch.cuda.max_memory_allocated in that loop, with what
   lies outside the prediction beside it (docs/gpu.md says what each column means).

Writes gpu_check.json and gpu_check.md under --out, after every case (so a run stopped early keeps
what it measured), and prints a line per case. Sized for one H100 in under 8 minutes (--budget-s
stops starting new cases). Needs the repository and a torch build with CUDA; no install, no network.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout, installed or not

import torch  # noqa: E402

import cnncalc  # noqa: E402
from cnncalc.analysis import DType, Report  # noqa: E402
from cnncalc.render import human_bytes  # noqa: E402
from cnncalc.torch_bridge import build  # noqa: E402
from cnncalc.torch_bridge.profile import profile, verify  # noqa: E402

MODELS = ("resnet34", "resnet50", "vgg16")
CUDA_BATCHES, CPU_BATCHES = (64, 256), (2, 4)
CPU_INPUT = (3, 32, 32)  # the dry run's input; the GPU runs each model's own (3x224x224)
LAYOUTS = (("fp32", False), ("bf16", False), ("bf16", True))  # (dtype, channels-last)
TESTS = ["tests/test_profile_cuda.py", "tests/test_profile.py", "-k", "cuda"]


@dataclass
class Case:
    model: str
    batch: int
    dtype: str
    channels_last: bool
    train: bool = False

    @property
    def label(self) -> str:
        return (
            f"{self.model} b{self.batch} {self.dtype}"
            + (" channels-last" if self.channels_last else "")
            + (" training step" if self.train else "")
        )


def cases(device: str) -> list[Case]:
    batches = CUDA_BATCHES if device == "cuda" else CPU_BATCHES
    out = [Case(m, b, dt, cl) for m in MODELS for b in batches for dt, cl in LAYOUTS]
    out.append(Case("resnet50", batches[0], "fp32", False, train=True))
    return out


@dataclass
class Result:
    case: Case
    cnncalc_median_ms: float
    cnncalc_p10_ms: float
    cnncalc_p90_ms: float
    loop_mean_ms: float  # the independent loop: one pair of events around all its steps
    predicted_bytes: int  # cnncalc.analysis.predicted_memory, what `cnncalc profile` prints
    measured_bytes: int  # max_memory_allocated in the independent loop (CPU: cnncalc's own measurement)
    measured_by: str
    cnncalc_measured_bytes: int | None  # what profile() itself measured
    reserved_bytes: int | None  # max_memory_reserved: the allocator's cache around what it allocated
    outside_allocator_bytes: int | None  # device memory in use minus what the allocator reserved
    seconds: float

    @property
    def latency_ratio(self) -> float:
        return self.cnncalc_median_ms / self.loop_mean_ms

    @property
    def memory_ratio(self) -> float:
        return self.measured_bytes / self.predicted_bytes


@dataclass
class Run:
    device: str
    environment: dict[str, Any]
    tests: dict[str, Any] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def environment(device: str) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env |= {
            "gpu": props.name,
            "gpu_memory_bytes": props.total_memory,
            "capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        }
    return env


def run_tests(out: Path) -> dict[str, Any]:
    """pytest on the CUDA tests, in a process of its own; its log beside the results."""
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *TESTS, "-q", "-p", "no:cacheprovider", "-rs"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    (out / "tests.log").write_text(done.stdout + done.stderr)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return {
        "command": f"python -m pytest {' '.join(TESTS)}",
        "returncode": done.returncode,
        "summary": lines[-1] if lines else done.stderr.strip()[-300:],
        "seconds": round(time.perf_counter() - start, 1),
    }


def check_rows(model: str) -> dict[str, Any]:
    """Every row against PyTorch, as `cnncalc profile` does before timing: CPU, batch 1, fp32."""
    start = time.perf_counter()
    checks = verify(cnncalc.load(model))
    bad = [f"{c.row}: {c.quantity}: cnncalc {c.ours}, PyTorch {c.theirs}" for c in checks if not c.ok]
    return {
        "model": model,
        "rows": len({c.row for c in checks}),
        "quantities": sorted({c.quantity for c in checks}),
        "mismatches": bad,
        "seconds": round(time.perf_counter() - start, 1),
    }


def independent(
    report: Report, graph: cnncalc.Graph, case: Case, device: str, warmup: int, iters: int
) -> tuple[float, int | None, int | None, int | None]:
    """The same module, input and mode as cnncalc's run, timed by a loop of its own: warm-up, then
    one pair of CUDA events around `iters` steps (perf_counter on the CPU); the mean per step, and
    on CUDA the allocator's peak over those steps, its reserved peak and the memory outside it."""
    cuda = device == "cuda"
    model = build(graph, report=report).to(device)
    x = torch.randn(case.batch, *report.input_shape, device=device)
    if case.channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    model.train(case.train)

    def cast() -> Any:
        if case.dtype == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[case.dtype])

    step: Callable[[], None]
    if case.train:
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            with cast():
                loss = model(x).float().mean()
            loss.backward()
            optimizer.step()
    else:

        def step() -> None:
            with torch.inference_mode(), cast():
                model(x)

    for _ in range(warmup):
        step()
    if not cuda:
        start_s = time.perf_counter()
        for _ in range(iters):
            step()
        return (time.perf_counter() - start_s) * 1e3 / iters, None, None, None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        step()
    end.record()
    torch.cuda.synchronize()
    free, total = torch.cuda.mem_get_info()
    outside = total - free - torch.cuda.memory_reserved()  # the CUDA context, the libraries' code, other processes
    return start.elapsed_time(end) / iters, torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved(), outside


def measure(case: Case, device: str, warmup: int, iters: int) -> Result:
    start = time.perf_counter()
    graph = cnncalc.load(case.model)
    shape = CPU_INPUT if device == "cpu" else None
    report = cnncalc.analyze(graph, input_shape=shape, batch=case.batch, dtype=DType(case.dtype))
    torch.backends.cudnn.benchmark = True  # profile()'s default; set here too so the loop never runs without it
    p = profile(
        graph,
        report,
        device=device,
        channels_last=case.channels_last,
        train=case.train,
        warmup=warmup,
        iters=iters,
        check=False,
    )
    loop_ms, allocated, reserved, outside = independent(report, graph, case, device, warmup, iters)
    assert p.memory_predicted is not None
    result = Result(
        case,
        p.timing.median_ms,
        p.timing.p10_ms,
        p.timing.p90_ms,
        loop_ms,
        p.memory_predicted,
        allocated if allocated is not None else p.memory_measured or 0,
        "torch.cuda.max_memory_allocated" if allocated is not None else "cnncalc (CPU, torch.profiler)",
        p.memory_measured,
        reserved,
        outside,
        time.perf_counter() - start,
    )
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return result


def line(i: int, n: int, r: Result) -> str:
    return (
        f"[{i:2}/{n}] {r.case.label}: cnncalc {r.cnncalc_median_ms:.2f} ms, loop {r.loop_mean_ms:.2f} ms "
        f"(x{r.latency_ratio:.3f}); predicted {human_bytes(r.predicted_bytes)}, measured "
        f"{human_bytes(r.measured_bytes)} (x{r.memory_ratio:.3f})"
        + (f", reserved {human_bytes(r.reserved_bytes)}" if r.reserved_bytes else "")
        + (f", outside the allocator {human_bytes(r.outside_allocator_bytes)}" if r.outside_allocator_bytes else "")
        + f"; {r.seconds:.1f} s"
    )


def to_json(run: Run) -> dict[str, Any]:
    return {
        "device": run.device,
        "environment": run.environment,
        "tests": run.tests,
        "checks": run.checks,
        "results": [
            {
                **asdict(r),
                "case": {**asdict(r.case), "label": r.case.label},
                "latency_ratio": r.latency_ratio,
                "memory_ratio": r.memory_ratio,
            }
            for r in run.results
        ],
        "skipped": run.skipped,
        "seconds": round(run.seconds, 1),
    }


def to_markdown(run: Run) -> str:
    env = run.environment
    head = [
        f"# cnncalc GPU check: {env.get('gpu', 'CPU dry run')}",
        "",
        ", ".join(f"{k} {v}" for k, v in env.items()) + f"; {run.seconds:.0f} s in all",
        "",
    ]
    if run.tests:
        t = run.tests
        head += [f"Tests (`{t['command']}`): {t['summary']} (exit {t['returncode']}, {t['seconds']} s).", ""]
    if run.checks:
        head += ["| model | rows checked | quantities | mismatches | seconds (CPU) |", "|---|---:|---|---:|---:|"]
        head += [
            f"| {c['model']} | {c['rows']} | {', '.join(c['quantities'])} | {len(c['mismatches'])} | {c['seconds']} |"
            for c in run.checks
        ]
        head.append("")
    table = [
        "| case | cnncalc median ms (p10-p90) | loop mean ms | latency ratio | predicted | measured peak | "
        "memory ratio | reserved peak | outside the allocator | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in run.results:
        table.append(
            f"| {r.case.label} | {r.cnncalc_median_ms:.2f} ({r.cnncalc_p10_ms:.2f}-{r.cnncalc_p90_ms:.2f}) | "
            f"{r.loop_mean_ms:.2f} | {r.latency_ratio:.3f} | {human_bytes(r.predicted_bytes)} | "
            f"{human_bytes(r.measured_bytes)} | {r.memory_ratio:.3f} | "
            f"{human_bytes(r.reserved_bytes) if r.reserved_bytes else '-'} | "
            f"{human_bytes(r.outside_allocator_bytes) if r.outside_allocator_bytes else '-'} | {r.seconds:.1f} |"
        )
    measured_by = {r.measured_by for r in run.results}
    notes = [
        "",
        f"Measured peak: {', '.join(sorted(measured_by))}. Latency ratio: cnncalc's median over the loop's "
        "mean (1.0 is agreement). Memory ratio: measured peak over cnncalc's prediction; the prediction "
        "counts tensors only, so cuDNN's and cuBLAS's workspaces (allocated through PyTorch's allocator, so "
        "in the measured peak) make it above 1; the CUDA context and the libraries' code are outside the "
        "allocator (last memory column) and in neither. docs/gpu.md explains each column.",
    ]
    if run.skipped:
        notes.append(f"\nNot run (--budget-s reached): {', '.join(run.skipped)}.")
    return "\n".join(head + table + notes) + "\n"


def write(run: Run, out: Path) -> None:
    (out / "gpu_check.json").write_text(json.dumps(to_json(run), indent=2) + "\n")
    (out / "gpu_check.md").write_text(to_markdown(run))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device",
        choices=["cuda", "cpu"],
        default="cuda",
        help="cuda: the check; cpu: a dry run of this script (batches 2 and 4 at 3x32x32)",
    )
    parser.add_argument("--out", type=Path, default=Path("gpu-check"), help="folder for the results and test log")
    parser.add_argument("--warmup", type=int, help="untimed steps before each timing (cuda 10, cpu 1)")
    parser.add_argument("--iters", type=int, help="timed steps, for cnncalc and the loop alike (cuda 50, cpu 2)")
    parser.add_argument("--budget-s", type=float, default=420, help="start no new case after this many seconds")
    parser.add_argument("--skip-tests", action="store_true", help="do not run the tests first")
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (cpu: 1, so that a busy machine's "
        "threads do not wait on each other; cuda: torch's default)",
    )
    args = parser.parse_args()
    if args.threads or args.device == "cpu":
        torch.set_num_threads(args.threads or 1)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.exit(2, f"gpu_check: PyTorch sees no CUDA GPU (torch {torch.__version__}); --device cpu is a dry run\n")
    warmup = args.warmup if args.warmup is not None else (10 if args.device == "cuda" else 1)
    iters = args.iters if args.iters is not None else (50 if args.device == "cuda" else 2)
    args.out.mkdir(parents=True, exist_ok=True)
    begin = time.perf_counter()
    run = Run(args.device, environment(args.device))
    print(f"gpu_check on {run.environment.get('gpu', 'the CPU (dry run)')}, torch {torch.__version__}", flush=True)
    if not args.skip_tests:
        run.tests = run_tests(args.out)
        print(f"tests: {run.tests['summary']} ({run.tests['seconds']} s)", flush=True)
    for model in MODELS:
        run.checks.append(check_rows(model))
        c = run.checks[-1]
        print(f"checks: {model}: {c['rows']} rows, {len(c['mismatches'])} mismatches ({c['seconds']} s)", flush=True)
    todo = cases(args.device)
    for i, case in enumerate(todo, 1):
        if time.perf_counter() - begin > args.budget_s:
            run.skipped = [c.label for c in todo[i - 1 :]]
            print(f"budget of {args.budget_s:.0f} s reached: {len(run.skipped)} cases not run", flush=True)
            break
        run.results.append(measure(case, args.device, warmup, iters))
        run.seconds = time.perf_counter() - begin
        write(run, args.out)
        print(line(i, len(todo), run.results[-1]), flush=True)
    run.seconds = time.perf_counter() - begin
    write(run, args.out)
    print(f"done in {run.seconds:.0f} s: {args.out / 'gpu_check.md'}, {args.out / 'gpu_check.json'}", flush=True)
    failed = (run.tests and run.tests["returncode"] != 0) or any(c["mismatches"] for c in run.checks)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
