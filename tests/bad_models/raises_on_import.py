# target: Net
# expect: raises_on_import.py fails on import | RuntimeError: no GPU found | line: 8
import torch.nn as nn

GPUS = 0

if not GPUS:
    raise RuntimeError("no GPU found")


class Net(nn.Module):
    pass
