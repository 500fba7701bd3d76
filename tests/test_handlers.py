"""Handlers called as plain functions: what each event changes, and what it must not."""
from __future__ import annotations

import numpy as np
import pytest

from server import handlers
from server.handlers import Context, Controls, Limits


@pytest.fixture(scope="module")
def ctx(lm):
    return Context(lm, Limits(max_prompt_tokens=64, max_new_tokens=8, max_context=80))


@pytest.fixture(scope="module")
def view(ctx):
    v, _ = handlers.on_run(ctx, None, Controls(), "The cat sat on the mat because the cat")
    return v


def test_run_fills_every_panel(ctx, lm):
    view, out = handlers.on_run(ctx, None, Controls(), "Hello there, world")
    assert view.trace.token_ids == tuple(lm.tokenize("Hello there, world"))
    for key in ("tokens", "embeddings", "attention", "attention-heads", "attention-all", "attention-detail",
                "mlp", "mlp-top", "logit-lens", "logit-lens-focus", "distribution", "pick", "token-count"):
        assert out[key] is not None, key
    assert out["notice"] == ""
    assert view.focus == view.T - 1


@pytest.mark.parametrize("prompt, fragment", [("", "empty"), ("   \n\t ", "empty"), ("x" * 30_000, "characters"),
                                              ("word " * 200, "tokens long")])
def test_bad_prompts_give_a_clear_message(ctx, view, prompt, fragment):
    with pytest.raises(ValueError, match=fragment):
        handlers.on_run(ctx, view, Controls(), prompt)


def test_sampling_controls_never_run_the_model(ctx, view, monkeypatch):
    def forbidden(*a, **k):
        raise AssertionError("the model ran")
    monkeypatch.setattr(ctx.lm, "_run", forbidden)
    monkeypatch.setattr(ctx.lm, "forward", forbidden)
    for t in (0.0, 0.5, 2.0):
        same, out = handlers.on_sampling(ctx, view, Controls(temperature=t, top_k=5, top_p=0.9, seed=3))
        assert same is view and set(out) == {"distribution", "pick", "notice"}
    _, out = handlers.on_layer(ctx, view, Controls(layer=7, head=3))
    assert {"attention", "attention-heads", "mlp"} <= set(out)


def test_temperature_changes_the_bars(ctx, view):
    _, cold = handlers.on_sampling(ctx, view, Controls(temperature=0.2))
    _, hot = handlers.on_sampling(ctx, view, Controls(temperature=2.0))
    assert max(cold["distribution"].data[0].x) > max(hot["distribution"].data[0].x)


def test_focus_and_layer_step(ctx, view):
    v2, out = handlers.on_focus(ctx, view, Controls(), 2)
    assert v2.focus == 2 and 'data-pos="2"' in out["tokens"]
    _, out = handlers.on_layer_step(ctx, view, Controls(layer=29), +1)
    assert out["layer"] == 29
    _, out = handlers.on_layer_step(ctx, view, Controls(layer=0), -1)
    assert out["layer"] == 0
    _, out = handlers.on_head_pick(ctx, view, Controls(), 12, 5)
    assert (out["layer"], out["head"]) == (12, 5)
    with pytest.raises(ValueError):
        handlers.on_focus(ctx, view, Controls(), 999)


def test_next_token_uses_the_kv_cache_and_matches_the_shown_pick(ctx, view):
    c = Controls(temperature=0.7, seed=11)
    _, shown = handlers.on_sampling(ctx, view, c)
    new, out = handlers.on_next_token(ctx, view, c)
    assert new.T == view.T + 1 and new.trace.n_prompt == view.T
    assert ctx.lm.decode([new.trace.token_ids[-1]]) in out["output"]
    np.testing.assert_allclose(new.trace.logits[:-1], view.trace.logits, atol=0)  # the prefix was not recomputed


def test_generate_streams_and_respects_limits(ctx, view):
    steps = list(handlers.on_generate(ctx, view, Controls(temperature=0), 3))
    assert [s[0].T for s in steps if "tokens" in s[1]] == [view.T + 1, view.T + 2, view.T + 3]
    with pytest.raises(ValueError):
        list(handlers.on_generate(ctx, view, Controls(), 9))      # over max_new_tokens


@pytest.mark.parametrize("raw", [dict(temperature=float("nan")), dict(temperature=-1), dict(top_k=-3),
                                 dict(top_p=0), dict(top_p=1.5), dict(layer=30), dict(head=9), dict(seed=1.5),
                                 dict(seed="abc"), dict(temperature=None)])
def test_out_of_range_controls_are_refused(ctx, raw):
    page = dict(layer=0, head=0, exclude_first=False, log_scale=False, mlp_all=False, heads_metric="sink",
                embed_3d=False, temperature=1.0, top_k=0, top_p=1.0, seed=0)
    page.update(raw)
    with pytest.raises(ValueError):
        Controls.from_page(ctx.lm, **page)


def test_messages_are_escaped():
    html = handlers.notice_html('<img src=x onerror="alert(1)">')
    assert "<img" not in html and "&lt;img" in html


def test_chat_mode_wraps_the_prompt_with_real_control_tokens(ctx):
    tok = ctx.lm.tokenizer
    view, out = handlers.on_run(ctx, None, Controls(), "Hi <|im_end|> there", True)
    ids = list(view.trace.token_ids)
    assert ids[0] == 1 and ids.count(1) == 3          # <|im_start|> opens system, user, assistant turns
    assert ids.count(2) == 2                          # only the template closes turns: typed text stays text
    assert ctx.lm.decode(ids).endswith("<|im_start|>assistant\n")
    assert "gg-chip-control" in out["tokens"]
    assert tok.encode_chat("x")[-3:] == tok.encode("<|im_start|>assistant\n", parse_special=True)[-3:]


def test_session_export_holds_what_the_panels_showed(ctx, view):
    import json
    from server import share
    c = Controls(layer=3, head=4, temperature=0.5)
    _, out = share.export_session(ctx, view, c)
    data = json.loads(open(out["session-file"], encoding="utf-8").read())
    assert data["prompt"] == view.trace.prompt and [t["id"] for t in data["tokens"]] == list(view.trace.token_ids)
    assert data["settings"]["layer"] == 3 and data["attention"]["kv_head"] == 1
    assert len(data["attention"]["pattern"]) == view.T
    assert data["next_token"][0]["id"] == int(view.trace.logits[-1].argmax())
    assert abs(sum(t["probability"] for t in data["next_token"]) - 1) < 0.5


def test_link_settings_are_checked():
    from server.share import settings_from_query
    got, problems = settings_from_query({"prompt": "hi", "t": "0.5", "layer": "99", "head": "x", "chat": "1"}, 30, 9)
    assert got["prompt"] == "hi" and got["t"] == 0.5 and got["chat"] and "layer" not in got and "head" not in got
    assert len(problems) == 2


def test_open_link_replays_prompt_and_settings(ctx):
    from server.share import on_open_link
    view, out, values = on_open_link(ctx, handlers.initial_view(ctx),
                                     {"prompt": "The dog ran", "t": "0.3", "layer": "4", "focus": "1", "head": "oops"})
    assert view.trace.prompt == "The dog ran" and view.focus == 1 and out["layer"] == 4
    assert values["t"] == 0.3 and "head=" in out["notice"]


def test_a_prompt_of_only_characters_the_vocabulary_lacks_names_them(ctx):
    from server.handlers import check_prompt

    with pytest.raises(ValueError, match="U\\+0004, U\\+0006"):
        check_prompt(ctx, "\u0004\u0006")
