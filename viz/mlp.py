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
    hover_tok = "token #%{pointNumber[0]} %{y}"
    if sort == "top":
        idx = top_neuron_indices(post, n_neurons, rows)
        z = shown[:, idx]
        # Every 4th neuron id as a tick (64 rotated ids overlap and cost ~200 ms per draw); hover
        # names every column's neuron through labelalias.
        every = max(1, math.ceil(len(idx) / 16))
        x_axis = dict(tickmode="array", tickvals=list(range(0, len(idx), every)),
                      ticktext=[str(i) for i in idx[::every]], tickfont=dict(size=10), hoverformat="d",
                      labelalias={str(c): str(int(i)) for c, i in enumerate(idx)},
                      title=dict(text="neuron (most active first, by mean |activation| over the prompt)"))
        hover = f"{hover_tok}<br>neuron %{{x}}<br>activation %{{z:.4f}}<extra></extra>"
        what = f"top {len(idx)} of {F} neurons"
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
                      title=dict(text="neuron index" + (f" (each column = {per_col} neighbouring neurons)"
                                                        if per_col > 1 else "")))
        if per_col == 1:
            hover = f"{hover_tok}<br>neuron %{{x}}<br>activation %{{z:.4f}}<extra></extra>"
            what = f"all {F} neurons"
        else:
            hover = (f"{hover_tok}<br>neurons %{{x}}…+{per_col - 1}<br>largest-magnitude activation "
                     f"%{{z:.4f}}<extra></extra>")
            what = f"all {F} neurons, {per_col} per column (the value of largest magnitude in each group)"
        z = z.astype(np.float32)
        x_axis["range"] = [-0.5 * per_col, F - 0.5 * per_col]
        cols = dict(x0=0, dx=per_col)         # column c starts at neuron c * per_col
    if sort == "top":
        x_axis["range"] = [-0.5, len(idx) - 0.5]
        cols = dict(x0=0, dx=1)
    lim, clipped = _colour_limit(z)
    heat = dict(type="heatmap", z=z, y0=0, dy=1, colorscale=DIVERGING, zmid=0, zmin=-lim, zmax=lim,
                hoverongaps=False, hovertemplate=hover, colorbar=dict(title=dict(text="activation"), thickness=12),
                **cols)
    notes = []
    if exclude_first:
        notes.append("first token hidden")
    if clipped:
        notes.append(f"colours saturate at ±{lim:.3g}; hover shows the true value")
    title = _title(f"Layer {layer} MLP: neuron activations",
                   "; ".join([what, "value = input of the down projection"] + notes))
    layout = dict(
        autosize=True, plot_bgcolor="#f4f4f4",
        xaxis=dict(zeroline=False, showgrid=False, automargin=True, **x_axis),
        yaxis=dict(range=[T - 0.5, -0.5], zeroline=False, showgrid=False, automargin=True,
                   title=dict(text="token"), **token_axis(trace, max_ticks=_MAX_TICKS)))
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
        hover = ("neuron %{y}<br>gate (hook_pre) %{customdata[0]:.4f}<br>silu(gate) %{customdata[1]:.4f}"
                 "<br>up (hook_pre_linear) %{customdata[2]:.4f}<br>post = silu(gate)·up %{x:.4f}<extra></extra>")
        formula = "silu(gate) · up"
    else:
        custom = np.stack([pre[idx], _gelu_tanh(pre)[idx]], axis=-1)
        hover = ("neuron %{y}<br>pre (hook_pre) %{customdata[0]:.4f}<br>gelu(pre) %{customdata[1]:.4f}"
                 "<br>post %{x:.4f}<extra></extra>")
        formula = "gelu(pre)"
    vals = post[idx]
    bar = dict(type="bar", orientation="h", x=vals, y=np.arange(len(idx)), customdata=custom.astype(np.float32),
               marker=dict(color=np.where(vals >= 0, "#b2182b", "#2166ac").tolist()),
               text=[f"{v:.3g}" for v in vals], textposition="outside", cliponaxis=False,
               hovertemplate=hover)
    lim = float(np.abs(vals).max()) if len(vals) else 1.0
    layout = dict(
        autosize=True, showlegend=False, bargap=0.2,
        xaxis=dict(title=dict(text=f"activation = {formula} (red positive, blue negative)"),
                   range=[-1.25 * lim if (vals < 0).any() else 0, 1.25 * lim if (vals > 0).any() else 0],
                   zeroline=True, zerolinecolor="#888"),
        yaxis=dict(tickmode="array", tickvals=list(range(len(idx))), ticktext=[f"n{i}" for i in idx],
                   range=[len(idx) - 0.5, -0.5], automargin=True, title=dict(text="neuron")))
    title = _title(f"Layer {layer} · token #{focus} “{_piece(trace.pieces[focus])}”: top neurons",
                   f"its {len(idx)} most active neurons by |activation|; hover for the pieces of each")
    return _figure([bar], layout, title, height=int(min(700, max(300, 120 + 22 * len(idx)))))


def mlp_flow_html(config: ModelConfig) -> str:
    """Where the non-linearity sits, with the running model's widths (an HTML snippet)."""
    C, F = config.d_model, config.d_mlp
    esc = html.escape
    box = lambda text, cls="": f'<span class="mlp-box {cls}">{esc(text)}</span>'
    arrow = '<span class="mlp-arrow">→</span>'
    if config.mlp_kind == "swiglu":
        steps = [box(f"x ({C})"), arrow, box(f"gate = x·W_gate ({C}→{F})") + " " + box(f"up = x·W_up ({C}→{F})"),
                 arrow, box(f"SiLU(gate) ⊙ up ({F})", "mlp-nonlin"), arrow, box(f"down ({F}→{C})"), arrow,
                 box("added to the residual stream")]
        note = (f"SwiGLU: the gate passes through SiLU (x·sigmoid(x)), the only non-linear step, and then "
                f"multiplies the up projection element by element. Each of the {F:,} products is one neuron's "
                f"activation (the heatmap above); it scales one column of the down projection.")
    else:
        steps = [box(f"x ({C})"), arrow, box(f"up ({C}→{F})"), arrow, box(f"GELU ({F})", "mlp-nonlin"), arrow,
                 box(f"down ({F}→{C})"), arrow, box("added to the residual stream")]
        note = (f"GELU MLP: the up projection widens the vector to {F:,} neurons, GELU (the only non-linear "
                f"step) bends each one, and the down projection maps back to {C}.")
    return (f'<div class="mlp-flow"><div class="mlp-steps">{" ".join(steps)}</div>'
            f'<p class="mlp-note">{esc(note)}</p></div>')
