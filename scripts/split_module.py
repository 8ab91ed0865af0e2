"""Move top-level definitions of one module into a new module of the same package, verbatim.

    python scripts/split_module.py SRC.py NEW.py "the new module's docstring" NAME [NAME ...]

Used for issue 20's module splits, so that a move can be redone on a tree that changed since:
each named definition (with its decorators and the comment lines just above it, a section
header included) is cut from SRC and written to NEW in its original order and spacing. NEW gets
SRC's top-level imports plus `from .SRC import ...` for what the moved code still uses there;
SRC imports back from NEW what its remaining code uses (refused when both would: a circle).
ruff then drops the unused imports and formats both files. Callers elsewhere (`from .SRC import
moved_name`) are left to the one running it: ruff and mypy name them.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import textwrap
from pathlib import Path

RUFF = "ruff"


def defined(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    return set()


def used(nodes: list[ast.stmt]) -> set[str]:
    return {sub.id for node in nodes for sub in ast.walk(node) if isinstance(sub, ast.Name)}


def first_line(node: ast.stmt, lines: list[str]) -> int:
    """The statement's first line, decorators and the comments just above it (blank lines between) included."""
    start = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
    j = start
    while j > 1 and (lines[j - 2].lstrip().startswith("#") or not lines[j - 2].strip()):
        j -= 1
        if lines[j - 1].lstrip().startswith("#"):
            start = j
    return start


def one_line_imports(path: Path) -> None:
    """A multi-line `from x import (a, b,)` keeps its lines after ruff drops names (the magic
    trailing comma): write each on one line, and let the formatter wrap what is too long."""
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    for node in reversed(ast.parse(text).body):
        if isinstance(node, ast.ImportFrom) and node.end_lineno and node.end_lineno > node.lineno:
            if "#" not in "".join(lines[node.lineno - 1 : node.end_lineno]):
                lines[node.lineno - 1 : node.end_lineno] = [ast.unparse(node) + "\n"]
    path.write_text("".join(lines))


def split(src: Path, new: Path, doc: str, names: list[str]) -> None:
    assert src.parent == new.parent, "the new module goes beside the old one"
    text = src.read_text()
    lines = text.splitlines(keepends=True)
    moved: list[tuple[ast.stmt, int, int]] = []
    kept: list[ast.stmt] = []
    imports: list[ast.stmt] = []
    for node in ast.parse(text).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(node)
        here = defined(node)
        if here & set(names):
            assert here <= set(names), f"{sorted(here)} are defined together: move all or none"
            moved.append((node, first_line(node, lines), node.end_lineno or node.lineno))
        else:
            kept.append(node)
    missing = set(names) - set().union(*(defined(node) for node, _, _ in moved))
    assert not missing, f"not defined at the top level of {src}: {sorted(missing)}"

    top = set().union(*(defined(node) for node in kept))
    from_old = sorted(used([node for node, _, _ in moved]) & top - set(names))
    from_new = sorted(used([n for n in kept if not isinstance(n, (ast.Import, ast.ImportFrom))]) & set(names))
    assert not (from_old and from_new), f"a circle: {new.stem} needs {from_old}, {src.stem} needs {from_new}"

    wrapped = "\n".join(textwrap.wrap(doc, 100, break_on_hyphens=False))
    out = [f'"""{wrapped}"""\n\n' if "\n" not in wrapped else f'"""{wrapped}\n"""\n\n']
    out += ["".join(lines[n.lineno - 1 : n.end_lineno]) for n in imports if n.col_offset == 0]
    if from_old:
        out.append(f"from .{src.stem} import {', '.join(from_old)}\n")
    out.append("\n\n")
    previous = None
    for _, start, end in moved:
        if previous is not None:  # the original spacing between neighbours, else two blank lines
            between = lines[previous : start - 1]
            out.append("".join(between) if all(not line.strip() for line in between) else "\n\n")
        out.append("".join(lines[start - 1 : end]))
        previous = end
    new.write_text("".join(out))

    cut = {i for _, start, end in moved for i in range(start, end + 1)}
    rest = [line for i, line in enumerate(lines, 1) if i not in cut]
    if from_new:
        last = max(n.end_lineno or n.lineno for n in imports if n.col_offset == 0)
        rest.insert(last - sum(1 for i in cut if i <= last), f"from .{new.stem} import {', '.join(from_new)}\n")
    src.write_text("".join(rest))

    subprocess.run([RUFF, "check", "--fix", "-q", "--select", "F401,I", str(src), str(new)], check=False)
    one_line_imports(src)
    one_line_imports(new)
    subprocess.run([RUFF, "check", "--fix", "-q", "--select", "F401,I", str(src), str(new)], check=False)
    subprocess.run([RUFF, "format", "-q", str(src), str(new)], check=True)
    print(f"moved {len(moved)} statements to {new}; it imports {from_old} from {src.stem}, which imports {from_new}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("doc", help="the new module's docstring")
    parser.add_argument("names", nargs="+", help="top-level definitions to move")
    args = parser.parse_args()
    split(args.src, args.new, args.doc, args.names)


if __name__ == "__main__":
    main()
