"""Information-flow routes as a picture: positions across, layers up; each kept edge is a line
(thicker = larger share), the residual edges grey, attention edges coloured; hover an edge's middle
for its share and its strongest head, a node for what the logit lens reads there."""
from __future__ import annotations

from typing import Callable

import numpy as np
import plotly.graph_objects as go

from model.routes import Route
from model.trace import Trace

from .common import make_figure, pct, piece_label, short, two_line_title
from .words import table

W = table("routes", {
    "title": ("Information-flow routes into the prediction at #{pos} {token}", "流向 #{pos} {token} 处预测的信息路径"),
    "subtitle": ("edges whose share of the state they feed is above {t:.0%}; {n} edges; hover a node for the logit "
                 "lens there", "只保留在所输入状态中占比高于 {t:.0%} 的边；共 {n} 条；悬停在节点上可看该处的 logit 透镜"),
    "attn_edge": ("layer {l}: #{j} {tj} → #{i} {ti}<br>attention, {share} of the state (head {h}: {hshare})",
                  "第 {l} 层：#{j} {tj} → #{i} {ti}<br>注意力，占该状态的 {share}（注意力头 {h}：{hshare}）"),
    "resid_edge": ("layer {l}: #{i} {ti} keeps {share} of itself (residual)", "第 {l} 层：#{i} {ti} 保留了自身的 {share}（残差）"),
    "node": ("#{i} {ti} {where}<br>logit lens: {top} ({p})", "#{i} {ti}，{where}<br>logit 透镜：{top}（{p}）"),
    "mlp_share": ("<br>the MLP below wrote {share} of this state", "<br>下面的 MLP 写入了这个状态的 {share}"),
    "before": ("before block {l}", "第 {l} 块之前"), "after_all": ("after the last block", "最后一块之后"),
    "attention": ("attention", "注意力"), "residual": ("residual", "残差"), "states": ("states", "状态"),
    "position": ("position", "位置"), "level": ("layer (0 = embedding)", "层（0 = 嵌入）"),
})

BUCKETS = ((0.0, 0.15, 1.2), (0.15, 0.3, 2.4), (0.3, 0.6, 3.8), (0.6, 1.01, 5.5))   # share range -> line width


def routes_figure(route: Route, trace: Trace, readout: dict, labels: Callable[[int], str],
                  mlp_share: np.ndarray | None = None) -> go.Figure:
    """`mlp_share`: (L, T) the MLP's share of each block's output state (Contributions.mlp)."""
    L, pos = route.target
    tok = lambda i: "“" + piece_label(trace.pieces[i], 10) + "”"                          # noqa: E731
    data = []
    for kind, colour in (("residual", "#b8b8b8"), ("attention", "#d95f02")):
        for lo, hi, width in BUCKETS:
            xs, ys = [], []
            for l, j, i, share, h, _ in route.edges:
                if (h < 0) == (kind == "residual") and lo <= share < hi:
                    xs += [j, i, None]
                    ys += [l, l + 1, None]
            if xs:
                data.append(dict(type="scatter", mode="lines", x=xs, y=ys, hoverinfo="skip", showlegend=False,
                                 line=dict(color=colour, width=width)))
    mid_x, mid_y, mid_text = [], [], []
    for l, j, i, share, h, hshare in route.edges:
        mid_x.append((j + i) / 2)
        mid_y.append(l + 0.5)
        mid_text.append(W("resid_edge", l=l, i=i, ti=tok(i), share=pct(share)) if h < 0 else
                        W("attn_edge", l=l, j=j, tj=tok(j), i=i, ti=tok(i), share=pct(share), h=h, hshare=pct(hshare)))
    data.append(dict(type="scatter", mode="markers", x=mid_x, y=mid_y, hovertext=mid_text, hoverinfo="text",
                     marker=dict(size=9, color="rgba(0,0,0,0)"), showlegend=False))
    nx, ny, ntext, ncolour = [], [], [], []
    for level, i in route.nodes:
        top, p = readout.get((level, i), (None, 0.0))
        where = W("after_all") if level == L else W("before", l=level)
        nx.append(i)
        ny.append(level)
        text = W("node", i=i, ti=tok(i), where=where, top="“" + short(labels(top), 12) + "”" if top is not None else "—",
                 p=pct(p))
        if mlp_share is not None and level > 0:
            text += W("mlp_share", share=pct(float(mlp_share[level - 1, i])))
        ntext.append(text)
        ncolour.append(p)
    data.append(dict(type="scatter", mode="markers", x=nx, y=ny, hovertext=ntext, hoverinfo="text", name=W("states"),
                     marker=dict(size=8, color=ncolour, colorscale="Viridis", cmin=0, cmax=1, line=dict(width=0.5, color="#333"),
                                 colorbar=dict(title=dict(text="p"), thickness=10)), showlegend=False))
    T = trace.T
    layout = dict(xaxis=dict(title=dict(text=W("position")), tickvals=list(range(T)),
                             ticktext=[piece_label(p, 8) for p in trace.pieces], range=[-0.7, T - 0.3], showgrid=False),
                  yaxis=dict(title=dict(text=W("level")), range=[-0.7, L + 0.7], dtick=max(1, L // 10), zeroline=False),
                  plot_bgcolor="#fafafa", hovermode="closest")
    title = two_line_title(W("title", pos=pos, token=tok(pos)), W("subtitle", t=route.threshold, n=len(route.edges)))
    return make_figure(data, layout, title, height=int(min(820, 260 + 18 * L)), margin=dict(l=60, r=20, t=80, b=80))
