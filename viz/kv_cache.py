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

BYTES_PER_FLOAT = 4      # the cache is float32


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
    kind = np.where(np.arange(T) < trace.n_prompt, "prompt", "generated")
    custom = np.broadcast_to(kind, (L, T))
    fig = go.Figure(go.Heatmap(
        z=np.round(norms, 3), x=list(range(T)), y=list(range(L)), colorscale=SEQUENTIAL, customdata=custom,
        colorbar=dict(title=dict(text="|k|"), thickness=12),
        hovertemplate="layer %{y}, position %{x} (%{customdata})<br>cached: key and value, "
                      f"{trace.config.n_kv_head} heads x {trace.config.d_head} dims each"
                      "<br>mean key length %{z}<extra></extra>"))
    shapes = []
    if trace.n_prompt < T:   # the generated part, then the newest column
        shapes.append(dict(type="rect", x0=trace.n_prompt - 0.5, x1=T - 0.5, y0=-0.5, y1=L - 0.5,
                           line=dict(color="#e66100", width=1, dash="dot")))
    if newest is not None:
        shapes.append(dict(type="rect", x0=newest - 0.5, x1=newest + 0.5, y0=-0.5, y1=L - 0.5,
                           line=dict(color="#e66100", width=3)))
    vals, text = token_ticks(trace)
    step = max(1, T // 40)
    title = (f"KV cache: {T} positions x {L} layers = {T * cache_bytes_per_token(trace.config):,} bytes"
             f"<br><sup>colour: mean length of each cached key; dotted: generated tokens; bold: the newest "
             f"token's column, the only one the last step computed</sup>")
    base_layout(fig, title, height=460, shapes=shapes,
                xaxis=dict(title=dict(text="position (token)"), tickvals=vals[::step], ticktext=text[::step]),
                yaxis=dict(title=dict(text="layer"), dtick=5))
    return fig


def kv_cache_summary_html(trace: Trace) -> str:
    """Sizes and the measured prefill-versus-decode speeds of this session, as an escaped table."""
    t = trace.timings
    per_tok = cache_bytes_per_token(trace.config)
    rows = [("cached positions", f"{trace.T:,} ({trace.n_prompt} prompt + {trace.T - trace.n_prompt} generated)"),
            ("bytes per position", f"{per_tok:,} = {trace.config.n_layer} layers x 2 (K, V) x "
                                   f"{trace.config.n_kv_head} heads x {trace.config.d_head} dims x 4 bytes"),
            ("cache size now", f"{trace.T * per_tok:,} bytes ({trace.T * per_tok / 2**20:.2f} MiB)")]
    if t.get("forward_tokens"):
        pre = t["forward_s"] / t["forward_tokens"] * 1000
        rows.append(("reading the prompt (prefill)",
                     f"{t['forward_s'] * 1000:.0f} ms for {t['forward_tokens']} tokens = {pre:.1f} ms per token"))
    if t.get("decode_tokens"):
        dec = t["decode_s"] / t["decode_tokens"] * 1000
        rows.append(("generating (decode, with the cache)",
                     f"{dec:.1f} ms per token over {t['decode_tokens']} tokens (last: {t['last_step_s'] * 1000:.1f} ms)"))
        if t.get("forward_tokens"):
            rows.append(("decode / prefill per token", f"{dec / pre:.1f}x"))
    else:
        rows.append(("generating (decode)", "press Next token to measure"))
    newest = (f"<p>The newest token, <code>{html.escape(trace.pieces[-1].display)}</code>, added one column: "
              f"{per_tok:,} bytes.</p>") if trace.T > trace.n_prompt else ""
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="gg-kv-table">{body}</table>{newest}'
