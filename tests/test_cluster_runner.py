"""`make cluster`'s runner (deploy/cluster.py) as a person uses it: in the foreground, it prints the
address once every replica is healthy, and SIGTERM (or Ctrl-C) stops every process it started."""
from __future__ import annotations

import json
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from deploy.cluster import free_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs HAProxy")]


def _lines(proc) -> "queue.Queue[str]":
    q: queue.Queue[str] = queue.Queue()

    def pump():
        for line in iter(proc.stdout.readline, b""):
            q.put(line.decode("utf-8", "replace"))
    threading.Thread(target=pump, daemon=True).start()
    return q


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_the_runner_serves_then_stops_everything_it_started(stop):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "deploy/cluster.py", "--replicas", "2", "--port", str(port),
                             "--threads", "1", "--memory-budget-gb", "3", "--",
                             "--max-context", "64", "--max-prompt-tokens", "48"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    lines, seen = _lines(proc), []
    try:
        deadline = time.monotonic() + 300
        while not any("served on" in line for line in seen):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(seen[-30:])
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                pass
        started = psutil.Process(proc.pid).children(recursive=True)
        names = [" ".join(p.cmdline()) for p in started]
        assert sum("app.py" in n for n in names) == 2 and sum("haproxy" in n for n in names) == 1, names
        text = "".join(seen)
        assert "replica r1 is up" in text and "replica r2 is up" in text and "1 thread(s)" in text
        replicas = set()
        for _ in range(4):               # fresh clients alternate between the replicas
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
                replicas.add(json.loads(r.read())["replica"])
                assert r.headers["X-GlassGPT-Replica"] in ("r1", "r2")
        assert replicas == {"r1", "r2"}

        proc.send_signal(stop)
        assert proc.wait(timeout=60) == 0
        gone, alive = psutil.wait_procs(started, timeout=15)
        assert not alive, [p.cmdline() for p in alive]
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3)
    finally:
        if proc.poll() is None:          # a failed check: stop the runner, which stops the rest
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
