"""One replica among several (server/replica.py): its name on every response, the health route,
the event-id header a balancer learns from, and the memory plan that bounds its sessions."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from deploy.cluster import BUSY_PAGE, haproxy_config
from server.replica import SESSION_OVERHEAD, ReplicaMiddleware, TraceSize, plan_memory, replica_name


def _app():
    async def call(request):
        return JSONResponse({"event_id": "abc123"})

    async def stream(request):
        async def chunks():
            for i in range(3):
                yield f"data: {i}\n\n"
        return StreamingResponse(chunks(), media_type="text/event-stream")

    async def page(request):
        return PlainTextResponse("page")
    app = Starlette(routes=[Route("/gradio_api/call/trace", call, methods=["POST"]),
                            Route("/gradio_api/call/trace/{event}", stream), Route("/", page)])
    return ReplicaMiddleware(app, name="r7")


def test_every_response_names_the_replica_and_api_calls_name_their_event():
    client = TestClient(_app())
    page = client.get("/")
    assert page.headers["x-glassgpt-replica"] == "r7" and page.text == "page"
    call = client.post("/gradio_api/call/trace", json={"data": ["x"]})
    assert call.json() == {"event_id": "abc123"}
    assert call.headers["x-glassgpt-event"] == "abc123" and call.headers["x-glassgpt-replica"] == "r7"
    events = client.get("/gradio_api/call/trace/abc123")
    assert events.text == "data: 0\n\ndata: 1\n\ndata: 2\n\n" and events.headers["x-glassgpt-replica"] == "r7"
    assert "x-glassgpt-event" not in events.headers
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and missing.headers["x-glassgpt-replica"] == "r7"


def test_health_route():
    client = TestClient(_app())
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "replica": "r7"}
    assert client.head("/healthz").status_code == 200


def test_replica_name(monkeypatch):
    assert replica_name("r1") == "r1"
    assert replica_name("bad name\r\nX-Injected: 1") == "badnameX-Injected1"     # never a header break
    monkeypatch.setenv("GLASSGPT_REPLICA", "pod-7")
    assert replica_name(None) == "pod-7"


def test_trace_size_is_measured_exactly(lm):
    size = TraceSize.measure(lm)
    for T in (3, 40):
        assert size.at(T) == lm.trace(list(range(100, 100 + T))).acts.nbytes()


def test_memory_plan_lowers_sessions_to_fit_and_refuses_what_cannot_fit():
    size = TraceSize(per_token=1e6, per_pair=0)          # 1 MB per token
    gb = 10**9
    plan = plan_memory(baseline=1 * gb, size=size, max_context=1000, max_sessions=200, budget=10 * gb)
    per = 1000 * 10**6 + SESSION_OVERHEAD
    assert plan.max_sessions == int(9 * gb // per) - 1 and plan.need() <= 10 * gb
    assert "lowered from 200" in plan.describe(1000)
    assert plan_memory(1 * gb, size, 1000, 3, 10 * gb).max_sessions == 3       # never more than asked
    assert plan_memory(1 * gb, size, 1000, 200, None).max_sessions == 200      # no budget: as asked
    with pytest.raises(ValueError, match="holds no session"):
        plan_memory(1 * gb, size, 1000, 200, int(2.5 * gb))


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs HAProxy")
def test_the_balancer_configuration_is_valid(tmp_path):
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(haproxy_config([("r1", 7001), ("r2", 7002)]))
    shutil.copy(BUSY_PAGE, tmp_path / "503.http")
    r = subprocess.run(["haproxy", "-c", "-f", str(cfg)], env={**os.environ, "GLASSGPT_BIND": "127.0.0.1:7000"},
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    text = cfg.read_text()
    assert "cookie GLASSGPT_REPLICA insert" in text and "option redispatch" in text
    assert "server r2 127.0.0.1:7002 cookie r2" in text
    assert "balance source" not in text and not re.search(r"\bsrc\b", text)    # never by client address
