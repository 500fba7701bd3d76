"""The residual stream of one token, layer by layer: how large a vector each attention layer and
each MLP adds (|attn_out|, |mlp_out|), how large the stream itself is after the layer, and how far
the layer turned it (the cosine between the stream before and after). The page outlines the
current layer (layout.meta.gg_mark)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from model.trace import Trace

from .common import check_position, make_figure, piece_label, two_line_title
from .words import table

W = table("residual_stream", {
    "attn": ("attention adds |attn_out|", "注意力加上的 |attn_out|"),
    "mlp": ("MLP adds |mlp_out|", "MLP 加上的 |mlp_out|"),
    "stream": ("the stream after the layer |x|", "这一层之后的残差流 |x|"),
    "turn": ("cosine(before, after)", "余弦（之前, 之后）"),
    "size": ("vector length (log scale)", "向量长度（对数刻度）"),
    "cos_axis": ("cosine", "余弦"),
    "layer": ("layer", "层"),
    "title": ("Token #{pos} {token} through the residual stream", "词元 #{pos} {token} 在残差流中的旅程"),
    "subtitle": ("each layer adds to it, never replaces it; dotted: how far the layer turned it",
                 "每一层都往里加，从不替换；虚线：这一层把它转了多少"),
    "hover": ("layer %{{x}}<br>{what}: %{{y:.2f}}<extra></extra>", "第 %{{x}} 层<br>{what}：%{{y:.2f}}<extra></extra>"),
    "hover_cos": ("layer %{{x}}<br>cosine before/after: %{{y:.3f}}<extra></extra>",
                  "第 %{{x}} 层<br>前后的余弦：%{{y:.3f}}<extra></extra>"),
})


def stream_sizes(trace: Trace, focus: int) -> dict[str, np.ndarray]:
    """(L,) arrays: |attn_out|, |mlp_out|, |resid_post| and cos(resid_pre, resid_post) at `focus`."""
    L = trace.config.n_layer

    def rows(name):
        return np.stack([trace.act(name, l)[focus].astype(np.float64) for l in range(L)])    # (L, C)

    pre, post = rows("hook_resid_pre"), rows("hook_resid_post")
    norm = lambda x: np.linalg.norm(x, axis=-1)                                             # noqa: E731
    cos = (pre * post).sum(-1) / np.maximum(norm(pre) * norm(post), 1e-12)
    return {"attn": norm(rows("hook_attn_out")), "mlp": norm(rows("hook_mlp_out")), "stream": norm(post), "turn": cos}


def residual_stream_figure(trace: Trace, focus: int) -> go.Figure:
    focus = check_position(trace, focus)
    s = stream_sizes(trace, focus)
    layers = list(range(trace.config.n_layer))
    data = [dict(type="bar", x=layers, y=s["attn"].tolist(), name=W("attn"), marker=dict(color="#4c78a8"),
                 hovertemplate=W("hover", what=W("attn"))),
            dict(type="bar", x=layers, y=s["mlp"].tolist(), name=W("mlp"), marker=dict(color="#f58518"),
                 hovertemplate=W("hover", what=W("mlp"))),
            dict(type="scatter", mode="lines+markers", x=layers, y=s["stream"].tolist(), name=W("stream"),
                 line=dict(color="#222", width=2), hovertemplate=W("hover", what=W("stream"))),
            dict(type="scatter", mode="lines", x=layers, y=s["turn"].tolist(), name=W("turn"), yaxis="y2",
                 line=dict(color="#54a24b", width=1.5, dash="dot"), hovertemplate=W("hover_cos"))]
    layout = dict(barmode="group", bargap=0.25,
                  xaxis=dict(title=dict(text=W("layer")), nticks=12, automargin=True),
                  yaxis=dict(title=dict(text=W("size")), type="log", automargin=True),
                  yaxis2=dict(title=dict(text=W("cos_axis")), overlaying="y", side="right", range=[-1, 1.05], tick0=-1, dtick=0.5,
                              showgrid=False, automargin=True),
                  legend=dict(orientation="h", y=-0.25), meta=dict(gg_mark=dict(kind="column")))
    title = two_line_title(W("title", pos=focus, token="“" + piece_label(trace.pieces[focus]) + "”"), W("subtitle"))
    return make_figure(data, layout, title, height=400, margin=dict(l=60, r=60, t=80, b=90))
