"""Handlers called as plain functions: what each event changes, and what it must not."""
from __future__ import annotations

import numpy as np
import pytest

from server import handlers
from server.handlers import Controls


@pytest.fixture(scope="module")
def view(ctx):
    v, _ = handlers.on_run(ctx, None, Controls(), "The cat sat on the mat because the cat")
    return v


def test_run_fills_every_panel(ctx, lm):
    view, out = handlers.on_run(ctx, None, Controls(), "Hello there, world")
    assert view.trace.token_ids == tuple(lm.tokenize("Hello there, world"))
    for key in ("tokens", "embeddings", "neighbours", "attention-all", "logit-lens", "logit-lens-focus",
                "distribution", "layer-data", "token-count", "output", "kv-cache"):
        assert out[key] is not None and out[key] is not handlers.render.COMPUTING, key
    assert set(out["layer-data"]["panels"]) == {"attention", "attention-heads", "attention-detail", "mlp", "mlp-top"}
    assert out["notice"] == ""
    assert view.focus == view.T - 1


def test_run_answers_in_two_steps_first_without_the_lens(ctx):
    steps = list(handlers.run_in_steps(ctx, None, Controls(layer=4), "Hello there, world"))
    assert len(steps) == 2
    (first, a), (full, b) = steps
    assert first.lens is None and a["logit-lens"] is handlers.render.COMPUTING and "tokens" in a
    assert a["layer-data"]["layers"] == [4]                    # the current layer at once, the rest after
    assert full.lens is not None and b["logit-lens"] is not handlers.render.COMPUTING
    assert len(b["layer-data"]["layers"]) > 1 and "tokens" not in b
    assert first.trace is full.trace


@pytest.mark.parametrize("prompt, fragment", [("", "empty"), ("   \n\t ", "empty"), ("x" * 30_000, "characters"),
                                              ("word " * 200, "tokens long")])
def test_bad_prompts_give_a_clear_message(ctx, view, prompt, fragment):
    with pytest.raises(ValueError, match=fragment):
        handlers.on_run(ctx, view, Controls(), prompt)


def test_view_options_never_run_the_model(ctx, view, monkeypatch):
    def forbidden(*a, **k):
        raise AssertionError("the model ran")
    monkeypatch.setattr(ctx.lm, "_run", forbidden)
    monkeypatch.setattr(ctx.lm, "forward", forbidden)
    same, out = handlers.on_layer(ctx, view, Controls(layer=7, head=3, exclude_first=True))
    assert same is view and set(out) == {"layer-data", "notice"}
    data = out["layer-data"]
    assert (data["layer"], data["head"]) == (7, 3) and 7 in data["layers"]
    same, out = handlers.on_need_layer(ctx, view, Controls(), 20, 2, [20, 21, 3])
    assert out["layer-data"]["layers"][:1] == [20] or 20 in out["layer-data"]["layers"]


def test_focus(ctx, view):
    v2, out = handlers.on_focus(ctx, view, Controls(), 2)
    assert v2.focus == 2 and 'data-pos="2"' in out["tokens"] and "layer-data" in out
    with pytest.raises(ValueError):
        handlers.on_focus(ctx, view, Controls(), 999)


def test_next_token_uses_the_kv_cache_and_matches_the_shown_pick(ctx, view):
    from model.sampling import distribution, sample
    c = Controls(temperature=0.7, seed=11)
    shown = sample(distribution(view.trace.logits[-1], c.sampling), position=view.T)   # what the page shows
    new, out = handlers.on_next_token(ctx, view, c)
    assert new.T == view.T + 1 and new.trace.n_prompt == view.T
    assert new.trace.token_ids[-1] == shown
    assert ctx.lm.decode([new.trace.token_ids[-1]]) in out["output"]
    np.testing.assert_allclose(new.trace.logits[:-1], view.trace.logits, atol=0)  # the prefix was not recomputed


def test_generate_streams_and_respects_limits(ctx, view, monkeypatch):
    steps = list(handlers.on_generate(ctx, view, Controls(temperature=0), 3))
    texts = [out["output"] for _, out in steps]
    assert len(texts) >= 3 and len(set(texts[:3])) == 3                      # every token shows in the text at once
    assert steps[-1][0].T == view.T + 3 and "tokens" in steps[-1][1]          # the panels follow the last token
    monkeypatch.setattr(handlers, "PANELS_EVERY_S", 0.0)                     # a redraw after every token
    steps = list(handlers.on_generate(ctx, view, Controls(temperature=0), 3))
    assert [s[0].T for s in steps if "tokens" in s[1]] == [view.T + 1, view.T + 2, view.T + 3]
    with pytest.raises(ValueError):
        list(handlers.on_generate(ctx, view, Controls(), 9))      # over max_new_tokens


@pytest.mark.parametrize("raw", [dict(temperature=float("nan")), dict(temperature=-1), dict(top_k=-3),
                                 dict(top_p=0), dict(top_p=1.5), dict(layer=30), dict(head=9), dict(seed=1.5),
                                 dict(seed="abc"), dict(temperature=None)])
def test_out_of_range_controls_are_refused(ctx, raw):
    from server.controls import CONTROL_IDS
    page = {"layer": 0, "head": 0, "temperature": 1.0, "top-k": 0, "top-p": 1.0, "seed": 0}
    page.update({k.replace("_", "-"): v for k, v in raw.items()})
    assert set(page) <= set(CONTROL_IDS)
    with pytest.raises(ValueError):
        Controls.from_page(ctx.lm, page)


def test_controls_are_read_by_element_id(ctx):
    c = Controls.from_page(ctx.lm, {"layer": 3.0, "top-k": 7, "exclude-first": True, "seed": 2**63 - 1})
    assert (c.layer, c.top_k, c.exclude_first, c.seed) == (3, 7, True, 2**63 - 1)
    assert c.temperature == 1.0 and c.heads_metric == "sink"          # missing ids take their defaults


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
