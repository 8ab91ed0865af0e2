# target: Net
# expect: forward returns a tuple of (a tensor, a tuple of (a tensor, a tensor)); cnncalc imports models that return a tensor, or a tuple, list or dict of tensors | line: 12
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.conv2 = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.conv(x), (self.conv2(x), self.conv2(x))
