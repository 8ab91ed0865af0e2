"""The `--input` override: sizes read in the order the spec's channels say."""

from __future__ import annotations

from ..errors import CnncalcError
from ..layers import Shape


def read_input_override(spec_shape: Shape, text: str) -> Shape:
    """An `--input` override for a spec whose input is `spec_shape` ([C, *spatial]), returned
    channels first. The order is read from the spec's channel count C, never guessed:

    - `3x224x224` and `224x224x3` for a 3-channel spec are both [3, 224, 224]: only one end is C;
    - when both ends are equal (`3x3x3`, `64x64x64`) both readings are the same shape;
    - when the ends differ and both, or neither, equal C (`64x32x64` on a 64-channel spec is
      ambiguous: 64 channels of 32x64 or of 64x32; `1x28x28` on a 3-channel spec is inconsistent),
      it is refused with both readings named, unless the text says its order: `chw:1x28x28`;
    - one size is a flat vector of features.
    """
    from ..units import ShapeOrder, read_sizes

    order: ShapeOrder | None = None
    body = str(text).strip()
    prefix, colon, rest = body.partition(":")
    if colon:
        try:
            order = ShapeOrder(prefix.strip().lower())
        except ValueError:
            raise CnncalcError(
                "malformed --input", received=text, expected="sizes such as 3x224x224, optionally after chw: or hwc:"
            ) from None
        body = rest
    sizes = read_sizes(body, "--input")
    if len(sizes) > 4:
        raise CnncalcError("malformed --input", received=text, expected="1 to 4 positive sizes: 3x224x224 or 224x224x3")
    chw, hwc = sizes, (sizes[-1], *sizes[:-1])
    if order is not None:  # the order written out: taken as written, a new dimensionality too
        return hwc if order is ShapeOrder.HWC else chw
    channels = spec_shape[0]
    if len(sizes) != len(spec_shape):
        return _other_rank(spec_shape, sizes, text, body.strip())
    if chw == hwc:
        return chw
    if (sizes[0] == channels) != (sizes[-1] == channels):
        return chw if sizes[0] == channels else hwc
    ambiguous = sizes[0] == channels
    readings = f"channels first {_shape_text(chw)}, or channels last {_shape_text(hwc)}"
    order_hint = f"write the order: chw:{body.strip()} (C first) or hwc:{body.strip()} (C last)"
    if ambiguous:
        raise CnncalcError(
            f"--input {text} is ambiguous: both ends are the spec's {channels} channels",
            received=readings,
            hint=order_hint,
        )
    raise CnncalcError(
        f"--input {text} is inconsistent: neither end is the spec's {channels} channels",
        received=readings,
        expected=f"{channels} at one end, as in {_example(spec_shape, sizes)}",
        hint=order_hint + " to change the channel count",
    )


def _other_rank(spec_shape: Shape, sizes: Shape, text: str, body: str) -> Shape:
    """An --input whose number of sizes is not the spec's: the spatial sizes alone (`224x224` for
    a [3, 224, 224] spec) take the spec's channels where no end could be them; anything else is
    refused, so that the dimensionality never changes unannounced."""
    channels, spatial = spec_shape[0], len(spec_shape) - 1
    if len(sizes) == spatial and channels not in (sizes[0], sizes[-1]):
        return (channels, *sizes)
    axes = (
        "a flat vector"
        if spatial == 0
        else f"{channels} channel{'s' if channels != 1 else ''} and {spatial} spatial ax{'es' if spatial > 1 else 'is'}"
    )
    given = f"{len(sizes)} size{'s' if len(sizes) > 1 else ''}"
    own = "x".join(map(str, spec_shape))
    if len(sizes) == spatial:  # spatial sizes only, but one end could be the channels
        message = f"--input {text} is ambiguous: {given}, and the spec's input {own} has {len(spec_shape)}"
        received: str = (
            f"the spatial size {'x'.join(map(str, sizes))} with the spec's {channels} channels, or {_shape_text(sizes)}"
        )
    else:
        message = f"--input {text} has {given}; the spec's input {own} has {len(spec_shape)} ({axes})"
        received = text
    raise CnncalcError(
        message,
        received=received,
        expected=f"{len(spec_shape)} sizes, as in the spec's own {own}",
        hint=f"to change the dimensionality on purpose, write the order: chw:{body} or hwc:{body}",
    )


def _shape_text(shape: Shape) -> str:
    return f"{shape[0]} channel{'s' if shape[0] != 1 else ''} of {'x'.join(map(str, shape[1:]))}"


def _example(spec_shape: Shape, sizes: Shape) -> str:
    spatial = "x".join(map(str, sizes[1:] if len(sizes) > 1 else spec_shape[1:]))
    return f"{spec_shape[0]}x{spatial}" if spatial else str(spec_shape[0])
