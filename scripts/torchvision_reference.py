"""Reference figures of torchvision's CNN zoo (issue 10 §3), written to a committed fixture.

torchvision 0.29.1 needs torch 2.14.1, which cannot sit beside the project's torch, so this runs
in its own environment:

    python3 -m venv /work/tvenv && /work/tvenv/bin/pip install torch==2.14.1 torchvision==0.29.1
    /work/tvenv/bin/python scripts/torchvision_reference.py --jobs 2           # every model
    /work/tvenv/bin/python scripts/torchvision_reference.py resnet18 alexnet   # some, index merged

Each model is built with weights=None in eval mode and run once at batch 1 on its standard input
(the crop size of its DEFAULT weights' transforms; segmentation at 520x520, the resize size of
its transforms). `tests/fixtures/torchvision/<model>.json.gz` holds, per model:

- `input_shape`, `output_shape` (shapes keep the batch axis, which is 1), `params`, `weights`
  (parameters whose name does not end with "bias"), `biases`, `buffers` (num_batches_tracked
  included), `flops` (FlopCounterMode's total; MACs = flops / 2) and `flops_by_op`;
- `modules`: every entry of named_modules() in order ("" is the model itself), each with its class,
  `params` (direct, recurse=False), `params_total` (recursive), `biases` and `buffers` (direct),
  `repr` (extra_repr), `calls` (one [input shapes, output shape] per call, in call order: a module
  torchvision reuses has several), `flops` (FlopCounterMode's count for the module, all calls,
  children included) and `ops` (the aten ops run by the module's own forward outside any child
  module, with their output shapes: the functional part of a container such as
  squeeze-excitation's `scale * input`; recorded for containers and for leaf classes outside
  torch.nn);
- `state_dict`: its sorted keys with their shapes.

`tests/fixtures/torchvision/index.json` lists the versions, each model's totals, and the models
that failed to generate (with the error) and those torchvision has that the issue leaves out.
The files are deterministic (gzip without a timestamp), so regenerating shows only real changes.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import json
import multiprocessing
import sys
import time
import traceback
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "torchvision"

# issue 10 §3, in its order: every classification CNN of torchvision 0.29 and six segmentation models
CLASSIFICATION = [
    "alexnet",
    *(f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")),
    *(f"resnet{d}" for d in (18, 34, 50, 101, 152)),
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
    "googlenet",
    "inception_v3",
    *(f"densenet{d}" for d in (121, 161, 169, 201)),
    "squeezenet1_0",
    "squeezenet1_1",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    *(f"mnasnet{w}" for w in ("0_5", "0_75", "1_0", "1_3")),
    *(f"shufflenet_v2_x{w}" for w in ("0_5", "1_0", "1_5", "2_0")),
    *(f"efficientnet_b{i}" for i in range(8)),
    "efficientnet_v2_s",
    "efficientnet_v2_m",
    "efficientnet_v2_l",
    *(f"regnet_{k}_{s}" for k in ("x", "y") for s in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf")),
    *(f"convnext_{s}" for s in ("tiny", "small", "base", "large")),
]
SEGMENTATION = [
    "fcn_resnet50",
    "fcn_resnet101",
    "deeplabv3_resnet50",
    "deeplabv3_resnet101",
    "deeplabv3_mobilenet_v3_large",
    "lraspp_mobilenet_v3_large",
]
MODELS = CLASSIFICATION + SEGMENTATION

# builder arguments beyond weights=None: no auxiliary heads, no pretrained backbone, no slow init
KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "init_weights": False},
    "inception_v3": {"aux_logits": False, "init_weights": False},
    **{name: {"aux_loss": False, "weights_backbone": None} for name in SEGMENTATION[:5]},
    "lraspp_mobilenet_v3_large": {"weights_backbone": None},  # it has no auxiliary head
}
SEGMENTATION_SIZE = 520  # SemanticSegmentation(resize_size=520) of the segmentation weights

# torchvision models the issue leaves out, and why (checked against list_models() on each run)
EXCLUDED = {
    "regnet_y_128gf": "left out by issue 10 (too large: 644.8M parameters)",
    "maxvit_t": "a transformer",
    "swin_t": "a transformer",
    "swin_s": "a transformer",
    "swin_b": "a transformer",
    "swin_v2_t": "a transformer",
    "swin_v2_s": "a transformer",
    "swin_v2_b": "a transformer",
    "vit_b_16": "a transformer",
    "vit_b_32": "a transformer",
    "vit_l_16": "a transformer",
    "vit_l_32": "a transformer",
    "vit_h_14": "a transformer",
}


def input_shape(name: str) -> list[int]:
    """[1, 3, H, W]: the crop size of the DEFAULT weights' transforms (224 unless they say otherwise)."""
    from torchvision.models import get_model_weights

    if name in SEGMENTATION:
        return [1, 3, SEGMENTATION_SIZE, SEGMENTATION_SIZE]
    keywords = get_model_weights(name).DEFAULT.transforms.keywords
    size = keywords["crop_size"]
    return [1, 3, size, size]


def _shapes(value: Any) -> Any:
    """A tensor's shape as a list; tuples and lists of tensors as lists of those; dicts by key."""
    import torch

    if isinstance(value, torch.Tensor):
        return list(value.shape)
    if isinstance(value, (tuple, list)):
        return [_shapes(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _shapes(v) for k, v in value.items()}
    return None if value is None else type(value).__name__


def _numel(tensors: Any) -> int:
    return sum(t.numel() for t in tensors)


def reference(name: str, shape: list[int] | None = None) -> dict[str, Any]:
    """Everything the fixture keeps for one model, measured on torchvision itself."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode
    from torchvision.models import get_model

    torch.manual_seed(0)
    model = get_model(name, weights=None, **KWARGS.get(name, {})).eval()
    shape = shape or input_shape(name)
    x = torch.randn(*shape)
    modules = dict(model.named_modules())
    containers = {n for n, m in modules.items() if len(m._modules) > 0}
    own_ops = {n for n, m in modules.items() if n in containers or not type(m).__module__.startswith("torch.nn")}

    calls: dict[str, list[list[Any]]] = {n: [] for n in modules}
    ops: dict[str, list[list[Any]]] = {n: [] for n in modules}
    stack: list[str] = []

    class OwnOps(TorchDispatchMode):
        """Logs the aten ops a module's own forward runs outside its children."""

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if stack and stack[-1] in own_ops:
                ops[stack[-1]].append([str(func.overloadpacket).removeprefix("aten."), _shapes(out)])
            return out

    def pre_hook(module_name: str):
        def hook(_module, _inputs):
            stack.append(module_name)

        return hook

    def post_hook(module_name: str):
        def hook(_module, inputs, output):
            stack.pop()
            calls[module_name].append([_shapes(list(inputs)), _shapes(output)])

        return hook

    handles = []
    for n, m in modules.items():
        handles.append(m.register_forward_pre_hook(pre_hook(n)))
        handles.append(m.register_forward_hook(post_hook(n)))
    with torch.no_grad(), OwnOps():
        output = model(x)
    for handle in handles:
        handle.remove()

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    root = type(model).__name__
    flops_by_module: dict[str, int] = {}
    for key, by_op in counter.get_flop_counts().items():
        if key == "Global":
            continue
        module_name = "" if key == root else key.removeprefix(root + ".")
        flops_by_module[module_name] = sum(by_op.values())
    total = counter.get_total_flops()

    records = []
    for n, m in modules.items():
        direct = dict(m.named_parameters(recurse=False))
        record: dict[str, Any] = {
            "name": n,
            "class": type(m).__name__,
            "params": _numel(direct.values()),
            "params_total": _numel(m.parameters()),
            "biases": _numel(p for k, p in direct.items() if k.endswith("bias")),
            "buffers": _numel(m.buffers(recurse=False)),
            "calls": calls[n],
            "flops": flops_by_module.get(n, 0),
        }
        if m.extra_repr():
            record["repr"] = m.extra_repr()
        if n in own_ops and ops[n]:
            record["ops"] = ops[n]
        records.append(record)

    named = dict(model.named_parameters())
    return {
        "model": name,
        "kwargs": {"weights": None, **KWARGS.get(name, {})},
        "input_shape": shape,
        "output_shape": _shapes(output),
        "params": _numel(named.values()),
        "weights": _numel(p for k, p in named.items() if not k.endswith("bias")),
        "biases": _numel(p for k, p in named.items() if k.endswith("bias")),
        "buffers": _numel(model.buffers()),
        "flops": total,
        "flops_by_op": {
            str(op).removeprefix("aten."): n
            for op, n in sorted(counter.get_flop_counts().get("Global", {}).items(), key=lambda item: str(item[0]))
        },
        "modules": records,
        "state_dict": sorted([k, list(v.shape)] for k, v in model.state_dict().items()),
    }


TOTALS = ("input_shape", "output_shape", "params", "weights", "biases", "buffers", "flops")


def write(record: dict[str, Any], folder: Path) -> None:
    data = json.dumps(record, separators=(",", ":")).encode()
    with (
        open(folder / f"{record['model']}.json.gz", "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0, filename="") as f,
    ):
        f.write(data)


def load(name: str, folder: Path = FIXTURE) -> dict[str, Any]:
    with gzip.open(folder / f"{name}.json.gz", "rb") as f:
        return json.loads(f.read())


def _index_text(index: dict[str, Any]) -> str:
    """The index as JSON with one line per model, so that a regeneration diffs model by model."""
    lines = []
    for key, value in index.items():
        if isinstance(value, dict) and value:
            inner = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in value.items())
            lines.append(f" {json.dumps(key)}: {{\n{inner}\n }}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _work(name: str) -> tuple[str, dict[str, Any] | None, str | None, float]:
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        record = reference(name)
    except Exception:  # noqa: BLE001 - every failure is recorded in the index, none skipped silently
        return name, None, traceback.format_exc(limit=3), time.perf_counter() - start
    return name, record, None, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", help="models to (re)generate; default: all of issue 10 §3")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (each uses one thread)")
    parser.add_argument("--out", type=Path, default=FIXTURE)
    args = parser.parse_args(argv)

    import torch
    import torchvision
    from torchvision.models import list_models

    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"not in issue 10's list: {unknown}")
    args.out.mkdir(parents=True, exist_ok=True)
    index_path = args.out / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() and args.models else {}
    models = dict(index.get("models", {}))
    failed = dict(index.get("failed", {}))

    available = set(list_models(module=torchvision.models)) | set(list_models(module=torchvision.models.segmentation))
    missing = sorted(set(MODELS) - available)
    unlisted = sorted(set(list_models(module=torchvision.models)) - set(MODELS) - set(EXCLUDED))
    if missing or unlisted:
        print(
            f"torchvision lacks {missing}; has classification models neither listed nor excluded: {unlisted}",
            file=sys.stderr,
        )

    todo = args.models or MODELS
    start = time.perf_counter()
    seconds: dict[str, float] = {}
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=context) as pool:
        for name, record, error, took in pool.map(_work, todo):
            seconds[name] = took
            if error is not None:
                failed[name] = error
                models.pop(name, None)
                print(f"{name}: FAILED in {took:.1f}s\n{error}", file=sys.stderr)
                continue
            failed.pop(name, None)
            write(record, args.out)
            models[name] = {key: record[key] for key in TOTALS} | {"macs": record["flops"] // 2}
            print(f"{name}: {record['params']:,} params, {record['flops'] // 2:,} MACs, {took:.1f}s", file=sys.stderr)

    index = {
        "generated_by": "scripts/torchvision_reference.py",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "shapes": "torch shapes with the batch axis (batch 1)",
        "macs": "FlopCounterMode's FLOPs / 2",
        "models": {m: models[m] for m in MODELS if m in models},
        "failed": {m: failed[m] for m in MODELS if m in failed},
        "excluded": EXCLUDED,
        "missing": missing,
        "unlisted": unlisted,
    }
    index_path.write_text(_index_text(index))
    print(
        f"{len(todo)} model(s) in {time.perf_counter() - start:.0f}s; slowest: "
        + ", ".join(f"{n} {s:.0f}s" for n, s in sorted(seconds.items(), key=lambda i: -i[1])[:5]),
        file=sys.stderr,
    )
    return 1 if any(m in failed for m in todo) else 0


if __name__ == "__main__":
    sys.exit(main())
