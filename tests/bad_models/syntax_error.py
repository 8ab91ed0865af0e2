# target: Net
# expect: syntax_error.py is not valid Python | SyntaxError | class Net(nn.Module) | line: 6
import torch.nn as nn


class Net(nn.Module)
    pass
