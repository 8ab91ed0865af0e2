# target: Net
# expect: forward returns the input; cnncalc imports models that return a tensor | line: 11
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        self.conv(x)
        return x
