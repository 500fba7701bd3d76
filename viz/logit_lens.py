"""Logit-lens panels: what the model "would predict so far" after each layer.

Both take the `LogitLens` record that `LanguageModel.logit_lens(trace, positions)` returns (the final
norm and unembedding applied to the residual stream after each layer) plus the trace, and a
`labels` callable id -> display string (the app passes
`lambda i: lm.tokenizer.pieces([i])[0].display`). Every label is escaped here.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import plotly.graph_objects as go

from model.records import LogitLens
from model.trace import Trace

from .common import SEQUENTIAL, base_layout, piece_label, plotly_text, short, two_line_title

_CELL_CHARS = 7           # cell text: at most this many characters of the top token
_MAX_TEXT_COLUMNS = 40    # beyond this many positions, cells carry colour only (hover still works)
_MAX_HOVER_CELLS = 8_000  # beyond this many cells, hover shows the top-1 only (not the top-5)


_esc, _piece = plotly_text, piece_label


def _check_lens(lens: LogitLens, trace: Trace) -> None:
    if not isinstance(lens, LogitLens):
        raise ValueError("lens must be the LogitLens record from LanguageModel.logit_lens(), "
                         f"got {type(lens).__name__}")
    bad = [p for p in lens.positions if not 0 <= p < trace.T]
    if bad:
        raise ValueError(f"lens positions {bad[:5]} are outside this trace's 0..{trace.T - 1}: "
                         "was the lens computed for another prompt?")
    if lens.top_ids.shape[:2] != (len(lens.layer_labels), len(lens.positions)):
        raise ValueError(f"lens arrays have shape {lens.top_ids.shape}, expected "
                         f"({len(lens.layer_labels)}, {len(lens.positions)}, k)")
    if len(lens.layer_labels) != trace.config.n_layer + 1:
        raise ValueError(f"lens has {len(lens.layer_labels)} rows, this model has {trace.config.n_layer} "
                         "layers (+1 for the embedding)")


def _label_fn(labels: Callable[[int], str]) -> Callable[[int], str]:
    if not callable(labels):
        raise ValueError("labels must be a function from a token id to its display string")
    cache: dict[int, str] = {}

    def get(i: int) -> str:
        i = int(i)
        if i not in cache:
            cache[i] = str(labels(i))
        return cache[i]
    return get


def logit_lens_figure(lens: LogitLens, trace: Trace, labels: Callable[[int], str]) -> go.Figure:
    """Layers (rows: embed at the bottom, then blocks 0..L-1) x lens positions (columns): each cell
    names the layer's top-1 next-token guess and is coloured by its probability; hover lists the
    top-5 with probabilities. The top row is the model's real prediction."""
    _check_lens(lens, trace)
    label = _label_fn(labels)
    R, P, k = lens.top_ids.shape
    probs = lens.top_probs[:, :, 0].astype(np.float32)                    # (R, P)
    top1 = lens.top_ids[:, :, 0]
    show_text = P <= _MAX_TEXT_COLUMNS
    text = [[short(label(top1[r, c]), _CELL_CHARS) for c in range(P)] for r in range(R)] if show_text else None
    nxt = [(f"“{_piece(trace.pieces[p + 1])}”" if p + 1 < trace.T else "(end of prompt)")
           for p in lens.positions]
    if R * P <= _MAX_HOVER_CELLS:
        hover = [[("<br>".join(f"{_esc(label(lens.top_ids[r, c, j]))}  {lens.top_probs[r, c, j]:.3f}"
                               for j in range(k))
                   + f"<br><i>next in prompt: {nxt[c]}</i>") for c in range(P)] for r in range(R)]
        hover_tpl = "layer %{y} · position #%{customdata} %{x}<br><b>top-%{meta}</b><br>%{hovertext}<extra></extra>"
    else:
        hover = [[f"{_esc(label(top1[r, c]))}  {probs[r, c]:.3f}" for c in range(P)] for r in range(R)]
        hover_tpl = "layer %{y} · position #%{customdata} %{x}<br>top-1 %{hovertext}<extra></extra>"
    pos = np.asarray(lens.positions)
    heat = dict(type="heatmap", z=probs, x0=0, dx=1, y0=0, dy=1, zmin=0, zmax=1, colorscale=SEQUENTIAL,
                customdata=np.broadcast_to(pos, (R, P)).astype(np.int32), hovertext=hover, meta=k,
                hovertemplate=hover_tpl, xgap=1, ygap=1,
                colorbar=dict(title=dict(text="top-1 prob."), thickness=12))
    if show_text:
        size = 11 if P <= 16 else 9
        heat.update(text=text, texttemplate="%{text}", textfont=dict(size=size))
    ticks = [_piece(trace.pieces[p]) for p in lens.positions]
    layout = dict(
        autosize=True, plot_bgcolor="#f4f4f4",
        meta=dict(gg_mark=dict(kind="row", offset=1)),     # the page outlines the current layer's row
        xaxis=dict(tickmode="array", tickvals=list(range(P)), ticktext=ticks, side="bottom",
                   range=[-0.5, P - 0.5], automargin=True, showgrid=False,
                   title=dict(text="input token at each position (cells: its guess for the next token)")),
        yaxis=dict(tickmode="array", tickvals=list(range(R)), ticktext=list(lens.layer_labels),
                   range=[-0.5, R - 0.5], automargin=True, showgrid=False,
                   title=dict(text="after layer (embed = before any block)")))
    detail = "top row = the model's real prediction; colour = probability of the top guess"
    if P < trace.T:           # never drop positions silently
        detail += f"; {P} of {trace.T} positions shown (the last ones and the focus), the other {trace.T - P} left out"
    if not show_text:
        detail += f"; {P} positions: hover for the tokens"
    fig = base_layout(go.Figure(data=[heat], layout=layout),
                      two_line_title("Logit lens: the top next-token guess after each layer", detail),
                      height=int(max(520, 22 * R + 190)))
    fig.update_layout(margin=dict(l=60, r=20, t=70, b=60))
    return fig


def focus_lens_figure(lens: LogitLens, trace: Trace, focus_pos: int, labels: Callable[[int], str]) -> go.Figure:
    """For one position: the probability each layer gives the model's final prediction (left axis)
    and that token's rank (right axis, log scale, rank 1 at the top)."""
    _check_lens(lens, trace)
    label = _label_fn(labels)
    if isinstance(focus_pos, bool) or not isinstance(focus_pos, (int, np.integer)) or focus_pos not in lens.positions:
        raise ValueError(f"focus_pos must be one of the lens positions {list(lens.positions)[:10]}"
                         f"{'…' if len(lens.positions) > 10 else ''}, got {focus_pos!r}")
    c = list(lens.positions).index(int(focus_pos))
    R = len(lens.layer_labels)
    prob = lens.target_probs[:, c].astype(np.float32)
    rank = lens.target_ranks[:, c].astype(np.int64) + 1                  # 1 = top
    target = _esc(label(lens.target_ids[c]))
    top1 = [_esc(label(i)) for i in lens.top_ids[:, c, 0]]
    x = np.arange(R)
    data = [
        dict(type="scatter", x=x, y=prob, mode="lines+markers", name=f"probability of “{target}”",
             line=dict(color="#0072b2", width=2.5), marker=dict(size=6),
             customdata=top1, hovertemplate="p(“" + target + "”) = %{y:.4f}"
                                            "<br>top-1 here: “%{customdata}”<extra></extra>"),
        dict(type="scatter", x=x, y=rank, mode="lines+markers", name=f"rank of “{target}” (right axis)",
             yaxis="y2", line=dict(color="#e69f00", width=2, dash="dot"), marker=dict(size=6, symbol="diamond"),
             hovertemplate="rank %{y:,} of " + f"{trace.config.vocab_size:,}" + "<extra></extra>"),
    ]
    max_rank = max(int(rank.max()), 10)
    rank_ticks = [10 ** e for e in range(int(np.ceil(np.log10(max_rank * 1.5))))]
    layout = dict(
        autosize=True, hovermode="x unified",
        legend=dict(orientation="h", x=0, y=-0.22, yanchor="top"),
        xaxis=dict(tickmode="array", tickvals=list(x), ticktext=list(lens.layer_labels), range=[-0.5, R - 0.5],
                   title=dict(text="after layer"), tickfont=dict(size=10)),
        yaxis=dict(title=dict(text="probability"), range=[0, 1.02], rangemode="tozero"),
        yaxis2=dict(title=dict(text="rank (1 = top)"), type="log", overlaying="y", side="right",
                    range=[np.log10(max_rank * 1.5), -0.05], showgrid=False, tickmode="array",
                    tickvals=rank_ticks, ticktext=[f"{v:,}" for v in rank_ticks]))
    piece = _piece(trace.pieces[int(focus_pos)])
    title = two_line_title(f"How the prediction after #{focus_pos} “{piece}” forms",
                   f"final top-1: “{target}” (p = {prob[-1]:.3f}); its probability and rank after each layer")
    fig = base_layout(go.Figure(data=data, layout=layout), title, height=420)
    fig.update_layout(margin=dict(l=60, r=60, t=70, b=60))
    return fig
