"""The built-in architectures shipped inside the package, and resolving what a user typed."""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import SpecError, Where, did_you_mean

ARCHITECTURES = Path(__file__).parent / "architectures"
STDIN = "-"  # what a user types for a spec on standard input; messages call it <stdin>


def builtin_names() -> list[str]:
    """Names of the built-in architectures (`vgg16`, `examples/mnist_cnn`), sorted."""
    found = [p.relative_to(ARCHITECTURES).with_suffix("").as_posix() for p in ARCHITECTURES.rglob("*.yaml")]
    return sorted(found)


def builtin_path(name: str) -> Path:
    return ARCHITECTURES / f"{name}.yaml"


def _exists(path: Path) -> bool:
    """Path.exists, but a name the system refuses (too long, a NUL byte) does not exist."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def is_file(path: Path) -> bool:
    """Path.is_file, but a name the system refuses (too long, a NUL byte) is not a file."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def is_model_target(source: str) -> bool:
    """True for a PyTorch model named as `torchvision:NAME`, `file.py:Class` or `pkg.module:factory`
    (never a spec path or built-in name); `cnncalc import` and the table commands read those."""
    head, sep, attr = source.rpartition(":")
    return bool(sep and head and attr.isidentifier() and not source.endswith((".yaml", ".yml")) and len(head) > 1)


def resolve(source: str) -> Path:
    """The spec file a user means: an existing path, else a built-in name (with or without .yaml).

    `architectures/vgg16.yaml` works from any directory, as does `vgg16`; an unknown name lists
    close matches.
    """
    path = Path(source)
    if _exists(path) or source == STDIN:
        return path
    stem = source[:-5] if source.endswith(".yaml") else source[:-4] if source.endswith(".yml") else source
    candidates = [stem]
    if path.parent.name == "architectures":
        candidates.append(Path(stem).name)
    names = builtin_names()
    for candidate in candidates:
        if candidate in names:
            return builtin_path(candidate)
    hint = did_you_mean(Path(stem).name[:200], names)
    raise SpecError(
        f"no such file, and no built-in architecture named '{stem}'",
        where=Where(file=source),
        expected="a path to a .yaml spec, or one of: " + ", ".join(n for n in names if "/" not in n),
        hint=hint or "run `cnncalc list` for the built-in architectures",
    )


def read_stdin() -> str:
    """A spec from standard input (`-`), under the same size limit as a file."""
    from .yaml_lines import MAX_SPEC_BYTES

    data = sys.stdin.buffer.read(MAX_SPEC_BYTES + 1)
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError("spec file is too large", where=Where(file="<stdin>"), received=f"more than {MAX_SPEC_BYTES:,} bytes",
                        expected=f"at most {MAX_SPEC_BYTES:,} bytes")  # fmt: skip
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("spec file is not UTF-8 text", where=Where(file="<stdin>"), expected="a YAML text file") from None
