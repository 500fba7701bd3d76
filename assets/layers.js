// Layer and head in the page: the server sends each layer panel's figure for one layer and head
// plus patches for the others (server/layer_data.py); stepping layers, changing the head or
// picking a head in an overview redraws from those, without a request. A layer outside the
// window the server sent is asked for (a `need_layer` event) and drawn when it arrives.
(function () {
  const GG = window.GG = window.GG || {};
  // windows: the responses of one version (same trace, focus and view options), each a base
  // figure per panel plus patches for some layers; a response of another version replaces them.
  const state = {windows: [], version: null, trigger: null, asked: null, prefetchTimer: null};
  const PREFETCH_IDLE_MS = 300;
  GG.layerRequests = 0;           // read by tests: how often the page had to ask the server

  function sliderValue(id) {
    const box = document.querySelector(`#${id} input[type=number]`);
    return box ? Number(box.value) : 0;
  }
  function sliderMax(id) {
    const range = document.querySelector(`#${id} input[type=range]`);
    return range ? Number(range.max) : 0;
  }
  // Move a Gradio slider: its range input's input event updates Gradio's own value (so the next
  // server event reads it), and the number box follows.
  function setSlider(id, value) {
    const range = document.querySelector(`#${id} input[type=range]`);
    const box = document.querySelector(`#${id} input[type=number]`);
    if (box) box.value = String(value);
    if (range && range.value !== String(value)) {
      range.value = String(value);
      range.dispatchEvent(new Event("input", {bubbles: true}));
    }
  }

  function resolve(value, arrays) {
    if (value && typeof value === "object" && value.$a !== undefined) return Object.assign({}, arrays[value.$a]);
    if (Array.isArray(value)) return value.map((v) => resolve(v, arrays));
    if (value && typeof value === "object") {
      const out = {};
      for (const k in value) out[k] = resolve(value[k], arrays);
      return out;
    }
    return value;
  }
  // Copy-on-write: only the containers along each patched path are copied.
  function applyPatch(base, patch, arrays) {
    const fig = {data: base.data.slice(), layout: Object.assign({}, base.layout)};
    for (const path in patch) {
      const keys = path.split(".");
      let node = fig;
      for (let i = 0; i < keys.length - 1; i++) {
        const k = keys[i];
        const child = node[k];
        node[k] = Array.isArray(child) ? child.slice() : Object.assign({}, child);
        node = node[k];
      }
      node[keys[keys.length - 1]] = resolve(patch[path], arrays);
    }
    return fig;
  }

  function figureFor(pid, layer, head) {
    for (const w of state.windows) {
      const p = w.panels[pid];
      if (!p) continue;
      const key = p.by === "layer" ? String(layer) : `${layer}.${head}`;
      const baseKey = p.by === "layer" ? String(w.layer) : `${w.layer}.${w.head}`;
      if (key === baseKey) return p.base;
      const patch = p.patches[key];
      if (patch) return applyPatch(p.base, patch, w.arrays);
    }
    return null;
  }
  function held() {
    const layers = new Set();
    for (const w of state.windows) for (const l of w.layers) layers.add(l);
    return layers;
  }
  const panelIds = () => (state.windows[0] ? Object.keys(state.windows[0].panels) : []);

  function draw() {
    if (!state.windows.length) return;
    const layer = sliderValue("layer"), head = sliderValue("head");
    let missing = false;
    for (const pid of panelIds()) {
      const fig = figureFor(pid, layer, head);
      const panel = GG.panels && GG.panels[pid];
      if (!fig) { missing = true; continue; }
      if (panel) panel.set(fig, "");
    }
    GG.refreshMarks();
    if (GG.markHere) GG.markHere();
    if (missing) ask(layer, head);
  }

  function ask(layer, head) {
    const key = `${layer}.${head}`;
    if (!state.trigger || state.asked === key) return;
    state.asked = key;
    GG.layerRequests += 1;
    state.trigger("need_layer", {layer, head});
  }
  // While the page is idle, fetch the layers it does not hold yet, nearest to the current first,
  // so that stepping later never waits for the server.
  function prefetchSoon(delay = PREFETCH_IDLE_MS) {
    clearTimeout(state.prefetchTimer);
    state.prefetchTimer = setTimeout(() => {
      if (GG.quietMs && GG.quietMs() < PREFETCH_IDLE_MS) { prefetchSoon(PREFETCH_IDLE_MS - GG.quietMs()); return; }
      if (!state.trigger || !state.windows.length) return;
      const have = held(), n = state.windows[0].n_layer, at = sliderValue("layer");
      const missing = [];
      for (let l = 0; l < n; l++) if (!have.has(l)) missing.push(l);
      if (!missing.length) return;
      missing.sort((a, b) => Math.abs(a - at) - Math.abs(b - at) || a - b);
      GG.layerPrefetches = (GG.layerPrefetches || 0) + 1;
      state.trigger("need_layer", {layer: missing[0], head: sliderValue("head"), layers: missing});
      prefetchSoon(3000);      // if nothing came back (the session was not stored yet), ask again later
    }, delay);
  }

  // ---- marks: the current layer and head outlined on the overviews (layout.meta.gg_mark) --------
  function markShape(mark, layer, head) {
    const line = {color: "#e66100", width: 3};
    if (mark.kind === "cell") return {type: "rect", x0: head - 0.5, x1: head + 0.5, y0: layer - 0.5, y1: layer + 0.5, line};
    if (mark.kind === "row") {
      const y = layer + (mark.offset || 0);
      return {type: "rect", xref: "x domain", x0: 0, x1: 1, y0: y - 0.5, y1: y + 0.5, line};
    }
    if (mark.kind === "column") {
      return {type: "rect", yref: "paper", x0: layer - 0.5, x1: layer + 0.5, y0: 0, y1: 1, line: {color: "#e66100", width: 2.5}};
    }
    if (mark.kind === "head-block") {
      const x0 = head * (mark.block + mark.gap) - 0.5;
      return {type: "rect", xref: "x", yref: "y domain", x0, x1: x0 + mark.block, y0: 0, y1: 1, line: {color: "#e66100", width: 2.5}};
    }
    return null;
  }
  // Called by plots.js before each draw: the figure plus the mark for the current layer and head.
  GG.markFor = function (fig) {
    const mark = fig && fig.layout && fig.layout.meta && fig.layout.meta.gg_mark;
    const shape = mark && markShape(mark, sliderValue("layer"), sliderValue("head"));
    return shape ? Object.assign({name: "gg-mark"}, shape) : null;
  };
  GG.decorate = function (id, fig) {
    const shape = GG.markFor(fig);
    if (!shape) return fig;
    const layout = Object.assign({}, fig.layout, {shapes: (fig.layout.shapes || []).concat([shape])});
    return Object.assign({}, fig, {layout});
  };
  GG.refreshMarks = function () {
    for (const p of Object.values(GG.panels || {})) {
      const mark = p.wanted && p.wanted.layout && p.wanted.layout.meta && p.wanted.layout.meta.gg_mark;
      if (mark) p.redecorate();
    }
  };

  // ---- the controls -----------------------------------------------------------------------------
  let pending = false;
  function drawSoon() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  }
  function step(delta) {
    const layer = Math.min(Math.max(sliderValue("layer") + delta, 0), sliderMax("layer"));
    setSlider("layer", layer);
    draw();
  }
  GG.layers = {
    step, draw, setSlider, figureFor: (pid, l, h) => figureFor(pid, l, h),
    held: () => Array.from(held()).sort((a, b) => a - b),
    version: () => state.version,
    pick(layer, head) { setSlider("layer", layer); setSlider("head", head); draw(); },
  };

  document.addEventListener("click", (e) => {
    const t = e.target && e.target.closest && e.target.closest("#layer-prev, #layer-next");
    if (t) step(t.id === "layer-next" ? +1 : -1);
  });
  for (const type of ["input", "change"]) {
    document.addEventListener(type, (e) => {
      const owner = e.target && e.target.closest && e.target.closest("#layer, #head");
      if (!owner) return;
      if (e.target.type === "range") {
        const box = owner.querySelector("input[type=number]");
        if (box && box.value !== e.target.value) box.value = e.target.value;
      }
      drawSoon();
    }, true);
  }

  // Called from the hidden #layer-data component's js_on_load (server/page.py).
  GG.mountLayerData = function (element, props, watch, trigger) {
    state.trigger = trigger;
    const update = () => {
      if (!props.value) return;
      const data = typeof props.value === "string" ? JSON.parse(props.value) : props.value;
      if (data.prefetch && data.version !== state.version) return;   // fetched for figures the page no longer shows
      if (data.version !== state.version) { state.windows = []; state.version = data.version; }
      state.windows.push(data);
      state.asked = null;
      draw();
      prefetchSoon();
    };
    watch("value", update);
    update();
    prefetchSoon(1500);      // the first view: give the page load time to store the session
  };
})();
