// Persistent figures: every plot panel keeps ONE Plotly div for the life of the page and is
// updated with Plotly.react (a fresh div per update costs a full draw). A panel outside the
// viewport keeps the newest figure it was given and draws it when it scrolls into view, or once
// the page has been idle for a moment; the panels in view are drawn first.
(function () {
  const GG = window.GG = window.GG || {};
  const IDLE_MS = 400;                 // offscreen panels wait this long after the last update
  const counts = GG.plotCounts = {drawn: 0, superseded: 0};   // read by tests and bench/bench_ui.py
  const panels = GG.panels = {};       // elem_id -> panel

  function config(id) {
    return {responsive: true, displaylogo: false, scrollZoom: false,
            modeBarButtonsToRemove: ["select2d", "lasso2d"],
            toImageButtonOptions: {format: "png", filename: "glassgpt-" + id, scale: 2}};
  }

  let observer = null;
  function watchVisibility(panel) {
    if (!("IntersectionObserver" in window)) { panel.visible = true; return; }
    if (!observer) {
      observer = new IntersectionObserver((entries) => {
        for (const e of entries) {
          const p = e.target.__ggPanel;
          if (!p) continue;
          p.visible = e.isIntersecting;
          if (p.visible) p.flush();
        }
      }, {rootMargin: "0px"});
    }
    observer.observe(panel.host);
  }

  // Offscreen panels are drawn one at a time once updates have stopped for IDLE_MS, each draw
  // followed by a pause so that input is never blocked for long.
  // Activity: the page marks the moments the server's answers change the text (page.js); while
  // tokens stream in, offscreen draws and layer prefetches wait, so they never compete with them.
  GG.lastActivity = 0;
  GG.markActivity = () => { GG.lastActivity = performance.now(); };
  GG.quietMs = () => performance.now() - GG.lastActivity;

  let idleTimer = null;
  function scheduleIdleDraws(delay = IDLE_MS) {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      if (GG.quietMs() < IDLE_MS) { scheduleIdleDraws(IDLE_MS - GG.quietMs()); return; }
      const next = Object.values(panels).find((p) => !p.visible && p.wanted !== p.shown && !p.drawing);
      if (next) next.flush().then(() => scheduleIdleDraws(30));
    }, delay);
  }

  // A hint is text, or {en, zh}: both are written and the page's CSS shows the language it speaks.
  function showHint(el, hint) {
    el.replaceChildren();
    if (typeof hint === "string") { el.textContent = hint; return; }
    for (const lang of ["en", "zh"]) {
      const span = document.createElement("span");
      span.className = "gg-" + lang;
      span.textContent = hint[lang] || "";
      el.append(span);
    }
  }

  class Panel {
    constructor(host, id) {
      this.id = id;
      this.host = host;
      host.__ggPanel = this;
      this.div = document.createElement("div");
      this.div.className = "gg-plot";
      this.hint = document.createElement("p");
      this.hint.className = "gg-plot-hint";
      host.append(this.hint, this.div);
      this.wanted = null;       // newest figure given (object) or null for "empty"
      this.shown = undefined;   // figure drawn now
      this.drawing = null;      // promise of the draw in progress
      this.visible = false;
      this.listeners = [];
      watchVisibility(this);
    }
    set(figure, hint) {
      if (this.wanted && this.wanted !== this.shown) counts.superseded += 1;
      this.wanted = figure;
      this.hintText = hint || "";
      if (this.visible) this.flush(); else scheduleIdleDraws();
    }
    flush() {
      if (this.drawing || this.wanted === this.shown) return this.drawing || Promise.resolve();
      const fig = this.wanted;
      const P = window.Plotly;
      if (!P) { setTimeout(() => this.flush(), 50); return Promise.resolve(); }
      if (!fig) {
        this.shown = fig;
        if (this.div.data) P.purge(this.div);
        showHint(this.hint, this.hintText);
        this.hint.hidden = !this.hintText;
        this.div.hidden = true;
        return Promise.resolve();
      }
      this.hint.hidden = true;
      this.div.hidden = false;
      const shown = GG.decorate ? GG.decorate(this.id, fig) : fig;     // e.g. the current layer outlined
      const width = this.div.clientWidth || this.div.parentElement.clientWidth;
      const layout = fitTitle(Object.assign({}, shown.layout || {}), width);
      let traces = shown.data || [];
      const narrow = layout.meta && layout.meta.gg_narrow;       // labels placed for a phone-width plot
      if (narrow && width && width < 500) {
        traces = traces.map((t, i) => (narrow[String(i)] ? Object.assign({}, t, narrow[String(i)]) : t));
      }
      if (GG.template && !layout.template) layout.template = GG.template;
      const t0 = performance.now();
      this.drawing = Promise.resolve(P.react(this.div, traces, layout, config(this.id))).then(() => {
        counts.drawn += 1;
        this.shown = fig;
        this.lastDrawMs = performance.now() - t0;
        this.div.__ggDrawnAt = performance.now();
        for (const f of this.listeners) f(this);
      }).catch((e) => { console.warn("plot " + this.id + " failed to draw", e); this.shown = fig; })
        .finally(() => {
          this.drawing = null;
          if (this.remark) { this.remark = false; this.redecorate(); return; }
          if (this.wanted !== this.shown && this.visible) this.flush();
        });
      return this.drawing;
    }
    onDraw(f) { this.listeners.push(f); }
    redecorate() {        // the current layer and head marked again: only the mark shape moves
      if (!this.wanted) return;
      if (this.drawing) { this.remark = true; return; }   // the draw in flight has the old mark
      if (this.shown === this.wanted && this.div.layout && !this.drawing && GG.markFor) {
        const shape = GG.markFor(this.wanted);
        if (shape) {      // relayout of the shapes alone redraws only them
          window.Plotly.relayout(this.div, {shapes: (this.wanted.layout.shapes || []).concat([shape])});
          return;
        }
      }
      this.shown = undefined;
      if (this.visible) this.flush(); else scheduleIdleDraws();
    }
  }

  // Plotly never wraps a title: on a narrow figure, break each title line at words (or between
  // Chinese characters) to fit, and make room above the plot for the extra lines.
  const WIDE = /^[\u2E80-\u9FFF\uF900-\uFAFF\uFF00-\uFFEF]$/;
  function wrapLine(line, maxUnits) {
    // a token quoted “…” stays on one line
    const parts = line.match(/“[^”<]*”|<[^>]+>|&[#\w]+;|[\u2E80-\u9FFF\uF900-\uFAFF\uFF00-\uFFEF]|[^\s<&\u2E80-\u9FFF\uF900-\uFAFF\uFF00-\uFFEF]+|\s+/g) || [];
    let out = "", used = 0, breaks = 0;
    for (const t of parts) {
      if (t[0] === "<") { out += t; continue; }
      if (/^\s+$/.test(t)) { if (used > 0) { out += " "; used += 1; } continue; }
      const units = WIDE.test(t) ? 2 : (t[0] === "&" ? 1 : t.replace(/&[#\w]+;/g, "&").length);
      if (used > 0 && used + units > maxUnits) { out = out.replace(/ $/, "") + "<br>"; used = 0; breaks += 1; }
      out += t; used += units;
    }
    return [out, breaks];
  }
  function fitTitle(layout, width) {
    const title = layout.title;
    const text = title && (typeof title === "string" ? title : title.text);
    if (!width || width > 760) return layout;
    if (!text) return fitAxes(layout, width);
    let added = 0;
    const fit = (line, px) => {
      const [wrapped, breaks] = wrapLine(line, Math.max(16, Math.floor((width - 24) / (0.55 * px))));
      added += breaks * (px + 4);
      return wrapped;
    };
    // the main line, then the smaller detail lines
    const lines = text.split("<br>").map((line, i) => fit(line, i === 0 ? 15 : 11));
    const fitted = Object.assign({}, typeof title === "string" ? {} : title, {text: lines.join("<br>")});
    if (fitted.subtitle && fitted.subtitle.text) {      // Plotly's own subtitle
      fitted.subtitle = Object.assign({}, fitted.subtitle, {text: fitted.subtitle.text.split("<br>").map((l) => fit(l, 12)).join("<br>")});
    }
    const out = fitAxes(layout, width);
    if (!added) return out;
    // Pinned to the top of the figure, the title grows downwards into the room made for it.
    Object.assign(fitted, {yref: "container", y: 1, yanchor: "top", pad: {t: 12}});
    const margin = Object.assign({t: 72}, layout.margin || {});
    margin.t += added;
    return Object.assign(out, {title: fitted, margin, height: (layout.height || 450) + added});
  }
  // Narrow figures: x axes with listed ticks keep every k-th tick (all are still named in the
  // hover), and long axis titles break into lines.
  function fitAxes(layout, width) {
    const out = Object.assign({}, layout);
    for (const key of Object.keys(layout)) {
      if (!/^xaxis\d*$/.test(key) || !layout[key]) continue;
      const axis = Object.assign({}, layout[key]);
      const vals = axis.tickvals, texts = axis.ticktext;
      const room = Math.max(4, Math.floor((width - 90) / 24));
      if (width < 500 && Array.isArray(vals) && vals.length > room) {     // phones only: a desktop panel keeps one tick per token
        const k = Math.ceil(vals.length / room);
        axis.tickvals = vals.filter((_, i) => i % k === 0);
        if (Array.isArray(texts)) axis.ticktext = texts.filter((_, i) => i % k === 0);
      }
      const t = axis.title && (typeof axis.title === "string" ? axis.title : axis.title.text);
      if (t) {
        const [wrapped] = wrapLine(t, Math.max(16, Math.floor((width - 60) / (0.55 * 12))));
        axis.title = Object.assign({}, typeof axis.title === "string" ? {} : axis.title, {text: wrapped});
      }
      out[key] = axis;
    }
    return out;
  }
  GG.fitTitle = fitTitle;

  function idOf(element) {
    // The component's elem_id is on Gradio's block wrapper, above the template's own element.
    const owner = element.closest(".block.gg-plot-panel") || element.closest("[id]");
    return owner ? owner.id : "plot";
  }

  function parse(value) {
    if (!value) return null;
    if (typeof value === "object") return value;
    try { return JSON.parse(value); } catch (e) { console.warn("bad figure JSON", e); return null; }
  }

  // Called from each plot panel's js_on_load (server/components.py).
  GG.makePanel = function (element) {
    const host = element.querySelector(".gg-plot-host") || element;
    const id = idOf(element);
    return panels[id] = new Panel(host, id);
  };

  GG.mountPlot = function (element, props, watch) {
    const panel = GG.makePanel(element);
    const update = () => {
      const fig = parse(props.value);
      if (fig && fig.gg_computing) panel.set(null, {en: "computing…", zh: "计算中…"});
      else panel.set(fig, props.hint);
    };
    watch(["value", "hint"], update);
    update();
    return panel;
  };

})();
