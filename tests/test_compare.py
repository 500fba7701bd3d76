"""Comparing two prompts on the real model: one head's two patterns, the busiest MLP neurons, the
two predictions, and the focus token's residual stream in both contexts."""
from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
from zh_text import stray_in_figure, stray_latin

from model.sampling import softmax
from server import beyond
from server.handlers import Context, Controls, Limits
from server.state import make_view, with_focus
from viz import compare
from viz.words import speaking

A, B = "The bank of the river", "The bank raised rates"
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def ctx(lm):
    return Context(lm, Limits(max_prompt_tokens=32, max_new_tokens=4, max_context=40))


@pytest.fixture(scope="module")
def view(lm):
    return make_view(lm, lm.trace(A))          # focus: the last token


@pytest.fixture(scope="module")
def trace_b(lm):
    return lm.trace(B)


@pytest.fixture(scope="module")
def result(ctx, view):
    return beyond.on_compare(ctx, view, Controls(layer=7, head=4), B)


def test_outputs_and_the_view_is_kept(result, view):
    same, out = result
    assert same is view
    assert set(out) == {"compare-attention", "compare-mlp", "compare-prediction", "compare-cosine",
                        "compare-summary", "notice"}


def test_attention_shows_the_same_head_for_both_prompts(result, view, trace_b):
    fig = result[1]["compare-attention"]
    assert "Layer 7, head 4" in fig.layout.title.text
    za, zb = (np.array(t.z, dtype=float) for t in fig.data)
    for z, tr in ((za, view.trace), (zb, trace_b)):
        want = tr.act("attn.hook_pattern", 7)[4].astype(np.float64)
        lower = np.tril(np.ones_like(want, dtype=bool))
        np.testing.assert_allclose(z[lower], want[lower], rtol=1e-3)
        assert np.isnan(z[~lower]).all()                                   # the masked future stays blank
        np.testing.assert_allclose(np.nansum(z, axis=1), 1, atol=2e-3)     # rows sum to 1
    assert fig.data[0].coloraxis == fig.data[1].coloraxis                  # one colour scale for both


def test_mlp_bars_are_mean_absolute_activations(result, view, trace_b):
    fig = result[1]["compare-mlp"]
    ids = [int(x[1:]) for x in fig.data[0].x]
    for bars, tr in zip(fig.data, (view.trace, trace_b)):
        post = tr.act("mlp.hook_post", 7).astype(np.float32)
        np.testing.assert_allclose(bars.y, np.abs(post[:, ids]).mean(axis=0), rtol=1e-5)
    for tr in (view.trace, trace_b):                                       # each prompt's busiest neurons are shown
        top = np.argsort(-compare.mean_abs_activation(tr, 7))[:12]
        assert set(top.tolist()) <= set(ids)


def test_predictions_are_the_two_real_distributions(result, view, trace_b):
    fig = result[1]["compare-prediction"]
    ids = [int(s.split("id ")[1].split("<")[0]) for s in fig.data[0].hovertext]
    for bars, tr in zip(fig.data, (view.trace, trace_b)):
        np.testing.assert_allclose(bars.x, softmax(tr.logits[-1])[ids], rtol=1e-6)
    assert int(np.argmax(softmax(view.trace.logits[-1]))) in ids and int(np.argmax(softmax(trace_b.logits[-1]))) in ids


def test_cosine_compares_the_last_tokens_by_default(result, view, trace_b):
    fig = result[1]["compare-cosine"]
    assert compare.match_position(view.trace, view.T - 1, trace_b)[0] == trace_b.T - 1
    a = compare.residual_states(view.trace)[:, -1].astype(np.float64)
    b = compare.residual_states(trace_b)[:, -1].astype(np.float64)
    want = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    np.testing.assert_allclose(fig.data[0].y, want, rtol=1e-6)
    assert len(want) == 31 and want[-1] < 0.99


def test_same_token_same_position_with_the_same_prefix_is_identical(ctx, lm, view):
    bank = with_focus(lm, view, 1)                                          # " bank" in both prompts
    _, out = beyond.on_compare(ctx, bank, Controls(), B)
    cos = np.asarray(out["compare-cosine"].data[0].y)
    np.testing.assert_allclose(cos, 1.0, atol=1e-6)                        # causal: it cannot see what follows
    assert "identical up to this token" in out["compare-summary"] and "same position" in out["compare-summary"]


def _ids(*ids):
    return SimpleNamespace(token_ids=tuple(ids), T=len(ids))


def test_match_position_rules():
    a = _ids(10, 11, 12, 13, 14)                     # e.g. "The cat sat on the"
    assert compare.match_position(a, 1, _ids(10, 11, 99)) == (1, "same token, same position")
    assert compare.match_position(a, 1, _ids(7, 8, 11, 9)) == (2, "same token, another position")
    assert compare.match_position(a, 1, _ids(11, 8, 9, 11)) == (0, "same token, another position")   # nearest
    assert compare.match_position(a, 2, _ids(7, 8, 9))[0] == 2                # not in B: B's last token
    assert compare.match_position(a, 4, _ids(7, 8))[0] == 1                   # A's last -> B's last
    with pytest.raises(ValueError):
        compare.match_position(a, 5, _ids(7))


def test_hostile_prompt_b_is_escaped(ctx, view):
    _, out = beyond.on_compare(ctx, view, Controls(), "The bank " + HOSTILE)
    for key in ("compare-attention", "compare-mlp", "compare-prediction", "compare-cosine"):
        text = json.dumps(out[key].to_plotly_json(), default=str)
        assert "<img" not in text and "onerror=alert(1)>" not in text, key
    assert "&lt;img" in json.dumps(out["compare-attention"].to_plotly_json(), default=str)
    assert "<img" not in out["compare-summary"]


@pytest.mark.parametrize("prompt, fragment", [("", "empty"), ("  \n", "empty"), ("word " * 40, "tokens long"),
                                              (None, "text")])
def test_bad_prompt_b(ctx, view, prompt, fragment):
    with pytest.raises(ValueError, match=fragment):
        beyond.on_compare(ctx, view, Controls(), prompt)


def test_focus_b_can_be_chosen_and_is_checked(ctx, view):
    _, out = beyond.on_compare(ctx, view, Controls(), B, focus_b=1)
    assert "B #1" in out["compare-cosine"].layout.title.text
    with pytest.raises(ValueError, match="B's token position"):
        beyond.on_compare(ctx, view, Controls(), B, focus_b=99)


# ---- in Chinese (the tiny random model) ---------------------------------------------------------------
def test_match_position_says_why_in_chinese():
    a = _ids(10, 11, 12, 13, 14)
    with speaking("zh"):
        whys = [compare.match_position(a, 1, _ids(10, 11, 99))[1], compare.match_position(a, 1, _ids(7, 8, 11, 9))[1],
                compare.match_position(a, 2, _ids(7, 8, 9))[1], compare.match_position(a, 4, _ids(7, 8))[1]]
    assert len(set(whys)) == 4
    for why in whys:
        assert stray_latin(why) == [] and "词元" in why


def test_every_figure_and_the_summary_in_chinese(tiny_lm):
    ta, tb = tiny_lm.trace(A), tiny_lm.trace(B)
    allowed = {w for t in (ta, tb) for p in t.pieces for w in re.findall(r"[A-Za-z]+", p.label)}
    allowed |= set(re.findall(r"[A-Za-z]+", A + " " + B))                   # the prompts in titles and legends
    number = lambda i: f"#{i}"                                             # noqa: E731 (no vocabulary words)
    ctx = Context(tiny_lm, Limits(max_prompt_tokens=32, max_new_tokens=4, max_context=40))
    view = make_view(tiny_lm, ta)
    with speaking("zh"):
        figs = [compare.compare_attention_figure(ta, tb, 1, 2), compare.compare_attention_figure(ta, tb, 0, 3, True),
                compare.compare_mlp_figure(ta, tb, 1), compare.compare_mlp_figure(ta, tb, 0, exclude_first=True),
                compare.compare_prediction_figure(ta, tb, number)]
        pos_b, why = compare.match_position(ta, ta.T - 1, tb)
        figs.append(compare.compare_cosine_figure(ta, ta.T - 1, tb, pos_b, why))
        figs.append(compare.compare_cosine_figure(ta, 1, tb, 1, "同一个词元"))      # the same prefix
        summaries = [beyond.on_compare(ctx, view, Controls(), B)[1]["compare-summary"],
                     beyond.on_compare(ctx, with_focus(tiny_lm, view, 1), Controls(), B)[1]["compare-summary"],
                     beyond.on_compare(ctx, view, Controls(), B, focus_b=2)[1]["compare-summary"]]
    for fig in figs:
        assert stray_in_figure(fig, allowed) == {}
        hovers = [h for t in fig.data for h in (t.hovertext or ())]
        assert all(stray_latin(h, allowed) == [] for h in hovers)
        assert all(t.textfont.size is None or t.textfont.size >= 10 for t in fig.data)
    assert "完全相同" in figs[-1].layout.title.text and figs[-1].layout.xaxis.ticktext[0] == "嵌入"
    for md in summaries:
        assert stray_latin(re.sub(r"``.*?``|`[^`]*`", " ", md)) == [] and "余弦相似度" in md
    assert "完全相同" in summaries[1] and "手动选择" in summaries[2]
