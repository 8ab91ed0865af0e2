"""`cnncalc import` against a bare trace of the same model, as whole processes (issue 18).

The bare trace is what any tool that reads a model's graph at a given input must do at least:
start Python, import torch and torchvision, build the model, and trace it once with torch.fx with
shapes propagated (fx.symbolic_trace + ShapeProp on a zero input). `cnncalc import` does that and
more (maps every node, writes the spec, reads it back and checks every row). Both build the model
as `cnncalc import torchvision:NAME` does (no weights; on the meta device where it builds there).

    python benchmarks/bench_import.py --models resnet50,efficientnet_b7 --repeat 3

needs torchvision (a torch it can load); runs the two in turn (bare, ours, bare, ours, ...) and prints
the median wall time and the median CPU time (user + system, of the child process) of each, their
ratios, and the median of each round's own CPU ratio ("paired": the steadier figure where the
neighbours' load comes and goes). The CPU ratio is the one to quote on a
machine busy with other work: wall time there measures the neighbours as much as the command.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

BARE = """
import sys, torch, torchvision
from torch import fx
from torch.fx.passes.shape_prop import ShapeProp
name, size = sys.argv[1], int(sys.argv[2])
try:
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None)
except (NotImplementedError, RuntimeError):
    model = torchvision.models.get_model(name, weights=None)
model.eval()
gm = fx.symbolic_trace(model)
device = next(model.parameters()).device
with torch.no_grad():
    ShapeProp(gm).propagate(torch.zeros(1, 3, size, size, device=device))
"""

SIZES = {"efficientnet_b7": 600, "inception_v3": 299}


def run(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,efficientnet_b7")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        f"{'model':<18} {'bare wall s':>11} {'ours wall s':>11} {'ratio':>6}  {'bare CPU s':>10} {'ours CPU s':>10} {'ratio':>6}"
        f"  {'paired':>6}"
    )
    for name in args.models.split(","):
        size = SIZES.get(name, 224)
        bare: list[tuple[float, float]] = []
        ours: list[tuple[float, float]] = []
        for _ in range(args.repeat):  # interleaved: a neighbour's burst of work lands on both sides
            bare.append(run([sys.executable, "-c", BARE, name, str(size)]))
            ours.append(
                run([sys.executable, "-m", "cnncalc", "import", f"torchvision:{name}", "--input", f"3x{size}x{size}"])
            )
        bw, ow = (statistics.median(w for w, _ in runs) for runs in (bare, ours))
        bc, oc = (statistics.median(c for _, c in runs) for runs in (bare, ours))
        # each round's own ratio: the two ran back to back, under about the same neighbours
        paired = statistics.median(o / b for (_, b), (_, o) in zip(bare, ours))
        print(
            f"{name:<18} {bw:>11.2f} {ow:>11.2f} {ow / bw:>6.2f}  {bc:>10.2f} {oc:>10.2f} {oc / bc:>6.2f}  {paired:>6.2f}"
        )


if __name__ == "__main__":
    main()
