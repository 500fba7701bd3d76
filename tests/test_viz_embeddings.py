"""Embedding-space figure and neighbour table: every point is a real embedding row, projected by a
PCA that is checked against an independent eigen-decomposition."""
from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from conftest import strings

from viz.common import plotly_text
from viz.embeddings import embedding_figure, neighbour_table_html, pca, position_note

K = 6




@pytest.fixture(scope="module")
def labels(lm):
    return lambda i: lm.tokenizer.pieces([i])[0].display


@pytest.fixture(scope="module")
def nb(lm, trace):
    return lm.neighbours(trace.token_ids, k=K)


def markers(fig):
    return [t for t in fig.data if "markers" in t.mode]


def test_every_vector_is_one_point(nb, trace, labels):
    fig = embedding_figure(nb, trace, 1, 2, labels)
    pts = markers(fig)
    assert all(t.type == "scatter" for t in fig.data)
    assert sum(len(t.x) for t in pts) == len(nb.vector_ids)
    assert sorted(int(i) for t in pts for i in t.customdata) == sorted(nb.vector_ids.tolist())
    (focus,) = [t for t in pts if t.name.startswith("focus")]
    assert list(focus.customdata) == [trace.token_ids[1]]
    (prompt,) = [t for t in pts if t.name == "prompt tokens"]
    assert list(prompt.text) == [plotly_text(labels(int(i))) for i in prompt.customdata]
    assert set(prompt.customdata) | {trace.token_ids[1]} == set(trace.token_ids)


def test_links_join_each_query_to_its_neighbours(nb, trace, labels):
    fig = embedding_figure(nb, trace, 1, 2, labels)
    lines = [t for t in fig.data if t.mode == "lines"]
    segments = sum(sum(1 for v in t.x if v is None) for t in lines)
    assert segments == nb.neighbour_ids.size
    focus_links = [t for t in lines if t.name == "focus links"][0]
    assert sum(1 for v in focus_links.x if v is None) == K


def test_pca_matches_an_independent_eigendecomposition(nb, trace, labels):
    X = nb.vectors.astype(np.float64)
    Xc = X - X.mean(0)
    # Eigen-decomposition of the (m x m) Gram matrix: same non-zero spectrum as the covariance,
    # and its eigenvectors scaled by sqrt(eigenvalue) are the PC coordinates (up to sign).
    evals, evecs = np.linalg.eigh(Xc @ Xc.T)
    evals, evecs = evals[::-1], evecs[:, ::-1]
    coords, ratio = pca(nb.vectors, 3)
    np.testing.assert_allclose(ratio, evals[:3] / evals.sum(), rtol=1e-6)
    np.testing.assert_allclose(np.abs(coords), np.abs(evecs[:, :3] * np.sqrt(evals[:3])), rtol=1e-5, atol=1e-6)
    fig = embedding_figure(nb, trace, 1, 3, labels)
    assert fig.layout.scene.xaxis.title.text == f"PC1 ({ratio[0]:.1%} of variance)"
    assert fig.layout.scene.zaxis.title.text == f"PC3 ({ratio[2]:.1%} of variance)"
    assert all(t.type == "scatter3d" for t in fig.data)
    pts = {int(c): (x, y, z) for t in markers(fig) for c, x, y, z in zip(t.customdata, t.x, t.y, t.z)}
    row = nb.vector_ids.tolist().index(trace.token_ids[3])
    np.testing.assert_allclose(pts[trace.token_ids[3]], coords[row])
    fig2 = embedding_figure(nb, trace, 1, 2, labels)
    assert fig2.layout.xaxis.title.text == f"PC1 ({ratio[0]:.1%} of variance)"


def test_hover_shows_cosine_to_the_query(nb, trace, labels):
    fig = embedding_figure(nb, trace, 1, 2, labels)
    hover = {int(c): h for t in markers(fig) for c, h in zip(t.customdata, t.hovertext)}
    r = nb.query_ids.tolist().index(trace.token_ids[1])
    for nid, c in zip(nb.neighbour_ids[r], nb.cosine[r]):
        assert f"cosine to {plotly_text(labels(trace.token_ids[1]))}: {c:.3f}" in hover[int(nid)]
        assert f"id {nid}" in hover[int(nid)]


def test_neighbour_labels_option(nb, trace, labels):
    every = embedding_figure(nb, trace, 1, 2, labels, label_neighbours="all")
    assert all(t.mode == "markers+text" for t in markers(every))
    some = embedding_figure(nb, trace, 1, 2, labels)
    modes = {t.name: t.mode for t in markers(some)}
    assert modes["other neighbours"] == "markers" and modes["prompt tokens"] == "markers+text"


def test_hostile_labels_are_escaped(nb, trace):
    evil = lambda i: f'<img src=x onerror=alert({i})>"'
    texts = list(strings(embedding_figure(nb, trace, 0, 2, evil, label_neighbours="all").to_dict()))
    assert not any("<img" in t for t in texts)
    assert sum("&lt;img" in t for t in texts) >= len(nb.vector_ids)      # labels and hovers, escaped
    table = neighbour_table_html(nb, trace, 0, evil)
    assert "<img" not in table and "&lt;img" in table


class Rows(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self._in_body = [], False

    def handle_starttag(self, tag, attrs):
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag == "td" and self._in_body:
            self.rows[-1].append("")

    def handle_data(self, data):
        if self._in_body and self.rows and self.rows[-1]:
            self.rows[-1][-1] += data


def test_neighbour_table_lists_the_focus_tokens_neighbours(nb, trace, labels):
    out = neighbour_table_html(nb, trace, 8, labels)
    p = Rows()
    p.feed(out)
    r = nb.query_ids.tolist().index(trace.token_ids[8])
    assert len(p.rows) == K
    assert [int(row[2]) for row in p.rows] == nb.neighbour_ids[r].tolist()
    assert [row[1] for row in p.rows] == [labels(int(i)) for i in nb.neighbour_ids[r]]
    assert [float(row[3]) for row in p.rows] == pytest.approx(nb.cosine[r].tolist(), abs=5e-4)
    assert re.search(rf"id {trace.token_ids[8]}, position 8", out)


def test_bad_input_is_refused(lm, nb, trace, labels):
    with pytest.raises(ValueError, match="dims"):
        embedding_figure(nb, trace, 1, 4, labels)
    with pytest.raises(ValueError, match="labels"):
        embedding_figure(nb, trace, 1, 2)
    with pytest.raises(ValueError, match="position"):
        embedding_figure(nb, trace, trace.T, 2, labels)
    partial = lm.neighbours(trace.token_ids[:3], k=K)             # "The cat sat": no " mat"
    with pytest.raises(ValueError, match=r"·mat.*id 1171"):
        neighbour_table_html(partial, trace, 5, labels)


def test_position_note_follows_the_config(lm):
    assert "RoPE" in position_note(lm.cfg) and "learned" not in position_note(lm.cfg)
    gpt2 = dataclasses.replace(lm.cfg, family="gpt2", n_kv_head=lm.cfg.n_head)
    note = position_note(gpt2)
    assert "learned position vector" in note and "RoPE" not in note


# ---- Chinese -------------------------------------------------------------------------------------------
def _latin_words(texts) -> set[str]:
    """The Latin words of the model's own texts (token labels): allowed as they are."""
    return {w for t in texts for w in re.findall(r"[A-Za-z][A-Za-z0-9_\-·.]*[A-Za-z0-9]|[A-Za-z]+", t)}


@pytest.fixture(scope="module")
def tiny_gpt2_lm(tiny_lm):
    """A 1-layer random GPT-2-family model (learned position vectors) with the real tokenizer."""
    import torch

    from model.config import ModelConfig
    from model.lm import LanguageModel
    from model.transformer import Transformer

    cfg = ModelConfig(name="tiny-gpt2", family="gpt2", n_layer=1, n_head=2, n_kv_head=2, d_model=32, d_mlp=64,
                      vocab_size=tiny_lm.tokenizer.vocab_size, n_ctx=320)
    torch.manual_seed(0)
    net = Transformer(cfg)
    with torch.no_grad():                       # the embedding tables are left uninitialised
        net.embed.weight.normal_(0, 0.3)
        net.pos_embed.weight.normal_(0, 0.3)
    return LanguageModel(net, tiny_lm.tokenizer, torch.device("cpu"), "random")


def test_every_embedding_figure_speaks_chinese(tiny_lm, tiny_trace):
    from zh_text import stray_in_figure, stray_latin
    from viz.words import speaking

    nb = tiny_lm.neighbours(tiny_trace.token_ids, k=K)
    labels = lambda i: tiny_lm.tokenizer.pieces([i])[0].display
    with speaking("zh"):
        figs = [embedding_figure(nb, tiny_trace, 1, 2, labels), embedding_figure(nb, tiny_trace, 1, 3, labels),
                embedding_figure(nb, tiny_trace, 5, 2, labels, label_neighbours="all")]
        table = neighbour_table_html(nb, tiny_trace, 8, labels)
    tokens = _latin_words([labels(int(i)) for i in nb.vector_ids] + [p.label for p in tiny_trace.pieces])
    for fig in figs:
        assert stray_in_figure(fig, tokens) == {}
        hovers = [h for t in fig.data if t.hovertext for h in t.hovertext]      # the points' own hover texts
        assert hovers and [h for h in hovers if stray_latin(h, tokens)] == []
        assert all(stray_latin(t.name, tokens) == [] for t in fig.data)        # legend and hidden names alike
    assert "嵌入空间" in figs[0].layout.title.text and "方差" in figs[0].layout.xaxis.title.text
    assert "方差" in figs[1].layout.scene.zaxis.title.text
    assert "余弦相似度" in table and stray_latin(table, tokens) == []
    # English is the default again outside the block.
    assert embedding_figure(nb, tiny_trace, 1, 2, labels).layout.title.text.startswith("Embedding space")


def test_position_note_carries_both_languages(tiny_trace):
    from zh_text import stray_latin

    gpt2 = dataclasses.replace(tiny_trace.config, family="gpt2", n_kv_head=tiny_trace.config.n_head)
    for cfg in (tiny_trace.config, gpt2):
        en, zh = re.fullmatch(r'<span class="gg-en">(.*)</span><span class="gg-zh">(.*)</span>',
                              position_note(cfg), re.S).groups()
        assert "position" in en and "位置" in zh and "position" not in zh
        assert stray_latin(zh) == []
    assert "RoPE" in position_note(tiny_trace.config) and "可学习" in position_note(gpt2)


def test_every_position_figure_speaks_chinese(tiny_gpt2_lm, tiny_trace):
    from zh_text import stray_in_figure
    from viz.positions import position_embedding_figure
    from viz.words import speaking

    short = tiny_gpt2_lm.trace("The cat sat on the mat because the cat was tired")
    long = tiny_gpt2_lm.trace("The cat sat on the mat. " * 45)
    assert long.T > 256                                             # some positions are left out (and it says so)
    table = tiny_gpt2_lm.position_table()
    with speaking("zh"):
        figs = [position_embedding_figure(short), position_embedding_figure(short, table),
                position_embedding_figure(long), position_embedding_figure(tiny_trace)]      # the last: RoPE
    tokens = _latin_words([p.label for tr in (short, long) for p in tr.pieces])
    for fig in figs:
        assert stray_in_figure(fig, tokens) == {}
    assert "位置向量" in figs[0].layout.title.text and "均匀" in figs[2].layout.title.subtitle.text
    assert "旋转" in figs[3].layout.annotations[0].text
    custom = figs[0].data[1].customdata
    assert " 与 " in custom[0][1] and " and " not in custom[0][1]
    # English is the default again outside the block.
    assert position_embedding_figure(short).layout.title.text.startswith("Learned position vectors")


def test_labels_are_placed_without_overlap():
    from viz.embeddings import _PLACES, _label_places
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(40, 2))
    labelled = [(i, f"token{i}") for i in range(40)]
    for w, h in ((560, 420), (260, 300)):
        places = _label_places(coords, labelled, w, h)
        assert places and set(places.values()) <= set(_PLACES) and 0 in places      # the first (most important) always fits
        # Rebuild the boxes as placed: no two overlap.
        span = coords.max(0) - coords.min(0)
        px = (coords - coords.min(0)) / span * [w, h]
        boxes = []
        for row, place in places.items():
            dx, dy = _PLACES[place]
            bw = 7 * len(f"token{row}") + 4
            cx, cy = px[row, 0] + dx * (bw / 2 + 6), px[row, 1] + dy * (15 / 2 + 6)
            boxes.append((cx - bw / 2, cy - 7.5, cx + bw / 2, cy + 7.5))
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                assert a[2] < b[0] or a[0] > b[2] or a[3] < b[1] or a[1] > b[3]
