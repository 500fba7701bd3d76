"""MLP panels: neuron activations per token for one layer, the focus token's most active neurons,
and where the non-linearity sits.

The activation shown is `mlp.hook_post`: the input of the down projection, one value per neuron
(SwiGLU: silu(gate) * up; GELU: gelu(up)). Each value scales one column of the down projection,
so it is "how much of this neuron's output direction gets added to the residual stream".
"""
from __future__ import annotations

import html
import math

import numpy as np

from model.config import ModelConfig
from model.trace import Trace

from .common import (DIVERGING, check_bool, check_layer, check_position, make_figure, piece_label, token_axis,
                     two_line_title as _title)
from .words import both_html, table

W = table("mlp", {
    # the activation heatmap
    "hover_token": ("token #%{{pointNumber[0]}} %{{y}}", "词元 #%{{pointNumber[0]}} %{{y}}"),
    "hover_neuron": ("{token}<br>neuron %{{x}}<br>activation %{{z:.4f}}<extra></extra>",
                     "{token}<br>神经元 %{{x}}<br>激活值 %{{z:.4f}}<extra></extra>"),
    "hover_group": ("{token}<br>neurons %{{x}}…+{more}<br>largest-magnitude activation %{{z:.4f}}<extra></extra>",
                    "{token}<br>神经元 %{{x}}…+{more}<br>绝对值最大的激活值 %{{z:.4f}}<extra></extra>"),
    "top_axis": ("neuron (most active first, by mean |activation| over the prompt)",
                 "神经元（按提示词上的平均 |激活值| 降序）"),
    "top_what": ("top {n} of {F} neurons", "{F} 个神经元中最活跃的 {n} 个"),
    "index_axis": ("neuron index", "神经元编号"),
    "per_column_axis": (" (each column = {k} neighbouring neurons)", "（每列 = 相邻的 {k} 个神经元）"),
    "all_what": ("all {F} neurons", "全部 {F} 个神经元"),
    "grouped_what": ("all {F} neurons, {k} per column (the value of largest magnitude in each group)",
                     "全部 {F} 个神经元，每列 {k} 个（取每组中绝对值最大的值）"),
    "activation": ("activation", "激活值"),
    "first_hidden": ("first token hidden", "已隐藏第一个词元"),
    "saturate": ("colours saturate at ±{lim}; hover shows the true value", "颜色在 ±{lim} 处饱和；悬停可看真实值"),
    "value_is": ("value = input of the down projection", "数值 = down 投影的输入"),
    "sep": ("; ", "；"),
    "title": ("Layer {layer} MLP: neuron activations", "第 {layer} 层 MLP：神经元激活值"),
    "token": ("token", "词元"),
    # the focus token's top neurons
    "hover_swiglu": ("neuron %{{y}}<br>gate (hook_pre) %{{customdata[0]:.4f}}<br>silu(gate) %{{customdata[1]:.4f}}"
                     "<br>up (hook_pre_linear) %{{customdata[2]:.4f}}<br>post = silu(gate)·up %{{x:.4f}}"
                     "<extra></extra>",
                     "神经元 %{{y}}<br>gate（hook_pre）%{{customdata[0]:.4f}}<br>silu(gate) %{{customdata[1]:.4f}}"
                     "<br>up（hook_pre_linear）%{{customdata[2]:.4f}}<br>激活值 = silu(gate)·up %{{x:.4f}}"
                     "<extra></extra>"),
    "hover_gelu": ("neuron %{{y}}<br>pre (hook_pre) %{{customdata[0]:.4f}}<br>gelu(pre) %{{customdata[1]:.4f}}"
                   "<br>post %{{x:.4f}}<extra></extra>",
                   "神经元 %{{y}}<br>输入（hook_pre）%{{customdata[0]:.4f}}<br>gelu(输入) %{{customdata[1]:.4f}}"
                   "<br>激活值 %{{x:.4f}}<extra></extra>"),
    "formula_gelu": ("gelu(pre)", "gelu(输入)"),
    "bar_axis": ("activation = {formula} (red positive, blue negative)", "激活值 = {formula}（红为正，蓝为负）"),
    "neuron": ("neuron", "神经元"),
    "top_title": ("Layer {layer} · token #{focus} “{piece}”: top neurons",
                  "第 {layer} 层 · 词元 #{focus} “{piece}”：最活跃的神经元"),
    "top_subtitle": ("its {n} most active neurons by |activation|; hover for the pieces of each",
                     "按 |激活值| 排序最活跃的 {n} 个神经元；悬停可看每个神经元的各个组成部分"),
    # where the non-linearity sits (static HTML, both languages)
    "added": ("added to the residual stream", "加到残差流上"),
    "note_swiglu": ("SwiGLU: the gate passes through SiLU (x·sigmoid(x)), the only non-linear step, and then "
                    "multiplies the up projection element by element. Each of the {F:,} products is one neuron's "
                    "activation (the heatmap above); it scales one column of the down projection.",
                    "SwiGLU：gate 先经过 SiLU（x·sigmoid(x)），这是唯一的非线性步骤，然后与 up 投影逐元素相乘。"
                    "这 {F:,} 个乘积各是一个神经元的激活值（即上方的热力图），每个激活值缩放 down 投影中的一列。"),
    "note_gelu": ("GELU MLP: the up projection widens the vector to {F:,} neurons, GELU (the only non-linear "
                  "step) bends each one, and the down projection maps back to {C}.",
                  "GELU MLP：up 投影把向量扩展到 {F:,} 个神经元，GELU（唯一的非线性步骤）对每个值做非线性变换，"
                  "down 投影再把结果映射回 {C} 维。"),
})

_MAX_CELLS = 40_000      # "all" view: at most about this many cells (columns are aggregated beyond)
_MAX_TICKS = 60


_piece = piece_label
_check_bool = check_bool


def _figure(data: list, layout: dict, title: str, height: int):
    return make_figure(data, layout, title, height)


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def top_neuron_indices(post: np.ndarray, n: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Neurons with the largest mean |activation| over the given rows (default all), largest first."""
    a = np.abs(post if rows is None else post[rows]).astype(np.float32).mean(0)
    order = np.argsort(-a, kind="stable")
    return order[:n]


def _colour_limit(values: np.ndarray) -> tuple[float, bool]:
    """Symmetric colour limit: the 99.5th percentile of |value| (so one outlier does not wash out
    the rest), and whether anything is brighter than that (colours then saturate)."""
    a = np.abs(values[np.isfinite(values)])
    if a.size == 0:
        return 1.0, False
    top = float(a.max())
    lim = float(np.percentile(a, 99.5)) if a.size > 200 else top
    lim = max(lim, 1e-6)
    return lim, top > lim * 1.0001


def mlp_figure(trace: Trace, layer: int, sort: str = "top", n_neurons: int = 64, exclude_first: bool = False):
    """Tokens (rows) x neurons (columns): each neuron's value (hook_post) for each token.

    sort="top": the `n_neurons` neurons with the largest mean |activation| over the prompt, largest
    first, neuron indices as tick labels. sort="all": every neuron in index order; on long prompts
    neighbouring neurons are aggregated into one column (keeping the value of largest magnitude;
    the title says how many per column). `exclude_first` leaves the first token (the attention
    sink, whose activations can be far larger) out of the ranking and the colour scale."""
    check_layer(trace, layer)
    if sort not in ("top", "all"):
        raise ValueError(f"sort must be 'top' or 'all', got {sort!r}")
    exclude_first = _check_bool("exclude_first", exclude_first)
    cfg, T = trace.config, trace.T
    F = cfg.d_mlp
    if sort == "top" and (isinstance(n_neurons, bool) or not isinstance(n_neurons, int) or not 1 <= n_neurons <= F):
        raise ValueError(f"n_neurons must be a whole number in 1..{F}, got {n_neurons!r}")
    post = trace.act("mlp.hook_post", layer).astype(np.float32)          # (T, F)
    rows = np.arange(1, T) if exclude_first and T > 1 else None
    shown = post.copy()
    if exclude_first:
        shown[0] = np.nan
    hover_tok = W("hover_token")
    if sort == "top":
        idx = top_neuron_indices(post, n_neurons, rows)
        z = shown[:, idx]
        # Every 4th neuron id as a tick (64 rotated ids overlap and cost ~200 ms per draw); hover
        # names every column's neuron through labelalias.
        every = max(1, math.ceil(len(idx) / 16))
        x_axis = dict(tickmode="array", tickvals=list(range(0, len(idx), every)),
                      ticktext=[str(i) for i in idx[::every]], tickfont=dict(size=10), hoverformat="d",
                      labelalias={str(c): str(int(i)) for c, i in enumerate(idx)},
                      title=dict(text=W("top_axis")))
        hover = W("hover_neuron", token=hover_tok)
        what = W("top_what", n=len(idx), F=F)
    else:
        per_col = max(1, math.ceil(F * T / _MAX_CELLS))
        if per_col == 1:
            z = shown
        else:
            pad = (-F) % per_col
            padded = np.pad(shown, ((0, 0), (0, pad)), constant_values=0.0).reshape(T, -1, per_col)
            pick = np.abs(np.nan_to_num(padded)).argmax(-1)                   # (T, F/per_col)
            z = np.take_along_axis(padded, pick[..., None], -1)[..., 0]
            if exclude_first:
                z[0] = np.nan
        x_axis = dict(tickmode="linear", tick0=0, dtick=max(1, round(256 / per_col)),
                      title=dict(text=W("index_axis") + (W("per_column_axis", k=per_col) if per_col > 1 else "")))
        if per_col == 1:
            hover = W("hover_neuron", token=hover_tok)
            what = W("all_what", F=F)
        else:
            hover = W("hover_group", token=hover_tok, more=per_col - 1)
            what = W("grouped_what", F=F, k=per_col)
        z = z.astype(np.float32)
        x_axis["range"] = [-0.5 * per_col, F - 0.5 * per_col]
        cols = dict(x0=0, dx=per_col)         # column c starts at neuron c * per_col
    if sort == "top":
        x_axis["range"] = [-0.5, len(idx) - 0.5]
        cols = dict(x0=0, dx=1)
    lim, clipped = _colour_limit(z)
    heat = dict(type="heatmap", z=z, y0=0, dy=1, colorscale=DIVERGING, zmid=0, zmin=-lim, zmax=lim,
                hoverongaps=False, hovertemplate=hover, colorbar=dict(title=dict(text=W("activation")), thickness=12),
                **cols)
    notes = []
    if exclude_first:
        notes.append(W("first_hidden"))
    if clipped:
        notes.append(W("saturate", lim=f"{lim:.3g}"))
    title = _title(W("title", layer=layer), W("sep").join([what, W("value_is")] + notes))
    layout = dict(
        autosize=True, plot_bgcolor="#f4f4f4",
        xaxis=dict(zeroline=False, showgrid=False, automargin=True, **x_axis),
        yaxis=dict(range=[T - 0.5, -0.5], zeroline=False, showgrid=False, automargin=True,
                   title=dict(text=W("token")), **token_axis(trace, max_ticks=_MAX_TICKS)))
    return _figure([heat], layout, title, height=int(min(760, max(360, 170 + 14 * T))))


def top_neurons_figure(trace: Trace, layer: int, focus: int, n: int = 15):
    """The focus token's `n` most active neurons (largest |hook_post|) as horizontal bars, largest
    at the top; hover shows the pieces: gate (hook_pre), silu(gate), up (hook_pre_linear), post.
    For GELU models: pre (hook_pre), and post = gelu(pre)."""
    check_layer(trace, layer)
    check_position(trace, focus)
    F = trace.config.d_mlp
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= F:
        raise ValueError(f"n must be a whole number in 1..{F}, got {n!r}")
    post = trace.act("mlp.hook_post", layer)[focus].astype(np.float32)      # (F,)
    pre = trace.act("mlp.hook_pre", layer)[focus].astype(np.float32)
    idx = np.argsort(-np.abs(post), kind="stable")[:n]
    gated = trace.config.mlp_kind == "swiglu"
    if gated:
        up = trace.act("mlp.hook_pre_linear", layer)[focus].astype(np.float32)
        act = _silu(pre)
        custom = np.stack([pre[idx], act[idx], up[idx]], axis=-1)
        hover = W("hover_swiglu")
        formula = "silu(gate) · up"
    else:
        custom = np.stack([pre[idx], _gelu_tanh(pre)[idx]], axis=-1)
        hover = W("hover_gelu")
        formula = W("formula_gelu")
    vals = post[idx]
    bar = dict(type="bar", orientation="h", x=vals, y=np.arange(len(idx)), customdata=custom.astype(np.float32),
               marker=dict(color=np.where(vals >= 0, "#b2182b", "#2166ac").tolist()),
               text=[f"{v:.3g}" for v in vals], textposition="auto", constraintext="none", textfont=dict(size=11), cliponaxis=False,
               hovertemplate=hover)
    lim = float(np.abs(vals).max()) if len(vals) else 1.0
    layout = dict(
        autosize=True, showlegend=False, bargap=0.2,
        xaxis=dict(title=dict(text=W("bar_axis", formula=formula)),
                   range=[-1.25 * lim if (vals < 0).any() else 0, 1.25 * lim if (vals > 0).any() else 0],
                   zeroline=True, zerolinecolor="#888"),
        yaxis=dict(tickmode="array", tickvals=list(range(len(idx))), ticktext=[f"n{i}" for i in idx],
                   range=[len(idx) - 0.5, -0.5], automargin=True, title=dict(text=W("neuron"))))
    title = _title(W("top_title", layer=layer, focus=focus, piece=_piece(trace.pieces[focus])),
                   W("top_subtitle", n=len(idx)))
    return _figure([bar], layout, title, height=int(min(700, max(300, 120 + 22 * len(idx)))))


def mlp_flow_html(config: ModelConfig) -> str:
    """Where the non-linearity sits, with the running model's widths (an HTML snippet, built once:
    it carries both languages and the page shows the one it speaks)."""
    C, F = config.d_model, config.d_mlp
    esc = html.escape
    box = lambda text, cls="": f'<span class="mlp-box {cls}">{esc(text)}</span>'
    arrow = '<span class="mlp-arrow">→</span>'

    def flow(added: str, note: str) -> str:
        if config.mlp_kind == "swiglu":
            steps = [box(f"x ({C})"), arrow,
                     box(f"gate = x·W_gate ({C}→{F})") + " " + box(f"up = x·W_up ({C}→{F})"),
                     arrow, box(f"SiLU(gate) ⊙ up ({F})", "mlp-nonlin"), arrow, box(f"down ({F}→{C})"), arrow,
                     box(added)]
        else:
            steps = [box(f"x ({C})"), arrow, box(f"up ({C}→{F})"), arrow, box(f"GELU ({F})", "mlp-nonlin"), arrow,
                     box(f"down ({F}→{C})"), arrow, box(added)]
        return f'<div class="mlp-steps">{" ".join(steps)}</div><p class="mlp-note">{esc(note)}</p>'

    note = W.both("note_swiglu", F=F) if config.mlp_kind == "swiglu" else W.both("note_gelu", F=F, C=C)
    en, zh = (flow(added, text) for added, text in zip(W.both("added"), note))
    return f'<div class="mlp-flow">{both_html(en, zh, tag="div")}</div>'
