"""One replica among several behind a load balancer (deploy/, `make cluster`).

- Its name goes out in an `X-GlassGPT-Replica` header on every HTTP response, so a person, a test
  or the balancer's log can tell which process answered.
- `GET /healthz` answers 200 once the model is loaded (the server only listens after loading), for
  the balancer's health checks and Kubernetes' readiness probe.
- A memory budget bounds the sessions it holds: every page session keeps its trace, and a trace
  grows with the context (linearly, plus the attention patterns' T^2), so `--max-sessions` is
  lowered until that many traces at the longest context fit beside the model. A session pushed out
  is not lost: the page rebuilds it from its recipe (server/recipe.py).
"""
from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass

REPLICA_HEADER = b"x-glassgpt-replica"
EVENT_HEADER = b"x-glassgpt-event"     # the event id of an API call, for a balancer without cookies
_API_CALL = re.compile(r"^/gradio_api/call/[^/]+/?$")
HEALTH_PATH = "/healthz"
SESSION_OVERHEAD = 2 * 2**20    # Gradio's per-session copy of the page config (~185 KB), the view's lens and neighbours


def replica_name(given: str | None = None) -> str:
    """--replica-name, else $GLASSGPT_REPLICA, else the host name (a Kubernetes pod's name)."""
    name = given or os.environ.get("GLASSGPT_REPLICA") or socket.gethostname()
    return "".join(ch for ch in name if ch.isalnum() or ch in "-_.")[:63] or "replica"


class ReplicaMiddleware:
    """Pure ASGI (server-sent event streams pass through untouched): names the replica on every
    response and answers the health route itself."""

    def __init__(self, app, name: str):
        self.app, self.name = app, name
        self.header = (REPLICA_HEADER, name.encode("ascii", "replace"))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope.get("path") == HEALTH_PATH and scope.get("method") in ("GET", "HEAD"):
            body = json.dumps({"status": "ok", "replica": self.name}).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store"),
                                    (b"content-length", str(len(body)).encode()), self.header]})
            await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
            return

        if scope.get("method") == "POST" and _API_CALL.match(scope.get("path", "")):
            return await self._api_call(scope, receive, send)

        async def send_named(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)
        await self.app(scope, receive, send_named)

    async def _api_call(self, scope, receive, send):
        """POST /gradio_api/call/<name> answers {"event_id": ...} and the client then reads
        /gradio_api/call/<name>/<event_id>, which must reach this same replica. A balancer can
        learn the id from a header (HAProxy: stick store-response res.hdr(...)) but not easily
        from the body, so the (small) answer is held back until its id is known."""
        start, body = None, []

        async def hold(message):
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            body.append(message.get("body", b""))
            if message.get("more_body"):
                return
            headers = [*start.get("headers", []), self.header]
            try:
                event_id = json.loads(b"".join(body)).get("event_id")
            except (ValueError, AttributeError):
                event_id = None
            if isinstance(event_id, str) and event_id.isascii() and event_id.isprintable():
                headers.append((EVENT_HEADER, event_id.encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": b"".join(body)})
        await self.app(scope, receive, hold)


# ---- memory ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TraceSize:
    """Bytes a trace holds for T tokens: per_token * T + per_pair * T(T+1)/2 (the packed patterns).
    Measured from two short traces, so it follows whatever the trace stores."""
    per_token: float
    per_pair: float

    def at(self, T: int) -> int:
        return int(self.per_token * T + self.per_pair * T * (T + 1) / 2)

    @classmethod
    def measure(cls, lm, a: int = 8, b: int = 16) -> "TraceSize":
        ids = lm.tokenize("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen")
        na, nb = (lm.trace(ids[:n]).acts.nbytes() for n in (a, b))
        # na = x*a + y*a(a+1)/2, nb = x*b + y*b(b+1)/2
        ta, tb = a * (a + 1) / 2, b * (b + 1) / 2
        y = (nb * a - na * b) / (tb * a - ta * b)
        return cls((na - y * ta) / a, y)


@dataclass(frozen=True)
class MemoryPlan:
    baseline: int          # the process with the model loaded and warmed up
    per_session: int       # one session at the longest context
    max_sessions: int      # what fits (never more than asked)
    asked: int
    budget: int | None     # None: no budget given
    in_flight: int = 1     # passes that may run at once (--concurrency)

    def need(self) -> int:
        """Bytes for the sessions plus the passes in flight (a pass's working set is about one more
        trace)."""
        return self.baseline + (self.max_sessions + self.in_flight) * self.per_session

    def describe(self, max_context: int) -> str:
        gb = lambda n: f"{n / 1e9:.2f} GB"     # noqa: E731
        text = (f"memory: model and runtime {gb(self.baseline)}; one session at {max_context} tokens "
                f"{gb(self.per_session)}; {self.max_sessions} sessions need up to {gb(self.need())}")
        if self.budget is not None:
            text += f" (budget {gb(self.budget)}"
            text += f"; --max-sessions lowered from {self.asked})" if self.max_sessions < self.asked else ")"
        return text


def plan_memory(baseline: int, size: TraceSize, max_context: int, max_sessions: int,
                budget: int | None, concurrency: int = 1) -> MemoryPlan:
    """Fit max_sessions sessions at max_context (and `concurrency` passes in flight) into the budget.
    Raises ValueError when not even one fits."""
    per_session = size.at(max_context) + SESSION_OVERHEAD
    if budget is None:
        return MemoryPlan(baseline, per_session, max_sessions, max_sessions, None, concurrency)
    fits = int((budget - baseline) // per_session) - concurrency
    if fits < 1:
        raise ValueError(f"a memory budget of {budget / 1e9:.2f} GB holds no session at {max_context} tokens: "
                         f"the model takes {baseline / 1e9:.2f} GB and one session "
                         f"{per_session / 1e9:.2f} GB (plus one per pass in flight); "
                         f"raise --memory-budget-gb or lower --max-context")
    return MemoryPlan(baseline, per_session, min(max_sessions, fits), max_sessions, budget, concurrency)
