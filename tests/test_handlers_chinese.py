"""The handlers in 中文: every panel a language switch redraws, every refusal, in Chinese."""
from __future__ import annotations

import json
import re

import pytest
from zh_text import stray_in_figure, stray_latin

from server import beyond, handlers, share
from server.components import output_value
from server.handlers import Controls
from viz.words import speaking

ZH = Controls(lang="zh")
PROMPT = "我爱北京天安门，天安门上"


@pytest.fixture(scope="module")
def zh_view(ctx):
    with speaking("zh"):
        view, _ = handlers.on_run(ctx, None, ZH, PROMPT)
    return view


def visible_text(html_text: str) -> str:
    """What a reader of the Chinese page sees of an HTML fragment: no English spans, no tags."""
    html_text = re.sub(r'<(span|div|p)[^>]*class="gg-en"[^>]*>.*?</\1>', " ", html_text, flags=re.S)
    html_text = re.sub(r"<code>.*?</code>|`[^`]*`", " ", html_text, flags=re.S)   # tokens as code
    # the model's own text: token labels and bytes on chips, vocabulary tokens in tables
    html_text = re.sub(r'<(span|td)[^>]*class="[^"]*gg-tok[^"]*"[^>]*>.*?</\1>', " ", html_text, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html_text)


def token_words(view) -> list[str]:
    return [w for p in view.trace.pieces for w in re.findall(r"[A-Za-z]+", p.label)]


def test_language_switch_redraws_every_panel_in_chinese(ctx, zh_view):
    with speaking("zh"):
        _, out = handlers.on_language(ctx, zh_view, ZH)
    allowed = token_words(zh_view)
    figures = {k: v for k, v in out.items() if hasattr(v, "to_plotly_json")}
    assert {"attention-all", "logit-lens", "logit-lens-focus", "embeddings", "kv-cache"} <= set(figures)
    for elem_id, fig in figures.items():
        assert stray_in_figure(fig, allowed) == {}, elem_id
    for elem_id in ("neighbours", "kv-summary", "tokens"):
        assert stray_latin(visible_text(out[elem_id]), allowed) == [], elem_id
    for panel in out["layer-data"]["panels"].values():
        assert stray_in_figure(panel["base"], allowed) == {}
    assert all(out[i] is None for i in handlers.WHAT_IF_IDS)      # back to their hints


def test_layer_data_of_two_languages_never_merge(ctx, zh_view):
    en = handlers.on_need_layer(ctx, zh_view, Controls(), 3, 0)[1]["layer-data"]
    zh = handlers.on_need_layer(ctx, zh_view, ZH, 3, 0)[1]["layer-data"]
    assert en["version"] != zh["version"]


@pytest.mark.parametrize("prompt", ["", "   ", "x" * 30_000])
def test_refusals_in_chinese(ctx, prompt):
    with speaking("zh"), pytest.raises(ValueError) as e:
        handlers.on_run(ctx, None, ZH, prompt)
    assert re.search(r"[\u4e00-\u9fff]", str(e.value)) and stray_latin(str(e.value)) == []


def test_a_too_long_prompt_in_tokens_is_refused_in_chinese(ctx):
    with speaking("zh"), pytest.raises(ValueError) as e:
        handlers.on_run(ctx, None, ZH, "天安门 " * 60)
    assert "词元" in str(e.value) and stray_latin(str(e.value)) == []


def test_what_if_panels_in_chinese(ctx, zh_view):
    allowed = token_words(zh_view)
    with speaking("zh"):
        _, abl = beyond.on_ablate(ctx, zh_view, ZH, "3.*", "")
        _, cmp = beyond.on_compare(ctx, zh_view, ZH, "我爱上海")
        _, path = beyond.on_residual_path(ctx, zh_view, ZH, "", False, True)
    for out in (abl, cmp, path):
        for elem_id, value in out.items():
            if hasattr(value, "to_plotly_json"):
                assert stray_in_figure(value, allowed) == {}, elem_id
            elif value:
                assert stray_latin(visible_text(value), allowed) == [], elem_id


def test_link_opened_in_chinese(ctx):
    with speaking("zh"):
        view, out, _ = share.on_open_link(ctx, handlers.initial_view(ctx), {"prompt": PROMPT, "layer": "99"})
    assert "链接" in out["notice"]
    data = json.loads(output_value("layer-data", out["layer-data"]))
    assert stray_in_figure(data["panels"]["attention"]["base"], token_words(view)) == {}
