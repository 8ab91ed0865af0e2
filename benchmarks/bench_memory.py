"""Predicted vs measured peak memory for the built-in architectures, inference and training.

    python benchmarks/bench_memory.py [--batch 16] [--device cpu|cuda] [name ...]

Runs `cnncalc.torch_bridge.profile.profile` (one warm-up, one timed step, no checks) and prints a
Markdown table of cnncalc's prediction, the measurement and their ratio. On CUDA the measurement
is torch.cuda.max_memory_allocated; on CPU the allocations torch.profiler records.
"""

from __future__ import annotations

import argparse

import cnncalc
from cnncalc.analysis import DType
from cnncalc.spec.library import builtin_names
from cnncalc.torch_bridge.profile import profile

MIB = 2**20
SMALL_INPUT = {"googlenet": (3, 224, 224)}  # its spec's 3x227x227 leaves a fraction in pool5


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*", default=builtin_names())
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"])
    args = parser.parse_args()
    print(f"batch {args.batch}, {args.dtype}, {args.device}\n")
    print("| model | inference predicted | measured | ratio | training predicted | measured | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in args.names:
        cells = [name]
        for train in (False, True):
            p = profile(
                cnncalc.load(name),
                input_shape=SMALL_INPUT.get(name),
                device=args.device,
                batch=args.batch,
                dtype=DType(args.dtype),
                warmup=1,
                iters=1,
                train=train,
                check=False,
            )
            assert p.memory_measured is not None and p.memory_predicted is not None
            cells += [
                f"{p.memory_predicted / MIB:,.1f} MiB",
                f"{p.memory_measured / MIB:,.1f} MiB",
                f"{p.memory_measured / p.memory_predicted:.3f}",
            ]
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
