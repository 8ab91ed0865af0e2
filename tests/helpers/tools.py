"""The optional tools some tests run (the dev and plot extras): a test that needs one skips
without it, never its whole module, so that a torch-only install still runs every test that needs
only torch (tests/test_suite.py checks)."""

import importlib

import pytest


def optional(name):
    """The module `name`, or None where it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def needs(*names):
    """A mark that skips a test where any of the modules `names` is missing."""
    missing = [name for name in names if optional(name) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (the dev extra)")
