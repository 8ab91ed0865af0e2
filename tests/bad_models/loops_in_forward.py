# target: Net
# expect: interrupted while the model's code ran | KeyboardInterrupt | line: 18,19
# never finishes: tests/test_import_errors.py interrupts it (Ctrl-C) once it runs, the fuzzer's alarm stops it
import os
from pathlib import Path

import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        if "CNNCALC_TEST_READY" in os.environ:
            Path(os.environ["CNNCALC_TEST_READY"]).touch()
        while True:
            x = x + 0
        return self.conv(x)
