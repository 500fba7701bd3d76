"""Temperature side by side: each row is what the seeded sampler picks at that temperature, and
each token's probability is the one the sampler gave it."""
from __future__ import annotations

import re

import numpy as np
import pytest

from model.sampling import temperature_probs
from model.temperatures import TEMPERATURES, continue_at


@pytest.fixture(scope="module")
def rows(tiny_lm):
    return tiny_lm, tiny_lm.tokenize("The cat sat on the"), continue_at(tiny_lm, tiny_lm.tokenize("The cat sat on the"), 6, seed=3)


def test_each_row_is_the_seeded_samplers_continuation(rows):
    lm, ids, out = rows
    assert [r.temperature for r in out] == list(TEMPERATURES)
    for r in out:
        g = lm.generate(ids, 6, r.temperature, 0, 1.0, 3)
        assert list(r.new_ids) == g.new_ids and r.stopped_at_eos == g.stopped_at_eos


def test_probabilities_are_the_samplers(rows):
    lm, ids, out = rows
    for r in out:
        for step, (i, p, q) in enumerate(zip(r.new_ids, r.probs, r.probs_plain)):
            z = lm.forward(ids + list(r.new_ids[:step]))[-1]
            assert p == pytest.approx(temperature_probs(z, r.temperature)[i], abs=1e-5)
            assert q == pytest.approx(temperature_probs(z, 1.0)[i], abs=1e-5)
    greedy = out[0]
    assert all(p == 1.0 for p in greedy.probs)                       # T = 0: the pick is certain


def test_side_by_side_html_escapes_and_speaks_chinese(rows):
    from zh_text import stray_latin
    from viz.temperatures import side_by_side_html
    from viz.words import speaking
    lm, ids, out = rows
    labels = lambda i: lm.decode([i])                                # noqa: E731
    page = side_by_side_html(out, labels, "<b>The cat</b>", 3)
    assert "<b>The" not in page and "&lt;b&gt;" in page and page.count("<tr>") == len(TEMPERATURES)
    with speaking("zh"):
        zh = side_by_side_html(out, labels, "x", 3)
    visible = re.sub(r'<span class="gg-temp-token[^>]*>.*?</span>|title="[^"]*"', " ", zh)
    assert "贪心" in zh and stray_latin(re.sub(r"<[^>]+>", " ", visible)) == []
