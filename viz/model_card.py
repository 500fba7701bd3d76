"""Model card: the running model's shape and where its parameters live, beside GPT-3 175B.

GPT-3's breakdown is computed from its published shape (Brown et al. 2020, the 175B row) with the
same formulas used for the running model, so "MLP ≈ 2/3 of the non-embedding parameters" is
something the page derives rather than asserts. viz/ must not import torch, so the shape is read
from the config by attribute (duck typing), not by importing model.config.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import plotly.graph_objects as go

from model.config import ModelConfig

from .common import base_layout, plotly_text

COMPONENTS = ("embedding", "position", "attention", "mlp", "norms", "unembedding")
NAMES = {"embedding": "embedding", "position": "position", "attention": "attention", "mlp": "MLP",
         "norms": "norms", "unembedding": "unembedding"}
THIS = "#3b75af"     # blue
GPT3 = "#e69f00"     # orange (colour-blind-safe pair with blue)


@dataclass(frozen=True)
class Shape:
    name: str
    n_layer: int
    n_head: int
    n_kv_head: int
    d_model: int
    d_mlp: int
    vocab_size: int
    n_ctx: int
    learned_positions: bool
    gated_mlp: bool          # SwiGLU: gate, up and down matrices instead of up and down
    biases: bool
    norm_params: int         # per norm and per channel: 1 (RMSNorm: scale) or 2 (LayerNorm: scale, shift)
    tied_embeddings: bool


# GPT-3 175B (Brown et al. 2020, table 2.1): a GPT-2-style model, d_mlp = 4 * d_model.
GPT3_175B = Shape(name="GPT-3 175B", n_layer=96, n_head=96, n_kv_head=96, d_model=12288, d_mlp=4 * 12288,
                  vocab_size=50257, n_ctx=2048, learned_positions=True, gated_mlp=False, biases=True,
                  norm_params=2, tied_embeddings=True)


def shape_of(config: ModelConfig) -> Shape:
    """The parameter-relevant shape of a model config (model.config.ModelConfig)."""
    return Shape(name=config.name, n_layer=config.n_layer, n_head=config.n_head, n_kv_head=config.n_kv_head,
                 d_model=config.d_model, d_mlp=config.d_mlp, vocab_size=config.vocab_size, n_ctx=config.n_ctx,
                 learned_positions=not config.uses_rope, gated_mlp=config.mlp_kind == "swiglu",
                 biases=config.has_bias, norm_params=1 if config.norm_kind == "rms" else 2,
                 tied_embeddings=config.tied_embeddings)


def count_parameters(s: Shape) -> dict[str, int]:
    """Parameters by component, from the shape alone (tied unembedding counted once, as 0)."""
    d, L, kv = s.d_model, s.n_layer, s.n_kv_head * (s.d_model // s.n_head)
    attn = 2 * d * d + 2 * d * kv + (2 * d + 2 * kv if s.biases else 0)     # W_Q, W_O (d x d); W_K, W_V (d x kv)
    n_mats = 3 if s.gated_mlp else 2
    mlp = n_mats * d * s.d_mlp + ((n_mats - 1) * s.d_mlp + d if s.biases else 0)
    return {
        "embedding": s.vocab_size * d,
        "position": s.n_ctx * d if s.learned_positions else 0,
        "attention": L * attn,
        "mlp": L * mlp,
        "norms": (2 * L + 1) * s.norm_params * d,                          # two per block + the final one
        "unembedding": 0 if s.tied_embeddings else s.vocab_size * d,
    }


def mlp_share(counts: dict[str, int]) -> float:
    """MLP parameters as a fraction of the non-embedding ones (attention + MLP + norms)."""
    non_embedding = counts["attention"] + counts["mlp"] + counts["norms"]
    return counts["mlp"] / non_embedding if non_embedding else 0.0


def human(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:,.0f}"


def _check_counts(param_counts: dict) -> dict[str, int]:
    if not isinstance(param_counts, dict):
        raise ValueError(f"param_counts must be a dict from lm.parameter_counts(), got {type(param_counts).__name__}")
    unknown = sorted(set(param_counts) - set(COMPONENTS))
    if unknown:
        raise ValueError(f"unknown parameter groups {unknown}; expected some of {list(COMPONENTS)}")
    out = {}
    for k in COMPONENTS:
        v = param_counts.get(k, 0)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"parameter count for {k!r} must be a whole number >= 0, got {v!r}")
        out[k] = v
    if not sum(out.values()):
        raise ValueError("parameter counts are all zero")
    return out


def _arch(config: ModelConfig) -> str:
    if config.uses_rope:
        return (f"Llama family: RMSNorm, rotary positions (RoPE, base {config.rope_base:,.0f}) applied to queries "
                "and keys, SwiGLU MLP (a SiLU-gated linear unit), no biases")
    return "GPT-2 family: LayerNorm, learned position vectors added to the embedding, GELU MLP, biases"


def _groups(config: ModelConfig) -> str:
    g = config.group_size
    if g == 1:
        return "each query head has its own key/value head (standard multi-head attention)"
    parts = [f"K/V {kv} ← Q {', '.join(str(h) for h in range(kv * g, kv * g + g))}" for kv in range(config.n_kv_head)]
    return " · ".join(parts)


def _row(label: str, value: str) -> str:
    return f"<tr><th scope=\"row\">{label}</th><td>{value}</td></tr>"


def model_card_html(config: ModelConfig, param_counts: dict, device: str, dtype: str) -> str:
    """The running model's shape and a parameter table beside GPT-3 175B's, as escaped HTML."""
    counts = _check_counts(param_counts)
    gpt3 = count_parameters(GPT3_175B)
    total, total3 = sum(counts.values()), sum(gpt3.values())
    c = config
    heads = (f"{c.n_head} query heads, {c.n_kv_head} key/value heads"
             + (f" (grouped-query attention: each K/V head serves {c.group_size} query heads)" if c.group_size > 1 else ""))
    facts = [
        _row("architecture", html.escape(_arch(c))),
        _row("layers (blocks)", f"{c.n_layer}"),
        _row("attention heads", html.escape(heads)),
        _row("which heads share K/V", html.escape(_groups(c))),
        _row("width (d_model)", f"{c.d_model:,}"),
        _row("head size", f"{c.d_head} ({c.d_model:,} / {c.n_head})"),
        _row("MLP width", f"{c.d_mlp:,} ({c.d_mlp / c.d_model:.2f} × width)"),
        _row("vocabulary", f"{c.vocab_size:,} tokens"),
        _row("context length", f"{c.n_ctx:,} tokens"),
        _row("embeddings", "tied: the unembedding reuses the embedding matrix" if c.tied_embeddings
             else "separate embedding and unembedding matrices"),
        _row("running on", f"{html.escape(str(device))}, {html.escape(str(dtype))}"),
        _row("parameters", f"{total:,} ({human(total)})"),
    ]

    def cell(counts_, k, tot):
        if k == "unembedding" and counts_[k] == 0:
            return '<td class="gg-num">0</td><td class="gg-num">tied</td>'
        return f'<td class="gg-num">{counts_[k]:,}</td><td class="gg-num">{_share(counts_[k] / tot)}</td>'

    tied3 = GPT3_175B.tied_embeddings
    rows = [f"<tr><th scope=\"row\">{NAMES[k]}</th>{cell(counts, k, total)}{cell(gpt3, k, total3)}</tr>"
            for k in COMPONENTS]
    rows.append(f'<tr class="gg-total"><th scope="row">total</th><td class="gg-num">{total:,}</td>'
                f'<td class="gg-num">100%</td><td class="gg-num">{total3:,}</td><td class="gg-num">100%</td></tr>')
    g = GPT3_175B
    note = (f"GPT-3 column computed from its published shape: {g.n_layer} layers, d_model {g.d_model:,}, "
            f"{g.n_head} heads, d_mlp = 4·d_model = {g.d_mlp:,}, vocabulary {g.vocab_size:,}, context {g.n_ctx:,}, "
            f"learned positions, {'tied' if tied3 else 'separate'} embeddings, biases: {human(total3)} in all. "
            f"Of the non-embedding parameters (attention, MLP, norms) the MLPs hold "
            f"{mlp_share(counts):.1%} here and {mlp_share(gpt3):.1%} in GPT-3 "
            f"(8·d² of each block's ≈12·d²): about two thirds.")
    return ('<div class="gg-card">'
            f'<h3 class="gg-card-title">{html.escape(str(c.name))}</h3>'
            f'<table class="gg-card-facts"><tbody>{"".join(facts)}</tbody></table>'
            '<div class="gg-scroll"><table class="gg-card-params"><thead><tr><th>parameters</th><th colspan="2">this model</th>'
            f'<th colspan="2">GPT-3 175B</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
            f'<p class="gg-card-note">{html.escape(note)}</p></div>')


def _bar_text(component: str, count: int, share: float) -> str:
    if count == 0:
        return {"unembedding": "0 (tied)", "position": "0 (RoPE)"}.get(component, "0")
    return _share(share)


def _share(share: float) -> str:
    """A percentage that does not round small groups (norms: ~0.03%) to "0.0%"."""
    return f"{share:.1%}" if share >= 0.001 or share == 0 else f"{share:.3%}"


def parameter_figure(param_counts: dict, config: ModelConfig) -> go.Figure:
    """Share of parameters per component: the running model beside GPT-3 175B."""
    counts = _check_counts(param_counts)
    gpt3 = count_parameters(GPT3_175B)
    total, total3 = sum(counts.values()), sum(gpt3.values())
    names = [NAMES[k] for k in COMPONENTS]
    rows = list(range(len(COMPONENTS)))
    name = plotly_text(config.name)

    def bars(cs, tot, label, colour):
        share = [cs[k] / tot for k in COMPONENTS]
        text = [_bar_text(k, cs[k], s) for k, s in zip(COMPONENTS, share)]
        hover = [f"<b>{label}</b> · {n}<br>{cs[k]:,} parameters ({human(cs[k])})<br>{s:.2%} of {human(tot)}"
                 for k, n, s in zip(COMPONENTS, names, share)]
        return go.Bar(y=rows, x=share, orientation="h", name=label, marker_color=colour, text=text,
                      textposition="outside", cliponaxis=False, hovertext=hover,
                      hovertemplate="%{hovertext}<extra></extra>", customdata=[cs[k] for k in COMPONENTS])

    fig = go.Figure([bars(counts, total, f"{name} ({human(total)})", THIS),
                     bars(gpt3, total3, f"GPT-3 175B ({human(total3)})", GPT3)])
    base_layout(fig, "Where the parameters live", height=420, barmode="group", autosize=True,
                legend=dict(orientation="h", yanchor="top", y=-0.15, x=0))
    fig.update_layout(
        title_subtitle_text=(f"Share of each model's parameters.<br>MLPs hold {mlp_share(counts):.0%} of the "
                             f"non-embedding ones here, {mlp_share(gpt3):.0%} in GPT-3."),
        margin=dict(t=90, l=10, r=60, b=40))
    top = max(max(v / total for v in counts.values()), max(v / total3 for v in gpt3.values()))
    fig.update_xaxes(title_text="share of all parameters", tickformat=".0%", range=[0, min(1.0, top * 1.2)])
    fig.update_yaxes(tickmode="array", tickvals=rows, ticktext=names, autorange="reversed", automargin=True)
    return fig
