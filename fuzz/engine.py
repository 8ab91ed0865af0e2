"""A seeded mutation fuzzer for cnncalc's command line: bad input must end in a message, never a
traceback, a hang, a memory blow-up or a message of megabytes.

Inputs are made from the built-in specs and small generated ones by mutating their text (deleted,
repeated or truncated lines, misspelt keys, unicode and control characters, random bytes) and their
YAML data (deleted keys, retyped values, huge and negative numbers, deep nesting, alias bombs),
plus devices and directories, and from the quiz tools' options with mutated values; `--arg` values
(a built-in family's arguments, a model's keywords: malformed, nested hundreds deep, alias bombs,
tags, huge numbers and texts); and model targets
for `import` and the table commands: the broken model files of tests/bad_models (and a CIFAR ResNet),
as they are or mutated, under well- and badly-formed targets (every eighth input, where torch is
installed). Each input runs
in-process through typer's CliRunner on `cnncalc.cli.app`, in a worker process with an address-space
limit (RLIMIT_AS) and a per-input CPU-time alarm; a worker that dies or stops answering is replaced.
A model whose own code never finishes is the model's, not a finding: the alarm's traceback shows it
in the model file (counted as `model hangs`); stopped anywhere else, it is cnncalc's hang.

Used by tests/test_fuzz.py (a few hundred inputs) and fuzz/run.py (thousands).
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import random
import resource
import signal
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import yaml

_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # making inputs fast; cnncalc's own loader is under test
_FAST_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURES = ROOT / "cnncalc" / "architectures"
CNNCALC_DIR = str(ROOT / "cnncalc") + "/"
# model files: each broken one of tests/bad_models (its first line names the target), and a good one
MODEL_FILES = sorted((ROOT / "tests" / "bad_models").glob("*.py")) + [
    ROOT / "tests" / "fixtures" / "idioms" / "cifar_resnet.py"
]
MODEL_EVERY = 8  # one input in eight is a model target (where torch is installed)
MODEL_SECONDS = 3  # CPU seconds for a model input: torch is loaded before the workers start

SPEC_COMMANDS = (
    ["shapes"],
    ["params"],
    ["params", "--biases"],
    ["memory"],
    ["flops"],
    ["flops", "--convention", "all"],
    ["summary"],
    ["validate"],
    ["shapes", "--rf"],
    ["shapes", "--explain"],
    ["summary", "--explain", "--rf"],
    ["export", "--to", "torch"],
    ["check", "--shape", "7x7x3", "--params", "35K"],
)
WEIRD_TEXT = [
    "",
    " ",
    "0",
    "-1",
    "1e309",
    "nan",
    "inf",
    "10" * 40,
    "3x0",
    "x",
    "a\nb",
    "\x00",
    "é",
    "∞",
    "1.5",
    "-0",
    "99999999999999999999",
    "1;2|3",
    "same",
    "valid",
    "[",
    "{",
    "1,2,3,4,5",
    "2x2x2x2",
]
WEIRD_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    -(10**30),
    10**9,
    10**18,
    10**100,
    "",
    "x",
    "a\nb",
    "\u202e",
    "same",
    [],
    {},
    [1, 2, 3],
    {"a": 1},
    [[[]]],
    float("nan"),
    float("inf"),
]


@dataclass(frozen=True)
class Case:
    """One fuzz input: the command line; `text` (or `data` bytes) is written to the file `{spec}` names."""

    args: tuple[str, ...]
    text: str | None = None
    data: bytes | None = None
    note: str = ""
    seconds: float | None = None  # this input's CPU-time bound, where not the run's


@dataclass
class Finding:
    case: Case
    what: str  # "traceback", "hang", "crash", "long message", "export does not parse"
    detail: str


@dataclass
class Figures:
    inputs: int = 0
    tracebacks: int = 0
    hangs: int = 0
    model_hangs: int = 0  # a model's own code that never finished (the model's, not a finding)
    crashes: int = 0  # the worker died: out of memory past RLIMIT_AS, or worse
    peak_memory_mb: float = 0.0
    longest_message: int = 0
    findings: list[Finding] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"inputs {self.inputs:,}, tracebacks {self.tracebacks}, hangs {self.hangs} (and {self.model_hangs} in "
            f"models' own code), crashes {self.crashes}, "
            f"peak memory {self.peak_memory_mb:.0f} MB, longest message {self.longest_message:,} characters"
        )


# ----- making inputs ---------------------------------------------------------------------------


def builtin_texts() -> list[str]:
    # the built-ins, and the docs' examples of the spec forms of issue 19 (from: in, merge: mul,
    # add:, conditional values, tf_same)
    examples = [ROOT / "docs" / "examples" / name for name in ("se_block.yaml", "tf_same.yaml")]
    return [p.read_text() for p in [*sorted(ARCHITECTURES.rglob("*.yaml")), *examples]]


LAYER_MAKERS = [
    lambda r: {
        "conv": {
            "out": r.randint(1, 16),
            "kernel": r.randint(1, 5),
            "stride": r.randint(1, 3),
            "padding": r.randint(0, 2),
        }
    },
    lambda r: {"maxpool": {"kernel": r.randint(1, 3), "stride": r.randint(1, 3)}},
    lambda r: {
        "avgpool": {"kernel": r.randint(1, 3), "padding": r.randint(0, 1), "count_include_pad": r.random() < 0.5}
    },
    lambda r: {"adaptive_avgpool": r.randint(1, 8)},
    lambda r: "relu",
    lambda r: "bn",
    lambda r: "flatten",
    lambda r: {"linear": r.randint(1, 64)},
    lambda r: {"conv_transpose": {"out": r.randint(1, 8), "kernel": r.randint(1, 4), "stride": r.randint(1, 3)}},
    lambda r: {"residual": {"body": [{"conv": {"out": 4, "kernel": 3, "padding": 1}}, "relu"]}},
    lambda r: {"parallel": {"branches": [["relu"], [{"conv": {"out": 2, "kernel": 1}}]]}},
    lambda r: "lrn",
    lambda r: "dropout",
    lambda r: "softmax",
    lambda r: "gap",
    # issue 19's forms: TensorFlow's 'same' at a stride, an SE gate as a parallel mul, a residual's add:
    lambda r: {
        "conv": {
            "out": r.randint(1, 8),
            "kernel": r.randint(1, 6),
            "stride": r.randint(1, 4),
            "dilation": r.randint(1, 2),
            "padding": "tf_same",
        }
    },
    lambda r: {
        "parallel": {
            "branches": [[], ["gap", {"conv": {"out": r.randint(1, 4), "kernel": 1}}, "sigmoid"]],
            "merge": r.choice(["mul", "add", "concat"]),
        }
    },
    lambda r: {
        "residual": {
            "body": [{"conv": {"out": 4, "kernel": 3, "padding": 1, "stride": r.randint(1, 2)}}],
            "add": r.choice([True, False]),
        }
    },
]


def block_text(r: random.Random) -> str:
    """A spec with blocks in issue 19's forms: a squeeze-excitation reading its own input (`from: in`),
    an inverted residual whose `add:` is a condition, and values chosen by `a if c else b`."""
    squeeze, t = r.randint(1, 8), r.randint(1, 6)
    uses = [
        {"inverted": {"out": r.choice([4, 8, 16, "$width"]), "down": r.random() < 0.5, "t": t}}
        for _ in range(r.randint(1, 4))
    ]
    spec = {
        "args": {"width": r.choice([4, 8, 16])},
        "input": [r.choice([3, 4, 8]), r.randint(4, 32), r.randint(4, 32)],
        "blocks": {
            "se": {
                "args": {"squeeze": squeeze},
                "layers": [
                    {"adaptive_avgpool": {"output": 1, "name": "avgpool"}},
                    {"conv": {"out": "$squeeze", "kernel": 1}},
                    "relu",
                    {"conv": {"out": "$in", "kernel": 1}},
                    {"sigmoid": {"name": "gate"}},
                    {"mul": {"from": [r.choice(["gate", "in", "input"]), r.choice(["in", "gate", "0"])]}},
                ],
            },
            "inverted": {
                "args": {"out": None, "down": False, "t": 4},
                "body": [
                    {"conv": {"out": "$in * $t", "kernel": 1}},
                    "relu6",
                    {
                        "conv": {
                            "out": "$in * $t",
                            "kernel": 3,
                            "stride": "2 if $down else 1",
                            "padding": r.choice([1, "tf_same", "same"]),
                            "groups": "$in * $t",
                        }
                    },
                    {"se": {"squeeze": "$in // 4 if $in > 4 else 1", "when": r.choice([True, "$t > 2"])}},
                    {"conv": {"out": "$out", "kernel": 1}},
                ],
                "add": r.choice(["not $down and $in == $out", True, "$down", "1 if $down else 0"]),
            },
        },
        "layers": [{"conv": {"out": "$width", "kernel": 3, "padding": "tf_same", "name": "stem"}}, *uses],
    }
    return yaml.safe_dump(spec, sort_keys=False)


def generated_text(r: random.Random) -> str:
    rank = r.choice([1, 2, 2, 2, 3])
    spec = {
        "input": [r.randint(1, 4), *(r.randint(4, 40) for _ in range(rank))],
        "layers": [r.choice(LAYER_MAKERS)(r) for _ in range(r.randint(1, 8))],
    }
    return yaml.safe_dump(spec, sort_keys=False)


def _walk(node: object) -> list[tuple[object, object]]:
    """(container, key) for every place in a YAML value."""
    out: list[tuple[object, object]] = []
    stack = [node]
    seen: set[int] = set()  # shared by an alias: walked once (an alias bomb stays cheap)
    while stack and len(out) < 100_000:
        cur = stack.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        items = cur.items() if isinstance(cur, dict) else enumerate(cur) if isinstance(cur, list) else ()
        for k, v in list(items):
            out.append((cur, k))
            stack.append(v)
    return out


def mutate_data(r: random.Random, text: str) -> str:
    try:
        data = yaml.load(text, Loader=_FAST_LOADER)  # noqa: S506 - a safe loader (libyaml's when built)
    except (yaml.YAMLError, RecursionError, ValueError):
        return text
    for _ in range(r.randint(1, 3)):
        places = _walk(data)
        if not places:
            break
        container, key = r.choice(places)
        op = r.randrange(6)
        if op == 0:  # delete a key or an item
            del container[key]  # type: ignore[index, attr-defined]
        elif op == 1:  # retype the value
            # a copy: mutating it later must not change WEIRD_VALUES (cases() would not repeat itself)
            container[key] = copy.deepcopy(r.choice(WEIRD_VALUES))  # type: ignore[index]
        elif op == 2:  # a number: huge, zero, negative, off by one
            value = container[key]  # type: ignore[index]
            if isinstance(value, int) and not isinstance(value, bool):
                container[key] = r.choice([0, -value, value + 1, value * 10 ** r.randint(3, 12), 2**63, 10**9])  # type: ignore[index]
            else:
                container[key] = r.randint(-3, 10 ** r.randint(1, 12))  # type: ignore[index]
        elif op == 3 and isinstance(container, dict):  # misspell a key
            k = str(key)
            if len(k) > 1:
                i = r.randrange(len(k) - 1)
                container[k[:i] + k[i + 1] + k[i] + k[i + 2 :]] = container.pop(key)
        elif op == 4:  # wrap in structures
            for _ in range(r.choice([1, 5, 70, 300])):
                container[key] = r.choice([[container[key]], {"sequential": {"layers": [container[key]]}}])  # type: ignore[index]
        else:  # a name with odd characters
            container[key] = {
                "relu": {"name": r.choice(["a\nb", "", "x" * 5000, "a.b", "\t", "é", "\u0085", "1", " "])}
            }  # type: ignore[index]
    try:
        return yaml.dump(data, Dumper=_FAST_DUMPER, sort_keys=False, allow_unicode=r.random() < 0.5)
    except (yaml.YAMLError, RecursionError):
        return text


def mutate_text(r: random.Random, text: str) -> str:
    lines = text.splitlines()
    op = r.randrange(9)
    if op == 0 and lines:
        del lines[r.randrange(len(lines))]
    elif op == 1 and lines:
        i = r.randrange(len(lines))
        lines[i:i] = [lines[i]] * r.randint(1, 3)
    elif op == 2:
        return text[: r.randrange(len(text) + 1)]  # truncated
    elif op == 3 and text:
        i = r.randrange(len(text))
        return (
            text[:i]
            + r.choice(
                [
                    "\x00",
                    "\x07",
                    "\t",
                    "\r",
                    "é",
                    "\u200b",
                    "\ufeff",
                    "\U0001f600",
                    "\ud800x"[1:],
                    "'",
                    '"',
                    ":",
                    "- ",
                    "&a",
                    "*a",
                    "!!python/object",
                    "{",
                    "]",
                ]
            )
            + text[i:]
        )
    elif op == 4 and lines:  # a number swapped for a huge one
        i = r.randrange(len(lines))
        lines[i] = "".join(ch if not ch.isdigit() else r.choice(["9" * r.randint(1, 30), ch, "-"]) for ch in lines[i])
    elif op == 5:  # deep flow nesting
        n = r.choice([65, 201, 500, 5600])
        return text + "\nx-deep: " + "[" * n + "1" + "]" * n + "\n"
    elif op == 6:  # an alias bomb, in a layer position or a free key
        levels = r.randint(3, 10)
        bomb = ["x-a0: &a0 [relu, relu, relu, relu, relu, relu, relu, relu, relu, relu]"]
        bomb += [f"x-a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
        use = r.choice(
            [
                f"layers: [sequential: {{layers: *a{levels - 1}}}]",
                f"layers: *a{levels - 1}",
                f"layers: [conv: {{out: 1, kernel: *a{levels - 1}}}]",
            ]
        )
        return "input: [3, 8, 8]\n" + "\n".join(bomb) + "\n" + use + "\n"
    elif op == 7 and lines:  # indentation broken
        i = r.randrange(len(lines))
        lines[i] = " " * r.randint(0, 5) + lines[i].lstrip()
    elif op == 8 and lines:
        r.shuffle(lines)
    return "\n".join(lines) + "\n"


def quiz_case(r: random.Random) -> Case:
    def weird() -> str:
        return r.choice(
            WEIRD_TEXT + [str(r.randint(-2, 6)), str(10 ** r.randint(3, 13)), f"{r.randint(0, 4)}x{r.randint(0, 4)}"]
        )

    def values() -> str:
        rows = [" ".join(str(r.randint(-5, 9)) for _ in range(r.randint(1, 5))) for _ in range(r.randint(1, 5))]
        text = "; ".join(rows)
        return weird() if r.random() < 0.15 else text

    tool = r.randrange(8)
    if tool == 5:  # inverse questions
        if r.random() < 0.3:
            args = [
                "solve",
                "--receptive-field",
                r.choice(["15", "7", "1", weird()]),
                "--layers",
                r.choice(["3", "1", weird()]),
            ]
            opts = ["--kernel", "--stride", "--output", "--padding"]
        else:
            args = ["solve", "--output", r.choice(["55", "32", "1", weird()])]
            opts = ["--input", "--kernel", "--stride", "--padding", "--dilation", "--exact"]
        for opt in r.sample(opts, r.randint(0, min(4, len(opts)))):
            args += [opt] if opt == "--exact" else [opt, r.choice([str(r.randint(0, 40)), weird()])]
        if r.random() < 0.2:
            args += ["--format", r.choice(["json", "text", "xml"])]
        return Case(tuple(args), note="quiz solve")
    if tool == 6:  # a quiz file with the new question kinds, mutated
        text = quiz_file_text(r)
        for _ in range(r.randint(0, 2)):
            text = mutate_data(r, text) if r.random() < 0.5 else mutate_text(r, text)
        return Case(
            ("check", "{spec}", *(["--format", "json"] if r.random() < 0.2 else [])), text=text, note="quiz file"
        )
    if tool == 7:  # conv's new forms: TensorFlow's 'same' and the separable comparison
        args = [
            "conv",
            "--input",
            r.choice(["224x224x3", "112x112x32", "7", "1x1x1", weird()]),
            "--kernel",
            r.choice(["3", "3x5", "11", weird()]),
            "--padding",
            r.choice(["tf_same", "same", "valid", "1", weird()]),
        ]
        opts = ["--stride", "--dilation", "--out", "--groups", "--channels"]
        if r.random() < 0.6:
            args.append("--separable")
        if r.random() < 0.1:
            args.append("--transposed")
        for opt in r.sample(opts, r.randint(0, 3)):
            args += [opt, r.choice([str(r.randint(1, 5)), weird()])]
        return Case(tuple(args), note="quiz conv new")
    if tool == 0:
        args = [
            "conv",
            "--input",
            r.choice(["227x227x3", "7", "32x32", "1x1x1", weird()]),
            "--kernel",
            r.choice(["3", "11", weird()]),
        ]
        opts = ["--stride", "--padding", "--dilation", "--out", "--groups", "--output-padding", "--channels"]
        if r.random() < 0.3:
            args.append("--transposed")
    elif tool == 1:
        args = ["pool", "--kernel", r.choice(["2", "3", weird()])]
        args += ["--values", values()] if r.random() < 0.6 else ["--input", r.choice(["8x8x3", "7", weird()])]
        opts = ["--stride", "--padding", "--dilation", "--mode"]
        if r.random() < 0.3:
            args.append(r.choice(["--ceil-mode", "--exclude-pad", "--steps"]))
    elif tool == 2:
        args = ["convolve", "--input", values(), "--kernel", values()]
        opts = ["--stride", "--padding", "--dilation", "--bias"]
        if r.random() < 0.3:
            args.append(r.choice(["--flip", "--steps"]))
    elif tool == 3:
        args = ["convolve-transpose", "--input", values(), "--kernel", values()]
        opts = ["--stride", "--padding", "--dilation", "--output-padding", "--bias"]
    else:
        args = [
            "check",
            r.choice(["alexnet", "vgg16", "lenet5", "nosuch", "x" * 5000]),
            "--layer",
            r.choice(["conv1", "pool1", "fc8", weird()]),
        ]
        opts = ["--shape", "--params", "--weights", "--macs", "--memory", "--input"]
    for opt in r.sample(opts, r.randint(0, min(3, len(opts)))):
        args += [opt, r.choice(["avg", "max"]) if opt == "--mode" and r.random() < 0.5 else weird()]
    if r.random() < 0.2:
        args += ["--format", r.choice(["json", "markdown", "text", "xml"])]
    return Case(tuple(args), note=f"quiz {args[0]}")


# a built-in family's arguments (`--arg layers=[2, 2, 2, 2]`), and names that are none of them
ARG_TARGETS = ("resnet18", "resnet", "vgg16", "vgg", "mobilenet_v2", "efficientnet_b0", "lenet5", "densenet121")
ARG_NAMES = ("layers", "width_per_group", "groups", "bn", "width", "num_classes", "block", "depth", "x", "_", "None")


def arg_value(r: random.Random) -> str:
    """An `--arg` value: plausible, malformed YAML, or built to hurt a recursive parser (nesting
    hundreds of levels deep, issue 19), an alias bomb, a tag, a huge number or a long text."""
    depth = r.choice([2, 10, 100, 500, 5000])
    pick = r.randrange(12)
    if pick == 0:
        return "[" * depth + "1" + "]" * depth
    if pick == 1:
        return "{a: " * depth + "1" + "}" * depth
    if pick == 2:
        return "[" * depth  # unclosed
    if pick == 3:
        return "[&a [1, 2], &b [*a, *a], &c [*b, *b], &d [*c, *c], *d]"
    if pick == 4:
        return r.choice(["!!python/object:os.system 'x'", "!!binary aGk=", "!!set {a}", "!!timestamp 2001-12-14"])
    if pick == 5:
        return str(r.choice([10**100, -(10**30), 2**63, 0, -1])) + r.choice(["", ".5", "e309", "e-400"])
    if pick == 6:
        return r.choice(["x" * 100_000, "é" * 1000, "\x00", "a: b", "- 1", "|", ">", "&a *a", "*a", "? x", "%YAML 1.2"])
    if pick == 7:
        return "[" + ", ".join(str(r.randint(-3, 9)) for _ in range(r.randint(0, 8))) + "]"
    if pick == 8:
        return r.choice(["[1, [2]]", "[{a: 1}]", "{}", "[]", "null", "~", "true", "yes", "0x10", "0o7", "1_000"])
    return r.choice(WEIRD_TEXT + ["2", "0.5", "1e-6", "[3, 4, 6, 3]", "[2, 2, 2, 2]", "bottleneck", "basic"])


def arg_pairs(r: random.Random) -> list[str]:
    """One to three `--arg` options: name=value, or a malformed pair now and then."""
    out: list[str] = []
    for _ in range(r.randint(1, 3)):
        name = r.choice(ARG_NAMES)
        out += [
            "--arg",
            r.choice(
                [
                    f"{name}={arg_value(r)}",
                    f"{name}={arg_value(r)}",
                    f"{name}={arg_value(r)}",
                    name,
                    f"={arg_value(r)}",
                    f"{name} ={arg_value(r)}",
                    f"2{name}=1",
                ]
            ),
        ]
    return out


def arg_case(r: random.Random) -> Case:
    """A built-in (or a spec file's) arguments set from the command line: `--arg` is untrusted
    text too, read as YAML like a spec."""
    command = list(r.choice(SPEC_COMMANDS))
    target = r.choice(ARG_TARGETS)
    return Case((*command, target, *arg_pairs(r)), note="arg")


def quiz_file_text(r: random.Random) -> str:
    """A quiz file of issue 19's question kinds: solve (window and receptive field), separable,
    conv with tf_same and without out; answers right, wrong or odd."""

    def answer() -> object:
        return r.choice([r.randint(0, 64), "3x3x1", "55x55x96", "2,432", "29.3M", "does not fit", None, [], "x"])

    questions: list[dict[str, object]] = []
    for _ in range(r.randint(1, 6)):
        kind = r.randrange(5)
        if kind == 0:
            given = {"input": r.randint(1, 240), "output": r.randint(1, 60), "kernel": r.randint(1, 11)}
            if r.random() < 0.3:
                given["stride"] = r.randint(1, 4)
            unknowns = [k for k in ("stride", "padding") if k not in given]
            questions.append({"solve": given, "values": {k: r.randint(0, 5) for k in unknowns}})
        elif kind == 1:
            given = {"receptive_field": r.randint(1, 40), "layers": r.randint(1, 5)}
            questions.append({"solve": given, "values": {"kernel": r.randint(1, 7), "stride": r.randint(1, 3)}})
        elif kind == 2:
            layer = {
                "input": r.choice(["112x112x32", "8x8x4", "7"]),
                "kernel": r.randint(1, 5),
                "out": r.randint(1, 64),
                "padding": r.choice([0, 1, "tf_same", "same"]),
                "stride": r.randint(1, 3),
            }
            questions.append({"separable": layer, r.choice(["params", "macs", "shape", "weights"]): answer()})
        else:
            layer = {
                "input": r.choice(["224x224x3", "227x227x3", "7"]),
                "kernel": r.randint(1, 11),
                "stride": r.randint(1, 4),
                "padding": r.choice(["tf_same", "tf_same", "same", 0]),
            }
            if r.random() < 0.5:
                layer["out"] = r.randint(1, 96)
            questions.append({"conv": layer, r.choice(["shape", "params", "macs"]): answer()})
    return yaml.safe_dump({"title": "fuzz", "questions": questions}, sort_keys=False)


def spec_case(r: random.Random, sources: list[str]) -> Case:
    command = list(r.choice(SPEC_COMMANDS))
    pick = r.random()
    if pick < 0.12:
        return arg_case(r)
    if pick < 0.15:
        return Case(
            (*command, r.choice(["/dev/zero", "/dev/urandom", "/dev/null", "/", "/nonexistent/x.yaml", "."])),
            note="device",
        )
    if pick < 0.18:
        return Case(
            (*command, "{spec}"), data=bytes(r.randrange(256) for _ in range(r.randint(0, 3000))), note="random bytes"
        )
    pick = r.random()
    text = r.choice(sources) if pick < 0.55 else block_text(r) if pick < 0.65 else generated_text(r)
    for _ in range(r.randint(1, 3)):
        text = mutate_data(r, text) if r.random() < 0.5 else mutate_text(r, text)
    extra: list[str] = []
    if r.random() < 0.15:
        extra = [
            r.choice(["--input", "--batch", "--depth", "--dtype", "--layout", "--format"]),
            r.choice(WEIRD_TEXT + ["3x224x224", "224x224x3", "2", "bf16", "chw", "json"]),
        ]
    return Case((*command, "{spec}", *extra), text=text, note="spec")


def _target_name(text: str) -> str:
    first = text.splitlines()[0] if text else ""
    return first[len("# target: ") :].strip() if first.startswith("# target: ") else "ResNet18"


MODEL_COMMANDS = (["import"], ["import"], ["summary"], ["flops"], ["sweep"])
WEIRD_TARGETS = [
    "{model}::{name}",
    "{model}:",
    ":{name}",
    "{model}:{name}.forward",
    "{model}:{name}x",
    "{model}:9",
    "{model}:__init__",
    "{missing}:{name}",
    "{model}:{name}:{name}",
    "torch.nn:Nope",
    "no.such.pkg:Net",
    "{model}/x.py:{name}",
    " {model}:{name}",
]


def model_case(r: random.Random) -> Case:
    """A model target: a tests/bad_models file (or the CIFAR ResNet), as it is or mutated, under a
    well-formed target or a broken one, for `import` or a table command."""
    path = r.choice(MODEL_FILES)
    text = path.read_text()
    name = _target_name(text) if path.parent.name == "bad_models" else r.choice(["ResNet18", "resnet20", "BasicBlock"])
    if r.random() < 0.4:
        for _ in range(r.randint(1, 3)):
            text = mutate_text(r, text)
    target = (
        "{model}:" + name
        if r.random() < 0.8
        else r.choice(WEIRD_TARGETS).format(model="{model}", name=name, missing="/nonexistent/m.py")
    )
    shape = r.choice(["3x8x8", "3x32x32", "3x{16,32}x{16,32}", "1x28x28"] + WEIRD_TEXT[:12])
    args = [*r.choice(MODEL_COMMANDS), target, "--input", shape]
    if r.random() < 0.2:
        args += ["--arg", r.choice(["width=2", "num_classes=0", "n=-1", "x=[1, 2]"])]
    elif r.random() < 0.1:  # the model's keywords: as untrusted as a spec's arguments
        args += arg_pairs(r)
    return Case(tuple(args), text=text, note="model", seconds=MODEL_SECONDS)


def torch_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def iter_cases(seed: int, count: int, models: bool | None = None) -> Iterator[Case]:
    """`count` inputs; with `models` (default: where torch is installed) every MODEL_EVERY-th is a
    model target, drawn from a stream of its own so that the other inputs stay what they were."""
    r = random.Random(seed)
    rm = random.Random(seed * 7919 + 1)
    models = torch_installed() if models is None else models
    sources = builtin_texts()
    for n in range(count):
        if models and n % MODEL_EVERY == MODEL_EVERY - 1:
            yield model_case(rm)
            continue
        yield quiz_case(r) if r.random() < 0.25 else spec_case(r, sources)


def cases(seed: int, count: int, models: bool | None = None) -> list[Case]:
    return list(iter_cases(seed, count, models))


# ----- running them ------------------------------------------------------------------------


class Hang(BaseException):
    """Raised by the CPU-time alarm; a BaseException so that no `except Exception` in cnncalc swallows it."""


REFIRE_SECONDS = 1.0


def _alarm(signum: int, frame: object) -> None:
    # armed again before it raises: a Hang raised while Python runs a finalizer or a weakref
    # callback is lost ("Exception ignored in ..."), and the loop it was to stop runs on, growing
    # (a CI worker's traced loop reached its 8 GiB limit so). Whoever catches it disarms (`_disarm`).
    which = signal.ITIMER_PROF if signum == signal.SIGPROF else signal.ITIMER_REAL
    signal.setitimer(which, REFIRE_SECONDS)
    raise Hang()


def _disarm() -> None:
    """No alarm left to fire: after a Hang is caught (the alarm armed itself again)."""
    signal.setitimer(signal.ITIMER_PROF, 0)
    signal.setitimer(signal.ITIMER_REAL, 0)


def run_one(case: Case, runner: object, app: object, workdir: Path) -> tuple[str | None, str, int]:
    """(finding kind or None, detail, message length) for one case, in this process."""
    import ast

    args = list(case.args)
    model: Path | None = None
    if "{spec}" in args:
        path = workdir / "spec.yaml"
        path.write_bytes(case.data if case.data is not None else case.text.encode("utf-8", "surrogatepass"))  # type: ignore[union-attr]
        args = [str(path) if a == "{spec}" else a for a in args]
    if any("{model}" in a for a in args):
        # a new name each time: Python caches modules and source lines by file name
        _MODEL_COUNT[0] += 1
        model = workdir / f"model_{_MODEL_COUNT[0]}.py"
        model.write_text(case.text or "", encoding="utf-8", errors="surrogatepass")
        args = [a.replace("{model}", str(model)) for a in args]
    try:
        result = runner.invoke(app, args)  # type: ignore[attr-defined]
    except Hang as hang:
        _disarm()
        return _hang_kind(hang.__traceback__, model), "", 0
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        if isinstance(result.exception, Hang):
            _disarm()
            return _hang_kind(result.exc_info[2] if result.exc_info else None, model), "", len(stderr)
        detail = "".join(traceback.format_exception(result.exception))[-3000:]
        return "traceback", detail, len(stderr)
    if model is not None and result.exit_code == 0 and not result.stdout.strip():
        # every model command prints its spec or table: exit 0 with nothing is an exit swallowed
        # (a model's sys.exit(0) in forward once ended `cnncalc import` so, with no spec)
        return "silent exit", stderr[:500], len(stderr)
    if args[0] == "export" and result.exit_code == 0:
        try:
            ast.parse(result.stdout)
        except SyntaxError as err:
            return "export does not parse", str(err), len(stderr)
    if len(stderr) > 2000:
        return "long message", stderr[:500], len(stderr)
    return None, "", len(stderr)


_MODEL_COUNT = [0]


BRIDGE_DIR = CNNCALC_DIR + "torch_bridge/"


def _hang_kind(tb: object, model: Path | None) -> str:
    """ "model hang" when the alarm stopped the model's own code (the innermost frame that is the
    model file's or cnncalc's is the model's), else "hang": cnncalc's own code did not finish."""
    if model is not None:
        for frame in reversed(traceback.extract_tb(tb)):  # type: ignore[arg-type]
            if frame.filename == str(model):
                return "model hang"
            # the importer's tracer runs each op as the model's forward calls it, with the bridge's
            # helpers (a FlopCounterMode per op): a bridge frame inside the model's is the model's
            # loop calling, not cnncalc's own. Only the tracer's frame was let through once, and an
            # alarm landing in `flop_counter()` made a model's endless loop a finding of cnncalc's
            if frame.filename.startswith(CNNCALC_DIR) and not frame.filename.startswith(BRIDGE_DIR):
                break
    return "hang"


def _address_space() -> int:
    """This process's virtual size in bytes (0 where /proc is absent)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def _worker(conn: object, seconds: int, memory_mb: int) -> None:
    # RLIMIT_AS bounds the whole address space: a worker forked from a process that already maps
    # torch starts with gigabytes of it, so the bound is what the worker may add on top
    limit = _address_space() + memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from typer.testing import CliRunner

    from cnncalc.cli import app

    runner = CliRunner()
    # the bound is CPU time (ITIMER_PROF), so a busy machine does not turn slow inputs into "hangs"
    signal.signal(signal.SIGPROF, _alarm)
    with tempfile.TemporaryDirectory() as tmp:
        while True:
            case = conn.recv()  # type: ignore[attr-defined]
            if case is None:
                return
            signal.setitimer(signal.ITIMER_PROF, case.seconds or seconds)
            try:
                outcome = run_one(case, runner, app, Path(tmp))
            except Hang:
                _disarm()
                outcome = ("hang", "", 0)
            except MemoryError:
                outcome = ("traceback", "MemoryError outside the runner", 0)
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
            left = torch_state_left()
            if left and outcome[0] in (None, "model hang"):
                outcome = ("torch state left", left, outcome[2])
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            conn.send((*outcome, rss_mb))  # type: ignore[attr-defined]


def torch_state_left() -> str:
    """What a case left in torch's process-wide state, taken back so that the next case starts clean:
    a dispatch mode still on the stack, or grad mode off (an import interrupted inside a per-op
    counter once left its FlopCounterMode to every later op). Empty where torch is not loaded."""
    if "torch" not in sys.modules:
        return ""
    from cnncalc.torch_bridge import restore_torch_state

    return ", ".join(restore_torch_state())


def fuzz(
    seed: int, count: int, seconds: int = 5, memory_mb: int = 2048, progress: object = None, models: bool | None = None
) -> Figures:
    """Run `count` seeded inputs; each bounded by `seconds` and a worker limited to `memory_mb`;
    model targets among them with `models` (default: where torch is installed)."""
    models = torch_installed() if models is None else models
    # Workers fork from a server process that loaded cnncalc (and torch) but never ran an op: a
    # worker forked from this process, once torch's OpenMP threads have run here (any test before
    # this one in a pytest worker), waits for those threads forever in its first parallel op (a
    # convolution of a model target: "no answer"), as OpenMP is not fork-safe.
    context = mp.get_context("forkserver")
    # The preload holds what a process loads once, whatever it runs: torch's symbolic shapes (and
    # sympy, 0.4 to 0.8 s of CPU) load on the first op the importer's tracer meets, and counted against
    # the first model case's CPU bound they were most of it (torch._dynamo, 1.6 s more, loaded there
    # too until the bridge stopped needing it: that is how a CI run once called it a hang)
    torch_preload = ["cnncalc.torch_bridge.importer", "torch.fx.experimental.symbolic_shapes"]
    context.set_forkserver_preload(["cnncalc.cli", *(torch_preload if models else [])])
    figures = Figures()
    worker = conn = None
    for n, case in enumerate(iter_cases(seed, count, models)):
        if worker is None:
            conn, child = context.Pipe()
            worker = context.Process(target=_worker, args=(child, seconds, memory_mb), daemon=True)
            worker.start()
        conn.send(case)  # type: ignore[union-attr]
        kind, detail, length, rss = None, "", 0, 0.0
        if conn.poll(10 * seconds + 60):  # type: ignore[union-attr]  # wall clock: generous, the machine may be busy
            try:
                kind, detail, length, rss = conn.recv()  # type: ignore[union-attr]
            except EOFError:
                kind, detail = "crash", f"worker died (exit {worker.exitcode})"
        else:
            kind, detail = "hang", "no answer (the alarm did not stop it)"
        if kind in ("crash", "hang") and detail:
            worker.kill()
            worker.join()
            worker = conn = None
        figures.inputs += 1
        figures.peak_memory_mb = max(figures.peak_memory_mb, rss)
        figures.longest_message = max(figures.longest_message, length)
        if kind == "model hang":  # the model's own loop: the model's, not a finding
            figures.model_hangs += 1
            kind = None
        if kind is not None:
            figures.tracebacks += kind == "traceback"
            figures.hangs += kind == "hang"
            figures.crashes += kind == "crash"
            figures.findings.append(Finding(case, kind, detail))
            if progress is not None:
                progress(figures)  # type: ignore[operator]
        if progress is not None and (n + 1) % 250 == 0:
            progress(figures)  # type: ignore[operator]
    if worker is not None:
        conn.send(None)  # type: ignore[union-attr]
        worker.join(5)
    return figures
