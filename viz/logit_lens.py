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
from .words import table

W = table("logit_lens", {
    # the layers x positions heatmap
    "end_of_prompt": ("(end of prompt)", "（提示词已结束）"),
    "next_in_prompt": ("<br><i>next in prompt: {next}</i>", "<br><i>提示词中实际的下一个词元：{next}</i>"),
    "hover_topk": ("layer %{{y}} · position #%{{customdata}} %{{x}}<br><b>top-%{{meta}}</b><br>%{{hovertext}}"
                   "<extra></extra>",
                   "层：%{{y}} · 位置 #%{{customdata}} %{{x}}<br><b>前 %{{meta}} 名</b><br>%{{hovertext}}"
                   "<extra></extra>"),
    "hover_top1": ("layer %{{y}} · position #%{{customdata}} %{{x}}<br>top-1 %{{hovertext}}<extra></extra>",
                   "层：%{{y}} · 位置 #%{{customdata}} %{{x}}<br>首选 %{{hovertext}}<extra></extra>"),
    "top1_prob": ("top-1 prob.", "首选概率"),
    "x_axis": ("input token at each position (cells: its guess for the next token)",
               "各位置的输入词元（格中是对下一个词元的预测）"),
    "y_axis": ("after layer (embed = before any block)", "第几层之后（嵌入 = 第一层之前）"),
    "embed": ("embed", "嵌入"),
    "detail": ("top row = the model's real prediction; colour = probability of the top guess",
               "最上面一行是模型真正的预测；颜色表示首选预测的概率"),
    "left_out": ("; {P} of {T} positions shown (the last ones and the focus), the other {rest} left out",
                 "；共 {T} 个位置，显示了 {P} 个（最后几个和焦点），其余 {rest} 个略去"),
    "colour_only": ("; {P} positions: hover for the tokens", "；共 {P} 个位置：悬停可看词元"),
    "title": ("Logit lens: the top next-token guess after each layer", "logit 透镜：每一层之后对下一个词元的首选预测"),
    # one position's prediction, layer by layer
    "prob_name": ("probability of “{target}”", "“{target}”的概率"),
    "prob_hover": ("p(“{target}”) = %{{y:.4f}}<br>top-1 here: “%{{customdata}}”<extra></extra>",
                   "p(“{target}”) = %{{y:.4f}}<br>此处首选：“%{{customdata}}”<extra></extra>"),
    "rank_name": ("rank of “{target}” (right axis)", "“{target}”的排名（右轴）"),
    "rank_hover": ("rank %{{y:,}} of {V}<extra></extra>", "在 {V} 个词元中排第 %{{y:,}}<extra></extra>"),
    "after_layer": ("after layer", "第几层之后"),
    "probability": ("probability", "概率"),
    "rank_axis": ("rank (1 = top)", "排名（1 = 最高）"),
    "focus_title": ("How the prediction after #{focus} “{piece}” forms", "#{focus} “{piece}” 之后的预测是怎样形成的"),
    "focus_detail": ("final top-1: “{target}” (p = {p:.3f}); its probability and rank after each layer",
                     "最终首选：“{target}”（p = {p:.3f}）；图中是它在每一层之后的概率和排名"),
})

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


def _layer_ticks(lens: LogitLens) -> list[str]:
    """The rows' names: "embed" (in the page's language), then the block numbers."""
    return [W("embed") if s == "embed" else s for s in lens.layer_labels]


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
    nxt = [(f"“{_piece(trace.pieces[p + 1])}”" if p + 1 < trace.T else W("end_of_prompt"))
           for p in lens.positions]
    if R * P <= _MAX_HOVER_CELLS:
        hover = [[("<br>".join(f"{_esc(label(lens.top_ids[r, c, j]))}  {lens.top_probs[r, c, j]:.3f}"
                               for j in range(k))
                   + W("next_in_prompt", next=nxt[c])) for c in range(P)] for r in range(R)]
        hover_tpl = W("hover_topk")
    else:
        hover = [[f"{_esc(label(top1[r, c]))}  {probs[r, c]:.3f}" for c in range(P)] for r in range(R)]
        hover_tpl = W("hover_top1")
    pos = np.asarray(lens.positions)
    heat = dict(type="heatmap", z=probs, x0=0, dx=1, y0=0, dy=1, zmin=0, zmax=1, colorscale=SEQUENTIAL,
                customdata=np.broadcast_to(pos, (R, P)).astype(np.int32), hovertext=hover, meta=k,
                hovertemplate=hover_tpl, xgap=1, ygap=1,
                colorbar=dict(title=dict(text=W("top1_prob")), thickness=12))
    if show_text:
        size = 11 if P <= 16 else 9
        heat.update(text=text, texttemplate="%{text}", textfont=dict(size=size))
    ticks = [_piece(trace.pieces[p]) for p in lens.positions]
    layout = dict(
        autosize=True, plot_bgcolor="#f4f4f4",
        meta=dict(gg_mark=dict(kind="row", offset=1)),     # the page outlines the current layer's row
        xaxis=dict(tickmode="array", tickvals=list(range(P)), ticktext=ticks, side="bottom",
                   range=[-0.5, P - 0.5], automargin=True, showgrid=False,
                   title=dict(text=W("x_axis"))),
        yaxis=dict(tickmode="array", tickvals=list(range(R)), ticktext=_layer_ticks(lens),
                   range=[-0.5, R - 0.5], automargin=True, showgrid=False,
                   title=dict(text=W("y_axis"))))
    detail = W("detail")
    if P < trace.T:           # never drop positions silently
        detail += W("left_out", P=P, T=trace.T, rest=trace.T - P)
    if not show_text:
        detail += W("colour_only", P=P)
    fig = base_layout(go.Figure(data=[heat], layout=layout), two_line_title(W("title"), detail),
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
        dict(type="scatter", x=x, y=prob, mode="lines+markers", name=W("prob_name", target=target),
             line=dict(color="#0072b2", width=2.5), marker=dict(size=6),
             customdata=top1, hovertemplate=W("prob_hover", target=target)),
        dict(type="scatter", x=x, y=rank, mode="lines+markers", name=W("rank_name", target=target),
             yaxis="y2", line=dict(color="#e69f00", width=2, dash="dot"), marker=dict(size=6, symbol="diamond"),
             hovertemplate=W("rank_hover", V=f"{trace.config.vocab_size:,}")),
    ]
    max_rank = max(int(rank.max()), 10)
    rank_ticks = [10 ** e for e in range(int(np.ceil(np.log10(max_rank * 1.5))))]
    layout = dict(
        autosize=True, hovermode="x unified",
        legend=dict(orientation="h", x=0, y=-0.22, yanchor="top"),
        xaxis=dict(tickmode="array", tickvals=list(x), ticktext=_layer_ticks(lens), range=[-0.5, R - 0.5],
                   title=dict(text=W("after_layer")), tickfont=dict(size=10)),
        yaxis=dict(title=dict(text=W("probability")), range=[0, 1.02], rangemode="tozero"),
        yaxis2=dict(title=dict(text=W("rank_axis")), type="log", overlaying="y", side="right",
                    range=[np.log10(max_rank * 1.5), -0.05], showgrid=False, tickmode="array",
                    tickvals=rank_ticks, ticktext=[f"{v:,}" for v in rank_ticks]))
    piece = _piece(trace.pieces[int(focus_pos)])
    title = two_line_title(W("focus_title", focus=focus_pos, piece=piece),
                           W("focus_detail", target=target, p=prob[-1]))
    fig = base_layout(go.Figure(data=data, layout=layout), title, height=420)
    fig.update_layout(margin=dict(l=60, r=60, t=70, b=60))
    return fig
