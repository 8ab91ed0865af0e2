from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cnncalc
from cnncalc.analysis import DType, analyze, predicted_memory
from cnncalc.analysis.sweep import (
    MAX_COMBINATIONS,
    expand,
    fit_batch,
    parse_batches,
    parse_bytes,
    parse_dtypes,
    parse_shapes,
    sweep,
)
from cnncalc.errors import CnncalcError
from cnncalc.render.cells import human, human_bytes


def test_expand_and_parsers():
    assert expand("3x{128,160}x{1,2}") == ["3x128x1", "3x128x2", "3x160x1", "3x160x2"]
    assert parse_shapes("3x{128,160,192,224,256}") == [(3, 128), (3, 160), (3, 192), (3, 224), (3, 256)]
    assert parse_shapes("3x224x224,1x{28, 32}x28") == [(3, 224, 224), (1, 28, 28), (1, 32, 28)]
    assert parse_batches("1,8,64") == [1, 8, 64]
    assert parse_batches("{1,2}") == [1, 2]
    assert parse_dtypes("fp32,BF16") == [DType.FP32, DType.BF16]


@pytest.mark.parametrize(
    "text, parser, message",
    [
        ("3x{128,160", parse_shapes, "unbalanced"),
        ("3x{{1,2},3}", parse_shapes, "unbalanced"),
        ("3x{128,,160}", parse_shapes, "empty item"),
        ("3xabc", parse_shapes, "cannot read"),
        ("3x0x4", parse_shapes, "malformed"),
        ("1x2x3x4x5", parse_shapes, "malformed"),
        ("", parse_shapes, "empty"),
        ("1,0", parse_batches, "positive"),
        ("1,x", parse_batches, "positive"),
        ("fp32,fp12", parse_dtypes, "unknown dtype"),
        (
            "3x{" + ",".join(map(str, range(1, 101))) + "}x{" + ",".join(map(str, range(1, 102))) + "}",
            parse_shapes,
            "more than 10,000",
        ),
    ],
)
def test_malformed_lists_raise(text, parser, message):
    with pytest.raises(CnncalcError, match=message):
        parser(text)


def test_sweep_rows_match_analyze_and_sizes_that_do_not_fit_are_rows():
    g = cnncalc.load("vgg16")
    rows = sweep(g, [(3, 224), (3, 16)], [1, 8], [DType.FP32, DType.BF16])
    assert len(rows) == 2 * 2 * 2
    assert [(r.input_shape, r.batch, r.dtype) for r in rows[:4]] == [
        ((3, 224, 224), 1, DType.FP32),
        ((3, 224, 224), 1, DType.BF16),
        ((3, 224, 224), 8, DType.FP32),
        ((3, 224, 224), 8, DType.BF16),
    ]
    for row in rows[:4]:
        report = analyze(g, input_shape=row.input_shape, batch=row.batch, dtype=row.dtype)
        assert row.ok
        assert row.params == report.totals.params == 138_357_544
        assert row.macs == report.totals.macs
        assert row.activation_bytes == report.totals.activations * row.batch * row.dtype.bytes
        assert row.inference_bytes == predicted_memory(report, train=False)
        assert row.training_bytes == predicted_memory(report, train=True)
        assert row.output_shape == (1000,)
    # 16 -> 8 -> 4 -> 2 -> 1 after four 2x2 pools; the fifth (features.30) has a 1x1 input for its 2x2 window
    for row in rows[4:]:
        assert not row.ok and row.params is None and row.output_shape is None
        assert "features.30: kernel is larger than the padded input" in row.error


def test_sweep_strict_reason():
    # alexnet's 11x11/4 conv does not tile 3x225x225 exactly: under strict, a row with the reason
    (row,) = sweep(cnncalc.load("alexnet"), [(3, 225, 225)], [1], [DType.FP32], strict=True)
    assert not row.ok and "tile" in row.error


def test_sweep_too_many_combinations():
    with pytest.raises(CnncalcError, match="combinations"):
        sweep(cnncalc.load("lenet5"), [(1, 32, 32)] * 101, list(range(1, 101)), [DType.FP32])
    assert MAX_COMBINATIONS == 10_000


@pytest.mark.parametrize(
    "text, expected",
    [
        ("16GiB", 16 * 2**30),
        ("16GB", 16 * 10**9),
        ("512MiB", 512 * 2**20),
        ("1.5TiB", 3 * 2**39),
        ("12000000000", 12_000_000_000),
        ("100 kb", 100_000),
        ("8G", 8 * 2**30),
        ("0.5KiB", 512),
        ("2PiB", 2**51),
        ("3EB", 3 * 10**18),
        ("2P", 2**51),
    ],
)
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("value", [1, 1023, 3 * 2**29, 12 * 10**12, 5 * 2**50, 6 * 10**18, 12 * 2**60, 2**73])
def test_human_bytes_reads_back(value):
    """Every size the tables print, up to sizes absurd but valid specs reach (an adaptive pool of
    10**9 on each axis is about 11 EiB), reads back through --fit's parser to within its rounding."""
    text = human_bytes(value)
    number, unit = text.split()
    assert unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    assert abs(parse_bytes(text) - value) <= (0 if unit == "B" else parse_bytes(f"0.05{unit}"))
    assert unit == "B" or 1 <= float(number) < 1024 or unit == "EiB"


@pytest.mark.parametrize(
    "value, text", [(999, "999"), (138_357_544, "138.4M"), (6 * 10**15, "6.0P"), (6 * 10**21, "6000.0E")]
)
def test_human_counts(value, text):
    assert human(value) == text


@pytest.mark.parametrize(
    "text, message",
    [
        ("16 gigs", "unknown unit"),
        ("GiB", "cannot read"),
        ("-1GB", "cannot read"),
        ("0", "at least one byte"),
        ("1e9", "cannot read"),
        ("", "cannot read"),
    ],
)
def test_parse_bytes_errors(text, message):
    with pytest.raises(CnncalcError, match=message):
        parse_bytes(text)


@pytest.mark.parametrize("name, batch, dtype", [("squeezenet1_1", 128, DType.FP32), ("mobilenet_v2", 1, DType.BF16)])
def test_sweep_training_peak_is_the_network_analysed_at_that_batch(name, batch, dtype):
    """Where a step peaks in its forward pass, the peak is in bytes at the analysed batch and dtype:
    scaling batch 1's fp32 totals gave 0.971 (squeezenet1_1, batch 128) and 1.305 (mobilenet_v2, bf16)
    of the figure for the network analysed at that batch."""
    g = cnncalc.load(name)
    (row,) = sweep(g, [g.input_shape], [batch], [dtype])
    report = analyze(g, batch=batch, dtype=dtype)
    assert row.training_bytes == predicted_memory(report, train=True)
    assert row.inference_bytes == predicted_memory(report, train=False)


def test_prediction_is_affine_in_batch():
    report = analyze(cnncalc.load("googlenet"), dtype=DType.BF16)
    for train in (False, True):
        p = [predicted_memory(replace(report, batch=b), train) for b in (1, 2, 3, 17)]
        assert p[1] - p[0] == p[2] - p[1] and p[3] - p[0] == 16 * (p[1] - p[0])


_GRAPHS = {name: cnncalc.load(name) for name in ("resnet50", "vgg16", "googlenet", "lenet5")}


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(_GRAPHS)),
    train=st.booleans(),
    dtype=st.sampled_from(list(DType)),
    budget=st.integers(min_value=1, max_value=2**42),
)
def test_fit_batch_is_the_largest_that_fits(name, train, dtype, budget):
    """Against the network analysed at that batch and the next (a report's totals are at its own
    batch: the forward pass's peak and the layouts of a batch of one are its own)."""
    fit = fit_batch(_GRAPHS[name], budget, train, dtype)

    def at(batch):
        return predicted_memory(analyze(_GRAPHS[name], batch=batch, dtype=dtype), train)

    if fit.batch is None:
        assert at(1) > budget
        assert fit.bytes_at_batch == at(1)
    else:
        assert fit.bytes_at_batch == at(fit.batch) <= budget
        assert fit.bytes_at_next == at(fit.batch + 1) > budget
        assert fit.bytes_at_batch == fit.fixed_bytes + fit.batch * fit.bytes_per_sample
        assert fit.bytes_at_next == fit.fixed_bytes + (fit.batch + 1) * fit.bytes_per_sample


def test_fit_batch_example_and_too_small_budget():
    g = cnncalc.load("resnet50")
    fit = fit_batch(g, parse_bytes("16GiB"), train=True, dtype=DType.BF16)
    assert fit.fits and fit.bytes_at_batch <= 16 * 2**30 < fit.bytes_at_next
    small = fit_batch(g, parse_bytes("10MB"), train=False)
    assert not small.fits and small.batch is None and small.bytes_at_batch > 10**7  # the weights alone are 102 MB
    at_other_size = fit_batch(g, 2**30, train=False, input_shape=(3, 112))
    assert at_other_size.input_shape == (3, 112, 112)
    assert at_other_size.batch > fit_batch(g, 2**30, train=False).batch
