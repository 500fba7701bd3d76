"""Browser fixtures: the real app served on 127.0.0.1, driven by Chromium through Playwright.

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

import pytest

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


@pytest.fixture(scope="session")
def app_ctx(lm):
    from server.handlers import Context, Limits
    return Context(lm, Limits(max_prompt_tokens=256, max_new_tokens=16, max_context=320))


@pytest.fixture(scope="session")
def server(app_ctx):
    """The app in this process (sharing the loaded model), on a free loopback port."""
    import app as app_module

    app_module.warm_up(app_ctx)
    demo = app_module.build(app_ctx)
    demo.queue(max_size=32, default_concurrency_limit=1)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, share=False,
                css=app_module.page_css(), head=app_module.page_head(), quiet=True, show_error=False)
    url = f"http://127.0.0.1:{port}/"
    urllib.request.urlopen(url, timeout=30).read()
    yield url
    demo.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        path = chromium_path()
        b = pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS) if path else \
            pw.chromium.launch(args=CHROMIUM_FLAGS)
        yield b
        b.close()


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


@pytest.fixture
def new_page(browser, server):
    """-> open(width, height) giving a loaded page; the guard is checked when the test ends."""
    contexts, guards = [], []

    def open_page(width: int = 1280, height: int = 800, query: str = ""):
        ctx = browser.new_context(viewport={"width": width, "height": height})
        page = ctx.new_page()
        guard = PageGuard(page)
        page.goto(server + query)
        page.wait_for_selector("#tokens button.gg-chip", timeout=60_000)
        contexts.append(ctx)
        guards.append(guard)
        page.guard = guard
        return page

    yield open_page
    try:
        for g in guards:
            g.check()
    finally:
        for c in contexts:
            c.close()


def screenshot(page, name: str, full_page: bool = True) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
