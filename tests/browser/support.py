"""Browser-test helpers: Chromium discovery, the page guard, screenshots. The fixtures that use
them (server, browser, new_page) live in tests/conftest.py so every test folder shares one browser.

Every page fails its test on a page error, a console error, or any request that leaves
127.0.0.1. Screenshots go to artifacts/screenshots/ for people to look at.
"""
from __future__ import annotations

import os
import shutil
import socket
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    """Debian's chromium; None means: use Playwright's own browser (`playwright install chromium`)."""
    for candidate in (os.environ.get("GLASSGPT_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PageGuard:
    """Collects what must never happen on a page: errors, dialogs, requests off this machine."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.dialogs: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("console", lambda m: self.errors.append(f"console.error: {m.text}") if m.type == "error" else None)
        page.on("dialog", self._dialog)
        page.route("**/*", self._route)

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _route(self, route):
        url = route.request.url
        host = urlparse(url).hostname
        if url.startswith(("data:", "blob:", "about:")) or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def check(self):
        assert not self.foreign, f"requests left 127.0.0.1: {self.foreign[:5]}"
        assert not self.dialogs, f"a dialog opened: {self.dialogs}"
        assert not self.errors, f"page errors: {self.errors[:5]}"


def screenshot(page, name: str, full_page: bool = True) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
