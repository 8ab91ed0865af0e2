"""Writing a command's result to a file (`export -o`, `import -o`): never over one of the files
the result was read from, and atomically, so that a failure leaves the old file as it was."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .errors import CnncalcError


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file (through links, `./`, `..`), existing or not."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare where they point
        return Path(a).resolve() == Path(b).resolve()


def refuse_inputs(path: str | Path, inputs: Iterable[str | Path | None]) -> None:
    """A CnncalcError when `path` names one of `inputs` (`-`, standard input, names none)."""
    for source in inputs:
        if source is not None and str(source) != "-" and same_file(path, source):
            raise CnncalcError(
                f"will not write over {source}: the output would replace the input it was made from",
                received=f"-o {path}",
                expected="a file other than the input",
                hint="name another file with -o",
            )


def write_text(path: str | Path, text: str, inputs: Iterable[str | Path | None] = ()) -> None:
    """Write `text` to `path`: refused when `path` is one of `inputs` (the files the text was made
    from), else through a temporary file in the same folder renamed over `path` (a rename within
    one folder is atomic), keeping an existing file's permissions."""
    import tempfile  # here: it imports random and more, which `cnncalc --help` would pay for

    refuse_inputs(path, inputs)
    target = Path(path)
    final = target.resolve() if target.is_symlink() else target  # through a link, as open() writes
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    except OSError as err:
        raise CnncalcError(
            f"cannot write {path}", received=err.strerror, hint="check the folder exists and is writable"
        ) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        if final.exists():
            os.chmod(temporary, final.stat().st_mode & 0o7777)
        else:  # a new file gets the permissions open() would have given it
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, final)
    except OSError as err:
        Path(temporary).unlink(missing_ok=True)
        raise CnncalcError(
            f"cannot write {path}", received=err.strerror, hint="check the folder exists and is writable"
        ) from None
    except BaseException:  # Ctrl-C while writing: the old file stays, the temporary goes
        Path(temporary).unlink(missing_ok=True)
        raise
