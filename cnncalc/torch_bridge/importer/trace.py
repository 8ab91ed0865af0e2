"""Tracing: the model as a torch.fx graph, every module cnncalc maps kept as one node."""

from __future__ import annotations

import os
import re
import traceback

import torch
from torch import fx, nn

from ...errors import Where
from .. import Piece
from .result import TorchImportError
from .table import module_kind

# ----- tracing -----------------------------------------------------------------------------


class _Tracer(fx.Tracer):
    """Keeps every module cnncalc maps (and every other torch.nn leaf, so that an unsupported one is named)."""

    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if module_kind(m) is not None or isinstance(m, Piece):
            return True
        return super().is_leaf_module(m, module_qualified_name)

    def path_of_module(self, mod: nn.Module) -> str:
        try:
            return super().path_of_module(mod)
        except NameError:
            # cnncalc's own model keeps a layer scale's module out of the tree (its parameter is the
            # parent's): traced through, under the row's name
            detached = getattr(self.root, "_detached", {})
            for name, module in detached.items():
                if module is mod:
                    return str(name)
            raise


_TORCH_DIR = os.path.dirname(torch.__file__)
_HERE = os.path.dirname(os.path.dirname(__file__))


def _user_frame(stack: str | None) -> tuple[str | None, int | None, str | None]:
    """(file, line, source) of the innermost frame outside torch in an fx stack trace."""
    if not stack:
        return None, None, None
    found: tuple[str | None, int | None, str | None] = (None, None, None)
    lines = stack.splitlines()
    for i, text in enumerate(lines):
        m = re.match(r'\s*File "(.+)", line (\d+), in (.+)', text)
        if m and not m.group(1).startswith(_TORCH_DIR) and not m.group(1).startswith(_HERE):
            source = (
                lines[i + 1].strip() if i + 1 < len(lines) and not lines[i + 1].lstrip().startswith("File ") else None
            )
            found = (m.group(1), int(m.group(2)), source)
    return found


def _trace(module: nn.Module) -> fx.GraphModule:
    tracer = _Tracer()
    try:
        graph = tracer.trace(module)
    except (fx.proxy.TraceError, TypeError, RuntimeError, NotImplementedError) as err:
        file, line, cls_name = None, None, type(module).__name__
        for frame, lineno in traceback.walk_tb(err.__traceback__):
            path = frame.f_code.co_filename
            if not path.startswith(_TORCH_DIR) and not path.startswith(_HERE):
                file, line = path, lineno
                owner = frame.f_locals.get("self")
                if isinstance(owner, nn.Module):
                    cls_name = type(owner).__name__
        control = isinstance(err, fx.proxy.TraceError) or "control flow" in str(err) or "Proxy" in str(err)
        message = (
            f"torch.fx cannot trace {cls_name}.forward: its control flow depends on the values of its tensors"
            if control
            else f"torch.fx cannot trace {cls_name}.forward"
        )
        raise TorchImportError(
            message,
            where=Where(file=file, line=line, path=cls_name),
            received=f"{type(err).__name__}: {err}",
            hint="cnncalc imports models whose layers do not depend on the data (a fixed graph); "
            "move the data-dependent part out of forward, or write that part of the spec by hand",
        ) from None
    return fx.GraphModule(tracer.root, graph, type(module).__name__)
