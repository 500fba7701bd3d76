"""Ablation panels: what switching heads or MLP neurons off did to the prediction.

`ablation_figure` compares two next-token distributions (the plain run and the ablated run) for the
same prompt; `ablation_lens_figure` follows the plain run's top token through the layers of both
runs with the logit lens. Inputs are the records the model side returns (`sampling.Distribution`,
`LogitLens`, `Trace`); every label is escaped here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from model.records import LogitLens
from model.sampling import Distribution
from model.trace import Trace

from .common import base_layout, pct, piece_label, plotly_text, short, two_line_title

if TYPE_CHECKING:            # model.ablation needs torch; only its type is named here
    from model.ablation import Ablation

BEFORE = "#0072b2"        # Okabe-Ito blue
AFTER = "#d55e00"         # Okabe-Ito vermillion
UP = "#d55e00"            # the change: vermillion up, blue down (no red/green contrast)
DOWN = "#0072b2"
MAX_LABEL = 16


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
        hover.append(f"<b>{plotly_text(names[r])}</b> · id {i}<br>before: {pct(pb[i])} (rank {rb})"
                     f"<br>after: {pct(pa[i])} (rank {ra})<br>change: {_signed_pct(delta[r])}")
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, column_widths=[0.6, 0.4], horizontal_spacing=0.04)
    common = dict(orientation="h", y=rows, hovertext=hover, hovertemplate="%{hovertext}<extra></extra>",
                  customdata=ids.tolist(), cliponaxis=False)
    fig.add_trace(go.Bar(name="before (plain model)", x=pb[ids], marker_color=BEFORE,
                         text=[pct(v) if v >= 0.005 else "" for v in pb[ids]], textposition="outside",
                         textfont=dict(size=11),
                         **common), 1, 1)
    fig.add_trace(go.Bar(name="after (ablated)", x=pa[ids], marker_color=AFTER,
                         marker_pattern=dict(shape="/", fgcolor="rgba(255,255,255,0.45)", size=5),
                         text=[pct(v) if v >= 0.005 else "" for v in pa[ids]], textposition="outside",
                         textfont=dict(size=11),
                         **common), 1, 1)
    fig.add_trace(go.Bar(name="change", x=delta, marker_color=[UP if d > 0 else DOWN for d in delta],
                         showlegend=False, text=[_signed_pct(d) for d in delta], textposition="outside",
                         textfont=dict(size=11), **common), 1, 2)
    top = float(max(pb[ids].max(), pa[ids].max(), 1e-9))
    lim = float(max(np.abs(delta).max(), 1e-9)) * 1.45
    kl = kl_bits(pb, pa)
    tb, ta = int(np.argmax(pb)), int(np.argmax(pa))
    same = "unchanged" if tb == ta else f"was {short(labels(tb), MAX_LABEL)}"
    detail = (f"top token after: “{short(labels(ta), MAX_LABEL)}” ({same})"
              f" · KL(before ‖ after) = {kl:.3f} bits"
              f" · temperature {before.params.temperature:g}")
    if what:
        detail = f"switched off: {short(what, 90)}<br>" + detail
    base_layout(fig, two_line_title("Ablation: next-token probabilities before and after", detail),
                height=max(330, 24 * len(ids) + 190))
    fig.update_layout(
        barmode="group", bargap=0.25, bargroupgap=0.05, autosize=True,
        margin=dict(l=10, r=30, t=96 if what else 80, b=80),
        legend=dict(orientation="h", yanchor="top", y=-0.16 if len(ids) < 8 else -0.1, x=0, font=dict(size=11)))
    fig.update_yaxes(tickmode="array", tickvals=rows, ticktext=[short(s, MAX_LABEL) for s in names],
                     autorange="reversed", automargin=True, tickfont=dict(family="ui-monospace, monospace"),
                     row=1, col=1)
    fig.update_xaxes(tickformat=".0%", range=[0, min(1.0, top * 1.3)], title=dict(text="probability"), row=1, col=1)
    fig.update_xaxes(tickformat="+.0%", range=[-lim, lim], zeroline=True, zerolinecolor="#444",
                     title=dict(text="change (after − before)"), row=1, col=2)
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
    hb = [f"before: p = {pb[r]:.4f}, rank {rb[r]:,} · top-1 here “{top_b[r]}”" for r in range(R)]
    ha = [f"after: p = {pa[r]:.4f}, rank {ra[r]:,} · top-1 here “{top_a[r]}”" for r in range(R)]
    data = [
        go.Scatter(x=x, y=pb, mode="lines+markers", name=f"before: p(“{name}”)", line=dict(color=BEFORE, width=2.5),
                   marker=dict(size=6), hovertext=hb, hovertemplate="%{hovertext}<extra></extra>"),
        go.Scatter(x=x, y=pa, mode="lines+markers", name=f"after ablation: p(“{name}”)",
                   line=dict(color=AFTER, width=2.5, dash="dash"), marker=dict(size=7, symbol="diamond"),
                   hovertext=ha, hovertemplate="%{hovertext}<extra></extra>"),
    ]
    for rank, colour, who in ((rb, BEFORE, "before"), (ra, AFTER, "after")):
        data.append(go.Scatter(x=x, y=rank, mode="lines", yaxis="y2", name=f"rank {who}",
                               line=dict(color=colour, width=1.3, dash="dot"), hoverinfo="skip"))
    fig = go.Figure(data=data)
    switched_off = () if ablation is None else (*ablation.heads, *ablation.neurons)
    layers = sorted({l for l, _ in switched_off})
    for l in layers:   # row l + 1 reads the output of block l
        fig.add_vline(x=l + 1, line=dict(color="#777", width=1, dash="dot"))
    if layers:
        shown = ", ".join(str(l) for l in layers[:8]) + (" …" if len(layers) > 8 else "")
        fig.add_annotation(x=layers[0] + 1, y=1.04, yref="y", text=f"switched off in layer {shown}", showarrow=False,
                           xanchor="left", font=dict(size=10, color="#555"))
    final_after = short(labels(int(lens_after.top_ids[-1, ca, 0])), MAX_LABEL)
    detail = (f"p(“{name}”) at the last layer: {pb[-1]:.3f} → {pa[-1]:.3f}"
              f" · ablated model's top-1: “{final_after}”")
    pos = trace_before.T - 1
    title = two_line_title(f"Ablation in the logit lens: p(“{name}”) after each layer, at #{pos} "
                   f"“{piece_label(trace_before.pieces[pos])}”", detail)
    max_rank = max(int(rb.max()), int(ra.max()), 10)
    rank_ticks = [10 ** e for e in range(int(np.ceil(np.log10(max_rank * 1.5))))]
    base_layout(fig, title, height=460)
    fig.update_layout(
        autosize=True, hovermode="x unified", margin=dict(l=60, r=60, t=70, b=110),
        legend=dict(orientation="h", x=0, y=-0.3, yanchor="top", font=dict(size=11)),
        xaxis=dict(tickmode="array", tickvals=list(x), ticktext=list(lens_before.layer_labels),
                   range=[-0.5, R - 0.5], title=dict(text="after layer"), tickfont=dict(size=10)),
        yaxis=dict(title=dict(text="probability"), range=[0, 1.08]),
        yaxis2=dict(title=dict(text="rank (1 = top, log)"), type="log", overlaying="y", side="right",
                    range=[np.log10(max_rank * 1.5), -0.05], showgrid=False, tickmode="array",
                    tickvals=rank_ticks, ticktext=[f"{v:,}" for v in rank_ticks]))
    return fig
