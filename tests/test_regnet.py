"""The RegNet family's variants table (architectures/regnet.yaml) holds the per-stage integers that
torchvision's BlockParams.from_init_params resolves from each model's design parameters; here
they are resolved again, without torch, from the parameters torchvision's regnet.py passes."""

import math

import pytest

from cnncalc.spec import library
from cnncalc.spec.yaml_lines import load_file

# torchvision.models.regnet: from_init_params(depth, w_0, w_a, w_m, group_width[, se_ratio=0.25])
DESIGN = {
    "regnet_x_400mf": (22, 24, 24.48, 2.54, 16),
    "regnet_x_800mf": (16, 56, 35.73, 2.28, 16),
    "regnet_x_1_6gf": (18, 80, 34.01, 2.25, 24),
    "regnet_x_3_2gf": (25, 88, 26.31, 2.25, 48),
    "regnet_x_8gf": (23, 80, 49.56, 2.88, 120),
    "regnet_x_16gf": (22, 216, 55.59, 2.1, 128),
    "regnet_x_32gf": (23, 320, 69.86, 2.0, 168),
    "regnet_y_400mf": (16, 48, 27.89, 2.09, 8),
    "regnet_y_800mf": (14, 56, 38.84, 2.4, 16),
    "regnet_y_1_6gf": (27, 48, 20.71, 2.65, 24),
    "regnet_y_3_2gf": (21, 80, 42.63, 2.66, 24),
    "regnet_y_8gf": (17, 192, 76.82, 2.19, 56),
    "regnet_y_16gf": (18, 200, 106.23, 2.48, 112),
    "regnet_y_32gf": (20, 232, 115.89, 2.53, 232),
}


def resolve(depth: int, w_0: int, w_a: float, w_m: float, group_width: int) -> dict:
    """BlockParams.from_init_params and _adjust_widths_groups_compatibilty, bottleneck multiplier 1."""
    # block j's width: w_0 * w_m^round(log_{w_m}((w_0 + j w_a) / w_0)), rounded to a multiple of 8
    widths = [round(w_0 * w_m ** round(math.log((j * w_a + w_0) / w_0) / math.log(w_m)) / 8) * 8 for j in range(depth)]
    stages = sorted(set(widths), key=widths.index)  # consecutive equal widths form a stage
    groups = [min(group_width, w) for w in stages]
    return {
        "widths": [_make_divisible(w, g) for w, g in zip(stages, groups)],
        "depths": [widths.count(w) for w in stages],
        "group_widths": groups,
    }


def _make_divisible(v: int, divisor: int) -> int:
    """torchvision.models._utils._make_divisible: the nearest multiple, never 10% below v."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def variants() -> dict:
    return load_file(library.ARCHITECTURES / "regnet.yaml", "regnet.yaml")["variants"]


def test_the_family_is_the_design_list():
    assert list(variants()) == list(DESIGN) == library.families()["regnet"]


@pytest.mark.parametrize("model", DESIGN)
def test_variant_is_torchvisions_resolution(model):
    variant = variants()[model]
    assert {key: variant[key] for key in ("widths", "depths", "group_widths")} == resolve(*DESIGN[model])
    assert variant.get("se", False) == model.startswith("regnet_y")  # RegNetY: se_ratio=0.25
    assert all(w % 8 == 0 for w in variant["widths"])  # so round(0.25 * width in) is $in // 4 exactly


def test_resolution_of_regnet_x_8gf_by_hand():
    # 23 blocks, widths 80 (x2), 240 (x5), 720 (x15), 1920 (x1); the 80-wide stage's group width is
    # min(120, 80) = 80, one group; 1920 is a multiple of 120 (16 groups)
    assert resolve(23, 80, 49.56, 2.88, 120) == {
        "widths": [80, 240, 720, 1920],
        "depths": [2, 5, 15, 1],
        "group_widths": [80, 120, 120, 120],
    }
