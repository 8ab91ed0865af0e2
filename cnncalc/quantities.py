"""The vocabulary of numbers: each thing cnncalc counts is one `Quantity` member, which says its
`Unit`; `DType` is the element type that turns elements into bytes.

At the bottom of the package (it imports nothing of cnncalc). A member's value is its one spelling
everywhere: the CLI's option values (`diff -q activations`), JSON keys, the `Row` or `Totals`
attribute that holds it. `activations` are always elements, never bytes; bytes have names of their
own (`activation_bytes`, `inference_bytes`). Where other text says it differently (the lecture
notes' "memory" for a layer's activations), the module that reads that text maps its word to the
member (`learn.quiz`).
"""

from __future__ import annotations

from enum import Enum


class Unit(str, Enum):
    """What a quantity's number counts; the value is how a heading writes it."""

    SHAPE = "shape"  # a tensor's sizes, not one number
    PARAMETERS = "parameters"  # values a layer holds: weights, biases, buffers
    ELEMENTS = "elements"  # tensor elements
    BYTES = "bytes"
    MACS = "MACs"  # multiply-accumulates
    FLOPS = "FLOPs"  # floating-point operations, 2 per MAC
    MILLISECONDS = "ms"
    TFLOP_PER_SECOND = "TFLOP/s"
    PIXELS = "pixels"  # input pixels along an axis
    ARGUMENTS = "arguments"  # layer arguments (stride, padding): each in its own unit

    def __str__(self) -> str:  # the value, as `Quantity`
        return self.value


class Quantity(str, Enum):
    """One number (or shape) cnncalc counts, per row or for the whole network; the value is how the
    CLI, JSON and `Row`/`Totals` attributes spell it. MACs, FLOPs and elements are per sample;
    bytes are at a report's batch and dtype."""

    SHAPE = "shape"  # a row's output shape
    WEIGHTS = "weights"
    BIASES = "biases"
    PARAMS = "params"  # weights + biases
    BUFFERS = "buffers"  # batch norm's running statistics and the like
    ACTIVATIONS = "activations"  # elements of a row's output (summed over rows for a network)
    ACTIVATION_BYTES = "activation_bytes"  # the same output in bytes: activations x batch x dtype size
    MACS = "macs"
    FLOPS = "flops"  # 2 x MACs
    PEAK_ACTIVATIONS = "peak_activations"  # most elements alive at once during inference
    SAVED_ACTIVATIONS = "saved_activations"  # elements a training step keeps for backward
    INFERENCE_BYTES = "inference_bytes"  # predicted peak memory of a forward pass
    TRAINING_BYTES = "training_bytes"  # predicted peak memory of a training step
    TIME_MS = "time"  # measured by a profile: milliseconds per row
    TFLOPS = "tflops"  # achieved: 2 x MACs x batch / time
    RECEPTIVE_FIELD = "receptive_field"  # input pixels one output position sees
    VALUES = "values"  # the unknown arguments a `solve:` question finds ({stride: 4, padding: 0})

    @property
    def unit(self) -> Unit:
        return _UNITS[self]

    def __str__(self) -> str:  # the value, as StrEnum (3.11+) and `Format`: typer maps a parsed option back by str()
        return self.value


_UNITS = {
    Quantity.SHAPE: Unit.SHAPE,
    Quantity.WEIGHTS: Unit.PARAMETERS,
    Quantity.BIASES: Unit.PARAMETERS,
    Quantity.PARAMS: Unit.PARAMETERS,
    Quantity.BUFFERS: Unit.PARAMETERS,
    Quantity.ACTIVATIONS: Unit.ELEMENTS,
    Quantity.ACTIVATION_BYTES: Unit.BYTES,
    Quantity.MACS: Unit.MACS,
    Quantity.FLOPS: Unit.FLOPS,
    Quantity.PEAK_ACTIVATIONS: Unit.ELEMENTS,
    Quantity.SAVED_ACTIVATIONS: Unit.ELEMENTS,
    Quantity.INFERENCE_BYTES: Unit.BYTES,
    Quantity.TRAINING_BYTES: Unit.BYTES,
    Quantity.TIME_MS: Unit.MILLISECONDS,
    Quantity.TFLOPS: Unit.TFLOP_PER_SECOND,
    Quantity.RECEPTIVE_FIELD: Unit.PIXELS,
    Quantity.VALUES: Unit.ARGUMENTS,
}


class DType(str, Enum):
    """Element types for byte counts; the value is how users spell it."""

    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    FP64 = "fp64"
    INT8 = "int8"

    @property
    def bytes(self) -> int:
        return _DTYPE_BYTES[self]

    @property
    def autocast(self) -> bool:
        """fp16 and bf16 are PyTorch's autocast (mixed precision), not a cast of the model."""
        return self in (DType.FP16, DType.BF16)

    @property
    def profiled(self) -> bool:
        """Whether `cnncalc profile` runs it: a model PyTorch runs at this dtype (not int8, a size only)."""
        return self is not DType.INT8

    @property
    def weight_bytes(self) -> int:
        """Bytes of one parameter, buffer, gradient, optimizer state, norm statistic or input element
        in a run at this dtype: fp32 under autocast (which keeps the master weights and hands the
        network the loader's fp32 batch), else the dtype's own (a model cast to fp64)."""
        return 4 if self.autocast else self.bytes

    def __str__(self) -> str:  # the value, as `Quantity`
        return self.value


_DTYPE_BYTES = {DType.FP32: 4, DType.FP16: 2, DType.BF16: 2, DType.FP64: 8, DType.INT8: 1}  # once, not per row
