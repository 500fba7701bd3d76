"""Embedding space: the prompt's tokens among their nearest vocabulary neighbours.

The vectors are rows of the embedding matrix (d_model numbers each), chosen by the model room
(`lm.neighbours`, cosine similarity over the whole vocabulary). Here they are only projected: PCA
(centred, numpy SVD) to 2-D or 3-D. A projection keeps a few percent of the variance, so distances
on screen are hints; the cosine in the hover and the table is the real measure.
"""
from __future__ import annotations

import html
from typing import Callable

import numpy as np
import plotly.graph_objects as go

from model.config import ModelConfig
from model.records import Neighbours
from model.trace import Trace

from .common import FONT, base_layout, check_position, pca as _pca, plotly_text, short
from .words import both_html, table

W = table("embeddings", {
    # the embedding-space figure
    "hover_positions": ("prompt position {positions}", "在提示词中的位置 {positions}"),
    "hover_cosine": ("cosine to {token}: {c:.3f}", "与 {token} 的余弦相似度：{c:.3f}"),
    "hover_nearest": ("nearest: {best}", "最近邻：{best}"),
    "other_neighbours": ("other neighbours", "其他近邻"),
    "neighbours_of": ("neighbours of {token}", "{token} 的近邻"),
    "prompt_tokens": ("prompt tokens", "提示词中的词元"),
    "focus": ("focus: {token}", "焦点：{token}"),
    "links": ("nearest-neighbour links", "最近邻连线"),
    "focus_links": ("focus links", "焦点连线"),
    "axis": ("PC{i} ({ratio:.1%} of variance)", "PC{i}（方差占比 {ratio:.1%}）"),
    "title": ("Embedding space ({d_model}-dim, PCA to {dims}-D)", "嵌入空间（{d_model} 维，PCA 降到 {dims} 维）"),
    "subtitle": ("Lines join each prompt token to its {k} most cosine-similar tokens.<br>"
                 "These {dims} axes keep {kept:.0%} of the variance: trust the cosine in the hover.",
                 "连线把提示词中的每个词元与余弦相似度最高的 {k} 个词元连起来。<br>"
                 "这 {dims} 个坐标轴只保留了 {kept:.0%} 的方差：请以悬停显示的余弦相似度为准。"),
    # the neighbour table
    "caption": ("Nearest tokens to <b>{token}</b> (id {fid}, position {focus}) "
                "by cosine similarity of their {C}-dim embedding rows",
                "与 <b>{token}</b>（id {fid}，位置 {focus}）最接近的词元，按 {C} 维嵌入向量的余弦相似度排列"),
    "th_token": ("token", "词元"),
    "th_cosine": ("cosine", "余弦相似度"),
    "cosine_note": ("cosine = cos of the angle between two vectors: 1 same direction, "
                    "0 unrelated (at right angles), −1 opposite.",
                    "余弦相似度 = 两个向量夹角的余弦：1 表示方向相同，0 表示无关（相互垂直），−1 表示方向相反。"),
    # how the running model tells positions apart (static HTML, both languages)
    "note_rope": ("The running model adds no position vector: the embedding of a token is the same at "
                  "every position. Position enters inside each attention layer instead, where queries "
                  "and keys are rotated by an angle that grows with the position (RoPE, base {base:,.0f}), "
                  "so an attention score depends on how far apart two tokens are.",
                  "当前运行的模型不加位置向量：同一个词元在任何位置的嵌入向量都相同。位置信息改为在每个注意力层"
                  "内部引入：查询和键按一个随位置增大的角度旋转（RoPE，基数 {base:,.0f}），"
                  "因此注意力分数取决于两个词元相距多远。"),
    "note_learned": ("The running model adds a learned position vector (one per position, {n_ctx:,} in all) "
                     "to each token's embedding before the first block (GPT-2 style), so the same token at two "
                     "positions enters the model as two different vectors.",
                     "当前运行的模型在第一层之前，给每个词元的嵌入向量加上一个可学习的位置向量"
                     "（每个位置一个，共 {n_ctx:,} 个；GPT-2 的做法），因此同一个词元出现在两个位置时，"
                     "是以两个不同的向量进入模型的。"),
})

QUERY = "#1f4e9c"          # prompt tokens: dark blue
FOCUS = "#d55e00"          # the focus token: vermillion (Okabe-Ito, colour-blind safe)
FOCUS_NBR = "#e69f00"      # its neighbours: orange
OTHER_NBR = "#9bb7d4"      # other neighbours: light blue-grey
LINK = "rgba(120,130,150,0.35)"
MAX_LABEL = 14


def _check(neighbours: Neighbours, trace: Trace, focus: int, labels: Callable[[int], str]) -> int:
    """Validate; return the focus token's row in neighbours.query_ids."""
    if not callable(labels):
        raise ValueError("labels must be a function id -> display string, e.g. "
                         "lambda i: lm.tokenizer.pieces([i])[0].display")
    check_position(trace, focus)
    if not isinstance(neighbours, Neighbours):
        raise ValueError("neighbours must be the Neighbours record from LanguageModel.neighbours(), "
                         f"got {type(neighbours).__name__}")
    q, nb, cos = neighbours.query_ids, neighbours.neighbour_ids, neighbours.cosine
    if nb.ndim != 2 or nb.shape != cos.shape or nb.shape[0] != len(q) or nb.shape[1] == 0:
        raise ValueError(f"neighbours: {len(q)} queries but neighbour_ids {nb.shape} and cosine {cos.shape}")
    if neighbours.vectors.ndim != 2 or neighbours.vectors.shape[0] != len(neighbours.vector_ids):
        raise ValueError(f"neighbours: {len(neighbours.vector_ids)} vector ids but vectors {neighbours.vectors.shape}")
    missing = set(q.tolist()) | set(nb.ravel().tolist())
    missing -= set(neighbours.vector_ids.tolist())
    if missing:
        raise ValueError(f"neighbours.vectors lacks the vectors of ids {sorted(missing)[:5]}")
    fid = trace.token_ids[focus]
    rows = np.flatnonzero(q == fid)
    if len(rows) == 0:
        raise ValueError(f"the focus token {labels(fid)!r} (id {fid}, position {focus}) is not among the "
                         f"neighbour queries {q.tolist()[:10]}; ask lm.neighbours for the trace's ids")
    return int(rows[0])


def pca(vectors: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Centred PCA (common.pca): (coords (m, dims), explained-variance ratio (dims,)). Signs fixed so
    that each component's largest loading is positive (so the picture does not flip between runs)."""
    X = np.asarray(vectors, dtype=np.float64)
    if X.shape[0] <= dims:
        raise ValueError(f"PCA to {dims}-D needs more than {dims} vectors, got {X.shape[0]}")
    fit = _pca(X, dims)
    return fit.coords, fit.ratio


def _scatter(dims, xyz, **kw):
    if dims == 2:
        return go.Scatter(x=xyz[:, 0], y=xyz[:, 1], **kw)
    return go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], **kw)


def _links(dims, coords, row_of, pairs):
    """One line trace for many segments: None between segments keeps it one trace (fast)."""
    pts = []
    for a, b in pairs:
        pts += [coords[row_of[a]], coords[row_of[b]], [None] * dims]
    return np.array(pts, dtype=object).reshape(-1, dims) if pts else np.empty((0, dims))


_PLACES = {"top center": (0.0, 1.0), "bottom center": (0.0, -1.0), "middle right": (1.0, 0.0), "middle left": (-1.0, 0.0)}


def _label_places(coords: np.ndarray, labelled: list[tuple[int, str]], width_px: int = 560,
                  height_px: int = 420) -> dict[int, str]:
    """Where each label goes so that labels do not overlap, most important first (the order given):
    row -> textposition; a label with no free place is left to the hover. Boxes are estimated for a
    plot of about width_px x height_px (7 px a character, 15 px a line)."""
    xy = coords[:, :2]
    span = np.maximum(xy.max(0) - xy.min(0), 1e-9)
    px = (xy - xy.min(0)) / span * [width_px, height_px]                   # points in pixels
    boxes, out = [], {}
    for row, text in labelled:
        if row in out:
            continue
        w, h = 7 * len(text) + 4, 15
        for place, (dx, dy) in _PLACES.items():
            cx, cy = px[row, 0] + dx * (w / 2 + 6), px[row, 1] + dy * (h / 2 + 6)
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
            if all(box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3] for b in boxes):
                boxes.append(box)
                out[row] = place
                break
    return out


def embedding_figure(neighbours: Neighbours, trace: Trace, focus: int, dims: int = 2,
                     labels: Callable[[int], str] | None = None, label_neighbours: str = "focus") -> go.Figure:
    """PCA of the prompt tokens' embedding rows and their nearest neighbours, in 2-D or 3-D.

    Prompt tokens are always labelled; label_neighbours says which neighbours are: "focus" (those
    of the focus token; the rest show their label on hover, which keeps ~70 points readable),
    "all" or "none"."""
    if dims not in (2, 3) or isinstance(dims, bool):
        raise ValueError(f"dims must be 2 or 3, got {dims!r}")
    if label_neighbours not in ("focus", "all", "none"):
        raise ValueError(f"label_neighbours must be 'focus', 'all' or 'none', got {label_neighbours!r}")
    frow = _check(neighbours, trace, focus, labels)
    q_ids = [int(i) for i in neighbours.query_ids]
    fid = q_ids[frow]
    vec_ids = [int(i) for i in neighbours.vector_ids]
    row_of = {v: r for r, v in enumerate(vec_ids)}
    coords, ratio = pca(neighbours.vectors, dims)
    name = {v: labels(v) for v in vec_ids}

    # Who is whose neighbour, with the cosine (a vocabulary token may neighbour several prompt tokens).
    cos_to: dict[int, list[tuple[int, float]]] = {v: [] for v in vec_ids}
    pairs, focus_pairs = [], []
    for r, qid in enumerate(q_ids):
        for nid, c in zip(neighbours.neighbour_ids[r].tolist(), neighbours.cosine[r].tolist()):
            cos_to[nid].append((qid, c))
            (focus_pairs if r == frow else pairs).append((qid, nid))
    focus_nbrs = {int(n) for n in neighbours.neighbour_ids[frow]}
    positions = {}
    for p, t in enumerate(trace.token_ids):
        positions.setdefault(t, []).append(p)

    def hover(v: int) -> str:
        head = f"<b>{plotly_text(name[v])}</b> · id {v}"
        lines = []
        if v in positions:
            lines.append(W("hover_positions", positions=", ".join(map(str, positions[v][:12]))
                           + ("…" if len(positions[v]) > 12 else "")))
        lines += [W("hover_cosine", token=plotly_text(name[qid]), c=c) for qid, c in cos_to[v]]
        if v in q_ids:
            r = q_ids.index(v)
            best = ", ".join(f"{plotly_text(name[int(n)])} {c:.2f}" for n, c in
                             zip(neighbours.neighbour_ids[r][:3], neighbours.cosine[r][:3]))
            lines.append(W("hover_nearest", best=best))
        return "<br>".join([head, *lines])

    query_set = set(q_ids)
    nbr_only = [v for v in vec_ids if v not in query_set]
    groups = [  # (name, ids, marker size, colour, label font, labelled)
        (W("other_neighbours"), [v for v in nbr_only if v not in focus_nbrs], 6, OTHER_NBR,
         dict(size=10, color="#6b7d93"), label_neighbours == "all"),
        (W("neighbours_of", token=short(name[fid], MAX_LABEL)), [v for v in nbr_only if v in focus_nbrs], 8, FOCUS_NBR,
         dict(size=11, color="#8a5300"), label_neighbours != "none"),
        (W("prompt_tokens"), [v for v in q_ids if v != fid], 13, QUERY, dict(size=13, color=QUERY), True),
        (W("focus", token=short(name[fid], MAX_LABEL)), [fid], 17, FOCUS, dict(size=14, color=FOCUS), True),
    ]
    wanted = [(row_of[v], short(name[v], MAX_LABEL)) for _, ids, *_, labelled in reversed(groups) if labelled for v in ids]
    placed = _label_places(coords, wanted) if dims == 2 else {}
    narrow = _label_places(coords, wanted, 260, 300) if dims == 2 else {}      # a phone-width plot
    line = dict(width=1, color=LINK)
    data = [_scatter(dims, _links(dims, coords, row_of, pairs), mode="lines", line=line,
                     hoverinfo="skip", name=W("links"), showlegend=False),
            _scatter(dims, _links(dims, coords, row_of, focus_pairs), mode="lines",
                     line=dict(width=2, color=FOCUS_NBR), hoverinfo="skip", name=W("focus_links"), showlegend=False)]
    for gname, ids, size, colour, tfont, labelled in groups:
        xyz = coords[[row_of[v] for v in ids]] if ids else np.empty((0, dims))
        data.append(_scatter(
            dims, xyz, mode="markers+text" if labelled else "markers", name=gname, customdata=ids,
            marker=dict(size=size if dims == 2 else size * 0.5, color=colour,
                        line=dict(width=1, color="white")),
            text=[short(name[v], MAX_LABEL) if dims == 3 or row_of[v] in placed else "" for v in ids],
            textposition=[placed.get(row_of[v], "top center") for v in ids] if dims == 2 else "top center",
            textfont=dict(family=FONT, **tfont),
            hovertext=[hover(v) for v in ids], hovertemplate="%{hovertext}<extra></extra>"))

    fig = go.Figure(data=data)
    if dims == 2:      # the page swaps these labels in on a narrow screen (assets/plots.js, layout.meta.gg_narrow)
        first = 2      # the two link traces come first
        fig.update_layout(meta=dict(gg_narrow={str(first + g): dict(
            text=[short(name[v], MAX_LABEL) if row_of[v] in narrow else "" for v in ids],
            textposition=[narrow.get(row_of[v], "top center") for v in ids])
            for g, (_, ids, *_rest) in enumerate(groups)}))
    d_model = neighbours.vectors.shape[1]
    k = neighbours.neighbour_ids.shape[1]
    axis = [W("axis", i=i + 1, ratio=ratio[i]) for i in range(dims)]
    base_layout(fig, W("title", d_model=d_model, dims=dims), height=580 if dims == 2 else 640,
                legend=dict(orientation="h", yanchor="top", y=-0.12, x=0),
                autosize=True)
    fig.update_layout(
        title_subtitle_text=W("subtitle", k=k, dims=dims, kept=ratio.sum()),
        margin=dict(t=95, l=50, r=20, b=40))
    if dims == 2:
        # Axes are not forced to equal scale: PC1 often spans several times PC2, and equal scales
        # would squash the points into a strip; the axis titles give each PC's share of variance.
        fig.update_xaxes(title_text=axis[0], zeroline=False)
        fig.update_yaxes(title_text=axis[1], zeroline=False)
    else:
        # Camera further out than Plotly's default so the axis titles are not clipped.
        fig.update_layout(scene=dict(xaxis_title=axis[0], yaxis_title=axis[1], zaxis_title=axis[2],
                                     aspectmode="cube", camera=dict(eye=dict(x=1.7, y=1.7, z=1.1)),
                                     domain=dict(x=[0, 1], y=[0, 1])))
    return fig


def neighbour_table_html(neighbours: Neighbours, trace: Trace, focus: int, labels: Callable[[int], str]) -> str:
    """The focus token's nearest vocabulary tokens with cosine similarities, as an escaped table."""
    frow = _check(neighbours, trace, focus, labels)
    fid = int(neighbours.query_ids[frow])
    rows = []
    for rank, (nid, c) in enumerate(zip(neighbours.neighbour_ids[frow].tolist(),
                                        neighbours.cosine[frow].tolist()), start=1):
        width = max(0.0, min(1.0, c)) * 8   # em; cosine 1 = 8em
        rows.append(f'<tr><td class="gg-num">{rank}</td><td class="gg-tok">{html.escape(labels(nid))}</td>'
                    f'<td class="gg-num">{nid}</td><td class="gg-num">{c:.3f}</td>'
                    f'<td><span class="gg-nbr-bar" style="width:{width:.2f}em"></span></td></tr>')
    caption = W("caption", token=html.escape(trace.pieces[focus].label), fid=fid, focus=focus,
                C=neighbours.vectors.shape[1])
    return (f'<div class="gg-nbr"><p class="gg-nbr-caption">{caption}</p>'
            f'<table class="gg-nbr-table"><thead><tr><th>#</th><th>{html.escape(W("th_token"))}</th><th>id</th>'
            f'<th>{html.escape(W("th_cosine"))}</th><th></th>'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f'<p class="gg-nbr-note">{html.escape(W("cosine_note"))}</p></div>')


def position_note(config: ModelConfig) -> str:
    """How the running model tells positions apart: an HTML snippet, built once, that carries both
    languages (the page shows the one it speaks)."""
    if config.uses_rope:
        en, zh = W.both("note_rope", base=config.rope_base)
    else:
        en, zh = W.both("note_learned", n_ctx=config.n_ctx)
    return both_html(html.escape(en), html.escape(zh))
