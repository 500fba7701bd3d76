// GlassGPT page behaviour that Gradio has no component for:
// arrow keys step through layers, and a click on a head overview selects that head.
(function () {
  function typingInto(el) {
    if (!el) return false;
    const tag = (el.tagName || "").toLowerCase();
    return tag === "textarea" || tag === "select" || el.isContentEditable ||
      (tag === "input" && !["range", "checkbox", "radio", "button"].includes((el.type || "").toLowerCase()));
  }
  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey || typingInto(e.target)) return;
    if (e.target && (e.target.type || "").toLowerCase() === "range") return;  // sliders handle their own arrows
    const id = e.key === "ArrowLeft" ? "layer-prev" : e.key === "ArrowRight" ? "layer-next" : null;
    const button = id && document.getElementById(id);
    if (button) { e.preventDefault(); button.click(); }
  });

  function currentLayer() {
    const box = document.querySelector("#layer input[type=number]");
    return box ? box.value : "0";
  }
  function sendPick(layer, head) {
    // window.ggPickHead is installed by the hidden #head-pick element (a Gradio custom event).
    if (typeof window.ggPickHead === "function") window.ggPickHead(Number(layer), Number(head));
  }
  // Plotly figures are re-created on every update: bind click handlers to new ones as they appear.
  function bindHeadClicks() {
    for (const [id, withLayer] of [["attention-heads", false], ["attention-all", true]]) {
      const plot = document.querySelector("#" + id + " .js-plotly-plot");
      if (!plot || plot.__ggBound || typeof plot.on !== "function") continue;
      plot.__ggBound = true;
      plot.on("plotly_click", function (ev) {
        let cd = ev && ev.points && ev.points[0] && ev.points[0].customdata;
        if (cd === undefined || cd === null) return;
        // Plotly may hand customdata back as a typed array: normalise to a plain list of numbers.
        cd = typeof cd === "object" && cd.length !== undefined ? Array.from(cd) : [cd];
        if (withLayer && cd.length >= 2) sendPick(cd[0], cd[1]);
        else sendPick(currentLayer(), cd[cd.length - 1]);
      });
    }
  }
  setInterval(bindHeadClicks, 400);

  // Gradio's gr.Plot answers a new figure twice: Plotly.react (+ a resize) on its old div, and then,
  // because it re-creates its child, a full draw on a fresh div; the old div is thrown away at
  // once. Deferring each draw by a microtask and skipping the ones whose div has left the page by
  // then halves the cost of every panel update. The promise returned still settles when the draw
  // that counts is done.
  function skipDrawsOnDiscardedDivs() {
    const P = window.Plotly;
    if (!P || P.__ggDeferred) return;
    const counts = P.__ggCounts = {drawn: 0, skipped: 0};    // read by tests and bench/bench_ui.py
    // The real draws, looked up at call time so that bench/bench_ui.py can time them.
    const original = P.__ggOriginal = {react: P.react, resize: P.Plots.resize};
    const deferred = (name) => function (gd, ...rest) {
      return new Promise((resolve, reject) => {
        Promise.resolve().then(() => Promise.resolve()).then(() => {
          if (gd && gd.isConnected === false) { counts.skipped += 1; resolve(gd); return; }
          counts.drawn += 1;
          try { Promise.resolve(original[name].call(P, gd, ...rest)).then(resolve, reject); } catch (e) { reject(e); }
        });
      });
    };
    P.react = deferred("react");
    P.Plots.resize = deferred("resize");
    P.__ggDeferred = true;
  }
  const plotlyWatch = setInterval(() => { if (window.Plotly) { skipDrawsOnDiscardedDivs(); clearInterval(plotlyWatch); } }, 50);

  // Keep the address bar in step with the page so that the link reopens the same view.
  function valueOf(selector) {
    const el = document.querySelector(selector);
    return el ? el.value : null;
  }
  const MAX_URL_PROMPT = 2000;
  function syncUrl() {
    const prompt = valueOf("#prompt textarea");
    if (prompt === null) return;
    const focus = document.querySelector("#tokens button.gg-chip-focus");
    const chat = document.querySelector("#chat input[type=checkbox]");
    const state = {
      // A long prompt stays out of the address (browsers and servers cap URL length).
      prompt: prompt.length <= MAX_URL_PROMPT ? prompt : null, chat: chat && chat.checked ? "1" : null,
      t: valueOf("#temperature input[type=number]"), k: valueOf("#top-k input[type=number]"),
      p: valueOf("#top-p input[type=number]"), seed: valueOf("#seed input"),
      layer: valueOf("#layer input[type=number]"), head: valueOf("#head input[type=number]"),
      focus: focus ? focus.dataset.pos : null,
    };
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(state)) if (value !== null && value !== "") params.set(key, value);
    let query = "?" + params.toString();
    if (query.length > 8000) { params.delete("prompt"); query = "?" + params.toString(); }
    if (query !== window.location.search) history.replaceState(null, "", query + window.location.hash);
  }
  // Start only once the person acts: until then the address may still hold a shared link that the
  // page is about to replay, and overwriting it would replay the defaults instead.
  let syncing = false;
  function startSync() {
    if (syncing) return;
    syncing = true;
    setInterval(syncUrl, 700);
  }
  for (const type of ["pointerdown", "keydown", "input"]) document.addEventListener(type, startSync, true);
})();
