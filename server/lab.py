"""Handlers of the labs: the embedding lab (a - b + c, words on a direction) and head roles.

Same contract as server/handlers.py: (ctx, view, controls, inputs) -> (view, {element id: value});
a ValueError carries the message for the page's notice. The lab reads only the embedding matrix,
so it never changes the session's view.

Element ids:
  on_analogy   -> "lab-analogy-figure", "lab-analogy-table", "notice"
  on_direction -> "lab-direction-figure", "notice"
  on_roles_repeated, on_roles_prompt -> "head-roles", "head-roles-top", "notice"
  on_temperatures -> "temps", "notice"
"""
from __future__ import annotations

from model import embedding_lab as lab
from model import head_roles as roles
from model import temperatures
from viz import embedding_lab as lab_viz
from viz import head_roles as roles_viz
from viz import temperatures as temps_viz
from viz.words import table

from .controls import Controls, whole_number
from .handlers import Context
from .state import View

SAY = table("server.lab", {
    "not_one": ("{word} is not one token of the vocabulary: the tokenizer makes {pieces}. The lab needs words of "
                "one token each.", "{word} 不是词表里的单个词元：分词结果为 {pieces}。实验里的每个词都必须恰好是一个词元。"),
    "more_pieces": (" + … ({n} pieces)", " + …（共 {n} 个）"),
    "no_token": ("no token at all", "空（一个词元也没有）"),
    "try_spaced": (" Try {spaced} (with a leading space), which is one token.", "试试 {spaced}（前面带一个空格），它是一个词元。"),
    "empty_word": ("Each word must be non-empty: fill in a, b and c.", "每个词都不能是空的：请填好 a、b 和 c。"),
    "no_words": ("Give at least one word to place on the direction (a comma-separated list).",
                 "请至少给出一个要放到方向上的词（用逗号分隔）。"),
    "same": ("a and b are the same token: their difference has no direction.", "a 和 b 是同一个词元：它们的差没有方向。"),
    "too_many": ("At most 100 words.", "最多 100 个词。"),
    "no_room": ("This session's text has no room for more tokens: run a shorter prompt.",
                "本次会话的文本已经没有空间再续写了：请运行一个更短的提示词。"),
})


def _shown(word: str) -> str:
    """A word as the notice shows it: quoted, with its spaces visible."""
    return "“" + word.replace(" ", "␣") + "”"


def explained(e: ValueError) -> ValueError:
    """The model room's refusal, in the page's language."""
    if isinstance(e, lab.NotOneToken):
        pieces = " + ".join(_shown(p) for p in e.pieces[:lab.MAX_SHOWN]) if e.pieces else SAY("no_token")
        if len(e.pieces) > lab.MAX_SHOWN:
            pieces += SAY("more_pieces", n=len(e.pieces))
        text = SAY("not_one", word=_shown(lab.short_text(e.word)), pieces=pieces)
        if e.suggestion is not None:
            text += SAY("try_spaced", spaced=_shown(e.suggestion))
        return ValueError(text)
    if isinstance(e, lab.LabRefusal) and e.key in SAY.entries:
        return ValueError(SAY(e.key))
    return e


def on_analogy(ctx: Context, view: View, c: Controls, a, b, cc, k) -> tuple[View, dict]:
    k = whole_number(k, "k", 1, 100)
    try:
        r = lab.analogy(ctx.lm, a, b, cc, k)
    except ValueError as e:
        raise explained(e) from None
    return view, {"lab-analogy-figure": lab_viz.analogy_figure(r, ctx.labels),
                  "lab-analogy-table": lab_viz.analogy_table_html(r, ctx.labels), "notice": ""}


def on_direction(ctx: Context, view: View, c: Controls, a, b, words) -> tuple[View, dict]:
    try:
        r = lab.direction(ctx.lm, a, b, words)
        ends = lab.direction(ctx.lm, a, b, [a, b])                   # where a and b themselves fall
    except ValueError as e:
        raise explained(e) from None
    pa, pb = (s.projection for s in ends.scores)
    return view, {"lab-direction-figure": lab_viz.direction_figure(r, ctx.labels, (pa, pb)), "notice": ""}


# ---- head roles ---------------------------------------------------------------------------------
REPEATED_N = 20          # random tokens, then the same again: 20 positions where induction can act
REPEATED_SEED = 0


def _roles_out(trace, source: str) -> dict:
    scores = roles.role_scores(roles.all_patterns(trace), trace.token_ids)
    top = {role: roles.top_heads(scores[role], 3) for role in roles.ROLES}
    return {"head-roles": roles_viz.role_figure(scores, source), "head-roles-top": roles_viz.top_heads_html(top),
            "notice": ""}


def repeated_trace(ctx: Context):
    """A repeated random sequence (fixed seed): the classic test for induction heads."""
    V = ctx.lm.cfg.vocab_size
    ids = roles.repeated_random_ids(REPEATED_N, min(1000, V // 4), min(20_000, V), REPEATED_SEED)
    return ctx.lm.trace(ids)


def on_roles_repeated(ctx: Context, view: View, c: Controls) -> tuple[View, dict]:
    return view, _roles_out(repeated_trace(ctx), roles_viz.W("on_repeated", n=REPEATED_N))


def on_roles_prompt(ctx: Context, view: View, c: Controls) -> tuple[View, dict]:
    return view, _roles_out(view.trace, roles_viz.W("on_prompt", T=view.T))


# ---- temperature, side by side -----------------------------------------------------------------
SIDE_BY_SIDE_TOKENS = 10


def on_temperatures(ctx: Context, view: View, c: Controls) -> tuple[View, dict]:
    """The session's text continued at T = 0, 0.7, 1.2 and 2 with the page's seed."""
    room = min(ctx.limits.max_context, ctx.lm.cfg.n_ctx) - view.T
    n = max(0, min(SIDE_BY_SIDE_TOKENS, room))
    if n == 0:
        raise ValueError(SAY("no_room"))
    rows = temperatures.continue_at(ctx.lm, view.trace.token_ids, n, c.seed)
    return view, {"temps": temps_viz.side_by_side_html(rows, ctx.labels, view.trace.prompt, c.seed), "notice": ""}
