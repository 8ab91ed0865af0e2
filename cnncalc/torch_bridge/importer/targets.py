"""Targets: what `cnncalc import` is given (torchvision:NAME, file.py:Class, pkg.module:factory), built and imported."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import linecache
import os
import re
import sys
import sysconfig
import traceback
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import nn

from ...errors import CnncalcError, MissingExtraError, Where, did_you_mean, excerpt
from ...files import refuse_inputs, write_text
from ...records import record
from ...spec.library import is_model_target, read_args
from .pipeline import from_torch
from .result import ImportedSpec, Shape

# ----- targets: what `cnncalc import` is given ---------------------------------------------

TORCHVISION_INPUT: dict[str, Shape] = {"inception_v3": (3, 299, 299)}
_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")  # pkg.module


def parse_shape(text: str) -> Shape:
    """`3x224x224` (or `3,224,224`) as a shape; raises CnncalcError."""
    parts = [p for p in re.split(r"[x,\s]+", text.strip().strip("[]()")) if p]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not 1 <= len(shape) <= 4 or any(s < 1 for s in shape):
        raise CnncalcError(
            "malformed input shape", received=text, expected="channels first, without the batch: 3x224x224"
        )
    return shape


def parse_args(pairs: Sequence[str] | Mapping[str, Any]) -> dict[str, Any]:
    """`--arg k=v` pairs: each value a YAML scalar (`2`, `0.5`, `true`, `fast`) or a flow list of
    them (`[3, 1]`), as `cnncalc.spec.library.read_args` reads them; a mapping passes through."""
    if isinstance(pairs, Mapping):
        return dict(pairs)
    return read_args(pairs)


@record
class Target:
    """A model to import: the module, a title, and its usual input shape when known."""

    module: nn.Module
    title: str
    input_shape: Shape | None


def resolve_target(target: str, args: Mapping[str, Any] | None = None, meta: bool = False) -> Target:
    """`torchvision:resnet50`, `path/to/file.py:Net` or `pkg.module:factory`, built with `args`;
    torchvision's models on the meta device with `meta` (shapes only: what an import needs)."""
    args = dict(args or {})
    source, sep, attr = target.rpartition(":")
    is_file = source.endswith(".py") or os.sep in source or "/" in source
    colon_in_path = is_file and ":" in source[2:] and not Path(source).is_file()  # file.py::Net (C:\ is a drive)
    if not sep or not attr.isidentifier() or colon_in_path or not (is_file or _MODULE_NAME.fullmatch(source)):
        raise CnncalcError(
            "malformed model target",
            received=target,
            expected="torchvision:NAME, path/to/file.py:Class or package.module:factory",
            hint="one colon, then the name of a class or function defined in the file or module",
        )
    if source == "torchvision":
        return _torchvision(attr, args, meta)
    if is_file:
        path = Path(source)
        if not path.is_file():
            raise CnncalcError("no such Python file", received=source, expected="path/to/file.py:Class")
        spec = importlib.util.spec_from_file_location(_file_module_name(path), path)
        if spec is None or spec.loader is None:  # a name Python does not read as source (model.txt)
            raise CnncalcError("not a Python source file", received=source, expected="path/to/file.py:Class")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = loaded
        try:
            spec.loader.exec_module(loaded)
        except Exception as err:  # noqa: BLE001 - the user's file failed
            del sys.modules[spec.name]
            raise _failed_import(target, source, err) from err
    else:
        try:
            loaded = importlib.import_module(source)
        except ModuleNotFoundError as err:
            if err.name is None or not source.startswith(err.name):  # the module found, one of its imports not
                raise _failed_import(target, source, err) from err
            raise CnncalcError(
                f"cannot import the module '{source}'",
                received=str(err),
                expected="a module importable from here (on sys.path)",
            ) from None
        except Exception as err:  # noqa: BLE001 - the user's module failed
            raise _failed_import(target, source, err) from err
    factory = getattr(loaded, attr, None)
    if factory is None:
        names = [n for n in dir(loaded) if not n.startswith("_")]
        own = [
            n
            for n, v in vars(loaded).items()
            if not n.startswith("_")
            and getattr(v, "__module__", None) == loaded.__name__
            and (inspect.isfunction(v) or (isinstance(v, type) and issubclass(v, nn.Module)))
        ]
        hint = did_you_mean(attr, names) or (f"it defines {', '.join(own[:10])}" if own else None)
        raise CnncalcError(
            f"'{source}' has no '{attr}'",
            received=attr,
            hint=hint,
            expected="a torch.nn.Module class, or a function that returns one, defined there",
        )
    if not callable(factory):
        raise CnncalcError(
            f"'{attr}' in '{source}' is not a class or a function",
            received=type(factory).__name__,
            expected="a torch.nn.Module class, or a function that returns a torch.nn.Module",
        )
    try:
        module = factory(**args)
    except TypeError as err:
        if _blame(err.__traceback__, _model_roots(target))[1] is not None:  # raised inside the model's code
            raise _unexpected(target, err) from err
        raise CnncalcError(
            f"cannot build {attr}" + (f" with {args}" if args else " with no arguments"),
            where=_where_defined(factory),
            received=str(err),
            expected=_signature(attr, factory),
            hint="pass its arguments with --arg name=value",
        ) from err
    except Exception as err:  # noqa: BLE001 - the model's constructor failed
        raise _unexpected(target, err) from err
    if not isinstance(module, nn.Module):
        made = "returned nothing (None)" if module is None else f"returned a value of type {type(module).__name__}"
        raise CnncalcError(
            f"{target} {made}, not a torch.nn.Module",
            where=_where_defined(factory),
            received=excerpt(module),
            expected="a torch.nn.Module (an instance of a class that subclasses it)",
            hint=f"make {attr} return the model (`return Net()`)" if inspect.isfunction(factory) else None,
        )
    return Target(module, attr, None)


def _signature(attr: str, factory: Any) -> str | None:
    """`Net(width, depth=2)`: what a class or function takes, when Python can tell."""
    try:
        return f"{attr}{inspect.signature(factory)}"
    except (TypeError, ValueError):
        return None


def _where_defined(obj: Any) -> Where:
    """The file and line where a function or class is defined, when Python can tell."""
    try:
        return Where(file=inspect.getsourcefile(obj), line=inspect.getsourcelines(obj)[1])
    except (TypeError, OSError):
        return Where()


def _failed_import(target: str, source: str, err: BaseException) -> CnncalcError:
    """A model file or module that fails while Python imports it: where in it, and what."""
    if isinstance(err, SyntaxError):
        return CnncalcError(
            f"{source} is not valid Python",
            where=Where(file=err.filename, line=err.lineno),
            received=f"{type(err).__name__}: {err.msg}" + (f" (in `{err.text.strip()}`)" if err.text else ""),
            hint="cnncalc imports the model's file as Python does: `python FILE` shows the same error",
        )
    failure = _unexpected(target, err)
    failure.message = f"{source} fails on import (cnncalc runs the file to find {target.rpartition(':')[2]})"
    failure.hint = "cnncalc imports the model's file as Python does: `python FILE` shows the same error"
    return failure


def _torchvision(name: str, args: dict[str, Any], meta: bool = False) -> Target:
    try:
        import torchvision
    except Exception as err:  # noqa: BLE001 - absent, or built for another torch
        raise MissingExtraError(
            "torchvision is not importable here",
            received=f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
            hint="install the torchvision that matches your torch (pip install torchvision)",
        ) from None
    names = torchvision.models.list_models()
    if name not in names:
        raise CnncalcError(f"torchvision has no model '{name}'", received=name, hint=did_you_mean(name, names))
    # no weights at all: segmentation models would otherwise fetch their backbone's
    if "weights_backbone" in inspect.signature(torchvision.models.get_model_builder(name)).parameters:
        args.setdefault("weights_backbone", None)
    try:
        module = _build(lambda: torchvision.models.get_model(name, weights=None, **args), meta)
    except (TypeError, ValueError) as err:
        raise CnncalcError(
            f"cannot build torchvision's {name}" + (f" with {args}" if args else ""),
            received=f"{type(err).__name__}: {err}",
            hint="check the --arg names and values",
        ) from None
    image_models = set(torchvision.models.list_models(module=torchvision.models)) | set(
        torchvision.models.list_models(module=torchvision.models.segmentation)
    )
    return Target(module, name, _torchvision_input(name) if name in image_models else None)


def _build(make: Any, meta: bool) -> nn.Module:
    """The model built on the meta device where it builds there (shapes only: no memory, no
    initialisation), else on the CPU (RegNet computes its widths with tensors while it builds)."""
    if meta:
        try:
            with torch.device("meta"):
                return make()
        except (NotImplementedError, RuntimeError):
            pass
    return make()


def _torchvision_input(name: str) -> Shape:
    """The crop size of the model's DEFAULT weights' transforms (efficientnet_b7: 600), as the
    weights were trained; 520 for segmentation (its resize size); 224 where nothing says."""
    import torchvision

    if name in TORCHVISION_INPUT:
        return TORCHVISION_INPUT[name]
    try:
        keywords = torchvision.models.get_model_weights(name).DEFAULT.transforms.keywords
    except (AttributeError, ValueError, KeyError):
        return (3, 224, 224)
    size = keywords.get("crop_size") or keywords.get("resize_size") or 224
    size = size[0] if isinstance(size, (list, tuple)) else size
    return (3, int(size), int(size))


def load_target(
    target: str, input_shape: str | Sequence[int] | None = None, args: Sequence[str] | Mapping[str, Any] = ()
) -> ImportedSpec:
    """A model target (`torchvision:resnet50`, `file.py:Net`, `pkg.module:factory`) imported: what
    `summary`, `flops`, `memory` and `profile` need to accept one in place of a spec (`.graph`)."""
    with guarded(target):
        resolved = resolve_target(target, parse_args(args), meta=True)
        if isinstance(input_shape, str):
            shape: Shape | None = parse_shape(input_shape)
        elif input_shape is not None:
            shape = tuple(input_shape)
        else:
            shape = resolved.input_shape
        if shape is None:
            raise CnncalcError(
                f"cnncalc does not know the input shape of {target}", expected="--input, e.g. --input 3x224x224"
            )
        return from_torch(resolved.module, shape, name=resolved.title)


# ----- errors that are not cnncalc's own: the model's code, or a bug -------------------------

_CNNCALC_DIR = Path(__file__).resolve().parents[2]  # the cnncalc package
_NOT_THE_MODELS = tuple(
    str(Path(p).resolve()) + os.sep
    for p in (str(_CNNCALC_DIR), str(Path(str(torch.__file__)).parent), *sysconfig.get_paths().values())
    if p
)


def _definition(target: str) -> Where:
    """Where the target's class or factory is defined, once its module is loaded (else nowhere)."""
    source, _, attr = target.rpartition(":")
    is_file = source.endswith(".py") or os.sep in source or "/" in source
    loaded = sys.modules.get(_file_module_name(Path(source)) if is_file else source)
    if (
        is_file
        and loaded is not None
        and Path(str(getattr(loaded, "__file__", ""))).resolve() != Path(source).resolve()
    ):
        return Where()  # another file of the same name, loaded before
    return _where_defined(getattr(loaded, attr)) if loaded is not None and hasattr(loaded, attr) else Where()


def _file_module_name(path: Path) -> str:
    return "cnncalc_import_" + re.sub(r"\W", "_", path.stem)


def _model_roots(target: str) -> tuple[str, ...]:
    """The folders whose code is the model's own: a file target's folder (its sibling modules too),
    a package target's top-level package; none for torchvision (a library)."""
    source = target.rpartition(":")[0]
    if not source or source == "torchvision":
        return ()
    if source.endswith(".py") or os.sep in source or "/" in source:
        return (str(Path(source).resolve().parent) + os.sep,)
    try:
        found = importlib.util.find_spec(source.split(".")[0])
    except (ImportError, ValueError):
        return ()
    places = list(found.submodule_search_locations or []) if found else []
    if found and found.origin and not places:
        places = [str(Path(found.origin).parent)]
    return tuple(str(Path(p).resolve()) + os.sep for p in places)


def _owner(filename: str, roots: tuple[str, ...]) -> str | None:
    """ "model" for a file of the model's code, "cnncalc" for cnncalc's, None for the rest (torch,
    Python, installed packages; unless the model is one of those: `torch.nn:Identity`)."""
    path = str(Path(filename).resolve())
    if path.startswith(str(_CNNCALC_DIR) + os.sep):
        return "cnncalc"
    for root in roots:
        if path.startswith(root) and not any(path.startswith(x) and not root.startswith(x) for x in _NOT_THE_MODELS):
            return "model"
    return None


def _blame(tb: TracebackType | None, roots: tuple[str, ...]) -> tuple[str, traceback.FrameSummary | None]:
    """Whose code raised: the innermost frame that is the model's or cnncalc's decides (torch's and
    Python's frames in between are what either called); and the model's innermost frame, if any."""
    frames = traceback.extract_tb(tb)
    owner = next((o for o in (_owner(f.filename, roots) for f in reversed(frames)) if o is not None), "cnncalc")
    theirs = next((f for f in reversed(frames) if _owner(f.filename, roots) == "model"), None)
    return owner, theirs


@contextmanager
def guarded(target: str) -> Iterator[None]:
    """No traceback from an import: an exception that is not a CnncalcError becomes one, naming the
    target and the model's file and line, and saying whose it is: the model's code (it raised
    while cnncalc built, traced or ran it) or cnncalc's (a bug). The original is its __cause__."""
    try:
        yield
    except CnncalcError as err:
        err.located(_definition(target))  # at least the model's file, once it is loaded
        raise
    except Exception as err:  # noqa: BLE001 - the point: whatever escapes becomes one message
        raise _unexpected(target, err) from err
    except SystemExit as err:  # sys.exit() or exit() in the model's file (a script's "no GPU" check)
        failure = _unexpected(target, err)
        if failure.message.startswith("the model's code"):
            failure.message = f"the model's code exits while cnncalc imports {target}"
            failure.hint = (
                "cnncalc imports the model's file and runs its forward as Python does: code that exits "
                "(sys.exit, exit(), argparse reading sys.argv) belongs under `if __name__ == '__main__':`"
            )
        raise failure from err
    except KeyboardInterrupt as err:  # Ctrl-C: where the model's code was, if it was on the stack
        # (cnncalc's tracer runs each op as the model's forward calls it: the model's frame is
        # below cnncalc's then, not the innermost)
        if _blame(err.__traceback__, _model_roots(target))[1] is None:
            raise
        failure = _unexpected(target, err)
        failure.message = f"interrupted while the model's code ran ({target})"
        failure.hint = "the model's code had not finished: a loop that never ends? `python FILE` runs it the same way"
        raise failure from err


def _unexpected(target: str, err: BaseException) -> CnncalcError:
    roots = _model_roots(target)
    owner, frame = _blame(err.__traceback__, roots)
    what = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")
    if frame is not None:
        where = Where(file=frame.filename, line=frame.lineno)
        code = (linecache.getline(frame.filename, frame.lineno or 0) or "").strip()
    else:  # nothing of the model's on the way: where its class or factory is defined
        source = target.rpartition(":")[0]
        where, code = _definition(target), ""
        if not where.file and source.endswith(".py"):
            where = Where(file=source)
    if owner == "model":
        return CnncalcError(
            f"the model's code fails while cnncalc imports {target}",
            where=where,
            received=what + (f" (in `{code}`)" if code else ""),
            hint="the line named is in the model's own code: fix it there, or give the "
            "arguments it needs with --arg name=value",
        )
    inner = traceback.extract_tb(err.__traceback__)
    at = next((f for f in reversed(inner) if _owner(f.filename, roots) == "cnncalc"), None)
    place = f" (at {Path(at.filename).relative_to(_CNNCALC_DIR.parent)}:{at.lineno})" if at is not None else ""
    return CnncalcError(
        f"cnncalc failed on {target}: an internal error, not the model's",
        where=where,
        received=what + place,
        hint="a bug in cnncalc: please report it with the model's code and this command",
    )


def load_target_at(
    target: str, input_shapes: Sequence[Shape], args: Sequence[str] | Mapping[str, Any] = ()
) -> list[tuple[Shape, ImportedSpec | CnncalcError]]:
    """The target built once and imported at each input shape (what `cnncalc sweep` over sizes
    needs: a model's layers can depend on its input size): the spec, or why it does not import at
    that shape. An error of the target itself (no such file, no such class) is raised."""
    with guarded(target):
        resolved = resolve_target(target, parse_args(args), meta=True)
    out: list[tuple[Shape, ImportedSpec | CnncalcError]] = []
    for shape in input_shapes:
        try:
            with guarded(target):
                out.append((shape, from_torch(resolved.module, shape, name=resolved.title)))
        except CnncalcError as err:
            out.append((shape, err))
    return out


is_target = is_model_target  # the syntax lives torch-free in the library, for the CLI


def import_command(
    target: str,
    output: str | None,
    input_shape: str | Sequence[int] | None,
    args: Sequence[str] | Mapping[str, Any] = (),
) -> str:
    """What `cnncalc import TARGET [-o FILE] [--input 3x224x224] [--arg k=v ...]` does: the YAML text
    (also written to `output` when given)."""
    model_file = target.rpartition(":")[0] if target.rpartition(":")[0].endswith(".py") else None
    if output:  # refused before the model's code runs, where the target names its file
        refuse_inputs(output, [model_file])
    imported = load_target(target, input_shape, args)
    if output:  # a package target's file is known once it is imported
        write_text(output, imported.yaml, inputs=[model_file, _definition(target).file])
    return imported.yaml
