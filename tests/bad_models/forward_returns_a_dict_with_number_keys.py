# target: Net
# expect: forward returns a dict of (0: a tensor, 1: a tensor) | line: 12
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.conv2 = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return {0: self.conv(x), 1: self.conv2(x)}
