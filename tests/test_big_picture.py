"""The big picture: one block per layer, each with the focus token's logit-lens guess; escaped; 中文."""
from __future__ import annotations

import html
import re

import numpy as np
import pytest

from viz.big_picture import big_picture_html


@pytest.fixture(scope="module")
def lens_and_trace(tiny_lm):
    tr = tiny_lm.trace("<b>x</b> & the cat")
    return tiny_lm, tr, tiny_lm.logit_lens(tr, list(range(tr.T)))


def test_one_block_per_layer_with_the_lens_guess(lens_and_trace):
    lm, tr, lens = lens_and_trace
    focus = tr.T - 2
    page = big_picture_html(tr, lens, focus, lambda i: lm.decode([i]))
    blocks = re.findall(r'<button class="gg-bp-block" data-gg-layer="(\d+)" title="([^"]*)"', page)
    assert [int(l) for l, _ in blocks] == list(range(tr.config.n_layer))
    for l, tip in blocks:
        guess = lm.decode([int(lens.top_ids[int(l) + 1, focus, 0])])
        assert html.escape(guess) in tip or html.escape(html.escape(guess)) in tip
    norms = [np.linalg.norm(tr.act("hook_resid_post", l)[focus]) for l in range(tr.config.n_layer)]
    assert f"|x| = {norms[0]:.1f}" in html.unescape(blocks[0][1])
    final = lm.decode([int(lens.top_ids[-1, focus, 0])])
    assert html.escape("“" + final[:9]) in page and f"{tr.config.vocab_size:,}" in page
    assert "<b>x</b>" not in page                                       # the prompt's text is never markup


def test_big_picture_speaks_chinese(lens_and_trace):
    from zh_text import stray_latin
    from viz.words import speaking
    lm, tr, lens = lens_and_trace
    with speaking("zh"):
        page = big_picture_html(tr, lens, 0, lambda i: lm.decode([i]))
    visible = re.sub(r"“[^”]*”|<[^>]+>|title=\"[^\"]*\"", " ", html.unescape(re.sub(r'title="[^"]*"', " ", page)))
    assert "完整计算过程" in page and stray_latin(visible) == []


def test_the_focus_must_be_in_the_lens(lens_and_trace):
    lm, tr, _ = lens_and_trace
    with pytest.raises(ValueError):
        big_picture_html(tr, lm.logit_lens(tr, [0]), tr.T - 1, lambda i: lm.decode([i]))
