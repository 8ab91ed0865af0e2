import ctypes
import gc
import os
import sys

import pytest
from hypothesis import settings

# In CI (.ci/run exports CI=true) the property tests draw the same examples on every run, so that a
# change lands or not on its own merits, never on a new random draw; a run anywhere else draws new
# examples each time and keeps exploring (fuzz/run.py and a local `pytest` find what is new).
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_addoption(parser):
    parser.addoption(
        "--regen-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/*.json from the current output (then review the diff)",
    )


@pytest.fixture
def regen_golden(request):
    return request.config.getoption("--regen-golden")


def _libc_trim():
    """glibc's malloc_trim, or None elsewhere (macOS, musl)."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _libc_trim()


@pytest.fixture(autouse=True)
def _release_torch_memory():
    """Give back the memory of the models a test built. The tools' hooks (fvcore, thop, ptflops,
    autograd) leave reference cycles, so a model's weights wait for the cycle collector, and glibc
    keeps freed arenas: over the ~90 built-ins of the torch tests the process grew past 20 GB and
    was OOM-killed on a 23 GB machine; with this it stays under about 1.5 GB."""
    yield
    if "torch" in sys.modules:
        gc.collect()
        if _TRIM is not None:
            _TRIM(0)


@pytest.fixture
def several_threads():
    """At least two torch threads, as cnncalc's layout rules assume (torch's default on a machine of
    several cores): on one thread ATen runs a 1x1x1 3-D convolution of a small batch on a kernel of
    its own that writes contiguous (docs/conventions.md, Layouts), so a one-core runner would test
    another machine's rule."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(2, before))
    yield
    torch.set_num_threads(before)
