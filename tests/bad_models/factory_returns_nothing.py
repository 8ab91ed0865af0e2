# target: make
# expect: make returned nothing (None), not a torch.nn.Module | expected: a torch.nn.Module | line: 6
import torch.nn as nn


def make():
    nn.Conv2d(3, 4, 3)  # built, but not returned
