"""The built-in architectures shipped inside the package, and resolving what a user typed.

A built-in is a spec file (`vgg16.yaml`) or a variant of a family file: `resnet.yaml` holds
`variants: {resnet18: {...}, resnet50: {...}}`, each variant a set of argument values, and
`resnet50` names that variant. The family file itself is not a built-in (its arguments have no
values until a variant gives them).
"""

from __future__ import annotations

import functools
import re
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from ..errors import CnncalcError, SpecError, Where, did_you_mean
from ..records import record

ARCHITECTURES = Path(__file__).parents[1] / "architectures"
STDIN = "-"  # what a user types for a spec on standard input; messages call it <stdin>

# the top-level `variants:` section of a family file, up to the next top-level key
_VARIANTS = re.compile(r"^variants:[^\n]*\n(?:(?:[ \t#][^\n]*|)\n)*", re.MULTILINE)


@record
class Source:
    """A spec file, and the variant of it a built-in name chose (None: the file as it is)."""

    path: Path
    variant: str | None = None

    def __str__(self) -> str:
        """`path`, or `path:variant`, which `resolve` reads back."""
        return f"{self.path}:{self.variant}" if self.variant else str(self.path)


@functools.cache
def _spec_files() -> tuple[str, ...]:
    found = (p.relative_to(ARCHITECTURES).with_suffix("").as_posix() for p in ARCHITECTURES.rglob("*.yaml"))
    return tuple(sorted(found))


def family_variants(path: Path) -> list[str]:
    """The variant names a spec file declares, in file order, read from its `variants:` section
    alone (cheap: no full parse; a test checks this equals what the spec parser reads)."""
    return _variants_in(path.read_text(encoding="utf-8"))


def _variants_in(text: str) -> list[str]:
    """`family_variants` of a spec file's text."""
    if "variants:" not in text:
        return []
    found = _VARIANTS.search(text)
    if found is None:
        return []
    # libyaml's safe loader where it is built in (10x faster; this runs for every built-in name lookup)
    section = yaml.load(found.group(0), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    variants = section.get("variants") or {}
    return [str(name) for name in variants] if isinstance(variants, dict) else []


@functools.cache
def families() -> dict[str, list[str]]:
    """Family file (`resnet`, or `examples/x` in a folder) -> its variants' built-in names, in file order."""
    found = {}
    for name in _spec_files():
        variants = family_variants(ARCHITECTURES / f"{name}.yaml")
        if variants:
            folder = name.rpartition("/")[0]
            found[name] = [f"{folder}/{v}" if folder else v for v in variants]
    return found


@functools.cache
def _variant_index() -> dict[str, tuple[str, str]]:
    """Variant built-in name -> (family file name, variant name as the file spells it)."""
    return {full: (family, full.rpartition("/")[2]) for family, names in families().items() for full in names}


@functools.cache
def _variant_of(name: str) -> tuple[str, str] | None:
    """`_variant_index().get(name)`, without parsing every family file's variants (start-up time:
    `cnncalc summary resnet152` resolves one name). A file that declares a variant holds its
    name as text, so only the files of the name's folder whose text contains it are parsed; as
    in `_variant_index`, the last such file in name order wins. A test checks that this agrees
    with `_variant_index` on every built-in name."""
    if families.cache_info().currsize:  # every family file read already (`cnncalc list`): the index answers
        return _variant_index().get(name)
    folder, _, variant = name.rpartition("/")
    if not variant:
        return None
    found = None
    for family in _spec_files():
        if family.rpartition("/")[0] != folder:
            continue
        text = (ARCHITECTURES / f"{family}.yaml").read_text(encoding="utf-8")
        if variant in text and variant in _variants_in(text):
            found = (family, variant)
    return found


def builtin_names() -> list[str]:
    """Names of the built-in architectures (`vgg16`, `examples/mnist_cnn`, `resnet50` from the
    `resnet` family), sorted; family files stand for their variants."""
    plain = [name for name in _spec_files() if name not in families()]
    return sorted(plain + list(_variant_index()))


def builtin_path(name: str) -> Source:
    """The source of a built-in name: its own file, or its family file and variant."""
    found = _variant_of(name)
    if found is not None and not (ARCHITECTURES / f"{name}.yaml").exists():
        family, variant = found
        return Source(ARCHITECTURES / f"{family}.yaml", variant)
    return Source(ARCHITECTURES / f"{name}.yaml")


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
    (never a spec path or built-in name, nor a spec file's variant `family.yaml:small`); `cnncalc
    import` and the table commands read those."""
    head, sep, attr = source.rpartition(":")
    return bool(
        sep
        and head
        and attr.isidentifier()
        and not source.endswith((".yaml", ".yml"))
        and not head.endswith((".yaml", ".yml"))
        and len(head) > 1
    )


_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
ARG_VALUES = "a number, true/false, null, text, or a list of those such as [3, 4, 6, 3]"


def read_args(pairs: Sequence[str]) -> dict[str, Any]:
    """`--arg name=value` pairs as a dict: each value read as a YAML scalar (`2`, `0.5`, `1e-6`,
    `true`, `null`, `text`) or a flow list of scalars (`[3, 4, 6, 3]`). Raises CnncalcError naming
    the first malformed pair (the CLI's exit 2)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise CnncalcError("malformed --arg", received=pair, expected="name=value, e.g. --arg width=2")
        if key in out:
            raise CnncalcError(f"--arg {key} is given twice", received=pair, expected="each name once")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            raise CnncalcError(
                f"--arg {key}: the value is not a YAML value", received=text, expected=ARG_VALUES
            ) from None
        except RecursionError:  # PyYAML's parser recurses once per level: `[[[...]]]` 500 deep
            raise CnncalcError(
                f"--arg {key}: a mapping or a nested list is not an argument value", received=text, expected=ARG_VALUES
            ) from None
        if isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
            value = float(value)  # 1e-6, which YAML 1.1 reads as text
        scalars = (bool, int, float, str, type(None))
        listed = isinstance(value, list) and all(isinstance(v, scalars) for v in value)
        if not isinstance(value, scalars) and not listed:
            raise CnncalcError(
                f"--arg {key}: a mapping or a nested list is not an argument value", received=text, expected=ARG_VALUES
            )
        out[key] = value
    return out


def resolve(source: str | Path | Source) -> Source:
    """The spec a user means: an existing path (or `-`, standard input), else a built-in name
    (with or without .yaml), a file or a family's variant.

    `architectures/vgg16.yaml` works from any directory, as does `vgg16`; `resnet50` is the
    `resnet50` variant of `resnet.yaml`, `path/family.yaml:small` the `small` variant of a file; an unknown name lists close matches. Family files are
    scanned only when the name is no file (so `vgg16` costs one stat).
    """
    if isinstance(source, Source):
        return source
    source = str(source)
    path = Path(source)
    if _exists(path) or source == STDIN:
        return Source(path)
    file, colon, variant = source.rpartition(":")
    if colon and variant and is_file(Path(file)):  # `my_family.yaml:small`, a variant of a file
        return Source(Path(file), variant)
    stem = source[:-5] if source.endswith(".yaml") else source[:-4] if source.endswith(".yml") else source
    candidates = [stem]
    if path.parent.name == "architectures":
        candidates.append(Path(stem).name)
    for candidate in candidates:
        if is_file(ARCHITECTURES / f"{candidate}.yaml") or _variant_of(candidate) is not None:
            return builtin_path(candidate)
    names = builtin_names()
    hint = did_you_mean(Path(stem).name[:200], names)
    raise SpecError(
        f"no such file, and no built-in architecture named '{stem}'",
        where=Where(file=source),
        expected=f"a path to a .yaml spec, or one of the {sum('/' not in n for n in names)} built-in names "
        "(`cnncalc list` lists them)",
        hint=hint or "run `cnncalc list` for the built-in architectures",
    )


def read_stdin() -> str:
    """A spec from standard input (`-`), under the same size limit as a file."""
    from .yaml_lines import MAX_SPEC_BYTES

    data = sys.stdin.buffer.read(MAX_SPEC_BYTES + 1)
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(
            "spec file is too large",
            where=Where(file="<stdin>"),
            received=f"more than {MAX_SPEC_BYTES:,} bytes",
            expected=f"at most {MAX_SPEC_BYTES:,} bytes",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(
            "spec file is not UTF-8 text", where=Where(file="<stdin>"), expected="a YAML text file"
        ) from None
