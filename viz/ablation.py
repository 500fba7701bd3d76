"""Ablation panels: what switching heads or MLP neurons off did to the prediction.

`ablation_figure` compares two next-token distributions (the plain run and the ablated run) for the
same prompt; `ablation_lens_figure` follows the plain run's top token through the layers of both
runs with the logit lens. Inputs are the records the model side returns (`sampling.Distribution`,
`LogitLens`, `Trace`); every label is escaped here.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from model.records import LogitLens
from model.sampling import Distribution
from model.trace import Trace

from .common import base_layout, pct, piece_label, plotly_text, short, two_line_title
from .words import table

if TYPE_CHECKING:            # model.ablation needs torch; only its type is named here
    from model.ablation import Ablation

BEFORE = "#0072b2"        # Okabe-Ito blue
AFTER = "#d55e00"         # Okabe-Ito vermillion
UP = "#d55e00"            # the change: vermillion up, blue down (no red/green contrast)
DOWN = "#0072b2"
MAX_LABEL = 16

W = table("ablation", {
    # what was switched off (model.ablation.Ablation.describe, in the page's language)
    "desc_head": ("head {items}", "注意力头 {items}"),
    "desc_heads": ("heads {items}", "注意力头 {items}"),
    "desc_neuron": ("neuron {items}", "神经元 {items}"),
    "desc_neurons": ("neurons {items}", "神经元 {items}"),
    "desc_more": (" and {n} more", "，另有 {n} 个"),
    "desc_sep": ("; ", "；"),
    "desc_nothing": ("nothing", "无"),
    # the next-token figure
    "hover": ("<b>{name}</b> · id {i}<br>before: {pb} (rank {rb})<br>after: {pa} (rank {ra})<br>change: {change}",
              "<b>{name}</b> · id {i}<br>之前：{pb}（排名 {rb}）<br>之后：{pa}（排名 {ra}）<br>变化：{change}"),
    "before_name": ("before (plain model)", "之前（原模型）"),
    "after_name": ("after (ablated)", "之后（消融后）"),
    "change_name": ("change", "变化"),
    "unchanged": ("unchanged", "未变"),
    "was": ("was {token}", "原为 {token}"),
    "detail": ("top token after: “{top}” ({same}) · KL(before ‖ after) = {kl:.3f} bits · temperature {temp:g}",
               "之后的首选词元：“{top}”（{same}）· KL(之前 ‖ 之后) = {kl:.3f} 比特 · 温度 {temp:g}"),
    "switched_off": ("switched off: {what}<br>", "已关掉：{what}<br>"),
    "title": ("Ablation: next-token probabilities before and after", "消融：关掉前后的下一个词元概率"),
    "probability": ("probability", "概率"),
    "change_axis": ("change (after − before)", "变化（之后 − 之前）"),
    # the logit-lens figure
    "lens_hover_before": ("before: p = {p:.4f}, rank {rank:,} · top-1 here “{top}”",
                          "之前：p = {p:.4f}，排名 {rank:,} · 此处首选：“{top}”"),
    "lens_hover_after": ("after: p = {p:.4f}, rank {rank:,} · top-1 here “{top}”",
                         "之后：p = {p:.4f}，排名 {rank:,} · 此处首选：“{top}”"),
    "lens_before": ("before: p(“{name}”)", "之前：p(“{name}”)"),
    "lens_after": ("after ablation: p(“{name}”)", "消融之后：p(“{name}”)"),
    "rank_before": ("rank before", "之前的排名"),
    "rank_after": ("rank after", "之后的排名"),
    "list_sep": (", ", "、"),
    "switched_off_in": ("switched off in layer {layers}", "关掉的部分在第 {layers} 层"),
    "lens_detail": ("p(“{name}”) at the last layer: {before:.3f} → {after:.3f} · ablated model's top-1: “{top}”",
                    "最后一层的 p(“{name}”)：{before:.3f} → {after:.3f} · 消融后模型的首选：“{top}”"),
    "lens_title": ("Ablation in the logit lens: p(“{name}”) after each layer, at #{pos} “{piece}”",
                   "logit 透镜中的消融：位置 #{pos} “{piece}” 在每层之后的 p(“{name}”)"),
    "embed": ("embed", "嵌入"),
    "after_layer": ("after layer", "第几层之后"),
    "rank_axis": ("rank (1 = top, log)", "排名（1 = 最高，对数刻度）"),
})

_DESCRIBED = re.compile(r"(heads?|neurons?) (.*?)(?: and (\d+) more)?")


def describe(ablation: Ablation, cfg=None) -> str:
    """`ablation.describe(cfg=cfg)` in the current language ("heads 3.4, 5.*; neuron 5:1297")."""
    text = ablation.describe(cfg=cfg)
    if text == "nothing":
        return W("desc_nothing")
    parts = []
    for part in text.split("; "):
        m = _DESCRIBED.fullmatch(part)
        if not m:                      # a form this does not know: as the model wrote it
            return text
        parts.append(W("desc_" + m[1], items=m[2]) + (W("desc_more", n=m[3]) if m[3] else ""))
    return W("desc_sep").join(parts)


def _signed_pct(d: float) -> str:
    if d == 0:
        return "±0"
    return ("+" if d > 0 else "−") + (f"{abs(d):.1%}" if abs(d) >= 0.001 else f"{abs(d):.1e}")


def _check_dist(d: Distribution, what: str) -> None:
    if not isinstance(d, Distribution):
        raise ValueError(f"{what} must be a sampling.Distribution, got {type(d).__name__}")


def kl_bits(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p ‖ q) in bits: how many extra bits a code built for q wastes on data from p. 0 = same."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    m = p > 0
    if np.any(q[m] == 0):
        return float("inf")
    return max(0.0, float(np.sum(p[m] * (np.log2(p[m]) - np.log2(q[m])))))


def changed_ids(before: Distribution, after: Distribution, n: int) -> np.ndarray:
    """The tokens to show: the n most likely of either run, ordered by the larger of the two."""
    pb, pa = np.asarray(before.probs), np.asarray(after.probs)
    cand = np.union1d(np.argsort(-pb, kind="stable")[:n], np.argsort(-pa, kind="stable")[:n])
    key = np.maximum(pb[cand], pa[cand])
    return cand[np.lexsort((cand, -key))][:n]


def ablation_figure(before: Distribution, after: Distribution, labels: Callable[[int], str], n: int = 15,
                    what: str = "") -> go.Figure:
    """Left: the top tokens' probabilities before (blue) and after (vermillion) the ablation,
    grouped per token. Right: the change per token, after − before. `what`: plain text naming
    what was switched off (escaped here). Tokens: the n most likely of either run."""
    _check_dist(before, "before")
    _check_dist(after, "after")
    if len(before.probs) != len(after.probs):
        raise ValueError("before and after must be distributions over the same vocabulary")
    if not callable(labels):
        raise ValueError("labels must be a function id -> display string")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= len(before.probs):
        raise ValueError(f"n must be a whole number in 1..{len(before.probs)}, got {n!r}")
    ids = changed_ids(before, after, int(n))
    pb, pa = np.asarray(before.probs, dtype=np.float64), np.asarray(after.probs, dtype=np.float64)
    rank_b = {int(i): r + 1 for r, i in enumerate(np.argsort(-pb, kind="stable")[:1000])}
    rank_a = {int(i): r + 1 for r, i in enumerate(np.argsort(-pa, kind="stable")[:1000])}
    names = [str(labels(int(i))) for i in ids]
    rows = list(range(len(ids)))
    delta = pa[ids] - pb[ids]
    hover = []
    for r, i in enumerate(ids.tolist()):
        rb, ra = rank_b.get(i, ">1000"), rank_a.get(i, ">1000")
        hover.append(W("hover", name=plotly_text(names[r]), i=i, pb=pct(pb[i]), rb=rb, pa=pct(pa[i]), ra=ra,
                       change=_signed_pct(delta[r])))
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, column_widths=[0.6, 0.4], horizontal_spacing=0.04)
    common = dict(orientation="h", y=rows, hovertext=hover, hovertemplate="%{hovertext}<extra></extra>",
                  customdata=ids.tolist(), cliponaxis=False, constraintext="none")
    fig.add_trace(go.Bar(name=W("before_name"), x=pb[ids], marker_color=BEFORE,
                         text=[pct(v) if v >= 0.005 else "" for v in pb[ids]], textposition="outside",
                         textfont=dict(size=11), **common), 1, 1)
    fig.add_trace(go.Bar(name=W("after_name"), x=pa[ids], marker_color=AFTER,
                         marker_pattern=dict(shape="/", fgcolor="rgba(255,255,255,0.45)", size=5),
                         text=[pct(v) if v >= 0.005 else "" for v in pa[ids]], textposition="outside",
                         textfont=dict(size=11), **common), 1, 1)
    fig.add_trace(go.Bar(name=W("change_name"), x=delta, marker_color=[UP if d > 0 else DOWN for d in delta],
                         showlegend=False, text=[_signed_pct(d) for d in delta], textposition="outside",
                         textfont=dict(size=11), **common), 1, 2)
    top = float(max(pb[ids].max(), pa[ids].max(), 1e-9))
    lim = float(max(np.abs(delta).max(), 1e-9)) * 1.45
    kl = kl_bits(pb, pa)
    tb, ta = int(np.argmax(pb)), int(np.argmax(pa))
    same = W("unchanged") if tb == ta else W("was", token=short(labels(tb), MAX_LABEL))
    detail = W("detail", top=short(labels(ta), MAX_LABEL), same=same, kl=kl, temp=before.params.temperature)
    if what:
        detail = W("switched_off", what=short(what, 90)) + detail
    base_layout(fig, two_line_title(W("title"), detail),
                height=max(330, 28 * len(ids) + 190))      # rows tall enough for two 11-px value labels
    fig.update_layout(
        barmode="group", bargap=0.25, bargroupgap=0.05, autosize=True, uniformtext=dict(minsize=10, mode="show"),
        margin=dict(l=10, r=30, t=96 if what else 80, b=80),
        legend=dict(orientation="h", yanchor="top", y=-0.16 if len(ids) < 8 else -0.1, x=0, font=dict(size=11)))
    fig.update_yaxes(tickmode="array", tickvals=rows, ticktext=[short(s, MAX_LABEL) for s in names],
                     autorange="reversed", automargin=True, tickfont=dict(family="ui-monospace, monospace"),
                     row=1, col=1)
    fig.update_xaxes(tickformat=".0%", range=[0, min(1.0, top * 1.3)], title=dict(text=W("probability")), row=1, col=1)
    fig.update_xaxes(tickformat="+.0%", range=[-lim, lim], zeroline=True, zerolinecolor="#444",
                     title=dict(text=W("change_axis")), row=1, col=2)
    return fig


def _lens_column(lens: LogitLens, trace: Trace, what: str) -> int:
    if not isinstance(lens, LogitLens):
        raise ValueError(f"{what} must be the LogitLens record from LanguageModel.logit_lens()")
    last = trace.T - 1
    if last not in lens.positions:
        raise ValueError(f"{what} does not read the last position ({last}); include it in the positions asked")
    if len(lens.layer_labels) != trace.config.n_layer + 1:
        raise ValueError(f"{what} has {len(lens.layer_labels)} rows, expected {trace.config.n_layer + 1}")
    return list(lens.positions).index(last)


def ablation_lens_figure(lens_before: LogitLens, lens_after: LogitLens, trace_before: Trace,
                         labels: Callable[[int], str], ablation: Ablation | None = None) -> go.Figure:
    """The logit lens at the last position, plain run vs ablated run: the probability each layer
    gives the plain model's final top token. `lens_after` must follow that same token: compute it
    with `lm.logit_lens(ablated_trace, [T - 1], targets=[lens_before's target])`. `ablation`
    (optional, a model.ablation.Ablation): mark the layers where something was switched off."""
    cb = _lens_column(lens_before, trace_before, "lens_before")
    ca = _lens_column(lens_after, trace_before, "lens_after")
    if not callable(labels):
        raise ValueError("labels must be a function id -> display string")
    target = int(lens_before.target_ids[cb])
    if int(lens_after.target_ids[ca]) != target:
        raise ValueError("lens_after follows a different token than lens_before: compute it with "
                         "lm.logit_lens(ablated_trace, [T - 1], targets=[lens_before.target_ids[...]])")
    R = len(lens_before.layer_labels)
    x = np.arange(R)
    pb = lens_before.target_probs[:, cb].astype(np.float64)
    pa = lens_after.target_probs[:, ca].astype(np.float64)
    rb = lens_before.target_ranks[:, cb].astype(np.int64) + 1
    ra = lens_after.target_ranks[:, ca].astype(np.int64) + 1
    name = short(labels(target), MAX_LABEL)
    top_b = [short(labels(i), MAX_LABEL) for i in lens_before.top_ids[:, cb, 0]]
    top_a = [short(labels(i), MAX_LABEL) for i in lens_after.top_ids[:, ca, 0]]
    hb = [W("lens_hover_before", p=pb[r], rank=rb[r], top=top_b[r]) for r in range(R)]
    ha = [W("lens_hover_after", p=pa[r], rank=ra[r], top=top_a[r]) for r in range(R)]
    data = [
        go.Scatter(x=x, y=pb, mode="lines+markers", name=W("lens_before", name=name), line=dict(color=BEFORE, width=2.5),
                   marker=dict(size=6), hovertext=hb, hovertemplate="%{hovertext}<extra></extra>"),
        go.Scatter(x=x, y=pa, mode="lines+markers", name=W("lens_after", name=name),
                   line=dict(color=AFTER, width=2.5, dash="dash"), marker=dict(size=7, symbol="diamond"),
                   hovertext=ha, hovertemplate="%{hovertext}<extra></extra>"),
    ]
    for rank, colour, who in ((rb, BEFORE, "rank_before"), (ra, AFTER, "rank_after")):
        data.append(go.Scatter(x=x, y=rank, mode="lines", yaxis="y2", name=W(who),
                               line=dict(color=colour, width=1.3, dash="dot"), hoverinfo="skip"))
    fig = go.Figure(data=data)
    switched_off = () if ablation is None else (*ablation.heads, *ablation.neurons)
    layers = sorted({l for l, _ in switched_off})
    for l in layers:   # row l + 1 reads the output of block l
        fig.add_vline(x=l + 1, line=dict(color="#777", width=1, dash="dot"))
    if layers:
        shown = W("list_sep").join(str(l) for l in layers[:8]) + (" …" if len(layers) > 8 else "")
        fig.add_annotation(x=layers[0] + 1, y=1.04, yref="y", text=W("switched_off_in", layers=shown), showarrow=False,
                           xanchor="left", font=dict(size=10, color="#555"))
    final_after = short(labels(int(lens_after.top_ids[-1, ca, 0])), MAX_LABEL)
    detail = W("lens_detail", name=name, before=pb[-1], after=pa[-1], top=final_after)
    pos = trace_before.T - 1
    title = two_line_title(W("lens_title", name=name, pos=pos, piece=piece_label(trace_before.pieces[pos])), detail)
    max_rank = max(int(rb.max()), int(ra.max()), 10)
    rank_ticks = [10 ** e for e in range(int(np.ceil(np.log10(max_rank * 1.5))))]
    base_layout(fig, title, height=460)
    fig.update_layout(
        autosize=True, hovermode="x unified", margin=dict(l=60, r=60, t=70, b=110),
        legend=dict(orientation="h", x=0, y=-0.3, yanchor="top", font=dict(size=11)),
        xaxis=dict(tickmode="array", tickvals=list(x), ticktext=[W("embed") if s == "embed" else s for s in lens_before.layer_labels],
                   range=[-0.5, R - 0.5], title=dict(text=W("after_layer")), tickfont=dict(size=10)),
        yaxis=dict(title=dict(text=W("probability")), range=[0, 1.08]),
        yaxis2=dict(title=dict(text=W("rank_axis")), type="log", overlaying="y", side="right",
                    range=[np.log10(max_rank * 1.5), -0.05], showgrid=False, tickmode="array",
                    tickvals=rank_ticks, ticktext=[f"{v:,}" for v in rank_ticks]))
    return fig
