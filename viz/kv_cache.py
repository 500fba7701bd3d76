"""The KV cache made visible: what is cached for every layer and position, what the newest token
added, how many bytes that is, and how reading the prompt compares with generating one token.

Reading the prompt processes all positions at once (big matrix products, the weights read once);
generating processes one position per step and must read every weight again for each token, which
is why prefill is much faster per token than decode. The cache is what makes decode affordable:
earlier tokens' keys and values are kept, not recomputed.
"""
from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from model.config import ModelConfig
from model.trace import Trace

from .common import SEQUENTIAL, base_layout, piece_label, token_ticks
from .words import table

W = table("kv_cache", {
    # counts (English says "1 token" but "2 tokens"; Chinese has no plural)
    "positions": ("{n} positions", "{n} 个位置"),
    "positions_one": ("{n} position", "{n} 个位置"),
    "layers": ("{n} layers", "{n} 层"),
    "layers_one": ("{n} layer", "{n} 层"),
    "heads": ("{n} heads", "{n} 个头"),
    "heads_one": ("{n} head", "{n} 个头"),
    "tokens": ("{n} tokens", "{n} 个词元"),
    "tokens_one": ("{n} token", "{n} 个词元"),
    # the figure
    "prompt": ("prompt", "提示词"),
    "generated": ("generated", "生成的"),
    "hover": ("layer %{{y}}, position %{{x}} (%{{customdata}})<br>cached: key and value, {heads} x {d} dims each"
              "<br>mean key length %{{z}}<extra></extra>",
              "第 %{{y}} 层，位置 %{{x}}（%{{customdata}}）<br>已缓存：键和值，各 {heads} × {d} 维"
              "<br>键向量的平均长度 %{{z}}<extra></extra>"),
    "title": ("KV cache: {positions} x {layers} = {bytes:,} bytes"
              "<br><sup>colour: mean length of each cached key; dotted: generated tokens; bold: the newest "
              "token's column, the only one the last step computed</sup>",
              "KV 缓存：{positions} × {layers} = {bytes:,} 字节"
              "<br><sup>颜色：已缓存键向量的平均长度；虚线框：生成的词元；粗线框：最新词元所在的列，"
              "也是上一步唯一计算的一列</sup>"),
    "x_axis": ("position (token)", "位置（词元）"),
    "y_axis": ("layer", "层"),
    # the summary table
    "cached": ("cached positions", "已缓存的位置"),
    "cached_value": ("{T:,} ({P} prompt + {G} generated)", "{T:,}（提示词 {P} 个 + 生成的 {G} 个）"),
    "per_position": ("bytes per position", "每个位置的字节数"),
    "per_position_value": ("{per:,} = {layers} x 2 (K, V) x {heads} x {d} dims x 4 bytes",
                           "{per:,} = {layers} × 2（K、V）× {heads} × {d} 维 × 4 字节"),
    "size": ("cache size now", "当前缓存大小"),
    "size_value": ("{bytes:,} bytes ({mib:.2f} MiB)", "{bytes:,} 字节（{mib:.2f} MiB）"),
    "prefill": ("reading the prompt (prefill)", "读取提示词（预填充）"),
    "prefill_value": ("{ms:.0f} ms for {tokens} = {pre:.1f} ms per token",
                      "{tokens}共用时 {ms:.0f} ms，平均每个词元 {pre:.1f} ms"),
    "decode": ("generating (decode, with the cache)", "生成（解码，使用缓存）"),
    "decode_value": ("{dec:.1f} ms per token over {tokens} (last: {last:.1f} ms)",
                     "共 {tokens}，平均每个词元 {dec:.1f} ms（最近一个词元 {last:.1f} ms）"),
    "ratio": ("decode / prefill per token", "单个词元耗时比（解码 / 预填充）"),
    "ratio_value": ("{r:.1f}x", "{r:.1f} 倍"),
    "not_yet": ("generating (decode)", "生成（解码）"),
    "not_yet_value": ("press Next token to measure", "按“下一个词元”即可测量"),
    "newest": ("<p>The newest token, <code>{piece}</code>, added one column: {per:,} bytes.</p>",
               "<p>最新的词元 <code>{piece}</code> 新增了一列：{per:,} 字节。</p>"),
})

BYTES_PER_FLOAT = 4      # the cache is float32


def _count(key: str, n: int) -> str:
    """"1 token", "2 tokens" (in Chinese one form)."""
    return W(key + "_one" if n == 1 else key, n=n)


def cache_bytes_per_token(config: ModelConfig) -> int:
    """Keys and values of one position in every layer: L x 2 x KV x D floats."""
    return config.n_layer * 2 * config.n_kv_head * config.d_head * BYTES_PER_FLOAT


def key_norms(trace: Trace) -> np.ndarray:
    """(L, T): the length of each cached key, averaged over the K/V heads: real values, so
    the picture shows what is stored, not only where."""
    L = trace.config.n_layer
    return np.stack([np.linalg.norm(trace.act("attn.hook_k", l), axis=-1).mean(0) for l in range(L)])


def kv_cache_figure(trace: Trace) -> go.Figure:
    L, T = trace.config.n_layer, trace.T
    norms = key_norms(trace)
    newest = T - 1 if T > trace.n_prompt else None
    kind = np.where(np.arange(T) < trace.n_prompt, W("prompt"), W("generated"))
    custom = np.broadcast_to(kind, (L, T))
    fig = go.Figure(go.Heatmap(
        z=np.round(norms, 3), x=list(range(T)), y=list(range(L)), colorscale=SEQUENTIAL, customdata=custom,
        colorbar=dict(title=dict(text="|k|"), thickness=12),
        hovertemplate=W("hover", heads=_count("heads", trace.config.n_kv_head), d=trace.config.d_head)))
    shapes = []
    if trace.n_prompt < T:   # the generated part, then the newest column
        shapes.append(dict(type="rect", x0=trace.n_prompt - 0.5, x1=T - 0.5, y0=-0.5, y1=L - 0.5,
                           line=dict(color="#e66100", width=1, dash="dot")))
    if newest is not None:
        shapes.append(dict(type="rect", x0=newest - 0.5, x1=newest + 0.5, y0=-0.5, y1=L - 0.5,
                           line=dict(color="#e66100", width=3)))
    vals, text = token_ticks(trace)
    step = max(1, T // 40)
    title = W("title", positions=_count("positions", T), layers=_count("layers", L),
              bytes=T * cache_bytes_per_token(trace.config))
    base_layout(fig, title, height=460, shapes=shapes,
                xaxis=dict(title=dict(text=W("x_axis")), tickvals=vals[::step], ticktext=text[::step]),
                yaxis=dict(title=dict(text=W("y_axis")), dtick=5))
    return fig


def kv_cache_summary_html(trace: Trace) -> str:
    """Sizes and the measured prefill-versus-decode speeds of this session, as an escaped table."""
    t = trace.timings
    per_tok = cache_bytes_per_token(trace.config)
    c = trace.config
    rows = [(W("cached"), W("cached_value", T=trace.T, P=trace.n_prompt, G=trace.T - trace.n_prompt)),
            (W("per_position"), W("per_position_value", per=per_tok, layers=_count("layers", c.n_layer),
                                  heads=_count("heads", c.n_kv_head), d=c.d_head)),
            (W("size"), W("size_value", bytes=trace.T * per_tok, mib=trace.T * per_tok / 2**20))]
    if t.get("forward_tokens"):
        pre = t["forward_s"] / t["forward_tokens"] * 1000
        rows.append((W("prefill"), W("prefill_value", ms=t["forward_s"] * 1000,
                                     tokens=_count("tokens", t["forward_tokens"]), pre=pre)))
    if t.get("decode_tokens"):
        dec = t["decode_s"] / t["decode_tokens"] * 1000
        rows.append((W("decode"), W("decode_value", dec=dec, tokens=_count("tokens", t["decode_tokens"]),
                                    last=t["last_step_s"] * 1000)))
        if t.get("forward_tokens"):
            rows.append((W("ratio"), W("ratio_value", r=dec / pre)))
    else:
        rows.append((W("not_yet"), W("not_yet_value")))
    newest = W("newest", piece=html.escape(trace.pieces[-1].display), per=per_tok) if trace.T > trace.n_prompt else ""
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="gg-kv-table">{body}</table>{newest}'
