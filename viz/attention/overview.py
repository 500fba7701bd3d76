"""Every head at once: all heads of one layer side by side (pooled for long prompts), per-head
statistics of every layer as one grid, and which query heads share which key/value head."""
from __future__ import annotations

import numpy as np

from model.config import ModelConfig
from model.trace import Trace

from ..common import SEQUENTIAL, check_bool, check_head, check_layer, make_figure, plotly_text, two_line_title
from ..words import table
from ._base import _head_label, _labels, _pattern, _sink_note, _token_axis, _view

_HEAD_POOL = 56            # layer_heads_figure: at most this many rows/columns per head
_GAP = 2                   # empty columns between heads in layer_heads_figure

W = table("attention.overview", {
    # all heads of one layer
    "x_alias": ("{head} · key {block}", "{head} · 键 {block}"),
    "mass": ("attention mass", "注意力总量"),
    "weight": ("weight", "权重"),
    "layer_hover": ("%{{x}}<br>query {query}<br>{what} %{{z:.4f}}<extra></extra>",
                    "%{{x}}<br>查询 {query}<br>{what} %{{z:.4f}}<extra></extra>"),
    "pool_note": ("; {T} tokens pooled to {B}×{B} blocks per head (mean over a block's queries of the weight "
                  "summed over a block's keys)",
                  "；{T} 个词元合并为每个头 {B}×{B} 个块（先在一块键上对权重求和，再对一块查询取平均）"),
    "kv_short": ("kv{kv}", "KV {kv}"),
    "layer_x": ("key tokens, one block per head", "键词元，每个头一块"),
    "layer_y": ("query token", "查询词元"),
    "layer_title": ("Layer {layer}: all {H} heads", "第 {layer} 层：全部 {H} 个注意力头"),
    "layer_subtitle": ("click a head to select it{notes}", "点击某个头即可选中它{notes}"),
    # every head of every layer: metric labels and colour-bar titles
    "metric_sink": ("mean attention to the first token (the sink)", "对第一个词元（注意力汇点）的平均注意力"),
    "metric_previous": ("mean attention to the previous token", "对前一个词元的平均注意力"),
    "metric_self": ("mean attention to itself", "对自身的平均注意力"),
    "metric_entropy": ("mean entropy of the pattern rows (bits)", "注意力模式各行的平均熵（比特）"),
    "cbar_sink": ("to first", "对首词元"),
    "cbar_previous": ("to prev.", "对前一词元"),
    "cbar_self": ("to self", "对自身"),
    "cbar_entropy": ("bits", "比特"),
    "cell": ("to first {first:.3f}<br>to previous {prev:.3f}<br>to self {own:.3f}<br>entropy {ent:.2f} bits",
             "对首词元 {first:.3f}<br>对前一词元 {prev:.3f}<br>对自身 {own:.3f}<br>熵 {ent:.2f} 比特"),
    "all_hover": ("layer %{{y}} · head %{{x}}<br>%{{text}}<extra></extra>",
                  "第 %{{y}} 层 · 注意力头 %{{x}}<br>%{{text}}<extra></extra>"),
    "over_queries": ("over queries 1..T-1", "对第 1 至 T−1 个查询取平均"),
    "needs_two": ("(needs at least 2 tokens)", "取平均（至少需要 2 个词元）"),
    "all_x": ("head (query head → shared K/V head)", "注意力头（查询头 → 共用的 K/V 头）"),
    "all_y": ("layer", "层"),
    "all_title": ("Every head: {metric}", "所有注意力头：{metric}"),
    "all_subtitle": ("averaged {note}; hover for all four statistics; click a head to select it",
                     "{note}；悬停可看全部四项统计；点击某个头即可选中它"),
    # grouped-query attention
    "q_reads": ("query head {h} reads K/V head {g}", "查询头 {h} 读取 K/V 头 {g}"),
    "kv_shared": ("K/V head {g}: shared by query heads {heads}", "K/V 头 {g}：由查询头 {heads} 共用"),
    "list_sep": (", ", "、"),
    "gqa": ("grouped-query attention: {H} query heads share {KV} K/V heads ({n} each)",
            "分组查询注意力：{H} 个查询头共用 {KV} 个 K/V 头（每个 K/V 头对应 {n} 个）"),
    "mha": ("multi-head attention: each of the {H} query heads has its own K/V head",
            "多头注意力：{H} 个查询头各有自己的 K/V 头"),
})
# all_heads_figure: metric -> (label, colorbar title), in English; the figure reads them from W.
METRICS = {m: (W.entries[f"metric_{m}"][0], W.entries[f"cbar_{m}"][0]) for m in ("sink", "previous", "self", "entropy")}


# ---- all heads of one layer --------------------------------------------------------------------------
def _pool_bounds(T: int, cap: int) -> np.ndarray:
    """Block starts (plus T) splitting 0..T-1 into at most `cap` near-equal blocks."""
    if T <= cap:
        return np.arange(T + 1)
    return np.unique(np.linspace(0, T, cap + 1).round().astype(int))


def _pool(w: np.ndarray, bounds: np.ndarray, exclude_first: bool) -> np.ndarray:
    """(H, T, T) weights (NaN in the future and where hidden) -> (H, B, B): for each block of
    queries, the mean over its queries of the summed weight on each block of keys (attention mass).
    Blocks entirely in the future are NaN; so is a hidden key 0 when it is a block of its own."""
    starts, ends = bounds[:-1], bounds[1:]
    filled = np.nan_to_num(w, nan=0.0)
    by_keys = np.add.reduceat(filled, starts, axis=2)                    # (H, T, B)
    pooled = np.add.reduceat(by_keys, starts, axis=1) / (ends - starts)[None, :, None]
    future = starts[None, :] > (ends[:, None] - 1)                       # key block after query block
    pooled[:, future] = np.nan
    if exclude_first and ends[0] == 1:
        pooled[:, :, 0] = np.nan
    return pooled.astype(np.float32)


def layer_heads_figure(trace: Trace, layer: int, exclude_first: bool = False, renormalise: bool = False,
                       head: int | None = None):
    """Every head of one layer in ONE heatmap, side by side with empty gaps; head labels on top.

    `customdata` of each cell is its head index (click -> `points[0].customdata`). `head`, if given,
    outlines the selected head. Prompts longer than `_HEAD_POOL` tokens are pooled (the title
    says so): each cell then holds the attention mass a block of queries gives a block of keys."""
    check_layer(trace, layer)
    if head is not None:
        check_head(trace, head)
    exclude_first = check_bool("exclude_first", exclude_first)
    renormalise = check_bool("renormalise", renormalise)
    cfg, T = trace.config, trace.T
    H = cfg.n_head
    w = _view(_pattern(trace, layer), exclude_first, renormalise)       # (H, T, T)
    bounds = _pool_bounds(T, _HEAD_POOL)
    pooled = len(bounds) - 1 < T
    if pooled:
        w = _pool(w, bounds, exclude_first)
    B = w.shape[1]
    width = H * B + (H - 1) * _GAP
    z = np.full((B, width), np.nan, dtype=np.float32)
    cd = np.full((B, width), -1, dtype=np.int8)
    for h in range(H):
        c0 = h * (B + _GAP)
        z[:, c0:c0 + B] = w[h]
        cd[:, c0:c0 + B] = h
    starts, ends = bounds[:-1], bounds[1:]
    labels = _labels(trace)

    def block_label(b: int) -> str:
        return f"#{starts[b]} {labels[starts[b]]}" if ends[b] - starts[b] == 1 \
            else f"#{starts[b]}–{ends[b] - 1} {labels[starts[b]]}…"

    blocks = [block_label(b) for b in range(B)]
    head_labels = [_head_label(cfg, h) for h in range(H)]
    x_alias = {str(h * (B + _GAP) + b): W("x_alias", head=head_labels[h], block=blocks[b])
               for h in range(H) for b in range(B)}
    zmax = float(np.nanmax(z)) if np.isfinite(z).any() else 1.0
    what = W("mass" if pooled else "weight")
    q_hover = "%{y}" if pooled else "#%{pointNumber[0]} %{y}"
    heat = dict(type="heatmap", z=z, x0=0, dx=1, y0=0, dy=1, customdata=cd, colorscale=SEQUENTIAL,
                zmin=0, zmax=zmax, hoverongaps=False, colorbar=dict(title=dict(text=what), thickness=12),
                hovertemplate=W("layer_hover", query=q_hover, what=what))
    pool_note = W("pool_note", T=T, B=B) if pooled else ""
    annotations = [dict(x=h * (B + _GAP) + (B - 1) / 2, y=1.0, yref="paper", yanchor="bottom", showarrow=False,
                        text=(f"<b>h{h}</b>" if h == head else f"h{h}")
                        + f"<br><span style='font-size:9px'>{W('kv_short', kv=cfg.kv_head_of(h))}</span>",
                        font=dict(size=11)) for h in range(H)]
    shapes = []
    if head is not None:
        c0 = head * (B + _GAP)
        shapes.append(dict(type="rect", x0=c0 - 0.5, x1=c0 + B - 0.5, y0=-0.5, y1=B - 0.5,
                           line=dict(color="#e66100", width=2.5), fillcolor="rgba(0,0,0,0)"))
    y_axis = (_token_axis(trace) if not pooled else
              dict(tickmode="linear", tick0=0, dtick=max(1, B // 12), tickformat="d", hoverformat="d",
                   exponentformat="none", labelalias={str(b): blocks[b] for b in range(B)}))
    layout = dict(
        autosize=True, plot_bgcolor="#f4f4f4", annotations=annotations, shapes=shapes,
        # The page outlines the current head: block h spans columns h*(B+gap) .. h*(B+gap)+B-1.
        meta=dict(gg_mark=dict(kind="head-block", block=B, gap=_GAP)),
        xaxis=dict(range=[-0.5, width - 0.5], showticklabels=False, showgrid=False, zeroline=False,
                   tickmode="linear", tick0=0, dtick=1, hoverformat="d", exponentformat="none",
                   labelalias=x_alias, title=dict(text=W("layer_x"))),
        yaxis=dict(range=[B - 0.5, -0.5], showgrid=False, zeroline=False, automargin=True,
                   title=dict(text=W("layer_y")), **y_axis))
    title = two_line_title(W("layer_title", layer=layer, H=H),
                           W("layer_subtitle", notes=_sink_note(exclude_first, renormalise) + pool_note))
    return make_figure([heat], layout, title, height=int(min(580, max(320, 190 + 14 * B))),
                   margin=dict(l=60, r=20, t=112, b=40))


# ---- every head of every layer --------------------------------------------------------------------
def head_statistics(trace: Trace) -> np.ndarray:
    """(L, H, 4) float32: per head, over query positions 1..T-1 (position 0 can only attend to
    itself), the mean weight on the first token, on the previous token, on itself, and the mean
    row entropy in bits. The session's view keeps them (server/state.py)."""
    cfg, T = trace.config, trace.T
    out = np.full((cfg.n_layer, cfg.n_head, 4), np.nan, dtype=np.float32)
    if T > 1:
        i = np.arange(1, T)
        for l in range(cfg.n_layer):
            p = _pattern(trace, l)[:, 1:, :].astype(np.float32)      # (H, T-1, T)
            out[l, :, 0] = p[:, :, 0].mean(1)
            out[l, :, 1] = p[:, i - 1, i - 1].mean(1)                # w[q, q-1]
            out[l, :, 2] = p[:, i - 1, i].mean(1)                    # w[q, q]
            out[l, :, 3] = -(p * np.log2(np.maximum(p, 1e-30))).sum(-1).mean(1)
    return out


def all_heads_figure(trace: Trace, metric: str = "sink", selected: tuple[int, int] | None = None,
                     stats: np.ndarray | None = None):
    """All layers (rows, layer 0 at the bottom) x heads (columns) in ONE heatmap, coloured by a
    per-head statistic of the real patterns: "sink", "previous", "self" or "entropy". Hover shows
    all four; `customdata` = [layer, head] (click to select); `selected` outlines that head (the
    page outlines the current layer and head itself, as `layout.meta.gg_mark` asks).
    `stats`: head_statistics(trace), if already known."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if selected is not None:
        if not isinstance(selected, (tuple, list)) or len(selected) != 2:
            raise ValueError(f"selected must be (layer, head), got {selected!r}")
        check_layer(trace, selected[0])
        check_head(trace, selected[1])
    cfg = trace.config
    L, H = cfg.n_layer, cfg.n_head
    stats = head_statistics(trace) if stats is None else stats
    m = list(METRICS).index(metric)
    ll, hh = np.meshgrid(np.arange(L), np.arange(H), indexing="ij")
    # A plain nested list (not a typed array): plotly.js then hands `points[0].customdata` to a click
    # handler as an ordinary [layer, head] Array, which JSON-encodes as a list.
    cd = np.stack([ll, hh], axis=-1).tolist()
    text = [[W("cell", first=stats[l, h, 0], prev=stats[l, h, 1], own=stats[l, h, 2], ent=stats[l, h, 3])
             for h in range(H)] for l in range(L)]
    heat = dict(type="heatmap", z=stats[:, :, m], x0=0, dx=1, y0=0, dy=1, customdata=cd, text=text,
                colorscale=SEQUENTIAL, xgap=1, ygap=1,
                zmin=0, zmax=(float(np.max(stats[:, :, 3])) if metric == "entropy" and trace.T > 1 else 1.0),
                colorbar=dict(title=dict(text=W(f"cbar_{metric}")), thickness=12),
                hovertemplate=W("all_hover"))
    note = W("over_queries" if trace.T > 1 else "needs_two")
    shapes = []
    if selected is not None:
        l, h = selected
        shapes.append(dict(type="rect", x0=h - 0.5, x1=h + 0.5, y0=l - 0.5, y1=l + 0.5,
                           line=dict(color="#e66100", width=3), fillcolor="rgba(0,0,0,0)"))
    layout = dict(
        autosize=True, shapes=shapes, plot_bgcolor="#f4f4f4", meta=dict(gg_mark=dict(kind="cell")),
        xaxis=dict(title=dict(text=W("all_x")), tickmode="array",
                   tickvals=list(range(H)), ticktext=[_head_label(cfg, h) for h in range(H)],
                   range=[-0.5, H - 0.5], showgrid=False, zeroline=False),
        yaxis=dict(title=dict(text=W("all_y")), tickmode="linear", tick0=0, dtick=1 if L <= 32 else 2,
                   range=[-0.5, L - 0.5], showgrid=False, zeroline=False))
    return make_figure([heat], layout, two_line_title(W("all_title", metric=W(f"metric_{metric}")),
                                                      W("all_subtitle", note=note)), height=640)


# ---- grouped-query attention --------------------------------------------------------------------------
def gqa_figure(config: ModelConfig, head: int | None = None):
    """Which query heads share which key/value head: query heads on top, K/V heads below, a line
    from each query head to the K/V head it reads; `head` highlights one query head."""
    H, KV = config.n_head, config.n_kv_head
    if head is not None and (isinstance(head, bool) or not isinstance(head, int) or not 0 <= head < H):
        raise ValueError(f"head must be a whole number in 0..{H - 1}, got {head!r}")
    palette = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"]
    qx = np.arange(H, dtype=float)
    kvx = np.array([np.mean([h for h in range(H) if config.kv_head_of(h) == g]) for g in range(KV)])
    lines_x, lines_y = [], []
    for h in range(H):
        lines_x += [qx[h], kvx[config.kv_head_of(h)], None]
        lines_y += [1, 0, None]
    color_q = [palette[config.kv_head_of(h) % len(palette)] for h in range(H)]
    data = [
        dict(type="scatter", x=lines_x, y=lines_y, mode="lines", line=dict(color="#999", width=1.5),
             hoverinfo="skip"),
        dict(type="scatter", x=qx, y=[1] * H, mode="markers+text", text=[f"Q{h}" for h in range(H)],
             textposition="top center", customdata=list(range(H)),
             marker=dict(size=[22 if h == head else 16 for h in range(H)], color=color_q, symbol="circle",
                         line=dict(color=["#000" if h == head else "#fff" for h in range(H)], width=2)),
             hovertext=[W("q_reads", h=h, g=config.kv_head_of(h)) for h in range(H)],
             hoverinfo="text"),
        dict(type="scatter", x=kvx, y=[0] * KV, mode="markers+text", text=[f"K/V{g}" for g in range(KV)],
             textposition="bottom center", marker=dict(size=18, color=[palette[g % len(palette)] for g in range(KV)],
                                                      symbol="square"),
             hovertext=[W("kv_shared", g=g, heads=W("list_sep").join(str(h) for h in range(H)
                                                                     if config.kv_head_of(h) == g))
                        for g in range(KV)],
             hoverinfo="text"),
    ]
    kind = W("gqa", H=H, KV=KV, n=config.group_size) if KV < H else W("mha", H=H)
    layout = dict(autosize=True, showlegend=False, xaxis=dict(visible=False, range=[-0.7, H - 0.3]),
                  yaxis=dict(visible=False, range=[-0.55, 1.5]))
    return make_figure(data, layout, plotly_text(kind), height=230, margin=dict(l=20, r=20, t=45, b=20))
