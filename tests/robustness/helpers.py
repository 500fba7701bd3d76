"""Shared by the robustness tests: the hostile-input corpus, raw HTTP calls to the named API, and
what counts as a clear error."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import httpx

CORPUS_PATH = Path(__file__).with_name("hostile_inputs.json")
API_NAMES = ("trace", "distribution", "generate")
MAX_MESSAGE = 400          # a clear message is short: it never echoes a pasted megabyte back
LEAKS = ("Traceback", 'File "', "site-packages", "/work/", "object at 0x")


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    note: str
    text: str
    expect: str             # "result" or "error"
    api_only: bool = False  # cannot be typed into a page (lone surrogates)
    html: bool = False      # markup or script-looking text: check nothing was injected
    shows: str | None = None  # a piece of the input (or notice) that must be visible as text

    def __repr__(self) -> str:
        return f"Case({self.id})"


def _materialise(raw: dict) -> str:
    if "text" in raw:
        return raw["text"]
    b = raw["build"]
    if "times" in b:
        return b["unit"] * b["times"]
    n = b["chars"]
    return (b["unit"] * (n // len(b["unit"]) + 1))[:n]


def load_cases() -> list[Case]:
    raw = json.loads(CORPUS_PATH.read_text(encoding="utf-8"))
    return [Case(r["id"], r["kind"], r["note"], _materialise(r), r["expect"], r.get("api_only", False),
                 r.get("html", False), r.get("shows")) for r in raw]


CASES = load_cases()


def example_args(api: str, prompt) -> list:
    """A valid argument list for an endpoint, with the prompt given (cheap settings)."""
    return {"trace": [prompt], "distribution": [prompt, 0.7, 40, 0.95],
            "generate": [prompt, 2, 0.8, 40, 0.95, 7]}[api]


# ---- raw HTTP: /gradio_api/call/<name> (POST) then the event stream (GET) ------------------------
@dataclass
class Answer:
    status: int             # of the POST
    event: str | None       # "complete", "error" or None (no event: the POST was refused)
    data: object = None     # the result (complete) or the error payload (error)
    body: str = ""          # the POST's body when it was refused

    @property
    def message(self):
        return self.data.get("error") if isinstance(self.data, dict) else self.data


def post_raw(base: str, api: str, body: bytes, timeout: float = 60.0, path: str = "call") -> Answer:
    """POST a raw body; when it is accepted, read the event stream to its end."""
    r = httpx.post(f"{base}gradio_api/{path}/{api}", content=body,
                   headers={"content-type": "application/json"}, timeout=timeout)
    if r.status_code != 200:
        return Answer(r.status_code, None, body=r.text)
    event_id = r.json()["event_id"]
    return Answer(200, *read_events(base, api, event_id, timeout))


def read_events(base: str, api: str, event_id: str, timeout: float = 60.0) -> tuple[str | None, object]:
    last_event, last_data = None, None
    with httpx.stream("GET", f"{base}gradio_api/call/{api}/{event_id}", timeout=timeout) as s:
        event = None
        for line in s.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error", "generating"):
                last_event, last_data = event, json.loads(line.split(":", 1)[1])
                if event in ("complete", "error"):
                    break
    if last_event == "complete" and isinstance(last_data, list) and len(last_data) == 1:
        last_data = last_data[0]
    return last_event, last_data


def call_raw(base: str, api: str, data: list, timeout: float = 60.0) -> Answer:
    """JSON-encode data as Python does (NaN and Infinity allowed, lone surrogates as \\udXXX)."""
    return post_raw(base, api, json.dumps({"data": data}, allow_nan=True).encode("ascii"), timeout)


# ---- what the answers must look like -------------------------------------------------------------
def assert_clear_message(msg) -> None:
    assert isinstance(msg, str) and msg.strip(), f"the error carries no message: {msg!r}"
    assert len(msg) <= MAX_MESSAGE, f"the message is {len(msg)} characters long: {msg[:120]!r}..."
    for leak in LEAKS:
        assert leak not in msg, f"the message leaks internals ({leak!r}): {msg!r}"


def assert_answer_ok(answer: Answer, api: str) -> None:
    """A refused POST must be 4xx; an accepted one ends in a result of the endpoint's shape or a
    clear error event."""
    assert answer.status != 500 and answer.status < 500, f"HTTP {answer.status}: {answer.body[:200]}"
    if answer.status != 200:
        assert 400 <= answer.status < 500
        return
    assert answer.event in ("complete", "error"), f"no final event: {answer.event!r} {answer.data!r}"
    if answer.event == "error":
        assert_clear_message(answer.message)
    else:
        check_result_shape(api, answer.data)


def check_result_shape(api: str, out) -> None:
    def top_entry(t):
        assert set(t) == {"token", "id", "logit", "probability"}
        assert isinstance(t["token"], str) and isinstance(t["id"], int)
        assert math.isfinite(t["logit"]) and 0.0 <= t["probability"] <= 1.0

    if api == "trace":
        assert set(out) == {"tokens", "ids", "top"}
        assert len(out["tokens"]) == len(out["ids"]) >= 1 and len(out["top"]) == 10
        for t in out["top"]:
            top_entry(t)
    elif api == "distribution":
        assert isinstance(out, list) and 1 <= len(out) <= 20
        for t in out:
            top_entry(t)
        assert sum(t["probability"] for t in out) <= 1.0 + 1e-6
    elif api == "analogy":
        assert set(out) == {"ids", "results"} and set(out["ids"]) == {"a", "b", "c"}
        cos = [r["cosine"] for r in out["results"]]
        assert 1 <= len(cos) <= 100 and cos == sorted(cos, reverse=True) and all(-1.0001 <= c <= 1.0001 for c in cos)
    elif api == "direction":
        assert set(out) == {"ids", "scores"} and set(out["ids"]) == {"a", "b"}
        assert all(set(s) == {"word", "id", "projection"} and math.isfinite(s["projection"]) for s in out["scores"])
    else:
        assert set(out) == {"text", "tokens", "ids", "stopped_at_eos"}
        assert len(out["tokens"]) == len(out["ids"]) and isinstance(out["text"], str)
        assert isinstance(out["stopped_at_eos"], bool)
