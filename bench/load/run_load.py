"""Load test: GlassGPT's HTTP API under 20 concurrent users, all on loopback.

    .venv/bin/python bench/load/run_load.py                  # 20 users, 60 s, then 1,000 requests
    .venv/bin/python bench/load/run_load.py --quick          # 5 users, 15 s, 200 requests (a smoke run)

1. starts the app in a subprocess (`app.py --concurrency 2 --queue-size 200` by default) on a free
   127.0.0.1 port and waits until it answers;
2. warms it up (30 requests of each kind), then reads the server's RSS (psutil on its pid);
3. runs locust headless (bench/load/locustfile.py): N users mixing Run (/trace), temperature and
   cut changes (/distribution) and Next token (/generate, max_new_tokens=1) for the duration, and
   reads the RSS again;
4. once warm, sends exactly 1,000 more requests of the same mix (20 threads) and compares the RSS
   before and after them (target: growth <= 10 %);
5. stops the app and writes the table to bench/results.md (section "## Load (bench/load/run_load.py)",
   other sections kept) and the raw numbers to bench/load/results_load.json.

Exit status 1 when any request failed or the RSS grew more than 10 %. Nothing leaves 127.0.0.1:
the app binds loopback, locust and the client threads talk to it only, and every phase is bounded.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BENCH = ROOT / "bench"
OUT = BENCH / "out"
RESULTS_MD = BENCH / "results.md"
RESULTS_JSON = HERE / "results_load.json"
SECTION = "## Load (bench/load/run_load.py)"
SETTLE_S = 45
sys.path.insert(0, str(HERE))
from common import PROMPTS, parse_events  # noqa: E402

sys.path.insert(0, str(BENCH))
from results_file import replace_section  # noqa: E402

sys.path.insert(0, str(BENCH.parent / "tests"))
from browser.support import free_port  # noqa: E402  (plain standard library: safe beside locust)


def rss_mb(proc: psutil.Process) -> float:
    return proc.memory_info().rss / 2**20


def pct(values: list[float], q: float) -> float:
    """Percentile by linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


# ---- the app ------------------------------------------------------------------------------------
def start_app(port: int, concurrency: int, queue_size: int, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    cmd = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port),
           "--concurrency", str(concurrency), "--queue-size", str(queue_size)]
    log = open(log_path, "w")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 240) -> None:
    t_end = time.time() + timeout
    while time.time() < t_end:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with status {proc.returncode} before answering")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the app did not answer within {timeout:.0f} s")


def stop_app(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# ---- one request, as the locust users make it --------------------------------------------------------
def random_action(rng: random.Random) -> tuple[str, list]:
    prompt = rng.choice(PROMPTS)
    r = rng.random()
    if r < 0.2:
        return "trace", [prompt]
    if r < 0.7:
        return "distribution", [prompt, round(rng.uniform(0, 2), 2), rng.choice([0, 0, 5, 40, 200]),
                                rng.choice([1.0, 1.0, 0.95, 0.5])]
    return "generate", [prompt, 1, round(rng.uniform(0, 1.5), 2), 40, 0.95, rng.randrange(2**31)]


def call(client: httpx.Client, url: str, api: str, data: list, session_hash: str | None = None) -> tuple[bool, float, str]:
    t0 = time.perf_counter()
    body = {"data": data} if session_hash is None else {"data": data, "session_hash": session_hash}
    try:
        r = client.post(f"{url}gradio_api/call/{api}", json=body)
        if r.status_code != 200:
            return False, time.perf_counter() - t0, f"HTTP {r.status_code}"
        g = client.get(f"{url}gradio_api/call/{api}/{r.json()['event_id']}")
        event, payload = parse_events(g.text)
        return event == "complete", time.perf_counter() - t0, "" if event == "complete" else f"{event}: {payload}"
    except httpx.HTTPError as e:
        return False, time.perf_counter() - t0, repr(e)


def burst(url: str, n: int, threads: int, seed: int, session_prefix: str | None = None) -> dict:
    """n requests from `threads` threads at once, each as soon as the previous one finished. With
    session_prefix each thread sends one session hash of its own (as gradio_client does); without,
    none (as the documented curl calls do), so Gradio makes a new session per request."""
    rng = random.Random(seed)
    actions = [random_action(rng) for _ in range(n)]
    results = []
    lock = threading.Lock()

    def worker(job):
        index, chunk = job
        session = None if session_prefix is None else f"{session_prefix}{seed}-{index}"
        with httpx.Client(timeout=120) as client:
            for api, data in chunk:
                ok, dt, err = call(client, url, api, data, session)
                with lock:
                    results.append((api, ok, dt, err))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, [(i, actions[i::threads]) for i in range(threads)]))
    wall = time.perf_counter() - t0
    errors = [r for r in results if not r[1]]
    return {"requests": len(results), "errors": len(errors), "error_samples": [e[3] for e in errors[:5]],
            "wall_s": wall, "p50_ms": pct([r[2] * 1000 for r in results], 0.5),
            "p95_ms": pct([r[2] * 1000 for r in results], 0.95)}


# ---- the machine ------------------------------------------------------------------------------------
class Sampler(threading.Thread):
    """Every second: the server's RSS and CPU, and how busy the rest of the machine is."""

    def __init__(self, server: psutil.Process):
        super().__init__(daemon=True)
        self.server, self.stop_event = server, threading.Event()
        self.rss, self.server_cpu, self.machine_cpu = [], [], []

    def run(self):
        psutil.cpu_percent(None)
        self.server.cpu_percent(None)
        while not self.stop_event.wait(1.0):
            try:
                self.rss.append(rss_mb(self.server))
                self.server_cpu.append(self.server.cpu_percent(None) / 100)
            except psutil.Error:
                return
            self.machine_cpu.append(psutil.cpu_percent(None) / 100 * psutil.cpu_count())

    def stop(self):
        self.stop_event.set()
        self.join(timeout=5)


def busiest_others(exclude: set[int], seconds: float = 3.0) -> tuple[float, list[str]]:
    """Cores used by other processes over a few seconds, and the busiest of them."""
    procs = {}
    for p in psutil.process_iter(["pid", "cmdline"]):
        if p.pid in exclude:
            continue
        try:
            p.cpu_percent(None)
            procs[p.pid] = p
        except psutil.Error:
            pass
    time.sleep(seconds)
    use = []
    for pid, p in procs.items():
        try:
            use.append((p.cpu_percent(None) / 100, " ".join(p.info["cmdline"] or [])[:70]))
        except psutil.Error:
            pass
    use.sort(reverse=True)
    return sum(u for u, _ in use), [f"{u:.2f} cores: {c}" for u, c in use[:3] if u > 0.05]


# ---- locust -------------------------------------------------------------------------------------------
def run_locust(url: str, users: int, seconds: int, csv_prefix: Path, latency_log: Path) -> dict:
    locust = Path(sys.executable).with_name("locust")
    cmd = [str(locust), "-f", str(HERE / "locustfile.py"), "--headless", "-u", str(users), "-r", str(users),
           "-t", f"{seconds}s", "--host", url.rstrip("/"), "--csv", str(csv_prefix), "--only-summary",
           "--stop-timeout", "30", "--loglevel", "WARNING", "--exit-code-on-error", "0"]
    env = {**os.environ, "GLASSGPT_LOAD_LOG": str(latency_log)}
    latency_log.unlink(missing_ok=True)
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 120)
    rows = [json.loads(line) for line in latency_log.read_text().splitlines() if line.strip()]
    stats = {}
    import csv
    with open(f"{csv_prefix}_stats.csv", newline="") as f:
        for row in csv.DictReader(f):
            stats[f"{row['Type']} {row['Name']}".strip()] = {"requests": int(row["Request Count"]),
                                                             "failures": int(row["Failure Count"])}
    out = {"locust_rc": p.returncode, "locust_tail": (p.stdout + p.stderr)[-1500:], "http": stats, "by_api": {}}
    for api in ("trace", "distribution", "generate", None):
        sel = [r for r in rows if api is None or r["api"] == api]
        ms = [r["ms"] for r in sel]
        out["by_api"][api or "all"] = {"requests": len(sel), "errors": sum(not r["ok"] for r in sel),
                                       "p50_ms": pct(ms, 0.5), "p95_ms": pct(ms, 0.95), "max_ms": max(ms, default=0)}
    if rows:
        span = max(r["t"] for r in rows) - min(r["t"] - r["ms"] / 1000 for r in rows)
        out["throughput_rps"] = len(rows) / span if span > 0 else float("nan")
    out["http_failures"] = sum(s["failures"] for k, s in stats.items() if not k.startswith("Aggregated")
                               and not k.startswith("E2E"))
    return out


# ---- results.md -----------------------------------------------------------------------------------------
def table(R: dict) -> str:
    L, G = R["locust"], R["growth"]
    a = L["by_api"]
    names = {"trace": "Run (/trace)", "distribution": "temperature etc. (/distribution)",
             "generate": "Next token (/generate, 1 token)", "all": "**all**"}
    lines = [
        SECTION, "",
        f"Run {R['when']} on {R['machine']}, Gradio {R['gradio']}, locust {R['locust_version']}. "
        f"App: `python app.py --concurrency {R['concurrency']} --queue-size {R['queue_size']}` on 127.0.0.1 "
        f"(CPU; Gradio applies the concurrency limit per endpoint, so each of the three gets 2 slots, while the model "
        f"runs one forward pass at a time behind its lock). {R['users']} locust users for {R['seconds']} s, each waiting 0.5-1.5 s between "
        f"actions; every action is Gradio's POST /gradio_api/call/<name> then GET of its event stream, timed end to end.",
        "",
        f"Machine idle: {'yes' if R['others_cores_before'] < 0.3 else 'NO'}: other processes used "
        f"{R['others_cores_before']:.2f} cores just before the run (busiest: {'; '.join(R['others_busiest']) or '-'}); "
        f"during the run the whole machine averaged {R['machine_cores_during']:.2f} of {R['cores']} cores, the app "
        f"{R['server_cores_during']:.2f}. Load average before {R['loadavg_before']}, after {R['loadavg_after']}.",
        "",
        "| action | requests served | errors | p50 ms | p95 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for k in ("trace", "distribution", "generate", "all"):
        s = a[k]
        lines.append(f"| {names[k]} | {s['requests']:,} | {s['errors']} | {s['p50_ms']:,.0f} | {s['p95_ms']:,.0f} | "
                     f"{s['max_ms']:,.0f} |")
    lines += [
        "",
        f"Throughput {L.get('throughput_rps', float('nan')):.1f} actions/s; HTTP-level failures (POST or event "
        f"stream) {L['http_failures']}.",
        "",
        "| server memory (RSS of the app's process) | MiB |",
        "|---|---:|",
        f"| after start-up | {R['rss_start_mb']:,.0f} |",
        f"| warm, before the locust run | {R['rss_before_mb']:,.0f} |",
        f"| peak during the locust run | {R['rss_peak_mb']:,.0f} |",
        f"| after the locust run | {R['rss_after_mb']:,.0f} |",
        f"| before {G['requests']:,} more requests (warm), as documented (no session hash) | {G['rss_before_mb']:,.0f} |",
        f"| after them | {G['rss_after_mb']:,.0f} |",
        f"| **growth over those {G['requests']:,} requests** | **{G['growth_pct']:+.1f} %** (target ≤ 10 %: "
        f"{'met' if G['growth_pct'] <= 10 else 'MISSED'}) |",
    ]
    if "rss_settled_mb" in G:
        lines.append(f"| {G['settle_s']} s later (idle) | {G['rss_settled_mb']:,.0f} ({G['settled_growth_pct']:+.1f} %) |")
    S = R.get("growth_with_session")
    if S:
        lines += [
            f"| before {S['requests']:,} more, each client thread with its own session hash (as gradio_client) | "
            f"{S['rss_before_mb']:,.0f} |",
            f"| after them | {S['rss_after_mb']:,.0f} |",
            f"| growth over those {S['requests']:,} requests | {S['growth_pct']:+.1f} % |",
        ]
    if R.get("trend"):
        last = (R["growth_with_session"] if S else G)["rss_after_mb"]
        steps = []
        for t in R["trend"]:
            steps.append(f"{t['rss_after_mb']:,.0f} ({t['rss_after_mb'] - last:+,.0f})")
            last = t["rss_after_mb"]
        lines.append(f"| then {len(R['trend'])} more rounds of {G['requests']:,} (with / without session hash in turn), "
                     f"RSS after each | {' → '.join(steps)} |")
    lines += [
        "",
        f"The {G['requests']:,} requests ({G['threads']} threads, same mix): {G['errors']} errors, p50 {G['p50_ms']:,.0f} ms, "
        f"p95 {G['p95_ms']:,.0f} ms, {G['wall_s']:.0f} s"
        + (f"; with session hashes: {S['errors']} errors, p50 {S['p50_ms']:,.0f} ms, p95 {S['p95_ms']:,.0f} ms, "
           f"{S['wall_s']:.0f} s" if S else "") + ". Errors overall: "
        f"{'0 (target met)' if R['total_errors'] == 0 else str(R['total_errors']) + ' (target MISSED)'}.",
        "",
        "Sessions: for each `/gradio_api/call` request that names no `session_hash`, Gradio 6.31 makes a new "
        "session and keeps its `SessionState` (a copy of the page's component config, ~185 KB here) until "
        "`state_session_capacity` of them have accumulated. The app forgets sessions that hold no page state once "
        "they have been idle 30 s (`server/sessions.py`), so anonymous calls cannot pile up or push page sessions "
        "out; page sessions are bounded by `--max-sessions` and `--session-idle-minutes`.",
        "",
    ]
    return "\n".join(lines)


def write_results(md: str, R: dict) -> None:
    RESULTS_JSON.write_text(json.dumps(R, indent=1, default=str) + "\n")
    replace_section(RESULTS_MD, SECTION, md)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--growth-requests", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=20, help="client threads for the 1,000-request phase")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--queue-size", type=int, default=200)
    ap.add_argument("--skip-session-phase", action="store_true",
                    help="leave out the second 1,000 requests (each client thread with its own session hash)")
    ap.add_argument("--trend", type=int, default=3, help="then this many more rounds of --growth-requests, "
                                                          "to see whether the RSS levels off")
    ap.add_argument("--quick", action="store_true", help="5 users, 15 s, 200 requests; writes nothing")
    ap.add_argument("--no-write", action="store_true", help="print the table, leave bench/results.md alone")
    args = ap.parse_args(argv)
    if args.quick:
        args.users, args.seconds, args.growth_requests, args.no_write, args.trend = 5, 15, 200, True, 0

    import importlib.metadata

    import gradio

    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    others_before, busiest = busiest_others({os.getpid()})
    R = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": psutil.cpu_count(),
         "machine": f"{platform.processor() or platform.machine()} ({psutil.cpu_count()} cores)",
         "gradio": gradio.__version__, "locust_version": importlib.metadata.version("locust"), "users": args.users,
         "seconds": args.seconds, "concurrency": args.concurrency, "queue_size": args.queue_size,
         "others_cores_before": others_before, "others_busiest": busiest,
         "loadavg_before": [round(x, 2) for x in os.getloadavg()]}
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
        R["machine"] = f"{name} ({psutil.cpu_count()} cores)"
    except (OSError, StopIteration):
        pass

    print(f"starting the app on {url} (--concurrency {args.concurrency} --queue-size {args.queue_size})...", flush=True)
    proc = start_app(port, args.concurrency, args.queue_size, OUT / "load_app.log")
    try:
        wait_ready(url, proc)
        server = psutil.Process(proc.pid)
        R["rss_start_mb"] = rss_mb(server)
        print("warming up...", flush=True)
        warm = burst(url, 90, 3, seed=1)
        R["warmup"] = warm
        R["rss_before_mb"] = rss_mb(server)

        print(f"locust: {args.users} users for {args.seconds} s...", flush=True)
        sampler = Sampler(server)
        sampler.start()
        R["locust"] = run_locust(url, args.users, args.seconds, OUT / "load", OUT / "load_latency.jsonl")
        sampler.stop()
        R["rss_after_mb"] = rss_mb(server)
        R["rss_peak_mb"] = max(sampler.rss, default=R["rss_after_mb"])
        R["server_cores_during"] = sum(sampler.server_cpu) / max(len(sampler.server_cpu), 1)
        R["machine_cores_during"] = sum(sampler.machine_cpu) / max(len(sampler.machine_cpu), 1)

        print(f"{args.growth_requests} more requests for the memory growth...", flush=True)
        before = rss_mb(server)
        g = burst(url, args.growth_requests, args.threads, seed=2)
        after = rss_mb(server)
        time.sleep(SETTLE_S)     # the app forgets idle anonymous sessions after 30 s (server/sessions.py)
        settled = rss_mb(server)
        R["growth"] = {**g, "threads": args.threads, "rss_before_mb": before, "rss_after_mb": after,
                       "growth_pct": (after - before) / before * 100, "rss_settled_mb": settled,
                       "settled_growth_pct": (settled - before) / before * 100, "settle_s": SETTLE_S}
        if not args.skip_session_phase:
            print(f"{args.growth_requests} more, each thread with a session hash of its own...", flush=True)
            before = rss_mb(server)
            g = burst(url, args.growth_requests, args.threads, seed=3, session_prefix="load-")
            after = rss_mb(server)
            R["growth_with_session"] = {**g, "threads": args.threads, "rss_before_mb": before, "rss_after_mb": after,
                                        "growth_pct": (after - before) / before * 100}
        R["trend"] = []
        for i in range(args.trend):     # does the growth level off? more thousands, alternating both kinds
            with_session = i % 2 == 0
            g = burst(url, args.growth_requests, args.threads, seed=10 + i,
                      session_prefix=f"trend{i}-" if with_session else None)
            R["trend"].append({"requests": g["requests"], "errors": g["errors"], "session_hash": with_session,
                               "rss_after_mb": rss_mb(server)})
            print(f"  trend {i + 1}/{args.trend}: RSS {R['trend'][-1]['rss_after_mb']:,.0f} MiB", flush=True)
        R["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        R["app_alive_after"] = proc.poll() is None
    finally:
        stop_app(proc)
    L = R["locust"]
    R["total_errors"] = (L["by_api"]["all"]["errors"] + L["http_failures"] + R["growth"]["errors"] + warm["errors"]
                         + R.get("growth_with_session", {}).get("errors", 0) + sum(t["errors"] for t in R["trend"]))
    md = table(R)
    print(md)
    if L["locust_rc"] not in (0, None):
        print(L["locust_tail"], file=sys.stderr)
    if not args.no_write:
        write_results(md, R)
        print(f"wrote {RESULTS_MD.relative_to(ROOT)} ({SECTION}) and {RESULTS_JSON.relative_to(ROOT)}")
    ok = R["total_errors"] == 0 and R["growth"]["growth_pct"] <= 10 and R["app_alive_after"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
