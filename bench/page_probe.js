// Injected by bench/bench_ui.py: times what a person waits for, from the first event of an
// action (mousedown, keydown, input or change reaching the page) to the frame in which every
// panel in view shows what it was last given (assets/plots.js panels: shown === wanted, no draw
// in progress). Also records Plotly's share (the draws finished during the wait) and frame gaps.
// The condition is given when the wait is armed and checked in every frame from the action on, so
// the time does not include the benchmark's own round trips to the browser (a settled check that
// started only when the driver asked would count them).
(function () {
  const B = window.GGBench = {t0: null, armed: false, gaps: [], lastFrame: performance.now()};
  for (const type of ["mousedown", "keydown", "input", "change"]) {
    document.addEventListener(type, () => { if (B.armed && B.t0 === null) B.t0 = performance.now(); }, true);
  }
  (function frame() {
    const now = performance.now();
    if (B.armed && B.watch && B.t0 !== null && B.settledAt === null) {
      try {
        if (CONDITIONS[B.watch.name](B.watch.arg) && inViewSettled()) B.settledAt = now;
      } catch (e) { /* the page is still mounting */ }
    }
    B.gaps.push(now - B.lastFrame);
    if (B.gaps.length > 5000) B.gaps.splice(0, 2500);
    B.lastFrame = now;
    requestAnimationFrame(frame);
  })();

  const panels = () => Object.values(window.GG && GG.panels || {});
  const inViewSettled = () => panels().every((p) => !p.visible || (p.shown === p.wanted && !p.drawing));
  const chips = () => document.querySelectorAll("#tokens button.gg-chip").length;

  B.arm = function (name, arg) {
    B.watch = name ? {name, arg: arg || {}} : null; B.settledAt = null;
    B.t0 = null; B.armed = true; B.gapsFrom = B.gaps.length;
    B.chips0 = chips(); B.redraws0 = GG.samplingRedraws || 0; B.version0 = GG.layers.version();
    B.drawn0 = GG.plotCounts.drawn;
  };

  const CONDITIONS = {
    layer: (arg) => Number(document.querySelector("#layer input[type=number]").value) === arg.layer &&
      Number(document.querySelector("#head input[type=number]").value) === arg.head &&
      GG.panels.attention.wanted && GG.panels.attention.wanted.layout.title.text.startsWith(`Layer ${arg.layer} · head h${arg.head} `),
    sampling: () => (GG.samplingRedraws || 0) > B.redraws0,
    focus: (arg) => !!document.querySelector(`#tokens button.gg-chip-focus[data-pos='${arg.pos}']`) &&
      GG.layers.version() !== B.version0,
    first: (arg) => document.querySelector("#tokens").innerText.includes(arg.marker) && (GG.samplingRedraws || 0) > B.redraws0,
    all: (arg) => CONDITIONS.first(arg) && !document.querySelector("#neighbours .gg-computing") &&
      GG.panels["logit-lens"].wanted !== null && GG.layers.held().length > 1,
    chips: (arg) => chips() >= B.chips0 + arg.more,
  };

  // -> {ms, plotly_ms, worst_gap_ms}; rejects after timeout_ms.
  B.rewatch = function (name, arg) { B.watch = {name, arg: arg || {}}; B.settledAt = null; B.armed = true; };
  B.done = function (name, arg, timeoutMs) {
    return new Promise((resolve, reject) => {
      const start = performance.now();
      const watched = B.watch && B.watch.name === name;
      const tick = () => {
        const now = watched ? B.settledAt : performance.now();
        if (watched ? B.settledAt !== null : (B.t0 !== null && CONDITIONS[name](arg || {}) && inViewSettled())) {
          B.armed = false;
          let plotly = 0;
          for (const p of panels()) if (p.div.__ggDrawnAt > B.t0 && p.lastDrawMs) plotly += p.lastDrawMs;
          const gaps = B.gaps.slice(B.gapsFrom);
          resolve({ms: now - B.t0, plotly_ms: plotly, worst_gap_ms: gaps.length ? Math.max(...gaps) : 0,
                   draws: GG.plotCounts.drawn - B.drawn0});
          return;
        }
        if (performance.now() - start > timeoutMs) { B.armed = false; reject(new Error(`timed out waiting for ${name}`)); return; }
        requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
  };

  // One animation frame on this machine: the floor of any redraw.
  B.frame = () => new Promise((resolve) => {
    const ts = [];
    const f = (t) => { ts.push(t); if (ts.length < 61) requestAnimationFrame(f); else {
      const d = ts.slice(1).map((t, i) => t - ts[i]).sort((a, b) => a - b); resolve(d[Math.floor(d.length / 2)]); } };
    requestAnimationFrame(f);
  });
})();
