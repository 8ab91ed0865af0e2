"""Tracing: the model as a torch.fx graph, every module cnncalc maps kept as one node."""

from __future__ import annotations

import contextlib
import inspect
import io
import linecache
import math
import operator
import os
import sys
import traceback
from typing import Any, Iterator

import torch
from torch import fx, nn
from torch.fx.node import map_aggregate
from torch.fx.passes.shape_prop import _extract_tensor_metadata
from torch.utils.flop_counter import FlopCounterMode

from ...errors import Where
from ...layers import ALIASES, REGISTRY, ElementWise
from ...spec.language import MAX_NODES
from .. import Piece, flop_counter, torch_state_kept
from .result import TorchImportError
from .table import module_kind

# ----- tracing -----------------------------------------------------------------------------


_UNKNOWN = object()  # a value the trace could not compute (it failed, or depends on one that did)


class _Unknown(Exception):
    """A value that Python needs now (a branch, an index) which the trace could not compute."""


class _ShapeProxy(fx.Proxy):
    """A proxy that knows its value at the traced input. Where Python needs a plain number from it
    (`math.ceil(h / s)`, `if x.shape[-2] < 7`, `range(x.size(1))`) and the value is one (it was
    computed from shapes), the number is used: the input shape is fixed, so such code is
    deterministic. A tensor's value is never read: that would be control flow on data."""

    def _number(self) -> Any:
        value = self.tracer.values.get(self.node, _UNKNOWN)  # type: ignore[attr-defined]
        if isinstance(value, (bool, int, float)):
            return value
        raise fx.proxy.TraceError(
            "symbolically traced variables cannot be used as inputs to control flow"
            + (" (a tensor's values, not its shape)" if isinstance(value, torch.Tensor) else "")
        )

    def __getattr__(self, k: str) -> Any:
        # a tensor's device is where it lives, not data: `torch.autocast(device_type=x.device.type)`
        # (timm's EfficientViT) needs it as a value, which fx's Attribute proxy is not
        if k == "device":
            value = self.tracer.values.get(self.node, _UNKNOWN)  # type: ignore[attr-defined]
            if isinstance(value, torch.Tensor):
                return value.device
        return super().__getattr__(k)

    def __index__(self) -> int:
        return operator.index(self._number())

    def __int__(self) -> int:
        return int(self._number())

    def __float__(self) -> float:
        return float(self._number())

    def __ceil__(self) -> int:
        return math.ceil(self._number())

    def __floor__(self) -> int:
        return math.floor(self._number())

    def __trunc__(self) -> int:
        return math.trunc(self._number())

    def __round__(self, ndigits: int | None = None) -> Any:
        return round(self._number(), ndigits)

    def __len__(self) -> int:
        value = self.tracer.values.get(self.node, _UNKNOWN)  # type: ignore[attr-defined]
        if isinstance(value, (tuple, list, torch.Size, torch.Tensor)):
            return len(value)  # a shape's length, or a tensor's first axis: sizes, not data
        return super().__len__()


# the most operations a trace records: a graph holds at most MAX_NODES layers, and a forward that
# loops forever would otherwise grow the trace (each value kept) until the machine's memory ran out
MAX_OPERATIONS = MAX_NODES


class _TooLong(BaseException):
    """Raised by the tracer past MAX_OPERATIONS. A BaseException, as Ctrl-C's KeyboardInterrupt:
    an `except Exception` in the model's forward cannot catch it and loop on."""


class _Tracer(fx.Tracer):
    """Keeps every module cnncalc maps as one node (and every other torch.nn leaf, so that an
    unsupported one is named), and runs each node as it is recorded on the real input (batch 1),
    so that every node knows its value: its output's shape for the mapping (`tensor_meta`, as
    ShapeProp writes it), the FLOPs torch.utils.flop_counter counts for it (`flops`), and for
    shape arithmetic the number itself, which is what lets shape-dependent Python run."""

    def __init__(self, example: torch.Tensor) -> None:
        super().__init__()
        # where each node was made, in the model's code: its innermost frame outside torch and
        # cnncalc, found by walking the frames (fx's record_stack_traces formats whole stacks: a
        # third of the import of a large model)
        self.record_stack_traces = False
        self.example = example
        self.values: dict[fx.Node, Any] = {}
        self.failure: tuple[fx.Node, BaseException] | None = None  # the first op the model failed on
        self.evaluating = False  # running a node on real values: modules and parameters are themselves

    def call_module(self, m: nn.Module, forward: Any, args: Any, kwargs: Any) -> Any:
        if self.evaluating:  # a leaf's children, run for its value: nothing to record
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        return attr_val if self.evaluating else super().getattr(attr, attr_val, parameter_proxy_cache)

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

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _ShapeProxy(node, self)

    def to_bool(self, obj: fx.Proxy) -> bool:
        return bool(obj._number()) if isinstance(obj, _ShapeProxy) else super().to_bool(obj)

    def iter(self, obj: fx.Proxy) -> Iterator:
        value = self.values.get(obj.node, _UNKNOWN)
        if isinstance(value, (tuple, list, torch.Size)):  # `for size in x.shape[2:]`
            return iter([obj[i] for i in range(len(value))])  # type: ignore[index]
        return super().iter(obj)

    def create_proxy(
        self,
        kind: str,
        target: Any,
        args: Any,
        kwargs: Any,
        name: str | None = None,
        type_expr: Any = None,
        proxy_factory_fn: Any = None,
    ) -> fx.Proxy:
        if len(self.values) >= MAX_OPERATIONS:
            raise _TooLong
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        frame: Any = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith((_TORCH_DIR, _HERE)):
            frame = frame.f_back
        if frame is not None:
            proxy.node.meta["user_frame"] = (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
        self.values[proxy.node] = self.evaluate(proxy.node, kind, target, args, kwargs)
        return proxy

    def value(self, v: Any) -> Any:
        if isinstance(v, fx.Proxy):
            found = self.values.get(v.node, _UNKNOWN)
            if found is _UNKNOWN:
                raise _Unknown
            return found
        if isinstance(v, (tuple, list)):
            return type(v)(self.value(x) for x in v) if not hasattr(v, "_fields") else type(v)(*map(self.value, v))
        if isinstance(v, dict):
            return {k: self.value(x) for k, x in v.items()}
        if isinstance(v, slice):
            return slice(self.value(v.start), self.value(v.stop), self.value(v.step))
        return v

    def evaluate(self, node: fx.Node, kind: str, target: Any, args: Any, kwargs: Any) -> Any:
        if kind == "output" or (kind == "placeholder" and self.values):
            return _UNKNOWN
        counter = flop_counter()
        try:
            if kind == "placeholder":
                value = self.example
            elif kind == "get_attr":
                return _attribute(self.root, str(target))
            else:
                value = self.run(kind, target, args, kwargs, counter)
        except _Unknown:
            return _UNKNOWN
        except Exception as err:  # noqa: BLE001 - the model failed on this input: reported after the trace
            if self.failure is None:
                self.failure = (node, err)
            return _UNKNOWN
        found = False

        def tensor_meta(obj: Any) -> Any:
            nonlocal found
            if isinstance(obj, torch.Tensor):
                found = True
                return _extract_tensor_metadata(obj)
            return obj

        meta = map_aggregate(value, tensor_meta)
        if found:
            node.meta["tensor_meta"] = meta
            node.meta["flops"] = counter.get_total_flops()
        else:
            node.meta["value"] = value  # shape arithmetic: the number (or sizes) at this input
        node.meta["type"] = type(value)
        return value

    def run(self, kind: str, target: Any, args: Any, kwargs: Any, counter: FlopCounterMode) -> Any:
        """The node's value, computed from its arguments' values (raises _Unknown where one is unknown)."""
        a, kw = self.value(args), self.value(kwargs)
        run: Any
        if kind == "call_function":
            run = target
        elif kind == "call_method":
            run, a = getattr(a[0], str(target)), a[1:]
        else:
            run = _attribute(self.root, str(target))
            if _keeps_shape(run) and len(a) == 1 and not kw and isinstance(a[0], torch.Tensor):
                # a mapped module whose output has its input's shape (batch norm, activations): the
                # input stands for its value; running it (batch norm's meta path is slow) and
                # counting its FLOPs (0: cnncalc derives them) would be wasted
                return a[0]
        self.evaluating = True
        try:
            with torch.no_grad(), counter:
                return run(*a, **kw)
        finally:
            self.evaluating = False


_TORCH_DIR = os.path.dirname(torch.__file__)
_HERE = os.path.dirname(os.path.dirname(__file__))


def _user_frame(node: fx.Node) -> tuple[str | None, int | None, str | None, str | None]:
    """(file, line, source, function) in the model's code where the node was made."""
    found = node.meta.get("user_frame")
    if found is None:
        return None, None, None, None
    file, line, function = found
    return file, line, linecache.getline(file, line).strip() or None, function


def _attribute(root: nn.Module, path: str) -> Any:
    """The module, parameter, buffer or tensor at `path`, read past fx's patched __getattr__ (which
    answers a parameter with a proxy while tracing)."""
    value: Any = root
    for part in path.split("."):
        for store in ("_modules", "_parameters", "_buffers", "__dict__"):
            found = getattr(value, "__dict__", {}).get(store, {}) if store != "__dict__" else vars(value)
            if part in found:
                value = found[part]
                break
        else:
            value = object.__getattribute__(value, part)
    return value


def _keeps_shape(module: nn.Module) -> bool:
    """A module cnncalc maps to an element-wise type (its output has its input's shape)."""
    kind = module_kind(module)
    return kind is not None and issubclass(REGISTRY[ALIASES.get(kind, kind)], ElementWise)


def _described(err: BaseException) -> str:
    """`KeyError: 'features'`: the exception's type and the first line of its message."""
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text}"


def _does_not_run(title: str, example: torch.Tensor, where: Where, received: str) -> TorchImportError:
    sample = list(example.shape[1:])
    hint = "give the input shape the model expects (--input 3x224x224)"
    if len(sample) >= 3 and sample[0] == 1:  # `--input 1x3x28x28`: a batch axis given, and a second one added
        without = "x".join(map(str, sample[1:]))
        hint = f"--input is one sample's shape, without the batch axis (cnncalc adds it): --input {without}?"
    return TorchImportError(
        f"{title} does not run on an input of shape {sample} (batch axis added: {list(example.shape)})",
        where=where,
        received=received,
        hint=hint,
    )


def _root_cause(err: BaseException) -> BaseException:
    """fx's refusal where one is in the chain: leaving a module's call, fx's own bookkeeping can
    fail on the way out and hide it (`AssertionError: Unexpected key ...`)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, fx.proxy.TraceError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return err


RETURNS = "return x, return (c3, c4, c5), return [c3, c4, c5] or return {'p3': c3, 'p4': c4}"


def forward_where(module: nn.Module) -> Where:
    """Where the model's class defines forward (file and line where Python knows them)."""
    forward = type(module).forward
    try:
        file: str | None = inspect.getsourcefile(forward)
        line: int | None = inspect.getsourcelines(forward)[1]
    except (TypeError, OSError):
        file, line = None, None
    return Where(file=file, line=line, path=f"{type(module).__name__}.forward")


def _refuse_a_forward_that_does_not_return(module: nn.Module) -> None:
    """A forward with `yield` or `async def` runs none of its body when called: it hands back a
    generator or a coroutine, which tracing would then report as a model that does not run."""
    forward = type(module).forward
    kind = (
        "an async generator"
        if inspect.isasyncgenfunction(forward)
        else "a coroutine (async def)"
        if inspect.iscoroutinefunction(forward)
        else "a generator (it yields)"
        if inspect.isgeneratorfunction(forward)
        else None
    )
    if kind is not None:
        raise TorchImportError(
            f"forward is {kind}: calling it runs none of its layers; cnncalc imports models whose "
            "forward returns a tensor, or a tuple, list or dict of tensors",
            where=forward_where(module),
            received=f"forward defined as {kind.split(' (')[0]}",
            expected=RETURNS,
        )


def _trace(module: nn.Module, example: torch.Tensor, title: str) -> fx.GraphModule:
    """The model's fx graph, each node run on `example` as it is recorded (its meta: `tensor_meta`,
    `flops`); shape-dependent Python runs as Python, control flow on tensor values is refused."""
    _refuse_a_forward_that_does_not_return(module)
    tracer = _Tracer(example)
    defaults = _defaults(module, title)
    try:
        with contextlib.redirect_stderr(io.StringIO()), torch_state_kept():  # the library never prints
            graph = tracer.trace(module, concrete_args=defaults or None)
    except (Exception, _TooLong) as raised:  # noqa: BLE001 - the model's own error, or fx's refusal
        err = _root_cause(raised)
        file, line, cls_name, function = None, None, type(module).__name__, "forward"
        for frame, lineno in traceback.walk_tb(err.__traceback__):
            path = frame.f_code.co_filename
            if not path.startswith(_TORCH_DIR) and not path.startswith(_HERE):
                file, line, function = path, lineno, frame.f_code.co_name
                owner = frame.f_locals.get("self")
                if isinstance(owner, nn.Module):
                    cls_name = type(owner).__name__
        if isinstance(err, _TooLong):
            raise TorchImportError(
                f"{title} runs more than {MAX_OPERATIONS:,} operations on one input: a loop in forward that never ends?",
                where=Where(file=file, line=line, path=f"{cls_name}.{function}"),
                received=f"{MAX_OPERATIONS:,} operations traced, the last at this line",
                expected=f"a forward of at most {MAX_OPERATIONS:,} operations (a graph holds {MAX_NODES:,} layers)",
            ) from None
        received = _described(err)
        if isinstance(err, fx.proxy.TraceError) or "Proxy" in str(err):
            raise TorchImportError(
                "its control flow branches on the values of a tensor, not on its shape: the layers it runs depend on the data",
                where=Where(file=file, line=line, path=f"{cls_name}.{function}"),
                received=received,
                hint="cnncalc imports models whose layers do not depend on the data (a fixed graph); "
                "move the data-dependent part out of forward, or write that part of the spec by hand",
            ) from None
        innermost = traceback.extract_tb(err.__traceback__)[-1].filename if err.__traceback__ else ""
        if file is not None and innermost == file:  # raised by the model's own code, not by a torch op
            raise TorchImportError(
                f"the model's code fails while cnncalc imports {title}",
                where=Where(file=file, line=line, path=f"{cls_name}.{function}"),
                received=received,
            ) from None
        raise _does_not_run(
            title, example, Where(file=file, line=line, path=f"{cls_name}.{function}"), received
        ) from None
    if tracer.failure is not None:  # an op PyTorch refused on this input, recorded while the trace went on
        node, failed = tracer.failure
        file, line, source, _ = _user_frame(node)
        received = _described(failed) + (f" (in `{source}`)" if source else "")
        raise _does_not_run(title, example, Where(file=file, line=line), received) from None
    if defaults:  # fx keeps a placeholder and a guard (`_assert_is_none`) for each default: not the model's
        extra = [n for n in graph.nodes if n.op == "placeholder"][1:]
        dependent = {n for n in graph.nodes if any(p in extra for p in _ancestors(n))}
        for node in reversed([n for n in graph.nodes if n in dependent or n in extra]):
            graph.erase_node(node)
    return fx.GraphModule(tracer.root, graph, type(module).__name__)


def _ancestors(node: fx.Node) -> set[fx.Node]:
    seen: set[fx.Node] = set()
    todo = list(node.all_input_nodes)
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(n.all_input_nodes)
    return seen


def _defaults(module: nn.Module, title: str) -> dict[str, Any]:
    """forward's arguments after the input, each at its default (timm's ViT hybrids: `attn_mask=None,
    is_causal=False`): the model runs on one tensor. One without a default is a second input."""
    try:
        parameters = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):  # a forward without a signature: traced as it is
        return {}
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    named = [p for p in parameters if p.kind in (*positional, inspect.Parameter.KEYWORD_ONLY)]
    if not named or named[0].kind not in positional:
        return {}
    needed = [p.name for p in named[1:] if p.default is inspect.Parameter.empty]
    if needed:
        raise TorchImportError(
            f"{title} takes {len(needed) + 1} input tensors; cnncalc imports models with one input tensor",
            where=forward_where(module),
            received=f"forward({', '.join(p.name for p in named)})",
            expected="forward(x), its other arguments with defaults",
            hint="wrap the model in a module whose forward(x) makes the other inputs",
        )
    return {p.name: p.default for p in named[1:]}
