import pytest

from cnncalc.errors import SpecError
from cnncalc.spec.expr import evaluate


@pytest.mark.parametrize(
    "text, expected",
    [
        ("$out * 4", 256),
        ("$out // 3 + 1", 22),
        ("($out + 7) // 8 * 8", 64),
        ("-$out + 100", 36),
        ("$out / 2", 32),
        ("$out % 5", 4),
        ("$kernel", [3, 3]),  # a bare reference keeps the argument's own type
        ("$flag", True),
    ],
)
def test_arithmetic(text, expected):
    assert evaluate(text, {"out": 64, "kernel": [3, 3], "flag": True}) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("__import__('os').system('true')", "only integer arithmetic"),
        ("$out.__class__", "only integer arithmetic"),
        ("$out ** 2", "only integer arithmetic"),
        ("$out * 1.5", "only integer arithmetic"),
        ("$nope * 2", "unknown argument '$nope'"),
        ("$out / 3", "'/' must divide exactly"),
        ("$out // 0", "division by zero"),
        ("$out *", "cannot read this expression"),
        ("$kernel * 2", "not an integer"),
        ("$out * 10000000000 * 10000000000 * 10000000000", "too large"),
    ],
)
def test_rejected(text, message):
    with pytest.raises(SpecError) as err:
        evaluate(text, {"out": 64, "kernel": [3, 3]})
    assert message in str(err.value)


def test_suggests_close_argument():
    with pytest.raises(SpecError) as err:
        evaluate("$ot * 2", {"out": 64})
    assert err.value.hint == "did you mean 'out'?"


@pytest.mark.parametrize("stochastic_depth_prob", [0.1, 0.4, 0.5])
def test_rate_argument_gives_torchvisions_float(stochastic_depth_prob):
    """A decimal argument (a rate) may enter + - * /: ConvNeXt's per-block stochastic depth,
    `stochastic_depth_prob * stage_block_id / (total_stage_blocks - 1.0)` in torchvision, to the bit."""
    total = 3 + 3 + 27 + 3
    for k in range(total):
        value = evaluate("$rate * $k / ($blocks - 1)", {"rate": stochastic_depth_prob, "k": k, "blocks": total})
        assert type(value) is float and value == stochastic_depth_prob * k / (total - 1.0)
    assert evaluate("1 - $rate", {"rate": 0.25}) == 0.75


@pytest.mark.parametrize(
    "text, message",
    [
        ("$rate // 2", "'//' and '%' take integers"),
        ("$rate % 2", "'//' and '%' take integers"),
        ("$rate / 0", "division by zero"),
        ("$sizes[$rate]", "must be an integer"),
        ("$rate * 1.5", "only integer arithmetic"),  # literals stay integers
        ("$huge * $huge", "too large"),
    ],
)
def test_rate_argument_rejected(text, message):
    with pytest.raises(SpecError) as err:
        evaluate(text, {"rate": 0.5, "sizes": [1, 2], "huge": 1e300})
    assert message in str(err.value)


@pytest.mark.parametrize(
    "model, layers, stochastic_depth_prob",
    [
        ("convnext_tiny", [3, 3, 9, 3], 0.1),
        ("convnext_small", [3, 3, 27, 3], 0.4),
        ("convnext_large", [3, 3, 27, 3], 0.5),
    ],
)
def test_convnext_stochastic_depth_rises_as_torchvisions(model, layers, stochastic_depth_prob):
    """torchvision's ConvNeXt: block k of the network (from 0, across the stages) gets
    p = stochastic_depth_prob * k / (total_stage_blocks - 1.0); the spec numbers k stage by stage."""
    import cnncalc

    graph = cnncalc.load(model)
    rows = [node for node in graph.nodes if node.name.endswith(".stochastic_depth")]
    stages = [f"features.{2 * s + 1}.{j}.stochastic_depth" for s, n in enumerate(layers) for j in range(n)]
    assert [node.name for node in rows] == stages
    total = sum(layers)
    assert [node.layer.p for node in rows] == [stochastic_depth_prob * k / (total - 1.0) for k in range(total)]


def test_a_text_read_once_still_gives_each_scope_its_own_value():
    """`evaluate` keeps each text's syntax tree and its value per the arguments it names (start-up
    time); the key holds their types, so True is not taken for 1, nor an unknown name for a value."""
    text = "$a * 2 + $b"
    assert evaluate(text, {"a": 1, "b": 0}) == 1 * 2 + 0
    assert evaluate(text, {"a": 3, "b": 0, "other": 9}) == 3 * 2 + 0
    assert evaluate(text, {"a": 1, "b": 0}) == 1 * 2 + 0
    with pytest.raises(SpecError, match="not an integer"):
        evaluate(text, {"a": True, "b": 0})
    with pytest.raises(SpecError, match="unknown argument"):
        evaluate(text, {"a": 1})
    assert evaluate(text, {"a": 0.5, "b": 1}) == 0.5 * 2 + 1  # a decimal rate: computed, not kept
    assert evaluate("$k == 'x'", {"k": "x"}) is True and evaluate("$k == 'x'", {"k": "y"}) is False
    with pytest.raises(SpecError):
        evaluate("$k == 'x'", {"k": 1})
