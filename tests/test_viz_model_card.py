"""Model card and parameter breakdown: counts from the shape formulas must equal the real module
tree, and GPT-3's breakdown, computed from its published shape, must come to ~175 B."""
from __future__ import annotations

import dataclasses

import pytest

from conftest import strings

from viz.model_card import (COMPONENTS, GPT3_175B, count_parameters, mlp_share, model_card_html,
                            parameter_figure, shape_of)


def test_shape_formulas_match_the_running_model(lm):
    assert count_parameters(shape_of(lm.cfg)) == lm.parameter_counts()


def test_gpt3_is_about_175_billion_with_mlp_two_thirds():
    c = count_parameters(GPT3_175B)
    assert abs(sum(c.values()) - 175e9) / 175e9 < 0.01
    assert c["embedding"] == 50257 * 12288                      # ~617 M
    assert abs(c["mlp"] - 116e9) / 116e9 < 0.01
    assert mlp_share(c) == pytest.approx(2 / 3, abs=0.005)


def test_card_shows_shape_and_totals(lm):
    counts = lm.parameter_counts()
    out = model_card_html(lm.cfg, counts, "cpu", "float32")
    total = sum(counts.values())
    assert f"{total:,}" in out
    assert f"{sum(count_parameters(GPT3_175B).values()):,}" in out
    for k in ("attention", "mlp", "embedding"):
        assert f"{counts[k]:,}" in out
    assert "9 query heads, 3 key/value heads" in out
    assert "K/V 0 ← Q 0, 1, 2 · K/V 1 ← Q 3, 4, 5 · K/V 2 ← Q 6, 7, 8" in out
    assert "RMSNorm" in out and "RoPE" in out and "SwiGLU" in out
    assert "576" in out and "1,536" in out and "49,152" in out and "8,192" in out and "64 (576 / 9)" in out
    assert "cpu, float32" in out and "tied" in out


def test_card_escapes_names(lm):
    cfg = dataclasses.replace(lm.cfg, name="<script>alert(1)</script>")
    out = model_card_html(cfg, lm.parameter_counts(), "<b>gpu</b>", "float32")
    assert "<script" not in out and "<b>gpu" not in out and "&lt;script&gt;" in out
    texts = list(strings(parameter_figure(lm.parameter_counts(), cfg).to_dict()))
    assert not any("<script" in t for t in texts) and any("&lt;script&gt;" in t for t in texts)


def test_parameter_figure_compares_shares(lm):
    counts = lm.parameter_counts()
    fig = parameter_figure(counts, lm.cfg)
    this, gpt3 = fig.data
    assert this.type == gpt3.type == "bar"
    assert list(this.customdata) == [counts[k] for k in COMPONENTS]
    assert list(gpt3.customdata) == [count_parameters(GPT3_175B)[k] for k in COMPONENTS]
    assert sum(this.x) == pytest.approx(1) and sum(gpt3.x) == pytest.approx(1)
    assert this.x[COMPONENTS.index("mlp")] == pytest.approx(counts["mlp"] / sum(counts.values()))
    assert list(fig.layout.yaxis.ticktext) == ["embedding", "position", "attention", "MLP", "norms", "unembedding"]
    assert "67% in GPT-3" in fig.layout.title.subtitle.text


@pytest.mark.parametrize("bad", [{"attention": -1}, {"weights": 5}, {"mlp": 1.5}, {}, [1, 2]])
def test_bad_counts_are_refused(lm, bad):
    with pytest.raises(ValueError):
        model_card_html(lm.cfg, bad, "cpu", "float32")


# ---- Chinese -------------------------------------------------------------------------------------------
# Shape names in the card (written as in the config) are notation, as in the English card; GPT-3 is a name.
NOTATION = ("d_model", "d_mlp")
NAMES = ("GPT-3",)


def test_model_card_speaks_chinese(tiny_lm):
    import re

    from zh_text import stray_in_figure, stray_latin
    from viz.words import speaking

    counts = tiny_lm.parameter_counts()
    gpt2 = dataclasses.replace(tiny_lm.cfg, family="gpt2", n_kv_head=tiny_lm.cfg.n_head, tied_embeddings=False)
    name = (tiny_lm.cfg.name,) + NAMES
    for cfg in (tiny_lm.cfg, gpt2):
        with speaking("zh"):
            fig = parameter_figure(counts, cfg)
        assert stray_in_figure(fig, name) == {}
        assert fig.layout.yaxis.ticktext[0] == "词嵌入" and "GPT-3" in fig.layout.title.subtitle.text
        assert all(stray_latin(h, name) == [] for bar in fig.data for h in bar.hovertext)
        assert all(stray_latin(t) == [] for bar in fig.data for t in bar.text)
        # The card is built once and carries both languages (the page shows one); speaking does not matter.
        with speaking("zh"):
            card = model_card_html(cfg, counts, "cpu", "float32")
        assert card == model_card_html(cfg, counts, "cpu", "float32")
        en, zh = re.fullmatch(r'<div class="gg-card"><h3 class="gg-card-title">[^<]*</h3>'
                              r'<div class="gg-en">(.*)</div><div class="gg-zh">(.*)</div></div>', card, re.S).groups()
        assert "query heads" in en and "查询头" in zh and "query" not in zh
        assert stray_latin(zh, NOTATION + NAMES) == [], zh
    # English is the default again outside the block.
    assert parameter_figure(counts, tiny_lm.cfg).layout.title.text == "Where the parameters live"
