# target: Net
# expect: forward returns the int 3 | received: 3 | line: 11
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return 3
