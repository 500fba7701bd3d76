"""One query token step by step: q·k for every key, scaled and masked, the softmax, and the Q, K, V
and z vectors behind them, recomputed from the trace in numpy."""
from __future__ import annotations

import math

import numpy as np

from model.trace import Trace

from ..common import DIVERGING, check_head, check_layer, check_position, grid_domains, make_figure, two_line_title
from ..words import table
from ._base import _focus_text, _head_label, _pattern, _token_axis

W = table("attention.detail", {
    "future_key": ("<br>future key: masked before the softmax", "<br>未来的键：在 softmax 之前被掩码"),
    "bar_key": ("key #%{{pointNumber}} %{{x}}", "键 #%{{pointNumber}} %{{x}}"),
    "cell_key": ("key #%{{pointNumber[1]}} %{{x}}", "键 #%{{pointNumber[1]}} %{{x}}"),
    "weight_hover": ("<br>weight = %{{y:.4f}}<extra></extra>", "<br>权重 = %{{y:.4f}}<extra></extra>"),
    "q_dim": ("Q dim %{{y}}<br>%{{z:.3f}}<extra></extra>", "Q 维度 %{{y}}<br>%{{z:.3f}}<extra></extra>"),
    "k_dim": ("<br>K dim %{{y}}<br>%{{z:.3f}}<extra></extra>", "<br>K 维度 %{{y}}<br>%{{z:.3f}}<extra></extra>"),
    "z_dim": ("output z dim %{{y}}<br>%{{z:.3f}}<extra></extra>", "输出 z 维度 %{{y}}<br>%{{z:.3f}}<extra></extra>"),
    "v_dim": ("<br>V dim %{{y}}<br>%{{z:.3f}}<extra></extra>", "<br>V 维度 %{{y}}<br>%{{z:.3f}}<extra></extra>"),
    "key_token": ("key token", "键词元"),
    "dim": ("dim", "维度"),
    "k_note": ("<b>K</b> of each key · K/V head {kv} (shared by heads {sharing}) · q·k = Q column · K column",
               "每个键的 <b>K</b> · K/V 头 {kv}（由查询头 {sharing} 共用）· q·k = Q 列 · K 列"),
    "v_note": ("<b>V</b> of each key · output z = Σ weight · V column", "每个键的 <b>V</b> · 输出 z = Σ 权重 · V 列"),
    "list_sep": (", ", "、"),
    "future_masked": ("future keys: −∞ (masked)", "未来的键：−∞（已掩码）"),
    "weight_zero": ("weight 0", "权重 0"),
    "title": ("Layer {layer} · head {head}: one query step by step", "第 {layer} 层 · 注意力头 {head}：逐步拆解一个查询"),
    "subtitle": ("query {focus}: q·k → ÷√{D}, future masked to −∞ → softmax → output = weighted sum of V",
                 "查询 {focus}：q·k → ÷√{D}，未来的键被掩码为 −∞ → softmax → 输出 = V 的加权和"),
})

# The figure's grid (fractions of the figure). Rows, top down: raw q·k, ÷√d (masked), the softmax
# weights, the K block, the V block; the gaps above the K and V blocks leave room for their notes.
# Columns: a narrow one for the Q and z vectors (beside K and V), the main one over key positions.
_ROWS = {"qk": 0.14, "scaled": 0.12, "softmax": 0.14, "keys": 0.22, "values": 0.22}
_ROW_GAPS = (0.03, 0.03, 0.04, 0.06)
_COLS = {"vector": 0.05, "main": 0.80}
_COL_GAP = 0.05
# (row, column) of each subplot's axes: x/y, x2/y2, ... as the traces name them.
_CELLS = {"": ("qk", "main"), "2": ("scaled", "main"), "3": ("softmax", "main"), "4": ("keys", "vector"),
          "5": ("keys", "main"), "6": ("values", "vector"), "7": ("values", "main")}


def _grid() -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    rows, cols = grid_domains(list(_ROWS.values()), list(_COLS.values()), _ROW_GAPS, _COL_GAP)
    return ({name: list(d) for name, d in zip(_ROWS, rows)}, {name: list(d) for name, d in zip(_COLS, cols)})


def detail_numbers(trace: Trace, layer: int, head: int, focus: int) -> dict:
    """The arithmetic behind one query token's attention, recomputed from the trace in numpy:
    raw q·k for every key (future ones too), scaled & masked scores, the softmax of those scores
    (`softmax_numpy`), the model's own weights (`pattern`), the Q vector, the K and V vectors of the
    head's shared K/V head, and the output z. tests/test_viz_attention.py checks that the
    recomputed softmax equals the stored pattern and the scores equal hook_attn_scores."""
    check_layer(trace, layer)
    check_head(trace, head)
    check_position(trace, focus)
    cfg = trace.config
    kv = cfg.kv_head_of(head)
    D = cfg.d_head
    q = trace.act("attn.hook_q", layer)[head, focus].astype(np.float32)     # (D,)
    k = trace.act("attn.hook_k", layer)[kv].astype(np.float32)              # (T, D)
    v = trace.act("attn.hook_v", layer)[kv].astype(np.float32)              # (T, D)
    raw = np.einsum("td,d->t", k, q)                                        # (T,) q·k, unscaled
    scaled = raw / np.float32(math.sqrt(D))
    scaled[focus + 1:] = -np.inf                                            # causal mask
    e = np.exp(scaled[:focus + 1] - scaled[:focus + 1].max())
    softmax = np.zeros(trace.T, dtype=np.float32)
    softmax[:focus + 1] = e / e.sum()
    pattern = _pattern(trace, layer)[head, focus].astype(np.float32)
    z = trace.act("attn.hook_z", layer)[head, focus].astype(np.float32)
    return dict(raw=raw, scaled=scaled, softmax_numpy=softmax, pattern=pattern, q=q, k=k, v=v, z=z,
                kv_head=kv, sqrt_d=math.sqrt(D))


def attention_detail_figure(trace: Trace, layer: int, head: int, focus: int):
    """For the focus query token, aligned over key positions: raw scores q·k, scores ÷ √d with the
    future masked (−∞), the softmax weights (the model's pattern row); below, the Q vector next to
    the K vectors it is dotted with, and the output z next to the V vectors it mixes."""
    n = detail_numbers(trace, layer, head, focus)
    cfg, T = trace.config, trace.T
    D = cfg.d_head
    axis = _token_axis(trace)
    allowed = np.arange(T) <= focus
    bar_main, bar_future = "#3b6fb6", "#b8b8b8"
    pos = np.arange(T)
    bar_key, cell_key = W("bar_key"), W("cell_key")
    data = []
    # Row 1: raw q·k for all keys, future ones grey (computed, then thrown away by the mask).
    data.append(dict(type="bar", x=pos, y=n["raw"], xaxis="x", yaxis="y",
                     marker=dict(color=np.where(allowed, bar_main, bar_future).tolist()),
                     customdata=np.where(allowed, "", W("future_key")).tolist(),
                     hovertemplate=bar_key + "<br>q·k = %{y:.3f}%{customdata}<extra></extra>"))
    # Row 2: scaled, masked scores: allowed keys only.
    data.append(dict(type="bar", x=pos[allowed], y=n["scaled"][allowed], xaxis="x2", yaxis="y2",
                     marker=dict(color=bar_main),
                     hovertemplate=bar_key + "<br>q·k / √" + str(D) + " = %{y:.3f}<extra></extra>"))
    # Row 3: the model's softmax weights.
    sm = dict(type="bar", x=pos[allowed], y=n["pattern"][allowed], xaxis="x3", yaxis="y3",
              marker=dict(color="#5d3a9b"),
              hovertemplate=bar_key + W("weight_hover"))
    if focus < 24:
        sm.update(text=[f"{w:.2f}" for w in n["pattern"][allowed]], textposition="outside", cliponaxis=False,
                  textfont=dict(size=10))
    data.append(sm)
    # Row 4: Q (one column) | K (dims x keys). Row 5: z (one column) | V (dims x keys).
    qk_lim = float(max(np.abs(n["q"]).max(), np.abs(n["k"]).max(), 1e-6))
    vz_lim = float(max(np.abs(n["v"]).max(), np.abs(n["z"]).max(), 1e-6))
    common = dict(type="heatmap", y0=0, dy=1, hoverongaps=False)
    data.append(dict(common, z=n["q"][:, None], x=[0], xaxis="x4", yaxis="y4", coloraxis="coloraxis",
                     hovertemplate=W("q_dim")))
    data.append(dict(common, z=n["k"].T, x0=0, dx=1, xaxis="x5", yaxis="y5", coloraxis="coloraxis",
                     hovertemplate=cell_key + W("k_dim")))
    data.append(dict(common, z=n["z"][:, None], x=[0], xaxis="x6", yaxis="y6", coloraxis="coloraxis2",
                     hovertemplate=W("z_dim")))
    data.append(dict(common, z=n["v"].T, x0=0, dx=1, xaxis="x7", yaxis="y7", coloraxis="coloraxis2",
                     hovertemplate=cell_key + W("v_dim")))
    rows, cols = _grid()
    main0 = cols["main"][0]
    key_range = [-0.5, T - 0.5]

    def bar_for(row: str) -> dict:          # a colour bar beside a row, as tall as it
        return dict(len=round(rows[row][1] - rows[row][0], 9), y=round(sum(rows[row]) / 2, 9), thickness=10)

    lay = dict(
        autosize=True, bargap=0.15, showlegend=False, plot_bgcolor="#fafafa",
        coloraxis=dict(colorscale=DIVERGING, cmin=-qk_lim, cmax=qk_lim,
                       colorbar=dict(title=dict(text="Q, K"), **bar_for("keys"))),
        coloraxis2=dict(colorscale=DIVERGING, cmin=-vz_lim, cmax=vz_lim,
                        colorbar=dict(title=dict(text="V, z"), **bar_for("values"))),
    )
    tick_axis = dict(axis, range=key_range, showgrid=False, zeroline=False)
    main = [n_ax for n_ax, (_, col) in _CELLS.items() if col == "main"]      # over key positions
    for n_ax in main:
        lay[f"xaxis{n_ax}"] = dict(tick_axis, domain=cols["main"], anchor=f"y{n_ax}",
                                   matches=None if n_ax == "" else "x", showticklabels=n_ax == "7",
                                   automargin=True)
    lay["xaxis7"]["title"] = dict(text=W("key_token"))
    for n_ax in main:
        lay[f"yaxis{n_ax}"] = dict(domain=rows[_CELLS[n_ax][0]], anchor=f"x{n_ax}", zeroline=True, automargin=True)
    lay["yaxis"]["title"] = dict(text="q·k", font=dict(size=11))
    lay["yaxis2"]["title"] = dict(text=f"÷√{D}", font=dict(size=11))
    top_w = float(n["pattern"].max())
    lay["yaxis3"].update(title=dict(text="softmax", font=dict(size=11)), range=[0, min(1.12, 1.3 * top_w + 0.02)])
    for n_ax in ("5", "7"):
        lay[f"yaxis{n_ax}"].update(range=[D - 0.5, -0.5], showgrid=False, zeroline=False,
                                   title=dict(text=W("dim"), font=dict(size=11)), dtick=16)
    for n_ax, partner in (("4", "y5"), ("6", "y7")):      # the narrow column: Q beside K, z beside V
        row = _CELLS[n_ax][0]
        lay[f"xaxis{n_ax}"] = dict(domain=cols["vector"], anchor=f"y{n_ax}", showticklabels=False, showgrid=False,
                                   zeroline=False)
        lay[f"yaxis{n_ax}"] = dict(domain=rows[row], anchor=f"x{n_ax}", matches=partner, showticklabels=False,
                                   showgrid=False, zeroline=False)
    note = lambda text, y, x=0.0: dict(text=text, x=x, y=y, xref="paper", yref="paper", showarrow=False,
                                       xanchor="left", yanchor="bottom", font=dict(size=11))
    sharing = W("list_sep").join(str(h) for h in range(cfg.n_head) if cfg.kv_head_of(h) == n["kv_head"])
    above_k, above_v = rows["keys"][1] + 0.005, rows["values"][1] + 0.005
    annotations = [
        note("<b>Q</b>", above_k, x=cols["vector"][0]),
        note(W("k_note", kv=n["kv_head"], sharing=sharing), above_k, x=main0),
        note("<b>z</b>", above_v, x=cols["vector"][0]),
        note(W("v_note"), above_v, x=main0),
    ]
    shapes = []
    if focus < T - 1:
        for ya in ("y2", "y3"):
            shapes.append(dict(type="rect", xref=f"x{ya[1:]}", yref=f"{ya} domain", x0=focus + 0.5, x1=T - 0.5,
                               y0=0, y1=1, fillcolor="rgba(120,120,120,0.15)", line=dict(width=0), layer="below"))
        annotations.append(dict(text=W("future_masked"), x=(focus + T) / 2, y=0.5, xref="x2",
                                yref="y2 domain", showarrow=False, font=dict(size=11, color="#555")))
        annotations.append(dict(text=W("weight_zero"), x=(focus + T) / 2, y=0.5, xref="x3", yref="y3 domain",
                                showarrow=False, font=dict(size=11, color="#555")))
    lay.update(annotations=annotations, shapes=shapes)
    title = two_line_title(W("title", layer=layer, head=_head_label(cfg, head)),
                           W("subtitle", focus=_focus_text(trace, focus), D=D))
    return make_figure(data, lay, title, height=880)
