# target: Net
# expect: forward is a generator (it yields) | received: forward defined as a generator | line: 11
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        yield self.conv(x)
