import cnncalc
from cnncalc.analysis import analyze, predicted_memory
from cnncalc.analysis.compare import TOTAL_QUANTITIES, Status, align, diff
from cnncalc.quantities import Quantity


def test_resnet50_vs_resnet101():
    a, b = analyze(cnncalc.load("resnet50")), analyze(cnncalc.load("resnet101"))
    d = diff(a, b)
    # resnet101's layer3 has 23 bottlenecks to resnet50's 6: 17 more, each 10 leaf rows
    # (conv1 bn1 relu1 conv2 bn2 relu2 conv3 bn3 add after.0)
    assert len(d.only_b) == 17 * 10
    assert {r.name.split(".")[1] for r in d.only_b} == {str(i) for i in range(6, 23)}
    assert all(r.name.startswith("layer3.") for r in d.only_b)
    assert d.only_a == ()
    assert len(d.matched) == len(a.rows)
    assert all(r.status is Status.SAME for r in d.matched)
    assert d.changed
    for q in TOTAL_QUANTITIES:
        if q in (Quantity.INFERENCE_BYTES, Quantity.TRAINING_BYTES):
            continue
        assert d.totals[q].delta == getattr(b.totals, q.value) - getattr(a.totals, q.value)
    assert d.totals[Quantity.TRAINING_BYTES].delta == predicted_memory(b, True) - predicted_memory(a, True)
    assert d.totals[Quantity.PARAMS].ratio == b.totals.params / a.totals.params
    # the rows' deltas add up to the totals' (rows include the input row)
    assert sum(r.changes[Quantity.MACS].delta for r in d.rows) == b.totals.macs - a.totals.macs
    assert sum(r.changes[Quantity.PARAMS].delta for r in d.rows) == b.totals.params - a.totals.params


def test_same_spec_other_input():
    g = cnncalc.load("resnet18")
    a, b = analyze(g), analyze(g, input_shape=(3, 112, 112))
    d = diff(a, b)
    assert d.changed and not d.only_a and not d.only_b
    conv1 = next(r for r in d.rows if r.name == "conv1")
    assert conv1.status is Status.CHANGED
    assert conv1.shape_a == (64, 112, 112) and conv1.shape_b == (64, 56, 56)
    assert conv1.changes[Quantity.PARAMS].delta == 0
    assert conv1.changes[Quantity.MACS].ratio == (56 * 56) / (112 * 112)
    fc = next(r for r in d.rows if r.name == "fc")
    assert fc.status is Status.SAME  # after the adaptive pool nothing depends on the input size
    assert d.totals[Quantity.PARAMS].delta == 0


def test_identical_specs_have_no_change():
    g = cnncalc.load("googlenet")
    d = diff(analyze(g), analyze(g))
    assert not d.changed
    assert all(r.status is Status.SAME for r in d.rows)
    assert all(c.delta == 0 and c.ratio in (1.0, None) for c in d.totals.values())


def test_renamed_rows_pair_by_type_inserted_rows_do_not():
    names_a = ["input", "conv1", "relu", "fc"]
    types_a = ["input", "conv", "relu", "linear"]
    names_b = ["input", "stem", "bn", "relu", "fc"]
    types_b = ["input", "conv", "batchnorm", "relu", "linear"]
    assert align(names_a, types_a, names_b, types_b) == [(0, 0), (1, 1), (None, 2), (2, 3), (3, 4)]
    # a type that changes is not paired: one row only in A, one only in B
    assert align(["input", "a"], ["input", "conv"], ["input", "b"], ["input", "linear"]) == [
        (0, 0),
        (1, None),
        (None, 1),
    ]


def test_renamed_row_is_matched_and_changed():
    text = "input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, name: %s}\n  - relu\n"
    from cnncalc import spec

    a = analyze(spec.parse_text(text % "first"))
    b = analyze(spec.parse_text(text % "second"))
    d = diff(a, b)
    renamed = [r for r in d.rows if r.renamed]
    assert [(r.a.name, r.b.name) for r in renamed] == [("first", "second")]
    assert renamed[0].status is Status.CHANGED and d.changed
    assert not d.only_a and not d.only_b
