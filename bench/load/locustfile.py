"""Locust users for GlassGPT's HTTP API: what people do on the page, as API calls.

    Run      -> /trace         a prompt tokenized and run (top-10 next tokens)
    slider   -> /distribution  the same prompt under a new temperature / top-k / top-p
    Next     -> /generate      one more token (max_new_tokens=1)

Each action is Gradio's two-step call: POST /gradio_api/call/<name> gives an event id, GET
/gradio_api/call/<name>/<id> streams events until `complete` (or `error`). Locust records the
two HTTP requests and one end-to-end entry (request_type "E2E") per action; an `error` event is a
failure. Started by bench/load/run_load.py (which also starts the app); by hand:

    locust -f bench/load/locustfile.py --headless -u 20 -r 20 -t 60s --host http://127.0.0.1:7860
"""
from __future__ import annotations

import itertools
import json
import os
import sys
import random
import time

from locust import HttpUser, between, events, task

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import PROMPTS, parse_events  # noqa: E402

LATENCY_LOG = os.environ.get("GLASSGPT_LOAD_LOG")   # one JSON line per action, for exact percentiles
_log = open(LATENCY_LOG, "a", buffering=1, encoding="utf-8") if LATENCY_LOG else None
RETRY = int(os.environ.get("GLASSGPT_LOAD_RETRY", "0") == "1")
_user_ids = itertools.count(1)


class PageUser(HttpUser):
    """One person using the page: mostly slider moves and next tokens between runs."""
    wait_time = between(0.5, 1.5)

    def on_start(self):
        self.prompt = random.choice(PROMPTS)
        self.user_id = next(_user_ids)

    def call(self, api: str, data: list) -> None:
        """One action, timed end to end. With GLASSGPT_LOAD_RETRY=1 a failed action is sent once
        more, as the page re-sends an event whose replica went away (bench/load/run_cluster_load.py)."""
        t0 = time.perf_counter()
        for attempt in range(1, 2 + RETRY):
            error, size, replica = self.once(api, data)
            if error is None:
                break
        ms = (time.perf_counter() - t0) * 1000
        events.request.fire(request_type="E2E", name=api, response_time=ms, response_length=size,
                            exception=error, context={})
        if _log:
            _log.write(json.dumps({"api": api, "ms": round(ms, 2), "ok": error is None, "t": time.time(),
                                   "user": self.user_id, "attempts": attempt, "replica": replica}) + "\n")

    def once(self, api: str, data: list):
        error, size, replica = None, 0, None
        try:
            with self.client.post(f"/gradio_api/call/{api}", json={"data": data}, name=f"POST /call/{api}",
                                  catch_response=True) as r:
                if r.status_code != 200:
                    r.failure(f"HTTP {r.status_code}: {r.text[:200]}")
                    raise RuntimeError(f"POST {api}: HTTP {r.status_code}")
                event_id = r.json()["event_id"]
            with self.client.get(f"/gradio_api/call/{api}/{event_id}", name=f"GET /call/{api}/[event]",
                                 catch_response=True, timeout=120) as r:
                size = len(r.content)
                replica = r.headers.get("X-GlassGPT-Replica")
                event, payload = parse_events(r.text)
                if event != "complete":
                    r.failure(f"{event}: {str(payload)[:200]}")
                    raise RuntimeError(f"{api}: {event} {str(payload)[:200]}")
        except Exception as e:  # noqa: BLE001 - every failure is counted, none stops the user
            error = e
        return error, size, replica

    @task(2)
    def run_prompt(self):
        self.prompt = random.choice(PROMPTS)
        self.call("trace", [self.prompt])

    @task(5)
    def move_temperature(self):
        self.call("distribution", [self.prompt, round(random.uniform(0, 2), 2), random.choice([0, 0, 5, 40, 200]),
                                   random.choice([1.0, 1.0, 0.95, 0.5])])

    @task(3)
    def next_token(self):
        self.call("generate", [self.prompt, 1, round(random.uniform(0, 1.5), 2), 40, 0.95, random.randrange(2**31)])
