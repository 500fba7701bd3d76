"""What the locust users and bench/load/run_load.py share (no locust import here: importing locust
patches the standard library with gevent)."""
from __future__ import annotations

import json

PROMPTS = [
    "The capital of France is",
    "The cat sat on the mat because the cat",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "1, 1, 2, 3, 5, 8, 13,",
    "我爱北京天安门，天安门上",
    "When Mary and John went to the store, John gave a drink to",
    "Once upon a time, in a small village by the sea,",
    "The quick brown fox jumps over the lazy",
]


def parse_events(text: str) -> tuple[str | None, object]:
    """The last complete/error event of an SSE body."""
    event, last = None, (None, None)
    for line in text.splitlines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event in ("complete", "error"):
            last = (event, json.loads(line.split(":", 1)[1]))
    return last
