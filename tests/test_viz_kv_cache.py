"""The KV-cache panel shows the real cached keys and this session's measured timings. The sizes are
checked on the real model; the summary before any generation only needs a trace, from the tiny
random-weight model (tests/tiny_model.py)."""
from __future__ import annotations

import numpy as np

from viz import kv_cache


def test_cache_size_and_key_norms_match_the_trace(lm):
    tr = lm.trace("Reading is faster than")
    tr2 = lm.step(lm.step(tr, lm.tokenize(" writing")[0]), lm.tokenize(".")[0])
    per_token = kv_cache.cache_bytes_per_token(lm.cfg)
    assert per_token == 30 * 2 * 3 * 64 * 4
    fig = kv_cache.kv_cache_figure(tr2)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (30, tr2.T)
    np.testing.assert_allclose(z[7], np.linalg.norm(tr2.act("attn.hook_k", 7), axis=-1).mean(0), atol=1e-3)
    assert f"{tr2.T * per_token:,} bytes" in fig.layout.title.text
    assert len(fig.layout.shapes) == 2 and fig.layout.shapes[1].x0 == tr2.T - 1.5
    html = kv_cache.kv_cache_summary_html(tr2)
    assert "per token over 2 tokens" in html and "decode / prefill" in html


def test_summary_before_any_generation_and_escaping(tiny_lm):
    tr = tiny_lm.trace('<b onmouseover="x">')
    html = kv_cache.kv_cache_summary_html(tr)
    assert "press Next token" in html and "<b " not in html
    assert len(kv_cache.kv_cache_figure(tr).layout.shapes) == 0


# ---- Chinese -------------------------------------------------------------------------------------------
# MiB is a unit, written as it is in Chinese too.
UNITS = ("MiB",)


def test_every_kv_cache_panel_speaks_chinese(tiny_lm):
    import re

    from zh_text import stray_in_figure, stray_latin
    from viz.words import speaking

    tr = tiny_lm.trace("The cat sat on the mat")
    tr1 = tiny_lm.step(tr, tiny_lm.tokenize(" because")[0])
    tr2 = tiny_lm.step(tr1, tiny_lm.tokenize(" the")[0])
    with speaking("zh"):
        figs = [kv_cache.kv_cache_figure(t) for t in (tr, tr1, tr2)]
        htmls = [kv_cache.kv_cache_summary_html(t) for t in (tr, tr1, tr2)]
    tokens = {w for p in tr2.pieces for w in re.findall(r"[A-Za-z]+", p.label)}
    for fig in figs:
        assert stray_in_figure(fig, tokens) == {}
        assert set(np.asarray(fig.data[0].customdata).ravel()) <= {"提示词", "生成的"}
    assert "KV 缓存" in figs[0].layout.title.text and "字节" in figs[0].layout.title.text
    for text in htmls:
        visible = re.sub(r"<code>.*?</code>", " ", text)         # the newest token is the token itself
        assert stray_latin(visible, UNITS) == [], text
    assert "下一个词元" in htmls[0] and "预填充" in htmls[1] and "解码" in htmls[2] and "最新的词元" in htmls[2]
    # English is the default again outside the block, and counts its tokens right.
    assert "over 1 token " in kv_cache.kv_cache_summary_html(tr1)
    assert "over 2 tokens " in kv_cache.kv_cache_summary_html(tr2)
    assert "positions x" in kv_cache.kv_cache_figure(tr).layout.title.text
