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
