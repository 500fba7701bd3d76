"""The embedding lab's pictures: a - b + c as a parallelogram, and words placed on a direction.

The parallelogram is drawn in the plane through E[b], E[a] and E[c] (axes: the direction a - b, and
the part of c - b at right angles to it), where its four corners lie exactly, since
E[a] - E[b] + E[c] is in that plane. The nearest tokens are projected onto the plane; how far each
lies off it is in the hover. The numbers come from model/embedding_lab.py.
"""
from __future__ import annotations

import html
from typing import Callable

import numpy as np
import plotly.graph_objects as go

from model.records import Analogy, Direction

from .common import make_figure, short, two_line_title
from .words import table

W = table("embedding_lab", {
    "target": ("a − b + c", "a − b + c"),
    "results": ("nearest tokens", "最近的词元"),
    "inputs": ("a, b, c", "a、b、c"),
    "hover_point": ("{token} (id {id})<br>{role}<br>off the plane by {off:.2f}", "{token}（id {id}）<br>{role}<br>到平面的距离 {off:.2f}"),
    "hover_result": ("{token} (id {id})<br>cosine to a − b + c: {cos:.3f}<br>off the plane by {off:.2f}",
                     "{token}（id {id}）<br>与 a − b + c 的余弦相似度：{cos:.3f}<br>到平面的距离 {off:.2f}"),
    "role_a": ("a", "a"), "role_b": ("b", "b"), "role_c": ("c", "c"), "role_target": ("a − b + c (the arithmetic)",
                                                                                      "a − b + c（算术结果）"),
    "x_axis": ("along a − b", "沿 a − b 方向"),
    "y_axis": ("along c − b (part at right angles to a − b)", "沿 c − b 方向（与 a − b 垂直的部分）"),
    "title": ("{a} − {b} + {c} ≈ {best}", "{a} − {b} + {c} ≈ {best}"),
    "subtitle": ("the plane through a, b and c: the parallelogram is exact there; other tokens are projected onto it",
                 "过 a、b、c 的平面：平行四边形在此平面内是精确的；其他词元是投影到该平面上的"),
    # the results table
    "caption": ("Nearest tokens to E[{a}] − E[{b}] + E[{c}] by cosine similarity (the three inputs left out)",
                "与 E[{a}] − E[{b}] + E[{c}] 余弦相似度最高的词元（三个输入不计）"),
    "rank": ("rank", "排名"), "token": ("token", "词元"), "cosine": ("cosine", "余弦相似度"),
    # the direction
    "d_title": ("The direction {a} − {b}", "方向 {a} − {b}"),
    "d_subtitle": ("each word's projection E[w] · d / |d| (|d| = {norm:.2f}); dotted: where a and b themselves fall",
                   "每个词的投影 E[w] · d / |d|（|d| = {norm:.2f}）；虚线：a 和 b 本身所在的位置"),
    "d_axis": ("projection on d = E[a] − E[b]", "在 d = E[a] − E[b] 上的投影"),
    "d_hover": ("{word} (id {id})<br>projection {p:.3f}", "{word}（id {id}）<br>投影 {p:.3f}"),
})


def _label(labels: Callable[[int], str], i: int, max_len: int = 16) -> str:
    return short(labels(int(i)), max_len)


def plane_coords(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows 0, 1, 2 are a, b, c. -> ((n, 2) coordinates in the plane through b, a and c, with b at
    the origin; (n,) each point's distance from that plane)."""
    P = np.asarray(points, dtype=np.float64)
    a, b, c = P[0], P[1], P[2]
    u = a - b
    u = u / max(np.linalg.norm(u), 1e-12)
    v = (c - b) - ((c - b) @ u) * u
    v = v / max(np.linalg.norm(v), 1e-12)
    rel = P - b
    xy = np.stack([rel @ u, rel @ v], axis=1)
    off = np.linalg.norm(rel - xy[:, :1] * u - xy[:, 1:] * v, axis=1)
    return xy, off


def analogy_figure(r: Analogy, labels: Callable[[int], str], show: int = 5) -> go.Figure:
    """The parallelogram b -> a, c -> a - b + c and the `show` nearest tokens, in the plane of a, b, c."""
    pts = np.vstack([r.points[:3], r.target[None], r.points[3:3 + show]])
    xy, off = plane_coords(pts)
    names = [_label(labels, r.ids[k]) for k in ("a", "b", "c")]
    roles = [W("role_a"), W("role_b"), W("role_c"), W("role_target")]
    corner_text = names + [W("target")]
    corner_hover = [W("hover_point", token=corner_text[i], id=(r.ids["abc"[i]] if i < 3 else "—"), role=roles[i],
                      off=off[i]) for i in range(4)]
    order = [1, 0, 3, 2, 1]                                      # b -> a -> a-b+c -> c -> b
    data = [
        dict(type="scatter", x=xy[order, 0].tolist(), y=xy[order, 1].tolist(), mode="lines", hoverinfo="skip", showlegend=False,
             line=dict(color="#9aa5b1", width=1.5, dash="dot")),
        dict(type="scatter", x=xy[:4, 0].tolist(), y=xy[:4, 1].tolist(), mode="markers+text", name=W("inputs"),
             text=corner_text, textposition="top center", hovertext=corner_hover, hoverinfo="text",
             marker=dict(size=[11, 11, 11, 15], symbol=["circle", "circle", "circle", "star"],
                         color=["#1f77b4", "#1f77b4", "#1f77b4", "#d62728"])),
    ]
    res = r.results[:show]
    if res:
        data.append(dict(type="scatter", x=xy[4:, 0].tolist(), y=xy[4:, 1].tolist(), mode="markers+text", name=W("results"),
                         text=[_label(labels, n.id) for n in res],
                         textposition=["middle right" if i % 2 == 0 else "middle left" for i in range(len(res))],
                         hovertext=[W("hover_result", token=_label(labels, n.id), id=n.id, cos=n.cosine, off=off[4 + i])
                                    for i, n in enumerate(res)], hoverinfo="text",
                         marker=dict(size=9, color="#2ca02c", opacity=0.85)))
    best = _label(labels, res[0].id) if res else "—"
    title = two_line_title(W("title", a=names[0], b=names[1], c=names[2], best=best), W("subtitle"))
    layout = dict(xaxis=dict(title=dict(text=W("x_axis")), zeroline=False, automargin=True),
                  yaxis=dict(title=dict(text=W("y_axis")), zeroline=False, automargin=True, scaleanchor="x"),
                  legend=dict(orientation="h", y=-0.18), plot_bgcolor="#f7f7f7")
    return make_figure(data, layout, title, height=440)


def analogy_table_html(r: Analogy, labels: Callable[[int], str]) -> str:
    a, b, c = (html.escape(labels(r.ids[k])) for k in ("a", "b", "c"))
    rows = "".join(f"<tr><td>{i + 1}</td><td><code>{html.escape(labels(n.id))}</code></td><td>{n.id}</td>"
                   f"<td>{n.cosine:.3f}</td></tr>" for i, n in enumerate(r.results))
    return (f'<table class="gg-lab-table"><caption>{W("caption", a=a, b=b, c=c)}</caption>'
            f'<tr><th>{W("rank")}</th><th>{W("token")}</th><th>id</th><th>{W("cosine")}</th></tr>{rows}</table>')


def direction_figure(r: Direction, labels: Callable[[int], str], a_b_projection: tuple[float, float]) -> go.Figure:
    """Each word's projection on d = E[a] - E[b], as bars in the order given; dotted lines where a and
    b themselves fall (`a_b_projection`)."""
    words = [_label(labels, s.id, 20) for s in r.scores]
    # Two words may share a label (" dog" twice): the axis needs distinct categories.
    rows = [w if words.count(w) == 1 else f"{w} #{i + 1}" for i, w in enumerate(words)]
    vals = [s.projection for s in r.scores]
    data = [dict(type="bar", orientation="h", y=rows, x=vals, showlegend=False,
                 marker=dict(color=["#d62728" if v >= 0 else "#1f77b4" for v in vals]),
                 hovertext=[W("d_hover", word=w, id=s.id, p=s.projection) for w, s in zip(words, r.scores)],
                 hoverinfo="text", text=[f"{v:.2f}" for v in vals], textposition="outside", cliponaxis=False)]
    pa, pb = a_b_projection
    a, b = _label(labels, r.ids["a"]), _label(labels, r.ids["b"])
    shapes = [dict(type="line", x0=x, x1=x, yref="paper", y0=0, y1=1, line=dict(dash="dot", color="#555", width=1))
              for x in (pa, pb)]
    annotations = [dict(x=x, y=1.0, yref="paper", text=t, showarrow=False, yanchor="bottom", font=dict(size=11))
                   for x, t in ((pa, "a = " + a), (pb, "b = " + b))]
    title = two_line_title(W("d_title", a=a, b=b), W("d_subtitle", norm=r.norm))
    layout = dict(xaxis=dict(title=dict(text=W("d_axis")), zeroline=True, automargin=True),
                  yaxis=dict(autorange="reversed", automargin=True, type="category"),
                  shapes=shapes, annotations=annotations, plot_bgcolor="#f7f7f7")
    return make_figure(data, layout, title, height=int(min(700, 200 + 28 * len(rows))),
                       margin=dict(l=60, r=40, t=96, b=60))
