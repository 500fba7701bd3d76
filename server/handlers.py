"""Event handlers: plain functions from (context, view, controls, event input) to (view, outputs).

Outputs are a dict keyed by the element ids of the page; app.py turns it into Gradio's output
list, leaving every element not named unchanged. Tests call these functions directly.
"""
from __future__ import annotations

import html
import logging
import math
from dataclasses import dataclass, field
from typing import Iterator

from model import LanguageModel, SamplingParams
from model.sampling import check_params

from . import render
from .state import View, make_view, with_focus

log = logging.getLogger("glassgpt")


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
    labels: object = None
    initial: View | None = None
    default_prompt: str = "The capital of France is"
    static: dict = field(default_factory=dict)

    def __post_init__(self):
        self.labels = render.make_labels(self.lm)
        self.static = render.static_group(self.lm)


@dataclass(frozen=True)
class Controls:
    layer: int = 0
    head: int = 0
    exclude_first: bool = False
    log_scale: bool = False
    mlp_all: bool = False
    heads_metric: str = "sink"
    embed_3d: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0

    @classmethod
    def from_page(cls, lm: LanguageModel, layer, head, exclude_first, log_scale, mlp_all, heads_metric, embed_3d,
                  temperature, top_k, top_p, seed) -> "Controls":
        """Coerce what the page sends (numbers may arrive as floats or None) and check ranges."""
        c = lm.cfg
        layer, head = _whole(layer, "layer", 0, c.n_layer - 1), _whole(head, "head", 0, c.n_head - 1)
        top_k, seed = _whole(top_k, "top-k", 0, c.vocab_size), _whole(seed, "seed", 0, 2**63 - 1)
        temperature, top_p = _number(temperature, "temperature"), _number(top_p, "top-p")
        check_params(temperature, top_k, top_p, seed, vocab_size=c.vocab_size)
        return cls(layer, head, bool(exclude_first), bool(log_scale), bool(mlp_all), str(heads_metric or "sink"),
                   bool(embed_3d), temperature, top_k, top_p, seed)

    @property
    def layer_options(self) -> render.LayerOptions:
        return render.LayerOptions(self.layer, self.head, self.exclude_first, self.log_scale, self.mlp_all,
                                   self.heads_metric, self.embed_3d)

    @property
    def sampling(self) -> SamplingParams:
        return SamplingParams(self.temperature, self.top_k, self.top_p, self.seed)


def _number(x, what: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {x!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{what} must be a finite number, got {x!r}")
    return v


def _whole(x, what: str, lo: int, hi: int) -> int:
    # Exact integers are checked as integers: going through float would round 2**63 - 1 up.
    v = x if isinstance(x, int) and not isinstance(x, bool) else _number(x, what)
    if v != int(v) or not lo <= v <= hi:
        raise ValueError(f"{what} must be a whole number in {lo}..{hi}, got {x!r}")
    return int(v)


def notice_html(message: str, kind: str = "error") -> str:
    """The one place user-visible messages become HTML: always escaped."""
    return f'<div class="gg-notice gg-{kind}" role="status">{html.escape(message)}</div>' if message else ""


# ---- prompt ----------------------------------------------------------------------------------
def check_prompt(ctx: Context, prompt, chat: bool = False) -> list[int]:
    if not isinstance(prompt, str):
        raise ValueError("the prompt must be text")
    if not prompt.strip():
        raise ValueError("The prompt is empty: type some text, then press Run.")
    if len(prompt) > ctx.limits.max_prompt_chars:
        raise ValueError(f"The prompt has {len(prompt):,} characters; the limit is {ctx.limits.max_prompt_chars:,} "
                         f"characters ({ctx.limits.max_prompt_tokens} tokens). Shorten it and run again.")
    ids = ctx.lm.tokenizer.encode_chat(prompt) if chat else ctx.lm.tokenize(prompt)
    if not ids:      # every character was one the vocabulary has no bytes for
        dropped = ctx.lm.tokenizer.dropped_chars(prompt)
        raise ValueError("Nothing is left to run: the model's vocabulary has no bytes for "
                         + ", ".join(f"U+{ord(ch):04X}" for ch in dropped[:10]) + ". Type some other text.")
    if len(ids) > ctx.limits.max_prompt_tokens:
        raise ValueError(f"The prompt is {len(ids)} tokens long; the limit is {ctx.limits.max_prompt_tokens}. "
                         f"Nothing was cut: shorten it and run again.")
    return ids


def everything(ctx: Context, view: View, c: Controls) -> dict:
    out = {}
    out.update(render.prompt_group(ctx.lm, view, c.layer_options, ctx.labels))
    out.update(render.layer_group(view, c.layer_options))
    out.update(render.sampling_group(view, c.sampling, ctx.labels))
    out["token-count"] = render.token_count_text(view, ctx.limits.max_prompt_tokens)
    out["notice"] = ""
    return out


# Panels computed on request beside the session's view; a new prompt clears them.
WHAT_IF_IDS = ("ablation", "ablation-lens", "ablation-summary", "compare-attention", "compare-mlp", "compare-prediction",
               "compare-cosine", "compare-summary", "residual-path")


def on_run(ctx: Context, view: View | None, c: Controls, prompt: str, chat: bool = False) -> tuple[View, dict]:
    """Run a new prompt; in chat mode it is wrapped in the model's chat template first."""
    ids = check_prompt(ctx, prompt, bool(chat))
    new = make_view(ctx.lm, ctx.lm.trace(ids))
    out = everything(ctx, new, c)
    out.update(dict.fromkeys(WHAT_IF_IDS))        # ablation, comparison and paths described the old prompt
    dropped = ctx.lm.tokenizer.dropped_chars(prompt)
    if dropped:   # never lose text silently
        out["notice"] = notice_html("The model's vocabulary has no bytes for these characters, so they were left out: "
                                    + ", ".join(f"U+{ord(ch):04X}" for ch in dropped[:10]), "info")
    return new, out


SESSION_LOST = ("The server no longer holds this page's session (it was idle for a long time, pushed out by many "
                "other sessions, or the app restarted), so the page now shows the starting prompt again. "
                "Press Run to see your prompt.")


def on_session_lost(ctx: Context, c: Controls) -> tuple[View, dict]:
    """An event arrived for a session whose view is gone: redraw every panel from the starting view
    rather than answer about a prompt the page no longer matches."""
    view = initial_view(ctx)
    out = everything(ctx, view, c)
    out.update(dict.fromkeys(WHAT_IF_IDS))
    out["notice"] = notice_html(SESSION_LOST, "info")
    return view, out


def initial_view(ctx: Context) -> View:
    if ctx.initial is None:
        ctx.initial = make_view(ctx.lm, ctx.lm.trace(ctx.default_prompt))
    return ctx.initial


# ---- focus, layer, head, view options ----------------------------------------------------------
def on_focus(ctx: Context, view: View, c: Controls, position) -> tuple[View, dict]:
    new = with_focus(ctx.lm, view, _whole(position, "token position", 0, view.T - 1))
    out = render.focus_group(ctx.lm, new, c.layer_options, ctx.labels)
    out["token-count"] = render.token_count_text(new, ctx.limits.max_prompt_tokens)
    out["notice"] = ""
    return new, out


def on_layer(ctx: Context, view: View, c: Controls) -> tuple[View, dict]:
    out = render.layer_group(view, c.layer_options)
    out["notice"] = ""
    return view, out


def on_layer_step(ctx: Context, view: View, c: Controls, delta: int) -> tuple[View, dict]:
    layer = min(max(c.layer + delta, 0), ctx.lm.cfg.n_layer - 1)
    view, out = on_layer(ctx, view, Controls(**{**c.__dict__, "layer": layer}))
    out["layer"] = layer
    return view, out


def on_head_pick(ctx: Context, view: View, c: Controls, layer, head) -> tuple[View, dict]:
    """A click on a head overview selects that layer and head."""
    layer = _whole(layer, "layer", 0, ctx.lm.cfg.n_layer - 1)
    head = _whole(head, "head", 0, ctx.lm.cfg.n_head - 1)
    view, out = on_layer(ctx, view, Controls(**{**c.__dict__, "layer": layer, "head": head}))
    out.update(layer=layer, head=head)
    return view, out


def on_heads_metric(ctx: Context, view: View, c: Controls) -> tuple[View, dict]:
    return view, {"attention-all": render.attention.all_heads_figure(view.trace, metric=c.heads_metric)}


def on_embed_dims(ctx: Context, view: View, c: Controls) -> tuple[View, dict]:
    return view, {"embeddings": render.embeddings.embedding_figure(view.neighbours, view.trace, view.focus,
                                                                   dims=3 if c.embed_3d else 2, labels=ctx.labels)}


# ---- sampling and generation --------------------------------------------------------------------
def on_sampling(ctx: Context, view: View, c: Controls) -> tuple[View, dict]:
    """Temperature, top-k, top-p or seed moved: re-read the cached logits, never the model."""
    out = render.sampling_group(view, c.sampling, ctx.labels)
    out["notice"] = ""
    return view, out


def _room_for(ctx: Context, view: View, n: int) -> int:
    room = min(ctx.limits.max_context, ctx.lm.cfg.n_ctx) - view.T
    if room <= 0:
        raise ValueError(f"This session's text has reached the limit of {ctx.limits.max_context} tokens; "
                         f"run a shorter prompt to start again.")
    return min(n, room)


def _after_generation(ctx: Context, view: View, c: Controls, trace) -> tuple[View, dict]:
    focus = None if view.focus_follows_end else view.focus
    new = make_view(ctx.lm, trace, focus, previous=view)
    return new, everything(ctx, new, c)


def on_next_token(ctx: Context, view: View, c: Controls) -> tuple[View, dict]:
    _room_for(ctx, view, 1)
    if view.trace.T > view.trace.n_prompt and view.trace.token_ids[-1] in ctx.lm.tokenizer.eos_ids:
        raise ValueError("The model already ended its answer (end-of-sequence token). Run a new prompt to continue.")
    token = ctx.lm.next_token(view.trace, c.sampling)
    return _after_generation(ctx, view, c, ctx.lm.step(view.trace, token))


def on_generate(ctx: Context, view: View, c: Controls, n) -> Iterator[tuple[View, dict]]:
    """Generate up to n tokens, yielding after each so the page follows along."""
    n = _room_for(ctx, view, _whole(n, "number of tokens", 1, ctx.limits.max_new_tokens))
    new, out = view, {}
    for trace in ctx.lm.stream(view.trace, n, c.sampling):
        new, out = _after_generation(ctx, new, c, trace)
        yield new, out
    last = new.trace.token_ids[-1] if new.T > new.trace.n_prompt else None
    if last is not None and last in ctx.lm.tokenizer.eos_ids:
        yield new, {"notice": notice_html("Stopped: the model produced its end-of-sequence token.", "info")}
