"""Attention panels: one head's pattern, all heads of a layer, an overview of every head, the
arithmetic for one query token (scores -> scaled & masked -> softmax, with its Q, K and V), which
query heads share which key/value head, and a tiny worked example.

Every number comes from the Trace (stored q, k, v, z and pattern; raw scores recomputed here in
numpy), except `worked_example()`, which is an explicitly labelled toy.

Lean figures: one heatmap trace per picture (never one subplot per head), float32 arrays (sent to
the browser as base64 typed arrays), hover text built from a few per-axis strings rather than one
string per cell, and large prompts pooled to a capped number of cells (the title says so).

Hover labels on token axes: up to `_MAX_TICKS` tokens the axis carries one tick per token
(tickvals/ticktext; Plotly's hover shows a tick's text). Beyond that the ticks are thinned and every
position gets its label through `labelalias` (keys are the plain position numbers, so a token that
looks like a number cannot collide with a position); hover shows the label either way.
"""
from __future__ import annotations

import html
import math

import numpy as np

from ..common import (DIVERGING, SEQUENTIAL, causal_future, check_bool, check_head, check_layer, check_position,
                     make_figure, piece_label, plotly_text, token_axis, two_line_title)

_MAX_TICKS = 60            # one tick per token up to this many tokens
_HEAD_POOL = 56            # layer_heads_figure: at most this many rows/columns per head
_LOG_FLOOR = 1e-4          # log colour scale: weights below this share the lowest colour
_GAP = 2                   # empty columns between heads in layer_heads_figure
METRICS = {                # all_heads_figure: metric -> (label, colorbar title)
    "sink": ("mean attention to the first token (the sink)", "to first"),
    "previous": ("mean attention to the previous token", "to prev."),
    "self": ("mean attention to itself", "to self"),
    "entropy": ("mean entropy of the pattern rows (bits)", "bits"),
}


# ---- shared helpers --------------------------------------------------------------------------------
_piece = piece_label
_check_bool = check_bool
_title = two_line_title


def _labels(trace, positions=None) -> list[str]:
    positions = range(trace.T) if positions is None else positions
    return [_piece(trace.pieces[i]) for i in positions]


def _head_label(config, head: int) -> str:
    return f"h{head} (kv{config.kv_head_of(head)})"


def _token_axis(trace, positions=None) -> dict:
    return token_axis(trace, positions, max_ticks=_MAX_TICKS)


def _figure(data: list, layout: dict, title: str, height: int, margin: dict | None = None):
    return make_figure(data, layout, title, height, margin)


def _focus_text(trace, focus: int) -> str:
    return f"#{focus} “{_piece(trace.pieces[focus])}”"


def _pattern(trace, layer: int) -> np.ndarray:
    return trace.act("attn.hook_pattern", layer)            # (H, T, T) float16


def _mask_future(a: np.ndarray) -> np.ndarray:
    """NaN above the diagonal of the last two axes (future keys), float32 copy."""
    out = np.array(a, dtype=np.float32)
    out[..., causal_future(out.shape[-2], out.shape[-1])] = np.nan
    return out


def _view(w: np.ndarray, exclude_first: bool, renormalise: bool) -> np.ndarray:
    """Pattern (..., T, T) float32 with the future NaN; optionally key 0 hidden (and the rest
    renormalised to sum to 1 per row)."""
    w = _mask_future(w)
    if exclude_first:
        w[..., 0] = np.nan
        if renormalise:
            with np.errstate(invalid="ignore", divide="ignore"):
                w = w / np.nansum(w, axis=-1, keepdims=True)
    return w


def _sink_note(exclude_first: bool, renormalise: bool) -> str:
    if not exclude_first:
        return ""
    if renormalise:
        return "; first token hidden, rows renormalised over the other keys"
    return "; first token hidden, weights as computed (rows no longer sum to 1)"


# ---- one head ----------------------------------------------------------------------------------------
def head_pattern_figure(trace, layer: int, head: int, focus: int, exclude_first: bool = False,
                        scale: str = "linear", renormalise: bool = False):
    """Query tokens (rows) x key tokens (columns) for one head; the focus query row is outlined.

    The causal upper triangle is empty (NaN), never 0. To see past the attention sink: hide key 0
    (`exclude_first`, weights as computed, or `renormalise` to redistribute each row over the other
    keys), or colour on a log scale (`scale="log"`)."""
    check_layer(trace, layer)
    check_head(trace, head)
    check_position(trace, focus)
    exclude_first = _check_bool("exclude_first", exclude_first)
    renormalise = _check_bool("renormalise", renormalise)
    if scale not in ("linear", "log"):
        raise ValueError(f"scale must be 'linear' or 'log', got {scale!r}")
    T, cfg = trace.T, trace.config
    shown = _view(_pattern(trace, layer)[head], exclude_first, renormalise)   # NaN in the future
    heat = dict(type="heatmap", x0=0, dx=1, y0=0, dy=1, colorscale=SEQUENTIAL, hoverongaps=False,
                xgap=1 if T <= 40 else 0, ygap=1 if T <= 40 else 0)
    hover = "query #%{pointNumber[0]} %{y}<br>key #%{pointNumber[1]} %{x}<br>"
    label = "renormalised weight" if exclude_first and renormalise else "weight"
    if scale == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.log10(np.maximum(shown, _LOG_FLOOR))
        z[np.isnan(shown)] = np.nan
        exps = list(range(int(math.log10(_LOG_FLOOR)), 1))
        heat.update(z=z, zmin=math.log10(_LOG_FLOOR), zmax=0, customdata=shown,
                    colorbar=dict(title=dict(text=label), tickvals=exps,
                                  ticktext=[f"{10.0 ** e:g}" for e in exps], thickness=12))
        hover += label + " %{customdata:.4g}"
    else:
        zmax = float(np.nanmax(shown)) if np.isfinite(shown).any() else 1.0
        heat.update(z=shown, zmin=0, zmax=zmax, colorbar=dict(title=dict(text=label), thickness=12))
        hover += label + " %{z:.4f}"
    heat["hovertemplate"] = hover + "<extra></extra>"
    title = _title(f"Layer {layer} · head {_head_label(cfg, head)}: attention pattern",
                   f"query {_focus_text(trace, focus)} outlined; each row sums to 1; the empty upper triangle "
                   f"is the masked future{_sink_note(exclude_first, renormalise)}"
                   f"{'; log colour scale' if scale == 'log' else ''}")
    layout = dict(
        autosize=True, plot_bgcolor="#f4f4f4",
        shapes=[dict(type="rect", x0=-0.5, x1=focus + 0.5, y0=focus - 0.5, y1=focus + 0.5,
                     line=dict(color="#e66100", width=3), fillcolor="rgba(0,0,0,0)")],
        xaxis=dict(title=dict(text="key token (attended to)"), range=[-0.5, T - 0.5], showgrid=False,
                   zeroline=False, automargin=True, **_token_axis(trace)),
        yaxis=dict(title=dict(text="query token (attending)"), range=[T - 0.5, -0.5], showgrid=False,
                   zeroline=False, automargin=True, **_token_axis(trace)))
    return _figure([heat], layout, title, height=int(min(760, max(380, 150 + 16 * T))))


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


def layer_heads_figure(trace, layer: int, exclude_first: bool = False, renormalise: bool = False,
                       head: int | None = None):
    """Every head of one layer in ONE heatmap, side by side with empty gaps; head labels on top.

    `customdata` of each cell is its head index (click -> `points[0].customdata`). `head`, if given,
    outlines the selected head. Prompts longer than `_HEAD_POOL` tokens are pooled (the title
    says so): each cell then holds the attention mass a block of queries gives a block of keys."""
    check_layer(trace, layer)
    if head is not None:
        check_head(trace, head)
    exclude_first = _check_bool("exclude_first", exclude_first)
    renormalise = _check_bool("renormalise", renormalise)
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
    x_alias = {str(h * (B + _GAP) + b): f"{_head_label(cfg, h)} · key {blocks[b]}" for h in range(H) for b in range(B)}
    zmax = float(np.nanmax(z)) if np.isfinite(z).any() else 1.0
    what = "attention mass" if pooled else "weight"
    q_hover = "%{y}" if pooled else "#%{pointNumber[0]} %{y}"
    heat = dict(type="heatmap", z=z, x0=0, dx=1, y0=0, dy=1, customdata=cd, colorscale=SEQUENTIAL,
                zmin=0, zmax=zmax, hoverongaps=False, colorbar=dict(title=dict(text=what), thickness=12),
                hovertemplate=f"%{{x}}<br>query {q_hover}<br>{what} %{{z:.4f}}<extra></extra>")
    pool_note = (f"; {T} tokens pooled to {B}×{B} blocks per head (mean over a block's queries of the weight "
                 f"summed over a block's keys)" if pooled else "")
    annotations = [dict(x=h * (B + _GAP) + (B - 1) / 2, y=1.0, yref="paper", yanchor="bottom", showarrow=False,
                        text=(f"<b>h{h}</b>" if h == head else f"h{h}")
                        + f"<br><span style='font-size:9px'>kv{cfg.kv_head_of(h)}</span>",
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
                   labelalias=x_alias, title=dict(text="key tokens, one block per head")),
        yaxis=dict(range=[B - 0.5, -0.5], showgrid=False, zeroline=False, automargin=True,
                   title=dict(text="query token"), **y_axis))
    title = _title(f"Layer {layer}: all {H} heads", f"click a head to select it{_sink_note(exclude_first, renormalise)}"
                                                     f"{pool_note}")
    return _figure([heat], layout, title, height=int(min(580, max(320, 190 + 14 * B))),
                   margin=dict(l=60, r=20, t=112, b=40))


# ---- every head of every layer --------------------------------------------------------------------
def head_statistics(trace) -> np.ndarray:
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


def all_heads_figure(trace, metric: str = "sink", selected: tuple[int, int] | None = None,
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
    text = [[(f"to first {stats[l, h, 0]:.3f}<br>to previous {stats[l, h, 1]:.3f}<br>"
              f"to self {stats[l, h, 2]:.3f}<br>entropy {stats[l, h, 3]:.2f} bits") for h in range(H)]
            for l in range(L)]
    heat = dict(type="heatmap", z=stats[:, :, m], x0=0, dx=1, y0=0, dy=1, customdata=cd, text=text,
                colorscale=SEQUENTIAL, xgap=1, ygap=1,
                zmin=0, zmax=(float(np.max(stats[:, :, 3])) if metric == "entropy" and trace.T > 1 else 1.0),
                colorbar=dict(title=dict(text=METRICS[metric][1]), thickness=12),
                hovertemplate="layer %{y} · head %{x}<br>%{text}<extra></extra>")
    note = "over queries 1..T-1" if trace.T > 1 else "(needs at least 2 tokens)"
    shapes = []
    if selected is not None:
        l, h = selected
        shapes.append(dict(type="rect", x0=h - 0.5, x1=h + 0.5, y0=l - 0.5, y1=l + 0.5,
                           line=dict(color="#e66100", width=3), fillcolor="rgba(0,0,0,0)"))
    layout = dict(
        autosize=True, shapes=shapes, plot_bgcolor="#f4f4f4", meta=dict(gg_mark=dict(kind="cell")),
        xaxis=dict(title=dict(text="head (query head → shared K/V head)"), tickmode="array",
                   tickvals=list(range(H)), ticktext=[_head_label(cfg, h) for h in range(H)],
                   range=[-0.5, H - 0.5], showgrid=False, zeroline=False),
        yaxis=dict(title=dict(text="layer"), tickmode="linear", tick0=0, dtick=1 if L <= 32 else 2,
                   range=[-0.5, L - 0.5], showgrid=False, zeroline=False))
    return _figure([heat], layout, _title(f"Every head: {METRICS[metric][0]}",
                                          f"averaged {note}; hover for all four statistics; click a head to "
                                          f"select it"), height=640)


# ---- one query token, step by step ------------------------------------------------------------------
def detail_numbers(trace, layer: int, head: int, focus: int) -> dict:
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


def attention_detail_figure(trace, layer: int, head: int, focus: int):
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
    title = _title(f"Layer {layer} · head {_head_label(cfg, head)}: one query step by step",
                   f"query {_focus_text(trace, focus)}: q·k → ÷√{D}, future masked to −∞ → softmax → "
                   f"output = weighted sum of V")
    return _figure(data, lay, title, height=880)


# ---- grouped-query attention --------------------------------------------------------------------------
def gqa_figure(config, head: int | None = None):
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
             hovertext=[f"query head {h} reads K/V head {config.kv_head_of(h)}" for h in range(H)],
             hoverinfo="text"),
        dict(type="scatter", x=kvx, y=[0] * KV, mode="markers+text", text=[f"K/V{g}" for g in range(KV)],
             textposition="bottom center", marker=dict(size=18, color=[palette[g % len(palette)] for g in range(KV)],
                                                      symbol="square"),
             hovertext=[f"K/V head {g}: shared by query heads "
                        f"{', '.join(str(h) for h in range(H) if config.kv_head_of(h) == g)}" for g in range(KV)],
             hoverinfo="text"),
    ]
    kind = (f"grouped-query attention: {H} query heads share {KV} K/V heads ({config.group_size} each)"
            if KV < H else f"multi-head attention: each of the {H} query heads has its own K/V head")
    layout = dict(autosize=True, showlegend=False, xaxis=dict(visible=False, range=[-0.7, H - 0.3]),
                  yaxis=dict(visible=False, range=[-0.55, 1.5]))
    return _figure(data, layout, plotly_text(kind), height=230, margin=dict(l=20, r=20, t=45, b=20))


# ---- the toy example ----------------------------------------------------------------------------------
def worked_example_numbers() -> dict:
    """A toy: 2 tokens, 4 dims, identity W_Q = W_K = W_V, no scaling, no mask."""
    X = np.array([[1, 0, 1, 0], [0, 1, 0, 1]], dtype=float)
    Q = K = V = X @ np.eye(4)
    scores = Q @ K.T
    weights = np.exp(scores - scores.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    scaled = scores / math.sqrt(4)
    scaled_w = np.exp(scaled[0]) / np.exp(scaled[0]).sum()
    return dict(X=X, scores=scores, weights=weights, out=weights @ V, scaled_row=scaled[0], scaled_w=scaled_w)


_TOY_TEXT = {
    "en": dict(
        title="A worked example with tiny numbers (a toy, not the model)",
        intro="Two tokens, 4 dimensions, and W<sub>Q</sub> = W<sub>K</sub> = W<sub>V</sub> = identity, "
              "so Q = K = V = the inputs.",
        tok="token", inp="input x", score="scores with x₁, x₂ (Q·Kᵀ)", w="softmax weights", out="output (Σ weight·V)",
        after="Token 1 matches itself (score 2) and not token 2 (score 0): softmax([2, 0]) ≈ [{a}, {b}], so its "
              "output is {a}·x₁ + {b}·x₂. The real model adds two steps: it divides by √d (here √4 = 2, giving "
              "softmax([1, 0]) ≈ [{c}, {d}]) and masks the future, so token 1 could only see itself."),
    "zh": dict(
        title="用小数字演算一遍（玩具例子，不是模型的数值）",
        intro="两个词元、4 维，并令 W<sub>Q</sub> = W<sub>K</sub> = W<sub>V</sub> = 单位矩阵，于是 Q = K = V = 输入。",
        tok="词元", inp="输入 x", score="与 x₁、x₂ 的分数 (Q·Kᵀ)", w="softmax 权重", out="输出（Σ 权重·V）",
        after="词元 1 与自己匹配（分数 2），与词元 2 不匹配（分数 0）：softmax([2, 0]) ≈ [{a}, {b}]，"
              "所以它的输出是 {a}·x₁ + {b}·x₂。真实模型还多两步：先除以 √d（这里 √4 = 2，得到 "
              "softmax([1, 0]) ≈ [{c}, {d}]），再遮住未来的位置，所以词元 1 其实只能看到自己。"),
}


def worked_example(lang: str = "en") -> str:
    """The toy attention example as a small HTML table, numbers computed in numpy; `lang` "en"/"zh"."""
    if lang not in _TOY_TEXT:
        raise ValueError(f"lang must be one of {', '.join(_TOY_TEXT)}, got {lang!r}")
    t, n = _TOY_TEXT[lang], worked_example_numbers()
    vec = lambda a, d=2: "[" + ", ".join(f"{x:.{d}f}".rstrip("0").rstrip(".") if d else f"{x:g}" for x in a) + "]"
    rows = "".join(
        f"<tr><td>x{'₁₂'[i]}</td><td>{vec(n['X'][i], 0)}</td><td>{vec(n['scores'][i], 0)}</td>"
        f"<td>{vec(n['weights'][i])}</td><td>{vec(n['out'][i])}</td></tr>" for i in range(2))
    esc = html.escape
    after = t["after"].format(a=f"{n['weights'][0, 0]:.2f}", b=f"{n['weights'][0, 1]:.2f}",
                              c=f"{n['scaled_w'][0]:.2f}", d=f"{n['scaled_w'][1]:.2f}")
    return (f'<div class="worked-example"><p><b>{esc(t["title"])}</b></p><p>{t["intro"]}</p>'
            f'<table><thead><tr><th>{esc(t["tok"])}</th><th>{esc(t["inp"])}</th><th>{esc(t["score"])}</th>'
            f'<th>{esc(t["w"])}</th><th>{esc(t["out"])}</th></tr></thead><tbody>{rows}</tbody></table>'
            f'<p>{esc(after)}</p></div>')
