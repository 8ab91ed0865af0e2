# target: Net
# expect: the model's code fails while cnncalc imports | ValueError: width must be even | line: 10
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width=3):
        super().__init__()
        if width % 2:
            raise ValueError("width must be even")

    def forward(self, x):
        return x
