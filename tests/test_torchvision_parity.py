"""Parameter and MAC totals against torchvision's published figures (issue 2's list)."""

import pytest

import cnncalc
from cnncalc.analysis import analyze

# params with biases; MACs of conv + linear at 224x224 (torchvision's model docs / fvcore)
PUBLISHED = {
    "resnet18": (11_689_512, 1_814_073_344),
    "resnet34": (21_797_672, 3_663_761_408),
    "resnet50": (25_557_032, 4_089_184_256),
    "resnet101": (44_549_160, 7_801_405_440),
    "resnet152": (60_192_808, 11_513_626_624),
    "vgg11": (132_863_336, None),
    "vgg13": (133_047_848, None),
    "vgg16": (138_357_544, None),
    "vgg19": (143_667_240, None),
    "alexnet_torchvision": (61_100_840, None),
    "alexnet": (62_378_344, None),  # the notes' simplified AlexNet
    "alexnet_grouped": (60_965_224, None),  # the paper's two-GPU split
    "lenet5": (61_706, None),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_totals(name):
    params, macs = PUBLISHED[name]
    totals = analyze(cnncalc.load(name)).totals
    assert totals.params == params
    if macs is not None:
        assert totals.macs == macs
