"""Two prompts side by side: the same head's pattern, the same MLP's busiest neurons, the next-token
predictions, and how alike one token's residual stream is in the two contexts, layer by layer.

Prompt A is the page's prompt, prompt B the one typed into the compare box. A is always blue and
B always orange (Okabe-Ito, safe for colour-blind readers), in every figure. Every label is
escaped here.

Which token of B is compared with A's focus token (`match_position`):
  1. the same token at the same position, when B has one ("The bank of the river" vs "The bank
     raised rates" with focus on " bank": position 1 in both);
  2. otherwise, when A's focus is A's last token, B's last token (both are the positions that
     predict the next token);
  3. otherwise the same token elsewhere in B (the occurrence nearest A's focus position);
  4. otherwise B's last token.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from model.trace import Trace

from .common import (FONT, SEQUENTIAL, base_layout, check_head, check_layer, check_position, piece_label, plotly_text,
                     short, token_axis, two_line_title)
from .residual_path import residual_states

A_COLOUR = "#0072b2"      # blue
B_COLOUR = "#e69f00"      # orange
_MAX_TICKS = 40
_PROMPT_CHARS = 38
MAX_LABEL = 16


def prompt_label(trace: Trace, n: int = _PROMPT_CHARS) -> str:
    """The prompt on one line, shortened and escaped, for titles."""
    return short(" ".join(str(trace.prompt).split()), n)


def _check_pair(a: Trace, b: Trace) -> None:
    for t, what in ((a, "trace_a"), (b, "trace_b")):
        if not isinstance(t, Trace):
            raise ValueError(f"{what} must be a Trace, got {type(t).__name__}")
    if a.config != b.config:
        raise ValueError("the two traces come from different models")


# ---- which token of B goes with A's focus ---------------------------------------------------------
def match_position(trace_a: Trace, focus_a: int, trace_b: Trace) -> tuple[int, str]:
    """B's position to compare with A's focus token, and why (plain text). Rules: module docstring."""
    check_position(trace_a, focus_a)
    tok = trace_a.token_ids[focus_a]
    if focus_a < trace_b.T and trace_b.token_ids[focus_a] == tok:
        return focus_a, "same token, same position"
    if focus_a == trace_a.T - 1:
        return trace_b.T - 1, "both last tokens (the ones predicting the next token)"
    hits = [p for p, t in enumerate(trace_b.token_ids) if t == tok]
    if hits:
        p = min(hits, key=lambda h: (abs(h - focus_a), -h))
        return p, "same token, another position"
    return trace_b.T - 1, "B has no such token: B's last token"


def same_prefix(trace_a: Trace, pos_a: int, trace_b: Trace, pos_b: int) -> bool:
    """True when both tokens sit at the same position after the same tokens: causal attention then
    makes their residual streams identical, whatever follows in either prompt."""
    return pos_a == pos_b and trace_a.token_ids[:pos_a + 1] == trace_b.token_ids[:pos_b + 1]


# ---- attention ---------------------------------------------------------------------------------
def compare_attention_figure(trace_a: Trace, trace_b: Trace, layer: int, head: int,
                             exclude_first: bool = False) -> go.Figure:
    """The same head's pattern for both prompts, side by side, one colour scale. `exclude_first`
    hides key position 0 (the attention sink) and scales the colours to the remaining weights."""
    _check_pair(trace_a, trace_b)
    check_layer(trace_a, layer)
    check_head(trace_a, head)
    pats = []
    for t in (trace_a, trace_b):
        w = t.act("attn.hook_pattern", layer)[head].astype(np.float32)       # (T, T)
        w = np.where(np.tril(np.ones_like(w, dtype=bool)), w, np.nan)       # the masked future: blank
        if exclude_first and t.T > 1:
            w[:, 0] = np.nan
        pats.append(w)
    zmax = max(float(np.nanmax(w)) if np.isfinite(w).any() else 0.0 for w in pats)
    zmax = 1.0 if not exclude_first else max(zmax, 1e-6)
    kv = trace_a.config.kv_head_of(head)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=(f"<span style='color:{A_COLOUR}'>■</span> A: {prompt_label(trace_a, 30)}",
                                        f"<span style='color:{B_COLOUR}'>■</span> B: {prompt_label(trace_b, 30)}"))
    for c, (t, w) in enumerate(zip((trace_a, trace_b), pats), start=1):
        labels = [piece_label(p) for p in t.pieces]
        fig.add_trace(go.Heatmap(
            z=w, x0=0, dx=1, y0=0, dy=1, coloraxis="coloraxis", xgap=1, ygap=1,
            customdata=np.array([[[labels[q], labels[k]] for k in range(t.T)] for q in range(t.T)], dtype=object)
            if t.T <= 128 else None,
            hovertemplate=(f"{'A' if c == 1 else 'B'} · query #%{{y}} “%{{customdata[0]}}” → key #%{{x}} "
                           "“%{customdata[1]}”<br>weight %{z:.3f}<extra></extra>") if t.T <= 128 else
            f"{'A' if c == 1 else 'B'} · query #%{{y}} → key #%{{x}}<br>weight %{{z:.3f}}<extra></extra>"),
            1, c)
        ax = token_axis(t, max_ticks=_MAX_TICKS, alias=False)
        fig.update_xaxes(**ax, tickangle=-45, showgrid=False, title=dict(text="key (attended to)"), row=1, col=c)
        fig.update_yaxes(**ax, autorange="reversed", showgrid=False, row=1, col=c,
                         title=dict(text="query (attending)") if c == 1 else None)
    note = "key position 0 (the sink) hidden, colours rescaled" if exclude_first else \
        "rows sum to 1 · blank = masked future"
    T = max(trace_a.T, trace_b.T)
    base_layout(fig, two_line_title(f"Layer {layer}, head {head} (kv{kv}) on two prompts", note),
                height=int(min(720, max(380, 18 * T + 230))))
    fig.update_layout(coloraxis=dict(colorscale=SEQUENTIAL, cmin=0, cmax=zmax,
                                     colorbar=dict(title=dict(text="weight"), thickness=12)),
                      plot_bgcolor="#f4f4f4", margin=dict(l=60, r=20, t=90, b=80), autosize=True)
    fig.update_annotations(font=dict(size=12, family=FONT))
    return fig


# ---- MLP ---------------------------------------------------------------------------------------
def mean_abs_activation(trace: Trace, layer: int, exclude_first: bool = False) -> np.ndarray:
    """Mean |hook_post| per neuron over the prompt's positions, (d_mlp,) float32."""
    post = trace.act("mlp.hook_post", layer).astype(np.float32)             # (T, F)
    if exclude_first and trace.T > 1:
        post = post[1:]
    return np.abs(post).mean(axis=0)


def compare_mlp_figure(trace_a: Trace, trace_b: Trace, layer: int, n: int = 12,
                       exclude_first: bool = False) -> go.Figure:
    """Mean |activation| per neuron of one layer's MLP, A vs B, for the n busiest neurons of
    either prompt (up to 2n bars), ordered by the larger of the two."""
    _check_pair(trace_a, trace_b)
    check_layer(trace_a, layer)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= trace_a.config.d_mlp:
        raise ValueError(f"n must be a whole number in 1..{trace_a.config.d_mlp}, got {n!r}")
    ma = mean_abs_activation(trace_a, layer, exclude_first)
    mb = mean_abs_activation(trace_b, layer, exclude_first)
    cand = np.union1d(np.argsort(-ma, kind="stable")[:n], np.argsort(-mb, kind="stable")[:n])
    ids = cand[np.lexsort((cand, -np.maximum(ma[cand], mb[cand])))]
    x = [f"#{i}" for i in ids]
    data = []
    for t, m, name, colour in ((trace_a, ma, "A", A_COLOUR), (trace_b, mb, "B", B_COLOUR)):
        post = t.act("mlp.hook_post", layer).astype(np.float32)
        start = 1 if exclude_first and t.T > 1 else 0
        where = start + np.argmax(np.abs(post[start:, ids]), axis=0)
        hover = [f"{name} · neuron {i}<br>mean |activation| {m[i]:.4f}<br>largest at #{w} "
                 f"“{piece_label(t.pieces[w])}”: {post[w, i]:+.3f}" for i, w in zip(ids.tolist(), where.tolist())]
        data.append(go.Bar(x=x, y=m[ids], name=f"{name}: {prompt_label(t, 30)}", marker_color=colour,
                           hovertext=hover, hovertemplate="%{hovertext}<extra></extra>"))
    fig = go.Figure(data=data)
    what = "positions 1.. (first token left out)" if exclude_first else "all positions"
    base_layout(fig, two_line_title(f"Layer {layer} MLP: busiest neurons, A vs B",
                            f"mean |activation| over {what} · top {n} of each prompt"), height=400)
    fig.update_layout(barmode="group", bargap=0.2, autosize=True, margin=dict(l=60, r=20, t=70, b=60),
                      legend=dict(orientation="h", x=0, y=-0.22, yanchor="top"),
                      xaxis=dict(type="category", title=dict(text="neuron"), tickangle=-45, tickfont=dict(size=10)),
                      yaxis=dict(title=dict(text="mean |activation|"), rangemode="tozero"))
    return fig


# ---- prediction --------------------------------------------------------------------------------
def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def compare_prediction_figure(trace_a: Trace, trace_b: Trace, labels: Callable[[int], str],
                              n: int = 10) -> go.Figure:
    """Next-token probabilities after each prompt's last token (temperature 1, no cuts): the n most
    likely of either prompt, grouped bars A vs B."""
    _check_pair(trace_a, trace_b)
    if not callable(labels):
        raise ValueError("labels must be a function id -> display string")
    V = trace_a.config.vocab_size
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= V:
        raise ValueError(f"n must be a whole number in 1..{V}, got {n!r}")
    pa, pb = _softmax(trace_a.logits[-1]), _softmax(trace_b.logits[-1])
    cand = np.union1d(np.argsort(-pa, kind="stable")[:n], np.argsort(-pb, kind="stable")[:n])
    ids = cand[np.lexsort((cand, -np.maximum(pa[cand], pb[cand])))]
    names = [str(labels(int(i))) for i in ids]
    rows = list(range(len(ids)))
    data = []
    for p, other, name, colour, t in ((pa, pb, "A", A_COLOUR, trace_a), (pb, pa, "B", B_COLOUR, trace_b)):
        hover = [f"<b>{plotly_text(names[r])}</b> · id {i}<br>{name}: {p[i]:.2%} · "
                 f"{'B' if name == 'A' else 'A'}: {other[i]:.2%}" for r, i in enumerate(ids.tolist())]
        data.append(go.Bar(y=rows, x=p[ids], orientation="h", name=f"{name}: {prompt_label(t, 30)}",
                           marker_color=colour, hovertext=hover, hovertemplate="%{hovertext}<extra></extra>",
                           text=[f"{v:.1%}" if v >= 0.001 else "" for v in p[ids]], textposition="outside",
                           textfont=dict(size=10), cliponaxis=False))
    fig = go.Figure(data=data)
    ta, tb = int(np.argmax(pa)), int(np.argmax(pb))
    detail = (f"top-1: A “{short(labels(ta), MAX_LABEL)}” {pa[ta]:.1%}"
              f" · B “{short(labels(tb), MAX_LABEL)}” {pb[tb]:.1%}"
              " · temperature 1")
    base_layout(fig, two_line_title("Next token after A vs after B", detail),
                height=max(320, 34 * len(ids) + 170))
    top = float(max(pa[ids].max(), pb[ids].max()))
    fig.update_layout(barmode="group", bargap=0.2, autosize=True, margin=dict(l=10, r=30, t=70, b=50),
                      legend=dict(orientation="h", x=0, y=-0.1, yanchor="top"),
                      xaxis=dict(tickformat=".0%", range=[0, min(1.0, top * 1.3)], title=dict(text="probability")),
                      yaxis=dict(tickmode="array", tickvals=rows, ticktext=[short(s, MAX_LABEL) for s in names],
                                 autorange="reversed", automargin=True,
                                 tickfont=dict(family="ui-monospace, monospace")))
    return fig


# ---- residual stream similarity ------------------------------------------------------------------
def _cos(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x, y = x.astype(np.float64), y.astype(np.float64)
    return (x * y).sum(-1) / np.maximum(np.linalg.norm(x, axis=-1) * np.linalg.norm(y, axis=-1), 1e-30)


def cosine_per_layer(trace_a: Trace, pos_a: int, trace_b: Trace, pos_b: int) -> np.ndarray:
    """(L+1,) cosine similarity of A's and B's residual stream at the two positions, per layer."""
    return _cos(residual_states(trace_a)[:, pos_a], residual_states(trace_b)[:, pos_b])


def compare_cosine_figure(trace_a: Trace, pos_a: int, trace_b: Trace, pos_b: int, why: str = "") -> go.Figure:
    """Cosine similarity between A's token at pos_a and B's token at pos_b after every layer
    (embedding first). Dotted: a baseline, the mean cosine between A's token and every B token
    except position 0 (the attention sink, whose vector is unlike all others), which shows how alike
    any two residual vectors of this model tend to be at that layer. `why`: plain text saying how
    pos_b was chosen (escaped here)."""
    _check_pair(trace_a, trace_b)
    check_position(trace_a, pos_a)
    check_position(trace_b, pos_b)
    sa, sb = residual_states(trace_a), residual_states(trace_b)              # (L+1, T, C)
    cos = _cos(sa[:, pos_a], sb[:, pos_b])
    others = sb[:, 1:] if trace_b.T > 1 else sb
    base = _cos(sa[:, pos_a][:, None, :], others).mean(axis=1)
    R = len(cos)
    x = np.arange(R)
    ticks = ["embed"] + [str(l) for l in range(R - 1)]
    na, nb = np.linalg.norm(sa[:, pos_a], axis=-1), np.linalg.norm(sb[:, pos_b], axis=-1)
    la, lb = piece_label(trace_a.pieces[pos_a]), piece_label(trace_b.pieces[pos_b])
    hover = [f"after {ticks[r]}: cosine {cos[r]:.3f}<br>|A| = {na[r]:,.1f} · |B| = {nb[r]:,.1f}" for r in range(R)]
    data = [
        go.Scatter(x=x, y=cos, mode="lines+markers", name=f"A #{pos_a} “{la}” vs B #{pos_b} “{lb}”",
                   line=dict(color="#009e73", width=2.5), marker=dict(size=6), hovertext=hover,
                   hovertemplate="%{hovertext}<extra></extra>"),
        go.Scatter(x=x, y=base, mode="lines", name="baseline: A's token vs every B token (mean, #0 left out)",
                   line=dict(color="#888", width=1.5, dash="dot"),
                   hovertemplate="baseline %{y:.3f}<extra></extra>"),
    ]
    fig = go.Figure(data=data)
    detail = f"A #{pos_a} “{la}” vs B #{pos_b} “{lb}”" + (f" ({plotly_text(why)})" if why else "")
    if same_prefix(trace_a, pos_a, trace_b, pos_b):
        detail += ("<br>the two prompts are identical up to here, and a token sees only earlier tokens: "
                   "the vectors are the same at every layer")
    base_layout(fig, two_line_title("How alike is the token's vector in the two contexts?", detail), height=400)
    lo = float(min(cos.min(), base.min()))
    fig.update_layout(autosize=True, hovermode="x unified", margin=dict(l=60, r=20, t=70, b=60),
                      legend=dict(orientation="h", x=0, y=-0.2, yanchor="top"),
                      xaxis=dict(tickmode="array", tickvals=list(x), ticktext=ticks, range=[-0.5, R - 0.5],
                                 title=dict(text="after layer"), tickfont=dict(size=10)),
                      yaxis=dict(title=dict(text="cosine similarity"), range=[min(0.0, lo - 0.05), 1.05]))
    return fig
