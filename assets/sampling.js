// The next-token distribution, computed in the page from the model's full-vocabulary logits.
// Moving temperature, top-k, top-p or the seed never asks the server: this file repeats exactly
// what model/sampling.py does (float64 softmax over all tokens, the same cuts, the same seeded
// uniform draw), and tests/browser/test_sampling_in_page.py holds the two to each other.
(function () {
  const GG = window.GG = window.GG || {};
  const SHOWN = 20;                      // bars on the chart
  const KEPT = "#3b75af", PICKED = "#d55e00", CUT = "rgba(184,184,184,0.55)";
  const MASK64 = (1n << 64n) - 1n;

  // ---- the arithmetic (mirrors model/sampling.py) ------------------------------------------------
  function splitmix64(x) {
    x = (x + 0x9E3779B97F4A7C15n) & MASK64;
    let z = x;
    z = ((z ^ (z >> 30n)) * 0xBF58476D1CE4E5B9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94D049BB133111EBn) & MASK64;
    return z ^ (z >> 31n);
  }
  function uniformDraw(seed, position) {
    const bits = splitmix64(BigInt(seed) ^ splitmix64(BigInt(position))) >> 11n;
    return Number(bits) / 9007199254740992;   // 2^53
  }

  function decodeFloat32(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Float32Array(bytes.buffer);
  }

  // Indices by logit, largest first, ties by id: the order of probabilities at any T > 0, up to
  // ties in probability, which `probabilityOrder` then settles by id (as numpy's stable argsort).
  function logitOrder(z) {
    const idx = new Int32Array(z.length);
    for (let i = 0; i < z.length; i++) idx[i] = i;
    return Array.prototype.slice.call(idx).sort((a, b) => (z[b] - z[a]) || (a - b));
  }
  function probabilityOrder(order, p) {
    const out = order.slice();
    for (let s = 0; s < out.length;) {
      let e = s + 1;
      while (e < out.length && p[out[e]] === p[out[s]]) e++;
      if (e - s > 1) {
        const run = out.slice(s, e).sort((a, b) => a - b);
        for (let i = s; i < e; i++) out[i] = run[i - s];
      }
      s = e;
    }
    return out;
  }

  // {probsT, kept, probs, nKept, entropyBits, pick} for one setting.
  function compute(data, T, topK, topP, seed) {
    const z = data.z, V = z.length;
    const probsT = new Float64Array(V);
    let order;
    if (T === 0) {
      probsT[data.argmax] = 1;
      order = [data.argmax];
      for (let i = 0; i < V; i++) if (i !== data.argmax) order.push(i);
    } else {
      const m = z[data.argmax];
      let s = 0;
      for (let i = 0; i < V; i++) { const e = Math.exp((z[i] - m) / T); probsT[i] = e; s += e; }
      for (let i = 0; i < V; i++) probsT[i] /= s;
      order = probabilityOrder(data.order, probsT);
    }
    const kept = new Uint8Array(V);
    if (T === 0) kept[data.argmax] = 1;       // greedy keeps exactly one token
    else {
      let cum = 0;
      for (let r = 0; r < V; r++) {
        const i = order[r];
        const before = (cum + probsT[i]) - probsT[i];
        cum += probsT[i];
        let keep = !(topK && r >= topK);
        if (topP < 1) keep = keep && before < topP;
        if (r === 0) keep = true;
        kept[i] = keep ? 1 : 0;
      }
    }
    let total = 0, nKept = 0;
    for (let i = 0; i < V; i++) if (kept[i]) { total += probsT[i]; nKept++; }
    const probs = new Float64Array(V);
    let entropy = 0;
    for (let i = 0; i < V; i++) {
      if (!kept[i]) continue;
      const q = probsT[i] / total;
      probs[i] = q;
      if (q > 0) entropy -= q * Math.log2(q);
    }
    let pick;
    if (T === 0) pick = data.argmax;
    else {
      const cdf = new Float64Array(V);
      let c = 0;
      for (let i = 0; i < V; i++) { c += probs[i]; cdf[i] = c; }
      const target = uniformDraw(seed, data.position) * cdf[V - 1];
      pick = V - 1;
      for (let i = 0; i < V; i++) if (cdf[i] > target) { pick = i; break; }
    }
    return {probsT, kept, probs, nKept, entropyBits: Math.max(0, entropy) + 0, pick};
  }

  // ---- numbers as people read them ------------------------------------------------------------
  function fmtP(p) {
    if (p === 0) return "0";
    if (p >= 0.001) return (100 * p).toFixed(p >= 0.1 ? 1 : 2) + "%";
    return p.toExponential(2);
  }
  function esc(s) {   // Plotly renders a subset of HTML in text: every token label goes through this
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&#34;").replace(/'/g, "&#39;");
  }
  function short(s, n) { s = String(s); return s.length <= n ? s : s.slice(0, n - 1) + "…"; }
  function grouped(n) { return n.toLocaleString("en-US"); }

  const TEXT = {
    en: {title: "Next-token probabilities: softmax(z / T)", greedy: "T = 0: greedy, all probability on the largest logit",
         settings: (T, k, p) => `T = ${T} · top-k ${k ? "= " + k : "off"} · top-p ${p < 1 ? "= " + p : "off"}`,
         kept: (n, V) => `${grouped(n)} of ${grouped(V)} token${n === 1 ? "" : "s"} kept`,
         entropy: (b) => `entropy ${b.toFixed(2)} bits`, axis: "probability",
         keptName: "kept (final p)", pickedName: "picked", cutName: "cut (p before the cut)",
         picked: "picked by the sampler", keptState: "kept", cutBy: (w) => "cut by " + w,
         below: (l, p) => `picked ${l} (p ${p}) is below the top ${SHOWN}`,
         hover: (l, i, r, z, zt, pb, pa, st) => `<b>${l}</b> · id ${i} · rank ${r}<br>logit ${z}<br>logit / T ${zt}` +
           `<br>p before cuts ${pb}<br>p after cuts ${pa}<br>${st}`,
         noDivide: "(T = 0: no division)", was: (p) => `cut (was ${p})`,
         pickLine: (l, i, p, how) => `Sampling would pick ${l} (id ${i}, p = ${p}, ${how}).`,
         how: (T, seed) => T === 0 ? "greedy: T = 0" : `seed ${seed}`},
    zh: {title: "下一个词元的概率：softmax(z / T)", greedy: "T = 0：贪心解码，全部概率都给最大的 logit",
         settings: (T, k, p) => `T = ${T} · top-k ${k ? "= " + k : "关闭"} · top-p ${p < 1 ? "= " + p : "关闭"}`,
         kept: (n, V) => `保留 ${grouped(n)} / ${grouped(V)} 个词元`,
         entropy: (b) => `熵 ${b.toFixed(2)} 比特`, axis: "概率",
         keptName: "保留（最终概率）", pickedName: "采样结果", cutName: "被截掉（截断前的概率）",
         picked: "被采样器选中", keptState: "保留", cutBy: (w) => "被 " + w + " 截掉",
         below: (l, p) => `选中的 ${l}（概率 ${p}）不在前 ${SHOWN} 名之内`,
         hover: (l, i, r, z, zt, pb, pa, st) => `<b>${l}</b> · id ${i} · 第 ${r} 名<br>logit ${z}<br>logit / T ${zt}` +
           `<br>截断前概率 ${pb}<br>截断后概率 ${pa}<br>${st}`,
         noDivide: "（T = 0：不做除法）", was: (p) => `被截掉（原为 ${p}）`,
         pickLine: (l, i, p, how) => `采样会选出 ${l}（id ${i}，概率 = ${p}，${how}）。`,
         how: (T, seed) => T === 0 ? "贪心：T = 0" : `随机种子 ${seed}`},
  };
  function lang() {      // the page's language (assets/page.js): known from the first draw, before the radio follows
    if (window.GG && window.GG.language) return window.GG.language.current();
    const checked = document.querySelector("#language input[type=radio]:checked");
    return checked && checked.value === "中文" ? "zh" : "en";
  }

  // ---- the page's controls --------------------------------------------------------------------
  function numberIn(id) {
    const el = document.querySelector(`#${id} input[type=number]`) || document.querySelector(`#${id} input`);
    return el ? el.value : null;
  }
  function settings() {
    const T = Number(numberIn("temperature")), k = Number(numberIn("top-k")), p = Number(numberIn("top-p"));
    const seedText = String(numberIn("seed") || "0").trim();
    const problems = [];
    if (!Number.isFinite(T) || T < 0 || T > 100) problems.push("temperature");
    if (!Number.isInteger(k) || k < 0) problems.push("top-k");
    if (!Number.isFinite(p) || !(p > 0 && p <= 1)) problems.push("top-p");
    let seed = 0n;
    try { seed = BigInt(seedText || "0"); if (seed < 0n || seed >= (1n << 63n)) problems.push("seed"); }
    catch (e) { problems.push("seed"); }
    return {T, k, p, seed, problems};
  }

  // ---- the figure ---------------------------------------------------------------------------------
  function figure(data, s, r, L) {
    const V = data.z.length;
    const ids = data.order.slice(0, SHOWN);
    const label = (i) => data.label(i);
    const rows = [], parts = {kept: [], picked: [], cut: []};
    ids.forEach((i, row) => {
      const z = data.z[i];
      const state = r.kept[i] ? (i === r.pick ? L.picked : L.keptState)
        : L.cutBy(s.k && row >= s.k ? `top-k = ${s.k}` : `top-p = ${s.p}`);
      const hover = L.hover(esc(label(i)), i, row + 1, z.toFixed(3), s.T === 0 ? L.noDivide : (z / s.T).toFixed(3),
                            fmtP(r.probsT[i]), fmtP(r.probs[i]), state);
      const part = !r.kept[i] ? "cut" : i === r.pick ? "picked" : "kept";
      const x = r.kept[i] ? r.probs[i] : r.probsT[i];
      const text = (i === r.pick ? "▶ " : "") + (r.kept[i] ? fmtP(r.probs[i]) : L.was(fmtP(r.probsT[i])));
      parts[part].push({row, x, text, hover, id: i});
      rows.push(esc(short(label(i), 16)));
    });
    const bar = (name, list, marker) => ({type: "bar", orientation: "h", name, marker, showlegend: list.length > 0,
      y: list.map((b) => b.row), x: list.map((b) => b.x), text: list.map((b) => b.text),
      hovertext: list.map((b) => b.hover), customdata: list.map((b) => b.id),
      hovertemplate: "%{hovertext}<extra></extra>", textposition: "outside", cliponaxis: false});
    const T = s.T === 0 ? "0" : String(s.T);
    let sub = L.settings(T, s.k, s.p) + "<br>" + (s.T === 0 ? L.greedy + " · " : L.entropy(r.entropyBits) + " · ") +
      L.kept(r.nKept, V);
    if (!ids.includes(r.pick)) sub += "<br>" + L.below(esc(short(label(r.pick), 16)), fmtP(r.probs[r.pick]));
    const lines = sub.split("<br>").length;
    return {
      data: [bar(L.keptName, parts.kept, {color: KEPT}),
             bar(L.pickedName, parts.picked, {color: PICKED, line: {color: "#1b1b1f", width: 1.5}}),
             bar(L.cutName, parts.cut, {color: CUT, line: {color: "#8a8a8a", width: 1},
                                        pattern: {shape: "/", fgcolor: "#7a7a7a", size: 6}})],
      layout: {
        title: {text: L.title, x: 0.01, xanchor: "left", font: {size: 15}, subtitle: {text: sub, font: {size: 12}}},
        font: {family: GG.FONT || "sans-serif", size: 12}, autosize: true, barmode: "overlay", bargap: 0.25,
        height: Math.max(300, 24 * ids.length + 180 + 14 * lines), margin: {l: 10, r: 90, t: 70 + 15 * lines, b: 84},
        // A fixed axis: the bars' lengths are the probabilities, so a change of T is seen as a change of length.
        xaxis: {title: {text: L.axis}, range: [0, 1], tickformat: ".0%", tickvals: [0, 0.25, 0.5, 0.75, 1],
                tickangle: 0, automargin: true, fixedrange: true},
        yaxis: {tickmode: "array", tickvals: ids.map((_, i) => i), ticktext: rows, autorange: "reversed",
                automargin: true, tickfont: {family: "ui-monospace, monospace"}, fixedrange: true},
        // the legend at the bottom of the whole figure, below the axis title whatever the height
        legend: {orientation: "h", yref: "container", yanchor: "bottom", y: 0.005, x: 0, font: {size: 11}}, showlegend: true},
    };
  }

  // ---- wiring -------------------------------------------------------------------------------------
  const state = {data: null, panel: null, pickEl: null, vocab: null, last: null};

  function load(value) {
    state.loads = (state.loads || 0) + 1;
    if (!value) { state.data = null; return; }
    const raw = typeof value === "string" ? JSON.parse(value) : value;
    const z = decodeFloat32(raw.logits);
    let argmax = 0;
    for (let i = 1; i < z.length; i++) if (z[i] > z[argmax]) argmax = i;
    const labels = raw.labels || {};
    state.data = {z, argmax, position: raw.position, order: logitOrder(z),
                  label: (i) => (labels[i] !== undefined ? labels[i] : state.vocab ? state.vocab[i] : "id " + i)};
  }

  function redraw() {
    if (!state.data || !state.panel) return;
    const s = settings();
    if (s.problems.length) return;         // the server's checks say what is wrong when it is asked
    const L = TEXT[lang()];
    const key = [s.T, s.k, s.p, s.seed, lang(), state.loads, state.vocab !== null].join("|");
    if (key === state.lastKey) return;     // the same setting again (input, then change): nothing to draw
    state.lastKey = key;
    const r = compute(state.data, s.T, s.k, s.p, s.seed);
    state.last = {settings: s, result: r};
    state.panel.set(figure(state.data, s, r, L), "");
    if (state.pickEl) {
      const how = L.how(s.T, s.seed.toString());
      state.pickEl.textContent = L.pickLine("“" + state.data.label(r.pick) + "”", r.pick, fmtP(r.probs[r.pick]), how);
    }
    GG.samplingRedraws = (GG.samplingRedraws || 0) + 1;
  }

  // Called from the #distribution component's js_on_load (server/components.py).
  GG.mountDistribution = function (element, props, watch, server) {
    state.panel = GG.makePanel(element);
    const update = () => { load(props.value); redraw(); };
    watch("value", update);
    update();
    // Labels for every token, once: the seeded pick can land anywhere in the vocabulary.
    if (server && server.vocabulary_labels) {
      server.vocabulary_labels().then((labels) => { state.vocab = labels; redraw(); })
        .catch((e) => console.warn("vocabulary labels unavailable", e));
    }
  };
  GG.mountPick = function (element) { state.pickEl = element.querySelector(".gg-pick") || element; redraw(); };

  const SAMPLING_IDS = ["temperature", "top-k", "top-p", "seed"];
  for (const type of ["input", "change"]) {
    document.addEventListener(type, (e) => {
      const owner = e.target && e.target.closest && e.target.closest("[id]");
      let el = e.target;
      while (el && !SAMPLING_IDS.includes(el.id)) el = el.parentElement;
      if (!el || !owner) return;
      // The slider moves its number box only after this event: copy the value across first.
      if (e.target.type === "range") {
        const box = el.querySelector("input[type=number]");
        if (box && box.value !== e.target.value) box.value = e.target.value;
      }
      redraw();
    }, true);
  }
  document.addEventListener("change", (e) => {
    if (e.target && e.target.closest && e.target.closest("#language")) setTimeout(redraw, 0);
  }, true);

  // For tests: the page's numbers for any setting, without touching the controls.
  GG.sampling = {
    compute(T, k, p, seed) {
      const r = compute(state.data, T, k, p, BigInt(seed));
      const top = state.data.order.slice(0, 50);
      return {pick: r.pick, nKept: r.nKept, entropyBits: r.entropyBits,
              top: top.map((i) => [i, r.probsT[i], r.probs[i], r.kept[i]])};
    },
    uniformDraw: (seed, position) => uniformDraw(BigInt(seed), position),
    position: () => state.data && state.data.position,
    last: () => state.last && {pick: state.last.result.pick, nKept: state.last.result.nKept},
    redraw,
  };
})();
