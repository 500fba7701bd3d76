"""Shared fixtures: the real default model, loaded once per test session."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def lm():
    from model import load_model
    return load_model(device="cpu")


@pytest.fixture(scope="session")
def trace(lm):
    """A short real trace with a repeated word (so repeated-token handling is exercised)."""
    return lm.trace("The cat sat on the mat because the cat was tired")
