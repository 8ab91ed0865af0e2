# target: Net
# expect: the model's code exits while cnncalc imports | SystemExit: this script needs a GPU | __name__ == '__main__' | line: 9
import sys

import torch.nn as nn

GPUS = 0
if not GPUS:  # a script's own check, at import: sys.exit is no Exception, so it needs its own guard
    sys.exit("this script needs a GPU")


class Net(nn.Module):
    pass
