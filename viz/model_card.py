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
from .words import both_html, speaking, table

COMPONENTS = ("embedding", "position", "attention", "mlp", "norms", "unembedding")

W = table("model_card", {
    # the parameter groups (COMPONENTS)
    "embedding": ("embedding", "词嵌入"),
    "position": ("position", "位置嵌入"),
    "attention": ("attention", "注意力"),
    "norms": ("norms", "归一化层"),
    "unembedding": ("unembedding", "反嵌入"),
    "tied": ("tied", "共享"),
    "zero_tied": ("0 (tied)", "0（共享）"),
    "zero_rope": ("0 (RoPE)", "0（使用 RoPE）"),
    # the card (static HTML: both languages)
    "arch_llama": ("Llama family: RMSNorm, rotary positions (RoPE, base {base:,.0f}) applied to queries and keys, "
                   "SwiGLU MLP (a SiLU-gated linear unit), no biases",
                   "Llama 系列：RMSNorm；旋转位置编码（RoPE，基数 {base:,.0f}），作用于查询和键；"
                   "SwiGLU MLP（以 SiLU 做门控的线性单元）；没有偏置"),
    "arch_gpt2": ("GPT-2 family: LayerNorm, learned position vectors added to the embedding, GELU MLP, biases",
                  "GPT-2 系列：LayerNorm；可学习的位置向量，与嵌入向量相加；GELU MLP；带偏置"),
    "own_kv": ("each query head has its own key/value head (standard multi-head attention)",
               "每个查询头都有自己的键/值头（标准的多头注意力）"),
    "query_heads": ("{n} query heads", "{n} 个查询头"),
    "query_heads_one": ("{n} query head", "{n} 个查询头"),
    "kv_heads": ("{n} key/value heads", "{n} 个键/值头"),
    "kv_heads_one": ("{n} key/value head", "{n} 个键/值头"),
    "heads": ("{query}, {kv}", "{query}，{kv}"),
    "grouped": (" (grouped-query attention: each K/V head serves {g} query heads)",
                "（分组查询注意力：每个 K/V 头由 {g} 个查询头共用）"),
    "architecture": ("architecture", "架构"),
    "layers": ("layers (blocks)", "层数（块数）"),
    "attention_heads": ("attention heads", "注意力头"),
    "share_kv": ("which heads share K/V", "哪些头共用 K/V"),
    "width": ("width (d_model)", "宽度（d_model）"),
    "head_size": ("head size", "每个头的维度"),
    "mlp_width": ("MLP width", "MLP 宽度"),
    "mlp_width_value": ("{F:,} ({r:.2f} × width)", "{F:,}（宽度的 {r:.2f} 倍）"),
    "vocabulary": ("vocabulary", "词表大小"),
    "context": ("context length", "上下文长度"),
    "n_tokens": ("{n:,} tokens", "{n:,} 个词元"),
    "embeddings": ("embeddings", "嵌入矩阵"),
    "tied_embeddings": ("tied: the unembedding reuses the embedding matrix", "共享：反嵌入直接复用嵌入矩阵"),
    "separate_embeddings": ("separate embedding and unembedding matrices", "嵌入和反嵌入各用一个矩阵"),
    "running_on": ("running on", "运行于"),
    "device": ("{device}, {dtype}", "{device}，{dtype}"),
    "parameters": ("parameters", "参数量"),
    "params_head": ("parameters", "参数"),
    "this_model": ("this model", "本模型"),
    "total": ("total", "合计"),
    "tied_adj": ("tied", "共享的"),
    "separate_adj": ("separate", "独立的"),
    "note": ("GPT-3 column computed from its published shape: {L} layers, d_model {d:,}, {h} heads, "
             "d_mlp = 4·d_model = {F:,}, vocabulary {V:,}, context {ctx:,}, learned positions, {tied} embeddings, "
             "biases: {total} in all. Of the non-embedding parameters (attention, MLP, norms) the MLPs hold "
             "{here:.1%} here and {gpt3:.1%} in GPT-3 (8·d² of each block's ≈12·d²): about two thirds.",
             "GPT-3 一列根据其公开的形状算出：{L} 层，d_model {d:,}，{h} 个注意力头，d_mlp = 4·d_model = {F:,}，"
             "词表 {V:,}，上下文 {ctx:,}，可学习的位置向量，{tied}嵌入矩阵，带偏置：共计 {total}。"
             "在嵌入层以外的参数（注意力、MLP、归一化层）中，MLP 在本模型里占 {here:.1%}，在 GPT-3 里占 {gpt3:.1%}"
             "（每个块约 12·d² 中的 8·d²）：大约三分之二。"),
    # the figure (redrawn in the page's language)
    "hover": ("<b>{label}</b> · {name}<br>{count:,} parameters ({human})<br>{share:.2%} of {total}",
              "<b>{label}</b> · {name}<br>{count:,} 个参数（{human}）<br>占全部 {total} 的 {share:.2%}"),
    "title": ("Where the parameters live", "参数都在哪里"),
    "subtitle": ("Share of each model's parameters.<br>MLPs hold {here:.0%} of the non-embedding ones here, "
                 "{gpt3:.0%} in GPT-3.",
                 "各部分在每个模型的参数中所占的比例。<br>在嵌入层以外的参数中，MLP 在本模型里占 {here:.0%}，"
                 "在 GPT-3 里占 {gpt3:.0%}。"),
    "x_axis": ("share of all parameters", "占全部参数的比例"),
})
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


def _name(component: str) -> str:
    """A parameter group's name in the current language ("MLP" is a name in both)."""
    return "MLP" if component == "mlp" else W(component)


def _count(key: str, n: int) -> str:
    """"1 query head", "2 query heads" (in Chinese one form)."""
    return W(key + "_one" if n == 1 else key, n=n)


def _arch(config: ModelConfig) -> str:
    if config.uses_rope:
        return W("arch_llama", base=config.rope_base)
    return W("arch_gpt2")


def _groups(config: ModelConfig) -> str:
    g = config.group_size
    if g == 1:
        return W("own_kv")
    parts = [f"K/V {kv} ← Q {', '.join(str(h) for h in range(kv * g, kv * g + g))}" for kv in range(config.n_kv_head)]
    return " · ".join(parts)


def _row(label: str, value: str) -> str:
    return f"<tr><th scope=\"row\">{label}</th><td>{value}</td></tr>"


def model_card_html(config: ModelConfig, param_counts: dict, device: str, dtype: str) -> str:
    """The running model's shape and a parameter table beside GPT-3 175B's, as escaped HTML (built
    once at start: it carries both languages and the page shows the one it speaks)."""
    counts = _check_counts(param_counts)
    en, zh = (_card_body(config, counts, device, dtype, lang) for lang in ("en", "zh"))
    return ('<div class="gg-card">'
            f'<h3 class="gg-card-title">{html.escape(str(config.name))}</h3>'
            f'{both_html(en, zh, tag="div")}</div>')


def _card_body(c: ModelConfig, counts: dict[str, int], device: str, dtype: str, lang: str) -> str:
    """The card below its title, in one language."""
    with speaking(lang):
        gpt3 = count_parameters(GPT3_175B)
        total, total3 = sum(counts.values()), sum(gpt3.values())
        heads = (W("heads", query=_count("query_heads", c.n_head), kv=_count("kv_heads", c.n_kv_head))
                 + (W("grouped", g=c.group_size) if c.group_size > 1 else ""))
        facts = [
            _row(W("architecture"), html.escape(_arch(c))),
            _row(W("layers"), f"{c.n_layer}"),
            _row(W("attention_heads"), html.escape(heads)),
            _row(W("share_kv"), html.escape(_groups(c))),
            _row(W("width"), f"{c.d_model:,}"),
            _row(W("head_size"), f"{c.d_head} ({c.d_model:,} / {c.n_head})"),
            _row(W("mlp_width"), W("mlp_width_value", F=c.d_mlp, r=c.d_mlp / c.d_model)),
            _row(W("vocabulary"), W("n_tokens", n=c.vocab_size)),
            _row(W("context"), W("n_tokens", n=c.n_ctx)),
            _row(W("embeddings"), W("tied_embeddings") if c.tied_embeddings else W("separate_embeddings")),
            _row(W("running_on"), W("device", device=html.escape(str(device)), dtype=html.escape(str(dtype)))),
            _row(W("parameters"), f"{total:,} ({human(total)})"),
        ]

        def cell(counts_, k, tot):
            if k == "unembedding" and counts_[k] == 0:
                return f'<td class="gg-num">0</td><td class="gg-num">{W("tied")}</td>'
            return f'<td class="gg-num">{counts_[k]:,}</td><td class="gg-num">{_share(counts_[k] / tot)}</td>'

        rows = [f"<tr><th scope=\"row\">{_name(k)}</th>{cell(counts, k, total)}{cell(gpt3, k, total3)}</tr>"
                for k in COMPONENTS]
        rows.append(f'<tr class="gg-total"><th scope="row">{W("total")}</th><td class="gg-num">{total:,}</td>'
                    f'<td class="gg-num">100%</td><td class="gg-num">{total3:,}</td><td class="gg-num">100%</td></tr>')
        g = GPT3_175B
        note = W("note", L=g.n_layer, d=g.d_model, h=g.n_head, F=g.d_mlp, V=g.vocab_size, ctx=g.n_ctx,
                 tied=W("tied_adj") if g.tied_embeddings else W("separate_adj"), total=human(total3),
                 here=mlp_share(counts), gpt3=mlp_share(gpt3))
        return (f'<table class="gg-card-facts"><tbody>{"".join(facts)}</tbody></table>'
                f'<div class="gg-scroll"><table class="gg-card-params"><thead><tr><th>{W("params_head")}</th>'
                f'<th colspan="2">{W("this_model")}</th><th colspan="2">GPT-3 175B</th></tr></thead>'
                f'<tbody>{"".join(rows)}</tbody></table></div>'
                f'<p class="gg-card-note">{html.escape(note)}</p>')


def _bar_text(component: str, count: int, share: float) -> str:
    if count == 0:
        return {"unembedding": W("zero_tied"), "position": W("zero_rope")}.get(component, "0")
    return _share(share)


def _share(share: float) -> str:
    """A percentage that does not round small groups (norms: ~0.03%) to "0.0%"."""
    return f"{share:.1%}" if share >= 0.001 or share == 0 else f"{share:.3%}"


def parameter_figure(param_counts: dict, config: ModelConfig) -> go.Figure:
    """Share of parameters per component: the running model beside GPT-3 175B."""
    counts = _check_counts(param_counts)
    gpt3 = count_parameters(GPT3_175B)
    total, total3 = sum(counts.values()), sum(gpt3.values())
    names = [_name(k) for k in COMPONENTS]
    rows = list(range(len(COMPONENTS)))
    name = plotly_text(config.name)

    def bars(cs, tot, label, colour):
        share = [cs[k] / tot for k in COMPONENTS]
        text = [_bar_text(k, cs[k], s) for k, s in zip(COMPONENTS, share)]
        hover = [W("hover", label=label, name=n, count=cs[k], human=human(cs[k]), share=s, total=human(tot))
                 for k, n, s in zip(COMPONENTS, names, share)]
        return go.Bar(y=rows, x=share, orientation="h", name=label, marker_color=colour, text=text,
                      textposition="outside", cliponaxis=False, hovertext=hover,
                      hovertemplate="%{hovertext}<extra></extra>", customdata=[cs[k] for k in COMPONENTS])

    fig = go.Figure([bars(counts, total, f"{name} ({human(total)})", THIS),
                     bars(gpt3, total3, f"GPT-3 175B ({human(total3)})", GPT3)])
    base_layout(fig, W("title"), height=420, barmode="group", autosize=True,
                legend=dict(orientation="h", yanchor="top", y=-0.15, x=0))
    fig.update_layout(
        title_subtitle_text=W("subtitle", here=mlp_share(counts), gpt3=mlp_share(gpt3)),
        margin=dict(t=90, l=10, r=60, b=40))
    top = max(max(v / total for v in counts.values()), max(v / total3 for v in gpt3.values()))
    fig.update_xaxes(title_text=W("x_axis"), tickformat=".0%", range=[0, min(1.0, top * 1.2)])
    fig.update_yaxes(tickmode="array", tickvals=rows, ticktext=names, autorange="reversed", automargin=True)
    return fig
