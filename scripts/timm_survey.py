"""Survey of timm's convolutional networks through cnncalc's PyTorch importer (issue 18), written to a fixture.

For every family of timm (the module of `timm.models` that defines a model) the survey picks one
model, builds it with `pretrained=False` (no weights are ever downloaded), measures it in PyTorch,
imports it with `cnncalc.from_torch` and compares. It measures whichever cnncalc the interpreter
imports, so PYTHONPATH picks the checkout:

    PYTHONPATH=/work/main /work/tvenv/bin/python scripts/timm_survey.py              # every family
    PYTHONPATH=. /work/tvenv/bin/python scripts/timm_survey.py --family resnet,dla   # some, merged
    PYTHONPATH=. /work/tvenv/bin/python scripts/timm_survey.py --models resnet18,dla34

Choosing the models
-------------------
A family's candidates are its models less timm's `test_*` models (tiny configurations for timm's own
tests); of those whose default input (`pretrained_cfg["input_size"]`) is at most 256 px, or all of
them when none is, the one with the fewest parameters (counted on the meta device) represents the
family (`--per-family N` takes the N smallest).

Which families are convolutional networks: the representative is run once on the meta device
under FlopCounterMode, and the share of its FLOPs done by convolutions (`aten.convolution`) decides:

- at least CNN_SHARE (50%): "cnn";
- at least HYBRID_SHARE (5%): "hybrid" (a convolutional stem, stages or token mixers beside
  attention: levit, xcit, coat, ...); both are surveyed;
- below 5%: left out as a pure transformer or MLP: attention or MLP token mixing whose only
  convolution is the patch embedding (a ViT's 16x16 stride-16 conv is about 2% of its MACs) or a
  small neck (SAM's). The fixture lists each with its share and model.

OVERRIDES pins a family either way where the rule would be wrong (none today); a family whose
representative does not run on the meta device is classified by building it on the CPU.

What is measured (each model in its own process: RLIMIT_AS cap, timeout, nice)
-----------------------------------------------------------------------------
The model, in eval mode, at batch 1 on its default input size (`input` has no batch axis, as
cnncalc takes it; output shapes likewise), seeded with torch.manual_seed(0):

- `torch`: params (sum of the parameters' numel), buffers (every buffer, num_batches_tracked
  included, as tests/fixtures/torchvision counts them and cnncalc's rows do), macs (FlopCounterMode's
  total FLOPs // 2 on a batch-1 no-grad pass; its own attention formula also given to CPU's fused
  kernel aten._scaled_dot_product_flash_attention_for_cpu, which it counts as 0 otherwise) and the
  output shape;
- `cnncalc`: the same from `cnncalc.analyze(imported.graph).totals` and the last row, when
  `from_torch(model, input)` succeeds; `exact` says which equal the torch figures;
- `traced_rows`: rows of the imported table whose type is "traced" (0 while the importer has none);
- `roundtrip`: `cnncalc.to_torch(imported.graph)` builds (`builds`), takes the original state_dict with
  strict=True (`loads`) and gives the same output on a random input (`same_output`: max |diff|
  <= 1e-4 * max(1, max |output|)), each with its error when it fails;
- when refused: `error` (the message's first line), `where` (module path or class), `received`,
  and `reason`: the message with the module path left out, so that refusals group by cause;
  `unmapped`: best effort, every op of the traced graph outside the importer's tables (a module
  class, function or method cnncalc has no row for), as the importer stops at its first refusal.

The summary prints the totals and the refusal reasons ranked by how many models each stops (the
first refusal of each model), then the unmapped ops ranked likewise.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import datetime
import json
import os
import re
import resource
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "timm_survey.json"
RESULT = "@@timm_survey@@ "  # a worker's last stdout line: this marker, then its JSON
CNN_SHARE = 0.5
HYBRID_SHARE = 0.05
MAX_SIDE = 256  # prefer models whose default input is at most this many pixels a side
# family -> (kind, why) where the FLOP-share rule would be wrong; kind "cnn", "hybrid" or "transformer"
# (the share is measured on one probe model, and a conv stem's share shrinks as the embedding widens)
OVERRIDES: dict[str, tuple[str, str]] = {
    "coat": (
        "hybrid",
        "convolutional position encodings (depthwise 3x3, 5x5, 7x7) in every block; 4.7% of coat_tiny's FLOPs",
    ),
    "davit": ("hybrid", "convolutional position encodings (depthwise 3x3) in every block; 2.7% of davit_base's FLOPs"),
    "xcit": (
        "hybrid",
        "a convolutional patch stem and a depthwise-conv local patch interaction in every block; "
        "10% of xcit_nano_12_p16_224's FLOPs, 4.7% of xcit_large's",
    ),
    "vision_transformer_hybrid": (
        "hybrid",
        "ViTs on a ResNet or convolutional stem (the probe, vit_base_mci_224, has 1.5% of its FLOPs in convolutions)",
    ),
}
SURVEYED = ("cnn", "hybrid")
KEEP = 10  # candidates kept in the fixture per family, the smallest first (for --per-family)
TOLERANCE = 1e-4  # relative to max(1, max |output|)


# ----- workers (each runs in its own interpreter) ------------------------------------------


def _limit(memory_gb: float) -> None:
    """In the child, before exec: a cap on the address space and a lower priority."""
    cap = int(memory_gb * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    os.nice(10)


def _shape(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return list(value.shape[1:])
    if isinstance(value, (tuple, list)):
        return [_shape(v) for v in value]
    return type(value).__name__


def _first_line(text: Any) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


def _input_size(model: Any) -> list[int]:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    size = cfg.get("input_size")
    if size is None:
        from timm.data import resolve_data_config

        size = resolve_data_config({}, model=model)["input_size"]
    return [int(s) for s in size]


def _fused_attention(query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> int:
    """FlopCounterMode's own attention formula (q @ k^T and attn @ v, as it counts the CUDA kernels
    and the unfused path's two bmm) for CPU's fused kernel, which it has no formula for (it counts 0)."""
    from torch.utils.flop_counter import sdpa_flop_count

    return int(sdpa_flop_count(query, key, value))


def _fused_attention_mapping() -> dict[Any, Any]:
    import torch

    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {op: _fused_attention} if op is not None else {}


def _conv_share(model: Any, size: list[int]) -> tuple[float, int]:
    """(share of FLOPs in aten.convolution, number of convolution modules) of one forward pass."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    convs = sum(isinstance(m, torch.nn.modules.conv._ConvNd) for m in model.modules())
    model.requires_grad_(False)  # FlopCounterMode's module hooks trip on some models' parameters (cait)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, *size, device=device))
    by_op = counter.get_flop_counts().get("Global", {})
    total = sum(by_op.values())
    conv = sum(n for op, n in by_op.items() if "convolution" in str(op))
    return (conv / total if total else 0.0), convs


def _share_of(timm: Any, name: str) -> tuple[float, int]:
    """_conv_share of a model built on the meta device (on the CPU where meta fails: .item(), numpy)."""
    import torch

    try:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False).eval()
        return _conv_share(model, _input_size(model))
    except Exception:  # noqa: BLE001
        model = timm.create_model(name, pretrained=False).eval()
        return _conv_share(model, _input_size(model))


def select_family(family: str) -> dict[str, Any]:
    """A family's kind, judged on one probe model (the first candidate by name), and for a
    surveyed family its candidates ranked by parameters (built on the meta device)."""
    import timm
    import torch

    names = timm.list_models(module=family)
    real = [n for n in names if not n.startswith("test_")] or names
    sizes: dict[str, list[int] | None] = {}
    for n in real:
        cfg = timm.models.get_pretrained_cfg(n)
        sizes[n] = list(cfg.input_size) if cfg is not None and cfg.input_size else None
    small = [n for n in real if sizes[n] is None or max(sizes[n][1:]) <= MAX_SIDE] or real
    probe = sorted(small)[0]
    share, convs = _share_of(timm, probe)
    result: dict[str, Any] = {
        "models": len(names),
        "candidates": len(small),
        "probe": probe,
        "conv_share": round(share, 4),
        "convs": convs,
    }
    kind, why = classify(family, result)
    result |= {"kind": kind, "why": why}
    if kind not in SURVEYED:
        result["ranked"] = [[probe, None, sizes[probe]]]
        return result
    params: dict[str, int] = {}
    failed: dict[str, str] = {}
    for n in small:
        try:
            with torch.device("meta"):
                model = timm.create_model(n, pretrained=False)
            params[n] = sum(p.numel() for p in model.parameters())
        except Exception as err:  # noqa: BLE001 - a model that does not build is listed, not fatal
            failed[n] = f"{type(err).__name__}: {_first_line(err)}"
    ranked = sorted(params, key=lambda n: (params[n], n))
    result |= {"ranked": [[n, params[n], sizes[n]] for n in ranked[:KEEP]], "failed": failed}
    return result


def select_families(families: str) -> None:
    """select_family for each of a comma-separated list, one result line each as it goes."""
    for family in families.split(","):
        try:
            result = {"family": family, **select_family(family)}
        except Exception as err:  # noqa: BLE001
            result = {"family": family, "failure": f"{type(err).__name__}: {_first_line(err)}"}
        print(RESULT + json.dumps(result), flush=True)


def _unmapped(model: Any, size: list[int]) -> list[str] | str:
    """Every op of the model's fx graph outside the importer's tables: traced as the importer does
    (its mapped modules kept as leaves), through its public tables. Best effort."""
    import operator

    import torch
    from torch import fx
    from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

    import cnncalc.torch_bridge as bridge
    from cnncalc.torch_bridge import importer

    own = tuple(c for c in (getattr(bridge, "Piece", None),) if c is not None)

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m: torch.nn.Module, qualified_name: str) -> bool:
            if importer.module_kind(m) is not None or isinstance(m, own):
                return True
            return super().is_leaf_module(m, qualified_name)

    def named(target: Any) -> str:
        name = getattr(target, "__name__", repr(target))
        module = getattr(target, "__module__", None) or ""
        if module in ("_operator", "operator"):
            return f"operator.{name}"
        if module.startswith("torch.nn.functional"):
            return f"F.{name}"
        return f"torch.{name}" if module in ("torch", "") or module.startswith("torch.") else f"{module}.{name}"

    try:
        tracer = Tracer()
        graph = tracer.trace(model)
        gm = fx.GraphModule(tracer.root, graph)
        with torch.no_grad():
            ShapeProp(gm).propagate(torch.zeros(1, *size))
        found: set[str] = set()
        for node in gm.graph.nodes:
            if not isinstance(node.meta.get("tensor_meta"), TensorMetadata):
                continue  # shape arithmetic, tuples of pieces
            if node.op == "call_module":
                module = gm.get_submodule(node.target)
                if importer.module_kind(module) is None and not isinstance(module, own):
                    cls = type(module)
                    prefix = "nn." if cls.__module__.startswith("torch.nn") else f"{cls.__module__}."
                    found.add(f"module {prefix}{cls.__qualname__}")
            elif node.op == "call_function" and node.target is not operator.getitem:
                if node.target not in importer.FUNCTIONS:
                    found.add(f"function {named(node.target)}")
            elif node.op == "call_method" and node.target not in importer.METHODS:
                found.add(f"method .{node.target}()")
        return sorted(found)
    except Exception as err:  # noqa: BLE001
        return f"{type(err).__name__}: {_first_line(getattr(err, 'message', None) or err)}"


def reason_of(message: str, path: str | None) -> str:
    """The refusal's cause: its first line without the module path and the numbers that vary."""
    text = _first_line(message)
    if path:
        text = text.replace(f"'{path}'", "'…'")
    text = re.sub(r"'[\w]+(\.[\w]+)+'", "'…'", text)  # other module paths: 'stages.0.blocks.0.gamma'
    text = re.sub(r"the tensor '[^']*'", "the tensor '…'", text)  # a parameter read directly: 'pos_embed1'
    text = re.sub(r"\[[-\d, ]*\]", "[…]", text)
    text = re.sub(r"\(([-\d]+, )+[-\d]+\)", "(…)", text)
    return text


def measure(name: str) -> dict[str, Any]:
    """One model, in torch and through cnncalc."""
    import timm
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import cnncalc

    times: dict[str, float] = {}
    start = time.perf_counter()
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    model.requires_grad_(False)  # as _conv_share: FlopCounterMode's module hooks trip on some models (cait)
    size = _input_size(model)
    x = torch.randn(1, *size)
    counter = FlopCounterMode(display=False, custom_mapping=_fused_attention_mapping())
    with torch.no_grad(), counter:
        output = model(x)
    ref = {
        "params": sum(p.numel() for p in model.parameters()),
        "buffers": sum(b.numel() for b in model.buffers()),
        "macs": counter.get_total_flops() // 2,
        "output": _shape(output),
    }
    times["torch"] = time.perf_counter() - start
    record: dict[str, Any] = {"input": size, "torch": ref, "imported": False}

    start = time.perf_counter()
    try:
        imported = cnncalc.from_torch(model, size, name=name)
    except Exception as err:  # noqa: BLE001 - every refusal is recorded
        times["import"] = time.perf_counter() - start
        message = getattr(err, "message", None) or str(err)
        where = getattr(err, "where", None)
        path = getattr(where, "path", None)
        received = getattr(err, "received", None)
        cnncalc_error = isinstance(err, cnncalc.CnncalcError)
        record |= {
            "error": _first_line(message) if cnncalc_error else f"{type(err).__name__}: {_first_line(message)}",
            "where": str(where) if where is not None and str(where) else None,
            "received": None if received is None or not cnncalc_error else _first_line(received)[:300],
            "reason": reason_of(message, path) if cnncalc_error else f"crash: {type(err).__name__}",
        }
        record["unmapped"] = _unmapped(model, size)
        record["seconds"] = {k: round(v, 1) for k, v in times.items()}
        return record
    times["import"] = time.perf_counter() - start

    report = cnncalc.analyze(imported.graph)
    mine = {
        "params": report.totals.params,
        "buffers": report.totals.buffers,
        "macs": report.totals.macs,
        "output": list(report.rows[-1].output_shape),
    }
    record |= {
        "imported": True,
        "cnncalc": mine,
        "exact": {key: mine[key] == ref[key] for key in ref},
        "rows": len(report.rows) - 1,
        "traced_rows": sum(1 for row in report.rows if row.type == "traced"),
        # what each traced row ran (a module class or a function), by how many rows
        "traced_ops": dict(
            collections.Counter(
                str(getattr(node.layer, "op", "?")) for node in imported.graph.nodes if node.kind == "traced"
            ).most_common()
        ),
        "unused": list(imported.unused),
    }

    start = time.perf_counter()
    trip: dict[str, Any] = {"builds": False, "loads": False, "same_output": False}
    try:
        rebuilt = cnncalc.to_torch(imported.graph).eval()
        trip["builds"] = True
        rebuilt.load_state_dict(model.state_dict(), strict=True)
        trip["loads"] = True
        with torch.no_grad():
            theirs, ours = model(x), rebuilt(x)
        diff = (ours - theirs).abs().max().item()
        trip["max_diff"] = diff
        trip["same_output"] = diff <= TOLERANCE * max(1.0, theirs.abs().max().item())
    except Exception as err:  # noqa: BLE001
        trip["error"] = f"{type(err).__name__}: {_first_line(getattr(err, 'message', None) or err)}"[:300]
    times["roundtrip"] = time.perf_counter() - start
    record["roundtrip"] = trip
    record["seconds"] = {k: round(v, 1) for k, v in times.items()}
    return record


def _worker(kind: str, arg: str, threads: int) -> None:
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(threads)
    if kind == "select":
        select_families(arg)
    else:
        print(RESULT + json.dumps(measure(arg)), flush=True)


# ----- the driver --------------------------------------------------------------------------


def run_worker(kind: str, arg: str, args: argparse.Namespace, timeout: float) -> tuple[list[dict[str, Any]], float]:
    """A worker's results, then {"failure": ...} when it died, ran out of time or memory."""
    command = [sys.executable, __file__, "--worker", kind, arg, "--threads", str(args.threads)]
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, preexec_fn=lambda: _limit(args.memory)
        )
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode() if isinstance(err.stdout, bytes) else err.stdout or ""
        results = [json.loads(line[len(RESULT) :]) for line in out.splitlines() if line.startswith(RESULT)]
        return [*results, {"failure": f"timeout after {timeout:.0f}s"}], time.perf_counter() - start
    took = time.perf_counter() - start
    results = [json.loads(line[len(RESULT) :]) for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode == 0 and results:
        return results, took
    tail = [line for line in done.stderr.strip().splitlines() if line.strip()]
    memory = any("MemoryError" in line or "std::bad_alloc" in line or "DefaultCPUAllocator" in line for line in tail)
    why = (
        f"out of memory (RLIMIT_AS {args.memory:g} GB)" if memory else (tail[-1] if tail else f"exit {done.returncode}")
    )
    return [*results, {"failure": why[:300]}], took


def _versions() -> dict[str, Any]:
    import timm
    import torch

    import cnncalc

    root = Path(cnncalc.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "cnncalc"], capture_output=True, text=True
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = None, False
    return {
        "timm": timm.__version__,
        "torch": torch.__version__.split("+")[0],
        "cnncalc": {"checkout": str(root), "commit": commit, "dirty": dirty},
    }


def classify(family: str, selection: dict[str, Any]) -> tuple[str, str]:
    if family in OVERRIDES:
        return OVERRIDES[family]
    share = selection.get("conv_share")
    if share is None:
        return "unknown", "no model of the family builds"
    pct = f"{100 * share:.1f}% of its FLOPs in convolutions"
    if share >= CNN_SHARE:
        return "cnn", pct
    if share >= HYBRID_SHARE:
        return "hybrid", pct
    return "transformer", f"{pct} (patch embedding only): a pure transformer or MLP"


def _fixture_text(data: dict[str, Any]) -> str:
    """JSON with one line per family and per model, so that a regeneration diffs model by model."""
    lines = []
    for key, value in data.items():
        if isinstance(value, dict) and value and key in ("families", "excluded", "models", "failed"):
            inner = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in value.items())
            lines.append(f" {json.dumps(key)}: {{\n{inner}\n }}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def summary(data: dict[str, Any], out: Any = sys.stdout) -> None:
    models = data["models"]
    surveyed = {f for f, v in data["families"].items() if v["kind"] in ("cnn", "hybrid")}
    imported = [m for m, r in models.items() if r.get("imported")]
    exact = [m for m in imported if all(models[m]["exact"].values())]
    clean = [m for m in exact if models[m]["traced_rows"] == 0]
    trip = [m for m in imported if all(models[m]["roundtrip"].get(k) for k in ("builds", "loads", "same_output"))]
    failed = data.get("failed", {})
    print(
        f"timm {data['timm']}, torch {data['torch']}, cnncalc {data['cnncalc']['checkout']} "
        f"@ {data['cnncalc']['commit']}{' (modified)' if data['cnncalc']['dirty'] else ''}",
        file=out,
    )
    print(
        f"families: {len(data['families'])} in timm, {len(surveyed)} surveyed (cnn or hybrid), "
        f"{len(data['excluded'])} left out as transformers/MLPs",
        file=out,
    )
    n = len(models) + len(failed)
    pct = lambda k: f"{k} ({100 * k / n:.0f}%)" if n else str(k)  # noqa: E731
    print(
        f"models: {n}; imported {pct(len(imported))}, exact {pct(len(exact))}, exact with no traced row "
        f"{pct(len(clean))}, round trip {pct(len(trip))}; the survey itself failed on {len(failed)}",
        file=out,
    )
    for m, why in failed.items():
        print(f"  failed: {m}: {why}", file=out)
    for m in imported:
        if m not in exact:
            bad = [k for k, ok in models[m]["exact"].items() if not ok]
            mine, theirs = models[m]["cnncalc"], models[m]["torch"]
            print(f"  inexact: {m}: " + ", ".join(f"{k} {mine[k]} vs {theirs[k]}" for k in bad), file=out)
        if m not in trip:
            print(f"  round trip: {m}: {models[m]['roundtrip']}", file=out)

    uses: dict[str, list[str]] = defaultdict(list)
    for m in imported:
        for op in models[m].get("traced_ops", {}):
            uses[op].append(m)
    print(f"\ntraced ops, by how many imported models have them ({len(uses)} ops):", file=out)
    for op, names in sorted(uses.items(), key=lambda item: (-len(item[1]), item[0])):
        print(f"  {len(names):>3}  {op}  e.g. {', '.join(names[:4])}", file=out)

    reasons: dict[str, list[str]] = defaultdict(list)
    for m, r in models.items():
        if not r.get("imported"):
            reasons[r["reason"]].append(m)
    print(f"\nrefusals by first reason ({sum(map(len, reasons.values()))} models):", file=out)
    for reason, names in sorted(reasons.items(), key=lambda item: (-len(item[1]), item[0])):
        print(
            f"  {len(names):3d}  {reason}\n       e.g. {', '.join(names[:6])}{' ...' if len(names) > 6 else ''}",
            file=out,
        )
    ops: Counter[str] = Counter()
    examples: dict[str, list[str]] = defaultdict(list)
    for m, r in models.items():
        if isinstance(r.get("unmapped"), list):
            ops.update(r["unmapped"])
            for op in r["unmapped"]:
                examples[op].append(m)
    print(f"\nops outside the importer's tables, by how many refused models have them ({len(ops)} ops):", file=out)
    for op, k in sorted(ops.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {k:3d}  {op}  e.g. {', '.join(examples[op][:4])}", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", help="comma-separated model names to (re)measure, merged into the fixture")
    parser.add_argument("--family", help="comma-separated families to (re)select and (re)measure, merged")
    parser.add_argument("--per-family", type=int, default=1, help="models per family, the smallest first")
    parser.add_argument("--reselect", action="store_true", help="choose the models again (else the fixture's choice)")
    parser.add_argument("--jobs", type=int, default=1, help="models measured at once")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per worker (cores / jobs)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per model")
    parser.add_argument("--memory", type=float, default=8, help="address-space cap per worker, GB")
    parser.add_argument("--out", type=Path, default=FIXTURE)
    parser.add_argument("--summary", action="store_true", help="only print the summary of the fixture")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.threads = args.threads or max(1, (os.cpu_count() or 1) // max(1, args.jobs))
    if args.worker:
        _worker(*args.worker, args.threads)
        return 0

    old = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.summary:
        summary(old)
        return 0

    import timm

    versions = _versions()
    partial = bool(args.models or args.family)
    same_timm = old.get("timm") == versions["timm"]
    families: dict[str, Any] = dict(old.get("families", {})) if same_timm else {}
    models: dict[str, Any] = dict(old.get("models", {})) if partial and same_timm else {}
    failed: dict[str, str] = dict(old.get("failed", {})) if partial and same_timm else {}
    all_families = timm.list_modules()
    wanted = args.family.split(",") if args.family else [] if args.models else all_families
    unknown = [f for f in wanted if f not in all_families]
    if unknown:
        parser.error(f"not a timm family: {unknown}")

    start = time.perf_counter()
    to_select = [f for f in wanted if args.reselect or args.family or f not in families]

    # families in one process per job (importing torch and timm once), interleaved for balance
    chunks = [",".join(to_select[i :: args.jobs]) for i in range(args.jobs) if to_select[i :: args.jobs]]

    def select(chunk: str) -> tuple[str, list[dict[str, Any]], float]:
        results, took = run_worker("select", chunk, args, timeout=max(args.timeout * 30, 3600))
        return chunk, results, took

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for chunk, results, took in pool.map(select, chunks):
            done = {r["family"]: r for r in results if "family" in r}
            failure = next((r["failure"] for r in results if "family" not in r), "no result")
            for family in chunk.split(","):
                result = done.get(family, {"failure": failure})
                if "failure" in result:
                    families[family] = {"kind": "unknown", "why": f"selection failed: {result['failure']}"}
                else:
                    families[family] = {k: v for k, v in result.items() if k != "family"}
                entry = families[family]
                print(
                    f"{family}: {entry['kind']} ({entry['why']}), {(entry.get('ranked') or [['-']])[0][0]}",
                    file=sys.stderr,
                )
            print(f"({len(chunk.split(','))} families selected in {took:.0f}s)", file=sys.stderr)
    select_seconds = time.perf_counter() - start

    module_of = timm.models._registry._model_to_module
    if args.models:
        todo = [(module_of.get(m, "?"), m) for m in args.models.split(",")]
    else:
        todo = [
            (f, entry[0])
            for f in wanted
            if families[f]["kind"] in SURVEYED
            for entry in families[f].get("ranked", [])[: args.per_family]
        ]

    def work(item: tuple[str, str]) -> tuple[str, str, dict[str, Any], float]:
        family, name = item
        results, took = run_worker("measure", name, args, timeout=args.timeout)
        return family, name, results[-1], took

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for family, name, result, took in pool.map(work, todo):
            if "failure" in result:
                failed[name] = result["failure"]
                models.pop(name, None)
                print(f"{name}: FAILED ({result['failure']}) {took:.0f}s", file=sys.stderr)
                continue
            failed.pop(name, None)
            models[name] = {"family": family, **result, "seconds_total": round(took, 1)}
            state = "imported" if result["imported"] else f"refused: {result['reason']}"
            print(f"{name} [{family}]: {state}, {took:.0f}s", file=sys.stderr)
    measure_seconds = time.perf_counter() - start

    for record in models.values():  # idempotent: merged records from an older normalisation brought up to date
        if "reason" in record:
            record["reason"] = reason_of(record["reason"], None)
    order = {f: i for i, f in enumerate(all_families)}
    models = dict(sorted(models.items(), key=lambda item: (order.get(item[1]["family"], 1e9), item[0])))
    data = {
        "generated_by": "scripts/timm_survey.py",
        **versions,
        "date": datetime.date.today().isoformat(),
        "conventions": {
            "input": "each model's default input size (pretrained_cfg['input_size']), without the batch axis",
            "shapes": "without the batch axis (batch 1)",
            "buffers": "every buffer, num_batches_tracked included",
            "macs": "FlopCounterMode's total FLOPs // 2, batch 1, eval, no grad",
            "roundtrip": f"to_torch(), load_state_dict(strict=True), max |diff| <= {TOLERANCE} * max(1, max |output|)",
            "rule": f"families whose smallest model (input <= {MAX_SIDE} px preferred) runs >= {HYBRID_SHARE:.0%} "
            f"of its FLOPs in convolutions are surveyed (cnn >= {CNN_SHARE:.0%}, else hybrid)",
        },
        # a partial run keeps the full run's timing
        "seconds": old.get("seconds")
        if partial and same_timm and "seconds" in old
        else {"select": round(select_seconds), "measure": round(measure_seconds)},
        "families": {f: families[f] for f in all_families if f in families},
        "excluded": {
            f: {"why": v["why"], "model": (v.get("ranked") or [[None]])[0][0]}
            for f, v in families.items()
            if v["kind"] not in ("cnn", "hybrid")
        },
        "models": models,
        "failed": failed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(_fixture_text(data))
    print(f"selection {select_seconds:.0f}s, measuring {measure_seconds:.0f}s ({len(todo)} models)\n", file=sys.stderr)
    summary(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
