# target: Net
# expect: the model's code fails while cnncalc imports | KeyError: 'features' | line: 14
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.cache = {}

    def forward(self, x):
        x = self.conv(x)
        return x + self.cache["features"]
