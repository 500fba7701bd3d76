"""One query token step by step: q·k for every key, scaled and masked, the softmax, and the Q, K, V
and z vectors behind them, recomputed from the trace in numpy."""
from __future__ import annotations

import math

import numpy as np

from model.trace import Trace

from ..common import DIVERGING, check_head, check_layer, check_position, make_figure, two_line_title
from ._base import _focus_text, _head_label, _pattern, _token_axis


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
    bar_key, cell_key = "key #%{pointNumber} %{x}", "key #%{pointNumber[1]} %{x}"
    data = []
    # Row 1: raw q·k for all keys, future ones grey (computed, then thrown away by the mask).
    data.append(dict(type="bar", x=pos, y=n["raw"], xaxis="x", yaxis="y",
                     marker=dict(color=np.where(allowed, bar_main, bar_future).tolist()),
                     customdata=np.where(allowed, "", "<br>future key: masked before the softmax").tolist(),
                     hovertemplate=bar_key + "<br>q·k = %{y:.3f}%{customdata}<extra></extra>"))
    # Row 2: scaled, masked scores: allowed keys only.
    data.append(dict(type="bar", x=pos[allowed], y=n["scaled"][allowed], xaxis="x2", yaxis="y2",
                     marker=dict(color=bar_main),
                     hovertemplate=bar_key + "<br>q·k / √" + str(D) + " = %{y:.3f}<extra></extra>"))
    # Row 3: the model's softmax weights.
    sm = dict(type="bar", x=pos[allowed], y=n["pattern"][allowed], xaxis="x3", yaxis="y3",
              marker=dict(color="#5d3a9b"),
              hovertemplate=bar_key + "<br>weight = %{y:.4f}<extra></extra>")
    if focus < 24:
        sm.update(text=[f"{w:.2f}" for w in n["pattern"][allowed]], textposition="outside", cliponaxis=False,
                  textfont=dict(size=10))
    data.append(sm)
    # Row 4: Q (one column) | K (dims x keys). Row 5: z (one column) | V (dims x keys).
    qk_lim = float(max(np.abs(n["q"]).max(), np.abs(n["k"]).max(), 1e-6))
    vz_lim = float(max(np.abs(n["v"]).max(), np.abs(n["z"]).max(), 1e-6))
    common = dict(type="heatmap", y0=0, dy=1, hoverongaps=False)
    data.append(dict(common, z=n["q"][:, None], x=[0], xaxis="x4", yaxis="y4", coloraxis="coloraxis",
                     hovertemplate="Q dim %{y}<br>%{z:.3f}<extra></extra>"))
    data.append(dict(common, z=n["k"].T, x0=0, dx=1, xaxis="x5", yaxis="y5", coloraxis="coloraxis",
                     hovertemplate=cell_key + "<br>K dim %{y}<br>%{z:.3f}<extra></extra>"))
    data.append(dict(common, z=n["z"][:, None], x=[0], xaxis="x6", yaxis="y6", coloraxis="coloraxis2",
                     hovertemplate="output z dim %{y}<br>%{z:.3f}<extra></extra>"))
    data.append(dict(common, z=n["v"].T, x0=0, dx=1, xaxis="x7", yaxis="y7", coloraxis="coloraxis2",
                     hovertemplate=cell_key + "<br>V dim %{y}<br>%{z:.3f}<extra></extra>"))
    left, main0, main1 = [0.0, 0.05], 0.10, 0.90
    rows = {"y": [0.86, 1.0], "y2": [0.71, 0.83], "y3": [0.54, 0.68], "y5": [0.28, 0.50], "y7": [0.0, 0.22]}
    key_range = [-0.5, T - 0.5]
    lay = dict(
        autosize=True, bargap=0.15, showlegend=False, plot_bgcolor="#fafafa",
        coloraxis=dict(colorscale=DIVERGING, cmin=-qk_lim, cmax=qk_lim,
                       colorbar=dict(title=dict(text="Q, K"), len=0.22, y=0.39, thickness=10)),
        coloraxis2=dict(colorscale=DIVERGING, cmin=-vz_lim, cmax=vz_lim,
                        colorbar=dict(title=dict(text="V, z"), len=0.22, y=0.11, thickness=10)),
    )
    tick_axis = dict(axis, range=key_range, showgrid=False, zeroline=False)
    for name, ya in (("x", "y"), ("x2", "y2"), ("x3", "y3"), ("x5", "y5"), ("x7", "y7")):
        key = "xaxis" if name == "x" else f"xaxis{name[1:]}"
        lay[key] = dict(tick_axis, domain=[main0, main1], anchor=ya, matches=None if name == "x" else "x",
                        showticklabels=name == "x7", automargin=True)
    lay["xaxis7"]["title"] = dict(text="key token")
    for name, dom in rows.items():
        lay[f"yaxis{name[1:]}" if name != "y" else "yaxis"] = dict(domain=dom, anchor=f"x{name[1:]}",
                                                                   zeroline=True, automargin=True)
    lay["yaxis"]["title"] = dict(text="q·k", font=dict(size=11))
    lay["yaxis2"]["title"] = dict(text=f"÷√{D}", font=dict(size=11))
    top_w = float(n["pattern"].max())
    lay["yaxis3"].update(title=dict(text="softmax", font=dict(size=11)), range=[0, min(1.12, 1.3 * top_w + 0.02)])
    for name in ("y5", "y7"):
        lay[f"yaxis{name[1:]}"].update(range=[D - 0.5, -0.5], showgrid=False, zeroline=False,
                                       title=dict(text="dim", font=dict(size=11)), dtick=16)
    for xa, ya, dom, partner in (("x4", "y4", rows["y5"], "y5"), ("x6", "y6", rows["y7"], "y7")):
        lay[f"xaxis{xa[1:]}"] = dict(domain=left, anchor=ya, showticklabels=False, showgrid=False, zeroline=False)
        lay[f"yaxis{ya[1:]}"] = dict(domain=dom, anchor=xa, matches=partner, showticklabels=False,
                                     showgrid=False, zeroline=False)
    note = lambda text, y, x=0.0: dict(text=text, x=x, y=y, xref="paper", yref="paper", showarrow=False,
                                       xanchor="left", yanchor="bottom", font=dict(size=11))
    sharing = ", ".join(str(h) for h in range(cfg.n_head) if cfg.kv_head_of(h) == n["kv_head"])
    annotations = [
        note("<b>Q</b>", rows["y5"][1] + 0.005),
        note(f"<b>K</b> of each key · K/V head {n['kv_head']} (shared by heads {sharing}) · "
             f"q·k = Q column · K column", rows["y5"][1] + 0.005, x=main0),
        note("<b>z</b>", rows["y7"][1] + 0.005),
        note("<b>V</b> of each key · output z = Σ weight · V column", rows["y7"][1] + 0.005, x=main0),
    ]
    shapes = []
    if focus < T - 1:
        for ya in ("y2", "y3"):
            shapes.append(dict(type="rect", xref=f"x{ya[1:]}", yref=f"{ya} domain", x0=focus + 0.5, x1=T - 0.5,
                               y0=0, y1=1, fillcolor="rgba(120,120,120,0.15)", line=dict(width=0), layer="below"))
        annotations.append(dict(text="future keys: −∞ (masked)", x=(focus + T) / 2, y=0.5, xref="x2",
                                yref="y2 domain", showarrow=False, font=dict(size=11, color="#555")))
        annotations.append(dict(text="weight 0", x=(focus + T) / 2, y=0.5, xref="x3", yref="y3 domain",
                                showarrow=False, font=dict(size=11, color="#555")))
    lay.update(annotations=annotations, shapes=shapes)
    title = two_line_title(f"Layer {layer} · head {_head_label(cfg, head)}: one query step by step",
                   f"query {_focus_text(trace, focus)}: q·k → ÷√{D}, future masked to −∞ → softmax → "
                   f"output = weighted sum of V")
    return make_figure(data, lay, title, height=880)
