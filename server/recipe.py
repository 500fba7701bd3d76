"""A view's recipe: what it takes to compute the same view again on any replica.

A session's view (its trace) lives in one process. Behind a balancer that process may disappear
(or push the session out to make room), and the page's next event then reaches a process that has
never seen it. So every answer that changes the view also writes its recipe into the page (the
hidden `recipe` element): the token ids (prompt and generated, as run: no re-tokenizing), how many
of them were the prompt, the focus and the chosen logit-lens positions. Every event sends it back;
a process that lacks the session rebuilds the view from it (app.py Binder) and says so.
Layer, head and the sampling settings are page controls and come with every event anyway.
"""
from __future__ import annotations

import json
from dataclasses import replace

from .state import View, make_view, with_focus, with_lens_choice

VERSION = 1


def recipe_of(view: View) -> str:
    tr = view.trace
    return json.dumps({"v": VERSION, "ids": list(tr.token_ids), "n_prompt": tr.n_prompt,
                       "focus": None if view.focus_follows_end else view.focus,
                       "lens": list(view.lens_choice)}, separators=(",", ":"))


def parse(text, vocab_size: int, max_tokens: int) -> dict | None:
    """The recipe the page sent, checked; None when there is none or it does not hold together
    (the page then starts from the first view, as before recipes)."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        r = json.loads(text)
        ids, n_prompt = r["ids"], r["n_prompt"]
        focus, lens = r.get("focus"), r.get("lens") or []
    except (ValueError, KeyError, TypeError):
        return None
    ints = lambda xs: isinstance(xs, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in xs)  # noqa: E731
    if r.get("v") != VERSION or not ints(ids) or not ints(lens) or not 1 <= len(ids) <= max_tokens:
        return None
    if not all(0 <= i < vocab_size for i in ids) or not (isinstance(n_prompt, int) and 1 <= n_prompt <= len(ids)):
        return None
    if focus is not None and not (isinstance(focus, int) and 0 <= focus < len(ids)):
        focus = None
    return {"ids": ids, "n_prompt": n_prompt, "focus": focus, "lens": [p for p in lens if 0 <= p < len(ids)]}


def rebuild(ctx, text) -> View | None:
    """The view the recipe describes, computed here; None when the recipe is missing or broken."""
    r = parse(text, ctx.lm.cfg.vocab_size, min(ctx.limits.max_context, ctx.lm.cfg.n_ctx))
    return None if r is None else view_of(ctx, r["ids"], r["n_prompt"], r["focus"], r["lens"])


def view_of(ctx, ids: list[int], n_prompt: int, focus: int | None = None, lens: list[int] = ()) -> View:
    """Run ids (checked) as a prompt of n_prompt tokens followed by generated ones, and view it."""
    lm = ctx.lm
    trace = lm.trace(ids)
    if n_prompt < trace.T:             # the generated tokens: run with the prompt, marked as generated
        trace = replace(trace, n_prompt=n_prompt)
    view = make_view(lm, trace)
    if lens:
        view = with_lens_choice(lm, view, list(lens))
    if focus is not None:
        view = with_focus(lm, view, focus)
    return view
