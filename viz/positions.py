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
    base_layout(fig, "Position vectors: none in this model", height=220)
    base = config.rope_base
    fig.add_annotation(
        text=("This model adds no position vector to the embedding: a token enters the first block as the same "
              "vector at every position.<br>Positions are <b>rotations</b> instead (RoPE, base "
              f"{base:,.0f}): inside every attention layer, queries and keys are rotated by an angle<br>"
              "that grows with the position, so an attention score depends on how far apart two tokens are."),
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
    titles = [f"position vectors (first {dims} of {C} dims)", "cosine between the prompt's positions"]
    if table is not None:
        titles.append(f"cosine between all {table.shape[0]:,} positions")
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
    fig.add_trace(go.Heatmap(
        z=V, x=np.arange(dims), y=rows, customdata=hover_pos, colorscale=DIVERGING, zmid=0, zmin=-lim, zmax=lim,
        colorbar=bar("value", 0), hovertemplate="position %{customdata}<br>dim %{x}<br>value %{z:.4f}<extra></extra>",
        name="position vectors"), row=1, col=1)
    fig.add_trace(go.Heatmap(
        z=cos, x=rows, y=rows, colorscale=DIVERGING, zmin=-1, zmax=1, zmid=0,
        customdata=[[f"{a} and {b}" for b in labels] for a in labels],
        colorbar=bar("cosine", 1, span=n_cols - 1),
        hovertemplate="positions %{customdata}<br>cosine %{z:.3f}<extra></extra>",
        name="cosine (prompt)"), row=1, col=2)
    fig.update_yaxes(autorange="reversed", title_text="position", row=1, col=1, **tick)
    fig.update_xaxes(title_text="dimension", row=1, col=1)
    fig.update_yaxes(autorange="reversed", row=1, col=2)
    fig.update_xaxes(row=1, col=2, scaleanchor="y2", constrain="domain", title_text="position")

    if table is not None:
        every = _sample(table.shape[0], MAX_TABLE)
        fig.add_trace(go.Heatmap(
            z=_cosine(table[every]), x=every, y=every, colorscale=DIVERGING, zmin=-1, zmax=1, zmid=0,
            showscale=False, hovertemplate="positions %{y} and %{x}<br>cosine %{z:.3f}<extra></extra>",
            name="cosine (all positions)"), row=1, col=3)
        fig.update_yaxes(autorange="reversed", row=1, col=3)
        fig.update_xaxes(row=1, col=3, scaleanchor="y3", constrain="domain", title_text="position")
        # Outline the prompt's span: positions 0..T-1 (in table coordinates, half a sample wide).
        half = (every[1] - every[0]) / 2 if len(every) > 1 else 0.5
        fig.add_shape(type="rect", x0=-half, y0=-half, x1=T - 1 + half, y1=T - 1 + half,
                      line=dict(color="#222", width=1.5), row=1, col=3)

    shown = "" if len(rows) == T else f" ({len(rows)} of them shown, evenly spaced)"
    base_layout(fig, "Learned position vectors", height=520)
    fig.update_layout(
        title_subtitle_text=(f"GPT-2 style: the vector of each position (one of {config.n_ctx:,}) is added to "
                             f"the token's embedding before block 0. {T} positions in this prompt{shown}."),
        margin=dict(l=60, r=20, t=100, b=120))
    return fig
