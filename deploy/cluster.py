"""Run a classroom's GlassGPT on one machine: N replicas of app.py behind HAProxy, in the foreground.

    make cluster REPLICAS=2 PORT=8080
    .venv/bin/python deploy/cluster.py --replicas 2 --port 8080 [-- extra app.py options]

Each replica binds 127.0.0.1 on a free port, takes its share of the cores (--threads) and of the
memory (--memory-budget-gb), and names itself r1..rN (the X-GlassGPT-Replica header). HAProxy
(deploy/haproxy.cfg plus one server line per replica) listens on --host:--port. The runner waits
until every replica answers its health check and the balancer answers, prints the address, and on
Ctrl-C or SIGTERM stops every process it started. A replica that stops is reported and left down:
the balancer sends its sessions to the others, whose pages rebuild their views.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HAPROXY_CFG = HERE / "haproxy.cfg"
BUSY_PAGE = HERE / "503.http"
MEMORY_SHARE = 0.8        # of the machine's memory, split between the replicas; the rest for HAProxy and the system


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def haproxy_config(servers: list[tuple[str, int]], host: str = "127.0.0.1") -> str:
    """deploy/haproxy.cfg with one server line per replica (name, port)."""
    lines = [f"    server {name} {host}:{port} cookie {name}" for name, port in servers]
    return HAPROXY_CFG.read_text(encoding="utf-8").rstrip("\n") + "\n" + "\n".join(lines) + "\n"


def memory_total() -> int:
    try:
        import psutil
        return psutil.virtual_memory().total
    except ImportError:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass
class Replica:
    name: str
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    """The processes of one cluster. Used by the command below and by the tests."""
    replicas_n: int = 2
    port: int = 8080
    host: str = "127.0.0.1"
    app_args: list[str] = field(default_factory=list)
    threads: int | None = None              # per replica; default: the cores split between them
    memory_budget_gb: float | None = None   # per replica; default: MEMORY_SHARE of the memory split
    log: object = sys.stdout
    replicas: list[Replica] = field(default_factory=list)
    haproxy: subprocess.Popen | None = None
    folder: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def say(self, text: str) -> None:
        print(text, file=self.log, flush=True)

    def _pipe(self, prefix: str, stream) -> None:
        """Each process's output, line by line, after its name."""
        def pump():
            for line in iter(stream.readline, b""):
                self.say(f"[{prefix}] {line.decode('utf-8', 'replace').rstrip()}")
        threading.Thread(target=pump, daemon=True).start()

    def start(self, timeout: float = 600) -> "Cluster":
        haproxy = shutil.which("haproxy")
        if haproxy is None:
            raise SystemExit("HAProxy is not installed: on Debian or Ubuntu, `sudo apt-get install haproxy`.")
        if self.replicas_n < 1:
            raise SystemExit("--replicas must be at least 1")
        cores = os.cpu_count() or 1
        threads = self.threads or max(1, cores // self.replicas_n)
        budget = self.memory_budget_gb or MEMORY_SHARE * memory_total() / self.replicas_n / 1e9
        self.say(f"GlassGPT cluster: {self.replicas_n} replica(s), {threads} thread(s) and "
                 f"{budget:.1f} GB each, behind HAProxy on {self.url}")
        try:
            for i in range(1, self.replicas_n + 1):
                self.start_replica(f"r{i}", threads, budget)
            self.wait_healthy(timeout)
            self.start_haproxy(haproxy)
        except BaseException:
            self.stop()
            raise
        return self

    def start_replica(self, name: str, threads: int, budget_gb: float) -> Replica:
        port = free_port()
        cmd = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port),
               "--replica-name", name, "--threads", str(threads), "--memory-budget-gb", f"{budget_gb:.2f}",
               *self.app_args]
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": str(threads),
               "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)        # its own group: stopped with all it started
        self._pipe(name, proc.stdout)
        replica = Replica(name, port, proc)
        self.replicas.append(replica)
        return replica

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(self.replicas)
        while waiting:
            for r in list(waiting):
                if r.process.poll() is not None:
                    raise SystemExit(f"replica {r.name} exited while starting (status {r.process.returncode})")
                if healthy(r.url + "/healthz"):
                    self.say(f"replica {r.name} is up on {r.url}")
                    waiting.remove(r)
            if waiting and time.monotonic() > deadline:
                raise SystemExit(f"replicas not healthy after {timeout:.0f} s: {', '.join(r.name for r in waiting)}")
            time.sleep(0.5)

    def start_haproxy(self, haproxy: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="glassgpt-cluster-"))
        cfg = self.folder / "haproxy.cfg"
        cfg.write_text(haproxy_config([(r.name, r.port) for r in self.replicas]), encoding="utf-8")
        shutil.copy(BUSY_PAGE, self.folder / BUSY_PAGE.name)
        env = {**os.environ, "GLASSGPT_BIND": f"{self.host}:{self.port}"}
        check = subprocess.run([haproxy, "-c", "-q", "-f", str(cfg)], env=env, capture_output=True, text=True)
        if check.returncode != 0:
            raise SystemExit(f"HAProxy refused its configuration:\n{check.stdout}{check.stderr}")
        self.haproxy = subprocess.Popen([haproxy, "-db", "-f", str(cfg)], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self._pipe("haproxy", self.haproxy.stdout)
        deadline = time.monotonic() + 30
        while not healthy(self.url + "/healthz"):
            if self.haproxy.poll() is not None:
                raise SystemExit(f"HAProxy exited (status {self.haproxy.returncode}); is port {self.port} free?")
            if time.monotonic() > deadline:
                raise SystemExit("HAProxy did not answer within 30 s")
            time.sleep(0.2)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Stop one replica abruptly (tests and the load benchmark: a lost replica)."""
        r = next(r for r in self.replicas if r.name == name)
        try:
            os.killpg(r.process.pid, sig)
        except ProcessLookupError:
            pass
        r.process.wait(timeout=30)

    def processes(self) -> list[subprocess.Popen]:
        return [r.process for r in self.replicas] + ([self.haproxy] if self.haproxy else [])

    def stop(self, grace: float = 10) -> None:
        """Stop everything this cluster started: TERM to each process group, KILL after `grace` s."""
        procs = [p for p in self.processes() if p.poll() is None]
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> "Cluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Options after -- go to every replica's app.py (e.g. -- --max-context 256).")
    ap.add_argument("--replicas", type=int, default=int(os.environ.get("REPLICAS", 2)))
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8080)), help="the balancer's port")
    ap.add_argument("--host", default="127.0.0.1", help="the balancer's address (replicas always bind 127.0.0.1)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per replica (default: cores / replicas)")
    ap.add_argument("--memory-budget-gb", type=float, default=None,
                    help=f"per replica (default: {MEMORY_SHARE:.0%} of the memory / replicas)")
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)

    cluster = Cluster(args.replicas, args.port, args.host, extra, args.threads, args.memory_budget_gb)
    stopping, started = threading.Event(), threading.Event()

    def on_signal(signum, _frame):
        if not started.is_set():           # still starting: abort (the finally below stops what started)
            raise KeyboardInterrupt
        stopping.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        try:
            cluster.start()
        except KeyboardInterrupt:
            cluster.say("interrupted while starting; stopping")
            return 130
        started.set()
        cluster.say(f"\nGlassGPT is served on {cluster.url}  (Ctrl-C stops the balancer and every replica)\n")
        reported = set()
        while not stopping.wait(1.0):
            if cluster.haproxy.poll() is not None:
                cluster.say(f"HAProxy exited (status {cluster.haproxy.returncode}); stopping")
                return 1
            for r in cluster.replicas:
                if r.process.poll() is not None and r.name not in reported:
                    reported.add(r.name)
                    cluster.say(f"replica {r.name} stopped (status {r.process.returncode}); "
                                f"its sessions move to the others")
            if len(reported) == len(cluster.replicas):
                cluster.say("every replica has stopped; stopping")
                return 1
        cluster.say("stopping the cluster...")
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
