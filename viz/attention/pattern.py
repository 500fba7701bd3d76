"""One head's attention pattern: query tokens x key tokens, the focus query row outlined."""
from __future__ import annotations

import math

import numpy as np

from model.trace import Trace

from ..common import SEQUENTIAL, check_bool, check_head, check_layer, check_position, make_figure, two_line_title
from ..words import table
from ._base import _focus_text, _head_label, _pattern, _sink_note, _token_axis, _view

W = table("attention.pattern", {
    "hover": ("query #%{{pointNumber[0]}} %{{y}}<br>key #%{{pointNumber[1]}} %{{x}}<br>",
              "查询 #%{{pointNumber[0]}} %{{y}}<br>键 #%{{pointNumber[1]}} %{{x}}<br>"),
    "weight": ("weight", "权重"),
    "renormalised_weight": ("renormalised weight", "重新归一化的权重"),
    "title": ("Layer {layer} · head {head}: attention pattern", "第 {layer} 层 · 注意力头 {head}：注意力模式"),
    "subtitle": ("query {focus} outlined; each row sums to 1; the empty upper triangle is the masked future{notes}",
                 "已框出查询 {focus}；每行之和为 1；右上方空白的三角形是被掩码的未来位置{notes}"),
    "log_note": ("; log colour scale", "；对数色标"),
    "key_axis": ("key token (attended to)", "键词元（被关注）"),
    "query_axis": ("query token (attending)", "查询词元（发出关注）"),
})

_LOG_FLOOR = 1e-4          # log colour scale: weights below this share the lowest colour


def head_pattern_figure(trace: Trace, layer: int, head: int, focus: int, exclude_first: bool = False,
                        scale: str = "linear", renormalise: bool = False):
    """Query tokens (rows) x key tokens (columns) for one head; the focus query row is outlined.

    The causal upper triangle is empty (NaN), never 0. To see past the attention sink: hide key 0
    (`exclude_first`, weights as computed, or `renormalise` to redistribute each row over the other
    keys), or colour on a log scale (`scale="log"`)."""
    check_layer(trace, layer)
    check_head(trace, head)
    check_position(trace, focus)
    exclude_first = check_bool("exclude_first", exclude_first)
    renormalise = check_bool("renormalise", renormalise)
    if scale not in ("linear", "log"):
        raise ValueError(f"scale must be 'linear' or 'log', got {scale!r}")
    T, cfg = trace.T, trace.config
    shown = _view(_pattern(trace, layer)[head], exclude_first, renormalise)   # NaN in the future
    heat = dict(type="heatmap", x0=0, dx=1, y0=0, dy=1, colorscale=SEQUENTIAL, hoverongaps=False,
                xgap=1 if T <= 40 else 0, ygap=1 if T <= 40 else 0)
    hover = W("hover")
    label = W("renormalised_weight" if exclude_first and renormalise else "weight")
    if scale == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.log10(np.maximum(shown, _LOG_FLOOR))
        z[np.isnan(shown)] = np.nan
        exps = list(range(int(math.log10(_LOG_FLOOR)), 1))
        heat.update(z=z, zmin=math.log10(_LOG_FLOOR), zmax=0, customdata=shown,
                    colorbar=dict(title=dict(text=label), tickvals=exps,
                                  ticktext=[f"{10.0 ** e:g}" for e in exps], thickness=12))
        hover += label + " %{customdata:.4g}"
    else:
        zmax = float(np.nanmax(shown)) if np.isfinite(shown).any() else 1.0
        heat.update(z=shown, zmin=0, zmax=zmax, colorbar=dict(title=dict(text=label), thickness=12))
        hover += label + " %{z:.4f}"
    heat["hovertemplate"] = hover + "<extra></extra>"
    notes = _sink_note(exclude_first, renormalise) + (W("log_note") if scale == "log" else "")
    title = two_line_title(W("title", layer=layer, head=_head_label(cfg, head)),
                           W("subtitle", focus=_focus_text(trace, focus), notes=notes))
    layout = dict(
        autosize=True, plot_bgcolor="#f4f4f4",
        shapes=[dict(type="rect", x0=-0.5, x1=focus + 0.5, y0=focus - 0.5, y1=focus + 0.5,
                     line=dict(color="#e66100", width=3), fillcolor="rgba(0,0,0,0)")],
        xaxis=dict(title=dict(text=W("key_axis")), range=[-0.5, T - 0.5], showgrid=False,
                   zeroline=False, automargin=True, **_token_axis(trace)),
        yaxis=dict(title=dict(text=W("query_axis")), range=[T - 0.5, -0.5], showgrid=False,
                   zeroline=False, automargin=True, **_token_axis(trace)))
    return make_figure([heat], layout, title, height=int(min(760, max(380, 150 + 16 * T))))
