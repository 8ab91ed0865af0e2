"""What there is, and whether a spec is sound: `list` (the built-in architectures), `layers` (the layer
types a spec can use) and `validate` (specs checked, only problems printed).
"""

from __future__ import annotations

import json
import shutil
from typing import Annotated, Any, List, Optional

import typer

from .. import spec
from ..analysis import analyze
from ..errors import CnncalcError, did_you_mean
from ..render import Abbreviated, Format, Lines, Output, ShapeOrder, Table
from ..spec import library
from .common import ExitCode, FormatOpt, QuietOpt, StrictOpt, app, emit, load_report, reported_errors

CATALOG = library.ARCHITECTURES / "catalog.json"


def catalog_rows() -> list[dict[str, Any]]:
    """`list`'s rows computed from the specs: every built-in loaded and analysed (about 2 s)."""
    family_of = {name: family for family, names in library.families().items() for name in names}
    rows: list[dict[str, Any]] = []
    for name in library.builtin_names():
        graph = spec.load(library.builtin_path(name))
        t = analyze(graph).totals
        rows.append(
            {
                "name": name,
                "family": family_of.get(name, name),
                "title": graph.name,
                "input": list(graph.input_shape),
                "layers": len(graph.nodes) - 1,
                "params": t.params,
                "macs": t.macs,
            }
        )
    order = list(dict.fromkeys(r["family"] for r in rows))  # families in name order, each one's variants together
    rows.sort(key=lambda r: order.index(r["family"]))
    return rows


def specs_digest() -> str:
    """A digest of every built-in spec file's text: the catalog is read only for the specs it was made from."""
    import hashlib  # (here: OpenSSL's start-up, a few ms of every `cnncalc --help`, for `list` only)

    digest = hashlib.sha256()
    for path in sorted(library.ARCHITECTURES.rglob("*.yaml")):
        digest.update(path.relative_to(library.ARCHITECTURES).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def catalog_text() -> str:
    """catalog.json as `catalog_rows` and `specs_digest` make it (tests/test_cli.py compares; --regen-golden writes)."""
    rows = ",\n".join(f"  {json.dumps(row)}" for row in catalog_rows())
    return f'{{\n "specs": "{specs_digest()}",\n "architectures": [\n{rows}\n ]\n}}\n'  # a row a line


def _catalog() -> list[dict[str, Any]]:
    """`list`'s rows from catalog.json, made when the package was (a test keeps it equal to what the
    specs give), or computed where it is missing or was made from other spec files."""
    try:
        data = json.loads(CATALOG.read_text(encoding="utf-8"))
        if data["specs"] == specs_digest():
            return list(data["architectures"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return catalog_rows()


@app.command("list")
def list_architectures(format: FormatOpt = Format.TEXT) -> None:
    """The built-in architectures with their input, parameters and MACs."""
    with reported_errors():
        rows = _catalog()
        table = Table(
            header=("family", "name", "network", "input", "layers", "params", "MACs"),
            rows=tuple(
                (
                    r["family"],
                    r["name"],
                    r["title"],
                    tuple(r["input"]),
                    r["layers"],
                    Abbreviated(r["params"]),
                    Abbreviated(r["macs"]),
                )
                for r in rows
            ),
            numeric=(False, False, False, False, True, True, True),
            title="built-in architectures by family (input channels first)",
            footer=(
                "use any name with every command: cnncalc summary vgg16; a family is one spec file with its variants",
            ),
            layout=ShapeOrder.CHW,
        )
        emit(Output("list", (table,), data={"architectures": rows}), format)


@app.command()
def layers(
    kind: Annotated[
        Optional[str],
        typer.Argument(help="One layer type (or another spelling of it) to show in full.", show_default=False),
    ] = None,
    format: FormatOpt = Format.TEXT,
) -> None:
    """The layer types a spec can use: one line each, cut to the terminal's width; `cnncalc layers
    TYPE` shows one type in full (its other spellings and every argument)."""
    from dataclasses import MISSING, fields

    from ..layers import ALIASES, REGISTRY

    def plain(value: Any) -> Any:  # a default as JSON writes it: an enum by its value, a tuple as a list
        value = getattr(value, "value", value)
        return list(value) if isinstance(value, tuple) else value

    types: list[dict[str, Any]] = []
    for registered, cls in sorted(REGISTRY.items()):
        arguments = [
            {"name": f.name, "required": f.default is MISSING}
            | ({} if f.default is MISSING else {"default": plain(f.default)})
            for f in fields(cls)
        ]
        types.append(
            {
                "type": registered,
                "aliases": [a for a, k in sorted(ALIASES.items()) if k == registered],
                "arguments": arguments,
                "summary": cls.summary,
            }
        )
    required: dict[str, Any] = {"required": True}
    optional: dict[str, Any] = {"required": False}  # nothing when left out
    structures: list[tuple[str, dict[str, dict[str, Any]], str]] = [
        ("sequential", {"layers": required}, "a named group of layers"),
        (
            "residual",
            {"body": required, "shortcut": optional, "after": optional},
            "body + shortcut (identity if none), added; then `after`",
        ),
        (
            "parallel",
            {"branches": required, "merge": {"required": False, "default": "concat"}},
            "branches from one input, concatenated on channels or added",
        ),
    ]
    for structure, given, summary in structures:
        arguments = [{"name": name, **how} for name, how in given.items()]
        types.append({"type": structure, "aliases": [], "arguments": arguments, "summary": summary})

    def argument_text(a: dict[str, Any]) -> str:
        default = a.get("default")
        return (
            f"{a['name']} ({tuple(default) if isinstance(default, list) else default})" if "default" in a else a["name"]
        )

    with reported_errors():
        if kind is not None:
            wanted = ALIASES.get(kind.strip().lower(), kind.strip().lower())
            chosen = [t for t in types if t["type"] == wanted]
            if not chosen:
                names = [t["type"] for t in types]
                raise CnncalcError(
                    f"no layer type '{kind}'",
                    received=kind,
                    expected=f"one of the {len(names)} types `cnncalc layers` lists, or another spelling of one",
                    hint=did_you_mean(kind, [*names, *ALIASES]) or "run `cnncalc layers` for the list",
                )
            (t,) = chosen
            lines = [
                f"{t['type']}: {t['summary']}",
                f"also written: {', '.join(t['aliases']) or '-'}",
                "arguments (default):",
                *(f"  {argument_text(a)}" + (" (required)" if a.get("required") else "") for a in t["arguments"]),
                *(["  -"] if not t["arguments"] else []),
                "every item also takes name, repeat and from; see docs/spec.md",
            ]
            emit(Output("layers", (Lines(tuple(lines)),), data={"layer_types": chosen}, markdown=False), format)
            return
        if format is Format.TEXT:  # one line per type, cut to the terminal; TYPE shows the rest
            width = shutil.get_terminal_size().columns
            wide = max(len(t["type"]) for t in types)
            room = max(width - wide - 2, 20)
            rows: tuple[tuple[str, ...], ...] = tuple(
                (t["type"], t["summary"] if len(t["summary"]) <= room else t["summary"][: room - 3] + "...")
                for t in types
            )
            table = Table(
                ("type", "what it is"),
                rows,
                (False, False),
                title="layer types",
                footer=("`cnncalc layers TYPE`: one type in full", "every item also takes name, repeat, from"),
            )
        else:
            rows = tuple(
                (t["type"], ", ".join(t["aliases"]), ", ".join(map(argument_text, t["arguments"])) or "-", t["summary"])
                for t in types
            )
            table = Table(
                ("type", "also written", "arguments (default)", "what it is"),
                rows,
                (False,) * 4,
                title="layer types",
                footer=("every item also takes name, repeat and from; see docs/spec.md",),
            )
        emit(Output("layers", (table,), data={"layer_types": types}), format)


@app.command()
def validate(
    spec_files: Annotated[List[str], typer.Argument(help="Spec files or built-in names.", show_default=False)],
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Check specs; print nothing but problems. Exit code 0 when every spec is valid."""
    worst = ExitCode.OK
    for source in spec_files:
        try:
            with reported_errors():
                load_report(source, strict=strict, quiet=quiet)
        except typer.Exit as stop:
            worst = max(worst, ExitCode(stop.exit_code))
    if worst:
        raise typer.Exit(worst)
