# target: Net
# expect: cannot build Net with no arguments | expected: Net(width, depth) | --arg name=value | line: 6
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width, depth):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)

    def forward(self, x):
        return self.conv(x)
