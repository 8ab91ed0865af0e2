"""Does `cnncalc profile` report the latency an independent timer measures?

For each case: cnncalc's median (profile(), checks off) next to torch.utils.benchmark.Timer's
median for the same module, input and mode, and the relative difference. The issue's target is
within 5% at batch 64 and above on a GPU. Run: python benchmarks/bench_profile.py [--device cuda]
"""

from __future__ import annotations

import argparse

import torch
import torch.utils.benchmark as benchmark

import cnncalc
from cnncalc.analysis import DType
from cnncalc.torch_bridge import build
from cnncalc.torch_bridge.profile import profile

CPU_CASES = [("resnet18", 8, "3x112x112"), ("vgg11", 4, "3x64x64"), ("alexnet", 8, None)]
CUDA_CASES = [
    ("resnet50", 256, None, "fp32"),
    ("resnet50", 256, None, "bf16"),
    ("resnet34", 256, None, "fp32"),
    ("resnet18", 64, None, "fp32"),
    ("vgg16", 64, None, "fp32"),
]


def independent(name: str, batch: int, shape, device: str, dtype: str, channels_last: bool) -> float:
    graph = cnncalc.load(name)
    model = build(graph, shape).to(device).eval()
    x = torch.randn(batch, *(shape or graph.input_shape), device=device)
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    cast = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]

    def step() -> None:
        with torch.inference_mode():
            if cast is None:
                model(x)
            else:
                with torch.autocast(torch.device(device).type, dtype=cast):
                    model(x)

    for _ in range(10):
        step()
    # Timer runs single-threaded unless told: give it the threads profile() uses
    timer = benchmark.Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=2.0).median * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    cases = CUDA_CASES if args.device.startswith("cuda") else [(n, b, s, "fp32") for n, b, s in CPU_CASES]
    name_of = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"device: {name_of}; torch {torch.__version__}")
    print("| model | batch | dtype | input | cnncalc median ms | Timer median ms | difference |")
    print("|---|---:|---|---|---:|---:|---:|")
    for name, batch, text, dtype in cases:
        shape = tuple(int(v) for v in text.split("x")) if text else None
        for channels_last in [False, True] if dtype != "fp32" else [False]:
            p = profile(
                cnncalc.load(name),
                input_shape=shape,
                device=args.device,
                batch=batch,
                dtype=DType(dtype),
                channels_last=channels_last,
                check=False,
                warmup=10,
                iters=50,
            )
            ref = independent(name, batch, shape, args.device, dtype, channels_last)
            label = dtype + (" + channels-last" if channels_last else "")
            print(
                f"| {name} | {batch} | {label} | {text or 'default'} | {p.timing.median_ms:.2f} | {ref:.2f} | "
                f"{100 * (p.timing.median_ms - ref) / ref:+.1f}% |"
            )
    heavy_and_light(args.device)


HEAVY_AND_LIGHT = """
name: heavy-and-light
input: [32, 64, 64]
layers:
  - identity: {name: light}
  - conv: {out: 64, kernel: 5, padding: 2, name: heavy}
  - relu: {name: cheap}
"""


def heavy_and_light(device: str) -> None:
    """Does --per-layer find the heavy layer? A 5x5 conv (2 x 64x64x64 x 32x5x5 = 1.68 GFLOPs)
    between an identity and a ReLU: its share should dwarf theirs (a timing, so shown, not tested)."""
    from cnncalc.spec import parse_text

    p = profile(parse_text(HEAVY_AND_LIGHT), device=device, check=False, warmup=3, iters=20, per_layer=True)
    print("\nper-layer pass on a 5x5 conv between an identity and a ReLU (the conv should stand out):")
    for layer in p.layers:
        print(f"  {layer.row:<6} {layer.median_ms:8.3f} ms  {100 * p.share(layer):5.1f}%")
    heavy = max(p.layers, key=lambda layer: layer.median_ms)
    others = max(layer.median_ms for layer in p.layers if layer is not heavy)
    print(f"  slowest: {heavy.row}, {heavy.median_ms / others:.1f}x the next")


if __name__ == "__main__":
    main()
