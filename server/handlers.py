"""Event handlers: plain functions from (context, view, controls, event input) to (view, outputs).

Outputs are a dict keyed by the element ids of the page; app.py turns it into Gradio's output
list, leaving every element not named unchanged. Tests call these functions directly.
"""
from __future__ import annotations

import html
import itertools
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Iterator

from model import LanguageModel

from viz.words import table

from . import layer_data, render
from .controls import Controls, whole_number
from .recipe import recipe_of
from .state import MAX_LENS_POSITIONS, View, first_view, make_view, with_focus, with_lens_choice

log = logging.getLogger("glassgpt")

# What the page tells a person (notices and refusals), in the request's language (viz/words.py).
SAY = table("server.notices", {
    "not_text": ("the prompt must be text", "提示词必须是文本"),
    "empty": ("The prompt is empty: type some text, then press Run.", "提示词是空的：请输入一些文字，然后按“运行”。"),
    "too_many_chars": ("The prompt has {n:,} characters; the limit is {limit:,} characters ({tokens} tokens). "
                       "Shorten it and run again.",
                       "提示词有 {n:,} 个字符，上限是 {limit:,} 个字符（{tokens} 个词元）。请缩短后再运行。"),
    "nothing_left": ("Nothing is left to run: the model's vocabulary has no bytes for {chars}. Type some other text.",
                     "没有可以运行的内容：模型的词表里没有 {chars} 的字节。请输入别的文字。"),
    "too_many_tokens": ("The prompt is {n} tokens long; the limit is {limit}. Nothing was cut: shorten it and run again.",
                        "提示词有 {n} 个词元，上限是 {limit}。没有做任何截断：请缩短后再运行。"),
    "dropped": ("The model's vocabulary has no bytes for these characters, so they were left out: {chars}",
                "模型的词表里没有这些字符的字节，所以它们被略去了：{chars}"),
    "session_lost": ("The server no longer holds this page's session (it was idle for a long time, pushed out by many "
                     "other sessions, or the app restarted), so the page now shows the starting prompt again. "
                     "Press Run to see your prompt.",
                     "服务器上已经没有这个页面的会话了（闲置太久、被许多其他会话挤掉，或者应用重启了），"
                     "所以页面现在重新显示初始的提示词。按“运行”即可看到你的提示词。"),
    "session_rebuilt": ("This page's session was not on the server that answered (its server stopped, or the session "
                        "was pushed out to make room), so it was rebuilt here from your prompt, generated tokens and "
                        "settings ({n} tokens) by running the model again. Nothing you typed was lost.",
                        "回答的服务器上没有这个页面的会话（原来的服务器停了，或者会话为腾出空间被移除了），"
                        "所以这里根据你的提示词、已生成的词元和设置重新运行模型，重建了会话（{n} 个词元）。"
                        "你输入的内容都没有丢失。"),
    "layers_list": ("layers must be a list of layer numbers", "参数 layers 必须是层号列表"),
    "context_full": ("This session's text has reached the limit of {limit} tokens; run a shorter prompt to start again.",
                     "本次会话的文本已达到 {limit} 个词元的上限；请运行一个更短的提示词重新开始。"),
    "ended": ("The model already ended its answer (end-of-sequence token). Run a new prompt to continue.",
              "模型已经结束了回答（生成了序列结束词元）。请运行一个新的提示词再继续。"),
    "stopped_eos": ("Stopped: the model produced its end-of-sequence token.", "已停止：模型生成了序列结束词元。"),
    "failed": ("Something went wrong inside the app ({kind}); nothing was changed and the page still works. "
               "Please try again.", "应用内部出了问题（{kind}）；什么都没有改变，页面仍然可以使用。请再试一次。"),
    "dismiss": ("Dismiss this message", "关闭这条消息"),
})


@dataclass(frozen=True)
class Limits:
    max_prompt_tokens: int = 512
    max_new_tokens: int = 64           # per Generate request
    max_context: int = 1024            # prompt + everything generated in one session
    max_prompt_chars: int = 20_000     # refused before tokenizing: a pasted megabyte costs nothing
    max_sessions: int = 200            # page sessions held at once (each holds its trace); the oldest go first
    session_idle_minutes: float = 60   # a page session's trace is dropped after this long without an event

    def __post_init__(self):
        if not (1 <= self.max_prompt_tokens <= self.max_context and 0 <= self.max_new_tokens):
            raise ValueError("limits must satisfy 1 <= max_prompt_tokens <= max_context and max_new_tokens >= 0")
        if not (self.max_sessions >= 1 and self.session_idle_minutes > 0):
            raise ValueError("limits must satisfy max_sessions >= 1 and session_idle_minutes > 0")


@dataclass
class Context:
    """What every handler shares: the model (read-only), the limits, the label cache, the first view."""
    lm: LanguageModel
    limits: Limits
    default_prompt: str = "The capital of France is"
    replica: str = "glassgpt"               # this process's name among several (server/replica.py)
    labels: object = field(init=False)      # id -> the token's visible label (memoised)
    static: dict = field(init=False)        # panels that never change: model card, parameter figure, notes
    initial: View = field(init=False)       # the starting view every new page shows
    initial_recipe: str = field(init=False)  # its recipe (server/recipe.py), the page's first

    def __post_init__(self):
        self.labels = render.make_labels(self.lm)
        self.static = render.static_group(self.lm)
        # Timings of the starting prompt were measured at server start, not for anyone's press of
        # Run: the KV table asks the user to run instead of showing them.
        self.initial = make_view(self.lm, replace(self.lm.trace(self.default_prompt), timings={}))
        self.initial_recipe = recipe_of(self.initial)

    def vocabulary_labels(self) -> list[str]:
        """Every token's label, in id order (the page's sampler may pick any of them)."""
        return [self.labels(i) for i in range(self.lm.cfg.vocab_size)]


class Refusal(ValueError):
    """A refused request whose message goes to #notice, with the panels that must say so too
    (e.g. the token count of a prompt that was too long)."""

    def __init__(self, message: str, outputs: dict):
        super().__init__(message)
        self.outputs = outputs


_NOTICES = itertools.count(1)


def notice_html(message: str, kind: str = "error") -> str:
    """The one place user-visible messages become HTML: always escaped. Each notice has its own
    number, so the same message shows again after it was dismissed (assets/page.js)."""
    if not message:
        return ""
    return (f'<div class="gg-notice gg-{kind}" role="status" data-n="{next(_NOTICES)}">{html.escape(message)}'
            f'<button class="gg-notice-close" aria-label="{SAY("dismiss")}" title="{SAY("dismiss")}"></button></div>')


# ---- prompt ----------------------------------------------------------------------------------
def check_prompt(ctx: Context, prompt, chat: bool = False) -> list[int]:
    if not isinstance(prompt, str):
        raise ValueError(SAY("not_text"))
    if not prompt.strip():
        raise ValueError(SAY("empty"))
    if len(prompt) > ctx.limits.max_prompt_chars:
        raise Refusal(SAY("too_many_chars", n=len(prompt), limit=ctx.limits.max_prompt_chars,
                          tokens=ctx.limits.max_prompt_tokens),
                      {"token-count": render.refused_count_text(None, ctx.limits.max_prompt_tokens, len(prompt))})
    ids = ctx.lm.tokenizer.encode_chat(prompt) if chat else ctx.lm.tokenize(prompt)
    if not ids:      # every character was one the vocabulary has no bytes for
        dropped = ctx.lm.tokenizer.dropped_chars(prompt)
        raise ValueError(SAY("nothing_left", chars=", ".join(f"U+{ord(ch):04X}" for ch in dropped[:10])))
    if len(ids) > ctx.limits.max_prompt_tokens:
        raise Refusal(SAY("too_many_tokens", n=len(ids), limit=ctx.limits.max_prompt_tokens),
                      {"token-count": render.refused_count_text(len(ids), ctx.limits.max_prompt_tokens)})
    return ids


def everything(ctx: Context, view: View, c: Controls, layer_budget: int | None = None) -> dict:
    """Every panel. `layer_budget` 0: the current layer only (the page fetches the rest while idle)."""
    out = {}
    out.update(render.prompt_group(ctx.lm, view, c, ctx.labels))
    out.update(render.lens_group(ctx.lm, view, c, ctx.labels))
    out.update(render.layer_group(view, c) if layer_budget is None else render.layer_group(view, c, layer_budget))
    out.update(render.sampling_group(view, ctx.labels))
    out["token-count"] = render.token_count_text(view, ctx.limits.max_prompt_tokens)
    out["notice"] = ""
    return out


# Panels computed on request beside the session's view; a new prompt clears them.
# The embedding lab's panels (server/lab.py): they depend on no prompt, only on their own inputs.
LAB_IDS = ("lab-analogy-figure", "lab-analogy-table", "lab-direction-figure", "patching", "patch-status")
WHAT_IF_IDS = ("attribution", "attribution-top", "routes", "temps", "head-roles", "head-roles-top", "ablation", "ablation-lens", "ablation-summary", "compare-attention", "compare-mlp", "compare-prediction",
               "compare-cosine", "compare-summary", "residual-path")


def on_run(ctx: Context, view: View | None, c: Controls, prompt: str, chat: bool = False) -> tuple[View, dict]:
    """Run a new prompt; in chat mode it is wrapped in the model's chat template first."""
    out = {}
    for new, part in run_in_steps(ctx, view, c, prompt, chat):
        out.update(part)
    return new, out


def run_in_steps(ctx: Context, view: View | None, c: Controls, prompt: str, chat: bool = False
                 ) -> Iterator[tuple[View, dict]]:
    """Run, in two answers: first the tokens, the distribution and the current layer's panels
    (the panels that need the logit lens and the neighbours say they are computing), then
    the rest (the layers around the current one; the page fetches the others while idle)."""
    ids = check_prompt(ctx, prompt, bool(chat))
    trace = ctx.lm.trace(ids)
    first = first_view(trace)
    out = render.prompt_group(ctx.lm, first, c, ctx.labels)
    out.update(render.layer_group(first, c, budget=0))          # the current layer only
    out.update(render.sampling_group(first, ctx.labels))
    out.update(dict.fromkeys(WHAT_IF_IDS))        # ablation, comparison and paths described the old prompt
    out.update(dict.fromkeys(render.LENS_IDS, render.COMPUTING))
    out["token-count"] = render.token_count_text(first, ctx.limits.max_prompt_tokens)
    out["notice"] = ""
    yield first, out
    new = make_view(ctx.lm, trace, previous=first)
    out = render.lens_group(ctx.lm, new, c, ctx.labels)
    out.update(render.layer_group(new, c))
    out["notice"] = ""
    dropped = ctx.lm.tokenizer.dropped_chars(prompt)
    if dropped:   # never lose text silently
        out["notice"] = notice_html(SAY("dropped", chars=", ".join(f"U+{ord(ch):04X}" for ch in dropped[:10])), "info")
    yield new, out


SESSION_LOST = SAY.both("session_lost")[0]


def on_session_lost(ctx: Context, c: Controls) -> tuple[View, dict]:
    """An event arrived for a session whose view is gone: redraw every panel from the starting view
    rather than answer about a prompt the page no longer matches."""
    view = initial_view(ctx)
    out = everything(ctx, view, c)
    out.update(dict.fromkeys(WHAT_IF_IDS))
    out["notice"] = notice_html(SAY("session_lost"), "info")
    return view, out


def on_session_rebuilt(ctx: Context, view: View, c: Controls) -> dict:
    """The panels of a view rebuilt from the page's recipe (server/recipe.py), with a notice saying so."""
    out = everything(ctx, view, c)
    out.update(dict.fromkeys(WHAT_IF_IDS))
    out["notice"] = notice_html(SAY("session_rebuilt", n=view.T), "info")
    return out


def initial_view(ctx: Context) -> View:
    return ctx.initial


def on_language(ctx: Context, view: View | None, c: Controls) -> tuple[View, dict]:
    """The language changed: every figure again in the new one (the caller speaks it). The what-if
    panels go back to their hints, in the new language: press their button again to redraw them."""
    view = view or initial_view(ctx)
    out = everything(ctx, view, c, layer_budget=0)
    out.update(dict.fromkeys(WHAT_IF_IDS + LAB_IDS))
    out["lesson-text"] = ""           # a lesson's words were in the old language: start it again to read them
    return view, out


# ---- focus, layer, head, view options ----------------------------------------------------------
def on_focus(ctx: Context, view: View, c: Controls, position) -> tuple[View, dict]:
    new = with_focus(ctx.lm, view, whole_number(position, "token position", 0, view.T - 1))
    out = render.focus_group(ctx.lm, new, c, ctx.labels)
    out.update(render.layer_group(new, c, budget=0))          # the other layers follow while the page is idle
    out["token-count"] = render.token_count_text(new, ctx.limits.max_prompt_tokens)
    out["notice"] = ""
    return new, out


def on_lens_positions(ctx: Context, view: View, c: Controls, text) -> tuple[View, dict]:
    """The reader chose the logit lens's positions ("0-5, 9, last"; empty: the last ones)."""
    from .beyond import parse_positions      # beyond imports this module
    positions = parse_positions(text, view.T, limit=MAX_LENS_POSITIONS)
    new = with_lens_choice(ctx.lm, view, positions)
    out = {k: v for k, v in render.lens_group(ctx.lm, new, c, ctx.labels).items() if k.startswith("logit-lens")}
    out["notice"] = ""
    return new, out


def on_layer(ctx: Context, view: View, c: Controls) -> tuple[View, dict]:
    """A view option changed (sink hidden, log scale, all neurons): the layer panels again."""
    out = render.layer_group(view, c)
    out["notice"] = ""
    return view, out


def on_need_layer(ctx: Context, view: View, c: Controls, layer, head, layers=None) -> tuple[View, dict]:
    """The page lacks layers: the one its control shows (then `layers` is None: the layers around
    it), or, while idle, the `layers` it has not received yet (nearest first)."""
    n = ctx.lm.cfg.n_layer
    layer = whole_number(layer, "layer", 0, n - 1)
    head = whole_number(head, "head", 0, ctx.lm.cfg.n_head - 1)
    if layers is not None:
        if not isinstance(layers, list) or len(layers) > n:
            raise ValueError(SAY("layers_list"))
        layers = [whole_number(l, "layer", 0, n - 1) for l in layers]
    data = layer_data.layer_data(view, c.with_(layer=layer, head=head), layers=layers)
    return view, {"layer-data": data}


def on_heads_metric(ctx: Context, view: View, c: Controls) -> tuple[View, dict]:
    return view, {"attention-all": render.attention.all_heads_figure(view.trace, metric=c.heads_metric,
                                                                    stats=view.head_stats)}


def on_embed_dims(ctx: Context, view: View, c: Controls) -> tuple[View, dict]:
    return view, {"embeddings": render.embeddings.embedding_figure(view.neighbours, view.trace, view.focus,
                                                                   dims=3 if c.embed_3d else 2, labels=ctx.labels)}


# ---- generation ---------------------------------------------------------------------------------
def _room_for(ctx: Context, view: View, n: int) -> int:
    room = min(ctx.limits.max_context, ctx.lm.cfg.n_ctx) - view.T
    if room <= 0:
        raise ValueError(SAY("context_full", limit=ctx.limits.max_context))
    return min(n, room)


def _after_generation(ctx: Context, view: View, c: Controls, trace) -> tuple[View, dict]:
    focus = None if view.focus_follows_end else view.focus
    new = make_view(ctx.lm, trace, focus, previous=view)
    return new, everything(ctx, new, c, layer_budget=0)     # the other layers follow while the page is idle


def on_next_token(ctx: Context, view: View, c: Controls) -> tuple[View, dict]:
    _room_for(ctx, view, 1)
    if view.trace.T > view.trace.n_prompt and view.trace.token_ids[-1] in ctx.lm.tokenizer.eos_ids:
        raise ValueError(SAY("ended"))
    token = ctx.lm.next_token(view.trace, c.sampling)
    return _after_generation(ctx, view, c, ctx.lm.step(view.trace, token))


PANELS_EVERY_S = 0.5      # while generating, every panel follows the newest token at most this often


def on_generate(ctx: Context, view: View, c: Controls, n) -> Iterator[tuple[View, dict]]:
    """Generate up to n tokens, yielding after each: the text and count every token, every panel at
    most every PANELS_EVERY_S and after the last token (a full redraw per token froze the page)."""
    n = _room_for(ctx, view, whole_number(n, "number of tokens", 1, ctx.limits.max_new_tokens))
    new, trace, drawn_at = view, view.trace, time.monotonic()
    try:
        for trace in ctx.lm.stream(view.trace, n, c.sampling):
            if time.monotonic() - drawn_at >= PANELS_EVERY_S:
                new, out = _after_generation(ctx, new, c, trace)
                drawn_at = time.monotonic()
                yield new, out
            else:
                yield new, render.progress_group(new, trace, ctx.limits.max_prompt_tokens)
    except Exception:
        if trace is not new.trace:      # keep the tokens made before the failure, then report it
            yield _after_generation(ctx, new, c, trace)
        raise
    if trace is not new.trace:
        new, out = _after_generation(ctx, new, c, trace)
        yield new, out
    last = new.trace.token_ids[-1] if new.T > new.trace.n_prompt else None
    if last is not None and last in ctx.lm.tokenizer.eos_ids:
        yield new, {"notice": notice_html(SAY("stopped_eos"), "info")}
