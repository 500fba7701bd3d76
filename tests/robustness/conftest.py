"""Robustness and security tests. The in-process server, Chromium and the page guard are the
session-wide fixtures of tests/conftest.py, shared with tests/browser."""
from __future__ import annotations



def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes tens of seconds (fuzzing, many page runs)")
