"""A quiz file: a YAML list of questions, each about a network, one layer or an inverse question
(`solve:`), read, checked and graded with the verdicts of `quiz`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..analysis import DType
from ..errors import CnncalcError, SpecError, Where, did_you_mean
from ..layers import layer_type
from ..quantities import Quantity
from ..records import record
from ..spec.yaml_lines import LineDict, LineList, load_file
from ..units import read_sizes
from .quiz import ANSWER_KEYS, Truth, Verdict, judge, layer_truth, network_truth


def _grade_solve(item: LineDict, name: str, where: Where) -> Graded:
    """`solve: {input: 227, output: 55, kernel: 11}` (or `{receptive_field: 15, layers: 3}`) with
    `values: {stride: 4, padding: 0}`: right when the values are one of the solutions."""
    from . import solver

    args = item["solve"]
    if not isinstance(args, dict):
        raise SpecError(
            "'solve' needs what is given",
            where=where,
            received=args,
            expected="{input: 227, output: 55, kernel: 11} or {receptive_field: 15, layers: 3}",
        )
    for key in item:
        if key not in ("name", "text", "solve", "values"):
            raise SpecError(
                f"'{key}' is not a key of a solve question",
                where=Where(where.file, item.line_of(key), where.path),
                expected="name, text, solve, values",
            )
    if "values" not in item or not isinstance(item["values"], dict) or not item["values"]:
        raise SpecError(
            "a solve question needs 'values', the unknowns' answer",
            where=where,
            received=item.get("values"),
            expected="values: {stride: 4, padding: 0}",
        )
    given = {str(k): v for k, v in args.items()}
    field_keys, window_keys = (
        ("receptive_field", "layers", "kernel", "stride"),
        ("output", "input", "kernel", "stride", "padding", "dilation"),
    )
    if "receptive_field" in given:
        _known_keys(given, field_keys, where)
        if "layers" not in given:
            raise SpecError(
                "a receptive-field solve question needs 'layers'",
                where=where,
                expected="solve: {receptive_field: 15, layers: 3}",
            )
        field = solver.solve_field(given["receptive_field"], given["layers"], given.get("kernel"), given.get("stride"))
        found = [
            ({"kernel": x.kernel, "stride": x.stride}, x.working, True) for x in field.solutions if x.stride is not None
        ]
        found += [
            ({"kernel": x.kernel, "stride": s}, x.working, True)  # any stride: the one answered is right
            for x in field.solutions
            if x.stride is None
            for s in [item["values"].get("stride")]
            if isinstance(item.get("values"), dict) and type(s) is int and s > 0
        ]
        question, unknowns = field.question, [k for k in ("kernel", "stride") if k not in given]
    else:
        _known_keys(given, window_keys, where)
        if "output" not in given:
            raise SpecError(
                "a solve question needs 'output' (or receptive_field and layers)",
                where=where,
                expected="solve: {input: 227, output: 55, kernel: 11}",
            )
        window = solver.solve_window(
            given["output"],
            given.get("input"),
            given.get("kernel"),
            given.get("stride"),
            given.get("padding"),
            given.get("dilation", 1),
        )
        found = [(dict(x.values), x.working, x.exact) for x in window.solutions]
        answered_stride = item["values"].get("stride") if isinstance(item.get("values"), dict) else None
        found += [
            ({**x.values, "stride": answered_stride}, x.working, False)
            for x in window.solutions  # any larger stride
            if x.larger_strides and type(answered_stride) is int and answered_stride > x.values["stride"]
        ]
        question, unknowns = window.question, list(window.unknowns)
    answered = {str(k): v for k, v in item["values"].items()}
    if set(answered) != set(unknowns):
        raise SpecError(
            "'values' must give each unknown", where=where, received=", ".join(answered), expected=", ".join(unknowns)
        )
    right = (
        "; ".join(
            ", ".join(f"{k} {v}" for k, v in values.items()) + ("" if exact else " (floored)")
            for values, _, exact in found
        )
        or "no integer solution"
    )
    match = next((f for f in found if f[0] == answered), None)
    shown = ", ".join(f"{k} {v}" for k, v in answered.items())
    detail = "" if match is None or match[2] else "the stride does not tile the input: floored"
    verdict = Verdict(Quantity.VALUES, shown, match is not None, right, detail)
    return Graded(
        name, str(item.get("text", "")), f"solve {question}", (verdict,), tuple(w for _, w, _ in found), where
    )


def _known_keys(given: Mapping[str, Any], allowed: tuple[str, ...], where: Where) -> None:
    for key in given:
        if key not in allowed:
            raise SpecError(
                f"unknown key '{key}' in solve",
                where=where,
                received=key,
                expected=", ".join(allowed),
                hint=did_you_mean(key, allowed),
            )


# ----- quiz files --------------------------------------------------------------------------


@record
class Graded:
    """One question, graded."""

    name: str
    text: str
    subject: str
    verdicts: tuple[Verdict, ...]
    working: tuple[str, ...]
    where: Where

    @property
    def correct(self) -> bool:
        return all(v.correct for v in self.verdicts)


@record
class Quiz:
    title: str
    questions: tuple[Graded, ...]


_QUESTION_KEYS = (
    "name",
    "text",
    "spec",
    "layer",
    "input",
    "biases",
    "batch",
    "dtype",
    "ask",
    "choices",
    "answer",
    *ANSWER_KEYS,
)


def is_quiz(path: Path) -> bool:
    """A YAML file whose top level has `questions`."""
    try:
        data = load_file(path)
    except CnncalcError:
        return False
    return isinstance(data, dict) and "questions" in data


def grade_file(path: Path) -> Quiz:
    """Grade every question of a quiz file; raises SpecError (with its line) for a malformed one."""
    shown = str(path)
    data = load_file(path, shown)
    if not isinstance(data, LineDict) or not isinstance(data.get("questions"), LineList) or not data["questions"]:
        raise SpecError(
            "a quiz file needs a list of questions",
            where=Where(shown),
            expected="questions:\n  - layer: ...\n    shape: ...",
            hint="see docs/learn.md for the format",
        )
    for key in data:
        if key not in ("title", "questions"):
            raise SpecError(
                f"unknown key '{key}' in the quiz file",
                where=Where(shown, data.line_of(key)),
                expected="title, questions",
                hint=did_you_mean(str(key), ["title", "questions"]),
            )
    graded = []
    for i, item in enumerate(data["questions"]):
        name = item.get("name") if isinstance(item, dict) else None
        where = Where(shown, data["questions"].line_of(i), f"questions[{i}]" + (f" {name}" if name else ""))
        try:
            graded.append(_grade(item, i, where, path.parent))
        except CnncalcError as err:
            raise err.located(where) from None
    return Quiz(str(data.get("title", path.stem)), tuple(graded))


def _grade(item: object, index: int, where: Where, base: Path) -> Graded:
    if not isinstance(item, LineDict):
        raise SpecError("a question is a mapping", received=item, expected="keys such as spec, layer, shape, params")
    name = str(item.get("name", f"question {index + 1}"))
    if "solve" in item:
        return _grade_solve(item, name, where)
    layer_kinds = [
        key
        for key in item
        if key not in _QUESTION_KEYS and (key in ("pool", "separable") or layer_type(str(key)) is not None)
    ]
    for key in item:
        if key not in _QUESTION_KEYS and key not in layer_kinds:
            raise SpecError(
                f"unknown key '{key}' in a question",
                where=Where(where.file, item.line_of(key), where.path),
                expected=", ".join(_QUESTION_KEYS) + ", or a layer type such as conv",
                hint=did_you_mean(str(key), _QUESTION_KEYS),
            )
    if len(layer_kinds) + ("spec" in item) != 1:
        raise SpecError(
            "a question is about exactly one thing",
            where=where,
            received=", ".join(["spec"] * ("spec" in item) + layer_kinds) or "neither",
            expected="spec: NAME_OR_PATH (with layer:) or one layer such as conv: {input: ..., ...}",
        )
    if layer_kinds:
        args = item[layer_kinds[0]]
        if not isinstance(args, dict):
            raise SpecError(
                f"'{layer_kinds[0]}' needs its arguments",
                where=where,
                received=args,
                expected="{input: 227x227x3, kernel: 11, out: 96, stride: 4}",
            )
        truth = layer_truth(str(layer_kinds[0]), args)
    else:
        source = item["spec"]
        if isinstance(source, str) and (base / source).is_file():
            source = str(base / source)  # paths are relative to the quiz file; else a built-in name
        shape = tuple(read_sizes(str(item["input"]))) if "input" in item else None
        truth = network_truth(source, item.get("layer"), shape, file=where.file)
    biases = item.get("biases")
    if biases is not None and not isinstance(biases, bool):
        raise SpecError("'biases' is true or false", where=where, received=biases)
    batch = item.get("batch", 1)
    if type(batch) is not int or batch < 1:
        raise SpecError("'batch' is a positive integer", where=where, received=batch)
    try:
        dtype = DType(item.get("dtype", "fp32"))
    except ValueError:
        raise SpecError(
            "unknown 'dtype'", where=where, received=item["dtype"], expected=", ".join(d.value for d in DType)
        ) from None
    verdicts = [
        judge(quantity, item[key], truth, biases, batch, dtype) for key, quantity in ANSWER_KEYS.items() if key in item
    ]
    if "choices" in item or "answer" in item or "ask" in item:
        verdicts.append(_multiple_choice(item, truth, biases, where, batch, dtype))
    if not verdicts:
        raise SpecError(
            "a question needs an answer to check",
            where=where,
            expected=f"one of {', '.join(ANSWER_KEYS)}; or ask + choices + answer",
        )
    return Graded(name, str(item.get("text", "")), truth.subject, tuple(verdicts), truth.working, where)


def _multiple_choice(
    item: LineDict, truth: Truth, biases: bool | None, where: Where, batch: int = 1, dtype: DType = DType.FP32
) -> Verdict:
    for key in ("ask", "choices", "answer"):
        if key not in item:
            raise SpecError(
                f"a multiple-choice question needs '{key}'",
                where=where,
                expected="ask: shape, choices: {A: ..., B: ...}, answer: A",
            )
    quantity = ANSWER_KEYS.get(item["ask"]) if isinstance(item["ask"], str) else None
    if quantity is None:
        raise SpecError(
            "'ask' names what the choices are", where=where, received=item["ask"], expected=", ".join(ANSWER_KEYS)
        )
    choices = item["choices"]
    if not isinstance(choices, dict) or len(choices) < 2:
        raise SpecError(
            "'choices' maps letters to answers", where=where, received=choices, expected="{A: 12x12x10, B: 23x23x5}"
        )
    marked = str(item["answer"])
    if marked not in {str(k) for k in choices}:
        raise SpecError(
            "'answer' must be one of the choices",
            where=where,
            received=marked,
            expected=", ".join(str(k) for k in choices),
        )
    verdicts = {str(k): judge(quantity, v, truth, biases, batch, dtype) for k, v in choices.items()}
    right = [k for k, v in verdicts.items() if v.correct]
    right_text = verdicts[marked].right
    if not right:
        return Verdict(
            quantity,
            f"({marked}) {choices_value(choices, marked)}",
            False,
            right_text,
            "none of the choices is right: the question needs fixing",
        )
    detail = "" if len(right) == 1 else f"more than one choice is right: {', '.join(right)}"
    given = f"({marked}) {choices_value(choices, marked)}"
    if marked in right:
        return Verdict(quantity, given, True, right_text, detail)
    return Verdict(quantity, given, False, f"({right[0]}) {choices_value(choices, right[0])}: {right_text}", detail)


def choices_value(choices: Mapping[Any, Any], key: str) -> str:
    return str(next(v for k, v in choices.items() if str(k) == key))
