"""`cnncalc check`: quiz answers graded, one file or a folder of them. No torch."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..analysis import DType, Style
from ..errors import CnncalcError, Where
from ..quantities import Quantity
from ..render import Format, Lines, Output
from ..spec import library
from .common import ExitCode, app, colour_on, emit, format_option, paint, parse_input, reported_errors

# ----- check -------------------------------------------------------------------------------


def _mark(ok: bool, colour: bool = False) -> str:
    """✓ in green, ✗ in red where `colour` (check's text on a terminal, NO_COLOR unset)."""
    return paint("✓", "green", colour) if ok else paint("✗", "red", colour)


def _quiz_files(path: Path) -> list[Path]:
    """The quiz files in a directory (YAML with `questions:`), sorted, at any depth."""
    from ..learn import quiz_file

    found = sorted(
        p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and library.is_file(p) and quiz_file.is_quiz(p)
    )
    if not found:
        raise CnncalcError(f"no quiz files in {path}", expected="YAML files with a `questions:` list")
    return found


def _question_data(g: Any, file: str | None) -> dict[str, Any]:
    answers = [
        {"quantity": v.key, "expected": v.right, "received": v.given, "right": v.correct, "detail": v.detail}
        for v in g.verdicts
    ]
    return {
        "file": file,
        "name": g.name,
        "text": g.text,
        "subject": g.subject,
        "line": g.where.line,
        "right": g.correct,
        "answers": answers,
        "working": list(g.working),
    }


def _question_lines(g: Any, colour: bool = False) -> list[str]:
    title = f"{g.name}: {g.subject}" if g.name not in g.subject else g.subject
    out = [f"{_mark(g.correct, colour)} {title}"]
    if g.text:
        out.append(f"    {g.text}")
    for v in g.verdicts:
        out.append(f"    {_mark(v.correct, colour)} {v.key} {v.given}" + (f"  ({v.detail})" if v.detail else ""))
        if not v.correct:
            out.append(f"        the right answer: {v.right}")
    if not g.correct:
        out += [f"        {w}" for w in g.working]
    return out


CheckFormatOpt = Annotated[
    Format, format_option("text, or json for autograders (one object per question).", (Format.TEXT, Format.JSON))
]


@app.command()
def check(
    target: Annotated[
        str,
        typer.Argument(
            help="A quiz file (YAML with `questions:`), a directory of them, or a spec / built-in name.",
            show_default=False,
        ),
    ],
    layer: Annotated[
        Optional[str],
        typer.Option("--layer", "-l", help="The row to check (default: the whole network).", show_default=False),
    ] = None,
    shape: Annotated[
        Optional[str],
        typer.Option(
            "--shape", help="Expected output shape: 27x27x96, (96, 27, 27) or 'does not fit'.", show_default=False
        ),
    ] = None,
    params: Annotated[
        Optional[str], typer.Option("--params", help="Expected parameters: 34848, 34,848 or 35K.", show_default=False)
    ] = None,
    biases: Annotated[
        Optional[bool],
        typer.Option(
            "--biases/--no-biases",
            help="Whether --params counts biases (default: either is accepted, and said).",
            show_default=False,
        ),
    ] = None,
    weights: Annotated[
        Optional[str], typer.Option("--weights", help="Expected weights (biases excluded).", show_default=False)
    ] = None,
    macs: Annotated[
        Optional[str], typer.Option("--macs", help="Expected multiply-accumulates (per sample).", show_default=False)
    ] = None,
    flops: Annotated[
        Optional[str], typer.Option("--flops", help="Expected FLOPs, 2 x MACs (per sample).", show_default=False)
    ] = None,
    memory: Annotated[
        Optional[str],
        typer.Option(
            "--memory", help="Expected activations of the output, the notes' 'memory' (per sample).", show_default=False
        ),
    ] = None,
    bytes_: Annotated[
        Optional[str],
        typer.Option(
            "--bytes",
            help="Expected bytes of the output's activations at --batch and --dtype: 602112 or 588 KiB.",
            show_default=False,
        ),
    ] = None,
    rf: Annotated[
        Optional[str],
        typer.Option(
            "--receptive-field",
            help="Expected receptive field of the row: 7 or 7x7 (input pixels).",
            show_default=False,
        ),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", "-b", min=1, help="Batch size for --bytes.")] = 1,
    dtype: Annotated[DType, typer.Option("--dtype", help="Element type for --bytes.")] = DType.FP32,
    input: Annotated[
        Optional[str],
        typer.Option(
            "--input",
            help="Override the spec's input: 3x224x224 or 224x224x3, read as --input of the table commands (the end equal to the spec's channels is C).",
            show_default=False,
        ),
    ] = None,
    style: Annotated[
        Style,
        typer.Option(
            "--style",
            help="Which rows the network's --memory sums: full (every row's output, in-place activations and views included, the input not) or lecture (the lecture table's rows, the input included: VGG16's 15.2M).",
        ),
    ] = Style.FULL,
    format: CheckFormatOpt = Format.TEXT,
) -> None:
    """Check answers: a quiz file, a directory of them, or one layer's expected numbers. Exit code 4 when one is wrong.

    \b
    cnncalc check alexnet --layer pool1 --shape 27x27x96 --params 0
    cnncalc check quiz.yaml
    cnncalc check quizzes/ --format json
    """
    from .. import spec
    from ..learn import quiz, quiz_file

    with reported_errors():
        Q = Quantity
        expected = {
            Q.SHAPE: shape,
            Q.PARAMS: params,
            Q.WEIGHTS: weights,
            Q.MACS: macs,
            Q.FLOPS: flops,
            Q.ACTIVATIONS: memory,
            Q.ACTIVATION_BYTES: bytes_,
            Q.RECEPTIVE_FIELD: rf,
        }
        given = {q: v for q, v in expected.items() if v is not None}
        path = Path(target)
        is_dir = _is_dir(path)
        graded: list[tuple[str | None, quiz_file.Graded]]
        if is_dir or (library.is_file(path) and quiz_file.is_quiz(path)):
            if given or layer or input:
                raise CnncalcError(
                    "a quiz file carries its own answers", hint="drop --layer, --shape, --params, ... or pass a spec"
                )
            quizzes = [(str(p), quiz_file.grade_file(p)) for p in (_quiz_files(path) if is_dir else [path])]
            graded = [(file, g) for file, result in quizzes for g in result.questions]
        else:
            if not given:
                raise CnncalcError(
                    "nothing to check",
                    expected="--shape, --params, --weights, --macs, --flops, --memory, --bytes or --receptive-field "
                    "(with --layer), or a quiz file",
                    hint="cnncalc check alexnet --layer pool1 --shape 27x27x96 --params 0",
                )
            truth = quiz.network_truth(
                library.resolve(target),
                layer,
                parse_input(input, spec.load(library.resolve(target)).input_shape),
                style=style,
            )
            verdicts = tuple(quiz.judge(q, v, truth, biases, batch, dtype) for q, v in given.items())
            quizzes = []
            graded = [(None, quiz_file.Graded(layer or "network", "", truth.subject, verdicts, truth.working, Where()))]
        wrong = sum(not g.correct for _, g in graded)
        summary = f"{len(graded) - wrong} of {len(graded)} right" + (f" in {len(quizzes)} quiz files" if is_dir else "")
        out: list[str] = []
        colour = format is Format.TEXT and colour_on(sys.stdout)  # the marks scan at a glance; never in JSON
        for file, result in quizzes:
            out += [*([""] if out else []), *([f"== {file}"] if is_dir else []), result.title, ""]
            out += [line for f, g in graded if f == file for line in _question_lines(g, colour)]
        if not quizzes:
            out += _question_lines(graded[0][1], colour)
        if len(graded) > 1:
            out += ["", summary]
        data = {
            "questions": [_question_data(g, file) for file, g in graded],
            "summary": {"right": len(graded) - wrong, "wrong": wrong, "total": len(graded), "files": len(quizzes)},
        }
        emit(Output("check", (Lines(tuple(out)),), data=data, markdown=False), format)
    if wrong:
        raise typer.Exit(ExitCode.WRONG)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False
