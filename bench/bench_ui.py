"""Benchmark of the page as a person uses it: from a user action to every affected panel in view redrawn.

    .venv/bin/python bench/bench_ui.py              # full run (about 5 minutes on 2 cores)
    .venv/bin/python bench/bench_ui.py --quick      # fewer repetitions
    .venv/bin/python bench/bench_ui.py --no-write   # print only

The real app (`python app.py --port P`, a subprocess) is driven by Chromium through Playwright with
the browser tests' flags (tests/browser/support.py). bench/page_probe.js takes t0 when the action's
first event reaches the page (mousedown, keydown, input) and ends the sample in the first frame in
which the action's result is there (the layer shown, the chips of a new prompt, ...) and every plot
panel in view shows what it was last given; panels out of view are drawn later, when idle or
scrolled to, and are not waited for (that is the design: assets/plots.js). Each sample also
records Plotly's share (the draws that finished during it) and the worst gap between frames.

Scenarios (each alternates values so that every sample changes what it waits for): layer step by
button and by arrow key (20 and 200 tokens, attention in view), head change, temperature / top-k /
top-p (distribution in view), chip click (focus; a server round trip), Run on a 20-token prompt
(first panels, then all), Next token, Generate 10 tokens (frame gaps throughout). The physical floor:
one animation frame, and the model's own forward (20 tokens) and decode step, timed in this process.
Writes the table to bench/results.md (section "## Page (bench/bench_ui.py)") and the samples to
bench/results_ui.json.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from browser.support import CHROMIUM_FLAGS, chromium_path, free_port  # noqa: E402  one definition of both
from results_file import replace_section  # noqa: E402  bench/, this script's folder

BENCH = ROOT / "bench"
RESULTS_MD, RESULTS_JSON = BENCH / "results.md", BENCH / "results_ui.json"
SECTION = "## Page (bench/bench_ui.py)"
PYTHON = ROOT / ".venv" / "bin" / "python"
PROSE = ("The old lighthouse keeper climbed the winding stairs every evening to light the great lamp, and "
         "the ships that passed the rocky coast in the dark trusted its beam to guide them safely home. ")
TARGETS = {   # action -> p50 target in ms (issue: the core loop, fast), p95 target = 2x
    "layer step (button), 20 tokens": 150, "layer step (arrow key), 20 tokens": 150,
    "layer step (button), 200 tokens": 400, "head change, 20 tokens": 100,
    "temperature": 50, "top-k": 50, "top-p": 50, "chip click (focus)": 300,
    "Run 20 tokens: first panels": 600, "Run 20 tokens: all panels": 1200, "Next token": 700,
    "Generate 10 tokens": 3000,
}


def pct(xs, q):
    s = sorted(xs)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(samples: list[dict]) -> dict:
    ms = [s["ms"] for s in samples]
    return {"n": len(ms), "p50": pct(ms, 50), "p95": pct(ms, 95),
            "plotly_p50": pct([s["plotly_ms"] for s in samples], 50),
            "worst_gap": max(s["worst_gap_ms"] for s in samples)}


def marker(lm, text: str) -> str:
    """Text the chips show once `text` has run: its last token's label."""
    return lm.tokenizer.pieces(lm.tokenize(text)[-1:])[0].display


def cut_prompt(lm, n: int) -> str:
    ids = lm.tokenize(PROSE * (n // 20 + 2))[:n]
    return lm.decode(ids)


def other_cpu(seconds: float = 3.0) -> float:
    """Cores used by processes other than this one and its children, over `seconds`."""
    import psutil
    me = {os.getpid()} | {c.pid for c in psutil.Process().children(recursive=True)}
    def snap():
        out = {}
        for p in psutil.process_iter(["pid"]):
            try:
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
            except psutil.Error:
                pass
        return out
    a = snap()
    time.sleep(seconds)
    b = snap()
    return sum(b[p] - a.get(p, b[p]) for p in b if p not in me) / seconds


class App:
    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/"
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([str(PYTHON), "app.py", "--port", str(port)], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=lambda: [self.lines.append(l.rstrip()) for l in self.proc.stdout], daemon=True).start()

    def wait_ready(self, timeout: float = 240.0):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                break
            try:
                if urllib.request.urlopen(self.url, timeout=5).status == 200:
                    return
            except OSError:
                time.sleep(0.5)
        raise SystemExit("the app did not start:\n" + "\n".join(self.lines[-30:]))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Page:
    def __init__(self, page, timeout_ms: int):
        self.page, self.timeout = page, timeout_ms

    def sample(self, action, condition: str, arg: dict | None = None) -> dict:
        self.page.evaluate("([c, a]) => GGBench.arm(c, a)", [condition, arg or {}])
        action()
        return self.page.evaluate("([c, a, t]) => GGBench.done(c, a, t)", [condition, arg or {}, self.timeout])

    def in_view(self, panel: str) -> None:
        """Scroll the panel into view and wait until the page counts it as visible."""
        self.page.locator(f"#{panel}").scroll_into_view_if_needed()
        self.page.wait_for_function(f"GG.panels['{panel}'] && GG.panels['{panel}'].visible", timeout=self.timeout)
        self.page.wait_for_timeout(500)

    def value(self, elem_id: str) -> int:
        return int(float(self.page.input_value(f"#{elem_id} input[type=number]")))

    def run(self, text: str, marker: str):
        self.page.fill("#prompt textarea", text)
        self.page.click("#run")
        self.page.wait_for_function("(m) => document.querySelector('#tokens').innerText.includes(m)", arg=marker,
                                    timeout=self.timeout)

    def hold_all_layers(self, timeout_ms: int = 90_000):
        self.page.wait_for_function("GG.layers.held().length === 30", timeout=timeout_ms)


def browser_phase(url: str, lm, reps: int, timeout_ms: int) -> dict:
    from playwright.sync_api import sync_playwright

    res: dict[str, list] = {}
    p20 = cut_prompt(lm, 20)
    p200 = cut_prompt(lm, 200)
    with sync_playwright() as pw:
        path = chromium_path()
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS) if path else pw.chromium.launch(args=CHROMIUM_FLAGS)
        ctx = browser.new_context(viewport={"width": 1440, "height": 900})
        ctx.add_init_script(path=str(BENCH / "page_probe.js"))
        page = ctx.new_page()
        page.goto(url)
        page.wait_for_selector("#tokens button.gg-chip", timeout=120_000)
        d = Page(page, timeout_ms)
        res["frame"] = page.evaluate("GGBench.frame()")

        def collect(name, n, one):
            out = []
            for i in range(n):
                out.append(one(i))
            res[name] = out
            print(f"  {name}: p50 {pct([s['ms'] for s in out], 50):.0f} ms", flush=True)

        d.run(p20, marker(lm, p20))
        d.hold_all_layers()
        # Arrow keys step the layer when no text box has the focus; the panel measured must be in view
        # (a panel out of view is drawn later, when it scrolls in, so a step would "cost" nothing).
        page.evaluate("document.activeElement && document.activeElement.blur()")
        d.in_view("attention")

        def step(i, key: bool):
            up = d.value("layer") < 29 and (i % 12) < 6
            target = d.value("layer") + (1 if up else -1)
            if key:
                act = lambda: page.keyboard.press("ArrowRight" if up else "ArrowLeft")
            else:
                act = lambda: page.click("#layer-next" if up else "#layer-prev")
            if not page.evaluate("GG.panels.attention.visible"):
                raise SystemExit("the attention panel left the view: the layer steps would measure nothing")
            return d.sample(act, "layer", {"layer": target, "head": d.value("head")})
        collect("layer step (button), 20 tokens", reps, lambda i: step(i, False))
        collect("layer step (arrow key), 20 tokens", reps, lambda i: step(i, True))

        def head(i):
            h = (d.value("head") + 1) % 9
            return d.sample(lambda: page.locator("#head input[type=range]").fill(str(h)), "layer",
                            {"layer": d.value("layer"), "head": h})
        collect("head change, 20 tokens", reps, head)

        d.in_view("distribution")
        for ctl, values in (("temperature", ("0.7", "1.3")), ("top-k", ("5", "40")), ("top-p", ("0.9", "0.5"))):
            def move(i, ctl=ctl, values=values):
                box = page.locator(f"#{ctl} input[type=number]")
                return d.sample(lambda: (box.fill(values[i % 2]), box.press("Enter")), "sampling")
            collect(ctl, reps, move)
        for ctl, v in (("temperature", "1"), ("top-k", "0"), ("top-p", "1")):
            page.locator(f"#{ctl} input[type=number]").fill(v)
            page.locator(f"#{ctl} input[type=number]").press("Enter")

        page.locator("#tokens").scroll_into_view_if_needed()
        n = len(lm.tokenize(p20))
        collect("chip click (focus)", reps, lambda i: d.sample(
            lambda: page.click(f"#tokens button.gg-chip[data-pos='{(i * 3 + 2) % n}']"), "focus", {"pos": (i * 3 + 2) % n}))

        prompts = [lm.decode(lm.tokenize(start + PROSE)[:20]) for start in ("A quiet river ran beside the village where ",
                                                                            "Every morning the baker opened the shop and ")]
        runs_first, runs_all = [], []
        for i in range(max(3, reps // 2)):
            text = prompts[i % 2]
            mark = marker(lm, text)
            page.fill("#prompt textarea", text)
            page.evaluate("(a) => GGBench.arm('first', a)", {"marker": mark})
            page.click("#run")
            runs_first.append(page.evaluate("([a, t]) => GGBench.done('first', a, t)", [{"marker": mark}, timeout_ms]))
            t_first = runs_first[-1]["ms"]
            page.evaluate("(a) => GGBench.rewatch('all', a)", {"marker": mark})     # same t0: the click
            rest = page.evaluate("([a, t]) => GGBench.done('all', a, t)", [{"marker": mark}, timeout_ms])
            runs_all.append(rest)
            print(f"  Run 20: first {t_first:.0f} ms, all {rest['ms']:.0f} ms", flush=True)
            page.wait_for_timeout(1500)
        res["Run 20 tokens: first panels"], res["Run 20 tokens: all panels"] = runs_first, runs_all

        page.locator("#next-token").scroll_into_view_if_needed()
        collect("Next token", max(3, reps // 2), lambda i: d.sample(lambda: page.click("#next-token"), "chips", {"more": 1}))
        page.locator("#n-tokens input[type=number]").fill("10")
        page.locator("#n-tokens input[type=number]").press("Enter")
        gens = []
        for i in range(2):
            d.run(prompts[i % 2], marker(lm, prompts[i % 2]))
            page.locator("#generate").scroll_into_view_if_needed()
            page.wait_for_timeout(1000)
            gens.append(d.sample(lambda: page.click("#generate"), "chips", {"more": 10}))
            print(f"  Generate 10: {gens[-1]['ms']:.0f} ms, worst frame gap {gens[-1]['worst_gap_ms']:.0f} ms", flush=True)
        res["Generate 10 tokens"] = gens

        # 200 tokens: the page holds one layer per answer at first and fetches the rest while idle.
        d.run(p200, marker(lm, p200))
        d.in_view("attention")
        t = time.monotonic()
        d.hold_all_layers(120_000)
        res["200 tokens: every layer held after (s)"] = time.monotonic() - t
        page.evaluate("() => GG.layers.setSlider('layer', 0)")
        page.wait_for_timeout(800)
        d.in_view("attention")
        collect("layer step (button), 200 tokens", reps, lambda i: step(i, False))
        browser.close()
    return res


def model_floor(lm, p20: str) -> dict:
    tr = lm.trace(p20)
    lm.step(tr, tr.token_ids[-1])
    fw, st = [], []
    for _ in range(5):
        t = time.perf_counter(); tr = lm.trace(p20); fw.append(time.perf_counter() - t)
        t = time.perf_counter(); lm.step(tr, tr.token_ids[-1]); st.append(time.perf_counter() - t)
    return {"trace_20_ms": statistics.median(fw) * 1e3, "step_ms": statistics.median(st) * 1e3}


def markdown(res: dict, floor: dict, meta: dict) -> str:
    rows = ["| action → panels in view redrawn | target p50 | p50 | p95 | result | Plotly (p50) | worst frame gap |",
            "|---|---:|---:|---:|---|---:|---:|"]
    for name, target in TARGETS.items():
        if name not in res:
            continue
        s = summary(res[name])
        ok = s["p50"] <= target and s["p95"] <= 2 * target
        rows.append(f"| {name} | {target:,} ms | {s['p50']:,.0f} ms | {s['p95']:,.0f} ms | {'met' if ok else 'missed'} "
                    f"| {s['plotly_p50']:,.0f} ms | {s['worst_gap']:,.0f} ms |")
    rows.append(f"| physical floor: one animation frame | | {res['frame']:.1f} ms | | | | |")
    rows.append(f"| physical floor: the model's forward, 20 tokens (lm.trace) | | {floor['trace_20_ms']:.0f} ms | | | | |")
    rows.append(f"| physical floor: the model's decode step with capture (lm.step) | | {floor['step_ms']:.0f} ms | | | | |")
    held = res.get("200 tokens: every layer held after (s)")
    notes = [
        f"Run of {meta['date']} on {meta['machine']}; other processes used {meta['other_cores_before']:.2f} cores "
        f"before the run{' (a quiet machine)' if meta['other_cores_before'] < 0.3 else ' (a busy machine: numbers say little)'}.",
        "Layer, head, temperature, top-k and top-p are drawn in the page (no request); a chip click, Run, Next token "
        "and Generate ask the server. Everything not Plotly is the page's own work (patching, JSON, Gradio) or, for "
        "server actions, the server and transport.",
    ]
    if held is not None:
        notes.append(f"200 tokens: the first answer holds the current layer; the page fetched the other layers while "
                     f"idle and held all 30 after {held:.1f} s; the steps above were measured after that.")
    return SECTION + "\n\n" + "\n".join(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/results* alone")
    ap.add_argument("--timeout", type=float, default=60, help="per-sample limit (s)")
    args = ap.parse_args(argv)
    from model import load_model

    lm = load_model(device="cpu")
    floor = model_floor(lm, cut_prompt(lm, 20))
    before = other_cpu()
    app = App(free_port())
    try:
        app.wait_ready()
        res = browser_phase(app.url, lm, 6 if args.quick else 12, int(args.timeout * 1000))
    finally:
        app.stop()
    import psutil
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, Chromium (software rendering)",
            "other_cores_before": before}
    md = markdown(res, floor, meta)
    print(md)
    if not args.no_write:
        replace_section(RESULTS_MD, SECTION, md)
        RESULTS_JSON.write_text(json.dumps({"meta": meta, "floor": floor, "samples": res}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
