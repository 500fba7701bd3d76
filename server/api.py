"""The named HTTP API (/trace, /distribution, /generate, /analogy, /direction, /attribution, /patch),
usable with gradio_client.

Every argument arrives from outside and may be of any type or range: it is checked here and a
bad one becomes a gr.Error with a plain message (the client sees the message, never a traceback).
"""
from __future__ import annotations

import functools
import logging

import gradio as gr

from model import embedding_lab, patching
from model.attribution import direct_logit_attribution
from model.sampling import SamplingParams
from model.sampling import distribution as next_token_distribution

from .controls import number, whole_number
from .handlers import Context, check_prompt

log = logging.getLogger("glassgpt")


def _checked(fn):
    @functools.wraps(fn)      # keeps the signature: gr.api derives the endpoint's parameters from it
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as e:
            raise gr.Error(str(e), print_exception=False) from None
        except Exception as e:  # noqa: BLE001 - an internal failure still answers with a plain message
            log.exception("API call %s failed", fn.__name__)
            raise gr.Error(f"Something went wrong inside the app ({type(e).__name__}); please try again.",
                           print_exception=False) from None
    return wrapper


def _top(ctx: Context, logits, params: SamplingParams, n: int) -> list[dict]:
    d = next_token_distribution(logits, params)
    return [{"token": ctx.lm.decode([int(i)]), "id": int(i), "logit": round(float(d.logits[i]), 5),
             "probability": float(d.probs[i])} for i in d.top(n)]


def make_api(ctx: Context) -> dict:
    """-> {endpoint name: function}, bound to one model context."""

    @_checked
    def trace(prompt: str) -> dict:
        """Tokenize and run the prompt: its tokens and ids, and the top-10 next tokens (T = 1)."""
        tr = ctx.lm.trace(check_prompt(ctx, prompt))
        return {"tokens": list(tr.tokens), "ids": list(tr.token_ids),
                "top": _top(ctx, tr.logits[-1], SamplingParams(), 10)}

    @_checked
    def distribution(prompt: str, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> list[dict]:
        """The next-token distribution after temperature, top-k and top-p (top 20 tokens)."""
        params = SamplingParams(number(temperature, "temperature"),
                                whole_number(top_k, "top-k", 0, ctx.lm.cfg.vocab_size), number(top_p, "top-p"))
        tr = ctx.lm.trace(check_prompt(ctx, prompt))
        return _top(ctx, tr.logits[-1], params, 20)

    @_checked
    def generate(prompt: str, max_new_tokens: int | None = None, temperature: float = 1.0, top_k: int = 0,
                 top_p: float = 1.0, seed: int = 0) -> dict:
        """Generate up to max_new_tokens tokens (default: 20 or the server's limit, if lower); stops at
        end-of-sequence."""
        limit = ctx.limits.max_new_tokens
        n = min(20, limit) if max_new_tokens is None else whole_number(max_new_tokens, "max_new_tokens", 0, limit)
        params = SamplingParams(number(temperature, "temperature"), whole_number(top_k, "top-k", 0, ctx.lm.cfg.vocab_size),
                                number(top_p, "top-p"), whole_number(seed, "seed", 0, 2**63 - 1))
        g = ctx.lm.generate(check_prompt(ctx, prompt), n, params.temperature, params.top_k, params.top_p, params.seed)
        return {"text": g.text, "tokens": [ctx.lm.decode([i]) for i in g.new_ids], "ids": g.new_ids,
                "stopped_at_eos": g.stopped_at_eos}

    @_checked
    def analogy(a: str, b: str, c: str, k: int = 10) -> dict:
        """a - b + c: the k vocabulary tokens whose input embeddings are most cosine-similar to
        E[a] - E[b] + E[c], best first, the three inputs left out. Each word is used as typed (a
        leading space is part of it) and must be one token."""
        r = embedding_lab.analogy(ctx.lm, a, b, c, whole_number(k, "k", 1, 100))
        return {"ids": r.ids, "results": [{"token": n.token, "id": n.id, "cosine": n.cosine} for n in r.results]}

    @_checked
    def direction(a: str, b: str, words: str) -> dict:
        """The direction d = E[a] - E[b] and each word's projection E[w] . d / |d|, in the order given;
        `words` is split at commas, each piece kept as typed (" cars, car" is " cars" and " car")."""
        r = embedding_lab.direction(ctx.lm, a, b, words)
        return {"ids": r.ids, "scores": [{"word": s.word, "id": s.id, "projection": s.projection} for s in r.scores]}

    @_checked
    def attribution(prompt: str, target: str = "", position: int = -1) -> dict:
        """Direct logit attribution: the logit of `target` (a token's text, as typed; empty = the top
        prediction) at `position` (-1 = the last), split into the embedding, every head and every MLP,
        through the final norm with its scale frozen; `total` is their sum (= `logit`)."""
        tr = ctx.lm.trace(check_prompt(ctx, prompt))
        p = whole_number(position, "position", -tr.T, tr.T - 1) % tr.T
        if not isinstance(target, str):
            raise ValueError("target must be text: a token, or empty for the top prediction")
        t = int(tr.logits[p].argmax()) if not target else embedding_lab.one_token(ctx.lm, target)
        a = direct_logit_attribution(ctx.lm, tr, p, t)
        out = {"target": {"token": ctx.lm.decode([t]), "id": t}, "logit": a.logit, "embed": a.embed,
               "heads": a.heads.tolist(), "mlps": a.mlps.tolist(), "total": a.total}
        if ctx.lm.cfg.has_bias:
            out["bias"] = a.bias
        return out

    @_checked
    def patch(clean: str, corrupted: str, answer: str, foil: str) -> dict:
        """Activation patching of the residual stream: for every layer l and position p, the metric
        logit(answer) - logit(foil) at the last position of the corrupted run with
        blocks.{l}.hook_resid_pre at p taken from the clean run. The prompts need the same token count."""
        clean_ids, corrupt_ids = check_prompt(ctx, clean), check_prompt(ctx, corrupted)
        a, f = embedding_lab.one_token(ctx.lm, answer), embedding_lab.one_token(ctx.lm, foil)
        r = patching.activation_patching(ctx.lm, clean_ids, corrupt_ids, a, f, kinds=("resid_pre",))
        return {"positions": [ctx.lm.decode([i]) for i in clean_ids], "clean": r.clean, "corrupted": r.corrupted,
                "resid_pre": r.resid_pre.tolist()}

    return {"trace": trace, "distribution": distribution, "generate": generate, "analogy": analogy,
            "direction": direction,
            "attribution": attribution, "patch": patch}
