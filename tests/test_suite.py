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
