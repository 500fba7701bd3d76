"""The same prompt continued at several temperatures, side by side: each new token coloured by the
probability the sampler gave it at that temperature (model/temperatures.py)."""
from __future__ import annotations

import html
from typing import Callable, Sequence

from model.temperatures import Continuation

from .common import pct
from .words import table

W = table("temperatures", {
    "caption": ("“{prompt}” continued {n} tokens at each temperature, seed {seed}; colour = the probability the "
                "sampler gave each token (no top-k or top-p cut)",
                "“{prompt}” 在每个温度下续写 {n} 个词元，随机种子 {seed}；颜色 = 采样时这个词元的概率（不做 top-k 或 top-p 截断）"),
    "greedy": ("T = 0 (greedy)", "T = 0（贪心）"),
    "mean": ("mean p {p}", "平均 p {p}"),
    "hover": ("p = {p} at T = {t}; {plain} at T = 1", "T = {t} 时 p = {p}；T = 1 时为 {plain}"),
    "ended": ("(end of text)", "（文本结束）"),
    "none": ("(nothing: the model ended at once)", "（没有：模型立刻结束了）"),
})


def _colour(p: float) -> str:
    """White (p = 0) to deep blue (p = 1); text turns white on dark cells."""
    a = max(0.0, min(1.0, p))
    return f"background: rgba(37, 99, 235, {0.08 + 0.85 * a:.3f}); color: {'#fff' if a > 0.55 else '#111'}"


def side_by_side_html(rows: Sequence[Continuation], labels: Callable[[int], str], prompt: str, seed: int) -> str:
    n = max((len(r.new_ids) for r in rows), default=0)
    shown_prompt = prompt if len(prompt) <= 60 else prompt[:59] + "…"
    lines = []
    for r in rows:
        name = W("greedy") if r.temperature == 0 else f"T = {r.temperature:g}"
        chips = "".join(
            f'<span class="gg-temp-token gg-tok" style="{_colour(p)}" '
            f'title="{html.escape(W("hover", p=pct(p), t=f"{r.temperature:g}", plain=pct(q)))}">{html.escape(labels(i))}</span>'
            for i, p, q in zip(r.new_ids, r.probs, r.probs_plain))
        if r.stopped_at_eos:
            chips += f' <span class="gg-muted">{W("ended")}</span>'
        if not r.new_ids:
            chips = f'<span class="gg-muted">{W("none")}</span>'
        mean = W("mean", p=pct(sum(r.probs) / len(r.probs))) if r.probs else ""
        lines.append(f'<tr><th>{name}</th><td class="gg-temp-row">{chips}</td><td class="gg-num">{mean}</td></tr>')
    caption = W("caption", prompt=html.escape(shown_prompt), n=n, seed=seed)
    return f'<table class="gg-temps"><caption>{caption}</caption>{"".join(lines)}</table>'
