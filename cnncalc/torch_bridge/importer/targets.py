"""Targets: what `cnncalc import` is given (torchvision:NAME, file.py:Class, pkg.module:factory), built and imported."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ...errors import CnncalcError, MissingExtraError, did_you_mean
from ...library import is_model_target, read_args
from ...records import record
from .pipeline import from_torch
from .result import ImportedSpec, Shape

# ----- targets: what `cnncalc import` is given ---------------------------------------------

TORCHVISION_INPUT: dict[str, Shape] = {"inception_v3": (3, 299, 299)}


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
    them (`[3, 1]`), as `cnncalc.library.read_args` reads them; a mapping passes through."""
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
    if not sep or not source or not attr:
        raise CnncalcError("malformed model target", received=target,
                           expected="torchvision:NAME, path/to/file.py:Class or package.module:factory")  # fmt: skip
    if source == "torchvision":
        return _torchvision(attr, args, meta)
    if source.endswith(".py") or os.sep in source or "/" in source:
        path = Path(source)
        if not path.is_file():
            raise CnncalcError("no such Python file", received=source, expected="path/to/file.py:Class")
        module_name = "cnncalc_import_" + re.sub(r"\W", "_", path.stem)
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = loaded
        try:
            spec.loader.exec_module(loaded)
        except Exception as err:  # noqa: BLE001 - the user's file failed
            raise CnncalcError(f"{source} fails on import", received=f"{type(err).__name__}: {err}") from None
    else:
        try:
            loaded = importlib.import_module(source)
        except ImportError as err:
            raise CnncalcError(f"cannot import the module '{source}'", received=str(err)) from None
    factory = getattr(loaded, attr, None)
    if factory is None:
        names = [n for n in dir(loaded) if not n.startswith("_")]
        raise CnncalcError(f"'{source}' has no '{attr}'", received=attr, hint=did_you_mean(attr, names))
    try:
        module = factory(**args)
    except TypeError as err:
        raise CnncalcError(f"cannot build {attr}" + (f" with {args}" if args else " with no arguments"),
                           received=str(err), hint="pass its arguments with --arg name=value") from err  # fmt: skip
    if not isinstance(module, nn.Module):
        raise CnncalcError(f"{target} did not give a torch.nn.Module", received=type(module).__name__)
    return Target(module, attr, None)


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
        raise CnncalcError(f"cannot build torchvision's {name}" + (f" with {args}" if args else ""),
                           received=f"{type(err).__name__}: {err}", hint="check the --arg names and values") from None  # fmt: skip
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


def load_target(target: str, input_shape: str | Sequence[int] | None = None,
                args: Sequence[str] | Mapping[str, Any] = ()) -> ImportedSpec:  # fmt: skip
    """A model target (`torchvision:resnet50`, `file.py:Net`, `pkg.module:factory`) imported: what
    `summary`, `flops`, `memory` and `profile` need to accept one in place of a spec (`.graph`)."""
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


is_target = is_model_target  # the syntax lives torch-free in the library, for the CLI


def import_command(target: str, output: str | None, input_shape: str | Sequence[int] | None,
                   args: Sequence[str] | Mapping[str, Any] = ()) -> str:  # fmt: skip
    """What `cnncalc import TARGET [-o FILE] [--input 3x224x224] [--arg k=v ...]` does: the YAML text
    (also written to `output` when given)."""
    imported = load_target(target, input_shape, args)
    if output:
        Path(output).write_text(imported.yaml)
    return imported.yaml
