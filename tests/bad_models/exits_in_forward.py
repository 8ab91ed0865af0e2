# target: Net
# expect: the model's code exits while cnncalc imports | SystemExit: 0 | line: 16
import sys

import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        x = self.conv(x)
        # exit 0: before the guard, `cnncalc import` printed nothing and succeeded
        sys.exit(0)
