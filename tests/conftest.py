import ctypes
import gc
import os
import sys

# Before anything imports torch (its OpenMP runtime reads this once, when it loads): threads that
# wait for work sleep rather than spin. With two workers (-n 2) of two torch threads each on two
# cores, a spinning thread holds a core another worker needs: a ResNet-50 forward (batch 2, 224x224)
# beside other jobs took 22 s of wall and 6.5 s of CPU time spinning, 3.5 s and 0.9 s sleeping.
# The thread count, which the layout rules depend on (several_threads), does not change.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# In CI each test process (and what it starts) may hold at most MEMORY_LIMIT of private memory
# (RLIMIT_DATA: heap and private mappings, torch's tensors among them). A test that runs away
# then fails with its own traceback (torch's "can't allocate memory" names the size) instead of
# the kernel's OOM killer ending the worker, and the test beside it, with no trace of why: that
# happened once, in a worker past 23 GB during a training-step test whose usual peak is 2.6 GB.
MEMORY_LIMIT = 8 * 2**30

# In CI (.ci/run exports CI=true) the property tests draw the same examples on every run, so that a
# change lands or not on its own merits, never on a new random draw; a run anywhere else draws new
# examples each time and keeps exploring (fuzz/run.py and a local `pytest` find what is new).
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if soft == resource.RLIM_INFINITY or soft > MEMORY_LIMIT:
            resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_LIMIT, hard))
    except (ImportError, ValueError, OSError):  # not POSIX, or a hard limit below ours
        pass


def pytest_addoption(parser):
    parser.addoption(
        "--regen-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/*.json from the current output (then review the diff)",
    )
    parser.addoption(
        "--full",
        action="store_true",
        default=False,
        help="run every built-in through PyTorch at its full size (tests marked full), as CI does, "
        "instead of one built-in of each family at a small input (tests marked quick)",
    )


def pytest_collection_modifyitems(config, items):
    """Without --full, leave out the tests marked `full` (every built-in through PyTorch at its
    full size); with it, those marked `quick` (one built-in of each family at a small input, the
    quick run's stand-in for them): tests/helpers/builtins.py."""
    left_out = "quick" if config.getoption("--full") else "full"
    dropped = [item for item in items if item.get_closest_marker(left_out) is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item.get_closest_marker(left_out) is None]


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


def _resident_bytes():
    """This process's resident memory (Linux's /proc), or None elsewhere."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


SWEEP_AFTER_BYTES = 512 * 2**20  # resident memory grown since the last full collection
SWEEP_AFTER_TESTS = 100  # where the resident size cannot be read
_last_sweep = {"bytes": None, "tests": 0}


def _pool_the_initialisers():
    """Once torch is loaded, its random initialisers draw from pools (tests/helpers/fast_init.py:
    building a model at full size cost more in drawing its weights than everything its test did
    with it)."""
    if "torch" in sys.modules:
        from helpers import fast_init

        fast_init.install()


def pytest_collection_finish(session):
    """Freeze what start-up and collection made (torch, the test modules, the items): the
    collections after each test then skip it."""
    _pool_the_initialisers()
    gc.collect()
    gc.freeze()
    _last_sweep["bytes"] = _resident_bytes()


@pytest.fixture(autouse=True)
def _release_torch_memory():
    """Give back the memory of the models a test built. The tools' hooks (fvcore, thop, ptflops,
    autograd) leave reference cycles, so a model's weights wait for the cycle collector, and glibc
    keeps freed arenas: over the ~90 built-ins of the torch tests the process grew past 20 GB and
    was OOM-killed on a 23 GB machine. So each test that runs once torch is loaded ends with a
    collection of what it made, and what survives it is frozen with the rest: a collection costs
    about a millisecond where a full one (the suite's ~2 million objects) cost 80 to 140, once per
    test. A frozen object that later becomes garbage in a cycle waits for a full collection, made
    when resident memory has grown by SWEEP_AFTER_BYTES since the last (and then memory is given
    back to the system); every test still starts with no cycles left by the one before it, as the
    memory measurements need (a cycle freed inside a profiled step would read as a free)."""
    _pool_the_initialisers()  # where the test before this one was the first to load torch
    yield
    if "torch" not in sys.modules:
        return
    gc.collect()
    gc.freeze()
    now = _resident_bytes()
    _last_sweep["tests"] += 1
    if now is None and _last_sweep["tests"] < SWEEP_AFTER_TESTS:
        return
    if now is not None and now - (_last_sweep["bytes"] or 0) < SWEEP_AFTER_BYTES:
        return
    gc.unfreeze()
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)
    gc.freeze()
    _last_sweep.update(bytes=_resident_bytes(), tests=0)


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
