"""Shared fixtures: the real default model, loaded once per test session."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")      # as app.py sets it


# Tiers: `make test-fast` runs everything but these. A test that drives Chromium is `browser`; one
# that serves the app or starts a process is `slow`. Marked from the fixtures a test uses, so a new
# test cannot forget its mark.
BROWSER_FIXTURES = {"new_page", "browser"}
SLOW_FIXTURES = {"served", "server", "client", "bad_starts"}


def pytest_collection_modifyitems(items):
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
        elif used & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def lm():
    from model import load_model
    return load_model(device="cpu")


@pytest.fixture(scope="session")
def trace(lm):
    """A short real trace with a repeated word (so repeated-token handling is exercised)."""
    return lm.trace("The cat sat on the mat because the cat was tired")


@pytest.fixture(scope="session")
def tiny_lm():
    """A 2-layer random-weight Llama (4 query heads, 2 K/V heads, width 64) with the real tokenizer:
    for tests that need *a* model or trace, not the real model's facts (tests/tiny_model.py)."""
    from tiny_model import tiny_lm as make
    return make(seed=0)


@pytest.fixture(scope="session")
def tiny_trace(tiny_lm):
    """The `trace` fixture's prompt run through the tiny model."""
    return tiny_lm.trace("The cat sat on the mat because the cat was tired")


def strings(obj):
    """Every string inside a figure or its dict (to_json would hide '<' as \\u003c, so read the dict)."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from strings(v)
    elif isinstance(obj, (list, tuple)) or hasattr(obj, "tolist"):
        for v in (obj.tolist() if hasattr(obj, "tolist") else obj):
            yield from strings(v)


# ---- the served app and Chromium, shared by tests/browser and tests/robustness -------------------------
# (one session-wide browser: two sync Playwright instances cannot live in one thread)
import urllib.request  # noqa: E402

from browser.support import CHROMIUM_FLAGS, PageGuard, chromium_path, free_port  # noqa: E402


@pytest.fixture(scope="session")
def ctx(lm):
    """The handlers' context with small limits (a module may define its own `ctx` instead)."""
    from server.handlers import Context, Limits
    return Context(lm, Limits(max_prompt_tokens=64, max_new_tokens=8, max_context=80))


@pytest.fixture(scope="session")
def app_ctx(lm):
    from server.handlers import Context, Limits
    return Context(lm, Limits(max_prompt_tokens=256, max_new_tokens=16, max_context=320))


@pytest.fixture(scope="session")
def served(app_ctx):
    """The app in this process (sharing the loaded model), on a free loopback port: (url, demo)."""
    import app as app_module

    app_module.warm_up(app_ctx.lm)
    demo = app_module.build(app_ctx)
    demo.queue(max_size=32, default_concurrency_limit=1)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **app_module.launch_options(demo, app_ctx))
    url = f"http://127.0.0.1:{port}/"
    urllib.request.urlopen(url, timeout=30).read()
    yield url, demo
    demo.close()


@pytest.fixture(scope="session")
def server(served):
    return served[0]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        path = chromium_path()
        b = pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS) if path else \
            pw.chromium.launch(args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser, server):
    """-> open(width, height) giving a loaded page; the guard is checked when the test ends."""
    contexts, guards = [], []

    def open_page(width: int = 1280, height: int = 800, query: str = "", locale: str | None = None):
        ctx = browser.new_context(viewport={"width": width, "height": height}, **({"locale": locale} if locale else {}))
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


