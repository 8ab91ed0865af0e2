"""The test suite itself: what it runs where the optional tools are missing."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

# what the extras add beside torch (the dev extra's counting tools, the plot extra, fvcore, torchvision)
OPTIONAL = ("torchinfo", "thop", "ptflops", "matplotlib", "fvcore", "pandas", "jsonschema", "torchvision")

# Collects the suite (runs nothing) with the optional tools made unimportable, and prints the test
# modules skipped whole, with the reason.
COLLECT = """
import json, sys
for name in sys.argv[2:]:
    sys.modules[name] = None  # `import name` raises ImportError; importlib.util.find_spec(name) is None
import pytest

class Skipped:
    modules = {}

    def pytest_collectreport(self, report):
        if report.skipped and report.nodeid.endswith(".py"):
            self.modules[report.nodeid] = str(report.longrepr[-1])

plugin = Skipped()
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", sys.argv[1]], plugins=[plugin])
print(json.dumps({"exit": int(code), "skipped": plugin.modules}))
"""


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch (the torch extra)")
def test_no_module_is_skipped_whole_for_an_optional_tool():
    """On an install of torch alone, every test module is collected: a tool is skipped only in the
    tests that run it. test_export.py and test_memory.py once imported their strategies from
    test_conventions.py, whose module-level importorskip of thop skipped them too."""
    tests = Path(__file__).parent
    result = subprocess.run(
        [sys.executable, "-c", COLLECT, str(tests), *OPTIONAL],
        capture_output=True,
        text=True,
        cwd=tests.parent,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["exit"] == 0, result.stdout[-3000:]
    assert outcome["skipped"] == {}  # module -> reason: skip in the tests that use the tool instead


def test_the_pooled_initialisers_draw_as_pytorch_bounds_them_and_differ_from_layer_to_layer():
    """tests/helpers/fast_init.py, which every torch test runs under: PyTorch's own bounds and
    scales (a Linear's weight within its kaiming bound, its bias within 1/sqrt(fan_in)), values that
    differ between two layers of one shape and between the rows of a weight larger than a pool (a
    pool's length is a prime, so no row length lines the repeats up), and a caller's own
    generator still drawing from it."""
    torch = pytest.importorskip("torch")
    from helpers import fast_init

    fast_init.install()
    assert getattr(torch.nn.init.kaiming_uniform_, "pooled", False)
    a, b = torch.nn.Linear(64, 32), torch.nn.Linear(64, 32)
    bound = 1 / 64**0.5  # kaiming_uniform_ with a=sqrt(5): gain sqrt(1/3), so sqrt(3) * gain / sqrt(fan_in)
    for layer in (a, b):
        assert layer.weight.abs().max() <= bound and layer.bias.abs().max() <= bound
        assert layer.weight.std() > bound / 3  # spread over the range, not a constant
    assert not torch.equal(a.weight, b.weight) and not torch.equal(a.bias, b.bias)
    long = torch.empty(3 * fast_init.POOL + 7)
    torch.nn.init.normal_(long, mean=1.0, std=2.0)
    assert abs(long.mean().item() - 1.0) < 0.05 and abs(long.std().item() - 2.0) < 0.05
    wide = torch.empty(2100, 1000)  # 2.1 pools
    torch.nn.init.kaiming_uniform_(wide)
    assert torch.unique(wide, dim=0).shape[0] == 2100
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    x, y = torch.empty(100), torch.empty(100)
    torch.nn.init.uniform_(x, generator=g1)
    torch.nn.init.uniform_(y, generator=g2)
    assert torch.equal(x, y) and torch.equal(x, torch.empty(100).uniform_(generator=torch.Generator().manual_seed(3)))
