# target: Net
# expect: one output tensor | line: 6
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.conv2 = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return {"out": self.conv(x), "aux": self.conv2(x)}
