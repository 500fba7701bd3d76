"""The page's own components, built on gr.HTML.

A plot panel keeps one Plotly div for the life of the page (assets/plots.js updates it with
Plotly.react), where gr.Plot would mount a fresh div, and draw the figure twice, on every update.
Its value is the figure as JSON without Plotly's template, which the page applies once.
The distribution panel's value is data, not a figure: the page computes the chart from the
logits for every temperature, top-k, top-p and seed (assets/sampling.js).
"""
from __future__ import annotations

import json
from functools import lru_cache

import gradio as gr
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io.json import to_json_plotly

from .layer_data import layer_data_value
from .render import COMPUTING

PLOT_TEMPLATE = '<div class="gg-plot-host"></div>'     # never changes, so Gradio never re-renders it
COMPUTING_VALUE = '{"gg_computing": true}'
HTML_IDS = ("neighbours", "big-picture")        # lens-dependent panels that are HTML, not figures


def figure_value(fig: go.Figure | None) -> str:
    """A figure as the JSON string a plot panel takes ("" = empty: the panel shows its hint)."""
    if fig is None:
        return ""
    d = fig.to_plotly_json()
    d.get("layout", {}).pop("template", None)       # the same 6.5 KB in every figure: sent once per page
    return to_json_plotly(d)


@lru_cache(maxsize=1)
def template_json() -> str:
    """The figures' shared look (Plotly's white template), set once in the page. Tick labels may
    overflow the plot: Plotly's default ("hide past div") measures every label's box on every
    draw, the largest single cost of redrawing a token-labelled heatmap."""
    template = pio.templates[pio.templates.default].to_plotly_json()
    for axis in ("xaxis", "yaxis"):
        template["layout"].setdefault(axis, {})["ticklabeloverflow"] = "allow"
    return to_json_plotly(template)


def plot_panel(elem_id: str, figure: go.Figure | None = None, hint: str | dict = "", **kw) -> gr.HTML:
    """A persistent Plotly figure. `hint` ({"en": ..., "zh": ...} or one text) is shown while the
    panel is empty (what fills it)."""
    return gr.HTML(figure_value(figure), html_template=PLOT_TEMPLATE, elem_id=elem_id,
                   elem_classes=["gg-plot-panel"], js_on_load="GG.mountPlot(element, props, watch);",
                   hint=hint, **kw)


def layer_panel(elem_id: str, **kw) -> gr.HTML:
    """A plot panel the page fills from the layer data (assets/layers.js), never from its own value."""
    return gr.HTML("", html_template=PLOT_TEMPLATE, elem_id=elem_id, elem_classes=["gg-plot-panel"],
                   js_on_load="GG.makePanel(element); GG.layers.draw();", **kw)


def distribution_panel(elem_id: str, payload: dict, vocabulary_labels) -> gr.HTML:
    """The next-token chart, computed in the page from `payload` (viz.distribution.distribution_payload);
    `vocabulary_labels()` gives every token's label once per page."""
    return gr.HTML(json.dumps(payload), html_template=PLOT_TEMPLATE, elem_id=elem_id,
                   elem_classes=["gg-plot-panel"], server_functions=[vocabulary_labels],
                   js_on_load="GG.mountDistribution(element, props, watch, server);")


def pick_line(elem_id: str) -> gr.HTML:
    """The line saying which token the seeded sampler would pick; written by the page."""
    return gr.HTML("", html_template='<p class="gg-pick" aria-live="polite"></p>', elem_id=elem_id,
                   js_on_load="GG.mountPick(element);")


def output_value(elem_id: str, value):
    """A handler's output as its component takes it: figures for plot panels become JSON."""
    if value is COMPUTING:
        return COMPUTING_VALUE if elem_id not in HTML_IDS else ('<p class="gg-computing"><span class="gg-en">computing…</span>'
                                                                    '<span class="gg-zh">计算中…</span></p>')
    if isinstance(value, go.Figure):
        return figure_value(value)
    if isinstance(value, dict) and elem_id == "distribution":
        return json.dumps(value)
    if isinstance(value, dict) and elem_id == "layer-data":
        return layer_data_value(value)
    return value
