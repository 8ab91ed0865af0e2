"""The built-in architectures as the torch tests run them: the input each one runs at, and which
of them a quick run takes."""

import pytest

from cnncalc.spec.library import builtin_names, families

# Small inputs where the architecture allows, to keep CI fast; 224x224 where the classifier needs it.
SMALL_INPUT = {
    "googlenet": [3, 224, 224],
    # segmentation: 64x64 keeps every size valid (the dilated backbone's output is 8x8); the valid
    # U-Net's smallest input is 188x188 (4x4 out), the padded one's sides multiples of 16
    "fcn_resnet50": [3, 64, 64],
    "fcn_resnet101": [3, 64, 64],
    "deeplabv3_resnet50": [3, 64, 64],
    "deeplabv3_resnet101": [3, 64, 64],
    "unet": [1, 188, 188],
    "unet_padded": [1, 64, 64],
    # ConvNeXt: 4x4/4 stem and three 2x2/2 downsamplings, so 64x64 leaves 2x2 in the last stage
    "convnext_tiny": [3, 64, 64],
    "convnext_small": [3, 64, 64],
    "convnext_base": [3, 64, 64],
    "convnext_large": [3, 64, 64],
}
# RegNet at 64x64: the trunk strides 32 in all, so its last stage still gets 2x2 (the zoo test checks 224x224)
REGNET_SIZES = ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf")
SMALL_INPUT |= {f"regnet_{xy}_{size}": [3, 64, 64] for xy in "xy" for size in REGNET_SIZES}
# MNASNet and ShuffleNetV2 halve the size five times: 64x64 ends their last stage at 2x2
SMALL_INPUT.update(
    dict.fromkeys(
        [
            "mnasnet0_5",
            "mnasnet0_75",
            "mnasnet1_0",
            "mnasnet1_3",
            "shufflenet_v2_x0_5",
            "shufflenet_v2_x1_0",
            "shufflenet_v2_x1_5",
            "shufflenet_v2_x2_0",
        ],
        [3, 64, 64],
    )
)
# the MobileNetV3 segmentation models at 64x64 (trunk 4x4 at output stride 16, ASPP's dilation 36 padded to fit)
SMALL_INPUT |= {name: [3, 64, 64] for name in ("deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large")}
# the EfficientNets at their own sizes (224 to 600) make the CPU tests slow; at 64x64 every layer
# still has a valid size (the last stages run at 2x2)
SMALL_INPUT |= {
    f"efficientnet_{size}": [3, 64, 64]
    for size in ("b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "v2_s", "v2_m", "v2_l")
}

# The quick run's input of each family's first variant and of each one-file built-in: 64x64 where
# the network allows it (like SMALL_INPUT's, their last stages run at 2x2 or more); the AlexNets'
# and Inception's first layers need 96x96; the rest (GoogLeNet's fixed classifier, the U-Net, the
# examples and LeNet-5) at their SMALL_INPUT or their own size.
QUICK_INPUT = dict.fromkeys(
    [
        "convnext_tiny",
        "densenet121",
        "efficientnet_b0",
        "mnasnet0_5",
        "mobilenet_v3_large",
        "regnet_x_400mf",
        "resnet18",
        "fcn_resnet50",
        "shufflenet_v2_x0_5",
        "squeezenet1_0",
        "vgg11",
        "alexnet_torchvision",
        "googlenet_torchvision",
        "mobilenet_v2",
        "zfnet",
    ],
    [3, 64, 64],
) | dict.fromkeys(["alexnet", "alexnet_grouped", "inception_v3"], [3, 96, 96])


def quick_names():
    """One built-in of each family (its first variant) and every one-file built-in."""
    in_families = {name for names in families().values() for name in names}
    return sorted([names[0] for names in families().values()] + [n for n in builtin_names() if n not in in_families])


def builtin_params():
    """The names of the tests that run every built-in: every built-in marked `full` (run with
    --full, as CI does), and for a quick run one of each family (quick_names) marked `quick` (left
    out by --full)."""
    every = [pytest.param(name, id=name, marks=pytest.mark.full) for name in builtin_names()]
    return every + [pytest.param(name, id=f"{name}-quick", marks=pytest.mark.quick) for name in quick_names()]


def builtin_cases():
    """builtin_params with the input each one runs at: its SMALL_INPUT size or its own (`full`),
    QUICK_INPUT (`quick`)."""
    every = [pytest.param(name, SMALL_INPUT.get(name), id=name, marks=pytest.mark.full) for name in builtin_names()]
    quick = [
        pytest.param(name, QUICK_INPUT.get(name, SMALL_INPUT.get(name)), id=f"{name}-quick", marks=pytest.mark.quick)
        for name in quick_names()
    ]
    return every + quick


def builtin_meta_cases():
    """(name, input, device) for the sweeps that check shapes, parameters and MACs only, which
    PyTorch's meta device answers from shapes alone (no memory, no arithmetic: a full-size
    built-in costs what its Python does): every built-in on `meta` at its own size, and at its
    SMALL_INPUT where it has one, marked `full` (CI); and the quick run's built-ins at their
    QUICK_INPUT on the CPU, unmarked, so that both runs make a real CPU pass of every family."""
    meta = [pytest.param(name, None, "meta", id=f"{name}-meta", marks=pytest.mark.full) for name in builtin_names()]
    meta += [
        pytest.param(name, SMALL_INPUT[name], "meta", id=f"{name}-small-meta", marks=pytest.mark.full)
        for name in builtin_names()
        if name in SMALL_INPUT
    ]
    cpu = [
        pytest.param(name, QUICK_INPUT.get(name, SMALL_INPUT.get(name)), "cpu", id=f"{name}-cpu")
        for name in quick_names()
    ]
    return meta + cpu
