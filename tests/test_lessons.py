"""Guided lessons: each runs, sets the page as its link says, and its numbers are the model's own,
measured when it starts (checked here against independent computations); in English and 中文."""
from __future__ import annotations

import html
import re

import numpy as np
import pytest
from zh_text import stray_latin

from model.ablation import parse_ablation
from model.sampling import SamplingParams, distribution
from server import lessons
from server.handlers import Context, Limits
from viz.common import pct
from viz.words import speaking


@pytest.fixture(scope="module")
def ctx(lm):
    return Context(lm, Limits())


def text_of(out) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", out["lesson-text"]))


@pytest.mark.parametrize("key", list(lessons.BY_KEY))
def test_every_lesson_runs_in_both_languages(ctx, key):
    lesson = lessons.BY_KEY[key]
    for lang in ("en", "zh"):
        with speaking(lang):
            view, out, values = lessons.on_lesson(ctx, None, key)
        text = text_of(out)
        assert f'data-gg-scroll="{lesson.section}"' in out["lesson-text"] and len(text) > 80
        assert values["prompt"] in view.trace.prompt                      # chat mode wraps it in the template
        if lang == "zh":
            words = re.sub(r"“[^”]*”|E\[[^\]]*\]", " ", text)           # tokens and E[word] are the model's text
            assert stray_latin(words, ["strawberry", "king", "man", "woman"]) == [], key    # the words of the example


def test_the_fact_lesson_reports_the_models_numbers(ctx, lm):
    view, out, _ = lessons.on_lesson(ctx, None, "fact")
    text = text_of(out)
    ids = lm.tokenize(lessons.FACT)
    p = distribution(lm.forward(ids)[-1], SamplingParams()).probs
    paris = int(np.argmax(p))
    assert f"{pct(p[paris])} after" in text
    layer = out["layer"]
    # The layer shown is the one whose MLP knockout hurts most (layer 0 aside), by an independent run.
    knocked = {l: distribution(lm.trace(ids, ablate=parse_ablation("", f"{l}:*", lm.cfg)).logits[-1], SamplingParams()).probs[paris]
               for l in range(1, lm.cfg.n_layer)}
    assert layer == min(knocked, key=knocked.get) and f"layer {layer} ({pct(knocked[layer])})" in text


def test_the_temperature_lesson_reports_the_models_numbers(ctx, lm):
    view, out, values = lessons.on_lesson(ctx, None, "temp")
    z = lm.forward(lm.tokenize(lessons.TEMP_PROMPT))[-1]
    top = int(np.argmax(z))
    for t in (1.0, 0.3, 2.0):
        assert f"{pct(distribution(z, SamplingParams(t)).probs[top])} at T = {t:g}" in text_of(out)
    assert values["t"] == 0.3


def test_the_sink_lesson_shows_the_head_it_measures(ctx, lm):
    view, out, _ = lessons.on_lesson(ctx, None, "sink")
    tr = lm.trace(lessons.SINK_PROMPT)
    A = np.stack([tr.act("attn.hook_pattern", l) for l in range(lm.cfg.n_layer)])[:, :, 1:, 0].mean(-1)   # (L, H)
    l, h = np.unravel_index(int(np.argmax(A)), A.shape)
    assert (out["layer"], out["head"]) == (l, h) and f"puts {pct(A[l, h])} of its attention" in text_of(out)


def test_a_model_without_the_effect_is_told_as_it_is(tiny_lm):
    """Random weights: no queen, no induction head; the lessons say what the model shows instead."""
    ctx = Context(tiny_lm, Limits())
    _, embed, _ = lessons.on_lesson(ctx, None, "embed")
    assert "only approximate" in text_of(embed) or "not among" in text_of(embed)
    _, ind, _ = lessons.on_lesson(ctx, None, "induction")
    assert "No head scores above 0.3" in text_of(ind)
    _, fact, _ = lessons.on_lesson(ctx, None, "fact")
    assert "layer 1" in text_of(fact)                                    # its only layer beside layer 0


def test_an_unknown_lesson_is_refused(ctx):
    for key in (None, "", "nope", 3):
        with pytest.raises(ValueError):
            lessons.on_lesson(ctx, None, key)
