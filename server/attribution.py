"""Handlers of "Who wrote the answer": direct logit attribution at the focus token, and activation
patching between a clean and a corrupted prompt (streamed layer by layer, cancellable).

Same contract as server/handlers.py. Element ids:
  on_attribute -> "attribution", "attribution-top", "notice"
  on_routes    -> "routes", "notice"
  on_patch     -> "patching", "patch-status", "notice" (a stream: one answer per patched layer or so)
"""
from __future__ import annotations

import html
import time
from typing import Iterator

import numpy as np

from model import embedding_lab, patching, routes
from model.attribution import direct_logit_attribution
from viz import attribution as viz
from viz import routes as routes_viz
from viz.words import table

from .controls import Controls
from .handlers import Context, check_prompt
from .lab import explained
from .state import View

SAY = table("server.attribution", {
    "too_long": ("Routes are drawn for prompts of at most {limit} tokens (the cost grows with the square of the "
                 "length); this one has {n}.", "信息路径只对不超过 {limit} 个词元的提示词绘制（计算量随长度的平方增长）；"
                 "这个提示词有 {n} 个。"),
    "threshold": ("The threshold must be a number between 0.01 and 0.9.", "阈值必须是 0.01 到 0.9 之间的数。"),
    "lengths": ("The two prompts must have the same number of tokens to be patched position by position: the clean "
                "one has {n_clean}, the corrupted one {n_corrupt}. Clean: {clean}. Corrupted: {corrupt}. Change a word "
                "so both have the same length.",
                "两个提示词的词元数必须相同，才能逐个位置地修补：干净的有 {n_clean} 个，损坏的有 {n_corrupt} 个。"
                "干净的：{clean}。损坏的：{corrupt}。换一个词，让两者一样长。"),
    "same_tokens": ("Answer and foil are the same token: the metric would always be 0.", "答案和对照是同一个词元：指标会永远是 0。"),
    "progress": ("patched {done} of {total} layers · {seconds:.1f} s", "已修补 {done}/{total} 层 · {seconds:.1f} 秒"),
    "done": ("done: {total} patched runs of {T} positions in {seconds:.1f} s", "完成：{total} 次修补运行，每次 {T} 个位置，共 {seconds:.1f} 秒"),
})


def token_of(ctx: Context, text) -> int:
    """A token given as its text (as typed: a leading space is part of it), in the page's language."""
    try:
        return embedding_lab.one_token(ctx.lm, text)
    except ValueError as e:
        raise explained(e) from None


def on_attribute(ctx: Context, view: View, c: Controls, target_text, foil_text) -> tuple[View, dict]:
    """Direct logit attribution at the focus token: of the target (empty: the model's top guess
    there), minus the foil when one is given."""
    position = view.focus
    target = int(np.argmax(view.trace.logits[position])) if not (target_text or "").strip() else token_of(ctx, target_text)
    foil = token_of(ctx, foil_text) if (foil_text or "").strip() else None
    a = direct_logit_attribution(ctx.lm, view.trace, position, target, foil)
    return view, {"attribution": viz.attribution_figure(a, ctx.labels),
                  "attribution-top": viz.top_contributions_html(a), "notice": ""}


def on_routes(ctx: Context, view: View, c: Controls, threshold) -> tuple[View, dict]:
    """The information-flow routes into the focus token's prediction, edges above `threshold`."""
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(SAY("threshold")) from None
    if not 0.01 <= t <= 0.9:
        raise ValueError(SAY("threshold"))
    if view.T > routes.MAX_TOKENS:
        raise ValueError(SAY("too_long", limit=routes.MAX_TOKENS, n=view.T))
    contrib = routes.contributions(ctx.lm, view.trace)
    r = routes.route(contrib, view.focus, t)
    readout = routes.node_readout(ctx.lm, view.trace, r.nodes)
    return view, {"routes": routes_viz.routes_figure(r, view.trace, readout, ctx.labels, contrib.mlp), "notice": ""}


def _side_by_side(ctx: Context, ids) -> str:
    return " | ".join("“" + ctx.labels(i) + "”" for i in ids)


def on_patch(ctx: Context, view: View, c: Controls, clean, corrupted, answer, foil) -> Iterator[tuple[View, dict]]:
    clean_ids, corrupt_ids = check_prompt(ctx, clean), check_prompt(ctx, corrupted)
    if len(clean_ids) != len(corrupt_ids):
        raise ValueError(SAY("lengths", n_clean=len(clean_ids), n_corrupt=len(corrupt_ids),
                             clean=_side_by_side(ctx, clean_ids), corrupt=_side_by_side(ctx, corrupt_ids)))
    a, f = token_of(ctx, answer), token_of(ctx, foil)
    if a == f:
        raise ValueError(SAY("same_tokens"))
    t0, shown = time.perf_counter(), 0.0
    result = None
    for result, done, total in patching.patch_steps(ctx.lm, clean_ids, corrupt_ids, a, f):
        now = time.perf_counter()
        if now - shown >= 0.5 or done == total:          # at most two redraws a second
            shown = now
            status = (SAY("done", total=total, T=len(clean_ids), seconds=now - t0) if done == total
                      else SAY("progress", done=done, total=total, seconds=now - t0))
            yield view, {"patching": viz.patching_figure(result, ctx.labels),
                         "patch-status": f'<progress value="{done}" max="{total}"></progress> {html.escape(status)}',
                         "notice": ""}
