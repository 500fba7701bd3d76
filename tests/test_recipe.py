"""A view's recipe (server/recipe.py): what any replica needs to compute the same view again."""
from __future__ import annotations

import json

import numpy as np
import pytest

from server import handlers, recipe
from server.handlers import Controls


@pytest.fixture(scope="module")
def generated(ctx):
    """A prompt, two generated tokens (sampled), a chosen focus and logit-lens positions."""
    view, _ = handlers.on_run(ctx, None, Controls(), "The cat sat on the mat because the cat")
    c = Controls(temperature=0.9, seed=3)
    view, _ = handlers.on_next_token(ctx, view, c)
    view, _ = handlers.on_next_token(ctx, view, c)
    view, _ = handlers.on_lens_positions(ctx, view, c, "1, 3")
    view, _ = handlers.on_focus(ctx, view, c, 4)
    return view


def test_rebuilt_view_is_the_same_view(ctx, generated):
    text = recipe.recipe_of(generated)
    again = recipe.rebuild(ctx, text)
    tr, tr2 = generated.trace, again.trace
    assert tr2.token_ids == tr.token_ids and tr2.n_prompt == tr.n_prompt == tr.T - 2
    assert again.focus == 4 and not again.focus_follows_end
    assert again.lens_choice == generated.lens_choice and again.lens.positions == generated.lens.positions
    # The same numbers, up to the order of float operations (a prefill vs. step-by-step decoding).
    np.testing.assert_allclose(tr2.logits[-1], tr.logits[-1], atol=2e-3)
    assert int(np.argmax(tr2.logits[-1])) == int(np.argmax(tr.logits[-1]))
    assert recipe.recipe_of(again) == text


def test_a_view_that_follows_the_end_keeps_following(ctx):
    view, _ = handlers.on_run(ctx, None, Controls(), "One two three")
    again = recipe.rebuild(ctx, recipe.recipe_of(view))
    assert again.focus == again.T - 1 and again.focus_follows_end


@pytest.mark.parametrize("text", [
    None, "", "   ", "not json", "[]", '{"v": 1}',
    '{"v": 2, "ids": [1, 2], "n_prompt": 2}',                       # another version
    '{"v": 1, "ids": [], "n_prompt": 0}',
    '{"v": 1, "ids": [1, 2], "n_prompt": 3}',                       # more prompt than tokens
    '{"v": 1, "ids": [1, "2"], "n_prompt": 2}',
    '{"v": 1, "ids": [1, true], "n_prompt": 2}',
    '{"v": 1, "ids": [1, 99999999], "n_prompt": 2}',                # outside the vocabulary
    '{"v": 1, "ids": [-1], "n_prompt": 1}',
    json.dumps({"v": 1, "ids": [1] * 81, "n_prompt": 81}),          # over the session's limit (80)
])
def test_a_broken_recipe_rebuilds_nothing(ctx, text):
    assert recipe.rebuild(ctx, text) is None


def test_odd_focus_and_lens_positions_are_dropped_not_fatal(ctx):
    text = json.dumps({"v": 1, "ids": [504, 3575, 282], "n_prompt": 3, "focus": 17, "lens": [0, 99, -4]})
    view = recipe.rebuild(ctx, text)
    assert view.focus == 2 and view.lens_choice == (0,)


def test_the_rebuilt_notice_counts_tokens_and_the_page_starts_with_a_recipe(ctx, generated):
    out = handlers.on_session_rebuilt(ctx, generated, Controls())
    assert f"({generated.T} tokens)" in out["notice"] and out["tokens"]
    assert recipe.rebuild(ctx, ctx.initial_recipe).trace.token_ids == ctx.initial.trace.token_ids
