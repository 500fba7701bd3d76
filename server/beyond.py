"""Handlers for the experiments beyond watching one run: ablation, comparing two prompts, and the
residual stream's path. Same contract as server/handlers.py: plain functions
(ctx, view, controls, inputs) -> (view, {element id: value}); a ValueError carries a message for the
page's notice. None of them replaces the session's view: each is a what-if beside the original run.

Element ids:
  on_ablate         -> "ablation", "ablation-lens", "ablation-summary", "notice"
  on_compare        -> "compare-attention", "compare-mlp", "compare-prediction", "compare-cosine",
                       "compare-summary", "notice"
  on_residual_path  -> "residual-path", "notice"
"""
from __future__ import annotations

import re

import numpy as np

from model.ablation import parse_ablation
from model.sampling import SamplingParams, distribution
from viz import ablation as ablation_viz
from viz import compare as compare_viz
from viz import residual_path as path_viz
from viz.common import pct
from viz.words import table

from .controls import Controls, whole_number
from .handlers import Context, check_prompt
from .render import md_code
from .state import View

PLAIN = SamplingParams()          # temperature 1, no cuts: the model's own distribution

W = table("beyond", {
    # ablation
    "nothing_to_switch_off": ("Nothing to switch off: list heads as layer.head (e.g. 3.4, 10.0, or 3.* for a whole "
                              "layer) and/or MLP neurons as layer:neuron (e.g. 5:1297).",
                              "没有要关掉的东西：请按 层.头 列出注意力头（例如 3.4、10.0，整层写成 3.*），"
                              "和/或按 层:神经元 列出 MLP 神经元（例如 5:1297）。"),
    "n_heads": ("{n} of {total:,} attention heads", "{total:,} 个注意力头中的 {n} 个"),
    "n_neurons": ("{n:,} of {total:,} MLP neurons", "{total:,} 个 MLP 神经元中的 {n:,} 个"),
    "and": (" and ", "，以及 "),
    "switched_off": ("**Switched off:** {parts} — {what}. A head's output (its part of z, before the output "
                     "projection) or a neuron's activation (before the down projection) is set to 0 at every "
                     "position, so it adds nothing to the residual stream.",
                     "**关掉了**：{parts} —— {what}。注意力头的输出（它在 z 中的那一份，输出投影之前）或神经元的激活值"
                     "（down 投影之前）在每个位置都被设为 0，所以它不再往残差流里添加任何东西。"),
    "top_before": ("**Top next token:** {token} {p} before → ", "**首选的下一个词元**：之前是 {token} {p} → "),
    "top_still": ("still {token}, now {p}.", "仍是 {token}，现在 {p}。"),
    "top_new": ("{token} {p} after; {before} now has {p_before}.", "之后是 {token} {p}；{before} 现在是 {p_before}。"),
    "top_change": (" Change for {token}: {change:+.1f} percentage points.", "{token} 的变化：{change:+.1f} 个百分点。"),
    "kl": ("**KL(before ‖ after):** {kl:.3f} bits (0 = the distribution did not change; temperature 1, no cuts).",
           "**KL(之前 ‖ 之后)**：{kl:.3f} 比特（0 = 分布没有变化；温度 1，不截断）。"),
    # compare
    "chosen": ("chosen", "手动选择"),
    "comparing": ("Comparing A's token {a} (#{pa}) with B's {b} (#{pb}): {why}. Cosine similarity after the "
                  "embedding {first:.2f}, after the last layer {last:.2f}.",
                  "比较 A 的词元 {a}（#{pa}）和 B 的 {b}（#{pb}）：{why}。余弦相似度：嵌入之后为 {first:.2f}，"
                  "最后一层之后为 {last:.2f}。"),
    "identical": (" The prompts are identical up to this token, and attention only looks back, so its vector is "
                  "exactly the same in both: pick a later token (click a chip) to see the contexts differ.",
                  "两个提示词到这个词元为止完全相同，而注意力只往前看，所以它的向量在两边完全一样：选一个更靠后的词元"
                  "（点击上方的词元）才能看到上下文带来的差别。"),
    # residual path: reading the positions typed
    "positions_not_text": ("token positions must be text such as 1, 4 or 2-5", "词元位置要写成文本，例如 1, 4 或 2-5"),
    "positions_too_long": ("the list of token positions is too long", "词元位置列表太长了"),
    "positions_example": ("write token positions like 1, 4, a range like 2-5, or last (this prompt has 0..{last})",
                          "词元位置请写成 1, 4 这样，范围写成 2-5，或写 last（本提示词的位置范围是 0..{last}）"),
    "cannot_read": ("cannot read token position {item!r}: {example}", "无法识别词元位置 {item!r}：{example}"),
    "backwards": ("the range {item!r} runs backwards: {example}", "范围 {item!r} 的起点大于终点：{example}"),
    "past_end": ("token position {p} is past the end: {example}", "词元位置 {p} 超出了提示词的末尾：{example}"),
    "too_many_positions": ("{n} positions listed; at most {most} fit", "列出了 {n} 个位置；最多只能放 {most} 个"),
    "too_many_paths": ("{n} positions listed; at most {most} paths fit in one picture",
                       "列出了 {n} 个位置；一张图最多放 {most} 条路径"),
})


# ---- ablation ----------------------------------------------------------------------------------
def on_ablate(ctx: Context, view: View, c: Controls, heads_text: str, neurons_text: str) -> tuple[View, dict]:
    """Re-run the view's tokens with the listed heads ("3.4, 10.0"; "3.*" = a whole layer) and MLP
    neurons ("5:1297"; "5:*") switched off, and compare the next-token prediction with the plain run."""
    lm, tr, labels = ctx.lm, view.trace, ctx.labels
    abl = parse_ablation(heads_text, neurons_text, lm.cfg)
    if abl.empty:
        raise ValueError(W("nothing_to_switch_off"))
    after = lm.trace(list(tr.token_ids), ablate=abl)
    last = tr.T - 1
    d_before, d_after = distribution(tr.logits[-1], PLAIN), distribution(after.logits[-1], PLAIN)
    lens_before = view.lens if last in view.lens.positions else lm.logit_lens(tr, [last])
    target = int(lens_before.target_ids[list(lens_before.positions).index(last)])
    lens_after = lm.logit_lens(after, [last], targets=[target])
    what = ablation_viz.describe(abl, lm.cfg)
    return view, {
        "ablation": ablation_viz.ablation_figure(d_before, d_after, labels, n=15, what=what),
        "ablation-lens": ablation_viz.ablation_lens_figure(lens_before, lens_after, tr, labels, ablation=abl),
        "ablation-summary": ablation_summary(abl, d_before.probs, d_after.probs, labels, lm.cfg),
        "notice": "",
    }


def ablation_summary(abl, p_before: np.ndarray, p_after: np.ndarray, labels, cfg) -> str:
    """Markdown: what was switched off, the top token before and after, KL divergence. Token text
    appears only inside inert code spans."""
    n_heads, n_neurons = len(abl.heads), len(abl.neurons)
    parts = []
    if n_heads:
        parts.append(W("n_heads", n=n_heads, total=cfg.n_layer * cfg.n_head))
    if n_neurons:
        parts.append(W("n_neurons", n=n_neurons, total=cfg.n_layer * cfg.d_mlp))
    tb, ta = int(np.argmax(p_before)), int(np.argmax(p_after))
    change = p_after[tb] - p_before[tb]
    kl = ablation_viz.kl_bits(p_before, p_after)
    before, after = md_code(labels(tb)), md_code(labels(ta))
    lines = [
        W("switched_off", parts=W("and").join(parts), what=md_code(ablation_viz.describe(abl, cfg))),
        W("top_before", token=before, p=pct(p_before[tb], zero=None))
        + (W("top_still", token=after, p=pct(p_after[ta], zero=None)) if ta == tb else
           W("top_new", token=after, p=pct(p_after[ta], zero=None), before=before,
             p_before=pct(p_after[tb], zero=None)))
        + W("top_change", token=before, change=change * 100),
        W("kl", kl=kl),
    ]
    return "\n\n".join(lines)


# ---- compare two prompts ---------------------------------------------------------------------------
def on_compare(ctx: Context, view: View, c: Controls, prompt_b: str, focus_b=None) -> tuple[View, dict]:
    """Run prompt B and compare it with the view's prompt A at the page's layer and head. A's focus
    token is compared with B's token chosen by viz.compare.match_position (or `focus_b`)."""
    ids_b = check_prompt(ctx, prompt_b)
    chosen = None if focus_b is None or focus_b == "" else whole_number(focus_b, "B's token position", 0, len(ids_b) - 1)
    tb = ctx.lm.trace(ids_b)
    ta = view.trace
    pos_b, why = compare_viz.match_position(ta, view.focus, tb) if chosen is None else (chosen, W("chosen"))
    cos = compare_viz.cosine_per_layer(ta, view.focus, tb, pos_b)
    la, lb = ta.pieces[view.focus].display, tb.pieces[pos_b].display
    summary = W("comparing", a=md_code(la), pa=view.focus, b=md_code(lb), pb=pos_b, why=why, first=cos[0],
                last=cos[-1])
    if compare_viz.same_prefix(ta, view.focus, tb, pos_b):
        summary += W("identical")
    return view, {
        "compare-attention": compare_viz.compare_attention_figure(ta, tb, c.layer, c.head,
                                                                  exclude_first=c.exclude_first),
        "compare-mlp": compare_viz.compare_mlp_figure(ta, tb, c.layer, exclude_first=c.exclude_first),
        "compare-prediction": compare_viz.compare_prediction_figure(ta, tb, ctx.labels),
        "compare-cosine": compare_viz.compare_cosine_figure(ta, view.focus, tb, pos_b, why),
        "compare-summary": summary,
        "notice": "",
    }


# ---- residual path -------------------------------------------------------------------------------
_POS_SPLIT = re.compile(r"[\s,;，；、]+")


def parse_positions(text, T: int, limit: int | None = None) -> list[int]:
    """"1, 4, 7" / "2-5" / "last" / "#3" -> positions in 0..T-1 (duplicates dropped, order kept).
    `limit`: the most positions the caller takes (default: the residual path's)."""
    if text is None:
        return []
    if not isinstance(text, str):
        raise ValueError(W("positions_not_text"))
    if len(text) > 1000:
        raise ValueError(W("positions_too_long"))
    example = W("positions_example", last=T - 1)
    out: list[int] = []
    for item in _POS_SPLIT.split(text.replace("－", "-").strip()):
        if not item:
            continue
        s = item.lstrip("#")
        if s.lower() in ("last", "end"):
            out.append(T - 1)
            continue
        m = re.fullmatch(r"(\d{1,6})(?:-(\d{1,6}))?", s)
        if not m:
            raise ValueError(W("cannot_read", item=item, example=example))
        a = int(m[1])
        b = int(m[2]) if m[2] else a
        if a > b:
            raise ValueError(W("backwards", item=item, example=example))
        bad = [p for p in (a, b) if p >= T]
        if bad:
            raise ValueError(W("past_end", p=bad[0], example=example))
        out.extend(range(a, b + 1))
        if len(out) > 1000:
            break
    out = list(dict.fromkeys(out))
    if limit is not None and len(out) > limit:
        raise ValueError(W("too_many_positions", n=len(out), most=limit))
    if limit is None and len(out) > path_viz.MAX_PATHS:
        raise ValueError(W("too_many_paths", n=len(out), most=path_viz.MAX_PATHS))
    return out


def on_residual_path(ctx: Context, view: View, c: Controls, positions_text: str,
                     include_first: bool = False, normalise: bool = False) -> tuple[View, dict]:
    """Draw the residual-stream path of the listed positions (empty: the focus token and the last
    token). Position 0 enters the PCA fit only when it is listed or include_first is ticked;
    `normalise` scales every vector to unit RMS first (direction only, as the final norm sees it)."""
    tr = view.trace
    positions = parse_positions(positions_text, tr.T) or list(dict.fromkeys([view.focus, tr.T - 1]))
    lens = ctx.lm.logit_lens(tr, positions, known=view.lens)
    fig = path_viz.residual_path_figure(tr, lens, positions, ctx.labels, include_first=True if include_first else None,
                                        normalise=bool(normalise))
    return view, {"residual-path": fig, "notice": ""}
