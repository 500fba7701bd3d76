"""Learned position vectors (GPT-2 family): what the model adds to each token's embedding so that
the same token at two positions enters the first block as two different vectors.

Panels, from the trace's own `hook_pos_embed` (the vectors actually added, one row per position):
  1. the prompt's position vectors, positions x the first dimensions (a heatmap);
  2. cosine similarity between the prompt's positions (nearby positions have similar vectors in a
     trained GPT-2; a randomly initialised model shows no such band);
  3. optional, when the whole table is passed (`lm.net.pos_embed.weight`, (n_ctx, C)): the same
     cosine over every position the model knows, sampled evenly, with the prompt's span outlined.

A Llama-family (RoPE) model adds no position vector: its figure is an explanation, not data.
viz/ must not import torch, so the table comes in as a numpy array.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from model.config import ModelConfig
from model.trace import Trace

from .common import DIVERGING, base_layout, piece_label
from .words import table

W = table("positions", {
    # a RoPE model: an explanation instead of data
    "none_title": ("Position vectors: none in this model", "位置向量：本模型没有"),
    "none_text": ("This model adds no position vector to the embedding: a token enters the first block as the same "
                  "vector at every position.<br>Positions are <b>rotations</b> instead (RoPE, base "
                  "{base:,.0f}): inside every attention layer, queries and keys are rotated by an angle<br>"
                  "that grows with the position, so an attention score depends on how far apart two tokens are.",
                  "本模型不给嵌入向量加位置向量：同一个词元无论在哪个位置，进入第一层时都是同一个向量。<br>"
                  "位置改由<b>旋转</b>来表示（RoPE，基数 {base:,.0f}）：在每个注意力层内部，"
                  "查询和键按一个随位置增大的角度旋转，<br>因此注意力分数取决于两个词元相距多远。"),
    # the learned position vectors
    "vectors_title": ("position vectors (first {dims} of {C} dims)", "位置向量（{C} 维中的前 {dims} 维）"),
    "cos_prompt_title": ("cosine between the prompt's positions", "提示词各位置间的余弦相似度"),
    "cos_all_title": ("cosine between all {n:,} positions", "全部 {n:,} 个位置间的余弦相似度"),
    "value": ("value", "数值"),
    "cosine": ("cosine", "余弦相似度"),
    "hover_vector": ("position %{{customdata}}<br>dim %{{x}}<br>value %{{z:.4f}}<extra></extra>",
                     "位置 %{{customdata}}<br>第 %{{x}} 维<br>数值 %{{z:.4f}}<extra></extra>"),
    "vectors_name": ("position vectors", "位置向量"),
    "pair": ("{a} and {b}", "{a} 与 {b}"),
    "hover_cos_prompt": ("positions %{{customdata}}<br>cosine %{{z:.3f}}<extra></extra>",
                         "位置 %{{customdata}}<br>余弦相似度 %{{z:.3f}}<extra></extra>"),
    "cos_prompt_name": ("cosine (prompt)", "余弦相似度（提示词）"),
    "position": ("position", "位置"),
    "dimension": ("dimension", "维度"),
    "hover_cos_all": ("positions %{{y}} and %{{x}}<br>cosine %{{z:.3f}}<extra></extra>",
                      "位置 %{{y}} 与 %{{x}}<br>余弦相似度 %{{z:.3f}}<extra></extra>"),
    "cos_all_name": ("cosine (all positions)", "余弦相似度（全部位置）"),
    "shown": (" ({n} of them shown, evenly spaced)", "（均匀选取其中 {n} 个显示）"),
    "title": ("Learned position vectors", "可学习的位置向量"),
    "subtitle": ("GPT-2 style: the vector of each position (one of {n_ctx:,}) is added to "
                 "the token's embedding before block 0. {T} positions in this prompt{shown}.",
                 "GPT-2 的做法：每个位置有自己的向量（共 {n_ctx:,} 个），在第 0 层之前加到词元的嵌入向量上。"
                 "本提示词有 {T} 个位置{shown}。"),
})

MAX_DIMS = 64          # dimensions shown in the vector heatmap
MAX_POSITIONS = 256    # prompt positions shown (evenly sampled beyond)
MAX_TABLE = 128        # positions of the whole table shown in panel 3 (evenly sampled)
_MAX_TICKS = 40


def _cosine(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    n = np.linalg.norm(X, axis=1, keepdims=True)
    Xn = X / np.maximum(n, 1e-12)
    return np.clip(Xn @ Xn.T, -1.0, 1.0).astype(np.float32)


def _sample(n: int, cap: int) -> np.ndarray:
    """Indices 0..n-1, all of them up to cap, else cap evenly spaced ones (first and last kept)."""
    if n <= cap:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, cap)).astype(int))


def _colour_limit(values: np.ndarray) -> float:
    a = np.abs(values[np.isfinite(values)])
    if a.size == 0:
        return 1.0
    return max(float(np.percentile(a, 99.5)) if a.size > 200 else float(a.max()), 1e-6)


def _explanation(config: ModelConfig) -> go.Figure:
    fig = go.Figure()
    base_layout(fig, W("none_title"), height=220)
    fig.add_annotation(
        text=W("none_text", base=config.rope_base),
        x=0, y=0.5, xref="paper", yref="paper", xanchor="left", showarrow=False, align="left",
        font=dict(size=13))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(margin=dict(l=20, r=20, t=50, b=20))
    return fig


def position_embedding_figure(trace: Trace, pos_embed: np.ndarray | None = None) -> go.Figure:
    """The prompt's learned position vectors and how similar they are to each other.

    trace: a model.trace.Trace; for a GPT-2-family model it holds `hook_pos_embed` (T, C).
    pos_embed: optional, the model's whole position table (n_ctx, C), e.g.
    `lm.net.pos_embed.weight.detach().cpu().numpy()`; adds the all-positions cosine panel.
    For a RoPE model (config.uses_rope) the figure explains that positions are rotations; passing a
    table for such a model is an error (ValueError), as is a table that does not match the trace.
    """
    config = trace.config
    if config.uses_rope:
        if pos_embed is not None:
            raise ValueError("this model uses rotary positions (RoPE): it has no position table to show")
        return _explanation(config)
    try:
        P = np.asarray(trace.act("hook_pos_embed"), dtype=np.float32)          # (T, C)
    except KeyError:
        raise ValueError("the trace has no hook_pos_embed: it was not recorded from a GPT-2-family model") from None
    T, C = P.shape
    if T != trace.T:
        raise ValueError(f"hook_pos_embed has {T} rows but the trace has {trace.T} tokens")
    table = None
    if pos_embed is not None:
        table = np.asarray(pos_embed, dtype=np.float32)
        if table.ndim != 2 or table.shape[1] != C or table.shape[0] < T:
            raise ValueError(f"pos_embed must be the model's position table (n_ctx >= {T}, {C}), got {table.shape}")
        if not np.allclose(table[:T], P, atol=1e-4, rtol=1e-4):
            raise ValueError("pos_embed does not match the trace's position vectors: is it this model's table?")

    rows = _sample(T, MAX_POSITIONS)                       # prompt positions shown
    dims = min(C, MAX_DIMS)
    V = P[rows, :dims]
    lim = _colour_limit(V)
    cos = _cosine(P[rows])
    labels = [f"{int(p)} {piece_label(trace.pieces[int(p)])}" for p in rows]
    step = max(1, math.ceil(len(rows) / _MAX_TICKS))
    tick = dict(tickmode="array", tickvals=[int(p) for p in rows[::step]], ticktext=labels[::step])

    n_cols = 3 if table is not None else 2
    titles = [W("vectors_title", dims=dims, C=C), W("cos_prompt_title")]
    if table is not None:
        titles.append(W("cos_all_title", n=table.shape[0]))
    widths = [0.4, 0.3, 0.3] if n_cols == 3 else [0.55, 0.45]
    spacing = 0.07
    fig = make_subplots(rows=1, cols=n_cols, subplot_titles=titles, horizontal_spacing=spacing, column_widths=widths)
    # Colour bars lie flat under their panels, so they never cover the panel beside them.
    usable = 1 - spacing * (n_cols - 1)
    left = [sum(widths[:i]) * usable + i * spacing for i in range(n_cols)]

    def bar(title: str, col: int, span: int = 1) -> dict:
        width = sum(widths[col:col + span]) * usable + (span - 1) * spacing
        return dict(title=dict(text=title, side="top"), orientation="h", x=left[col] + width / 2, xanchor="center",
                    y=-0.2, yanchor="top", len=min(width, 0.35), thickness=10)

    hover_pos = [[labels[i]] * dims for i in range(len(rows))]
    pair = W("pair", a="{a}", b="{b}")             # "{a} and {b}" in this language, filled T² times
    fig.add_trace(go.Heatmap(
        z=V, x=np.arange(dims), y=rows, customdata=hover_pos, colorscale=DIVERGING, zmid=0, zmin=-lim, zmax=lim,
        colorbar=bar(W("value"), 0), hovertemplate=W("hover_vector"), name=W("vectors_name")), row=1, col=1)
    fig.add_trace(go.Heatmap(
        z=cos, x=rows, y=rows, colorscale=DIVERGING, zmin=-1, zmax=1, zmid=0,
        customdata=[[pair.format(a=a, b=b) for b in labels] for a in labels],
        colorbar=bar(W("cosine"), 1, span=n_cols - 1),
        hovertemplate=W("hover_cos_prompt"), name=W("cos_prompt_name")), row=1, col=2)
    fig.update_yaxes(autorange="reversed", title_text=W("position"), row=1, col=1, **tick)
    fig.update_xaxes(title_text=W("dimension"), row=1, col=1)
    fig.update_yaxes(autorange="reversed", row=1, col=2)
    fig.update_xaxes(row=1, col=2, scaleanchor="y2", constrain="domain", title_text=W("position"))

    if table is not None:
        every = _sample(table.shape[0], MAX_TABLE)
        fig.add_trace(go.Heatmap(
            z=_cosine(table[every]), x=every, y=every, colorscale=DIVERGING, zmin=-1, zmax=1, zmid=0,
            showscale=False, hovertemplate=W("hover_cos_all"), name=W("cos_all_name")), row=1, col=3)
        fig.update_yaxes(autorange="reversed", row=1, col=3)
        fig.update_xaxes(row=1, col=3, scaleanchor="y3", constrain="domain", title_text=W("position"))
        # Outline the prompt's span: positions 0..T-1 (in table coordinates, half a sample wide).
        half = (every[1] - every[0]) / 2 if len(every) > 1 else 0.5
        fig.add_shape(type="rect", x0=-half, y0=-half, x1=T - 1 + half, y1=T - 1 + half,
                      line=dict(color="#222", width=1.5), row=1, col=3)

    shown = "" if len(rows) == T else W("shown", n=len(rows))
    base_layout(fig, W("title"), height=520)
    fig.update_layout(
        title_subtitle_text=W("subtitle", n_ctx=config.n_ctx, T=T, shown=shown),
        margin=dict(l=60, r=20, t=100, b=120))
    return fig
