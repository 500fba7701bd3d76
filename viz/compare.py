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
from .words import table

A_COLOUR = "#0072b2"      # blue
B_COLOUR = "#e69f00"      # orange
_MAX_TICKS = 40
_PROMPT_CHARS = 38
MAX_LABEL = 16

W = table("compare", {
    # why B's token was chosen (match_position; shown in the page)
    "same_position": ("same token, same position", "同一个词元，同一个位置"),
    "both_last": ("both last tokens (the ones predicting the next token)",
                  "两边各自的最后一个词元（预测下一个词元的位置）"),
    "other_position": ("same token, another position", "同一个词元，不同位置"),
    "no_such_token": ("B has no such token: B's last token", "B 里没有这个词元：取 B 的最后一个词元"),
    # attention
    "attn_hover": ("{who} · query #%{{y}} “%{{customdata[0]}}” → key #%{{x}} “%{{customdata[1]}}”"
                   "<br>weight %{{z:.3f}}<extra></extra>",
                   "{who} · 查询 #%{{y}} “%{{customdata[0]}}” → 键 #%{{x}} “%{{customdata[1]}}”"
                   "<br>权重 %{{z:.3f}}<extra></extra>"),
    "attn_hover_long": ("{who} · query #%{{y}} → key #%{{x}}<br>weight %{{z:.3f}}<extra></extra>",
                        "{who} · 查询 #%{{y}} → 键 #%{{x}}<br>权重 %{{z:.3f}}<extra></extra>"),
    "key_axis": ("key (attended to)", "键（被关注的词元）"),
    "query_axis": ("query (attending)", "查询（发出关注的词元）"),
    "sink_hidden": ("key position 0 (the sink) hidden, colours rescaled", "已隐藏键位置 0（注意力汇点），颜色已重新缩放"),
    "rows_sum": ("rows sum to 1 · blank = masked future", "每行之和为 1 · 空白 = 被掩码的未来位置"),
    "attn_title": ("Layer {layer}, head {head} (kv{kv}) on two prompts",
                   "第 {layer} 层 · 注意力头 {head}（KV 头 {kv}）在两个提示词上"),
    "weight": ("weight", "权重"),
    # MLP
    "mlp_hover": ("{who} · neuron {i}<br>mean |activation| {mean:.4f}<br>largest at #{pos} “{piece}”: {value:+.3f}",
                  "{who} · 神经元 {i}<br>平均 |激活值| {mean:.4f}<br>最大值出现在 #{pos} “{piece}”：{value:+.3f}"),
    "positions_from_1": ("positions 1.. (first token left out)", "从位置 1 起（不含第一个词元）"),
    "all_positions": ("all positions", "所有位置"),
    "mlp_title": ("Layer {layer} MLP: busiest neurons, A vs B", "第 {layer} 层 MLP：最活跃的神经元，A 对比 B"),
    "mlp_detail": ("mean |activation| over {what} · top {n} of each prompt",
                   "平均 |激活值|（{what}）· 每个提示词取前 {n} 个"),
    "neuron": ("neuron", "神经元"),
    "mean_activation": ("mean |activation|", "平均 |激活值|"),
    # prediction
    "prediction_detail": ("top-1: A “{a}” {pa:.1%} · B “{b}” {pb:.1%} · temperature 1",
                          "首选：A “{a}” {pa:.1%} · B “{b}” {pb:.1%} · 温度 1"),
    "prediction_title": ("Next token after A vs after B", "A 之后与 B 之后的下一个词元"),
    "probability": ("probability", "概率"),
    # residual stream similarity
    "embed": ("embed", "嵌入"),
    "after_embed": ("after embed", "嵌入之后"),
    "after_layer_n": ("after {layer}", "第 {layer} 层之后"),
    "cosine_hover": ("{after}: cosine {cos:.3f}<br>|A| = {na:,.1f} · |B| = {nb:,.1f}",
                     "{after}：余弦相似度 {cos:.3f}<br>|A| = {na:,.1f} · |B| = {nb:,.1f}"),
    "pair": ("A #{pa} “{la}” vs B #{pb} “{lb}”", "A #{pa} “{la}” 对比 B #{pb} “{lb}”"),
    "baseline_name": ("baseline: A's token vs every B token (mean, #0 left out)",
                      "基线：A 的这个词元与 B 的每个词元相比（取平均，不含 #0）"),
    "baseline_hover": ("baseline %{{y:.3f}}<extra></extra>", "基线 %{{y:.3f}}<extra></extra>"),
    "why": (" ({why})", "（{why}）"),
    "identical": ("<br>the two prompts are identical up to here, and a token sees only earlier tokens: "
                  "the vectors are the same at every layer",
                  "<br>两个提示词到这里为止完全相同，而词元只能看到它之前的词元：所以每一层的向量都一样"),
    "cosine_title": ("How alike is the token's vector in the two contexts?", "这个词元的向量在两种上下文中有多相似？"),
    "after_layer": ("after layer", "第几层之后"),
    "cosine_axis": ("cosine similarity", "余弦相似度"),
})


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
        return focus_a, W("same_position")
    if focus_a == trace_a.T - 1:
        return trace_b.T - 1, W("both_last")
    hits = [p for p, t in enumerate(trace_b.token_ids) if t == tok]
    if hits:
        p = min(hits, key=lambda h: (abs(h - focus_a), -h))
        return p, W("other_position")
    return trace_b.T - 1, W("no_such_token")


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
            hovertemplate=W("attn_hover" if t.T <= 128 else "attn_hover_long", who="A" if c == 1 else "B")),
            1, c)
        ax = token_axis(t, max_ticks=_MAX_TICKS, alias=False)
        fig.update_xaxes(**ax, tickangle=-45, showgrid=False, title=dict(text=W("key_axis")), row=1, col=c)
        fig.update_yaxes(**ax, autorange="reversed", showgrid=False, row=1, col=c,
                         title=dict(text=W("query_axis")) if c == 1 else None)
    note = W("sink_hidden") if exclude_first else W("rows_sum")
    T = max(trace_a.T, trace_b.T)
    base_layout(fig, two_line_title(W("attn_title", layer=layer, head=head, kv=kv), note),
                height=int(min(720, max(380, 18 * T + 230))))
    fig.update_layout(coloraxis=dict(colorscale=SEQUENTIAL, cmin=0, cmax=zmax,
                                     colorbar=dict(title=dict(text=W("weight")), thickness=12)),
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
        hover = [W("mlp_hover", who=name, i=i, mean=m[i], pos=w, piece=piece_label(t.pieces[w]), value=post[w, i])
                 for i, w in zip(ids.tolist(), where.tolist())]
        data.append(go.Bar(x=x, y=m[ids], name=f"{name}: {prompt_label(t, 30)}", marker_color=colour,
                           hovertext=hover, hovertemplate="%{hovertext}<extra></extra>"))
    fig = go.Figure(data=data)
    what = W("positions_from_1") if exclude_first else W("all_positions")
    base_layout(fig, two_line_title(W("mlp_title", layer=layer), W("mlp_detail", what=what, n=n)), height=400)
    fig.update_layout(barmode="group", bargap=0.2, autosize=True, margin=dict(l=60, r=20, t=70, b=60),
                      legend=dict(orientation="h", x=0, y=-0.22, yanchor="top"),
                      xaxis=dict(type="category", title=dict(text=W("neuron")), tickangle=-45, tickfont=dict(size=10)),
                      yaxis=dict(title=dict(text=W("mean_activation")), rangemode="tozero"))
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
                           textfont=dict(size=10), cliponaxis=False, constraintext="none"))
    fig = go.Figure(data=data)
    ta, tb = int(np.argmax(pa)), int(np.argmax(pb))
    detail = W("prediction_detail", a=short(labels(ta), MAX_LABEL), pa=pa[ta], b=short(labels(tb), MAX_LABEL),
               pb=pb[tb])
    base_layout(fig, two_line_title(W("prediction_title"), detail),
                height=max(320, 34 * len(ids) + 170))
    top = float(max(pa[ids].max(), pb[ids].max()))
    fig.update_layout(barmode="group", bargap=0.2, autosize=True, margin=dict(l=10, r=30, t=70, b=50),
                      legend=dict(orientation="h", x=0, y=-0.1, yanchor="top"), uniformtext=dict(minsize=10, mode="show"),
                      xaxis=dict(tickformat=".0%", range=[0, min(1.0, top * 1.3)], title=dict(text=W("probability"))),
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
    ticks = [W("embed")] + [str(l) for l in range(R - 1)]
    after = [W("after_embed")] + [W("after_layer_n", layer=l) for l in range(R - 1)]
    na, nb = np.linalg.norm(sa[:, pos_a], axis=-1), np.linalg.norm(sb[:, pos_b], axis=-1)
    la, lb = piece_label(trace_a.pieces[pos_a]), piece_label(trace_b.pieces[pos_b])
    hover = [W("cosine_hover", after=after[r], cos=cos[r], na=na[r], nb=nb[r]) for r in range(R)]
    data = [
        go.Scatter(x=x, y=cos, mode="lines+markers", name=W("pair", pa=pos_a, la=la, pb=pos_b, lb=lb),
                   line=dict(color="#009e73", width=2.5), marker=dict(size=6), hovertext=hover,
                   hovertemplate="%{hovertext}<extra></extra>"),
        go.Scatter(x=x, y=base, mode="lines", name=W("baseline_name"),
                   line=dict(color="#888", width=1.5, dash="dot"),
                   hovertemplate=W("baseline_hover")),
    ]
    fig = go.Figure(data=data)
    detail = W("pair", pa=pos_a, la=la, pb=pos_b, lb=lb) + (W("why", why=plotly_text(why)) if why else "")
    if same_prefix(trace_a, pos_a, trace_b, pos_b):
        detail += W("identical")
    base_layout(fig, two_line_title(W("cosine_title"), detail), height=400)
    lo = float(min(cos.min(), base.min()))
    fig.update_layout(autosize=True, hovermode="x unified", margin=dict(l=60, r=20, t=70, b=60),
                      legend=dict(orientation="h", x=0, y=-0.2, yanchor="top"),
                      xaxis=dict(tickmode="array", tickvals=list(x), ticktext=ticks, range=[-0.5, R - 0.5],
                                 title=dict(text=W("after_layer")), tickfont=dict(size=10)),
                      yaxis=dict(title=dict(text=W("cosine_axis")), range=[min(0.0, lo - 0.05), 1.05]))
    return fig
