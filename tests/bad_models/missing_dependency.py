# target: Net
# expect: fails on import | ModuleNotFoundError: No module named 'a_package_nobody_installed' | line: 3
import a_package_nobody_installed  # noqa: F401
import torch.nn as nn


class Net(nn.Module):
    pass
