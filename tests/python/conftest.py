"""Shared pytest setup: torch is required under CI=true, optional elsewhere."""
import os

import pytest


def require_torch():
    """Imports torch, or skips the test on a user's machine without it.
    Under CI=true a missing torch is a failure, never a skip."""
    if os.environ.get("CI") == "true":
        import torch  # noqa: F401  (ImportError fails the test)
        return torch
    return pytest.importorskip("torch")
