"""Benchmark of the page as a person uses it: from a user action to the affected panels re-drawn.

    .venv/bin/python bench/bench_ui.py              # full run (about 6 minutes on 2 cores, after any wait)
    .venv/bin/python bench/bench_ui.py --quick      # fewer repetitions (about 3 minutes)
    .venv/bin/python bench/bench_ui.py --no-wait    # measure at once, busy machine or not
    .venv/bin/python bench/bench_ui.py --no-write   # print only

Before measuring it waits (polling every 30 s, at most --max-wait 600 s) until bench/bench_model.py is
not running and other processes use under --quiet-cores 0.3 cores; the CPU other processes used
during the browser runs is recorded, and the report says whether the machine was idle.

What is measured
  Browser (end to end): the real app (`python app.py --port P`, a subprocess) driven by Chromium
  through Playwright (Debian's /usr/bin/chromium with the flags of tests/browser/conftest.py;
  Playwright's own Chromium when that is missing). For every sample the page is armed first: it
  records each target panel's current content (the Plotly div's `data` array, by identity, which
  every Plotly.react replaces; the chips' innerHTML), then Playwright performs the action. A
  capture-phase listener takes t0 = performance.now() when the action's first event reaches the
  page (mousedown for clicks, keydown for keys, input for sliders); a requestAnimationFrame loop in
  the page then notes, per panel, the first frame at which its content differs and its
  Plotly.react call has settled. Sample = the slowest target panel. The page also time-stamps the
  response (window.fetch is wrapped: for queued events the server-sent events of .../queue/data are
  read as they arrive and `process_completed` is the answer; events with queue=False answer in
  the HTTP response of their .../run/... request) and every Plotly.react call, so each sample splits into
      response: request, queue, handler, serialisation, transfer   (t0 -> process_completed)
      browser:  JSON parse, Svelte, Plotly                         (response -> last panel drawn)
  Server (in this process, before the app starts): the same handler calls the page triggers
  (server.handlers, as tests/test_handlers.py), timed directly, then each output figure's
  Figure.to_json() (what gr.Plot.postprocess does) and the JSON of the whole message; one cProfile
  run per handler keeps its 15 most expensive functions; Run and Next token are also split into
  model, view (logit lens, neighbours) and figures.
  Plotly alone: every panel's figure for prompt A then prompt B, drawn off-screen in the page with
  Plotly.newPlot on a fresh div (what gr.Plot does on each update, after a react on its old div)
  and with Plotly.react on one persistent div.

Scenarios (2-core CPU, default model; each alternates values so that every sample changes what
it waits for): temperature / top-k / top-p -> #distribution; layer step (button, arrow key) and
head change -> the layer panels; Run on 20- and 200-token prompts and Next token -> every panel;
the language switch (a handler that only looks up text) to its response, as the fixed cost of a
Gradio round trip. Writes the table to bench/results.md (section "## Page (bench/bench_ui.py)",
other sections are left alone) and every sample to bench/results_ui.json.
"""
from __future__ import annotations

import argparse
import cProfile
import datetime
import io
import json
import os
import platform
import pstats
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from results_file import replace_section  # bench/, the script's own folder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

BENCH = ROOT / "bench"
RESULTS_MD = BENCH / "results.md"
RESULTS_JSON = BENCH / "results_ui.json"
SECTION = "## Page (bench/bench_ui.py)"
PYTHON = ROOT / ".venv" / "bin" / "python"

try:  # the browser tests' flags and browser choice, so the benchmark sees the page as they do
    from tests.browser.conftest import CHROMIUM_FLAGS, chromium_path
except Exception:  # noqa: BLE001 - a copy, for when the test package cannot be imported
    CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                      "--disable-background-networking", "--disable-component-update", "--disable-sync",
                      "--disable-dev-shm-usage"]

    def chromium_path() -> str | None:
        for c in (os.environ.get("GLASSGPT_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
            if c and Path(c).exists():
                return c
        return None

ALL_PANELS = ["tokens", "embeddings", "attention", "attention-heads", "attention-all", "attention-detail",
              "mlp", "mlp-top", "logit-lens", "logit-lens-focus", "distribution"]
LAYER_PANELS = ["attention", "attention-heads", "attention-detail", "mlp", "mlp-top"]
HEAD_PANELS = ["attention", "attention-detail"]

# name: (target panels, thresholds {stat: ms}, what the page holds, how it is driven)
SCENARIOS = {
    "temperature":        (["distribution"], {"p50": 100, "p95": 200}),
    "top-k":              (["distribution"], {"p50": 100, "p95": 200}),
    "top-p":              (["distribution"], {"p50": 100, "p95": 200}),
    "layer (button)":     (LAYER_PANELS, {"p50": 300}),
    "layer (arrow key)":  (LAYER_PANELS, {"p50": 300}),
    "head":               (HEAD_PANELS, {"p50": 300}),
    "layer (button), 200-tok": (LAYER_PANELS, {"p50": 300}),
    "run 20 tokens":      (ALL_PANELS, {"p50": 1500}),
    "run 200 tokens":     (ALL_PANELS, {"p50": 4000}),
    "next token":         (ALL_PANELS, {"p50": 1000}),
    # no target: the language switch, whose handler only looks up text, to the response message's
    # arrival: the fixed cost of one Gradio round trip on this page
    "language switch (baseline)": (["process_completed"], {}),
}
REPS = {  # (full, quick) measured samples per scenario, after WARMUP unmeasured ones
    "temperature": (30, 10), "top-k": (30, 10), "top-p": (30, 10),
    "layer (button)": (30, 10), "layer (arrow key)": (30, 10), "head": (30, 10),
    "layer (button), 200-tok": (15, 5),
    "run 20 tokens": (20, 6), "run 200 tokens": (10, 4), "next token": (24, 8),
    "language switch (baseline)": (20, 8),
}
WARMUP = 2
ONLY: set[str] | None = None   # --only: measure these scenarios, keep the others' samples from the last run
SAMPLING_VALUES = {"temperature": (0.5, 1.5), "top-k": (5, 40), "top-p": (0.5, 0.95)}

# Original prose the prompts are cut from (word by word, until the tokenizer counts exactly N).
PROSE_A = (
    "Every evening the lighthouse keeper climbed the narrow stairs, polished the great lens and wrote the "
    "weather in a small green book. Ships passed far out at sea, and none of their crews ever learned his "
    "name, yet each of them trusted the light he kept burning through storms, fog and the long winter nights. "
    "When the harbour town grew and the new electric beacon arrived, he stayed on anyway, counting the waves "
    "and the gulls, teaching the children from the village how the tides follow the moon, how a barometer "
    "falls before a gale, and why a sailor reads the colour of the sky at dawn. The book filled with numbers "
    "and sketches: clouds like feathers, clouds like anvils, a whale that surfaced once beside the rocks and "
    "then vanished for twenty years. Visitors asked whether he was lonely. He said that a place with so much "
    "weather is never quiet, and that the sea tells a new story every morning to anyone patient enough to "
    "listen. In spring he painted the railings white again, repaired the shutters, and planted beans in the "
    "sheltered corner behind the storehouse, where the wind could not reach them and the sun stayed longest. "
    "Sometimes letters came from sailors who had seen his light decades before, thanking him for a safe "
    "passage on a night they still remembered, and he kept every one of them in a tin box under his bed."
)
PROSE_B = (
    "The small robot in the kitchen had learned to make soup by watching, one careful step after another. "
    "First it washed the carrots, then it measured the water twice, because the recipe said that patience was "
    "the secret ingredient and the robot took every word literally. The family laughed when it stirred the pot "
    "for exactly four hundred turns, but nobody complained when the bowls were empty. Over the months it "
    "learned bread, dumplings, a lemon cake for birthdays and a bitter tea that only the grandmother liked. "
    "It kept notes on every meal: who asked for more, who left the onions, which spices made the youngest "
    "child sneeze. On rainy days it read old cookbooks aloud to itself, puzzling over instructions such as a "
    "pinch, a handful, or cook until it smells right, none of which its sensors could measure with certainty. "
    "So it invented its own units, the sniff and the glance, and wrote them carefully into the margins. When "
    "the family moved to a bigger house across the river, the robot insisted on carrying the spice rack "
    "itself, holding it level the whole way, and on the first night it cooked the same soup as on its very "
    "first day, because some things, it had decided, should be remembered exactly as they were made."
)

PAGE_JS = r"""
(() => {
  const G = window.__gg = {msgs: [], reacts: [], armed: null};
  // Time-stamp the server-sent events of the queue (the response of every handler arrives here).
  const origFetch = window.fetch;
  window.fetch = async function (...args) {
    const resp = await origFetch.apply(this, args);
    try {
      const url = String((args[0] && args[0].url) || args[0]);
      if (url.includes('/queue/data') && resp.body) {
        const dec = new TextDecoder();
        let buf = '';
        const ts = new TransformStream({
          transform(chunk, ctl) {
            const now = performance.now();
            buf += dec.decode(chunk, {stream: true});
            let i;
            while ((i = buf.indexOf('\n\n')) >= 0) {
              const msg = buf.slice(0, i); buf = buf.slice(i + 2);
              const m = msg.slice(0, 200).match(/"msg":\s*"(\w+)"/);
              G.msgs.push({t: now, kind: m ? m[1] : '?', bytes: msg.length});
            }
            ctl.enqueue(chunk);
          }
        });
        return new Response(resp.body.pipeThrough(ts), {status: resp.status, statusText: resp.statusText,
                                                        headers: resp.headers});
      }
      if (/\/run\/|predict/.test(url) && !url.includes('/queue/')) {
        // an event that skips the queue (queue=False): the handler's whole answer is this response, which
        // the server sends when it is done (headers and a body of at most a few hundred kB, on loopback)
        const len = Number(resp.headers.get('content-length') || 0);
        G.msgs.push({t: performance.now(), kind: 'process_completed', bytes: len, direct: true});
      }
    } catch (e) { /* measuring must never break the page */ }
    return resp;
  };
  function wrapPlotly() {
    const P = window.Plotly;
    if (!P || P.__ggWrapped) return;
    // assets/page.js defers draws and skips those on discarded divs; time the draws that happen.
    const host = P.__ggOriginal || P;
    const react = host.react;
    host.react = function (gd, ...rest) {
      const t = performance.now();
      const holder = gd && gd.closest ? gd.closest('[id]') : null;
      const rec = {id: holder ? holder.id : '?', t, ms: null, settled: null, gd};
      if (G.capture) G.figs[rec.id] = JSON.stringify(rest.slice(0, 3));   // probe phase only
      gd.__ggPending = (gd.__ggPending || 0) + 1;
      G.reacts.push(rec);
      const done = () => { rec.settled = performance.now() - t; gd.__ggPending -= 1; };
      let r;
      try { r = react.call(this, gd, ...rest); } finally { rec.ms = performance.now() - t; }
      if (r && typeof r.then === 'function') r.then(done, done); else done();
      return r;
    };
    P.__ggWrapped = true;
  }
  function snapshot(id) {
    const el = document.getElementById(id);
    if (!el) return {kind: 'missing', ref: null};
    const gd = el.querySelector('.js-plotly-plot');
    if (gd) return {kind: 'plot', ref: gd.data};
    return {kind: 'html', ref: el.innerHTML};
  }
  function changed(id, base) {
    const el = document.getElementById(id);
    if (!el) return false;
    const gd = el.querySelector('.js-plotly-plot');
    if (gd) return gd.data !== base.ref && !gd.__ggPending;
    return el.innerHTML !== base.ref;
  }
  G.arm = function (spec) {
    wrapPlotly();
    const st = {spec, t0: null, base: {}, done: {}, frames: 0, armedAt: performance.now(),
                msgIdx: G.msgs.length, reactIdx: G.reacts.length, timedOut: false, noEvent: false};
    for (const id of spec.targets) st.base[id] = snapshot(id);
    const onEvent = (e) => { if (st.t0 === null) st.t0 = performance.now(); };
    for (const ev of spec.events) document.addEventListener(ev, onEvent, true);
    st.promise = new Promise((resolve) => {
      const finish = () => {
        for (const ev of spec.events) document.removeEventListener(ev, onEvent, true);
        const msgs = G.msgs.slice(st.msgIdx).map(m => ({t: st.t0 === null ? null : m.t - st.t0, kind: m.kind,
                                                         bytes: m.bytes}));
        const reacts = G.reacts.slice(st.reactIdx).map(r => ({id: r.id, start: st.t0 === null ? null : r.t - st.t0,
                                                              ms: r.ms, settled: r.settled}));
        resolve({done: st.done, frames: st.frames, timedOut: st.timedOut, noEvent: st.noEvent,
                 baseKinds: Object.fromEntries(Object.entries(st.base).map(([k, v]) => [k, v.kind])),
                 msgs, reacts});
      };
      const tick = () => {
        const now = performance.now();
        st.frames += 1;
        if (st.t0 !== null) {
          if (spec.untilMsg) {
            const m = G.msgs.slice(st.msgIdx).find(m => m.kind === spec.untilMsg);
            if (m) st.done[spec.untilMsg] = m.t - st.t0;
          } else for (const id of spec.targets)
            if (!(id in st.done) && changed(id, st.base[id])) st.done[id] = now - st.t0;
          if (Object.keys(st.done).length === spec.targets.length) return finish();
          if (now - st.t0 > spec.timeout) { st.timedOut = true; return finish(); }
        } else if (now - st.armedAt > spec.timeout) { st.noEvent = true; return finish(); }
        requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    G.armed = st;
    return true;
  };
  G.wait = () => G.armed.promise;
  G.figs = {};
  G.capture = false;
  G.frameInterval = (n) => new Promise((resolve) => {
    let k = 0; const t0 = performance.now();
    const f = () => { if (++k < n) requestAnimationFrame(f); else resolve((performance.now() - t0) / n); };
    requestAnimationFrame(f);
  });
  // Plotly alone, per panel: what Gradio's gr.Plot does on an update (Plotly.react on the old div, then
  // a fresh div mounted and drawn from nothing) against Plotly.react on one persistent div.
  G.probe = async (figsA, figsB, reps) => {
    const P = Object.assign(Object.create(window.Plotly), window.Plotly.__ggOriginal ?    // the real, undeferred draw
      {react: window.Plotly.__ggOriginal.react} : {}), out = {};
    const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const settle = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    for (const id of Object.keys(figsB)) {
      if (!figsA[id]) continue;
      const live = document.querySelector('#' + id + ' .js-plotly-plot');
      const w = live ? live.clientWidth : 600, h = live ? live.clientHeight : 450;
      const fresh = [], persist = [];
      for (let i = 0; i < reps; i++) {
        const mk = () => { const d = document.createElement('div');
          d.style.cssText = `position:absolute;left:-5000px;top:0;width:${w}px;height:${h}px`;
          document.body.appendChild(d); return d; };
        const [dB, lB, cB] = JSON.parse(figsB[id]);
        const d1 = mk();
        let t = performance.now();
        const p1 = P.newPlot(d1, dB, lB, cB);
        const s1 = performance.now() - t;
        await p1; fresh.push([s1, performance.now() - t]);
        P.purge(d1); d1.remove();
        const [dA, lA, cA] = JSON.parse(figsA[id]);
        const [dB2, lB2, cB2] = JSON.parse(figsB[id]);
        const d2 = mk();
        await P.newPlot(d2, dA, lA, cA);
        await settle();
        t = performance.now();
        const p2 = P.react(d2, dB2, lB2, cB2);
        const s2 = performance.now() - t;
        await p2; persist.push([s2, performance.now() - t]);
        P.purge(d2); d2.remove();
        await settle();
      }
      out[id] = {newPlot_ms: median(fresh.map(x => x[0])), newPlot_settled_ms: median(fresh.map(x => x[1])),
                 react_ms: median(persist.map(x => x[0])), react_settled_ms: median(persist.map(x => x[1])),
                 width: w, height: h};
    }
    return out;
  };
})();
"""


# ---- small helpers -------------------------------------------------------------------------------
def pct(xs, q):
    """Linear-interpolated percentile (q in 0..100) of a non-empty list."""
    s = sorted(xs)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def stats(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "p50": pct(xs, 50), "p95": pct(xs, 95), "max": max(xs), "min": min(xs),
            "mean": statistics.fmean(xs)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def proc_snapshot() -> dict:
    """pid -> (ppid, CPU seconds used so far, command) for every process, from /proc; key "cpu":
    the machine's busy CPU seconds so far (all cores, /proc/stat), so processes that came and went
    between two snapshots are counted too."""
    tick = os.sysconf("SC_CLK_TCK")
    snap = {}
    try:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        snap["cpu"] = (sum(f[:8]) - f[3] - f[4]) / tick     # everything but idle and iowait
    except (OSError, ValueError, IndexError):
        snap["cpu"] = None
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2:].split()
        snap[int(d.name)] = (int(rest[1]), (int(rest[11]) + int(rest[12])) / tick, cmd or stat[stat.index("(") + 1:stat.rindex(")")])
    return snap


def descendants(snap: dict, root: int) -> set[int]:
    mine, grew = {root}, True
    while grew:
        grew = False
        for pid, (ppid, _, _) in ((k, v) for k, v in snap.items() if k != "cpu"):
            if ppid in mine and pid not in mine:
                mine.add(pid)
                grew = True
    return mine


def foreign_cpu(before: dict, after: dict, seconds: float, limit: int = 5) -> dict:
    """CPU used by processes that are not this benchmark or its children between two snapshots:
    -> {"cores": average cores busy, "top": ["pid %cpu command", ...]}."""
    mine = descendants(after, os.getpid()) | descendants(before, os.getpid())
    used, ours = [], 0.0
    for pid, (_, cpu, cmd) in ((k, v) for k, v in after.items() if k != "cpu"):
        d = cpu - before[pid][1] if pid in before else cpu
        if pid in mine:
            ours += max(d, 0.0)
        elif d > 0:
            used.append((d, pid, cmd))
    used.sort(reverse=True)
    total = sum(d for d, _, _ in used)
    if before.get("cpu") is not None and after.get("cpu") is not None:   # includes short-lived processes
        total = max(total, after["cpu"] - before["cpu"] - ours)
    return {"cores": round(total / max(seconds, 1e-9), 2), "ours_cores": round(ours / max(seconds, 1e-9), 2),
            "top": [f"{pid} {100 * d / seconds:.0f}% {cmd[:90]}" for d, pid, cmd in used[:limit]]}


def sample_foreign_cpu(seconds: float = 5.0) -> dict:
    a = proc_snapshot()
    time.sleep(seconds)
    return foreign_cpu(a, proc_snapshot(), seconds)


def other_benchmarks() -> list[str]:
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            argv = (d / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        # a Python process running it (not a shell script that is waiting to start it)
        if argv and "python" in Path(argv[0]).name and any(x.endswith("bench_model.py") for x in argv[1:3]):
            found.append(f"{d.name} {' '.join(argv).strip()[:120]}")
    return found


def wait_for_idle(max_wait_s: float, poll_s: float = 30.0, quiet_cores: float | None = 0.3) -> dict:
    """Wait (polling every poll_s, at most max_wait_s) until bench/bench_model.py is not running and,
    when quiet_cores is set, other processes use less than that many cores over 5 s."""
    t0 = time.monotonic()
    first = bool(other_benchmarks())
    while True:
        seen = other_benchmarks()
        load = sample_foreign_cpu(5.0) if quiet_cores is not None and not seen else None
        if not seen and (load is None or load["cores"] < quiet_cores):
            break
        if time.monotonic() - t0 >= max_wait_s:
            print(f"  still busy after {max_wait_s:.0f} s; measuring anyway", flush=True)
            break
        why = f"bench_model.py is running ({seen[0][:60]})" if seen else \
            f"other processes use {load['cores']} cores ({'; '.join(load['top'][:2])})"
        print(f"  {why}; waiting {poll_s:.0f} s ...", flush=True)
        time.sleep(poll_s)
    return {"waited_s": round(time.monotonic() - t0, 1), "bench_model_running_at_start": first}


QUIET_CORES = 0.25   # a sample counts as quiet when other processes used less CPU than this during it


class CpuMeter:
    """CPU that processes other than this benchmark's own used during one sample, in cores: the
    machine's busy time (/proc/stat, so short-lived processes count) minus this process tree's own
    (the benchmark, the app it started, Playwright's driver and Chromium)."""

    def __init__(self):
        self.tick = os.sysconf("SC_CLK_TCK")
        self.pids = {os.getpid()}

    def refresh(self):
        self.pids = descendants(proc_snapshot(), os.getpid())

    def read(self) -> tuple[float, float, float]:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        busy = (sum(f[:8]) - f[3] - f[4]) / self.tick
        ours = 0.0
        for pid in self.pids:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            rest = stat[stat.rindex(")") + 2:].split()
            ours += sum(int(x) for x in rest[11:15]) / self.tick   # utime, stime, cutime, cstime
        return time.monotonic(), busy, ours

    @staticmethod
    def foreign(a, b) -> float:
        dt = b[0] - a[0]
        return round(max(0.0, (b[1] - a[1]) - (b[2] - a[2])) / dt, 3) if dt > 0 else 0.0


METER = CpuMeter()


def quiet_subset(samples: list, key: str = "foreign_cores") -> tuple[list, str]:
    """The samples taken while the machine was quiet, when there are enough of them (at least 5 and a
    third of all), else all of them. -> (samples, "quiet" | "all")."""
    quiet = [s for s in samples if s.get(key) is not None and s[key] < QUIET_CORES]
    if len(quiet) >= max(5, -(-len(samples) // 3)):
        return quiet, "quiet"
    return samples, "all"


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# ---- prompts ---------------------------------------------------------------------------------------
def cut_prompt(lm, prose: str, n: int) -> tuple[str, int]:
    """The shortest word prefix of `prose` with exactly n tokens (or the nearest above, reported)."""
    words = prose.split(" ")
    for k in range(1, len(words) + 1):
        text = " ".join(words[:k])
        count = len(lm.tokenize(text))
        if count >= n:
            return text, count
    raise ValueError(f"the prose has fewer than {n} tokens")


def build_prompts(lm) -> dict:
    out = {}
    for n in (20, 200):
        a, na = cut_prompt(lm, PROSE_A, n)
        b, nb = cut_prompt(lm, PROSE_B, n)
        out[n] = [(a, na), (b, nb)]
    return out


# ---- server side, in this process ---------------------------------------------------------------------
def serialise(out: dict) -> tuple[float, int, dict]:
    """What Gradio adds after the handler: Figure.to_json() per plot (gr.Plot.postprocess), then one
    JSON message. -> (ms, message bytes, {panel: plot JSON bytes})."""
    t = time.perf_counter()
    payload, sizes = {}, {}
    for k, v in out.items():
        if hasattr(v, "to_json"):
            s = v.to_json()
            sizes[k] = len(s)
            payload[k] = {"type": "plotly", "plot": s}
        else:
            payload[k] = v
    msg = json.dumps({"msg": "process_completed", "output": {"data": list(payload.values())}})
    return (time.perf_counter() - t) * 1e3, len(msg.encode()), sizes


def profile_top(fn, n: int = 15) -> list[dict]:
    pr = cProfile.Profile()
    pr.enable()
    fn()
    pr.disable()
    st = pstats.Stats(pr, stream=io.StringIO())
    rows = []
    for (file, line, name), (cc, nc, tt, ct, _callers) in st.stats.items():
        rows.append({"function": f"{Path(file).name}:{line}({name})", "calls": nc, "tottime_ms": tt * 1e3,
                     "cumtime_ms": ct * 1e3})
    rows.sort(key=lambda r: -r["cumtime_ms"])
    top_cum = rows[:n]
    top_self = sorted(rows, key=lambda r: -r["tottime_ms"])[:n]
    return {"by_cumulative": top_cum, "by_self": top_self}


def language_texts(lang: str) -> list:
    """What the language switch's handler in app.py computes."""
    from server.i18n import EXPLAINED_PANELS, explanation, heading
    return None, {p: heading(p, lang) for p in EXPLAINED_PANELS} | {p + "-explain": explanation(p, lang)
                                                                     for p in EXPLAINED_PANELS}


def server_side(lm, prompts: dict, quick: bool) -> dict:
    from server import handlers
    from server.handlers import Context, Controls, Limits

    ctx = Context(lm, Limits())  # app.py's defaults
    handlers.initial_view(ctx)
    (p20, _), (p20b, _) = prompts[20]
    (p200, _), (p200b, _) = prompts[200]
    v20, _ = handlers.on_run(ctx, None, Controls(), p20)
    v200, _ = handlers.on_run(ctx, None, Controls(), p200)
    reps = 5 if quick else 10
    cases = {
        "temperature": lambda i: handlers.on_sampling(ctx, v20, Controls(temperature=SAMPLING_VALUES["temperature"][i % 2])),
        "top-k": lambda i: handlers.on_sampling(ctx, v20, Controls(top_k=SAMPLING_VALUES["top-k"][i % 2])),
        "top-p": lambda i: handlers.on_sampling(ctx, v20, Controls(top_p=SAMPLING_VALUES["top-p"][i % 2])),
        "layer (button)": lambda i: handlers.on_layer_step(ctx, v20, Controls(layer=i % 29), +1),
        "layer (arrow key)": lambda i: handlers.on_layer_step(ctx, v20, Controls(layer=i % 29), +1),
        "head": lambda i: handlers.on_layer(ctx, v20, Controls(layer=1, head=i % 9)),
        "layer (button), 200-tok": lambda i: handlers.on_layer_step(ctx, v200, Controls(layer=i % 29), +1),
        "run 20 tokens": lambda i: handlers.on_run(ctx, v20, Controls(), (p20, p20b)[i % 2]),
        "run 200 tokens": lambda i: handlers.on_run(ctx, v200, Controls(), (p200, p200b)[i % 2]),
        "next token": lambda i: handlers.on_next_token(ctx, v20, Controls()),
        "language switch (baseline)": lambda i: language_texts(("zh", "en")[i % 2]),
    }
    res = {}
    for name, call in cases.items():
        if ONLY and name not in ONLY:
            continue
        n = max(3, reps // 2) if "200 tokens" in name else reps
        try:
            call(0)  # warm-up
        except Exception as e:  # noqa: BLE001 - the handlers are being edited; report, go on
            print(f"  server  {name:26s} FAILED: {type(e).__name__}: {e}", flush=True)
            res[name] = {"error": f"{type(e).__name__}: {e}"}
            continue
        h_ms, s_ms, msg_bytes, sizes, foreign = [], [], [], {}, []
        for i in range(n):
            c0 = METER.read()
            t = time.perf_counter()
            _, out = call(i)
            h_ms.append((time.perf_counter() - t) * 1e3)
            foreign.append(CpuMeter.foreign(c0, METER.read()))
            ms, nbytes, sizes = serialise(out)
            s_ms.append(ms)
            msg_bytes.append(nbytes)
        res[name] = {"handler_ms": h_ms, "serialise_ms": s_ms, "foreign_cores": foreign,
                     "message_bytes": msg_bytes, "plot_json_bytes": sizes,
                     "profile": profile_top(lambda: call(1))}
        print(f"  server  {name:26s} handler p50 {pct(h_ms, 50):7.1f} ms   to_json+message {pct(s_ms, 50):6.1f} ms"
              f"   message {statistics.median(msg_bytes) / 1e3:7.1f} kB", flush=True)
    # the parts of Run and Next token: the model, the view (logit lens, neighbours), the figures
    from server.state import make_view
    parts = {}
    for name, prompt_pair, view in (("run 20 tokens", (p20, p20b), v20), ("run 200 tokens", (p200, p200b), v200)):
        rows = []
        for i in range(3 if quick else 5):
            ids = handlers.check_prompt(ctx, prompt_pair[i % 2])
            t0 = time.perf_counter(); tr = lm.trace(ids)
            t1 = time.perf_counter(); nv = make_view(lm, tr)
            t2 = time.perf_counter(); handlers.everything(ctx, nv, Controls())
            t3 = time.perf_counter()
            rows.append(((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3))
        parts[name] = rows
    rows = []
    for i in range(3 if quick else 5):
        t0 = time.perf_counter(); tok = lm.next_token(v20.trace, Controls().sampling); tr = lm.step(v20.trace, tok)
        t1 = time.perf_counter(); nv = make_view(lm, tr, None, previous=v20)
        t2 = time.perf_counter(); handlers.everything(ctx, nv, Controls())
        t3 = time.perf_counter()
        rows.append(((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3))
    parts["next token"] = rows
    for name, rows in parts.items():
        if name not in res or "error" in res[name]:
            continue
        med = [statistics.median(r[j] for r in rows) for j in range(3)]
        res[name]["parts_ms"] = {"model": med[0], "view (logit lens, neighbours)": med[1], "figures (everything)": med[2]}
        print(f"  server  {name:26s} model {med[0]:6.0f} ms   view {med[1]:6.0f} ms   figures {med[2]:6.0f} ms", flush=True)
    # figure building alone, for the layer and sampling groups: how much is plotly's Python validation
    from server import render
    opts = Controls(layer=5).layer_options
    t = time.perf_counter()
    for _ in range(reps):
        render.layer_group(v20, opts)
    if "layer (button)" in res:
        res["layer (button)"]["layer_group_ms"] = (time.perf_counter() - t) * 1e3 / reps

    # sanity: the alternated sampling values really change the bars (else the browser would wait forever)
    for ctl, (a, b) in SAMPLING_VALUES.items():
        key = {"temperature": "temperature", "top-k": "top_k", "top-p": "top_p"}[ctl]
        fa = handlers.on_sampling(ctx, v20, Controls(**{key: a}))[1]["distribution"].to_json()
        fb = handlers.on_sampling(ctx, v20, Controls(**{key: b}))[1]["distribution"].to_json()
        if fa == fb:
            raise SystemExit(f"{ctl} {a} and {b} give the same distribution figure; pick other values")
    return res


# ---- the app and the browser -------------------------------------------------------------------------
class App:
    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([str(PYTHON), "app.py", "--port", str(port)], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.serving = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if "serving on" in line:
                self.serving.set()

    def wait_ready(self, timeout: float = 240.0):
        t0 = time.monotonic()
        while not self.serving.wait(0.5):
            if self.proc.poll() is not None or time.monotonic() - t0 > timeout:
                raise SystemExit("the app did not start:\n" + "\n".join(self.lines[-30:]))
        while time.monotonic() - t0 < timeout:
            try:
                if urllib.request.urlopen(self.url, timeout=5).status == 200:
                    return time.monotonic() - t0
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        raise SystemExit("the app never answered HTTP 200:\n" + "\n".join(self.lines[-30:]))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Driver:
    def __init__(self, page, timeout_ms: int):
        self.page = page
        self.timeout = timeout_ms
        self.shown = None   # the prompt last run
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("console", lambda m: self.errors.append(f"console.error: {m.text}") if m.type == "error" else None)

    def measure(self, targets, events, action, until_msg: str | None = None) -> dict:
        c0 = METER.read()
        self.page.evaluate("spec => window.__gg.arm(spec)", {"targets": targets, "events": events,
                                                              "timeout": self.timeout, "untilMsg": until_msg})
        action()
        r = self.page.evaluate("() => window.__gg.wait()")
        r["foreign_cores"] = CpuMeter.foreign(c0, METER.read())
        done = r["done"]
        r["total_ms"] = max(done.values()) if len(done) == len(targets) and not r["timedOut"] else None
        r["missing"] = [t for t in targets if t not in done]
        def first(kind):
            ts = [m["t"] for m in r["msgs"] if m["kind"] == kind and m["t"] is not None]
            return ts[0] if ts else None
        r["starts_ms"] = first("process_starts")         # the app's worker picked the event up
        r["response_ms"] = first("process_completed")    # the whole output message has arrived
        r["response_bytes"] = sum(m["bytes"] for m in r["msgs"] if m["kind"] == "process_completed")
        r["react_ms"] = sum(x["ms"] or 0 for x in r["reacts"])
        r["react_calls"] = {}
        for x in r["reacts"]:
            r["react_calls"][x["id"]] = r["react_calls"].get(x["id"], 0) + 1
        self.page.wait_for_timeout(120)  # let the page settle (trailing resize, layer slider update)
        return r

    def chip_count(self) -> int:
        return self.page.evaluate("document.querySelectorAll('#tokens button.gg-chip').length")

    def run_prompt(self, text: str, n_tokens: int, measure: bool = True):
        self.page.fill("#prompt textarea", text)
        if not measure:
            if self.shown == text and self.chip_count() == n_tokens:
                return None   # already on the page: running it again would change nothing
            self.shown = text
            self.measure(["tokens", "logit-lens", "distribution"], ["mousedown", "click"], lambda: self.page.click("#run"))
            self.page.wait_for_function(
                f"document.querySelectorAll('#tokens button.gg-chip').length === {n_tokens}", timeout=60_000)
            self.page.wait_for_timeout(300)
            return None
        self.shown = text
        r = self.measure(ALL_PANELS, ["mousedown", "click"], lambda: self.page.click("#run"))
        got = self.chip_count()
        if got != n_tokens:
            r["total_ms"] = None
            r["error"] = f"{got} chips, expected {n_tokens}"
        return r

    def layer_value(self) -> int:
        return int(float(self.page.input_value("#layer input[type=number]")))

    def set_slider(self, elem_id: str, value, targets) -> dict:
        return self.measure(targets, ["input"],
                            lambda: self.page.locator(f"#{elem_id} input[type=range]").fill(str(value)))


def browser_phase(app: App, prompts: dict, quick: bool, timeout_ms: int) -> dict:
    from playwright.sync_api import sync_playwright

    samples: dict[str, list] = {name: [] for name in SCENARIOS}
    info = {}
    with sync_playwright() as pw:
        path = chromium_path()
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS) if path else \
            pw.chromium.launch(args=CHROMIUM_FLAGS)
        info["browser"] = f"{'Debian chromium ' + path if path else 'Playwright chromium'} {browser.version}"
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_init_script(PAGE_JS)
        page = context.new_page()
        t = time.perf_counter()
        page.goto(app.url)
        page.wait_for_selector("#tokens button.gg-chip", timeout=60_000)
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 11", timeout=60_000)
        info["first_load_s"] = round(time.perf_counter() - t, 2)
        METER.refresh()   # the app, Playwright's driver and every Chromium process are ours
        page.wait_for_timeout(1000)
        info["rAF_idle_frame_ms"] = round(page.evaluate("() => window.__gg.frameInterval(60)"), 2)
        d = Driver(page, timeout_ms)
        k = 1 if quick else 0

        def collect(name, fn, n_reps):
            if ONLY and name not in ONLY:
                return
            for i in range(WARMUP + n_reps):
                try:
                    r = fn(i)
                except Exception as e:  # noqa: BLE001 - one failed action must not lose the other scenarios
                    r = {"total_ms": None, "error": f"{type(e).__name__}: {str(e)[:200]}", "done": {}, "missing": [],
                         "msgs": [], "reacts": [], "react_calls": {}, "react_ms": 0, "frames": 0,
                         "starts_ms": None, "response_ms": None, "response_bytes": 0}
                    print(f"  browser {name}: {r['error']}", flush=True)
                    if sum(1 for x in samples[name] if x.get("error")) >= 3:
                        break
                if i >= WARMUP:
                    samples[name].append(r)
            got = [s["total_ms"] for s in samples[name] if s["total_ms"] is not None]
            bad = len(samples[name]) - len(got)
            quiet = sum(1 for s in samples[name] if s["total_ms"] is not None and s.get("foreign_cores", 9) < QUIET_CORES)
            print(f"  browser {name:26s} n={len(got):3d} p50 {pct(got, 50) if got else float('nan'):7.1f} ms"
                  f"  p95 {pct(got, 95) if got else float('nan'):7.1f} ms  ({quiet} quiet)" +
                  (f"  ({bad} incomplete)" if bad else ""), flush=True)

        (p20, n20), (p20b, n20b) = prompts[20]
        (p200, n200), (p200b, n200b) = prompts[200]
        d.run_prompt(p20, n20, measure=False)

        # sampling controls: alternate two values (others at their defaults)
        for ctl, elem in (("temperature", "temperature"), ("top-k", "top-k"), ("top-p", "top-p")):
            a, b = SAMPLING_VALUES[ctl]
            collect(ctl, lambda i, elem=elem, a=a, b=b: d.set_slider(elem, (b, a)[i % 2], ["distribution"]),
                    REPS[ctl][k])
            if not ONLY or ctl in ONLY:   # back to the default (it differs from the last value set)
                d.set_slider(elem, {"temperature": 1, "top-k": 0, "top-p": 1}[ctl], ["distribution"])

        # layer steps: walk up to layer 29 and back down, by button then by arrow key
        direction = {"up": True}

        def step(i, keys: bool):
            layer = d.layer_value()
            if layer >= 29:
                direction["up"] = False
            elif layer <= 0:
                direction["up"] = True
            up = direction["up"]
            if keys:
                page.evaluate("() => document.activeElement && document.activeElement.blur()")
                return d.measure(LAYER_PANELS, ["keydown"],
                                 lambda: page.keyboard.press("ArrowRight" if up else "ArrowLeft"))
            return d.measure(LAYER_PANELS, ["mousedown", "click"],
                             lambda: page.click("#layer-next" if up else "#layer-prev"))
        collect("layer (button)", lambda i: step(i, False), REPS["layer (button)"][k])
        collect("layer (arrow key)", lambda i: step(i, True), REPS["layer (arrow key)"][k])

        # head: walk the 9 query heads on the head slider
        collect("head", lambda i: d.set_slider("head", (i % 8) + 1 if i % 16 < 8 else 7 - (i % 8), HEAD_PANELS),
                REPS["head"][k])

        # Run: alternate two prompts of the same length so every panel changes
        collect("run 20 tokens", lambda i: d.run_prompt((p20, p20b)[i % 2], (n20, n20b)[i % 2]),
                REPS["run 20 tokens"][k])
        collect("run 200 tokens", lambda i: d.run_prompt((p200, p200b)[i % 2], (n200, n200b)[i % 2]),
                REPS["run 200 tokens"][k])

        # layer steps with the 200-token prompt on the page
        collect("layer (button), 200-tok", lambda i: step(i, False), REPS["layer (button), 200-tok"][k])

        # Next token: from the 20-token prompt, 6 tokens, then the prompt is run again (not measured)
        d.run_prompt(p20, n20, measure=False)

        def next_token(i):
            if i and i % 6 == 0:
                d.run_prompt(p20, n20, measure=False)
            before = d.chip_count()
            r = d.measure(ALL_PANELS, ["mousedown", "click"], lambda: page.click("#next-token"))
            if d.chip_count() != before + 1:
                r["total_ms"] = None
                r["error"] = f"chips {before} -> {d.chip_count()}; notice: {page.inner_text('#notice')[:120]}"
                d.run_prompt(p20, n20, measure=False)
            return r
        collect("next token", next_token, REPS["next token"][k])

        # the fixed cost of a Gradio round trip on this page: a head pick of blanks changes nothing
        collect("language switch (baseline)", lambda i: d.measure(
            ["process_completed"], ["mousedown", "click"], lambda: page.locator("#language label").nth(1 - i % 2).click(),
            until_msg="process_completed"), REPS["language switch (baseline)"][k])
        page.locator("#language label").nth(0).click()
        page.wait_for_timeout(500)
        info["snapshot_end"] = (proc_snapshot(), time.monotonic())

        # Plotly alone: every panel's figure of prompt A -> prompt B, fresh mount vs react on one div
        info["plotly_probe"] = None
        if not ONLY:
            page.evaluate("() => { window.__gg.capture = true; window.__gg.figs = {}; }")
            d.run_prompt(p20, n20, measure=False)
            figs_a = page.evaluate("() => window.__gg.figs")
            page.evaluate("() => { window.__gg.figs = {}; }")
            d.run_prompt(p20b, n20b, measure=False)
            figs_b = page.evaluate("() => window.__gg.figs")
            page.evaluate("() => { window.__gg.capture = false; }")
            info["plotly_probe"] = page.evaluate("([a, b, n]) => window.__gg.probe(a, b, n)",
                                                 [figs_a, figs_b, 3 if quick else 5])
        info["page_errors"] = d.errors[:10]
        context.close()
        browser.close()
    return samples, info


# ---- report -------------------------------------------------------------------------------------------
def summarise(server: dict, browser: dict) -> dict:
    table = {}
    for name, (targets, limits) in SCENARIOS.items():
        ss = browser.get(name, [])
        ok_all = [s for s in ss if s["total_ms"] is not None]
        total_all = stats([s["total_ms"] for s in ok_all])
        ok, basis = quiet_subset(ok_all)    # judged on the quiet samples when there are enough
        n_quiet = sum(1 for s in ok_all if s.get("foreign_cores") is not None and s["foreign_cores"] < QUIET_CORES)
        total = stats([s["total_ms"] for s in ok])
        resp = stats([s["response_ms"] for s in ok])
        queue = stats([s["starts_ms"] for s in ok])
        in_app = stats([s["response_ms"] - s["starts_ms"] for s in ok
                        if s["response_ms"] is not None and s["starts_ms"] is not None])
        render = stats([s["total_ms"] - s["response_ms"] for s in ok if s["response_ms"] is not None])
        calls = [c for s in ok for t, c in s["react_calls"].items() if t in targets]
        react = stats([s["react_ms"] for s in ok])
        srv = server.get(name, {})
        rows = [{"h": h_, "s": s_, "foreign_cores": f_} for h_, s_, f_ in
                zip(srv.get("handler_ms", []), srv.get("serialise_ms", []),
                    srv.get("foreign_cores", [None] * len(srv.get("handler_ms", []))))]
        rows, server_basis = quiet_subset(rows)
        h = stats([r_["h"] for r_ in rows])
        ser = stats([r_["s"] for r_ in rows])
        verdicts = {}
        for stat, lim in limits.items():
            verdicts[stat] = None if not total.get("n") else total[stat] <= lim
        # a single-number target is judged on the median; the p95 against it is reported too
        p95_note = None
        if limits and "p95" not in limits and total.get("n"):
            p95_note = total["p95"] <= limits["p50"]
        per_panel = {t: stats([s["done"].get(t) for s in ok]).get("p50") for t in targets}
        table[name] = {"targets": targets, "limits_ms": limits, "total": total, "pass": verdicts,
                       "basis": basis, "n_quiet": n_quiet, "total_all_samples": total_all,
                       "server_basis": server_basis,
                       "foreign_cores_p50": stats([s.get("foreign_cores") for s in ok_all]).get("p50"),
                       "p95_within_target": p95_note, "incomplete": len(ss) - len(ok_all),
                       "errors": [s.get("error") or f"missing {s['missing']}" for s in ss if s["total_ms"] is None][:5],
                       "response": resp, "to_process_starts": queue, "server_in_app": in_app,
                       "browser_render": render, "plotly_react_sum": react,
                       "react_calls_per_panel": statistics.fmean(calls) if calls else None,
                       "handler": h, "serialise": ser,
                       "message_kB": (statistics.median(srv["message_bytes"]) / 1e3) if srv.get("message_bytes") else None,
                       "per_panel_p50_ms": per_panel}
    return table


def fmt(x, nd=0):
    return "–" if x is None else f"{x:,.{nd}f}"


def markdown(table: dict, meta: dict) -> str:
    L = [SECTION, "",
         f"Run {meta['date']} on {meta['cpu']} ({meta['cores']} cores), {meta['browser']}, Gradio {meta['gradio']}, "
         f"{'quick' if meta['quick'] else 'full'} run. Machine idle: {meta['idle_text']}",
         "",
         "Wall time from the user action (first input event in the page, performance.now()) to the last affected "
         "panel re-drawn (first animation frame where its content changed and Plotly.react had settled). "
         "Single-number targets are judged on the median; the p95 column says whether p95 also meets them. "
         f"Each sample also records the CPU other processes used meanwhile; p50/p95/max and the verdict use the "
         f"*quiet* samples (others < {QUIET_CORES} cores) when at least 5 and a third of them are quiet, else all "
         "samples (*basis* column); the all-samples figures are listed too.",
         "",
         "| Scenario | Waits for | n (quiet) | basis | p50 ms | p95 ms | max ms | all samples p50 / p95 | Target | Result |",
         "|---|---|---:|---|---:|---:|---:|---:|---|---|"]
    for name, r in table.items():
        t = r["total"]
        lim = ", ".join(f"{k} ≤ {v:,}" for k, v in r["limits_ms"].items()) or "none (reference)"
        verdict = " ".join(f"{k} {'PASS' if v else 'MISS'}" if v is not None else f"{k} –" for k, v in r["pass"].items())
        if r["p95_within_target"] is not None:
            verdict += f" (p95 {'within' if r['p95_within_target'] else 'over'})"
        if r["incomplete"]:
            verdict += f"; {r['incomplete']} incomplete"
        waits = "every panel" if len(r["targets"]) == len(ALL_PANELS) else \
            "the response message" if r["targets"] == ["process_completed"] else ", ".join("#" + x for x in r["targets"])
        ta = r.get("total_all_samples", t)
        L.append(f"| {name}{meta['prompt_note'].get(name, '')} | {waits} | {ta.get('n', 0)} ({r.get('n_quiet', '–')}) | "
                 f"{r.get('basis', 'all')} | {fmt(t.get('p50'))} | {fmt(t.get('p95'))} | {fmt(t.get('max'))} | "
                 f"{fmt(ta.get('p50'))} / {fmt(ta.get('p95'))} | {lim} | {verdict} |")
    L += ["", "Where the time goes (medians, ms). *Response* = action → the handler's answer received by the page "
          "(its own clock, window.fetch wrapped: the `process_completed` server-sent event for queued events, the "
          "HTTP response for queue=False ones). *Handler* and "
          "*to_json+msg* = the same handler calls timed in this process (server.handlers; Figure.to_json as "
          "gr.Plot.postprocess does, and the message JSON), so *Gradio + transport* = response − handler − to_json "
          "(client, request, queue, Gradio pre/postprocessing, event stream). *Browser* = response → last panel "
          "drawn (JSON parse, Svelte, Plotly), of which *Plotly.react* = the summed synchronous time of every "
          "Plotly.react call that drew and *reacts/panel* = how many such calls each target panel got per update "
          "(gr.Plot asks twice, once on the div it is about to discard; assets/page.js skips that one). Medians "
          "over the same samples as the verdict (quiet ones when there are enough; likewise for the handler).", "",
          "| Scenario | total | response | handler | to_json+msg | Gradio + transport | browser | Plotly.react | reacts/panel | message kB | largest share |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, r in table.items():
        h, s, resp = r["handler"].get("p50"), r["serialise"].get("p50"), r["response"].get("p50")
        transport = None if None in (h, s, resp) else resp - h - s
        browser = r["browser_render"].get("p50")
        shares = {"handler": (h or 0) + (s or 0), "Gradio + transport": max(transport or 0, 0), "browser": browser or 0}
        whole = sum(shares.values())
        top = max(shares, key=shares.get) if whole else None
        L.append(f"| {name} | {fmt(r['total'].get('p50'))} | {fmt(resp)} | {fmt(h)} | {fmt(s, 1)} | {fmt(transport)} | "
                 f"{fmt(browser)} | {fmt(r['plotly_react_sum'].get('p50'))} | "
                 f"{fmt(r['react_calls_per_panel'], 1)} | {fmt(r['message_kB'], 1)} | "
                 f"{f'{top} ({100 * shares[top] / whole:.0f} %)' if top else '–'} |")
    negative = [n for n, r in table.items() if None not in (r["handler"].get("p50"), r["response"].get("p50"))
                and r["response"]["p50"] < r["handler"]["p50"] + (r["serialise"].get("p50") or 0)]
    if negative:
        L += ["", f"Negative *Gradio + transport* ({', '.join(negative)}): the in-process handler timing ran under "
              "different machine load than the browser run, so the two do not subtract cleanly; the page's own "
              "*response* column is the reliable one."]
    parts = [(n, r["parts_ms"]) for n, r in meta.get("server", {}).items() if r.get("parts_ms")]
    if parts:
        L += ["", "Server parts of Run and Next token (in-process medians, ms): " + "; ".join(
            f"{n}: model {p['model']:.0f}, view (logit lens, neighbours) {p['view (logit lens, neighbours)']:.0f}, "
            f"figures {p['figures (everything)']:.0f}" for n, p in parts) + "."]
    probe = meta.get("plotly_probe") or {}
    if probe:
        L += ["", "Plotly alone in the page, per panel, figure of the 20-token prompt A → prompt B (medians, ms, "
              "synchronous part). gr.Plot re-keys its child on every new value: it would react on the old div and "
              "then draw a fresh div from nothing; with assets/page.js skipping the discarded div an update costs "
              "the fresh draw alone. The last column is what the unpatched path would cost:", "",
              "| Panel | newPlot on a fresh div (what the page pays) | react on the same div | unpatched gr.Plot ≈ react + newPlot |",
              "|---|---:|---:|---:|"]
        for pid, r in probe.items():
            L.append(f"| {pid} | {r['newPlot_ms']:.0f} | {r['react_ms']:.0f} | {r['newPlot_ms'] + r['react_ms']:.0f} |")
        tot_new = sum(r["newPlot_ms"] for r in probe.values())
        tot_react = sum(r["react_ms"] for r in probe.values())
        L.append(f"| all | {tot_new:.0f} | {tot_react:.0f} | {tot_new + tot_react:.0f} |")
    if meta.get("notes"):
        L += [""] + meta["notes"]
    L += ["", f"Prompts: {meta['prompts_text']}. Raw samples: bench/results_ui.json.", ""]
    return "\n".join(L)


def write_results(md: str, data: dict, json_too: bool = True) -> None:
    if json_too:
        RESULTS_JSON.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    replace_section(RESULTS_MD, SECTION, md)


def strip_samples(browser: dict) -> dict:
    out = {}
    for name, ss in browser.items():
        out[name] = [{k: v for k, v in s.items() if k not in ("baseKinds",)} for s in ss]
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--no-wait", action="store_true", help="do not wait for bench/bench_model.py to finish")
    ap.add_argument("--max-wait", type=float, default=600, help="longest wait for bench_model.py (s)")
    ap.add_argument("--quiet-cores", type=float, default=0.3,
                    help="also wait until other processes use fewer cores than this (negative: do not)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/results* alone")
    ap.add_argument("--timeout", type=float, default=30, help="per-sample limit (s)")
    ap.add_argument("--only", help="semicolon-separated scenario names to measure again; the other scenarios keep "
                                   "their samples from bench/results_ui.json")
    ap.add_argument("--from-json", action="store_true",
                    help="no measuring: summarise the samples in bench/results_ui.json again and re-write the section")
    args = ap.parse_args(argv)

    global ONLY
    if args.only:
        ONLY = {x.strip() for x in args.only.split(";") if x.strip()}
        unknown = ONLY - set(SCENARIOS)
        if unknown or not RESULTS_JSON.exists():
            raise SystemExit(f"--only: unknown scenarios {sorted(unknown)} (known: {list(SCENARIOS)})" if unknown
                             else "--only needs a previous full run's bench/results_ui.json")
    if args.from_json:
        data = json.loads(RESULTS_JSON.read_text(encoding="utf-8"))
        meta = data["meta"]
        data["summary"] = summarise(data["server"], data["browser_samples"])   # with this version's rules
        md = markdown(data["summary"], {**meta, "server": data["server"],
                                        "plotly_probe": meta.get("browser_info", {}).get("plotly_probe")})
        print(md)
        if not args.no_write:
            write_results(md, data)
        return

    import gradio

    idle = {"waited_s": 0.0, "bench_model_running_at_start": bool(other_benchmarks())}
    if not args.no_wait:
        idle = wait_for_idle(args.max_wait, quiet_cores=None if args.quiet_cores < 0 else args.quiet_cores)
    idle["load_before"] = load_average()
    idle["other_cpu_before"] = sample_foreign_cpu()
    print(f"GlassGPT page benchmark: {cpu_model()}, {os.cpu_count()} cores; load {idle['load_before']}", flush=True)

    from model import load_model
    lm = load_model(device="cpu")
    prompts = build_prompts(lm)
    for n, pair in prompts.items():
        print(f"  prompts ~{n}: {[c for _, c in pair]} tokens", flush=True)

    print("server side (handlers in this process):", flush=True)
    server = server_side(lm, prompts, args.quick)

    port = free_port()
    app = App(port)
    try:
        ready_s = app.wait_ready()
        print(f"app ready on {app.url} after {ready_s:.1f} s; browser:", flush=True)
        bench_during = other_benchmarks()
        snap, t_snap = proc_snapshot(), time.monotonic()
        browser, binfo = browser_phase(app, prompts, args.quick, int(args.timeout * 1000))
        end_snap, t_end = binfo.pop("snapshot_end")
        idle["other_cpu_during_browser"] = foreign_cpu(snap, end_snap, t_end - t_snap)
        bench_during += other_benchmarks()
    finally:
        app.stop()
    idle["load_after"] = load_average()
    idle["bench_model_seen_during"] = sorted(set(bench_during))

    table = summarise(server, browser)
    during = idle["other_cpu_during_browser"]
    idle_ok = not idle["bench_model_seen_during"] and during["cores"] < 0.15 and idle["other_cpu_before"]["cores"] < 0.15
    idle_text = ("yes" if idle_ok else "NO") + \
        (" (bench_model.py was running)" if idle["bench_model_seen_during"] else "") + \
        f": other processes used {idle['other_cpu_before']['cores']} cores in the 5 s before and " \
        f"{during['cores']} cores on average during the browser runs" + \
        (f" (busiest long-lived: {'; '.join(during['top'][:3])}; short-lived test runs are counted but not "
         f"named)" if during["cores"] >= 0.15 else "") + \
        f"; load average before {idle['load_before']}, after {idle['load_after']}."
    (p20, n20), (p20b, n20b) = prompts[20]
    (p200, n200), (p200b, n200b) = prompts[200]
    meta = {"date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), "cpu": cpu_model(),
            "cores": os.cpu_count(), "browser": binfo["browser"], "gradio": gradio.__version__, "quick": args.quick,
            "idle_text": idle_text,
            "prompt_note": {},
            "prompts_text": (f"~20 tokens = two word prefixes of fixed prose with {n20} and {n20b} tokens (alternated); "
                             f"~200 tokens = {n200} and {n200b} tokens (alternated); sampling, layer, head and next-token "
                             f"samples start from the first 20-token prompt ({n20} tokens; next token re-runs it every "
                             f"6 tokens); 'layer (button), 200-tok' has the {n200b}-token prompt on the page"),
            "notes": [f"Page first load {binfo['first_load_s']} s; animation frame on the idle page "
                      f"{binfo['rAF_idle_frame_ms']} ms (the resolution of the panel timings); "
                      f"page errors: {len(binfo['page_errors'])}."]}
    data = {"meta": {**meta, "idle": idle, "browser_info": binfo, "python": sys.version.split()[0],
                     "prompts": {str(n): [{"text": t, "tokens": c} for t, c in pair] for n, pair in prompts.items()}},
            "summary": table, "server": server, "browser_samples": strip_samples(browser)}
    if ONLY:   # merge into the last run: these scenarios' samples replaced, the rest kept
        old = json.loads(RESULTS_JSON.read_text(encoding="utf-8"))
        for name in ONLY:
            old["server"][name] = server.get(name, {})
            old["browser_samples"][name] = data["browser_samples"].get(name, [])
        old["meta"].setdefault("remeasured", {})
        for name in ONLY:
            old["meta"]["remeasured"][name] = {"date": meta["date"], "idle_text": idle_text, "idle": idle}
        groups = {}
        for name, r in old["meta"]["remeasured"].items():
            groups.setdefault((r["date"], r["idle_text"]), []).append(name)
        old["meta"]["notes"] = [n for n in old["meta"].get("notes", []) if not n.startswith("Re-measured")] + [
            f"Re-measured {date} (`--only`): {', '.join(names)}. Machine idle then: {text}"
            for (date, text), names in groups.items()]
        data = old
        data["summary"] = table = summarise(data["server"], data["browser_samples"])
        meta, server = data["meta"], data["server"]
        binfo = meta.get("browser_info", {})
    md = markdown(table, {**meta, "server": server, "plotly_probe": binfo.get("plotly_probe")})
    print()
    print(md)
    if not args.no_write:
        write_results(md, data)
        print(f"wrote {RESULTS_MD.relative_to(ROOT)} (section '{SECTION}') and {RESULTS_JSON.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
