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
  function sendPick(value) {
    const box = document.querySelector("#head-pick textarea, #head-pick input");
    if (!box) return;
    box.value = value + "," + Date.now();   // a fresh value every time, so a repeated click still counts
    box.dispatchEvent(new Event("input", { bubbles: true }));
  }
  // Plotly figures are re-created on every update: bind click handlers to new ones as they appear.
  function bindHeadClicks() {
    for (const [id, withLayer] of [["attention-heads", false], ["attention-all", true]]) {
      const plot = document.querySelector("#" + id + " .js-plotly-plot");
      if (!plot || plot.__ggBound || typeof plot.on !== "function") continue;
      plot.__ggBound = true;
      plot.on("plotly_click", function (ev) {
        const cd = ev && ev.points && ev.points[0] && ev.points[0].customdata;
        if (cd === undefined || cd === null) return;
        if (Array.isArray(cd) && cd.length >= 2 && withLayer) sendPick(cd[0] + "," + cd[1]);
        else sendPick(currentLayer() + "," + (Array.isArray(cd) ? cd[cd.length - 1] : cd));
      });
    }
  }
  setInterval(bindHeadClicks, 400);
})();
