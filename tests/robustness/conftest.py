"""Robustness and security tests: the browser fixtures (in-process server on 127.0.0.1, Chromium,
PageGuard) are reused from tests/browser/conftest.py, not copied.

pytest imports tests/browser/conftest.py as the module `browser.conftest` (tests/ is the base
folder of both packages); importing its fixtures here makes them visible to this folder too.
"""
from __future__ import annotations

from browser.conftest import app_ctx, browser, new_page, server  # noqa: F401


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes tens of seconds (fuzzing, many page runs)")
