"""The spec JSON Schema (for editors): generated from the layer registry, committed, printed by
`cnncalc schema`; every built-in passes it and the schema-detectable broken specs fail it."""

from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from helpers.tools import optional
from typer.testing import CliRunner

from cnncalc import schema
from cnncalc.cli import app
from cnncalc.layers import ALIASES, REGISTRY, ArgKind
from cnncalc.layers.arguments import Refused
from cnncalc.spec.library import builtin_names, builtin_path

jsonschema = optional("jsonschema")  # the tests that validate skip without it (their fixtures)
runner = CliRunner()
BAD_SPECS = Path(__file__).parent / "bad_specs"


@pytest.fixture(scope="module")
def validator():
    pytest.importorskip("jsonschema")
    spec_schema = schema.spec_schema()
    jsonschema.Draft202012Validator.check_schema(spec_schema)
    return jsonschema.Draft202012Validator(spec_schema)


def test_committed_copy_is_generated(regen_golden):
    generated = schema.schema_text(schema.spec_schema())
    if regen_golden:
        schema.SPEC_SCHEMA_PATH.write_text(generated)
    assert schema.SPEC_SCHEMA_PATH.read_text() == generated, "run: pytest tests/test_schema.py --regen-golden"


def test_cli_prints_it():
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert result.stdout == schema.SPEC_SCHEMA_PATH.read_text()
    result = runner.invoke(app, ["schema", "report"])
    assert result.exit_code == 0 and '"title": "cnncalc JSON output"' in result.stdout


# YAML values of every shape the argument kinds read (and some none of them does)
SAMPLES = [
    0,
    1,
    2,
    5,
    -1,
    1.5,
    True,
    False,
    None,
    "same",
    "valid",
    "channels",
    "none",
    "tanh",
    "row",
    "batch",
    "x",
    "",
    [],
    [1],
    [0],
    [1, 2],
    [1, 2, 3],
    [1, 2, 3, 4],
    [0, 1],
    [0, 2, 3, 1],
    [2, 32, -1],
    [-1, -1],
    [None, 1],
    [[64, 56, 56]],
    [[1], [2, 3]],
    [[]],
    [1.5],
    [0.5, 2],
]


@pytest.mark.parametrize("kind", [k for k in ArgKind if k is not ArgKind.CHOICE], ids=lambda k: k.name)
def test_each_arg_kind_schema_accepts_what_its_converter_reads(kind):
    """Each kind's schema next to its converter: an editor must never flag a value cnncalc reads
    (the schema may be looser: it cannot say that [0, 2, 3, 1] is a permutation)."""
    pytest.importorskip("jsonschema")
    check = jsonschema.Draft202012Validator(kind.schema)
    read = []
    for value in SAMPLES:
        try:
            kind.convert(value, ())
        except Refused:
            continue
        read.append(value)
        assert check.is_valid(value), (kind.name, value)
    assert read  # the samples reach every kind


def test_every_type_alias_and_argument_is_listed():
    item = schema.spec_schema()["$defs"]["item"]["anyOf"][1]["properties"]
    assert set(REGISTRY) | set(ALIASES) | {"sequential", "residual", "parallel", "call"} == set(item)
    defs = schema.spec_schema()["$defs"]
    for kind, cls in REGISTRY.items():
        arguments = defs[f"layer.{kind}"]["anyOf"][0]["properties"]
        for f in fields(cls):
            assert {f.name, *f.metadata["aliases"]} <= set(arguments), kind


@pytest.mark.parametrize("name", builtin_names())
def test_builtins_pass(validator, name):
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(builtin_path(name).path.read_text()))]
    assert errors == []


# broken specs the schema sees without expanding the spec (the others need the graph)
DETECTABLE = [
    "empty",
    "empty_name",
    "malformed_input",
    "missing_input",
    "missing_required",
    "name_with_newline",
    "not_a_mapping",
    "null_layers",
    "repeat_too_large",
    "top_level_list",
    "two_keys",
    "unknown_key",
    "unknown_top_key",
    "wrong_type",
    "outputs_not_rows",
]


@pytest.mark.parametrize("stem", DETECTABLE)
def test_broken_specs_fail(validator, stem):
    data = yaml.safe_load((BAD_SPECS / f"{stem}.yaml").read_text())
    assert not validator.is_valid(data)


@pytest.mark.parametrize(
    "text",
    [
        "input: [3, 8, 8]\nlayers: [conv: {out: 4, kernel: 3, padding: middle}]",  # not same/valid
        "input: [3, 8, 8]\nlayers: [dropout: 1.5]",  # a probability, via the shorthand
        "input: [3, 8, 8]\nlayers: [upsample: {scale: 2, mode: cubic}]",  # not a choice
        "input: [3, 8, 8]\nlayers: [parallel: {branches: [[relu]]}]",  # one branch
        "input: [3, 8, 8]\nblocks: {b: {args: {n: 1}}}\nlayers: [b]",  # a block without a body
        "input: [3, 8, 8]\nlayers: [conv: {out: 4, kernel: 3, from: []}]",
        # issue 19: no `blocks:` and no `include:`, so a key can only be a known type (an editor underlines it)
        "{input: [3, 8, 8], layers: [{convv: {out: 8}}]}",
        "{input: [3, 8, 8], layers: [convv]}",
        "{input: [3, 8, 8], layers: [{residual: {body: [{convv: {out: 3}}]}}]}",  # nested too
        "input: [3, 8, 8]\nlayers: [parallel: {branches: [[relu], [tanh]], merge: max}]",
    ],
)
def test_invalid_values_fail(validator, text):
    assert not validator.is_valid(yaml.safe_load(text))


@pytest.mark.parametrize(
    "text",
    [
        "input: [3, 8, 8]\nx-conv: &c {out: 4, kernel: 3}\nlayers: [conv: *c, conv2d: {out_channels: 4, kernel_size: 1}]",
        "input: [3, 8, 8]\nblocks: {b: {args: {n: null, down: false}, layers: [conv: {out: $n * 2, kernel: 3, when: $down}]}}\n"
        "layers: [b: {n: 4, repeat: 2, name: stage}]",
        "input: [3, 8, 8]\nlayers: [residual: {body: [relu], shortcut: [conv: {out: 3, kernel: 1}], after: [relu]}, linear: 10]",
        "input: [3, 8, 8]\nlayers: [parallel: {branches: [{name: a, layers: [relu]}, [tanh]], merge: add}, add: {from: [0, 1]}]",
        "args: {size: 8}\ninput: [3, $size, $size]\nlayers: [relu]",  # a family's input size from its args
        "input: [3, 8, 8]\nlayers: [relu, tanh]\noutputs: [0, 1]",  # several outputs: a tuple, a list, a dict
        "input: [3, 8, 8]\nlayers: [relu, tanh]\noutputs: {list: [0, 1]}",
        "input: [3, 8, 8]\nlayers: [relu, tanh]\noutputs: {a: 0, b: '1'}",
        # with blocks (or an include) an unknown key may be a block: left to the spec reader
        "{input: [3, 8, 8], blocks: {se: {layers: [relu]}}, layers: [{se: {}}, se]}",
        "{input: [3, 8, 8], include: other.yaml, layers: [{convv: {out: 8}}]}",
        "{input: [3, 8, 8], args: {kind: relu}, layers: [{$kind: null}]}",  # a type chosen by an argument
        "input: [3, 8, 8]\nlayers: [parallel: {branches: [[], [sigmoid]], merge: mul}]",  # squeeze-excitation's x * s
    ],
)
def test_valid_specs_pass(validator, text):
    assert [e.message for e in validator.iter_errors(yaml.safe_load(text))] == []


# ----- the JSON of every command, against report.schema.json ---------------------------------

COMMANDS = [
    ("report", "shapes lenet5 --rf --explain"),
    ("report", "params resnet18 --biases"),
    ("report", "memory vgg16 --batch 32 --dtype fp16"),
    ("report", "flops googlenet --depth 1"),
    ("report", "summary alexnet --rf"),
    ("conventions", "flops lenet5 --convention all"),
    ("conventions", "flops resnet18 --convention fvcore --depth 1"),
    ("list", "list"),
    ("layer_types", "layers"),
    ("layer", "conv --input 227x227x3 --kernel 11 --out 96 --stride 4"),
    ("layer", "pool --input 7x7x1 --kernel 3 --stride 3"),
    ("layer", "conv --input 224x224x3 --kernel 3 --stride 2 --padding tf_same"),
    ("separable", "conv --input 112x112x32 --kernel 3 --out 64 --padding 1 --separable"),
    ("solve", "solve --input 227 --output 55 --kernel 11"),
    ("solve", "solve --input 5 --output 1"),
    ("solve_field", "solve --receptive-field 15 --layers 3"),
    ("solve_field", "solve --receptive-field 3 --layers 1"),
    ("numeric", "convolve --input '1 2 3; 4 5 6; 7 8 9' --kernel '1 0; 0 1' --steps"),
    ("numeric", "convolve-transpose --input '1 2; 3 4' --kernel '1 0 1; 1 1 0; 0 1 2' --stride 2"),
    ("numeric", "pool --values '1 3 2; 3 1 2; 3 3 3' --kernel 2 --stride 1"),
    ("check", "check docs/examples/quiz.yaml"),
    ("check", "check docs/examples/quizzes"),
    ("check", "check docs/examples/quiz-inverse.yaml"),
    ("check", "check alexnet --layer conv1 --shape 55x55x96 --flops 211M"),
    ("diff", "diff vgg11 vgg13"),
    ("diff", "diff resnet18 resnet34 --depth 2"),
    ("diff", "diff docs/examples/backbone.yaml --input-b 3x128x128"),  # several outputs
    ("sweep", "sweep lenet5 --batch 1,64"),
    ("sweep", "sweep docs/examples/backbone.yaml --input 3x{64,128}"),  # several outputs
    ("fit", "memory lenet5 --fit 1GB"),
    ("fit", "memory resnet50 --fit 8GB --train"),
    ("plot", "plot lenet5 --batch 8"),
]


@pytest.fixture(scope="module")
def report_schema():
    pytest.importorskip("jsonschema")
    chosen = schema.report_schema()
    jsonschema.Draft202012Validator.check_schema(chosen)
    return chosen


def _json_of(command, monkeypatch):
    import json
    import shlex

    monkeypatch.chdir(Path(__file__).parent.parent)
    result = runner.invoke(app, [*shlex.split(command), "--format", "json"])
    assert result.stdout.startswith("{"), result.stderr
    return json.loads(result.stdout)


def _errors(report_schema, kind, data):
    """Errors against the command's own definition (tighter than the schema's anyOf), and the whole schema."""
    own = jsonschema.Draft202012Validator({**report_schema, "anyOf": [{"$ref": f"#/$defs/{kind}"}]})
    return [f"{list(e.path)}: {e.message[:200]}" for e in own.iter_errors(data)]


@pytest.mark.parametrize("kind, command", COMMANDS, ids=[c for _, c in COMMANDS])
def test_command_json_matches_report_schema(report_schema, monkeypatch, kind, command):
    data = _json_of(command, monkeypatch)
    assert _errors(report_schema, kind, data) == []
    assert jsonschema.Draft202012Validator(report_schema).is_valid(data)


def test_profile_json_matches_report_schema(report_schema, monkeypatch):
    pytest.importorskip("torch")
    data = _json_of("profile lenet5 --iters 2 --warmup 1 --per-layer", monkeypatch)
    assert _errors(report_schema, "profile", data) == []


def test_report_schema_catches_a_changed_field(report_schema, monkeypatch):
    data = _json_of("summary lenet5", monkeypatch)
    data["totals"]["parameters"] = data["totals"].pop("params")  # a renamed field
    assert _errors(report_schema, "report", data) != []
    assert not jsonschema.Draft202012Validator(report_schema).is_valid(data)


def test_json_doc_names_every_field():
    """docs/json.md names every field the report schema holds (in code: `field`, `a.field`, `{field, ...}`)."""
    import re

    doc = (Path(__file__).parent.parent / "docs" / "json.md").read_text()
    code = " ".join(re.findall(r"`([^`]+)`", doc))

    def names(node):
        if isinstance(node, dict):
            for key, value in node.get("properties", {}).items():
                yield key
                yield from names(value)
            for value in node.values():
                if isinstance(value, (dict, list)):
                    yield from names(value)
        elif isinstance(node, list):
            for value in node:
                yield from names(value)

    missing = sorted({n for n in names(schema.report_schema()) if not re.search(rf"(?<![\w]){n}(?![\w])", code)})
    assert missing == []


def test_profile_check_only_json_matches_report_schema(report_schema, monkeypatch):
    pytest.importorskip("torch")
    data = _json_of("profile lenet5 --check-only", monkeypatch)
    assert _errors(report_schema, "profile_checks", data) == []
