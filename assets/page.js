// GlassGPT page behaviour that Gradio has no component for: arrow keys and play step through
// layers, a click on a head overview selects that head, the address bar follows the view.
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
  function sendPick(layer, head) {     // drawn in the page (assets/layers.js): no request
    if (window.GG && window.GG.layers) window.GG.layers.pick(Number(layer), Number(head));
  }
  // Each plot panel keeps its div (assets/plots.js): bind the click handler once, when it first appears.
  function bindHeadClicks() {
    for (const [id, withLayer] of [["attention-heads", false], ["attention-all", true], ["head-roles", true]]) {
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
        if (id === "head-roles") showAttention();
      });
    }
  }
  setInterval(bindHeadClicks, 400);
  function showAttention() {        // a head picked from the head roles: show it in the attention view
    const panel = document.getElementById("attention");
    if (panel) panel.scrollIntoView({block: "start", behavior: "smooth"});
  }
  // A lesson's card (server/lessons.py): a new one scrolls the page to its section; × closes it.
  let lessonSeen = null;
  setInterval(function () {
    const card = document.querySelector("#lesson-text .gg-lesson[data-n]");
    if (!card || card.dataset.n === lessonSeen) return;
    lessonSeen = card.dataset.n;
    const target = document.getElementById(card.dataset.ggScroll);
    if (target) target.scrollIntoView({block: "start", behavior: "smooth"});
  }, 300);
  document.addEventListener("click", function (e) {
    const close = e.target.closest && e.target.closest("#lesson-text .gg-lesson-close");
    if (close) close.closest(".gg-lesson").remove();
  });

  // The big picture: "you are here" on the current layer; a block sets the layer, a stage goes to its section.
  function markHere() {
    const layer = currentLayer();
    for (const b of document.querySelectorAll("#big-picture .gg-bp-block")) {
      b.classList.toggle("gg-here", b.dataset.ggLayer === String(layer));
    }
  }
  window.GG = window.GG || {};
  window.GG.markHere = markHere;
  setInterval(markHere, 500);          // also after a Run replaces the diagram
  document.addEventListener("click", function (e) {
    const block = e.target.closest && e.target.closest("#big-picture .gg-bp-block[data-gg-layer]");
    const stage = e.target.closest && e.target.closest("#big-picture .gg-bp-stage[data-gg-go]");
    if (block) {
      sendPick(block.dataset.ggLayer, document.querySelector("#head input[type=number]").value);
      markHere();
      const target = document.getElementById("sec-layers");
      if (target) target.scrollIntoView({block: "start", behavior: "smooth"});
    } else if (stage) {
      const target = document.getElementById("sec-" + stage.dataset.ggGo);
      if (target) target.scrollIntoView({block: "start", behavior: "smooth"});
    }
  });
  document.addEventListener("click", function (e) {
    const button = e.target.closest && e.target.closest("button.gg-pick-head[data-gg-layer]");
    if (!button) return;
    sendPick(button.dataset.ggLayer, button.dataset.ggHead);
    if (button.dataset.ggMlp) {          // an MLP from the attribution: show the MLP section
      const mlp = document.getElementById("sec-mlp");
      if (mlp) mlp.scrollIntoView({block: "start", behavior: "smooth"});
    } else showAttention();
  });

  // Tokens arriving (Run, Next token, Generate streaming) count as activity (assets/plots.js).
  function watchTokens() {
    const tokens = document.getElementById("tokens");
    if (!tokens || tokens.__ggWatched || !window.GG || !window.GG.markActivity) return;
    tokens.__ggWatched = true;
    new MutationObserver(() => window.GG.markActivity()).observe(tokens, {childList: true, subtree: true, characterData: true});
  }
  setInterval(watchTokens, 400);
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("#run, #next-token, #generate") && window.GG && window.GG.markActivity) {
      window.GG.markActivity();
    }
  }, true);

  // Play: step through every layer at a readable pace; press again (or any layer control) to stop.
  const PLAY_STEP_MS = 900;
  let playing = null;
  function setPlayLabel(on) {
    const b = document.getElementById("layer-play");
    const zh = window.GG && window.GG.language && window.GG.language.current() === "zh";
    if (b) b.textContent = on ? (zh ? "■ 停止" : "■ stop") : (zh ? "▶ 播放" : "▶ play");
  }
  function stopPlay() { if (playing) { clearInterval(playing); playing = null; setPlayLabel(false); } }
  function startPlay() {
    const box = document.querySelector("#layer input[type=number]");
    const last = box ? Number(box.max || box.getAttribute("max") || 0) : 0;
    const range = document.querySelector("#layer input[type=range]");
    if (box && range && Number(box.value) >= last) {     // at the top: start again at layer 0
      range.value = "0";
      range.dispatchEvent(new Event("input", {bubbles: true}));
    }
    setPlayLabel(true);
    playing = setInterval(() => {
      const now = document.querySelector("#layer input[type=number]");
      if (!now || Number(now.value) >= last) { stopPlay(); return; }
      document.getElementById("layer-next").click();
    }, PLAY_STEP_MS);
  }
  document.addEventListener("click", function (e) {
    if (!e.isTrusted) return;
    if (e.target.closest && e.target.closest("#layer-play")) { playing ? stopPlay() : startPlay(); return; }
    if (e.target.closest && e.target.closest("#layer-prev, #layer-next, #layer, #run")) stopPlay();
  }, true);
  // A message can be dismissed; the next one (with its own data-n) shows again.
  document.addEventListener("click", function (e) {
    const close = e.target.closest && e.target.closest(".gg-notice-close");
    if (close) close.closest(".gg-notice").remove();
  });

  window.GG = window.GG || {};
  window.GG.play = {start: startPlay, stop: stopPlay, playing: () => !!playing};

  // Keep the address bar in step with the page so that the link reopens the same view.
  function valueOf(selector) {
    const el = document.querySelector(selector);
    return el ? el.value : null;
  }
  const MAX_URL_PROMPT = 2000;
  // The generated tokens go in the link as ids (gen=...) while the prompt box still holds the text
  // they followed: the server writes the view's recipe (#recipe, server/recipe.py) with each answer.
  let recipeSeen = null, promptAtRecipe = null;
  function generatedIds(prompt) {
    const text = valueOf("#recipe textarea") ?? valueOf("#recipe input");
    if (text !== recipeSeen) { recipeSeen = text; promptAtRecipe = prompt; }
    if (!text || prompt !== promptAtRecipe) return null;
    try {
      const r = JSON.parse(text);
      const gen = r.ids.slice(r.n_prompt);
      return gen.length ? gen.join(".") : null;
    } catch (e) { return null; }
  }
  function syncUrl() {
    const prompt = valueOf("#prompt textarea");
    if (prompt === null) return;
    const gen = generatedIds(prompt);
    const focus = document.querySelector("#tokens button.gg-chip-focus");
    const chat = document.querySelector("#chat input[type=checkbox]");
    const state = {
      // A long prompt stays out of the address (browsers and servers cap URL length).
      prompt: prompt.length <= MAX_URL_PROMPT ? prompt : null, chat: chat && chat.checked ? "1" : null,
      t: valueOf("#temperature input[type=number]"), k: valueOf("#top-k input[type=number]"),
      p: valueOf("#top-p input[type=number]"), seed: valueOf("#seed input"),
      layer: valueOf("#layer input[type=number]"), head: valueOf("#head input[type=number]"),
      focus: focus ? focus.dataset.pos : null, gen: prompt.length <= MAX_URL_PROMPT ? gen : null,
      lang: pageLanguage() === "zh" ? "zh" : null,
    };
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(state)) if (value !== null && value !== "") params.set(key, value);
    let query = "?" + params.toString();
    if (query.length > 8000) { params.delete("prompt"); params.delete("gen"); query = "?" + params.toString(); }
    if (query !== window.location.search) history.replaceState(null, "", query + window.location.hash);
  }
  // Start only once the person acts: until then the address may still hold a shared link that the
  // page is about to replay, and overwriting it would replay the defaults instead.
  let syncing = false;
  function startSync(e) {
    if (syncing || (e && !e.isTrusted)) return;       // the page's own clicks (e.g. the language) do not count
    syncing = true;
    setInterval(syncUrl, 700);
  }
  for (const type of ["pointerdown", "keydown", "input"]) document.addEventListener(type, startSync, true);

  // The language: from the link (lang=zh / lang=en), else the last choice on this browser, else
  // the browser's own language. Choosing one remembers it and puts it in the link.
  const LANG_KEY = "glassgpt-lang";
  let chosenLanguage = null;      // set on every change of the radio (its :checked state may lag)
  function pageLanguage() {
    if (chosenLanguage) return chosenLanguage;
    const checked = document.querySelector("#language input[type=radio]:checked");
    return checked && checked.value === "中文" ? "zh" : "en";
  }
  function wantedLanguage() {
    const asked = new URLSearchParams(window.location.search).get("lang");
    if (asked === "zh" || asked === "en") return asked;
    try { const kept = localStorage.getItem(LANG_KEY); if (kept === "zh" || kept === "en") return kept; } catch (e) { /* private mode */ }
    return (navigator.languages || [navigator.language || ""]).some((l) => /^zh\b/i.test(l)) ? "zh" : "en";
  }
  // The page starts in English. For Chinese, the link gets lang=zh before the page loads, and the
  // server's load answer switches the language (app.py open_link); should that not happen within
  // a few seconds, the page presses the switch itself.
  function applyLanguage() {
    const asked = new URLSearchParams(window.location.search).get("lang");
    if (asked === "zh" || asked === "en") {        // a link that names its language: remember it
      try { localStorage.setItem(LANG_KEY, asked); } catch (e) { /* private mode */ }
    }
    if (wantedLanguage() !== "zh") return;
    chosenLanguage = "zh";
    const params = new URLSearchParams(window.location.search);
    if (params.get("lang") !== "zh") {
      params.set("lang", "zh");
      history.replaceState(null, "", "?" + params.toString() + window.location.hash);
    }
    setTimeout(function fallback() {
      const radio = document.querySelector('#language input[type=radio][value="中文"]');
      if (!radio) { setTimeout(fallback, 500); return; }
      if (!radio.checked) radio.click();
    }, 5000);
  }
  // Server-written text comes in both languages (.gg-en / .gg-zh, assets/app.css): the page shows one.
  function showLanguage(lang) { document.documentElement.dataset.ggLang = lang; }
  document.addEventListener("change", (e) => {
    if (!(e.target && e.target.closest && e.target.closest("#language")) || e.target.type !== "radio" || !e.target.checked) return;
    const lang = chosenLanguage = e.target.value === "中文" ? "zh" : "en";
    showLanguage(lang);
    try { localStorage.setItem(LANG_KEY, lang); } catch (err) { /* private mode */ }
    if (syncing) setTimeout(syncUrl, 0);
    else {            // before the person acts otherwise: change only the lang key of the link
      const params = new URLSearchParams(window.location.search);
      if (lang === "zh") params.set("lang", "zh"); else params.delete("lang");
      const query = params.toString() ? "?" + params.toString() : "";
      if (query !== window.location.search) history.replaceState(null, "", (query || window.location.pathname) + window.location.hash);
    }
  }, true);
  // A reloaded page replays its address (prompt, settings, generated tokens), and says so. Gradio
  // itself reloads the page after a lost connection once a server answers again: behind a balancer,
  // when the replica holding the page stopped in the middle of a request.
  const RELOADED = {
    en: "The page was reloaded (by you, or after the connection to its server was lost): your prompt, settings and generated tokens are run again from its address.",
    zh: "页面重新加载了（你刷新了页面，或与服务器的连接断开后自动重连）：正在根据地址里的提示词、设置和已生成的词元重新运行模型。",
  };
  function floatingNotice(text) {
    const box = document.createElement("div");
    box.className = "gg-notice gg-info gg-reloaded";
    box.setAttribute("role", "status");
    box.textContent = text;
    const close = document.createElement("button");
    close.className = "gg-notice-close";
    close.setAttribute("aria-label", "×");
    box.append(close);
    document.body.append(box);
  }
  const navigation = (performance.getEntriesByType && performance.getEntriesByType("navigation")[0]) || {};
  if (navigation.type === "reload" && new URLSearchParams(window.location.search).has("prompt")) {
    const waiting = setInterval(() => {
      if (!document.querySelector("#tokens button.gg-chip")) return;
      clearInterval(waiting);
      floatingNotice(RELOADED[wantedLanguage()]);
    }, 300);
  }
  // Gradio's own "Connection Lost" toast is English only: in 中文 it says the same in Chinese. A
  // look once a second (a MutationObserver on the whole page would record every node Plotly draws).
  setInterval(() => {
    if (pageLanguage() !== "zh") return;
    for (const toast of document.querySelectorAll(".toast-body:not([data-gg-zh])")) {
      if (!/Connection Lost/.test(toast.textContent)) continue;
      toast.dataset.ggZh = "1";
      const walker = document.createTreeWalker(toast, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        if (/Connection Lost/.test(n.nodeValue)) n.nodeValue = "连接中断";
        else if (/Connection to the server was lost/.test(n.nodeValue)) n.nodeValue = "与服务器的连接断开了，正在重新连接……";
      }
    }
  }, 1000);
  showLanguage(wantedLanguage());
  applyLanguage();
  window.GG.language = {current: pageLanguage, wanted: wantedLanguage};
})();
