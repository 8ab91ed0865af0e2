"""Move methods of a class out into module-level functions of a new module, verbatim.

    python scripts/methods_out.py SRC.py CLASS NEW.py "docstring" METHOD [METHOD ...]

Each method is cut from CLASS in SRC and written to NEW as a module-level function, dedented,
`self` annotated as CLASS (imported from SRC for type checking only); CLASS binds each back under
its name (`name = new.name`), as the importer's mapper binds norms.py's rules. NEW gets SRC's
imports (ruff drops the unused ones). Used for issue 20's split of importer/mapping.py, kept so
that the move can be redone on a tree that changed since (as scripts/split_module.py).
"""

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

src, cls, new, doc, *methods = sys.argv[1:]
text = Path(src).read_text()
lines = text.splitlines(keepends=True)
tree = ast.parse(text)
klass = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
spans = []
for node in klass.body:
    if isinstance(node, ast.FunctionDef) and node.name in methods:
        if node.decorator_list:
            sys.exit(f"{node.name} has decorators")
        start = node.lineno
        while start > 1 and lines[start - 2].strip().startswith("#"):
            start -= 1
        spans.append((start, node.end_lineno, node.name))
missing = set(methods) - {n for _, _, n in spans}
if missing:
    sys.exit(f"not methods of {cls}: {sorted(missing)}")
spans.sort()
mod = Path(new).stem
bodies = []
for s, e, name in spans:
    code = textwrap.dedent("".join(lines[s - 1 : e]))
    code, n = re.subn(rf"def {name}\(\s*self\b", f"def {name}(\n    self: {cls}", code, count=1)
    assert n == 1, name
    bodies.append(code.rstrip("\n") + "\n")
imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
import_text = "".join("".join(lines[n.lineno - 1 : n.end_lineno]) for n in imports)
if "TYPE_CHECKING" not in import_text:
    import_text = import_text.replace("from typing import ", "from typing import TYPE_CHECKING, ", 1)
header = f'"""{doc}"""\n\n{import_text}\nif TYPE_CHECKING:\n    from .{Path(src).stem} import {cls}\n\n\n'
Path(new).write_text(header + "\n\n".join(bodies))
# in SRC: each method replaced by its binding, at the first method's place
first = spans[0][0]
for s, e, _ in reversed(spans):
    del lines[s - 1 : e]
bind = "".join(f"    {name} = {mod}.{name}\n" for _, _, name in spans)
lines.insert(first - 1, bind + "\n")
out = "".join(lines)
tree2 = ast.parse(out)
last = max(n.end_lineno for n in tree2.body if isinstance(n, (ast.Import, ast.ImportFrom)) and n.col_offset == 0)
ls = out.splitlines(keepends=True)
ls.insert(last, f"from . import {mod}\n")
Path(src).write_text("".join(ls))
subprocess.run(["ruff", "check", "--fix", "-q", "--select", "F401,I001", src, new])
subprocess.run(["ruff", "format", "-q", src, new])
print("moved", len(spans), "methods to", new)
