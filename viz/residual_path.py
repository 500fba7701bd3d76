"""The residual stream as a path: where one token's vector goes, layer by layer.

Each chosen token's residual stream (the embedding, then the output of every block) is projected
onto the two main directions (PCA) of all of this prompt's residual vectors, all positions x all
layers, and drawn as a path with the layer numbers on it; hover shows what the logit lens reads at
each point. Several tokens' paths share one projection, so they can be compared.

Position 0 is left out of the PCA fit by default: in the default model the first token becomes an
attention sink whose residual vector has one huge coordinate (in the default model dimension 507, in the thousands while
the other tokens' coordinates are in the tens), so it alone would decide the two directions and
squash every other path into a dot. Ask for position 0 (or pass include_first=True) to put it back.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import plotly.graph_objects as go

from model.records import LogitLens
from model.trace import Trace

from .common import base_layout, pca, piece_label, short, two_line_title
from .words import table

# Okabe-Ito, without yellow (too light on white) and black (kept for the text).
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#999999")
MAX_PATHS = len(PALETTE)

W = table("residual_path", {
    "after_embed": ("after embed", "嵌入之后"),
    "after_layer_n": ("after {layer}", "第 {layer} 层之后"),
    "hover": ("#{pos} “{token}” {after}<br>lens top-1: “{top}” ({prob:.1%})<br>|x| = {norm:,.1f}",
              "#{pos} “{token}” {after}<br>logit 透镜的首选：“{top}”（{prob:.1%}）<br>|x| = {norm:,.1f}"),
    "fit_with_first": ("PCA fitted on every position x layer, position 0 included:<br>"
                       "its vector reaches {biggest:,.0f} in dimension {dim}, which dominates",
                       "PCA 在所有位置 × 所有层上拟合，包括位置 0：<br>"
                       "它的向量在第 {dim} 维达到 {biggest:,.0f}，主导了结果"),
    "fit_without_first": ("PCA fitted on positions 1.. x every layer; position 0 left out:<br>"
                          "its vector reaches {biggest:,.0f} in dimension {dim}",
                          "PCA 在位置 1 起 × 所有层上拟合，不含位置 0：<br>"
                          "它的向量在第 {dim} 维达到 {biggest:,.0f}"),
    "normalised": (" · vectors scaled to unit RMS (direction only)", " · 每个向量已缩放到均方根为 1（只看方向）"),
    "key": ("<br>numbers = layer (e = embedding) · token = the lens's new guess ≥ 30% · hover: every point",
            "<br>数字 = 层（e = 嵌入向量）· 词元 = logit 透镜新出现的猜测（≥ 30%）· 悬停可看每个点"),
    "title": ("The residual stream's path through the layers", "残差流穿过各层的路径"),
    "pc1": ("PC1 ({ratio:.0%} of variance)", "PC1（方差占比 {ratio:.0%}）"),
    "pc2": ("PC2 ({ratio:.0%} of variance)", "PC2（方差占比 {ratio:.0%}）"),
})


def residual_states(trace: Trace) -> np.ndarray:
    """(L+1, T, C) float32: the input of block 0 (the embedding), then resid_post of every layer."""
    L = trace.config.n_layer
    return np.stack([trace.act("hook_resid_pre", 0)] + [trace.act("hook_resid_post", l) for l in range(L)])


def pca_basis(states: np.ndarray, fit_positions: Sequence[int],
              dims: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA (common.pca) fitted on states[:, fit_positions] (every layer): (mean (C,), components (dims, C),
    explained variance ratio (dims,)). Signs fixed so the largest loading of each component is positive."""
    X = states[:, list(fit_positions)].reshape(-1, states.shape[-1]).astype(np.float64)
    mean, comps, ratio, _ = pca(X, dims)
    if len(comps) < dims:                        # fewer points than dims: pad with zero axes
        comps = np.vstack([comps, np.zeros((dims - len(comps), X.shape[1]))])
        ratio = np.concatenate([ratio, np.zeros(dims - len(ratio))])
    return mean, comps, ratio


def _check_positions(trace: Trace, positions) -> list[int]:
    if isinstance(positions, (int, np.integer)) and not isinstance(positions, bool):
        positions = [positions]
    try:
        out = list(dict.fromkeys(int(p) for p in positions if not isinstance(p, bool)))
    except (TypeError, ValueError):
        raise ValueError(f"positions must be whole numbers, got {positions!r}") from None
    if not out:
        raise ValueError("give at least one token position")
    if len(out) > MAX_PATHS:
        raise ValueError(f"at most {MAX_PATHS} paths at once (got {len(out)}): the picture would be unreadable")
    bad = [p for p in out if not 0 <= p < trace.T]
    if bad:
        raise ValueError(f"token positions must be in 0..{trace.T - 1}, got {bad[:5]}")
    return out


def _declutter(xy: np.ndarray, text: list[str], span: np.ndarray, min_gap: float = 0.035) -> list[str]:
    """Layer numbers for the points far enough (a fraction of the drawing's extent) from the last
    labelled one; the first and last points are always labelled. Hover still names every point."""
    out = [""] * len(text)
    last = None
    for r in range(len(text)):
        far = last is None or np.max(np.abs(xy[r] - xy[last]) / span) >= min_gap
        if far or r == len(text) - 1:
            out[r], last = text[r], r
    return out


def residual_path_figure(trace: Trace, lens: LogitLens, positions: Sequence[int], labels: Callable[[int], str],
                         include_first: bool | None = None, normalise: bool = False) -> go.Figure:
    """One path per chosen position through the 2-D PCA plane of the prompt's residual vectors:
    a point per layer (embedding first, numbered by block), the logit lens's top-1 guess and its
    probability in the hover, and the final guess written at the end of each path.

    `lens`: a LogitLens that reads every chosen position (`lm.logit_lens(trace, positions)`).
    `include_first`: fit the PCA on position 0 too; None (default) = only when 0 is asked for.
    `normalise`: divide every vector by its root-mean-square first, as the final norm does before the
    unembedding (without its learned gain): the path then shows changes of direction only. The raw
    vectors' length grows about 200-fold from the embedding to the last layer, so without it the
    early layers crowd together near the start."""
    positions = _check_positions(trace, positions)
    if not isinstance(lens, LogitLens):
        raise ValueError("lens must be the LogitLens record from LanguageModel.logit_lens(), "
                         f"got {type(lens).__name__}")
    missing = [p for p in positions if p not in lens.positions]
    if missing:
        raise ValueError(f"the lens does not read positions {missing[:5]}: compute it with "
                         "lm.logit_lens(trace, positions)")
    L = trace.config.n_layer
    if len(lens.layer_labels) != L + 1:
        raise ValueError(f"lens has {len(lens.layer_labels)} rows, expected {L + 1}")
    if not callable(labels):
        raise ValueError("labels must be a function id -> display string")
    if include_first is None:
        include_first = 0 in positions
    include_first = bool(include_first) or trace.T == 1
    states = residual_states(trace)                                          # (L+1, T, C)
    norms_all = np.linalg.norm(states, axis=-1)                               # (L+1, T), raw lengths for the hover
    if normalise:
        states = states / np.sqrt(np.mean(states.astype(np.float64) ** 2, axis=-1, keepdims=True) + 1e-12)
    fit = list(range(0 if include_first else 1, trace.T))
    mean, comps, ratio = pca_basis(states, fit)
    col = {p: i for i, p in enumerate(lens.positions)}
    every = np.concatenate([(states[:, p].astype(np.float64) - mean) @ comps.T for p in positions])
    span = np.maximum(every.max(axis=0) - every.min(axis=0), 1e-9)           # (2,) extent of the drawing
    after = [W("after_embed")] + [W("after_layer_n", layer=l) for l in range(L)]
    point_text = ["e"] + [str(l) for l in range(L)]
    data = []
    for k, p in enumerate(positions):
        xy = (states[:, p].astype(np.float64) - mean) @ comps.T               # (L+1, 2)
        c = col[p]
        top = [short(labels(int(i)), 14) for i in lens.top_ids[:, c, 0]]
        prob = lens.top_probs[:, c, 0]
        norms = norms_all[:, p]
        tok = piece_label(trace.pieces[p])
        colour = PALETTE[k % len(PALETTE)]
        text = _declutter(xy, point_text, span)
        for r in range(1, L + 1):     # name the lens's guess where a new confident one appears, and at the end
            new = lens.top_ids[r, c, 0] != lens.top_ids[r - 1, c, 0] and prob[r] >= 0.3
            if r == L or (new and text[r]):
                text[r] = f"{point_text[r]} “{top[r]}”"
        hover = [W("hover", pos=p, token=tok, after=after[r], top=top[r], prob=prob[r], norm=norms[r])
                 for r in range(L + 1)]
        sizes = np.linspace(6, 13, L + 1)
        symbols = ["circle-open"] + ["circle"] * (L - 1) + ["star"]
        data.append(go.Scatter(
            x=xy[:, 0], y=xy[:, 1], mode="lines+markers+text",
            name=f"#{p} “{tok}” → “{top[-1]}” {prob[-1]:.0%}",
            line=dict(color=colour, width=1.8), marker=dict(color=colour, size=sizes, symbol=symbols,
                                                            line=dict(color="white", width=0.5)),
            text=text, textposition="top center", textfont=dict(size=10, color=colour),
            hovertext=hover, hovertemplate="%{hovertext}<extra></extra>"))
    raw0 = residual_states(trace)[:, 0]
    outlier = int(np.abs(raw0).max(axis=0).argmax())                          # the sink's largest coordinate
    biggest = float(np.abs(raw0[:, outlier]).max())
    if include_first:
        detail = W("fit_with_first", biggest=biggest, dim=outlier)
    else:
        detail = W("fit_without_first", biggest=biggest, dim=outlier)
    if normalise:
        detail += W("normalised")
    detail += W("key")
    fig = go.Figure(data=data)
    base_layout(fig, two_line_title(W("title"), detail), height=580)
    fig.update_layout(
        autosize=True, margin=dict(l=60, r=30, t=110, b=60),
        legend=dict(orientation="h", x=0, y=-0.12, yanchor="top"),
        xaxis=dict(title=dict(text=W("pc1", ratio=ratio[0])), zeroline=False),
        yaxis=dict(title=dict(text=W("pc2", ratio=ratio[1])), zeroline=False))
    return fig
