"""The page's layout: one builder per section, in reading order. Builders only create components
(each with its elem_id, the page's public interface); app.py wires them, finding them by id.

`init` holds the first view's panel contents (handlers.everything), so the page is never blank.
"""
from __future__ import annotations

import gradio as gr

from viz.attention import gqa_figure, worked_example

from .components import distribution_panel, layer_panel, pick_line, plot_panel
from .layer_data import layer_data_value
from . import lessons, strings
from .i18n import explanation, heading

EXAMPLES = [
    "The capital of France is",
    "The cat sat on the mat because the cat",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "1, 1, 2, 3, 5, 8, 13,",
    "我爱北京天安门，天安门上",
    "When Mary and John went to the store, John gave a drink to",
]
LANG0 = "en"

# Custom events: a chip click and a click on a head overview (assets/page.js calls these).
CHIP_CLICK_JS = ("element.addEventListener('click', (e) => { const chip = e.target.closest('button.gg-chip[data-pos]');"
                 " if (chip) trigger('select_token', {pos: Number(chip.dataset.pos)}); });")
# Gradio finds a component's custom events by reading trigger('name') in its js_on_load.
LAYER_DATA_JS = "GG.mountLayerData(element, props, watch, trigger); /* fires trigger('need_layer') */"


class Sections:
    """Builds the sections; keeps the headings and explanations so the language switch can reach them."""

    def __init__(self, ctx, init: dict):
        self.ctx, self.init, self.cfg = ctx, init, ctx.lm.cfg
        self.headings: dict[str, gr.Markdown] = {}
        self.explanations: dict[str, gr.Markdown] = {}
        self.worked = None

    def heading(self, panel: str):
        # sec-<panel>: where the big picture's parts and the lessons scroll to
        self.headings[panel] = gr.Markdown(heading(panel, LANG0), elem_classes=["gg-heading"], elem_id=f"sec-{panel}")

    def explain(self, panel: str):
        self.explanations[panel] = gr.Markdown(explanation(panel, LANG0), elem_classes=["gg-explain"])

    def plot(self, elem_id: str, hint: str = "", **kw):
        return plot_panel(elem_id, self.init.get(elem_id), hint=hint, **kw)

    # ---- sections ----------------------------------------------------------------------------------
    def header(self):
        lm, cfg = self.ctx.lm, self.cfg
        with gr.Row(elem_classes=["gg-header"]):
            gr.Markdown(strings.header(cfg, lm.device), elem_id="header-text")
            gr.Radio(["English", "中文"], value="English", label="Language / 语言", elem_id="language", scale=0)
        gr.HTML("", elem_id="notice")
        self.lessons()

    def lessons(self):
        """Guided lessons (server/lessons.py): pick one, start it; its text floats over the page."""
        with gr.Row(elem_classes=["gg-lessons"]):
            gr.Dropdown(lessons.choices(), value=None, label=strings.label("lesson"), elem_id="lesson", scale=3)
            gr.Button(strings.button("lesson-start"), elem_id="lesson-start", scale=0, min_width=160)
        gr.HTML("", elem_id="lesson-text")

    def tokens(self):
        ctx, init = self.ctx, self.init
        self.heading("tokens")
        with gr.Row():
            with gr.Column(scale=3):
                prompt = gr.Textbox(value=ctx.default_prompt, label=strings.label("prompt"), lines=2, max_lines=8, elem_id="prompt",
                                    placeholder=strings.PLACEHOLDERS["prompt"]["en"])
                gr.Examples(EXAMPLES, inputs=[prompt], label=strings.label("examples"), elem_id="examples")
            with gr.Column(scale=1, min_width=200):
                gr.Button(strings.button("run"), variant="primary", elem_id="run")
                gr.Checkbox(False, label=strings.label("chat"), elem_id="chat",
                            interactive=ctx.lm.tokenizer.has_chat)
                gr.HTML(init["token-count"], elem_id="token-count")
        gr.HTML(init["big-picture"], elem_id="big-picture")
        gr.HTML(init["tokens"], elem_id="tokens", js_on_load=CHIP_CLICK_JS)
        self.explain("tokens")
        gr.HTML(ctx.static["language-note"], elem_id="language-note")

    def embeddings(self):
        self.heading("embeddings")
        with gr.Row():
            with gr.Column(scale=3):
                self.plot("embeddings")
                gr.Checkbox(False, label=strings.label("embed-3d"), elem_id="embed-3d")
            with gr.Column(scale=2):
                gr.HTML(self.init["neighbours"], elem_id="neighbours")
                gr.Markdown(self.ctx.static["position-note"], elem_id="position-note")
                self.explain("embeddings")
        # Learned position vectors exist only in the GPT-2 family; RoPE models rotate q and k instead.
        self.plot("positions", visible=not self.cfg.uses_rope)
        self.embedding_lab()

    def embedding_lab(self):
        """a - b + c and words on a direction, with the model's own embedding rows (server/lab.py)."""
        with gr.Accordion(strings.label("embedding-lab"), open=False, elem_id="embedding-lab"):
            with gr.Row(elem_classes=["gg-lab-row"]):
                for elem_id, value in (("lab-a", " king"), ("lab-b", " man"), ("lab-c", " woman")):
                    gr.Textbox(value, label=strings.label(elem_id), elem_id=elem_id, min_width=90)
                gr.Number(10, label=strings.label("lab-k"), elem_id="lab-k", precision=0, minimum=1, maximum=100,
                          min_width=90)
                gr.Button(strings.button("lab-analogy-run"), elem_id="lab-analogy-run", scale=0, min_width=120)
            with gr.Row():
                with gr.Column(scale=3):
                    plot_panel("lab-analogy-figure", hint=strings.HINTS["lab-analogy"])
                with gr.Column(scale=2):
                    gr.HTML("", elem_id="lab-analogy-table")
            with gr.Row(elem_classes=["gg-lab-row"]):
                gr.Textbox(" cats", label=strings.label("dir-a"), elem_id="dir-a", min_width=90)
                gr.Textbox(" cat", label=strings.label("dir-b"), elem_id="dir-b", min_width=90)
                gr.Textbox(" dogs, dog, houses, house, one, two, three, four, five", label=strings.label("dir-words"),
                           elem_id="dir-words", scale=3)
                gr.Button(strings.button("lab-direction-run"), elem_id="lab-direction-run", scale=0, min_width=120)
            plot_panel("lab-direction-figure", hint=strings.HINTS["lab-direction"])

    def stepper(self):
        """The one layer control every layer-dependent panel follows; it sticks to the top of the
        window from here to the end of the page."""
        cfg = self.cfg
        self.heading("layers")
        with gr.Row():
            with gr.Column(scale=3):
                self.plot("residual-stream")
            with gr.Column(scale=2):
                self.explain("layers")
        with gr.Row(elem_id="stepper", elem_classes=["gg-stepper"]):
            gr.Button(strings.button("layer-prev"), elem_id="layer-prev", scale=0, min_width=84)
            gr.Slider(0, cfg.n_layer - 1, value=0, step=1, label=strings.label("layer"), elem_id="layer", scale=3)
            gr.Button(strings.button("layer-next"), elem_id="layer-next", scale=0, min_width=84)
            gr.Button(strings.button("layer-play"), elem_id="layer-play", scale=0, min_width=84)
            gr.Slider(0, cfg.n_head - 1, value=0, step=1, label=strings.label("head"), elem_id="head", scale=2)
        # What the page draws the layer panels from, for every layer and head it can hold.
        gr.HTML(layer_data_value(self.init["layer-data"]), html_template="<span></span>", elem_id="layer-data",
                elem_classes=["gg-hidden"], js_on_load=LAYER_DATA_JS)
        # The view's recipe (server/recipe.py): sent with every event, so any replica can rebuild it.
        gr.Textbox(self.ctx.initial_recipe, visible="hidden", elem_id="recipe", elem_classes=["gg-hidden"],
                   interactive=False, container=False, show_label=False)

    def attention(self):
        self.heading("attention")
        with gr.Row():
            gr.Checkbox(False, label=strings.label("exclude-first"), elem_id="exclude-first")
            gr.Checkbox(False, label=strings.label("log-scale"), elem_id="log-scale")
            gr.Dropdown(strings.HEADS_METRIC_CHOICES["en"], value="sink",
                        label=strings.label("heads-metric"), elem_id="heads-metric")
        with gr.Row():
            layer_panel("attention")
            layer_panel("attention-heads")
        with gr.Row():
            layer_panel("attention-detail")
            self.plot("attention-all")
        self.explain("attention")
        with gr.Accordion(strings.label("attention-basics"), open=False, elem_id="attention-basics"):
            with gr.Row():
                self.worked = gr.HTML(worked_example(LANG0), elem_id="worked-example")
                plot_panel("gqa", gqa_figure(self.cfg))       # redrawn in the page's language by the switch
        self.head_roles()

    def head_roles(self):
        """Every head scored for five roles (server/lab.py); a click opens a head above."""
        with gr.Accordion(strings.label("head-roles-box"), open=False, elem_id="head-roles-box"):
            gr.Markdown(strings.text("head-roles-note"), elem_id="head-roles-note")
            with gr.Row():
                gr.Button(strings.button("roles-repeated"), elem_id="roles-repeated", scale=0, min_width=200)
                gr.Button(strings.button("roles-prompt"), elem_id="roles-prompt", scale=0, min_width=160)
            with gr.Row():
                with gr.Column(scale=3):
                    plot_panel("head-roles", hint=strings.HINTS["head-roles"])
                with gr.Column(scale=2):
                    gr.HTML("", elem_id="head-roles-top")

    def mlp(self):
        self.heading("mlp")
        gr.Checkbox(False, label=strings.label("mlp-all"), elem_id="mlp-all")
        with gr.Row():
            layer_panel("mlp")
            layer_panel("mlp-top")
        gr.HTML(self.ctx.static["mlp-flow"], elem_id="mlp-flow")
        self.explain("mlp")

    def logit_lens(self):
        self.heading("logit_lens")
        with gr.Row():
            gr.Textbox("", label=strings.label("lens-positions"), elem_id="lens-positions", scale=3)
            gr.Button(strings.button("lens-show"), elem_id="lens-show", scale=0, min_width=160)
        with gr.Row():
            self.plot("logit-lens")
            self.plot("logit-lens-focus")
        self.explain("logit_lens")

    def distribution(self):
        ctx = self.ctx
        self.heading("distribution")
        with gr.Row():
            with gr.Column(scale=2, elem_classes=["gg-sampling-controls"]):
                gr.Slider(0, 2, value=1.0, step=0.05, label=strings.label("temperature"), elem_id="temperature")
                gr.Slider(0, 200, value=0, step=1, label=strings.label("top-k"), elem_id="top-k")
                gr.Slider(0.01, 1, value=1.0, step=0.01, label=strings.label("top-p"), elem_id="top-p")
                gr.Number(0, precision=0, minimum=0, label=strings.label("seed"), elem_id="seed")
                pick_line("pick")
                with gr.Row():
                    gr.Button(strings.button("next-token"), variant="primary", elem_id="next-token")
                    gr.Slider(1, ctx.limits.max_new_tokens, value=min(10, ctx.limits.max_new_tokens), step=1,
                              label=strings.label("n-tokens"), elem_id="n-tokens")
                    gr.Button(strings.button("generate"), elem_id="generate")
                gr.Textbox(self.init["output"], label=strings.label("output"), lines=4,
                           interactive=False, elem_id="output")
            with gr.Column(scale=3):
                def vocabulary_labels(_args=None) -> list[str]:   # the page's call arguments arrive as one list
                    return ctx.vocabulary_labels()
                distribution_panel("distribution", self.init["distribution"], vocabulary_labels)
        self.explain("distribution")
        with gr.Accordion(strings.label("temps-box"), open=False, elem_id="temps-box"):
            gr.Button(strings.button("temps-run"), elem_id="temps-run", scale=0, min_width=240)
            gr.HTML("", elem_id="temps")
        self.heading("kv_cache")
        with gr.Row():
            self.plot("kv-cache", scale=3)
            gr.HTML(self.init["kv-summary"], elem_id="kv-summary", scale=2)
        self.explain("kv_cache")

    def export(self):
        with gr.Row(elem_classes=["gg-export"]):
            gr.Button(strings.button("export"), elem_id="export", scale=0, min_width=260)
            gr.File(label=strings.label("session-file"), elem_id="session-file", interactive=False, scale=1, height=90)
            gr.Markdown(strings.text("share-note"), elem_id="share-note")

    def model_card(self):
        self.heading("model_card")
        with gr.Row():
            gr.HTML(self.ctx.static["model-card"], elem_id="model-card")
            plot_panel("params-figure", self.ctx.static["params-figure"])
        self.explain("model_card")

    def ablation(self):
        self.heading("ablation")
        with gr.Row():
            gr.Textbox(label=strings.label("ablate-heads"), elem_id="ablate-heads")
            gr.Textbox(label=strings.label("ablate-neurons"), elem_id="ablate-neurons")
            gr.Button(strings.button("ablate"), elem_id="ablate", scale=0, min_width=200)
        gr.Markdown("", elem_id="ablation-summary")
        hint = strings.HINTS["ablation"]
        with gr.Row():
            plot_panel("ablation", hint=hint)
            plot_panel("ablation-lens", hint=hint)
        self.explain("ablation")

    def compare(self):
        self.heading("compare")
        with gr.Row():
            gr.Textbox("The bank raised rates", label=strings.label("prompt-b"),
                       elem_id="prompt-b")
            gr.Button(strings.button("compare"), elem_id="compare", scale=0, min_width=160)
        gr.Markdown("", elem_id="compare-summary")
        hint = strings.HINTS["compare"]
        with gr.Row():
            plot_panel("compare-attention", hint=hint)
            plot_panel("compare-cosine", hint=hint)
        with gr.Row():
            plot_panel("compare-mlp", hint=hint)
            plot_panel("compare-prediction", hint=hint)
        self.explain("compare")

    def residual_path(self):
        self.heading("residual_path")
        with gr.Row():
            gr.Textbox("", label=strings.label("path-positions"), elem_id="path-positions")
            gr.Checkbox(False, label=strings.label("path-include-first"), elem_id="path-include-first")
            gr.Checkbox(True, label=strings.label("path-direction"), elem_id="path-direction")
            gr.Button(strings.button("draw-path"), elem_id="draw-path", scale=0, min_width=160)
        plot_panel("residual-path", hint=strings.HINTS["residual-path"])
        self.explain("residual_path")

    def attribution(self):
        self.heading("attribution")
        with gr.Row():
            gr.Textbox("", label=strings.label("dla-target"), elem_id="dla-target")
            gr.Textbox("", label=strings.label("dla-foil"), elem_id="dla-foil")
            gr.Button(strings.button("dla-run"), elem_id="dla-run", scale=0, min_width=140)
        with gr.Row():
            with gr.Column(scale=3):
                plot_panel("attribution", hint=strings.HINTS["attribution"])
            with gr.Column(scale=2):
                gr.HTML("", elem_id="attribution-top")
        with gr.Row():
            gr.Slider(0.01, 0.5, value=0.08, step=0.01, label=strings.label("routes-threshold"), elem_id="routes-threshold")
            gr.Button(strings.button("routes-run"), elem_id="routes-run", scale=0, min_width=180)
        plot_panel("routes", hint=strings.HINTS["routes"])
        with gr.Row():
            gr.Textbox("The Eiffel Tower is in the city of", label=strings.label("patch-clean"), elem_id="patch-clean")
            gr.Textbox("The Colosseum is in the city of", label=strings.label("patch-corrupted"), elem_id="patch-corrupted")
        with gr.Row():
            gr.Textbox(" Paris", label=strings.label("patch-answer"), elem_id="patch-answer", min_width=100)
            gr.Textbox(" Rome", label=strings.label("patch-foil"), elem_id="patch-foil", min_width=100)
            gr.Button(strings.button("patch-run"), elem_id="patch-run", scale=0, min_width=220)
            gr.Button(strings.button("patch-cancel"), elem_id="patch-cancel", scale=0, min_width=100)
        gr.HTML("", elem_id="patch-status")
        plot_panel("patching", hint=strings.HINTS["patching"])
        self.explain("attribution")

    def all(self):
        for build in (self.header, self.tokens, self.embeddings, self.stepper, self.attention, self.mlp,
                      self.logit_lens, self.distribution, self.export, self.model_card, self.ablation,
                      self.compare, self.residual_path, self.attribution):
            build()
