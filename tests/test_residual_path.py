"""The residual stream's path: PCA of the real prompt's states, position 0 (the attention sink) left
out of the fit unless asked for, the logit lens at every point, and the handler's position parsing."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from zh_text import stray_in_figure, stray_latin

from server import beyond
from server.handlers import Context, Controls, Limits
from server.state import make_view
from viz import residual_path as rp
from viz.words import speaking

PROMPT = "Paris is the capital of France. Berlin is the capital of"


@pytest.fixture(scope="module")
def ctx(lm):
    return Context(lm, Limits(max_prompt_tokens=32, max_new_tokens=4, max_context=40))


@pytest.fixture(scope="module")
def view(lm):
    return make_view(lm, lm.trace(PROMPT))


def _pca(X: np.ndarray, k: int = 2) -> np.ndarray:
    """Reference PCA by eigendecomposition of the covariance (the figure uses an SVD)."""
    Xc = X - X.mean(axis=0)
    w, v = np.linalg.eigh(Xc.T @ Xc)
    return v[:, np.argsort(-w)[:k]].T


def test_paths_are_the_pca_projections_of_every_layer(ctx, lm, view):
    tr = view.trace
    positions = [3, 7, tr.T - 1]
    lens = view.lens                                  # reads every position of this 12-token prompt
    fig = rp.residual_path_figure(tr, lens, positions, ctx.labels)
    assert len(fig.data) == 3 and "position 0 left out" in fig.layout.title.text
    S = rp.residual_states(tr).astype(np.float64)                             # (31, T, 576)
    assert S.shape == (31, tr.T, 576)
    np.testing.assert_array_equal(S[0], tr.act("hook_embed"))                 # the path starts at the embedding
    np.testing.assert_array_equal(S[-1], tr.act("hook_resid_post", 29))
    fit = S[:, 1:].reshape(-1, 576)
    comps = _pca(fit)
    for trace_fig, p in zip(fig.data, positions):
        xy = np.c_[trace_fig.x, trace_fig.y]
        want = (S[:, p] - fit.mean(axis=0)) @ comps.T
        want *= np.sign((want * xy).sum(axis=0))                             # a component's sign is arbitrary
        np.testing.assert_allclose(xy, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())
        assert len(xy) == 31


def test_every_point_carries_the_logit_lens_top_token(ctx, lm, view):
    tr = view.trace
    lens, c = view.lens, list(view.lens.positions).index(tr.T - 1)
    fig = rp.residual_path_figure(tr, lens, [tr.T - 1], ctx.labels)
    hover = fig.data[0].hovertext
    for r in (0, 10, 30):
        top = ctx.labels(int(lens.top_ids[r, c, 0]))
        assert f"lens top-1: “{top}”" in hover[r] and f"{lens.top_probs[r, c, 0]:.1%}" in hover[r]
    final = ctx.labels(int(lens.top_ids[-1, c, 0]))
    assert final in fig.data[0].name and final in fig.data[0].text[-1]        # the final guess is written at the end
    assert fig.data[0].text[0] == "e" and fig.data[0].text[-1].startswith("29")


def test_position_0_the_attention_sink_dominates_when_included(ctx, lm, view):
    tr = view.trace
    fig = rp.residual_path_figure(tr, view.lens, [0, 5], ctx.labels)              # asking for 0 puts it in the fit
    assert "position 0 included" in fig.layout.title.text
    _, comps, ratio = rp.pca_basis(rp.residual_states(tr), range(tr.T))
    assert ratio[0] > 0.9 and int(np.abs(comps[0]).argmax()) == 507         # one huge coordinate: dimension 507
    _, comps1, ratio1 = rp.pca_basis(rp.residual_states(tr), range(1, tr.T))
    assert ratio1[0] < 0.9 and int(np.abs(comps1[0]).argmax()) != 507
    fig = rp.residual_path_figure(tr, view.lens, [5], ctx.labels, include_first=True)
    assert "position 0 included" in fig.layout.title.text


def test_normalised_paths_ignore_length(ctx, lm, view):
    tr = view.trace
    fig = rp.residual_path_figure(tr, view.lens, [4], ctx.labels, normalise=True)
    assert "unit RMS" in fig.layout.title.text
    xy = np.c_[fig.data[0].x, fig.data[0].y]
    assert np.abs(xy).max() < 60                                             # unit-RMS vectors: |x| = 24 in 576 dims


def test_handler_default_positions_and_parsing(ctx, view):
    same, out = beyond.on_residual_path(ctx, view, Controls(), "")
    assert same is view and set(out) == {"residual-path", "notice"}
    assert [d.name.split(" ")[0] for d in out["residual-path"].data] == [f"#{view.T - 1}"]   # focus = last
    assert beyond.parse_positions("1, 3-4, last #2", view.T) == [1, 3, 4, view.T - 1, 2]
    assert beyond.parse_positions("2，5", view.T) == [2, 5]
    _, out = beyond.on_residual_path(ctx, view, Controls(), "1 5", include_first=True, normalise=True)
    assert len(out["residual-path"].data) == 2 and "position 0 included" in out["residual-path"].layout.title.text


@pytest.mark.parametrize("text, fragment", [("x", "cannot read"), ("99", "past the end"), ("5-2", "backwards"),
                                            ("0-11", "at most 8"), ("-1", "cannot read"), ("1.5", "cannot read")])
def test_bad_positions(ctx, view, text, fragment):
    with pytest.raises(ValueError, match=fragment):
        beyond.on_residual_path(ctx, view, Controls(), text)


def test_figure_input_checks(ctx, lm, view):
    tr = view.trace
    lens = lm.logit_lens(tr, [2], k=1)
    with pytest.raises(ValueError, match="does not read"):
        rp.residual_path_figure(tr, lens, [3], ctx.labels)
    with pytest.raises(ValueError, match="0..11"):
        rp.residual_path_figure(tr, lens, [12], ctx.labels)
    with pytest.raises(ValueError, match="at least one"):
        rp.residual_path_figure(tr, lens, [], ctx.labels)


def test_hostile_tokens_are_escaped(lm):
    tr = lm.trace('<img src=x onerror="alert(1)"> <b>bold</b>')
    lens = lm.logit_lens(tr, [2, tr.T - 1])
    fig = rp.residual_path_figure(tr, lens, [2, tr.T - 1], lambda i: "<script>x</script>")
    text = json.dumps(fig.to_plotly_json(), default=str)
    assert "<img" not in text and "<script" not in text and "<b>bold" not in text and "&lt;" in text


# ---- in Chinese (the tiny random model) ---------------------------------------------------------------
def test_the_path_and_the_refusals_in_chinese(tiny_lm, tiny_trace):
    tr = tiny_trace
    allowed = {w for p in tr.pieces for w in re.findall(r"[A-Za-z]+", p.label)}
    number = lambda i: f"#{i}"                                             # noqa: E731 (no vocabulary words)
    lens = tiny_lm.logit_lens(tr, [0, 3, tr.T - 1])
    with speaking("zh"):
        figs = [rp.residual_path_figure(tr, lens, [3, tr.T - 1], number),
                rp.residual_path_figure(tr, lens, [0, 3], number, normalise=True)]
        refusals = []
        for text in ("x", "99", "5-2", "0-11", 7):
            with pytest.raises(ValueError) as e:
                beyond.parse_positions(text, tr.T)
            refusals.append(str(e.value))
        with pytest.raises(ValueError) as e:
            beyond.parse_positions("1" * 1001, tr.T)
        refusals.append(str(e.value))
    for fig in figs:
        assert stray_in_figure(fig, allowed) == {}
        assert all(stray_latin(h, allowed) == [] for t in fig.data for h in t.hovertext)
        assert all(t.textfont.size >= 10 for t in fig.data)
    assert "包括位置 0" in figs[1].layout.title.text and "均方根" in figs[1].layout.title.text
    assert "不含位置 0" in figs[0].layout.title.text
    for message in refusals:
        assert stray_latin(message) == [] and ("词元位置" in message or "路径" in message), message
