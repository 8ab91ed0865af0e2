"""`cnncalc profile` and `cnncalc export`: the commands that use PyTorch, imported lazily inside
each command so that `import cnncalc.cli` stays torch-free."""

from __future__ import annotations

import itertools
import sys
import threading
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer

from .. import files, spec
from ..analysis import DType, analyze
from ..errors import CnncalcError
from ..render import Format, Lines, Output, aligned, human, human_bytes
from ..spec import library
from .common import (
    ArgOpt,
    ExitCode,
    InputOpt,
    SpecArg,
    app,
    check_arg_pairs,
    choice_option,
    emit,
    format_option,
    load_graph,
    parse_input,
    print_warning,
    reported_errors,
)

ProfileFormatOpt = Annotated[Format, format_option("text or json.", (Format.TEXT, Format.JSON))]


class ExportTarget(str, Enum):
    TORCH = "torch"


PROFILE_DTYPES = tuple(d for d in DType if d.profiled)


@app.command()
def profile(
    spec_file: SpecArg,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N.")] = "cpu",
    batch: Annotated[int, typer.Option("--batch", "-b", min=1, help="Batch size.")] = 1,
    dtype: Annotated[
        DType,
        choice_option(
            "--dtype",
            help="fp32, fp64 (the model cast), or fp16/bf16 under autocast (weights stay fp32).",
            members=PROFILE_DTYPES,
        ),
    ] = DType.FP32,
    channels_last: Annotated[
        bool, typer.Option("--channels-last", help="NHWC memory format for model and input.")
    ] = False,
    compile: Annotated[
        bool, typer.Option("--compile", help="Time torch.compile(model) (compiles during warm-up).")
    ] = False,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed iterations first.")] = 10,
    iters: Annotated[
        int, typer.Option("--iters", min=0, help="Timed iterations (0: the checks alone, as --check-only).")
    ] = 50,
    check_only: Annotated[
        bool, typer.Option("--check-only", help="Only check every row against PyTorch: no timing.")
    ] = False,
    train: Annotated[bool, typer.Option("--train", help="Time a training step: forward, backward, SGD step.")] = False,
    cudnn_benchmark: Annotated[
        bool,
        typer.Option(
            "--cudnn-benchmark/--no-cudnn-benchmark", help="Let cuDNN pick the fastest kernels (on by default)."
        ),
    ] = True,
    peak_tflops: Annotated[
        Optional[float],
        typer.Option("--peak-tflops", help="The device's peak TFLOP/s, for the fraction achieved.", show_default=False),
    ] = None,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Check every row against PyTorch first.")] = True,
    per_layer: Annotated[
        bool,
        typer.Option(
            "--per-layer", help="Also time each layer's forward, in a separate pass after the end-to-end timing."
        ),
    ] = False,
    plot: Annotated[
        Optional[Path],
        typer.Option(
            "--plot",
            help="With --per-layer (implied): also draw the per-layer bars with time and achieved TFLOP/s panels to this .png/.svg (the plot extra).",
            show_default=False,
        ),
    ] = None,
    input: InputOpt = None,
    format: ProfileFormatOpt = Format.TEXT,
    arg: ArgOpt = None,
) -> None:
    """Check every row against PyTorch, then time the real model on CPU or CUDA.

    Exit code 6 when any row disagrees with PyTorch; 5 when PyTorch is not installed.
    """
    with reported_errors():
        graph = load_graph(spec_file, input, arg)
        # the one analysis of this run: the checks, the timing and the memory prediction all read it
        report = analyze(graph, input_shape=parse_input(input, graph.input_shape), batch=batch, dtype=dtype)
        if plot is not None:
            from .workflows import check_plot_target

            check_plot_target(plot)  # before the timing, not after it
        with _spinner("loading PyTorch"):  # importing torch takes seconds: show that something happens
            # imports torch; raises MissingExtraError without it
            from ..torch_bridge.measure import NOISY_SPREAD
            from ..torch_bridge.profile import profile as run_profile

        if check_only or iters == 0:
            if not check:
                raise CnncalcError(
                    "--no-check with --check-only (or --iters 0) leaves nothing to do",
                    hint="drop --no-check, or give --iters 1 or more",
                )
            with _spinner(f"checking {len(report.rows) - 1} rows against PyTorch"):
                from ..torch_bridge.profile import verify

                checks = verify(graph, report)
            lines = [
                f"{graph.name}: every row checked against PyTorch, no timing (--check-only)",
                "",
                *_checks_text(checks),
            ]
            emit(
                Output(
                    "profile",
                    (Lines(tuple(lines)),),
                    data={"name": graph.name, "checks": _checks_json(checks)},
                    markdown=False,
                ),
                format,
            )
            if any(not c.ok for c in checks):
                raise typer.Exit(ExitCode.MISMATCH)
            return
        from ..torch_bridge.measure import TimingInterrupted

        try:
            result = _with_progress(
                lambda progress: run_profile(
                    graph,
                    report,
                    device=device,
                    channels_last=channels_last,
                    compile=compile,
                    warmup=warmup,
                    iters=iters,
                    train=train,
                    cudnn_benchmark=cudnn_benchmark,
                    peak_tflops=peak_tflops,
                    check=check,
                    per_layer=per_layer or plot is not None,
                    progress=progress,
                )
            )
        except TimingInterrupted as err:  # Ctrl-C: the statistics so far, and the shell's code for SIGINT
            sys.stdout.write("\n".join(_interrupted_text(err)) + "\n")
            raise typer.Exit(130) from None
        emit(Output("profile", (Lines(tuple(_text(result))),), data=_json(result), markdown=False), format)
        if result.timing.noisy:
            t = result.timing
            print_warning(
                f"timings are noisy: p90/p10 = {t.p90_ms:.3f}/{t.p10_ms:.3f} = {t.spread:.2f} (above {NOISY_SPREAD}); "
                f"another process may be using the {result.device}: close it, or raise --iters and --warmup"
            )
        if plot is not None:
            from .workflows import write_plot

            write_plot(report, plot, None, timings={layer.row: layer.median_ms for layer in result.layers})
    if result.mismatches:
        raise typer.Exit(ExitCode.MISMATCH)


@app.command()
def export(
    spec_file: SpecArg,
    to: Annotated[
        ExportTarget, typer.Option("--to", help="What to write: torch (a PyTorch nn.Module as Python source).")
    ] = ExportTarget.TORCH,
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="Write to this file instead of standard output.", show_default=False),
    ] = None,
    input: InputOpt = None,
) -> None:
    """Write the network as readable PyTorch source: one nn.Module class whose module names
    (and so state_dict keys) match the table's rows. Needs no PyTorch to write."""
    with reported_errors():
        from ..render.export import to_torch_source

        graph = spec.load(library.resolve(spec_file))
        source = to_torch_source(graph, parse_input(input, graph.input_shape))
        if output is None:
            sys.stdout.write(source)
            return
        files.write_text(output, source, inputs={graph.file, *(node.where.file for node in graph.nodes)})
        sys.stderr.write(f"wrote {output} ({source.count(chr(10))} lines); run it with: python {output}\n")


@app.command("import")
def import_(
    target: Annotated[
        str,
        typer.Argument(
            help="torchvision:NAME, path/to/file.py:Class or pkg.module:factory (runs that code).", show_default=False
        ),
    ],
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="Write the spec here instead of printing it.", show_default=False),
    ] = None,
    input: Annotated[
        Optional[str],
        typer.Option(
            "--input", help="The input, channels first: 3x224x224 (torchvision models know theirs).", show_default=False
        ),
    ] = None,
    arg: Annotated[
        Optional[list[str]],
        typer.Option(
            "--arg",
            help="name=value for the class or factory (or torchvision's builder), repeatable; values are YAML: 2, 0.5, true, text, [3, 1].",
            callback=check_arg_pairs,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write a spec for a PyTorch model, traced with torch.fx; every row is checked against the model.

    This runs the model's code: file.py:Class and pkg.module:callable are imported as Python
    imports them (their top level runs), the class or factory is called, and its forward runs once.
    Import only code you would run yourself.

    Examples:

      cnncalc import torchvision:resnet50 -o resnet50.yaml

      cnncalc import my_models.py:Net --input 3x32x32

      cnncalc import pkg.models:make --arg width=2
    """
    with reported_errors():
        from ..torch_bridge.importer import import_command  # imports torch; raises MissingExtraError without it

        text = import_command(target, str(output) if output else None, input, arg or [])
    if output is None:
        sys.stdout.write(text)
    else:
        sys.stderr.write(f"wrote {output}\n")


@contextmanager
def _spinner(text: str) -> Iterator[None]:
    """A spinner on stderr while `text` runs, from a small thread (only on a terminal; rich and
    torch are not loaded yet when it starts)."""
    if not sys.stderr.isatty():
        yield
        return
    stop = threading.Event()

    def spin() -> None:
        for frame in itertools.cycle("|/-\\"):
            sys.stderr.write(f"\r{frame} {text}...")
            sys.stderr.flush()
            if stop.wait(0.1):
                break
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _with_progress(run):
    """A rich progress bar on stderr while checking, warming up and timing (nothing when not a
    terminal): a spinner and the time elapsed through the checks (seconds of nothing to count),
    then each phase's count, its ETA and, while timing, the running median."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:
        return run(None)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[note]}"),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(phase: str, done: int, total: int | None, note: str = "") -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total, note=note)
            bar.update(tasks[phase], completed=done, total=total, note=note)

        return run(progress)


def rate(flops_per_s: float) -> str:
    """`48.3 GFLOP/s`, `1.23 TFLOP/s`, `512 MFLOP/s`: three significant digits in the unit that
    keeps the number between 1 and 1000 (a CPU's 0.05 TFLOP/s printed `0.00` before)."""
    for unit, scale in (("TFLOP/s", 1e12), ("GFLOP/s", 1e9), ("MFLOP/s", 1e6), ("kFLOP/s", 1e3)):
        if flops_per_s >= scale:
            return f"{flops_per_s / scale:.3g} {unit}"
    return f"{flops_per_s:.3g} FLOP/s"


def _interrupted_text(err) -> list[str]:
    """What Ctrl-C while timing prints: the statistics of the iterations that were done."""
    t = err.timing
    if t is None:
        return [f"interrupted before the first of {err.total} timed iterations finished: no statistics"]
    return [
        f"interrupted after {t.iters} of {err.total} timed iterations ({t.warmup} warm-up before them):",
        f"latency: median {t.median_ms:.3f} ms, p10 {t.p10_ms:.3f}, p90 {t.p90_ms:.3f} ({t.iters} timed iterations)",
    ]


def _checks_text(checks) -> list[str]:
    rows = len({c.row for c in checks})
    quantities = sorted({c.quantity for c in checks})
    bad = [c for c in checks if not c.ok]
    lines = [
        f"checks against PyTorch (batch 1, CPU, fp32): {rows} rows x {len(quantities)} quantities "
        f"({', '.join(quantities)}): " + ("all ✓" if not bad else f"{len(bad)} ✗")
    ]
    return lines + [f"  ✗ {c.row}: {c.quantity}: cnncalc {c.ours}, PyTorch {c.theirs}" for c in bad]


def _checks_json(checks) -> list[dict]:
    def plain(value):
        return list(value) if isinstance(value, tuple) else value

    return [
        {"row": c.row, "quantity": c.quantity, "cnncalc": plain(c.ours), "pytorch": plain(c.theirs), "ok": c.ok}
        for c in checks
    ]


def _text(p) -> list[str]:
    mode = "training step (forward, backward, SGD)" if p.train else "inference"
    lines = [
        f"{p.name}: {mode} on {p.device} ({p.device_name}), torch {p.torch_version}",
        f"batch {p.batch}, {p.precision}, channels-last {'on' if p.channels_last else 'off'}, "
        f"torch.compile {'on' if p.compiled else 'off'}"
        + (f", cudnn.benchmark {'on' if p.cudnn_benchmark else 'off'}" if p.device.startswith("cuda") else ""),
        "",
    ]
    if p.checks:
        lines += _checks_text(p.checks)
    else:
        lines.append("checks skipped (--no-check)")
    t = p.timing
    lines += [
        f"latency: median {t.median_ms:.3f} ms, p10 {t.p10_ms:.3f}, p90 {t.p90_ms:.3f} ({t.iters} timed iterations after {t.warmup} warm-up)",
        f"throughput: {p.samples_per_s:,.1f} samples/s; {rate(p.tflops * 1e12)} achieved "
        f"({human(p.flops_per_step)} FLOPs per step from cnncalc's MACs"
        + (", x3 for a training step)" if p.train else ")")
        + (f" = {100 * p.tflops / p.peak_tflops:.1f}% of the {p.peak_tflops:g} TFLOP/s peak" if p.peak_tflops else ""),
    ]
    if p.memory_measured is not None and p.memory_predicted:
        how = (
            "torch.cuda.max_memory_allocated"
            if p.device.startswith("cuda")
            else "CPU allocations recorded by torch.profiler"
        )
        lines.append(
            f"memory: predicted {human_bytes(p.memory_predicted)}, measured peak {human_bytes(p.memory_measured)} "
            f"({how}; measured / predicted = {p.memory_measured / p.memory_predicted:.2f}; see docs/conventions.md)"
        )
    if p.layers:
        lines += ["", *_layers_text(p)]
    return lines


SLOWEST = 5


def _layers_text(p) -> list[str]:
    """The per-layer table: each leaf's median forward time, its share, its achieved TFLOP/s and a
    bar, so that the slow layers stand out; then the slowest few and the overhead between layers."""
    widest = max(p.share(layer) for layer in p.layers) or 1.0
    body = [
        [
            layer.row,
            layer.kind,
            f"{layer.median_ms:.3f}",
            f"{100 * p.share(layer):.1f}%",
            human(layer.flops // 2) if layer.flops else "-",
            f"{layer.tflops:.3g}" if layer.tflops else "-",
            "█" * round(20 * p.share(layer) / widest),
        ]
        for layer in p.layers
    ]
    header = ["Layer", "Type", "ms", "Share", "MACs", "TFLOP/s", ""]
    total = ["sum", "", f"{p.layers_ms:.3f}", "100.0%", human(p.flops_per_step // 2 // (3 if p.train else 1)), "", ""]
    slowest = sorted(p.layers, key=lambda layer: -layer.median_ms)[:SLOWEST]
    outside = p.timing.median_ms - p.layers_ms
    what = "forward only; the backward pass and the SGD step are not split by layer" if p.train else "inference"
    return [
        f"per layer ({what}; median of {p.timing.iters} passes run after the end-to-end timing, eager"
        + (" (not compiled)" if p.compiled else "")
        + ", hooks attached only then; MACs for the batch):",
        *aligned(header, body, [False, False, True, True, True, True, False], total),
        "slowest: " + ", ".join(f"{layer.row} {100 * p.share(layer):.1f}%" for layer in slowest),
        f"end-to-end median {p.timing.median_ms:.3f} ms - sum of layers {p.layers_ms:.3f} ms = {outside:+.3f} ms "
        + (
            "outside the layers (Python between calls, launches, the backward pass in training)"
            if outside >= 0
            else "(the per-layer pass ran slower: the hooks' own cost, or noise between the passes; raise --iters)"
        ),
    ]


def _json(p) -> dict:
    return {
        "name": p.name,
        "device": p.device,
        "device_name": p.device_name,
        "torch": p.torch_version,
        "batch": p.batch,
        "dtype": p.dtype.value,
        "precision": p.precision,
        "channels_last": p.channels_last,
        "compile": p.compiled,
        "train": p.train,
        "cudnn_benchmark": p.cudnn_benchmark,
        "checks": _checks_json(p.checks),
        "latency_ms": {"median": p.timing.median_ms, "p10": p.timing.p10_ms, "p90": p.timing.p90_ms},
        "warmup": p.timing.warmup,
        "iters": p.timing.iters,
        "samples_per_s": p.samples_per_s,
        "flops_per_step": p.flops_per_step,
        "tflops": p.tflops,
        "peak_tflops": p.peak_tflops,
        "memory_predicted_bytes": p.memory_predicted,
        "memory_measured_bytes": p.memory_measured,
        "layers": [
            {
                "row": layer.row,
                "type": layer.kind,
                "median_ms": layer.median_ms,
                "share": p.share(layer),
                "flops": layer.flops,
                "tflops": layer.tflops,
            }
            for layer in p.layers
        ],
    }
