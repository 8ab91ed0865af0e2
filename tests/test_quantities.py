"""One vocabulary of numbers (cnncalc/quantities.py): every quantity says its unit, and the words
that once meant two things (`activations`: elements in diff, bytes in plot) mean one."""

import pytest

from cnncalc.analysis import DType as AnalysisDType
from cnncalc.analysis import analyze
from cnncalc.analysis.compare import ROW_QUANTITIES, TOTAL_QUANTITIES
from cnncalc.learn.quiz import ANSWER_KEYS
from cnncalc.quantities import DType, Quantity, Unit
from cnncalc.render.plot import HEADINGS
from cnncalc.spec import parse_text

NET = """
name: two
input: [1, 8, 8]
layers:
  - conv: {filters: 4, kernel: 3}
"""


@pytest.mark.parametrize("quantity", list(Quantity), ids=lambda q: q.value)
def test_every_quantity_says_its_unit(quantity):
    assert isinstance(quantity.unit, Unit)
    assert str(quantity) == quantity.value  # how typer maps a parsed option back


def test_activations_are_elements_and_bytes_have_their_own_names():
    assert Quantity.ACTIVATIONS.unit is Unit.ELEMENTS
    assert Quantity.PEAK_ACTIVATIONS.unit is Quantity.SAVED_ACTIVATIONS.unit is Unit.ELEMENTS
    assert {q for q in Quantity if q.unit is Unit.BYTES} == {
        Quantity.ACTIVATION_BYTES,
        Quantity.INFERENCE_BYTES,
        Quantity.TRAINING_BYTES,
    }


def test_the_value_is_the_attribute_that_holds_it():
    # diff reads each row quantity from a Row and each total from Totals by the member's value
    report = analyze(parse_text(NET))
    conv = report.rows[1]
    assert [getattr(conv, q.value) for q in ROW_QUANTITIES] == [
        4 * 1 * 3 * 3,  # weights: filters x channels x kernel
        4,  # biases
        4 * 1 * 3 * 3 + 4,  # params
        0,  # buffers
        4 * 6 * 6,  # activations: elements, (8 - 3)/1 + 1 = 6 per axis, not bytes
        4 * 6 * 6 * (1 * 3 * 3),  # macs: each output element, one 3x3 window
    ]
    assert report.bytes_of(conv.activations) == 4 * 6 * 6 * 4  # bytes are fp32's 4 per element
    computed = {Quantity.INFERENCE_BYTES, Quantity.TRAINING_BYTES}  # predicted_memory, not an attribute
    assert all(isinstance(getattr(report.totals, q.value), int) for q in TOTAL_QUANTITIES if q not in computed)


def test_each_command_uses_members_of_the_one_enum():
    assert set(HEADINGS) <= set(Quantity)
    assert set(ANSWER_KEYS.values()) <= set(Quantity)
    # the lecture notes' words in quiz files name the one members
    assert ANSWER_KEYS["memory"] is Quantity.ACTIVATIONS
    assert ANSWER_KEYS["bytes"] is Quantity.ACTIVATION_BYTES
    assert Quantity.ACTIVATION_BYTES in HEADINGS and Quantity.ACTIVATIONS not in HEADINGS


def test_one_dtype():
    assert AnalysisDType is DType  # re-exported where it was, not a second enum
    assert [d.bytes for d in DType] == [4, 2, 2, 8, 1]  # fp32 fp16 bf16 fp64 int8
