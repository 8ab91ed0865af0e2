"""The one door to PyTorch: a graph built as real `torch.nn` modules.

Only this module imports torch; the CLI and the core import it lazily, inside what needs it.
Every layer type says which module and keyword arguments it needs (`Layer.torch_module`), so
this file stays generic: it places each module under its dotted row name (so that
`named_modules()` matches the table row for row) and runs the nodes in graph order.
"""

from __future__ import annotations

import collections
import contextlib
from typing import Any, Iterator, Sequence

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - exercised where torch is absent
    from ..errors import MissingExtraError

    raise MissingExtraError(
        "this needs PyTorch, which is not installed",
        expected="the torch extra",
        hint="pip install 'cnncalc[torch]' (or install the torch build for your machine first)",
    ) from None

from ..analysis import Report, analyze
from ..errors import CnncalcError
from ..graph import Graph, OutputKind
from ..layers import Shape
from ..module_names import check_module_name
from . import held_modules, modules


class Add(nn.Module):
    """Element-wise sum of its inputs (residual connections)."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out


class Concat(nn.Module):
    """Concatenation on the channel axis (or on `dim`)."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat(inputs, dim=self.dim)


class Mul(nn.Module):
    """Element-wise product of two inputs, broadcasting (squeeze-excitation's `x * scale`)."""

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return x * scale


class Matmul(nn.Module):
    """torch.matmul of two inputs (attention's q @ k^T): torch.matmul, not `@`, which ptflops does not count."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)


class Crop(nn.Module):
    """A slice of every spatial axis, `start[i]` to `start[i] + size[i]` (a view of the input);
    a second input (center_crop's `like`) only gave the size and is not read."""

    def __init__(self, start: Sequence[int], size: Sequence[int]) -> None:
        super().__init__()
        self.start, self.size = tuple(start), tuple(size)

    def forward(self, x: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
        index = (slice(None), slice(None), *(slice(a, a + n) for a, n in zip(self.start, self.size)))
        return x[index]


class Piece(nn.Module):
    """One piece of the input along `dim` (chunk, split): a view, as torch.split returns."""

    def __init__(self, sizes: list[int], index: int, dim: int = 1) -> None:
        super().__init__()
        self.sizes, self.index, self.dim = list(sizes), index, dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.split(x, self.sizes, dim=self.dim)[self.index]


_OWN_MODULES = {"Add": Add, "Concat": Concat, "Mul": Mul, "Matmul": Matmul, "Crop": Crop, "Piece": Piece}


def module_class(name: str) -> Any:
    """The module class a layer type's `TorchModule` names: the bridge's own (here, modules.py,
    held_modules.py), else torch.nn's."""
    return (
        _OWN_MODULES.get(name) or getattr(modules, name, None) or getattr(held_modules, name, None) or getattr(nn, name)
    )


def out_of_memory(err: BaseException) -> bool:
    """Whether `err` is running out of memory: CUDA's OutOfMemoryError, the CPU allocator's refusal
    (a plain RuntimeError from c10's DefaultCPUAllocator), or Python's MemoryError."""
    return isinstance(err, (torch.cuda.OutOfMemoryError, MemoryError)) or "can't allocate memory" in str(err)


def refusal_hint(err: BaseException) -> str | None:
    """What to change when PyTorch refuses a run for a reason an option fixes, else None."""
    if "more than 1 value per channel" in str(err):
        return "batch norm in training needs more than one value per channel: raise --batch"
    return None


class GraphModule(nn.Module):
    """A cnncalc graph as an `nn.Module`; leaves are registered under their row names."""

    def __init__(self, graph: Graph, input_shape: Shape | None = None, report: Report | None = None) -> None:
        super().__init__()
        if report is None:
            report = analyze(graph, input_shape=input_shape)
        elif input_shape is not None:
            raise ValueError("pass either a report or an input shape, not both")
        shapes = [row.output_shape for row in report.rows]
        self.input_shape = report.input_shape
        self._plan: list[tuple[str, tuple[int, ...]]] = []
        self._spans: dict[int, int] = {}  # rows run under activation checkpointing (`checkpoint`)
        calls: dict[str, str] = {}
        self._detached: dict[str, nn.Module] = {}  # rows held as a parent's parameter (see _attach_parameter)
        self._where = {node.name: node.where for node in graph.nodes}
        for node in graph.nodes:
            if node.layer is None:
                continue
            if node.calls is not None:  # runs an earlier row's module again: no module of its own
                calls[node.name] = node.calls
                self._plan.append((node.name, node.inputs))
                continue
            check_module_name(node.name, node.where)
            spec = node.layer.torch_module([shapes[i] for i in node.inputs])
            factory = module_class(spec.name)
            module = factory(**spec.kwargs)
            if node.layer.parent_parameter([shapes[i] for i in node.inputs]) is not None:
                self._attach_parameter(node.name, module)
            else:
                self._attach(node.name, module)
            self._plan.append((node.name, node.inputs))
        # after step i, drop the outputs nobody reads later, as a hand-written forward would; an
        # output nothing reads (a dead end, Graph.unread) is dropped right after it is made
        last_read = {i: i for i in graph.unread()}
        last_read |= {j: i for i, (_, inputs) in enumerate(self._plan, start=1) for j in inputs}
        last_read |= {j: len(self._plan) + 1 for j in graph.output_nodes()}  # returned: kept to the end
        self._returns = graph.outputs
        # a namedtuple of the spec's name and fields (collections.namedtuple: the model's own class
        # would mean importing its code, which a spec never does)
        self._namedtuple = (
            collections.namedtuple(graph.outputs.typename or "Outputs", graph.outputs.keys)
            if graph.outputs is not None and graph.outputs.kind is OutputKind.NAMEDTUPLE
            else None
        )
        self._free_after = [[j for j, last in last_read.items() if last == i] for i in range(len(self._plan) + 1)]
        self._leaves = {**dict(self.named_modules()), **self._detached}
        for name, target in calls.items():
            module = self._leaves[target]
            if any(True for _ in module.parameters()) or any(True for _ in module.buffers()):
                node = graph.nodes[graph.index(name)]
                raise CnncalcError(
                    f"'{name}' calls '{target}', which has parameters or buffers",
                    received=target,
                    expected="call: reuses parameter-free modules (relu, pooling) only",
                ).located(node.where)
            self._leaves[name] = module

    def _attach_parameter(self, name: str, module: nn.Module) -> None:
        """A row held as a bare parameter of its parent (layer scale): the parent gets the module's
        `weight` under the row's last name; the module runs the row but stays out of the tree."""
        owner: nn.Module = self
        *path, leaf = name.split(".")
        for part in path:
            child = owner._modules.get(part)
            if child is None:
                child = nn.Module()
                _add(owner, part, child, name)
            owner = child
        (weight,) = module.parameters(recurse=False)  # `weight` (`bias` for a parameter row counted as one)
        try:
            owner.register_parameter(leaf, weight)
        except (KeyError, TypeError) as err:
            raise CnncalcError(
                f"layer name '{name}' cannot be a PyTorch parameter name", received=leaf, hint=str(err)
            ) from None
        for buffer, value in module.named_buffers(recurse=False):  # bias_table's index, beside its table
            owner.register_buffer(buffer, value, persistent=buffer not in module._non_persistent_buffers_set)
        self._detached[name] = module

    def _attach(self, name: str, module: nn.Module) -> None:
        parent: nn.Module = self
        *path, leaf = name.split(".")
        for part in path:
            child = parent._modules.get(part)
            if child is None:
                child = nn.Module()
                _add(parent, part, child, name)
            parent = child
        placeholder = parent._modules.get(leaf)
        _add(parent, leaf, module, name)
        if placeholder is not None and type(placeholder) is nn.Module:
            # rows named under this one came first (an imported module whose forward calls
            # functions before its own op): they stay its children, as in the model
            for part, child in placeholder.named_children():
                _add(module, part, child, f"{name}.{part}")

    def swap(self, name: str, module: nn.Module) -> None:
        """Put `module` in place of the row `name` (tests measure max pooling as average pooling)."""
        parent = self.get_submodule(name.rpartition(".")[0]) if "." in name else self
        setattr(parent, name.rpartition(".")[2], module)
        self._leaves[name] = module

    def checkpoint(self, spans: Sequence[tuple[int, int]]) -> GraphModule:
        """Run each span of rows [start, stop) under non-reentrant `torch.utils.checkpoint` in
        training (cnncalc.analysis.budget.segments finds them by block name); no spans: run as built."""
        self._spans = {start: stop for start, stop in spans}
        return self

    def _run(self, name: str, inputs: tuple[int, ...], outputs: list[torch.Tensor | None]) -> torch.Tensor:
        try:
            return self._leaves[name](*(outputs[i] for i in inputs))
        except Exception as err:  # noqa: BLE001 - PyTorch refused a row: say which, not a traceback
            if isinstance(err, CnncalcError) or out_of_memory(err) or type(err).__module__ == "torch.utils.checkpoint":
                raise  # ours already; running out of memory is the caller's; checkpoint's own control flow
            reason = str(err).splitlines()[0] if str(err) else "no message"
            raise CnncalcError(
                f"PyTorch cannot run row '{name}' as built ({type(err).__name__}: {reason})",
                where=self._where[name],
                hint=refusal_hint(err)
                or "cnncalc's own figures for this spec stand; the PyTorch bridge (profile, export) cannot check them",
            ) from err

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor | None] = [x]
        spans = self._spans if self.training and torch.is_grad_enabled() else {}
        step = 1
        while step <= len(self._plan):
            stop = spans.get(step)
            if stop is not None:
                self._run_span(step, stop, outputs)
                step = stop
                continue
            name, inputs = self._plan[step - 1]
            outputs.append(self._run(name, inputs, outputs))
            for j in self._free_after[step]:
                outputs[j] = None
            step += 1
        if self._returns is None:
            return outputs[-1]  # type: ignore[return-value]
        returned = [outputs[i] for i in self._returns.nodes]
        if self._returns.kind is OutputKind.DICT:
            return dict(zip(self._returns.keys, returned))  # type: ignore[return-value]
        if self._namedtuple is not None:
            return self._namedtuple(*returned)  # type: ignore[return-value, arg-type]
        return tuple(returned) if self._returns.kind is OutputKind.TUPLE else returned  # type: ignore[return-value]

    def _run_span(self, start: int, stop: int, outputs: list[torch.Tensor | None]) -> None:
        """Rows start..stop-1 as one checkpointed function of the tensors they read from before
        `start`; it returns the outputs read after it (the network's output included)."""
        from torch.utils.checkpoint import checkpoint

        needed = sorted({j for _, inputs in self._plan[start - 1 : stop - 1] for j in inputs if j < start})
        outputs_read = set(self._returns.nodes) if self._returns is not None else {len(self._plan)}
        later = {j for _, inputs in self._plan[stop - 1 :] for j in inputs} | outputs_read
        returned = [i for i in range(start, stop) if i in later]

        def run(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
            local: list[torch.Tensor | None] = [None] * stop
            for j, t in zip(needed, tensors):
                local[j] = t
            for step in range(start, stop):
                name, inputs = self._plan[step - 1]
                local[step] = self._run(name, inputs, local)
                for j in self._free_after[step]:
                    if j >= start:  # as without checkpointing; the span's inputs stay the caller's
                        local[j] = None
            return tuple(local[i] for i in returned)  # type: ignore[misc]

        results = checkpoint(run, *(outputs[j] for j in needed), use_reentrant=False)
        outputs.extend([None] * (stop - start))
        for i, t in zip(returned, results):
            outputs[i] = t
        for step in range(start, stop):
            for j in self._free_after[step]:
                outputs[j] = None


def _add(parent: nn.Module, part: str, module: nn.Module, full_name: str) -> None:
    try:
        parent.add_module(part, module)
    except (KeyError, TypeError) as err:
        raise CnncalcError(
            f"layer name '{full_name}' cannot be a PyTorch module name",
            received=part,
            expected="names that are not attributes of nn.Module (such as 'forward' or 'training')",
            hint=str(err),
        ) from None


def build(graph: Graph, input_shape: Shape | None = None, *, report: Report | None = None) -> GraphModule:
    """The graph as an `nn.Module` (randomly initialised, CPU, float32). Its shapes come from
    `report` (the graph's uncollapsed analysis) when the caller has one, else from analysing here."""
    return GraphModule(graph, input_shape, report)


def leaf_modules(model: GraphModule) -> dict[str, nn.Module]:
    """The modules that are rows of the table, by row name, in execution order (a `call:` row
    maps to the module it runs again, so one module may stand under several rows)."""
    return {name: model._leaves[name] for name, _ in model._plan}


def traced_shapes(model: GraphModule, x: torch.Tensor, counter: Any = None) -> dict[str, tuple[int, ...]]:
    """Each row's real output shape (without the batch axis), from forward hooks on one pass;
    under `counter` (a FlopCounterMode) where given, so that the same pass counts the FLOPs.

    The hooks are removed before returning.
    """
    rows_of: dict[int, list[str]] = {}  # module -> the rows that call it, in execution order
    modules = {}
    for name, module in leaf_modules(model).items():
        rows_of.setdefault(id(module), []).append(name)
        modules[id(module)] = module
    seen: dict[int, list[tuple[int, ...]]] = {key: [] for key in rows_of}
    handles = []
    for key, module in modules.items():

        def hook(_module: nn.Module, _inputs: Sequence[torch.Tensor], output: torch.Tensor, key: int = key) -> None:
            seen[key].append(tuple(output.shape[1:]))

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad(), counter if counter is not None else contextlib.nullcontext():
            model.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
    return {name: shape for key, names in rows_of.items() for name, shape in zip(names, seen[key])}


def shapes_and_flops(model: GraphModule, x: torch.Tensor) -> tuple[dict[str, tuple[int, ...]], dict[str, int]]:
    """`traced_shapes` and `flop_counts` of one pass (each a whole forward: on the meta device,
    where every op runs as Python, the pass is most of a check's time)."""
    counter = flop_counter()
    shapes = traced_shapes(model, x, counter)
    return shapes, _flops_by_row(counter)


def flop_counter() -> Any:
    """torch.utils.flop_counter.FlopCounterMode (no display), its own attention formula (sdpa_flop)
    given also to CPU's fused attention kernel, which it has none for and counts as 0 (the CUDA
    kernels, and the unfused path's two bmm, are counted: q @ k^T and attn @ v)."""
    from torch.utils import flop_counter as fc

    fused_cpu = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)

    def fused(query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> int:
        return int(fc.sdpa_flop_count(query, key, value))  # the shapes (FlopCounterMode passes shapes)

    mapping = {fused_cpu: fused} if fused_cpu is not None and hasattr(fc, "sdpa_flop_count") else {}
    _skip_dynamo_import(getattr(fc, "_FlopCounterMode", None))
    return fc.FlopCounterMode(display=False, custom_mapping=mapping)


@contextlib.contextmanager
def torch_state_kept() -> Iterator[None]:
    """Whatever way it is left, leaves torch's process-wide state as it found it: the dispatch-mode
    stack, the global module hooks and grad mode. A counter entered per op (the importer's tracer
    enters thousands) and interrupted inside its own `__enter__` or `__exit__` (Ctrl-C, the fuzzer's
    alarm) gets no `__exit__` from Python: its mode stayed on the stack and its hooks stayed global,
    so every later op of the process ran under a FlopCounterMode (in a notebook, the kernel's; in a
    test worker, the tests after it, where PyTorch's kernels lay some outputs out otherwise)."""
    from torch.nn.modules import module as nn_module
    from torch.utils import _python_dispatch as dispatch

    depth = len(dispatch._get_current_dispatch_mode_stack())
    hooks = {name: set(getattr(nn_module, name, {})) for name in _GLOBAL_HOOKS}
    grad = torch.is_grad_enabled()
    try:
        yield
    finally:
        restore_torch_state(depth, hooks, grad)


_GLOBAL_HOOKS = ("_global_forward_pre_hooks", "_global_forward_hooks")


def restore_torch_state(depth: int = 0, hooks: dict[str, set[Any]] | None = None, grad: bool = True) -> list[str]:
    """Takes back what was added to torch's process-wide state since it stood at `depth` dispatch
    modes, the global module hooks `hooks` (by table; None: not looked at) and grad mode `grad`;
    says what it took back (the modes' class names, "N global module hooks", "grad mode off")."""
    from torch.nn.modules import module as nn_module
    from torch.utils import _python_dispatch as dispatch

    left = [type(mode).__name__ for mode in dispatch._get_current_dispatch_mode_stack()[depth:]]
    for _ in left:
        dispatch._pop_mode()
    added = 0
    for name, kept in (hooks or {}).items():
        table = getattr(nn_module, name, {})
        for key in [k for k in table if k not in kept]:
            for extra in ("_global_forward_hooks_with_kwargs", "_global_forward_hooks_always_called"):
                getattr(nn_module, extra, {}).pop(key, None)
            table.pop(key)
            added += 1
    if added:
        left.append(f"{added} global module hooks")
    if torch.is_grad_enabled() != grad:
        torch.set_grad_enabled(grad)
        left.append("grad mode off" if grad else "grad mode on")
    return left


def _skip_dynamo_import(mode: Any) -> None:
    """Spare the first counted op its import of torch._dynamo (1.6 to 1.9 s of CPU, as long as
    torch's own import): torch wraps a dispatch mode's `__torch_dispatch__` so that torch.compile
    never traces into it, and the wrapper imports torch._dynamo on its first call to build that
    guard. cnncalc never compiles under a counter (profile's --compile times its model outside
    one), so the wrapper is given the plain function as its cached guard, through the attribute the
    wrapper itself caches it in. Where torch._dynamo is loaded already the guard costs nothing and
    is left alone; where torch's wrapper differs, nothing changes (the import is only slower)."""
    import sys

    plain = getattr(getattr(mode, "__torch_dispatch__", None), "__wrapped__", None)
    if "torch._dynamo" not in sys.modules and callable(plain) and not hasattr(plain, "__dynamo_disable"):
        setattr(plain, "__dynamo_disable", plain)


def flop_counts(model: GraphModule, x: torch.Tensor) -> dict[str, int]:
    """FLOPs per row from torch.utils.flop_counter.FlopCounterMode on one no-grad pass."""
    counter = flop_counter()
    with torch.no_grad(), counter:
        model(x)
    return _flops_by_row(counter)


def _flops_by_row(counter: Any) -> dict[str, int]:
    return {name.removeprefix("GraphModule."): sum(ops.values()) for name, ops in counter.get_flop_counts().items()}


def fvcore_counts(model: GraphModule, x: torch.Tensor) -> dict[str, int] | None:
    """fvcore's FlopCountAnalysis by module name ("" is the total), or None without fvcore."""
    try:
        from fvcore.nn import FlopCountAnalysis
    except ImportError:
        return None
    import logging

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return dict(analysis.by_module())


def parameter_counts(module: nn.Module) -> tuple[int, int, int]:
    """(weights, biases, buffers) of one leaf module, counted from its real tensors."""
    weights = biases = 0
    for name, p in module.named_parameters(recurse=False):
        if name == "bias":
            biases += p.numel()
        else:
            weights += p.numel()
    buffers = sum(b.numel() for b in module.buffers(recurse=False))
    return weights, biases, buffers
