"""Wall time of `cnncalc summary` against fvcore and torchinfo, as whole processes.

    python benchmarks/bench_cli.py [--repeat 5]

Each tool runs in a fresh process (imports included: that is what a user waits for) on the same
architecture: fvcore's FlopCountAnalysis and torchinfo's summary get the PyTorch model that
cnncalc builds from the same spec. Tools that are not installed are skipped. Also times a
generated spec of 10,000 layers (and 2,500 / 5,000 to show that time grows linearly).
Prints medians; nothing here is asserted. First, every ratio of the speed goals in one run (CPU
time, each ratio taken within rounds that run every program once: summary of 100,000 rows against
the torch import, bytes and microseconds a row at three sizes, --help against summary resnet152,
start-up); `--goals-only` stops there.

cnncalc's modules are byte-compiled first (as `pip install` does): a source tree run with
PYTHONDONTWRITEBYTECODE would otherwise compile every module on every start (~90 ms), which no
installed copy does. Every process runs in an empty folder with this checkout first on
PYTHONPATH (`python -c` would otherwise import the cnncalc of the current folder).
`--startup-only` also splits summary resnet152's CPU time into its phases; `--baseline DIR`
(another checkout, e.g. `git archive COMMIT | tar -x -C DIR`) times its summary resnet152 too,
interleaved run by run with this one's and the torch import, so that the two ratios are measured
under the same load: on a shared machine, two runs minutes apart are not comparable. With
`--goals-only`, `--baseline` measures every goal of both checkouts in the one run.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

ARCHS = ["resnet18", "resnet50", "resnet152", "vgg16"]

CNNCALC = "from cnncalc.cli import main; import sys; sys.argv = ['cnncalc', 'summary', '{arch}', '-f', 'json']; main()"
FVCORE = (
    "import torch, cnncalc; from fvcore.nn import FlopCountAnalysis, parameter_count; "
    "m = cnncalc.to_torch(cnncalc.load('{arch}')).eval(); x = torch.randn(1, *m.input_shape); "
    "f = FlopCountAnalysis(m, x); f.unsupported_ops_warnings(False); f.uncalled_modules_warnings(False); "
    "print(f.total(), parameter_count(m)[''])"
)
TORCH_IMPORT = "import torch, fvcore.nn"
EMPTY = "pass"
# summary resnet152 -f json in its phases, CPU milliseconds each (what main() does, step by step)
PHASES = """
import time, json, sys, io
clock = time.process_time
marks = [("python start-up", clock())]
import typer, yaml
marks.append(("import typer and yaml", clock()))
import cnncalc.cli, cnncalc.cli.tables
marks.append(("import cnncalc (cli, tables)", clock()))
import gc
gc.freeze()  # as cnncalc.cli.main does before it runs a command
from cnncalc import spec
from cnncalc.spec import library
from cnncalc.analysis import analyze
from cnncalc.cli.tables import summary
from cnncalc.render import Format, write
graph = spec.load(library.resolve("resnet152"))
marks.append(("read and expand the spec", clock()))
report = analyze(graph)
marks.append(("analyse", clock()))
sys.stdout = io.StringIO()
try:
    summary("resnet152", format=Format.JSON)
except SystemExit:
    pass
sys.stdout = sys.__stdout__
marks.append(("the summary command again (load, analyse, JSON)", clock()))
print(json.dumps([[name, (t - before) * 1000] for (name, t), (_, before) in zip(marks, [("", 0.0)] + marks)]))
"""
TORCHINFO = (
    "import torch, cnncalc; from torchinfo import summary; "
    "m = cnncalc.to_torch(cnncalc.load('{arch}')).eval(); print(summary(m, input_size=(1, *m.input_shape), verbose=0).total_params)"
)


CHECKOUT = Path(__file__).resolve().parents[1]
EMPTY_DIR = tempfile.mkdtemp(prefix="bench_cli_")


def wall(code: str, repeat: int) -> float:
    return timed(code, repeat)[0]


def timed(code: str, repeat: int, checkout: Path = CHECKOUT) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds (user + system) of `python -c code`: on a
    shared machine the CPU time is the steadier figure (waiting for a core is not counted)."""
    runs = [once(code, checkout) for _ in range(repeat)]
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def _env(checkout: Path) -> dict[str, str]:
    """This process's environment with `checkout` first on PYTHONPATH."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(checkout), os.environ.get("PYTHONPATH", "")])}


def once(code: str, checkout: Path = CHECKOUT) -> tuple[float, float]:
    """Wall and CPU seconds of one `python -c code`, importing cnncalc from `checkout`."""
    env = _env(checkout)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=EMPTY_DIR,
        env=env,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - start, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def compiled(checkout: Path) -> None:
    """Byte-compile the cnncalc that `python -c` imports from `checkout`."""
    where = subprocess.run(
        [sys.executable, "-c", "import cnncalc; print(cnncalc.__file__)"],
        check=True,
        text=True,
        capture_output=True,
        cwd=EMPTY_DIR,
        env={**os.environ, "PYTHONPATH": str(checkout)},
    ).stdout
    compileall.compile_dir(Path(where.strip()).parent, quiet=1)


def compare(baseline: Path, repeat: int) -> None:
    """summary resnet152 of this checkout and of `baseline`, and the torch import, interleaved."""
    compiled(baseline)
    code = CNNCALC.format(arch="resnet152")
    runs: dict[str, list[tuple[float, float]]] = {"this": [], "baseline": [], "torch": []}
    for _ in range(repeat):
        runs["this"].append(once(code))
        runs["baseline"].append(once(code, baseline))
        runs["torch"].append(once(TORCH_IMPORT))
    cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items()}
    print(f"interleaved, median CPU of {repeat}: `import torch, fvcore.nn` {cpu['torch']:.3f} s")
    for k in ("baseline", "this"):
        print(f"  summary resnet152, {k + ' checkout':<18} {cpu[k]:.3f} s = {cpu[k] / cpu['torch']:.3f}x")


def phases(repeat: int) -> None:
    """Median CPU milliseconds of each phase of summary resnet152, in a fresh process each time."""
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT)}
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", PHASES], check=True, capture_output=True, text=True, cwd=EMPTY_DIR, env=env
            ).stdout
        )
        for _ in range(repeat)
    ]
    for i, (name, _) in enumerate(runs[0]):
        print(f"  {name:<48} {statistics.median(run[i][1] for run in runs):6.1f} ms CPU")


# a child's own CPU seconds and peak resident KiB, printed to stderr as it exits (the command's sys.exit too)
MEASURED = (
    "import atexit, resource, sys\n"
    "def _report():\n"
    "    u = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    sys.stderr.write(f'\\nMEASURED {u.ru_utime + u.ru_stime} {u.ru_maxrss}\\n')\n"
    "atexit.register(_report)\n"
)
HELP = "from cnncalc.cli import main; import sys; sys.argv = ['cnncalc', '--help']; main()"
SCALE_ROWS = (25_000, 50_000, 99_999)  # rows besides the input: the graph's limit is 100,000 nodes


def measured(code: str, checkout: Path = CHECKOUT) -> tuple[float, int]:
    """CPU seconds and peak resident bytes of `python -c code`, as the child itself reads them."""
    env = _env(checkout)
    done = subprocess.run(
        [sys.executable, "-c", MEASURED + code],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=EMPTY_DIR,
        env=env,
    )
    line = next(line for line in reversed(done.stderr.splitlines()) if line.startswith("MEASURED "))
    _, cpu, kib = line.split()
    return float(cpu), int(kib) * 1024


def goals(repeat: int, baseline: Path | None = None) -> None:
    """Every ratio of the speed goals (issue 20, item 5) in one run: summary -f json of a generated
    chain of 100,000 rows against `import torch, fvcore.nn` (goal under 1x), its memory per row
    (goal under 1 KiB) and CPU per row at three sizes (linear: the same figure), `--help` against
    summary resnet152 (goal under 1x), and summary resnet152 against the torch import (start-up,
    toward 0.06x). With a `baseline` checkout, its figures too.

    `repeat` rounds, each of which runs every program once, one after the other: a ratio is worked
    out within each round (its two programs seconds apart, under the same load: this machine's
    speed moves by up to 2x from one minute to the next) and given as the median of the rounds with
    their range; a time alone is the least of the rounds (the other jobs only ever add), and each
    ratio also as the least of one over the least of the other: each program's own cost."""
    checkouts = {"this": CHECKOUT} if baseline is None else {"baseline": baseline, "this": CHECKOUT}
    for checkout in checkouts.values():
        compiled(checkout)
    with tempfile.TemporaryDirectory() as tmp:
        programs = {
            "lenet5": CNNCALC.format(arch="lenet5"),
            "resnet152": CNNCALC.format(arch="resnet152"),
            "help": HELP,
            **{rows: CNNCALC.replace("'{arch}'", repr(str(long_spec(rows, Path(tmp))))) for rows in SCALE_ROWS},
        }
        rounds: list[dict[object, tuple[float, int]]] = []
        for _ in range(repeat):
            measures: dict[object, tuple[float, int]] = {"torch": measured(TORCH_IMPORT)}
            for name, checkout in checkouts.items():
                for what, code in programs.items():
                    measures[(name, what)] = measured(code, checkout)
            rounds.append(measures)

    def least(key: object) -> tuple[float, int]:
        return min(r[key][0] for r in rounds), min(r[key][1] for r in rounds)

    def ratio(top: object, bottom: object) -> str:
        each = sorted(r[top][0] / r[bottom][0] for r in rounds)
        least_of_each = least(top)[0] / least(bottom)[0]
        return f"{statistics.median(each):.2f}x (rounds {each[0]:.2f} to {each[-1]:.2f}; least over least {least_of_each:.2f}x)"

    print(f"{repeat} rounds; `import torch, fvcore.nn` {least('torch')[0]:.3f} s CPU at least")
    for rows in SCALE_ROWS:
        for name in checkouts:
            cpu, peak = least((name, rows))
            small_cpu, small_bytes = least((name, "lenet5"))
            print(
                f"  {name + ':':<9} summary -f json, {rows:>6,} rows: {cpu:.3f} s; against the torch import "
                f"{ratio((name, rows), 'torch')} (goal under 1x at 100,000); {(cpu - small_cpu) / rows * 1e6:.1f} us "
                f"and {(peak - small_bytes) / rows:,.0f} bytes a row beyond summary lenet5 (goal under 1,024)"
            )
    for name in checkouts:
        print(
            f"  {name + ':':<9} --help {least((name, 'help'))[0]:.3f} s / summary resnet152 "
            f"{least((name, 'resnet152'))[0]:.3f} s: {ratio((name, 'help'), (name, 'resnet152'))} (goal under 1x)"
        )
    for name in checkouts:
        print(
            f"  {name + ':':<9} start-up: summary resnet152 / the torch import: "
            f"{ratio((name, 'resnet152'), 'torch')} (goal toward 0.06x)"
        )


def long_spec(layers: int, folder: Path) -> Path:
    """A chain of `layers` rows: that many minus three convolutions, then pool, flatten, linear."""
    path = folder / f"long_{layers}.yaml"
    path.write_text(
        "name: long\ninput: [16, 32, 32]\nlayers:\n"
        f"  - sequential: {{name: body, layers: [conv: {{out: 16, kernel: 3, padding: 1, repeat: {layers - 3}}}]}}\n"
        "  - global_avgpool\n  - flatten\n  - linear: 10\n"
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--startup-only", action="store_true", help="only the start-up ratio")
    parser.add_argument("--baseline", type=Path, help="another checkout to compare start-up with, interleaved")
    parser.add_argument("--goals-only", action="store_true", help="only the speed goals' ratios")
    args = parser.parse_args()
    compiled(CHECKOUT)
    if find_spec("torch") and find_spec("fvcore"):
        goals(args.repeat, args.baseline.resolve() if args.baseline else None)
    if args.goals_only:
        return
    tools = {"cnncalc": CNNCALC}
    if find_spec("torch") and find_spec("fvcore"):
        tools["fvcore"] = FVCORE
    if find_spec("torch") and find_spec("torchinfo"):
        tools["torchinfo"] = TORCHINFO
    print(f"python {sys.version.split()[0]}, median of {args.repeat} runs, seconds of wall time per process")
    if find_spec("torch") and find_spec("fvcore"):
        # the start-up goal: summary resnet152, end to end, under 0.10x importing torch and fvcore
        summary, imports = timed(CNNCALC.format(arch="resnet152"), args.repeat), timed(TORCH_IMPORT, args.repeat)
        for what, k in (("wall", 0), ("CPU", 1)):
            print(
                f"start-up, {what} time: summary resnet152 {summary[k]:.3f} s / `import torch, fvcore.nn` {imports[k]:.3f} s "
                f"= {summary[k] / imports[k]:.3f}x (goal under 0.10x); typer {version('typer')}"
            )
        phases(args.repeat)
        if args.baseline:
            compare(args.baseline.resolve(), args.repeat)
    if args.startup_only:
        return
    print(
        f"{'architecture':<14}"
        + "".join(f"{t:>12}" for t in tools)
        + "".join(f"{t + '/cnncalc':>20}" for t in tools if t != "cnncalc")
    )
    for arch in ARCHS:
        times = {t: wall(code.format(arch=arch), args.repeat) for t, code in tools.items()}
        ratios = "".join(f"{times[t] / times['cnncalc']:>19.1f}x" for t in tools if t != "cnncalc")
        print(f"{arch:<14}" + "".join(f"{times[t]:>12.3f}" for t in tools) + ratios)
    with tempfile.TemporaryDirectory() as tmp:
        for layers in (2_500, 5_000, 10_000):
            spec = long_spec(layers, Path(tmp))
            for fmt in ("json", "table"):
                code = f"from cnncalc.cli import main; import sys; sys.argv = ['cnncalc', 'summary', '{spec}', '-f', '{fmt}']; main()"
                print(f"generated spec, {layers:>6,} layers, summary -f {fmt:<5}: {wall(code, args.repeat):.3f} s")


if __name__ == "__main__":
    main()
