"""Run the mutation fuzzer: `python fuzz/run.py --inputs 10000 --seed 1`.

Prints the figures (inputs, tracebacks, hangs, peak memory, longest message) and each finding
with its reproducer. Where torch is installed one input in eight is a model target (`import` and the
table commands on the broken model files of tests/bad_models, mutated); --no-models leaves them out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fuzz.engine import fuzz  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=int, default=5, help="CPU-time bound per input")
    parser.add_argument("--memory-mb", type=int, default=2048, help="address-space bound of the worker")
    parser.add_argument("--show", type=int, default=20, help="findings to print in full")
    parser.add_argument("--no-models", action="store_true", help="no model targets (they need torch)")
    opts = parser.parse_args()
    shown = [0]

    def progress(figures: object) -> None:
        print(figures.line(), flush=True)  # type: ignore[attr-defined]
        for finding in figures.findings[shown[0] :]:  # type: ignore[attr-defined]
            print(
                f"  found {finding.what}: {finding.case.args} ({finding.case.note}) {finding.detail[-300:]!r}",
                flush=True,
            )
        shown[0] = len(figures.findings)  # type: ignore[attr-defined]

    figures = fuzz(opts.seed, opts.inputs, opts.seconds, opts.memory_mb, progress=progress, models=not opts.no_models)
    print(figures.line())
    for finding in figures.findings[: opts.show]:
        print(f"\n--- {finding.what}: cnncalc {' '.join(map(repr, finding.case.args))} ({finding.case.note})")
        if finding.case.text is not None:
            print("spec:\n" + finding.case.text[:1500])
        print(finding.detail)
    return 1 if figures.findings else 0


if __name__ == "__main__":
    sys.exit(main())
