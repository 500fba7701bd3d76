"""Load through the balancer: locust users against `make cluster`'s HAProxy, 1 and 2 replicas, and
2 replicas with one killed during the run.

    .venv/bin/python bench/load/run_cluster_load.py              # 40 users x 60 s per phase (~6 min)
    .venv/bin/python bench/load/run_cluster_load.py --quick      # 10 users x 20 s, writes nothing

Each phase starts a fresh cluster (deploy/cluster.py: replicas on 127.0.0.1, the cores split
between them, HAProxy in front), warms it up, then runs bench/load/locustfile.py: every locust
user keeps its cookies, so it is one sticky session, mixing Run (/trace), slider moves
(/distribution) and Next token (/generate). In the kill phase replica r1 is killed (SIGKILL)
--kill-at seconds in, and every user re-sends a failed action once, as the page re-sends an event
whose replica went away; a *failed session* is a user with an action that failed even so.
Writes section "## Serving a class (bench/load/run_cluster_load.py)" of bench/results.md and
bench/load/results_cluster.json. Exit 1 on any failed session.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(ROOT), str(ROOT / "bench")]
from deploy.cluster import Cluster, free_port  # noqa: E402
from results_file import replace_section  # noqa: E402
from run_load import OUT, burst, busiest_others, pct, run_locust  # noqa: E402

RESULTS_MD = ROOT / "bench" / "results.md"
RESULTS_JSON = HERE / "results_cluster.json"
SECTION = "## Serving a class (bench/load/run_cluster_load.py)"


def phase(name: str, replicas: int, users: int, seconds: int, kill_at: float | None) -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    log = open(OUT / f"cluster-{name}.log", "w")
    with Cluster(replicas, free_port(), log=log) as cluster:
        burst(cluster.url + "/", 12 * replicas, 2 * replicas, seed=1)      # warm every replica
        others, busiest = busiest_others({p.pid for p in cluster.processes()}, seconds=2)
        killed_at = None
        if kill_at is not None:
            def killer():
                nonlocal killed_at
                time.sleep(kill_at)
                killed_at = time.time()
                cluster.kill("r1")
            threading.Thread(target=killer, daemon=True).start()
        if kill_at is not None:
            os.environ["GLASSGPT_LOAD_RETRY"] = "1"
        try:
            t0 = time.time()
            result = run_locust(cluster.url + "/", users, seconds, OUT / f"cluster-{name}", OUT / f"cluster-{name}.jsonl")
        finally:
            os.environ.pop("GLASSGPT_LOAD_RETRY", None)
    rows = [json.loads(line) for line in (OUT / f"cluster-{name}.jsonl").read_text().splitlines() if line.strip()]
    failed_users = sorted({r["user"] for r in rows if not r["ok"]})
    by_replica = Counter(r.get("replica") or "-" for r in rows if r["ok"])
    ms = [r["ms"] for r in rows]
    out = {"name": name, "replicas": replicas, "users": users, "seconds": seconds,
           "actions": len(rows), "ok": sum(r["ok"] for r in rows), "failed_actions": sum(not r["ok"] for r in rows),
           "failed_sessions": len(failed_users), "sessions": len({r["user"] for r in rows}),
           "retried": sum(r.get("attempts", 1) > 1 for r in rows),
           "p50_ms": pct(ms, 0.5), "p95_ms": pct(ms, 0.95), "max_ms": max(ms, default=0),
           "throughput_rps": result.get("throughput_rps"), "by_api": result["by_api"],
           "http_failures": result["http_failures"], "by_replica": dict(by_replica),
           "others_cores_before": others, "others_busiest": busiest}
    if killed_at is not None:
        after = [r for r in rows if r["t"] >= killed_at]
        out["killed_after_s"] = round(killed_at - t0, 1)
        out["after_kill"] = {"actions": len(after), "p95_ms": pct([r["ms"] for r in after], 0.95),
                             "by_replica": dict(Counter(r.get("replica") or "-" for r in after if r["ok"]))}
    return out


def table(R: dict) -> str:
    P = R["phases"]
    lines = [
        SECTION, "",
        f"Run {R['when']} on {R['machine']} ({R['cores']} cores). Method: `deploy/cluster.py` (what `make cluster` runs) "
        f"starts N replicas on 127.0.0.1, each with {{cores / N}} torch threads and its share of the memory, behind "
        f"HAProxy 2.6 with cookie stickiness; {R['users']} locust users (bench/load/locustfile.py, each keeping its "
        f"cookies: one sticky session) for {R['seconds']} s per phase, waiting 0.5-1.5 s between actions that mix "
        f"Run (/trace), slider moves (/distribution) and Next token (/generate); each action is Gradio's POST "
        f"/gradio_api/call/<name> then its event stream, timed end to end. Kill phase: replica r1 gets SIGKILL "
        f"{R['kill_at']} s in; an action that fails is re-sent once (as the page re-sends an event); a failed "
        f"session is a user with an action that failed even then.",
        "",
        "| phase | actions | actions/s | p50 ms | p95 ms | max ms | retried | failed sessions | served by |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for p in P:
        served = ", ".join(f"{k} {v}" for k, v in sorted(p["by_replica"].items()))
        lines.append(f"| {p['label']} | {p['actions']:,} | {p['throughput_rps']:.1f} | {p['p50_ms']:,.0f} | "
                     f"{p['p95_ms']:,.0f} | {p['max_ms']:,.0f} | {p['retried']} | "
                     f"{p['failed_sessions']} of {p['sessions']} | {served} |")
    k = next((p for p in P if "after_kill" in p), None)
    one = next(p for p in P if p["replicas"] == 1 and "after_kill" not in p)
    two = next(p for p in P if p["replicas"] == 2 and "after_kill" not in p)
    cores = R["cores"]
    per_core = two["throughput_rps"] / cores
    lines += [""]
    if k:
        lines.append(f"Kill phase: r1 killed {k['killed_after_s']} s in; after it {k['after_kill']['actions']:,} "
                     f"actions (p95 {k['after_kill']['p95_ms']:,.0f} ms), served by "
                     f"{', '.join(f'{a} {b}' for a, b in sorted(k['after_kill']['by_replica'].items()))}; "
                     f"{k['retried']} actions were cut by the kill and succeeded when re-sent; "
                     f"{k['failed_sessions']} sessions failed.")
    lines += [
        "",
        f"{R['users']} users acting every 0.5-1.5 s ask for far more than {cores} cores give, so every phase runs "
        f"saturated and the latencies are mostly queueing time. On paper: one replica with {cores} threads served {one['throughput_rps']:.1f} "
        f"actions/s, two single-thread replicas on the same {cores} cores {two['throughput_rps']:.1f} "
        f"({two['throughput_rps'] / one['throughput_rps'] - 1:+.0%}): a short prompt's forward pass does not split "
        f"well across threads, so one thread per replica uses the cores better, memory permitting (~1 GB plus the "
        f"sessions per replica). That is {per_core:.1f} actions/s per core for this mix, so a machine with C cores "
        f"and C single-thread replicas would serve about {per_core:.1f} x C actions/s (16 cores: ~{per_core * 16:.0f}). "
        f"A class of 60 people each acting every ~2 s asks for ~30 actions/s: about {30 / per_core:.0f} cores. "
        f"This machine cannot show that speed-up; it is arithmetic from the measured rate.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=40)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--kill-at", type=float, default=20)
    ap.add_argument("--quick", action="store_true", help="10 users, 20 s per phase; writes nothing")
    ap.add_argument("--rewrite", action="store_true", help="rewrite the results section from the saved JSON")
    args = ap.parse_args(argv)
    if args.rewrite:
        replace_section(RESULTS_MD, SECTION, table(json.loads(RESULTS_JSON.read_text())))
        return 0
    if args.quick:
        args.users, args.seconds, args.kill_at = 10, 20, 8
    phases = []
    for label, name, replicas, kill in (("1 replica", "one", 1, None), ("2 replicas", "two", 2, None),
                                        ("2 replicas, r1 killed", "kill", 2, args.kill_at)):
        print(f"phase: {label} ({args.users} users x {args.seconds} s)...", flush=True)
        p = phase(name, replicas, args.users, args.seconds, kill)
        p["label"] = label
        print(f"  {p['actions']} actions, p95 {p['p95_ms']:.0f} ms, failed sessions {p['failed_sessions']}, "
              f"retried {p['retried']}, by replica {p['by_replica']}", flush=True)
        phases.append(p)
    R = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform(),
         "cores": psutil.cpu_count(), "users": args.users, "seconds": args.seconds, "kill_at": args.kill_at,
         "phases": phases}
    md = table(R)
    print(md)
    if not args.quick:
        RESULTS_JSON.write_text(json.dumps(R, indent=1, default=str) + "\n")
        replace_section(RESULTS_MD, SECTION, md)
    return 1 if any(p["failed_sessions"] for p in phases) else 0


if __name__ == "__main__":
    sys.exit(main())
