"""A classroom's cluster (deploy/cluster.py, what `make cluster` runs): three replicas behind HAProxy
on loopback. Pages stick to one replica and fresh ones alternate; API clients stick without
cookies; a page whose replica is killed goes on on another one, rebuilt from its recipe, also when
the replica dies in the middle of a request.
"""
from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request

import pytest

from deploy.cluster import Cluster, free_port

from .support import PageGuard, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs HAProxy (apt-get install haproxy)")]

CHIPS = "document.querySelectorAll('#tokens button.gg-chip').length"
PROMPT = "The cat sat on the mat because the cat"


@pytest.fixture(scope="module")
def cluster():
    # One thread each (this machine has 2 cores); a small context keeps each replica's budget small.
    with Cluster(3, free_port(), threads=1, memory_budget_gb=4,
                 app_args=["--max-context", "128", "--max-prompt-tokens", "96"], log=open("/dev/null", "w")) as c:
        yield c


class Visitor:
    """One person's browser (its own cookies), recording which replica answered each request."""

    def __init__(self, chromium, url: str):
        self.context = chromium.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.context.new_page()
        self.guard = PageGuard(self.page)
        self.answered: list[str] = []
        self.failed: list[str] = []          # requests cut off (a killed replica's open streams)
        self.page.on("requestfailed", lambda r: self.failed.append(r.url))
        self.page.on("response", lambda r: self.answered.append(r.headers.get("x-glassgpt-replica", "?"))
                     if r.url.startswith(url) else None)
        self.page.goto(url)
        self.page.wait_for_selector("#tokens button.gg-chip", timeout=90_000)

    def run(self, prompt: str, n: int) -> None:
        self.page.fill("#prompt textarea", prompt)
        self.page.click("#run")
        self.page.wait_for_function(f"{CHIPS} === {n}", timeout=90_000)
        self.page.wait_for_function("!document.querySelector('#neighbours .gg-computing')", timeout=90_000)

    def next_token(self, n: int) -> None:
        self.page.click("#next-token")
        self.page.wait_for_function(f"{CHIPS} === {n}", timeout=90_000)

    def replicas(self) -> set[str]:
        return set(self.answered)


def test_api_calls_without_cookies_stick_to_the_replica_that_took_them(cluster):
    """Gradio's HTTP API is two requests; each replica names the event id it issued and HAProxy
    learns it, so a client that keeps no cookies reads its result from the right replica."""
    seen = set()
    for i in range(6):
        req = urllib.request.Request(cluster.url + "/gradio_api/call/trace", method="POST",
                                     data=json.dumps({"data": [f"Call number {i}"]}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            took = r.headers["X-GlassGPT-Replica"]
            event_id = json.loads(r.read())["event_id"]
        with urllib.request.urlopen(f"{cluster.url}/gradio_api/call/trace/{event_id}", timeout=120) as r:
            assert r.headers["X-GlassGPT-Replica"] == took
            body = r.read().decode()
        assert "event: complete" in body, body[:300]
        seen.add(took)
    assert seen == {"r1", "r2", "r3"}     # fresh clients take turns


def test_page_protocol_without_cookies_sticks_by_session_hash(cluster):
    """The page's own protocol: POST /gradio_api/queue/join names a session hash, then the event
    stream is read with ?session_hash=...; HAProxy learns the hash from the first."""
    with urllib.request.urlopen(cluster.url + "/config", timeout=30) as r:
        config = json.loads(r.read())
    fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "trace")
    seen = set()
    for i in range(4):
        session = f"cookieless{i}"
        req = urllib.request.Request(cluster.url + "/gradio_api/queue/join", method="POST",
                                     data=json.dumps({"data": [f"Hash {i}"], "fn_index": fn, "session_hash": session,
                                                      "event_data": None, "trigger_id": None}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            took = r.headers["X-GlassGPT-Replica"]
        with urllib.request.urlopen(f"{cluster.url}/gradio_api/queue/data?session_hash={session}", timeout=120) as r:
            assert r.headers["X-GlassGPT-Replica"] == took
            body = r.read().decode()
        assert "process_completed" in body and '"success":true' in body.replace(" ", ""), body[:400]
        seen.add(took)
    assert len(seen) >= 2


def test_gradio_client_through_the_balancer(cluster):
    from gradio_client import Client
    c = Client(cluster.url + "/", verbose=False)
    assert c.predict("The capital of France is", api_name="/trace")["top"][0]["token"] == " Paris"
    assert c.predict("The capital of France is", 0.7, 40, 0.95, api_name="/distribution")[0]["token"] == " Paris"


def test_pages_stick_alternate_and_survive_a_lost_replica(cluster, browser, lm):
    a, b = Visitor(browser, cluster.url), Visitor(browser, cluster.url)
    n = len(lm.tokenize(PROMPT))
    try:
        a.run(PROMPT, n)
        b.run("Two plus two is", len(lm.tokenize("Two plus two is")))
        for v in (a, b):
            for _ in range(3):
                v.page.click("#layer-next")
            v.page.wait_for_function("document.querySelector('#layer input[type=number]').value === '3'", timeout=30_000)
        a.next_token(n + 1)
        a.next_token(n + 2)
        for v in (a, b):
            assert len(v.answered) >= 20, len(v.answered)
            assert len(v.replicas()) == 1, v.replicas()          # sticks
        assert a.replicas() != b.replicas()                       # and they landed apart
        lost = a.replicas().pop()
        other = b.replicas().pop()

        # a's settings before the loss: they must come through it.
        box = a.page.locator("#temperature input[type=number]")
        box.fill("0.7")
        box.press("Enter")
        chips_before = a.page.eval_on_selector_all("#tokens button.gg-chip", "els => els.map(e => e.innerText)")

        cluster.kill(lost)
        a.answered.clear()
        a.next_token(n + 3)                                       # the first event after the loss
        a.page.wait_for_function("document.querySelector('#notice').innerText.includes('rebuilt')", timeout=60_000)
        notice = a.page.inner_text("#notice")
        assert f"({n + 2} tokens)" in notice                       # rebuilt with both generated tokens
        assert len(a.replicas()) == 1 and lost not in a.replicas()
        now = a.replicas().pop()
        assert a.page.input_value("#prompt textarea") == PROMPT
        assert a.page.input_value("#temperature input[type=number]") == "0.7"
        assert a.page.input_value("#layer input[type=number]") == "3"
        chips_after = a.page.eval_on_selector_all("#tokens button.gg-chip", "els => els.map(e => e.innerText)")
        assert chips_after[:n + 2] == chips_before
        screenshot(a.page, "cluster-session-rebuilt", full_page=False)

        # It goes on there: a layer step and a chip click without any new notice.
        a.page.click("#layer-next")
        a.page.wait_for_function("document.querySelector('#layer input[type=number]').value === '4'", timeout=30_000)
        a.page.click("#tokens button.gg-chip[data-pos='2']")
        a.page.wait_for_selector("#tokens button.gg-chip-focus[data-pos='2']", timeout=30_000)
        assert a.replicas() == {now}
        b.next_token(len(lm.tokenize("Two plus two is")) + 1)     # b never noticed
        assert b.replicas() == {other} and "rebuilt" not in b.page.inner_text("#notice")
        # The kill cut a's open stream (Gradio's heartbeat) mid-chunk: the browser logs that line
        # itself. Anything else (a script error, another console error) fails the test.
        cut = "Failed to load resource: net::ERR_INCOMPLETE_CHUNKED_ENCODING"
        assert all("/heartbeat/" in url or "/queue/data" in url for url in a.failed), a.failed
        a.guard.errors = [e for e in a.guard.errors if cut not in e]
        a.guard.check()
        b.guard.check()
    finally:
        a.context.close()
        b.context.close()


def test_a_replica_lost_in_the_middle_of_a_request(cluster, browser, lm):
    """Generate is streaming when the page's replica dies: Gradio reloads the page once a server
    answers again, and the address (kept in step with the page, generated tokens included) replays
    the view on another replica, with a notice."""
    c = Visitor(browser, cluster.url)
    try:
        n = len(lm.tokenize("Once upon a time"))
        c.run("Once upon a time", n)
        mine = c.replicas().pop()
        c.page.locator("#n-tokens input[type=number]").fill("40")
        c.page.locator("#n-tokens input[type=number]").press("Enter")
        c.page.click("#generate")
        c.page.wait_for_function(f"{CHIPS} >= {n + 4}", timeout=60_000)
        c.page.wait_for_timeout(800)                      # the address follows the page every 0.7 s
        cluster.kill(mine)
        c.page.wait_for_selector(".gg-reloaded", timeout=60_000)
        c.page.wait_for_function(f"{CHIPS} >= {n + 4}", timeout=60_000)
        shown = c.page.evaluate(CHIPS)
        gen = c.page.evaluate("(new URLSearchParams(location.search).get('gen') || '').split('.').length")
        assert shown == n + gen and c.page.input_value("#prompt textarea") == "Once upon a time"
        c.answered.clear()
        c.next_token(shown + 1)                           # and it goes on there
        assert mine not in c.replicas()
        # The cut stream and Gradio's reconnection attempts are logged by the browser and by
        # Gradio's client; no script error.
        allowed = ("Failed to load resource", "network error", "Connection errored out")
        c.guard.errors = [e for e in c.guard.errors if not any(a in e for a in allowed)]
        c.guard.check()
    finally:
        c.context.close()


def test_with_every_replica_down_people_get_the_busy_page(cluster):
    """Last in this module: it stops the cluster's replicas."""
    for r in cluster.replicas:
        if r.process.poll() is None:
            cluster.kill(r.name)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(cluster.url + "/", timeout=30)
    assert e.value.code == 503 and e.value.headers["Retry-After"] == "10"
    page = e.value.read().decode("utf-8")
    assert "GlassGPT is busy right now" in page and "GlassGPT 现在很忙" in page
