"""The big picture: the whole computation for the current prompt in one line, with the model's
own numbers. tokens -> embedding -> L blocks (attention + MLP, each adding to the residual stream)
-> final norm -> unembedding -> softmax(z / T) -> sample.

Each block shows the focus token's top guess after it (the logit lens) and is shaded by the size
of the focus token's residual stream there; the page marks the current layer ("you are here",
assets/page.js) and a click on a part goes to its section (a block also sets the layer).
"""
from __future__ import annotations

import html
from typing import Callable

import numpy as np

from model.records import LogitLens
from model.trace import Trace

from .common import pct
from .words import table

W = table("big_picture", {
    "title": ("The whole computation for this prompt", "这个提示词的完整计算过程"),
    "focus": ("follow token #{pos} {token}: its top guess after each block, the shade its residual stream's size",
              "跟随词元 #{pos} {token}：每个块之后它的首选预测，深浅表示它的残差流有多大"),
    "tokens": ("tokens", "词元"), "n_tokens": ("{T} ids", "{T} 个 id"),
    "embedding": ("embedding", "嵌入"), "embed_shape": ("{T} × {C}", "{T} × {C}"),
    "blocks": ("{L} blocks: attention + MLP, each adds to the residual stream",
               "{L} 个块：注意力 + MLP，各自往残差流里加上一份"),
    "block_hover": ("layer {l}: attention then MLP add to the residual stream. After it, |x| = {norm:.1f} and "
                    "token #{pos}'s top guess is {guess} ({p}). Click: show this layer",
                    "第 {l} 层：先注意力、再 MLP，往残差流里加上各自的输出。这一层之后 |x| = {norm:.1f}，"
                    "词元 #{pos} 的首选预测是 {guess}（{p}）。点击：显示这一层"),
    "unembed": ("final norm + unembedding", "最终归一化 + 反嵌入"), "n_logits": ("{V:,} logits", "{V:,} 个 logit"),
    "sample": ("softmax(z / T) → sample", "softmax(z / T) → 采样"),
    "top": ("top: {token} {p}", "首选：{token} {p}"),
    "here": ("you are here", "你在这里"),
    "go": ("Go to this section", "转到这一部分"),
})


def _label(labels: Callable[[int], str], i: int) -> str:
    s = labels(int(i))
    return html.escape("“" + (s if len(s) <= 10 else s[:9] + "…") + "”")


def big_picture_html(trace: Trace, lens: LogitLens, focus: int, labels: Callable[[int], str]) -> str:
    cfg, T = trace.config, trace.T
    if focus not in lens.positions:
        raise ValueError(f"the logit lens does not hold the focus position {focus}")
    col = lens.positions.index(focus)
    norms = np.array([np.linalg.norm(trace.act("hook_resid_post", l)[focus].astype(np.float64))
                      for l in range(cfg.n_layer)])
    shade = np.log1p(norms) / max(np.log1p(norms).max(), 1e-12)        # 0..1: the biggest stream is darkest
    blocks = []
    for l in range(cfg.n_layer):
        guess, p = int(lens.top_ids[l + 1, col, 0]), float(lens.top_probs[l + 1, col, 0])
        tip = W("block_hover", l=l, norm=norms[l], pos=focus, guess=labels(guess), p=pct(p))
        blocks.append(
            f'<button class="gg-bp-block" data-gg-layer="{l}" title="{html.escape(tip)}" '
            f'style="--gg-shade:{shade[l]:.3f}"><span class="gg-bp-l">{l}</span>'
            f'<span class="gg-bp-guess">{_label(labels, guess)}</span></button>')
    final_id, final_p = int(lens.top_ids[-1, col, 0]), float(lens.top_probs[-1, col, 0])

    def stage(go: str, name: str, detail: str) -> str:
        return (f'<button class="gg-bp-stage" data-gg-go="{go}" title="{W("go")}">'
                f'<span class="gg-bp-name">{name}</span><span class="gg-bp-detail">{detail}</span></button>')

    focus_tok = html.escape("“" + trace.pieces[focus].label + "”")
    return (f'<div class="gg-bigpic"><div class="gg-bp-title"><b>{W("title")}</b> · '
            f'<span class="gg-bp-focus">{W("focus", pos=focus, token=focus_tok)}</span></div>'
            f'<div class="gg-bp-flow">'
            f'{stage("tokens", W("tokens"), W("n_tokens", T=T))}<span class="gg-bp-arrow">→</span>'
            f'{stage("embeddings", W("embedding"), W("embed_shape", T=T, C=cfg.d_model))}<span class="gg-bp-arrow">→</span>'
            f'<div class="gg-bp-blocks" role="group" aria-label="{html.escape(W("blocks", L=cfg.n_layer))}">'
            f'<div class="gg-bp-caption">{W("blocks", L=cfg.n_layer)}</div><div class="gg-bp-grid">{"".join(blocks)}</div>'
            f'</div><span class="gg-bp-arrow">→</span>'
            f'{stage("logit_lens", W("unembed"), W("n_logits", V=cfg.vocab_size))}<span class="gg-bp-arrow">→</span>'
            f'{stage("distribution", W("sample"), W("top", token=_label(labels, final_id), p=pct(final_p)))}'
            f'</div></div>')
